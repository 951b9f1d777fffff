"""Where needles go: in time (non-overlapping, frame-aligned, at controlled depths) and on screen."""
from __future__ import annotations

import math
import random

from .needles import Needle, text_box


def to_frames(seconds: float, fps: float) -> int:
    """Whole frames covering `seconds` (at least one)."""
    return max(1, int(math.ceil(seconds * fps - 1e-6)))


def shown_frames(needle: Needle, fps: float) -> int:
    """Frames a visual needle stays on screen (rounded to the nearest frame, at least one)."""
    return max(1, int(round(needle.duration_s * fps)))


def span_s(needle: Needle, fps: float) -> float:
    """Seconds a needle occupies: frame-aligned for visual needles, the exact speech length for audio."""
    return needle.duration_s if needle.kind == "audio" else shown_frames(needle, fps) / fps


def place_units(rng: random.Random, length_s: float, unit_lengths: list[float], gap_s: float, fps: float,
                target: int | None = None, depth: float | None = None) -> list[float] | None:
    """Frame-aligned start times for units that never overlap and keep `gap_s` between them and the ends.

    Stratified: the haystack is cut into one slot per unit and each unit lands at a random spot inside
    a random slot, so needles spread over the whole length without rejection sampling. With `depth`,
    unit `target` starts as close to `depth * (length - its length)` as its slot allows. Returns None
    when the units cannot fit.
    """
    m = len(unit_lengths)
    slot = length_s / m
    if slot < max(unit_lengths) + gap_s:
        return None
    free = list(range(m))
    assign: list[int | None] = [None] * m
    want = None
    if target is not None and depth is not None:
        want = depth * (length_s - unit_lengths[target])
        s = min(m - 1, max(0, int((want + unit_lengths[target] / 2) / slot)))
        assign[target] = s
        free.remove(s)
    rng.shuffle(free)
    pending = iter(free)
    starts = []
    for u in range(m):
        s = assign[u] if assign[u] is not None else next(pending)
        lo = s * slot + gap_s / 2
        hi = (s + 1) * slot - gap_s / 2 - unit_lengths[u]
        t = min(max(want, lo), hi) if (u == target and want is not None) else rng.uniform(lo, hi)
        first, last = math.ceil(lo * fps - 1e-6), math.floor(hi * fps + 1e-6)
        f = min(max(int(round(t * fps)), first), max(first, last))
        starts.append(f / fps)
    return starts


def _even(v: float) -> int:
    return max(2, int(v) // 2 * 2)


def fit(w: int, h: int, max_w: float, max_h: float) -> tuple[int, int]:
    """Even size of a w×h picture scaled to fit max_w×max_h, aspect kept (letterboxed)."""
    s = min(max_w / w, max_h / h)
    return _even(w * s), _even(h * s)


def screen_box(rng: random.Random, needle: Needle, style: str, scale: float, width: int,
               height: int) -> tuple[int, int, int, int] | None:
    """x, y, w, h of the needle's own pixels on a width×height frame (letterbox bars excluded)."""
    if needle.kind == "audio":
        return None
    if needle.kind == "text":
        _, bw, bh = text_box(needle.label, style, width, height)
    elif style == "fullframe":
        bw, bh = fit(needle.width, needle.height, width, height)
    else:
        bw, bh = fit(needle.width, needle.height, width * scale, height * scale)
    bw, bh = min(bw, width), min(bh, height)
    if style == "fullframe":
        return (width - bw) // 2 // 2 * 2, (height - bh) // 2 // 2 * 2, bw, bh
    margin = int(0.03 * min(width, height))
    x = rng.randint(margin, max(margin, width - bw - margin)) // 2 * 2
    y = rng.randint(margin, max(margin, height - bh - margin)) // 2 * 2
    return x, y, bw, bh
