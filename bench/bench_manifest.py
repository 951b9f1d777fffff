"""Reading a manifest against pyarrow's plain CSV reader, the limit it chases.

    python bench/bench_manifest.py [--rows N]

A Kinetics-style CSV (path, youtube id, start, end, a quoted label with a comma, split), N rows (default
200,000). Rows: pyarrow.csv.read_csv + to_pylist (no delimiter sniffing, no encoding detection, no
problem rows, ids inferred as numbers) and vdata's `read_manifest`; the ratio is their time.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cached_video, table  # noqa: E402


def write_csv(path: str, rows: int) -> None:
    rng = random.Random(0)
    with open(path, "w") as f:
        f.write("path,youtube_id,time_start,time_end,label,split\n")
        for i in range(rows):
            vid = "".join(rng.choice("abcdefghijkABCDEF0123456789_-") for _ in range(11))
            f.write(f'videos/{i:07d}.mp4,{vid},{rng.randint(0, 300)},{rng.randint(10, 310)},"label, {i % 400}",train\n')


def best_of(fn, repeat: int = 3) -> float:
    out = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def main() -> None:
    import pyarrow.csv as pcsv

    from vdata.pipelines.manifest_tables import read_manifest

    rows = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 200_000
    path = cached_video(f"manifest_{rows}.csv", lambda p: write_csv(p, rows))   # a cached file, not a video
    limit = best_of(lambda: pcsv.read_csv(path).to_pylist())
    ours = best_of(lambda: read_manifest(path).records)
    table(f"{rows:,} CSV rows (x = pyarrow's plain read time / this time)", ["reader", "s", "rows/s", "x"],
          [["pyarrow.csv.read_csv + to_pylist (the limit)", f"{limit:.2f}", f"{rows / limit:,.0f}", "1.00"],
           ["vdata read_manifest", f"{ours:.2f}", f"{rows / ours:,.0f}", f"{limit / ours:.2f}"]])


if __name__ == "__main__":
    main()
