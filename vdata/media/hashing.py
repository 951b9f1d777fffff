"""Content ids for files and perceptual hashes for frames."""
from __future__ import annotations

import hashlib
import os

import numpy as np

_CHUNK = 1 << 20
_SAMPLES = 8


def content_id(path: str) -> str:
    """A stable id from a file's bytes, independent of its path.

    Small files are hashed whole. Large ones are hashed from their size plus 8 evenly spaced 1 MiB
    chunks (first and last included): reading whole multi-GB videos just to name them would cost more
    I/O than the rest of probing, and two different encodes sharing all eight chunks and the exact size
    do not occur in practice.
    """
    size = os.path.getsize(path)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(size).encode())
    with open(path, "rb") as f:
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


_DCT_CACHE: dict[int, np.ndarray] = {}


def _dct_matrix(n: int) -> np.ndarray:
    if n not in _DCT_CACHE:
        k = np.arange(n)[:, None]
        i = np.arange(n)[None, :]
        m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
        m[0] /= np.sqrt(2.0)
        _DCT_CACHE[n] = m
    return _DCT_CACHE[n]


def phash(image: np.ndarray) -> int:
    """64-bit DCT perceptual hash of an RGB/BGR or gray image (the classic pHash construction)."""
    import cv2

    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64)
    d = _dct_matrix(32)
    coeffs = (d @ small @ d.T)[:8, :8].flatten()
    bits = coeffs > np.median(coeffs[1:])
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    return int(a ^ b).bit_count()
