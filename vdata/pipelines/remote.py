"""A build whose `output.dir` is a URL (`s3://bucket/out`, `gs://…`, `hf://datasets/…`): what lives
where, and how the finishing steps (report, card, exports) run.

At the URL: everything that says what the dataset is and how far the build got: the data and reject
parts, the ledger (`_ledger/`), `_state.json`, `manifest.json`, then `report.html`, `README.md` and
the exports; and `_media/`, the videos that arrived as bytes (a Hugging Face dataset), which every
worker must be able to read. A re-run on any machine that can reach the bucket resumes from there (checkpoint.py), so a
cluster needs no shared mount: the write tasks put their parts straight into the bucket.

On this machine's disk (`local_root`, one folder per output URL): the caches (`_cache/`: per-stage
results, teacher replies), scratch (`_work/`: clip files, copies of remote videos) and `_logs/`. Why the caches are not synced to the bucket:
- the teacher reply cache is `diskcache`, i.e. SQLite, which needs a POSIX file system (byte-range
  locks, in-place page writes); an object store has neither, and two workers syncing one SQLite file
  would overwrite each other's replies;
- a cache only saves work, it never decides what is in the dataset (the ledger does), so a re-run on
  another machine with an empty cache recomputes (and re-asks the teacher for unfinished videos) but
  never writes a wrong or duplicated row. Videos the ledger marks complete are not run again anywhere.
"""
from __future__ import annotations

import hashlib
import os
import re

import click

from vdata.media import storage as S

FINISH = "finish"   # under local_root: the tables the finishing steps read (refreshed on each build)
FETCHED = "fetched"   # under local_root: a finished build as `vdata report|card|export|push|rethreshold URL` read it
# what the commands that read a finished build find in its folder: the tables of every level (and their
# card: `vdata card` keeps its prose); never the videos
BUILD_TABLES = ("samples", "haystack", "clips", "videos", "rejects")
REPORT_FILES = ("report.html", "report.md", "report_assets")


class RemoteBuildError(ValueError):
    """A build at a URL that cannot be read (no manifest there, or the store cannot be reached); one line."""


def local_root(output_url: str, configured: str | None = None) -> str:
    """This machine's folder for an output URL: `storage.local_root` (expanded) or one named after the
    URL under ~/.cache/vdata/remote (its hash keeps two URLs with the same tail apart)."""
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", output_url.split("://", 1)[-1]).strip("_")[-60:]
    digest = hashlib.blake2b(output_url.encode(), digest_size=4).hexdigest()
    return os.path.join(os.path.expanduser("~"), ".cache", "vdata", "remote", f"{slug}-{digest}")


def mirror_tables(output_url: str, local_dir: str, subdirs: list[str], folder: str = FINISH) -> str:
    """A local copy of the output's manifest and Parquet parts (rows and rejects: metadata, never the
    videos), for the steps that read a finished build from a folder; returns that folder."""
    dest = os.path.join(local_dir, folder)
    S.rmtree(dest)   # parts an earlier build left there may be gone from the bucket
    os.makedirs(dest)
    for sub in subdirs:
        for name in S.listdir(S.join(output_url, sub)):
            if name.endswith(".parquet"):
                S.get_file(S.join(output_url, sub, name), os.path.join(dest, sub, name))
    manifest = S.join(output_url, "manifest.json")
    if S.exists(manifest):
        S.get_file(manifest, os.path.join(dest, "manifest.json"))
    return dest


def upload(local: str, url: str) -> list[str]:
    """Put a local file or folder at `url`; returns the URLs written."""
    if os.path.isdir(local):
        return S.put_tree(local, url)
    with open(local, "rb") as f:
        S.write_bytes(url, f.read())
    return [url]


def readable_build(location: str) -> str:
    """The folder that `vdata report|card|export|push|rethreshold` read for OUT_DIR: a local folder as it is;
    a URL (a build whose output.dir is object storage) mirrored to this machine first (its manifest, card
    and tables: see mirror_tables), under its local_root. Raises RemoteBuildError, one line, when the URL
    holds no finished build or cannot be read."""
    if not S.is_remote(location):
        return location
    manifest = S.join(location, "manifest.json")
    try:
        if not S.exists(manifest):
            raise RemoteBuildError(f"{location}: no manifest.json there, so not a finished build (a build writes it "
                                   "last); run `vdata build` on its config to finish it")
        local = mirror_tables(location, local_root(location), list(BUILD_TABLES), folder=FETCHED)
        if S.exists(S.join(location, "README.md")):   # the card's prose, which `vdata card` keeps
            S.get_file(S.join(location, "README.md"), os.path.join(local, "README.md"))
    except RemoteBuildError:
        raise
    except Exception as e:   # the store's own errors (no credentials, no network, no bucket): said in one line
        detail = str(e).splitlines()[0] if str(e) else "no detail"
        raise RemoteBuildError(f"{location}: cannot be read ({type(e).__name__}: {detail}); check the endpoint and "
                               "credentials (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...)") from None
    return local


def put_report(local: str, url: str) -> list[str]:
    """Put the report a local folder holds (report.html, report.md and their plots) at the build's URL, in
    place of the one there."""
    S.rmtree(S.join(url, "report_assets"))
    return [u for name in REPORT_FILES if os.path.exists(os.path.join(local, name))
            for u in upload(os.path.join(local, name), S.join(url, name))]


def put_card(card: str, local: str, url: str) -> list[str]:
    """Put a build's card (README.md) at its URL, with the empty tables its configs name (`_card/`)."""
    written = upload(card, S.join(url, "README.md"))
    if os.path.isdir(os.path.join(local, "_card")):
        written += upload(os.path.join(local, "_card"), S.join(url, "_card"))
    return written


class BuildLocation(click.ParamType):
    """OUT_DIR of the commands that read a finished build: a local folder that exists, or a URL (checked
    for a known scheme and its package here; read by `readable_build`)."""
    name = "directory"

    def convert(self, value, param, ctx):
        if not S.is_remote(str(value)):
            return click.Path(exists=True, file_okay=False).convert(value, param, ctx)
        try:
            S.check_backend(str(value))
        except S.StorageError as e:
            self.fail(str(e), param, ctx)
        return str(value)
