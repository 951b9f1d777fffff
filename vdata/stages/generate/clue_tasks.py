"""CG-Bench-style teacher items: `clue_qa` (MCQ + open-ended twins with clue intervals) and `false_premise`.

CG-Bench (Chen et al., ICLR 2025) releases each question as one QAC triplet: `question`, an open-ended
`answer`, `choices` with the `right_answer`, and the `clue_intervals` that hold the answer
(CG-Bench/CG-Bench `run/save_as_jsons.py`; VLMEvalKit `vlmeval/dataset/cgbench.py` reads the same fields
plus `sub_category`, and scores the MCQ form, the open form and the intervals' mIoU). Its questions are
perception, reasoning and hallucination ones.

- `clue_qa`: one teacher call writes a question, its answer, k−1 distractors and the clue ids that hold
  the answer. It becomes two sample rows, the MCQ and its open-ended twin (the existing `mcq` family's
  `open_form` twin, plus the link): both carry the MCQ's id in `sample_group`, the cited clues' merged
  intervals as `answer_spans` (the clue intervals) and the clues as `evidence`. A reply that cites no
  timed clue has no clue interval and is rejected (`no_clue_interval`); a clue spanning the whole video
  (`V`) gives no interval, and cited clues that together cover 90% of it reject the item
  (`clue_covers_video`): CG-Bench's never do.
- `false_premise` (the hallucination kind): the teacher writes a question that takes for granted
  something the clues contradict or lack, names that premise, cites the clues it contradicts, and
  answers with the correction; the MCQ form's distractors are answers that accept the premise. Checked
  structurally: every cited clue id exists (`bad_evidence`), and the premise is not a clue's own text
  (`premise_in_clues`). Whether the premise is really false is a meaning question left to
  `verify_claims` and human review.

Both are stored as `task: mcq` / `open_qa` rows so that filters and exporters take them like any MCQ;
`question_type` says which kind (`false_premise`, or the clue question's type).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from vdata.schemas import records as R

from .benchmark_tasks import MAX_CLUE_SHARE, clue_intervals, clue_share, distinct_options, norm, twins
from .clues import Clue, clue_lines, evidence
from .common import Pending, Strict, TaskFamily, id_list, strict_object, teacher_request, text_field
from .qa import answer_position
from .questions import QuestionTask, plan_questions, read_question

if TYPE_CHECKING:
    from .common import StageView


class ClueQATask(QuestionTask):
    num_options: int = Field(4, ge=2, le=8)
    open_form: bool = True               # also write the open-ended twin (CG-Bench scores both)


class FalsePremiseTask(Strict):
    per_clip: int = Field(1, ge=0, le=16)
    num_options: int = Field(4, ge=2, le=8)
    mcq: bool = True                     # also write the MCQ form (distractors accept the premise)


def _cited_ids(stage: StageView, base: dict, reply: dict, clues: list[Clue], task: str):
    """The cited clues, or a reject when the reply cites none or an id that is not a clue of this row."""
    by_id = {c.id: c for c in clues}
    ids = [i for i in (reply.get("evidence") or []) if isinstance(i, str)]
    unknown = [i for i in ids if i not in by_id]
    if not ids or unknown:
        return None, stage.reject(base, "bad_evidence", f"{task}: the reply must cite clue ids of this row; "
                                  f"cited {ids}, unknown {unknown}", known=sorted(by_id), reply=reply)
    return [by_id[i] for i in dict.fromkeys(ids)], None


def _mcq_row(base: dict, answer: str, others: list[str], position: int) -> dict:
    options = list(others)
    options.insert(position, answer)
    base[R.TASK] = "mcq"
    base[R.OPTIONS] = options
    base[R.ANSWER_INDEX] = position
    return base


# --- clue_qa

def _clue_qa_fields(stage: StageView, tcfg: ClueQATask, ids: list[str]) -> tuple[dict, dict]:
    k = tcfg.num_options
    option = text_field(min(stage.config.max_answer_chars, 120))
    props = {"answer": option, "distractors": {"type": "array", "items": option, "minItems": k - 1, "maxItems": k - 1},
             "evidence": id_list(ids, 4)}
    return props, {"num_distractors": k - 1}


def _finish_clue_qa(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    tcfg = stage.config.tasks.clue_qa
    bad = read_question(stage, base, reply, "clue_qa")
    if bad is not None:
        return [bad]
    used, bad = _cited_ids(stage, base, reply, clues, "clue_qa")
    if bad is not None:
        return [bad]
    spans = clue_intervals(used, row)
    if not spans:
        return [stage.reject(base, "no_clue_interval", "clue_qa: the cited clues have no time span short of the "
                             "whole video, so the question has no clue interval", cited=[c.id for c in used])]
    share = clue_share(spans, row)
    if share >= MAX_CLUE_SHARE:   # several clips that together make the whole video
        return [stage.reject(base, "clue_covers_video", f"clue_qa: the cited clues cover {share:.0%} "
                             "of the video, so they say nothing about when the answer is", cited=[c.id for c in used])]
    distractors = [d.strip() for d in reply.get("distractors") or [] if isinstance(d, str)]
    if len(distractors) != tcfg.num_options - 1 or not distinct_options(base[R.ANSWER], distractors):
        return [stage.reject(base, "bad_options", f"clue_qa: need {tcfg.num_options - 1} distinct non-empty "
                             "distractors that differ from the answer", answer=base[R.ANSWER], distractors=distractors)]
    j = state.get("clue_qa_made", 0)
    state["clue_qa_made"] = j + 1
    pos = answer_position(base[R.CLIP_ID], base[R.SAMPLE_PROMPT_VERSION], j, tcfg.num_options)
    base[R.ANSWER_SPANS] = spans
    base[R.EVIDENCE] = evidence(used)
    mcq = _mcq_row(base, base[R.ANSWER], distractors, pos)
    return twins(mcq, "clue_qa_open", p.index) if tcfg.open_form else [mcq]


CLUE_QA = TaskFamily(ClueQATask, plan_questions("clue_qa", _clue_qa_fields), _finish_clue_qa, prompts=("clue_qa",),
                     needs_teacher=lambda tcfg: True)


# --- false_premise

def _plan_false_premise(stage: StageView, row: dict, clues: list[Clue], tcfg: FalsePremiseTask):
    if not tcfg.per_clip:
        return [], []
    prompt = stage.prompts["false_premise"]
    cfg = stage.config
    clue_text = clue_lines(clues)
    k = tcfg.num_options
    option = text_field(min(cfg.max_answer_chars, 120))
    schema = strict_object({
        "question": text_field(cfg.max_question_chars), "premise": text_field(120),
        "answer": text_field(cfg.max_answer_chars),
        "premise_answers": {"type": "array", "items": option, "minItems": k - 1, "maxItems": k - 1},
        "evidence": id_list([c.id for c in clues], 4)})
    pending = []
    for index in range(tcfg.per_clip):
        text = prompt.render(clues=clue_text, index=index + 1, num_distractors=k - 1)
        req = teacher_request(stage, prompt, text, clues, schema, "false_premise",
                              ("false_premise", index, clue_text))
        pending.append(Pending("false_premise", index, "false_premise", prompt, req, {}))
    return [], pending


def _finish_false_premise(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    tcfg = stage.config.tasks.false_premise
    premise = (reply.get("premise") or "").strip()
    bad = read_question(stage, base, reply, "false_premise")
    if bad is not None or not premise:
        return [bad or stage.reject(base, "bad_reply", "false_premise: empty premise", reply=reply)]
    used, bad = _cited_ids(stage, base, reply, clues, "false_premise")
    if bad is not None:
        return [bad]
    key = norm(premise)
    holding = [c.id for c in clues if key and f" {key} " in f" {norm(c.text)} "]   # whole words only
    if holding:   # the "false" premise is what a clue says: the question is a plain one, not a trick
        return [stage.reject(base, "premise_in_clues", f"false_premise: the premise {premise!r} is stated by "
                             f"clue(s) {holding}", premise=premise, question=base[R.QUESTION])]
    spans = clue_intervals(used, row)   # where the contradicting clues are; none when they are the whole video
    base[R.ANSWER_SPANS] = spans if spans and clue_share(spans, row) < MAX_CLUE_SHARE else None
    base[R.EVIDENCE] = evidence(used)
    if not tcfg.mcq:
        base[R.TASK] = "open_qa"
        return [base]
    accepting = [a.strip() for a in reply.get("premise_answers") or [] if isinstance(a, str)]
    if len(accepting) != tcfg.num_options - 1 or not distinct_options(base[R.ANSWER], accepting):
        base[R.TASK] = "open_qa"   # the open form stands alone; the MCQ form is rejected with its reason
        return [base, stage.reject(dict(base, **{R.SAMPLE_ID: base[R.SAMPLE_ID] + "-mcq"}), "bad_options",
                                   f"false_premise: need {tcfg.num_options - 1} distinct answers that accept the "
                                   "premise and differ from the correction", answer=base[R.ANSWER], options=accepting)]
    j = state.get("false_premise_made", 0)
    state["false_premise_made"] = j + 1
    pos = answer_position(base[R.CLIP_ID], base[R.SAMPLE_PROMPT_VERSION], j, tcfg.num_options)
    return twins(_mcq_row(base, base[R.ANSWER], accepting, pos), "false_premise_open", p.index)


FALSE_PREMISE = TaskFamily(FalsePremiseTask, _plan_false_premise, _finish_false_premise, prompts=("false_premise",),
                           needs_teacher=lambda tcfg: True)
