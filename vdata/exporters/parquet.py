"""The canonical records as Parquet, split into one config per subset, loadable by HF `datasets`.

Layout (what `push_to_hub` writes for several configs):

    <dest>/data/<subset>/<split>-00000-of-00002.parquet   (split: train / validation / test, by video)
    <dest>/README.md          YAML `configs:` so that `load_dataset(<dest>, "<subset>")` works
    <dest>/videos/...         the media (copy / link), unless --media none

Rows keep every canonical column with its Arrow type (times stay float seconds, video-absolute, and the
texts' `{{t:…}}` placeholders stay as stored) and gain `video` (the file of the sample's visual, relative to
`<dest>`, absolute with --media none) and `video_origin_s` (the video-absolute time of that file's first
frame: a clip file starts at its clip's `start_s`); sample rows also gain `question_text`, `answer_text`,
`options_text`, their text with the times rendered by `--time`, relative to `video` (RENDERED_COLUMNS).
Clips without a clip file are cut with ffmpeg.
A clips-level build gives a `captions` subset (captioned clips) and a `clips` subset (the rest).
A sample build's frames are not on its sample rows: the `clips` subset holds them once per clip (from
the build's clips table), and a sample's frames are the `clips` row with its `clip_id`.
"""
from __future__ import annotations

import math
import os

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from vdata.schemas import records as R
from vdata.schemas.config import SPLIT_NAMES

from .base import ExportOptions, ExportResult, prepare
from .source import SUBSETS, BuildDir, Item, subset_of, table_rows

ROWS_PER_SHARD = 20_000
# Shards and row groups by size, as `datasets`' push_to_hub writes them (its MAX_SHARD_SIZE, MAX_ROW_GROUP_SIZE;
# bytes uncompressed): a row group is what the Hub viewer and a `datasets` reader hold in memory at once, and
# 20,000 clips with frames made one 1.5-3 GB group (outside check h26 F18). A table with binary columns
# (`frames`: JPEG images) gets row groups of MEDIA_ROW_GROUP rows at most.
MAX_SHARD_BYTES = 500 * 1000**2
MAX_ROW_GROUP_BYTES = 100 * 1000**2
MEDIA_ROW_GROUP = 100
PARQUET_SUBSETS = (*SUBSETS, "clips")
MEDIA_COLUMNS = (R.SAMPLE_ID, R.PATH, R.VIDEO_ID, R.FPS, R.DURATION_S, R.CLIP_ID, R.START_S, R.END_S, R.CLIP_PATH,
                 R.SAMPLE_SCOPE)


def row_subsets(table: pa.Table, level: str) -> list[str]:
    if level in ("samples", "haystack"):
        tasks = table.column(R.TASK).to_pylist()
        opts = table.column(R.OPTIONS).to_pylist() if R.OPTIONS in table.column_names else [None] * len(tasks)
        return [subset_of(t, o, level) for t, o in zip(tasks, opts)]
    caps = table.column(R.CAPTION).to_pylist() if R.CAPTION in table.column_names else [None] * table.num_rows
    return ["captions" if c else "clips" for c in caps]


def configs_yaml(configs: dict[str, str | dict[str, str]], split: str = "train") -> list[dict]:
    """README `configs:` entries: {subset: glob of its files} (all in `split`) or {subset: {split: glob}}."""
    return [{"config_name": name, "data_files": [{"split": sp, "path": glob}
                                                 for sp, glob in (files.items() if isinstance(files, dict) else [(split, files)])]}
            for name, files in configs.items()]


# The card's word on the one thing in the text columns a consumer cannot read as it is: the times.
PLACEHOLDER_NOTE = """\
Times in the text columns (`question`, `answer`, `options`, `rationale`, `evidence`, ...) are placeholders in
video-absolute seconds: `{{t:12.3}}` is a moment, `{{span:12.3,20.5}}` an interval (the float columns, such as
`answer_spans`, hold the same times). Text that came from the source dataset (a chapter title, a segment text,
a label) writes a literal `{{` as `{\\{` and `{\\` as `{\\\\`, so that it never reads as a placeholder. To
render a text for a model, with times relative to the row's `video` (its first frame at `video_origin_s`):
`vdata.exporters.timefmt.TimeFormat(<format>, origin_s=video_origin_s, duration_s=<its length>,
fps=<its frame rate>).render_text(text)`, formats `seconds`, `relative`, `frames`, `lita`, `vtg`,
`grounded_videollm`, `timesuite`, `bracketed`; it also restores the escaped braces
(`vdata.prompts.unescape_placeholders` does only that). The `question_text`, `answer_text` and `options_text`
columns hold `question`, `answer` and `options` rendered so (in the export's `--time` format, default
seconds); `vdata export <build> --format sharegpt --time <format>` (or llava, lmms-eval, ...) writes rendered text.
"""


