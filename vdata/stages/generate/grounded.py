"""Teacher tasks whose answer is text *and* a span of the video; the span is always clues' own times.

- `grounded_qa` (NExT-GQA, Xiao et al., CVPR 2024; Grounded-VideoLLM's grounded VideoQA): a question, its
  answer, and the supporting span. The request names one moment (a seeded pick among the timed clues) to
  ask about, so a row's questions spread over its moments; the supporting span is that moment's own span.
  The reply cites the timed clues that show the answer: a reply that does not cite the moment it was
  asked about is rejected `evidence_off_target` (its answer may be about something else); the other clues
  it cites are kept as evidence but never widen the span (a union of disjoint citations spanned most of
  the video). Its question and answer must match the moment better than every other timed clue
  (`moment_match`: `off_target` / `ambiguous_moment`), as a reasoning_localization's question and
  explanation must.
- `reasoning_localization` (LITA's Reasoning Temporal Localization, Huang et al., ECCV 2024): a question that
  needs reasoning to find a moment (it describes a need, a cause or a consequence instead of naming the
  event), answered by that moment's interval plus an explanation. The moment is chosen by the stage and
  the teacher writes the question and the explanation, so the interval is never a model number.

Moments are the row's timed clues with an extent (events, speech segments, clip captions and annotation
items at `scope: video`), inside the row (clues are clamped to it, see `clues.py`); a clue that covers the
whole row says nothing about *when* and is left out, and so is one the row's edge cut to less than 0.2 s
or to less than half of itself (speech running across a cut belongs to the other clip).
The answer text carries the span as a `{{span:a,b}}` placeholder (`answer_format`), `answer_spans` the
video-absolute seconds.
"""
from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from vdata.schemas import records as R

from .annotated import check_template, span_placeholder
from .clues import Clue, cited, clue_lines, cut_short, evidence, row_bounds
from .common import Pending, Strict, TaskFamily, id_list, stable_hash, strict_object, teacher_request, text_field
from .moment_match import rival_message, rival_moment

if TYPE_CHECKING:
    from .common import StageView

COVER_TOLERANCE_S = 0.05   # a clue within this of both row edges covers the whole row
_STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "is", "are", "was", "were", "be", "it", "that",
         "this", "with", "for", "as", "by", "when", "what", "which", "who", "how", "does", "do", "did", "video", "clip",
         "happen", "happens", "time", "moment", "someone", "says", "say", "because", "why", "there", "then"}


def _answer_format(value: str, needs: str) -> str:
    check_template(value, frozenset({needs, "span"}), (frozenset({needs}), frozenset({"span"})), "answer_format")
    return value


class GroundedQATask(Strict):
    per_clip: int = Field(1, ge=0, le=16)
    max_evidence: int = Field(3, ge=1, le=8)       # timed clues a reply may cite as evidence (the target among them)
    answer_format: str = "$answer ($span)"         # $answer, $span (rendered per export)

    @field_validator("answer_format")
    @classmethod
    def _fmt(cls, v):
        return _answer_format(v, "answer")


class ReasoningLocalizationTask(Strict):
    per_clip: int = Field(1, ge=0, le=16)
    answer_format: str = "$span $explanation"      # LITA answers: the interval, then why
    min_shared_words: int = Field(1, ge=0)         # content words the explanation must share with its moment

    @field_validator("answer_format")
    @classmethod
    def _fmt(cls, v):
        return _answer_format(v, "explanation")


def moments(row: dict, clues: list[Clue]) -> list[Clue]:
    """Timed clues with an extent that do not cover the whole row, in time order (`build_clues` has clamped
    them to the row); a clue the row's edge cuts short (`cut_short`) is no moment."""
    start, end = row_bounds(row)
    out = []
    for c in clues:
        if c.kind == "frame" or not c.timed or c.end_s is None or not c.end_s > c.start_s or cut_short(c):
            continue
        if c.start_s - start <= COVER_TOLERANCE_S and end - c.end_s <= COVER_TOLERANCE_S:
            continue
        out.append(c)
    return sorted(out, key=lambda c: (c.start_s, c.end_s, c.id))


def targets(task: str, row: dict, spans: list[Clue], n: int) -> list[Clue]:
    """`n` moments (at most all), from a seeded offset: a row's questions spread over its moments."""
    if not spans or not n:
        return []
    first = stable_hash(task, row[R.CLIP_ID]) % len(spans)
    return [spans[(first + j) % len(spans)] for j in range(min(n, len(spans)))]


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", (text or "").lower()) if w not in _STOP and len(w) > 1}


def union_span(clues: list[Clue]) -> tuple[float, float]:
    return min(float(c.start_s) for c in clues), max(float(c.end_s) for c in clues)


# --- grounded_qa

