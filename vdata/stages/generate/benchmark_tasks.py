"""Benchmark-style items over a row's timed content: `event_order` (Vript-Hard ERO), teacher-free.

`event_order` lists K of the row's events in a shuffled order, numbered (1), (2), ..., and asks for their
order in the video as a multiple-choice question: each option is an ordering of the numbers, one is the
true one, the others are other permutations. Vript-Hard's ERO gives three scene descriptions and asks for
their temporal order ("Scene (A), (B) and (C)": mutonix/Vript `prompts_for_vript-hard/vript_ero.json` and
`vript-hard/models/videochat2/videochat2_vriptERO.py`, read for this module); `events: 3` reproduces it.
Vript asks it open-ended; here the orderings are options that every MCQ export letters A, B, C, D, so
the scenes are numbered: lettered too, "A. (B) → (A) → (C)" read as a riddle.

The events are the row's timed items of one source (dense events, annotated segments, chapters or clip
captions, in the configured preference order) that are distinct and do not overlap, so their order is
unambiguous. Everything is drawn from a seeded RNG keyed on the row's clip id (at video scope
`<video_id>:video`), so two runs write the same items; a row with fewer than three such events gets a
reject with its reason (`too_few_events`), and the other tasks of the row go on.

The item is stored as an MCQ sample (`task: mcq`, `question_type: event_order`) so that every filter and
exporter that reads MCQs takes it as one; `answer_spans` are the chosen events' intervals in time order
and `evidence` the events themselves (each listed event is cut to `max_scene_chars`: with four long clip
captions the question is long, so a `wellformed` filter after it may need a larger `max_question_words`).
`open_form` adds the open-ended twin (the events in order with their spans), linked to the MCQ by
`sample_group`.

The helpers at the end (distinct options, twins, merged clue intervals) are shared with `clue_tasks.py`.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
import string
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from vdata.prompts import escape_placeholders, shorten
from vdata.schemas import records as R

from .clues import Clue, evidence
from .common import Strict, TaskFamily, make_sample_id, parse_lines, sample_base, spans_answer, stable_hash

if TYPE_CHECKING:
    from .common import StageView

Source = Literal["events", "segments", "chapters", "captions"]
# Each source's clues by their id prefix, the clue-id contract of the video scope: dense events `E1…`,
# annotated segments `A1…`, chapters `H1…`, clip captions `C1…` (a clip row has one, `C1`, over the clip).
SOURCE_PREFIX = {"events": "E", "segments": "A", "chapters": "H", "captions": "C"}
# Clues built without the annotations: read the annotated items from the row itself.
ANNOTATION_FIELDS = {"segments": ("segments", "text"), "chapters": ("chapters", "title")}
QUESTION_LIST = "benchmark_questions"   # shipped question templates, `task: template` lines
EDGE_TOLERANCE_S = 0.05                 # an annotation item may stick out of the row by rounding only
MIN_EVENTS = 3                          # two events make a yes/no question, not an ordering


class EventOrderTask(Strict):
    per_clip: int = Field(1, ge=0, le=16)          # items per row (each a different draw of events)
    events: int = Field(4, ge=MIN_EVENTS, le=8)     # K events per item (fewer when the row has fewer, ≥ 3)
    num_options: int = Field(4, ge=2, le=8)         # orderings offered (at most K!)
    sources: list[Source] = Field(default_factory=lambda: ["events", "segments", "chapters", "captions"])
    max_overlap_s: float = Field(0.0, ge=0)         # two events may share this much time and still be ordered
    max_scene_chars: int = Field(200, ge=20)        # each listed event's text is cut to this (long clip captions)
    seed: int = 0
    open_form: bool = False                         # also write the open-ended twin
    questions: list[str] | None = None              # templates with $scenes; None: the shipped list

    @model_validator(mode="after")
    def _check(self):
        if not self.sources:
            raise ValueError("sources: name at least one of events, segments, chapters, captions")
        if self.questions is not None:
            bad = [q for q in self.questions if "$scenes" not in q and "${scenes}" not in q]
            if not self.questions or bad:
                raise ValueError(f"questions: every template needs $scenes (the lettered events); got {bad or '[]'}")
        return self


# --- which events -----------------------------------------------------------------------------------

def annotation_clues(row: dict, source: str) -> list[Clue]:
    """The row's annotated segments or chapters inside its interval, as clues (`A1…` / `H1…`)."""
    field, text_key = ANNOTATION_FIELDS[source]
    ann = row.get(R.ANNOTATIONS) or {}
    start, end = float(row[R.START_S]), float(row[R.END_S])
    prefix = "A" if source == "segments" else "H"
    items = [i for i in (ann.get(field) or []) if i and (i.get(text_key) or "").strip()
             and i.get("start_s") is not None and i.get("end_s") is not None
             and i["start_s"] >= start - EDGE_TOLERANCE_S and i["end_s"] <= end + EDGE_TOLERANCE_S]
    items.sort(key=lambda i: (i["start_s"], i["end_s"]))
    # kind "event": stored in evidence like dense events (text with its span placeholder)
    return [Clue(f"{prefix}{n}", "event", i[text_key].strip(), float(i["start_s"]), float(i["end_s"]))
            for n, i in enumerate(items, 1)]


