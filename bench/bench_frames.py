"""Frame sampling against the decode limit of the frames it reads (issue 16, goal 5: >= 0.8x).

    python bench/bench_frames.py [--quick]

Clips as the shots stage cuts them (5 s each) from bench_shots.py's 720p video (real clips, x264's
default GOPs) and from a long-GOP 720p video (GOP 10 s). Per corpus, in one run:
- "decode limit": PyAV (threaded) seeks to the keyframe before each requested time and decodes up to
  it, converting nothing: the least any reader pays for those frames (`decode_limit`, shared with
  bench_quality.py); below it the same decode with the non-reference pictures shown before each
  target skipped (what the PyAV reader decodes): the least a reader can decode;
- the frames stage (uniform-8 at 448 px, JPEG encoding included) with each reader backend, and with
  its default ("auto").
The ratio is decode-limit time / stage time: 1.0 = the stage costs no more than decoding its frames.
CPU seconds are printed too: on a machine shared with other work, the CPU ratio is the steadier one.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cached_video, table  # noqa: E402

from vdata.media.probe import probe_video  # noqa: E402
from vdata.media.synth import Segment, render_segments  # noqa: E402
from vdata.schemas import records as R  # noqa: E402

CLIP_S = 5.0


def real_cuts(path):
    """bench_shots.py's corpus video: real clips joined by hard cuts, 720p, x264 defaults."""
    from bench_shots import FPS, hard_cut_shots
    from vdata.media.transitions import Join, render_transitions

    render_transitions(path, hard_cut_shots(), [Join("cut")] * 8, size=(1280, 720), fps=FPS)


def long_gop(path):
    render_segments(path, [Segment("mandelbrot", 60.0)], size=(1280, 720), gop=250, crf=28)


def as_pq(sdr: str, path: str) -> None:
    """`sdr` taken to HDR as a grading tool would (zimg: SDR white at 203 nits, PQ, BT.2020, HEVC 10-bit):
    its frames are tone mapped back (vdata/hdr.py), the cost this corpus shows."""
    from vdata.media.ffmpeg import run_ffmpeg

    run_ffmpeg(["-y", "-i", sdr, "-vf", "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv,"
                "zscale=t=linear:npl=203,format=gbrpf32le,zscale=p=bt2020:t=smpte2084:m=bt2020nc:r=tv:npl=203,"
                "format=yuv420p10le", "-c:v", "libx265", "-x265-params", "log-level=error", "-crf", "20",
                "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc", path])


def corpora(quick: bool = False):
    real = cached_video("shots_speed_720p_x264_default.mp4", real_cuts)
    out = [("720p real clips, x264 default GOPs, 21 s", real),
           ("the same as HDR (PQ, HEVC 10-bit), tone mapped", cached_video("real_720p_pq_hevc10.mp4",
                                                                          lambda p: as_pq(real, p)))]
    if not quick:
        out.append(("720p long GOP (10 s), 60 s", cached_video("long_long_gop.mp4", long_gop)))
    return out


def clip_rows(path: str) -> list[dict]:
    """The video cut into CLIP_S clips, as rows the frames and quality stages read."""
    info = probe_video(path)
    d = info["duration_s"]
    rows, a = [], 0.0
    while a < d - 0.5:
        b = min(d, a + CLIP_S)
        rows.append({R.PATH: path, R.VIDEO_ID: "v", R.START_S: a, R.END_S: b, R.CLIP_DURATION_S: b - a,
                     R.FPS: info["fps"], R.DURATION_S: d, R.WIDTH: info["width"], R.HEIGHT: info["height"]})
        a = b
    return rows


def decode_limit(path: str, times: list[float], skip_nonref: bool = False) -> int:
    """Decode, without converting, the frames nearest `times` as one clip's read does: open the file,
    seek to the keyframe before a target unless decoding on from where we are reaches it first.
    `skip_nonref`: the decoder skips non-reference pictures shown before each target (as the PyAV
    reader does), the least a reader can decode."""
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        tb = float(s.time_base)
        start = float(s.start_time or 0) * tb
        keys = sorted(e.timestamp * tb - start for e in s.index_entries if e.is_keyframe)
        half = 0.5 / float(s.average_rate or 25)
        frames, position, decoded, target = None, None, 0, 0.0

        def decode():
            for packet in c.demux(s):
                if skip_nonref:
                    skip = packet.pts is not None and packet.pts * tb - start < target - 2 * half
                    s.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
                yield from packet.decode()

        for t in sorted(times):
            target = t
            key = max([k for k in keys if k <= t + 1e-6], default=0.0)
            if frames is None or position is None or t < position or key > position:
                # the index holds decode times: seek to the target itself, ffmpeg lands on the keyframe before it
                c.seek(int(t / tb) + (s.start_time or 0), stream=s, backward=True)
                frames = decode()
            for frame in frames:
                decoded += 1
                position = float(frame.time) - start
                if position + half >= t:
                    break
        return decoded


def measured(fn, repeat: int = 2):
    """(best wall, its CPU seconds, result) over `repeat` runs."""
    best = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        run = (time.perf_counter() - wall, time.process_time() - cpu, out)
        best = run if best is None or run[0] < best[0] else best
    return best


def ratio_row(name: str, limit, stage) -> list:
    return [name, f"{stage[0] * 1000:.0f} ms", f"{stage[1] * 1000:.0f} ms",
            f"{limit[0] / stage[0]:.2f}", f"{limit[1] / max(stage[1], 1e-9):.2f}"]


def stage_table(title: str, path: str, rows: list[dict], times_of, stages: dict) -> None:
    """Each stage of `stages` ({label: set-up stage}) over `rows` against the decode limit of the frames
    it reads (`times_of(row)`), as one table (bench_frames and bench_quality)."""
    limit = measured(lambda: sum(decode_limit(path, times_of(r)) for r in rows))
    out = [["decode limit (PyAV, no conversion)", f"{limit[0] * 1000:.0f} ms", f"{limit[1] * 1000:.0f} ms", "1.00", "1.00"]]
    floor = measured(lambda: sum(decode_limit(path, times_of(r), skip_nonref=True) for r in rows))
    out.append(ratio_row("  the same, non-reference pictures skipped", limit, floor))
    for label, stage in stages.items():
        out.append(ratio_row(label, limit, measured(lambda: [stage.process_row(r) for r in rows])))
    table(f"{title} (x = decode-limit time / stage time; goal >= 0.8)", ["stage", "wall", "CPU", "x wall", "x CPU"], out)


def main():
    from vdata.stages.base import RunContext
    from vdata.stages.frames import FramesConfig, FramesStage, sample_times

    quick = "--quick" in sys.argv
    for name, path in corpora(quick):
        rows = clip_rows(path)
        cfg = FramesConfig()
        stages = {}
        for backend in ("auto", "decord", "pyav"):
            stages[f"frames stage, backend {backend}"] = FramesStage(FramesConfig(backend=backend), RunContext(output_dir=""))
            stages[f"frames stage, backend {backend}"].setup()
        stage_table(f"{name}: {len(rows)} clips x uniform-{cfg.num_frames} at {cfg.max_side} px", path, rows,
                    lambda r: sample_times(cfg.mode, r[R.START_S], r[R.END_S], cfg), stages)


if __name__ == "__main__":
    main()
