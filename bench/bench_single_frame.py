"""single_frame, the stage's own work per sample: pick the frame time, decode that one frame, build the
rotated requests. The limit it chases is the bare decode of one frame (open the video, seek, decode,
close), which the stage cannot avoid for a sample without stored frames; the ratio says what the rest
costs. The teacher's time is not measured here (bench_teachers.py measures teachers).

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


def bare_decode(samples, max_side):
    for row in samples:
        with open_reader(row[R.PATH], "auto", purpose="sparse", max_side=max_side) as reader:
            reader.read_at([frame_time(row)], max_side=max_side)


def stage_work(stage, samples):
    n = 0
    for row in samples:
        _, image = stage.frame(row, frame_time(row))
        n += len(stage.attempts_for(row, image))
    return n


def main():
    path = cached_video("single_frame_testsrc2_30s.mp4", video)
    samples = rows(path)
    stage = SingleFrameStage(SingleFrameConfig(teacher="vlm"), RunContext(output_dir=""))
    stage.prompt = load_prompt("verify", "single_frame_mcq")
    limit_s, _ = timed(lambda: bare_decode(samples, stage.config.max_side), repeat=3)
    stage_s, requests = timed(lambda: stage_work(stage, samples), repeat=3)
    table(f"single_frame on {SAMPLES} samples of a 30 s 640x360 video (best of 3)",
          ["what", "samples/s", "requests"],
          [["bare one-frame decode (the limit)", f"{SAMPLES / limit_s:.1f}", "-"],
           ["stage: frame + rotated requests", f"{SAMPLES / stage_s:.1f}", requests]])
    print(f"\nstage / limit: {limit_s / stage_s:.2f} (1.00 = the stage adds nothing to the decode)")


if __name__ == "__main__":
    main()
