"""multi_frame: the clip's frames, each marked with its time, in one request → a detailed caption. The
video's title and description, when the row has them, go into the prompt (the `video_context` block, as
Panda-70M's teachers got them); a row with neither renders as the v1 template did.

With `window_frames: W`, a clip with more than W frames is described window by window (W frames each,
side by side) and the window descriptions are merged by one more request; they are kept as steps.
`describe` and `merge` are the building blocks the other strategies reuse.
"""
from __future__ import annotations

from .common import Captioner, Clip, fmt, span_values, window_spans, windows_of


async def describe(cap: Captioner, clip: Clip, teacher: str, sampling: dict | None = None,
                   tag: str = "") -> tuple[str, list | None]:
    """A detailed caption from the frames: one request, or windows + a merge. Returns (text, steps)."""
    windows = windows_of(clip.frames, cap.config.window_frames)
    if len(windows) == 1:
        template = "multi_frame" if cap.config.use_frames else "speech"   # speech: no frames, the transcript only
        req = cap.request(clip, template, clip.frames, span_values((0.0, clip.duration_s)), sampling=sampling)
        return await cap.ask_text(teacher, req, f"multi_frame{tag}"), None
    spans = window_spans(clip, windows)
    steps_named = [f"multi_frame{tag}[window {k}]" for k in range(len(windows))]
    reqs = [cap.request(clip, "multi_frame", w, span_values(s), sampling=sampling) for w, s in zip(windows, spans)]
    texts = await cap.pool.gather([cap.ask_text(teacher, r, step) for r, step in zip(reqs, steps_named)])
    merged = await merge(cap, clip, teacher, list(zip(spans, texts)), sampling, tag)
    steps = [(w[0].abs_s, t) for w, t in zip(windows, texts)]
    return merged, steps


async def merge(cap: Captioner, clip: Clip, teacher: str, parts: list, sampling: dict | None, tag: str) -> str:
    """One description from timed parts ((start, end), text), in clip-relative seconds."""
    listing = "\n\n".join(f"[{fmt(a)}s-{fmt(b)}s]\n{text}" for (a, b), text in parts)
    req = cap.request(clip, "window_merge", [], {"parts": listing}, sampling=sampling)
    return await cap.ask_text(teacher, req, f"window_merge{tag}")


async def multi_frame(cap: Captioner, clip: Clip) -> dict:
    text, steps = await describe(cap, clip, cap.config.teacher)
    return cap.row(clip, caption=text, teacher=cap.config.teacher, steps=steps)
