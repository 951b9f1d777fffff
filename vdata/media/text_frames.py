"""Long text as a video: chunks of text, each rendered as one still picture held for a fixed time.

T2Vid (Yin et al. 2024, "T2Vid: Translating Long Text into Multi-Image is the Catalyst for Video-LLMs")
turns long-text instruction data into multi-image samples: the text is split into chunks and each chunk
is drawn as an image. Here the images become one H.264 video (one chunk per `seconds_per_chunk`), so the
ordinary pipeline (probe, frames, exports) reads it like any other video, plus a sidecar JSON with each
chunk's text and time span, which the ingest manifest turns into `segments` annotations.

Drawn with PIL and the bundled DejaVu font, or a font file given (the haystack's text needles use
ffmpeg's drawtext, which does not wrap lines, so it is not reused here). Lines and chunks break between
words, and between characters in scripts written without spaces (Chinese, Japanese, Thai). DejaVu has
no Chinese or Japanese: text with a character the font lacks is refused (`font_lacks_glyphs`), never
drawn as empty boxes. Frames go to ffmpeg as raw RGB on stdin: every chunk
gets exactly round(seconds_per_chunk × fps) frames, so chunk k covers [k·s, (k+1)·s) to the frame.
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import unicodedata

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import MediaError
from .ffmpeg import ffmpeg_exe
from .synth import bundled_font

MARGIN = 0.06              # share of the width left blank on each side
LINE_SPACING = 1.25        # line height as a multiple of the font size
MIN_FONT = 10


# Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer, Myanmar, Tibetan,
# Yi): their text may break between any two characters, so chunks and lines are cut there, where a
# space-separated "word" would be a whole paragraph that fits no frame. Korean is not here: it puts spaces
# between words.
_NO_SPACE_SCRIPTS = ((0x0E00, 0x0EFF), (0x0F00, 0x0FFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x19E0, 0x19FF),
                     (0x2E80, 0x2FDF), (0x3000, 0x312F), (0x31A0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
                     (0xA000, 0xA4CF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x20000, 0x3FFFF))
_LATIN_END = re.compile(r"[.!?]$")                       # a sentence end when a space follows
_CJK_END = re.compile(r"[。！？｡][」』〉》”’）)]*$")      # a sentence end as it stands: no space follows


def _no_space(ch: str) -> bool:
    code = ord(ch)
    return any(a <= code <= b for a, b in _NO_SPACE_SCRIPTS)


# Thai and Lao vowels written as letters of their own: after the consonant (SARA A, AA, AM; Lao alike),
# or before it (SARA E, AE, O, AI MAIMUAN, AI MAIMALAI). A break at either would cut a syllable in two.
_VOWEL_AFTER = frozenset("\u0e30\u0e32\u0e33\u0e45\u0eb0\u0eb2\u0eb3")
_VOWEL_BEFORE = frozenset("\u0e40\u0e41\u0e42\u0e43\u0e44\u0ec0\u0ec1\u0ec2\u0ec3\u0ec4")


def _clusters(token: str) -> list[str]:
    """Grapheme clusters, near enough: a combining mark (Thai and Lao vowel signs and tones, variation
    selectors), a Thai or Lao vowel letter and whatever a zero-width joiner joins stay with their
    consonant, since a line broken between them would show a mark or a vowel on its own."""
    out: list[str] = []
    for ch in token:
        if out and (unicodedata.category(ch) in ("Mn", "Mc", "Me") or ch == "\u200d" or ch in _VOWEL_AFTER
                    or out[-1][-1] in _VOWEL_BEFORE or out[-1].endswith("\u200d")):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _pieces(token: str) -> list[str]:
    """A space-free token as the pieces a chunk or line may break between: the token whole, or where it
    holds a no-space script, each cluster of that script alone and each run of other characters (Latin,
    digits) whole. Closing punctuation stays with the piece before and opening punctuation with the piece
    after, so no line starts with "。" or ends with "「" (nor with Japanese "ー" or "々", modifier letters
    that belong to the character before)."""
    if not any(_no_space(c) for c in token):
        return [token]
    pieces: list[str] = []
    spaced = False   # whether the last piece is a run of other characters, which the next such one extends
    opening = ""     # opening punctuation waiting for the piece it opens
    for cluster in _clusters(token):
        category = unicodedata.category(cluster[0])
        if category in ("Ps", "Pi"):
            opening += cluster
        elif pieces and not opening and (category in ("Pe", "Pf", "Po", "Lm")
                                         or (spaced and not _no_space(cluster[0]))):
            pieces[-1] += cluster
            spaced = spaced and not _no_space(cluster[0])
        else:
            pieces.append(opening + cluster)
            opening, spaced = "", not _no_space(cluster[0])
    if opening:
        pieces.append(opening)
    return pieces


def text_units(text: str) -> list[tuple[str, str]]:
    """The text as (glue, piece) pairs, the pieces a chunk or line may break between: words, or clusters
    of a script written without spaces. The glue is " " where a space came before the piece, "" where
    the piece continues a word of such a script."""
    return [(" " if k == 0 else "", piece) for word in str(text).split() for k, piece in enumerate(_pieces(word))]


def joined(units: list[tuple[str, str]]) -> str:
    """The text of consecutive units, without the glue before the first."""
    return "".join(glue + piece for glue, piece in units).lstrip(" ")


def split_text(text: str, max_words: int = 40) -> list[str]:
    """Sentences packed in order into chunks of at most `max_words` units (words; in a script written
    without spaces, characters), a longer sentence cut between units, so a chunk ends at a sentence end
    whenever one fits."""
    units = text_units(text)
    sentences: list[list[tuple[str, str]]] = [[]]
    for i, unit in enumerate(units):
        sentences[-1].append(unit)
        spaced_after = i + 1 == len(units) or units[i + 1][0] == " "
        if _CJK_END.search(unit[1]) or (spaced_after and _LATIN_END.search(unit[1])):
            sentences.append([])
    chunks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for words in filter(None, sentences):
        while len(words) > max_words:   # a sentence longer than a chunk: cut it between units
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
    return [joined(c) for c in chunks]


def _wrap(draw: ImageDraw.ImageDraw, units: list[tuple[str, str]], font, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for glue, piece in units:
        trial = line + glue + piece if line else piece
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = piece
        else:
            line = trial
    if line:
        lines.append(line)
    return lines


@functools.lru_cache(maxsize=8)
def _font_characters(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont   # matplotlib's own dependency, so always installed with vdata

    with TTFont(path, fontNumber=0, lazy=True) as font:   # face 0 of a collection, as PIL opens it
        return frozenset(font.getBestCmap() or {})


def missing_glyphs(text: str, font_path: str) -> list[str]:
    """The characters of `text` (spaces aside) that the font has no glyph for, in order of first use:
    drawn, each would be the font's empty box."""
    have = _font_characters(font_path)
    return list(dict.fromkeys(c for c in text if not c.isspace() and ord(c) not in have))


