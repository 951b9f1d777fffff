"""Export throughput: rows/s of every export format next to reading the canonical Parquet.

    python bench/bench_export.py [--repeat 300]

The build is the demo build (`vdata.exporters.demo_build`) with its samples repeated to ~10k rows, with
JPEG frames in the rows as a real build has. "raw read" reads every column of the sample Parquet
(the floor: an export cannot be faster than reading its input); "text read" reads only the columns the
text exporters use. Each export is timed on a second run into the same folder, so clip cuts (ffmpeg,
made once per clip and reused) are excluded; the cut cost is printed on its own line.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pyarrow.parquet as pq  # noqa: E402
from _common import CACHE, table, timed  # noqa: E402

from vdata.exporters import FORMATS, export  # noqa: E402
from vdata.exporters.base import NothingToExport  # noqa: E402
from vdata.exporters.demo_build import write_demo_build  # noqa: E402
from vdata.exporters.source import TEXT_COLUMNS, open_build  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=300, help="copies of the 34 demo samples")
    args = ap.parse_args()
    build_dir = CACHE / f"export_build_r{args.repeat}"
    if not (build_dir / "manifest.json").exists():
        shutil.rmtree(build_dir, ignore_errors=True)
        write_demo_build(str(build_dir), media_dir=str(CACHE / "export_media"), repeat=args.repeat)
    build = open_build(str(build_dir))
    files = build.data_files
    n = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    size_mb = sum(os.path.getsize(f) for f in files) / 1e6
    raw_s, _ = timed(lambda: pq.read_table(files), repeat=3)
    text_s, _ = timed(lambda: build.read_table(TEXT_COLUMNS), repeat=3)
    raw_rps = n / raw_s
    rows = [["raw read (all columns)", n, f"{raw_s:.3f}", f"{raw_rps:,.0f}", "1.00"],
            ["text read (export columns)", n, f"{text_s:.3f}", f"{n / text_s:,.0f}", f"{(n / text_s) / raw_rps:.2f}"]]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        first = export(str(build_dir), os.path.join(tmp, "warm"), "llava", media="link")
        cut_s = time.perf_counter() - t0
        for fmt in FORMATS:
            dest = os.path.join(tmp, fmt)
            try:
                export(str(build_dir), dest, fmt, media="link")          # cuts + links, once
            except NothingToExport:   # a format of task kinds the demo build has none of (preference, dialogue)
                rows.append([f"export {fmt}", 0, "-", "-", "n/a (no such samples)"])
                continue
            secs, res = timed(lambda: export(str(build_dir), dest, fmt, media="link"), repeat=2)
            rows.append([f"export {fmt}", res.total, f"{secs:.3f}", f"{res.total / secs:,.0f}",
                         f"{(res.total / secs) / raw_rps:.2f}"])
    table(f"export throughput, {n} sample rows, {size_mb:.1f} MB Parquet (ratio = rows/s over raw Parquet read rows/s)",
          ["step", "rows", "seconds", "rows/s", "ratio"], rows)
    print(f"\nfirst export incl. ffmpeg clip cuts: {first.media.get('cut', 0)} clip(s) cut, {cut_s:.2f} s total")


if __name__ == "__main__":
    main()
