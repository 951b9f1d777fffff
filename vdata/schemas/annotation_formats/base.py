"""What every annotation-file reader shares: the records it yields, the problems it reports, the
small readers of times and spans, and how a record's video is found under `videos`.

Problems inside a record (a missing or inverted time, an empty sentence) are passed on as items so
the `annotations` stage rejects each with its reason and the item. A record that cannot be tied to a
video (a line that is not `<id> <s> <e>##<text>`, a JSON line that does not parse, a record that is
not an object) is a `RecordProblem`: ingest makes it a reject row. A file of the wrong shape as a
whole is a `FormatError` (a config error naming the input).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from vdata.media import storage as S


class FormatError(ValueError):
    """The file as a whole is not the format it was declared as."""


@dataclass
class VideoRecord:
    video_id: str
    meta: dict                                   # source_meta: the annotation kinds + the dataset's fields
    stems: tuple[str, ...] = ()                  # file names (no extension) the video may have; () = the id
    folders: tuple[str, ...] = ("",)             # sub-folders of `videos:` to look in, in order
    exact: tuple[str, ...] = ()                  # whole file names the release gives, tried before the stems
    fallbacks: tuple["VideoRecord", ...] = ()    # where this video is not there: these instead (Ego4D's clips)
    member: tuple[str, str] | None = None        # (archive, member name): the video is inside a tar (webdataset)


@dataclass
class RecordProblem:
    where: str        # "line 7", "record 'v_x'": appended to the file's uri
    reason: str       # annotation_line_unparsable | annotation_record_malformed
    message: str
    raw: Any = None


@dataclass
class AnnotationFile:
    videos: list[VideoRecord] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)


def as_number(value: Any) -> Any:
    """A time as a float when it is one; anything else unchanged (the annotations stage names it)."""
    if isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if math.isfinite(number) else value


def clock_seconds(value: Any) -> Any:
    """A time as a float: a number, or a clock "H:MM:SS.mmm" / "MM:SS" (parse_timestamp); anything else
    unchanged (the annotations stage names it)."""
    if isinstance(value, str) and ":" in value:
        from vdata.media.subtitles import parse_timestamp   # deferred: pysubs2 costs ~0.05 s at every CLI start

        seconds = parse_timestamp(value)
        return value if seconds is None else seconds
    return as_number(value)


def as_span(value: Any) -> tuple[Any, Any]:
    """(start, end) of a `[s, e]` window; a short or odd window keeps what it has, None for the rest."""
    if isinstance(value, (list, tuple)):
        parts = [as_number(v) for v in value[:2]] + [None, None]
        return parts[0], parts[1]
    return None, None


def make_segment(span: Any, text: Any, **provenance: Any) -> dict:
    start, end = as_span(span)
    return {"start_s": start, "end_s": end, "text": text, **provenance}


def pair_lists(spans: Any, texts: Any) -> list[tuple[Any, Any]]:
    """Parallel timestamps / sentences, unequal lengths kept (a missing side is None, then rejected)."""
    spans = spans if isinstance(spans, list) else []
    texts = texts if isinstance(texts, list) else []
    return [(spans[i] if i < len(spans) else None, texts[i] if i < len(texts) else None)
            for i in range(max(len(spans), len(texts)))]


class _RepeatedKeys(dict):
    """A JSON object that named a key more than once (`repeated`: key → times): `json` keeps the last value
    silently, so a video id given twice in one file (two split files joined by hand) lost its first record."""
    repeated: dict


def _object(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    out = _RepeatedKeys(obj)
    counts: dict = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    out.repeated = {k: n for k, n in counts.items() if n > 1}
    return out


# held-out first: a video whose clips the release puts in several splits is held out (no test clip trains)
_SPLIT_RANK = {"test": 0, "testing": 0, "validation": 1, "validate": 1, "val": 1, "train": 2, "training": 2}


def merge_fallback_meta(first: dict, other: dict) -> dict:
    """One whole video's source_meta from two records that fell back to it (two Kinetics clips of one
    YouTube video downloaded whole): lists (labels, segments) joined, each item once; a held-out split over
    a train one; other values as the first record gives them."""
    out = dict(first)
    for key, value in other.items():
        if isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + [v for v in value if v not in out[key]]
        elif key in ("split", "subset") and isinstance(value, str) and isinstance(out.get(key), str):
            out[key] = min(out[key], value, key=lambda s: _SPLIT_RANK.get(s.lower(), 3))
        else:
            out.setdefault(key, value)
    return out


def parse_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as e:
        raise FormatError(f"not valid JSON ({e.msg}, line {e.lineno})") from None


def id_map(data: Any, label: str) -> dict:
    if not isinstance(data, dict):
        raise FormatError(f"{label} files map video ids to records; this one holds a {type(data).__name__}")
    return data


def duration_meta(record: dict) -> dict:
    duration = as_number(record.get("duration"))
    return {"annotated_duration_s": duration} if isinstance(duration, float) else {}


def without_repeated_ids(out: AnnotationFile, what: str) -> AnnotationFile:
    """`out` with the videos a list-based file (MSR-VTT's `videos`, VATEX) names more than once taken out, one
    annotation_record_duplicate problem each: which of its records is right is a guess, none is used (h24 F18)."""
    counts: dict[str, int] = {}
    for video in out.videos:
        counts[video.video_id] = counts.get(video.video_id, 0) + 1
    repeated = {v for v, n in counts.items() if n > 1}
    out.videos = [v for v in out.videos if v.video_id not in repeated]
    out.problems += [RecordProblem(f"record {v!r}", "annotation_record_duplicate", f"{what} {v!r} has {counts[v]} "
                                   "records in this file (two files joined?); none is used, since which one is right "
                                   "is a guess", None) for v in sorted(repeated)]
    return out


def object_records(by_id: dict, out: AnnotationFile):
    """(video id, record) for each record that is an object; the others become problems in `out`, and so does
    a video id the file gives more than once (which of its records is right is a guess: none is used)."""
    repeated = getattr(by_id, "repeated", {})
    for video_id, record in by_id.items():
        if video_id in repeated:
            out.problems.append(RecordProblem(f"record {video_id!r}", "annotation_record_duplicate", f"video id "
                                              f"{video_id!r} has {repeated[video_id]} records in this file (two files "
                                              "joined?); none is used, since which one is right is a guess", None))
        elif isinstance(record, dict):
            yield video_id, record
        else:
            out.problems.append(RecordProblem(f"record {video_id!r}", "annotation_record_malformed", f"record "
                                              f"{video_id!r} is a {type(record).__name__}, not an object", record))


def step_segments(record: dict, list_key: str, text_key: str) -> list:
    """`record[list_key]`'s `{segment, <text_key>, id}` items as segments; a non-object item as given."""
    steps = record.get(list_key) if isinstance(record.get(list_key), list) else []
    return [make_segment(step.get("segment"), step.get(text_key), **({"id": step["id"]} if "id" in step else {}))
            if isinstance(step, dict) else step for step in steps]


def database_map(data: Any, label: str, record_keys: str) -> dict:
    """The `{"database": {video id: record}}` map ActivityNet-style releases share."""
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        hint = ""
        if data and isinstance(data, dict) and all(isinstance(r, dict) and "sentences" in r
                                                   for r in list(data.values())[:20]):
            hint = " (this looks like ActivityNet Captions: format: activitynet_captions)"
        raise FormatError(f"{label} files hold {{\"database\": {{video id: {{{record_keys}}}}}}}{hint}")
    return data["database"]


def renamed_fields(record: dict, renames: dict[str, str]) -> dict:
    return {new: record[old] for old, new in renames.items() if record.get(old) is not None}


def csv_records(text: str, required: tuple[str, ...], release: str) -> csv.DictReader:
    """The rows of a release's CSV, whose header must name `required` (FormatError naming what it lacks)."""
    rows = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (rows.fieldnames or [])]
    if missing:
        raise FormatError(f"{release} CSV files start with a header naming {', '.join(required)}; this one lacks "
                          f"{', '.join(missing)}")
    return rows


