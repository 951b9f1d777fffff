"""TimeSuite / TimeIT (VideoChat2 instruction format): a JSON list of
`{video, QA: [{q, a}], start?, end?}`, times written "12.3 - 20.5 seconds".

Layout confirmed in OpenGVLab/TimeSuite: the TimeIT files it ships (`dataset/TimeIT/*/instruct_*.json`,
e.g. `{"video": "Charades/videos/AO8RW.mp4", "QA": [{"q": ..., "a": "The given query happens in
0.0 - 6.9 seconds."}]}`) and the loader `dataset/it_dataset.py` (`ITVidTrainDataset.get_anno`:
`video`, `QA` with `q`/`a` and an optional instruction `i`, and `start`/`end` to read only that
interval of the video). `configs/instruction_data.py` pairs each JSON with its video root: here
`<dest>/videos`.

Every task is exported (one QA turn per sample). A clip without a clip file is the source video plus
`start`/`end`; times in the texts count from the clip's start.
"""
from __future__ import annotations

import os

from ..base import ExportOptions, ExportResult, prepare, safe_name
from ..source import BuildDir
from .common import add_json, readable, release_items, release_options, result_for


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    notes: list[str] = []
    opts = release_options(opts, "timesuite", notes)
    name = safe_name(opts.name or build.name)
    prepared, planner, skipped = prepare(build, dest, opts, clip_strategy="interval",
                                         items=release_items(build, opts.tasks))
    root = os.path.join(planner.dest, "videos")
    records = []
    for p, q, a in readable(prepared, skipped):
        rec = {"video": planner.ref(p.visual, root), "QA": [{"q": q, "a": a}]}
        if p.visual.interval is not None:
            # a quarter frame inside: VideoChat2-family loaders floor start * fps (see Visual.loader_interval)
            rec["start"], rec["end"] = p.visual.loader_interval()
        records.append(rec)
    result = result_for("timesuite", planner, skipped, notes)
    fname = f"{name}_timeit.json"
    add_json(result, planner, fname, records, len(records))
    result.notes.append(f"TimeSuite configs/instruction_data.py entry: [{os.path.join(planner.dest, fname)!r}, {root!r}, 'video']")
    return result
