"""Exporters: render a finished build's canonical Parquet into the formats trainers and evaluators load.

One module per format; the registry maps a format name to "module:function" (imported on use).

| format | files | clips without a clip file |
|---|---|---|
| llava | `<name>_{cap,oe_qa,mc_qa}.json` + `<name>.yaml` (LLaVA-NeXT data_path) | cut with ffmpeg |
| sharegpt | `<name>_<subset>.json` + `dataset_info.json` (LLaMA-Factory) | cut |
| swift | `<name>_<subset>.jsonl` (ms-swift, absolute video paths) | cut |
| internvl | `<name>_<subset>.jsonl` + `<name>_meta.json` | source video + `clip: [start, end]` |
| lmms-eval | task YAMLs + `utils.py` + `data/*.parquet` | cut |
| vlmevalkit | `<name>_<kind>.tsv` + `video/<id>.mp4` | cut |
| parquet | `data/<subset>/train-*.parquet` + README configs (canonical columns) | cut |

    from vdata.exporters import export
    result = export("out/my-dataset", "exports/llava", "llava", time_format="seconds", media="link")
"""
from __future__ import annotations

import importlib

from .base import ExportOptions, ExportResult
from .media import MEDIA_MODES
from .source import ExportError, open_build
from .timefmt import TIME_FORMATS

REGISTRY: dict[str, str] = {
    "llava": "vdata.exporters.llava:export",
    "sharegpt": "vdata.exporters.sharegpt:export",
    "swift": "vdata.exporters.swift:export",
    "internvl": "vdata.exporters.internvl:export",
    "lmms-eval": "vdata.exporters.lmms_eval:export",
    "vlmevalkit": "vdata.exporters.vlmevalkit:export",
    "parquet": "vdata.exporters.parquet:export",
}
FORMATS = tuple(REGISTRY)


def exporter(fmt: str):
    if fmt not in REGISTRY:
        raise ExportError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    module, fn = REGISTRY[fmt].split(":")
    return getattr(importlib.import_module(module), fn)


def export(out_dir: str, dest: str, format: str, time_format: str = "seconds", media: str = "link",
           tasks=None, name: str | None = None, bucket_media: bool = False, **kwargs) -> ExportResult:
    """Export the build in `out_dir` to `dest` in `format`.

    time_format: seconds | relative | frames (how times are written into texts);
    media: copy | link | none (how videos reach `dest`); tasks: only these sample tasks;
    name: dataset name used in file names (default: the build's name). Extra keyword arguments go to
    the format's exporter (e.g. `hub_repo` for lmms-eval).
    """
    if media not in MEDIA_MODES:
        raise ExportError(f"--media must be one of {', '.join(MEDIA_MODES)}, not {media!r}")
    if time_format not in TIME_FORMATS:
        raise ExportError(f"--time must be one of {', '.join(TIME_FORMATS)}, not {time_format!r}")
    fn = exporter(format)
    build = open_build(out_dir)
    opts = ExportOptions(time_format=time_format, media=media, tasks=tuple(tasks) if tasks else None, name=name,
                         bucket_media=bucket_media)
    return fn(build, dest, opts, **kwargs)


__all__ = ["FORMATS", "REGISTRY", "ExportError", "ExportOptions", "ExportResult", "export", "exporter", "open_build"]
