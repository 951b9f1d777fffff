"""Object storage and URLs: one thin layer over fsspec for inputs, the output directory and its ledger.

A location is either a local path or a URL: `s3://` (s3fs), `gs://` / `gcs://` (gcsfs), `hf://`
(huggingface_hub's HfFileSystem) or `http(s)://` (fsspec's HTTP filesystem; read-only: inputs, never
an output). Every function here takes either and does the same thing to both, so the runner, the sink
and the checkpoint code have one code path. Local paths keep plain `os` calls (their behaviour, atomic
`os.replace` included, is unchanged); URLs go through the fsspec filesystem of their scheme.

Why writes to a URL need no temp-and-rename: an object store has no rename, but one PUT is atomic: the
object appears whole or not at all. The ledger's order (part first, ledger entry second; see
pipelines/checkpoint.py) is what makes a commit, and that order holds on S3 as it does on a disk.

Options (endpoint, keys) are per process: the driver calls `configure()` with the config's `storage:`
section, and everything that runs on a worker (the sink, the stage tasks) carries the same options and
calls `configure()` there. Without options each filesystem reads its usual environment (AWS_* for S3,
GOOGLE_APPLICATION_CREDENTIALS for GCS, HF_TOKEN for the hub).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import posixpath
import re
import shutil
import uuid

# scheme -> (module it needs, pip extra that installs it, fsspec protocol whose options apply)
BACKENDS = {
    "s3": ("s3fs", "s3", "s3"), "s3a": ("s3fs", "s3", "s3"),
    "gs": ("gcsfs", "gcs", "gcs"), "gcs": ("gcsfs", "gcs", "gcs"),
    "hf": ("huggingface_hub", "hf", "hf"),
    "http": ("aiohttp", "http", "http"), "https": ("aiohttp", "http", "http"),
}
READ_ONLY = frozenset({"http", "https"})   # no PUT, no listing: inputs named one by one
_LISTING_CACHED = frozenset({"s3", "s3a", "gs", "gcs"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_OPTIONS: dict[str, dict] = {}


class StorageError(ValueError):
    """A location that cannot be used as asked (unknown scheme, missing package, read-only URL)."""


def scheme(path: str) -> str | None:
    """The URL scheme of `path` (lower case), or None for a local path (`file://` counts as local)."""
    m = _SCHEME.match(str(path))
    if not m or m.group(1).lower() == "file":
        return None
    return m.group(1).lower()


def is_remote(path: str) -> bool:
    return scheme(path) is not None


def local_path(path: str) -> str:
    """A local path as such (a `file://` URL without its scheme)."""
    return path[len("file://"):] if str(path).startswith("file://") else path


def configure(options: dict[str, dict] | None) -> None:
    """Set this process's fsspec options per protocol (`{"s3": {"endpoint_url": ..., "key": ...}}`)."""
    wanted = {k: dict(v) for k, v in (options or {}).items()}
    if wanted == _OPTIONS:   # every stage call sets the same: the in-process build's threads never see it empty
        return
    _OPTIONS.clear()
    _OPTIONS.update(wanted)


# keyword arguments every fsspec filesystem takes (fsspec's instance cache and listings cache)
_FSSPEC_KWARGS = frozenset({"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths"})


def option_problems(protocol: str, given: dict) -> list[str]:
    """The keys of `given` (a `storage.<protocol>.options` section) that the protocol's filesystem does not
    take, each as a problem naming the key: s3fs hands the keys it does not know to botocore's session, which
    rejects them only at the first request, deep inside the build. Nothing is said of a filesystem that is
    not installed, or that takes any keyword."""
    import inspect

    if not given:
        return []
    module = {"s3": "s3fs", "gcs": "gcsfs", "hf": "huggingface_hub"}[protocol]
    if importlib.util.find_spec(module) is None:
        return []
    import fsspec

    takes = inspect.signature(fsspec.get_filesystem_class(protocol).__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in takes.values()):
        if protocol != "s3":   # gcsfs and HfFileSystem pass what they do not know to fsspec, which takes any
            return []
        from aiobotocore.session import AioSession   # where s3fs sends the keys it does not name

        takes = {**takes, **inspect.signature(AioSession.__init__).parameters}
    import difflib

    known = {name for name, p in takes.items() if name != "self" and p.kind is not p.VAR_KEYWORD} | _FSSPEC_KWARGS
    out = []
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            out.append(f"unknown key {key!r}: not an argument of the {module} filesystem"
                       + (f" (did you mean {close[0]!r}?)" if close else ""))
    return out


