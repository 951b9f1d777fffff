"""HowToCaption: `{video_id: {"start": [...], "end": [...], "text": [[caption, ...], ...]}}`, written
as `<name>_howtocaption.pickle` (the release's form) and the same object as `<name>_howtocaption.json`.

Layout confirmed in ninatu/howtocaption `dataset/readme.md` ("a dictionary with video-ids as keys; for
each video 'start', 'end' and 'text' lists of the same lengths", seconds in the video, `text` a list of
captions per position) and `howtocaption/align_and_filter.py`, which writes it (whole seconds). The
captions are, per video, its `speech_captions` samples (HowToCaption's own method: captions written from
the narration and aligned to it; their `answer_spans` with the answer's lines), else its timed caption
events (`dense_events`, video-absolute), else each clip's caption over the clip interval.
"""
from __future__ import annotations

import math
import os
import pickle
import re
from collections import OrderedDict

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, prepare, safe_name, write_json
from ..source import BuildDir, Item, table_rows
from .common import RELEASE_COLUMNS, by_video, clip_rows, require, result_for

_SPAN = re.compile(r"\{\{span:[^{}]*\}\}")


def narrated_captions(build: BuildDir) -> OrderedDict:
    """Per video: (one of its rows, [(start, end, caption)]) from its `speech_captions` samples, which
    sit on the whole-video row at `scope: video` (where no clip row is kept)."""
    out: OrderedDict = OrderedDict()
    for row in table_rows(build.read_table(RELEASE_COLUMNS)):
        spans = row.get(R.ANSWER_SPANS) or []
        if row.get(R.TASK) != "speech_captions" or not spans:
            continue
        texts = [_SPAN.sub("", line).strip() for line in (row.get(R.ANSWER) or "").splitlines() if line.strip()]
        if len(texts) != len(spans):   # a pair sample: one caption, one span
            texts = [" ".join(texts)] if len(spans) == 1 else []
        _, events = out.setdefault(str(row.get(R.VIDEO_ID)), (row, []))
        events += [(s["start_s"], s["end_s"], t) for s, t in zip(spans, texts)]
    return out


def timed_captions(clips: list[dict], events: list | None = None) -> list[tuple[int, int, str]]:
    seen, out = set(), []
    events = sorted(events or [])
    if not events:
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
    narrated = narrated_captions(build)
    clips_of = by_video(clip_rows(build))
    firsts = {**{vid: row for vid, (row, _) in narrated.items()}, **{vid: clips[0] for vid, clips in clips_of.items()}}
    groups = {vid: timed_captions(clips_of.get(vid, []), narrated[vid][1] if vid in narrated else None) for vid in firsts}
    videos = [Item({**firsts[v], **{c: None for c in R.CLIP_COLUMNS}, R.SAMPLE_ID: v, R.TASK: "caption"}, "captions")
              for v, caps in groups.items() if caps]
    require(videos, build, "howtocaption", "no timed caption (speech_captions samples, dense events or captioned clips)")
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
