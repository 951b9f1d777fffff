"""Benchmark the entities stage (cross-clip consistent names, teacher-free) against a bare text pass.

One worker of the stage reads `--videos` videos of `--clips` captioned clips each (every caption names a
few recurring characters and objects; every third clip's transcript says a name) in one batch, as after
the runner's grouping by video. The ceiling is the least any stage that reads every caption and
transcript and writes two columns must do: tokenize each text with the same regular expression and copy
each row with two new values. The ratio says what the mention rules, the clustering and the rewriting cost
on top of that.

    python bench/bench_entities.py [--videos 200] [--clips 20] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import table  # noqa: E402
from vdata.schemas import records as R  # noqa: E402
from vdata.stages.entities import _TOKEN, EntitiesConfig, EntitiesStage  # noqa: E402

PEOPLE = ["a man in a red shirt", "a woman wearing a blue hat", "an old man with a grey beard", "a young girl"]
THINGS = ["a dog", "a black cat", "a wooden table", "a small boat"]
ACTIONS = ["walks past", "looks at", "points towards", "stands next to", "picks up a cup beside"]
NAMES = ["Tom", "Maria", "Ben", "Anna"]


def video_rows(videos: int, clips: int) -> list[dict]:
    rows = []
    for v in range(videos):
        for c in range(clips):
            who, what = PEOPLE[(v + c) % len(PEOPLE)], THINGS[(v * 3 + c) % len(THINGS)]
            again = "the " + PEOPLE[(v + c + 1) % len(PEOPLE)].split(" ", 1)[1]
            caption = (f"{who[0].upper()}{who[1:]} {ACTIONS[c % len(ACTIONS)]} {what}. Later {again} "
                       f"{ACTIONS[(c + 2) % len(ACTIONS)]} the {what.split()[-1]} in the kitchen.")
            said = f"Look, this is {NAMES[(v + c) % len(NAMES)]}. We are going home now." if c % 3 == 0 else ""
            rows.append({R.SOURCE_URI: f"/bench/v{v:04d}.mp4", R.VIDEO_ID: f"v{v:04d}", R.CLIP_ID: f"v{v:04d}_{c:04d}",
                         R.START_S: c * 4.0, R.END_S: (c + 1) * 4.0, R.CAPTION: caption, R.TRANSCRIPT_TEXT: said})
    return rows


def bare(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        tokens = _TOKEN.findall(r[R.CAPTION]) + _TOKEN.findall(r[R.TRANSCRIPT_TEXT])
        out.append({**r, R.ENTITIES: len(tokens), R.CAPTION_RENAMED: r[R.CAPTION]})
    return out


def best_of(repeat: int, fn, rows) -> tuple[float, list]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn([dict(r) for r in rows])
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = video_rows(args.videos, args.clips)
    stage = EntitiesStage(EntitiesConfig())
    stage.setup()
    wall, out = best_of(args.repeat, stage.process_batch, rows)
    bare_wall, _ = best_of(args.repeat, bare, rows)
    entities = sum(len(r[R.ENTITIES]) for r in out) / args.clips
    renamed = sum(r[R.CAPTION_RENAMED] != r[R.CAPTION] for r in out)
    stage_rate, bare_rate = len(rows) / wall, len(rows) / bare_wall
    table(f"entities stage vs bare tokenize + copy ({args.videos} videos x {args.clips} clips, best of {args.repeat})",
          ["what", "clips/s", "entities/video", "captions renamed", "ratio"],
          [["entities stage", f"{stage_rate:,.0f}", f"{entities / args.videos:.1f}", renamed,
            f"{stage_rate / bare_rate:.2f}"],
           ["bare tokenize + copy (ceiling)", f"{bare_rate:,.0f}", "-", "-", "1.00"]])


if __name__ == "__main__":
    main()
