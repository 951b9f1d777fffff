"""Shots into clip segments: [start, end) frame ranges from cuts, stitched (shots of one scene) and split
(at most max_len_s)."""
from __future__ import annotations

import bisect
import math

import numpy as np


def feature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """0 for identical frames, towards 1 for unrelated ones: the larger of the colour-histogram distance
    (half L1, averaged over the three histograms) and the layout distance (mean abs thumbnail
    difference, doubled). Both must be small for two frames to count as the same scene: colour alone
    confuses different shots with the same palette, layout alone is fooled by motion."""
    hist = float(np.abs(a[:32] - b[:32]).sum() / 6.0)
    layout = float(np.abs(a[32:] - b[32:]).mean() * 2.0)
    return max(hist, layout)


def segments_from_cuts(cuts: list[int], n: int) -> list[list[int]]:
    bounds = [0, *cuts, n]
    return [[a, b] for a, b in zip(bounds, bounds[1:]) if b > a]


def repair_segments(segs: list[list[int]], feats: np.ndarray, fps: float, cfg,
                    keep: frozenset[int] | set[int] = frozenset(), seconds=None) -> list[list[int]]:
    """Stitching on [start, end) frame segments: merges only shots of one scene (see the shots module docstring).
    A short shot that is not a flash inside one scene stays a segment of its own. Boundaries in `keep`
    (gradual transitions: their neighbouring frames look alike by nature) are never merged. `seconds(a, b)`:
    how long frames [a, b) are shown (a variable-rate video holds some for seconds); else (b - a) / fps."""
    segs = [list(s) for s in segs]
    if not cfg.stitch.enabled or len(segs) < 2:
        return segs
    dist = lambda i, j: feature_distance(feats[i], feats[j])  # noqa: E731
    thr = cfg.stitch.max_distance
    seconds = seconds or (lambda a, b: (b - a) / fps)
    i = 1
    while i < len(segs) - 1:   # a short shot between two alike neighbours: a flash, all three are one
        prev, (a, b), nxt = segs[i - 1], segs[i], segs[i + 1]
        if (seconds(a, b) < cfg.min_len_s - EPS_S and prev[1] == a and nxt[0] == b and a not in keep and b not in keep
                and dist(prev[1] - 1, nxt[0]) <= thr):
            prev[1] = nxt[1]
            del segs[i:i + 2]
        else:
            i += 1
    merged = [segs[0]]
    for s in segs[1:]:
        last = merged[-1]
        if last[1] == s[0] and s[0] not in keep and dist(last[1] - 1, s[0]) <= thr:
            last[1] = s[1]
        else:
            merged.append(s)
    return merged


def split_long(segs: list[list[int]], fps: float, max_len_s: float | None, seconds=None) -> list[list[int]]:
    """Shots longer than `max_len_s` in pieces of equal duration, each ending at the last frame shown by its
    share of the time; `seconds(a, b)` as in `repair_segments`. Equal frame counts are equal times only at a
    constant rate: at 25, then 5, then 50 fps they made a 6.6 s piece of a 5 s limit."""
    if not max_len_s:
        return segs
    seconds = seconds or (lambda a, b: (b - a) / fps)
    out = []
    for a, b in segs:
        total = seconds(a, b)
        pieces = min(b - a, max(1, math.ceil(total / max_len_s - EPS_S)))
        bounds = [a]
        for k in range(1, pieces):   # the last frame starting by k/pieces of the time, a frame left per piece
            frames = range(bounds[-1] + 1, b - (pieces - k) + 1)
            at = bisect.bisect_right(frames, k * total / pieces + EPS_S, key=lambda j: seconds(a, j)) - 1
            bounds.append(frames[max(0, at)])
        out.extend([lo, hi] for lo, hi in zip(bounds, bounds[1:] + [b]))
    return out


EPS_S = 1e-6   # lengths in seconds are compared with this slack: frame times are rounded floats
