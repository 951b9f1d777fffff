"""`vdata rethreshold --write-to DIR`: the kept rows written as a build folder of their own.

DIR keeps the build's layout, so everything that reads a build reads it (`datasets.load_dataset(DIR)`,
`vdata export DIR`, `vdata card|push DIR`, `vdata rethreshold DIR`):

- `<level>/part-rethreshold-<split>.parquet`: the kept rows of each split of the build (the build files
  rows by their video's split, in the file name: held-out test videos stay in `*-test.parquet`); a split
  left with no row gets no file;
- `clips/part-rethreshold-<split>.parquet` (sample builds): the kept samples' clips, frames once per clip;
- `rejects/`: the build's own rejects, plus `part-rethreshold-NN.parquet` with the rows dropped here, each
  under the first check it fails (stage, reason, and the score against the new setting in `detail`);
- `manifest.json`: the build's manifest with this folder's rows, files and rejects, and `derived_from`
  (the build, its run id, the settings applied here), so a later `vdata rethreshold DIR` starts from them;
- `README.md`: the card's `configs:` / `dataset_info:` (vdata.exporters.hf_local.refresh_card), and a line
  naming the build it was derived from.

DIR must be new, empty, or an earlier `--write-to` output (whose files are replaced); any other folder is
refused, so a user's own files are never overwritten.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from vdata.schemas import records as R
from vdata.schemas.config_file import ConfigError

STEM = "part-rethreshold"
OLD_FILE = STEM + ".parquet"   # the single file older versions wrote (every split mixed)
DERIVED = "derived_from"
# what a rethreshold output folder holds: replaced as a whole on the next --write-to
OWN = ("manifest.json", "README.md", "_card", "rejects", "samples", "clips", "videos", OLD_FILE)


def prior_settings(out_dir: str) -> dict[str, Any]:
    """The settings an earlier `vdata rethreshold --write-to` applied to the rows of `out_dir` (check name ->
    value), from its manifest's `derived_from`; {} for a build."""
    try:
        with open(os.path.join(out_dir, "manifest.json")) as f:
            derived = json.load(f).get(DERIVED) or {}
    except (OSError, ValueError):
        return {}
    return dict(derived.get("settings") or {})


