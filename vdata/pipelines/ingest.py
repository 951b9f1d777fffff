"""Ingest: turn the config's `input:` list into video rows (source_uri, path, source_meta).

Runs on the driver: listing files is cheap and the row count feeds progress bars. Content hashing
(the video id) happens in the probe stage, on the workers, except for files whose exact size another
input shares: those are hashed here, so that the same content under two paths (a copy, a link) is
caught before it makes two videos with one id (see `find_duplicates`).

Directories are searched for the config's `extensions`; by default the video containers and, for
pipelines that need no frames (ASR over podcasts or lectures), the audio ones. Hidden entries below the
folder (`.name`, as `datasets` skips them) are not searched: macOS leaves a `._clip.mp4` of metadata
beside every video it copies to a shared or exFAT drive, which would make one reject per video. Videos that arrive as bytes (HF datasets)
are written once to `<output>/_media/<content hash>.<ext>` so workers can read them by path.

Inputs may be URLs (vdata/media/storage.py): `path: s3://bucket/videos` (a folder: searched like a local
one), `glob: "s3://bucket/videos/**/*.mp4"`, one file named by `path: https://host/video.mp4`, or a
manifest `s3://bucket/lists/videos.csv` (its relative paths beside it), or a dataset's annotation file
and its videos folder (`manifest: s3://bucket/activitynet/train.json`, `format:`, `videos: s3://bucket/v1-3/`:
one listing of the folder finds them all). Their rows keep the URL as `path`; a stage that decodes gets a
local copy (pipelines/execution.py).
"""
from __future__ import annotations

import glob as globlib
import json
import os
import posixpath
import stat
import tempfile
import unicodedata
from pathlib import Path

from vdata.media import storage as S
from vdata.media.archives import extract_members
from vdata.media.hashing import content_id
from vdata.schemas import records as R
from vdata.schemas.annotation_formats import (FOLDER_FORMATS, FormatError, find_video, merge_fallback_meta,
                                              read_annotation_file, video_files)
from vdata.schemas.config import BuildConfig, ConfigError, InputSpec
from vdata.stages.base import Reject

from .hf_input import from_hf
from .input_rows import source_row
from .manifest_tables import SUFFIXES, ManifestError, guess_path_column, read_manifest

AUDIO_EXTENSIONS = (".wav", ".mp3", ".m4a", ".flac", ".ogg", ".opus", ".aac")
# how the path of an annotation file's video that is not in its folder ends (`<folder>/<id>.*`): it names
# what was looked for, and ingest rejects it missing_file (retried when the build runs again)
NOT_FOUND = ".*"
_MISSING = object()   # find_duplicates: the size of a URL with nothing there


def _is_media(p: str, spec: InputSpec) -> bool:
    extensions = list(spec.extensions)
    if "extensions" not in spec.model_fields_set:   # the default list: audio-only inputs too
        extensions += AUDIO_EXTENSIONS
    return p.lower().endswith(tuple(e.lower() for e in extensions))


def _listed(p: str) -> bool:
    """Whether a folder's or a glob's entry is an input: a regular file, and also (to be said as rejects, see
    `find_duplicates`) a link to nothing and a special file (a FIFO, a socket, a device), never a folder."""
    try:
        return not stat.S_ISDIR(os.stat(p).st_mode)
    except OSError:
        return os.path.islink(p)   # a link to nothing


def special_file(p: str) -> str | None:
    """What a local path is when it is no regular file to read (a named pipe, a socket, a device), from its
    stat alone: opening a FIFO blocks until something writes into it, so it is never opened. None otherwise."""
    try:
        mode = os.stat(p).st_mode
    except OSError:
        return None
    for test, what in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return None


def _hidden(relative: str) -> bool:
    """Whether a path below an input folder passes through a hidden file or folder (`.name`)."""
    return any(part.startswith(".") for part in relative.split("/") if part)


