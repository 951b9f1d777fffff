"""Action localization and recognition: files of labelled instances, steps and trimmed clips. Layouts, each
confirmed from the dataset's own documentation or code:

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
- `kinetics`: Kinetics-400 / 600 / 700 CSVs `label,youtube_id,time_start,time_end,split[,is_cc]` (the test
  split has no label), one trimmed 10-s clip per row, the label the clip's. Videos:
  `<youtube_id>_<start:06d>_<end:06d>.mp4` (activitynet/ActivityNet Crawler/Kinetics/download.py), in
  `<label>/` as that downloader stores them (`test/` without a label), in `<split>/` as the CVDF archives
  unpack, or directly under `videos`; a label folder with underscores for spaces is tried too. Where
  only the untrimmed video was downloaded (`<youtube_id>.mp4`, yt-dlp's own name), that video is the row,
  the clip's span a segment whose text is its class.
"""
from __future__ import annotations

from .base import (
    AnnotationFile, RecordProblem, VideoRecord, as_number, csv_records, database_map, duration_meta,
    object_records, parse_json, renamed_fields, step_segments,
)


def read_activitynet(text: str) -> AnnotationFile:
    out = AnnotationFile()
    database = database_map(parse_json(text), "ActivityNet (v1.2 / v1.3)",
                            "duration, subset, url, annotations: [{segment, label}]")
    for video_id, record in object_records(database, out):
        segments = step_segments(record, "annotations", "label")
        labels = [s["text"] for s in segments if isinstance(s, dict) and isinstance(s.get("text"), str)]
        meta = {"segments": segments, "labels": list(dict.fromkeys(labels)), **duration_meta(record),
                **renamed_fields(record, {"subset": "subset", "url": "video_url", "resolution": "resolution"})}
        bare = video_id[2:] if video_id.startswith("v_") and len(video_id) == 13 else video_id
        out.videos.append(VideoRecord(video_id, meta, stems=(f"v_{bare}", bare)))
    return out


def read_coin(text: str) -> AnnotationFile:
    out = AnnotationFile()
    database = database_map(parse_json(text), "COIN", "duration, class, recipe_type, subset, start, end, "
                         "annotation: [{id, segment, label}]")
    for video_id, record in object_records(database, out):
        task = record.get("class")
        meta = {"segments": step_segments(record, "annotation", "label"),
                "labels": [task] if isinstance(task, str) and task.strip() else [],
                **duration_meta(record), **renamed_fields(record, {"subset": "subset", "recipe_type": "recipe_type",
                                                      "video_url": "video_url", "start": "task_start_s",
                                                      "end": "task_end_s"})}
        recipe = record.get("recipe_type")
        out.videos.append(VideoRecord(video_id, meta, folders=("", str(recipe)) if recipe is not None else ("",)))
    return out


KINETICS_COLUMNS = ("youtube_id", "time_start", "time_end")


def read_kinetics(text: str) -> AnnotationFile:
    rows = csv_records(text, KINETICS_COLUMNS, "Kinetics")
    out = AnnotationFile()
    seen: dict[tuple, int] = {}
    for row in rows:
        number = rows.line_num
        youtube_id, label, split = ((row.get(k) or "").strip() for k in ("youtube_id", "label", "split"))
        start, end = as_number(row.get("time_start")), as_number(row.get("time_end"))
        if not youtube_id or not isinstance(start, float) or not isinstance(end, float):
            out.problems.append(RecordProblem(f"line {number}", "annotation_record_malformed", f"line {number} has no "
                                              f"youtube_id with numeric time_start and time_end", dict(row)))
            continue
        if (key := (youtube_id, start, end, label)) in seen:
            out.problems.append(RecordProblem(f"line {number}", "annotation_record_duplicate", f"line {number} repeats "
                                              f"line {seen[key]} (the same clip and class): used once", dict(row)))
            continue
        seen[key] = number
        stem = f"{youtube_id}_{int(start):06d}_{int(end):06d}"     # the downloader's '%s_%06d_%06d.mp4'
        label_dirs = [label, label.replace(" ", "_")] if label else []
        folders = ("", *label_dirs, *(f"{split}/{d}" for d in label_dirs if split), split, "" if label else "test")
        meta = {"labels": [label] if label else [], "youtube_id": youtube_id, "time_start": start, "time_end": end,
                **({"subset": split} if split else {})}
        folders = tuple(dict.fromkeys(folders))
        # where the clip was not cut out of its video (a plain yt-dlp download): the whole video, the clip's
        # span a segment named by its class. Several clips of one video fall back to that one video: ingest
        # merges them into its row (merge_fallback_meta), each with its label and span (h24 F11)
        whole = VideoRecord(youtube_id, {**{k: v for k, v in meta.items() if k not in ("time_start", "time_end")},
                                         "segments": [{"start_s": start, "end_s": end, "text": label}] if label else []},
                            folders=folders)
        out.videos.append(VideoRecord(stem, meta, folders=folders, fallbacks=(whole,)))
    return out
