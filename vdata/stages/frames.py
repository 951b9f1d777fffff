"""frames: sample frames from each clip as JPEG bytes with their video-absolute timestamps.

Modes:
- `uniform`: `num_frames` frames at the centres of equal slices of the clip;
- `fps`: one frame every 1/`fps` seconds, at most `max_frames` (evenly thinned beyond that);
- `keyframes`: redundancy-aware (VideoEspresso's core frames): candidates at `candidate_fps`, a
  candidate is kept only if its perceptual hash is farther than `min_hash_distance` from every frame
  kept so far; at most `max_frames` (the most distinct first, then in time order).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from vdata.media.hashing import hamming, phash
from vdata.media.images import encode_jpeg
from vdata.media.reader import open_reader
from vdata.schemas import records as R

from .base import Resources, Stage, StageConfig


class FramesConfig(StageConfig):
    mode: Literal["uniform", "fps", "keyframes"] = "uniform"
    num_frames: int = Field(8, ge=1, le=512)
    fps: float = Field(1.0, gt=0)
    max_frames: int = Field(32, ge=1, le=1024)
    candidate_fps: float = Field(2.0, gt=0)
    min_hash_distance: int = Field(10, ge=0, le=64)
    max_side: int = Field(448, ge=32)
    jpeg_quality: int = Field(90, ge=10, le=100)
    backend: Literal["auto", "decord", "pyav"] = "auto"


def _even(start: float, end: float, n: int) -> list[float]:
    return [start + (k + 0.5) * (end - start) / n for k in range(n)]


def sample_times(mode: str, start: float, end: float, cfg: FramesConfig) -> list[float]:
    span = max(0.0, end - start)
    if mode == "uniform":
        return _even(start, end, cfg.num_frames)
    rate = cfg.fps if mode == "fps" else cfg.candidate_fps
    n = max(1, int(span * rate))
    if mode == "fps" and n > cfg.max_frames:
        return _even(start, end, cfg.max_frames)
    return [start + (k + 0.5) / rate for k in range(n) if start + (k + 0.5) / rate < end] or [start + span / 2]


class FramesStage(Stage):
    name = "frames"
    Config = FramesConfig
    reads = (R.PATH, R.START_S, R.END_S)
    writes = R.FRAME_COLUMNS
    default_resources = Resources(num_cpus=1, batch_size=2)

    def label(self) -> str:
        c = self.config
        return {"uniform": f"uniform:{c.num_frames}", "fps": f"fps:{c.fps:g}:max{c.max_frames}",
                "keyframes": f"keyframes:{c.candidate_fps:g}fps:d{c.min_hash_distance}:max{c.max_frames}"}[c.mode]

    def process_row(self, row):
        cfg = self.config
        times = sample_times(cfg.mode, row[R.START_S], row[R.END_S], cfg)
        with open_reader(row[R.PATH], cfg.backend, purpose="sparse", max_side=cfg.max_side) as reader:
            frames = reader.read_at(times, max_side=cfg.max_side)
        if cfg.mode == "keyframes":
            frames = self._distinct(frames)
        items, seen = [], set()
        for t, img in frames:
            if t in seen:   # a clip shorter than the sampling grid can map two times to one frame
                continue
            seen.add(t)
            items.append({R.FRAME_TIMESTAMP_S: round(t, 6), R.FRAME_JPEG: encode_jpeg(img, cfg.jpeg_quality)})
        return {**row, R.FRAMES: items, R.FRAME_SAMPLING: self.label()}

    def _distinct(self, frames):
        kept: list[tuple[float, object, int]] = []
        for t, img in frames:
            h = phash(img)
            if all(hamming(h, kh) > self.config.min_hash_distance for _, _, kh in kept):
                kept.append((t, img, h))
        if len(kept) > self.config.max_frames:
            # keep the most distinct: greedy farthest-point selection, then restore time order
            chosen = [0]
            while len(chosen) < self.config.max_frames:
                best = max((i for i in range(len(kept)) if i not in chosen),
                           key=lambda i: min(hamming(kept[i][2], kept[j][2]) for j in chosen))
                chosen.append(best)
            kept = [kept[i] for i in sorted(chosen)]
        return [(t, img) for t, img, _ in kept]
