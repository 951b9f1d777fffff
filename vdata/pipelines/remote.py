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

from vdata.media import storage as S

FINISH = "finish"   # under local_root: the tables the finishing steps read (refreshed on each build)


def local_root(output_url: str, configured: str | None = None) -> str:
    """This machine's folder for an output URL: `storage.local_root` (expanded) or one named after the
    URL under ~/.cache/vdata/remote (its hash keeps two URLs with the same tail apart)."""
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", output_url.split("://", 1)[-1]).strip("_")[-60:]
    digest = hashlib.blake2b(output_url.encode(), digest_size=4).hexdigest()
    return os.path.join(os.path.expanduser("~"), ".cache", "vdata", "remote", f"{slug}-{digest}")


def mirror_tables(output_url: str, local_dir: str, subdirs: list[str]) -> str:
    """A local copy of the output's manifest and Parquet parts (rows and rejects: metadata, never the
    videos), for the steps that read a finished build from a folder; returns that folder."""
    dest = os.path.join(local_dir, FINISH)
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
