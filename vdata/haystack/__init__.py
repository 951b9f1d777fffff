"""Synthetic needle-in-a-haystack benchmarks for long-video models (no teacher model: the answers
come from the needles by construction).

    from vdata.haystack import build_haystack
    result = build_haystack("configs/haystack_demo.yaml")

Config (config.py) → sources and needle pools (sources.py, needles.py) → deterministic plan
(planner.py, layout.py, tasks.py) → ffmpeg render (render.py) → decode check (verify.py) → items
Parquet, rebuild manifest (manifest.py), summary, lmms-eval folder and VLMEvalKit TSV (writers.py).
"""
from .config import HaystackConfig, load_haystack_config, parse_haystack_config
from .run import HaystackResult, build_haystack, plan_haystack, rebuild_haystack

__all__ = ["HaystackConfig", "HaystackResult", "build_haystack", "load_haystack_config", "parse_haystack_config",
           "plan_haystack", "rebuild_haystack"]