def options() -> dict[str, dict]:
    """This process's options (to hand to a worker, which calls `configure` with them)."""
    return {k: dict(v) for k, v in _OPTIONS.items()}


def check_backend(url: str) -> None:
    """Raise StorageError when `url`'s scheme is unknown or its filesystem package is not installed."""
    s = scheme(url)
    if s is None:
        return
    if s not in BACKENDS:
        raise StorageError(f"{url!r}: unknown URL scheme {s}:// (supported: "
                           f"{', '.join(sorted(f'{k}://' for k in BACKENDS))})")
    module, extra, _ = BACKENDS[s]
    if importlib.util.find_spec(module) is None:
        raise StorageError(f"{url!r}: {s}:// needs the {module} package (pip install 'vdata[{extra}]')")


def check_writable(url: str) -> None:
    check_backend(url)
    if scheme(url) in READ_ONLY:
        raise StorageError(f"{url!r}: {scheme(url)}:// is read-only (inputs only); write to a folder, s3://, gs:// or hf://")


def filesystem(url: str):
    """(fsspec filesystem, path inside it) for a URL, with this process's options for its protocol."""
    import fsspec

    check_backend(url)
    s = scheme(url)
    kwargs = dict(_OPTIONS.get(BACKENDS[s][2], {}))
    if s in _LISTING_CACHED:
        # parts and ledger entries appear while the run lists them: a cached listing would miss them
        kwargs.setdefault("use_listings_cache", False)
    return fsspec.core.url_to_fs(url, **kwargs)


def _url(fs, path: str) -> str:
    return fs.unstrip_protocol(path)


