"""Multi-turn LLaVA JSON from `streaming_dialogue` samples (the timed dialogue as LLaVA conversations).

Record: LLaVA-Video-178K's `{id, video, data_source, conversations: [{from: human | gpt, value}]}` (as
`llava.py`), turns alternating human / gpt with `<image>` opening the first human turn. A streaming
dialogue has one user query and several assistant turns, so each assistant turn after the first is
asked for by a `NEXT_QUERY` human turn; every turn opens with its time in the export's time format
(the query's time on the first human turn, each reply's time on its own turn), so the model learns when
to speak. Times are relative to the visual the record points at.
"""
from __future__ import annotations

import os

from .base import ExportOptions, ExportResult, prepare, safe_name, write_json
from .livechat import no_turns, timed_turns
from .llava import IMAGE_TOKEN
from .source import BuildDir
from .timefmt import SampleError

NEXT_QUERY = "What happens next?"


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    prepared, planner, skipped = prepare(build, dest, opts, accept=no_turns)
    video_folder = os.path.join(planner.dest, "videos")
    records = []
    for p in prepared:
        def when(t: float) -> str:
            return p.tf.render_text("{{t:%s}}" % (t + p.tf.origin_s))

        try:
            turns = timed_turns(p.item, p.tf)
            (_, query, asked), replies = turns[0], turns[1:]
            conv = [{"from": "human", "value": f"{IMAGE_TOKEN}\n{when(asked)} {query}"}]
            for k, (_, text, at) in enumerate(replies):
                if k:
                    conv.append({"from": "human", "value": NEXT_QUERY})
                conv.append({"from": "gpt", "value": f"{when(at)} {text}"})
        except SampleError as e:   # a time the export's format cannot write (`vtg` past 9999.9 s)
            skipped[e.reason] += 1
            continue
        records.append({"id": p.item.id, "video": planner.ref(p.visual, video_folder), "data_source": name,
                        "conversations": conv})
    result = ExportResult("llava_dialogue", planner.dest, media=planner.stats, skipped=dict(skipped))
    records.sort(key=lambda r: r["id"])   # stable across runs: parts are read in any order
    fname = f"{name}_dialogue.json"
    write_json(os.path.join(planner.dest, fname), records)
    result.files.append(fname)
    result.rows[fname] = len(records)
    result.notes.append(f"train with --data_path {os.path.join(planner.dest, fname)} --video_folder {video_folder}")
    return result