def prepare_dest(out_dir: str, dest: str) -> None:
    """Refuse a `dest` inside the build or holding other files; clear an earlier rethreshold output."""
    from vdata.exporters.base import inside_build

    if (why := inside_build(out_dir, dest)) is not None:
        raise ConfigError(f"--write-to {dest}: {why}; choose another folder")
    if os.path.realpath(out_dir).startswith(os.path.realpath(dest) + os.sep):
        raise ConfigError(f"--write-to {dest}: it holds the build {out_dir}; choose another folder")
    names = os.listdir(dest) if os.path.isdir(dest) else []
    earlier = _is_rethreshold_output(dest, names)
    if names and not earlier:
        raise ConfigError(f"--write-to {dest}: the folder holds other files ({', '.join(sorted(names)[:5])}"
                          f"{', ...' if len(names) > 5 else ''}); it takes a dataset folder of its own (manifest.json, "
                          "README.md, samples/ ...): give a new or empty folder")
    for name in names:
        if name in OWN:
            path = os.path.join(dest, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    os.makedirs(dest, exist_ok=True)


def _is_rethreshold_output(dest: str, names: list[str]) -> bool:
    if OLD_FILE in names:
        return True
    try:
        with open(os.path.join(dest, "manifest.json")) as f:
            return DERIVED in json.load(f)
    except (OSError, ValueError):
        return False


def write_split(build, files: list[str], schema: pa.Schema, split: str, plan, dest: str,
                apply) -> tuple[int, list[pa.Table], list[str]]:
    """The kept rows of one split (`files`) to `<dest>/<level>/`, with their clips for a sample build:
    (rows kept, reject tables of the rows dropped, files written relative to dest)."""
    from vdata.exporters.source import read_clip_table

    table = pads.dataset(files, format="parquet", schema=schema).to_table()
    kept, _, dropped = apply(table, plan, keep_dropped=True)
    rejects = [reject_rows(rows, check, setting) for check, setting, rows in dropped if rows.num_rows]
    written: list[str] = []
    if kept.num_rows:
        written.append(_write(kept, dest, build.level, split))
        if build.clips_files and R.CLIP_ID in kept.column_names:
            ids = pc.unique(kept[R.CLIP_ID].combine_chunks().drop_null()).to_pylist()
            clips = read_clip_table(build.clips_files, ids)
            if clips.num_rows:
                written.append(_write(clips, dest, R.CLIPS_TABLE, split))
    return kept.num_rows, rejects, written


def _write(table: pa.Table, dest: str, folder: str, split: str) -> str:
    rel = f"{folder}/{STEM}-{split}.parquet"
    os.makedirs(os.path.join(dest, folder), exist_ok=True)
    pq.write_table(table, os.path.join(dest, rel), compression="zstd")
    return rel


def reject_rows(rows: pa.Table, check, setting) -> pa.Table:
    """`rows` dropped by `check` at `setting` as rejects (R.REJECT_SCHEMA)."""
    n = rows.num_rows

    def col(name):
        return rows[name].cast(R.REJECT_SCHEMA.field(name).type) if name in rows.column_names else pa.nulls(n)

    scores = rows[check.column].to_pylist()
    return pa.table({
        "stage": pa.array([check.stage] * n, pa.string()),
        "reason": pa.array([check.reason] * n, pa.string()),
        "message": pa.array([f"vdata rethreshold: {check.column} {s} fails {check.name}={setting}" for s in scores],
                            pa.string()),
        "detail": pa.array([json.dumps({"column": check.column, "score": s, "setting": setting, "check": check.name},
                                       default=str) for s in scores], pa.string()),
        **{name: col(name) for name in R.REJECT_SCHEMA.names[4:]},
    }, schema=R.REJECT_SCHEMA)


def finish(out_dir: str, dest: str, build, kept: int, written: list[str], rejects: list[pa.Table],
           dropped: dict[str, int], checks, settings: dict[str, Any]) -> None:
    """The build's rejects and the new ones, manifest.json (written last, as a build does) and the card."""
    from vdata.exporters.hf_local import refresh_card

    if build.rejects_files or rejects:
        os.makedirs(os.path.join(dest, "rejects"), exist_ok=True)
    for f in build.rejects_files:
        rel = "rejects/" + os.path.basename(f)
        shutil.copyfile(f, os.path.join(dest, rel))
        written.append(rel)
    if rejects:   # numbered: a folder derived from a derived one keeps the earlier rethreshold's rejects too
        earlier_parts = sum(os.path.basename(f).startswith(STEM) for f in build.rejects_files)
        rel = f"rejects/{STEM}-{earlier_parts:02d}.parquet"
        pq.write_table(pa.concat_tables(rejects), os.path.join(dest, rel), compression="zstd")
        written.append(rel)
    manifest = dict(build.manifest)
    by_reason = dict(manifest.get("rejects_by_reason") or {})
    stage_of = {c.reason: c.stage for c in checks}
    for reason, n in dropped.items():
        key = f"{stage_of[reason]}:{reason}"
        by_reason[key] = by_reason.get(key, 0) + n
    earlier = manifest.get(DERIVED) or {}
    manifest.update({
        "rows": kept, "files": sorted(written), "output_dir": os.path.abspath(dest),
        "rejects": (manifest.get("rejects") or 0) + sum(dropped.values()),
        "rejects_by_reason": dict(sorted(by_reason.items())),
        DERIVED: {"build": earlier.get("build") or os.path.abspath(out_dir),
                  "run_id": earlier.get("run_id") or manifest.get("run_id"),
                  "command": "vdata rethreshold", "settings": settings,
                  "dropped": {**(earlier.get("dropped") or {}),
                              **{k: (earlier.get("dropped") or {}).get(k, 0) + v for k, v in dropped.items()}}},
    })
    with open(os.path.join(dest, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, default=str)
    card = refresh_card(dest)
    if card:
        shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "the build's settings"
        with open(card, "a") as f:
            f.write(f"\nDerived by `vdata rethreshold` from the build `{build.name}` (run "
                    f"{manifest[DERIVED]['run_id']}) with {shown}: its rows that pass, in the build's splits; the rows "
                    "dropped here are in `rejects` with the build's own rejects.\n")
