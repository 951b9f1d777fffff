"""ms-swift RLHF (DPO / ORPO / SimPO / CPO) JSONL from `preference_pairs` samples.

Record (ms-swift docs, Customization/Custom-dataset "RLHF": the standard keys are `messages`,
`rejected_response`, `images`, `videos`, …): `{"messages": [{"role": "user", "content": "<video>question"},
{"role": "assistant", "content": chosen}], "rejected_response": rejected, "videos": [path]}`. Video paths
are absolute (ms-swift reads them as given).

    swift rlhf --rlhf_type dpo --dataset <dest>/<name>_preference.jsonl ...
"""
from __future__ import annotations

import os

from .base import ExportOptions, ExportResult, safe_name, write_jsonl
from .preference import VIDEO_TAG, pairs
from .source import BuildDir


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    found, planner, skipped = pairs(build, dest, opts)
    records = [{"id": x.prepared.item.id,
                "messages": [{"role": "user", "content": f"{VIDEO_TAG}{x.question}"},
                             {"role": "assistant", "content": x.chosen}],
                "rejected_response": x.rejected, "videos": [planner.abspath(x.prepared.visual)]} for x in found]
    result = ExportResult("swift_preference", planner.dest, media=planner.stats, skipped=dict(skipped))
    records.sort(key=lambda r: r["id"])   # stable across runs: parts are read in any order
    fname = f"{name}_preference.jsonl"
    result.rows[fname] = write_jsonl(os.path.join(planner.dest, fname), records)
    result.files.append(fname)
    result.notes.append(f"swift rlhf --rlhf_type dpo --dataset {os.path.join(planner.dest, fname)} ...")
    return result
