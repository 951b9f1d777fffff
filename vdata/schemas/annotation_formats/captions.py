"""Dense captions, chapters and subtitles: files whose items are the described moments of a video. Layouts,
each confirmed from the dataset's own documentation or code:

- `activitynet_captions`: `{video_id: {duration, timestamps: [[s, e], ...], sentences: [...]}}`, ids like
  `v_QOlSCBRmfWY` (train.json / val_1.json from cs.stanford.edu/people/ranjaykrishna/densevid; read as
  `anno[key]['duration' | 'sentences' | 'timestamps']` by PDVC's loader, antoyang/VidChapters
  PDVC/data/video_dataset.py). Videos: `<id>.mp4`; mirrors that drop the `v_` prefix are tried too.
- `youcook2`: `{"database": {id: {duration, subset, recipe_type, video_url, annotations: [{segment:
  [s, e], id, sentence}]}}}` (youcookii_annotations_trainval.json, read this way by antoyang/VidChapters
  preproc/youcook.py). Videos: `<id>.<ext>`, or as the official downloader stores them,
  `raw_videos/<subset>/<recipe_type>/<id>.{mp4,mkv,webm}` (ProcNets-YouCook2 download script).
- `vidchapters`: VidChapters-7M's chapter file `{video_id: {duration, chapters: [{label, time}]}}` (the
  `chapters.pkl` / json written by collection/desc2chapters.py and read by preproc/chapters_to_dvc.py),
  or its processed `chapters_dvc_<split>.json`, ActivityNet-shaped `{video_id: {duration, timestamps,
  sentences, path}}` where the sentences are chapter titles. Either way the items are chapters (a
  chapter ends where the next begins). Videos: `<youtube id>.mp4`.
- `howto100m`: HowTo100M's caption.json / raw_caption.json `{video_id: {text: [...], start: [...], end:
  [...]}}` (the release's README.txt: parallel lists, seconds), YouTube's automatic captions. Each line
  becomes a subtitle; a line's end is cut to where the next begins (YouTube shows each line until the one
  after next, and the `annotations` stage would drop overlapping cues), the given end kept as
  `given_end_s`. HowToCaption builds from exactly these. Videos: `<video_id>.mp4`.
"""
from __future__ import annotations

import os

from .base import (
    AnnotationFile, VideoRecord, as_number, as_span, database_map, duration_meta, id_map, make_segment,
    object_records, pair_lists, parse_json, renamed_fields, step_segments,
)


def read_activitynet_captions(text: str) -> AnnotationFile:
    out = AnnotationFile()
    for video_id, record in object_records(id_map(parse_json(text), "ActivityNet Captions"), out):
        segments = [make_segment(span, sentence)
                    for span, sentence in pair_lists(record.get("timestamps"), record.get("sentences"))]
        bare = video_id[2:] if video_id.startswith("v_") else f"v_{video_id}"
        out.videos.append(VideoRecord(video_id, {"segments": segments, **duration_meta(record)},
                                      stems=(video_id, bare)))
    return out


def read_youcook2(text: str) -> AnnotationFile:
    out = AnnotationFile()
    database = database_map(parse_json(text), "YouCook2",
                            "duration, subset, recipe_type, annotations: [{segment, id, sentence}]")
    for video_id, record in object_records(database, out):
        subset, recipe = record.get("subset"), record.get("recipe_type")
        meta = {"segments": step_segments(record, "annotations", "sentence"), **duration_meta(record),
                **renamed_fields(record, {k: k for k in ("subset", "recipe_type", "video_url")})}
        folders = ("", f"{subset}/{recipe}", str(recipe)) if subset and recipe else ("",)
        out.videos.append(VideoRecord(video_id, meta, folders=folders))
    return out


def read_vidchapters(text: str) -> AnnotationFile:
    out = AnnotationFile()
    for video_id, record in object_records(id_map(parse_json(text), "VidChapters"), out):
        if isinstance(record.get("chapters"), list):       # the chapter file: [{label, time}]
            chapters = [{"start_s": as_number(c.get("time")), "title": c.get("label")} if isinstance(c, dict) else c
                        for c in record["chapters"]]
        else:                                               # chapters_dvc_<split>.json
            chapters = [{"start_s": as_span(span)[0], "title": title}
                        for span, title in pair_lists(record.get("timestamps"), record.get("sentences"))]
        meta = {"chapters": chapters, **duration_meta(record),
                **{k: record[k] for k in ("title", "description") if isinstance(record.get(k), str)}}
        out.videos.append(VideoRecord(video_id, meta))
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
    for video_id, record in object_records(id_map(parse_json(text), "HowTo100M caption"), out):
        starts, ends = record.get("start"), record.get("end")
        spans = [[a, b] for a, b in zip(starts, ends)] if isinstance(starts, list) and isinstance(ends, list) else None
        if spans is not None and len(starts) != len(ends):
            spans += [[None, None]] * abs(len(starts) - len(ends))
        cues = [make_segment(span, line) for span, line in pair_lists(spans, record.get("text"))]
        out.videos.append(VideoRecord(video_id, {"subtitles": _unrolled(cues)}))
    return out
