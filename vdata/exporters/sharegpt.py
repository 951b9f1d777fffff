"""LLaMA-Factory "sharegpt" data, one JSON list per subset, plus its `dataset_info.json` entries.

Record: `{"messages": [{"role": "user", "content": "<video>…"}, {"role": "assistant", "content": …}],
"videos": [path]}` — one `<video>` tag per entry of `videos`, turns alternating user/assistant (the two
rules LLaMA-Factory's converter and mm_plugin check). Video paths are relative to the export folder,
which is both `dataset_dir` and LLaMA-Factory's default `media_dir`; with `--media none` they are
absolute. Clips without a clip file are cut with ffmpeg (LLaMA-Factory takes no interval).

    llamafactory-cli train ... --dataset_dir <dest> --dataset <name>_mcq,<name>_open_qa
"""
from __future__ import annotations

import os

from .base import ExportOptions, ExportResult, prepare, safe_name, write_json
from .dialog import turns
from .source import SUBSETS, BuildDir

VIDEO_TAG = "<video>"


def sharegpt_info(file_name: str) -> dict:
    return {"file_name": file_name, "formatting": "sharegpt",
            "columns": {"messages": "messages", "videos": "videos"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}


def messages_records(build: BuildDir, dest: str, opts: ExportOptions, absolute: bool = False):
    """Shared by the LLaMA-Factory and ms-swift exporters: records grouped by subset."""
    prepared, planner, skipped = prepare(build, dest, opts)
    groups: dict[str, list] = {}
    for p, t in turns(prepared, skipped):
        video = planner.abspath(p.visual) if absolute else planner.ref(p.visual, planner.dest)
        groups.setdefault(p.item.subset, []).append({
            "id": p.item.id,
            "messages": [{"role": "user", "content": f"{VIDEO_TAG}{t.user}"},
                         {"role": "assistant", "content": t.assistant}],
            "videos": [video],
        })
    return groups, planner, skipped


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    groups, planner, skipped = messages_records(build, dest, opts)
    result = ExportResult("sharegpt", planner.dest, media=planner.stats, skipped=dict(skipped))
    info_path = os.path.join(planner.dest, "dataset_info.json")
    info = {}
    if os.path.exists(info_path):   # keep other datasets registered in the same folder
        import json

        with open(info_path) as f:
            info = json.load(f)
    for subset in SUBSETS:
        if subset not in groups:
            # this dataset's subset that an earlier export here wrote and this one does not: its file goes (the
            # stale-file sweep), so its entry goes too, or LLaMA-Factory stops on "file not found" at training start
            info.pop(f"{name}_{subset}", None)
            continue
        fname = f"{name}_{subset}.json"
        write_json(os.path.join(planner.dest, fname), groups[subset])
        info[f"{name}_{subset}"] = sharegpt_info(fname)
        result.files.append(fname)
        result.rows[fname] = len(groups[subset])
    write_json(info_path, info, indent=2)
    result.files.append("dataset_info.json")
    result.notes.append(f"llamafactory-cli train ... --dataset_dir {planner.dest} --dataset "
                        + ",".join(f"{name}_{s}" for s in SUBSETS if s in groups))
    return result
