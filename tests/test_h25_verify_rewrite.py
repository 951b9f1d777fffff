"""A VIGC correction that says nothing is no correction (outside check h25 F10).

vigc's correction round replaced a wrong answer ("Tom carries nine red boxes to the truck.") with SmolLM2's
"...": the answer had no word, so the claim checked was the question alone ("How many boxes does Tom carry
to the truck"), which matches the evidence by construction, and the row was kept `verified`, supported 1.0,
and exported. Now an answer with no word of its own never passes on its question, a rewrite is held to the
basic form checks wellformed (which runs before verify_claims) never applied to it, and a rewrite passes
only with a supported claim of its own. The teacher here is scripted: its rewrites are fixed, and its judge
says `supported` to every claim it is asked about (quoting the evidence), so nothing below depends on a
judge refusing.
"""
from __future__ import annotations

import pytest

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.verify_claims import VerifyClaimsConfig, VerifyClaimsStage
from vdata.stages.verify_claims.own import ANSWER_CLAIM, own_support, rewrite_issue
from vdata.teachers.types import TeacherResult

SPEECH = [(0.4, 3.0, "Maria paints four blue chairs on Tuesday."),
          (6.4, 9.3, "Her brother Tom carries seven green boxes to the truck."),
          (12.4, 15.8, "At noon, Maria sells three yellow lamps to Clara.")]
DEAD = {"dead": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0,
                 "timeout_s": 5}}
Q = "How many boxes does Tom carry to the truck?"
WRONG = "Tom carries nine red boxes to the truck."


def _row(sid: str, question: str, answer: str, task: str = "open_qa", **more) -> dict:
    return {R.SAMPLE_ID: sid, R.CLIP_ID: "harbour:6", R.VIDEO_ID: "harbour", R.START_S: 6.0, R.END_S: 12.0,
            R.TASK: task, R.QUESTION: question, R.ANSWER: answer, R.CAPTION: None, R.DENSE_EVENTS: [],
            R.SOURCE_META: "{}", R.TRANSCRIPT_TEXT: " ".join(t for _, _, t in SPEECH),
            R.TRANSCRIPT_SEGMENTS: [{"start_s": a, "end_s": b, "text": t} for a, b, t in SPEECH],
            R.EVIDENCE: {"captions": [], "frame_timestamps_s": [], "transcript_spans": []}, **more}


class Scripted:
    """Rewrites with the next scripted answer; judges every claim `supported`, quoting the evidence."""

    def __init__(self, rewrites: list[str]):
        self.rewrites = list(rewrites)
        self.judged: list[str] = []

    def generate(self, requests):
        out = []
        for req in requests:
            text = req.messages[-1].content if isinstance(req.messages[-1].content, str) else \
                " ".join(getattr(p, "text", "") or "" for p in req.messages[-1].content)
            if req.schema_name == "answer":
                out.append(TeacherResult(request_id="r", parsed={"answer": self.rewrites.pop(0)}))
            else:
                self.judged.append(text)
                out.append(TeacherResult(request_id="r", parsed={"quote": SPEECH[1][2], "verdict": "supported"}))
        return out


def _stage(rewrites: list[str], rounds: int = 2, **cfg) -> tuple[VerifyClaimsStage, Scripted]:
    cfg = {"teacher": "dead", "correct": True, "correct_rounds": rounds, "min_supported_ratio": 0.5,
           "max_refuted_claims": 0, "relevance_min": None, "evidence_sources": ["transcript", "cited"], **cfg}
    stage = VerifyClaimsStage(VerifyClaimsConfig(**cfg), RunContext(output_dir="", teachers=DEAD))
    stage.setup()
    stage.teacher = Scripted(rewrites)
    return stage, stage.teacher


def _rounds(row: dict) -> list[dict]:
    return [r for r in row[R.REFINE_ROUNDS] if r["stage"] == "verify_claims"]


