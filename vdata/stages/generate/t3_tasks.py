"""T3's other text-only temporal tasks over a row's `segments` (rendered captions, chunks), teacher-free.

T3 (Li et al. 2024, "Temporal Reasoning Transfer from Text to Video", arXiv 2410.06166) writes temporal
questions from image-text data in several kinds: order (`before_after`, text_tasks.py), attribute change and
temporal referring (here), grounding (`segment_grounding` over the same segments).

- `attribute_change`: a thing whose colour changes along the sequence ("A girl holds a red balloon." ...
  "The balloon turns blue."). Colours are read from the text by three patterns: a colour before a noun
  ("a red balloon"), a noun then a linking verb and a colour ("the balloon turns blue"), and painting
  ("paints the fence white"). A thing is followed only where the texts are about one of it (`colour_changes`:
  not two "a … car"s, and a new colour said of the thing, not an adjective that picks another one out).
  For a thing seen in two or more colours, the questions ask what colour it was
  before it turned X, what colour it turned after being X, and its colour at the start or the end of the
  video (at the start only where its first colour is a state: "The door turns red" first says nothing of
  the door's colour before). The MCQ options are the thing's colours plus seeded distractors from the colour list. A row where
  no thing changes colour is a reject `missing_annotation`.
- `temporal_referring`: an event named by its text and the question what happens right after (or right
  before) it; the options are other events of the sequence, the answer the next (previous) one. Asked only
  where that has one answer: the event is said once, nothing begins (ends) while it lasts, and one text
  starts next (ends last); what happens at the same time as the event is never a wrong option.

Every choice comes from the seeded RNG of `annotated.py`, so a build is byte-identical run to run.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from pydantic import Field

from vdata.schemas import records as R

from .annotated import (EDGE_TOLERANCE_S, annotation_evidence, missing, once, phrase, rng, template_sample,
                        text_identity, timed_items)
from .common import Strict, TaskFamily

if TYPE_CHECKING:
    from .common import StageView

COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey")
_COLOUR = "(" + "|".join(COLOURS + ("gray",)) + ")"
# words that follow a colour without being the coloured thing ("red and", "blue in the light")
_NOT_THINGS = {"and", "or", "in", "on", "at", "to", "of", "with", "by", "from", "as", "than", "light", "colour",
               "color", "one", "ones", "now", "again", "too", "then"}
_BEFORE_NOUN = re.compile(rf"\b{_COLOUR}\s+([a-z]+)\b")
_LINKED = re.compile(rf"\b([a-z]+)\s+(?:is|was|turns|turned|becomes|became|goes|went|looks|changes to|changed to|"
                     rf"is now|turns into)\s+(?:now\s+|all\s+|bright\s+|dark\s+)?{_COLOUR}\b")
# a determiner that brings a thing in as a new one, right before "<colour> <noun>"
_INDEFINITE = re.compile(r"\b(?:a|an|another|one|some)\s+$")
_BARE_INDEFINITE = re.compile(r"\b(?:a|an|another)\s+([a-z]+)\b")
_PAINTED = re.compile(rf"\b(?:paints?|painted|dyes?|dyed|colou?rs?)\s+(?:the|a|an|his|her|their)\s+([a-z]+)\s+{_COLOUR}\b")
# a colour the thing turns into: what it was before is not said ("The door turns red" first: not red at the start)
_TURNED = re.compile(rf"\b([a-z]+)\s+(?:turns|turned|becomes|became|goes|went|changes to|changed to|turns into|"
                     rf"is now)\s+(?:now\s+|all\s+|bright\s+|dark\s+)?{_COLOUR}\b")


def turned_into(text: str, thing: str, colour: str) -> bool:
    """Whether `text` says the thing changes to the colour (or is painted it), rather than that it is it."""
    low = text.lower()
    return any(m.group(1) == thing and _norm_colour(m.group(2)) == colour for m in _TURNED.finditer(low)) or \
        any(m.group(1) == thing and _norm_colour(m.group(2)) == colour for m in _PAINTED.finditer(low))


ATTRIBUTE_TEMPLATES = {
    "before": "What colour was the $thing before it turned $after?",
    "after": "What colour did the $thing turn after being $before?",
    "start": "What colour is the $thing at the start of the video?",
    "end": "What colour is the $thing at the end of the video?",
}
REFERRING_TEMPLATES = {
    "after": 'What happens right after "$event"?',
    "before": 'What happens right before "$event"?',
}


def _norm_colour(c: str) -> str:
    return "grey" if c == "gray" else c


def colour_mentions(text: str) -> list[tuple[str, str, bool, bool]]:
    """(thing, colour, predicated, indefinite) for each colour said of a thing in one text, in order.
    predicated: the colour is said of the thing ("the balloon turns blue", "paints the fence white"), not
    an adjective that may pick one thing out of several ("the blue car"); indefinite: "a/an/another red
    car", a thing brought in as a new one."""
    low = text.lower()
    found: list[tuple[int, str, str, bool, bool]] = []
    for m in _BEFORE_NOUN.finditer(low):
        if m.group(2) not in _NOT_THINGS and m.group(2) not in COLOURS:
            indefinite = bool(_INDEFINITE.search(low[:m.start()]))
            found.append((m.start(), m.group(2), _norm_colour(m.group(1)), False, indefinite))
    for m in _LINKED.finditer(low):
        if m.group(1) not in _NOT_THINGS and m.group(1) not in ("it", "he", "she", "they", "this", "that"):
            found.append((m.start(), m.group(1), _norm_colour(m.group(2)), True, False))
    for m in _PAINTED.finditer(low):
        found.append((m.start(), m.group(1), _norm_colour(m.group(2)), True, False))
    for m in _BARE_INDEFINITE.finditer(low):   # "a car" with no colour: a new one all the same
        if m.group(1) not in _NOT_THINGS:
            found.append((m.start(), m.group(1), "", False, True))
    return [(thing, colour, predicated, indefinite) for _, thing, colour, predicated, indefinite in sorted(found)]


