"""Tasks over text rendered as video (`vdata text-videos`, `vdata/media/text_frames.py`), teacher-free.

- `text_qa` (T2Vid, Yin et al. 2024, arXiv 2411.19951): a long-text instruction record's own question and
  answer, kept as they are, on the video of its rendered text chunks. The QA comes from the row's
  `source_meta` (`question_key`, `answer_key`: manifest columns); a row without both is a reject
  `missing_annotation`.
- `before_after` (T3, Li et al. 2024, "Temporal Reasoning Transfer from Text to Video", arXiv 2410.06166):
  order questions over the row's `segments` (the chunks, or a caption sequence, in time order): two of
  them, shown in a seeded order, and the question which one comes first (or, by template, later). The
  item is a two-option MCQ whose answer is the earlier (later) text. Only texts said once in the row are
  asked about, and only pairs that do not overlap in time (which of two steps over the same seconds, or of
  a step done twice, "comes first" has no single answer). No such pair: a reject `missing_annotation`.

Samples are stored as `open_qa` and `mcq` rows (question types `long_text`, `order`), so every filter and
exporter that reads those takes them; rejects name the family. Every choice comes from the seeded RNG of `annotated.py` (task, seed, clip id), so a build is
byte-identical run to run.
"""
from __future__ import annotations

import hashlib
import itertools
import string
from typing import TYPE_CHECKING

from pydantic import Field

from vdata.prompts import escape_placeholders
from vdata.schemas import records as R

from .annotated import (EDGE_TOLERANCE_S, TemplateTask, annotation_evidence, missing, once, phrase, rng,
                        template_sample, timed_items)
from .clues import source_meta
from .common import Strict, TaskFamily

if TYPE_CHECKING:
    from .common import StageView

TEXT_QA_PROMPT_ID = "generate/text_qa@source"     # no template: the record's own question
# (template, which one is the answer): "first" asks for the earlier text, "last" for the later one
ORDER_TEMPLATES = {
    "first": ['Which comes first in the video: "$a" or "$b"?',
              'Which of these is shown earlier: "$a" or "$b"?'],
    "last": ['Which comes later in the video: "$a" or "$b"?',
             'Which of these is shown after the other: "$a" or "$b"?'],
}


class TextQATask(Strict):
    question_key: str = "question"
    answer_key: str = "answer"
    question_type: str = "long_text"


def _text(value) -> str:
    """A manifest's text as a sample stores it: spaces collapsed, a "{{" in it no time placeholder."""
    return escape_placeholders(" ".join(str(value).split())) if value is not None else ""


def _plan_text_qa(stage: StageView, row: dict, clues, tcfg: TextQATask):
    task = "text_qa"
    meta = source_meta(row)
    question, answer = _text(meta.get(tcfg.question_key)), _text(meta.get(tcfg.answer_key))
    base = template_sample(stage, row, task, 0, TEXT_QA_PROMPT_ID, tcfg.question_type)
    if not question or not answer:
        absent = [k for k, v in ((tcfg.question_key, question), (tcfg.answer_key, answer)) if not v]
        return [stage.reject(base, "missing_annotation", f"text_qa: the row has no {' / '.join(absent)}",
                             task=task, kind="qa")], []
    items, _ = timed_items(row, "segments", "text")
    base[R.TASK] = "open_qa"   # stored as open QA, so every exporter that reads open QA takes it
    base[R.QUESTION] = question
    base[R.ANSWER] = answer
    base[R.EVIDENCE] = annotation_evidence(items) if items else \
        {"captions": [], "frame_timestamps_s": [], "transcript_spans": []}
    return [base], []


class BeforeAfterTask(TemplateTask):
    per_clip: int = Field(2, ge=1, le=16)          # questions per row, each on a different pair
    ask: str = Field("both", pattern="^(first|last|both)$")
    question_type: str = "order"
    placeholders = frozenset({"a", "b"})
    required = (frozenset({"a"}), frozenset({"b"}))


def _order_templates(tcfg: BeforeAfterTask) -> tuple[dict[str, list[str]], str]:
    if tcfg.templates:   # configured wording asks for the earlier text
        digest = hashlib.sha256("\n".join(tcfg.templates).encode()).hexdigest()[:12]
        return {"first": list(tcfg.templates)}, f"generate/before_after@config:{digest}"
    asks = ("first", "last") if tcfg.ask == "both" else (tcfg.ask,)
    return {a: ORDER_TEMPLATES[a] for a in asks}, "generate/before_after@builtin:v1"


def _plan_before_after(stage: StageView, row: dict, clues, tcfg: BeforeAfterTask):
    task = "before_after"
    templates, prompt_id = _order_templates(tcfg)
    items, total = timed_items(row, "segments", "text")
    distinct = once(items)
    # a pair is asked only where its order is plain: the earlier item ends before the later one starts
    pairs = [(i, j) for i, j in itertools.combinations(range(len(distinct)), 2)
             if distinct[i][1] <= distinct[j][0] + EDGE_TOLERANCE_S]
    if not pairs:
        return [missing(stage, row, task, prompt_id, "segments (two, told apart once each, one after the other)",
                        total)], []
    draw = rng(task, tcfg, row, "pairs")
    chosen = sorted(draw.sample(pairs, min(tcfg.per_clip, len(pairs))))
    out = []
    for i, j in chosen:
        earlier, later = distinct[i], distinct[j]
        pick = rng(task, tcfg, row, "ask", i, j)
        ask = sorted(templates)[pick.randrange(len(templates))]
        wording = templates[ask][pick.randrange(len(templates[ask]))]
        shown = [earlier, later]
        pick.shuffle(shown)
        answer = earlier if ask == "first" else later
        base = template_sample(stage, row, task, i * len(distinct) + j, prompt_id, tcfg.question_type)
        base[R.TASK] = "mcq"   # stored as an MCQ (like event_order), so MCQ filters and exporters take it
        base[R.QUESTION] = string.Template(wording).safe_substitute(a=phrase(shown[0][2]),
                                                                    b=phrase(shown[1][2]))
        base[R.OPTIONS] = [phrase(s[2]) for s in shown]
        base[R.ANSWER_INDEX] = shown.index(answer)
        base[R.ANSWER] = phrase(answer[2])
        base[R.EVIDENCE] = annotation_evidence([earlier, later])
        out.append(base)
    return out, []


TEXT_QA = TaskFamily(TextQATask, _plan_text_qa)
BEFORE_AFTER = TaskFamily(BeforeAfterTask, _plan_before_after)
