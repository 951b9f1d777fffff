"""VLMEvalKit TSV, one per kind (mcq, open, grounding), videos at `<dest>/video/<id>.mp4`.

Columns: `index, video` (the file stem: clip id or video id), `video_path` (`./video/<id>.mp4`),
`question, candidates` (the stringified list of lettered options, `"['A. …', 'B. …']"`; `[]` for open
questions), `answer` (a letter for MCQ, the reference text otherwise), and the category columns
`task_type, sub_category, duration, domain` (as in VLMEvalKit's Video-MME TSV). Clips without a clip file
are cut with ffmpeg; videos that are not .mp4 are converted, since VLMEvalKit looks for `<id>.mp4`.
`--media none` is treated as `link` for the same reason. Questions are flattened to one line.
"""
from __future__ import annotations

import csv
import os
from dataclasses import replace

from vdata.schemas import records as R

from .base import ExportOptions, ExportResult, prepare, safe_name
from .dialog import SampleError, check_mcq, cot_text, letter, lettered_options, question_text, spans_text
from .lmms_eval import KINDS, duration_category, kind_of

COLUMNS = ["index", "video", "video_path", "question", "candidates", "answer", "task_type", "sub_category",
           "duration", "domain"]


def _one_line(s: str) -> str:
    return " ".join(s.split())


def export(build, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    notes = []
    if opts.media == "none":
        opts = replace(opts, media="link")
        notes.append("VLMEvalKit reads <root>/video/<id>.mp4: --media none was treated as link")
    prepared, planner, skipped = prepare(build, dest, opts, folder="video", flat=True, force_mp4=True,
                                         accept=lambda it: None if kind_of(it) else f"not_evaluated:{it.task}")
    rows: dict[str, list] = {k: [] for k in KINDS}
    for p in prepared:
        kind = kind_of(p.item)
        item, tf = p.item, p.tf
        try:
            if kind == "mcq":
                options, idx = check_mcq(item)
                question = tf.render_text(item.get(R.QUESTION))
                candidates = repr(lettered_options([tf.render_text(o) for o in options]))
                answer = letter(idx)
            elif kind == "grounding":
                spans = item.get(R.ANSWER_SPANS)
                if not spans:
                    raise SampleError("no_answer", f"{item.id}: grounding sample without answer_spans")
                question, candidates, answer = question_text(item, tf), "[]", spans_text(spans, tf)
            elif kind == "moment":   # the answer's own moments, as the question asks for them
                question, candidates, answer = question_text(item, tf), "[]", tf.render_text(item.get(R.ANSWER))
            else:
                question, candidates = tf.render_text(item.get(R.QUESTION)), "[]"
                answer = tf.render_text(item.get(R.ANSWER)) or (cot_text(item, tf) if item.task == "cot" else "")
            if not question or not answer:
                raise SampleError("no_question" if not question else "no_answer", f"{item.id}: empty text")
        except SampleError as e:
            skipped[e.reason] += 1
            continue
        stem = p.visual.stem
        rows[kind].append({"video": stem, "video_path": f"./video/{stem}.mp4", "question": _one_line(question),
                           "candidates": candidates, "answer": _one_line(answer), "task_type": item.task,
                           "sub_category": item.get(R.QUESTION_TYPE, ""),
                           "duration": duration_category(p.visual.duration_s), "domain": name})
    result = ExportResult("vlmevalkit", planner.dest, media=planner.stats, skipped=dict(skipped), notes=notes)
    for kind in KINDS:
        if not rows[kind]:
            continue
        fname = f"{name}_{kind}.tsv"
        with open(os.path.join(planner.dest, fname), "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
            w.writeheader()
            for i, r in enumerate(rows[kind]):
                w.writerow({"index": i, **r})
        result.files.append(fname)
        result.rows[fname] = len(rows[kind])
    return result