def render_text_image(text: str, size: tuple[int, int] = (640, 360), font_size: int = 28,
                      font_path: str | None = None) -> Image.Image:
    """One chunk as an RGB picture: black on white, wrapped between words (between characters in scripts
    written without spaces), the font shrunk until the text fits. `font_path`: the bundled DejaVu Sans
    when None. Raises MediaError `font_lacks_glyphs` when the font cannot draw every character (DejaVu
    has no Chinese or Japanese): a picture of empty boxes would pass for rendered text."""
    width, height = size
    path = font_path or bundled_font()
    missing = missing_glyphs(text, path)
    if missing:
        shown = ", ".join(f"{c!r} U+{ord(c):04X}" for c in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise MediaError("font_lacks_glyphs", f"the font {os.path.basename(path)} has no glyphs for "
                         f"{len(missing)} distinct characters of the text ({shown}); drawn, they would be empty boxes")
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    margin = int(width * MARGIN)
    units = text_units(text)
    for fs in range(font_size, MIN_FONT - 1, -2):
        font = ImageFont.truetype(path, fs)
        lines = _wrap(draw, units, font, width - 2 * margin)
        step = int(fs * LINE_SPACING)
        if len(lines) * step <= height - 2 * margin and \
                all(draw.textlength(ln, font=font) <= width - 2 * margin for ln in lines):
            break
    else:
        raise MediaError("text_too_long", f"{len(units)} words ({len(text)} characters) do not fit a "
                         f"{width}x{height} frame at font size {MIN_FONT}")
    top = (height - len(lines) * step) // 2
    for i, line in enumerate(lines):
        draw.text((margin, top + i * step), line, fill="black", font=font)
    return image


def chunk_spans(n_chunks: int, seconds_per_chunk: float) -> list[tuple[float, float]]:
    return [(round(i * seconds_per_chunk, 6), round((i + 1) * seconds_per_chunk, 6)) for i in range(n_chunks)]


def sidecar_path(video_path: str) -> str:
    return os.path.splitext(video_path)[0] + ".chunks.json"


def render_text_video(path: str, chunks: list[str], seconds_per_chunk: float = 2.0,
                      size: tuple[int, int] = (640, 360), fps: int = 2, font_size: int = 28,
                      font_path: str | None = None) -> dict:
    """Write `chunks` as an H.264 mp4 at `path` and the sidecar JSON next to it; returns the sidecar.

    Raises MediaError for no chunks, an empty chunk, a chunk too long for the frame or with characters
    the font has no glyphs for, or ffmpeg failing."""
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
    pictures = [np.asarray(render_text_image(c, size, font_size, font_path), dtype=np.uint8) for c in chunks]
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
