"""ms-swift JSONL: `{"messages": [...], "videos": [path]}` with `<video>` tags, one file per subset.

Same records as the LLaMA-Factory export, but as JSONL and with absolute video paths (ms-swift reads
media paths as given, relative to the working directory, so absolute paths work from anywhere).
Clips without a clip file are cut with ffmpeg.

    swift sft --dataset <dest>/<name>_mcq.jsonl ...
"""
from __future__ import annotations

import os

from .base import ExportOptions, ExportResult, safe_name, write_jsonl
from .sharegpt import messages_records
from .source import SUBSETS, BuildDir


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    groups, planner, skipped = messages_records(build, dest, opts, absolute=True)
    result = ExportResult("swift", planner.dest, media=planner.stats, skipped=dict(skipped))
    for subset in SUBSETS:
        if subset not in groups:
            continue
        fname = f"{name}_{subset}.jsonl"
        result.rows[fname] = write_jsonl(os.path.join(planner.dest, fname), groups[subset])
        result.files.append(fname)
    result.notes.append("swift sft --dataset " + " ".join(os.path.join(planner.dest, f) for f in result.files))
    return result
