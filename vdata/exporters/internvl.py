"""InternVL chat-data JSONL: `{id, video, conversations}` with `<video>\n` in the first human turn.

A clip without a clip file is *not* cut: the record names the source video and the clip interval,
`clip: [start_s, end_s]` (seconds in the source video), so InternVL samples frames inside it. Times in
the texts are relative to the clip start, like the frames the model sees. `video` is relative to the
meta file's `root` (`<dest>/videos/`); `<name>_meta.json` is InternVL's `--meta_path` file.
"""
from __future__ import annotations

import os

from .base import ExportOptions, ExportResult, prepare, safe_name, write_json, write_jsonl
from .dialog import turns
from .source import SUBSETS, BuildDir

VIDEO_TOKEN = "<video>"


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    prepared, planner, skipped = prepare(build, dest, opts, clip_strategy="interval")
    root = os.path.join(planner.dest, "videos")
    groups: dict[str, list] = {}
    for p, t in turns(prepared, skipped):
        rec = {"id": p.item.id, "video": planner.ref(p.visual, root),
               "conversations": [{"from": "human", "value": f"{VIDEO_TOKEN}\n{t.user}"},
                                 {"from": "gpt", "value": t.assistant}]}
        if p.visual.interval is not None:
            rec["clip"] = p.visual.loader_interval()   # a quarter frame inside: InternVL floors start * fps
        groups.setdefault(p.item.subset, []).append(rec)
    result = ExportResult("internvl", planner.dest, media=planner.stats, skipped=dict(skipped))
    meta = {}
    for subset in SUBSETS:
        if subset not in groups:
            continue
        fname = f"{name}_{subset}.jsonl"
        result.rows[fname] = write_jsonl(os.path.join(planner.dest, fname), groups[subset])
        result.files.append(fname)
        meta[f"{name}_{subset}"] = {"root": root + "/", "annotation": os.path.join(planner.dest, fname),
                                    "data_augment": False, "repeat_time": 1, "length": result.rows[fname]}
    write_json(os.path.join(planner.dest, f"{name}_meta.json"), meta, indent=2)
    result.files.append(f"{name}_meta.json")
    return result
