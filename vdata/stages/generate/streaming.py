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
guidance that speaks as a step begins). Item texts that state times are left out, as LIVE's filter does.

The sample keeps the dialogue in `turns` (role, content, time_s; video-absolute), the query as
`question`, the assistant turns as timed lines in `answer` (`{{t:..}} text`, so single-turn exports
still carry it) and the items' intervals in `answer_spans`. A row with too few items is one
`too_few_events` reject.
"""
from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from vdata.schemas import records as R

from .annotated import annotation_evidence, t_placeholder
from .benchmark_tasks import annotation_clues
from .clues import Clue
from .common import Strict, TaskFamily, sample_base, stable_hash

if TYPE_CHECKING:
    from .stage import GenerateStage

TASK = "streaming_dialogue"
Source = Literal["events", "segments", "steps", "transcript", "subtitles"]
PREFIX = {"events": "E", "segments": "A", "steps": "S", "transcript": "T", "subtitles": "U"}
DEFAULT_QUERIES = ["Please narrate what happens in the video as it happens.",
                   "Tell me what is going on whenever something new happens.",
                   "Can you describe each step as I do it?",
                   "Keep me posted on what happens in the video."]
# LIVE's filter: a reply naming seconds may leak the ground-truth time
TIME_LEAK = re.compile(r"\bseconds?\b|\b\d+(\.\d+)?\s?s\b|\{\{", re.IGNORECASE)


class StreamingDialogueTask(Strict):
    per_clip: int = Field(1, ge=0, le=16)                 # dialogues per row, each from a later query time
    sources: list[Source] = Field(default_factory=lambda: ["events", "segments", "steps", "transcript", "subtitles"])
    min_turns: int = Field(2, ge=1)                       # assistant turns a dialogue needs
    max_turns: int = Field(16, ge=1, le=256)
    respond_at: Literal["end", "start"] = "end"
    min_query_time_s: float = Field(0.1, gt=0)
    queries: list[str] = Field(default_factory=lambda: list(DEFAULT_QUERIES), min_length=1)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        if not self.sources:
            raise ValueError(f"sources: name at least one of {', '.join(PREFIX)}")
        if self.max_turns < self.min_turns:
            raise ValueError("max_turns: must be at least min_turns")
        return self


def _items(row: dict, clues: list[Clue], source: str) -> list[tuple[float, float, str]]:
    pattern = re.compile(PREFIX[source] + r"\d+")
    found = [c for c in clues if pattern.fullmatch(c.id)]
    if not found and source == "segments":
        found = annotation_clues(row, "segments")
    out, seen = [], set()
    for c in found:
        text = " ".join((c.text or "").split())
        if c.start_s is None or not text or TIME_LEAK.search(text) or text.lower() in seen:
            continue
        seen.add(text.lower())
        end = c.end_s if c.end_s is not None else c.start_s
        out.append((float(c.start_s), float(max(end, c.start_s)), text))
    return sorted(out)


def _plan(stage: GenerateStage, row: dict, clues: list[Clue], tcfg: StreamingDialogueTask):
    if not tcfg.per_clip:
        return [], []
    prompt_id = f"generate/{TASK}@v1"
    counts = {}
    items: list = []
    for source in tcfg.sources:
        items = _items(row, clues, source)
        counts[source] = len(items)
        if len(items) >= tcfg.min_turns:
            break
    else:
        base = sample_base(stage, row, TASK, 0, prompt_id, teacher=False)
        return [stage.reject(base, "too_few_events", f"{TASK} needs {tcfg.min_turns} timed items of one source; "
                             f"found {counts}", found=counts, need=tcfg.min_turns)], []
    made = []
    for k in range(tcfg.per_clip):
        first = k * len(items) // tcfg.per_clip
        chunk = items[first:first + tcfg.max_turns]
        if len(chunk) < tcfg.min_turns or (k and first == (k - 1) * len(items) // tcfg.per_clip):
            continue
        rng = random.Random(stable_hash(TASK, tcfg.seed, row[R.CLIP_ID], k))
        query = tcfg.queries[rng.randrange(len(tcfg.queries))]
        asked = max(chunk[0][0], tcfg.min_query_time_s)
        turns = [{"role": "user", "content": query, "time_s": asked}]
        for a, b, text in chunk:
            at = b if tcfg.respond_at == "end" else a
            turns.append({"role": "assistant", "content": text, "time_s": max(at, asked)})
        out = sample_base(stage, row, TASK, k, prompt_id, teacher=False)
        out.update({R.QUESTION_TYPE: "streaming", R.QUESTION: query, R.TURNS: turns,
                    R.ANSWER: "\n".join(f"{t_placeholder(t['time_s'])} {t['content']}" for t in turns[1:]),
                    R.ANSWER_SPANS: [{"start_s": a, "end_s": b} for a, b, _ in chunk],
                    R.EVIDENCE: annotation_evidence(chunk)})
        made.append(out)
    return made, []


STREAMING_DIALOGUE = TaskFamily(StreamingDialogueTask, _plan)
