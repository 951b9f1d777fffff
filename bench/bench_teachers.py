"""Benchmark the ``openai`` teacher backend against a bare async load generator.

Both drive the same OpenAI-compatible server with the same request bodies at the same concurrency:

* ``bare``    – ``httpx.AsyncClient`` + a semaphore, nothing else (the ceiling);
* ``teacher`` – ``vdata.teachers`` ``OpenAITeacher.generate`` (cache off): request building,
  retries machinery, accounting, the sync-over-async facade.

Each round runs both back to back (alternating which goes first); the table shows the medians and
the median of the per-round ratios teacher/bare (goal >= 0.95). Then the request cache: a cold run vs. a re-run of the same requests
(the re-run must make zero server requests, counted by a pass-through proxy).

Without ``--base-url`` it builds a tiny random Qwen2.5-VL and starts a local vLLM server for the
run (≈1 min on a 2-core CPU), and stops it at the end.

    python bench/bench_teachers.py [--requests 128] [--concurrency 16] [--max-tokens 32] [--rounds 6]
    python bench/bench_teachers.py --base-url http://127.0.0.1:8000/v1 --model my-model
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the fault proxy is a test tool and lives there

from fault_proxy import FaultProxy  # noqa: E402
from vdata.teachers import TeacherRequest, build_teacher  # noqa: E402

CPU_ENGINE_ARGS = {
    "enforce_eager": True,
    "max_model_len": 2048,
    "max_num_seqs": 64,
    "limit_mm_per_prompt": {"image": 4, "video": 1},
    "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
}


def _prompts(n: int) -> list[str]:
    topics = ["a red car", "two dogs", "a busy street", "a kitchen", "rain on glass", "a goal", "a lecture"]
    return [f"Request {i}: describe {topics[i % len(topics)]} in one sentence." for i in range(n)]


def _sampling(max_tokens: int) -> dict[str, Any]:
    # fixed-length replies (vLLM's ignore_eos) so both sides generate the same number of tokens
    return {"max_tokens": max_tokens, "temperature": 0.0, "ignore_eos": True}


async def _bare_run(base_url: str, model: str, prompts: list[str], concurrency: int, max_tokens: int) -> dict[str, float]:
    sem = asyncio.Semaphore(concurrency)
    tokens = 0
    failures = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300.0, limits=limits) as client:

        async def one(p: str) -> None:
            nonlocal tokens, failures
            body = {"model": model, "messages": [{"role": "user", "content": p}], "seed": 0, **_sampling(max_tokens)}
            async with sem:
                r = await client.post(base_url + "/chat/completions", json=body)
            if r.status_code != 200:
                failures += 1
                return
            tokens += int(r.json()["usage"]["completion_tokens"])

        t0 = time.perf_counter()
        await asyncio.gather(*(one(p) for p in prompts))
        dt = time.perf_counter() - t0
    return {"seconds": dt, "req_s": len(prompts) / dt, "tok_s": tokens / dt, "failures": failures}


def bare_run(*a: Any) -> dict[str, float]:
    return asyncio.run(_bare_run(*a))


def teacher_run(base_url: str, model: str, prompts: list[str], concurrency: int, max_tokens: int,
                cache_dir: str | None = None, teacher: Any = None) -> dict[str, float]:
    own = teacher is None
    if own:
        teacher = build_teacher(
            "bench",
            {"backend": "openai", "base_url": base_url, "model": model, "max_concurrency": concurrency,
             "timeout_s": 300, "structured_output": "vllm", "sampling": {"max_tokens": max_tokens}},
            cache_dir=cache_dir,
        )
    reqs = [TeacherRequest.from_prompt(p, sampling=_sampling(max_tokens)) for p in prompts]
    try:
        t0 = time.perf_counter()
        res = teacher.generate(reqs)
        dt = time.perf_counter() - t0
    finally:
        if own:
            teacher.close()
    tokens = sum(r.usage.completion_tokens for r in res if not r.cached)
    return {"seconds": dt, "req_s": len(prompts) / dt, "tok_s": tokens / dt, "failures": sum(not r.ok for r in res),
            "cached": sum(r.cached for r in res)}


def _start_server(concurrency: int):
    from vdata.teachers.managed import ManagedServer
    from vdata.teachers.tiny_models import build_tiny_vlm

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_dir = Path(tempfile.gettempdir()) / "vdata-bench-tiny-qwen25vl"
    build_tiny_vlm(model_dir)
    args = dict(CPU_ENGINE_ARGS, max_num_seqs=max(64, concurrency))
    srv = ManagedServer("vllm", str(model_dir), served_model_name="tiny", engine_args=args,
                        env={"VLLM_CPU_KVCACHE_SPACE": "1"}, startup_timeout_s=600)
    t0 = time.perf_counter()
    srv.start()
    print(f"# started vLLM server pid {srv.pid} in {time.perf_counter() - t0:.1f}s at {srv.base_url}", flush=True)
    return srv


def run(args: argparse.Namespace) -> dict[str, Any]:
    server = None
    base_url, model = args.base_url, args.model
    if base_url is None:
        server = _start_server(args.concurrency)
        base_url, model = server.base_url, "tiny"
    try:
        prompts = _prompts(args.requests)
        # warm-up (connections, server caches) on both paths
        bare_run(base_url, model, prompts[: args.concurrency], args.concurrency, args.max_tokens)
        teacher_run(base_url, model, prompts[: args.concurrency], args.concurrency, args.max_tokens)
        bare, teach = [], []
        for r in range(args.rounds):
            order = [("bare", bare), ("teacher", teach)] if r % 2 == 0 else [("teacher", teach), ("bare", bare)]
            for kind, acc in order:
                fn = bare_run if kind == "bare" else teacher_run
                out = fn(base_url, model, prompts, args.concurrency, args.max_tokens)
                acc.append(out)
                print(f"# round {r + 1} {kind:8s} {out['req_s']:8.1f} req/s {out['tok_s']:9.1f} tok/s", flush=True)

        def med(xs: list[dict[str, float]], k: str) -> float:
            return statistics.median(x[k] for x in xs)

        result: dict[str, Any] = {
            "requests": args.requests, "concurrency": args.concurrency, "max_tokens": args.max_tokens,
            "rounds": args.rounds,
            "bare_req_s": med(bare, "req_s"), "bare_tok_s": med(bare, "tok_s"),
            "teacher_req_s": med(teach, "req_s"), "teacher_tok_s": med(teach, "tok_s"),
            "failures": sum(x["failures"] for x in bare + teach),
        }
        # each round runs both sides back to back: the median of per-round ratios cancels most of
        # the drift of a shared machine
        result["ratio_req_s"] = statistics.median(t["req_s"] / b["req_s"] for t, b in zip(teach, bare))
        result["ratio_tok_s"] = statistics.median(
            t["tok_s"] / b["tok_s"] for t, b in zip(teach, bare) if b["tok_s"] > 0
        ) if any(b["tok_s"] > 0 for b in bare) else 0.0

        # cache: cold run vs. re-run, requests counted at a pass-through proxy
        with tempfile.TemporaryDirectory() as cache_dir, FaultProxy(base_url) as px:
            cache_prompts = [f"{p} (cache bench)" for p in prompts]
            cold = teacher_run(px.base_url, model, cache_prompts, args.concurrency, args.max_tokens, cache_dir)
            cold_posts = px.counts["posts"]
            px.reset()
            warm = teacher_run(px.base_url, model, cache_prompts, args.concurrency, args.max_tokens, cache_dir)
            warm_posts = px.counts["posts"]
        result.update({
            "cache_cold_s": cold["seconds"], "cache_cold_requests": cold_posts,
            "cache_rerun_s": warm["seconds"], "cache_rerun_requests": warm_posts,
            "cache_rerun_hits": warm["cached"], "cache_speedup": cold["seconds"] / max(warm["seconds"], 1e-9),
        })
        return result
    finally:
        if server is not None:
            server.stop()


def print_table(r: dict[str, Any]) -> None:
    print()
    print(f"openai teacher backend vs bare httpx load generator  "
          f"({r['requests']} requests x {r['max_tokens']} tokens, concurrency {r['concurrency']}, "
          f"median of {r['rounds']} rounds; ratio = median of per-round ratios)")
    print(f"{'':24s}{'req/s':>12s}{'tokens/s':>12s}")
    print(f"{'bare httpx':24s}{r['bare_req_s']:12.1f}{r['bare_tok_s']:12.1f}")
    print(f"{'vdata OpenAITeacher':24s}{r['teacher_req_s']:12.1f}{r['teacher_tok_s']:12.1f}")
    goal = "OK" if r["ratio_req_s"] >= 0.95 else "BELOW GOAL"
    print(f"{'ratio teacher/bare':24s}{r['ratio_req_s']:12.3f}{r['ratio_tok_s']:12.3f}   (goal >= 0.95: {goal})")
    print()
    print(f"{'request cache':24s}{'seconds':>12s}{'requests':>12s}")
    print(f"{'first run (cold)':24s}{r['cache_cold_s']:12.3f}{r['cache_cold_requests']:12d}")
    print(f"{'re-run (all hits)':24s}{r['cache_rerun_s']:12.3f}{r['cache_rerun_requests']:12d}")
    print(f"{'speed-up':24s}{r['cache_speedup']:12.1f}x")
    if r["failures"]:
        print(f"\nWARNING: {r['failures']} failed requests")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="vdata teacher-layer benchmark")
    ap.add_argument("--base-url", help="an OpenAI-compatible server (default: start a tiny local vLLM)")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--requests", type=int, default=128)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    r = run(args)
    print_table(r)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
