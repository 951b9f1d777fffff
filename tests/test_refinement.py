"""Refinement loops: VIGC correction in N rounds (verify_claims `correct_rounds`) and Video-STaR label
rationalization (labels `rationalize`). Every round is recorded in the row's `refine_rounds`.

Without a model: round 0 on every checked sample, the rationalization prompt, config errors, and a real
connection failure (nothing listens on the teacher's port) ending the rounds with the reject standing.
With SmolLM2-135M-Instruct (vLLM's CPU engine or llama.cpp; slow): the rounds' bookkeeping holds whatever the
small model writes — a kept sample's last round passed and its text is the stored answer; a rejected one failed
every round.
"""
from __future__ import annotations

import pyarrow as pa
import pytest
from pydantic import ValidationError

import labelled_set as L
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.labels import LabelsConfig, LabelsStage, contains_label
from vdata.stages.verify_claims import VerifyClaimsConfig, VerifyClaimsStage

DEAD = {"dead": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0,
                 "timeout_s": 5}}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("refine")
    return [(spec, L.clip_row(spec, L.render_spec(spec, str(d / f"{spec.name}.mp4")))) for spec in L.SPECS[:4]]


def _stage(cls, cfg, teachers=None):
    stage = cls(cfg, RunContext(output_dir="", teachers=teachers or {}))
    stage.setup()
    return stage


def _row(x) -> dict:
    return x.row if isinstance(x, Reject) else x


def _wrong(spec, clip, sid: str) -> dict:
    other = "green" if spec.colour != "green" else "purple"
    return L.sample_row(clip, sid, "What is shown?", f"The clip shows a {other} {spec.shape} on a {spec.background} background.")


def _check_rounds(result, stage_name: str, max_rounds: int) -> list[dict]:
    """The bookkeeping every refined row must satisfy; returns this stage's rounds."""
    row = _row(result)
    rounds = [r for r in row[R.REFINE_ROUNDS] if r["stage"] == stage_name]
    assert [r["round"] for r in rounds] == list(range(len(rounds))) and rounds[0]["kind"] == "check"
    assert 1 <= len(rounds) <= max_rounds + 1
    assert not any(r["passed"] for r in rounds[:-1])      # a round that passes is the last one
    if isinstance(result, Reject):
        assert not rounds[-1]["passed"]
        # every allowed round was tried, unless the teacher failed (no text to check)
        assert len(rounds) == max_rounds + 1 or rounds[-1]["text"] is None
    else:
        assert rounds[-1]["passed"] and rounds[-1]["text"] == row[R.ANSWER]
    pa.array([row[R.REFINE_ROUNDS]], type=R.FIELD_TYPES[R.REFINE_ROUNDS])   # fits the declared type
    return rounds


# ================================================================================ no model needed
def test_every_checked_sample_records_round_zero(clips):
    items = L.claim_samples(clips)
    stage = _stage(VerifyClaimsStage, VerifyClaimsConfig(min_supported_ratio=0.75))
    results = stage.process_batch([row for row, _, _ in items])
    assert len(results) == len(items)
    for res in results:
        (r0,) = _check_rounds(res, "verify_claims", 0)
        assert r0["text"] == _row(res)[R.ANSWER] and r0["supported_ratio"] == pytest.approx(_row(res)[R.V_SUPPORTED_RATIO])
    # rounds of an earlier stage are kept, this stage's appended
    earlier = [{"round": 0, "stage": "labels", "kind": "check", "text": "x", "supported_ratio": None, "passed": True}]
    row = dict(items[0][0], **{R.REFINE_ROUNDS: earlier})
    (out,) = stage.process_batch([row])
    assert _row(out)[R.REFINE_ROUNDS][0] == earlier[0] and _row(out)[R.REFINE_ROUNDS][1]["stage"] == "verify_claims"


def test_a_failing_teacher_ends_the_correction_rounds_with_the_reject_standing(clips):
    spec, clip = clips[0]
    stage = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher="dead", correct=True, correct_rounds=3,
                                                         relevance_min=None, min_supported_ratio=1.0), DEAD)
    (res,) = stage.process_batch([_wrong(spec, clip, "w-1")])
    assert isinstance(res, Reject) and res.reason in ("contradicted", "hallucination")
    rounds = _check_rounds(res, "verify_claims", 3)
    assert [(r["round"], r["kind"], r["text"]) for r in rounds[1:]] == [(1, "correct", None)]
    assert res.detail["rounds"][-1][:2] == (1, "correct")
    with pytest.raises(ValidationError, match="correct_rounds"):
        VerifyClaimsConfig(correct=True, correct_rounds=0)
    with pytest.raises(ValidationError, match="correct_rounds: rounds of correction need correct: true"):
        VerifyClaimsConfig(teacher="dead", correct_rounds=2)


def test_rationalization_prompt_config_and_a_failing_teacher(clips):
    with pytest.raises(ValidationError, match="teacher: required by rationalize"):
        LabelsConfig(rationalize=True)
    with pytest.raises(ValidationError, match="prompts: unknown template"):
        LabelsConfig(rationalize=True, teacher="t", prompts={"judge": "x"})
    spec, clip = clips[0]
    row = L.sample_row(clip, "lab-out", "What is shown?", "The video shows a pentagon.")
    stage = _stage(LabelsStage, LabelsConfig(rationalize=True, teacher="dead", rationalize_rounds=2), DEAD)
    req = stage.rationalize_request(row, [spec.label], 1)
    text = req.messages[-1].content[-1].text
    assert spec.label in text and "What is shown?" in text and spec.caption in text and spec.speech in text
    assert req.prompt_template_version == "verify/rationalize@v1" and req.sampling["temperature"] == 0.0
    assert stage.rationalize_request(row, [spec.label], 2).sampling["seed"] == 2     # a retry is a new attempt
    (res,) = stage.process_batch([row])
    assert isinstance(res, Reject) and res.reason == "label_missing" and "teacher_error" in res.detail
    rounds = _check_rounds(res, "labels", 2)
    assert [(r["kind"], r["text"]) for r in rounds] == [("check", row[R.ANSWER]), ("rationalize", None)]
    # without rationalize nothing changes: the miss is rejected at round 0
    (plain,) = _stage(LabelsStage, LabelsConfig()).process_batch([row])
    assert isinstance(plain, Reject) and len(_check_rounds(plain, "labels", 0)) == 1