def colours_in(text: str) -> dict[str, str]:
    """thing -> colour said in one text (the last one wins when a thing is given two)."""
    return {thing: colour for thing, colour, _, _ in colour_mentions(text) if colour}


def colour_changes(items: list[tuple[float, float, str]]) -> dict[str, list[tuple[int, str]]]:
    """thing -> [(item index, colour)] at each change (first sighting included), for the things that change.

    A thing is followed only where the texts are about one of it: a noun brought in twice as a new one ("A
    red car waits." ... "A blue car passes it.") or given two colours in one text names two things, and a
    change counts only where the new colour is said of the thing ("the car turns blue", "is now blue"),
    never where it is an adjective ("the blue team" after "the red team": another team). Such a thing is
    left out; T3's attribute questions follow one thing whose colour changes."""
    seen: dict[str, list[tuple[int, str]]] = {}
    introduced: Counter = Counter()
    ambiguous: set[str] = set()
    for k, (_, _, text) in enumerate(items):
        said: dict[str, set[str]] = {}
        for thing, colour, predicated, indefinite in colour_mentions(text):
            introduced[thing] += indefinite
            if not colour:
                continue
            said.setdefault(thing, set()).add(colour)
            track = seen.setdefault(thing, [])
            if not track or track[-1][1] != colour:
                if track and not predicated:
                    ambiguous.add(thing)
                track.append((k, colour))
        ambiguous |= {thing for thing, colours in said.items() if len(colours) > 1}
    ambiguous |= {thing for thing, n in introduced.items() if n > 1}
    return {thing: track for thing, track in seen.items()
            if thing not in ambiguous and len({c for _, c in track}) >= 2}


class AttributeChangeTask(Strict):
    seed: int = 0
    per_clip: int = Field(2, ge=1, le=16)
    num_options: int = Field(4, ge=2, le=len(COLOURS))
    question_type: str = "attribute_change"


class TemporalReferringTask(Strict):
    seed: int = 0
    per_clip: int = Field(2, ge=1, le=16)
    num_options: int = Field(4, ge=2, le=8)
    ask: str = Field("both", pattern="^(before|after|both)$")
    question_type: str = "temporal_referring"


def _mcq(base: dict, question: str, answer: str, others: list[str], draw) -> dict:
    options = [answer] + others
    draw.shuffle(options)
    base[R.TASK] = "mcq"   # stored as an MCQ, so MCQ filters and exporters take it
    base[R.QUESTION] = question
    base[R.OPTIONS] = options
    base[R.ANSWER_INDEX] = options.index(answer)
    base[R.ANSWER] = answer
    return base


