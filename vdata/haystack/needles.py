"""Needle pools: what can be inserted into a haystack, each with a stable content id and a text label.

Labels are what questions and options say about a needle: a text needle's phrase; for a file, the text
of a sidecar `<stem>.txt` next to it (for speech: the transcript) or else its humanised file stem
(`red_square.jpg` → "red square"). Ids are content hashes, so a benchmark's manifest names needles
independently of where their files live.
"""
from __future__ import annotations

import functools
import glob as globlib
import math
import os
import re
from dataclasses import dataclass, field

from vdata.media import MediaError
from vdata.media.hashing import bytes_id, content_id
from vdata.media.text_frames import missing_glyphs
from vdata.schemas.config import ConfigError

from .config import HaystackConfig, NeedleSpec
from .pictures import alpha_plane

DEFAULT_SHOW_S = 2.0
MIN_FONT_PX = 12
MIN_SPEECH_S = 0.1       # an audio needle shorter than this holds no word to hear
SILENT_PEAK = 1e-3       # ... and one whose loudest sample is under this (full scale 1) is silence
# Where a spoken needle is heard: from its first to its last sample at AUDIBLE_SHARE of its peak (-34 dB;
# TTS pads its speech with digital silence, a recording with room noise far below its speech), widened
# by AUDIBLE_MARGIN_S either side (a word's soft onset and decay) within the file.
AUDIBLE_SHARE = 0.02
AUDIBLE_MARGIN_S = 0.05

NOUNS = {  # kind: (singular, plural, verb)
    "image": ("image", "images", "shown"),
    "text": ("on-screen text", "on-screen texts", "shown"),
    "clip": ("video clip", "video clips", "shown"),
    "audio": ("spoken phrase", "spoken phrases", "spoken"),
}


@dataclass(frozen=True)
class Needle:
    needle_id: str
    kind: str                 # image | text | clip | audio
    label: str
    duration_s: float         # how long it stays on screen / how long the speech file lasts
    path: str | None = None   # local file (None for text)
    ref: str | None = None    # path relative to the config folder, as a hint in the manifest
    width: int = 0            # native pixel size (image, clip)
    height: int = 0
    # audio: (start, end) in seconds into the file of the part that is heard (`audible_span`): the file is
    # placed and mixed whole, its placement's interval (the answer's truth) is this part. None: the whole
    # file (manifests before version 3).
    audible: tuple[float, float] | None = None


@dataclass
class NeedleSet:
    name: str
    kind: str
    style: str                # fullframe | overlay | audio
    scale: float
    index: int                # position in config `haystack.needles`
    needles: list[Needle] = field(default_factory=list)   # sorted by needle_id: independent of paths

    @property
    def noun(self) -> str:
        return NOUNS[self.kind][0]

    @property
    def plural(self) -> str:
        return NOUNS[self.kind][1]

    @property
    def verb(self) -> str:
        return NOUNS[self.kind][2]

    def by_id(self, needle_id: str) -> Needle:
        for n in self.needles:
            if n.needle_id == needle_id:
                return n
        raise KeyError(needle_id)


def humanise(stem: str) -> str:
    return " ".join(stem.replace("_", " ").replace("-", " ").split())


def _label_for(path: str) -> str:
    sidecar = os.path.splitext(path)[0] + ".txt"
    if os.path.exists(sidecar):
        text = " ".join(open(sidecar, encoding="utf-8").read().split())
        if text:
            return text
    return humanise(os.path.splitext(os.path.basename(path))[0])


def _files(cfg: HaystackConfig, spec: NeedleSpec, where: str) -> list[str]:
    pattern = cfg.resolve(spec.from_)
    paths = sorted(p for p in globlib.glob(pattern, recursive=True) if os.path.isfile(p) and not p.endswith(".txt"))
    if not paths:
        raise ConfigError(f"{where}.from: no files match {spec.from_!r} (looked in {pattern})")
    return paths


def _phrases(cfg: HaystackConfig, spec: NeedleSpec, where: str) -> list[str]:
    if isinstance(spec.phrases, list):
        raw = spec.phrases
    else:
        path = cfg.resolve(spec.phrases)
        try:
            raw = open(path, encoding="utf-8").read().splitlines()
        except OSError as e:
            raise ConfigError(f"{where}.phrases: cannot read {spec.phrases!r}: {e.strerror}") from e
    phrases = [" ".join(p.split()) for p in raw if p.strip() and not p.strip().startswith("#")]
    if not phrases:
        raise ConfigError(f"{where}.phrases: no phrases (one a line; blank lines and # comments are skipped)")
    return phrases


