"""Fixtures for the teacher-layer tests: tiny offline models and CPU engine settings."""

from __future__ import annotations

import importlib.util
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

# vLLM on a 2-core CPU: eager mode (fast start), small context, grammar-constrained JSON without
# free whitespace (a random model would otherwise emit whitespace until max_tokens).
CPU_ENGINE = {
    "enforce_eager": True,
    "max_model_len": 2048,
    "max_num_seqs": 32,
    "limit_mm_per_prompt": {"image": 2, "video": 1},
    "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
}

# Bounded structured-output schema: enums, a pattern, bounded integers, booleans.
BOUNDED_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["person", "animal", "vehicle", "other"]},
        "code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}$"},
        "count": {"type": "integer", "minimum": 0, "maximum": 20},
        "visible": {"type": "boolean"},
    },
    "required": ["label", "code", "count", "visible"],
    "additionalProperties": False,
}


def have_vllm() -> bool:
    return importlib.util.find_spec("vllm") is not None


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    """A tiny random Qwen2.5-VL checkpoint built offline (~9 s)."""
    from vdata.teachers.tiny_models import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("models") / "tiny-qwen2_5_vl", "qwen2_5_vl")


@pytest.fixture(scope="session")
def tiny_vlm3(tmp_path_factory):
    """A tiny random Qwen3-VL checkpoint built offline (~9 s)."""
    from vdata.teachers.tiny_models import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("models3") / "tiny-qwen3_vl", "qwen3_vl")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def cpu_engine():
    return dict(CPU_ENGINE)


@pytest.fixture(scope="session")
def bounded_schema():
    return BOUNDED_SCHEMA