def _from_path(spec: InputSpec, cfg: BuildConfig, where: str, untaken: dict[str, int] | None = None) -> list[dict]:
    """The videos a `path:` names: a file, or the media files of a folder (or bucket prefix); `untaken`, when
    given (`vdata validate`), counts by extension the folder's files it leaves, from the same listing."""
    p = cfg.resolve(spec.path)
    if S.is_remote(p):
        return _from_url(spec, p, cfg, where, untaken)
    if os.path.isfile(p) or special_file(p):
        return [source_row(p, p)]   # an explicit file is taken whatever its extension: probe judges it
    if os.path.isdir(p):
        # a link to nothing and a FIFO are listed too (find_duplicates makes them rejects): they went unsaid
        listing = [(str(q), q.relative_to(p).as_posix()) for q in Path(p).rglob("*") if _listed(str(q))]
        return [source_row(f, f) for f in _taken(listing, spec, cfg, p, untaken)]
    if globlib.has_magic(spec.path):
        raise ConfigError(f"{where}.path: {spec.path!r} does not exist; for a pattern write `glob: {spec.path!r}`")
    raise ConfigError(f"{where}.path: {spec.path!r} does not exist")


# what sits beside videos and is not one (subtitles, downloaders' metadata and thumbnails, lists, partial downloads)
_NOT_VIDEO = frozenset(".srt .vtt .ass .ssa .sub .idx .sbv .ttml .lrc .srv1 .srv2 .srv3 .json3 .json .jsonl .txt .csv "
                       ".tsv .parquet .xml .nfo .md .yaml .yml .html .description .jpg .jpeg .png .webp .bmp .part "
                       ".ytdl .temp .tmp .db .ds_store .torrent .sha256 .md5 .log .pdf .zip .tar .gz".split())


def _taken(listing: list[tuple[str, str]], spec: InputSpec, cfg: BuildConfig, root: str,
           untaken: dict[str, int] | None) -> list[str]:
    """The media files of a folder's listing ((path, path relative to `root`) pairs), sorted: hidden entries
    and the build's own output left out. Into `untaken`: the extensions of the others that are not what sits
    beside videos anyway (a `.dv` tape or a `.rmvb` left out of `extensions` would otherwise go unseen)."""
    visible = _not_output(sorted(path for path, relative in listing if not _hidden(relative)), cfg, root)
    if untaken is not None:
        for path in visible:
            ext = os.path.splitext(path)[1].lower()
            if ext and ext not in _NOT_VIDEO and not _is_media(path, spec):
                untaken[ext] = untaken.get(ext, 0) + 1
    return [path for path in visible if _is_media(path, spec)]


def _not_output(paths: list[str], cfg: BuildConfig, root: str) -> list[str]:
    """`paths`, listed under `root`, without those inside the build's own output where `root` holds it (a
    folder or glob input that holds it would take its exports' and `_media/` videos for inputs on the next
    run). An input folder inside the output, or the output itself, keeps all its files."""
    output = cfg.resolve(cfg.output.dir)
    remote = S.is_remote(output)
    inside = output.rstrip("/") + "/" if remote else os.path.join(os.path.abspath(output), "")
    top = root.rstrip("/") + "/" if S.is_remote(root) else os.path.join(os.path.abspath(root), "")
    if remote != S.is_remote(root) or top.startswith(inside):
        return paths
    return [f for f in paths if not (f if remote else os.path.abspath(f)).startswith(inside)]


def _glob_root(pattern: str) -> str:
    """The folder a glob searches: its path up to the first part with a wildcard."""
    parts = pattern.split("/")
    fixed = next((i for i, part in enumerate(parts) if globlib.has_magic(part)), len(parts) - 1)
    return "/".join(parts[:fixed]) or "/"


