"""Moment retrieval: files of natural-language queries, each with the moment it names. Layouts, each confirmed
from the dataset's own documentation or code:

- `charades_sta`: text lines `"[video name] [start time] [end time]##[sentence]"` (jiyanggao/TALL
  README, the release); no duration. Videos: Charades_v1_480/`<id>.mp4`.
- `qvhighlights`: JSON lines `{qid, query, duration, vid, relevant_windows: [[s, e], ...],
  relevant_clip_ids, saliency_scores}`; `vid` is `{youtube_id}_{start}_{end}`, clips are 2 s, the test
  split has no windows (jayleicn/moment_detr data/README.md). One query per line, several per video:
  each window becomes a segment whose text is the query; every query, with its saliency, is kept under
  `queries`. Videos: `<vid>.mp4`.
- `didemo`: train_data.json / val_data.json / test_data.json, a list of `{video, times, description,
  annotation_id, dl_link, num_segments}` (LisaAnne/LocalizingMoments README): times are each annotator's
  `[first, last]` 5-s chunk, chunk k covering 5k..5k+5 s. The annotators' most common pair is the
  segment (all of them are kept under `times`); the last chunk of a video shorter than 30 s is shorter
  than 5 s, so an end past the video means "until it ends". Videos: the `video` name itself (the
  download script keeps Flickr's `<id>.m4v` / `.mov` / ...), or its stem with `extensions`.
- `ego4d_nlq`: nlq_train.json / nlq_val.json `{videos: [{video_uid, split, clips: [{clip_uid,
  video_start_sec, video_end_sec, annotations: [{annotation_uid, language_queries: [{query, template,
  video_start_sec, video_end_sec, clip_start_sec, ...}]}]}]}]}`, read on the full video with the queries'
  `video_*_sec` times as showlab/videollm-online data/ego4d/nlq.py reads it. Each query is a segment with
  its clip_uid, annotation_uid and template. Videos: `<video_uid>.mp4`, also under `v2/full_scale/` (or
  `v1/`, `full_scale/`), where the Ego4D CLI puts them. Where the full video is not there, its clips are
  looked for (`<clip_uid>.mp4`, also under `v2/clips/`: the NLQ benchmark's own unit, `ego4d --datasets
  clips`), each with its queries on the clip's clock (`clip_*_sec`).
- `ego4d_goalstep`: Ego4D Goal-Step's goalstep_train.json / goalstep_valid.json `{version, split, videos:
  [{video_uid, start_time, end_time, goal_category, goal_description, goal_wikihow_url, summary, is_procedural,
  segments: [{start_time, end_time, step_category, step_description, is_continued, is_procedural, is_relevant,
  summary, segments: [substeps, alike]}]}]}` (facebookresearch/ego4d-goalstep README.md and data/), times on
  the full video. Each step and each substep is a segment whose text is its description, as the release's
  step grounding reads them (step_grounding/tools/parse_goalstep_jsons.py) and as VideoLLM-online reads both
  levels (data/livechat/ego4d_goalstep_livechat_generation.py); the goal category is the video's label. The
  test file lists each video's `step_segments: [{step_description, segment_count}]` without times: kept as
  `step_queries`. Videos: as for `ego4d_nlq`.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Any

from vdata.schemas.annotations import ENDS_WITH_VIDEO
from .base import (
    AnnotationFile, FormatError, RecordProblem, VideoRecord, duration_meta, json_lines, make_segment,
    parse_json, renamed_fields,
)


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
        by_id.setdefault(fields[0], []).append(make_segment(fields[1:], sentence.strip(), line=number))
    out.videos = [VideoRecord(video_id, {"segments": segments}) for video_id, segments in by_id.items()]
    return out


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
        meta = by_id.setdefault(record["vid"], {"segments": [], "queries": [], **duration_meta(record)})
        query, qid = record.get("query"), record.get("qid")
        windows = record.get("relevant_windows")   # absent in the test split: a query without windows
        for window in windows if isinstance(windows, list) else ([] if windows is None else [windows]):
            meta["segments"].append(make_segment(window, query, qid=qid))
        meta["queries"].append({k: record.get(k) for k in ("qid", "query", "relevant_windows", "relevant_clip_ids",
                                                           "saliency_scores")})
    out.videos = [VideoRecord(video_id, meta) for video_id, meta in by_id.items()]
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
    data = parse_json(text)
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
        segment = make_segment(span, record.get("description"), annotation_id=record.get("annotation_id"),
                           times=record.get("times"))
        if span is not None:
            segment[ENDS_WITH_VIDEO] = True
        meta = by_name.setdefault(record["video"], {"segments": [], **renamed_fields(record, {"dl_link": "video_url",
                                                                                    "num_segments": "num_segments"})})
        meta["segments"].append(segment)
    for name, meta in by_name.items():
        stem, ext = os.path.splitext(name)
        out.videos.append(VideoRecord(name, meta, stems=(stem,), exact=(name,) if ext else ()))
    return out


EGO4D_FOLDERS = ("", "full_scale", "v2/full_scale", "v1/full_scale")
EGO4D_CLIP_FOLDERS = ("", "clips", "v2/clips", "v1/clips")


def _ego4d_videos(text: str, release: str, layout: str, out: AnnotationFile):
    """The records of an Ego4D benchmark file's `videos` list that name a video_uid; each other one is a problem."""
    data = parse_json(text)
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list):
        raise FormatError(f"{release} files hold {{\"videos\": [{layout}]}}")
    for number, video in enumerate(data["videos"]):
        if not isinstance(video, dict) or not isinstance(video.get("video_uid"), str) or not video["video_uid"]:
            out.problems.append(RecordProblem(f"video {number}", "annotation_record_malformed",
                                              f"video {number} has no video_uid", video))
            continue
        yield data, video


