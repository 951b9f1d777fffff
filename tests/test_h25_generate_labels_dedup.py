"""The filters after generate, after the outside check h25 (F9, F18), on given sample rows.

- F9: video_star kept a chain of thought whose rationale said "The answer is selling lamps." and whose answer
  field was "<the final answer>", marked `v_label_contained: true`: the label was looked for in the rationale
  too. The label must now be in the answer the sample trains (its answer field; a chain of thought's final
  answer), not only in its reasoning.
- F18: dedup at `scope: dataset` compared the question alone, so the same generic question ("What does the
  narrator say at the start of the video?") about another video, with another answer, was dropped as an
  exact duplicate. Across videos a duplicate is now the same question with the same answer; within one video
  the question alone still decides.
"""
from __future__ import annotations

import json

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.dedup import DedupConfig, DedupStage
from vdata.stages.labels import LabelsConfig, LabelsStage
from vdata.teachers.types import TeacherResult

DEAD = {"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0, "timeout_s": 5}}


# ============================================================================ F9: the label in the answer
def _cot(sid: str, answer: str, rationale: str) -> dict:
    return {R.SAMPLE_ID: sid, R.CLIP_ID: "harbour_6", R.VIDEO_ID: "harbour", R.TASK: "cot", R.QUESTION_TYPE: "action",
            R.QUESTION: "What is Maria doing?", R.ANSWER: answer, R.RATIONALE: rationale,
            R.RATIONALE_STEPS: [{"text": rationale, "evidence_timestamps_s": [7.0]}],
            R.SOURCE_META: json.dumps({"label": "selling lamps"}), R.REFINE_ROUNDS: None}


class SlotAnswer:
    """h25's SmolLM2 rationalization: the label in the rationale, the prompt's slot as the answer."""

    def generate(self, requests):
        return [TeacherResult(request_id="r", parsed={"rationale": "The answer is selling lamps.",
                                                      "answer": "<the final answer>"}) for _ in requests]


def test_a_label_in_the_rationale_only_is_missing():
    stage = LabelsStage(LabelsConfig(question_types=None), RunContext(output_dir=""))
    stage.setup()
    named = _cot("named", "Maria paints chairs.", "Maria is selling lamps at noon.")
    (out,) = stage.process_batch([named])
    assert isinstance(out, Reject) and out.reason == "label_missing", out
    (kept,) = stage.process_batch([_cot("answered", "She is selling lamps to Clara.", "Maria holds lamps.")])
    assert not isinstance(kept, Reject) and kept[R.V_LABEL_CONTAINED] is True


def test_the_h25_rationalized_slot_answer_is_not_label_verified():
    stage = LabelsStage(LabelsConfig(question_types=None, rationalize=True, teacher="t"),
                        RunContext(output_dir="", teachers=DEAD))
    stage.setup()
    stage.teacher = SlotAnswer()
    (out,) = stage.process_batch([_cot("slot", "Maria paints chairs.", "Maria paints.")])
    assert isinstance(out, Reject) and out.reason == "label_missing", out
    assert out.row[R.ANSWER] == "<the final answer>" and out.row[R.V_LABEL_CONTAINED] is False
    assert [r["kind"] for r in out.row[R.REFINE_ROUNDS]] == ["check", "rationalize"]
    assert not out.row[R.REFINE_ROUNDS][-1]["passed"]


# ====================================================================== F18: dataset-scope duplicates
GENERIC = "What does the narrator say at the start of the video?"


def _qa(sid: str, video: str, question: str, answer: str, task: str = "open_qa") -> dict:
    return {R.SAMPLE_ID: sid, R.CLIP_ID: f"{video}_0", R.VIDEO_ID: video, R.TASK: task, R.QUESTION: question,
            R.ANSWER: answer, R.SAMPLE_SCOPE: R.SCOPE_CLIP}


def _dedup(**cfg) -> DedupStage:
    stage = DedupStage(DedupConfig(index="local", seed_from_output=False, **cfg), RunContext(output_dir=""))
    stage.setup()
    return stage


def _verdicts(stage, rows) -> dict:
    return {(r.row if isinstance(r, Reject) else r)[R.SAMPLE_ID]: r for r in stage.process_batch(rows)}


def test_the_same_generic_question_about_another_video_is_no_duplicate():
    stage = _dedup(similarity_max=None)
    rows = [_qa("harbour", "harbour", GENERIC, "Maria paints four blue things on Tuesday."),
            _qa("train", "train", GENERIC, "The train leaves the station at 8 o'clock."),
            _qa("harbour-again", "harbour", GENERIC, "Tom carries seven green boxes."),
            _qa("ferry", "ferry", GENERIC, "Maria paints four blue things on Tuesday!")]
    out = _verdicts(stage, rows)
    assert not isinstance(out["harbour"], Reject) and not isinstance(out["train"], Reject), out["train"]
    assert out["train"][R.V_DUPLICATE_OF] is None
    # within one video the question alone decides
    again = out["harbour-again"]
    assert isinstance(again, Reject) and again.detail["duplicate_of"] == "harbour" and "same video" in again.message
    # the same question and answer is a duplicate anywhere
    ferry = out["ferry"]
    assert isinstance(ferry, Reject) and ferry.detail["duplicate_of"] == "harbour", ferry
    assert "question and answer" in ferry.message and ferry.detail["answer"]


def test_answer_tasks_and_video_scope_compare_as_before():
    stage = _dedup(similarity_max=None)
    caps = [_qa("c1", "harbour", "Describe the video.", "A harbour at dawn.", task="caption"),
            _qa("c2", "train", "Describe the video.", "A harbour at dawn.", task="caption")]
    out = _verdicts(stage, caps)
    assert isinstance(out["c2"], Reject) and out["c2"].detail["duplicate_of"] == "c1"
    video = _dedup(scope="video", similarity_max=None)
    out = _verdicts(video, [_qa("a", "harbour", GENERIC, "Maria paints."), _qa("b", "train", GENERIC, "Maria paints."),
                            _qa("c", "harbour", GENERIC, "Tom drives.")])
    assert not isinstance(out["b"], Reject) and isinstance(out["c"], Reject)


def test_near_duplicates_across_videos_need_a_near_question_and_a_near_answer():
    stage = _dedup(similarity_max=0.9)
    rows = [_qa("harbour", "harbour", GENERIC, "Maria paints four blue things on Tuesday."),
            _qa("train", "train", GENERIC.replace("start", "beginning"), "The train leaves the station at 8 o'clock."),
            _qa("ferry", "ferry", GENERIC.replace("start", "beginning"), "Maria paints four blue things on Tuesday.")]
    out = _verdicts(stage, rows)
    assert not isinstance(out["train"], Reject), out["train"]
    assert isinstance(out["ferry"], Reject) and out["ferry"].detail["kind"] == "near", out["ferry"]
    assert out["ferry"].detail["duplicate_of"] == "harbour"
