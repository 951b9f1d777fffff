"""An lmms-eval task folder: one task per kind (mcq, open, grounding), a group, Parquet docs, videos.

    <dest>/<name>_mcq.yaml  <name>_open.yaml  <name>_grounding.yaml  <name>.yaml (group)
    <dest>/utils.py         doc_to_visual / doc_to_text / process_results (vdata.lmms_task_utils)
    <dest>/vdata_task.json  settings utils.py reads
    <dest>/data/{mcq,open,grounding}.parquet
    <dest>/videos/...

    lmms-eval --model ... --tasks vdata_<name> --include_path <dest>

Docs use Video-MME's columns — `videoID, question_id, duration` (short / medium / long), `domain,
sub_category, task_type, question, options` ("A. …"), `answer` (a letter for MCQ) — plus `video`
(path relative to the task folder, which `doc_to_visual` resolves to a local file), `duration_s`, `fps`
and `time_format`; grounding docs carry the ground-truth `spans` in seconds from the start of the video
the model sees, as the target text writes them, read back by utils.py (`as_written`: a span "0.2 - 4.7 seconds"
is 0.2 - 4.7, not the 0.16 - 4.66 it rounds; in a position format — relative, lita, grounded_videollm — a
2-s step of a 10-min video is "17 - 18" in `relative`, 6 s, and the best answer the format allows scores
IoU 1, not 1/3). A sample with a time the format cannot write (`vtg`
past 9999.9 s) is skipped as `time_out_of_range`. Locally, `dataset_path: parquet` with absolute `data_files`; for a Hub push the YAML
names the repo and `dataset_kwargs: {video: True, cache_dir: ...}` so lmms-eval downloads it and
extracts the video zip shards. Clips without a clip file are cut with ffmpeg. Captions are training
data, not an eval task here: they are skipped (counted as `not_evaluated`).
"""
from __future__ import annotations

import json
import os
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from vdata import lmms_task_utils
from vdata.schemas import records as R

from .base import ExportOptions, ExportResult, prepare, safe_name
from .source import subset_of
from .timefmt import names_points_only, placeholder_moments
from .dialog import (
    MCQ_INSTRUCTION,
    SampleError,
    check_mcq,
    cot_text,
    letter,
    lettered_options,
    question_text,
    spans_text,
)

# moment: a temporal task answered by moments, not spans (chapter_grounding's start): scored by the
# distance to the gold moment, where a span's IoU would score the asked-for answer 0
KINDS = ("mcq", "open", "grounding", "moment")
METRICS = {
    "mcq": [("accuracy", True)],
    "open": [("token_f1", True), ("exact_match", True)],
    "grounding": [("mean_iou", True), ("recall_at_iou_0.5", True)],
    "moment": [("within_3s", True), ("mean_abs_error_s", False)],
}
MAX_NEW_TOKENS = {"mcq": 16, "open": 256, "grounding": 64, "moment": 32}

DOC_SCHEMA = pa.schema([
    ("videoID", pa.string()), ("question_id", pa.string()), ("duration", pa.string()), ("domain", pa.string()),
    ("sub_category", pa.string()), ("task_type", pa.string()), ("question", pa.string()),
    ("options", pa.list_(pa.string())), ("answer", pa.string()), ("video", pa.string()),
    ("duration_s", pa.float64()), ("fps", pa.float64()), ("time_format", pa.string()),
    ("spans", pa.list_(pa.list_(pa.float64()))),
])


def duration_category(seconds: float | None) -> str:
    """Video-MME's buckets: short (< 2 min), medium (4-15 min), long (30-60 min); here split at 2 and 15 min."""
    if seconds is None:
        return "unknown"
    return "short" if seconds <= 120 else "medium" if seconds <= 900 else "long"


