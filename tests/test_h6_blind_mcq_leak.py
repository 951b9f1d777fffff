"""Outside check h4, F10: a teacher-written MCQ whose question names its own answer ("Which utensil, a fork,
are the eggs whisked with?" → "a fork") was kept, while its open twin was rejected `blind_answerable` by
the leak check. The blind stage runs here as the build runs it (no teacher, the embedding prior off so
that only the leak check can find anything), on rows shaped as generate writes them.

The absurd-distractor case of F10 ("a purple elephant on Mars" / "a thunderstorm" / "the number seven"
next to "a fork") is left to the embedding prior and a blind teacher: telling an absurd option from an
unlikely one needs a model, and the packaged MiniLM's margin on that item (0.07) is under `prior_margin`.
"""
from __future__ import annotations

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.blind import BlindConfig, BlindStage, option_leaked, reference_text


def _stage(**cfg) -> BlindStage:
    stage = BlindStage(BlindConfig(teacher=None, prior_model=None, **cfg), RunContext(output_dir=""))
    stage.setup()
    return stage


def _mcq(sid: str, question: str, options: list[str], answer: int) -> dict:
    return {R.SAMPLE_ID: sid, R.TASK: "mcq", R.QUESTION: question, R.ANSWER: options[answer], R.OPTIONS: options,
            R.ANSWER_INDEX: answer}


def test_an_mcq_that_names_its_answer_in_the_question_is_rejected_like_its_open_twin():
    leak = _mcq("leak", "Which utensil, a fork, are the eggs whisked with?", ["chopsticks", "a fork", "a spoon",
                                                                             "a knife"], 1)
    twin = {R.SAMPLE_ID: "twin", R.TASK: "open_qa", R.QUESTION: leak[R.QUESTION], R.ANSWER: "a fork",
            R.OPTIONS: None, R.ANSWER_INDEX: None}
    fair = _mcq("fair", "What are the eggs whisked with?", ["chopsticks", "a fork", "a spoon", "a knife"], 1)
    # a question that names a distractor too gives nothing away
    both = _mcq("both", "Is the pan yellow or red?", ["red", "blue", "yellow", "green"], 2)
    out = {(r.row if isinstance(r, Reject) else r)[R.SAMPLE_ID]: r for r in _stage().process_batch([leak, twin, fair, both])}
    for sid in ("leak", "twin"):
        rej = out[sid]
        assert isinstance(rej, Reject) and rej.reason == "blind_answerable", (sid, rej)
        assert rej.detail["leak"] is True and rej.row[R.V_BLIND_CORRECT] == 1.0
    assert "the correct option's words are all in the question, and no distractor's are" in out["leak"].message
    assert "the answer's words are all in the question" in out["twin"].message
    for sid in ("fair", "both"):
        assert isinstance(out[sid], dict) and out[sid][R.V_BLIND_CORRECT] is None, out[sid]


def test_the_mcq_leak_check_follows_the_leak_check_switch_and_the_tasks():
    leak = _mcq("leak", "Which utensil, a fork, are the eggs whisked with?", ["chopsticks", "a fork", "a spoon"], 1)
    assert isinstance(_stage(leak_check=False).process_batch([leak])[0], dict)
    assert isinstance(_stage(tasks=["open_qa"]).process_batch([leak])[0], dict)
    # the rule itself: every content word of the correct option, none of a distractor
    assert option_leaked("How many eggs, three eggs or four, does she whisk?", ["four eggs", "three eggs"], 1) is False
    assert option_leaked("How many eggs, three eggs or four, does she whisk?", ["two eggs", "three eggs"], 1) is True
    assert option_leaked("What does Tom ride to the market?", ["Tom", "Anna", "Peter"], 0) is True
    assert option_leaked("What does Tom ride to the market?", ["a bicycle", "a bus"], 0) is False


def test_grounded_qa_is_checked_by_default_on_its_text_answer():
    """grounded_qa (question, answer and span) is a question a text-only model could answer: in blind's
    default tasks, its reference without the time placeholder."""
    assert "grounded_qa" in BlindConfig().tasks
    assert reference_text("Twelve cookies ({{span:0,9.5}})") == "Twelve cookies"
    row = {R.SAMPLE_ID: "g", R.TASK: "grounded_qa", R.QUESTION: "How many cookies does Maria bake on Saturday?",
           R.ANSWER: "Cookies on Saturday ({{span:0,9.5}})", R.OPTIONS: None, R.ANSWER_INDEX: None}
    (rej,) = _stage().process_batch([row])
    # "cookies on saturday": all in the question (the span's numbers would have hidden it)
    assert isinstance(rej, Reject) and rej.reason == "blind_answerable" and rej.detail["leak"]
