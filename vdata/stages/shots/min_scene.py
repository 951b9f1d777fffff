"""The detector's minimum scene length, applied after it has seen every cut (see the shots stage's
module docstring): its own FlashFilter, plus the cuts that filter hid which open a long enough shot."""
from __future__ import annotations

import inspect


def min_scene_filter(cls, kwargs: dict):
    """The detector's own minimum-scene-length filter, as PySceneDetect's FlashFilter: the length the
    detector would use (its default unless configured) and its mode (content-style detectors have
    `filter_mode`, default MERGE; the others suppress cuts until the length has passed)."""
    from scenedetect.detector import FlashFilter

    params = inspect.signature(cls).parameters
    length = min_scene_length(cls, kwargs)
    mode = kwargs.get("filter_mode", params["filter_mode"].default) if "filter_mode" in params else FlashFilter.Mode.SUPPRESS
    return FlashFilter(mode=mode, length=length), length


def min_scene_length(cls, kwargs: dict):
    """The minimum scene length the detector would use: as configured, else its own default."""
    return kwargs.get("min_scene_len", inspect.signature(cls).parameters["min_scene_len"].default)


def apply_min_scene_len(raw_cuts: list[int], n: int, fps: float, flash_filter, length) -> list[int]:
    """Cuts the detector keeps under its minimum scene length, plus the ones it hid that open a shot
    of at least that length (see the shots stage's module docstring)."""
    from scenedetect import FrameTimecode

    raw = set(raw_cuts)
    kept: list[int] = []
    for i in range(n):
        kept.extend(tc.frame_num for tc in flash_filter.filter(FrameTimecode(i, fps), i in raw))
    min_frames = length_in_frames(length, fps)
    nxt = [*sorted(raw)[1:], n]
    restored = [c for c, following in zip(sorted(raw), nxt) if following - c >= min_frames]
    return sorted({c for c in [*kept, *restored] if 0 < c < n})


def length_in_frames(length, fps: float) -> float:
    """A minimum scene length as PySceneDetect takes it (frames, seconds as a float, a timecode
    string) in frames."""
    from scenedetect import FrameTimecode

    return length * fps if isinstance(length, float) else (
        FrameTimecode(length, fps).frame_num if isinstance(length, str) else int(length))
