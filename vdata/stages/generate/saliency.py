"""VTG-IT's highlight detection and summarization (VTG-LLM, Guo et al., AAAI 2025; gyxxyg/VTG-LLM), teacher-rated.

- `highlights`: a query and the saliency of each moment for it (QVHighlights-style). The stage picks one
  moment (seeded); the teacher writes a short query describing it and rates every moment 0..`scale` for
  the query. The moments rated at least `min_score` are the highlights: their intervals go to
  `answer_spans`, their scores to `answer_scores` (one per span), and the answer lists them with time
  placeholders. The annotations carry no saliency scores (ANNOTATIONS_TYPE has none), so there is no
  teacher-free variant; a query that shares no word with its moment is `off_target`.
- `summarization`: a summary whose sentences each cite the moments they summarize; each sentence gets the
  span of its cited moments as a `{{span:a,b}}` placeholder, and `answer_spans` lists them in order.

Moments are the row's timed clues with an extent that do not cover the whole row (see `grounded.moments`);
ratings and citations name clue ids, never times.
"""
from __future__ import annotations

import string
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from vdata.schemas import records as R

from .annotated import TEMPLATE_PROMPT, span_placeholder
from .clues import Clue, cited, clue_lines, evidence
from .common import (Pending, Strict, TaskFamily, id_list, parse_lines, stable_hash, strict_object, teacher_request,
                     text_field)
from .grounded import content_words, moments, targets, union_span

if TYPE_CHECKING:
    from .common import StageView


class HighlightsTask(Strict):
    per_clip: int = Field(1, ge=0, le=8)           # queries per row
    min_moments: int = Field(3, ge=2)              # fewer timed moments: nothing to rank
    max_moments: int = Field(24, ge=2, le=100)
    scale: int = Field(4, ge=1, le=10)             # scores 0..scale
    min_score: int = Field(3, ge=1)                # a highlight scores at least this
    min_shared_words: int = Field(1, ge=0)         # content words the query must share with its moment

    @model_validator(mode="after")
    def _threshold(self):
        if self.min_score > self.scale:
            raise ValueError(f"min_score: {self.min_score} is above scale {self.scale}")
        return self


class SummarizationTask(Strict):
    max_sentences: int = Field(5, ge=1, le=16)
    min_moments: int = Field(2, ge=1)
    max_evidence: int = Field(3, ge=1, le=8)       # moments one sentence may cite


def _fixed_question(stage: StageView, task: str, key: str, **values) -> str:
    choices = parse_lines(stage.prompts[TEMPLATE_PROMPT].text).get(task) or [task]
    return string.Template(choices[stable_hash(task, key) % len(choices)]).safe_substitute(**values)


def _units(row: dict, clues: list[Clue], limit: int) -> list[Clue]:
    spans = moments(row, clues)
    if len(spans) > limit:   # evenly over the row, not just its start
        step = len(spans) / limit
        spans = [spans[int(i * step)] for i in range(limit)]
    return spans


# --- highlights

def _plan_highlights(stage: StageView, row: dict, clues: list[Clue], tcfg: HighlightsTask):
    units = _units(row, clues, tcfg.max_moments)
    if len(units) < tcfg.min_moments:
        return [], []
    prompt = stage.prompts["highlights"]
    clue_text = clue_lines(units)
    score = strict_object({"id": {"type": "string", "enum": [c.id for c in units]},
                           # an enum, not minimum/maximum: grammar-constrained servers (llama.cpp) enforce enums
                           "score": {"type": "integer", "enum": list(range(tcfg.scale + 1))}})
    schema = strict_object({"query": text_field(min(stage.config.max_question_chars, 120)),
                            "scores": {"type": "array", "items": score, "minItems": 1, "maxItems": len(units)}})
    pending = []
    for i, target in enumerate(targets("highlights", row, units, tcfg.per_clip)):
        text = prompt.render(clues=clue_text, target_text=target.line(), scale=tcfg.scale)
        req = teacher_request(stage, prompt, text, units, schema, "highlights", ("highlights", i, target.id, clue_text))
        pending.append(Pending("highlights", i, "highlight", prompt, req, {"units": units, "target": target}))
    return [], pending


