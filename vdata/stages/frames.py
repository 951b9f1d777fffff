"""frames: sample frames from each clip as JPEG bytes with their video-absolute timestamps.

Modes:
- `uniform`: `num_frames` frames at the centres of equal slices of the clip;
- `fps`: one frame every 1/`fps` seconds, at most `max_frames` (evenly thinned beyond that);
- `keyframes`: redundancy-aware (VideoEspresso's core frames): candidates at `candidate_fps`, a
  candidate is kept only if its perceptual hash is farther than `min_hash_distance` from every frame
  kept so far; at most `max_frames` (the most distinct first, then in time order). With
  `keyframe_model:` (a CLIP/SigLIP-family checkpoint: local dir, `package:`, or hub id when online) the
  distance is semantic, as ShareGPT4Video selects keyframes: a candidate is kept only if its image
  embedding's cosine to every kept frame is below `max_keyframe_similarity`.

A clip whose frames cannot be read soundly is rejected `corrupt` with the numbers: a packet that did
not decode on the way to a requested time, or a frame that came back more than one frame interval
from the time asked for (missing frames). The reader has already handed over from decord to PyAV
where decord's answers were wrong.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from vdata.media.hashing import hamming, phash
from vdata.media.images import encode_jpeg
from vdata.media.reader import open_reader, returned_times_problem
from vdata.media.timestamps import held_frame_gap
from vdata.schemas import records as R

from .base import Resources, Stage, StageConfig

CORRUPT = "corrupt"   # reject reason: the clip's frames do not decode soundly
# Largest frame interval tolerated between a requested time and the frame returned for it in a
# variable-frame-rate video, where one frame may legitimately last much longer than 1/average fps.
VFR_MAX_GAP_S = 1.0


class FramesConfig(StageConfig):
    mode: Literal["uniform", "fps", "keyframes"] = "uniform"
    num_frames: int = Field(8, ge=1, le=512)
    fps: float = Field(1.0, gt=0)
    max_frames: int = Field(32, ge=1, le=1024)
    candidate_fps: float = Field(2.0, gt=0)
    min_hash_distance: int = Field(10, ge=0, le=64)
    keyframe_model: str | None = None                   # keyframes by embedding (ShareGPT4Video) instead of pHash
    max_keyframe_similarity: float = Field(0.9, gt=-1, le=1)
    max_side: int = Field(448, ge=32)
    jpeg_quality: int = Field(90, ge=10, le=100)
    backend: Literal["auto", "decord", "pyav"] = "auto"


def _even(start: float, end: float, n: int) -> list[float]:
    return [start + (k + 0.5) * (end - start) / n for k in range(n)]


# A clip's span is not exact: its times are rounded to the microsecond (up to 1 us off each), and 4.68 - 2.68
# is 1.9999999999999996 s, which at 2 fps truncated to 3 frames where 2.00 - 0.00 gave 4. A span short of a
# whole grid slot by less than this counts as reaching it.
GRID_SLACK_S = 1e-5


def sample_times(mode: str, start: float, end: float, cfg: FramesConfig) -> list[float]:
    span = max(0.0, end - start)
    if mode == "uniform":
        return _even(start, end, cfg.num_frames)
    rate = cfg.fps if mode == "fps" else cfg.candidate_fps
    n = max(1, int((span + GRID_SLACK_S) * rate))
    if mode == "fps" and n > cfg.max_frames:
        return _even(start, end, cfg.max_frames)
    return [start + (k + 0.5) / rate for k in range(n) if start + (k + 0.5) / rate < end] or [start + span / 2]


class FramesStage(Stage):
    name = "frames"
    version = 5   # 2: a picture a VFR video holds for seconds is read, not rejected; 3: the frame shown then;
                  # 4: HDR video tone mapped; 5: fps/keyframes grids keep the slot float rounding cut off, and
                  # mirrored video (display matrix with a flip) is mirrored, not turned upside down
    HUB_MODEL_FIELDS = ("keyframe_model",)
    needs_video = True
    Config = FramesConfig
    reads = (R.PATH, R.START_S, R.END_S)
    writes = R.FRAME_COLUMNS
    default_resources = Resources(num_cpus=1, batch_size=2)

    def setup(self) -> None:
        self._embedder = None
        if self.config.mode == "keyframes" and self.config.keyframe_model:
            from vdata.teachers.vision_text import VisionTextModel

            self._embedder = VisionTextModel(self.config.keyframe_model)   # once per worker

    def label(self) -> str:
        c = self.config
        distinct = (f"cos{c.max_keyframe_similarity:g}" if c.keyframe_model else f"d{c.min_hash_distance}")
        return {"uniform": f"uniform:{c.num_frames}", "fps": f"fps:{c.fps:g}:max{c.max_frames}",
                "keyframes": f"keyframes:{c.candidate_fps:g}fps:{distinct}:max{c.max_frames}"}[c.mode]

    def process_row(self, row):
        cfg = self.config
        times = sample_times(cfg.mode, row[R.START_S], row[R.END_S], cfg)
        with open_reader(row[R.PATH], cfg.backend, purpose="sparse", max_side=cfg.max_side) as reader:
            frames = reader.read_at(times, max_side=cfg.max_side)
            errors, fps, via = list(reader.decode_errors), float(row.get(R.FPS) or reader.fps), reader.backend
            declared = row.get(R.DURATION_S) or (reader.num_frames / fps if reader.num_frames else None)
        # a request past the last frame rightly gets the last frame
        last = float(declared) - 1.0 / fps if declared else float("inf")
        problem = self._unsound(row[R.PATH], times, frames, errors, fps, bool(row.get(R.IS_VFR)), last)
        if problem:
            return self.reject(row, CORRUPT, f"frames of {row[R.START_S]:.2f}-{row[R.END_S]:.2f}s: {problem}",
                               decode_errors=errors, requested=[round(t, 3) for t in times],
                               returned=[round(t, 3) for t, _ in frames], backend=via)
        if cfg.mode == "keyframes":
            frames = self._distinct(frames)
        items, seen = [], set()
        for t, img in frames:
            if t in seen:   # a clip shorter than the sampling grid can map two times to one frame
                continue
            seen.add(t)
            items.append({R.FRAME_TIMESTAMP_S: round(t, 6), R.FRAME_JPEG: encode_jpeg(img, cfg.jpeg_quality)})
        return {**row, R.FRAMES: items, R.FRAME_SAMPLING: self.label()}

    @staticmethod
    def _unsound(path, times, frames, errors, fps, is_vfr, last_frame_s) -> str | None:
        if errors:
            return f"{len(errors)} packet(s) failed to decode on the way, the first at {min(errors):.2f}s"
        got, span = [t for t, _ in frames], (0.0, max(0.0, last_frame_s))
        tol = max(1.0 / fps, VFR_MAX_GAP_S) if is_vfr else 1.0 / fps + 1e-3
        problem = returned_times_problem(times, got, fps, span=span, tolerance_s=tol)
        if problem:
            # a picture held longer than the tolerance (a still screen in a screen recording, a slideshow's
            # slide, which the mean rate of a short file understates): the frame shown at a time inside it
            # is the one before, which the packets' timestamps show without a decode
            held = held_frame_gap(path, times)
            if held is not None and held + 1.0 / fps > tol:
                problem = returned_times_problem(times, got, fps, span=span, tolerance_s=held + 1.0 / fps + 1e-3)
        return problem

    def _distinct(self, frames):
        """Candidates far enough from every frame kept before them; beyond max_frames, the most distinct
        (greedy farthest-point), in time order. Distance: pHash Hamming, or 1 - cosine of embeddings."""
        if getattr(self, "_embedder", None) is not None:
            vectors = self._embedder.embed_images([img for _, img in frames])
            keys = list(vectors)
            distance = lambda a, b: 1.0 - float(a @ b)   # noqa: E731 (unit vectors)
            min_distance = 1.0 - self.config.max_keyframe_similarity
            far_enough = lambda d: d >= min_distance      # noqa: E731
        else:
            keys = [phash(img) for _, img in frames]
            distance = hamming
            far_enough = lambda d: d > self.config.min_hash_distance   # noqa: E731
        kept: list[tuple[float, object, object]] = []
        for (t, img), key in zip(frames, keys):
            if all(far_enough(distance(key, k)) for _, _, k in kept):
                kept.append((t, img, key))
        if len(kept) > self.config.max_frames:
            chosen = [0]
            while len(chosen) < self.config.max_frames:
                best = max((i for i in range(len(kept)) if i not in chosen),
                           key=lambda i: min(distance(kept[i][2], kept[j][2]) for j in chosen))
                chosen.append(best)
            kept = [kept[i] for i in sorted(chosen)]
        return [(t, img) for t, img, _ in kept]
