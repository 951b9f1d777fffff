"""shots: PySceneDetect cut detection → clip rows (fan-out), with min/max length and stitching.

One decode pass per video at reduced size feeds the chosen PySceneDetect detector frame by frame and
keeps a small colour histogram per frame. The histograms then drive two repairs that detectors alone
get wrong (Panda-70M style stitching):
- a shot shorter than `min_len_s` (a flash, a glitch) whose neighbours look alike is a false cut: the
  three are one clip; otherwise it merges into its more similar neighbour (or is dropped);
- adjacent shots whose boundary frames are near-identical are merged.
Long shots are then split into windows of at most `max_len_s`. Clip ids are derived from the content
id and frame numbers, so they are identical across runs.
"""
from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.reader import open_reader, prefetch
from vdata.schemas import records as R

from .base import Resources, Stage, StageConfig

DETECTORS = {
    "adaptive": ("AdaptiveDetector", "adaptive_threshold"),
    "content": ("ContentDetector", "threshold"),
    "hash": ("HashDetector", "threshold"),
    "histogram": ("HistogramDetector", "threshold"),
    "threshold": ("ThresholdDetector", "threshold"),
}


class StitchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    max_distance: float = Field(0.15, ge=0, le=1, description="histogram distance below which a cut is false")


class ShotsConfig(StageConfig):
    detector: Literal["adaptive", "content", "hash", "histogram", "threshold"] = "adaptive"
    threshold: float | None = Field(None, description="the detector's main threshold; None = its default")
    detector_args: dict[str, Any] = Field(default_factory=dict)
    min_len_s: float = Field(1.0, ge=0)
    short_shots: Literal["merge", "drop"] = "merge"
    max_len_s: float | None = Field(60.0, gt=0)
    stitch: StitchConfig = Field(default_factory=StitchConfig)
    analysis_max_side: int = Field(256, ge=32, description="frames are downscaled to this before detection")
    backend: Literal["auto", "opencv", "pyav", "decord"] = "auto"
    write_clips: bool = False
    clip_codec: Literal["copy_if_aligned", "reencode"] = "copy_if_aligned"


_THUMB = (16, 9)


def _features(bgr: np.ndarray) -> np.ndarray:
    """A 32-bin HSV histogram (hue 16, sat 8, val 8; each sums to 1) and a 16x9 grey thumbnail in 0..1."""
    import cv2

    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    h = cv2.calcHist([hsv], [0], None, [16], [0, 180]).ravel()
    s = cv2.calcHist([hsv], [1], None, [8], [0, 256]).ravel()
    v = cv2.calcHist([hsv], [2], None, [8], [0, 256]).ravel()
    n = float(bgr.shape[0] * bgr.shape[1])
    thumb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), _THUMB, interpolation=cv2.INTER_AREA).ravel() / 255.0
    return np.concatenate([np.concatenate([h, s, v]) / n, thumb]).astype(np.float32)


def feature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """0 for identical frames, towards 1 for unrelated ones: the larger of the colour-histogram distance
    (half L1, averaged over the three histograms) and the layout distance (mean abs thumbnail
    difference, doubled). Both must be small for two frames to count as the same scene: colour alone
    confuses different shots with the same palette, layout alone is fooled by motion."""
    hist = float(np.abs(a[:32] - b[:32]).sum() / 6.0)
    layout = float(np.abs(a[32:] - b[32:]).mean() * 2.0)
    return max(hist, layout)


def detect_cuts(path: str, cfg: ShotsConfig) -> tuple[list[int], np.ndarray, np.ndarray, float]:
    """Run the detector over every frame. Returns (cut frame indices, frame times, features, fps)."""
    import scenedetect.detectors as sd
    from scenedetect import FrameTimecode

    cls_name, thr_arg = DETECTORS[cfg.detector]
    kwargs = dict(cfg.detector_args)
    if cfg.threshold is not None:
        kwargs[thr_arg] = cfg.threshold
    # Short shots are handled below with the histograms, so the detector reports every cut it sees.
    kwargs.setdefault("min_scene_len", 1)
    detector = getattr(sd, cls_name)(**kwargs)
    cuts: list[int] = []
    times: list[float] = []
    feats: list[np.ndarray] = []
    with open_reader(path, cfg.backend, purpose="stream", max_side=cfg.analysis_max_side) as reader:
        fps = reader.fps
        index = -1
        for index, t, bgr in prefetch(reader.iter_frames(max_side=cfg.analysis_max_side, fmt="bgr24")):
            tc = FrameTimecode(index, fps)
            cuts.extend(c.frame_num for c in detector.process_frame(tc, bgr))
            times.append(t)
            feats.append(_features(bgr))
        if index >= 0:
            cuts.extend(c.frame_num for c in detector.post_process(FrameTimecode(index, fps)))
    n = len(times)
    cuts = sorted({c for c in cuts if 0 < c < n})
    return cuts, np.asarray(times), np.asarray(feats), fps


def segments_from_cuts(cuts: list[int], n: int) -> list[list[int]]:
    bounds = [0, *cuts, n]
    return [[a, b] for a, b in zip(bounds, bounds[1:]) if b > a]


