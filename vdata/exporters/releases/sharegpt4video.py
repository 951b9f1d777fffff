"""ShareGPT4Video: `<name>_sharegpt4video.jsonl`, one line per video clip,
`{video_id, video_path, zip_folder, captions: [{idx, content}, ...]}`.

Fields confirmed in the loaders of the release file `sharegpt4video_40k.jsonl` (huggingface.co/datasets/
ShareGPT4Video/ShareGPT4Video; the GitHub repository ShareGPT4Omni/ShareGPT4Video has no reader of it):
ml-energy/benchmark `benchmark/diffusion/image-to-video/sharegpt4video/sample.py` (`sample["video_id"]`,
`sample["zip_folder"]` == the zip shard's file name, e.g. "panda_videos_1.zip", `sample["captions"]`
whose item with `idx == "-1"` holds the whole-video caption) and quicksviewer
`preprocess/convert_sharegpt4video.py` (`os.path.join(video_dir, ex['video_path'])`, `Path(ex['zip_folder'])
.stem` as the source name); other loaders open `os.path.join(<video root>, item['video_path'])` too.
Here the per-keyframe differential captions (`caption_steps`) are `idx` "0", "1", ... and the clip's
final caption is "-1". `video_path` is the clip's file relative to the export folder (the folder a reader
passes as its video root; absolute with `--media none`). vdata ships the videos unzipped, so
`zip_folder` is `<folder>.zip` for the folder that holds them (`videos/clips` -> "clips.zip"): the
release's form, whose stem names the folder, not a file that exists.
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
        # the release's zip_folder is a shard file name (readers compare it, or take its stem): never a path
        shard = os.path.basename(os.path.dirname(ref)) or "videos"
        records.append({"video_id": p.visual.stem, "video_path": ref, "zip_folder": f"{shard}.zip",
                        "captions": captions})
    result = result_for("sharegpt4video", planner, skipped, [])
    fname = f"{name}_sharegpt4video.jsonl"
    result.rows[fname] = write_jsonl(os.path.join(planner.dest, fname), records)
    result.files.append(fname)
    return result
