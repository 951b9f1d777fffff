"""Grounding questions after the outside check h25 (F11), on the real generate stage with given teacher replies.

- F11: grounded_videollm asked for the moment T2 (6.7-9.3 s, "the brother Tom carries seven green boxes to"); the
  teacher wrote "When does Tom drive the truck to the harbor?", which describes T5 (18.6-21.9 s), and the sample
  was kept with T2's span (it shares "Tom" with T2, the old `min_shared_words` check). A grounding question (and
  a grounded_qa / reasoning_localization question with its answer) must now match its moment better than every
  other timed clue: else `off_target` (another matches better) or `ambiguous_moment` (one matches as well),
  naming the clue it matches.
"""
from __future__ import annotations

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate import TASK_FAMILIES, build_clues
from vdata.stages.generate.moment_match import rival_moment, stems
from vdata.stages.generate.stage import GenerateConfig, GenerateStage
from vdata.teachers.types import TeacherResult
from test_grounded_spans import DEAD, _seg   # the dead teacher and the ASR segment of those tests


# h25's harbour.mp4 as its ASR heard it (one clip of the whole 24 s)
ROW = {R.CLIP_ID: "harbour_0", R.VIDEO_ID: "harbour", R.START_S: 0.0, R.END_S: 24.0, R.DURATION_S: 24.0,
       R.SAMPLE_SCOPE: R.SCOPE_CLIP,
       R.TRANSCRIPT_SEGMENTS: [_seg(0.4, 3.0, "Maria paints four blue things on Tuesday."),
                               _seg(6.7, 9.28, "the brother Tom carries seven green boxes to"),
                               _seg(9.28, 11.0, "the truck."),
                               _seg(12.4, 15.8, "At noon, Maria sells three yellow lamps to Clara."),
                               _seg(18.6, 21.9, "Finally, Tom drives the truck to the harbor on Friday.")]}


def _stage(**tasks) -> GenerateStage:
    s = GenerateStage(GenerateConfig(teacher="t", tasks=tasks), RunContext(output_dir="", teachers=DEAD))
    s.setup()
    return s


def _answer(task: str, target: str, reply: dict, **tcfg):
    """The rows the stage makes of `reply` to its request about the moment `target`."""
    stage = _stage(**{task: {"per_clip": 8, **tcfg}})
    clues = build_clues(ROW, stage.config)
    _, pending = TASK_FAMILIES[task].plan(stage, ROW, clues, getattr(stage.config.tasks, task))
    p = next(p for p in pending if p.extra["target"].id == target)
    return stage.finish(ROW, clues, p, TeacherResult(request_id="r", parsed=reply), {})


def test_the_h25_question_about_another_moment_is_off_target_naming_it():
    (out,) = _answer("grounding", "T2", {"question": "When does Tom drive the truck to the harbor?"})
    assert isinstance(out, Reject) and out.reason == "off_target", out
    assert out.detail["rival"] == "T5" and out.detail["target"] == "T2"
    assert "T5" in out.message and "T2" in out.message


def test_a_question_about_its_own_moment_is_kept_with_its_span():
    (out,) = _answer("grounding", "T2", {"question": "When does Tom carry the green boxes?"})
    assert not isinstance(out, Reject), out
    assert out[R.ANSWER_SPANS] == [{"start_s": 6.7, "end_s": 9.28}]
    (out,) = _answer("grounding", "T5", {"question": "When does Tom drive the truck to the harbor?"})
    assert not isinstance(out, Reject) and out[R.ANSWER_SPANS] == [{"start_s": 18.6, "end_s": 21.9}], out


def test_a_question_that_fits_two_moments_as_well_is_ambiguous():
    (out,) = _answer("grounding", "T2", {"question": "When is Tom seen?"})   # "Tom": T2 and T5 alike
    assert isinstance(out, Reject) and out.reason == "ambiguous_moment", out
    assert out.detail["rival"] == "T5"


def test_grounded_qa_about_another_moment_is_off_target():
    reply = {"question": "Where does Tom drive the truck on Friday?", "answer": "To the harbor.", "evidence": ["T2"]}
    (out,) = _answer("grounded_qa", "T2", reply)
    assert isinstance(out, Reject) and out.reason == "off_target" and out.detail["rival"] == "T5", out
    good = {"question": "How many green boxes does Tom carry?", "answer": "Seven.", "evidence": ["T2"]}
    (kept,) = _answer("grounded_qa", "T2", good)
    assert not isinstance(kept, Reject) and kept[R.ANSWER_SPANS] == [{"start_s": 6.7, "end_s": 9.28}], kept


def test_reasoning_localization_whose_explanation_names_another_moment_is_off_target():
    # shares "Maria" with its moment T4 (the old check passed it), but five words with T5
    reply = {"question": "When could someone buy something to light a room?",
             "explanation": "Maria waits until Tom drives the truck to the harbor on Friday."}
    (out,) = _answer("reasoning_localization", "T4", reply)
    assert isinstance(out, Reject) and out.reason == "off_target" and out.detail["rival"] == "T5", out
    good = {"question": "When could someone buy something to light a room?",
            "explanation": "Maria sells yellow lamps to Clara at noon."}
    (kept,) = _answer("reasoning_localization", "T4", good)
    assert not isinstance(kept, Reject) and kept[R.ANSWER_SPANS] == [{"start_s": 12.4, "end_s": 15.8}], kept


def test_a_clue_at_the_same_moment_is_no_rival():
    """A caption or chapter around the target, or the subtitle of the same sentence, is the same moment."""
    stage = _stage(grounding={})
    row = dict(ROW, **{R.ANNOTATIONS: {"segments": [{"start_s": 6.0, "end_s": 12.0,
                                                      "text": "Tom carries green boxes to the truck"}]}})
    clues = build_clues(row, stage.config)
    target = next(c for c in clues if c.kind == "speech" and c.start_s == 6.7)
    assert rival_moment("When does Tom carry the green boxes to the truck?", target, clues) is None
    assert stems("Tom carries boxes; Tom drives") == {"tom", "carry", "box", "driv"}
