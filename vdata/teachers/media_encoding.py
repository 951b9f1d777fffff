"""Image/video encoding for teachers: JPEG data URLs, PIL images, in-memory MP4, frame sampling."""

from __future__ import annotations

import base64
import io
import mimetypes
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from vdata.display import frame_orientation, upright
from vdata.hdr import rgb24


def _as_pil(img: Any) -> Image.Image:
    if isinstance(img, Image.Image):
        return img
    if isinstance(img, (bytes, bytearray, memoryview)):
        im = Image.open(io.BytesIO(bytes(img)))
        im.load()
        return im
    if isinstance(img, (str, os.PathLike)):
        im = Image.open(img)
        im.load()
        return im
    if isinstance(img, np.ndarray):
        a = img
        if a.dtype != np.uint8:
            if np.issubdtype(a.dtype, np.floating) and a.size and float(a.max()) <= 1.0:
                a = a * 255.0
            a = np.clip(a, 0, 255).astype(np.uint8)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
            raise ValueError(f"image array must be HxW, HxWx3 or HxWx4, got shape {img.shape}")
        return Image.fromarray(np.ascontiguousarray(a))
    raise TypeError(f"unsupported image type {type(img).__name__}")


def to_pil_rgb(img: Any, max_side: int | None = None) -> Image.Image:
    """An RGB PIL image, long side shrunk to ``max_side`` (never enlarged)."""
    im = _as_pil(img)
    if im.mode != "RGB":
        im = im.convert("RGB")
    if max_side and max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BICUBIC)
    return im


def encode_jpeg(img: Any, max_side: int = 768, quality: int = 85) -> bytes:
    """JPEG bytes of an image; JPEG input already within ``max_side`` passes through untouched."""
    if isinstance(img, (bytes, bytearray, memoryview)):
        raw = bytes(img)
        try:
            with Image.open(io.BytesIO(raw)) as probe:
                if probe.format == "JPEG" and max(probe.size) <= max_side and probe.mode in ("RGB", "L"):
                    return raw
        except Exception as e:
            raise ValueError(f"undecodable image bytes: {e}") from None
    im = to_pil_rgb(img, max_side)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def jpeg_data_url(img: Any, max_side: int = 768, quality: int = 85) -> str:
    return data_url(encode_jpeg(img, max_side, quality), "image/jpeg")


def file_data_url(path: str | os.PathLike[str]) -> str:
    mime = mimetypes.guess_type(str(path))[0] or "video/mp4"
    return data_url(Path(path).read_bytes(), mime)


def frames_to_mp4(frames: Sequence[Any], fps: float, max_side: int | None = None) -> bytes:
    """Encode frames to an in-memory MP4 (H.264 if available, else MPEG-4 part 2)."""
    import av

    pil = [to_pil_rgb(f, max_side) for f in frames]
    if not pil:
        raise ValueError("no frames to encode")
    w, h = pil[0].size
    w2, h2 = max(2, w - w % 2), max(2, h - h % 2)
    rate = Fraction(fps).limit_denominator(1000) if fps and fps > 0 else Fraction(1)
    last: Exception | None = None
    for codec in ("libx264", "h264", "mpeg4"):
        buf = io.BytesIO()
        try:
            with av.open(buf, mode="w", format="mp4") as out:
                st = out.add_stream(codec, rate=rate)
                st.width, st.height, st.pix_fmt = w2, h2, "yuv420p"
                for im in pil:
                    if im.size != (w2, h2):
                        im = im.resize((w2, h2))
                    for pkt in st.encode(av.VideoFrame.from_image(im)):
                        out.mux(pkt)
                for pkt in st.encode():
                    out.mux(pkt)
            return buf.getvalue()
        except Exception as e:  # codec missing in this PyAV build: try the next
            last = e
    raise RuntimeError(f"could not encode MP4: {last}")


def sample_video_frames(path: str | os.PathLike[str], max_frames: int) -> dict[str, Any]:
    """Decode ``max_frames`` uniformly spaced frames of a video file with PyAV.

    Returns ``{"frames": [HxWx3 uint8], "timestamps", "fps", "duration", "total_num_frames",
    "frame_indices"}``."""
    import av
    from av.video.reformatter import VideoReformatter

    with av.open(str(path)) as c:
        st = c.streams.best("video")   # ffmpeg's choice: the picture a player shows, not a cover
        fps = float(st.average_rate or st.guessed_rate or 25)
        all_frames = []
        times = []
        for fr in c.decode(st):
            all_frames.append(fr)
            times.append(float(fr.time) if fr.time is not None else len(times) / fps)
        n = len(all_frames)
        if n == 0:
            raise ValueError(f"no decodable frames in {path}")
        k = min(max_frames, n)
        idx = sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})
        # As a player shows them: square pixels (a 16:9 DVD stores 720x480 with wide ones), and upright (a
        # phone's portrait video is stored sideways with a display matrix).
        sar = st.sample_aspect_ratio or st.codec_context.sample_aspect_ratio
        width = st.codec_context.width
        if sar and sar.numerator > 0 and sar.denominator > 0 and sar != 1:
            width = max(2, int(round(width * float(sar) / 2)) * 2)
        # an HDR frame tone mapped, as the frames stage gives it; one scaler for them all
        scaler = VideoReformatter()
        # the display matrix read whole: a front camera's mirror is a mirror, not a half turn (frame.rotation)
        frames = [upright(rgb24(all_frames[i], width, st.codec_context.height, scaler),
                          *frame_orientation(all_frames[i])) for i in idx]
        duration = float(st.duration * st.time_base) if st.duration else times[-1] + 1.0 / fps
        return {
            "frames": frames,
            "timestamps": [times[i] for i in idx],
            "fps": fps,
            "duration": duration,
            "total_num_frames": n,
            "frame_indices": idx,
        }


__all__ = [
    "data_url",
    "encode_jpeg",
    "file_data_url",
    "frames_to_mp4",
    "jpeg_data_url",
    "sample_video_frames",
    "to_pil_rgb",
]
