"""Grounded-VideoLLM: a JSON list of `{question_id, video_file, video_id, conversation, dataset_name}`,
the conversation LLaVA-style (`from`: human / gpt, `value`), `<image>\n` opening the first human turn,
times written `<12.30>` (seconds in angle brackets).

Layout confirmed in WHB139426/Grounded-Video-LLM `datasets/mix_grounded.py` and `datasets/mix_sft.py`
(`MixGrounded.__init__` reads `question_id`, `video_file` (joined to `video_path`), `video_id`,
`conversation`, `dataset_name`; `detect_timestamp_response` adds `<timestamp_grounding>` to questions
whose answers hold `<seconds>`, and `convert_time_position` turns each `<seconds>` into the token
`<min(int(N * t / duration), N)>` with N = num_temporal_tokens, 300 by default). Pre-computed `<k>`
tokens would be read as seconds by that regex, so the release form is always `<seconds>`.
"""
from __future__ import annotations

import os

from ..base import ExportOptions, ExportResult, prepare, safe_name
from ..source import BuildDir
from .common import add_json, readable, release_items, release_options, result_for

IMAGE_TOKEN = "<image>"


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    notes: list[str] = []
    opts = release_options(opts, "bracketed", notes)
    name = safe_name(opts.name or build.name)
    prepared, planner, skipped = prepare(build, dest, opts, items=release_items(build, opts.tasks))
    root = os.path.join(planner.dest, "videos")
    records = []
    for p, q, a in readable(prepared, skipped):
        records.append({"question_id": p.item.id, "video_file": planner.ref(p.visual, root),
                        "video_id": p.visual.stem,
                        "conversation": [{"from": "human", "value": f"{IMAGE_TOKEN}\n{q}"},
                                         {"from": "gpt", "value": a}],
                        "dataset_name": name})
    result = result_for("grounded_videollm", planner, skipped, notes)
    fname = f"{name}_grounded.json"
    add_json(result, planner, fname, records, len(records))
    result.notes.append(f"train with anno_path {os.path.join(planner.dest, fname)} and video_path {root}")
    return result
