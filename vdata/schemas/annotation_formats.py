"""Readers for the annotation files of the field's labelled temporal datasets, as their releases ship them.

TimeSuite, VTG-IT and LITA build their grounded instruction data from these files; here each one is a
direct input (`input: [{manifest: train.json, format: activitynet_captions, videos: clips/}]`). A reader
turns the file into one `VideoRecord` per video: its id, and the `source_meta` the `annotations` stage
reads (`segments`, `chapters`, as `{start_s, end_s, text}` / `{start_s, title}` items) next to the
dataset's own fields. Layouts, each confirmed from the dataset's own documentation or code:

- `activitynet_captions`: `{video_id: {duration, timestamps: [[s, e], ...], sentences: [...]}}`, ids like
  `v_QOlSCBRmfWY` (train.json / val_1.json from cs.stanford.edu/people/ranjaykrishna/densevid; read as
  `anno[key]['duration' | 'sentences' | 'timestamps']` by PDVC's loader, antoyang/VidChapters
  PDVC/data/video_dataset.py). Videos: `<id>.mp4`; mirrors that drop the `v_` prefix are tried too.
- `charades_sta`: text lines `"[video name] [start time] [end time]##[sentence]"` (jiyanggao/TALL
  README, the release); no duration. Videos: Charades_v1_480/`<id>.mp4`.
- `qvhighlights`: JSON lines `{qid, query, duration, vid, relevant_windows: [[s, e], ...],
  relevant_clip_ids, saliency_scores}`; `vid` is `{youtube_id}_{start}_{end}`, clips are 2 s, the test
  split has no windows (jayleicn/moment_detr data/README.md). One query per line, several per video:
  each window becomes a segment whose text is the query; every query, with its saliency, is kept under
  `queries`. Videos: `<vid>.mp4`.
- `youcook2`: `{"database": {id: {duration, subset, recipe_type, video_url, annotations: [{segment:
  [s, e], id, sentence}]}}}` (youcookii_annotations_trainval.json, read this way by antoyang/VidChapters
  preproc/youcook.py). Videos: `<id>.<ext>`, or as the official downloader stores them,
  `raw_videos/<subset>/<recipe_type>/<id>.{mp4,mkv,webm}` (ProcNets-YouCook2 download script).
- `vidchapters`: VidChapters-7M's chapter file `{video_id: {duration, chapters: [{label, time}]}}` (the
  `chapters.pkl` / json written by collection/desc2chapters.py and read by preproc/chapters_to_dvc.py),
  or its processed `chapters_dvc_<split>.json`, ActivityNet-shaped `{video_id: {duration, timestamps,
  sentences, path}}` where the sentences are chapter titles. Either way the items are chapters (a
  chapter ends where the next begins). Videos: `<youtube id>.mp4`.
- `activitynet`: ActivityNet v1.2 / v1.3's action localization file (activity_net.v1-3.min.json)
  `{version, taxonomy, database: {id: {subset, url, resolution, duration, annotations: [{segment, label}]}}}`,
  ids without `v_` (read as `database[id]['annotations']` by activitynet/ActivityNet's Evaluation and
  Crawler/ActivityNetParser.py). Each instance is a segment whose text is its activity; the activities are
  the video's labels. Videos: `v_<id>.mp4`, as Crawler/run_crosscheck.py names them, or `<id>.mp4`.
- `coin`: COIN.json, "similar to ActivityNet" (coin-dataset/annotations README): `{database: {id:
  {duration, class, video_url, start, end, subset, recipe_type, annotation: [{id, segment, label}]}}}`;
  each step a segment, the task (`class`) the label, the task's span kept as `task_start_s` / `task_end_s`
  (also read so by showlab/videollm-online data/coin/coin.py). Videos: `<recipe_type>/<id>.mp4`, as the
  release's download_videos.py stores them, or `<id>.mp4`.
- `didemo`: train_data.json / val_data.json / test_data.json, a list of `{video, times, description,
  annotation_id, dl_link, num_segments}` (LisaAnne/LocalizingMoments README): times are each annotator's
  `[first, last]` 5-s chunk, chunk k covering 5k..5k+5 s. The annotators' most common pair is the
  segment (all of them are kept under `times`); the last chunk of a video shorter than 30 s is shorter
  than 5 s, so an end past the video means "until it ends". Videos: the `video` name itself (the
  download script keeps Flickr's `<id>.m4v` / `.mov` / ...), or its stem with `extensions`.
- `howto100m`: HowTo100M's caption.json / raw_caption.json `{video_id: {text: [...], start: [...], end:
  [...]}}` (the release's README.txt: parallel lists, seconds), YouTube's automatic captions. Each line
  becomes a subtitle; a line's end is cut to where the next begins (YouTube shows each line until the one
  after next, and the `annotations` stage would drop overlapping cues), the given end kept as
  `given_end_s`. HowToCaption builds from exactly these. Videos: `<video_id>.mp4`.
- `kinetics`: Kinetics-400 / 600 / 700 CSVs `label,youtube_id,time_start,time_end,split[,is_cc]` (the test
  split has no label), one trimmed 10-s clip per row, the label the clip's. Videos:
  `<youtube_id>_<start:06d>_<end:06d>.mp4` (activitynet/ActivityNet Crawler/Kinetics/download.py), in
  `<label>/` as that downloader stores them (`test/` without a label), in `<split>/` as the CVDF archives
  unpack, or directly under `videos`; a label folder with underscores for spaces is tried too.
- `ego4d_nlq`: nlq_train.json / nlq_val.json `{videos: [{video_uid, split, clips: [{clip_uid,
  video_start_sec, video_end_sec, annotations: [{annotation_uid, language_queries: [{query, template,
  video_start_sec, video_end_sec, clip_start_sec, ...}]}]}]}]}`, read on the full video with the queries'
  `video_*_sec` times as showlab/videollm-online data/ego4d/nlq.py reads it. Each query is a segment with
  its clip_uid, annotation_uid and template. Videos: `<video_uid>.mp4`, also under `v2/full_scale/` (or
  `v1/`, `full_scale/`), where the Ego4D CLI puts them.

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
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from vdata.schemas.annotations import ENDS_WITH_VIDEO


class FormatError(ValueError):
    """The file as a whole is not the format it was declared as."""


@dataclass
class VideoRecord:
    video_id: str
    meta: dict                                   # source_meta: the annotation kinds + the dataset's fields
    stems: tuple[str, ...] = ()                  # file names (no extension) the video may have; () = the id
    folders: tuple[str, ...] = ("",)             # sub-folders of `videos:` to look in, in order
    exact: tuple[str, ...] = ()                  # whole file names the release gives, tried before the stems


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


def _number(value: Any) -> Any:
    """A time as a float when it is one; anything else unchanged (the annotations stage names it)."""
    if isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if math.isfinite(number) else value


def _span(value: Any) -> tuple[Any, Any]:
    """(start, end) of a `[s, e]` window; a short or odd window keeps what it has, None for the rest."""
    if isinstance(value, (list, tuple)):
        parts = [_number(v) for v in value[:2]] + [None, None]
        return parts[0], parts[1]
    return None, None


def _segment(span: Any, text: Any, **provenance: Any) -> dict:
    start, end = _span(span)
    return {"start_s": start, "end_s": end, "text": text, **provenance}


def _paired(spans: Any, texts: Any) -> list[tuple[Any, Any]]:
    """Parallel timestamps / sentences, unequal lengths kept (a missing side is None, then rejected)."""
    spans = spans if isinstance(spans, list) else []
    texts = texts if isinstance(texts, list) else []
    return [(spans[i] if i < len(spans) else None, texts[i] if i < len(texts) else None)
            for i in range(max(len(spans), len(texts)))]


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise FormatError(f"not valid JSON ({e.msg}, line {e.lineno})") from None


def _by_video(data: Any, label: str) -> dict:
    if not isinstance(data, dict):
        raise FormatError(f"{label} files map video ids to records; this one holds a {type(data).__name__}")
    return data


def _duration(record: dict) -> dict:
    duration = _number(record.get("duration"))
    return {"annotated_duration_s": duration} if isinstance(duration, float) else {}


def _records(by_id: dict, out: AnnotationFile):
    """(video id, record) for each record that is an object; the others become problems in `out`."""
    for video_id, record in by_id.items():
        if isinstance(record, dict):
            yield video_id, record
        else:
            out.problems.append(RecordProblem(f"record {video_id!r}", "annotation_record_malformed",
                                              f"record {video_id!r} is a {type(record).__name__}, not an object", record))


def _steps(record: dict, list_key: str, text_key: str) -> list:
    """`record[list_key]`'s `{segment, <text_key>, id}` items as segments; a non-object item as given."""
    steps = record.get(list_key) if isinstance(record.get(list_key), list) else []
    return [_segment(step.get("segment"), step.get(text_key), **({"id": step["id"]} if "id" in step else {}))
            if isinstance(step, dict) else step for step in steps]