def text_lines(text: str) -> list[str]:
    """The lines of a text file: cut at \\n, \\r\\n or \\r only (never at the Unicode line breaks a field may hold)."""
    return re.split(r"\r\n|[\r\n]", text[:-1] if text.endswith("\n") else text) if text else []


def json_lines(text: str):
    """(line number, the line, its record or None, why not) for each non-empty line of JSON Lines text.
    Lines end at a newline only: `str.splitlines` also cuts at U+2028/U+2029, U+0085 and form feeds, which
    a JSON string may hold raw (`ensure_ascii=False`), so a valid record became two broken ones (h26 F8)."""
    for number, line in enumerate(text_lines(text), start=1):
        if not line.strip():
            continue
        try:
            yield number, line, json.loads(line), None
        except json.JSONDecodeError as e:
            yield number, line, None, f"line {number} is not valid JSON ({e.msg})"



class VideoFiles(dict):
    """File name -> the folders holding one (see video_files), with the names indexed by stem on first use:
    find_video looks each stem up once instead of each stem with each of its 27 extensions (650k Kinetics
    rows, half of them absent: 5.7 s of string joins and lookups)."""

    _by_stem: dict[str, dict[str, str]] | None = None

    def names_of(self, stem: str) -> dict[str, str]:
        """{extension, lower case: file name} of the files named `<stem><extension>` (a camera's `.MP4` too)."""
        if self._by_stem is None:
            self._by_stem = {}
            for name in self:
                dot = name.rfind(".")
                if dot > 0:
                    ext = name[dot:]
                    same = self._by_stem.setdefault(name[:dot], {})
                    if ext.lower() not in same or ext.islower():   # `v.mp4` wins over `v.MP4` beside it
                        same[ext.lower()] = name
        return self._by_stem.get(stem, {})


