"""Reply strings cut at their schema cap after the outside check h25 (F15), on the real generate stage with given
teacher replies.

- F15: an open_qa answer of exactly `max_answer_chars` (300) characters ending "...while the boxes are green and
  seven" (what llama.cpp / vLLM xgrammar return when the schema's `maxLength` closes the string; the reply still
  ends "stop") was kept and verified as if whole. Every task whose reply fields are capped (`text_field`) now
  treats a field that reaches its cap without ending a sentence as cut: `truncated`, or, for free-form text
  where a shorter whole answer is still the answer (open_qa's answer, grounded_qa's answer, cot's final answer,
  reasoning_localization's explanation), its complete sentences (as preference_pairs' candidates since F4).
"""
from __future__ import annotations

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate import TASK_FAMILIES, build_clues
from vdata.stages.generate.stage import GenerateConfig, GenerateStage
from vdata.teachers.types import TeacherResult

from test_grounded_spans import DEAD, _seg   # the dead teacher and the ASR segment of those tests


ROW = {R.CLIP_ID: "harbour_0", R.VIDEO_ID: "harbour", R.START_S: 0.0, R.END_S: 24.0, R.DURATION_S: 24.0,
       R.SAMPLE_SCOPE: R.SCOPE_CLIP,
       R.TRANSCRIPT_SEGMENTS: [_seg(0.4, 3.0, "Maria paints four blue things on Tuesday."),
                               _seg(6.7, 9.3, "Her brother Tom carries seven green boxes to the truck."),
                               _seg(18.6, 21.9, "Finally, Tom drives the truck to the harbor on Friday.")]}
RUN_ON = ("In the harbor at sunrise Tom carries the boxes to the truck one after another while Maria paints the blue "
          "things and the sun comes up over the harbor and the gulls call from the roofs of the sheds along the water "
          "where the boats come in and go out all morning long while the boxes are green and seven of them stand by "
          "the truck")


def _cut(text: str, cap: int) -> str:
    assert len(text) > cap
    return text[:cap]


def _stage(cap_is_cut: bool = True, **tasks) -> GenerateStage:
    off = {} if cap_is_cut else {"cap_is_cut": False}   # the default is on
    s = GenerateStage(GenerateConfig(teacher="t", tasks=tasks, **off), RunContext(output_dir="", teachers=DEAD))
    s.setup()
    return s


def _answer(task: str, reply: dict, cap_is_cut: bool = True, pick=lambda p: True, **tcfg):
    stage = _stage(cap_is_cut, **{task: {"per_clip": 1, **tcfg}})
    clues = build_clues(ROW, stage.config)
    _, pending = TASK_FAMILIES[task].plan(stage, ROW, clues, getattr(stage.config.tasks, task))
    p = next(p for p in pending if pick(p))
    return stage, stage.finish(ROW, clues, p, TeacherResult(request_id="r", parsed=reply), {})


def test_the_h25_open_answer_cut_at_300_is_truncated():
    answer = _cut(RUN_ON, 300)
    assert answer.endswith("while the boxes are green and seven") and len(answer) == 300
    _, (out,) = _answer("open_qa", {"question": "What does Tom do?", "answer": answer, "evidence": ["T2"]})
    assert isinstance(out, Reject) and out.reason == "truncated", out
    assert out.detail["field"] == "answer" and out.detail["cap"] == 300


def test_a_cut_open_answer_keeps_its_complete_sentences():
    answer = _cut("Tom carries seven green boxes to the truck. " + RUN_ON, 300)
    stage, (out,) = _answer("open_qa", {"question": "What does Tom do?", "answer": answer, "evidence": ["T2"]})
    assert not isinstance(out, Reject), out
    assert out[R.ANSWER] == "Tom carries seven green boxes to the truck."
    assert stage.counters["open_qa_trimmed_at_cap"] == 1


def test_whole_answers_are_kept_as_written():
    short = "Tom carries seven green boxes to the truck."
    _, (out,) = _answer("open_qa", {"question": "What does Tom do?", "answer": short, "evidence": ["T2"]})
    assert not isinstance(out, Reject) and out[R.ANSWER] == short, out
    # an answer that fills the cap with a sentence end is whole
    exact = (short + " " + RUN_ON)[:299] + "."
    assert len(exact) == 300
    _, (out,) = _answer("open_qa", {"question": "What does Tom do?", "answer": exact, "evidence": ["T2"]})
    assert not isinstance(out, Reject) and out[R.ANSWER] == exact, out


