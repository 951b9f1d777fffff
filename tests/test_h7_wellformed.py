"""wellformed after the outside check h5 (findings F3, F13): a bare `V` answer, and questions about a prompt's
in-context example written in the teacher's own words ("How long does a ferry take to reach the island?")."""
from __future__ import annotations

import pytest

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.wellformed import (
    WellformedConfig,
    WellformedStage,
    evidence_text,
    prompt_examples,
    split_examples,
    stem,
)

# What the row of F13's SMPTE-bars clip knows about itself: a caption, nothing about a ferry
BARS = {R.CAPTION: "Vertical colour bars fill the screen above a row of grey and black blocks."}
# A clip that really shows a ferry (its transcript says so)
FERRY = {R.TRANSCRIPT_TEXT: "The ferry to the island leaves the harbour at nine and the ride takes forty minutes.",
         R.CAPTION: "A white ferry with passengers on deck sails past the pier."}


@pytest.fixture(scope="module")
def stage():
    return WellformedStage(WellformedConfig(), RunContext(output_dir=""))


def _reasons(stage, **row) -> list[str]:
    return [code for code, _ in stage.issues(row)] + [code for code, _ in stage.example_issues(row)]


@pytest.mark.parametrize("answer", ["V", "V.", "V1", "C1", "E2", "S3", "T4", "F5", "A1", "M2", "H3", "U4", "G5",
                                    "V ({{span:0,12}}).", "V, C2"])
def test_a_bare_note_id_of_every_clue_family_is_bare_reference(stage, answer):
    row = {"task": "open_qa", "question": "What is shown in the video?", "answer": answer, **BARS}
    assert "bare_reference" in _reasons(stage, **row), answer


def test_an_id_like_answer_the_evidence_itself_uses_is_content(stage):
    q = "What is written on the road sign?"
    sign = {R.CAPTION: 'A road sign with a large letter "V" next to a V8 engine and an A4 sheet.'}
    for answer in ("V", "V8", "A4."):
        assert _reasons(stage, task="open_qa", question=q, answer=answer, **sign) == [], answer
        assert "bare_reference" in _reasons(stage, task="open_qa", question=q, answer=answer, **BARS), answer


def test_examples_are_read_from_the_templates_themselves():
    # every shipped harbour example is found, with its topic, without a list of words in the code
    by_template = {ex.template: ex for ex in prompt_examples()}
    for name in ("generate/open_qa.v3", "generate/mcq.v3", "generate/false_premise.v1"):
        ex = by_template[name]
        assert "harbor" in ex.topic and {"ferry"} <= ex.words, (name, ex)   # (stems spell the American way)
    assert {"kitchen"} <= by_template["generate/clue_qa.v1"].topic
    # instruction words the prompts ask for are not example words ("question", "note", "colour")
    assert not {"question", "note", "colour", "color", "answer"} & set().union(*(ex.words for ex in prompt_examples()))
    # the parser on a template it has never seen: a demonstration block, an inline example, a few-shot pair
    examples, rest = split_examples(
        "You write questions. Notes:\n\n$clues\n\n"
        "Here is how it is done, on other notes (about a lighthouse, not this clip):\n"
        "E1 (event, 1.0-2.0s): the keeper climbs the spiral stairs\nQuestion: Who climbs the stairs?\n\n"
        'Write one question, for example "Which lamp does the keeper light?"\n\n'
        "Sentence: The keeper polishes the ___.\nQuestion: What does the keeper polish?\n\n"
        "Sentence: $masked\nQuestion: $opener ...?\n")
    assert len(examples) == 3 and "lighthouse" in examples[0] and examples[1] == "Which lamp does the keeper light?"
    assert "keeper" not in rest and "$clues" in rest


