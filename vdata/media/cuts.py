"""Coarse-to-fine decoding for cut detection: decode few frames everywhere, every frame only where a cut may be.

A full decode of 720p H.264 is the floor of a one-pass shot detector. Most of its frames are B-frames
that nothing references; libavcodec can skip them (`skip_frame = NONREF`) and still decode every
reference frame exactly. So:

1. `frame_table`: demux without decoding: every frame's display index, time and keyframe flag (ms).
2. `coarse_scan`: decode the reference frames only, each to a tiny HSV image; a cut between two
   consecutive reference frames changes the picture between them, so their distance is large.
3. `windows_from_gaps`: the gaps whose distance passes a low bar, widened by the context the detector
   needs, merged.
4. `decode_windows`: seek to the keyframe before each window, decode reference frames only up to it
   and every frame inside it, converted exactly as a full pass converts them.

The caller runs its detector on the window frames only. Where the structure does not help (every
frame a keyframe, no timestamps, windows covering most of the video) `plan` says so and the caller
decodes everything instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

# Side of the tiny images the coarse pass compares (pixels): enough to see a cut, cheap to convert.
COARSE_SIDE = 64
# Windows covering more than this share of the frames decode nearly everything: a full pass is cheaper.
MAX_WINDOW_SHARE = 0.5


@dataclass
class FrameTable:
    """Every frame of the first video stream in display order, from packets alone."""

    times: np.ndarray          # seconds from the stream's first frame, as a full PyAV decode gives them
    pts: np.ndarray            # display-order presentation timestamps
    keyframes: np.ndarray      # display indices of keyframes (seek points)
    fps: float
    problem: str | None = None  # why the table cannot stand in for a decode (then decode everything)


def frame_table(path: str) -> FrameTable:
    import av

    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 25.0
        tb = float(stream.time_base)
        start = float(stream.start_time or 0) * tb
        pts, keys = [], []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            pts.append(packet.pts)
            keys.append(packet.is_keyframe)
    empty = np.zeros(0)
    if not pts:
        return FrameTable(empty, empty, empty.astype(int), fps, "no packets")
    if any(p is None for p in pts):
        return FrameTable(empty, empty, empty.astype(int), fps, "packets without timestamps")
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    sorted_pts = np.asarray(pts, dtype=np.int64)[order]
    problem = None
    if np.any(np.diff(sorted_pts) <= 0):
        problem = "duplicate timestamps"
    elif all(keys):
        problem = "every frame is a keyframe (intra-only): nothing to skip"
    keyframes = np.flatnonzero(np.asarray(keys)[order])
    times = sorted_pts * tb - start
    return FrameTable(times, sorted_pts, keyframes, fps, problem)


def _tiny_hsv(frame) -> np.ndarray:
    import cv2

    w, h = frame.width, frame.height
    scale = COARSE_SIDE / max(w, h)
    small = frame.to_ndarray(width=max(2, round(w * scale / 2) * 2), height=max(2, round(h * scale / 2) * 2),
                             format="bgr24")
    return cv2.cvtColor(small, cv2.COLOR_BGR2HSV).astype(np.int16)


def hsv_distance(a: np.ndarray, b: np.ndarray) -> float:
    """PySceneDetect's content score (mean |ΔH|, |ΔS|, |ΔV|, averaged) on two tiny images."""
    return float(np.abs(a - b).mean())


@dataclass
class CoarseScan:
    indices: np.ndarray        # display indices of the decoded (reference) frames
    distances: np.ndarray      # distance of each decoded frame to the one before it (0 for the first)
    decode_errors: int = 0


def coarse_scan(path: str, table: FrameTable) -> CoarseScan:
    """Decode only reference frames (threaded), each to a tiny HSV image; distance between neighbours."""
    import av

    index_of = {int(p): i for i, p in enumerate(table.pts)}
    indices, distances, errors = [], [], 0
    previous = None
    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONREF"
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                errors += 1
                continue
            for frame in frames:
                i = index_of.get(frame.pts)
                if i is None:
                    continue
                hsv = _tiny_hsv(frame)
                indices.append(i)
                distances.append(0.0 if previous is None else hsv_distance(previous, hsv))
                previous = hsv
    return CoarseScan(np.asarray(indices, dtype=np.int64), np.asarray(distances), errors)


def windows_from_gaps(coarse: CoarseScan, n: int, bar: float, before: int, after: int) -> list[tuple[int, int]]:
    """[first, last] frame windows to decode fully: each gap (previous reference frame, this one]
    whose distance reaches `bar`, plus frames no reference frame brackets (after the last one),
    widened by `before`/`after` frames of detector context and merged where they touch."""
    idx, dist = coarse.indices, coarse.distances
    spans = [(int(idx[k - 1]) + 1, int(idx[k])) for k in range(1, len(idx)) if dist[k] >= bar]
    if len(idx) and idx[-1] < n - 1:
        spans.append((int(idx[-1]) + 1, n - 1))
    if len(idx) and idx[0] > 0:
        spans.insert(0, (0, int(idx[0])))
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        a, b = max(0, a - before), min(n - 1, b + after)
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


@dataclass
class WindowFrames:
    """Frames decoded inside the windows: (display index, time, image) in display order."""

    frames: Iterator[tuple[int, float, np.ndarray]]
    decode_errors: list[float] = field(default_factory=list)


def decode_windows(path: str, table: FrameTable, windows: list[tuple[int, int]], size: tuple[int, int],
                   fmt: str = "bgr24") -> Iterator[tuple[int, float, np.ndarray]]:
    """Every frame inside `windows` (display indices, inclusive), converted with `to_ndarray(size, fmt)`
    as a full PyAV pass converts it. Seeks to the keyframe before each window (or decodes on when the
    window starts within reach), skipping non-reference frames outside the windows."""
    import av

    index_of = {int(p): i for i, p in enumerate(table.pts)}
    width, height = size
    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"   # frame threads copy the skip setting with each packet they take
        cc = stream.codec_context
        position = -1   # display index of the last frame decoded, -1 = not decoding
        packets = None
        for first, last in windows:
            key = int(table.keyframes[max(0, np.searchsorted(table.keyframes, first, side="right") - 1)])
            if packets is None or position < key or position >= first:
                container.seek(int(table.pts[key]), stream=stream, backward=True, any_frame=False)
                packets = container.demux(stream)
            for packet in packets:
                i = index_of.get(packet.pts) if packet.pts is not None else None
                cc.skip_frame = "DEFAULT" if i is not None and first <= i <= last else "NONREF"
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    continue
                done = False
                for frame in frames:
                    j = index_of.get(frame.pts)
                    if j is None:
                        continue
                    position = j
                    if first <= j <= last:
                        yield j, float(table.times[j]), frame.to_ndarray(width=width, height=height, format=fmt)
                    if j >= last:
                        done = True
                if done:
                    break