def source_clues(row: dict, clues: list[Clue], source: str) -> list[Clue]:
    pattern = re.compile(SOURCE_PREFIX[source] + r"\d+")
    found = [c for c in clues if pattern.fullmatch(c.id)]
    if not found and source in ANNOTATION_FIELDS:
        found = annotation_clues(row, source)
    return found


def orderable(candidates: list[Clue], max_overlap_s: float) -> list[Clue]:
    """The most events with distinct texts whose intervals do not overlap (earliest end first), in time
    order. A clue that spans the others (a clip caption over its events, the whole-video caption) drops out.
    A text that happens at two separate times ("Colour bars appear." at 3-6 s and again at 9-12 s; Ego4D's
    "C picks up a knife.") has no one place in the order: none of its events is orderable, else two options
    would be right (outside check h24 F3). The same text twice over one stretch of time is one event."""
    spans = [c for c in candidates if c.start_s is not None and c.end_s is not None and c.end_s > c.start_s]
    by_text: dict[str, list[Clue]] = {}
    for c in sorted(spans, key=lambda c: (c.start_s, c.end_s, c.id)):
        if key := norm(c.text):
            by_text.setdefault(key, []).append(c)
    distinct = []
    for same in by_text.values():
        if all(b.start_s < a.end_s for a, b in zip(same, same[1:])):   # each overlaps the one before: one event
            distinct.append(same[0])
    chosen: list[Clue] = []
    for c in sorted(distinct, key=lambda c: (c.end_s, c.start_s, c.id)):
        if not chosen or c.start_s >= chosen[-1].end_s - max_overlap_s:
            chosen.append(c)
    return chosen


def pick_source(row: dict, clues: list[Clue], tcfg: EventOrderTask) -> tuple[str | None, list[Clue], dict]:
    """The first source (in preference order) with enough orderable events; counts per source for a reject."""
    counts = {}
    for source in tcfg.sources:
        events = orderable(source_clues(row, clues, source), tcfg.max_overlap_s)
        counts[source] = len(events)
        if len(events) >= MIN_EVENTS:
            return source, events, counts
    return None, [], counts


# --- the item ---------------------------------------------------------------------------------------

def scene_labels(n: int) -> list[str]:
    return [str(i + 1) for i in range(n)]


def ordering_text(order: list[str]) -> str:
    return " → ".join(f"({x})" for x in order)


def orderings(rng: random.Random, truth: tuple[str, ...], k: int) -> list[tuple[str, ...]]:
    """`k` distinct orderings of the scene labels, the true one first; the others drawn from all permutations."""
    others = [p for p in itertools.permutations(sorted(truth)) if p != truth]
    return [truth, *rng.sample(others, k - 1)]


def _plan_event_order(stage: StageView, row: dict, clues: list[Clue], tcfg: EventOrderTask):
    if not tcfg.per_clip:
        return [], []
    templates, prompt_id = question_templates(stage, "event_order", tcfg.questions)
    source, events, counts = pick_source(row, clues, tcfg)
    if source is None:
        base = sample_base(stage, row, "event_order", 0, prompt_id, teacher=False)
        return [stage.reject(base, "too_few_events", f"event_order needs {MIN_EVENTS} distinct, non-overlapping timed "
                             f"events of one source; found {counts}", found=counts, need=MIN_EVENTS)], []
    k = min(tcfg.events, len(events))
    n_options = min(tcfg.num_options, math.factorial(k))
    made, drawn = [], set()
    for index in range(tcfg.per_clip):
        rng = random.Random(stable_hash("event_order", row[R.CLIP_ID], tcfg.seed, index))
        chosen = sorted(rng.sample(range(len(events)), k))
        shown = list(chosen)
        rng.shuffle(shown)
        if shown == chosen:   # never list the events already in order
            shown = shown[1:] + shown[:1]
        if (tuple(chosen), tuple(shown)) in drawn:
            continue          # a small row has fewer distinct items than asked for
        drawn.add((tuple(chosen), tuple(shown)))
        made.extend(_event_order_item(stage, row, index, [events[i] for i in shown], rng, n_options, templates,
                                      prompt_id, source, tcfg))
    return made, []


