"""VideoLLM-online livechat JSON from `streaming_dialogue` samples.

Record (showlab/videollm-online `data/ego4d/livechat.py` reads `anno['video_uid']` and
`anno['conversation']`, each message `{role, content, time}`; `data/livechat/filter.py` keeps the same
layout): `{"id", "video_uid", "video", "duration", "conversation": [{"role": "user" | "assistant",
"content", "time"}]}`. The loader's rules: the first message is the user's, at a time > 0 and within the
video, with content; times never decrease. Times are seconds from the start of the visual the record
points at (`video`: the clip, or the whole video at `scope: video`); a query at the visual's very start
is moved to `FIRST_TIME_S`, since the loader drops a dialogue that opens at 0.

The loader places each message on its 2-fps frame grid (`ceil_time_by_fps`, `frame_fps: 2`): an assistant
reply on the same frame as the one before overwrites it or is not appended, so such replies are written
as one message (their texts joined as sentences), at the later time.
"""
from __future__ import annotations

import math
import os
import re

from vdata.schemas import records as R

from .base import ExportOptions, ExportResult, prepare, safe_name, write_json
from .source import BuildDir, Item
from .timefmt import SampleError

FIRST_TIME_S = 0.1
FRAME_FPS = 2   # VideoLLM-online's frame rate: its loader's time grid


def no_turns(item: Item) -> str | None:
    turns = item.get(R.TURNS) or []
    if len(turns) < 2 or turns[0]["role"] != "user":
        return "no_dialogue"
    return None


def timed_turns(item: Item, tf) -> list[tuple[str, str, float]]:
    """(role, content, seconds from the visual's start), times non-decreasing, the first > 0."""
    out: list[tuple[str, str, float]] = []
    for t in item.get(R.TURNS):
        at = tf.local(t["time_s"])
        if not out:
            at = max(at, FIRST_TIME_S)
        else:
            at = max(at, out[-1][2])
        text = tf.render_text(t["content"])
        if out and t["role"] == out[-1][0] == "assistant" and _frame(at) == _frame(out[-1][2]):
            joint = "" if re.search(r"[.!?;:]\W*$", out[-1][1]) else "."   # two steps, not one run-on instruction
            out[-1] = ("assistant", f"{out[-1][1]}{joint} {text}", round(at, 3))   # one frame, one reply
            continue
        out.append((t["role"], text, round(at, 3)))
    return out


def _frame(seconds: float) -> int:
    """The loader's frame of a message time (ceil to the frame grid; a hair of float error is not a frame)."""
    return math.ceil(round(seconds * FRAME_FPS, 6))


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    prepared, planner, skipped = prepare(build, dest, opts, accept=no_turns)
    records = []
    for p in prepared:
        try:
            turns = timed_turns(p.item, p.tf)
        except SampleError as e:   # a time the export's format cannot write (`vtg` past 9999.9 s)
            skipped[e.reason] += 1
            continue
        records.append({"id": p.item.id, "video_uid": p.visual.video_id or p.item.id,
                        "video": planner.ref(p.visual, planner.dest), "duration": p.tf.duration_s,
                        "conversation": [{"role": r, "content": c, "time": t} for r, c, t in turns]})
    result = ExportResult("livechat", planner.dest, media=planner.stats, skipped=dict(skipped))
    records.sort(key=lambda r: r["id"])   # stable across runs: parts are read in any order
    fname = f"{name}_livechat.json"
    write_json(os.path.join(planner.dest, fname), records)
    result.files.append(fname)
    result.rows[fname] = len(records)
    return result
