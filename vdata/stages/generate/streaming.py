"""streaming_dialogue: a timed multi-turn dialogue over a row's events, teacher-free (VideoLLM-online / LIVE).

VideoLLM-online (Chen et al., CVPR 2024; showlab/videollm-online) trains on streaming dialogues: a user
query at time t, then assistant turns at the times of the events that follow it, the model staying silent
between them. Its livechat annotations are `{video_uid, conversation: [{role, content, time}]}` with the
first turn the user's at a time > 0 and times non-decreasing (`data/ego4d/livechat.py`); its filter drops
replies that give times away ("second", "12s": `data/livechat/filter.py`).

Here the timeline is the row's timed items of one source, the first in `sources` order with at least
`min_turns` items: dense events (`E…`), annotated segments (`A…`), caption steps (`S…`), transcript
segments (`T…`) or subtitles (`U…`). Dialogue k (of `per_clip`) starts at item k·n/per_clip: the user's
query (a template of `queries`, seeded) comes at that item's start (at least `min_query_time_s`, as the
loader requires a time > 0), and each following item (up to `max_turns`) is an assistant turn with the
item's text, timed at the item's end (`respond_at: end`, the moment it has been seen; `start` for
guidance that speaks as a step begins); a point annotation (an Ego4D narration, its `time_s` widened into
a window by its reader) at its own moment, as VideoLLM-online times it. A dialogue one of whose items states a time is rejected
(`time_in_reply`), as LIVE's filter drops the whole annotation: leaving the item out would teach the
model to stay silent through an event it saw. Events and steps (a captioner's words) are held to LIVE's
rule, durations included; speech, subtitles and annotated segments (the video's own words) only to moments.

The sample keeps the dialogue in `turns` (role, content, time_s; video-absolute), the query as
`question`, the assistant turns as timed lines in `answer` (`{{t:..}} text`, so single-turn exports
still carry it) and the items' intervals in `answer_spans`. A row with too few items is one
`too_few_events` reject.

With `rephrase: true` the stage's teacher rewrites the replies as spoken turns (LIVE has an LLM turn
narrations into dialogue), one request per dialogue: the times stay the items' own, a rewritten reply
that states a time (`time_leak`: the shared detector of vdata/prompts/stated_times.py, "0:10", "one minute",
"12s", or a bare "seconds"), has JSON debris, fewer than two words or was cut at its schema cap (caps.py) keeps the item's text (counted as `rephrase_kept_original`), and
a reply list of the wrong length is a `bad_reply` reject.
"""
from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from vdata.prompts import unescape_placeholders
from vdata.prompts.stated_times import states_time
from vdata.schemas import records as R

from .annotated import annotation_evidence, t_placeholder
from .benchmark_tasks import annotation_clues
from .caps import is_cut
from .clues import Clue
from .common import (Pending, Strict, TaskFamily, sample_base, stable_hash, strict_object, teacher_request,
                     text_field)

if TYPE_CHECKING:
    from .common import StageView

TASK = "streaming_dialogue"
Source = Literal["events", "segments", "steps", "transcript", "subtitles"]
PREFIX = {"events": "E", "segments": "A", "steps": "S", "transcript": "T", "subtitles": "U"}
DEFAULT_QUERIES = ["Please narrate what happens in the video as it happens.",
                   "Tell me what is going on whenever something new happens.",
                   "Can you describe each step as I do it?",
                   "Keep me posted on what happens in the video."]
# LIVE's filter: a reply naming seconds may leak the ground-truth time. A stated time is found by the
# shared detector (vdata/prompts/stated_times.py: "12s", "0:10", "one minute", "the 30 second mark", ...);
# a bare unit word ("seconds later", "a few minutes") and vdata's own placeholder syntax count too.
# "second" as an ordinal ("the second loaf") is no time.
_TIME_WORD = re.compile(r"\b(?:seconds|minutes|secs|mins)\b|\{\{", re.IGNORECASE)
_PLACEHOLDER_START = re.compile(r"\{\{")


# Sources whose words are the video's own (speech, subtitles, annotated segments): a duration they say ("bake it
# for 20 minutes", "one second, please") is content and gives no time away, a moment ("at 0:05") still does.
# Events and steps are a captioner's writing, held to LIVE's filter (outside check h20: a cooking video's
# subtitles saying "minutes" lost its whole dialogue).
OWN_WORDS = ("transcript", "subtitles", "segments")


def time_leak(text: str, durations: bool = True) -> str | None:
    """What in `text` gives a time away, or None; `durations=False`: only a stated moment (and placeholders)."""
    if stated := states_time(text, durations=durations):
        return stated.text
    m = (_TIME_WORD if durations else _PLACEHOLDER_START).search(text or "")
    return m.group(0) if m else None



