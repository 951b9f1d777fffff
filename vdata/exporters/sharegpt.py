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


def write_dataset_info(dest: str, fmt: str, entries: dict, result: ExportResult, gone=()) -> None:
    """`<dest>/dataset_info.json`: this export's `entries` merged into the file there. The datasets other tools
    or the user registered stay; dropped are the entries named in `gone` and those whose file an earlier
    export of `fmt` wrote here and this one does not write (the stale-file sweep after the export removes
    that file: `vdata.exporters._forget_stale_files`), e.g. the files of another `--name` (outside check h26
    F11: LLaMA-Factory listed datasets whose files were gone)."""
    import json

    from . import EXPORT_LEDGER

    path = os.path.join(dest, "dataset_info.json")
    info, earlier = {}, []
    if os.path.exists(path):   # keep other datasets registered in the same folder
        with open(path) as f:
            info = json.load(f)
    try:
        with open(os.path.join(dest, EXPORT_LEDGER), encoding="utf-8") as f:
            earlier = json.load(f).get(fmt) or []
    except (OSError, ValueError, AttributeError):
        pass
    stale = {f for f in earlier if isinstance(f, str)} - set(result.files) - {"dataset_info.json"}
    stale -= {e.get("file_name") for e in entries.values()}
    for key in [k for k, e in info.items() if k in gone or (isinstance(e, dict) and e.get("file_name") in stale)]:
        del info[key]
    info.update(entries)
    write_json(path, info, indent=2)
    result.files.append("dataset_info.json")


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
    entries, gone = {}, []
    for subset in SUBSETS:
        if subset not in groups:
            # this dataset's subset that an earlier export here wrote and this one does not: its file goes (the
            # stale-file sweep), so its entry goes too, or LLaMA-Factory stops on "file not found" at training start
            gone.append(f"{name}_{subset}")
            continue
        fname = f"{name}_{subset}.json"
        write_json(os.path.join(planner.dest, fname), groups[subset])
        entries[f"{name}_{subset}"] = sharegpt_info(fname)
        result.files.append(fname)
        result.rows[fname] = len(groups[subset])
    write_dataset_info(planner.dest, "sharegpt", entries, result, gone)
    result.notes.append(f"llamafactory-cli train ... --dataset_dir {planner.dest} --dataset "
                        + ",".join(f"{name}_{s}" for s in SUBSETS if s in groups))
    return result