def _finish_highlights(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    tcfg: HighlightsTask = stage.config.tasks.highlights
    query = " ".join((reply.get("query") or "").split()).strip(" .")
    target: Clue = p.extra["target"]
    if not query:
        return [stage.reject(base, "bad_reply", "highlights: empty query", reply=reply)]
    shared = content_words(query) & content_words(target.text)
    if len(shared) < tcfg.min_shared_words:
        return [stage.reject(base, "off_target", f"highlights: the query shares {len(shared)} content word(s) with "
                             f"the moment it describes (min {tcfg.min_shared_words})", query=query, moment=target.text)]
    by_id = {c.id: c for c in p.extra["units"]}
    scores: dict[str, int] = {}
    for item in reply.get("scores") or []:
        if item.get("id") in by_id and isinstance(item.get("score"), int):
            scores.setdefault(item["id"], max(0, min(tcfg.scale, item["score"])))   # the first rating of a moment
    top = sorted((by_id[i] for i, s in scores.items() if s >= tcfg.min_score), key=lambda c: (c.start_s, c.end_s))
    if not top:
        return [stage.reject(base, "no_highlight", f"highlights: no moment rated {tcfg.min_score} or more for "
                             f"{query!r}", query=query, scores=scores)]
    base[R.QUESTION] = _fixed_question(stage, "highlights", base[R.SAMPLE_ID], query=query)
    base[R.ANSWER] = "\n".join(f"{span_placeholder(c.start_s, c.end_s)} saliency {scores[c.id]}" for c in top)
    base[R.ANSWER_SPANS] = [{"start_s": float(c.start_s), "end_s": float(c.end_s)} for c in top]
    base[R.ANSWER_SCORES] = [float(scores[c.id]) for c in top]
    base[R.EVIDENCE] = evidence(top)
    return [base]


HIGHLIGHTS = TaskFamily(HighlightsTask, _plan_highlights, _finish_highlights, prompts=("highlights", TEMPLATE_PROMPT),
                        needs_teacher=lambda tcfg: True)


# --- summarization

def _plan_summary(stage: StageView, row: dict, clues: list[Clue], tcfg: SummarizationTask):
    units = moments(row, clues)
    if len(units) < tcfg.min_moments:
        return [], []
    prompt = stage.prompts["summarization"]
    clue_text = clue_lines(clues)
    sentence = strict_object({"text": text_field(min(stage.config.max_answer_chars, 240)),
                              "evidence": id_list([c.id for c in units], tcfg.max_evidence)})
    schema = strict_object({"sentences": {"type": "array", "items": sentence, "minItems": 1,
                                          "maxItems": tcfg.max_sentences}})
    text = prompt.render(clues=clue_text, max_sentences=tcfg.max_sentences)
    req = teacher_request(stage, prompt, text, clues, schema, "summarization", ("summarization", clue_text))
    return [], [Pending("summarization", 0, "summary", prompt, req, {"units": units})]


def _finish_summary(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    parts, support, seen = [], [], set()
    for s in reply.get("sentences") or []:
        text = " ".join((s.get("text") or "").split()).rstrip(" .")
        refs = cited(s, p.extra["units"])
        if not text or not refs or text.lower() in seen:
            continue   # a sentence that cites no moment has no time to carry
        seen.add(text.lower())
        parts.append((union_span(refs), text))
        support.extend(refs)
    if not parts:
        return [stage.reject(base, "bad_reply", "summarization: no sentence cites a timed moment", reply=reply)]
    base[R.QUESTION] = _fixed_question(stage, "summarization", base[R.SAMPLE_ID])
    base[R.ANSWER] = " ".join(f"{text} ({span_placeholder(a, b)})." for (a, b), text in parts)
    base[R.ANSWER_SPANS] = [{"start_s": a, "end_s": b} for (a, b), _ in parts]
    base[R.EVIDENCE] = evidence(support)
    return [base]


SUMMARIZATION = TaskFamily(SummarizationTask, _plan_summary, _finish_summary,
                           prompts=("summarization", TEMPLATE_PROMPT), needs_teacher=lambda tcfg: True)
