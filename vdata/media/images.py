"""Image encoding helpers shared by stages and teachers."""
from __future__ import annotations

import numpy as np


def encode_jpeg(rgb: np.ndarray, quality: int = 90, max_side: int | None = None) -> bytes:
    import cv2

    if max_side and max(rgb.shape[:2]) > max_side:
        scale = max_side / max(rgb.shape[:2])
        rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("not a decodable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def rgb8(image) -> np.ndarray:
    """A PIL image as 8-bit RGB, as ffmpeg shows it: 16- and 32-bit greyscale (modes I;16, I, F) scaled to 0-255
    (PIL's own convert("RGB") clips them: a 16-bit grey ramp came out white, outside check h18 F18); palette,
    CMYK and other modes through convert("RGB")."""
    if image.mode.startswith("I") or image.mode == "F":
        a = np.asarray(image).astype(np.float64)
        scale = 257.0 if image.mode.startswith("I;16") or (a.size and a.max() > 255) else 1.0
        grey = np.clip(np.round(a / scale), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"))
