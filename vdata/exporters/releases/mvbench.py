"""MVBench: one JSON list per task, `json/<task>.json`, records `{video, question, candidates, answer}`
plus `start`/`end` (seconds in the video) for tasks that watch an interval of a longer video.

Layout confirmed in the MVBench loaders derived from OpenGVLab/Ask-Anything `video_chat2/mvbench.ipynb`
(e.g. the `MVBench_dataset.__getitem__` copies in several repos): `data['video']` joined to the task's
video prefix, `data['question']`, `data['candidates']` (option texts, no letters), `data['answer']`
(the correct candidate's text, matched with `c == answer`), and `data['start']`, `data['end']` read
when the task's `data_list` entry has `bound=True`. `data_list.json` here is that table:
`{task: [json file, video prefix, "video", bound]}`.

Every multiple-choice item (mcq, label_mcq, CoT with options) is exported; the task name is the
sample's `question_type` (falling back to its task). A clip without a clip file is the source video
plus its interval (so `bound` is true for that task); times in texts count from the clip's start.
"""
from __future__ import annotations

import os
import re

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, prepare, write_json
from ..source import BuildDir
from .common import add_json, mcq_fields, readable, release_items, release_options, result_for


def task_name(item) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", str(item.get(R.QUESTION_TYPE) or item.task).lower()).strip("_") or "task"


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    notes: list[str] = []
    opts = release_options(opts, "seconds", notes)
    prepared, planner, skipped = prepare(build, dest, opts, clip_strategy="interval", folder="video",
                                         items=release_items(build, opts.tasks),
                                         accept=lambda it: None if it.get(R.OPTIONS) else f"not_mcq:{it.task}")
    tasks: dict[str, list] = {}
    bound: dict[str, bool] = {}
    video_root = os.path.join(planner.dest, "video")
    for p, question, candidates, idx in readable(prepared, skipped, mcq_fields):
        if len(set(candidates)) != len(candidates):   # MVBench finds the answer by text: it must be unique
            skipped["duplicate_candidates"] += 1
            continue
        rec = {"video": planner.ref(p.visual, video_root), "question": question, "candidates": candidates,
               "answer": candidates[idx]}
        name = task_name(p.item)
        # a clip's bound a quarter frame inside (Visual.loader_interval): MVBench rounds start * fps
        start, end = p.visual.loader_interval() or (0.0, round(p.visual.duration_s or 0.0, 3))
        bound[name] = bound.get(name, False) or p.visual.interval is not None
        tasks.setdefault(name, []).append((rec, start, end))
    result = result_for("mvbench", planner, skipped, notes)
    os.makedirs(os.path.join(planner.dest, "json"), exist_ok=True)
    data_list = {}
    for name, entries in tasks.items():
        # a bound task: every record carries start/end (a whole video spans all of it)
        recs = [{**r, "start": a, "end": b} if bound[name] else r for r, a, b in entries]
        fname = f"json/{name}.json"
        add_json(result, planner, fname, recs, len(recs))
        data_list[name] = [f"{name}.json", video_root, "video", bound[name]]
    write_json(os.path.join(planner.dest, "data_list.json"), data_list, indent=1)
    result.files.append("data_list.json")
    return result
