"""LLaVA-Video-178K / LLaVA-OneVision JSON.

One JSON list per subset, named like LLaVA-Video-178K's files: `<name>_cap.json` (captions, dense
captions, chapters), `<name>_oe_qa.json` (open-ended: open QA, grounding, open CoT) and
`<name>_mc_qa.json` (multiple choice, CoT with options). Records are
`{id, video, data_source, conversations}` with `video` relative to the trainer's `--video_folder`
(= `<dest>/videos`; absolute with `--media none`) and the `<image>` token (LLaVA-NeXT uses it for video
too) opening the first human turn. `<name>.yaml` lists the files in LLaVA-NeXT's `--data_path` YAML form.
Its `json_path`s are absolute: LLaVA-NeXT (`llava/train/train.py`, `LazySupervisedDataset`) opens each
`json_path` as written, relative to the trainer's working directory, not to the YAML. An export to object
storage (`--dest s3://…`, an `output.dir` URL) names the files by their URL there (`relocate`): the
folder it was rendered in is gone, and a trainer reads a downloaded copy (fix the prefix after download).

`video_token="<video>"` opens the turn with `<video>` instead, for Video-LLaVA-style trainers:
PKU-YuanGroup/Video-LLaVA `videollava/train/train.py` `preprocess_multimodal` expands each `<video>` into
`num_frames` x `<image>` (one per frame feature), so one `<image>` for a video misaligns its frames;
orrzohar/Video-STaR, trained with that code, writes `'<video>\n' + question` (`videostar/data_generation.py`).

Clips without a clip file are cut with ffmpeg (the record has no field for an interval). Times in the
texts are relative to the start of the clip the model sees.
"""
from __future__ import annotations

import os

import yaml

from .base import ExportOptions, ExportResult, prepare, safe_name, write_json
from .dialog import turns
from .source import BuildDir, ExportError, subset_of

FILE_SUFFIX = {"captions": "cap", "open_qa": "oe_qa", "grounding": "oe_qa", "mcq": "mc_qa"}
IMAGE_TOKEN = "<image>"
VIDEO_TOKENS = (IMAGE_TOKEN, "<video>")   # LLaVA-NeXT / LLaVA-OneVision; Video-LLaVA, Video-STaR


def llava_file_kind(item) -> str:
    return FILE_SUFFIX[subset_of(item.task, item.get("options"))]


def export(build: BuildDir, dest: str, opts: ExportOptions, video_token: str = IMAGE_TOKEN) -> ExportResult:
    if video_token not in VIDEO_TOKENS:   # before anything is written: a wrong token trains silently misaligned
        raise ExportError(f"video_token must be one of {', '.join(VIDEO_TOKENS)}, not {video_token!r}")
    name = safe_name(opts.name or build.name)
    prepared, planner, skipped = prepare(build, dest, opts)
    video_folder = os.path.join(planner.dest, "videos")
    groups: dict[str, list] = {}
    for p, t in turns(prepared, skipped):
        groups.setdefault(llava_file_kind(p.item), []).append({
            "id": p.item.id,
            "video": planner.ref(p.visual, video_folder),
            "data_source": name,
            "conversations": [{"from": "human", "value": f"{video_token}\n{t.user}"},
                              {"from": "gpt", "value": t.assistant}],
        })
    result = ExportResult("llava", planner.dest, media=planner.stats, skipped=dict(skipped))
    datasets = []
    for kind in ("cap", "oe_qa", "mc_qa"):
        if kind not in groups:
            continue
        fname = f"{name}_{kind}.json"
        write_json(os.path.join(planner.dest, fname), groups[kind])
        result.files.append(fname)
        result.rows[fname] = len(groups[kind])
        datasets.append({"json_path": os.path.join(planner.dest, fname), "sampling_strategy": "all"})
    with open(os.path.join(planner.dest, f"{name}.yaml"), "w") as f:
        yaml.safe_dump({"datasets": datasets}, f, sort_keys=False)
    result.files.append(f"{name}.yaml")
    result.notes.append(f"train with --data_path {os.path.join(planner.dest, name + '.yaml')} "
                        f"--video_folder {video_folder}")
    return result


def relocate(local: str, dest: str, result: ExportResult) -> None:
    """An export rendered in `local` that goes up to the URL `dest` (`vdata.exporters._export_to_url`):
    the data_path YAML names each JSON file by its URL at `dest`, not by the local folder deleted after
    the upload."""
    for fname in result.files:
        if not fname.endswith(".yaml"):
            continue
        path = os.path.join(local, fname)
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        for d in data.get("datasets") or []:
            jp = d.get("json_path")
            if isinstance(jp, str) and os.path.isabs(jp):
                rel = os.path.relpath(os.path.realpath(jp), os.path.realpath(local))
                d["json_path"] = f"{dest.rstrip('/')}/{rel}"
        with open(path, "w") as f:
            yaml.safe_dump(data, f, sort_keys=False)
        result.notes.append(f"{fname} names the JSON files by their URL at {dest.rstrip('/')}: trainers read a "
                            "downloaded copy, so point its json_path entries at that copy (LLaVA-NeXT opens "
                            "json_path as written)")