# ========================================================================= SmolLM2 (vLLM's CPU engine or llama.cpp)
@pytest.mark.slow
@pytest.mark.skipif(not L.have_smollm(), reason="SmolLM2 is not installed (make setup)")
def test_correction_rounds_and_rationalization_with_smollm(clips, smollm):
    teachers = {"small": L.openai_teacher(smollm, sampling={"max_tokens": 160})}
    # VIGC: wrong colours, up to 3 rewrite rounds each, every rewrite re-checked
    rows = [_wrong(spec, clip, f"w-{spec.name}") for spec, clip in clips]
    stage = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher="small", correct=True, correct_rounds=3,
                                                         min_supported_ratio=1.0), teachers)
    before = stage.teacher.stats()["requests"]
    results = stage.process_batch(rows)
    assert stage.teacher.stats()["requests"] > before
    corrections = 0
    for res in results:
        rounds = _check_rounds(res, "verify_claims", 3)
        assert not rounds[0]["passed"]                         # every answer here starts wrong
        corrections += len(rounds) - 1
        if not isinstance(res, Reject):
            assert _row(res)[R.V_SUPPORTED_RATIO] == 1.0 and all("[after correction]" in c["note"]
                                                                 for c in _row(res)[R.V_CLAIMS])
    assert corrections >= len(rows)                           # each got at least one rewrite round
    print(f"\n[vigc] kept {sum(not isinstance(r, Reject) for r in results)}/{len(rows)} after "
          f"{corrections} correction round(s)")
    # Video-STaR: answers that miss their label; the teacher is given the label and explains it
    items = [row for row, expected, _ in L.label_samples(clips) if expected is False]
    labels = _stage(LabelsStage, LabelsConfig(rationalize=True, teacher="small", rationalize_rounds=2), teachers)
    results = labels.process_batch(items)
    assert len(results) == len(items)
    for res, item in zip(results, items):
        rounds = _check_rounds(res, "labels", 2)
        assert rounds[0]["text"] == item[R.ANSWER] and all(r["kind"] == "rationalize" for r in rounds[1:])
        if not isinstance(res, Reject):
            label = next(spec.label for spec, clip in clips if clip[R.SOURCE_URI] == item[R.SOURCE_URI])
            assert res[R.V_LABEL_CONTAINED] is True and res[R.RATIONALE].strip()
            assert contains_label(res[R.ANSWER] + " " + res[R.RATIONALE], label)
    print(f"[video-star] rationalized {sum(not isinstance(r, Reject) for r in results)}/{len(items)}")


def test_a_label_counts_only_in_the_text_the_export_writes(clips):
    """Video-STaR verifies the output it keeps. An open answer whose label is named only in a rationale (which
    the open-QA export never writes) misses it, and so does a chain of thought's final answer (h25 F9); a
    rationalized chain of thought exports the new explanation, not the first attempt's steps."""
    from vdata.teachers.types import TeacherResult

    spec, clip = clips[0]
    stage = _stage(LabelsStage, LabelsConfig(rationalize=True, teacher="dead", rationalize_rounds=1,
                                             tasks=["open_qa", "cot"]), DEAD)
    row = L.sample_row(clip, "lab-open", "What is shown?", "The video shows a pentagon.")
    assert stage.contained({**row, R.RATIONALE: f"This is {spec.label}."}, [spec.label])[0] is False
    # h25 F9: nor does a chain of thought's reasoning stand in for its final answer
    assert stage.contained({**row, R.TASK: "cot", R.RATIONALE: f"This is {spec.label}."}, [spec.label])[0] is False

    class NamesTheLabelInTheRationaleOnly:   # a teacher reply that explains the label but answers without it
        def generate(self, requests):
            return [TeacherResult(request_id="r", parsed={"rationale": f"This is {spec.label}: it shows.",
                                                          "answer": "A shape moves."}) for _ in requests]

    stage.teacher = NamesTheLabelInTheRationaleOnly()
    (res,) = stage.process_batch([row])
    assert isinstance(res, Reject) and res.reason == "label_missing"
    cot = {**row, R.SAMPLE_ID: "lab-cot", R.TASK: "cot", R.RATIONALE: "It is a pentagon.",
           R.RATIONALE_STEPS: [{"text": "A pentagon is shown.", "evidence_timestamps_s": [1.0]}]}
    (missed,) = stage.process_batch([cot])   # h25 F9: the new final answer does not name the label either
    assert isinstance(missed, Reject) and missed.reason == "label_missing"

    class NamesTheLabelInTheAnswer:
        def generate(self, requests):
            return [TeacherResult(request_id="r", parsed={"rationale": f"This is {spec.label}: it shows.",
                                                          "answer": f"The video shows {spec.label}."}) for _ in requests]

    stage.teacher = NamesTheLabelInTheAnswer()
    (kept,) = stage.process_batch([cot])
    assert not isinstance(kept, Reject) and kept[R.V_LABEL_CONTAINED] is True
    assert kept[R.RATIONALE_STEPS] is None and spec.label in kept[R.RATIONALE]   # the export writes this explanation
