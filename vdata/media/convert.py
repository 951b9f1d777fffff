"""Decoded frames to small BGR images for the shot detector.

`small_bgr` works on the YUV planes with OpenCV and converts colour at the small size. Measured on
bench/bench_shots.py's 720p video, to the detector's 360x202 (process CPU, OpenCV's 2 threads):
- area-averaging each plane straight to 360x202: 1.5 ms a frame, more than decoding it (OpenCV's
  area resize is fast only for whole-number factors, and 1280 -> 360 is 3.56);
- luma halved to the chroma planes' size (a whole-number area resize), the three planes merged,
  area-reduced by the largest whole factor that stays above the target, then bilinear for the rest
  (a factor under 2): 0.52 ms, 0.4 grey levels from the first on average;
- PyAV's to_ndarray(width, height) (swscale, bilinear from full size): about 1.1 ms.
The shot scan converts every frame of a full pass and of each coarse-to-fine window so.
"""
from __future__ import annotations

import numpy as np


def plane(frame, k: int, width: int, height: int) -> np.ndarray:
    """Plane `k` of a decoded frame as a (height, width) uint8 view, without its row padding."""
    data = frame.planes[k]
    return np.frombuffer(data, np.uint8).reshape(-1, data.line_size)[:height, :width]


def small_bgr(frame, width: int, height: int) -> np.ndarray:
    """`frame` as a (height, width, 3) BGR image; formats other than 8-bit 4:2:0 go through swscale."""
    import cv2

    if frame.format.name not in ("yuv420p", "yuvj420p"):
        return frame.to_ndarray(width=width, height=height, format="bgr24")
    w, h = frame.width, frame.height
    cw, ch = (w + 1) // 2, (h + 1) // 2
    size = (width, height)
    if width > cw or height > ch:   # a small source: luma keeps its own detail
        yuv = cv2.merge([cv2.resize(plane(frame, 0, w, h), size, interpolation=cv2.INTER_AREA),
                         cv2.resize(plane(frame, 1, cw, ch), size, interpolation=cv2.INTER_AREA),
                         cv2.resize(plane(frame, 2, cw, ch), size, interpolation=cv2.INTER_AREA)])
        return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)
    luma = cv2.resize(plane(frame, 0, w, h), (cw, ch), interpolation=cv2.INTER_AREA)
    yuv = cv2.merge([luma, plane(frame, 1, cw, ch), plane(frame, 2, cw, ch)])
    k = min(cw // width, ch // height)
    if k > 1:
        yuv = cv2.resize(yuv, (cw // k, ch // k), interpolation=cv2.INTER_AREA)
    if yuv.shape[1::-1] != size:
        yuv = cv2.resize(yuv, size, interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)