def write_readme_configs(dest: str, configs: list[dict], dataset_info: list[dict] | None = None) -> None:
    """README.md of the export: its YAML `configs:` (configs_yaml entries) and `dataset_info:`."""
    if configs and not any(c.get("default") for c in configs):   # else load_dataset(dest) asks for a config name
        configs = [{**configs[0], "default": True}, *configs[1:]]
    keys = {"configs": configs, **({"dataset_info": dataset_info} if dataset_info else {})}
    header = yaml.safe_dump(keys, sort_keys=False)
    with open(os.path.join(dest, "README.md"), "w") as f:
        f.write(f"---\n{header}---\n\nCanonical vdata records; load with `datasets.load_dataset(path, <config>)`.\n"
                f"\n{PLACEHOLDER_NOTE}")


def export(build: BuildDir, dest: str, opts: ExportOptions, rows_per_shard: int = ROWS_PER_SHARD,
           relative_sources: bool = False) -> ExportResult:
    """relative_sources: `path` and `source_uri` relative to the folder holding the build's local inputs
    (`relative_source_columns`), for a copy published away from this machine (`vdata push`)."""
    if build.level == "haystack_items":
        return export_haystack_items(build, dest, opts, rows_per_shard)
    table = build.read_table()
    splits = build.row_splits()
    if opts.tasks and R.TASK in table.column_names:
        keep = [t in opts.tasks for t in table.column(R.TASK).to_pylist()]
        table = table.filter(pa.array(keep))
        splits = [s for s, k in zip(splits, keep) if k]
    subsets = row_subsets(table, build.level)
    media_cols = [c for c in MEDIA_COLUMNS if c in table.column_names]   # all the media planner looks at
    items = [Item(row, s) for row, s in zip(table_rows(table.select(media_cols)), subsets)]
    for i, it in enumerate(items):   # clip rows have no sample id: name them for messages
        it.row.setdefault(R.SAMPLE_ID, it.row.get(R.CLIP_ID) or f"row{i}")
        it.row["_index"] = i
    prepared, planner, skipped = prepare(build, dest, opts, items=items)
    index = [p.item.row["_index"] for p in prepared]
    out = table.take(pa.array(index, pa.int64()))
    out = out.append_column(pa.field("video", pa.string()), pa.array([planner.ref(p.visual, planner.dest) for p in prepared], pa.string()))
    out = out.append_column(pa.field("video_origin_s", pa.float64()), pa.array([p.visual.origin_s for p in prepared], pa.float64()))
    if build.level in ("samples", "haystack"):
        out = rendered_text_columns(out, [p.tf for p in prepared])
    kept_subsets = [subsets[i] for i in index]
    result = ExportResult("parquet", planner.dest, media=planner.stats, skipped=dict(skipped))
    result.notes.append("times are canonical float seconds (video-absolute), in the texts too; question_text, "
                        "answer_text, options_text: rendered by --time, relative to `video`")
    kept_splits = [splits[i] for i in index]
    if relative_sources:
        out = relative_source_columns(out, _input_root(table))
        out = relative_clip_paths(out, build.path)
        result.notes.append("path, source_uri: relative to the folder of the build's local inputs, clip_path to the "
                            "build's folder (no local path of this machine is published)")
    # an absolute video path (--media none) resolves wherever the export is loaded: typed datasets.Video()
    # where that decodes (hf_local.video_feature_unavailable); a path relative to the export stays a string
    write_subsets(result, planner.dest, out, kept_subsets, rows_per_shard, kept_splits,
                  video_columns=("video",) if opts.media == "none" else ())
    if build.clips_files:
        write_clips_subset(result, build, planner.dest, out, kept_splits, rows_per_shard,
                           _input_root(table) if relative_sources else None)
    return result


# The text a model reads, beside the canonical text (outside check h26 F10): its time placeholders rendered by
# the export's `--time` format (default seconds), times relative to the row's `video`.
RENDERED_COLUMNS = {R.QUESTION: "question_text", R.ANSWER: "answer_text", R.OPTIONS: "options_text"}


