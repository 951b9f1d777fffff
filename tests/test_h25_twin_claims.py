"""An MCQ's open-form twin is checked with its question (outside check h25 F1).

The MCQ "How many yellow lamps does Maria sell at noon?" / "Three" was checked as the claim "How many
yellow lamps does Maria sell at noon: Three" and kept; its open-form twin, the same question and answer
stored as open_qa, was checked as the bare word "Three" (off-topic to every evidence sentence) or "Tuesday"
(judged at random) and rejected `hallucination`. The twin's claim now carries its question as the MCQ's
does, and so does a CoT's short final answer; a bare number answering "How many <things> …?" is claimed as
a count of those things, so a wrong count is refuted rather than passing as no checkable fact. verify_claims
at its defaults (tier 1 and the packaged MiniLM, no teacher), on rows shaped as generate writes them about the
h25 narration.
"""
from __future__ import annotations

import pytest

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.verify_claims import VerifyClaimsConfig, VerifyClaimsStage

SPEECH = [(0.4, 3.0, "Maria paints four blue chairs on Tuesday."),
          (6.4, 9.3, "Her brother Tom carries seven green boxes to the truck."),
          (12.4, 15.8, "At noon, Maria sells three yellow lamps to Clara."),
          (18.4, 21.9, "Finally, Tom drives the truck to the harbor on Friday.")]
ITEMS = [("On which day does Maria paint the four blue chairs?", "Tuesday", ["Monday", "Tuesday", "Friday", "Sunday"]),
         ("How many yellow lamps does Maria sell at noon?", "Three", ["Two", "Three", "Five", "Seven"]),
         ("What colour are the boxes Tom carries to the truck?", "Green", ["Red", "Blue", "Green", "Yellow"])]


def _row(sid: str, task: str, question: str, answer: str, **more) -> dict:
    return {R.SAMPLE_ID: sid, R.CLIP_ID: "harbour:video", R.VIDEO_ID: "harbour", R.START_S: 0.0, R.END_S: 24.0,
            R.TASK: task, R.QUESTION: question, R.ANSWER: answer, R.CAPTION: None, R.DENSE_EVENTS: [],
            R.SOURCE_META: "{}", R.TRANSCRIPT_TEXT: " ".join(t for _, _, t in SPEECH),
            R.TRANSCRIPT_SEGMENTS: [{"start_s": a, "end_s": b, "text": t} for a, b, t in SPEECH],
            R.EVIDENCE: {"captions": [], "frame_timestamps_s": [], "transcript_spans": []}, **more}


@pytest.fixture(scope="module")
def verifier():
    stage = VerifyClaimsStage(VerifyClaimsConfig(), RunContext(output_dir=""))
    stage.setup()
    return stage


def test_an_open_form_twin_is_checked_as_its_mcq_is(verifier):
    rows = []
    for k, (q, a, options) in enumerate(ITEMS):
        mcq = _row(f"mcq{k}", "mcq", q, a, **{R.OPTIONS: options, R.ANSWER_INDEX: options.index(a), R.SAMPLE_GROUP: f"mcq{k}"})
        twin = _row(f"twin{k}", "open_qa", q, a, **{R.OPTIONS: None, R.ANSWER_INDEX: None, R.SAMPLE_GROUP: f"mcq{k}"})
        rows += [mcq, twin]
    got = {(r.row if isinstance(r, Reject) else r)[R.SAMPLE_ID]: r for r in verifier.process_batch(rows)}
    dropped = {sid: (r.reason, r.message) for sid, r in got.items() if isinstance(r, Reject)}
    assert not dropped, dropped   # every item is right: neither form may be dropped
    for k, (q, a, _) in enumerate(ITEMS):
        mcq, twin = got[f"mcq{k}"], got[f"twin{k}"]
        assert not isinstance(twin, Reject), (twin.reason, twin.message)
        assert not isinstance(mcq, Reject), (mcq.reason, mcq.message)
        # the same claim, the question with its answer, and the same verdict
        assert [c["claim"] for c in twin[R.V_CLAIMS]] == [c["claim"] for c in mcq[R.V_CLAIMS]]
        assert q.rstrip("?") in twin[R.V_CLAIMS][0]["claim"] and a in twin[R.V_CLAIMS][0]["claim"]
        assert twin[R.V_STATUS] == R.STATUS_VERIFIED and twin[R.V_SUPPORTED_RATIO] == 1.0


@pytest.mark.parametrize("task", ["mcq", "open_qa"])
def test_a_wrong_count_answering_how_many_is_refuted(verifier, task):
    """"Five" to "How many yellow lamps …?" is checked as five lamps against the evidence's three (with the
    bare number after the question the count was no checkable fact, and the wrong MCQ passed)."""
    q = "How many yellow lamps does Maria sell at noon?"
    (res,) = verifier.process_batch([_row("wrong", task, q, "Five")])
    assert isinstance(res, Reject) and res.reason == "contradicted", res
    (right,) = verifier.process_batch([_row("right", task, q, "Three.")])
    assert not isinstance(right, Reject) and right[R.V_SUPPORTED_RATIO] == 1.0, (right.reason, right.message)


def test_a_long_open_answer_is_its_own_claim(verifier):
    q, a = "What does Tom carry to the truck?", "Tom carries seven green boxes to the truck."
    (res,) = verifier.process_batch([_row("long", "open_qa", q, a)])
    assert not isinstance(res, Reject) and [c["claim"] for c in res[R.V_CLAIMS]] == [a.rstrip(".")]


def test_a_cot_short_final_answer_carries_its_question(verifier):
    q = "On which day does Maria paint chairs and how many does she paint?"
    steps = [{"text": "Maria paints four blue chairs on Tuesday.", "start_s": 0.4, "end_s": 3.0}]
    (res,) = verifier.process_batch([_row("cot", "cot", q, "Four, on Tuesday.", **{R.RATIONALE_STEPS: steps})])
    assert not isinstance(res, Reject), (res.reason, res.message)
    assert any(q.rstrip("?") in c["claim"] for c in res[R.V_CLAIMS])
