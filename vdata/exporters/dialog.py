"""The question and answer texts of one sample, the same for every training format.

Each format adds its own video token and role names around these two strings. Options are lettered
A, B, C… in stored order, so `answer_index` k is always letter k; MCQ answers are the bare letter (what
the LLaVA-Video / Video-MME prompts ask for), for every MCQ-like task (`source.is_mcq`). Times come from
`TimeFormat` (see `timefmt`).

Span answers (the temporal tasks): an answer text that carries its times as `{{t:..}}` / `{{span:..}}`
placeholders is complete and is rendered as it is (the template and temporal families write such
texts). Otherwise the answer is built from `answer_spans`, rendered in the export's time format, and
the task's text: `grounded_qa` = "answer (span)" (NExT-GQA), `reasoning_localization` = "span
explanation" (LITA RTL; the explanation is the answer or the rationale), `highlights` = one span per
line with its saliency score when `answer_scores` has them; the pure localization tasks answer with
the spans alone. Questions of tasks whose answers carry times end with the time format's hint.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Iterator

from vdata.schemas import records as R

from .source import MCQ_TASKS, TEMPORAL_TASKS, Item, is_mcq
from .timefmt import SampleError, TimeFormat, names_points_only

LETTERS = string.ascii_uppercase
MCQ_INSTRUCTION = "Answer with the option's letter from the given choices directly."
COT_INSTRUCTION = "Think step by step, then give the answer."

DEFAULT_QUESTIONS = {
    "caption": "Describe this video in detail.",
    "dense_caption": "Describe each event in this video with its start and end time.",
    "chapter": "Divide this video into chapters, giving each chapter's start and end time and a title.",
    "dense_from_segments": "Describe each event in this video with its start and end time.",
    "chapter_generation": "Divide this video into chapters, giving each chapter's start and end time and a title.",
    "summarization": "Summarize this video, giving the time span of each part of the summary.",
}
# Event lists: stored events (dense_events) render as timed lines when the answer text is empty.
EVENT_TASKS = ("dense_caption", "chapter", "dense_from_segments", "chapter_generation")
# How a temporal task's answer combines its text with its spans when the text carries no times.
SPAN_AND_TEXT = {"grounded_qa": "{text} ({spans})", "reasoning_localization": "{spans} {text}"}
_TIME_PLACEHOLDER = ("{{t:", "{{span:", "{{ t:", "{{ span:")


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


def has_time_placeholder(text: str | None) -> bool:
    return bool(text) and any(p in text for p in _TIME_PLACEHOLDER)


def answers_with_times(item: Item) -> bool:
    """The answer carries times, so the question tells the model how to write them."""
    task = item.task
    if task in ("grounding", "dense_caption", "chapter") or has_time_placeholder(item.get(R.ANSWER)):
        return True
    if task in EVENT_TASKS and item.get(R.DENSE_EVENTS):
        return True
    return task in TEMPORAL_TASKS and bool(item.get(R.ANSWER_SPANS))


def time_points_only(item: Item) -> bool:
    """The answer writes only moments ("the chapter starts at 6.0 seconds"): an answer text with times of
    its own is what the answer says (span_answer), whatever spans the sample also records."""
    return names_points_only(item.get(R.ANSWER))


def question_text(item: Item, tf: TimeFormat) -> str:
    """The user's text: question, lettered options, and the answer-format instruction."""
    task = item.task
    q = tf.render_text(item.get(R.QUESTION)) or DEFAULT_QUESTIONS.get(task, "")
    if not q:
        raise SampleError("no_question", f"{item.id}: task {task!r} has no question text")
    opts = item.get(R.OPTIONS)
    mcq = is_mcq(task, opts)
    parts = [q]
    if mcq:
        options, _ = check_mcq(item)
        parts.append("\n".join(lettered_options([tf.render_text(o) for o in options])))
    if task == "cot":
        parts.append(COT_INSTRUCTION)
    elif mcq:
        parts.append(MCQ_INSTRUCTION)
    elif answers_with_times(item):
        parts.append(tf.hint(points=time_points_only(item)))
    return "\n".join(parts)


def span_answer(item: Item, tf: TimeFormat) -> str:
    """A temporal task's answer: its text when that carries its own times, else spans (+ text)."""
    task = item.task
    text = tf.render_text(item.get(R.ANSWER))
    if has_time_placeholder(item.get(R.ANSWER)):
        return text
    spans = item.get(R.ANSWER_SPANS) or []
    if task == "reasoning_localization" and not text:
        text = tf.render_text(item.get(R.RATIONALE))
    if not spans:
        if text:   # times written as free text (older builds): kept as written
            return text
        raise SampleError("no_answer", f"{item.id}: {task} sample without answer_spans or answer")
    # answer_scores (one saliency per span) arrives with the highlights family's column
    scores = item.get(getattr(R, "ANSWER_SCORES", None) or "", None)
    if task == "highlights" and scores and len(scores) == len(spans):
        return "\n".join(f"{tf.span(s['start_s'], s['end_s'])} saliency {v:g}" for s, v in zip(spans, scores))
    timed = spans_text(spans, tf)
    if task in SPAN_AND_TEXT and text:
        return SPAN_AND_TEXT[task].format(text=text, spans=timed)
    return timed


def answer_text(item: Item, tf: TimeFormat) -> str:
    """The assistant's text."""
    task = item.task
    if task == "cot":
        return cot_text(item, tf)
    if is_mcq(task, item.get(R.OPTIONS)):
        return letter(check_mcq(item)[1])
    if task in TEMPORAL_TASKS:
        return span_answer(item, tf)
    events = item.get(R.DENSE_EVENTS)
    if task in ("dense_caption", "chapter") and events:
        return events_text(events, tf)   # these two keep preferring their event list (as exported before)
    ans = tf.render_text(item.get(R.ANSWER)) or (item.get(R.CAPTION) if task == "caption" else "")
    if not ans and task in EVENT_TASKS and events:
        ans = events_text(events, tf)
    if not ans and task in MCQ_TASKS and item.get(R.ANSWER_SPANS):
        ans = spans_text(item[R.ANSWER_SPANS], tf)   # an open-form event order: the events' spans in order
    if not ans:
        raise SampleError("no_answer", f"{item.id}: task {task!r} has no answer text")
    return ans


def step_times(times: list[float], frame_times: set[float], tf: TimeFormat) -> str:
    """A rationale step's evidence times: two that bound a span (a speech segment, an event: anything but two
    cited frames / step moments) as that span, in the span form the same interval has elsewhere ("frames
    33 - 81", not "at frame 32, frame 82"); otherwise each as a moment."""
    if len(times) == 2 and times[0] < times[1] and not all(round(t, 6) in frame_times for t in times):
        return f" ({tf.span(times[0], times[1])})"
    return f" (at {', '.join(tf.point(t) for t in times)})" if times else ""


def cot_text(item: Item, tf: TimeFormat) -> str:
    steps = item.get(R.RATIONALE_STEPS)
    if steps:
        lines = []
        frame_times = {round(float(t), 6) for t in ((item.get(R.EVIDENCE) or {}).get("frame_timestamps_s") or [])}
        for s in steps:
            where = step_times(sorted(s.get("evidence_timestamps_s") or []), frame_times, tf)
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


def turns(prepared, skipped) -> Iterator[tuple[Any, Turn]]:
    """(prepared sample, its turn) for each sample of `prepared` (exporters.base.prepare) that renders;
    one that cannot is counted in `skipped` by its reason, never written half-made."""
    for p in prepared:
        try:
            yield p, turn(p.item, p.tf)
        except SampleError as e:
            skipped[e.reason] += 1