def video_files(videos_dir: str) -> VideoFiles:
    """The files under `videos_dir` (a folder or a bucket prefix), at any depth: file name -> the folders
    (relative, "" for the top) holding one. One walk and a lookup per name, where a stat per candidate would
    be one per folder x stem x extension (a Kinetics-700 file names 650k clips, each with six folders and
    eight extensions: 44 s of path joins alone, against 1 s; in a bucket, a request each). Hidden folders
    are skipped, a folder linked twice is read once."""
    found = VideoFiles()
    if S.is_remote(videos_dir):
        for rel, name in S.find_relative(videos_dir):
            if not any(part.startswith(".") for part in rel.split("/")):
                found.setdefault(name, set()).add(rel)
        return found
    seen: set[tuple[int, int]] = set()
    for here, dirs, files in os.walk(videos_dir, followlinks=True):
        st = os.stat(here)
        if (st.st_dev, st.st_ino) in seen:   # a link back up the tree
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = os.path.relpath(here, videos_dir)
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        for name in files:
            found.setdefault(name, set()).add(rel)
    return found


def find_video(videos_dir: str, record: VideoRecord, extensions: list[str], files: VideoFiles) -> str | None:
    """The first `<videos_dir>/<folder>/<name>` among `files` (see video_files): the record's folders in
    order, in each the release's exact names, then each stem with each extension; failing those, the name
    in any folder (first in name order): a mirror's or a user's own layout (ActivityNet's `v1-2/train/`,
    `v1-3/train_val/`)."""
    names = [name for name in record.exact if name in files]
    for stem in record.stems or (record.video_id,):
        present = files.names_of(stem)
        names += [present[ext.lower()] for ext in extensions if ext.lower() in present]
    for folder in record.folders if names else ():
        for name in names:
            if folder.strip("/") in files[name]:
                return S.join(videos_dir, folder, name) if folder else S.join(videos_dir, name)
    for name in names:
        folder = min(files[name])
        return S.join(videos_dir, folder, name) if folder else S.join(videos_dir, name)
    return None