def _refuse_missing_glyphs(phrase: str, where: str) -> None:
    """A character the font has no glyph for is drawn as an empty box, and OCR skips it: the item would
    pass verification while its answer names text that is not on screen."""
    path = text_font_path()
    missing = missing_glyphs(phrase, path)
    if missing:
        shown = ", ".join(f"{c!r} U+{ord(c):04X}" for c in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise ConfigError(f"{where}: {phrase!r} has characters the font {os.path.basename(path)} has no glyph "
                          f"for ({shown}); drawn, they would be empty boxes")


def _rel(cfg: HaystackConfig, path: str) -> str:
    return os.path.relpath(path, cfg.base_dir)


def load_needle_sets(cfg: HaystackConfig) -> list[NeedleSet]:
    """Read every needle set of the config; a bad file or an ambiguous label names its key."""
    sets = []
    width, height = cfg.haystack.size
    for i, spec in enumerate(cfg.haystack.needles):
        where = f"haystack.needles[{i}]"
        ns = NeedleSet(name=spec.name, kind=spec.type, style=spec.resolved_style, scale=spec.scale, index=i)
        if spec.type == "text":
            show = spec.duration_s or DEFAULT_SHOW_S
            for phrase in _phrases(cfg, spec, where):
                _refuse_missing_glyphs(phrase, f"{where}.phrases")
                if text_font_size(phrase, ns.style, width, height) < MIN_FONT_PX:
                    raise ConfigError(f"{where}.phrases: {phrase!r} is too long to fit a {width}px-wide frame")
                ns.needles.append(Needle(bytes_id(phrase.encode()), "text", phrase, show))
        else:
            for path in _files(cfg, spec, where):
                try:
                    ns.needles.append(_file_needle(spec, path, _rel(cfg, path)))
                except (MediaError, OSError, ValueError) as e:
                    raise ConfigError(f"{where}.from: {os.path.basename(path)} cannot be used: {e}") from e
        labels = [n.label.lower() for n in ns.needles]
        dup = sorted({lab for lab in labels if labels.count(lab) > 1})
        if dup:
            raise ConfigError(f"{where}: several needles share the label(s) {dup}; labels are how questions name them")
        _refuse_nested_labels(ns.needles, where)
        ids = [n.needle_id for n in ns.needles]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"{where}: the same content appears twice (identical files or phrases)")
        ns.needles.sort(key=lambda n: n.needle_id)
        sets.append(ns)
    return sets


def _refuse_nested_labels(needles: list[Needle], where: str) -> None:
    """A label that holds another as whole words ("BLUE HORSE" in "BLUE HORSE RACE") makes a question about
    the shorter one ambiguous: the longer one's showing shows it too (a second true option, a wrong count)."""
    seqs = sorted(((tuple(re.findall(r"\w+", n.label.casefold())), n.label) for n in needles),
                  key=lambda x: len(x[0]))
    for i, (short, a) in enumerate(seqs):
        for long, b in seqs[i + 1:]:
            m = len(short)
            if m and len(long) > m and any(long[j:j + m] == short for j in range(len(long) - m + 1)):
                raise ConfigError(f"{where}: the label {a!r} is part of the label {b!r}; a question about {a!r} "
                                  f"would be answered by {b!r}'s showing too: rename or drop one of them")


def _file_needle(spec: NeedleSpec, path: str, ref: str) -> Needle:
    nid = content_id(path)
    label = _label_for(path)
    if spec.type == "image":
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            w, h = im.size
            if getattr(im, "n_frames", 1) > 1:   # the renderer loops one still picture (outside check h18 F18)
                raise ValueError(f"an animated image ({im.n_frames} frames): an image needle is one still picture; "
                                 "make it a clip needle (type: clip) or save one frame")
            alpha = alpha_plane(im)   # composited (pictures.py): a picture with no opaque pixel shows nothing
            if alpha is not None and int(alpha.max()) == 0:
                raise ValueError("fully transparent: nothing of it would be on screen")
        return Needle(nid, "image", label, spec.duration_s or DEFAULT_SHOW_S, path, ref, w, h)
    if spec.type == "clip":
        from vdata.media.probe import probe_video

        info = probe_video(path)
        dur = info["duration_s"] if spec.duration_s is None else min(spec.duration_s, info["duration_s"])
        return Needle(nid, "clip", label, dur, path, ref, info["width"], info["height"])
    if spec.type == "audio":
        duration, peak = audio_duration(path), audio_peak(path)
        if duration < MIN_SPEECH_S:
            raise ValueError(f"no audio samples to speak (duration {duration:.2f} s, at least {MIN_SPEECH_S:g} s needed)")
        if peak < SILENT_PEAK:
            raise ValueError(f"silent (peak level {peak:.1e} of full scale): nothing to hear")
        return Needle(nid, "audio", label, duration, path, ref, audible=audible_span(path, duration))
    raise ValueError(f"unknown needle type {spec.type}")


