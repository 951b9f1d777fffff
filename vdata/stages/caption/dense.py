"""dense (TimeSuite / Vript): a bounded JSON reply — caption, events with `start_s` / `end_s`, `shot_type`
and `camera_movement` from fixed vocabularies. Every timestamp is checked against the span it was asked
about: slightly outside (≤ `dense.tolerance_s`) is clamped, further out drops the event (or rejects the
row); both are counted in the row. Long clips: one request per window (side by side), the window captions
merged. A window's prompt asks for times "in seconds from the start of the clip, between" the window's
own start and end, and marks each frame with its clip time, so an event of a later window timed inside
[0, window length] (a model counting from its first frame) is out of its span: dropped and counted, never
shifted on a guess. The same event from several windows (same times and text) is kept once.

An event shorter than `dense.min_event_s` (0.5 s by default, so zero-length ones too: "2.0 - 2.0 seconds",
or both times of an event past the clip's end clamped to it) is no event of a dense caption: dropped
(`min_event_s: 0` keeps every length). Events whose start and end both lie within
`dense.duplicate_tolerance_s` of an event kept before them (in time order; the reply's order among equal
times) repeat its times with much the same words: only the first is kept (two different events over one
span, "a man talks" and "music plays", both stay). Both are counted in the row's
`dense_events_dropped` (with the problems in a reject's detail), never a reason for `reject_row`, which is
about times outside the clip.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .common import Captioner, Clip, RowReject, majority, nonempty, span_values, window_spans, windows_of
from .config import CAMERA_MOVEMENTS, SHOT_TYPES
from .multi_frame import merge


def dense_schema(max_events: int, max_caption_chars: int, max_description_chars: int, time_bound: float) -> dict:
    """The dense reply schema. Every field is bounded: enums, string lengths, item counts, and numbers
    in [0, time_bound] — a bound wider than the clip, so that the grammar keeps numbers finite while
    values outside the clip still reach the validator (which counts and repairs them)."""
    t = {"type": "number", "minimum": 0, "maximum": round(time_bound, 1)}
    event = {"type": "object",
             "properties": {"start_s": t, "end_s": t,
                            "description": {"type": "string", "minLength": 1, "maxLength": max_description_chars}},
             "required": ["start_s", "end_s", "description"], "additionalProperties": False}
    return {"type": "object",
            "properties": {"caption": {"type": "string", "minLength": 1, "maxLength": max_caption_chars},
                           "events": {"type": "array", "items": event, "minItems": 1, "maxItems": max_events},
                           "shot_type": {"type": "string", "enum": list(SHOT_TYPES)},
                           "camera_movement": {"type": "string", "enum": list(CAMERA_MOVEMENTS)}},
            "required": ["caption", "events", "shot_type", "camera_movement"], "additionalProperties": False}


def dense_time_bound(duration_s: float) -> float:
    return duration_s * 2 + 10.0


@dataclass
class EventCheck:
    events: list[tuple[float, float, str]]    # clip-relative, inside [0, duration], sorted by start
    repaired: int = 0                          # timestamps clamped into the clip
    dropped: int = 0                           # events dropped: times outside the span, reversed, not numbers
    short: int = 0                             # events dropped: shorter than the minimum (or zero-length)
    repeated: int = 0                          # events dropped: the times of an event kept before, other words
    problems: list[str] = field(default_factory=list)

    @property
    def dropped_total(self) -> int:
        return self.dropped + self.short + self.repeated


def check_events(raw_events: list[dict], duration_s: float, tolerance_s: float,
                 span: tuple[float, float] | None = None, where: str = "", min_event_s: float = 0.0) -> EventCheck:
    """Validate model events against the clip [0, duration_s], or against `span` (a window of it),
    in clip-relative seconds.

    A time within `tolerance_s` outside the span is clamped (counted as repaired); further out, or an
    event that ends before it starts, is dropped (counted, with the reason in `problems`). An event that
    (clamped) lasts less than `min_event_s` (> 0: zero-length ones too) is dropped and counted in `short`.
    `where` names the window in the problems.
    """
    lo, hi = span if span is not None else (0.0, duration_s)
    what = f"the window [{lo:g}, {hi:g}]s" if span is not None else f"the clip [0, {duration_s:g}]s"
    out = EventCheck(events=[])
    for k, ev in enumerate(raw_events):
        try:
            times = [float(ev["start_s"]), float(ev["end_s"])]
        except (KeyError, TypeError, ValueError):
            out.dropped += 1
            out.problems.append(f"event {k}: no numeric start_s/end_s")
            continue
        if not all(math.isfinite(t) for t in times):
            out.dropped += 1
            out.problems.append(f"event {k}: non-finite time")
            continue
        fixed, ok = [], True
        for name, t in zip(("start_s", "end_s"), times):
            if lo <= t <= hi:
                fixed.append(t)
            elif lo - tolerance_s <= t < lo or hi < t <= hi + tolerance_s:
                fixed.append(min(max(t, lo), hi))
                out.repaired += 1
            else:
                ok = False
                out.problems.append(f"{where}event {k}: {name}={t:g}s is outside {what} "
                                    f"by more than the tolerance {tolerance_s:g}s")
        if ok and fixed[1] < fixed[0]:
            ok = False
            out.problems.append(f"{where}event {k}: ends ({fixed[1]:g}s) before it starts ({fixed[0]:g}s)")
        if not ok:
            out.dropped += 1
            continue
        length = fixed[1] - fixed[0]
        if min_event_s > 0 and length < min_event_s - 1e-9:
            out.short += 1
            out.problems.append(f"{where}event {k}: lasts {length:g}s ({fixed[0]:g}-{fixed[1]:g}s), "
                                f"under the minimum {min_event_s:g}s")
            continue
        out.events.append((fixed[0], fixed[1], str(ev.get("description") or "").strip()))
    out.events.sort(key=lambda e: (e[0], e[1]))
    return out


def window_events(replies: list[list[dict]], spans: list[tuple[float, float]], duration_s: float,
                  tolerance_s: float, min_event_s: float = 0.0, duplicate_tolerance_s: float = 0.0) -> EventCheck:
    """Every window's events checked against that window's span (one window: the whole clip), pooled and
    sorted; an event that several windows give alike (same times, same text) is kept once, silently (it
    is the same event); one whose start and end are both within `duplicate_tolerance_s` of an event kept
    before it, in other words, is dropped and counted in `repeated`."""
    windowed = len(spans) > 1
    pooled = EventCheck(events=[])
    for k, (events, span) in enumerate(zip(replies, spans)):
        check = check_events(events, duration_s, tolerance_s, span if windowed else None,
                             f"window {k}: " if windowed else "", min_event_s)
        pooled.events += check.events
        pooled.repaired += check.repaired
        pooled.dropped += check.dropped
        pooled.short += check.short
        pooled.problems += check.problems
    seen: set = set()
    unique: list[tuple[float, float, str]] = []
    for a, b, text in sorted(pooled.events, key=lambda e: (e[0], e[1])):
        key = (a, b, " ".join(text.lower().split()))
        if key in seen:
            continue
        seen.add(key)
        # the same times and much the same words: one event told twice ("a man talks" and "music plays" over
        # one span are two events, as ActivityNet-style dense captions have them: outside check h19)
        same = next((u for u in unique if abs(u[0] - a) <= duplicate_tolerance_s + 1e-9
                     and abs(u[1] - b) <= duplicate_tolerance_s + 1e-9 and _alike(u[2], text)), None)
        if same is not None:
            pooled.repeated += 1
            pooled.problems.append(f"event {a:g}-{b:g}s {text[:40]!r} repeats the times of {same[0]:g}-{same[1]:g}s "
                                   f"{same[2][:40]!r} (within {duplicate_tolerance_s:g}s): kept once")
            continue
        unique.append((a, b, text))
    pooled.events = unique
    return pooled


_FILLER = frozenset({"the", "and", "with", "for", "from", "into", "its", "his", "her", "their", "this", "that"})


def _alike(a: str, b: str) -> bool:
    """Whether the shorter description's words (of three letters or more) mostly stand in the other."""
    wa, wb = ({w.rstrip("s") for w in re.findall(r"[a-z]{3,}", t.lower()) if w not in _FILLER} for t in (a, b))
    small, large = sorted((wa, wb), key=len)
    return not small or len(small & large) >= 0.5 * len(small)


