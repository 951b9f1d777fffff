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
- `ego4d_narrations`: Ego4D's narrations, each a moment of what the camera wearer (#C) does, in either
  release: v1's `narration.json` `{video_uid: {narration_pass_1: {narrations: [{timestamp_sec, timestamp_frame,
  narration_text, annotation_uid}], summaries: [{start_sec, end_sec, summary_text}]}, narration_pass_2: ...}}`
  (read so by facebookresearch/Ego4d's preprocessing and EgoVLP's loaders), or v2's
  `all_narrations_redacted.json` `{videos: {video_uid: {narrations: [{time, text, _annotation_uid}]}}}` (read
  so by showlab/videollm-online data/ego4d/narration.py). Two annotators narrated each video: the first pass
  is read (v1's `narration_pass_1`, else its second; v2's first `_annotation_uid`), so that the timeline
  does not tell each moment twice. A narration is a point in time; as a segment it gets EgoClip's window
  (EgoVLP, Lin et al. 2022, sec. 3.1): t ± β/2α s, β the video's mean gap between narrations and α the
  mean of β over the file's videos, so a clip lasts 1 s on average and less where narrations are dense.
  Its text is cleaned as VideoLLM-online cleans it (the #C / #O / #unsure tags dropped, capitalised, a
  full stop), the narration as written kept as `narration_text` and its time as `time_s`; v1's summaries
  go in `source_meta` as `summaries`. Videos: `<video_uid>.mp4` in `v2/full_scale/` (the Ego4D CLI) or
  anywhere below `videos`.
"""
from __future__ import annotations

import os
import re
import statistics

from .base import (
    AnnotationFile, FormatError, VideoRecord, as_number, as_span, database_map, duration_meta, id_map,
    make_segment, object_records, pair_lists, parse_json, renamed_fields, step_segments,
)
from .grounding import EGO4D_FOLDERS, ENDS_WITH_VIDEO


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
            chapters = [{"start_s": as_span(span)[0], "end_s": as_span(span)[1], "title": title}
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


_EGO4D_TAGS = re.compile(r"#unsure|#[co]\b|@c\b|#", re.IGNORECASE)


def clean_narration(text: object) -> object:
    """`#C C picks up a knife` -> `C picks up a knife.` (VideoLLM-online's _clean_text); a non-text as given."""
    if not isinstance(text, str):
        return text
    words = _EGO4D_TAGS.sub("", text).strip(".,\n ").split()
    if not words:
        return ""
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]]) + "."


def _first_pass(record: dict) -> tuple[list, list]:
    """(narrations as (time, text, uid), v1 summaries) of the first annotator's pass of a video's record."""
    for name in ("narration_pass_1", "narration_pass_2"):
        one = record.get(name)
        if isinstance(one, dict) and isinstance(one.get("narrations"), list):
            items = [(n.get("timestamp_sec"), n.get("narration_text"), n.get("annotation_uid")) if isinstance(n, dict)
                     else (None, n, None) for n in one["narrations"]]
            return items, one.get("summaries") if isinstance(one.get("summaries"), list) else []
    if isinstance(record.get("narrations"), list):                          # v2
        items = [(n.get("time"), n.get("text"), n.get("_annotation_uid")) if isinstance(n, dict) else (None, n, None)
                 for n in record["narrations"]]
        first = next((uid for _, _, uid in items if uid is not None), None)
        return [i for i in items if i[2] == first or i[2] is None], []
    return [], []


def _mean_gap(times: list[float]) -> float | None:
    times = sorted(times)
    gaps = [b - a for a, b in zip(times, times[1:]) if b > a]
    return statistics.fmean(gaps) if gaps else None


def read_ego4d_narrations(text: str) -> AnnotationFile:
    data = parse_json(text)
    by_id = data.get("videos") if isinstance(data, dict) and isinstance(data.get("videos"), dict) else data
    if not isinstance(by_id, dict) or (by_id and not any(isinstance(r, dict) and (
            "narration_pass_1" in r or "narration_pass_2" in r or "narrations" in r) for r in list(by_id.values())[:50])):
        raise FormatError("Ego4D narration files hold {video_uid: {narration_pass_1: {narrations: [{timestamp_sec, "
                          "narration_text}]}}} (narration.json) or {videos: {video_uid: {narrations: [{time, text}]}}} "
                          "(all_narrations_redacted.json)")
    out = AnnotationFile()
    passes = {video_id: _first_pass(record) for video_id, record in object_records(by_id, out)}
    gaps = {v: _mean_gap([t for t in (as_number(t) for t, _, _ in items) if isinstance(t, float)])
            for v, (items, _) in passes.items()}
    alpha = statistics.fmean([g for g in gaps.values() if g]) if any(gaps.values()) else None
    for video_id, (items, summaries) in passes.items():
        half = gaps[video_id] / (2 * alpha) if gaps[video_id] and alpha else 0.5
        segments = []
        for time, said, uid in items:
            t = as_number(time)
            span = [max(0.0, t - half), t + half] if isinstance(t, float) else [time, None]
            segment = make_segment(span, clean_narration(said), time_s=time, narration_text=said,
                                   **({"annotation_uid": uid} if uid is not None else {}))
            if isinstance(t, float):
                segment[ENDS_WITH_VIDEO] = True    # a window past the end of the video ends with it
            segments.append(segment)
        meta = {"segments": segments}
        if summaries:
            meta["summaries"] = [make_segment([s.get("start_sec"), s.get("end_sec")], s.get("summary_text"))
                                 if isinstance(s, dict) else s for s in summaries]
        out.videos.append(VideoRecord(video_id, meta, folders=EGO4D_FOLDERS))
    return out
