"""Synthetic build outputs for the report tests: the sample-level rows (QA types, answer positions, teacher
stats, frames, evidence) and the video-level rows a clip-level build cannot reach."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vdata.media.images import encode_jpeg
from vdata.schemas import records as R
QUESTION_TYPES = ["temporal", "causal", "counting", "attribute"]
FIRST_RGB, CITED_RGB = (255, 0, 255), (0, 200, 255)   # magenta, sky blue
TEACHERS = {
    "qwen-small": {"name": "qwen-small", "backend": "vllm", "model": "Qwen2.5-VL-3B", "requests": 120,
                   "cache_hits": 20, "failures": 2, "prompt_tokens": 96000, "completion_tokens": 14000,
                   "latency_p50_s": 0.8, "latency_p95_s": 2.4, "tokens_per_s": 210.5},
    "judge": {"name": "judge", "backend": "openai", "model": "gpt-judge", "requests": 60, "cache_hits": 0,
              "failures": 0, "prompt_tokens": 30000, "completion_tokens": 2500, "latency_p50_s": 1.9,
              "latency_p95_s": 5.1, "tokens_per_s": 44.0},
}
CONFIG_TEXT = """name: synthetic
input: [{path: videos}]
output: {dir: out}
stages:
  - probe: {}
  - shots: {}
  - quality: {thresholds: {sharpness_min: 55, motion_min: null}}
  - frames: {mode: uniform, num_frames: 2}
