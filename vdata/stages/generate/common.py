"""What every task family shares: the family contract, stable ids and seeds, bounded JSON schemas,
teacher requests, and the sample row skeleton.

A task family is one module that exports a `TaskFamily`; the registry in `stage.py` maps the task name
(the key under `tasks:`) to it. The stage owns the teacher, the prompts and the batching; a family only
plans a clip (samples it can write at once, requests for the teacher) and reads a reply back.
"""
from __future__ import annotations

import hashlib
import string
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from pydantic import BaseModel, ConfigDict

from vdata.prompts import Prompt
from vdata.schemas import records as R

from .clues import Clue

if TYPE_CHECKING:
    from vdata.stages.base import Reject


    Planned = tuple[list[dict], list["Pending"]]
    Rows = list[dict | Reject]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageView(Protocol):
    """What a task family uses of the generate stage. Families are typed against this view rather than
    `stage.StageView`, so that `stage.py` (which registers the families) is the only module that
    knows both sides: no import runs back from a family to the stage."""
    config: Any
    prompts: dict[str, Prompt]
    teacher: Any                      # the stage's default teacher, or None for teacher-free tasks
    counters: Counter
    fixed_questions: dict[str, list[str]]
    type_guidance: dict[str, str]

    def reject(self, row: dict, reason: str, message: str, **detail: Any) -> Reject: ...


@dataclass
class Pending:
    """One teacher request and what to do with its reply."""
    task: str
    index: int
    question_type: str | None
    prompt: Prompt
    request: Any
    extra: dict
    teacher: str | None = None           # a name under `teachers:`; None: the stage's `teacher`


def _no_teacher(task_config) -> bool:
    return False


@dataclass(frozen=True)
class TaskFamily:
    """One task family.

    `plan(stage, row, clues, task_config)` → (samples written without a teacher, requests);
    `finish(stage, row, clues, pending, reply, base, state)` → rows for one successful reply, where `base`
    is the sample row already keyed (id, task, prompt version, teacher) and `state` holds per-clip counters;
    `prompts`: the prompt names the family renders (loaded at setup, overridable under `prompts:`);
    `needs_teacher(task_config)`: whether the config must name a teacher for this task;
    `teachers(task_config)`: the other teachers its requests name (`Pending.teacher`), checked at setup;
    `handles_errors`: a failed request still reaches `finish` (reply `{"_error": message}`), for families
    whose sample stands on several replies. A family that needs a second round of requests (a judge over
    candidates) appends them to `state["followups"]` in `finish`; the stage sends them as the next round.
    `trim_at_cap`: the reply's top-level text fields that, cut at their schema cap, keep their complete
    sentences (`caps.read_at_cap`); any other field cut there makes the reply a `truncated` reject.
    """
    config: type[BaseModel]
    plan: Callable[..., Planned]
    finish: Callable[..., Rows] | None = None
    prompts: tuple[str, ...] = ()
    needs_teacher: Callable[[Any], bool] = _no_teacher
    teachers: Callable[[Any], list] = lambda task_config: []
    handles_errors: bool = False
    trim_at_cap: tuple[str, ...] = ()


# --- determinism helpers --------------------------------------------------------------------------

def stable_hash(*parts: Any) -> int:
    h = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def make_sample_id(clip_id: str, task: str, index: int, prompt_id: str) -> str:
    return hashlib.blake2b(f"{clip_id}|{task}|{index}|{prompt_id}".encode(), digest_size=12).hexdigest()


def parse_lines(text: str) -> dict[str, list[str]]:
    """`key: value` lines of a shipped list (question types, fixed task questions); `#` comments."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        out.setdefault(key.strip(), []).append(value.strip())
    return out


# --- JSON schemas (bounded: capped strings, enumerated ids, fixed counts) ---------------------------

def text_field(max_len: int) -> dict:
    return {"type": "string", "minLength": 1, "maxLength": max_len}


def id_list(ids: list[str], max_items: int, min_items: int = 1) -> dict:
    return {"type": "array", "items": {"type": "string", "enum": ids}, "minItems": min_items,
            "maxItems": max(min_items, min(max_items, len(ids)))}


def strict_object(props: dict) -> dict:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


# --- requests and rows ----------------------------------------------------------------------------

def sampling(cfg, *key: Any) -> dict:
    """Sampling settings of one request; the seed comes from the request's own key (reproducible, cacheable)."""
    s: dict = {"max_tokens": cfg.max_tokens}
    if cfg.seed:
        s["seed"] = stable_hash("seed", *key) % (2**31 - 1)
    if cfg.temperature is not None:
        s["temperature"] = cfg.temperature
    return s


def teacher_request(stage: StageView, prompt: Prompt, text: str, clues: list[Clue], schema: dict, name: str,
                    key: tuple):
    """A schema-bound request; frame clues travel as images."""
    from vdata.teachers import TeacherRequest

    images = [c.image for c in clues if c.kind == "frame" and c.image is not None]
    return TeacherRequest.from_prompt(text, images=images, json_schema=schema, schema_name=name,
                                      sampling=sampling(stage.config, *key), prompt_template_version=prompt.id)


def sample_base(stage: StageView, row: dict, task: str, index: int, prompt_id: str, *,
                sid_task: str | None = None, teacher: bool = True) -> dict:
    """The clip (or video) row with empty sample columns, keyed: id, task, scope, prompt version (and
    teacher, when one wrote it). A video row's clip_id is `<video_id>:video`, so its ids are its own."""
    out = dict(row)
    out.update({c: None for c in R.SAMPLE_COLUMNS})
    out[R.SAMPLE_ID] = make_sample_id(row[R.CLIP_ID], sid_task or task, index, prompt_id)
    out[R.TASK] = task
    out[R.SAMPLE_SCOPE] = row.get(R.SAMPLE_SCOPE) or R.SCOPE_CLIP   # the video row says "video"
    out[R.SAMPLE_PROMPT_VERSION] = prompt_id
    if teacher and stage.teacher is not None:
        out[R.SAMPLE_TEACHER] = stage.teacher.name
        out[R.SAMPLE_MODEL] = stage.teacher.model_name
    return out


def pick_question(stage: StageView, task: str, key: str, **values) -> str:
    """A fixed question for a teacher-free sample, from the shipped `task_questions` list (chosen by `key`)."""
    choices = stage.fixed_questions.get(task) or [f"{task}"]
    return string.Template(choices[stable_hash(task, key) % len(choices)]).safe_substitute(**values)


def spans_answer(spans: list[tuple[float, float, str]]) -> str:
    """Timestamped lines with exporter placeholders: `{{span:a,b}} text`."""
    return "\n".join(f"{{{{span:{a:g},{b:g}}}}} {text}" for a, b, text in spans)