def _plan_grounded(stage: StageView, row: dict, clues: list[Clue], tcfg: GroundedQATask):
    spans = moments(row, clues)
    prompt = stage.prompts["grounded_qa"]
    clue_text = clue_lines(clues)
    ids = [c.id for c in spans]
    cfg = stage.config
    schema = strict_object({"question": text_field(cfg.max_question_chars), "answer": text_field(cfg.max_answer_chars),
                            "evidence": id_list(ids, tcfg.max_evidence)})
    pending = []
    for i, target in enumerate(targets("grounded_qa", row, spans, tcfg.per_clip)):
        text = prompt.render(clues=clue_text, target_text=target.line(), timed_ids=", ".join(ids))
        req = teacher_request(stage, prompt, text, clues, schema, "grounded_qa", ("grounded_qa", i, target.id, clue_text))
        pending.append(Pending("grounded_qa", i, "grounded", prompt, req, {"spans": spans, "target": target}))
    return [], pending


def _finish_grounded(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    tcfg: GroundedQATask = stage.config.tasks.grounded_qa
    question, answer = (reply.get("question") or "").strip(), (reply.get("answer") or "").strip()
    support = cited(reply, p.extra["spans"])
    if not question or not answer or not support:
        return [stage.reject(base, "bad_reply", "grounded_qa: needs a question, an answer and at least one timed "
                             "clue as evidence", reply=reply)]
    target: Clue = p.extra["target"]
    if target.id not in {c.id for c in support}:
        # the answer may be about another moment: its span would be a guess (the union of the cited clues
        # spanned most of the video when they were far apart)
        ids = ", ".join(c.id for c in support)
        return [stage.reject(base, "evidence_off_target", f"grounded_qa: the reply cites {ids} as evidence, "
                             f"not {target.id}, the moment it was asked about",
                             reply=reply, moment=target.text)]
    rival = rival_moment(f"{question} {answer}", target, clues)
    if rival is not None:   # the question and answer are about another moment (as much): the span would be wrong
        return [stage.reject(base, rival[0], rival_message("grounded_qa question and answer", target, rival),
                             reply=reply, moment=target.text, target=target.id, rival=rival[1].id,
                             rival_text=rival[1].text)]
    # the span is the moment's own; the other clues the reply cites are evidence only (they never widen it)
    a, b = float(target.start_s), float(target.end_s)
    base[R.QUESTION] = question
    base[R.ANSWER] = string.Template(tcfg.answer_format).substitute(answer=answer, span=span_placeholder(a, b))
    base[R.ANSWER_SPANS] = [{"start_s": a, "end_s": b}]
    base[R.EVIDENCE] = evidence(support)   # the target among them (checked above)
    return [base]


GROUNDED_QA = TaskFamily(GroundedQATask, _plan_grounded, _finish_grounded, prompts=("grounded_qa",),
                         needs_teacher=lambda tcfg: True, trim_at_cap=("answer",))


# --- reasoning_localization

def _plan_rtl(stage: StageView, row: dict, clues: list[Clue], tcfg: ReasoningLocalizationTask):
    spans = moments(row, clues)
    prompt = stage.prompts["reasoning_localization"]
    clue_text = clue_lines(clues)
    cfg = stage.config
    schema = strict_object({"question": text_field(cfg.max_question_chars),
                            "explanation": text_field(cfg.max_answer_chars)})
    pending = []
    for i, target in enumerate(targets("reasoning_localization", row, spans, tcfg.per_clip)):
        text = prompt.render(clues=clue_text, target_text=target.line())
        req = teacher_request(stage, prompt, text, clues, schema, "reasoning_localization",
                              ("reasoning_localization", i, target.id, clue_text))
        pending.append(Pending("reasoning_localization", i, "reasoning", prompt, req, {"target": target}))
    return [], pending


def _finish_rtl(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    tcfg: ReasoningLocalizationTask = stage.config.tasks.reasoning_localization
    target: Clue = p.extra["target"]
    question, why = (reply.get("question") or "").strip(), (reply.get("explanation") or "").strip()
    if not question or not why:
        return [stage.reject(base, "bad_reply", "reasoning_localization: empty question or explanation", reply=reply)]
    shared = content_words(why) & content_words(target.text)
    if len(shared) < tcfg.min_shared_words:
        # an explanation that names nothing of its moment does not explain why that moment answers
        return [stage.reject(base, "off_target", f"reasoning_localization: the explanation shares {len(shared)} "
                             f"content word(s) with its moment (min {tcfg.min_shared_words})",
                             explanation=why, moment=target.text)]
    rival = rival_moment(f"{question} {why}", target, clues)
    if rival is not None:   # the question and its explanation point at another moment (as much)
        return [stage.reject(base, rival[0], rival_message("reasoning_localization question and explanation",
                                                           target, rival),
                             question=question, explanation=why, moment=target.text, target=target.id,
                             rival=rival[1].id, rival_text=rival[1].text)]
    a, b = float(target.start_s), float(target.end_s)
    base[R.QUESTION] = question
    base[R.ANSWER] = string.Template(tcfg.answer_format).substitute(explanation=why, span=span_placeholder(a, b))
    base[R.RATIONALE] = why
    base[R.ANSWER_SPANS] = [{"start_s": a, "end_s": b}]
    base[R.EVIDENCE] = evidence([target])
    return [base]


REASONING_LOCALIZATION = TaskFamily(ReasoningLocalizationTask, _plan_rtl, _finish_rtl,
                                    prompts=("reasoning_localization",), needs_teacher=lambda tcfg: True,
                                    trim_at_cap=("explanation",))