def join(base: str, *parts: str) -> str:
    return posixpath.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def exists(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(local_path(path))
    fs, p = filesystem(path)
    return fs.exists(p)


def isfile(path: str) -> bool:
    if not is_remote(path):
        return os.path.isfile(local_path(path))
    fs, p = filesystem(path)
    return fs.isfile(p)


def isdir(path: str) -> bool:
    if not is_remote(path):
        return os.path.isdir(local_path(path))
    if scheme(path) in READ_ONLY:
        return False
    fs, p = filesystem(path)
    return fs.isdir(p)


def listdir(path: str) -> list[str]:
    """The names directly under `path` (files and folders); [] when it does not exist."""
    if not is_remote(path):
        p = local_path(path)
        return os.listdir(p) if os.path.isdir(p) else []
    fs, p = filesystem(path)
    try:
        entries = fs.ls(p, detail=False)
    except FileNotFoundError:
        return []
    base = p.rstrip("/")
    return [posixpath.basename(e.rstrip("/")) for e in entries if e.rstrip("/") != base]


def find(path: str) -> list[str]:
    """Every file under `path`, recursively, as full URLs (sorted)."""
    fs, p = filesystem(path)
    return sorted(_url(fs, f) for f in fs.find(p))


def find_relative(folder: str) -> list[tuple[str, str]]:
    """(sub-folder relative to `folder`, "" for its top; file name) of every file under a URL's folder (one
    recursive listing, paged by the store), sorted. The folder is compared without its scheme: an s3a://
    folder lists as s3://."""
    base = folder.split("://", 1)[1].rstrip("/") + "/"
    out = []
    for url in find(folder):
        inside = url.split("://", 1)[-1]
        if inside.startswith(base):
            rel, _, name = inside[len(base):].rpartition("/")
            out.append((rel, name))
    return sorted(out)


def siblings(url: str) -> list[str]:
    """The objects beside `url` named `<its stem>.<anything>` (its sidecars: subtitles, yt-dlp's `.info.json`,
    `.description`, ...), as URLs, `url` itself left out. One listing of the folder, filtered by the store
    where it takes a prefix (s3fs, gcsfs): a folder of 10^4 videos is not listed once per video."""
    if scheme(url) in READ_ONLY:   # an http(s) folder cannot be listed
        return []
    fs, p = filesystem(url)
    folder, name = posixpath.split(p.rstrip("/"))
    stem = os.path.splitext(name)[0] + "."
    try:
        try:
            found = fs.find(folder, maxdepth=1, prefix=stem)
        except TypeError:   # a filesystem whose find takes no prefix
            found = fs.find(folder, maxdepth=1)
    except (OSError, NotImplementedError):   # gone, or no permission to list: as if it had no sidecars
        return []
    return sorted(_url(fs, f) for f in found if posixpath.basename(f).startswith(stem) and f.rstrip("/") != p)


def glob(pattern: str) -> list[str]:
    """The files matching a glob (`**` recurses), as full URLs (sorted)."""
    fs, p = filesystem(pattern)
    return sorted(_url(fs, f) for f in fs.glob(p) if not fs.isdir(f))


def info(path: str) -> dict:
    """Size and a change marker (ETag or mtime) of a file; FileNotFoundError when missing."""
    if not is_remote(path):
        st = os.stat(local_path(path))
        return {"size": st.st_size, "version": str(st.st_mtime_ns)}
    fs, p = filesystem(path)
    entry = fs.info(p)
    version = entry.get("ETag") or entry.get("etag") or entry.get("md5Hash") or entry.get("last_commit") \
        or entry.get("LastModified") or entry.get("mtime") or ""
    return {"size": entry.get("size"), "version": str(version)}


def info_all(paths: list[str], known: dict[str, dict | Exception] | None = None) -> dict[str, dict | Exception]:
    """`info` of each path once: {path: its info, or the error `info` raised}; those in `known` are not
    asked again. A build reads it once for both of its uses (ingest's duplicate check wants sizes, the
    resume fingerprints sizes and versions): for a bucket that is one HEAD per object instead of two."""
    def one(path: str) -> dict | Exception:
        try:
            return info(path)
        except Exception as e:   # the callers tell a missing file from one that cannot be stat-ed
            return e

    known = known or {}
    unique = [p for p in dict.fromkeys(paths) if p not in known]
    if any(is_remote(p) for p in unique):
        from concurrent.futures import ThreadPoolExecutor

        # a HEAD each: many at once, so that 10^5 objects take a minute, not an hour
        with ThreadPoolExecutor(32) as pool:
            return {**known, **dict(zip(unique, pool.map(one, unique)))}
    # a stat each: a pool's futures cost 50 us a path, ten times the stat (10 s for 200k clips)
    return {**known, **{p: one(p) for p in unique}}


def makedirs(path: str) -> None:
    """A local folder is made; an object store has no folders (a prefix exists once it holds an object)."""
    if not is_remote(path):
        os.makedirs(local_path(path), exist_ok=True)


def remove(path: str) -> None:
    if not is_remote(path):
        os.remove(local_path(path))
        return
    fs, p = filesystem(path)
    fs.rm_file(p)


def rmtree(path: str) -> None:
    """Remove a folder and everything under it; nothing when it does not exist."""
    if not is_remote(path):
        shutil.rmtree(local_path(path), ignore_errors=True)
        return
    fs, p = filesystem(path)
    try:
        fs.rm(p, recursive=True)
    except FileNotFoundError:
        pass


def open_file(path: str, mode: str = "rb"):
    if not is_remote(path):
        return open(local_path(path), mode)
    fs, p = filesystem(path)
    return fs.open(p, mode)


def read_bytes(path: str) -> bytes:
    with open_file(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode()


def write_bytes(path: str, data: bytes) -> None:
    """Write a file whole: locally through a temp file and `os.replace`, remotely as one PUT."""
    if not is_remote(path):
        p = local_path(path)
        tmp = f"{p}.{uuid.uuid4().hex[:6]}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
        return
    check_writable(path)
    fs, p = filesystem(path)
    fs.pipe_file(p, data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode())


def write_parquet(table, path: str, **kwargs) -> None:
    """A Parquet file written whole (see write_bytes): readers never see half of one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not is_remote(path):
        p = local_path(path)
        tmp = p + ".tmp"
        pq.write_table(table, tmp, **kwargs)
        os.replace(tmp, p)
        return
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **kwargs)
    write_bytes(path, sink.getvalue().to_pybytes())


def read_parquet(path: str, **kwargs):
    import pyarrow.parquet as pq

    if not is_remote(path):
        return pq.read_table(local_path(path), **kwargs)
    fs, p = filesystem(path)
    return pq.read_table(p, filesystem=fs, **kwargs)


def put_tree(local_dir: str, url: str) -> list[str]:
    """Upload every file under `local_dir` to the same relative paths under `url`; returns the URLs."""
    out = []
    for root, _, files in os.walk(local_dir):
        for name in files:
            src = os.path.join(root, name)
            dest = join(url, *os.path.relpath(src, local_dir).split(os.sep))
            with open(src, "rb") as f:
                write_bytes(dest, f.read())
            out.append(dest)
    return sorted(out)


def get_file(url: str, dest: str) -> str:
    """Download `url` to the local file `dest` (atomically: a reader sees the whole file or none)."""
    fs, p = filesystem(url)
    tmp = f"{dest}.{uuid.uuid4().hex[:6]}.part"
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    try:
        fs.get_file(p, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def _budget() -> int:
    return int(float(os.environ.get("VDATA_LOCAL_COPY_GB", "20")) * 2**30)


def _evict(cache_dir: str, keep: str, max_bytes: int) -> None:
    """Remove the least recently used copies until the folder holds at most `max_bytes` (never `keep`).

    A copy another worker has open stays readable (Linux frees it on close); one chosen for a row but
    not yet opened is the newest, so the last to go."""
    files = []
    for root, _, names in os.walk(cache_dir):
        for name in names:
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= max_bytes:
            break
        if path != keep and not path.endswith(".part"):
            try:
                os.remove(path)
                total -= size
            except OSError:
                pass


def local_copy(url: str, cache_dir: str, max_bytes: int | None = None) -> str:
    """A local file with the bytes of `url`, downloaded once per node into `cache_dir`.

    Decoders (ffmpeg, PyAV, decord, OpenCV) want a seekable local file; ffmpeg could read http(s)
    itself, but not s3:// or hf://, and a seek-heavy decode over HTTP would re-request ranges for every
    stage. The copy is named by the URL and its version (size + ETag or mtime), so a changed object is
    fetched again, and a second stage on the same node finds the first one's copy. The folder is kept
    under `max_bytes` (default: $VDATA_LOCAL_COPY_GB, 20 GiB) by dropping the least recently used
    copies, so a dataset larger than the disk streams through it. A local path is returned unchanged.
    """
    if not is_remote(url):
        return local_path(url)
    meta = info(url)
    key = hashlib.blake2b(f"{url}|{meta['size']}|{meta['version']}".encode(), digest_size=16).hexdigest()
    ext = os.path.splitext(posixpath.basename(url.split("?")[0]))[1][:12]
    dest = os.path.join(cache_dir, key[:2], key + ext)
    if os.path.exists(dest):
        os.utime(dest)   # recently used: the last to be evicted
        return dest
    get_file(url, dest)
    _evict(cache_dir, dest, _budget() if max_bytes is None else max_bytes)
    return dest