def _from_url(spec: InputSpec, url: str, cfg: BuildConfig, where: str, untaken: dict[str, int] | None) -> list[dict]:
    """A URL named by `path`: one object, or a folder (a prefix) searched for media like a local one."""
    try:
        if S.isfile(url):
            return [source_row(url, url)]
        if S.isdir(url):
            root = url.rstrip("/")
            listing = [(f, f[len(root):] if f.startswith(root) else f.rsplit("/", 1)[-1]) for f in S.find(url)]
            return [source_row(f, f) for f in _taken(listing, spec, cfg, url, untaken)]
    except (OSError, ValueError) as e:   # no such bucket, no permission, an unreachable endpoint
        raise ConfigError(f"{where}.path: {spec.path!r} cannot be listed: {type(e).__name__}: {e}") from None
    raise ConfigError(f"{where}.path: {spec.path!r} does not exist")


def _from_glob(spec: InputSpec, cfg: BuildConfig, where: str = "input") -> list[dict]:
    pattern = cfg.resolve(spec.glob)
    if S.is_remote(pattern):
        if S.scheme(pattern) in S.READ_ONLY:
            raise ConfigError(f"{where}.glob: {S.scheme(pattern)}:// cannot be listed; name each file with path:")
        try:
            return [source_row(f, f) for f in _not_output(S.glob(pattern), cfg, _glob_root(pattern))]
        except (OSError, ValueError) as e:
            raise ConfigError(f"{where}.glob: {spec.glob!r} cannot be listed: {type(e).__name__}: {e}") from None
    found = sorted(globlib.glob(pattern, recursive=True))
    return [source_row(f, f) for f in _not_output(found, cfg, _glob_root(pattern))
            if _listed(f)]   # a link to nothing, a FIFO: a reject


def _from_manifest(spec: InputSpec, cfg: BuildConfig, where: str, media_dir: str | None = None) -> list[dict]:
    """One row per record of a CSV / TSV / JSON Lines / JSON / Parquet manifest (manifest_tables.py); a
    record that cannot be read, or names no file, is a reject row with its line. `media_dir`: where videos
    inside archives are extracted (None in preflight, which only lists: the archive stands for them)."""
    p = cfg.resolve(spec.manifest)
    remote = S.is_remote(p)
    try:
        found = S.isfile(p) if remote else os.path.isfile(p)
    except (OSError, ValueError) as e:   # no such bucket, no permission, an unreachable endpoint
        raise ConfigError(f"{where}.manifest: {spec.manifest!r} cannot be read: {type(e).__name__}: {e}") from None
    if spec.format in FOLDER_FORMATS:
        if not S.isdir(p):
            raise ConfigError(f"{where}.manifest: {spec.format} reads the folder its downloader wrote; "
                              f"{spec.manifest!r} is not one")
        return _from_annotation_file(spec, cfg, where, p, media_dir)
    if not found:
        raise ConfigError(f"{where}.manifest: {spec.manifest!r} does not exist")
    if spec.format is not None:
        return _from_annotation_file(spec, cfg, where, p, media_dir)
    if not p.lower().endswith(SUFFIXES):
        raise ConfigError(f"{where}.manifest: use a {', '.join(SUFFIXES)} file (got {spec.manifest!r})")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            table = read_manifest(S.get_file(p, os.path.join(tmp, os.path.basename(p))) if remote else p)
    except (ManifestError, OSError, ValueError) as e:
        raise ConfigError(f"{where}.manifest: {spec.manifest!r} cannot be read: {e}") from None
    if spec.path_column not in table.columns:
        guess = guess_path_column(table.columns)
        hint = f"; set {where}.path_column: {guess}" if guess else ""
        raise ConfigError(f"{where}.path_column: manifest has no column {spec.path_column!r} "
                          f"(columns: {', '.join(table.columns)}){hint}")
    base = p.rsplit("/", 1)[0] if remote else str(Path(p).parent)   # relative paths: beside the manifest
    rows = []
    for i, (at, rec) in enumerate(table.records):
        # #<record index, from 0>: the source_uri earlier builds gave a record, kept for every record, a
        # rejected one too; text that never became a record is #line<n> (the file's line, from 1)
        uri = f"{p}#{i}"
        raw = rec.pop(spec.path_column, None)
        if raw is None or not str(raw).strip():
            rows.append(_manifest_reject(uri, "manifest_row_malformed", f"{at} names no file in {spec.path_column!r} "
                                         f"(record #{i})", json.dumps(rec, default=str)[:500]))
            continue
        raw, problem = _location(str(raw).strip())
        if problem:
            rows.append(_manifest_reject(uri, "unsupported_url", f"{at}: {problem}", raw))
            continue
        path = raw if os.path.isabs(raw) or S.is_remote(raw) else _beside(base, raw, remote)
        rows.append(source_row(uri, path if S.is_remote(path) else as_stored(path), rec))
    for problem in table.problems:
        rows.append(_manifest_reject(f"{p}#{problem.where.replace(' ', '')}", problem.reason, problem.message,
                                     problem.raw))
    return rows


