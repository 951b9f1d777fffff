"""ShareGPT4Video: `<name>_sharegpt4video.jsonl`, one line per video clip,
`{video_id, zip_folder, captions: [{idx, content}, ...]}`.

Fields confirmed in the loaders of the release file `sharegpt4video_40k.jsonl` (huggingface.co/datasets/
ShareGPT4Video/ShareGPT4Video; e.g. ml-energy/benchmark `benchmark/diffusion/image-to-video/
sharegpt4video/sample.py`: `sample["video_id"]`, `sample["zip_folder"]`, `sample["captions"]` whose item
with `idx == "-1"` holds the whole-video caption). Here the per-keyframe differential captions
(`caption_steps`) are `idx` "0", "1", ... and the clip's final caption is "-1"; `zip_folder` is the
folder (inside the export) that holds `<video_id>.mp4`, where the release named its zip shard.
"""
from __future__ import annotations

import os

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, prepare, safe_name, write_jsonl
from ..source import BuildDir
from .common import clip_item, clip_rows, require, result_for


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    rows = require([r for r in clip_rows(build) if r.get(R.CAPTION)], build, "sharegpt4video", "no captioned clip")
    prepared, planner, skipped = prepare(build, dest, opts, items=[clip_item(r) for r in rows])
    records = []
    for p in prepared:
        row = p.item.row
        captions = [{"idx": str(i), "content": s["text"]} for i, s in enumerate(row.get(R.CAPTION_STEPS) or [])]
        captions.append({"idx": "-1", "content": row[R.CAPTION]})
        ref = planner.ref(p.visual, planner.dest)
        records.append({"video_id": p.visual.stem, "zip_folder": os.path.dirname(ref), "captions": captions})
    result = result_for("sharegpt4video", planner, skipped, [])
    fname = f"{name}_sharegpt4video.jsonl"
    result.rows[fname] = write_jsonl(os.path.join(planner.dest, fname), records)
    result.files.append(fname)
    return result
