"""Outputs rendered from the canonical items Parquet: the items/rejects writers, a summary table,
an lmms-eval task folder (YAML + utils.py + Video-MME-style Parquet + zip shards of the videos) and a
VLMEvalKit TSV (videos at <root>/video/<id>.mp4). Every reader streams record batches, so exports of
a long sweep stay in flat memory.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vdata import lmms_task_utils
from vdata.schemas import haystack as H
from vdata.schemas.records import REJECT_SCHEMA

LETTERS = lmms_task_utils.LETTERS


class ParquetRowWriter:
    """Buffer dict rows and write them as row groups of a fixed size, with an explicit schema."""

    def __init__(self, path: str, schema: pa.Schema, rows_per_group: int = 1000):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path, self.schema, self.rows_per_group = path, schema, rows_per_group
        self._writer = pq.ParquetWriter(path, schema)
        self._rows: list[dict] = []
        self.count = 0

    def add(self, rows: list[dict]) -> None:
        self._rows.extend(rows)
        self.count += len(rows)
        if len(self._rows) >= self.rows_per_group:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()


def items_writer(path: str, rows_per_group: int) -> ParquetRowWriter:
    return ParquetRowWriter(path, H.ITEM_SCHEMA, rows_per_group)


def rejects_writer(path: str) -> ParquetRowWriter:
    return ParquetRowWriter(path, REJECT_SCHEMA, 1000)


# Written last by a haystack build or rebuild, removed when one starts (vdata/exporters/source.py names it too).
DONE = "run_report.json"
INCOMPLETE = "this benchmark folder is incomplete (interrupted build); run `vdata haystack build` again"


def require_complete(items_path: str) -> None:
    """Refuse the items of a benchmark folder whose build never finished (no completion marker next to its
    manifest), and a file that is no readable Parquet, with what to do instead of Arrow's own words."""
    folder = os.path.dirname(os.path.abspath(items_path))
    if os.path.isfile(os.path.join(folder, "manifest.json")) and not os.path.isfile(os.path.join(folder, DONE)):
        raise ValueError(f"{folder}: {INCOMPLETE}")
    try:
        pq.ParquetFile(items_path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ValueError(f"{items_path}: not a readable Parquet file ({e}); if it comes from a build, "
                         f"{INCOMPLETE}") from None


def iter_item_rows(items_path: str, columns: list[str] | None = None, batch_size: int = 1000):
    pf = pq.ParquetFile(items_path)
    for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
        yield from batch.to_pylist()


def length_label(length_s: float) -> str:
    return f"{length_s:g}s"


def task_name(name: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "haystack"


# --- summary ---

def write_summary(out_dir: str, items_path: str, skipped_cells, rejects: Counter) -> dict:
    """Items per task × length × needle type (unique items; rows with rotations alongside)."""
    items: Counter = Counter()
    rows: Counter = Counter()
    for r in iter_item_rows(items_path, [H.TASK, H.NEEDLE_TYPE, H.HAYSTACK_LENGTH_S, H.ROTATION]):
        key = (r[H.TASK], r[H.HAYSTACK_LENGTH_S], r[H.NEEDLE_TYPE])
        rows[key] += 1
        if r[H.ROTATION] == 0:
            items[key] += 1
    skipped: dict[str, int] = Counter(f"{c.task}/{c.needle_type}/n{c.needles_per_item}: {c.reason}" for c in skipped_cells)
    table = [{"task": t, "length_s": length, "needle_type": nt, "items": n, "questions": rows[(t, length, nt)]}
             for (t, length, nt), n in sorted(items.items())]
    summary = {"items": sum(items.values()), "questions": sum(rows.values()), "table": table,
               "skipped_cells": dict(sorted(skipped.items())), "rejected": dict(sorted(rejects.items()))}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(summary_markdown(summary))
    return summary


def summary_markdown(summary: dict) -> str:
    tasks = sorted({r["task"] for r in summary["table"]})
    lengths = sorted({r["length_s"] for r in summary["table"]})
    types = sorted({r["needle_type"] for r in summary["table"]})
    count = {(r["task"], r["length_s"], r["needle_type"]): r["items"] for r in summary["table"]}
    lines = [f"# Haystack benchmark: {summary['items']} items, {summary['questions']} questions", ""]
    header = ["task", "length"] + types + ["total"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for t in tasks:
        for length in lengths:
            cells = [count.get((t, length, nt), 0) for nt in types]
            lines.append("| " + " | ".join([t, length_label(length)] + [str(c) for c in cells] + [str(sum(cells))]) + " |")
    if summary["rejected"]:
        lines += ["", "Dropped by verification: " + ", ".join(f"{k}: {v}" for k, v in summary["rejected"].items())]
    if summary["skipped_cells"]:
        lines += ["", "Grid cells not built:"] + [f"- {k} (x{v})" for k, v in summary["skipped_cells"].items()]
    return "\n".join(lines) + "\n"


# --- lmms-eval ---

def media_id(r: dict) -> str:
    """The video's opaque file stem (videos/<media_id>.mp4): the lmms-eval `videoID`, the zip member and
    the VLMEvalKit `video`. Never the item id, which spells the task, length and depth."""
    return os.path.splitext(os.path.basename(r[H.VIDEO_PATH]))[0]


def mme_row(r: dict) -> dict:
    letters = LETTERS[:len(r[H.OPTIONS])]
    n = r[H.NEEDLES_PER_ITEM]
    return {
        H.MME_VIDEO_ID: media_id(r),
        H.MME_QUESTION_ID: r[H.QUESTION_ID],
        H.MME_DURATION: length_label(r[H.HAYSTACK_LENGTH_S]),
        H.MME_DOMAIN: r[H.NEEDLE_TYPE],
        H.MME_SUB_CATEGORY: f"{n} needle" + ("" if n == 1 else "s"),
        H.MME_TASK_TYPE: r[H.TASK],
        H.MME_QUESTION: r[H.QUESTION],
        H.MME_OPTIONS: [f"{letter}. {text}" for letter, text in zip(letters, r[H.OPTIONS])],
        H.MME_ANSWER: letters[r[H.ANSWER_INDEX]],
        H.ROTATION: r[H.ROTATION],
        H.ITEM_ID: r[H.ITEM_ID],
        H.HAYSTACK_LENGTH_S: r[H.HAYSTACK_LENGTH_S],
        H.OPEN_QUESTION: r[H.OPEN_QUESTION],
        H.OPEN_ANSWER: r[H.OPEN_ANSWER],
        H.ANSWER_LABELS: r[H.ANSWER_LABELS],
        H.ANSWER_START_S: r[H.ANSWER_START_S],
        H.ANSWER_END_S: r[H.ANSWER_END_S],
        H.VNBENCH_TYPE: r.get(H.VNBENCH_TYPE),
    }


_MCQ_YAML = """\
task: {task}
dataset_path: {dataset_path}
dataset_kwargs:
{dataset_kwargs}test_split: test
output_type: generate_until
doc_to_visual: !function utils.haystack_doc_to_visual
doc_to_text: !function utils.haystack_doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 16
  temperature: 0
  do_sample: false
process_results: !function utils.haystack_process_results
metric_list:
  - metric: haystack_accuracy
    aggregation: !function utils.haystack_aggregate_accuracy
    higher_is_better: true
  - metric: haystack_circular_accuracy
    aggregation: !function utils.haystack_aggregate_circular
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "{post}"
metadata:
  version: 0.0
  generator: vdata haystack
"""

_OPEN_YAML = """\
task: {task}_open
dataset_path: {dataset_path}
dataset_kwargs:
{dataset_kwargs}test_split: test
output_type: generate_until
process_docs: !function utils.haystack_process_docs_open
doc_to_visual: !function utils.haystack_doc_to_visual
doc_to_text: !function utils.haystack_doc_to_text_open
doc_to_target: !function utils.haystack_doc_to_target_open
generation_kwargs:
  max_new_tokens: 64
  temperature: 0
  do_sample: false
process_results: !function utils.haystack_process_results_open
metric_list:
  - metric: haystack_open_score
    aggregation: !function utils.haystack_aggregate_open
    higher_is_better: true
  - metric: haystack_localization_miou
    aggregation: !function utils.haystack_aggregate_miou
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: ""
metadata:
  version: 0.0
  generator: vdata haystack
"""


def write_lmms_eval(out_dir: str, name: str, items_path: str, videos_dir: str, shard_mb: int = 2000,
                    hub_repo: str | None = None) -> str:
    """The task folder: <task>.yaml (MCQ, circular), <task>_open.yaml, utils.py, vdata_task.json,
    data/test-00000-of-00001.parquet and <task>_videos_NNN.zip shards (each under shard_mb)."""
    task = task_name(name)
    folder = Path(out_dir) / "lmms_eval" / task
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "data").mkdir(parents=True)
    parquet = folder / "data" / "test-00000-of-00001.parquet"
    writer = ParquetRowWriter(str(parquet), H.LMMS_SCHEMA)
    video_ids: list[str] = []
    for r in iter_item_rows(items_path):
        writer.add([mme_row(r)])
        if r[H.ROTATION] == 0:
            video_ids.append(media_id(r))
    writer.close()
    _zip_shards(folder, task, videos_dir, video_ids, shard_mb * 1024 * 1024)
    shutil.copyfile(lmms_task_utils.__file__, folder / "utils.py")
    meta = {"task": task, "video_dirs": [os.path.abspath(videos_dir)],
            "cache_dir": f"vdata_haystack/{task}" if hub_repo else None}
    with open(folder / "vdata_task.json", "w") as f:
        json.dump(meta, f, indent=1)
    if hub_repo:
        dataset_path = hub_repo
        kwargs = f"  video: true\n  cache_dir: vdata_haystack/{task}\n"
    else:
        dataset_path = "parquet"
        kwargs = f"  data_files:\n    test: {json.dumps(str(parquet.resolve()))}\n"
    post = lmms_task_utils.MCQ_POST_PROMPT.replace('"', '\\"')
    (folder / f"{task}.yaml").write_text(_MCQ_YAML.format(task=task, dataset_path=dataset_path,
                                                          dataset_kwargs=kwargs, post=post))
    (folder / f"{task}_open.yaml").write_text(_OPEN_YAML.format(task=task, dataset_path=dataset_path,
                                                                dataset_kwargs=kwargs))
    return str(folder)


def _zip_shards(folder: Path, task: str, videos_dir: str, video_ids: list[str], limit_bytes: int) -> list[str]:
    """Videos stored (not deflated: mp4 is compressed already) into zip shards that each stay under
    the size limit. Never `name_1.tar, name_2.tar`: lmms-eval reads those as byte-parts of one archive."""
    shards: list[str] = []
    current, size = None, 0
    for vid in video_ids:
        src = os.path.join(videos_dir, f"{vid}.mp4")
        n = os.path.getsize(src)
        if current is None or (size + n > limit_bytes and size > 0):
            if current is not None:
                current.close()
            path = folder / f"{task}_videos_{len(shards):03d}.zip"
            current = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED)
            shards.append(str(path))
            size = 0
        current.write(src, arcname=f"{vid}.mp4")
        size += n
    if current is not None:
        current.close()
    return shards


# --- VLMEvalKit ---

def write_vlmevalkit(out_dir: str, name: str, items_path: str, videos_dir: str) -> str:
    """<out>/vlmevalkit/<name>.tsv, videos linked at <out>/vlmevalkit/video/<id>.mp4."""
    root = Path(out_dir) / "vlmevalkit"
    (root / "video").mkdir(parents=True, exist_ok=True)
    tsv = root / f"{task_name(name)}.tsv"
    with open(tsv, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(H.TSV_COLUMNS)
        for index, r in enumerate(iter_item_rows(items_path)):
            m = mme_row(r)
            vid = media_id(r)
            if r[H.ROTATION] == 0:
                _link(os.path.join(videos_dir, f"{vid}.mp4"), root / "video" / f"{vid}.mp4")
            w.writerow([index, vid, f"./video/{vid}.mp4", m[H.MME_DURATION], m[H.MME_DOMAIN], str(m[H.MME_OPTIONS]),
                        m[H.MME_SUB_CATEGORY], m[H.MME_TASK_TYPE], m[H.MME_QUESTION], m[H.MME_ANSWER],
                        r[H.ROTATION], r[H.ITEM_ID], r[H.HAYSTACK_LENGTH_S], r.get(H.VNBENCH_TYPE) or ""])
    return str(tsv)


def _link(src: str, dst: Path) -> None:
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)          # same file system: no copy
    except OSError:
        shutil.copyfile(src, dst)


def per_task_counts(items_path: str) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in iter_item_rows(items_path, [H.TASK, H.ROTATION]):
        if r[H.ROTATION] == 0:
            counts[r[H.TASK]] += 1
    return dict(counts)