def as_stored(path: str) -> str:
    """`path`, or the same name in the other Unicode normal form where only that one is on disk: a manifest
    typed or generated in NFC names files that macOS (and zips made there) stored in NFD, and the two look the
    same in every message (outside check h21: "no such file" for a file `ls` shows)."""
    if path.isascii() or os.path.exists(path):   # normal forms differ only in non-ASCII names: no second stat
        return path
    for form in ("NFD", "NFC"):
        other = unicodedata.normalize(form, path)
        if other != path and os.path.exists(other):
            return other
    return path


def _manifest_reject(uri: str, reason: str, message: str, record: str) -> dict:
    return {**source_row(uri, uri), R.REJECT_REASON: reason, R.REJECT_MESSAGE: message, R.REJECT_DETAIL: {"record": record}}


def _location(raw: str) -> tuple[str, str | None]:
    """(the local path or URL a manifest row names, None), or (the row's text, why no run can read it). A
    `file:` URL (`file:///data/a%20b.mp4`, as Spark, pyarrow and `Path.as_uri()` write them) is its local
    path; a URL of an unknown scheme is a reject said once, not a missing_file that every resume retries."""
    from urllib.parse import unquote, urlsplit

    if S.is_remote(raw):
        try:
            S.check_backend(raw)
        except S.StorageError as e:
            return raw, str(e)
    if not raw.lower().startswith("file:"):
        return raw, None
    parts = urlsplit(raw)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        return raw, f"{raw!r} names no file on this machine (a local file's URL is file:///path/to/video.mp4)"
    return unquote(parts.path), None


def _beside(base: str, relative: str, remote: bool) -> str:
    """`relative` (which may climb with ..) from the folder `base`, a URL's or a local one."""
    if not remote:
        return os.path.join(base, relative)
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{posixpath.normpath(posixpath.join(rest, relative))}"


