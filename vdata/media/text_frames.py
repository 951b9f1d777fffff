"""Long text as a video: chunks of text, each rendered as one still picture held for a fixed time.

T2Vid (Yin et al. 2024, "T2Vid: Translating Long Text into Multi-Image is the Catalyst for Video-LLMs")
turns long-text instruction data into multi-image samples: the text is split into chunks and each chunk
is drawn as an image. Here the images become one H.264 video (one chunk per `seconds_per_chunk`), so the
ordinary pipeline (probe, frames, exports) reads it like any other video, plus a sidecar JSON with each
chunk's text and time span, which the ingest manifest turns into `segments` annotations.

Drawn with PIL and the bundled DejaVu font (the haystack's text needles use ffmpeg's drawtext, which
does not wrap lines, so it is not reused here). Frames go to ffmpeg as raw RGB on stdin: every chunk
gets exactly round(seconds_per_chunk × fps) frames, so chunk k covers [k·s, (k+1)·s) to the frame.
"""
from __future__ import annotations

import json
import os
import re
import subprocess

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import MediaError
from .ffmpeg import ffmpeg_exe
from .synth import bundled_font

MARGIN = 0.06              # share of the width left blank on each side
LINE_SPACING = 1.25        # line height as a multiple of the font size
MIN_FONT = 10


def split_text(text: str, max_words: int = 40) -> list[str]:
    """Sentences packed in order into chunks of at most `max_words` words (a longer sentence is cut by
    words), so a chunk ends at a sentence end whenever one fits."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", " ".join(str(text).split())) if s]
    chunks: list[list[str]] = []
    current: list[str] = []
    for sentence in sentences:
        words = sentence.split()
        while len(words) > max_words:   # a sentence longer than a chunk: cut it by words
            if current:
                chunks.append(current)
                current = []
            chunks.append(words[:max_words])
            words = words[max_words:]
        if current and len(current) + len(words) > max_words:
            chunks.append(current)
            current = []
        current += words
    if current:
        chunks.append(current)
    return [" ".join(c) for c in chunks]


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    if line:
        lines.append(line)
    return lines


def render_text_image(text: str, size: tuple[int, int] = (640, 360), font_size: int = 28) -> Image.Image:
    """One chunk as an RGB picture: black on white, word-wrapped, the font shrunk until the text fits."""
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    margin = int(width * MARGIN)
    path = bundled_font()
    for fs in range(font_size, MIN_FONT - 1, -2):
        font = ImageFont.truetype(path, fs)
        lines = _wrap(draw, text, font, width - 2 * margin)
        step = int(fs * LINE_SPACING)
        if len(lines) * step <= height - 2 * margin and \
                all(draw.textlength(ln, font=font) <= width - 2 * margin for ln in lines):
            break
    else:
        raise MediaError("text_too_long", f"{len(text.split())} words do not fit a {width}x{height} frame "
                         f"at font size {MIN_FONT}")
    top = (height - len(lines) * step) // 2
    for i, line in enumerate(lines):
        draw.text((margin, top + i * step), line, fill="black", font=font)
    return image


def chunk_spans(n_chunks: int, seconds_per_chunk: float) -> list[tuple[float, float]]:
    return [(round(i * seconds_per_chunk, 6), round((i + 1) * seconds_per_chunk, 6)) for i in range(n_chunks)]


def sidecar_path(video_path: str) -> str:
    return os.path.splitext(video_path)[0] + ".chunks.json"


def render_text_video(path: str, chunks: list[str], seconds_per_chunk: float = 2.0,
                      size: tuple[int, int] = (640, 360), fps: int = 2, font_size: int = 28) -> dict:
    """Write `chunks` as an H.264 mp4 at `path` and the sidecar JSON next to it; returns the sidecar.

    Raises MediaError for no chunks, an empty chunk, a chunk too long for the frame, or ffmpeg failing."""
    if not chunks:
        raise MediaError("no_text", "no text chunks to render")
    if any(not str(c).strip() for c in chunks):
        raise MediaError("no_text", "an empty text chunk")
    if seconds_per_chunk <= 0 or fps <= 0:
        raise MediaError("bad_timing", f"seconds_per_chunk={seconds_per_chunk}, fps={fps}: both must be > 0")
    width, height = size
    if width % 2 or height % 2:
        raise MediaError("bad_size", f"{width}x{height}: H.264 with yuv420p needs even sides")
    frames_per_chunk = max(1, round(seconds_per_chunk * fps))
    pictures = [np.asarray(render_text_image(c, size, font_size), dtype=np.uint8) for c in chunks]
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp = f"{path}.part.mp4"
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast",
           "-crf", "18", "-pix_fmt", "yuv420p", "-g", str(frames_per_chunk), "-movflags", "+faststart", tmp]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for picture in pictures:
            data = picture.tobytes()
            for _ in range(frames_per_chunk):
                proc.stdin.write(data)
        proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace")
        code = proc.wait(timeout=600)
    except (BrokenPipeError, subprocess.TimeoutExpired) as e:
        proc.kill()
        raise MediaError("ffmpeg_failed", f"ffmpeg stopped while rendering text: {e}")
    if code != 0:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise MediaError("ffmpeg_failed", "ffmpeg failed: " + " | ".join(err.strip().splitlines()[-3:]))
    os.replace(tmp, path)
    held = frames_per_chunk / fps   # the time each chunk is really on screen
    sidecar = {"video": os.path.basename(path), "fps": fps, "size": [width, height], "seconds_per_chunk": held,
               "chunks": [{"index": i, "start_s": a, "end_s": b, "text": c}
                          for i, ((a, b), c) in enumerate(zip(chunk_spans(len(chunks), held), chunks))]}
    with open(sidecar_path(path), "w", encoding="utf-8") as f:
        json.dump(sidecar, f, ensure_ascii=False, indent=1)
    return sidecar
