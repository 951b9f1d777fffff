"""cot: a question, a rationale whose steps cite clues (VideoEspresso), and a final answer.

Each step's cited clues give its times in `rationale_steps[].evidence_timestamps_s`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from vdata.schemas import records as R

from .clues import cited, evidence
from .common import TaskFamily, id_list, strict_object, text_field
from .questions import QuestionTask, plan_questions, read_question

if TYPE_CHECKING:
    from .common import StageView


class CoTTask(QuestionTask):
    per_clip: int = Field(1, ge=0, le=64)
    max_steps: int = Field(4, ge=1, le=8)


def _cot_fields(stage: StageView, tcfg: CoTTask, ids: list[str]) -> tuple[dict, dict]:
    cfg = stage.config
    step = strict_object({"text": text_field(min(cfg.max_answer_chars, 200)), "evidence": id_list(ids, 3)})
    props = {"steps": {"type": "array", "items": step, "minItems": 1, "maxItems": tcfg.max_steps},
             "answer": text_field(cfg.max_answer_chars)}
    return props, {"max_steps": tcfg.max_steps}


def _finish_cot(stage: StageView, row, clues, p, reply: dict, base: dict, state: dict):
    bad = read_question(stage, base, reply, p.task)
    if bad is not None:
        return [bad]
    steps, all_cited = [], []
    for s in reply.get("steps", []):
        refs = cited(s, clues)
        all_cited.extend(refs)
        times = sorted({t for c in refs for t in c.times()})
        steps.append({"text": s["text"].strip(), "evidence_timestamps_s": times})
    base[R.RATIONALE_STEPS] = steps
    base[R.RATIONALE] = " ".join(s["text"] for s in steps)
    base[R.EVIDENCE] = evidence(all_cited)
    return [base]


COT = TaskFamily(CoTTask, plan_questions("cot", _cot_fields), _finish_cot, prompts=("cot",),
                 needs_teacher=lambda tcfg: True, trim_at_cap=("answer",))
