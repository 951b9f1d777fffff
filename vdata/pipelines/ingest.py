"""Ingest: turn the config's `input:` list into video rows (source_uri, path, source_meta).

Runs on the driver: listing files is cheap and the row count feeds progress bars. Content hashing
(the video id) happens in the probe stage, on the workers. Videos that arrive as bytes (HF datasets)
are written once to `<output>/_media/<content hash>.<ext>` so workers can read them by path.
"""
from __future__ import annotations

import glob as globlib
import json
import os
from pathlib import Path

from vdata.media.hashing import bytes_id
from vdata.schemas import records as R
from vdata.schemas.config import BuildConfig, ConfigError, InputSpec


def _row(uri: str, path: str, meta: dict | None = None) -> dict:
    return {R.SOURCE_URI: uri, R.PATH: os.path.abspath(path), R.SOURCE_META: json.dumps(meta, default=str) if meta else None}


def _is_video(p: str, spec: InputSpec) -> bool:
    return p.lower().endswith(tuple(e.lower() for e in spec.extensions))


def _from_path(spec: InputSpec, cfg: BuildConfig, where: str) -> list[dict]:
    p = cfg.resolve(spec.path)
    if os.path.isfile(p):
        return [_row(p, p)]   # an explicit file is taken whatever its extension: probe judges it
    if os.path.isdir(p):
        found = sorted(str(q) for q in Path(p).rglob("*") if q.is_file() and _is_video(str(q), spec))
        return [_row(f, f) for f in found]
    raise ConfigError(f"{where}.path: {spec.path!r} does not exist")


def _from_glob(spec: InputSpec, cfg: BuildConfig) -> list[dict]:
    pattern = cfg.resolve(spec.glob)
    return [_row(f, f) for f in sorted(globlib.glob(pattern, recursive=True)) if os.path.isfile(f)]


def _from_manifest(spec: InputSpec, cfg: BuildConfig, where: str) -> list[dict]:
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    p = cfg.resolve(spec.manifest)
    if not os.path.isfile(p):
        raise ConfigError(f"{where}.manifest: {spec.manifest!r} does not exist")
    low = p.lower()
    if low.endswith(".csv"):
        table = pcsv.read_csv(p)
    elif low.endswith((".jsonl", ".json")):
        table = pjson.read_json(p)
    elif low.endswith(".parquet"):
        table = pq.read_table(p)
    else:
        raise ConfigError(f"{where}.manifest: use a .csv, .jsonl or .parquet file (got {spec.manifest!r})")
    if spec.path_column not in table.column_names:
        raise ConfigError(f"{where}.path_column: manifest has no column {spec.path_column!r} "
                          f"(columns: {', '.join(table.column_names)})")
    base = Path(p).parent
    rows = []
    for i, rec in enumerate(table.to_pylist()):
        raw = rec.pop(spec.path_column)
        if raw is None:
            continue
        path = raw if os.path.isabs(raw) else str(base / raw)
        rows.append(_row(f"{p}#{i}", path, rec))
    return rows


def _from_hf(spec: InputSpec, cfg: BuildConfig, where: str, media_dir: str) -> list[dict]:
    import datasets

    hf = spec.hf
    local = cfg.resolve(hf.path)
    from_disk = hf.from_disk
    if from_disk is None:
        from_disk = os.path.isdir(local) and (
            os.path.exists(os.path.join(local, "dataset_info.json")) or os.path.exists(os.path.join(local, "state.json"))
            or os.path.exists(os.path.join(local, "dataset_dict.json")))
    if from_disk:
        ds = datasets.load_from_disk(local)
        if isinstance(ds, datasets.DatasetDict):
            ds = ds[hf.split]
    else:
        target = local if os.path.exists(local) else hf.path
        ds = datasets.load_dataset(target, hf.name, split=hf.split)
    if hf.column not in ds.column_names:
        raise ConfigError(f"{where}.hf.column: dataset has no column {hf.column!r} (columns: {', '.join(ds.column_names)})")
    # Never let `datasets` decode video: we want the path or the bytes.
    feature = ds.features[hf.column]
    if feature.__class__.__name__ == "Video":
        ds = ds.cast_column(hf.column, datasets.Video(decode=False))
    rows = []
    n = len(ds) if hf.limit is None else min(hf.limit, len(ds))
    for i in range(n):
        rec = dict(ds[i])
        value = rec.pop(hf.column)
        uri = f"hf://{hf.path}/{hf.split}#{i}"
        data, path = None, None
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path")
        elif isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, str):
            path = value
        if data:
            os.makedirs(media_dir, exist_ok=True)
            ext = os.path.splitext(path or "")[1] or ".mp4"
            path = os.path.join(media_dir, bytes_id(data) + ext)
            if not os.path.exists(path):
                tmp = path + ".part"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
        elif path and not os.path.isabs(path):
            path = str(Path(local) / path) if os.path.isdir(local) else path
        if not path:
            rows.append(_row(uri, f"<missing:{uri}>", {"error": "row has neither bytes nor path"}))
            continue
        rows.append(_row(uri, path, {k: v for k, v in rec.items() if isinstance(v, (str, int, float, bool, list)) or v is None}))
    return rows


def discover(cfg: BuildConfig, media_dir: str) -> list[dict]:
    rows: list[dict] = []
    for i, spec in enumerate(cfg.input):
        where = f"input[{i}]"
        if spec.path is not None:
            rows += _from_path(spec, cfg, where)
        elif spec.glob is not None:
            rows += _from_glob(spec, cfg)
        elif spec.manifest is not None:
            rows += _from_manifest(spec, cfg, where)
        else:
            rows += _from_hf(spec, cfg, where, media_dir)
    # the same source listed twice is processed once
    seen, unique = set(), []
    for r in rows:
        if r[R.PATH] not in seen:
            seen.add(r[R.PATH])
            unique.append(r)
    return unique
