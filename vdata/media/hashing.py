"""Content ids for files (blake2b) and perceptual hashes for frames (imagehash)."""
from __future__ import annotations

import hashlib
import os

import numpy as np

_CHUNK = 1 << 20
_SAMPLES = 8


def content_id(path: str, opener=open) -> str:
    """A stable id from a file's bytes, independent of its path.

    Small files are hashed whole. Large ones are hashed from their size plus 8 evenly spaced 1 MiB
    chunks (first and last included): reading whole multi-GB videos just to name them would cost more
    I/O than the rest of probing, and two different encodes sharing all eight chunks and the exact size
    do not occur in practice. `opener` opens `path` for reading (storage.open_file: a URL, read by range).
    """
    h = hashlib.blake2b(digest_size=16)
    with opener(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(0)
        h.update(str(size).encode())
        if size <= _CHUNK * _SAMPLES * 2:
            for block in iter(lambda: f.read(_CHUNK), b""):
                h.update(block)
        else:
            for i in range(_SAMPLES):
                f.seek((size - _CHUNK) * i // (_SAMPLES - 1))
                h.update(f.read(_CHUNK))
    return h.hexdigest()


def bytes_id(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def phash(image: np.ndarray) -> "imagehash.ImageHash":
    """64-bit DCT perceptual hash (imagehash's pHash) of an RGB or gray uint8 image.

    Callers compare hashes with `hamming`; the thresholds they use (frames' min_hash_distance,
    quality's dup_hash_distance, haystack's phash_max_distance) were re-checked against this hash:
    see tests/test_media.py::test_phash_decisions_hold.
    """
    import imagehash
    from PIL import Image

    return imagehash.phash(Image.fromarray(np.ascontiguousarray(image)))


def hamming(a: "imagehash.ImageHash", b: "imagehash.ImageHash") -> int:
    """Number of differing bits between two hashes (0 = same picture, 64 = opposite)."""
    return int(a - b)