def rendered_text_columns(table: pa.Table, formats: list) -> pa.Table:
    """`table` with RENDERED_COLUMNS added: row i's question, answer and options rendered by `formats[i]` (the
    row's TimeFormat: its `video`'s origin and length), a source text's escaped braces restored."""
    from vdata.prompts import unescape_placeholders

    def render(text, tf):
        if text is None:
            return None
        try:
            return tf.render_text(text)
        except (ValueError, TypeError):   # a placeholder that names no time: as stored, braces restored
            return unescape_placeholders(text)

    for col, name in RENDERED_COLUMNS.items():
        if col not in table.column_names or name in table.column_names:
            continue
        values = table[col].to_pylist()
        if col == R.OPTIONS:
            typ, rendered = pa.list_(pa.string()), [None if v is None else [render(o, tf) for o in v]
                                                    for v, tf in zip(values, formats)]
        else:
            typ, rendered = pa.string(), [render(v, tf) for v, tf in zip(values, formats)]
        table = table.append_column(pa.field(name, typ), pa.array(rendered, typ))
    return table


def _local_path(value) -> str | None:
    """The local file of a `path` / `source_uri` value (a manifest row's `#N` cut off), None for a URL."""
    if not isinstance(value, str) or not value or "://" in value:
        return None
    return value.split("#", 1)[0] if os.path.isabs(value.split("#", 1)[0]) else None


def _input_root(table: pa.Table) -> str | None:
    """The folder that holds every local input of the rows (their `path` and `source_uri` files): their
    common folder, so a relative value names nothing above it (`lighthouse.mp4`, `day2/a.mp4`)."""
    files = [f for col in (R.PATH, R.SOURCE_URI) if col in table.column_names
             for f in map(_local_path, table.column(col).to_pylist()) if f]
    return os.path.commonpath([os.path.dirname(f) for f in files]) if files else None


def relative_source_columns(table: pa.Table, root: str | None) -> pa.Table:
    """`table` with its local absolute `path` / `source_uri` values relative to `root` (URLs and relative
    values stay as they are): a published copy names no folder of the builder's machine."""
    if root is None:
        return table
    for col in (R.PATH, R.SOURCE_URI):
        if col not in table.column_names:
            continue
        values = [os.path.relpath(v, root) if _local_path(v) else v for v in table.column(col).to_pylist()]
        i = table.column_names.index(col)
        table = table.set_column(i, table.schema.field(i), pa.array(values, pa.string()))
    return table


def relative_clip_paths(table: pa.Table, build_root: str) -> pa.Table:
    """`clip_path` (a clip file the shots stage wrote on this machine) relative to the build's folder, its
    file name where it lies elsewhere: the row's `video` is the published file, and a public copy names no
    folder of the builder's machine."""
    if R.CLIP_PATH not in table.column_names:
        return table
    root = os.path.realpath(build_root)

    def rel(v):
        if not _local_path(v):
            return v
        real = os.path.realpath(v)
        return os.path.relpath(real, root) if real.startswith(root + os.sep) else os.path.basename(v)

    i = table.column_names.index(R.CLIP_PATH)
    return table.set_column(i, table.schema.field(i), pa.array([rel(v) for v in table[R.CLIP_PATH].to_pylist()],
                                                               pa.string()))


def write_clips_subset(result: ExportResult, build: BuildDir, dest: str, samples: pa.Table, splits: list[str],
                       rows_per_shard: int, relative_to: str | None = None) -> None:
    """The `clips` config of a sample build: the frames of the exported samples' clips, once per clip (as
    in the build's clips table, R.CLIPS_TABLE), each clip in the split of its samples (splits are by video)."""
    split_of = dict(zip(samples[R.CLIP_ID].to_pylist(), splits))
    clips = build.clip_table([c for c in split_of if c is not None])
    if not clips.num_rows:
        return
    clips = relative_source_columns(clips, relative_to)
    write_subsets(result, dest, clips, [R.CLIPS_TABLE] * clips.num_rows, rows_per_shard,
                  [split_of[c] for c in clips[R.CLIP_ID].to_pylist()])
    result.rows.pop(R.CLIPS_TABLE)   # rows counts samples (records); the clips are their frames
    result.notes.append(f"frames: {clips.num_rows} clip(s), once each, in the `{R.CLIPS_TABLE}` config; a sample's "
                        f"frames are the `{R.CLIPS_TABLE}` row with its `{R.CLIP_ID}`")


def _binary(t: pa.DataType) -> bool:
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return True
    if pa.types.is_struct(t):
        return any(_binary(t.field(i).type) for i in range(t.num_fields))
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and _binary(t.value_type)


