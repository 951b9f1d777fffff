"""Timestamp sanity checks shared by the readers and the shot scan: a backend's per-frame table,
the frames returned for requested times, and whether a file's decoded display times can be trusted.
The last one decodes a file's first frames; the same decode says how a player turns and mirrors the
picture (`display_orientation`), so that a reader asks once for both."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .streams import Orientation, frame_orientation, packet_times, video_stream


def timestamp_table_problem(times: np.ndarray, fps: float) -> str | None:
    """Why a backend's per-frame timestamp table is wrong, or None: every time finite, not absurd
    (more than a day off zero), non-decreasing, and spanning about what the frame count and rate say."""
    if not len(times):
        return None
    if not np.all(np.isfinite(times)):
        return "some timestamps are not finite"
    if np.abs(times).max() > 86_400:
        return f"timestamps run from {times.min():.4g}s to {times.max():.4g}s"
    if np.any(np.diff(times) < 0):
        k = int(np.argmax(np.diff(times) < 0))
        return f"timestamps go backwards at frame {k + 1} ({times[k]:.3f}s -> {times[k + 1]:.3f}s)"
    expected = len(times) / fps if fps > 0 else None
    span = float(times[-1] - times[0])
    if expected and len(times) > 2 and span > 2 * expected + 1.0:
        return f"{len(times)} frames at {fps:g} fps span {span:.1f}s, not about {expected:.1f}s"
    return None


def returned_times_problem(asked: Sequence[float], got: Sequence[float], fps: float,
                           span: tuple[float, float] | None = None, tolerance_s: float | None = None) -> str | None:
    """Why frames returned for `asked` times are not the frames asked for, or None.

    A frame is right when its time is within one frame interval of the request (requests outside
    `span`, the first and last frame times, are clamped to it first); frames asked for in time order
    must come back in time order.
    """
    tol = tolerance_s if tolerance_s is not None else (1.0 / fps if fps > 0 else 0.04) + 1e-3
    worst, where = 0.0, None
    for a, g in zip(asked, got):
        target = min(max(float(a), span[0]), span[1]) if span else float(a)
        off = abs(float(g) - target)
        if not np.isfinite(off) or off > worst:
            worst, where = (off if np.isfinite(off) else float("inf")), (float(a), float(g))
    if where is not None and worst > tol:
        return f"asked for {where[0]:.3f}s, got a frame at {where[1]:.4g}s ({worst:.3g}s off, tolerance {tol:.3f}s)"
    pairs = sorted(zip(asked, got))
    for (a0, g0), (a1, g1) in zip(pairs, pairs[1:]):
        if a1 > a0 and g1 < g0:
            return f"frames out of order: {a0:.3f}s -> {g0:.3f}s but {a1:.3f}s -> {g1:.3f}s"
    return None


def frame_shown_at(t: float, half: float, frames, pending, prev):
    """(the frame for time `t`, the frame to offer the next target first, the frame before it), reading
    on from `frames` ((time, frame) pairs in time order): the first frame from `t - half` on, unless it
    starts more than `half` after `t` (a picture held before it: variable rate), then the one before it,
    which is still shown at `t`."""
    while True:
        item, pending = (pending if pending is not None else next(frames, None)), None
        if item is None:
            return prev, prev, prev
        if item[0] + half >= t:
            held = item[0] - half > t and prev is not None
            return (prev if held else item), item, prev
        prev = item


def display_times_unreliable(path: str, frames: int) -> bool:
    """Whether the first `frames` decoded frames of `path` lack times or come out of order. Remembered
    per file (path, size, mtime): every reader a stage opens on a video asks, and the answer cost 22 ms
    a time (bench_quality's 5 clips of one 720p video: 110 ms of the stage's 856 ms without text)."""
    return _first_frames(path, frames)[0]


def display_orientation(path: str, frames: int) -> Orientation:
    """How a player turns (0, 90, 180 or 270 degrees counter-clockwise) and mirrors the decoded picture
    to show it: a phone's portrait video is stored landscape with a display matrix, a front camera's may
    be mirrored too. Read from the first decoded frame, in the same (remembered) decode as
    `display_times_unreliable(path, frames)`."""
    return _first_frames(path, frames)[1]


def _first_frames(path: str, frames: int) -> tuple[bool, Orientation]:
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns, frames)
    except OSError:
        key = None
    if key is None:
        return _decode_first_frames(path, frames)
    if key not in _FIRST_FRAMES:
        if len(_FIRST_FRAMES) > 4096:
            _FIRST_FRAMES.clear()
        _FIRST_FRAMES[key] = _decode_first_frames(path, frames)
    return _FIRST_FRAMES[key]


_FIRST_FRAMES: dict[tuple, tuple[bool, Orientation]] = {}


def _decode_first_frames(path: str, frames: int) -> tuple[bool, Orientation]:
    """(display times unreliable, display orientation) from the first `frames` decoded frames."""
    import av

    orientation = Orientation()
    try:
        with av.open(path, metadata_errors="ignore") as c:
            times = []
            stream = video_stream(c)
            for frame in c.decode(stream) if stream is not None else ():
                if not times:
                    orientation = frame_orientation(frame)
                times.append(frame.time)
                if len(times) >= frames:
                    break
    except (av.error.FFmpegError, IndexError):
        return False, orientation   # reading will fail with its own error
    return any(t is None for t in times) or any(b <= a for a, b in zip(times, times[1:])), orientation


def shown_times(path: str) -> tuple[np.ndarray, float] | None:
    """When each frame of `path`'s video is shown (seconds from the stream's start, as the readers count
    them; sorted), from the packets' timestamps without decoding (`streams.packet_times`), and when the
    stream ends (its declared duration: packets' own durations follow decode order, not display order; else
    one usual interval past the last); None when PyAV cannot read them. A damaged tail ends the list there."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as c:
            stream = video_stream(c)
            if stream is None:
                return None
            shown = packet_times(c, stream).times
            base = float(stream.time_base)
            start = float(stream.start_time or 0) * base
            declared = (start + float(stream.duration) * base if stream.duration
                        else ((c.start_time or 0) / 1e6 + c.duration / 1e6 if c.duration else None))
    except av.error.FFmpegError:
        return None
    if not len(shown):
        return None
    usual = float(np.median(np.diff(shown))) if len(shown) > 1 else 0.0
    end = declared if declared is not None and declared > shown[-1] else float(shown[-1]) + usual
    return shown - start, end - start