def _from_annotation_file(spec: InputSpec, cfg: BuildConfig, where: str, p: str, media_dir: str | None) -> list[dict]:
    """A labelled dataset's annotation file: one row per video, found by id under `videos`; its annotations
    go in source_meta for the `annotations` stage. A video not found keeps a path that names what was
    looked for, so ingest rejects it `missing_file`; a record tied to no video is an ingest reject row."""
    # default: the downloader's folder itself, or the annotation file's folder (os.path.dirname takes a URL too)
    videos = cfg.resolve(spec.videos) if spec.videos is not None else p if spec.format in FOLDER_FORMATS else \
        os.path.dirname(p)
    try:
        is_folder = S.isdir(videos)
    except (OSError, ValueError) as e:   # no such bucket, no permission, an unreachable endpoint
        raise ConfigError(f"{where}.videos: {spec.videos!r} cannot be read: {type(e).__name__}: {e}") from None
    if not is_folder:
        raise ConfigError(f"{where}.videos: {spec.videos!r} is not a folder")
    try:
        parsed = read_annotation_file(spec.format, p)
    except (FormatError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}.manifest: {spec.manifest!r} is not a {spec.format} file: {e}") from None
    except OSError as e:
        raise ConfigError(f"{where}.manifest: {spec.manifest!r} cannot be read: {type(e).__name__}: {e}") from None
    rows, fell_back = [], {}   # fell_back: the row of each video that records fell back to, by its uri
    files = video_files(videos)
    in_archives = [r.member for r in parsed.videos if r.member]
    extracted, failed = extract_members(in_archives, media_dir) if in_archives and media_dir else ({}, {})
    def dataset_row(video, path: str) -> dict:
        return source_row(f"{p}#{video.video_id}", path, {"dataset": spec.format, "dataset_video_id": video.video_id,
                                                         **video.meta})

    for record in parsed.videos:
        if record.member in failed:   # its uri as its path: the rows of one archive do not share one path
            uri = f"{p}#{record.video_id}"
            rows.append({**dataset_row(record, uri), R.REJECT_REASON: "archive_member_unreadable",
                         R.REJECT_MESSAGE: f"{record.member[1]} in {record.member[0]} cannot be extracted: "
                                           f"{failed[record.member]}", R.REJECT_DETAIL: {"member": record.member[1]}})
            continue
        if record.member:   # preflight (no media_dir) lists the archive in its place
            rows.append(dataset_row(record, extracted.get(record.member, record.member[0])))
            continue
        found = find_video(videos, record, spec.extensions, files)
        # the record's video; where it is not there but some of its fallbacks are, all of those instead,
        # a missing one named in the folder its found siblings are in
        chosen = [(record, found)]
        if not found and record.fallbacks:
            instead = [(f, find_video(videos, f, spec.extensions, files)) for f in record.fallbacks]
            chosen = instead if any(path for _, path in instead) else chosen
        beside = next((path.rsplit("/", 1)[0] for _, path in chosen if path), S.join(videos, record.folders[0]))
        fallback = chosen[0][0] is not record
        for video, path in chosen:
            row = dataset_row(video, path or S.join(beside, (video.stems or (video.video_id,))[0] + NOT_FOUND))
            uri = row[R.SOURCE_URI]
            if fallback and uri in fell_back:   # another clip of a video downloaded whole: one row (h24 F11)
                merged = merge_fallback_meta(json.loads(rows[fell_back[uri]][R.SOURCE_META]), json.loads(row[R.SOURCE_META]))
                rows[fell_back[uri]][R.SOURCE_META] = json.dumps(merged, default=str)
                continue
            if fallback:
                fell_back[uri] = len(rows)
            rows.append(row)
    for problem in parsed.problems:
        uri = f"{p}#{problem.where}"
        rows.append({**source_row(uri, uri), R.REJECT_REASON: problem.reason, R.REJECT_MESSAGE: problem.message,
                     R.REJECT_DETAIL: {"record": problem.raw, "format": spec.format}})
    return rows


def discover(cfg: BuildConfig, media_dir: str, listed: dict[int, list[dict]] | None = None) -> list[dict]:
    """Every input's rows, the same source once. `listed`: inputs preflight has listed already (Plan.listed,
    taken out of it here): a 650k-row Kinetics file is read and matched against its folder once, not twice."""
    rows: list[dict] = []
    for i, spec in enumerate(cfg.input):
        where, start = f"input[{i}]", len(rows)
        if listed and i in listed:
            rows += listed.pop(i)
        elif spec.path is not None:
            rows += _from_path(spec, cfg, where)
        elif spec.glob is not None:
            rows += _from_glob(spec, cfg, where)
        elif spec.manifest is not None:
            rows += _from_manifest(spec, cfg, where, media_dir)
        else:
            rows += from_hf(spec, cfg, where, media_dir)
        if spec.split is not None:
            rows[start:] = [_with_split(r, spec.split) for r in rows[start:]]
    # the same file listed twice is processed once; listed again under another source (a second manifest row
    # for it, with its own labels) it is a duplicate_video reject naming the first, so that nothing goes unsaid
    first: dict[str, str] = {}
    unique = []
    for r in rows:
        if r[R.PATH] not in first:
            first[r[R.PATH]] = r[R.SOURCE_URI]
            unique.append(_utf8_path(r, media_dir))
        elif r[R.SOURCE_URI] != first[r[R.PATH]] and not r.get(R.REJECT_REASON):
            unique.append({**_utf8_path(r, media_dir), R.REJECT_REASON: "duplicate_video",
                           R.REJECT_DETAIL: {"same_file_as": first[r[R.PATH]]},
                           R.REJECT_MESSAGE: f"the same file as input {first[r[R.PATH]]} (listed again): processed once"})
    return unique


