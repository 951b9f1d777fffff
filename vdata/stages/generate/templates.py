"""label_mcq: a video's labels → multiple-choice questions by template, distractors drawn from the label
vocabulary: MVBench's static-to-dynamic construction (Li et al., CVPR 2024; OpenGVLab/Ask-Anything
video_chat2/MVBENCH.md: "automatically transform public video annotations into multiple-choice QA", with
candidates from the dataset's own labels). No teacher. The release layout (per-task JSON of question,
candidates, answer, start/end for clip tasks, as the mvbench.ipynb loader reads it) is the exporter's job.

Per row: each label in `annotations.labels` (all of them, at most 16; or `per_clip`, seeded) gives one MCQ
whose options are the label and `num_options − 1` other vocabulary labels (never another label of the same row, so a
multi-label video has exactly one right option). The correct position rotates like `mcq`'s:
`(hash(seed, clip) + j) mod k` for the row's j-th MCQ, uniform over the dataset. A label missing from the
vocabulary, a row with no label, or a vocabulary too small for the options are rejects with reasons. A label
that the row's segments place in time (Kinetics' clip span on the untrimmed video, ActivityNet's instances)
is asked over that span only (the sample's start / end; MVBench's `bound` tasks), or rejected on a clip
that does not show it.
The vocabulary is the config's (`vocabulary`, a list or a file; `vocabulary_by_dataset`), else the labels
the row itself lists under `source_meta[vocabulary_key]` (a manifest column with each item's candidates).
The question comes from the task's templates (shipped, `templates`, or per dataset by
`source_meta[dataset_key]`, whose value also becomes the sample's question type: MVBench's sub-task).
"""
from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING

from pydantic import Field, ValidationInfo, field_validator, model_validator

from vdata.prompts import escape_placeholders
from vdata.schemas import records as R
from vdata.schemas.annotations import label_key, read_label_file
from vdata.schemas.config import config_file

from .annotated import (EDGE_TOLERANCE_S, TEMPLATE_PROMPT, TemplateTask, annotations, dataset_of, fill_question,
                        interval, pick_items, question_templates, rng, template_sample)
from .clues import Clue, source_meta
from .common import TaskFamily, make_sample_id, parse_lines, stable_hash

if TYPE_CHECKING:
    from .common import StageView

Vocabulary = list[str] | str   # the labels, or a file with one label per line


MAX_LABEL_MCQS = 16   # a row's MCQs when per_clip is None: every label of a video, but not hundreds of tags


class LabelMCQTask(TemplateTask):
    num_options: int = Field(4, ge=2, le=8)
    vocabulary: Vocabulary | None = None
    vocabulary_by_dataset: dict[str, Vocabulary] = Field(default_factory=dict)   # by source_meta[dataset_key]
    vocabulary_key: str = "vocabulary"             # neither configured: the row's source_meta[vocabulary_key] list
    # MCQs per row, each on a different label. None (default): one per label, at most MAX_LABEL_MCQS (a
    # multi-label video asked about one label lost the others without a word, the docs said "one per item")
    per_clip: int | None = Field(None, ge=1, le=16)
    question_type: str = "label"                   # when the row names no dataset
    open_form: bool = False                        # also store each MCQ as an open-ended sample

    @field_validator("vocabulary", mode="after")
    @classmethod
    def _file_exists(cls, value, info: ValidationInfo):
        return _checked(value, "vocabulary", info)

    @field_validator("vocabulary_by_dataset", mode="after")
    @classmethod
    def _files_exist(cls, value, info: ValidationInfo):
        return {k: _checked(v, f"vocabulary_by_dataset.{k}", info) for k, v in value.items()}

    @model_validator(mode="after")
    def _options_fit_the_vocabulary(self):
        """A vocabulary with fewer labels than `num_options` makes every item a too_few_distractors reject: said
        when the config is read, not after a build (outside check h20: a 3-label vocabulary with 4 options)."""
        named = [("vocabulary", self.vocabulary)] + [(f"vocabulary_by_dataset.{k}", v)
                                                     for k, v in self.vocabulary_by_dataset.items()]
        for where, source in named:
            if source is None:
                continue
            if isinstance(source, str):
                try:
                    source = read_label_file(source)
                except ValueError as e:
                    raise ValueError(f"{where}: {e}") from None
            n = len(_distinct(source))
            if n < self.num_options:
                raise ValueError(f"{where}: {n} label(s), fewer than num_options {self.num_options} (the answer and "
                                 f"{self.num_options - 1} distractors): every item would be rejected too_few_distractors")
        return self


def _checked(value, where: str, info: ValidationInfo):
    """A list as given; a file (beside the config when relative) as its absolute path, which must exist."""
    if isinstance(value, str):
        path = config_file(value, info)
        if not os.path.isfile(path):
            raise ValueError(f"{where}: no such file {value!r}")
        return path
    if isinstance(value, list) and not any(str(v).strip() for v in value):
        raise ValueError(f"{where}: empty")
    return value