def kind_of(item) -> str | None:
    """mcq (every MCQ-like task), grounding (the temporal tasks: scored by the IoU of their span), moment
    (a temporal task whose answer is moments), open (open-ended QA); captioning tasks are training data,
    not evaluated here."""
    kind = {"mcq": "mcq", "grounding": "grounding", "open_qa": "open"}.get(subset_of(item.task, item.get(R.OPTIONS)))
    return "moment" if kind == "grounding" and names_points_only(item.get(R.ANSWER)) else kind


def task_name(name: str) -> str:
    return "vdata_" + re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")


def _q(s: str) -> str:
    return json.dumps(s)   # a JSON string is a valid double-quoted YAML scalar


def task_yaml(task: str, kind: str, data_file: str, hub_repo: str | None, cache_dir: str,
              hub_videos: str = "zip") -> str:
    if hub_repo:
        # video: True makes lmms-eval download the repo; zip shards are extracted into HF_HOME/<cache_dir>,
        # plain video files are reached through create_link (HF_HOME/<cache_dir> -> the snapshot).
        head = [f"dataset_path: {_q(hub_repo)}", "dataset_kwargs:", "  video: True", f"  cache_dir: {_q(cache_dir)}"]
        if hub_videos == "files":
            head.append("  create_link: True")
        head += ["  data_files:", f"    test: {_q(data_file)}"]
    else:
        head = ["dataset_path: parquet", "dataset_kwargs:", "  data_files:", f"    test: {_q(data_file)}"]
    post = MCQ_INSTRUCTION if kind == "mcq" else ""
    lines = head + [
        f"task: {_q(task)}",
        "test_split: test",
        "output_type: generate_until",
        "doc_to_visual: !function utils.doc_to_visual",
        f"doc_to_text: !function utils.doc_to_text_{kind}",
        "doc_to_target: !function utils.doc_to_target",
        f"process_results: !function utils.process_results_{kind}",
        "generation_kwargs:",
        f"  max_new_tokens: {MAX_NEW_TOKENS[kind]}",
        "  temperature: 0",
        "  top_p: 1.0",
        "  num_beams: 1",
        "  do_sample: false",
        "metric_list:",
    ]
    for metric, higher in METRICS[kind]:
        lines += [f"  - metric: {_q(metric)}", "    aggregation: mean", f"    higher_is_better: {str(higher).lower()}"]
    lines += ["lmms_eval_specific_kwargs:", "  default:", '    pre_prompt: ""', f"    post_prompt: {_q(post)}",
              "metadata:", "  version: 0.0", ""]
    return "\n".join(lines)


def as_written(tf, doc: dict, start: float, end: float | None = None):
    """The gold a scorer holds a reply to: a span (or, `end` None, a moment) as the target text writes it,
    read back by utils.py's own parser, so that a reply saying exactly what the target says scores full
    marks (outside check h26 F9: "0.2 - 4.7 seconds" was scored against 0.16 - 4.66, IoU 0.98). The
    rounding is the format's (a tenth of a second, a frame, a position): seconds from the visual's start."""
    args = (doc["time_format"], doc["duration_s"], doc["fps"])
    if end is None:
        t = lmms_task_utils.parse_point(tf.point(start), *args)
        return tf.local(start) if t is None else t
    span = lmms_task_utils.parse_span(tf.span(start, end), *args)
    return tf.grid_span(start, end) if span is None else span


