"""differential (ShareGPT4Video): describe the first keyframe, then for every next keyframe ask what
changed (the previous keyframe, the new one, and what has been said so far), then summarise the steps
into one dense caption with times. Every step is kept in `caption_steps`.

The steps form a chain (each prompt quotes the answers before it), so a clip has one request pending at
a time; the pool keeps other clips going meanwhile. More than `window_frames` steps are summarised per
chunk, side by side, and the chunk summaries merged.
"""
from __future__ import annotations

from vdata.prompts import shorten

from .common import Captioner, Clip, fmt, windows_of
from .multi_frame import merge


async def differential(cap: Captioner, clip: Clip) -> dict:
    c, t = cap.config, cap.config.teacher
    limit = c.differential.context_chars
    first = clip.frames[0]
    req = cap.request(clip, "differential_first", [first], {"timestamp": fmt(first.rel_s)})
    first_text = await cap.ask_text(t, req, f"differential_first@{fmt(first.rel_s)}s")
    steps = [(first, first_text)]
    for prev, cur in zip(clip.frames, clip.frames[1:]):
        context = f"At {fmt(first.rel_s)}s (first keyframe): {shorten(first_text, limit, collapse_spaces=False)}"
        if len(steps) > 1:
            context += f"\nAt {fmt(prev.rel_s)}s (latest change): {shorten(steps[-1][1], limit, collapse_spaces=False)}"
        req = cap.request(clip, "differential_next", [prev, cur],
                          {"previous_timestamp": fmt(prev.rel_s), "timestamp": fmt(cur.rel_s), "context": context},
                          as_images=True)   # two distinct keyframes to compare, not a video
        step = f"differential_next@{fmt(cur.rel_s)}s"
        steps.append((cur, await cap.ask_text(t, req, step)))
    timed = [(f.rel_s, text) for f, text in steps]
    if len(steps) == 1:
        caption = first_text
    elif not c.differential.summarize:
        caption = "\n".join(f"<{fmt(r)}s> {text}" for r, text in timed)
    else:
        caption = await summarize(cap, clip, t, timed)
    return cap.row(clip, caption=caption, teacher=t, steps=[(f.abs_s, text) for f, text in steps])


async def summarize(cap: Captioner, clip: Clip, teacher: str, timed: list[tuple[float, str]]) -> str:
    """One summary of the timed steps; more than `window_frames` steps: summaries per chunk, then a merge."""
    def listing(chunk):
        return "\n".join(f"At {fmt(r)}s: {text}" for r, text in chunk)

    chunks = windows_of(timed, cap.config.window_frames)
    named = ["differential_summary" + (f"[window {k}]" if len(chunks) > 1 else "") for k in range(len(chunks))]
    reqs = [cap.request(clip, "differential_summary", [], {"steps": listing(ch)}) for ch in chunks]
    texts = await cap.pool.gather([cap.ask_text(teacher, r, step) for r, step in zip(reqs, named)])
    if len(chunks) == 1:
        return texts[0]
    bounds = [ch[0][0] for ch in chunks] + [clip.duration_s]
    return await merge(cap, clip, teacher, list(zip(zip(bounds, bounds[1:]), texts)), None, "")