def _norm(label: str) -> str:
    # as the annotations stage compares labels: "Test_Pattern" and "test pattern" are one class, never an
    # answer and its own distractor (outside check h23)
    return label_key(str(label))


def vocabulary(stage: StageView, tcfg: LabelMCQTask, row: dict, dataset: str | None) -> list[str]:
    """The labels (first spelling of each, in the given order): the dataset's, the config's, else the row's
    own `source_meta[vocabulary_key]` list. Configured ones are read once per worker."""
    source = tcfg.vocabulary_by_dataset.get(dataset, tcfg.vocabulary) if dataset is not None else tcfg.vocabulary
    if source is None:
        own = source_meta(row).get(tcfg.vocabulary_key)
        if isinstance(own, str):
            try:
                own = json.loads(own)
            except ValueError:
                own = None
        return _distinct(own if isinstance(own, list) else [])
    cache = stage.__dict__.setdefault("_label_vocabularies", {})
    key = source if isinstance(source, str) else tuple(source)
    if key not in cache:
        lines = source
        if isinstance(source, str):
            lines = read_label_file(source)   # as annotations.label_vocabulary reads it: one file serves both
        cache[key] = _distinct(lines)
    return cache[key]


def _distinct(labels: list) -> list[str]:
    seen: dict[str, str] = {}
    for label in labels:
        text = " ".join(str(label).split())
        if text:
            seen.setdefault(_norm(text), text)
    return list(seen.values())


SPAN_REJECTED = "span_rejected"   # the source ties the label to a span that the annotations stage rejected


def _source_ties_to_a_span(row: dict, label: str) -> bool:
    """Whether the input gave the label a span (a Kinetics clip in its untrimmed video, an ActivityNet
    instance) among its raw segments: once that span is rejected (past the video's end, inverted), the
    label is of no known part of the video, never of the whole (outside check h24 F15)."""
    raw = source_meta(row).get("segments")
    items = raw if isinstance(raw, list) else []
    return any(isinstance(i, dict) and _norm(str(i.get("text") or i.get("label") or "")) == _norm(label) for i in items)


def where_label_holds(row: dict, label: str) -> tuple[float, float] | str | None:
    """The part of the row a label is true of: where the row's segments named by the label lie (their hull,
    inside the row), as an untrimmed video carries its Kinetics clip or its ActivityNet instances; the whole
    row where no segment names the label (a label of the whole video); None where every such segment lies
    outside the row (a clip that does not show the labelled action); SPAN_REJECTED where the input named
    its span and that span did not pass the annotations stage."""
    start, end = interval(row)
    named = [(float(s["start_s"]), float(s["end_s"])) for s in (annotations(row).get("segments") or [])
             if s and s.get("start_s") is not None and s.get("end_s") is not None
             and _norm(s.get("text") or "") == _norm(label)]
    if not named:
        return SPAN_REJECTED if _source_ties_to_a_span(row, label) else (start, end)
    inside = [(max(a, start), min(b, end)) for a, b in named if min(b, end) - max(a, start) > EDGE_TOLERANCE_S]
    if not inside:
        return None
    a, b = min(a for a, _ in inside), max(b for _, b in inside)
    return (start, end) if a - start <= EDGE_TOLERANCE_S and end - b <= EDGE_TOLERANCE_S else (a, b)


def bind(sample: dict, row: dict, start: float, end: float) -> None:
    """Make the sample a clip sample of [start, end] of the row's video: its own clip id (named as the shots
    stage names clips, by first and end frame), so that exports cut or bound exactly that span."""
    fps = row.get(R.FPS)
    first, last = ((round(start * fps), round(end * fps)) if fps else (round(start * 1000), round(end * 1000)))
    sample[R.CLIP_ID] = f"{row[R.VIDEO_ID]}_{first:07d}_{last:07d}"
    sample[R.START_S], sample[R.END_S] = start, end
    sample[R.SAMPLE_SCOPE] = R.SCOPE_CLIP
    if R.CLIP_DURATION_S in sample:
        sample[R.CLIP_DURATION_S] = round(end - start, 6)
    frames = {R.START_FRAME: first, R.END_FRAME: last} if fps else {R.START_FRAME: None, R.END_FRAME: None}
    for column, value in {**frames, R.CLIP_PATH: None, R.CLIP_INDEX: None}.items():   # no clip file or shot of its own
        if column in sample:
            sample[column] = value


def answer_position(tcfg: LabelMCQTask, clip_id: str, j: int) -> int:
    return (stable_hash("label_mcq-position", tcfg.seed, clip_id) + j) % tcfg.num_options


