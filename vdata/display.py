"""How a player shows a stored picture: the display matrix's turn and mirror (ffmpeg's autorotate).

Below both the decoders (vdata.media) and the teachers' own frame encoding (vdata.teachers), which
must show a front camera's mirrored video the same way.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Orientation(NamedTuple):
    """How a player shows a stored picture: turned counter-clockwise by `rotation` degrees (0, 90, 180 or
    270), then, where `mirrored`, flipped left to right."""
    rotation: int = 0
    mirrored: bool = False


def frame_orientation(frame) -> Orientation:
    """A decoded frame's display matrix as a turn and a mirror. The matrix is read, not PyAV's
    `frame.rotation`: that is the angle alone, -180 for a plain left-right mirror (a front camera's video,
    an edited phone video), which turned the picture upside down instead of mirroring it. A matrix whose
    determinant is negative mirrors; with its first column negated it is the turn done before the mirror."""
    matrix = next((bytes(d) for d in frame.side_data if d.type.name == "DISPLAYMATRIX"), None)
    if matrix is None or len(matrix) < 36:
        return Orientation()
    a, b, _, c, d = np.frombuffer(matrix[:20], dtype="<i4").astype(np.float64)   # 16.16 fixed point
    mirrored = bool(a * d - b * c < 0)
    if mirrored:
        a = -a
    # av_display_rotation_get's angle (counter-clockwise), to the nearest quarter turn
    rotation = int(round(-np.degrees(np.arctan2(b, a)) / 90)) * 90 % 360
    return Orientation(rotation, mirrored)


def upright(image: np.ndarray, rotation: int, mirrored: bool = False) -> np.ndarray:
    """`image` (rows, columns[, channels]) as a player shows it (ffmpeg's autorotate): turned
    counter-clockwise by `rotation` degrees, then flipped left to right where `mirrored`."""
    if rotation:
        image = np.rot90(image, rotation // 90)
    if mirrored:
        image = image[:, ::-1]
    return np.ascontiguousarray(image) if rotation or mirrored else image
