"""The fixed cost of a build: `vdata build` (probe + shots on one 30 s 720p video) against direct stage calls.

Printed per executor (`ray.executor: local`, the default for small builds, and `ray`):
- the CLI build's wall time (a fresh `vdata build` process, as a user runs it: imports, config checks,
  the run, manifest, report, card);
- the direct calls' wall time (ProbeStage + ShotsStage on the same file, in a warm process);
- the fixed cost (CLI minus direct; goal <= 3 s) and the CLI build's rate against the decode-only rate
  of the same video (PyAV, every frame; goal >= 0.5) and against the direct calls.

    python bench/bench_build_overhead.py [--runs 3] [--seconds 30 300]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import yaml  # noqa: E402
from _common import cached_video, table  # noqa: E402

from vdata.media.synth import CUT_SOURCES, Segment, render_segments  # noqa: E402


def make_video(path: str, seconds: int = 30) -> None:
    render_segments(path, [Segment(CUT_SOURCES[i % len(CUT_SOURCES)], 3.0) for i in range(max(1, seconds // 3))],
                    size=(1280, 720))


def decode_only(path: str) -> tuple[float, int]:
    import av

    t0 = time.perf_counter()
    n = 0
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for _ in c.decode(s):
            n += 1
    return time.perf_counter() - t0, n


def direct(path: str) -> float:
    from vdata.schemas import records as R
    from vdata.stages.base import RunContext
    from vdata.stages.probe import ProbeStage
    from vdata.stages.shots import ShotsStage

    t0 = time.perf_counter()
    rows = [{R.SOURCE_URI: path, R.PATH: path, R.SOURCE_META: None, R.MASS: 1.0}]
    for cls in (ProbeStage, ShotsStage):
        stage = cls(cls.Config(), RunContext(output_dir=""))
        stage.setup()
        rows = [r for r in stage.process_batch(rows) if isinstance(r, dict)]
    return time.perf_counter() - t0


def cli_build(path: str, executor: str, work: str) -> float:
    cfg = Path(work) / f"{executor}.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "overhead", "input": [{"path": path}],
        "output": {"dir": str(Path(work) / f"out-{executor}"), "mode": "overwrite", "stage_cache": False},
        "ray": {"executor": executor}, "stages": [{"probe": {}}, {"shots": {}}]}))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vdata.cli", "build", str(cfg), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, nargs="+", default=[30],
                    help="video lengths: the fixed cost is paid once, so a longer video shows the rate it tends to")
    a = ap.parse_args()
    for seconds in a.seconds:
        measure(seconds, a.runs)
    print("\ngoals (issue 16): fixed cost <= 3 s; CLI / decode >= 0.5")
    return 0


def measure(seconds: int, runs: int) -> None:
    path = cached_video(f"overhead_720p_{seconds}s.mp4", lambda p: make_video(p, seconds))
    decodes = [decode_only(path) for _ in range(runs)]   # (seconds, frames): the frame count comes with them
    decode_s, frames = statistics.median(s for s, _ in decodes), decodes[0][1]
    direct(path)   # warm: imports, page cache
    direct_s = statistics.median(direct(path) for _ in range(runs))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for executor in ("local", "ray"):
            walls = [cli_build(path, executor, work) for _ in range(runs)]
            wall = statistics.median(walls)
            rows.append([executor, f"{min(walls):.2f} / {wall:.2f} / {max(walls):.2f}", f"{direct_s:.2f}",
                         f"{wall - direct_s:.2f}", f"{frames / wall:.0f}", f"{frames / decode_s:.0f}",
                         f"{decode_s / wall:.2f}", f"{direct_s / wall:.2f}"])
    table(f"probe + shots, one {seconds} s 720p video ({frames} frames), {runs} runs; load {os.getloadavg()[0]:.1f}",
          ["executor", "CLI wall s (min/med/max)", "direct s", "fixed cost s", "CLI fps", "decode fps",
           "CLI / decode", "CLI / direct"], rows)


if __name__ == "__main__":
    sys.exit(main())