def shard_rows(table: pa.Table, rows_per_shard: int = ROWS_PER_SHARD) -> tuple[int, int]:
    """(rows per shard, rows per row group) for `table`: shards of MAX_SHARD_BYTES at most (and
    `rows_per_shard` rows), row groups of MAX_ROW_GROUP_BYTES (MEDIA_ROW_GROUP rows with binary columns)."""
    per_row = table.nbytes / table.num_rows if table.num_rows else 1.0
    shard = max(1, min(rows_per_shard, int(MAX_SHARD_BYTES // max(per_row, 1.0))))
    group = max(1, min(shard, int(MAX_ROW_GROUP_BYTES // max(per_row, 1.0))))
    if any(_binary(f.type) for f in table.schema):
        group = min(group, MEDIA_ROW_GROUP)
    return shard, group


def write_subsets(result: ExportResult, dest: str, out: pa.Table, subsets: list[str], rows_per_shard: int,
                  splits: list[str] | None = None, video_columns: tuple[str, ...] = ()) -> None:
    """`out` row i goes to subset `subsets[i]`, split `splits[i]` (default train):
    data/<subset>/<split>-*.parquet, plus the README `configs:` and `dataset_info:` (`frames` as
    images, see hf_local.py), added to `result.configs` / `result.dataset_info` (a second call adds
    its subsets to the README's)."""
    from .hf_local import dataset_info_yaml, hf_features

    splits = splits or ["train"] * out.num_rows
    configs: dict[str, dict[str, str]] = {}
    for subset in PARQUET_SUBSETS:
        if subset not in subsets:
            continue
        folder = os.path.join(dest, "data", subset)
        os.makedirs(folder, exist_ok=True)
        for old in os.listdir(folder):   # a re-export replaces the subset's shards
            if old.endswith(".parquet"):
                os.remove(os.path.join(folder, old))
        for split in SPLIT_NAMES:
            idx = [i for i, (s, sp) in enumerate(zip(subsets, splits)) if s == subset and sp == split]
            if not idx:
                continue
            part = out.take(pa.array(idx, pa.int64()))
            shard, group = shard_rows(part, rows_per_shard)
            n = max(1, math.ceil(part.num_rows / shard))
            for k in range(n):
                rel = f"data/{subset}/{split}-{k:05d}-of-{n:05d}.parquet"
                pq.write_table(part.slice(k * shard, shard), os.path.join(dest, rel), compression="zstd",
                               row_group_size=group)
                result.files.append(rel)
            result.rows[subset] = result.rows.get(subset, 0) + part.num_rows
            configs.setdefault(subset, {})[split] = f"data/{subset}/{split}-*.parquet"
    features = hf_features(out.schema, video_columns)
    result.configs += configs_yaml(configs)
    result.dataset_info += [dataset_info_yaml(name, features) for name in configs]
    write_readme_configs(dest, result.configs, dataset_info=result.dataset_info)
    if "README.md" not in result.files:
        result.files.append("README.md")


def export_haystack_items(build: BuildDir, dest: str, opts: ExportOptions, rows_per_shard: int) -> ExportResult:
    """A `vdata haystack` benchmark: its items pass through unchanged as the `haystack` subset, with a
    `video` column (its `video_path`, relative to the benchmark folder) and the videos placed alongside."""
    import shutil

    table = build.read_table()
    os.makedirs(dest, exist_ok=True)
    result = ExportResult("parquet", os.path.abspath(dest), skipped={})
    if "video_path" not in table.column_names:
        raise ValueError(f"{build.data_files[0]}: haystack items without a video_path column")
    paths = table.column("video_path").to_pylist()
    keep, placed = [], 0
    for i, rel in enumerate(paths):
        src = os.path.join(build.path, rel) if rel else None
        if not src or not os.path.isfile(src):
            result.skipped["missing_media"] = result.skipped.get("missing_media", 0) + 1
            continue
        keep.append(i)
        target = os.path.join(result.dest, rel)
        if opts.media != "none" and not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if opts.media == "copy":
                shutil.copy2(src, target)
            else:
                os.symlink(os.path.abspath(src), target)
            placed += 1
    out = table.take(pa.array(keep, pa.int64()))
    videos = [paths[i] if opts.media != "none" else os.path.abspath(os.path.join(build.path, paths[i])) for i in keep]
    out = out.append_column(pa.field("video", pa.string()), pa.array(videos, pa.string()))
    result.media = {"copied" if opts.media == "copy" else "linked": placed}
    # a benchmark: its questions are the `test` split (as its lmms-eval tasks' `test_split: test`)
    write_subsets(result, result.dest, out, ["haystack"] * out.num_rows, rows_per_shard, ["test"] * out.num_rows)
    return result