def read_ego4d_nlq(text: str) -> AnnotationFile:
    out = AnnotationFile()
    for _, video in _ego4d_videos(text, "Ego4D NLQ", "{video_uid, clips: [{annotations: [{language_queries}]}]}", out):
        segments, clips, clip_records = [], [], []
        subset = renamed_fields(video, {"split": "subset"})
        for clip in video.get("clips") or []:
            if not isinstance(clip, dict):
                continue
            clips.append({k: clip.get(k) for k in ("clip_uid", "video_start_sec", "video_end_sec")})
            on_video, on_clip = _nlq_queries(clip)
            segments += on_video
            if isinstance(clip.get("clip_uid"), str) and clip["clip_uid"]:
                clip_records.append(VideoRecord(clip["clip_uid"], {
                    "segments": on_clip, "video_uid": video["video_uid"], **subset,
                    "clip_span_s": [clip.get("video_start_sec"), clip.get("video_end_sec")]},
                    folders=EGO4D_CLIP_FOLDERS))
        meta = {"segments": segments, "clips": clips, **subset}
        out.videos.append(VideoRecord(video["video_uid"], meta, folders=EGO4D_FOLDERS, fallbacks=tuple(clip_records)))
    return out


def _nlq_queries(clip: dict) -> tuple[list, list]:
    """A clip's queries as segments on the full video (`video_*_sec`) and on the clip (`clip_*_sec`)."""
    on_video, on_clip = [], []
    for annotation in clip.get("annotations") or []:
        queries = annotation.get("language_queries") if isinstance(annotation, dict) else None
        for query in queries if isinstance(queries, list) else []:
            if not isinstance(query, dict):
                on_video.append(query)
                on_clip.append(query)
                continue
            about = {"annotation_uid": annotation.get("annotation_uid"), "template": query.get("template")}
            on_video.append(make_segment([query.get("video_start_sec"), query.get("video_end_sec")], query.get("query"),
                                         clip_uid=clip.get("clip_uid"), **about))
            on_clip.append(make_segment([query.get("clip_start_sec"), query.get("clip_end_sec")], query.get("query"),
                                        **about))
    return on_video, on_clip


GOALSTEP_ITEM = {"step_category": "step_category", "is_relevant": "is_relevant", "is_continued": "is_continued",
                 "is_procedural": "is_procedural"}


def _goalstep_item(step: Any, level: str) -> Any:
    if not isinstance(step, dict):
        return step   # rejected by the annotations stage, with its index
    return make_segment([step.get("start_time"), step.get("end_time")], step.get("step_description"), level=level,
                        **renamed_fields(step, GOALSTEP_ITEM))


def read_ego4d_goalstep(text: str) -> AnnotationFile:
    out = AnnotationFile()
    for data, video in _ego4d_videos(text, "Ego4D Goal-Step", "{video_uid, start_time, end_time, goal_category, "
                                     "goal_description, segments: [{start_time, end_time, step_description, segments}]}",
                                     out):
        subset = {"subset": data["split"]} if isinstance(data.get("split"), str) else {}
        segments = []
        for step in video.get("segments") if isinstance(video.get("segments"), list) else []:
            segments.append(_goalstep_item(step, "step"))
            substeps = step.get("segments") if isinstance(step, dict) else None
            if isinstance(substeps, list):
                segments += [_goalstep_item(sub, "substep") for sub in substeps]
        goal = video.get("goal_category")
        queries = [{"text": q["step_description"].strip(), "segment_count": q.get("segment_count")}
                   for q in video.get("step_segments") or [] if isinstance(q, dict)
                   and isinstance(q.get("step_description"), str) and q["step_description"].strip()]
        meta = {"segments": segments, "labels": [goal.strip()] if isinstance(goal, str) and goal.strip() else [],
                **subset, **renamed_fields(video, {"goal_description": "goal_description", "goal_wikihow_url": "wikihow_url",
                                                   "summary": "goal_summary", "is_procedural": "is_procedural",
                                                   "start_time": "goal_start_s", "end_time": "goal_end_s"}),
                **({"step_queries": queries} if queries else {})}
        out.videos.append(VideoRecord(video["video_uid"], meta, folders=EGO4D_FOLDERS))
    return out
