"""Frame sampling: decord vs PyAV vs decode-only, uniform-16, on a short clip and a long-GOP 720p clip.

    python bench/bench_frames.py
"decode-only" decodes every frame sequentially and keeps none: what a naive reader pays. The backend
the frames stage picks by default ("auto" → decord for sparse reads) is chosen from these numbers.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cached_video, table, timed  # noqa: E402

from vdata.media.probe import probe_video  # noqa: E402
from vdata.media.reader import open_reader  # noqa: E402
from vdata.media.synth import Segment, render_segments  # noqa: E402


def short_clip(path):
    render_segments(path, [Segment("testsrc2", 10.0)], size=(640, 360))


def long_gop(path):
    render_segments(path, [Segment("mandelbrot", 60.0)], size=(1280, 720), gop=250, crf=28)


def decode_all(path):
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


def sample(path, backend, n=16):
    info = probe_video(path)
    d = info["duration_s"]
    times = [(k + 0.5) * d / n for k in range(n)]
    with open_reader(path, backend, purpose="sparse", max_side=448) as r:
        return len(r.read_at(times, max_side=448))


def main():
    rows = []
    for name, make in [("short 10 s 640x360", short_clip), ("long-GOP 60 s 1280x720 (GOP 10 s)", long_gop)]:
        path = cached_video(name.split()[0] + "_" + make.__name__ + ".mp4", make)
        t_all, n = timed(lambda: decode_all(path), repeat=2)
        t_dec, _ = timed(lambda: sample(path, "decord"), repeat=3)
        t_av, _ = timed(lambda: sample(path, "pyav"), repeat=3)
        best = min(t_dec, t_av)
        rows.append([name, f"{t_all * 1000:.0f} ms ({n} frames)", f"{t_dec * 1000:.0f} ms", f"{t_av * 1000:.0f} ms",
                     "decord" if t_dec <= t_av else "pyav", f"{t_all / best:.1f}x"])
    table("uniform-16 frame sampling (448 px)", ["clip", "decode-only", "decord", "PyAV", "faster", "speed-up vs decode-only"], rows)


if __name__ == "__main__":
    main()