async def dense(cap: Captioner, clip: Clip) -> dict:
    c, t = cap.config, cap.config.teacher
    d = c.dense
    windows = windows_of(clip.frames, c.window_frames)
    spans = window_spans(clip, windows) if len(windows) > 1 else [(0.0, clip.duration_s)]
    schema = dense_schema(d.max_events, d.max_caption_chars, d.max_description_chars, dense_time_bound(clip.duration_s))
    asks = []
    for k, (w, span) in enumerate(zip(windows, spans)):
        values = {**span_values(span), "max_events": d.max_events,
                  "max_caption_chars": d.max_caption_chars, "shot_types": ", ".join(SHOT_TYPES),
                  "camera_movements": ", ".join(CAMERA_MOVEMENTS)}
        req = cap.request(clip, "dense", w, values, schema=schema)
        asks.append(cap.ask(t, req, "dense" + (f"[window {k}]" if len(windows) > 1 else "")))
    results = await cap.pool.gather(asks)
    replies, captions, shots, moves = [], [], [], []
    for res in results:
        reply = res.parsed or {}
        replies.append(list(reply.get("events") or []))
        captions.append(str(reply.get("caption") or "").strip())
        shots.append(reply.get("shot_type"))
        moves.append(reply.get("camera_movement"))
    check = window_events(replies, spans, clip.duration_s, d.tolerance_s, d.min_event_s, d.duplicate_tolerance_s)
    detail = {"problems": check.problems[:20], "repaired": check.repaired, "dropped": check.dropped_total,
              "out_of_range": check.dropped, "short": check.short, "repeated": check.repeated,
              "raw": [r.text for r in results]}
    inside = f"its window of the clip (windows {_spans_text(spans)})" if len(spans) > 1 else \
        f"the clip [0, {clip.duration_s:g}]s"
    if check.dropped and d.on_out_of_range == "reject_row":
        raise RowReject(cap.reject(clip.row, "timestamps_out_of_range",
                                   f"caption: {check.dropped} dense event(s) had times outside {inside} beyond "
                                   f"the tolerance {d.tolerance_s:g}s", **detail))
    if not check.events:
        raise RowReject(cap.reject(clip.row, "no_valid_events",
                                   f"caption: none of the {sum(map(len, replies))} dense event(s) lies inside "
                                   f"{inside}" + (f" and lasts at least {d.min_event_s:g}s" if d.min_event_s > 0
                                                  else ""), **detail))
    if len(captions) == 1:
        caption = nonempty(captions[0], t, "dense")
    else:
        caption = await merge(cap, clip, t, list(zip(spans, captions)), None, "")
    events = [{"start_s": round(clip.start_s + a, 6), "end_s": round(clip.start_s + b, 6), "description": text}
              for a, b, text in check.events]
    steps = [(w[0].abs_s, text) for w, text in zip(windows, captions)] if len(windows) > 1 else None
    return cap.row(clip, caption=caption, teacher=t, steps=steps, events=events,
                   shot_type=majority(shots), camera_movement=majority(moves),
                   repaired=check.repaired, dropped=check.dropped_total)


def _spans_text(spans: list[tuple[float, float]]) -> str:
    return ", ".join(f"[{a:g}, {b:g}]s" for a, b in spans)
