"""Reading a manifest against pyarrow's plain CSV reader, the limit it chases.

    python bench/bench_manifest.py [--rows N]

A Kinetics-style CSV (path, youtube id, start, end, a quoted label with a comma, split), N rows (default
200,000). Rows: pyarrow.csv.read_csv + to_pylist (no delimiter sniffing, no encoding detection, no
problem rows, ids inferred as numbers) and vdata's `read_manifest`; the ratio is their time.

Second table: the same rows as Kinetics' own CSV (`format: kinetics`), 1% of the clips downloaded under
`<label>/`: reading the file, finding each clip's video (one folder listing), and the whole ingest up to
the work list (`discover` + `find_duplicates`: the other 99% become `missing_file` rejects there), each
against the same pyarrow read.
"""
from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, cached_video, table  # noqa: E402


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


def write_kinetics(folder: str, rows: int) -> str:
    """Kinetics' own CSV of `rows` clips, every 100th one present (an empty file) as its downloader stores it."""
    rng = random.Random(1)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "train.csv"), "w") as f:
        f.write("label,youtube_id,time_start,time_end,split\n")
        for i in range(rows):
            vid = "".join(rng.choice("abcdefghijkABCDEF0123456789_-") for _ in range(11))
            start, label = rng.randint(0, 300), f"label {i % 400}"
            f.write(f'"{label}",{vid},{start},{start + 10},train\n')
            if i % 100 == 0:
                os.makedirs(os.path.join(folder, "clips", label), exist_ok=True)
                open(os.path.join(folder, "clips", label, f"{vid}_{start:06d}_{start + 10:06d}.mp4"), "w").close()
    return folder


def kinetics_table(rows: int) -> None:
    import pyarrow.csv as pcsv

    from vdata.pipelines.ingest import discover, find_duplicates
    from vdata.schemas.annotation_formats import find_video, read_annotation_file, video_files
    from vdata.schemas.config import parse_config

    folder = str(CACHE / f"kinetics_{rows}")
    if not os.path.isfile(os.path.join(folder, "train.csv")):
        write_kinetics(folder + ".part", rows)
        os.replace(folder + ".part", folder)
    csv_path, clips = os.path.join(folder, "train.csv"), os.path.join(folder, "clips")
    limit = best_of(lambda: pcsv.read_csv(csv_path).to_pylist())
    parsed = read_annotation_file("kinetics", csv_path)
    read = best_of(lambda: read_annotation_file("kinetics", csv_path))

    def match():
        files = video_files(clips)
        return sum(find_video(clips, v, [".mp4", ".mkv", ".webm"], files) is not None for v in parsed.videos)

    found = match()
    matched = best_of(match)
    cfg = parse_config({"input": [{"manifest": csv_path, "format": "kinetics", "videos": clips}],
                        "output": {"dir": os.path.join(folder, "out")}, "stages": [{"probe": {}}]})
    ingest = best_of(lambda: find_duplicates(discover(cfg, media_dir=os.path.join(folder, "media"))), repeat=1)
    table(f"{rows:,} Kinetics CSV rows, {found:,} clips present (x = pyarrow's plain read time / this time)",
          ["step", "s", "rows/s", "x"],
          [["pyarrow.csv.read_csv + to_pylist (the limit)", f"{limit:.2f}", f"{rows / limit:,.0f}", "1.00"],
           ["read_annotation_file(kinetics)", f"{read:.2f}", f"{rows / read:,.0f}", f"{limit / read:.2f}"],
           ["find every clip's video (one listing)", f"{matched:.2f}", f"{rows / matched:,.0f}",
            f"{limit / matched:.2f}"],
           ["ingest to the work list (discover + find_duplicates)", f"{ingest:.2f}", f"{rows / ingest:,.0f}",
            f"{limit / ingest:.2f}"]])


if __name__ == "__main__":
    main()
    kinetics_table(int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 200_000)
