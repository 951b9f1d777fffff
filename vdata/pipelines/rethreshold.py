"""Re-threshold a finished dataset from the quality scores stored in its Parquet (no decoding)."""
from __future__ import annotations

import os
from collections import Counter

import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pydantic import ValidationError

from vdata.schemas.config import ConfigError
from vdata.stages.quality import Thresholds, apply_thresholds


def rethreshold_table(table, thresholds: Thresholds):
    keep, dropped = [], Counter()
    for row in table.select([c for c in table.column_names if c.startswith("q_") or c == "clip_duration_s"]).to_pylist():
        failed = apply_thresholds(row, thresholds)
        keep.append(not failed)
        if failed:
            dropped[failed[0][0]] += 1
    import pyarrow as pa

    return table.filter(pa.array(keep)), dict(dropped)


def rethreshold_dataset(out_dir: str, overrides: dict, write_to: str | None = None):
    data_dir = os.path.join(out_dir, "clips")
    if not os.path.isdir(data_dir):
        raise ConfigError(f"{out_dir} has no clips/ folder: run a build with a quality stage first")
    base = _build_thresholds(out_dir)
    unknown = sorted(set(overrides) - set(Thresholds.model_fields))
    if unknown:
        raise ConfigError(f"unknown threshold(s) {unknown}; allowed: {', '.join(Thresholds.model_fields)}")
    try:
        thresholds = Thresholds(**{**base.model_dump(), **overrides})
    except ValidationError as e:
        raise ConfigError("; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()))
    table = pads.dataset(data_dir, format="parquet").to_table()
    if "q_brightness" not in table.column_names:
        raise ConfigError(f"{data_dir} has no quality scores (no quality stage in that build)")
    kept, dropped = rethreshold_table(table, thresholds)
    if write_to:
        os.makedirs(write_to, exist_ok=True)
        pq.write_table(kept, os.path.join(write_to, "part-rethreshold.parquet"), compression="zstd")
    return kept.num_rows, dropped


def _build_thresholds(out_dir: str) -> Thresholds:
    """The thresholds the build used (from its manifest), so --set changes only what it names."""
    import json

    import yaml

    from vdata.schemas.config import parse_config

    path = os.path.join(out_dir, "manifest.json")
    if not os.path.exists(path):
        return Thresholds()
    text = json.load(open(path)).get("config_text") or ""
    try:
        cfg = parse_config(yaml.safe_load(text), text, out_dir)
    except Exception:
        return Thresholds()
    for name, scfg in cfg.stage_specs:
        if name == "quality":
            return scfg.thresholds
    return Thresholds()
