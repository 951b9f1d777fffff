"""Template tasks on timed annotations — no teacher; every time is an annotation's own time.

From `annotations.segments` (dense captions: ActivityNet Captions, YouCook2, TimeSuite's grounded sets):
- `segment_grounding`: a segment's text → its interval (moment retrieval, "when does ... happen?");
- `interval_caption`: an interval → its segment's text ("what happens from $start to $end?");
- `dense_from_segments`: all segments of the row with their times (dense video captioning).
From `annotations.chapters`, VidChapters-7M's three tasks (Yang et al., NeurIPS 2023; antoyang/VidChapters):
- `chapter_generation`: every chapter of the row, its interval and title (video chapter generation);
- `chapter_title`: the title of a chapter given its boundaries (chapter generation with GT boundaries);
- `chapter_grounding`: a chapter title → its start (video chapter grounding; `answer: span` for the interval).

Only items inside the row's [start_s, end_s] count, so on a clip row the tasks cover the clip and on the
`scope: video` row the whole video. Times enter texts as `{{t:..}}` / `{{span:..,..}}` placeholders and
`answer_spans` as video-absolute seconds; exporters render them per target model. A row with no usable
item of the kind is one `missing_annotation` reject per task; an item across the clip's end (a shot cut),
which no clip can use, is one `annotation_crosses_clip` reject, from the clip holding its start and the
first enabled task reading its kind. Items that would ask the same question (one text at several times,
several texts over one interval) make one sample whose answer holds them all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from vdata.schemas import records as R

from .annotated import (TemplateTask, annotation_evidence, crossing_rejects, fill_question, missing, phrase,
                        pick_items, question_templates, span_placeholder, t_placeholder, template_sample,
                        text_identity, time_values, timed_items, timed_lines)
from .clues import Clue
from .common import TaskFamily

if TYPE_CHECKING:
    from .common import StageView

TIMES = frozenset({"span", "start", "end"})
WIDE_INDEX = 1000   # sample index of the rejects of items left out for their width: apart from the samples' own


# Each sample row carries its row's annotations, so N items make N samples of N items each: memory grows
# with N squared (3,000 Ego4D narrations took 7.4 GB; outside check h24 F12). Past this many items a row's
# samples are drawn by the seeded RNG, and the rest counted (`items_not_drawn_<task>`).
MAX_ITEMS_PER_ROW = 256


class PerItemTask(TemplateTask):
    # samples per row; None: one per item inside the row, at most MAX_ITEMS_PER_ROW
    per_clip: int | None = Field(None, ge=1, le=MAX_ITEMS_PER_ROW)


class SegmentGroundingTask(PerItemTask):
    placeholders: ClassVar = frozenset({"text"})
    required: ClassVar = (frozenset({"text"}),)
    # a moment over (nearly) the whole video grounds nothing, as chapter_grounding's (h24 L3); null: keep all
    max_video_share: float | None = Field(0.9, gt=0, le=1)


class IntervalCaptionTask(PerItemTask):
    placeholders: ClassVar = TIMES
    required: ClassVar = (TIMES,)


class DenseFromSegmentsTask(TemplateTask):
    min_segments: int = Field(2, ge=1)
    # One answer lists every segment: dense-captioning sets have a handful per video (ActivityNet ~4,
    # YouCook2 ~8); Ego4D narrations or ASR lines read as segments give thousands, one 100k-character
    # target that no model's context holds (outside check h24 F1). Past this: a too_many_segments reject.
    max_segments: int | None = Field(64, ge=1)

    def needed(self) -> int:
        return self.min_segments


class ChapterGenerationTask(TemplateTask):
    min_chapters: int = Field(2, ge=1)

    def needed(self) -> int:
        return self.min_chapters


class ChapterTitleTask(PerItemTask):
    placeholders: ClassVar = TIMES
    required: ClassVar = (TIMES,)
    # VidChapters-7M keeps a video's chapters only where its description gives two or more
    # (antoyang/VidChapters collection/desc2chapters.py): one "chapter" over the whole video is no chaptering
    min_chapters: int = Field(2, ge=1)


class ChapterGroundingTask(PerItemTask):
    placeholders: ClassVar = frozenset({"title"})
    required: ClassVar = (frozenset({"title"}),)
    min_chapters: int = Field(2, ge=1)
    # a chapter over (nearly) the whole video grounds nothing: VidChapters' moment retrieval data drops
    # windows of 90 % of the video or more (preproc/chapters_to_vmr.py)
    max_video_share: float = Field(0.9, gt=0, le=1)
    # VidChapters-7M localizes a chapter's start ("a chapter starting point and not a start-end window",
    # paper Sec. 2); `span` answers with the whole chapter instead. `answer_spans` holds the chapter either way.
    answer: Literal["start", "span"] = "start"

    @model_validator(mode="after")
    def _asks_what_it_answers(self):
        """A question that asks for the chapter's end must get its span: with `answer: start` the sample
        would answer "When does it begin and end?" with one time."""
        asking_end = [(where, t) for where, templates in self.template_lists() for t in templates
                      if self.answer == "start" and _ASKS_END.search(t)]
        if asking_end:
            where, t = asking_end[0]
            raise ValueError(f"{where}: {t!r} asks for the chapter's end, and answer is start (its start time "
                             "only): set answer: span, or ask for the start")
        return self


_ASKS_END = re.compile(r"\b(end|ends|ending|finish|finishes|how long)\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Spec:
    """One template task: the annotation kind it reads and what its sample is."""
    task: str
    kind: str            # segments | chapters
    text_key: str        # the item's text field
    qtype: str
    shape: str           # grounding (text → interval) | caption (interval → text) | all (every item, timed)


def _plan_for(spec: _Spec):
    def plan(stage: StageView, row: dict, clues: list[Clue], tcfg: TemplateTask):
        made, asked = planned(stage, row, clues, tcfg)
        prompt_id = question_templates(stage, spec.task, tcfg, row, _shipped(tcfg, spec))[1]
        return made + crossing_rejects(stage, row, spec.task, prompt_id, spec.kind, spec.text_key, _READS), asked

    def planned(stage: StageView, row: dict, clues: list[Clue], tcfg: TemplateTask):
        answer = getattr(tcfg, "answer", None)   # chapter_grounding: its start (default) or its span
        templates, prompt_id = question_templates(stage, spec.task, tcfg, row, _shipped(tcfg, spec))
        items, total = timed_items(row, spec.kind, spec.text_key)
        if not items:
            return [missing(stage, row, spec.task, prompt_id, spec.kind, total)], []
        if spec.shape == "all":
            need = tcfg.needed()
            if len(items) < need:
                base = template_sample(stage, row, spec.task, 0, prompt_id, spec.qtype)
                return [stage.reject(base, "missing_annotation", f"{spec.task}: {len(items)} {spec.kind} inside the "
                                     f"row, {need} needed", task=spec.task, kind=spec.kind, inside=len(items))], []
            most = getattr(tcfg, "max_segments", None)
            if most is not None and len(items) > most:
                base = template_sample(stage, row, spec.task, 0, prompt_id, spec.qtype)
                return [stage.reject(base, "too_many_segments", f"{spec.task}: {len(items)} {spec.kind} inside the "
                                     f"row, more than {spec.task}.max_segments ({most}) in one answer", task=spec.task,
                                     kind=spec.kind, inside=len(items))], []
            out = template_sample(stage, row, spec.task, 0, prompt_id, spec.qtype)
            out[R.QUESTION] = fill_question(templates, spec.task, tcfg, row, 0)
            out[R.ANSWER] = timed_lines(items)
            out[R.ANSWER_SPANS] = [{"start_s": a, "end_s": b} for a, b, _ in items]
            out[R.EVIDENCE] = annotation_evidence(items)
            return [out], []
        if spec.kind == "chapters" and total < tcfg.min_chapters:
            base = template_sample(stage, row, spec.task, 0, prompt_id, spec.qtype)
            return [stage.reject(base, "missing_annotation", f"{spec.task}: the video has {total} chapter(s), "
                                 f"{tcfg.min_chapters} needed (one chapter is no chaptering)", task=spec.task,
                                 kind=spec.kind, inside=len(items))], []
        groups = same_question(items, spec.shape)
        made = []
        if share := getattr(tcfg, "max_video_share", None):
            duration = row.get(R.DURATION_S) or 0.0
            wide = [g for g in groups if duration and all(b - a >= share * duration for a, b, _ in g)]
            groups = [g for g in groups if g not in wide]
            if not groups:
                base = template_sample(stage, row, spec.task, 0, prompt_id, spec.qtype)
                return [stage.reject(base, "missing_annotation", f"{spec.task}: every {spec.kind[:-1]} covers "
                                     f"{share:.0%} of the video or more: nothing to ground", task=spec.task,
                                     kind=spec.kind, inside=len(items))], []
            for k, group in enumerate(wide):   # each one left out says so (outside check h20: it was silent)
                a, b, text = group[0]
                base = template_sample(stage, row, spec.task, WIDE_INDEX + k, prompt_id, spec.qtype)
                made.append(stage.reject(base, "covers_video", f"{spec.task}: the {spec.kind[:-1]} {text[:60]!r} "
                                         f"({a:g}-{b:g} s) covers {share:.0%} of the video or more: nothing to ground",
                                         task=spec.task, kind=spec.kind, start_s=a, end_s=b))
        if tcfg.per_clip is None and len(groups) > MAX_ITEMS_PER_ROW:
            stage.counters[f"items_not_drawn_{spec.task}"] += len(groups) - MAX_ITEMS_PER_ROW
        for index, group in pick_items(spec.task, tcfg, row, groups, tcfg.per_clip or MAX_ITEMS_PER_ROW):
            a, b, text = group[0]
            out = template_sample(stage, row, spec.task, index, prompt_id, spec.qtype)
            if spec.shape == "grounding":
                out[R.QUESTION] = fill_question(templates, spec.task, tcfg, row, index,
                                                **{spec.text_key: phrase(text)})
                out[R.ANSWER] = " and ".join(t_placeholder(i[0]) if answer == "start" else span_placeholder(i[0], i[1])
                                             for i in group)
            else:
                out[R.QUESTION] = fill_question(templates, spec.task, tcfg, row, index, **time_values(a, b))
                out[R.ANSWER] = joined_texts([i[2] for i in group])
            out[R.ANSWER_SPANS] = [{"start_s": i[0], "end_s": i[1]} for i in group]
            out[R.EVIDENCE] = annotation_evidence(group)
            made.append(out)
        return made, []

    return plan


def _shipped(tcfg: TemplateTask, spec: _Spec) -> str | None:
    """The shipped question list of the task: chapter_grounding's `answer: span` asks for a span."""
    return f"{spec.task}_span" if getattr(tcfg, "answer", None) == "span" else None


