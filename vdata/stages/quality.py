"""quality: per-clip scores as columns, then thresholds from config (every drop with its reason).

Scores are computed from a few frames sampled across the clip (plus the two frames about 1/30 and
2/30 s after each, for motion). They are stored whether or not the clip is kept, so a finished run can
be re-thresholded from its Parquet without decoding again (`apply_thresholds`, `vdata rethreshold`).
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vdata.media.hashing import hamming, phash
from vdata.media.reader import open_reader
from vdata.schemas import records as R

from .base import Resources, Stage, StageConfig


class Thresholds(BaseModel):
    """None disables a check. Each bound lies in its score's range (a sign slip such as `text_area_max: -1`,
    "-1 = off" in many tools, would otherwise reject every clip with a valid config: outside check h21)."""

    model_config = ConfigDict(extra="forbid")
    min_duration_s: float | None = Field(None, ge=0)
    max_duration_s: float | None = Field(None, gt=0)
    min_side: int | None = Field(128, ge=1)
    aspect_min: float | None = Field(0.33, gt=0)
    aspect_max: float | None = Field(3.0, gt=0)
    brightness_min: float | None = Field(20.0, ge=0, le=255)     # mean luma, 0..255
    brightness_max: float | None = Field(235.0, ge=0, le=255)
    border_max: float | None = Field(0.3, ge=0, le=1)            # shares of the frame or of frame pairs: 0..1
    sharpness_min: float | None = Field(30.0, ge=0)
    motion_min: float | None = Field(0.05, ge=0)
    motion_max: float | None = Field(12.0, ge=0)
    dup_ratio_max: float | None = Field(None, ge=0, le=1)
    text_area_max: float | None = Field(0.08, ge=0, le=1)
    suitability_min: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _ranges_not_empty(self):
        for low, high in (("min_duration_s", "max_duration_s"), ("aspect_min", "aspect_max"),
                          ("brightness_min", "brightness_max"), ("motion_min", "motion_max")):
            a, b = getattr(self, low), getattr(self, high)
            if a is not None and b is not None and a > b:   # every clip would be rejected
                raise ValueError(f"{low} {a:g} is above {high} {b:g}: no clip could pass")
        return self


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    frames: int = Field(2, ge=1, le=16)
    # None: the analysis frame as read. Upscaling it adds no detail and cost 2.7x the detector time
    # (22 against 8 ms a frame, bench_quality's 720p clips); at 640 a striped sun blind read as text.
    max_side: int | None = Field(None, ge=64, description="long side of the image the text detector sees "
                                 "(None: the analysis frame, analysis_max_side)")


class SuitabilityWeights(BaseModel):
    """Koala-36M-style combined score: a weighted mean of per-score 'goodness' in 0..1."""

    model_config = ConfigDict(extra="forbid")
    brightness: float = 1.0
    sharpness: float = 1.0
    motion: float = 1.0
    text: float = 1.0
    border: float = 0.5
    resolution: float = 0.5


class QualityConfig(StageConfig):
    num_frames: int = Field(6, ge=2, le=64, description="anchor frames sampled across the clip")
    analysis_max_side: int = Field(360, ge=64)
    backend: str = Field("auto", pattern="^(auto|decord|pyav)$")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    text: TextConfig = Field(default_factory=TextConfig)
    weights: SuitabilityWeights = Field(default_factory=SuitabilityWeights)
    dup_hash_distance: int = Field(4, ge=0, le=64)


# (score column, threshold key, reason when violated, comparison) in the order reasons are reported.
CHECKS = [
    (R.CLIP_DURATION_S, "min_duration_s", "too_short", "<"),
    (R.CLIP_DURATION_S, "max_duration_s", "too_long", ">"),
    (R.Q_MIN_SIDE, "min_side", "low_resolution", "<"),
    (R.Q_ASPECT, "aspect_min", "bad_aspect", "<"),
    (R.Q_ASPECT, "aspect_max", "bad_aspect", ">"),
    (R.Q_BRIGHTNESS, "brightness_min", "too_dark", "<"),
    (R.Q_BRIGHTNESS, "brightness_max", "too_bright", ">"),
    (R.Q_BORDER, "border_max", "borders", ">"),
    (R.Q_SHARPNESS, "sharpness_min", "blurry", "<"),
    (R.Q_MOTION, "motion_min", "static", "<"),
    (R.Q_MOTION, "motion_max", "shaky", ">"),
    (R.Q_DUP_RATIO, "dup_ratio_max", "duplicate_frames", ">"),
    (R.Q_TEXT_AREA, "text_area_max", "text_heavy", ">"),
    (R.Q_SUITABILITY, "suitability_min", "low_suitability", "<"),
]


def apply_thresholds(scores: dict, thresholds: Thresholds) -> list[tuple[str, str]]:
    """Every violated check as (reason, message), in CHECKS order. Empty list: keep."""
    failed = []
    limits = thresholds.model_dump()
    for col, key, reason, op in CHECKS:
        limit, value = limits[key], scores.get(col)
        if limit is None or value is None:
            continue
        if (op == "<" and value < limit) or (op == ">" and value > limit):
            failed.append((reason, f"{col}={value:.4g} {op} {key}={limit:g}"))
    return failed


def _border_fraction(grays: list[np.ndarray], dark: float = 18.0, flat: float = 8.0) -> float:
    """Share of the frame covered by bars that are dark and flat in every sampled frame."""
    stack = np.stack(grays).astype(np.float32)          # n, h, w
    h, w = stack.shape[1:]
    row_ok = ((stack.mean(axis=2) < dark) & (stack.std(axis=2) < flat)).all(axis=0)
    col_ok = ((stack.mean(axis=1) < dark) & (stack.std(axis=1) < flat)).all(axis=0)
    if row_ok.all() or col_ok.all():
        return 0.0  # a black frame is not a letterbox; brightness catches it

    def run(flags):
        n = 0
        for f in flags:
            if not f:
                break
            n += 1
        return n

    top, bottom = run(row_ok), run(row_ok[::-1])
    left, right = run(col_ok), run(col_ok[::-1])
    inner = max(0, h - top - bottom) * max(0, w - left - right)
    return float(1.0 - inner / (h * w))


def suitability(scores: dict, w: SuitabilityWeights) -> float:
    b = scores[R.Q_BRIGHTNESS]
    good = {
        "brightness": max(0.0, 1.0 - abs(b - 128.0) / 128.0),
        "sharpness": min(1.0, math.log10(1.0 + scores[R.Q_SHARPNESS]) / 3.0),
        # motion: 0 when static, best around 0.5–4 px/frame, fading when shaky
        "motion": min(1.0, scores[R.Q_MOTION] / 0.5) * (1.0 if scores[R.Q_MOTION] <= 4 else max(0.0, 1 - (scores[R.Q_MOTION] - 4) / 16)),
        "text": max(0.0, 1.0 - (scores[R.Q_TEXT_AREA] or 0.0) / 0.3),
        "border": 1.0 - scores[R.Q_BORDER],
        "resolution": min(1.0, scores[R.Q_MIN_SIDE] / 720.0),
    }
    weights = w.model_dump()
    total = sum(weights.values()) or 1.0
    return float(sum(good[k] * weights[k] for k in good) / total)


_FLOW = (0.5, 2, 9, 2, 5, 1.1, 0)   # Farneback: pyramid scale, levels, window, iterations, poly_n, poly_sigma, flags
MOTION_RATE = 30.0    # q_motion is flow pixels per frame, and per 1/MOTION_RATE s at higher frame rates
HOLD_S = 1 / 6        # how far to look for a picture that differs: a drawing held on fours at 24 fps
SAME_PICTURE = 0.05   # mean gray difference below which a frame repeats the picture (no flow to compute)
LOOK_FURTHER = 0.05   # the default motion_min: a pair below it reads static; it may show one picture held


def _motion(a: np.ndarray, b: np.ndarray) -> float:
    """Mean optical-flow magnitude between two gray frames, at 160 px wide, over the pixels whose flow
    the flow back confirms (Sundaram, Brox and Keutzer 2010: |w + w'|^2 < 0.01 (|w|^2 + |w'|^2) + 0.5,
    w' the backward flow where w lands).

    Farneback alone returned flow where nothing moved: two identical frames of colour bars (10-bit HEVC)
    gave 1.42 px, of a GIF 0.82 px (a few pixels at 15-400 px), so still pictures passed `motion_min`. Those
    vectors have no way back and drop out; where no pixel is confirmed, the plain mean stands."""
    import cv2

    small_a = cv2.resize(a, (160, max(2, round(160 * a.shape[0] / a.shape[1]))), interpolation=cv2.INTER_AREA)
    small_b = cv2.resize(b, small_a.shape[::-1], interpolation=cv2.INTER_AREA)
    forward = cv2.calcOpticalFlowFarneback(small_a, small_b, None, *_FLOW)
    backward = cv2.calcOpticalFlowFarneback(small_b, small_a, None, *_FLOW)
    h, w = small_a.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    back = cv2.remap(backward, xs + forward[..., 0], ys + forward[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)   # a vector that leaves the frame: no way back
    out2, back2 = (forward ** 2).sum(axis=2), (back ** 2).sum(axis=2)
    confirmed = ((forward + back) ** 2).sum(axis=2) < 0.01 * (out2 + back2) + 0.5
    magnitude = np.sqrt(out2)
    return float(magnitude[confirmed].mean() if confirmed.any() else magnitude.mean())


class QualityStage(Stage):
    name = "quality"
    version = 6   # 2: the frame shown at a time, not the next one after a held picture; no motion across the clip's end;
                  # 3: motion over flow confirmed by the flow back; 4: motion per 1/30 s above 30 fps, and
                  # over two frames where a picture is held; 5: HDR video tone mapped; 6: no motion across the
                  # clip's end in the first frame pair either (a clip of one or two frames at a low frame rate)
    needs_video = True
    Config = QualityConfig
    reads = (R.PATH, R.START_S, R.END_S, R.FPS, R.WIDTH, R.HEIGHT, R.CLIP_DURATION_S)
    writes = R.QUALITY_COLUMNS
    default_resources = Resources(num_cpus=1, batch_size=2)
    is_filter = True
    cache_results = True

    def setup(self):
        from concurrent.futures import ThreadPoolExecutor

        # Text detection and optical flow start on a frame as soon as it is read, while the decoder
        # goes on to the next (both release the GIL). With the detector on one thread (below) this
        # took the stage from 0.77x to 0.94x the decode limit on bench_quality's short GOPs.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="quality")
        self._ocr = None
        if self.config.text.enabled:
            from rapidocr_onnxruntime import RapidOCR

            # RapidOCR's default ("min" side 736) upscales a 360 px analysis frame to 1308x736, ten
            # times the pixels of the text.max_side image meant here: "max" keeps the size it is given.
            # One intra-op thread: onnxruntime's pool spin-waits between the detector's layers and took
            # the CPU the decoder needs (1240 against 897 ms CPU for the same scores, bench_quality).
            self._ocr = RapidOCR(det_limit_type="max", intra_op_num_threads=1)

    def scores(self, row) -> dict:
        import cv2

        cfg = self.config
        start, end, fps = row[R.START_S], row[R.END_S], row[R.FPS] or 25.0
        n = cfg.num_frames
        anchors = [start + (k + 0.5) * (end - start) / n for k in range(n)]
        step = 1.0 / fps
        # Motion is measured over a frame, and over about 1/30 s above 30 fps (at 120 fps four frames: slow
        # motion filmed fast is not read as four times slower than at 30 fps), and also over twice that where the first
        # frame pair reads static: a picture held for two or three frames (animation on twos or threes,
        # 30 fps content in a 60 fps file) is a pair of one picture, which says nothing of motion. The
        # third frame is the next one the decoder makes anyway; reading it in a second pass, only where the
        # pair read static, made the stage a third slower on bench_quality's real clips.
        span = max(1, round(fps / MOTION_RATE)) * step
        times = []
        for t in anchors:  # each anchor and the frames one and two spans after it (clamped inside the clip)
            t0 = min(t, max(start, end - 2 * span - step))
            times += [t0, t0 + span, t0 + 2 * span]
        text_frames = {3 * k for k in self._text_picks(n)} if self._ocr else set()
        grays: dict[int, np.ndarray] = {}
        text_jobs, flow_jobs = [], {}

        def arrived(k: int, frame: np.ndarray) -> None:
            grays[k] = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            if k in text_frames:
                text_jobs.append(self._pool.submit(self._text_area_of, frame))
            first = k - k % 3
            if k % 3 == 1 and first in grays:   # the anchor and the frame a span on are here
                flow_jobs[first] = self._pool.submit(_motion, grays[first], grays[k])

        with open_reader(row[R.PATH], cfg.backend, purpose="sparse", max_side=cfg.analysis_max_side) as reader:
            got = [t for t, _ in reader.read_at(times, max_side=cfg.analysis_max_side, on_frame=arrived)]
            unit = max(step, 1.0 / MOTION_RATE)   # the time motion is given per
            # a frame at the clip's end is the next shot's (a slideshow at 0.5 fps: the next slide), as in _motion_to
            motion = {k: flow_jobs[k].result() * unit / (got[k + 1] - got[k]) if got[k] < got[k + 1] < end - 1e-6
                      else 0.0 for k in range(0, len(times), 3)}
            for k in motion:
                if motion[k] < LOOK_FURTHER:
                    motion[k] = max(motion[k], self._motion_to(grays[k], got[k], grays[k + 2], got[k + 2], end, unit))
            # Where the three frames show one picture, motion is measured to the next frame that differs, up
            # to HOLD_S on: frames further apart than the average rate says (variable frame rate: a phone in
            # dim light) put all three times on one frame, and animation on fours holds a drawing 4 frames.
            again = [k for k in motion if got[k + 2] <= got[k] or cv2.absdiff(grays[k], grays[k + 2]).mean() < SAME_PICTURE]
            ahead = [(j - 0.5) * span + 1e-4 for j in range(1, max(1, math.ceil(HOLD_S / span)) + 2)]
            later = reader.read_at([got[k] + d for k in again for d in ahead], max_side=cfg.analysis_max_side) \
                if again else []
            for i, k in enumerate(again):
                for t, frame in later[i * len(ahead):(i + 1) * len(ahead)]:
                    moved = self._motion_to(grays[k], got[k], cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), t, end, unit)
                    if moved or t >= end - 1e-6:
                        motion[k] = max(motion[k], moved)
                        break
        anchors_g = [grays[k] for k in range(0, len(times), 3)]
        text_areas = [job.result() for job in text_jobs]
        hashes = [phash(g) for g in anchors_g]
        dups = [hamming(a, b) <= cfg.dup_hash_distance for a, b in zip(hashes, hashes[1:])]
        w, h = row[R.WIDTH], row[R.HEIGHT]
        scores = {
            R.Q_BRIGHTNESS: float(np.mean([g.mean() for g in anchors_g])),
            R.Q_SHARPNESS: float(np.median([cv2.Laplacian(g, cv2.CV_64F).var() for g in anchors_g])),
            R.Q_MOTION: float(np.median(list(motion.values()))),
            R.Q_DUP_RATIO: float(np.mean(dups)) if dups else 0.0,
            R.Q_BORDER: _border_fraction(anchors_g),
            R.Q_MIN_SIDE: int(min(w, h)),
            R.Q_ASPECT: float(w / h) if h else 0.0,
            R.Q_TEXT_AREA: float(np.mean(text_areas)) if self._ocr else None,
        }
        scores[R.Q_SUITABILITY] = suitability(scores, cfg.weights)
        return scores

    @staticmethod
    def _motion_to(a: np.ndarray, ta: float, b: np.ndarray, tb: float, end: float, unit: float) -> float:
        """Motion per `unit` s from frame `a` (time ta) to frame `b` (time tb): none where b is the same
        picture or the same frame, or lies at the clip's end (the frame after a clip is another shot's)."""
        import cv2

        if not ta < tb < end - 1e-6 or cv2.absdiff(a, b).mean() < SAME_PICTURE:
            return 0.0
        return _motion(a, b) * unit / (tb - ta)

    def _text_picks(self, n: int) -> list[int]:
        k = min(self.config.text.frames, n)
        return sorted({round((i + 0.5) * n / k - 0.5) for i in range(k)})

    def _text_area_of(self, f: np.ndarray) -> float:
        """Share of the frame inside the text detector's boxes."""
        import cv2

        # the detector sees text.max_side on the long side: smaller text than that is not measured
        side = self.config.text.max_side or max(f.shape[:2])
        scale = side / max(f.shape[:2])
        img = f if side == max(f.shape[:2]) else cv2.resize(
            f, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
        result, _ = self._ocr(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), use_det=True, use_cls=False, use_rec=False)
        mask = np.zeros(img.shape[:2], np.uint8)
        for box in result or []:
            pts = np.asarray(box[0] if isinstance(box, (list, tuple)) and len(box) and np.ndim(box[0]) == 2 else box, np.float32)
            cv2.fillPoly(mask, [pts.reshape(-1, 2).astype(np.int32)], 1)
        return float(mask.mean())

    def process_row(self, row):
        scores = self.scores(row)
        out = {**row, **scores}
        failed = apply_thresholds(out, self.config.thresholds)
        if failed:
            reason = failed[0][0]
            message = "; ".join(m for _, m in failed)
            return self.reject(out, reason, message, failed=[r for r, _ in failed],
                               scores={k: scores[k] for k in R.QUALITY_COLUMNS})
        return out
