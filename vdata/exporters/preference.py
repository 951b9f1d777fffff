"""LLaMA-Factory preference data (DPO / ORPO / SimPO / RM) from `preference_pairs` samples, plus the pair
records the ms-swift and TRL preference exporters share.

Record (LLaMA-Factory `data/README.md`, "Preference Dataset" in sharegpt format):
`{"conversations": [{"from": "human", "value": "<video>question"}], "chosen": {"from": "gpt", "value": …},
"rejected": {"from": "gpt", "value": …}, "videos": [path]}`, registered in `dataset_info.json` with
`"ranking": true`, `"formatting": "sharegpt"` and the columns `messages` / `chosen` / `rejected` /
`videos`. The converter's rules: the conversation alternates human / gpt starting with human and has an
odd number of turns (ranking), `chosen` and `rejected` are single gpt turns, and a `<video>` tag stands
for each entry of `videos`. Only samples with both `chosen` and `rejected` are exported
(`no_preference` counts the rest). Video paths are relative to the export folder (= `dataset_dir`).

    llamafactory-cli train --stage dpo ... --dataset_dir <dest> --dataset <name>_preference
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from vdata.schemas import records as R

from .base import ExportOptions, ExportResult, Prepared, prepare, safe_name, write_json
from .dialog import SampleError, question_text
from .sharegpt import write_dataset_info
from .source import BuildDir, Item

VIDEO_TAG = "<video>"


@dataclass
class Pair:
    prepared: Prepared
    question: str
    chosen: str
    rejected: str


def not_a_pair(item: Item) -> str | None:
    chosen, rejected = item.get(R.CHOSEN), item.get(R.REJECTED)
    if not chosen or not rejected:
        return "no_preference"
    if chosen.strip() == rejected.strip():   # a pair that teaches nothing; generate never writes one
        return "same_answers"
    return None


def pairs(build: BuildDir, dest: str, opts: ExportOptions):
    prepared, planner, skipped = prepare(build, dest, opts, accept=not_a_pair)
    out = []
    for p in prepared:
        try:
            q = question_text(p.item, p.tf)
            chosen, rejected = p.tf.render_text(p.item.get(R.CHOSEN)), p.tf.render_text(p.item.get(R.REJECTED))
        except SampleError as e:
            skipped[e.reason] += 1
            continue
        out.append(Pair(p, q, chosen, rejected))
    return out, planner, skipped


def preference_info(file_name: str) -> dict:
    return {"file_name": file_name, "formatting": "sharegpt", "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "videos": "videos"}}


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    found, planner, skipped = pairs(build, dest, opts)
    records = [{"id": x.prepared.item.id,
                "conversations": [{"from": "human", "value": f"{VIDEO_TAG}{x.question}"}],
                "chosen": {"from": "gpt", "value": x.chosen}, "rejected": {"from": "gpt", "value": x.rejected},
                "videos": [planner.ref(x.prepared.visual, planner.dest)]} for x in found]
    result = ExportResult("sharegpt_preference", planner.dest, media=planner.stats, skipped=dict(skipped))
    records.sort(key=lambda r: r["id"])   # stable across runs: parts are read in any order
    fname = f"{name}_preference.json"
    write_json(os.path.join(planner.dest, fname), records)
    result.files.append(fname)
    result.rows[fname] = len(records)
    write_dataset_info(planner.dest, "sharegpt_preference", {f"{name}_preference": preference_info(fname)}, result)
    result.notes.append(f"llamafactory-cli train --stage dpo ... --dataset_dir {planner.dest} --dataset {name}_preference")
    return result
