"""TRL DPOTrainer preference data (conversational, vision) from `preference_pairs` samples.

Record (TRL docs "Dataset formats", preference type, conversational format; vision datasets carry an
`images` column and `{"type": "image"}` content parts): `{"images": [jpg, …], "prompt": [{"role": "user",
"content": [{"type": "image"}, …, {"type": "text", "text": question}]}], "chosen": [{"role": "assistant",
"content": [{"type": "text", "text": …}]}], "rejected": [same shape]}` — one `{"type": "image"}` per image.
The images are the sample's sampled frames (its clip's `frames` in the clips table), written as JPEG files under
`images/` and listed relative to the export folder; `video` keeps the clip too, for trainers that take
video. A sample without frames is skipped (`no_frames`). Load with
`datasets.load_dataset("json", data_files=...)` and map the image paths to PIL images.
"""
from __future__ import annotations

import os

from vdata.schemas import records as R

from .base import ExportOptions, ExportResult, safe_name, write_jsonl
from .preference import pairs
from .source import BuildDir, clip_frames


def frames_by_sample(build: BuildDir, items) -> dict[str, list]:
    """{sample id: its clip's sampled frames}, from the clips table (the item rows carry no frames)."""
    frames = clip_frames(build, {it.row.get(R.CLIP_ID) for it in items} - {None})
    return {it.id: frames.get(it.row.get(R.CLIP_ID)) for it in items}


def _text(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": [{"type": "text", "text": text}]}]


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    found, planner, skipped = pairs(build, dest, opts)
    records = []
    frames_of = frames_by_sample(build, [x.prepared.item for x in found])
    for x in found:
        item = x.prepared.item
        frames = [f for f in frames_of.get(item.id) or [] if f and f.get(R.FRAME_JPEG)]
        if not frames:
            skipped["no_frames"] += 1
            continue
        images = []
        for k, f in enumerate(frames):
            rel = os.path.join("images", f"{item.id}_{k}.jpg")
            os.makedirs(os.path.join(planner.dest, "images"), exist_ok=True)
            with open(os.path.join(planner.dest, rel), "wb") as fh:
                fh.write(f[R.FRAME_JPEG])
            images.append(rel)
        prompt = [{"role": "user", "content": [{"type": "image"} for _ in images] + [{"type": "text", "text": x.question}]}]
        records.append({"id": item.id, "images": images, "video": planner.ref(x.prepared.visual, planner.dest),
                        "prompt": prompt, "chosen": _text("assistant", x.chosen),
                        "rejected": _text("assistant", x.rejected)})
    result = ExportResult("trl_preference", planner.dest, media=planner.stats, skipped=dict(skipped))
    records.sort(key=lambda r: r["id"])   # stable across runs: parts are read in any order
    fname = f"{name}_preference.jsonl"
    result.rows[fname] = write_jsonl(os.path.join(planner.dest, fname), records)
    result.files.append(fname)
    result.notes.append(f"load_dataset('json', data_files='{os.path.join(planner.dest, fname)}') for trl.DPOTrainer")
    return result
