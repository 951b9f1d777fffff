"""shots: PySceneDetect cut detection → clip rows (fan-out), with min/max length and stitching.

Coarse to fine (adaptive and content detectors, the default): one decode keeps the reference frames everywhere
(B-frames skipped) as tiny images and every frame where the packets hint at a cut (a keyframe off the GOP period, an
outsized I/P packet), where the detector runs; gaps between reference frames where the picture moved enough to hold
a cut the hints missed are decoded again, so the cuts are the full pass's (vdata/media/cut_pass.py, cuts.py). Where
that does not pay (intra-only, no timestamps, windows over half the video) one pass feeds the detector every frame.
Gradual transitions (dissolves, fades, wipes, slides) come from the same coarse pass, one cut at the middle of each.
`detector: transnetv2` runs TransNetV2 instead (the `transnet` extra). A small colour histogram per analysed frame
serves stitching.

Cuts: the detector runs with its own minimum scene length (PySceneDetect's `min_scene_len` default, 15 frames, or
`detector_args.min_scene_len`), which keeps bursts of cuts (flicker, counters, strobes) from splitting a shot. That
filter also hides a real short shot, whose closing cut comes too soon after its opening one; the shot after it would
then contain a cut. So the detector is fed with a minimum of 1 frame, and its own filter (PySceneDetect's
`FlashFilter`, the detector's mode and length) is applied afterwards; a cut it hid comes back when the shot it opens
lasts at least the minimum scene length (a short shot between two stable ones, not a burst).

Short shots (under `min_len_s`) are never merged into a neighbour across a real cut: each becomes its own clip,
rejected `too_short` (or kept, `short_shots: keep`). Only stitching merges, and only shots of one scene (Panda-70M
style): a short shot whose neighbours look alike is a flash inside one scene, and the three are one clip; adjacent
shots whose boundary frames are near-identical are one shot. Long shots are then split into windows of at most
`max_len_s` (a picture held longer, a slide of a screen recording, cannot be split between frames: it stays
one clip, counted `clips_over_max_len_held_picture`). Clip ids are derived from the content id and frame numbers, so they are identical across runs.

Damaged media: the pass counts frames and decode errors, and notes frames the decoder concealed damage in. Any of
those, fewer frames than the probe declared, or frames missing from a constant-rate stream (a capture that lost
packets) has a full decode locate each damaged span, which lasts until decoding recovers at a keyframe (.damage). The
video is rejected `corrupt` (damage) or `truncated` (decoding stops early without an error), with the numbers;
`on_corrupt: keep_prefix` keeps the clips before the first damage and rejects the rest with its frame range,
`keep_clean` keeps the clean clips before and after each damaged span and rejects each span with its range. Every
declared frame ends up in a kept clip or in a reject that says why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from vdata.media import MediaError
from vdata.media.prefetch import prefetch
from vdata.media.reader import open_reader, timestamp_table_problem
from vdata.media.timestamps import held_step, shown_times
from vdata.schemas import records as R

from ..base import Resources, Stage, StageConfig
from .clip_files import clip_file
from .detector_args import DETECTORS, check_detector_args, check_lengths, check_threshold
from .damage import (CORRUPT, DROPPED_FRAMES_TOLERATED, TRUNCATED, Damage, assess_damage, clean_limits,  # noqa: F401
                     damage_suspected, find_damage, kept_note, span_message)
from .held import HeldFrames
from .min_scene import apply_min_scene_len, length_in_frames, min_scene_filter, min_scene_length
from .segments import EPS_S, feature_distance, repair_segments, segments_from_cuts, split_long  # noqa: F401

# Reject reasons of this stage (CORRUPT, TRUNCATED: .damage).
TOO_SHORT = "too_short"
UNDECODABLE = "undecodable"


class StitchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    max_distance: float = Field(0.15, ge=0, le=1, description="histogram distance below which a cut is false")


class ShotsConfig(StageConfig):
    detector: Literal["adaptive", "content", "hash", "histogram", "threshold", "transnetv2"] = "adaptive"
    threshold: float | None = Field(None, description="the detector's main threshold; None = its default "
                                                      "(transnetv2: 0.5, the probability a frame ends a shot)")
    detector_args: dict[str, Any] = Field(
        default_factory=dict, description="more detector arguments, e.g. min_scene_len (default: the detector's "
                                          "own); transnetv2: weights (a local state dict; default: the package's), "
                                          "device (auto|cpu|cuda), batch (windows per forward pass)")
    min_len_s: float = Field(1.0, ge=0)
    short_shots: Literal["reject", "keep"] = Field("reject", description="a shot shorter than min_len_s: its own "
                                                                       "clip, rejected too_short or kept")
    on_corrupt: Literal["reject", "keep_prefix", "keep_clean"] = Field(
        "reject", description="damaged video: reject it whole, keep the clips before the first damage, or keep "
                              "the clips before and after each damaged span (decoding recovers at a keyframe)")
    max_len_s: float | None = Field(60.0, gt=0)
    stitch: StitchConfig = Field(default_factory=StitchConfig)
    analysis_max_side: int = Field(256, ge=32, description="frames are downscaled to this before detection")
    gradual: bool = Field(True, description="also find gradual transitions (dissolves, fades, wipes, slides) on the "
                                            "coarse pass's layouts; each is one cut at its middle")
    coarse_to_fine: bool = Field(
        True, description="decode reference frames everywhere and every frame only around candidate cuts "
                          "(adaptive and content detectors); false = feed the detector every frame")
    backend: Literal["auto", "opencv", "pyav", "decord"] = "auto"
    write_clips: bool = False
    clip_codec: Literal["copy_if_aligned", "reencode"] = "copy_if_aligned"

    @field_validator("threshold")
    @classmethod
    def _threshold_in_range(cls, value, info: ValidationInfo):
        return check_threshold(info.data.get("detector"), value)

    @field_validator("detector_args")
    @classmethod
    def _known_detector_args(cls, value, info: ValidationInfo):
        return check_detector_args(info.data.get("detector"), value)

    @field_validator("max_len_s")
    @classmethod
    def _windows_can_pass(cls, value, info: ValidationInfo):
        return check_lengths(info.data.get("min_len_s"), value, info.data.get("short_shots"))


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


@dataclass
class ShotScan:
    """One decode pass over a video: cuts (frame positions), per-frame times and features, and what
    went wrong while decoding."""

    cuts: list[int]
    times: np.ndarray
    feats: np.ndarray
    fps: float
    decode_errors: list[float]     # times of packets that failed to decode (PyAV passes only)
    backend: str
    raw_cuts: list[int]            # every cut the detector saw, before its minimum scene length
    mode: str = "full"             # "full": every frame fed to the detector; "coarse_to_fine": windows only
    gradual: list[int] = field(default_factory=list)   # gradual-transition cuts (also in cuts): never stitched
    coarse: Any = None             # the coarse pass (vdata.media.cuts.CoarseScan), when one ran
    windows: tuple[int, int] = (0, 0)   # coarse_to_fine: frames decoded whole on packet hints, windows decoded again
    concealed: list[float] = field(default_factory=list)   # times of frames the decoder concealed damage in


def _detector(cfg: ShotsConfig):
    """(detector class, its arguments) for `cfg`."""
    import scenedetect.detectors as sd

    cls_name, thr_arg = DETECTORS[cfg.detector]
    kwargs = dict(cfg.detector_args)
    if cfg.threshold is not None:
        kwargs[thr_arg] = cfg.threshold
    return getattr(sd, cls_name), kwargs


def scan_video(path: str, cfg: ShotsConfig, backend: str | None = None) -> ShotScan:
    """Hard cuts (the detector's, see `scan_hard_cuts`) and, with `cfg.gradual`, the gradual
    transitions away from them: one cut at each transition's middle."""
    if cfg.detector == "transnetv2":
        # The network has seen each transition: its boundaries are never stitched (a dissolve's
        # neighbouring frames look alike by nature), so they go in `gradual` too.
        from .transnet_scan import transnet_cuts

        cuts, times, errors, rate = transnet_cuts(path, cfg.detector_args, cfg.threshold)
        feats = np.zeros((len(times), 32 + _THUMB[0] * _THUMB[1]), np.float32)
        return ShotScan(cuts, np.asarray(times), feats, rate, errors, "pyav", cuts, mode="transnetv2", gradual=cuts)
    scan = scan_hard_cuts(path, cfg, backend)
    if cfg.gradual and len(scan.times) > 2:
        from vdata.media import cuts as C
        from vdata.media import gradual as G

        coarse = scan.coarse
        if coarse is None:
            try:
                table = C.frame_table(path)
                usable = len(table.times) == len(scan.times) and (not table.problem or "intra-only" in table.problem)
                coarse = C.coarse_scan(path, table) if usable else None
            except Exception:   # the hard-cut pass has already read this file; its findings stand
                coarse = None
        if coarse is not None and len(coarse.indices) > 2:
            n = len(scan.times)
            blacks = G.fades_through_black(coarse.indices, coarse.layouts, scan.fps)
            found = G.gradual_transitions(coarse.indices, coarse.layouts, n, scan.fps,
                                          known=[*scan.cuts, *(centre for centre, _, _ in blacks)])
            cuts, fades = list(scan.cuts), []
            for centre, first, last in blacks:
                # one transition, however many cuts (the drop to black) or changes it holds; a change
                # between two pictures that are not dark is another transition beside the fade
                cuts = [c for c in cuts if not first - 2 <= c <= last + 2]
                found = [(g, h) for g, h in found
                         if not (first - 2 <= g <= last + 2 and G.touches_black(coarse.indices, coarse.layouts, g, h))]
                fades.append(centre)
            near = round(GRADUAL_BESIDE_CUT_S * scan.fps)
            # a boundary needs a shot on each side: none within the detector's minimum scene length of
            # either end (a fade-in from black at the start, a last frame that differs)
            shortest = length_in_frames(min_scene_length(*_detector(cfg)), scan.fps)
            kept = [g for g, _ in found if not any(abs(g - c) <= near for c in [*cuts, *fades])]
            scan.gradual = sorted(g for g in {*kept, *fades} if shortest <= g <= n - shortest)
            scan.cuts = sorted({*cuts, *scan.gradual})
    return scan


# A gradual transition this close to a hard cut is that cut seen over a span: the cut stands.
GRADUAL_BESIDE_CUT_S = 0.8


def scan_hard_cuts(path: str, cfg: ShotsConfig, backend: str | None = None) -> ShotScan:
    """Run the detector over every frame, or over every frame of the windows the coarse pass marks
    (see module docstring and vdata/media/cuts.py)."""
    from scenedetect import FrameTimecode

    cls, kwargs = _detector(cfg)
    flash_filter, length = min_scene_filter(cls, kwargs)
    if cfg.coarse_to_fine and cfg.detector in COARSE_BARS and (backend or cfg.backend) in ("auto", "pyav"):
        fast, coarse = scan_coarse_to_fine(path, cfg)
        if fast is not None:
            fast.cuts = apply_min_scene_len(fast.raw_cuts, len(fast.times), fast.fps, flash_filter, length)
            return fast
    else:
        coarse = None
    detector = cls(**{**kwargs, "min_scene_len": 1})   # every cut it sees; its own filter comes after
    raw: list[int] = []
    times: list[float] = []
    feats: list[np.ndarray] = []
    shown = shown_times(path)
    step = held_step(shown[0]) if shown else None
    held = HeldFrames(step, int(length_in_frames(length, 1 / step)) + 8, shown[1]) if step else None
    with open_reader(path, backend or cfg.backend, purpose="stream", max_side=cfg.analysis_max_side) as reader:
        fps = reader.fps
        rate = held.fps if held else fps   # the detector's frame rate: the held copies' where there are any
        index, previous = -1, None
        for index, (_, t, bgr) in enumerate(prefetch(reader.iter_frames(max_side=cfg.analysis_max_side, fmt="bgr24"))):
            for number, copy in (held.frames_for(index, t) if held else [(index, False)]):
                tc = FrameTimecode(number, rate)
                raw.extend(c.frame_num for c in detector.process_frame(tc, previous if copy else bgr))
            previous = bgr
            times.append(t)
            feats.append(_features(bgr))
        for number in (held.last_frame_copies() if held and index >= 0 else []):
            raw.extend(c.frame_num for c in detector.process_frame(FrameTimecode(number, held.fps), previous))
        if index >= 0:
            last = len(held.real_of) - 1 if held else index
            raw.extend(c.frame_num for c in detector.post_process(FrameTimecode(last, rate)))
        errors, used, concealed = list(reader.decode_errors), reader.backend, list(getattr(reader, "concealed", []))
    n = len(times)
    if used != "pyav" and n and _stream_times_problem(np.asarray(times), fps):
        # OpenCV labels an AVI's frames with decode-order times (its first frame at 0.08 s); PyAV
        # knows when a container's timestamps cannot be trusted and counts frames instead.
        return scan_hard_cuts(path, cfg, backend="pyav")
    if held:   # the detector's frames were the held pictures' copies too: its filter counts them
        cuts = held.real_cuts(apply_min_scene_len(sorted(set(raw)), len(held.real_of), held.fps, flash_filter, length), n)
        raw = held.real_cuts(raw, n)
    else:
        raw = sorted({c for c in raw if 0 < c < n})
        cuts = apply_min_scene_len(raw, n, fps, flash_filter, length)
    usable = coarse is not None and len(coarse.indices) and coarse.indices[-1] < n
    return ShotScan(cuts, np.asarray(times), np.asarray(feats), fps, errors, used, raw, coarse=coarse if usable else None,
                    concealed=concealed)


# The coarse pass marks a gap between two reference frames whose tiny-image distance reaches
# COARSE_BAR_SHARE of the least score the detector could call a cut (adaptive: min_content_val;
# content: threshold); the adaptive detector wants a score that stands out, so there the gap must
# also stand COARSE_RATIO above the gaps around it, unless it reaches COARSE_SURE times that score.
# Margins: a cut in a gap moves the picture by its score less a few frames of motion, blurred a
# little at low resolution; sustained fast motion (which the ratio leaves out) moved 15-21 per gap on
# the bench videos, and each window it marked cost a second decode of its GOP's reference frames.
# tests/test_shots_fast.py checks equality.
COARSE_BAR_SHARE = 0.4
COARSE_RATIO = 1.5
COARSE_SURE = 2.0
COARSE_BARS = {"adaptive": ("min_content_val", 15.0), "content": ("threshold", 27.0)}


def scan_coarse_to_fine(path: str, cfg: ShotsConfig):
    """(the detector over the windows the coarse pass marks, the coarse pass). The scan is None where a
    full pass is needed (no frame table, intra-only, decode errors, windows over most frames)."""
    from vdata.media import cut_pass as P
    from vdata.media import cuts as C
    from vdata.media.timestamps import display_times_unreliable

    try:
        table = C.frame_table(path)
    except Exception:   # the full pass reports what is wrong with the file
        return None, None
    n = len(table.times)
    if table.problem or n < 2 or _stream_times_problem(table.times, table.fps) or held_step(table.times):
        return None, None   # held pictures (variable rate): the full pass sees them for as long as they show
    if display_times_unreliable(path, 8):   # AVI with B-frames: packet times are in decode order
        return None, None
    cls, kwargs = _detector(cfg)
    key, default = COARSE_BARS[cfg.detector]
    trigger = float(kwargs.get(key, default))
    width = int(kwargs.get("window_width", 2))
    # The adaptive detector scores frame i against the `width` frames on each side, the first frame a
    # fresh detector sees against nothing: from `width + 1` frames in, its verdicts are the full pass's.
    before, after, settle = width + 2, width + 1, width + 1
    hints = P.packet_windows(table, before, after) if table.refs is not None else []
    if sum(b - a + 1 for a, b in hints) > C.MAX_WINDOW_SHARE * n:
        hints = []   # the packets flag most frames (short GOPs, busy footage): let the pictures decide
    feats = np.zeros((n, 32 + _THUMB[0] * _THUMB[1]), np.float32)
    on_frame = lambda i, bgr: feats.__setitem__(i, _features(bgr))  # noqa: E731
    new_detector = lambda: cls(**{**kwargs, "min_scene_len": 1})  # noqa: E731
    coarse, raw, judged = P.one_pass(path, table, hints, cfg.analysis_max_side, new_detector, settle, width, on_frame)
    if coarse.decode_errors or len(coarse.indices) == 0:
        return None, None
    adaptive = cfg.detector == "adaptive"
    windows = C.windows_from_gaps(coarse, n, COARSE_BAR_SHARE * trigger, before=before, after=after,
                                  sure=COARSE_SURE * trigger if adaptive else None, ratio=COARSE_RATIO if adaptive else None,
                                  settled=judged)
    if sum(b - a + 1 for a, b in windows) > C.MAX_WINDOW_SHARE * n:
        return None, coarse
    if windows:   # a possible cut the packets did not announce: decode its window now
        try:
            raw = sorted({*raw, *C.detect_in_windows(path, table, windows, cfg.analysis_max_side, new_detector,
                                                     settle=settle, on_frame=on_frame)})
        except C.IncompleteWindows:
            return None, coarse
    return ShotScan([], table.times, feats, table.fps, [], "pyav", raw, mode="coarse_to_fine", coarse=coarse,
                    windows=(sum(b - a + 1 for a, b in hints), len(windows)),
                    concealed=[float(table.times[i]) for i in coarse.concealed]), coarse


def _stream_times_problem(times: np.ndarray, fps: float) -> str | None:
    """Why the times a stream reader gave cannot be right: the first frame is not at 0, or they do
    not increase frame by frame."""
    if abs(float(times[0])) > 0.5 / fps:
        return f"first frame at {times[0]:.3f}s"
    if len(times) > 1 and np.any(np.diff(times) <= 0):
        return "times do not increase"
    return timestamp_table_problem(times, fps)


def detect_cuts(path: str, cfg: ShotsConfig) -> tuple[list[int], np.ndarray, np.ndarray, float]:
    """(cut frame indices, frame times, features, fps) of `path`."""
    scan = scan_video(path, cfg)
    return scan.cuts, scan.times, scan.feats, scan.fps


def _time_of(scan: ShotScan, n: int, i: int) -> float:
    """When frame `i` is shown; past the `n` frames decoded soundly, estimated at the mean rate."""
    return float(scan.times[i]) if i < n else float(scan.times[n - 1]) + (i - n + 1) / scan.fps


class ShotsStage(Stage):
    name = "shots"
    version = 8   # 8: damage the decoder conceals, frames lost in a constant-rate stream; spans end where decoding recovers
                  # 2: held pictures (variable rate) count for as long as they show; shot lengths are times;
                  # 3: an edit list's pre-roll frames are not frames of the video; 6: max_len_s pieces of equal time
                  # 4: AV1, MPEG-1 program streams and interlaced video read whole (windows checked, OpenCV's gaps)
                  # 5: clip files hold exactly their shot (cut from the video's first frame, checked, odd sizes
                  # padded); a clip whose file cannot be written is rejected alone, not its whole video;
                  # the last clip ends with the video; 7: copied clip files show their first frame at 0
    needs_video = True
    Config = ShotsConfig
    reads = (R.PATH, R.VIDEO_ID, R.FPS, R.DURATION_S)
    writes = R.CLIP_COLUMNS
    default_resources = Resources(num_cpus=1, batch_size=1)
    cache_results = True

    def resources(self) -> Resources:
        """TransNetV2 asked to run on `cuda` gets a GPU unless the config says how much: a Ray worker sees
        only the GPUs its stage asks for, and would find none."""
        res = super().resources()
        cfg = self.config
        if (cfg.detector == "transnetv2" and str(cfg.detector_args.get("device", "")).startswith("cuda")
                and "num_gpus" not in cfg.resources.model_fields_set):
            res.num_gpus = 1.0
        return res

    def process_row(self, row):
        cfg = self.config
        scan = scan_video(row[R.PATH], cfg)
        declared = row.get(R.NUM_FRAMES)
        damage = None
        if damage_suspected(scan.times, scan.decode_errors, scan.concealed, declared):
            # OpenCV and decord stop at the first bad packet without saying so, and what the decoder
            # conceals raises nothing: a full PyAV decode locates each damaged span (.damage).
            damage, decoded = find_damage(row[R.PATH], scan.fps, declared, row.get(R.DURATION_S))
            stopped = scan.decode_errors or (declared and len(scan.times) < declared - DROPPED_FRAMES_TOLERATED)
            needed = (decoded - DROPPED_FRAMES_TOLERATED if cfg.on_corrupt == "keep_clean" else damage.good_frames) \
                if damage else 0
            if (damage is None and stopped) or (damage and cfg.on_corrupt != "reject" and len(scan.times) < needed):
                scan = scan_video(row[R.PATH], cfg, backend="pyav")   # the fast reader stopped early
            if damage is not None:
                damage.good_frames = min(damage.good_frames, len(scan.times))
        if len(scan.times) == 0:
            return self.reject(row, UNDECODABLE, "no frames decoded during shot detection",
                               decode_errors=len(scan.decode_errors))
        bad = clean_limits(damage, scan.times, cfg.on_corrupt)
        if damage and (cfg.on_corrupt == "reject" or bad[0] == (0, max(damage.total_frames, len(scan.times)))):
            return self.reject(row, damage.reason, damage.message, **damage.detail)
        n = damage.good_frames if damage and cfg.on_corrupt == "keep_prefix" else len(scan.times)
        edges = {e for span in bad for e in span if 0 < e < n}
        segs = segments_from_cuts(sorted({*(c for c in scan.cuts if c < n), *edges}), n)
        # lengths in time: a variable-rate video (a screen recording) shows one frame for seconds
        seconds = lambda a, b: _time_of(scan, n, b) - _time_of(scan, n, a)  # noqa: E731
        short = lambda a, b: seconds(a, b) < cfg.min_len_s - EPS_S  # noqa: E731
        segs = repair_segments(segs, scan.feats, scan.fps, cfg, keep={*scan.gradual, *edges}, seconds=seconds)
        segs = [s for s in segs if not any(a <= s[0] < b for a, b in bad)]   # the damaged spans' own segments
        segs = [piece for s in segs
                for piece in ([s] if short(*s) else split_long([s], scan.fps, cfg.max_len_s, seconds=seconds))]
        out: list = []
        for k, (a, b) in enumerate(segs):
            clip = self._clip(row, k, a, b, scan, n, len(segs))
            clip[R.MEDIA_DAMAGE] = kept_note(damage, bad, n)
            for (first, _), (start_s, _) in zip(bad, damage.spans if damage else []):
                if b == first:   # ends where the damage starts (a gap's first missing frame)
                    clip[R.END_S] = round(max(clip[R.START_S], min(clip[R.END_S], float(scan.times[0]) + start_s)), 6)
                    clip[R.CLIP_DURATION_S] = round(clip[R.END_S] - clip[R.START_S], 6)
            if short(a, b) and cfg.short_shots == "reject":
                out.append(self.reject(clip, TOO_SHORT, f"shot of {b - a} frames ({clip[R.CLIP_DURATION_S]:.2f}s) "
                                       f"< min_len_s={cfg.min_len_s}", frames=[a, b], min_len_s=cfg.min_len_s))
                continue
            if cfg.max_len_s and clip[R.CLIP_DURATION_S] > cfg.max_len_s + EPS_S:
                # a picture held longer than max_len_s (a slide of a screen recording): clips are cut between
                # frames, and one frame cannot be split; kept whole, counted (outside check h21)
                self.counters["clips_over_max_len_held_picture"] += 1
            if cfg.write_clips:
                try:
                    clip[R.CLIP_PATH] = clip_file(self.ctx.output_dir, row[R.PATH], clip, cfg.clip_codec)
                except MediaError as e:   # this clip's file alone: the video's other clips stand
                    out.append(self.reject(clip, e.reason, e.message))
                    continue
            out.append(clip)
        for (a, b), (start_s, end_s) in zip(bad, damage.spans if damage else []):
            # each damaged span: its own reject row, so no frame of the video goes unaccounted for
            lost = self._clip(row, len(segs), a, b, scan, n, len(segs))
            t0 = float(scan.times[0])
            prefix = cfg.on_corrupt == "keep_prefix"
            lost[R.START_S] = round(t0 + start_s, 6)
            lost[R.END_S] = round(t0 + (damage.detail["declared_s"] if end_s is None or prefix else end_s), 6)
            lost[R.CLIP_DURATION_S] = round(lost[R.END_S] - lost[R.START_S], 6)
            lost[R.MEDIA_DAMAGE] = message = span_message(damage, a, b, start_s, end_s, prefix)
            out.append(self.reject(lost, damage.reason, message, **{**damage.detail, "lost_frames": [a, b]}))
        return out

    def _clip(self, row: dict, k: int, a: int, b: int, scan: ShotScan, n: int, count: int) -> dict:
        """The clip row of frames [a, b); `n` frames decoded soundly (times past them are estimated)."""
        start_s, end_s = _time_of(scan, n, a), _time_of(scan, n, b)
        duration = row.get(R.DURATION_S)
        if b == len(scan.times) and duration:   # the video's last clip ends with the video, never past it (a
            # slideshow's mean interval put the end seconds after its last still stopped showing)
            end_s = max(min(end_s, float(scan.times[0]) + float(duration)), float(scan.times[b - 1]))
        return {
            **row,
            R.CLIP_ID: f"{row[R.VIDEO_ID]}_{a:07d}_{b:07d}",
            R.CLIP_INDEX: k,
            R.START_S: round(start_s, 6),
            R.END_S: round(end_s, 6),
            R.START_FRAME: a,
            R.END_FRAME: b,
            R.CLIP_DURATION_S: round(end_s - start_s, 6),
            R.CLIP_PATH: None,
            R.SHOTS_IN_VIDEO: count,
        }
