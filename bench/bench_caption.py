"""Differential captioning throughput: 1 vs 16 clips in flight against a local vLLM server.

A differential caption is a chain of sequential requests per clip (first keyframe, one per later
keyframe, a summary), so with one clip in flight the engine sees one request at a time. The caption
stage's scheduler keeps K clips in flight (one pending request each, refilled as answers return):
the engine batches K requests, and captions/s should grow with K until the engine saturates.

Printed: captions/s at K=1 and K=16 and their ratio (the scheduler's gain), next to the ceiling it
chases — the same number of requests sent as independent requests at concurrency 16 (what a
perfectly full engine delivers), converted to captions/s — as a ratio too.

Replies have a fixed length (vLLM's ignore_eos), so every request costs the same at every K.
Without --base-url it builds the tiny random Qwen2.5-VL and starts `vllm serve` for the run (about
1 min on a 2-core CPU), then stops it.

    python bench/bench_caption.py [--clips 32] [--keyframes 4] [--max-tokens 32]
    python bench/bench_caption.py --base-url http://127.0.0.1:8000/v1 --model my-model
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from _common import CACHE, cached_video, table  # noqa: E402

from vdata.media.synth import CUT_SOURCES, Segment, render_segments  # noqa: E402
from vdata.schemas import records as R  # noqa: E402
from vdata.stages.base import RunContext  # noqa: E402
from vdata.stages.caption import CaptionConfig, CaptionStage, ensure_tiny_vlm  # noqa: E402
from vdata.teachers import build_teacher  # noqa: E402

CPU_ENGINE_ARGS = {
    "enforce_eager": True,
    "max_model_len": 4096,
    "max_num_seqs": 64,
    "limit_mm_per_prompt": {"image": 4, "video": 1},
}


def clip_rows(n_clips: int, keyframes: int) -> list[dict]:
    """`n_clips` real 1.5 s clips (lavfi sources with hard cuts) with `keyframes` JPEG frames each."""
    from vdata.stages.frames import FramesStage
    from vdata.stages.probe import ProbeStage
    from vdata.stages.shots import ShotsStage

    segments = [Segment(CUT_SOURCES[i % len(CUT_SOURCES)], 1.5) for i in range(n_clips)]
    path = cached_video(f"caption_cuts_{n_clips}.mp4", lambda p: render_segments(p, segments))
    rows = [{R.SOURCE_URI: path, R.PATH: path, R.SOURCE_META: None, R.MASS: 1.0}]
    ctx = RunContext(output_dir="")
    for cls, cfg in ((ProbeStage, {}), (ShotsStage, {"min_len_s": 0.5, "stitch": {"enabled": False}}),
                     (FramesStage, {"mode": "uniform", "num_frames": keyframes, "max_side": 160})):
        stage = cls(cls.Config(**cfg), ctx)
        stage.setup()
        rows = [r for r in stage.process_batch(rows) if isinstance(r, dict)]
    return rows


def run_differential(rows: list[dict], teacher_cfg: dict, in_flight: int) -> tuple[float, CaptionStage, list]:
    # fixed-length replies (vLLM's ignore_eos): every request costs the same at every width
    stage = CaptionStage(CaptionConfig(strategy="differential", teacher="bench", max_in_flight=in_flight,
                                       sampling={"ignore_eos": True}),
                         RunContext(output_dir="", teachers={"bench": teacher_cfg}))
    stage.setup()
    try:
        t0 = time.perf_counter()
        out = stage.process_batch(rows)
        return time.perf_counter() - t0, stage, out
    finally:
        stage.close()


def ceiling(rows: list[dict], teacher_cfg: dict, n_requests: int, concurrency: int) -> float:
    """Seconds for `n_requests` independent two-keyframe requests at `concurrency` (a full engine)."""
    from vdata.teachers import TeacherRequest

    teacher = build_teacher("bench", {**teacher_cfg, "max_concurrency": concurrency})
    try:
        reqs = []
        for i in range(n_requests):
            frames = rows[i % len(rows)][R.FRAMES]
            reqs.append(TeacherRequest.from_prompt(f"What changed between the two keyframes? ({i})",
                                                   images=[frames[0][R.FRAME_JPEG], frames[-1][R.FRAME_JPEG]],
                                                   sampling={"ignore_eos": True}))
        teacher.generate(reqs[: min(8, len(reqs))])          # warm-up
        t0 = time.perf_counter()
        results = teacher.generate(reqs)
        wall = time.perf_counter() - t0
        failed = sum(1 for r in results if not r.ok)
        if failed:
            print(f"warning: {failed} ceiling request(s) failed")
        return wall
    finally:
        teacher.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", help="an OpenAI-compatible server (default: start a local vLLM server)")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--keyframes", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--in-flight", type=int, nargs="+", default=[1, 16])
    a = ap.parse_args()

    rows = clip_rows(a.clips, a.keyframes)
    if len(rows) < a.clips:
        print(f"note: shot detection found {len(rows)} clips")
    sampling = {"max_tokens": a.max_tokens, "temperature": 0.0}
    server = None
    base_url = a.base_url
    if base_url is None:
        model_dir = ensure_tiny_vlm(CACHE / "tiny-qwen2_5_vl")
        server = build_teacher("server", {
            "backend": "managed", "engine": "vllm", "model": str(model_dir), "served_model_name": a.model,
            "engine_args": CPU_ENGINE_ARGS, "env": {"VLLM_CPU_KVCACHE_SPACE": "1"}, "startup_timeout_s": 900,
            "log_dir": tempfile.mkdtemp(prefix="bench-caption-")})
        base_url = server.server.base_url
        print(f"local vLLM server ready in {server.server.startup_s:.0f}s at {base_url}")
    teacher_cfg = {"backend": "openai", "base_url": base_url, "model": a.model, "cache": False,
                   "max_concurrency": max(a.in_flight), "timeout_s": 300, "sampling": sampling,
                   "video": {"mode": "frames"}}
    try:
        results = []
        for k in a.in_flight:
            run_differential(rows[: min(len(rows), 2 * k)], teacher_cfg, k)   # warm-up at this width
            wall, stage, out = run_differential(rows, teacher_cfg, k)
            kept = sum(1 for r in out if isinstance(r, dict))
            sched = stage.last_schedule
            # the scheduler's own figure, whatever the engine's speed: how full it kept the engine
            results.append((k, wall, kept, sched.requests, sched.peak_outstanding, sched.request_seconds / wall))
        n_requests = results[-1][3]
        ceil_wall = ceiling(rows, teacher_cfg, n_requests, max(a.in_flight))
        ceil_caps = len(rows) / ceil_wall
        base = len(rows) / results[0][1]
        table_rows = []
        for k, wall, kept, n_req, peak, mean_in_flight in results:
            caps = len(rows) / wall
            table_rows.append([k, len(rows), kept, n_req, peak, f"{mean_in_flight:.1f}", f"{wall:.2f}", f"{caps:.2f}",
                               f"{caps / base:.2f}x", f"{caps / ceil_caps:.2f}"])
        table_rows.append([f"ceiling@{max(a.in_flight)}", len(rows), "-", n_requests, max(a.in_flight), "-",
                           f"{ceil_wall:.2f}", f"{ceil_caps:.2f}", f"{ceil_caps / base:.2f}x", "1.00"])
        table(f"differential captions, {a.keyframes} keyframes/clip, {a.max_tokens}-token replies, {base_url}",
              ["in flight", "clips", "kept", "requests", "peak", "mean in flight", "wall s", "captions/s", "vs K=1", "vs ceiling"],
              table_rows)
        print("\nmean in flight: request-seconds / wall, how full the scheduler kept the engine (goal: near K);"
              " unlike captions/s it does not move with the machine's load.")
        print("ceiling: the same number of independent requests at full concurrency (a full engine); "
              "the scheduler's goal is captions/s at K=16 close to it (ratio -> 1) and well above K=1.")
    finally:
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
