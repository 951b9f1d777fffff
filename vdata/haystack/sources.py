"""Haystack sources: the videos needles are hidden in, named by content id and probed once.

A source that cannot be used (unreadable, no video) is skipped with its reason; the run goes on with
the rest. Sources are ordered by content id, so the plan does not depend on file names or paths.
"""
from __future__ import annotations

import glob as globlib
import math
import os
from collections import Counter
from dataclasses import dataclass

from vdata.media import MediaError
from vdata.media.hashing import content_id
from vdata.media.probe import probe_video
from vdata.schemas.config import VIDEO_EXTENSIONS, ConfigError

from .config import HaystackConfig


@dataclass(frozen=True)
class Source:
    source_id: str
    path: str
    ref: str                  # path relative to the config folder (a hint for rebuilding)
    frames: int               # frames at the haystack fps once normalised
    duration_s: float         # frames / fps: what one pass through this source adds to a haystack
    has_audio: bool
    width: int
    height: int


@dataclass(frozen=True)
class SkippedSource:
    path: str
    reason: str
    message: str


def _candidates(cfg: HaystackConfig) -> list[str]:
    found: list[str] = []
    for i, spec in enumerate(cfg.haystack.sources):
        where = f"haystack.sources[{i}]"
        if spec.glob is not None:
            pattern = cfg.resolve(spec.glob)
            paths = sorted(p for p in globlib.glob(pattern, recursive=True) if os.path.isfile(p))
            if not paths:
                raise ConfigError(f"{where}.glob: no files match {spec.glob!r} (looked in {pattern})")
        else:
            root = cfg.resolve(spec.path)
            if os.path.isdir(root):
                paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                               if f.lower().endswith(VIDEO_EXTENSIONS))
                if not paths:
                    raise ConfigError(f"{where}.path: no videos under {spec.path!r}")
            elif os.path.isfile(root):
                paths = [root]
            else:
                raise ConfigError(f"{where}.path: {spec.path!r} does not exist (looked at {root})")
        found.extend(paths)
    return found


def describe_source(path: str, fps: float, ref: str | None = None, info: dict | None = None) -> Source:
    info = info or probe_video(path)
    frames = int(math.floor(info["duration_s"] * fps + 1e-6))
    if frames < 1:
        raise MediaError("too_short", f"shorter than one frame at {fps:g} fps")
    return Source(content_id(path), path, ref or os.path.basename(path), frames, frames / fps,
                  bool(info["has_audio"]), int(info["width"]), int(info["height"]))


def _most_common(values: list, key) -> object:
    counts = Counter(values)
    return max(counts, key=lambda v: (counts[v], key(v)))


def load_sources(cfg: HaystackConfig) -> tuple[list[Source], list[SkippedSource]]:
    """Probe every source; unusable ones are returned as skipped. No usable source is a config error.

    A `size` / `fps` of "auto" is fixed here (in the config object) from the usable sources.
    """
    h = cfg.haystack
    probed, skipped = [], []
    for path in _candidates(cfg):
        try:
            probed.append((path, probe_video(path)))
        except MediaError as e:
            skipped.append(SkippedSource(path, e.reason, e.message))
    if h.fps == "auto" and probed:
        h.fps = float(_most_common([round(info["fps"], 3) for _, info in probed if info["fps"]] or [25.0], key=float))
    if h.size == "auto" and probed:
        sizes = [(max(64, info["width"] // 2 * 2), max(64, info["height"] // 2 * 2)) for _, info in probed]
        h.size = _most_common(sizes, key=lambda wh: wh[0] * wh[1])
    by_id: dict[str, Source] = {}
    for path, info in probed:
        try:
            src = describe_source(path, h.fps, os.path.relpath(path, cfg.base_dir), info)
        except MediaError as e:
            skipped.append(SkippedSource(path, e.reason, e.message))
            continue
        by_id.setdefault(src.source_id, src)   # the same content under two names counts once
    if not by_id:
        detail = "; ".join(f"{os.path.basename(s.path)}: {s.message}" for s in skipped[:5])
        raise ConfigError(f"haystack.sources: no usable haystack video ({detail or 'none found'})")
    return sorted(by_id.values(), key=lambda s: s.source_id), skipped