def _plan_attribute_change(stage: StageView, row: dict, clues, tcfg: AttributeChangeTask):
    task, prompt_id = "attribute_change", "generate/attribute_change@builtin:v1"
    items, total = timed_items(row, "segments", "text")
    changes = colour_changes(items)
    if not changes:
        return [missing(stage, row, task, prompt_id, "segments (a thing whose colour changes)", total)], []
    candidates = []   # (thing, kind, answer colour, item indices it rests on, template values)
    for thing, track in sorted(changes.items()):
        for (i, a), (j, b) in zip(track, track[1:]):
            candidates.append((thing, "before", a, (i, j), {"after": b}))
            candidates.append((thing, "after", b, (i, j), {"before": a}))
        if not turned_into(items[track[0][0]][2], thing, track[0][1]):   # a state, not a change (h24 F16)
            candidates.append((thing, "start", track[0][1], (track[0][0], track[1][0]), {}))
        candidates.append((thing, "end", track[-1][1], (track[-2][0], track[-1][0]), {}))
    draw = rng(task, tcfg, row, "questions")
    chosen = sorted(draw.sample(range(len(candidates)), min(tcfg.per_clip, len(candidates))))
    out = []
    for n in chosen:
        thing, kind, answer, used, values = candidates[n]
        pick = rng(task, tcfg, row, "options", n)
        own = [c for _, c in changes[thing] if c != answer]
        spare = [c for c in COLOURS if c != answer and c not in own]
        pick.shuffle(spare)
        others = list(dict.fromkeys(own))[:tcfg.num_options - 1]
        others += spare[:tcfg.num_options - 1 - len(others)]
        question = ATTRIBUTE_TEMPLATES[kind].replace("$thing", thing)
        for key, value in values.items():
            question = question.replace(f"${key}", value)
        base = template_sample(stage, row, task, n, prompt_id, tcfg.question_type)
        base[R.EVIDENCE] = annotation_evidence([items[k] for k in sorted(set(used))])
        out.append(_mcq(base, question, answer, others, pick))
    return out, []


def neighbour(items: list[tuple[float, float, str]], k: int, ask: str) -> tuple[float, float, str] | None:
    """The item right after (`ask="after"`) or right before items[k], or None where that has no single
    answer: an event begins (ends) while items[k] lasts, or two texts share the next start (last end)."""
    a, b, _ = items[k]
    tol = EDGE_TOLERANCE_S
    after = ask == "after"
    # something begins (ends) while the anchor lasts: it, not the next item, would be "right after" (before)
    if any(j != k and (a < i[0] < b - tol if after else a + tol < i[1] < b) for j, i in enumerate(items)):
        return None
    side = [i for i in items if i[0] >= b - tol] if after else [i for i in items if i[1] <= a + tol]
    if not side:
        return None
    edge = min(i[0] for i in side) if after else max(i[1] for i in side)
    at = [i for i in side if abs((i[0] if after else i[1]) - edge) <= tol]
    return at[0] if len({text_identity(i[2]) for i in at}) == 1 else None


def _wrong_options(items, texts: list[str], anchor, answer) -> list[str]:
    """The texts offered as wrong: never the anchor itself, nor what happens at the same time as it."""
    during = {phrase(t) for a, b, t in items if a < anchor[1] and anchor[0] < b}
    return [t for t in texts if t != phrase(answer[2]) and t not in during]


def _plan_temporal_referring(stage: StageView, row: dict, clues, tcfg: TemporalReferringTask):
    task, prompt_id = "temporal_referring", "generate/temporal_referring@builtin:v1"
    items, total = timed_items(row, "segments", "text")
    texts = list(dict.fromkeys(phrase(t) for _, _, t in items))
    asks = ("after", "before") if tcfg.ask == "both" else (tcfg.ask,)
    # anchors: texts said once (a step done twice has no single "right after"), with a single neighbour
    anchors = {(a, b, t) for a, b, t in once(items)}
    candidates = [(k, ask, found) for ask in asks for k, item in enumerate(items)
                  if item in anchors and (found := neighbour(items, k, ask)) is not None
                  and _wrong_options(items, texts, item, found)]
    if len(texts) < 3 or not candidates:   # an anchor, its neighbour and at least one other event to choose from
        return [missing(stage, row, task, prompt_id, "segments (three or more distinct, one with a single "
                        "event right after or before it)", total)], []
    draw = rng(task, tcfg, row, "anchors")
    chosen = sorted(draw.sample(range(len(candidates)), min(tcfg.per_clip, len(candidates))))
    out = []
    for n in chosen:
        k, ask, found = candidates[n]
        anchor, answer = items[k], phrase(found[2])
        pick = rng(task, tcfg, row, "options", n)
        others = _wrong_options(items, texts, anchor, found)
        pick.shuffle(others)
        question = REFERRING_TEMPLATES[ask].replace("$event", phrase(anchor[2]))
        base = template_sample(stage, row, task, n, prompt_id, tcfg.question_type)
        base[R.EVIDENCE] = annotation_evidence(sorted([anchor, found]))
        out.append(_mcq(base, question, answer, others[:tcfg.num_options - 1], pick))
    return out, []


ATTRIBUTE_CHANGE = TaskFamily(AttributeChangeTask, _plan_attribute_change)
TEMPORAL_REFERRING = TaskFamily(TemporalReferringTask, _plan_temporal_referring)
