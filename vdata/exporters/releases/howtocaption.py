"""HowToCaption: `{video_id: {"start": [...], "end": [...], "text": [[caption, ...], ...]}}`, written
as `<name>_howtocaption.pickle` (the release's form) and the same object as `<name>_howtocaption.json`.

Layout confirmed in ninatu/howtocaption `dataset/readme.md` ("a dictionary with video-ids as keys; for
each video 'start', 'end' and 'text' lists of the same lengths", seconds in the video, `text` a list of
captions per position) and `howtocaption/align_and_filter.py`, which writes it (whole seconds). The
captions are the videos' timed caption events (`dense_events`, video-absolute), else each clip's
caption over the clip interval.
"""
from __future__ import annotations

import math
import os
import pickle

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, prepare, safe_name, write_json
from ..source import BuildDir, Item
from .common import by_video, clip_rows, require, result_for


def timed_captions(clips: list[dict]) -> list[tuple[int, int, str]]:
    seen, out = set(), []
    events = [(e["start_s"], e["end_s"], e["description"]) for c in clips for e in c.get(R.DENSE_EVENTS) or []]
    if not events:
        events = [(c[R.START_S], c[R.END_S], c[R.CAPTION]) for c in clips if c.get(R.CAPTION)]
    for a, b, text in events:
        key = (int(math.floor(a)), max(int(math.ceil(b)), int(math.floor(a)) + 1), text.strip())
        if text and text.strip() and key not in seen:
            seen.add(key)
            out.append(key)
    return out


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    groups = {vid: timed_captions(clips) for vid, clips in by_video(clip_rows(build)).items()}
    firsts = {vid: clips[0] for vid, clips in by_video(clip_rows(build)).items()}
    videos = [Item({**firsts[v], **{c: None for c in R.CLIP_COLUMNS}, R.SAMPLE_ID: v, R.TASK: "caption"}, "captions")
              for v, caps in groups.items() if caps]
    require(videos, build, "howtocaption", "no timed caption (dense events or captioned clips)")
    prepared, planner, skipped = prepare(build, dest, opts, items=videos)
    data = {}
    for p in prepared:
        caps = groups[p.item.id]
        data[p.visual.stem] = {"start": [a for a, _, _ in caps], "end": [b for _, b, _ in caps],
                               "text": [[t] for _, _, t in caps]}
    result = result_for("howtocaption", planner, skipped, [])
    for ext in ("json", "pickle"):
        fname = f"{name}_howtocaption.{ext}"
        path = os.path.join(planner.dest, fname)
        if ext == "json":
            write_json(path, data)
        else:
            with open(path + ".tmp", "wb") as f:
                pickle.dump(data, f)
            os.replace(path + ".tmp", path)
        result.files.append(fname)
    result.rows[f"{name}_howtocaption.json"] = sum(len(v["start"]) for v in data.values())
    return result