def same_question(items: list[tuple[float, float, str]], shape: str) -> list[list[tuple[float, float, str]]]:
    """The row's items grouped by the question they would make, in time order of each group's first item.

    Two items that ask the same question must not become two samples with different answers, each
    incomplete (QVHighlights gives one query several `relevant_windows`; Charades-STA and ActivityNet
    repeat a sentence at two times; YouCook2 has steps annotated over the same interval): a grounding
    question (the text) answers with every interval of its text, a caption question (the interval) with
    every text of its interval, each once. Items that ask nothing twice keep their own place, so their
    sample ids do not move."""
    groups: dict[object, list[tuple[float, float, str]]] = {}
    for a, b, text in items:
        span, same_text = (round(a, 3), round(b, 3)), text_identity(text)
        group = groups.setdefault(same_text if shape == "grounding" else span, [])
        # one answer says a span (or a text) once: "A test card." and "A test card" over 0-4 s gave
        # "{{span:0,4}} and {{span:0,4}}" (outside check h24 F5)
        if not any(((round(x, 3), round(y, 3)) if shape == "grounding" else text_identity(t)) ==
                   (span if shape == "grounding" else same_text) for x, y, t in group):
            group.append((a, b, text))
    return list(groups.values())


def joined_texts(texts: list[str]) -> str:
    """Several captions of one interval as one answer: sentences side by side, bare phrases with "; "."""
    distinct = list(dict.fromkeys(texts))
    if all(t.rstrip().endswith((".", "!", "?")) for t in distinct):
        return " ".join(distinct)
    return "; ".join(phrase(t) for t in distinct)


_READS: dict[str, str] = {}   # task -> the kind it reads (its first enabled reader writes a kind's crossing rejects)


def _family(config: type[TemplateTask], spec: _Spec) -> TaskFamily:
    _READS[spec.task] = spec.kind
    return TaskFamily(config, _plan_for(spec), prompts=("template_questions",))


SEGMENT_GROUNDING = _family(SegmentGroundingTask, _Spec("segment_grounding", "segments", "text", "temporal", "grounding"))
INTERVAL_CAPTION = _family(IntervalCaptionTask, _Spec("interval_caption", "segments", "text", "description", "caption"))
DENSE_FROM_SEGMENTS = _family(DenseFromSegmentsTask, _Spec("dense_from_segments", "segments", "text", "dense", "all"))
CHAPTER_GENERATION = _family(ChapterGenerationTask, _Spec("chapter_generation", "chapters", "title", "chapter", "all"))
CHAPTER_TITLE = _family(ChapterTitleTask, _Spec("chapter_title", "chapters", "title", "chapter", "caption"))
CHAPTER_GROUNDING = _family(ChapterGroundingTask, _Spec("chapter_grounding", "chapters", "title", "temporal",
                                                        "grounding"))