def _with_split(row: dict, split: str) -> dict:
    """The row with its input's `split:` in source_meta (over any split the source itself named)."""
    if row.get(R.REJECT_REASON):
        return row
    meta = json.loads(row[R.SOURCE_META]) if row[R.SOURCE_META] else {}
    return {**row, R.SOURCE_META: json.dumps({**(meta if isinstance(meta, dict) else {"value": meta}), "split": split},
                                             default=str)}


def _utf8_path(row: dict, media_dir: str) -> dict:
    """A file whose name is not UTF-8 (an old Windows or Samba archive: 'caf\\xe9.mp4' in Latin-1) cannot
    be written to Parquet, and crashed the build. It is read through a link with a UTF-8 name under
    `<output>/_media/`; its source_uri shows the name with the odd bytes escaped. Where the output is
    on object storage, no link can be made there: the row is a reject that says to rename the file."""
    path = row[R.PATH]
    try:
        path.encode("utf-8")
        return row
    except UnicodeEncodeError:
        pass
    import hashlib

    shown = os.fsencode(path).decode("utf-8", "backslashreplace")
    if S.is_remote(media_dir):
        return {**source_row(shown, shown), R.REJECT_REASON: "path_not_utf8", R.REJECT_DETAIL: {},
                R.REJECT_MESSAGE: "the file name is not UTF-8 and the output is on object storage, where no link "
                                  "to it can be made: rename it (convmv -f latin1 -t utf8)"}
    os.makedirs(media_dir, exist_ok=True)
    ext = os.path.splitext(shown)[1]
    ext = ext if ext.isascii() else ""
    link = os.path.join(media_dir, "renamed-" + hashlib.sha1(os.fsencode(path)).hexdigest()[:16] + ext)
    if not os.path.lexists(link):
        os.symlink(os.path.abspath(path), link)
    return {**row, R.PATH: link, R.SOURCE_URI: shown}


