"""Damaged media in the shots stage: what a full decode found, against what the probe declared.

Damage is what the decoder could not decode (a packet that fails), what it concealed (libavcodec's
corrupt-frame flag: the picture was patched from its neighbours, which a model would see as garbage),
and frames lost on the way (a gap of several frame intervals in the times of an otherwise constant-rate
stream whose packets carry their own timestamps, an MPEG-TS capture that lost packets, where decoding also
failed or concealed near it: a gap alone is a held picture or a paused capture). Each damaged
span lasts until decoding recovers: at the next keyframe, nothing shown depends on the damaged pictures.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CORRUPT = "corrupt"
TRUNCATED = "truncated"
# Frames a sound file may declare but not decode (leading B-frames of an open GOP whose reference is
# not in the file): a shortfall up to this, without a decode error, is not damage.
DROPPED_FRAMES_TOLERATED = 2
# An interval this many times the stream's usual one means frames are missing ("several" frames: one
# dropped frame is within what encoders of live sources do), where the stream is otherwise constant-rate:
# at least STEADY_SHARE of the intervals are the usual one and INTEGRAL_SHARE a whole number of it (within
# STEADY_SLACK of one). A variable-rate recording holds pictures for all sorts of lengths.
GAP_INTERVALS = 2.5
STEADY_SHARE = 0.8
INTEGRAL_SHARE = 0.98
STEADY_SLACK = 0.1
SPANS_NAMED = 3   # damaged spans spelled out in a message
GAP_NEAR_S = 2.0   # a timestamp gap is loss where decoding also failed or concealed within this of it


def lost_frame_gaps(times) -> tuple[np.ndarray, float, int]:
    """(indices i where several frames are missing before frame i, the usual interval, the frames missing
    in all: single ones too) of an otherwise constant-rate stream (see GAP_INTERVALS). None in a
    variable-rate stream, whose long intervals are pictures held on purpose (a screen recording)."""
    none = np.zeros(0, np.int64)
    t = np.asarray(times, dtype=np.float64)
    if len(t) < 8:
        return none, 0.0, 0
    d = np.diff(t)
    usual = float(np.median(d))
    if usual <= 0:
        return none, 0.0, 0
    steps = np.rint(d / usual)
    whole = np.abs(d - steps * usual) <= max(STEADY_SLACK * usual, 1.5e-3)   # some containers round times to ms
    gap = d > GAP_INTERVALS * usual
    if not gap.any() or np.mean(whole & (steps == 1)) < STEADY_SHARE or whole.mean() < INTEGRAL_SHARE:
        return none, usual, 0
    return np.flatnonzero(gap) + 1, usual, int(np.sum(np.where(whole & (steps > 1), steps - 1, 0)))


@dataclass
class Damage:
    """Where decoding of a video went wrong: frames [0, good_frames) are sound; `spans` are the damaged
    stretches in seconds from the first frame, [start, end), end None where decoding never recovers."""

    reason: str
    good_frames: int
    total_frames: int
    message: str
    detail: dict
    spans: list[tuple[float, float | None]] = field(default_factory=list)

    def frame_spans(self, times, total: int) -> list[tuple[int, int]]:
        """The damaged spans as [first, end) positions in `times` (a decode's frame times); a span that
        never recovers ends at `total` (frames that never decoded are in it)."""
        t = np.asarray(times, dtype=np.float64)
        out = []
        for start, end in self.spans:
            a = int(np.searchsorted(t, start - 1e-6))
            b = max(a, total if end is None else int(np.searchsorted(t, end - 1e-6)))
            out.append((a, b))
        return out


def damaged_spans(report, fps: float) -> tuple[list[tuple[float, float | None]], dict]:
    """The damaged spans of a decode (vdata.media.cuts.DecodeReport), merged, and what caused them. A
    span starts at the earliest frame let out after the trouble (B-frames shown before a damaged picture
    reference it; a packet that fails may hold the damage's start in the one before it) and ends at the
    first keyframe let out after it."""
    t, keys = report.times, report.keys
    n = len(t)
    if n == 0:
        return [], _causes(report.errors)
    later_min = np.minimum.accumulate(t[::-1])[::-1]   # the earliest time let out from each position on
    key_at = np.flatnonzero(keys)
    events = []   # (first position that may be damaged, start time, time the damage is at, keyframe there is clean)
    for at, p, before in report.errors:
        # the failed packet's own frame is lost; the packet before it may hold the damage's start
        starts = [x for x in (at if at >= 0 else None, before, later_min[p] if p < n else None) if x is not None]
        events.append((p, min(starts) if starts else 0.0, at, False))
    concealed = np.flatnonzero(report.corrupt)
    refs = report.refs if report.refs is not None else np.ones(n, bool)
    # a damaged reference picture: B-pictures shown before it (after the anchor before it) may be predicted from it
    anchor_at = np.flatnonzero(report.anchors if report.anchors is not None else np.ones(n, bool))
    after_anchor = lambda i: int(anchor_at[k - 1]) + 1 if (k := int(np.searchsorted(anchor_at, i))) else 0  # noqa: E731
    events += [(int(i), float(min(later_min[i], t[min(after_anchor(i), i)])), float(t[i]), False)
               for i in concealed if refs[i]]
    # a picture nothing is predicted from (an H.264 non-reference B-frame): the damage is that frame alone
    alone = [[float(t[i]), float(t[i + 1]) if i + 1 < n else None] for i in concealed if not refs[i]]
    gaps, usual, _ = lost_frame_gaps(t) if report.stamped else (np.zeros(0, np.int64), 0.0, 0)
    gaps = [int(i) for i in gaps]
    # A gap alone is no loss: a screen recorder's held picture, a paused capture, an encoder that skipped frames
    # under load leave the same gaps in a TS or FLV, and every frame after them decodes clean (outside check
    # h22). A gap counts where the TS's continuity counters say packets were lost near it, or a failed packet or
    # a concealed picture is (MPEG-2 decodes a P-picture whose reference was lost without a flag).
    marks = [float(at) if at >= 0 else float(t[min(p, n - 1)]) for at, p, _ in report.errors] + \
        [float(t[i]) for i in concealed]
    marks += [float(b) for b in report.continuity_breaks]   # a TS that lost packets says so in its counters
    # ... and lost pictures leave the next one without its reference: a keyframe after a gap is a new start (two
    # recordings joined, a segment muxed on its own), whatever the counters say (h22: `cat`-joined TS files)
    gaps = [i for i in gaps if not keys[i] and any(t[i - 1] - GAP_NEAR_S <= m <= t[i] + GAP_NEAR_S for m in marks)]
    missing = int(sum(round((t[i] - t[i - 1]) / usual) - 1 for i in gaps)) if gaps else 0
    events += [(int(i), float(t[i - 1]) + usual, float(t[i]), True) for i in gaps]
    found = alone
    for p, start, at, key_ok in events:
        k = int(np.searchsorted(key_at, p))
        while k < len(key_at) and not (t[key_at[k]] > at or (key_ok and t[key_at[k]] >= at)):
            k += 1
        found.append([start, float(t[key_at[k]]) if k < len(key_at) else None])
    keyed = {float(t[i]) for i in key_at}
    spans: list[list] = []
    for start, end in sorted(found, key=lambda s: s[0]):
        if spans and (spans[-1][1] is None or start <= spans[-1][1]):
            spans[-1][1] = None if end is None or spans[-1][1] is None else max(spans[-1][1], end)
        else:
            spans.append([start, end])
    causes = _causes(report.errors, len(concealed), missing, min((e[2] for e in events), default=None))
    causes["keyframe_ends"] = [b for _, b in spans if b in keyed]
    if len(concealed):
        causes["first_concealed_s"] = float(t[concealed[0]])
    if len(gaps):
        causes["first_gap_s"] = [float(t[gaps[0] - 1]), float(t[gaps[0]])]
    return [(float(a), None if b is None else float(b)) for a, b in spans], causes


def _causes(errors, concealed: int = 0, missing: int = 0, first_s: float | None = None) -> dict:
    failed = min((e[0] if isinstance(e, tuple) else e for e in errors), default=None)
    return {"decode_errors": len(errors), "concealed_frames": concealed, "missing_frames": missing,
            "first_error_s": failed if first_s is None else first_s, "first_failed_s": failed}


def assess_damage(times: list[float] | np.ndarray, errors: list[float], first_unsound_s: float | None, fps: float,
                  declared_frames: int | None, declared_s: float | None, found: tuple | None = None) -> Damage | None:
    """Compare a full decode (`times` of the frames, `errors`: times of packets that failed,
    `first_unsound_s`: the earliest frame decoded after a failure) with what the probe declared.
    `found`: (spans, causes) from `damaged_spans`, which supersede `errors` and `first_unsound_s`.
    None when every declared frame decoded cleanly."""
    times = np.asarray(times, dtype=np.float64)
    n = len(times)
    total = max(int(declared_frames or 0), n)
    spans, causes = found if found is not None else (
        [(first_unsound_s if first_unsound_s is not None else (times[-1] + 1 / fps if n else 0.0), None)] if errors
        else [], _causes(errors))
    short = n < total - DROPPED_FRAMES_TOLERATED
    if not spans and not short:
        return None
    declared_s = float(declared_s or total / fps)
    # frames short of the declared count: lost inside a damaged span where decoding goes on to the end,
    # else decoding stopped early and the rest is lost
    ends_early = not n or float(times[-1]) < declared_s - (DROPPED_FRAMES_TOLERATED + 1.5) / fps
    if short and (not spans or (spans[-1][1] is not None and ends_early)):
        spans = [*spans, (float(times[-1]) + 1 / fps if n else 0.0, None)]
    damage = Damage(CORRUPT if spans and (causes["decode_errors"] or causes["concealed_frames"]
                                          or causes["missing_frames"]) else TRUNCATED, 0, total, "", {}, spans)
    frames = damage.frame_spans(times, total)
    damage.good_frames = frames[0][0]
    said = []
    leading = short and not ends_early and len(spans) == 1 and spans[0][1] is None and not (
        causes["decode_errors"] or causes["concealed_frames"] or causes["missing_frames"])
    for (a, b), (start, end) in zip(frames[:SPANS_NAMED], spans):
        if leading:   # the frames that never decoded are not at the end: "2.80-2.80s are lost" said nothing (h22)
            said.append(f"the {total - n} frame(s) that never decoded are not at its end: pictures before its "
                        "first keyframe or an open GOP's leading pictures, whose references the file does not hold")
        elif end is None:
            said.append(f"frames {a}-{total} ({start:.2f}-{declared_s:.2f}s) are lost")
        elif end in causes.get("keyframe_ends", ()):
            said.append(f"frames {a}-{b} ({start:.2f}-{end:.2f}s) are damaged, decoding recovers at the keyframe "
                        f"at {end:.2f}s")
        else:   # a picture nothing is predicted from
            said.append(f"frames {a}-{b} ({start:.2f}-{end:.2f}s) are damaged, the frames from {end:.2f}s on are sound")
    if len(spans) > SPANS_NAMED:
        said.append(f"and {len(spans) - SPANS_NAMED} more damaged span(s)")
    what = []
    if causes["decode_errors"]:
        what.append(f"{causes['decode_errors']} packet(s) failed to decode, the first at "
                    f"{causes['first_failed_s']:.2f}s")
    if causes["concealed_frames"]:
        what.append(f"the decoder concealed damage in {causes['concealed_frames']} frame(s), the first at "
                    f"{causes['first_concealed_s']:.2f}s")
    if causes["missing_frames"]:
        a, b = causes["first_gap_s"]
        what.append(f"{causes['missing_frames']} frame(s) missing from the stream (a gap in the timestamps at "
                    f"{a:.2f}-{b:.2f}s: packets lost)")
    if not what:
        what.append("no decode error" if leading else "decoding stopped early without a decode error")
    decoded = f"decoded {n} of {total} declared frames ({n / fps:.2f}s of {declared_s:.2f}s)"
    damage.message = f"{decoded}; {'; '.join(what)}; {'; '.join(said)}"
    damage.detail = {"decoded_frames": n, "declared_frames": total, "decode_errors": causes["decode_errors"],
                     "first_error_s": causes["first_error_s"], "declared_s": declared_s,
                     "lost_frames": [damage.good_frames, total], "concealed_frames": causes["concealed_frames"],
                     "missing_frames": causes["missing_frames"], "damaged_frames": [list(f) for f in frames],
                     "damaged_s": [[s, declared_s if e is None else e] for s, e in spans],
                     "recovers_at_s": spans[-1][1]}   # where decoding recovers for good (None: never)
    return damage


def find_damage(path: str, fps: float, declared_frames: int | None,
                declared_s: float | None) -> tuple[Damage | None, int]:
    """(the damage a full decode of `path` finds, the frames it decoded)."""
    from vdata.media.cuts import decode_damage

    report = decode_damage(path)
    return assess_damage(report.times, [e[0] for e in report.errors], None, fps, declared_frames, declared_s,
                         found=damaged_spans(report, fps)), len(report.times)


def damage_suspected(times, decode_errors, concealed, declared_frames: int | None) -> bool:
    """Whether a scan saw anything that a full decode must look at: a packet that failed, a frame the
    decoder concealed damage in, fewer frames than declared, frames missing in a constant-rate stream."""
    short = declared_frames and len(times) < declared_frames - DROPPED_FRAMES_TOLERATED
    # a gap is only a suspicion: the full decode's damaged_spans asks for the continuity counters or the decoder
    return bool(decode_errors or concealed or short or len(lost_frame_gaps(times)[0]))


def clean_limits(damage: Damage | None, times, on_corrupt: str) -> list[tuple[int, int]]:
    """The [first, end) frame spans of `times` the shots stage rejects for `damage`: each damaged span
    (`keep_clean`), or everything from the first damage on (`keep_prefix`; `reject` drops the video)."""
    if damage is None:
        return []
    total = max(damage.total_frames, len(times))
    if on_corrupt == "keep_clean":
        return damage.frame_spans(times, total)
    return [(damage.good_frames, total)]


def kept_note(damage: Damage | None, bad: list[tuple[int, int]], n: int) -> str | None:
    """The media_damage note of a clip kept from a damaged video."""
    if damage is None:
        return None
    if len(bad) == 1 and bad[0][0] == n:
        return f"kept frames 0-{n} of {damage.total_frames}: {damage.reason}"
    spans = ", ".join(f"{a}-{b}" for a, b in bad)
    return f"kept the frames of {damage.total_frames} outside the damaged {spans}: {damage.reason}"


def span_message(damage: Damage, a: int, b: int, start_s: float, end_s: float | None, prefix: bool) -> str:
    """Why the frames [a, b) of a damaged video were not kept."""
    if prefix:
        after = "" if end_s is None else (f"; the frames from {end_s:.2f}s on decode cleanly but are not kept with "
                                           f"on_corrupt: keep_prefix (keep_clean keeps them)")
        return damage.message + after
    end = damage.detail["declared_s"] if end_s is None else end_s
    return f"frames {a}-{b} ({start_s:.2f}-{end:.2f}s) are damaged: {damage.message}"
