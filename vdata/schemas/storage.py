"""The config's `storage:` section: how to reach object storage named by URLs in `input` and `output.dir`.

```yaml
storage:
  s3: {endpoint_url: "http://127.0.0.1:9000", key: "${AWS_ACCESS_KEY_ID}", secret: "${AWS_SECRET_ACCESS_KEY}"}
  gcs: {project: my-project, token: "${GCS_TOKEN_FILE}"}
  hf: {token: "${HF_TOKEN}"}
  local_root: ~/.cache/vdata/remote     # caches and scratch of a build whose output is a URL
```
Every section is optional: without one, each filesystem reads its usual environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL; GOOGLE_APPLICATION_CREDENTIALS; HF_TOKEN). Keys, secrets and
tokens are `SecretStr`: masked in the manifest, the logs and errors (see schemas/secrets.py), and their
values reach only the fsspec filesystems (`fsspec_options`).
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class S3Storage(_Strict):
    endpoint_url: str | None = None        # an S3-compatible server (MinIO, Ceph, moto); None: AWS
    key: SecretStr | None = None           # access key id
    secret: SecretStr | None = None        # secret access key
    token: SecretStr | None = None         # session token (temporary credentials)
    region: str | None = None
    anon: bool = False                     # public buckets, no signing
    options: dict[str, Any] = Field(default_factory=dict)   # any other s3fs.S3FileSystem argument


class GCSStorage(_Strict):
    project: str | None = None
    token: SecretStr | None = None         # a service-account JSON file, "anon", "google_default", ...
    endpoint_url: str | None = None        # a GCS emulator
    options: dict[str, Any] = Field(default_factory=dict)   # any other gcsfs.GCSFileSystem argument


class HFStorage(_Strict):
    token: SecretStr | None = None
    endpoint: str | None = None            # a hub mirror
    options: dict[str, Any] = Field(default_factory=dict)


class StorageConfig(_Strict):
    s3: S3Storage = Field(default_factory=S3Storage)
    gcs: GCSStorage = Field(default_factory=GCSStorage)
    hf: HFStorage = Field(default_factory=HFStorage)
    # A build whose output.dir is a URL keeps its caches (stage results, teacher replies: SQLite),
    # scratch files and local copies of remote videos here, on the machine's disk; None:
    # ~/.cache/vdata/remote/<name of the output>. See pipelines/runner.py for why caches stay local.
    local_root: str | None = None


def _plain(value) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def fsspec_options(storage: StorageConfig) -> dict[str, dict]:
    """The keyword arguments of each fsspec filesystem, secret values unwrapped (for fsspec only)."""
    s3, gcs, hf = storage.s3, storage.gcs, storage.hf
    out: dict[str, dict] = {}
    s3_kwargs = {"endpoint_url": s3.endpoint_url, "key": _plain(s3.key), "secret": _plain(s3.secret),
                 "token": _plain(s3.token), "anon": s3.anon or None}
    if s3.region:
        s3_kwargs["client_kwargs"] = {"region_name": s3.region}
    out["s3"] = {**{k: v for k, v in s3_kwargs.items() if v not in (None, "")}, **s3.options}
    gcs_kwargs = {"project": gcs.project, "token": _plain(gcs.token), "endpoint_url": gcs.endpoint_url}
    out["gcs"] = {**{k: v for k, v in gcs_kwargs.items() if v not in (None, "")}, **gcs.options}
    hf_kwargs = {"token": _plain(hf.token), "endpoint": hf.endpoint}
    out["hf"] = {**{k: v for k, v in hf_kwargs.items() if v not in (None, "")}, **hf.options}
    return {k: v for k, v in out.items() if v}