def _plan(stage: StageView, row: dict, clues: list[Clue], tcfg: LabelMCQTask):
    task = "label_mcq"
    templates, prompt_id = question_templates(stage, task, tcfg, row)
    dataset = dataset_of(row, tcfg)
    qtype = dataset or tcfg.question_type
    labels = list(dict.fromkeys(" ".join(str(x).split()) for x in (annotations(row).get("labels") or [])))
    labels = [x for x in labels if x]
    if not labels:
        base = template_sample(stage, row, task, 0, prompt_id, qtype)
        return [stage.reject(base, "missing_annotation", "label_mcq: the video has no labels", task=task,
                             kind="labels")], []
    vocab = vocabulary(stage, tcfg, row, dataset)
    if not vocab:
        base = template_sample(stage, row, task, 0, prompt_id, qtype)
        return [stage.reject(base, "missing_annotation", "label_mcq: no label vocabulary (configure `vocabulary` or "
                             f"give the row a source_meta {tcfg.vocabulary_key!r} list)", task=task,
                             kind="vocabulary")], []
    canonical = {_norm(v): v for v in vocab}
    row_labels = {_norm(x) for x in labels}
    pool = [v for v in vocab if _norm(v) not in row_labels]
    out: list = []
    made = 0
    for index, label in pick_items(task, tcfg, row, labels, tcfg.per_clip or MAX_LABEL_MCQS):
        base = template_sample(stage, row, task, index, prompt_id, qtype)
        if _norm(label) not in canonical:
            out.append(stage.reject(base, "label_not_in_vocabulary", f"label_mcq: label {label!r} is not in the "
                                    f"vocabulary ({len(vocab)} labels" + (f" of dataset {dataset!r})" if dataset else ")"),
                                    task=task, label=label, dataset=dataset))
            continue
        k = tcfg.num_options
        if len(pool) < k - 1:
            out.append(stage.reject(base, "too_few_distractors", f"label_mcq: the vocabulary has {len(pool)} other "
                                    f"label(s), {k - 1} distractors needed", task=task, label=label, vocabulary=len(vocab)))
            continue
        answer = canonical[_norm(label)]
        where = where_label_holds(row, label)
        if where == SPAN_REJECTED:
            out.append(stage.reject(base, "label_span_invalid", f"label_mcq: label {label!r} belongs to a span of the "
                                    "video that the annotations stage rejected (see its reject): asked over the whole "
                                    "video, its answer may not be shown", task=task, label=label, kind="segments"))
            continue
        if where is None:
            out.append(stage.reject(base, "missing_annotation", f"label_mcq: label {label!r} is annotated on "
                                    f"segments outside [{row[R.START_S]:g}, {row[R.END_S]:g}] s", task=task,
                                    label=label, kind="segments"))
            continue
        if where != interval(row):   # shown only where the label holds (MVBench's bound tasks: start / end)
            bind(base, row, *where)
        options = rng(task, tcfg, row, "distractors", answer).sample(pool, k - 1)
        pos = answer_position(tcfg, row[R.CLIP_ID], made)
        options.insert(pos, answer)
        made += 1
        base[R.QUESTION] = fill_question(templates, task, tcfg, row, index)
        # labels are the dataset's text: a "{{" in one is no time placeholder (escape_placeholders)
        base[R.ANSWER] = escape_placeholders(answer)
        base[R.OPTIONS] = [escape_placeholders(o) for o in options]
        base[R.ANSWER_INDEX] = pos
        base[R.EVIDENCE] = {"captions": [f"label: {base[R.ANSWER]}"], "frame_timestamps_s": [],
                            "transcript_spans": []}
        out.append(base)
        if tcfg.open_form:
            twin = dict(base)
            twin[R.SAMPLE_ID] = make_sample_id(row[R.CLIP_ID], "label_mcq_open", index, prompt_id)
            twin[R.TASK] = "open_qa"
            twin[R.OPTIONS] = twin[R.ANSWER_INDEX] = None
            # asked without options ("Which option matches ..." with none shown is ill-posed): the shipped
            # `label_mcq_open` wording, or the configured templates that name no option
            twin[R.QUESTION] = fill_question(open_templates(stage, tcfg, row, templates), "label_mcq_open", tcfg, row,
                                             index)
            out.append(twin)
    return out, []


_ASKS_FOR_OPTIONS = re.compile(r"\b(options?|choices?|the following|below|listed)\b", re.IGNORECASE)


def open_templates(stage: StageView, tcfg: LabelMCQTask, row: dict, templates: list[str]) -> list[str]:
    """The questions of a label MCQ's open-ended twin: the MCQ's own templates that name no option (a
    configured list), else the shipped `label_mcq_open` lines."""
    if tcfg.templates or tcfg.templates_by_dataset:
        if own := [t for t in templates if not _ASKS_FOR_OPTIONS.search(t)]:
            return own
    shipped = parse_lines(stage.prompts[TEMPLATE_PROMPT].text)   # (a pinned v1/v2 list has no label_mcq_open)
    return shipped.get("label_mcq_open") or [t for t in shipped.get("label_mcq", []) if not _ASKS_FOR_OPTIONS.search(t)]


LABEL_MCQ = TaskFamily(LabelMCQTask, _plan, prompts=("template_questions",))