def audio_duration(path: str) -> float:
    import av

    try:
        with av.open(path) as c:
            if not c.streams.audio:
                raise MediaError("no_audio_stream", "no audio stream")
            s = c.streams.audio[0]
            if s.duration is not None:
                return float(s.duration * s.time_base)
            if c.duration:
                return c.duration / 1_000_000
            samples = sum(f.samples for f in c.decode(s))
            return samples / float(s.rate)
    except av.error.FFmpegError as e:
        raise MediaError("unreadable", f"not a readable audio file: {e}") from e


def audio_peak(path: str) -> float:
    """The loudest sample of the file's first audio stream, in full scale (0 for no samples)."""
    import av
    import numpy as np

    peak = 0.0
    try:
        with av.open(path) as c:
            for frame in c.decode(c.streams.audio[0]):
                a = frame.to_ndarray()
                if a.size:
                    v = a.astype(np.float64)
                    if a.dtype.kind == "u":     # unsigned samples centre on the middle of their range
                        v -= (np.iinfo(a.dtype).max + 1) / 2
                    scale = (np.iinfo(a.dtype).max + 1) / (2 if a.dtype.kind == "u" else 1) \
                        if a.dtype.kind in "iu" else 1.0
                    peak = max(peak, float(np.abs(v).max()) / scale)
    except av.error.FFmpegError as e:
        raise MediaError("unreadable", f"not a readable audio file: {e}") from e
    return peak


def audible_span(path: str, duration_s: float) -> tuple[float, float]:
    """(start, end) in seconds into the file of its audible part: the first and last sample (any channel)
    at AUDIBLE_SHARE of the file's peak, AUDIBLE_MARGIN_S beyond them, within [0, duration_s]; outward to
    the millisecond. The whole file when it has no such sample."""
    import av
    import numpy as np

    loud, rate = [], 0
    try:
        with av.open(path) as c:
            stream = c.streams.audio[0]
            rate = stream.rate
            to_float = av.AudioResampler(format="fltp")   # samples as floats in full scale, one row a channel
            for frame in c.decode(stream):
                for f in to_float.resample(frame):
                    a = np.abs(f.to_ndarray()).max(axis=0)
                    loud.append(a)
    except av.error.FFmpegError as e:
        raise MediaError("unreadable", f"not a readable audio file: {e}") from e
    level = np.concatenate(loud) if loud else np.zeros(0)
    peak = float(level.max()) if level.size else 0.0
    hits = np.flatnonzero(level >= AUDIBLE_SHARE * peak) if peak > 0 else np.zeros(0, int)
    if not hits.size or not rate:
        return 0.0, round(duration_s, 6)
    start = max(0.0, math.floor((hits[0] / rate - AUDIBLE_MARGIN_S) * 1000) / 1000)
    end = min(duration_s, math.ceil(((hits[-1] + 1) / rate + AUDIBLE_MARGIN_S) * 1000) / 1000)
    return round(start, 6), round(max(end, start), 6)


# --- text layout (shared by the renderer, which draws it, and the verifier, which knows where to look) ---

def text_font_path() -> str:
    """The font text needles are drawn with (the bundled DejaVu Sans Bold), for layout, drawing and the glyph check."""
    from vdata.media.synth import bundled_font

    return bundled_font(bold=True)


@functools.lru_cache(maxsize=256)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(text_font_path(), size)


def text_font_size(text: str, style: str, width: int, height: int) -> int:
    """Largest font size (px) up to the style's nominal size at which `text` fits 90% of the frame width."""
    nominal = max(MIN_FONT_PX, int(height * (0.11 if style == "fullframe" else 0.08)))
    max_w = width * 0.9
    size = nominal
    while size >= MIN_FONT_PX and _font(size).getlength(text) + size > max_w:
        size -= 1
    return size


def text_box(text: str, style: str, width: int, height: int) -> tuple[int, int, int]:
    """(font size, box width, box height) of the drawn text including its padding box."""
    size = text_font_size(text, style, width, height)
    font = _font(size)
    ascent, descent = font.getmetrics()
    pad = text_padding(size)
    return size, int(round(font.getlength(text))) + 2 * pad, ascent + descent + 2 * pad


def text_padding(font_size: int) -> int:
    return max(4, font_size // 3)
