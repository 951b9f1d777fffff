"""Timed tasks: grounding, dense_caption and chapter. Every time in their answers is a clue's own time.

- `grounding`: question → interval, built on a dense event or a transcript segment (the teacher rephrases
  the moment as a question; `rephrase: false` uses a fixed template instead); the interval is the part of
  it inside the row, and a target the row's edge cuts short (`clues.cut_short`) is not used; a teacher's
  question must match its moment better than every other timed clue (`moment_match`, else `off_target` /
  `ambiguous_moment`);
- `dense_caption`: the clip's dense events as one timestamped sample; without events, the teacher turns
  transcript segments into event captions (HowToCaption);
- `chapter`: chapter titles over consecutive events/segments (VidChapters-style).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import Field

from vdata.prompts import Prompt, escape_placeholders
from vdata.schemas import records as R

from .clues import Clue, clue_lines, cut_short, evidence
from .common import (Pending, Strict, TaskFamily, pick_question, sample_base, spans_answer, stable_hash, strict_object,
                     teacher_request, text_field)
from .moment_match import rival_message, rival_moment

if TYPE_CHECKING:
    from .common import StageView


class GroundingTask(Strict):
    per_clip: int = Field(2, ge=0, le=64)
    from_speech: bool = True             # transcript segments are targets too, not only dense events
    rephrase: bool = True                # teacher writes the question; false: fixed template
    min_span_s: float = Field(0.2, ge=0)
    min_shared_words: int = Field(1, ge=0)   # content words the question must share with its moment


class DenseCaptionTask(Strict):
    min_events: int = Field(2, ge=1)
    from_speech: bool = True             # no dense events: teacher captions the transcript segments


class ChapterTask(Strict):
    max_chapters: int = Field(4, ge=1, le=16)
    min_clues: int = Field(3, ge=2)


# --- grounding

def _plan_grounding(stage: StageView, row: dict, clues: list[Clue], tcfg: GroundingTask):
    free, pending = [], []
    if not tcfg.per_clip:
        return free, pending
    targets = [c for c in clues if c.kind == "event" or (tcfg.from_speech and c.kind == "speech")]
    # clamped to the row by build_clues (speech across a cut answers with the part in the clip); one the
    # edge cut short is no target
    targets = [c for c in targets if c.timed and c.end_s is not None
               and c.end_s - c.start_s >= tcfg.min_span_s and not cut_short(c)]
    if not targets:   # no dense events nor speech: said in the manifest's counters, not silently nothing
        stage.counters["grounding_no_target"] += 1
        return free, pending
    first = stable_hash("grounding", row[R.CLIP_ID]) % len(targets)
    picks = [targets[(first + j) % len(targets)] for j in range(min(tcfg.per_clip, len(targets)))]
    for i, target in enumerate(picks):
        if tcfg.rephrase:
            pending.append(_grounding_request(stage, i, target, clues))
        else:
            free.append(_grounding_sample(stage, row, i, target, None, stage.prompts["task_questions"]))
    return free, pending


def _grounding_request(stage: StageView, index: int, target: Clue, clues: list[Clue]) -> Pending:
    prompt = stage.prompts["grounding"]
    clue_text = clue_lines(clues)
    text = prompt.render(clues=clue_text, target=target.id, target_text=target.line())
    schema = strict_object({"question": text_field(stage.config.max_question_chars)})
    req = teacher_request(stage, prompt, text, clues, schema, "grounding", ("grounding", index, target.id, clue_text))
    return Pending("grounding", index, "temporal", prompt, req, {"target": target})


def _grounding_sample(stage: StageView, row: dict, index: int, target: Clue, question: str | None,
                      prompt: Prompt) -> dict:
    out = sample_base(stage, row, "grounding", index, prompt.id, teacher=question is not None)
    out[R.QUESTION_TYPE] = "temporal"
    moment = target.text if target.kind != "speech" else f'someone says "{target.text}"'
    out[R.QUESTION] = question or pick_question(stage, "grounding", out[R.SAMPLE_ID], event=moment.rstrip("."))
    out[R.ANSWER] = moment
    out[R.ANSWER_SPANS] = [{"start_s": float(target.start_s), "end_s": float(target.end_s)}]
    out[R.EVIDENCE] = evidence([target])
    return out


def _finish_grounding(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    question = (reply.get("question") or "").strip()
    if not question:
        return [stage.reject(base, "bad_reply", "grounding: empty question", reply=reply)]
    target = p.extra["target"]
    shared = _content(question) & _content(target.text)
    need = stage.config.tasks.grounding.min_shared_words
    if len(shared) < need:
        # a question that names nothing of its moment cannot be grounded (nor checked)
        return [stage.reject(base, "off_target", f"grounding question shares {len(shared)} content word(s) "
                             f"with its moment (min {need})", question=question, moment=target.text)]
    rival = rival_moment(question, target, clues)
    if rival is not None:
        # a question that names another moment (as well) is answered with this one's span: wrong ground truth
        return [stage.reject(base, rival[0], rival_message("grounding question", target, rival), question=question,
                             moment=target.text, target=target.id, rival=rival[1].id, rival_text=rival[1].text)]
    return [_grounding_sample(stage, row, p.index, target, question, p.prompt)]


_STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "is", "are", "was", "were", "be", "it", "that",
         "this", "with", "for", "as", "by", "when", "what", "which", "who", "how", "does", "do", "did", "video", "clip",
         "happen", "happens", "time", "moment", "someone", "says", "say"}


def _content(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", (text or "").lower()) if w not in _STOP and len(w) > 1}


GROUNDING = TaskFamily(GroundingTask, _plan_grounding, _finish_grounding, prompts=("grounding",),
                       needs_teacher=lambda tcfg: tcfg.rephrase)


# --- dense_caption

def _plan_dense(stage: StageView, row: dict, clues: list[Clue], tcfg: DenseCaptionTask):
    events = [c for c in clues if c.kind == "event" and c.end_s is not None]
    speech = [c for c in clues if c.kind == "speech" and c.timed and c.end_s is not None]
    if len(events) >= tcfg.min_events:
        # the captions' own text, escaped as a sample stores source text (a teacher's text comes escaped)
        return [_dense_sample(stage, row, [(c, escape_placeholders(c.text)) for c in events], None)], []
    if tcfg.from_speech and len(speech) >= tcfg.min_events and stage.teacher:
        return [], [_dense_speech_request(stage, speech)]
    stage.counters["dense_caption_too_few_events"] += 1
    return [], []


def _dense_speech_request(stage: StageView, speech: list[Clue]) -> Pending:
    prompt = stage.prompts["dense_from_speech"]
    clue_text = clue_lines(speech)
    event = strict_object({"segment": {"type": "string", "enum": [c.id for c in speech]},
                           "caption": text_field(min(stage.config.max_answer_chars, 160))})
    schema = strict_object({"events": {"type": "array", "items": event, "minItems": 1, "maxItems": len(speech)}})
    req = teacher_request(stage, prompt, prompt.render(clues=clue_text), [], schema, "dense_caption",
                          ("dense", clue_text))
    return Pending("dense_caption", 0, "dense", prompt, req, {"speech": speech})


def _dense_sample(stage: StageView, row: dict, events: list[tuple[Clue, str]],
                  teacher_prompt: Prompt | None) -> dict:
    prompt = teacher_prompt or stage.prompts["task_questions"]
    out = sample_base(stage, row, "dense_caption", 0, prompt.id, teacher=teacher_prompt is not None)
    events = sorted(events, key=lambda e: (e[0].start_s, e[0].end_s))
    out[R.QUESTION_TYPE] = "dense"
    out[R.QUESTION] = pick_question(stage, "dense_caption", out[R.SAMPLE_ID])
    out[R.ANSWER] = spans_answer([(c.start_s, c.end_s, text) for c, text in events])
    out[R.ANSWER_SPANS] = [{"start_s": float(c.start_s), "end_s": float(c.end_s)} for c, _ in events]
    out[R.EVIDENCE] = evidence([c for c, _ in events])
    return out


def _finish_dense(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    speech = {c.id: c for c in p.extra["speech"]}
    events, used = [], set()
    for e in reply.get("events", []):
        c = speech.get(e.get("segment"))
        if c is None or c.id in used or not e.get("caption", "").strip():
            continue
        used.add(c.id)
        events.append((c, e["caption"].strip()))
    need = stage.config.tasks.dense_caption.min_events
    if len(events) < need:
        return [stage.reject(base, "bad_reply", f"dense_caption: {len(events)} usable event(s) from speech, "
                             f"need {need}", reply=reply)]
    return [_dense_sample(stage, row, events, p.prompt)]


DENSE_CAPTION = TaskFamily(DenseCaptionTask, _plan_dense, _finish_dense, prompts=("dense_from_speech",))


# --- chapter

def _plan_chapter(stage: StageView, row: dict, clues: list[Clue], tcfg: ChapterTask):
    spans = [c for c in clues if c.kind in ("event", "speech") and c.timed and c.end_s is not None]
    if len(spans) < tcfg.min_clues:
        return [], []
    prompt = stage.prompts["chapter"]
    n = tcfg.max_chapters
    clue_text = clue_lines(spans)
    ids = [c.id for c in spans]
    chapter = strict_object({"title": text_field(60), "first": {"type": "string", "enum": ids},
                             "last": {"type": "string", "enum": ids}})
    schema = strict_object({"chapters": {"type": "array", "items": chapter, "minItems": 1,
                                         "maxItems": min(n, len(spans))}})
    req = teacher_request(stage, prompt, prompt.render(clues=clue_text, max_chapters=n), [], schema, "chapter",
                          ("chapter", clue_text))
    return [], [Pending("chapter", 0, "chapter", prompt, req, {"spans": spans})]


def _finish_chapter(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    spans = {c.id: c for c in p.extra["spans"]}
    chapters = []
    for ch in reply.get("chapters", []):
        a, b = spans.get(ch.get("first")), spans.get(ch.get("last"))
        if a is None or b is None or not ch.get("title", "").strip():
            continue
        # a reversed chapter (last clue before the first) is kept as written: the timestamps
        # filter rejects it with its reason instead of the generator silently repairing it
        chapters.append((ch["title"].strip(), float(a.start_s), float(b.end_s), [a, b]))
    if not chapters:
        return [stage.reject(base, "bad_reply", "chapter: no usable chapter", reply=reply)]
    chapters.sort(key=lambda c: c[1])
    base[R.QUESTION_TYPE] = "chapter"
    base[R.QUESTION] = pick_question(stage, "chapter", base[R.SAMPLE_ID])
    base[R.ANSWER] = spans_answer([(a, b, t) for t, a, b, _ in chapters])
    base[R.ANSWER_SPANS] = [{"start_s": a, "end_s": b} for _, a, b, _ in chapters]
    base[R.EVIDENCE] = evidence([c for ch in chapters for c in ch[3]])
    return [base]


CHAPTER = TaskFamily(ChapterTask, _plan_chapter, _finish_chapter, prompts=("chapter",),
                     needs_teacher=lambda tcfg: True)