def test_mcq_option_cut_at_its_cap_is_truncated():
    reply = {"question": "What does Tom do?", "answer": _cut(RUN_ON, 120),
             "distractors": ["Tom paints chairs.", "Tom sells lamps.", "Tom sleeps."], "evidence": ["T2"]}
    _, out = _answer("mcq", reply)
    assert len(out) == 1 and isinstance(out[0], Reject) and out[0].reason == "truncated", out
    assert out[0].detail["field"] == "answer" and out[0].detail["cap"] == 120
    reply = dict(reply, answer="Tom carries boxes.",
                 distractors=["Tom paints chairs.", _cut(RUN_ON, 120), "Tom sleeps."])
    _, out = _answer("mcq", reply)
    assert isinstance(out[0], Reject) and out[0].reason == "truncated" and out[0].detail["field"] == "distractors[1]"


def test_cot_step_cut_at_its_cap_is_truncated_and_a_cut_final_answer_keeps_its_sentences():
    reply = {"question": "How many boxes does Tom carry?", "steps": [{"text": _cut(RUN_ON, 200), "evidence": ["T2"]}],
             "answer": "Seven."}
    _, (out,) = _answer("cot", reply)
    assert isinstance(out, Reject) and out.reason == "truncated" and out.detail["field"] == "steps[0].text", out
    reply = {"question": "How many boxes does Tom carry?",
             "steps": [{"text": "Tom carries seven green boxes.", "evidence": ["T2"]}],
             "answer": _cut("Tom carries seven boxes. " + RUN_ON, 300)}
    _, (out,) = _answer("cot", reply)
    assert not isinstance(out, Reject) and out[R.ANSWER] == "Tom carries seven boxes.", out


def test_grounded_qa_and_clue_qa_read_the_cap_too():
    reply = {"question": "How many green boxes does Tom carry?", "answer": _cut(RUN_ON, 300), "evidence": ["T2"]}
    _, (out,) = _answer("grounded_qa", reply, pick=lambda p: p.extra["target"].id == "T2", per_clip=3)
    assert isinstance(out, Reject) and out.reason == "truncated", out
    reply = {"question": "How many boxes does Tom carry?", "answer": "Seven.",
             "distractors": ["Three.", _cut(RUN_ON, 120), "Nine."], "evidence": ["T2"]}
    _, out = _answer("clue_qa", reply)
    assert isinstance(out[0], Reject) and out[0].reason == "truncated", out


def test_cap_is_cut_false_keeps_a_full_string_as_written():
    answer = _cut(RUN_ON, 300)
    _, (out,) = _answer("open_qa", {"question": "What does Tom do?", "answer": answer, "evidence": ["T2"]},
                        cap_is_cut=False)
    assert not isinstance(out, Reject) and out[R.ANSWER] == answer, out


def test_a_streaming_turn_cut_at_its_cap_keeps_the_items_own_text():
    from test_h7_saliency import DEAD as KITCHEN_TEACHER, ROW as KITCHEN   # 20 s, four annotated segments

    stage = GenerateStage(GenerateConfig(teacher="t", scope="video", tasks={
        "streaming_dialogue": {"rephrase": True, "sources": ["segments"]}}),
        RunContext(output_dir="", teachers=KITCHEN_TEACHER))
    stage.setup()
    clues = build_clues(KITCHEN, stage.config)
    _, (p, *_) = TASK_FAMILIES["streaming_dialogue"].plan(stage, KITCHEN, clues, stage.config.tasks.streaming_dialogue)
    turns = p.extra["sample"][R.TURNS]
    replies = [_cut(RUN_ON, 200), "Now she pours milk into the blue bowl.", "A brown dog runs in the garden.",
               "Someone closes the door."]
    (out,) = stage.finish(KITCHEN, clues, p, TeacherResult(request_id="r", parsed={"replies": replies}), {})
    contents = [t["content"] for t in out[R.TURNS][1:]]
    assert contents[0] == turns[1]["content"], contents   # the item's own text, not the cut rewrite
    assert contents[1:] == replies[1:]
