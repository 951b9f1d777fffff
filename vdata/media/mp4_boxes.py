"""The top-level boxes of an MP4 / MOV file (ISO BMFF): their type, where each starts, its header's and its
whole length. Read from the 8- or 16-byte box headers alone, so a file cut short is walked as far as it goes.
Used where no demuxer helps: naming what a file that PyAV cannot open lacks (probe), and finding the media
data to damage in a test video (synth)."""
from __future__ import annotations

import os
import struct
from typing import BinaryIO, NamedTuple


MAX_BOXES = 64   # a real file has a handful at the top level; a walk through garbage stops here


class Box(NamedTuple):
    kind: bytes
    start: int
    header: int    # 8, or 16 with a 64-bit length
    length: int    # the whole box; may run past the end of a cut file


def top_level_boxes(f: BinaryIO, size: int, limit: int = MAX_BOXES) -> list[Box]:
    """The first `limit` top-level boxes of the `size`-byte file `f`. Stops at a length that cannot be
    one (under 8): the file is no ISO BMFF there."""
    boxes: list[Box] = []
    at = 0
    while at + 8 <= size and len(boxes) < limit:
        f.seek(at)
        length, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if length == 1 and at + 16 <= size:   # a 64-bit length follows the type
            length, header = struct.unpack(">Q", f.read(8))[0], 16
        elif length == 0:                     # the box runs to the end of the file
            length = size - at
        if length < 8:
            break
        boxes.append(Box(kind, at, header, length))
        at += length
    return boxes


def file_boxes(path: str) -> tuple[int, list[Box]]:
    """(the file's size, its top-level boxes)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        return size, top_level_boxes(f, size)


def overrun(box: Box, size: int) -> int:
    """How many bytes `box` claims past the end of a `size`-byte file (0 when it fits)."""
    return max(0, box.start + box.length - size)
