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


def heard_s(needle: Needle, fps: float) -> tuple[float, float]:
    """Where, from the start of its span, a needle is seen or heard: the whole span, but for a spoken needle
    only its audible part (`Needle.audible`: TTS pads speech with silence). A placement's interval is this
    part, so the answer (localization's interval, the verifier's window) never covers silence."""
    if needle.kind == "audio" and needle.audible is not None:
        return needle.audible
    return 0.0, span_s(needle, fps)


def slot_s(length_s: float, units: int, gap_s: float) -> float:
    """Room each of `units` needles gets (its own length plus one gap) in a haystack of `length_s` when
    `gap_s` is kept between needles and from both ends: a needle fits when its length + gap_s <= this."""
    return (length_s - gap_s) / units


def fits(length_s: float, units: int, gap_s: float, unit_s: float) -> bool:
    """Whether a unit (a needle, or a multihop pair) of `unit_s` fits one of `units` slots (`slot_s`);
    the nanosecond of slack keeps sums of the same lengths taken in another order from disagreeing."""
    return slot_s(length_s, units, gap_s) >= unit_s + gap_s - 1e-9


def _on_frame(t: float, lo: float, hi: float, fps: float) -> float:
    """`t` moved to the nearest frame start inside [lo, hi] (to lo's frame when no frame start is inside)."""
    first, last = math.ceil(lo * fps - 1e-6), math.floor(hi * fps + 1e-6)
    return min(max(int(round(t * fps)), first), max(first, last)) / fps


def _spread(rng: random.Random, start: float, end: float, order: list[int], unit_lengths: list[float],
            gap_s: float, fps: float, starts: list[float | None]) -> None:
    """Units `order` spread over [start, end], `gap_s` from each other and from both ends: the span is cut
    into one slot per unit and each unit lands at a random spot inside a random slot, so needles spread
    over the whole span without rejection sampling."""
    if not order:
        return
    slot = slot_s(end - start, len(order), gap_s)
    slots = list(range(len(order)))
    rng.shuffle(slots)
    for u, s in zip(order, slots):
        lo = start + gap_s + s * slot
        hi = start + (s + 1) * slot - unit_lengths[u]
        starts[u] = _on_frame(rng.uniform(lo, hi), lo, hi, fps)


def _room(ids: list[int], unit_lengths: list[float], gap_s: float) -> float:
    """What `ids` need when spread beside a target: one slot each as long as the longest unit + gap_s."""
    return len(ids) * (max(unit_lengths[u] for u in ids) + gap_s) if ids else 0.0


def place_units(rng: random.Random, length_s: float, unit_lengths: list[float], gap_s: float, fps: float,
                target: int | None = None, depth: float | None = None,
                depth_span_s: float | None = None, depth_offset_s: float = 0.0) -> list[float] | None:
    """Frame-aligned start times for units that never overlap and keep `gap_s` between each other and
    from both ends of the haystack. Returns None when the units cannot fit (`slot_s`).

    Without `depth`, units are spread stratified (`_spread`). With `depth`, unit `target` starts at the
    frame nearest `depth * (length - depth_span_s) - depth_offset_s` (`depth_span_s`: the length its depth
    is measured over, by default its own; `depth_offset_s`: how far into the unit that length begins, a
    spoken needle's silence before its audible part) unless the gaps forbid it, in which case it lands as
    close as they allow; the other units are spread before and after it, as many before as brings it
    closest to that spot (ties: in proportion to the depth). So the realised depth (an item's
    `target_depth`) is the asked one up to a frame except near the ends, where `gap_s` and the other units
    take the room.
    """
    m = len(unit_lengths)
    if not fits(length_s, m, gap_s, max(unit_lengths)):
        return None
    starts: list[float | None] = [None] * m
    if target is None or depth is None:
        _spread(rng, 0.0, length_s, list(range(m)), unit_lengths, gap_s, fps, starts)
        return starts
    own = unit_lengths[target]
    want = depth * (length_s - (own if depth_span_s is None else depth_span_s)) - depth_offset_s
    others = [u for u in range(m) if u != target]
    rng.shuffle(others)
    best = None
    for b in range(m):   # b of the other units go before the target
        lo = gap_s + _room(others[:b], unit_lengths, gap_s)
        hi = length_s - gap_s - own - _room(others[b:], unit_lengths, gap_s)
        if lo > hi + 1e-9:
            continue
        t = min(max(want, lo), hi)
        rank = (round(abs(t - want), 6), abs(b - (m - 1) * depth))
        if best is None or rank < best[0]:
            best = (rank, b, _on_frame(t, lo, hi, fps))
    if best is None:
        return None
    _, b, t = best
    starts[target] = t
    _spread(rng, 0.0, t, others[:b], unit_lengths, gap_s, fps, starts)
    _spread(rng, t + own, length_s, others[b:], unit_lengths, gap_s, fps, starts)
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
