"""The quality stage against the decode limit of the frames it reads (issue 16, goal 5: >= 0.8x).

    python bench/bench_quality.py [--quick]

Same corpora and clips as bench_frames.py. The quality stage reads 3 x num_frames frames per clip
(each anchor and the frames about 1/30 and 2/30 s after it, for motion) and scores them (brightness,
sharpness, optical flow, pHash, borders, text area by OCR). Per corpus, in one run: the decode limit of those frames
(PyAV seek + decode, no conversion), the same with the non-reference pictures before each target
skipped (what the PyAV reader, the default for sparse reads, decodes), the stage with defaults (text
detection on, on the analysis frame as read), without text detection, and with each reader backend.
x = decode-limit time / stage time.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_frames import clip_rows, corpora, stage_table  # noqa: E402

from vdata.schemas import records as R  # noqa: E402
from vdata.stages.quality import MOTION_RATE  # noqa: E402


def read_times(row: dict, num_frames: int) -> list[float]:
    """The times the quality stage reads for `row` (QualityStage.scores)."""
    start, end, step = row[R.START_S], row[R.END_S], 1.0 / (row[R.FPS] or 25.0)
    span = max(1, round((row[R.FPS] or 25.0) / MOTION_RATE)) * step   # motion over about 1/30 and 2/30 s
    times = []
    for k in range(num_frames):
        t0 = min(start + (k + 0.5) * (end - start) / num_frames, max(start, end - 2 * span - step))
        times += [t0, t0 + span, t0 + 2 * span]
    return times


def main():
    from vdata.stages.base import RunContext
    from vdata.stages.quality import QualityConfig, QualityStage

    quick = "--quick" in sys.argv
    variants = {"defaults": {}, "text detection off": {"text": {"enabled": False}},
                "backend decord": {"backend": "decord"}, "backend pyav": {"backend": "pyav"}}
    for name, path in corpora(quick):
        rows = clip_rows(path)
        n = QualityConfig().num_frames
        stages = {}
        for label, cfg in variants.items():
            stages[f"quality stage, {label}"] = QualityStage(QualityConfig(**cfg), RunContext(output_dir=""))
            stages[f"quality stage, {label}"].setup()
        stage_table(f"{name}: {len(rows)} clips x {3 * n} frames at {QualityConfig().analysis_max_side} px", path, rows,
                    lambda r: read_times(r, n), stages)


if __name__ == "__main__":
    main()