SLIDESHOW_STEP_S = 0.2   # frames further apart than this, most of the time: pictures shown one by one
NOMINAL_STEP_S = 1 / 25
HELD_S = 0.2             # a picture shown this long and 4 usual intervals is held


def held_step(shown: np.ndarray | None) -> float | None:
    """The interval at which a detector that counts frames should see a video that holds some pictures far
    longer than the others (variable frame rate: a screen recording's still screen, a slideshow): the
    stream's usual interval, or 1/25 s where frames come less than 5 a second. None when no picture is
    held for 4 intervals and 0.2 s: a constant-rate video, or one that dropped a frame here and there (a
    phone's), whose frames the detector then sees as they are."""
    if shown is None or len(shown) < 2:
        return None
    gaps = np.diff(shown)
    usual = float(np.median(gaps))
    if not usual > 0:
        return None
    step = usual if usual <= SLIDESHOW_STEP_S else NOMINAL_STEP_S
    return step if float(gaps.max()) >= max(4 * step, HELD_S) else None


def held_frame_gap(path: str, times: Sequence[float]) -> float | None:
    """The longest interval between two consecutive frames that brackets one of `times` (seconds from the
    stream's first frame, as the readers count them), from the packets' timestamps without decoding; None
    when fewer than two packets carry a timestamp.

    A variable-frame-rate video may show one picture for seconds (a screen recording of a still screen,
    a phone's frozen segment): the frame returned for a time inside such an interval lies that far from it,
    and is still the right one, since no other frame lies between."""
    found = shown_times(path)
    shown = found[0] if found else None
    if shown is None or len(shown) < 2:
        return None
    at = np.clip(np.searchsorted(shown, np.asarray(times, dtype=np.float64), side="right"), 1, len(shown) - 1)
    return float((shown[at] - shown[at - 1]).max())