def test_an_ellipsis_rewrite_is_no_correction():
    """The F10 case: every round's rewrite is "..." — the sample is rejected, never kept with "..."."""
    stage, teacher = _stage(["...", "..."])
    (res,) = stage.process_batch([_row("f10", Q, WRONG)])
    assert isinstance(res, Reject), (res[R.ANSWER], res[R.V_CLAIMS])
    assert res.row[R.ANSWER] == WRONG
    rounds = _rounds(res.row)
    assert [r["kind"] for r in rounds] == ["check", "correct", "correct"]
    assert not any(r["passed"] for r in rounds)
    assert all(r["text"] == "..." and r["supported_ratio"] == 0.0 for r in rounds[1:])
    # the question alone was never put to the judge as the rewrite's claim
    assert not any('Claim: "How many boxes does Tom carry to the truck"' in t for t in teacher.judged)


@pytest.mark.parametrize("rewrite", ["...", "…", "", "N/A", "Unknown.", "Tom carries ...", "<answer>",
                                     "How many boxes does Tom carry to the truck?"])
def test_a_rewrite_must_pass_basic_form_checks(rewrite):
    stage, _ = _stage([rewrite], rounds=1)
    (res,) = stage.process_batch([_row("form", Q, WRONG)])
    assert isinstance(res, Reject), (rewrite, res[R.V_CLAIMS])
    (check, corrected) = _rounds(res.row)
    assert not check["passed"] and not corrected["passed"]
    assert rewrite_issue(rewrite, Q, "open_qa") is not None


@pytest.mark.parametrize("rewrite", ["Tom carries seven green boxes to the truck.", "Seven."])
def test_a_real_rewrite_still_passes(rewrite):
    stage, _ = _stage([rewrite], rounds=1)
    (res,) = stage.process_batch([_row("fixed", Q, WRONG)])
    assert not isinstance(res, Reject), (res.reason, res.message)
    assert res[R.ANSWER] == rewrite and res[R.V_STATUS] == R.STATUS_VERIFIED
    assert own_support([c["claim"] for c in res[R.V_CLAIMS]], [(c["verdict"], c["note"]) for c in res[R.V_CLAIMS]],
                       rewrite)
    assert _rounds(res)[-1]["passed"] and "[after correction]" in res[R.V_CLAIMS][0]["note"]


def test_the_second_round_can_still_fix_it():
    stage, _ = _stage(["...", "Tom carries seven green boxes to the truck."])
    (res,) = stage.process_batch([_row("second", Q, WRONG)])
    assert not isinstance(res, Reject), (res.reason, res.message)
    assert [r["passed"] for r in _rounds(res)] == [False, False, True]


@pytest.mark.parametrize("answer", ["...", "", " . ", "…"])
def test_an_answer_with_no_word_never_passes_on_its_question(answer):
    """Without correction too: "<question>: ..." is no claim; the answer is rejected, not verified."""
    stage = VerifyClaimsStage(VerifyClaimsConfig(relevance_min=None), RunContext(output_dir=""))
    stage.setup()
    (res,) = stage.process_batch([_row("bare", Q, answer)])
    assert isinstance(res, Reject) and res.reason == "hallucination", res
    assert any(c["claim"].startswith(ANSWER_CLAIM) and c["verdict"] == "unsupported" for c in res.row[R.V_CLAIMS])
    assert res.row[R.V_SUPPORTED_RATIO] < 1.0
    # an MCQ's open twin with a real one-word answer is still checked with its question and kept
    (twin,) = stage.process_batch([_row("twin", Q, "Seven")])
    assert not isinstance(twin, Reject), (twin.reason, twin.message)


def test_a_cot_whose_final_answer_is_an_ellipsis_is_rejected():
    steps = [{"text": "Tom carries seven green boxes to the truck.", "start_s": 6.4, "end_s": 9.3},
             {"text": "Maria paints four blue chairs on Tuesday.", "start_s": 0.4, "end_s": 3.0},
             {"text": "Maria sells three yellow lamps to Clara at noon.", "start_s": 12.4, "end_s": 15.8}]
    stage = VerifyClaimsStage(VerifyClaimsConfig(relevance_min=None), RunContext(output_dir=""))
    stage.setup()
    (res,) = stage.process_batch([_row("cot", Q, "...", task="cot", **{R.RATIONALE_STEPS: steps})])
    assert isinstance(res, Reject) and res.reason == "hallucination", res
    (ok,) = stage.process_batch([_row("cot-ok", Q, "Seven boxes.", task="cot", **{R.RATIONALE_STEPS: steps})])
    assert not isinstance(ok, Reject), (ok.reason, ok.message)
