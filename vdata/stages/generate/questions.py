"""Question tasks (open_qa, mcq, cot): question types, their per-clip quotas, and the shared request.

With `answer_first` (open_qa, mcq), a speech question is planned the other way round: the answer is
a span of one transcript sentence (`answer_first.py`; a segment is split at its sentence ends) and the teacher writes only the question, as
`candidates` tries; the first grounded one is the sample. A clip with no such span gets no speech
question.

Question types get quotas by systematic sampling: clip-hash-offset points spaced 1/n over the weights'
cumulative distribution, so each clip gets ⌊n·w⌋ or ⌈n·w⌉ of each type and the dataset's shares match
the weights. Types whose evidence is missing (speech without a transcript, temporal order with fewer
than two timed clues) are skipped for that clip.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from pydantic import Field, field_validator, model_validator

from vdata.schemas import records as R

from .answer_first import Span, answer_spans, masked, pick_span, question_schema
from .clues import Clue, clue_lines
from .common import Pending, Strict, stable_hash, strict_object, teacher_request, text_field

if TYPE_CHECKING:
    from .common import StageView

DEFAULT_TYPE_WEIGHTS = {"description": 2.0, "action": 1.0, "attribute": 1.0, "counting": 1.0, "temporal": 1.0,
                        "causal": 0.5, "camera": 0.5, "ocr": 0.5, "speech": 1.0, "spatial": 0.5}


class QuestionType(Strict):
    weight: float = Field(1.0, ge=0)
    guidance: str | None = None          # None: the shipped line in generate/question_types


def _types_field(value):
    """`{name: weight}` or `{name: {weight, guidance}}` → `{name: QuestionType}`."""
    if value is None:
        return value
    if not isinstance(value, dict):
        raise ValueError("question_types must be a mapping of type name to weight or {weight, guidance}")
    return {k: (QuestionType(weight=v) if isinstance(v, (int, float)) else v) for k, v in value.items()}


class QuestionTask(Strict):
    """Settings every question task has; a task's own config subclasses it."""
    per_clip: int = Field(2, ge=0, le=64)
    question_types: dict[str, QuestionType] = Field(
        default_factory=lambda: {k: QuestionType(weight=v) for k, v in DEFAULT_TYPE_WEIGHTS.items()})

    @field_validator("question_types", mode="before")
    @classmethod
    def _coerce(cls, value):
        return _types_field(value)

    @model_validator(mode="after")
    def _some_weight(self):
        if self.per_clip and not any(t.weight > 0 for t in self.question_types.values()):
            raise ValueError("question_types: at least one type needs a weight > 0")
        return self


def assign_types(weights: dict[str, float], n: int, key: str) -> list[str]:
    """n types by systematic sampling over the weights (offset from `key`): quotas within ±1 per clip."""
    items = [(t, w) for t, w in weights.items() if w > 0]
    if not items or n <= 0:
        return []
    total = sum(w for _, w in items)
    offset = (stable_hash("types", key) % 1_000_003) / 1_000_003
    out = []
    for j in range(n):
        x = ((offset + j / n) % 1.0) * total
        acc = 0.0
        for t, w in items:
            acc += w
            if x < acc:
                out.append(t)
                break
        else:
            out.append(items[-1][0])
    return out


def _applicable(qtype: str, clues: list[Clue]) -> bool:
    if qtype == "speech":
        return any(c.kind == "speech" for c in clues)
    if qtype == "temporal":
        return sum(1 for c in clues if c.timed and c.kind in ("event", "step", "speech")) >= 2
    return True


# (stage, task config, clue ids) → the task's own reply fields (after `question`) and prompt values
ReplyFields = Callable[["StageView", QuestionTask, list[str]], tuple[dict, dict]]


def plan_questions(task: str, reply_fields: ReplyFields):
    """The `plan` of a question task: its quota of question types, one schema-bound request each."""

    def plan(stage: StageView, row: dict, clues: list[Clue], tcfg: QuestionTask):
        if not tcfg.per_clip:
            return [], []
        weights = {t: q.weight for t, q in tcfg.question_types.items() if _applicable(t, clues)}
        types = assign_types(weights, tcfg.per_clip, f"{row[R.CLIP_ID]}|{task}")
        answer_first = getattr(tcfg, "answer_first", False)
        n = getattr(tcfg, "candidates", 1) if answer_first else 1
        spans = speech_spans(clues) if answer_first else []
        names = [s.key for s, _ in spans if s.kind == "name"]
        out = []
        for i, qtype in enumerate(types):
            if qtype != "speech" or not answer_first:   # request indexes i·n + candidate keep sample ids apart
                out.append(_request(stage, task, i * n, qtype, clues, tcfg, reply_fields))
                continue
            picked = pick_span([s for s, _ in spans], row[R.CLIP_ID], task, i)
            if picked is None:
                continue
            clue = next(c for s, c in spans if s == picked)
            out += [_answer_first_request(stage, task, i, n, c, picked, clue, names) for c in range(n)]
        return [], out

    return plan


def speech_spans(clues: list[Clue]) -> list[tuple[Span, Clue]]:
    """Every answer span of the clip's transcript segments, with the segment it stands in. A span's
    sentence is one sentence of its segment (`answer_spans` splits them): its question is grounded in, and
    its open answer quotes, that sentence alone."""
    return [(s, c) for c in clues if c.kind == "speech" for s in answer_spans(c.text)]


def _answer_first_request(stage: StageView, task: str, group: int, n: int, candidate: int, span: Span,
                          clue: Clue, names: list[str]) -> Pending:
    prompt = stage.prompts["question_for_answer"]
    text = prompt.render(masked=masked(span), opener=span.opener)
    schema = question_schema(span)
    req = teacher_request(stage, prompt, text, [], schema, task, (task, group, candidate, span.text, span.sentence))
    if n > 1:   # the question's other candidates are its tries: a re-ask of a reply cut at max_tokens only repeats it
        req.schema_retries = 0
    extra = {"span": span, "clue": clue, "group": group, "candidate": candidate, "names": names}
    return Pending(task, group * n + candidate, "speech", prompt, req, extra)


def _request(stage: StageView, task: str, index: int, qtype: str, clues: list[Clue], tcfg: QuestionTask,
             reply_fields: ReplyFields) -> Pending:
    prompt = stage.prompts[task]
    guidance = tcfg.question_types[qtype].guidance or stage.type_guidance[qtype]
    clue_text = clue_lines(clues)
    own_props, own_values = reply_fields(stage, tcfg, [c.id for c in clues])
    props = {"question": text_field(stage.config.max_question_chars), **own_props}
    text = prompt.render(clues=clue_text, index=index + 1, question_type=qtype, type_guidance=guidance, **own_values)
    req = teacher_request(stage, prompt, text, clues, strict_object(props), task, (task, index, qtype, clue_text))
    return Pending(task, index, qtype, prompt, req, {})


def read_question(stage: StageView, base: dict, reply: dict, task: str):
    """Fills the question and answer into `base`; a reject when either is empty, else None."""
    question = (reply.get("question") or "").strip()
    answer = (reply.get("answer") or "").strip()
    if not question or not answer:
        return stage.reject(base, "bad_reply", f"{task}: empty question or answer", reply=reply)
    base[R.QUESTION], base[R.ANSWER] = question, answer
    return None
