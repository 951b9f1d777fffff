"""Damaged media in the shots stage: what a full decode found, against what the probe declared."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CORRUPT = "corrupt"
TRUNCATED = "truncated"
# Frames a sound file may declare but not decode (leading B-frames of an open GOP whose reference is
# not in the file): a shortfall up to this, without a decode error, is not damage.
DROPPED_FRAMES_TOLERATED = 2


@dataclass
class Damage:
    """Where decoding of a video went wrong: frames [0, good_frames) are sound, the rest is lost."""

    reason: str
    good_frames: int
    total_frames: int
    message: str
    detail: dict


def assess_damage(times: list[float] | np.ndarray, errors: list[float], first_unsound_s: float | None, fps: float,
                  declared_frames: int | None, declared_s: float | None) -> Damage | None:
    """Compare a full decode (`times` of the frames, `errors`: times of packets that failed,
    `first_unsound_s`: the earliest frame decoded after a failure) with what the probe declared.
    None when every declared frame decoded cleanly."""
    times = np.asarray(times, dtype=np.float64)
    n = len(times)
    total = max(int(declared_frames or 0), n)
    if not errors and n >= total - DROPPED_FRAMES_TOLERATED:
        return None
    declared_s = float(declared_s or total / fps)
    good = n if first_unsound_s is None else int(np.searchsorted(times, first_unsound_s - 1e-6))
    decoded = f"decoded {n} of {total} declared frames ({n / fps:.2f}s of {declared_s:.2f}s)"
    lost = f"frames {good}-{total} ({good / fps:.2f}-{declared_s:.2f}s) are lost"
    if errors:
        reason = CORRUPT
        message = f"{decoded}; {len(errors)} packet(s) failed to decode, the first at {min(errors):.2f}s; {lost}"
    else:
        reason = TRUNCATED
        message = f"{decoded}: decoding stopped early without a decode error; {lost}"
    detail = {"decoded_frames": n, "declared_frames": total, "decode_errors": len(errors),
              "first_error_s": min(errors) if errors else None, "declared_s": declared_s, "lost_frames": [good, total]}
    return Damage(reason, good, total, message, detail)
