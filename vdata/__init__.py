"""vdata: turn raw videos into video instruction-tuning datasets and synthetic long-video benchmarks.

The Python API (the README's "Python API" section shows it end to end):

    import vdata
    cfg = vdata.load_config("examples/quickstart.yaml")
    print(vdata.plan(cfg).stages)                # the checked stage chain; runs nothing
    result = vdata.build(cfg)                    # what `vdata build` does
    pipe = vdata.Pipeline([...stage objects...], input="videos/", output_dir="out/x")
    kept, rejects = vdata.run_stage(stage, dataset)   # one stage over a ray.data / datasets Dataset

The names resolve on first use (module `__getattr__`), so `import vdata` stays cheap: it imports
neither Ray nor pyarrow.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# The floors of the house, top to bottom. A module imports only from its own package (or top-level
# module) or from a unit on a lower floor: never upwards, never sideways into another unit of its own
# floor. Stages never import each other (only `stages/base.py`). tests/test_architecture.py checks
# every import in vdata/ against this table; docs/architecture.md explains it.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("cli",),                                             # 6: the `vdata` command (attaches the others)
    ("cli_hub",),                                         # 5: `vdata push` / `vdata card` (they need hub)
    ("pipelines", "hub"),                                 # 4: runner, report, rethreshold; publishing
    ("stages", "exporters", "haystack"),                  # 3: the work: stages, output formats, benchmarks
    ("schemas",),                                         # 2: columns, config models, the name tables
    ("teachers", "media", "prompts", "lmms_task_utils", "metrics"),  # 1: models, decoding, prompts, eval helpers, scoring sums
    ("hdr", "display", "errors"),                         # 0: HDR to SDR pixels; a picture's turn and mirror (decoding, teachers); errors behind errors
)

_API = {
    "load_config": "vdata.schemas.config:load_config",
    "ConfigError": "vdata.schemas.config:ConfigError",
    "build": "vdata.pipelines.api:build",
    "plan": "vdata.pipelines.api:plan",
    "Pipeline": "vdata.pipelines.api:Pipeline",
    "run_stage": "vdata.pipelines.api:run_stage",
}

__all__ = ["FLOORS", "__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'vdata' has no attribute {name!r}")
    module, attribute = _API[name].split(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value   # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