"""


def _write_parquet(rows: list[dict], columns: list[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=R.schema_for(columns)), path)


def make_sample_output(out: Path, stats_records: list[dict] | None = None) -> dict:
    """A sample-level build output: 3 videos → 9 clips → 4 samples each; answers biased to position A."""
    # two flat frames in colours no plot uses: a screenshot shows whether the thumbnails were drawn
    first, cited = (encode_jpeg(np.full((48, 64, 3), rgb, dtype=np.uint8)) for rgb in (FIRST_RGB, CITED_RGB))
    columns = [*R.INGEST_COLUMNS, *R.PROBE_COLUMNS, *R.CLIP_COLUMNS, *R.QUALITY_COLUMNS, *R.FRAME_COLUMNS,
               *R.SAMPLE_COLUMNS]
    rows, n_mcq = [], 0
    for v in range(3):
        vid = f"vid{v}"
        for c in range(3):
            cid = f"{vid}_{c:07d}_{c + 1:07d}"
            clip = {R.SOURCE_URI: f"/data/video_{v}.mp4", R.VIDEO_ID: vid, R.DURATION_S: 30.0, R.CLIP_ID: cid,
                    R.CLIP_INDEX: c, R.CLIP_DURATION_S: 2.0 + v + 0.5 * c, R.SHOTS_IN_VIDEO: 4,
                    R.Q_BRIGHTNESS: 90.0 + 10 * c, R.Q_SHARPNESS: 100.0 * (v + 1), R.Q_MOTION: 1.0,
                    R.Q_TEXT_AREA: 0.01, R.Q_BORDER: 0.0, R.Q_MIN_SIDE: 360, R.Q_ASPECT: 1.78,
                    R.Q_SUITABILITY: 0.8, R.START_S: 10.0 * c, R.END_S: 10.0 * c + 2.0,
                    R.FRAMES: [{R.FRAME_TIMESTAMP_S: 10.0 * c + 0.5, R.FRAME_JPEG: first},
                               {R.FRAME_TIMESTAMP_S: 10.0 * c + 1.5, R.FRAME_JPEG: cited}]}
            for s in range(4):
                task = ["caption", "open_qa", "mcq", "mcq"][s]
                row = {**clip, R.SAMPLE_ID: f"{cid}_s{s}", R.TASK: task, R.QUESTION: f"what rolls in {cid} ({s})?",
                       R.ANSWER: f"a ball, says {cid}"}
                if task == "open_qa":   # evidence that cites the second frame and a stretch of speech
                    row[R.EVIDENCE] = {"captions": None, "frame_timestamps_s": [10.0 * c + 1.5],
                                       "transcript_spans": [{"start_s": 10.0 * c + 1.0, "end_s": 10.0 * c + 1.8,
                                                             "text": f"the ball rolls in video {v}"}]}
                    row[R.ANSWER_SPANS] = [{"start_s": 10.0 * c + 1.0, "end_s": 10.0 * c + 1.8}]
                if task != "caption":
                    row[R.QUESTION_TYPE] = QUESTION_TYPES[(v + c + s) % 4]
                if task == "mcq":
                    n_options = 4 if s == 2 else 2
                    row[R.OPTIONS] = [f"option {k}" for k in range(n_options)]
                    row[R.ANSWER_INDEX] = 0 if (c + s) % 3 else n_options - 1
                    n_mcq += 1
                rows.append(row)
    # as a build writes them: the frames once per clip in the clips table, the samples refer to it by clip id
    _write_parquet(rows, [c for c in columns if c not in R.CLIPS_TABLE_PAYLOAD], out / "samples" / "part-0.parquet")
    clips = list({r[R.CLIP_ID]: r for r in rows}.values())
    _write_parquet(clips, list(R.CLIPS_TABLE_COLUMNS), out / R.CLIPS_TABLE / "part-0.parquet")
    # one video's 4th shot and 3 samples rejected: quality scores travel in the detail JSON
    rejects = [{"stage": "quality", "reason": "blurry", "message": "q_sharpness=12 < sharpness_min=55",
                "detail": json.dumps({"failed": ["blurry"], "scores": {R.Q_SHARPNESS: 12.0 + i, R.Q_BRIGHTNESS: 80.0,
                                                                       R.Q_MOTION: 0.5}}),
                R.SOURCE_URI: f"/data/video_{i}.mp4", R.VIDEO_ID: f"vid{i}", R.CLIP_ID: f"vid{i}_0000003_0000004",
                R.SAMPLE_ID: None} for i in range(3)]
    rejects += [{"stage": "verify", "reason": "unsupported_claims", "message": "2 of 3 claims unsupported",
                 "detail": json.dumps({"claims": 3}), R.SOURCE_URI: "/data/video_0.mp4", R.VIDEO_ID: "vid0",
                 R.CLIP_ID: "vid0_0000000_0000001", R.SAMPLE_ID: f"vid0_0000000_0000001_x{i}",
                 R.TASK: "mcq"} for i in range(2)]
    out.joinpath("rejects").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rejects, schema=R.REJECT_SCHEMA), out / "rejects" / "part-0.parquet")
    stats_records = stats_records if stats_records is not None else [
        {"stage_index": i, "stage": name, "rows_in": n, "rows_out": n, "rejects": {}, "seconds": 0.5,
         "t_end": 1000.0 + i + 0.6 * b, "pid": 100 + b % 2, "node": "n1"}
        for i, (name, n) in enumerate([("probe", 1), ("shots", 1), ("quality", 4), ("frames", 3)]) for b in range(3)]
    manifest = {
        "name": "synthetic", "run_id": "20260101-000000-abcdef", "level": "samples", "config_hash": "0123abcd",
        "stage_hashes": {"probe#0": "aa", "shots#1": "bb"}, "config_text": CONFIG_TEXT, "inputs": 3,
        "rows": len(rows), "rejects": len(rejects),
        "rejects_by_reason": {"quality:blurry": 3, "verify:unsupported_claims": 2},
        "stages": [{"stage": n, "index": i, "rows_in": a, "rows_out": b, "rejects": rj, "busy_s": 1.0, "active_s": 2.0,
                    "rows_per_s": 1.5, "workers": 2, "nodes": ["n1"], "config_hash": "x"}
                   for i, (n, a, b, rj) in enumerate([("probe", 3, 3, {}), ("shots", 3, 12, {}),
                                                      ("quality", 12, 9, {"blurry": 3}), ("frames", 9, 9, {})])],
        "wall_s": 12.5, "timeline": {"start": 990.0}, "versions": {"python": "3.11", "ray": "2.60"}, "teachers": TEACHERS,
        "stats_records": stats_records,
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    return {"rows": rows, "n_mcq": n_mcq}


def make_video_output(out: Path) -> None:
    """A probe-only build: video rows, no clips, no rejects, no timing records."""
    rows = [{R.SOURCE_URI: f"/v/{i}.mp4", R.VIDEO_ID: f"v{i}", R.DURATION_S: 5.0 * (i + 1)} for i in range(4)]
    _write_parquet(rows, [*R.INGEST_COLUMNS, *R.PROBE_COLUMNS], out / "videos" / "part-0.parquet")
    (out / "manifest.json").write_text(json.dumps({
        "name": "probe-only", "level": "videos", "rows": 4, "rejects": 0, "rejects_by_reason": {}, "wall_s": 1.0,
        "config_text": "name: p\ninput: [{path: x}]\nstages:\n  - probe: {}\n",
        "stages": [{"stage": "probe", "index": 0, "rows_in": 4, "rows_out": 4, "rejects": {}}]}))