def _database(data: Any, label: str, record_keys: str) -> dict:
    """The `{"database": {video id: record}}` map ActivityNet-style releases share."""
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        hint = ""
        if isinstance(data, dict) and data and all(isinstance(r, dict) and "sentences" in r for r in list(data.values())[:20]):
            hint = " (this looks like ActivityNet Captions: format: activitynet_captions)"
        raise FormatError(f"{label} files hold {{\"database\": {{video id: {{{record_keys}}}}}}}{hint}")
    return data["database"]


def _kept(record: dict, renames: dict[str, str]) -> dict:
    return {new: record[old] for old, new in renames.items() if record.get(old) is not None}


# --- the formats ------------------------------------------------------------------------------------

def read_activitynet_captions(text: str) -> AnnotationFile:
    out = AnnotationFile()
    for video_id, record in _records(_by_video(_load_json(text), "ActivityNet Captions"), out):
        segments = [_segment(span, sentence) for span, sentence in _paired(record.get("timestamps"), record.get("sentences"))]
        bare = video_id[2:] if video_id.startswith("v_") else f"v_{video_id}"
        out.videos.append(VideoRecord(video_id, {"segments": segments, **_duration(record)}, stems=(video_id, bare)))
    return out


def read_charades_sta(text: str) -> AnnotationFile:
    out = AnnotationFile()
    by_id: dict[str, list] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        head, sep, sentence = line.partition("##")
        fields = head.split()
        if not sep or not fields or len(fields) > 3:
            out.problems.append(RecordProblem(f"line {number}", "annotation_line_unparsable",
                                              f"line {number} is not '<video> <start> <end>##<sentence>'", line))
            continue
        # a line that names its video but lacks a time goes on as an item without it (then rejected)
        by_id.setdefault(fields[0], []).append(_segment(fields[1:], sentence.strip(), line=number))
    out.videos = [VideoRecord(video_id, {"segments": segments}) for video_id, segments in by_id.items()]
    return out