def repair_segments(segs: list[list[int]], feats: np.ndarray, fps: float, cfg: ShotsConfig) -> list[list[int]]:
    """Short-shot handling and stitching on [start, end) frame segments (see module docstring)."""
    dist = lambda i, j: feature_distance(feats[i], feats[j])  # noqa: E731
    thr = cfg.stitch.max_distance if cfg.stitch.enabled else -1.0
    min_frames = cfg.min_len_s * fps
    segs = [list(s) for s in segs]
    changed = True
    while changed and len(segs) > 1:
        changed = False
        for i, (a, b) in enumerate(segs):
            if b - a >= min_frames:
                continue
            prev = segs[i - 1] if i > 0 and segs[i - 1][1] == a else None
            nxt = segs[i + 1] if i + 1 < len(segs) and segs[i + 1][0] == b else None
            if prev and nxt and dist(prev[1] - 1, nxt[0]) <= thr:
                prev[1] = nxt[1]                       # a flash inside one scene: all three are one
                del segs[i:i + 2]
            elif cfg.short_shots == "drop":
                del segs[i]
            elif prev or nxt:
                to_prev = prev is not None and (nxt is None or dist(prev[1] - 1, a) <= dist(b - 1, nxt[0]))
                if to_prev:
                    prev[1] = b
                else:
                    nxt[0] = a
                del segs[i]
            else:
                continue
            changed = True
            break
    if thr >= 0:
        merged = [segs[0]] if segs else []
        for s in segs[1:]:
            last = merged[-1]
            if last[1] == s[0] and dist(last[1] - 1, s[0]) <= thr:
                last[1] = s[1]
            else:
                merged.append(s)
        segs = merged
    return segs


def split_long(segs: list[list[int]], fps: float, max_len_s: float | None) -> list[list[int]]:
    if not max_len_s:
        return segs
    max_frames = max(1, int(max_len_s * fps))
    out = []
    for a, b in segs:
        pieces = -(-(b - a) // max_frames)
        for k in range(pieces):  # equal windows rather than a short remainder
            out.append([a + (b - a) * k // pieces, a + (b - a) * (k + 1) // pieces])
    return out


class ShotsStage(Stage):
    name = "shots"
    Config = ShotsConfig
    reads = (R.PATH, R.VIDEO_ID, R.FPS, R.DURATION_S)
    writes = R.CLIP_COLUMNS
    default_resources = Resources(num_cpus=1, batch_size=1)
    cache_results = True

    def process_row(self, row):
        cfg = self.config
        cuts, times, feats, fps = detect_cuts(row[R.PATH], cfg)
        n = len(times)
        if n == 0:
            return self.reject(row, "undecodable", "no frames decoded during shot detection")
        segs = segments_from_cuts(cuts, n)
        segs = repair_segments(segs, feats, fps, cfg)
        segs = split_long(segs, fps, cfg.max_len_s)
        if not segs:
            return self.reject(row, "no_shots", f"every shot was shorter than min_len_s={cfg.min_len_s}",
                               cuts=cuts)
        frame_dur = 1.0 / fps
        video_end = float(times[-1]) + frame_dur
        clips = []
        for k, (a, b) in enumerate(segs):
            start_s = float(times[a])
            end_s = float(times[b]) if b < n else video_end
            clip = {
                **row,
                R.CLIP_ID: f"{row[R.VIDEO_ID]}_{a:07d}_{b:07d}",
                R.CLIP_INDEX: k,
                R.START_S: round(start_s, 6),
                R.END_S: round(end_s, 6),
                R.START_FRAME: a,
                R.END_FRAME: b,
                R.CLIP_DURATION_S: round(end_s - start_s, 6),
                R.CLIP_PATH: None,
                R.SHOTS_IN_VIDEO: len(segs),
            }
            if cfg.write_clips:
                clip[R.CLIP_PATH] = self._write_clip(row[R.PATH], clip)
            clips.append(clip)
        return clips

    def _write_clip(self, path: str, clip: dict) -> str:
        # not under clips/: that folder holds the dataset's Parquet files and nothing else
        out_dir = os.path.join(self.ctx.output_dir, "clip_files", clip[R.VIDEO_ID][:2])
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, f"{clip[R.CLIP_ID]}.mp4")
        if os.path.exists(out):
            return out
        tmp = out + ".part.mp4"
        span = ["-ss", f"{clip[R.START_S]:.6f}", "-i", path, "-t", f"{clip[R.CLIP_DURATION_S]:.6f}"]
        if self.config.clip_codec == "copy_if_aligned" and _starts_on_keyframe(path, clip[R.START_S]):
            run_ffmpeg([*span, "-map", "0:v:0", "-map", "0:a?", "-c", "copy", "-avoid_negative_ts", "make_zero", tmp])
        else:
            run_ffmpeg([*span, "-map", "0:v:0", "-map", "0:a?", "-c:v", "libx264", "-preset", "veryfast",
                        "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", tmp])
        os.replace(tmp, out)  # a crash never leaves a half-written clip under the final name
        return out


def _starts_on_keyframe(path: str, t: float) -> bool:
    import av

    with av.open(path) as c:
        vs = c.streams.video[0]
        tb = float(vs.time_base)
        start = float(vs.start_time or 0) * tb
        try:
            keys = [e.timestamp * tb - start for e in vs.index_entries if e.is_keyframe]
        except Exception:
            return False
    return any(abs(k - t) < 1e-3 for k in keys)
