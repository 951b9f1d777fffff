"""TransNetV2 (`detector: transnetv2`, the `transnet` extra) against the decode limit and PySceneDetect.

    python bench/bench_transnet.py [--video PATH --cuts 46,107,...] [--repeat N]
                                   [--devices cpu,cuda] [--batches 1,8,32,128]

On one video (default: bench_shots.py's 720p x264 video, 8 hard cuts between real clips; `--repeat N`
plays it N times over, remuxed, not re-encoded, with a hard cut at each join, long enough for a GPU's
time to be measured), per device:
- "decode, every frame": a threaded PyAV decode converting nothing, the limit of any detector that
  reads every frame; "decode at 48x27": the same frames scaled to the network's input (`decode_small`);
- "network alone, batch B": the network over frames already decoded, B windows of 100 frames a pass;
- "vdata shots, transnetv2": the shots stage's scan with that device (decode and network streamed, on
  a GPU in two threads), with its hard-cut F1 and whether its cuts equal the CPU's;
- PySceneDetect `detect(AdaptiveDetector())` and vdata's default shots scan on the same video.
x PySD = PySceneDetect's time / this row's time; x decode = the full decode's time / this row's time.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import table  # noqa: E402

from vdata.media import transnet  # noqa: E402
from vdata.media.transitions import Transition, f1_score, match_transitions  # noqa: E402
from vdata.stages.shots import ShotsConfig, scan_video  # noqa: E402


def default_video() -> tuple[str, list[int]]:
    import bench_shots
    from _common import cached_video

    from vdata.media.transitions import Join, render_transitions

    def make(p):
        render_transitions(p, bench_shots.hard_cut_shots(), [Join("cut")] * 8, size=(1280, 720), fps=bench_shots.FPS)
    path = cached_video("shots_speed_720p_x264_default.mp4", make)
    return path, [t.first for t in bench_shots._truth_of_hard_cuts()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--video")
    ap.add_argument("--cuts", help="frame numbers of the video's hard cuts (with --video)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--devices", default="cpu,cuda")
    ap.add_argument("--batches", default="1,8,32,128")
    args = ap.parse_args()
    import torch

    if args.video:
        path, cuts = args.video, [int(c) for c in args.cuts.split(",")] if args.cuts else []
    else:
        path, cuts = default_video()
    if args.repeat > 1:
        path, cuts = repeated(path, cuts, args.repeat)
    truth = [Transition("cut", c, c) for c in cuts]
    devices = [d for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"video {os.path.basename(path)}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; GPU {gpu}; "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")

    def f1(found):
        return f"{f1_score(*match_transitions(found, truth)):.3f}" if truth else "-"

    from bench_shots import decode_only, measured, pyscenedetect

    t_dec, c_dec, n = measured(lambda: decode_only(path))
    t_small, c_small, (frames, _, _) = measured(lambda: transnet.decode_small(path))
    t_sd, c_sd, sd_cuts = measured(lambda: pyscenedetect(path))
    t_vd, c_vd, vd = measured(lambda: scan_video(path, ShotsConfig()))

    def row(name, wall, cpu, found=None):
        return [name, f"{n / wall:.0f}", f"{cpu:.2f}", f"{t_sd / wall:.2f}", f"{t_dec / wall:.2f}",
                f1(found) if found is not None else "", ""]
    rows = [row("decode, every frame (threaded PyAV)", t_dec, c_dec),
            row("decode at 48x27 (decode_small)", t_small, c_small),
            row("PySceneDetect detect(AdaptiveDetector())", t_sd, c_sd, sd_cuts),
            row("vdata shots defaults", t_vd, c_vd, vd.cuts)]
    reference = None
    for device in devices:
        model = transnet.load_model(None, device)
        transnet.predict(model, frames[:200], 2)   # warm-up: kernels, allocator
        for b in [int(x) for x in args.batches.split(",")]:
            wall, cpu, _ = measured(lambda b=b: (transnet.predict(model, frames, b), _sync(device)))
            rows.append(row(f"{device}: network alone, batch {b}", wall, cpu))
        for b in (8, max(int(x) for x in args.batches.split(","))):
            cfg = ShotsConfig(detector="transnetv2", detector_args={"device": device, "batch": b})
            wall, cpu, scan = measured(lambda cfg=cfg: scan_video(path, cfg))
            reference = scan.cuts if reference is None else reference
            rows.append(row(f"{device}: vdata shots, transnetv2, batch {b}", wall, cpu, scan.cuts))
            rows[-1][-1] = "yes" if scan.cuts == reference else f"no: {scan.cuts}"
    table(f"{n} frames; fps = frames/s wall; cpu = CPU seconds of this process",
          ["path", "fps", "cpu s", "x PySD", "x decode", "F1 hard cuts", "cuts = first transnetv2 row"], rows)


def repeated(path: str, cuts: list[int], times: int) -> tuple[str, list[int]]:
    """`path` played `times` times over, by copying its packets with shifted timestamps, and its cuts."""
    import tempfile

    import av

    out_path = os.path.join(tempfile.mkdtemp(), f"x{times}_{os.path.basename(path)}")
    with av.open(path) as src, av.open(out_path, "w") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        frames = sum(1 for _ in src.demux(stream) if _.size)
        step = None
        for k in range(times):
            src.seek(0)
            packets = [p for p in src.demux(stream) if p.size]
            step = step or (max(p.pts for p in packets) - min(p.pts for p in packets)) * frames // (frames - 1)
            for p in packets:
                p.pts, p.dts = p.pts + k * step, p.dts + k * step
                p.stream = out
                dst.mux(p)
    return out_path, [c + k * frames for k in range(times) for c in cuts] + [k * frames for k in range(1, times)]


def _sync(device):
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