def json_lines(text: str):
    """(line number, the line, its record or None, why not) for each non-empty line of JSON Lines text."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, line, json.loads(line), None
        except json.JSONDecodeError as e:
            yield number, line, None, f"line {number} is not valid JSON ({e.msg})"


def read_qvhighlights(text: str) -> AnnotationFile:
    out = AnnotationFile()
    by_id: dict[str, dict] = {}
    for number, line, record, error in json_lines(text):
        if error:
            out.problems.append(RecordProblem(f"line {number}", "annotation_line_unparsable", error, line[:500]))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("vid"), str) or not record["vid"]:
            out.problems.append(RecordProblem(f"line {number}", "annotation_record_malformed",
                                              f"line {number} has no video id ('vid')", record))
            continue
        meta = by_id.setdefault(record["vid"], {"segments": [], "queries": [], **_duration(record)})
        query, qid = record.get("query"), record.get("qid")
        windows = record.get("relevant_windows")   # absent in the test split: a query without windows
        for window in windows if isinstance(windows, list) else ([] if windows is None else [windows]):
            meta["segments"].append(_segment(window, query, qid=qid))
        meta["queries"].append({k: record.get(k) for k in ("qid", "query", "relevant_windows", "relevant_clip_ids",
                                                           "saliency_scores")})
    out.videos = [VideoRecord(video_id, meta) for video_id, meta in by_id.items()]
    return out


def read_youcook2(text: str) -> AnnotationFile:
    out = AnnotationFile()
    database = _database(_load_json(text), "YouCook2", "duration, subset, recipe_type, annotations: [{segment, id, sentence}]")
    for video_id, record in _records(database, out):
        subset, recipe = record.get("subset"), record.get("recipe_type")
        meta = {"segments": _steps(record, "annotations", "sentence"), **_duration(record),
                **{k: record[k] for k in ("subset", "recipe_type", "video_url") if record.get(k) is not None}}
        folders = ("", f"{subset}/{recipe}", str(recipe)) if subset and recipe else ("",)
        out.videos.append(VideoRecord(video_id, meta, folders=folders))
    return out


def read_vidchapters(text: str) -> AnnotationFile:
    out = AnnotationFile()
    for video_id, record in _records(_by_video(_load_json(text), "VidChapters"), out):
        if isinstance(record.get("chapters"), list):       # the chapter file: [{label, time}]
            chapters = [{"start_s": _number(c.get("time")), "title": c.get("label")} if isinstance(c, dict) else c
                        for c in record["chapters"]]
        else:                                               # chapters_dvc_<split>.json
            chapters = [{"start_s": _span(span)[0], "title": title}
                        for span, title in _paired(record.get("timestamps"), record.get("sentences"))]
        meta = {"chapters": chapters, **_duration(record),
                **{k: record[k] for k in ("title", "description") if isinstance(record.get(k), str)}}
        out.videos.append(VideoRecord(video_id, meta))
    return out


def read_activitynet(text: str) -> AnnotationFile:
    out = AnnotationFile()
    database = _database(_load_json(text), "ActivityNet (v1.2 / v1.3)", "duration, subset, url, annotations: [{segment, label}]")
    for video_id, record in _records(database, out):
        segments = _steps(record, "annotations", "label")
        labels = [s["text"] for s in segments if isinstance(s, dict) and isinstance(s.get("text"), str)]
        meta = {"segments": segments, "labels": list(dict.fromkeys(labels)), **_duration(record),
                **_kept(record, {"subset": "subset", "url": "video_url", "resolution": "resolution"})}
        bare = video_id[2:] if video_id.startswith("v_") and len(video_id) == 13 else video_id
        out.videos.append(VideoRecord(video_id, meta, stems=(f"v_{bare}", bare)))
    return out


def read_coin(text: str) -> AnnotationFile:
    out = AnnotationFile()
    database = _database(_load_json(text), "COIN", "duration, class, recipe_type, subset, start, end, "
                         "annotation: [{id, segment, label}]")
    for video_id, record in _records(database, out):
        task = record.get("class")
        meta = {"segments": _steps(record, "annotation", "label"), "labels": [task] if isinstance(task, str) and task.strip() else [],
                **_duration(record), **_kept(record, {"subset": "subset", "recipe_type": "recipe_type",
                                                      "video_url": "video_url", "start": "task_start_s",
                                                      "end": "task_end_s"})}
        recipe = record.get("recipe_type")
        out.videos.append(VideoRecord(video_id, meta, folders=("", str(recipe)) if recipe is not None else ("",)))
    return out


DIDEMO_CHUNK_S = 5.0


def _didemo_span(times: Any) -> tuple[Any, Any] | None:
    """The annotators' most common [first chunk, last chunk] pair (ties: the first given) in seconds,
    chunk k covering [5k, 5k + 5) s; None when no pair is readable."""
    pairs = [tuple(t) for t in times if isinstance(t, (list, tuple)) and len(t) == 2
             and all(isinstance(v, int) and not isinstance(v, bool) for v in t)] if isinstance(times, list) else []
    if not pairs:
        return None
    first, last = Counter(pairs).most_common(1)[0][0]
    return first * DIDEMO_CHUNK_S, (last + 1) * DIDEMO_CHUNK_S


def read_didemo(text: str) -> AnnotationFile:
    data = _load_json(text)
    if not isinstance(data, list):
        raise FormatError(f"DiDeMo files hold a list of {{video, times, description, annotation_id}}; this one holds "
                          f"a {type(data).__name__}")
    out = AnnotationFile()
    by_name: dict[str, dict] = {}
    for number, record in enumerate(data):
        if not isinstance(record, dict) or not isinstance(record.get("video"), str) or not record["video"].strip():
            out.problems.append(RecordProblem(f"record {number}", "annotation_record_malformed",
                                              f"record {number} has no video name ('video')", record))
            continue
        span = _didemo_span(record.get("times"))
        segment = _segment(span, record.get("description"), annotation_id=record.get("annotation_id"),
                           times=record.get("times"))
        if span is not None:
            segment[ENDS_WITH_VIDEO] = True
        meta = by_name.setdefault(record["video"], {"segments": [], **_kept(record, {"dl_link": "video_url",
                                                                                    "num_segments": "num_segments"})})
        meta["segments"].append(segment)
    for name, meta in by_name.items():
        stem, ext = os.path.splitext(name)
        out.videos.append(VideoRecord(name, meta, stems=(stem,), exact=(name,) if ext else ()))
    return out


def _unrolled(cues: list[dict]) -> list[dict]:
    """YouTube's rolling caption lines, each on screen until the one after next, as cues that end where
    the next begins (the end as given kept as `given_end_s`); cues without readable times are left as they are."""
    timed = sorted((c for c in cues if isinstance(c["start_s"], float) and isinstance(c["end_s"], float)),
                   key=lambda c: c["start_s"])
    for cue, following in zip(timed, timed[1:]):
        if cue["start_s"] < following["start_s"] < cue["end_s"]:
            cue["given_end_s"], cue["end_s"] = cue["end_s"], following["start_s"]
    return cues


def read_howto100m(text: str) -> AnnotationFile:
    out = AnnotationFile()
    for video_id, record in _records(_by_video(_load_json(text), "HowTo100M caption"), out):
        starts, ends = record.get("start"), record.get("end")
        spans = [[a, b] for a, b in zip(starts, ends)] if isinstance(starts, list) and isinstance(ends, list) else None
        if spans is not None and len(starts) != len(ends):
            spans += [[None, None]] * abs(len(starts) - len(ends))
        cues = [_segment(span, line) for span, line in _paired(spans, record.get("text"))]
        out.videos.append(VideoRecord(video_id, {"subtitles": _unrolled(cues)}))
    return out


KINETICS_COLUMNS = ("youtube_id", "time_start", "time_end")


def read_kinetics(text: str) -> AnnotationFile:
    rows = csv.DictReader(io.StringIO(text))
    missing = [c for c in KINETICS_COLUMNS if c not in (rows.fieldnames or [])]
    if missing:
        raise FormatError(f"Kinetics CSV files start with a header naming label, youtube_id, time_start, time_end, "
                          f"split; this one lacks {', '.join(missing)}")
    out = AnnotationFile()
    for row in rows:
        number = rows.line_num
        youtube_id, label, split = ((row.get(k) or "").strip() for k in ("youtube_id", "label", "split"))
        start, end = _number(row.get("time_start")), _number(row.get("time_end"))
        if not youtube_id or not isinstance(start, float) or not isinstance(end, float):
            out.problems.append(RecordProblem(f"line {number}", "annotation_record_malformed", f"line {number} has no "
                                              f"youtube_id with numeric time_start and time_end", dict(row)))
            continue
        stem = f"{youtube_id}_{int(start):06d}_{int(end):06d}"     # the downloader's '%s_%06d_%06d.mp4'
        label_dirs = [label, label.replace(" ", "_")] if label else []
        folders = ("", *label_dirs, *(f"{split}/{d}" for d in label_dirs if split), split, "" if label else "test")
        meta = {"labels": [label] if label else [], "youtube_id": youtube_id, "time_start": start, "time_end": end,
                **({"subset": split} if split else {})}
        out.videos.append(VideoRecord(stem, meta, folders=tuple(dict.fromkeys(folders))))
    return out


EGO4D_FOLDERS = ("", "full_scale", "v2/full_scale", "v1/full_scale")


def read_ego4d_nlq(text: str) -> AnnotationFile:
    data = _load_json(text)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
        raise FormatError("Ego4D NLQ files hold {\"videos\": [{video_uid, clips: [{annotations: [{language_queries}]}]}]}")
    out = AnnotationFile()
    for number, video in enumerate(data["videos"]):
        if not isinstance(video, dict) or not isinstance(video.get("video_uid"), str) or not video["video_uid"]:
            out.problems.append(RecordProblem(f"video {number}", "annotation_record_malformed",
                                              f"video {number} has no video_uid", video))
            continue
        segments, clips = [], []
        for clip in video.get("clips") or []:
            if not isinstance(clip, dict):
                continue
            clips.append({k: clip.get(k) for k in ("clip_uid", "video_start_sec", "video_end_sec")})
            for annotation in clip.get("annotations") or []:
                queries = annotation.get("language_queries") if isinstance(annotation, dict) else None
                for query in queries if isinstance(queries, list) else []:
                    if not isinstance(query, dict):
                        segments.append(query)
                        continue
                    segments.append(_segment([query.get("video_start_sec"), query.get("video_end_sec")], query.get("query"),
                                             clip_uid=clip.get("clip_uid"), annotation_uid=annotation.get("annotation_uid"),
                                             template=query.get("template")))
        meta = {"segments": segments, "clips": clips, **_kept(video, {"split": "subset"})}
        out.videos.append(VideoRecord(video["video_uid"], meta, folders=EGO4D_FOLDERS))
    return out


ANNOTATION_FORMATS: dict[str, Callable[[str], AnnotationFile]] = {
    "activitynet": read_activitynet,
    "activitynet_captions": read_activitynet_captions,
    "coin": read_coin,
    "didemo": read_didemo,
    "ego4d_nlq": read_ego4d_nlq,
    "howto100m": read_howto100m,
    "kinetics": read_kinetics,
    "charades_sta": read_charades_sta,
    "qvhighlights": read_qvhighlights,
    "youcook2": read_youcook2,
    "vidchapters": read_vidchapters,
}


def read_annotation_file(fmt: str, path: str) -> AnnotationFile:
    """The videos and problems of one annotation file; FormatError when the file is not `fmt` at all."""
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    return ANNOTATION_FORMATS[fmt](text)


def video_files(videos_dir: str, records: list[VideoRecord]) -> dict[str, set[str]]:
    """The files under `videos_dir`, as deep as the records' folders go: file name -> the folders (relative,
    "" for the top) holding one. One walk and a lookup per name, where a stat per candidate would be one
    per folder x stem x extension (a Kinetics-700 file names 650k clips, each with six folders and eight
    extensions: 44 s of path joins alone, against 1 s)."""
    depth = max((folder.count("/") + 1 for r in records for folder in r.folders if folder), default=0)
    found: dict[str, set[str]] = {}
    for here, dirs, files in os.walk(videos_dir, followlinks=True):
        rel = os.path.relpath(here, videos_dir)
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        if (rel.count("/") + 1 if rel else 0) >= depth:
            dirs[:] = []
        for name in files:
            found.setdefault(name, set()).add(rel)
    return found


def find_video(videos_dir: str, record: VideoRecord, extensions: list[str], files: dict[str, set[str]]) -> str | None:
    """The first `<videos_dir>/<folder>/<name>` among `files` (see video_files): folders in order, in each the
    release's exact names, then each stem with each extension."""
    names = [name for name in (*record.exact, *(stem + ext for stem in record.stems or (record.video_id,)
                                                 for ext in extensions)) if name in files]
    for folder in record.folders if names else ():
        for name in names:
            if folder.strip("/") in files[name]:
                return os.path.join(videos_dir, folder, name) if folder else os.path.join(videos_dir, name)
    return None
