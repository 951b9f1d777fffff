"""Benchmark the video_caption stage (clip captions → one video caption, hierarchically) against the
bare server it drives.

One worker of the stage merges the captions of `--videos` videos of `--clips` clips each, in groups of
`--group-size`, through an `openai` teacher at `--concurrency` requests in flight (no request cache).
Every request the stage sent is recorded; the ceiling is a bare load generator replaying exactly those
chat bodies with `httpx` + a semaphore at the same concurrency, with no level barriers (a level's merges
of one video can only start when the level below it is done — that, and the stage's bookkeeping, is
what the ratio measures).

By default it serves SmolLM2-135M-Instruct with llama.cpp (text merges; one request at a time);
`--engine vllm` serves a tiny random Qwen2.5-VL on CPU vLLM (concurrent batching); `--base-url` uses a
running server.

`--shapes` also runs the batches as the runner hands them to one actor: one batch per video (Ray's
map_groups), one at a time (`resources.batches_per_actor: 1`) and 4 at a time in threads (the default for
a stage that only waits on HTTP teachers). The row `all videos, 1 batch` is the bench's own shape.

    python bench/bench_video_caption.py [--videos 6] [--clips 12] [--group-size 4] [--concurrency 8]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import table  # noqa: E402
from bench.bench_generate import _bare, start_server  # noqa: E402
from vdata.schemas import records as R  # noqa: E402
from vdata.stages.base import Reject, RunContext  # noqa: E402
from vdata.stages.video_caption import VideoCaptionConfig, VideoCaptionStage  # noqa: E402

SUBJECTS = ["a red kite", "two cyclists", "a ferry", "a market stall", "a cat on a fence", "rain on a window",
            "a chef slicing onions", "a crowded platform", "a lighthouse", "children playing football"]
ACTIONS = ["moves slowly from left to right", "is shown in close-up", "stays still while the camera pans",
           "appears as the light changes", "is seen from above", "passes behind a tree"]


def video_rows(videos: int, clips: int, clip_s: float = 4.0) -> list[dict]:
    rows = []
    for v in range(videos):
        for c in range(clips):
            subject = SUBJECTS[(v + c) % len(SUBJECTS)]
            action = ACTIONS[(v * 3 + c) % len(ACTIONS)]
            rows.append({R.SOURCE_URI: f"/bench/v{v:03d}.mp4", R.VIDEO_ID: f"v{v:03d}", R.DURATION_S: clips * clip_s,
                         R.CLIP_ID: f"v{v:03d}_{c:04d}", R.START_S: c * clip_s, R.END_S: (c + 1) * clip_s,
                         R.CAPTION: f"In shot {c + 1} of video {v + 1}, {subject} {action}; the colours are muted "
                                    f"and the scene is calm.", R.MASS: 1.0 / clips})
    return rows


def run_stage(base_url: str, model: str, rows: list[dict], args, threads: int = 0) -> tuple[dict, list[bytes]]:
    """threads 0: one batch of every video; n >= 1: one batch per video, n at a time (one actor's threads)."""
    teacher = {"backend": "openai", "base_url": base_url, "model": model, "timeout_s": 600,
               "max_concurrency": args.concurrency}
    stage = VideoCaptionStage(VideoCaptionConfig(teacher="writer", group_size=args.group_size, max_tokens=args.max_tokens),
                              RunContext(output_dir="", teachers={"writer": teacher}))
    stage.setup()
    sent: list = []
    generate = stage.merger.generate

    def recording(requests):
        sent.extend(requests)
        return generate(requests)

    stage.merger.generate = recording
    by_video: dict = {}
    for r in rows:
        by_video.setdefault(r[R.SOURCE_URI], []).append(r)
    t0 = time.perf_counter()
    if threads:
        with ThreadPoolExecutor(threads) as pool:
            out = [r for part in pool.map(stage.process_batch, by_video.values()) for r in part]
    else:
        out = stage.process_batch(rows)   # one batch holding every video
    wall = time.perf_counter() - t0
    stats = stage.teacher_stats()["writer"]
    bodies = [json.dumps({"model": model, "messages": [{"role": "user", "content": req.messages[-1].parts()[-1].text}],
                          **stage.merger.effective_sampling(req)}).encode() for req in sent]
    stage.merger.close()
    return {"wall": wall, "requests": len(sent), "videos": len(by_video),
            "rejects": sum(isinstance(r, Reject) for r in out),
            "levels": max((r.get(R.VIDEO_CAPTION_LEVELS) or 0) for r in out if not isinstance(r, Reject)) if out else 0,
            "completion_tokens": stats.get("completion_tokens", 0)}, bodies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--engine", choices=["vllm", "llamacpp"], default="llamacpp")
    ap.add_argument("--base-url")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--shapes", action="store_true", help="also one batch per video, 1 and 4 at a time")
    args = ap.parse_args()
    rows = video_rows(args.videos, args.clips)
    srv = None
    workdir = tempfile.mkdtemp(prefix="bench-video-caption-")
    if args.base_url:
        base_url, model = args.base_url.rstrip("/"), args.model
    else:
        t = time.perf_counter()
        srv, _ = start_server(args.engine, workdir)
        base_url, model = srv.base_url, srv.served_model_name
        print(f"{args.engine} server up in {time.perf_counter() - t:.0f}s at {base_url}")
    try:
        shapes = [("all videos, 1 batch", 0)] + ([("1 batch per video, 1 at a time", 1),
                                                  ("1 batch per video, 4 at a time", 4)] if args.shapes else [])
        runs = [(label, *run_stage(base_url, model, rows, args, threads)) for label, threads in shapes]
        bare = asyncio.run(_bare(base_url, runs[0][2], args.concurrency))
        bare_rps = bare["requests"] / bare["wall"]
        out_rows = []
        for label, stage, _ in runs:
            stage_rps = stage["requests"] / stage["wall"]
            out_rows.append([label, stage["videos"], stage["levels"], stage["requests"], stage["rejects"],
                             f"{stage['videos'] / stage['wall']:.3f}", f"{stage_rps:.2f}", f"{bare_rps:.2f}",
                             f"{stage_rps / bare_rps:.2f}", f"{stage['completion_tokens'] / stage['wall']:.0f}",
                             f"{bare['completion_tokens'] / bare['wall']:.0f}"])
        table(f"video_caption stage vs bare load generator ({args.engine if not args.base_url else base_url}, "
              f"concurrency {args.concurrency}, {args.videos} videos x {args.clips} clips, groups of {args.group_size})",
              ["batches", "videos", "levels", "requests", "rejects", "videos/s", "stage req/s", "bare req/s", "ratio",
               "stage tok/s", "bare tok/s"], out_rows)
        print("ratio = stage requests/s ÷ bare requests/s on the same request bodies (1.00 = the level barriers "
              "and bookkeeping cost nothing)")
    finally:
        if srv is not None:
            srv.stop()


if __name__ == "__main__":
    main()
