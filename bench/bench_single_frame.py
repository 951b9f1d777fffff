"""single_frame, the stage's own work per sample: pick the frame time, decode that frame, build the
rotated requests, in batches of the stage's default size. The limit it chases is the bare decode of the
batch's frames from one opened video (open, seek and decode each frame, close), which the stage cannot
avoid for samples without stored frames; the ratio says what the rest costs. Opening the video once per
sample, as a naive stage would, is shown for comparison. The teacher's time is not measured here
(bench_teachers.py measures teachers).

    python bench/bench_single_frame.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cached_video, table, timed  # noqa: E402

from vdata.media.reader import open_reader  # noqa: E402
from vdata.media.synth import Segment, render_segments  # noqa: E402
from vdata.prompts import load_prompt  # noqa: E402
from vdata.schemas import records as R  # noqa: E402
from vdata.stages.base import RunContext  # noqa: E402
from vdata.stages.single_frame import SingleFrameConfig, SingleFrameStage, frame_time  # noqa: E402

SAMPLES = 40


def video(path):
    render_segments(path, [Segment("testsrc2", 30.0)], size=(640, 360))


def rows(path):
    # evidence spans spread over the video: every sample seeks somewhere else
    return [{R.SAMPLE_ID: f"s{i}", R.TASK: "mcq", R.QUESTION: "What is shown?", R.OPTIONS: ["a", "b", "c", "d"],
             R.ANSWER_INDEX: i % 4, R.PATH: path, R.START_S: 0.0, R.END_S: 30.0,
             R.ANSWER_SPANS: [{"start_s": (i * 7.3) % 28, "end_s": (i * 7.3) % 28 + 1.5}]} for i in range(SAMPLES)]


def batches(samples, size):
    return [samples[i:i + size] for i in range(0, len(samples), size)]


def open_per_sample(samples, max_side):
    for row in samples:
        with open_reader(row[R.PATH], "auto", purpose="sparse", max_side=max_side) as reader:
            reader.read_at([frame_time(row)], max_side=max_side)


def open_per_batch(samples, max_side, size):
    for batch in batches(samples, size):
        with open_reader(batch[0][R.PATH], "auto", purpose="sparse", max_side=max_side) as reader:
            reader.read_at(sorted(frame_time(row) for row in batch), max_side=max_side)


def stage_work(stage, samples, size):
    n = 0
    for batch in batches(samples, size):
        for row, (_, image) in zip(batch, stage.frames([(row, frame_time(row)) for row in batch])):
            n += len(stage.attempts_for(row, image))
    return n


def main():
    path = cached_video("single_frame_testsrc2_30s.mp4", video)
    samples = rows(path)
    stage = SingleFrameStage(SingleFrameConfig(teacher="vlm"), RunContext(output_dir=""))
    stage.prompt = load_prompt("verify", "single_frame_mcq")
    size, side = stage.default_resources.batch_size, stage.config.max_side
    naive_s, _ = timed(lambda: open_per_sample(samples, side), repeat=3)
    limit_s, _ = timed(lambda: open_per_batch(samples, side, size), repeat=3)
    stage_s, requests = timed(lambda: stage_work(stage, samples, size), repeat=3)
    table(f"single_frame on {SAMPLES} samples of a 30 s 640x360 video, batches of {size} (best of 3)",
          ["what", "samples/s", "requests"],
          [["open the video per sample, decode one frame", f"{SAMPLES / naive_s:.1f}", "-"],
           ["open once per batch, decode its frames (the limit)", f"{SAMPLES / limit_s:.1f}", "-"],
           ["stage: frames + rotated requests", f"{SAMPLES / stage_s:.1f}", requests]])
    print(f"\nstage / limit: {limit_s / stage_s:.2f} (1.00 = the stage adds nothing to the decode)")


if __name__ == "__main__":
    main()