def doc_for(p, kind: str, domain: str, ref: str, time_format: str) -> dict:
    item, tf, v = p.item, p.tf, p.visual
    if kind in ("grounding", "moment") and tf.frame_times is not None:
        # utils.py reads a reply's frame numbers back at the doc's one `fps`: a variable-rate video's frames
        # are not evenly timed, so the score would be of other frames
        raise SampleError("frames_on_variable_rate", f"{item.id}: frame numbers of a variable-frame-rate video "
                          "cannot be scored from one rate; export it with --time seconds")
    doc = {"videoID": v.video_id, "question_id": item.id, "duration": duration_category(v.duration_s),
           "domain": domain, "sub_category": item.get(R.QUESTION_TYPE, ""), "task_type": item.task,
           "video": ref, "duration_s": v.duration_s, "fps": v.fps, "time_format": time_format,
           "options": None, "spans": None}
    if kind == "mcq":
        options, idx = check_mcq(item)
        doc.update(question=tf.render_text(item.get(R.QUESTION)),
                   options=lettered_options([tf.render_text(o) for o in options]), answer=letter(idx))
        if not doc["question"]:
            raise SampleError("no_question", f"{item.id}: no question text")
    elif kind == "grounding":
        spans = item.get(R.ANSWER_SPANS)
        if not spans:
            raise SampleError("no_answer", f"{item.id}: grounding sample without answer_spans")
        doc.update(question=question_text(item, tf), answer=spans_text(spans, tf),
                   spans=[list(as_written(tf, doc, s["start_s"], s["end_s"])) for s in spans])
    elif kind == "moment":
        moments = placeholder_moments(item.get(R.ANSWER))
        doc.update(question=question_text(item, tf), answer=tf.render_text(item.get(R.ANSWER)),
                   spans=[[as_written(tf, doc, t)] * 2 for t in moments])
    else:
        answer = tf.render_text(item.get(R.ANSWER)) or (cot_text(item, tf) if item.task == "cot" else "")
        if not answer:
            raise SampleError("no_answer", f"{item.id}: no reference answer")
        q = tf.render_text(item.get(R.QUESTION))
        if not q:
            raise SampleError("no_question", f"{item.id}: no question text")
        doc.update(question=q, answer=answer)
    return doc


def export(build, dest: str, opts: ExportOptions, hub_repo: str | None = None, docs_dir: str = "data",
           hub_videos: str = "zip") -> ExportResult:
    """hub_repo: write YAMLs that load the docs from that Hub dataset (for `vdata push`), whose videos are
    zip shards (hub_videos="zip") or plain files ("files"); docs_dir: folder (inside dest) of the docs."""
    name = safe_name(opts.name or build.name)
    task = task_name(name)
    prepared, planner, skipped = prepare(build, dest, opts,
                                         accept=lambda it: None if kind_of(it) else f"not_evaluated:{it.task}")
    docs: dict[str, list] = {k: [] for k in KINDS}
    for p in prepared:
        kind = kind_of(p.item)
        try:
            docs[kind].append(doc_for(p, kind, name, planner.ref(p.visual, planner.dest), opts.time_format))
        except SampleError as e:
            skipped[e.reason] += 1
    result = ExportResult("lmms-eval", planner.dest, media=planner.stats, skipped=dict(skipped))
    os.makedirs(os.path.join(planner.dest, docs_dir), exist_ok=True)
    cache_dir = task
    tasks = []
    for kind in KINDS:
        if not docs[kind]:
            continue
        rel = f"{docs_dir}/{kind}.parquet"
        pq.write_table(pa.Table.from_pylist(docs[kind], schema=DOC_SCHEMA), os.path.join(planner.dest, rel),
                       compression="zstd")
        data_file = rel if hub_repo else os.path.join(planner.dest, rel)
        yname = f"{name}_{kind}.yaml"
        with open(os.path.join(planner.dest, yname), "w") as f:
            f.write(task_yaml(f"{task}_{kind}", kind, data_file, hub_repo, cache_dir, hub_videos))
        tasks.append(f"{task}_{kind}")
        result.files += [rel, yname]
        result.rows[kind] = len(docs[kind])
    with open(os.path.join(planner.dest, f"{name}.yaml"), "w") as f:
        f.write(f"group: {_q(task)}\ntask:\n" + "".join(f"  - {_q(t)}\n" for t in tasks))
    shutil.copyfile(lmms_task_utils.__file__, os.path.join(planner.dest, "utils.py"))
    with open(os.path.join(planner.dest, "vdata_task.json"), "w") as f:
        json.dump({"task": task, "cache_dir": cache_dir, "time_format": opts.time_format}, f, indent=1)
    result.files += [f"{name}.yaml", "utils.py", "vdata_task.json"]
    result.notes.append(f"lmms-eval --tasks {task} --include_path {planner.dest} ...")
    return result
