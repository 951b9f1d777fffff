"""The question and answer texts of one sample, the same for every training format.

Each format adds its own video token and role names around these two strings. Options are lettered
A, B, C… in stored order, so `answer_index` k is always letter k; MCQ answers are the bare letter (what
the LLaVA-Video / Video-MME prompts ask for). Times come from `TimeFormat` (see `timefmt`).
"""
from __future__ import annotations

import string
from dataclasses import dataclass

from vdata.schemas import records as R

from .source import Item
from .timefmt import TimeFormat

LETTERS = string.ascii_uppercase
MCQ_INSTRUCTION = "Answer with the option's letter from the given choices directly."
COT_INSTRUCTION = "Think step by step, then give the answer."

DEFAULT_QUESTIONS = {
    "caption": "Describe this video in detail.",
    "dense_caption": "Describe each event in this video with its start and end time.",
    "chapter": "Divide this video into chapters, giving each chapter's start and end time and a title.",
}


class SampleError(ValueError):
    """A sample that cannot be rendered (e.g. an MCQ whose answer_index is out of range)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Turn:
    user: str
    assistant: str


def letter(i: int) -> str:
    return LETTERS[i]


def lettered_options(options: list[str]) -> list[str]:
    return [f"{letter(i)}. {opt}" for i, opt in enumerate(options)]


def check_mcq(item: Item) -> tuple[list[str], int]:
    opts = item.get(R.OPTIONS) or []
    idx = item.row.get(R.ANSWER_INDEX)
    if len(opts) < 2:
        raise SampleError("bad_options", f"{item.id}: a multiple-choice sample needs at least 2 options, has {len(opts)}")
    if len(opts) > len(LETTERS):
        raise SampleError("bad_options", f"{item.id}: {len(opts)} options; at most {len(LETTERS)} can be lettered")
    if idx is None or not 0 <= idx < len(opts):
        raise SampleError("bad_answer_index", f"{item.id}: answer_index {idx} is not a position among {len(opts)} options")
    return list(opts), int(idx)


def spans_text(spans, tf: TimeFormat) -> str:
    return ", ".join(tf.span(s["start_s"], s["end_s"]) for s in spans)


def events_text(events, tf: TimeFormat) -> str:
    return "\n".join(f"{tf.span(e['start_s'], e['end_s'])}: {e['description']}" for e in events)


def question_text(item: Item, tf: TimeFormat) -> str:
    """The user's text: question, lettered options, and the answer-format instruction."""
    task = item.task
    q = tf.render_text(item.get(R.QUESTION)) or DEFAULT_QUESTIONS.get(task, "")
    if not q:
        raise SampleError("no_question", f"{item.id}: task {task!r} has no question text")
    opts = item.get(R.OPTIONS)
    parts = [q]
    if task == "mcq" or (task == "cot" and opts):
        options, _ = check_mcq(item)
        parts.append("\n".join(lettered_options([tf.render_text(o) for o in options])))
    if task == "cot":
        parts.append(COT_INSTRUCTION)
    elif task == "mcq":
        parts.append(MCQ_INSTRUCTION)
    if task in ("grounding", "dense_caption", "chapter"):
        parts.append(tf.hint())
    return "\n".join(parts)


def answer_text(item: Item, tf: TimeFormat) -> str:
    """The assistant's text."""
    task = item.task
    if task == "mcq":
        return letter(check_mcq(item)[1])
    if task == "grounding":
        spans = item.get(R.ANSWER_SPANS)
        if spans:
            return spans_text(spans, tf)
        ans = tf.render_text(item.get(R.ANSWER))
        if not ans:
            raise SampleError("no_answer", f"{item.id}: grounding sample without answer_spans or answer")
        return ans
    if task in ("dense_caption", "chapter"):
        events = item.get(R.DENSE_EVENTS)
        if events:
            return events_text(events, tf)
    if task == "cot":
        return cot_text(item, tf)
    ans = tf.render_text(item.get(R.ANSWER)) or (item.get(R.CAPTION) if task == "caption" else "")
    if not ans:
        raise SampleError("no_answer", f"{item.id}: task {task!r} has no answer text")
    return ans


def cot_text(item: Item, tf: TimeFormat) -> str:
    steps = item.get(R.RATIONALE_STEPS)
    if steps:
        lines = []
        for s in steps:
            times = s.get("evidence_timestamps_s") or []
            where = f" (at {', '.join(tf.point(t) for t in times)})" if times else ""
            lines.append(f"{tf.render_text(s['text'])}{where}")
        reasoning = "\n".join(lines)
    else:
        reasoning = tf.render_text(item.get(R.RATIONALE))
    if item.get(R.OPTIONS):
        final = letter(check_mcq(item)[1])
    else:
        final = tf.render_text(item.get(R.ANSWER))
    if not final:
        raise SampleError("no_answer", f"{item.id}: chain-of-thought sample without a final answer")
    return f"{reasoning}\nAnswer: {final}" if reasoning else f"Answer: {final}"


def turn(item: Item, tf: TimeFormat) -> Turn:
    return Turn(question_text(item, tf), answer_text(item, tf))
