"""VTG-IT (VTG-LLM's instruction data): a JSON list of `{video, QA: [{q, a}]}`, times written with
VTG-LLM's digit tokens (`<TIME_ZERO>`..`<TIME_NINE>`, `<TIME_DOT>`, six tokens a time).

Layout confirmed in gyxxyg/VTG-LLM `vtgllm/datasets/datasets/video_instruct_dataset.py`
(`Video_Instruct_Dataset.__getitem__`: `sample['video']` joined to `vis_root`, `sample['QA']` with
`q`/`a`; `number_to_token` writes a time as four zero-padded integer digits, a dot and one decimal) and
`utils/parse_annotation_tvg.py` (answers "<start> - <end> seconds, <text>", as in TimeIT). Clips are cut
(the loader reads no interval); times count from the clip's start.
"""
from __future__ import annotations

import os

from ..base import ExportOptions, ExportResult, prepare, safe_name
from ..source import BuildDir
from .common import add_json, readable, release_items, release_options, result_for


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    notes: list[str] = []
    opts = release_options(opts, "vtg", notes)
    name = safe_name(opts.name or build.name)
    prepared, planner, skipped = prepare(build, dest, opts, items=release_items(build, opts.tasks))
    root = os.path.join(planner.dest, "videos")
    records = [{"video": planner.ref(p.visual, root), "QA": [{"q": q, "a": a}]} for p, q, a in readable(prepared, skipped)]
    result = result_for("vtg_it", planner, skipped, notes)
    fname = f"{name}_vtg-it.json"
    add_json(result, planner, fname, records, len(records))
    result.notes.append(f"train with ann_root {os.path.join(planner.dest, fname)} and vis_root {root}")
    return result