@pytest.mark.parametrize("question, answer", [
    ("How long does a ferry take to reach the island?", "The ferry ride takes 45 minutes."),   # llava_video_178k
    ("How does the ferry to the island leave?", "It leaves slowly."),
    ("Is the harbour a place where people can go to meet?", "No, it is not."),                 # cg_bench
    ("Is the ferry sinking?", "No, it is not."),
    ("What does the woman do next?", "The man pours the beaten eggs into a hot pan."),
])
def test_a_sample_about_the_prompt_example_is_rejected(stage, question, answer):
    row = {R.SAMPLE_ID: "s", R.TASK: "open_qa", R.QUESTION: question, R.ANSWER: answer, R.SAMPLE_TEACHER: "lm", **BARS}
    out = stage.process_row(row)
    # a near-verbatim copy is also prompt_leak (exact 3-grams), reported first; the paraphrases only prompt_example
    assert isinstance(out, Reject) and out.reason in ("prompt_leak", "prompt_example"), out
    assert "prompt_example" in out.row[R.V_WELLFORMED_ISSUES]
    if out.reason == "prompt_example":
        assert "evidence never says" in out.message and "generate/" in out.message


def test_the_rows_own_evidence_rescues_a_real_ferry(stage):
    for question, answer in (("How many minutes does the crossing to the island last?", "It lasts forty minutes."),
                             ("Is the ferry sinking?", "No, the ferry sails past the pier.")):
        row = {R.SAMPLE_ID: "s", R.TASK: "open_qa", R.QUESTION: question, R.ANSWER: answer, R.SAMPLE_TEACHER: "lm",
               **FERRY}
        out = stage.process_row(row)
        assert not isinstance(out, Reject), out.message
        assert stage.process_row({**row, **{c: None for c in FERRY}, **BARS}).reason == "prompt_example"   # no rescue
    # evidence stored as the cited clues, or as annotations, rescues as well
    cited = {R.EVIDENCE: {"captions": ["{{span:2,9}} a red ferry leaves the island"], "frame_timestamps_s": [],
                          "transcript_spans": []}}
    assert _reasons(stage, task="open_qa", question="Where does the ferry leave from?", answer="The island.", **cited) == []
    annotated = {R.ANNOTATIONS: {"title": "Island ferry", "segments": [{"start_s": 0, "end_s": 4, "text": "boarding"}]}}
    assert "island" in evidence_text(annotated).lower()
    assert _reasons(stage, task="open_qa", question="Which ferry is shown?", answer="The island ferry.", **annotated) == []


def test_one_shared_word_or_no_evidence_is_not_judged(stage):
    # one word of an example (a red shirt; "blue" stands in two examples) is ordinary content
    assert _reasons(stage, task="open_qa", question="What colour is the shirt?", answer="Blue.", **BARS) == []
    # a row with no text evidence (frames only): what the teacher saw cannot be read, so nothing is judged
    assert _reasons(stage, task="open_qa", question="Is the ferry sinking?", answer="No, it is not.") == []
    # the check can be switched off
    off = WellformedStage(WellformedConfig(max_example_words=None), RunContext(output_dir=""))
    assert off.example_issues({R.QUESTION: "Is the ferry sinking?", R.ANSWER: "No.", **BARS}) == []


def test_stems_meet_across_word_forms():
    assert stem("sinking") == stem("sinks") == stem("sink")
    assert stem("ferries") == stem("ferry") and stem("spinning") == stem("spins")


def test_the_rows_evidence_rescues_it_in_the_other_spelling(stage):
    """Outside check h25 F2: Whisper wrote "harbor" and the sample, like the prompt's example, "harbour": the
    sample was taken for the example's. British and American spellings are one word on both sides."""
    harbor = {R.TRANSCRIPT_TEXT: "Finally, Tom drives the truck to the harbor on Friday."}
    row = {R.SAMPLE_ID: "s", R.TASK: "open_qa", R.QUESTION: "Where does Tom drive the truck on Friday?",
           R.ANSWER: "Tom drives the truck to the harbour.", R.SAMPLE_TEACHER: "lm", **harbor}
    assert not isinstance(stage.process_row(row), Reject)
    assert stage.process_row({**row, R.TRANSCRIPT_TEXT: None, **BARS}).reason == "prompt_example"   # still caught