class StreamingDialogueTask(Strict):
    per_clip: int = Field(1, ge=0, le=16)                 # dialogues per row, each from a later query time
    sources: list[Source] = Field(default_factory=lambda: ["events", "segments", "steps", "transcript", "subtitles"])
    min_turns: int = Field(2, ge=1)                       # assistant turns a dialogue needs
    max_turns: int = Field(16, ge=1, le=256)
    respond_at: Literal["end", "start"] = "end"
    min_query_time_s: float = Field(0.1, gt=0)
    queries: list[str] = Field(default_factory=lambda: list(DEFAULT_QUERIES), min_length=1)
    seed: int = 0
    rephrase: bool = False                                # the stage's teacher rewrites replies as spoken turns

    @model_validator(mode="after")
    def _check(self):
        if not self.sources:
            raise ValueError(f"sources: name at least one of {', '.join(PREFIX)}")
        if self.max_turns < self.min_turns:
            raise ValueError("max_turns: must be at least min_turns")
        return self


def _items(row: dict, clues: list[Clue], source: str, leaks: list | None = None) -> list[tuple[float, float, str]]:
    """The source's timed items, in time order; those naming a time also go to `leaks`. A text that repeats
    the item just before it is one turn; a text that comes back after another event ("C stirs the pot."
    again) is a turn of its own, as VideoLLM-online's narration stream keeps it: leaving it out would train
    the model to stay silent through an event it saw (outside check h24 F7)."""
    pattern = re.compile(PREFIX[source] + r"\d+")
    found = [c for c in clues if pattern.fullmatch(c.id)]
    if not found and source == "segments":
        found = annotation_clues(row, "segments")
    timed = []
    for c in found:
        text = " ".join((c.text or "").split())
        if c.start_s is not None and text:
            end = c.end_s if c.end_s is not None else c.start_s
            timed.append((float(c.start_s), float(max(end, c.start_s)), text))
    out: list[tuple[float, float, str]] = []
    for item in sorted(timed):
        if out and out[-1][2].lower() == item[2].lower():
            continue
        if leaks is not None and time_leak(item[2], durations=source not in OWN_WORDS):
            leaks.append(item[2])
        out.append(item)
    return out


def _moments(row: dict) -> dict[tuple, float]:
    """{(start, end, text): moment} of the row's point annotations: an Ego4D narration is a moment (`time_s`)
    that its reader widens into an EgoClip window; VideoLLM-online answers at the moment itself
    (`ceil_time_by_fps(narration['time'])` in its narration stream), not at the window's edge (h24 F14)."""
    raw = R.source_meta(row).get("segments")
    out = {}
    for s in raw if isinstance(raw, list) else []:
        if isinstance(s, dict) and isinstance(s.get("time_s"), (int, float)) and isinstance(s.get("text"), str):
            try:
                out[(round(float(s["start_s"]), 3), round(float(s["end_s"]), 3), " ".join(s["text"].split()))] = float(s["time_s"])
            except (KeyError, TypeError, ValueError):
                continue
    return out