def _event_order_item(stage: StageView, row: dict, index: int, shown: list[Clue], rng: random.Random,
                      n_options: int, templates: list[str], prompt_id: str, source: str, tcfg: EventOrderTask):
    labels = scene_labels(len(shown))
    by_label = dict(zip(labels, shown))
    truth = tuple(sorted(labels, key=lambda x: (by_label[x].start_s, by_label[x].end_s)))
    options = orderings(rng, truth, n_options)
    wrong = options[1:]
    pos = (stable_hash("event_order-position", row[R.CLIP_ID], prompt_id) + index) % n_options
    wrong.insert(pos, truth)
    base = sample_base(stage, row, "event_order", index, prompt_id, teacher=False)
    base[R.TASK] = "mcq"
    base[R.QUESTION_TYPE] = "event_order"
    scenes = "\n".join(f"({x}) {shorten(by_label[x].text, tcfg.max_scene_chars)}" for x in labels)
    base[R.QUESTION] = fill_template(templates, "event_order", row, index, tcfg.seed, scenes=scenes)
    base[R.OPTIONS] = [ordering_text(list(o)) for o in wrong]
    base[R.ANSWER_INDEX] = pos
    base[R.ANSWER] = base[R.OPTIONS][pos]
    in_time = [by_label[x] for x in truth]
    base[R.ANSWER_SPANS] = [{"start_s": float(c.start_s), "end_s": float(c.end_s)} for c in in_time]
    base[R.EVIDENCE] = evidence(in_time)
    if not tcfg.open_form:
        return [base]
    open_answer = spans_answer([(c.start_s, c.end_s, f"({x}) {escape_placeholders(c.text)}")
                                for x, c in zip(truth, in_time)])
    return twins(base, "event_order_open", index, open_answer)


# --- shared with clue_tasks.py -----------------------------------------------------------------------

def norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", (text or "").lower()))


def question_templates(stage: StageView, task: str, configured: list[str] | None) -> tuple[list[str], str]:
    """The task's question templates and the id samples record: the shipped list's prompt id, or
    `generate/<task>@config:<hash>` for templates given in the config."""
    if configured:
        digest = hashlib.sha256("\n".join(configured).encode()).hexdigest()[:12]
        return list(configured), f"generate/{task}@config:{digest}"
    prompt = stage.prompts[QUESTION_LIST]
    return parse_lines(prompt.text).get(task) or [task], prompt.id


def fill_template(templates: list[str], task: str, row: dict, index: int, seed: int, **values) -> str:
    pick = templates[stable_hash(task, "question", row[R.CLIP_ID], seed, index) % len(templates)]
    # the shipped list is one template a line: `\n` in it stands for a line break
    return string.Template(pick.replace("\\n", "\n")).safe_substitute(**values).strip()


def distinct_options(answer: str, others: list[str]) -> bool:
    keys = [norm(answer)] + [norm(o) for o in others]
    return all(keys) and len(set(keys)) == len(keys)


def twins(mcq: dict, open_task: str, index: int, open_answer: str | None = None) -> list[dict]:
    """The MCQ row and its open-ended twin: the same question, answer spans and evidence; the twin has no
    options (its answer is the correct option's text unless given). Both carry the MCQ's id as `sample_group`."""
    mcq[R.SAMPLE_GROUP] = mcq[R.SAMPLE_ID]
    twin = dict(mcq)
    twin[R.SAMPLE_ID] = make_sample_id(mcq[R.CLIP_ID], open_task, index, mcq[R.SAMPLE_PROMPT_VERSION])
    twin[R.TASK] = "open_qa"
    twin[R.OPTIONS] = None
    twin[R.ANSWER_INDEX] = None
    if open_answer is not None:
        twin[R.ANSWER] = open_answer
    return [mcq, twin]


# CG-Bench's clue intervals cover a median 0.6% of their video and never 90% (cgbench_mini.json, 3,000
# items): a clue that spans (nearly) the whole row says nothing about when the answer is.
MAX_CLUE_SHARE = 0.9


def clue_intervals(clues: list[Clue], row: dict | None = None) -> list[dict]:
    """The intervals of the cited clues (a clue with a time span), merged where they overlap or touch:
    CG-Bench's `clue_intervals`. Point clues (frames) have no interval; with `row`, neither has a clue
    covering MAX_CLUE_SHARE of the row (the whole-video caption `V`)."""
    length = float(row[R.END_S]) - float(row[R.START_S]) if row is not None else 0.0
    spans = sorted((float(c.start_s), float(c.end_s)) for c in clues
                   if c.start_s is not None and c.end_s is not None and c.end_s > c.start_s
                   and not (length > 0 and c.end_s - c.start_s >= MAX_CLUE_SHARE * length))
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [{"start_s": a, "end_s": b} for a, b in merged]


def clue_share(spans: list[dict], row: dict) -> float:
    """The share of the row's time the merged intervals cover."""
    length = float(row[R.END_S]) - float(row[R.START_S])
    return sum(s["end_s"] - s["start_s"] for s in spans) / length if length > 0 else 0.0


EVENT_ORDER = TaskFamily(EventOrderTask, _plan_event_order, prompts=(QUESTION_LIST,))
