"""open_qa and mcq: questions whose answers cite clues; MCQs with balanced answer positions.

`mcq` asks for k options (the correct one + k−1 teacher-written distractors). The correct position is
`(hash(clip_id, prompt) + j) mod k` for the clip's j-th MCQ, so positions are uniform over the dataset,
deterministic across runs, and a clip's MCQs never share a position (when ≤ k). Each MCQ is also stored
as an open-ended sample (`open_form`).

With `answer_first: true`, speech questions take their answer from the transcript and the teacher writes
only the question (`answer_first.py`); of a question's `candidates` tries, the first grounded one is
kept and every other is a reject with its reason (`not_chosen` when an earlier one was kept). Its MCQ
distractors are the answer with its count, name, day, month or colour replaced.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import Field

from vdata.schemas import records as R
from vdata.stages.base import Reject

from .answer_first import about_speech, check_question, distractors, open_answer, ungrounded_words
from .clues import cited, evidence
from .common import TaskFamily, id_list, make_sample_id, stable_hash, text_field
from .questions import QuestionTask, plan_questions, read_question

if TYPE_CHECKING:
    from .common import StageView


class AnswerFirst(QuestionTask):
    answer_first: bool = False           # speech questions: answer from the transcript, teacher writes the question
    candidates: int = Field(1, ge=1, le=8)   # answer-first tries per question; the first grounded one is kept


class OpenQATask(AnswerFirst):
    per_clip: int = Field(3, ge=0, le=64)


class MCQTask(AnswerFirst):
    num_options: int = Field(4, ge=2, le=8)
    open_form: bool = True               # also store each MCQ as an open-ended sample


def answer_position(clip_id: str, prompt_id: str, j: int, k: int) -> int:
    """Where the clip's j-th MCQ puts its correct option: uniform over the dataset, distinct in a clip."""
    return (stable_hash("mcq-position", clip_id, prompt_id) + j) % k


# --- open_qa

def _open_qa_fields(stage: StageView, tcfg: OpenQATask, ids: list[str]) -> tuple[dict, dict]:
    return {"answer": text_field(stage.config.max_answer_chars), "evidence": id_list(ids, 4)}, {}


def _finish_open_qa(stage: StageView, row, clues, p, reply: dict, base: dict, state: dict):
    if "span" in p.extra:
        bad = _read_answer_first(stage, p, reply, base, state)
        if bad is None:
            base[R.ANSWER] = open_answer(p.extra["span"])
        return [bad or base]
    bad = read_question(stage, base, reply, p.task)
    if bad is not None:
        return [bad]
    base[R.EVIDENCE] = evidence(cited(reply, clues))
    return [base]


OPEN_QA = TaskFamily(OpenQATask, plan_questions("open_qa", _open_qa_fields), _finish_open_qa,
                     prompts=("open_qa", "question_for_answer"),
                     needs_teacher=lambda tcfg: True, trim_at_cap=("answer",))


# --- mcq

def _mcq_fields(stage: StageView, tcfg: MCQTask, ids: list[str]) -> tuple[dict, dict]:
    k = tcfg.num_options
    option = text_field(min(stage.config.max_answer_chars, 120))
    props = {"answer": option, "distractors": {"type": "array", "items": option, "minItems": k - 1, "maxItems": k - 1},
             "evidence": id_list(ids, 4)}
    return props, {"num_distractors": k - 1}


def _finish_mcq(stage: StageView, row, clues, p, reply: dict, base: dict, state: dict):
    if "span" in p.extra:
        bad = _read_answer_first(stage, p, reply, base, state)
        if bad is not None:
            return [bad]
        span = p.extra["span"]
        base[R.ANSWER] = span.text
        wrong = distractors(span, stage.config.tasks.mcq.num_options - 1, base[R.SAMPLE_ID], p.extra["names"])
        made = _options(stage, base, wrong, [p.extra["clue"]], state.get("mcq_made", 0), p.index,
                        open_answer=open_answer(span))
    else:
        bad = read_question(stage, base, reply, p.task)
        if bad is not None:
            return [bad]
        wrong = [d.strip() for d in reply.get("distractors", [])]
        made = _options(stage, base, wrong, cited(reply, clues), state.get("mcq_made", 0), p.index)
    state["mcq_made"] = state.get("mcq_made", 0) + (not isinstance(made[0], Reject))
    return made


