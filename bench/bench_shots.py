"""Shot detection throughput (frames/s) vs the decode-only limit and vs PySceneDetect's default detect().

    python bench/bench_shots.py
Prints F1 against the known cuts for both (also on 0.5-s shots, which PySceneDetect's default minimum
scene length hides and vdata restores), and the ratios the foundation issue tracks
(goal: ≥ 5× PySceneDetect default at equal F1, ≥ 0.7× decode limit).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cached_video, table, timed  # noqa: E402

from vdata.media.synth import CUT_SOURCES, Segment, render_segments  # noqa: E402
from vdata.stages.shots import ShotsConfig, detect_cuts  # noqa: E402

FPS = 25


def make_video(path):
    segs = [Segment(CUT_SOURCES[i % len(CUT_SOURCES)], 5.0) for i in range(12)]  # 60 s, 11 cuts
    render_segments(path, segs, size=(640, 360), fps=FPS)


def truth():
    return [round(5.0 * FPS * k) for k in range(1, 12)]


def f1(found, true, tol=2):
    matched, used = 0, set()
    for t in true:
        hit = next((f for f in found if abs(f - t) <= tol and f not in used), None)
        if hit is not None:
            used.add(hit)
            matched += 1
    p = matched / len(found) if found else 0.0
    r = matched / len(true)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def make_short_shot_video(path):
    """Long shots with a 0.5-s shot between each pair: PySceneDetect's default 15-frame minimum hides
    the cut that ends each short shot."""
    segs = []
    for i in range(6):
        segs += [Segment(CUT_SOURCES[i % len(CUT_SOURCES)], 3.0), Segment(CUT_SOURCES[(i + 3) % len(CUT_SOURCES)], 0.5)]
    return render_segments(path, segs[:-1], size=(640, 360), fps=FPS)


def decode_only(path):
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


def decode_scaled(path, max_side=256):
    from vdata.media.reader import open_reader

    with open_reader(path, "pyav", purpose="stream") as r:
        return sum(1 for _ in r.iter_frames(max_side=max_side))


def pyscenedetect_default(path):
    from scenedetect import AdaptiveDetector, detect

    scenes = detect(path, AdaptiveDetector(), start_in_scene=True)
    return [s[0].frame_num for s in scenes[1:]]


def vdata_detect(path, detector="adaptive"):
    cuts, times, _, _ = detect_cuts(path, ShotsConfig(detector=detector))
    return cuts, len(times)


def main():
    path = cached_video("shots_60s_640x360.mp4", make_video)
    true = truth()
    t_dec, n = timed(lambda: decode_only(path), repeat=2)
    t_scaled, _ = timed(lambda: decode_scaled(path), repeat=2)
    t_sd, sd_cuts = timed(lambda: pyscenedetect_default(path))
    t_vd, (vd_cuts, _) = timed(lambda: vdata_detect(path), repeat=2)
    t_vc, (vc_cuts, _) = timed(lambda: vdata_detect(path, "content"), repeat=2)
    rows = [
        ["decode only (PyAV, threaded, native size)", f"{n / t_dec:.0f}", "-", "1.00 (limit)"],
        ["decode + scale to 256 px", f"{n / t_scaled:.0f}", "-", f"{t_dec / t_scaled:.2f}"],
        ["PySceneDetect detect(AdaptiveDetector())", f"{n / t_sd:.0f}", f"{f1(sd_cuts, true):.3f}", f"{t_dec / t_sd:.2f}"],
        ["vdata shots (adaptive)", f"{n / t_vd:.0f}", f"{f1(vd_cuts, true):.3f}", f"{t_dec / t_vd:.2f}"],
        ["vdata shots (content)", f"{n / t_vc:.0f}", f"{f1(vc_cuts, true):.3f}", f"{t_dec / t_vc:.2f}"],
    ]
    table(f"shot detection on {n} frames of 640x360 H.264 (11 known cuts)", ["method", "frames/s", "F1", "x decode limit"], rows)
    short_path = cached_video("shots_short_640x360.mp4", make_short_shot_video)
    short_true = []
    for i in range(11):   # the segments alternate 3 s and 0.5 s; ffmpeg gives 12.5 frames as 13
        short_true.append((short_true[-1] if short_true else 0) + math.ceil((3.0 if i % 2 == 0 else 0.5) * FPS))
    short_true = short_true[:-1]
    rows = [["PySceneDetect detect(AdaptiveDetector())", f"{f1(pyscenedetect_default(short_path), short_true):.3f}"],
            ["vdata shots (adaptive)", f"{f1(vdata_detect(short_path)[0], short_true):.3f}"]]
    table(f"F1 on 0.5-s shots between 3-s shots ({len(short_true)} known cuts)", ["method", "F1"], rows)
    print(f"\nvdata adaptive vs PySceneDetect default: {t_sd / t_vd:.2f}x faster (goal >= 5x at equal F1)")
    print(f"vdata adaptive vs decode limit: {t_dec / t_vd:.2f}x (goal >= 0.7x)")


if __name__ == "__main__":
    main()