def find_duplicates(rows: list[dict], infos: dict[str, dict | Exception] | None = None
                    ) -> tuple[list[dict], list[Reject]]:
    """Split `rows` into the inputs to process and rejects for the others: `missing_file` for a path or an
    object with nothing there (retried when the build is run again), `duplicate_video` for repeated bytes.

    Two inputs with the same bytes would get the same video id (a content hash) and so repeat each
    other's clip ids. The first one in input order (the config's `input:` order, each directory
    sorted) is kept; every later one becomes a reject naming it. Only files whose exact size another
    input shares are hashed: equal content needs equal size, and stat-ing is what listing already did.
    Rows ingest already judged (an annotation-file record tied to no video: they carry the reject
    markers) are rejects too. `infos`: `storage.info_all` of the rows' paths, where the caller has it.
    """
    judged = [Reject({k: v for k, v in r.items() if k not in R.REJECT_COLUMNS}, r[R.REJECT_REASON], r[R.REJECT_MESSAGE],
                     r.get(R.REJECT_DETAIL) or {}) for r in rows if r.get(R.REJECT_REASON)]
    rows = [r for r in rows if not r.get(R.REJECT_REASON)]
    paths = [r[R.PATH] for r in rows]
    infos = S.info_all(paths, infos)

    def size_of(path: str) -> int | object | None:
        found = infos[path]
        if isinstance(found, FileNotFoundError):
            return _MISSING
        if isinstance(found, Exception):
            return None   # a URL that cannot be stat-ed (no HEAD, no permission): judged by probe
        return found["size"]

    found = [size_of(p) for p in paths]
    missing = {i for i, n in enumerate(found) if n is _MISSING}
    sizes = {i: n for i, n in enumerate(found) if n is not None and n is not _MISSING}
    # a FIFO, a socket or a device has size 0: a stat more for those only (a FIFO is never opened, see special_file)
    special = {i: what for i, n in sizes.items() if n == 0 and not S.is_remote(paths[i])
               and (what := special_file(paths[i]))}
    by_size: dict[int, list[int]] = {}
    for i, size in sizes.items():
        by_size.setdefault(size, []).append(i)
    duplicate_of: dict[int, tuple[int, str]] = {}
    for size, indices in by_size.items():
        if len(indices) < 2 or size == 0:
            continue
        first_with: dict[str, int] = {}
        for i in indices:
            try:
                cid = content_id(rows[i][R.PATH], opener=S.open_file)
            except (OSError, ValueError):
                continue
            if cid in first_with:
                duplicate_of[i] = (first_with[cid], cid)
            else:
                first_with[cid] = i
    kept, rejects = [], []
    for i, row in enumerate(rows):
        path = row[R.PATH]
        if i in missing if S.is_remote(path) else i not in sizes and not os.path.exists(path):
            # Not sent to the workers to fail there: a batch each (a Kinetics download missing 97k of 100k
            # clips took 7 min of Ray tasks to say so). Retried on resume: the file (a link's target) may
            # have arrived since.
            link = os.readlink(path) if not S.is_remote(path) and os.path.islink(path) else None
            rejects.append(Reject(row, "missing_file", f"broken link: {path} points to {link}, which does not exist"
                                  if link else f"no such file: {path}", {R.PATH: path, R.RETRY_ON_RESUME: True,
                                                                         **({"broken_link_to": link} if link else {})}))
            continue
        if i in special:
            rejects.append(Reject(row, "not_a_file", f"{path} is {special[i]}, not a regular file: vdata reads videos "
                                  "from files only (a pipe is never opened: its read would wait for a writer)",
                                  {R.PATH: path, "file_type": special[i]}))
            continue
        if i not in duplicate_of:
            kept.append(row)
            continue
        first, cid = duplicate_of[i]
        first_uri = rows[first][R.SOURCE_URI]
        rejects.append(Reject(
            {**row, R.VIDEO_ID: cid}, "duplicate_video",
            f"same content as {first_uri} (video id {cid}, {sizes[i]} bytes): "
            f"the first of equal inputs in input order is kept",
            {"duplicate_of": first_uri, R.VIDEO_ID: cid}))
    return kept, judged + rejects


def reject_duplicates(rows: list[dict], complete: set[str], output_dir: str, rejects_dir: str, run_id: str,
                      console, infos: dict[str, dict | Exception] | None = None) -> list[dict]:
    """`find_duplicates`, with the rejects committed at once (a part and its ledger entry, so that a
    resumed run counts them done); returns the inputs to process."""
    from . import checkpoint
    from .execution import write_driver_rejects

    kept, duplicates = find_duplicates(rows, infos)
    duplicates = [d for d in duplicates if d.row[R.SOURCE_URI] not in complete]
    if duplicates:
        write_driver_rejects(rejects_dir, checkpoint.ledger_dir(output_dir), run_id, "ingest", duplicates)
        counts: dict[str, int] = {}
        for d in duplicates:
            counts[d.reason] = counts.get(d.reason, 0) + 1
        console.print(f"{len(duplicates)} input(s) rejected at ingest: "
                      + ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items())))
    return kept
