"""What every exporter shares: options, the result summary, and the prepare step.

`prepare()` reads the build's items, picks each one's visual (see `media`), places the media files, and
drops — with a counted reason — samples whose video is missing or whose clip could not be cut. Format
modules then render records; a sample that cannot be rendered (say an MCQ with an out-of-range
`answer_index`) is skipped with its reason too. Nothing is silently lost: `ExportResult.skipped`
counts every dropped sample by reason. When nothing remains, nothing is written (`NothingToExport`).
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from vdata.schemas import records as R

from .media import MediaMissing, MediaPlanner, Visual
from .source import DATA_LEVELS, BuildDir, ExportError, Item
from .timefmt import TIME_FORMATS, TimeFormat


@dataclass
class ExportOptions:
    time_format: str = "seconds"       # seconds | relative | frames
    media: str = "link"                # copy | link | none
    tasks: tuple[str, ...] | None = None
    name: str | None = None            # dataset name used in file names (default: the build's name)
    bucket_media: bool = False         # videos/<id[:2]>/<id>.mp4 (Hub folders stay under 10k files)

    def __post_init__(self):
        if self.time_format not in TIME_FORMATS:
            raise ValueError(f"--time must be one of {', '.join(TIME_FORMATS)}, not {self.time_format!r}")


@dataclass
class ExportResult:
    format: str
    dest: str
    files: list[str] = field(default_factory=list)           # paths relative to dest (records, configs)
    rows: dict[str, int] = field(default_factory=dict)        # records written per subset / file
    skipped: dict[str, int] = field(default_factory=dict)     # dropped samples by reason
    media: dict = field(default_factory=dict)                 # copied / linked / cut / referenced / failed
    notes: list[str] = field(default_factory=list)
    configs: list[dict] = field(default_factory=list)        # README `configs:` of a `datasets` layout (parquet)
    dataset_info: list[dict] = field(default_factory=list)   # README `dataset_info:` (features) of that layout

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def summary(self) -> str:
        lines = [f"{self.format}: {self.total} record(s) -> {self.dest}"]
        lines += [f"  {k}: {v}" for k, v in self.rows.items()]
        if self.skipped:
            lines.append("  skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())))
        m = {k: v for k, v in self.media.items() if k != "failed" and v}
        if m:
            lines.append("  media: " + ", ".join(f"{k}={v}" for k, v in m.items()))
        for key, err in (self.media.get("failed") or {}).items():
            lines.append(f"  media failed: {key}: {err}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class Prepared:
    item: Item
    visual: Visual
    tf: TimeFormat


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "dataset"


class NothingToExport(ExportError):
    """No record of the build would reach the export: nothing is written, not even the folder."""


# A build's own folders: its tables, ledger, caches and logs. Nothing else may be written inside them
# (an export into `<build>/samples` made the samples table unreadable); `<build>/exports/` is fine.
BUILD_FOLDERS = (*DATA_LEVELS, "rejects", "_ledger", "_cache", "_logs", "_media", "_work", "_card", "report_assets")


def inside_build(build_path: str, dest: str) -> str | None:
    """Why `dest` cannot take output of the build at `build_path` (the build folder itself, or one of its
    own folders), or None."""
    build, target = os.path.realpath(build_path), os.path.realpath(dest)
    if target == build:
        return "it is the build directory itself"
    for name in BUILD_FOLDERS:
        own = os.path.join(build, name)
        if target == own or target.startswith(own + os.sep):
            return f"it is inside the build's own {name}/ folder"
    return None


def prepare(build: BuildDir, dest: str, opts: ExportOptions, *, clip_strategy: str = "cut",
            folder: str = "videos", flat: bool = False, force_mp4: bool = False,
            items: list[Item] | None = None,
            accept: Callable[[Item], str | None] | None = None) -> tuple[list[Prepared], MediaPlanner, Counter]:
    """The items to render, their media placed under `dest`. `accept(item)` returns why the format does
    not carry an item (a skip reason) or None; it runs before any media is placed, so a format never
    copies a video it will not reference. Raises NothingToExport, before creating `dest`, when no
    item remains."""
    if (why := inside_build(build.path, dest)) is not None:
        raise ValueError(f"--dest {dest}: {why}")
    planner = MediaPlanner(dest, opts.media, clip_strategy, folder=folder, flat=flat, force_mp4=force_mp4,
                           bucket=opts.bucket_media, names=build.dataset_names())
    if opts.time_format.partition(":")[0] == "frames":   # numbered by their real frame times (media.py)
        planner.vfr_videos = _vfr_videos(build)
    skipped: Counter = Counter()
    out = []
    candidates = list(build.items(opts.tasks) if items is None else items)
    for item in candidates:
        reason = accept(item) if accept else None
        if reason:
            skipped[reason] += 1
            continue
        try:
            v = planner.visual(item)
            tf = planner.timefmt(v, opts.time_format)
        except MediaMissing as e:   # also `frames` on a variable-rate video whose frame times cannot be read
            skipped[e.reason] += 1
            continue
        except ValueError:   # e.g. frame-index times for a row without fps
            skipped[f"no_{'fps' if opts.time_format == 'frames' else 'duration'}"] += 1
            continue
        out.append(Prepared(item, v, tf))
    if not out:
        what = f"{build.level} rows" + (f" of task(s) {', '.join(opts.tasks)}" if opts.tasks else "")
        rows = build.read_table([R.VIDEO_ID]).num_rows if not candidates and build.level in ("clips", "videos") else 0
        if candidates:
            why = (f"all {len(candidates)} {what} were skipped ("
                   + ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())) + ")")
        elif rows:   # a curation-only build: training formats carry text, which its rows do not have yet
            why = (f"its {rows} {build.level} rows carry no caption or dense events, the only text a {build.level}-level "
                   f"build exports (add a caption stage, or generate samples; `--format parquet` exports the "
                   f"{build.level} as they are)")
        else:
            why = f"the build has no {what}"
        raise NothingToExport(f"nothing to export from {build.path}: {why}; {dest} was not written")
    os.makedirs(dest, exist_ok=True)
    stats = planner.materialize()
    if stats["failed"]:
        before = len(out)
        out = [p for p in out if p.visual.key not in stats["failed"]]
        skipped["cut_failed"] += before - len(out)
    return out, planner, skipped


def _vfr_videos(build: BuildDir) -> set:
    """The ids of the build's variable-frame-rate videos (`is_vfr`, which the items' columns leave out)."""
    table = build.read_table([R.VIDEO_ID, R.IS_VFR])
    if R.IS_VFR not in table.column_names or R.VIDEO_ID not in table.column_names:
        return set()
    return {v for v, vfr in zip(table[R.VIDEO_ID].to_pylist(), table[R.IS_VFR].to_pylist()) if vfr}


def write_json(path: str, obj, indent: int | None = None) -> None:
    """Atomic JSON write. Record files stay unindented: indenting switches json to its slow pure-Python
    encoder (3x slower on large exports)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
    os.replace(tmp, path)


def write_jsonl(path: str, records) -> int:
    tmp = path + ".tmp"
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False))
            f.write("\n")
            n += 1
    os.replace(tmp, path)
    return n
