"""Shared helpers for the benchmarks: cached synthetic inputs and a table printer."""
from __future__ import annotations

import os
import time
from pathlib import Path

CACHE = Path(os.environ.get("VDATA_BENCH_CACHE", Path(__file__).resolve().parents[1] / ".cache" / "bench"))


def cached_video(name: str, make) -> str:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / name
    if not path.exists():
        tmp = str(path) + ".part.mp4"
        make(tmp)
        os.replace(tmp, path)
    return str(path)


def timed(fn, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def table(title: str, header: list[str], rows: list[list]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