def _plan(stage: StageView, row: dict, clues: list[Clue], tcfg: StreamingDialogueTask):
    if not tcfg.per_clip:
        return [], []
    prompt_id = f"generate/{TASK}@v1"
    counts = {}
    items: list = []
    for source in tcfg.sources:
        leaks: list[str] = []
        items = _items(row, clues, source, leaks)
        counts[source] = len(items)
        if len(items) >= tcfg.min_turns:
            # LIVE's filter: a narration naming seconds would give its own time away (its dialogue is rejected)
            stage.counters["streaming_items_naming_a_time"] += len(leaks)
            break
    else:
        base = sample_base(stage, row, TASK, 0, prompt_id, teacher=False)
        return [stage.reject(base, "too_few_events", f"{TASK} needs {tcfg.min_turns} timed items of one source; "
                             f"found {counts}", found=counts, need=tcfg.min_turns)], []
    made, asked_teacher, moments = [], [], _moments(row)
    for k in range(tcfg.per_clip):
        first = k * len(items) // tcfg.per_clip
        chunk = items[first:first + tcfg.max_turns]
        if len(chunk) < tcfg.min_turns or (k and first == (k - 1) * len(items) // tcfg.per_clip):
            continue
        rng = random.Random(stable_hash(TASK, tcfg.seed, row[R.CLIP_ID], k))
        query = tcfg.queries[rng.randrange(len(tcfg.queries))]
        asked = max(chunk[0][0], tcfg.min_query_time_s)
        turns = [{"role": "user", "content": query, "time_s": asked}]
        # each reply when its event has been seen (its end) or begins: in that order, so that overlapping
        # events (one ending at 10 s inside one ending at 11 s) are never announced out of time
        def reply_at(item):   # a point annotation's own moment, else the edge `respond_at` names
            a, b, text = item
            return moments.get((round(a, 3), round(b, 3), text), b if tcfg.respond_at == "end" else a)

        chunk = sorted(chunk, key=lambda item: (reply_at(item), item[0]))
        for item in chunk:
            turns.append({"role": "assistant", "content": item[2], "time_s": max(reply_at(item), asked)})
        out = sample_base(stage, row, TASK, k, prompt_id, teacher=False)
        named = [text for _, _, text in chunk if text in leaks]
        if named:
            made.append(stage.reject(out, "time_in_reply", f"{TASK} #{k}: the reply {named[0][:60]!r} states a time, "
                                     "which gives its own time away (LIVE's filter drops such a dialogue)", replies=named))
            continue
        out.update({R.QUESTION_TYPE: "streaming", R.QUESTION: query, R.TURNS: turns,
                    R.ANSWER: _answer(turns),
                    R.ANSWER_SPANS: [{"start_s": a, "end_s": b} for a, b, _ in chunk],
                    R.EVIDENCE: annotation_evidence(chunk)})
        if tcfg.rephrase:
            asked_teacher.append(_rephrase_request(stage, row, clues, k, out))
        else:
            made.append(out)
    return made, asked_teacher


def _answer(turns: list[dict]) -> str:
    return "\n".join(f"{t_placeholder(t['time_s'])} {t['content']}" for t in turns[1:])


def _rephrase_request(stage: StageView, row: dict, clues: list[Clue], k: int, sample: dict) -> Pending:
    prompt = stage.prompts["streaming_rephrase"]
    replies = [t["content"] for t in sample[R.TURNS][1:]]
    text = prompt.render(query=sample[R.QUESTION], count=len(replies),
                         events="\n".join(f"{n}. {r}" for n, r in enumerate(replies, 1)))
    item = text_field(min(stage.config.max_answer_chars, 200))
    schema = strict_object({"replies": {"type": "array", "items": item, "minItems": len(replies),
                                        "maxItems": len(replies)}})
    req = teacher_request(stage, prompt, text, [], schema, "streaming_rephrase", (row[R.CLIP_ID], TASK, k))
    return Pending(TASK, k, "streaming", prompt, req, {"sample": sample})


def _spoken(text: str) -> bool:
    """A usable rewritten reply: two words or more, no time stated, no JSON debris (a small model's
    broken replies still fit the schema's string type)."""
    return len(re.findall(r"[A-Za-z]{2,}", text)) >= 2 and not time_leak(text) and not re.search(r"[\[\]{}]", text)


def _finish(stage: StageView, row: dict, clues: list[Clue], p: Pending, reply: dict, base: dict, state: dict):
    sample = p.extra["sample"]
    raw = [str(r) for r in reply.get("replies") or []]
    replies = [" ".join(r.split()) for r in raw]
    cap = min(stage.config.max_answer_chars, 200)   # the schema's item cap (_rephrase_request)
    turns = [dict(t) for t in sample[R.TURNS]]
    if len(replies) != len(turns) - 1:
        return [stage.reject(base, "bad_reply", f"{TASK} #{p.index}: {len(replies)} replies for {len(turns) - 1} "
                             "events", replies=replies)]
    for turn, text, written in zip(turns[1:], replies, raw):
        # a rewrite cut at its cap (caps.py, h25 F15) is no whole turn: the item's own text stays
        if _spoken(text) and not (stage.config.cap_is_cut and is_cut(unescape_placeholders(written), cap)):
            turn["content"] = text
        else:
            stage.counters["rephrase_kept_original"] += 1
    out = dict(sample)
    out.update({R.SAMPLE_ID: base[R.SAMPLE_ID], R.SAMPLE_PROMPT_VERSION: p.prompt.id, R.TURNS: turns,
                R.ANSWER: _answer(turns), R.SAMPLE_TEACHER: base[R.SAMPLE_TEACHER], R.SAMPLE_MODEL: base[R.SAMPLE_MODEL]})
    return [out]


STREAMING_DIALOGUE = TaskFamily(StreamingDialogueTask, _plan, _finish, prompts=("streaming_rephrase",),
                                needs_teacher=lambda tcfg: tcfg.rephrase)