def _read_answer_first(stage: StageView, p, reply: dict, base: dict, state: dict):
    """Fills the question and evidence of an answer-first candidate; a reject when it is not grounded or
    an earlier candidate of its question was already kept, else None."""
    span = p.extra["span"]
    question = (reply.get("question") or "").strip()
    why = check_question(question, span)
    detail = dict(question=question, answer=span.text, sentence=span.sentence, candidate=p.extra["candidate"])
    messages = {"bad_reply": f"the question does not open with {span.opener!r} and end with '?'",
                "answer_in_question": f"the question gives its answer {span.key!r} away",
                "ungrounded_question": f"words not in the transcript sentence: {ungrounded_words(question, span)}",
                "vacuous_question": "the question uses fewer than two words of the transcript sentence",
                "repetitive_question": "the question repeats a word of its own"}
    if why is not None:
        return stage.reject(base, why, f"{p.task} candidate {p.extra['candidate']}: {messages[why]}: {question!r}", **detail)
    kept = state.setdefault("answer_first_kept", set())
    if (p.task, p.extra["group"]) in kept:
        return stage.reject(base, "not_chosen", f"{p.task} candidate {p.extra['candidate']}: grounded, but an "
                            "earlier candidate of the same question was kept", **detail)
    kept.add((p.task, p.extra["group"]))
    base[R.QUESTION] = about_speech(question)
    base[R.EVIDENCE] = evidence([p.extra["clue"]])
    return None


def _options(stage: StageView, base: dict, distractors: list[str], sources, j: int, index: int,
             open_answer: str | None = None):
    """`j`: how many MCQs of this clip were already made — the rotation index of the answer position,
    counted over made ones so that a failed reply does not leave a hole in the clip's rotation.
    `sources`: the clues the sample stands on; `open_answer`: the open-form twin's answer (default: the option)."""
    tcfg = stage.config.tasks.mcq
    k = tcfg.num_options
    answer = base[R.ANSWER]
    norm = [_norm(answer)] + [_norm(d) for d in distractors]
    if len(distractors) != k - 1 or any(not n for n in norm) or len(set(norm)) != len(norm):
        return [stage.reject(base, "bad_options", f"mcq: need {k - 1} distinct non-empty distractors that differ "
                             "from the answer", answer=answer, distractors=distractors)]
    pos = answer_position(base[R.CLIP_ID], base[R.SAMPLE_PROMPT_VERSION], j, k)
    # The distractors' own order is shuffled too, so the model's habits carry no position signal.
    order = sorted(range(len(distractors)), key=lambda i: stable_hash("d", base[R.SAMPLE_ID], i))
    options = [distractors[i] for i in order]
    options.insert(pos, answer)
    base[R.OPTIONS] = options
    base[R.ANSWER_INDEX] = pos
    base[R.EVIDENCE] = evidence(sources)
    out = [base]
    if tcfg.open_form:
        base[R.SAMPLE_GROUP] = base[R.SAMPLE_ID]   # the two forms of one item (the twin carries it too)
        twin = dict(base)
        twin[R.SAMPLE_ID] = make_sample_id(base[R.CLIP_ID], "mcq_open", index, base[R.SAMPLE_PROMPT_VERSION])
        twin[R.TASK] = "open_qa"
        twin[R.OPTIONS] = None
        twin[R.ANSWER_INDEX] = None
        twin[R.ANSWER] = open_answer or answer
        out.append(twin)
    return out


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", (text or "").lower()))


MCQ = TaskFamily(MCQTask, plan_questions("mcq", _mcq_fields), _finish_mcq, prompts=("mcq", "question_for_answer"),
                 needs_teacher=lambda tcfg: True)
