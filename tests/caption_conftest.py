"""Helpers for the caption tests: real clip rows (probe → shots → frames run in-process on a rendered
video), the tiny offline Qwen2.5-VL teacher, and CPU engine settings. Imported by test_caption.py."""
from __future__ import annotations

import os

import pytest

from vdata.schemas import records as R
from vdata.stages.base import RunContext
from vdata.stages.caption.demo import DEMO_SERVED_NAME

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

# vLLM on a 2-core CPU: eager mode (fast start), grammar-constrained JSON without free whitespace (a
# random model would otherwise emit whitespace until max_tokens), room for 8 timed frames per request.
CPU_ENGINE = {
    "enforce_eager": True,
    "max_model_len": 4096,
    "max_num_seqs": 32,
    "limit_mm_per_prompt": {"image": 8, "video": 1},
    "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
}
# Short replies keep the tests quick; the model is random, so length says nothing about quality.
TEST_SAMPLING = {"max_tokens": 24}


def vllm_teacher_config(model_dir) -> dict:
    return {"backend": "vllm", "model": str(model_dir), "gpus_per_replica": 0, "engine": dict(CPU_ENGINE),
            "sampling": dict(TEST_SAMPLING), "batch_size": 64}


def managed_teacher_config(model_dir) -> dict:
    return {"backend": "managed", "engine": "vllm", "model": str(model_dir), "served_model_name": DEMO_SERVED_NAME,
            "engine_args": dict(CPU_ENGINE), "env": {"VLLM_CPU_KVCACHE_SPACE": "1"},
            "startup_timeout_s": 600, "timeout_s": 120, "max_concurrency": 32, "sampling": dict(TEST_SAMPLING)}


def openai_teacher_config(base_url: str, **extra) -> dict:
    cfg = {"backend": "openai", "base_url": base_url, "model": DEMO_SERVED_NAME, "timeout_s": 120, "max_concurrency": 32,
           "sampling": dict(TEST_SAMPLING), "video": {"mode": "frames"}}
    cfg.update(extra)
    return cfg


def clip_rows(video: str, num_frames: int = 4, min_len_s: float = 1.0) -> list[dict]:
    """Clip rows of `video` with real JPEG frames: the probe, shots and frames stages run in-process."""
    from vdata.stages.frames import FramesStage
    from vdata.stages.probe import ProbeStage
    from vdata.stages.shots import ShotsStage

    ctx = RunContext(output_dir="")
    rows = [{R.SOURCE_URI: video, R.PATH: video, R.SOURCE_META: None, R.MASS: 1.0}]
    for cls, cfg in ((ProbeStage, {}), (ShotsStage, {"min_len_s": min_len_s}),
                     (FramesStage, {"mode": "uniform", "num_frames": num_frames, "max_side": 160})):
        stage = cls(cls.Config(**cfg), ctx)
        stage.setup()
        out = stage.process_batch(rows)
        rows = [r for r in out if isinstance(r, dict)]
        assert rows, f"{cls.name} kept nothing: {out}"
    return rows


def with_transcript(row: dict, text: str) -> dict:
    """The row with one speech segment over its first half (the asr stage's columns, as data)."""
    start, end = row[R.START_S], row[R.END_S]
    mid = (start + end) / 2
    seg = {"start_s": start, "end_s": mid, "clip_start_s": 0.0, "clip_end_s": mid - start, "text": text, "words": []}
    return {**row, R.TRANSCRIPT_TEXT: text, R.TRANSCRIPT_LANGUAGE: "en", R.TRANSCRIPT_SEGMENTS: [seg],
            R.ASR_MODEL: "data"}


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory):
    """A tiny random Qwen2.5-VL checkpoint built offline (seconds)."""
    from vdata.stages.caption import ensure_tiny_vlm

    return ensure_tiny_vlm(tmp_path_factory.mktemp("caption-models") / "tiny-qwen2_5_vl")


@pytest.fixture(scope="session")
def cut_clips(cut_video):
    """7 clips of 2 s (lavfi sources with exact cuts), 4 uniform frames each."""
    rows = clip_rows(cut_video[0], num_frames=4)
    assert len(rows) == 7
    return rows
