"""Times a teacher states in free text (outside check h17: F1, F6, F6b, F7, F8, F10): one shared detector
(vdata/prompts/stated_times.py) and every check of a teacher's text that uses it — wellformed's
`states_time` (and its note checks on rationale steps), highlights' `query_states_time`, streaming's
rephrased turns, generate's `placeholder_in_reply` and verify_claims' time check. No model server: the
teacher's replies are given by hand."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from vdata.prompts.stated_times import stated_times, states_time
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate import TASK_FAMILIES, build_clues
from vdata.stages.generate.common import sample_base
from vdata.stages.generate.stage import GenerateConfig, GenerateStage
from vdata.stages.verify_claims import VerifyClaimsConfig, VerifyClaimsStage
from vdata.stages.wellformed import WellformedConfig, WellformedStage

# --- the detector ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, written, kind, seconds", [
    ("What is said at 11.3 seconds?", "11.3 seconds", "point", (11.3,)),
    ("Tom sells bread 11.3s in", "11.3s", "point", (11.3,)),
    ("Anna paints the blue door at 31s", "31s", "point", (31.0,)),               # F1 item 4
    ("Now, at 0:10, Maria is baking bread.", "0:10", "point", (10.0,)),          # F7
    ("the talk resumes at 1:02:03", "1:02:03", "point", (3723.0,)),
    ("In 11.3-13.3s, Tom sells the bread", "11.3-13.3s", "range", (11.3, 13.3)),   # F6b
    ("From 20.0 to 30.0s the red clock shows nine.", "From 20.0 to 30.0s", "range", (20.0, 30.0)),
    ("She makes bread between 0.6 and 3.9 seconds.", "between 0.6 and 3.9 seconds", "range", (0.6, 3.9)),
    ("the dog at 13 sec", "13 sec", "point", (13.0,)),
    ("the dog after 2 min", "2 min", "duration", (120.0,)),   # h19: "after 20 minutes, flip it"
    ("It happens after 3 minutes.", "3 minutes", "duration", (180.0,)),
    ("Anna paints the door at the 30 second mark.", "30 second", "point", (30.0,)),
    ("at the thirty second mark", "thirty second", "point", (30.0,)),
    ("the dog jumps in frame 50", "frame 50", "frame", ()),
    ("It happens ten seconds in.", "ten seconds", "point", (10.0,)),
    ("After one minute Tom sells the bread.", "one minute", "duration", (60.0,)),   # F7: still no turn may say it
    ("at twenty-five seconds", "twenty-five seconds", "point", (25.0,)),
    ("Maria bakes bread in the morning at 0:50.", "0:50", "point", (50.0,)),     # F10
    ("In the last ten seconds of the video the clock shows nine.", "last ten seconds", "last", (10.0,)),
    ("In the first 10 seconds a pattern shows", "first 10 seconds", "range", (0.0, 10.0)),
    ("The bread bakes for 20 minutes.", "20 minutes", "duration", (1200.0,)),
    ("the clock reads 9:00", "9:00", "duration", (540.0,)),   # a reading, not a moment of the video
    ("the clock at 9:00", "9:00", "point", (540.0,)),       # digits: indistinguishable from m:ss (documented)
])
def test_the_detector_finds_every_form_with_its_value(text, written, kind, seconds):
    (found,) = stated_times(text)
    assert (found.text, found.kind) == (written, kind)
    assert found.seconds() == pytest.approx(seconds)


def test_the_frames_and_the_last_seconds_resolve_against_the_video():
    (frames,) = stated_times("frames 33 - 81")
    assert frames.frames == (33, 81) and frames.interval() is None
    (last,) = stated_times("the last ten seconds")
    assert last.interval(40.0) == (30.0, 40.0) and last.interval() is None
    assert stated_times("from 20.0 to 30.0s")[0].interval() == (20.0, 30.0)


@pytest.mark.parametrize("text", [
    "She makes three loaves of bread.", "Maria bakes 3 loaves.", "The red clock on the wall shows nine o'clock.",
    "The clock shows nine.", "The shop opens at 9:00 am.", "It was built in 1990.", "music of the 1990s",
    "songs from the 80s", "Tom finishes in second place.", "A second person enters.", "He knocks for a second time.",
    "on the twenty-second day", "the second loaf", "three sisters", "The market stays open for five hours.",
    "a few seconds later", "Bread, see {{span:0,12}} and {{t:3.5}}.", "The screen is 16:9.", "4 boxes and 2 cups",
])
def test_counts_years_ordinals_and_clocks_in_words_are_no_times(text):
    assert stated_times(text) == [], stated_times(text)


def test_states_time_can_leave_durations_out():
    assert states_time("It bakes for 20 minutes.").kind == "duration"
    assert states_time("It bakes for 20 minutes.", durations=False) is None
    assert states_time("It bakes for 20 minutes at 0:12.", durations=False).text == "0:12"


# --- wellformed: states_time, and rationale steps read -----------------------------------------------

@pytest.fixture(scope="module")
def wellformed():
    return WellformedStage(WellformedConfig(), RunContext(output_dir=""))


def _wf(stage, **row):
    row = {R.SAMPLE_ID: "s", R.SAMPLE_TEACHER: "lm", **row}
    out = stage.process_row(row)
    return (out.reason, out.message) if isinstance(out, Reject) else (None, out[R.V_WELLFORMED_ISSUES])


@pytest.mark.parametrize("row, where", [
    ({R.TASK: "grounded_qa", R.QUESTION: "What is said at 11.3 seconds?",
      R.ANSWER: "Tom sells the bread at the market."}, "question"),
    ({R.TASK: "grounded_qa", R.QUESTION: "What does Tom sell at the market?",
      R.ANSWER: "Tom sells the bread at the market, from 11.3 to 13.3 seconds."}, "answer"),
    ({R.TASK: "reasoning_localization", R.QUESTION: "When 10.0-13.5s",
      R.ANSWER: "{{span:9.97,13.47}} The market stays open for five hours on Saturday"}, "question"),   # F6c
    ({R.TASK: "cot", R.QUESTION: "What does Maria bake in the morning?", R.ANSWER: "Three loaves of bread.",
      R.RATIONALE_STEPS: [{"text": "Maria speaks at 0:01 about bread", "evidence_timestamps_s": [0.6]}]},
     "rationale step 1"),
    ({R.TASK: "mcq", R.QUESTION: "When does Tom sell the bread?", R.ANSWER: "on Friday",
      R.OPTIONS: ["on Friday", "at 31s", "on Monday"], R.ANSWER_INDEX: 0}, "option 1"),
    ({R.TASK: "grounding", R.QUESTION: "When does the fractal zoom in, at 20-30 seconds?",
      R.ANSWER: "{{span:20,30}}"}, "question"),                                                       # F1 item 3
])
def test_a_time_a_teacher_writes_is_states_time(wellformed, row, where):
    reason, message = _wf(wellformed, **row)
    assert reason == "states_time" and f"the {where} states a time" in message, (reason, message)


def test_user_text_durations_and_placeholders_are_not_states_time(wellformed):
    # annotation-derived text (no teacher) may say what it says
    row = {R.TASK: "open_qa", R.QUESTION: "What is said at 11.3 seconds?", R.ANSWER: "Tom sells the bread."}
    assert _wf(wellformed, **{**row, R.SAMPLE_TEACHER: None}) == (None, [])
    # placeholders are the right way to write a time; a duration is content
    assert _wf(wellformed, task="grounded_qa", question="What does Tom sell at the market?",
               answer="Tom sells the bread at the market ({{span:11.3,13.28}}).") == (None, [])
    assert _wf(wellformed, task="open_qa", question="How long does Maria bake the bread?",
               answer="She bakes the bread for 20 minutes.") == (None, [])
    # the same text a teacher wrote is rejected
    assert _wf(wellformed, **row)[0] == "states_time"


@pytest.mark.parametrize("text", [
    "Preheat the oven, then bake 20 minutes.", "Let it rest 10 minutes before slicing.", "Cook 3 minutes per side.",
    "Microwave on high 30 seconds.", "Marinate at least 30 minutes.", "After 20 minutes, flip the chicken.",
    "It needs 45 minutes in the oven.", "This 5-minute workout targets the core.", "Five minutes later, the chef adds salt.",
    "He ran the 100m in 9.58 seconds.", "Set the timer to 5 minutes.", "The timer shows 5:00.", "Simmer for 5 to 10 minutes.",
    "Simmer 5-10 minutes.", "Knead the dough 8-10 minutes.", "The race starts in 30 seconds.", "Won the relay by two seconds.",
    "He bought the iPhone 5s.", "Interval training: 30s on, 30s off.", "We meet at 9:30 in the morning.",
    "She finished the marathon in 2:01:39.", "The countdown goes from 10 to 1 seconds.", "Hold each stretch 30 s.",
])
def test_how_long_is_no_moment_of_the_video(text):
    """Outside check h19: narration and instructions say how long in many more ways than a list of duration words
    held ("bake 20 minutes", "won by two seconds"): a time is a moment only where the words around it say so."""
    assert states_time(text, durations=False) is None, stated_times(text)


@pytest.mark.parametrize("text", ["Tom sells the bread after 11.3 seconds.", "After 11.3s, Tom sells the bread.",
                                  "Tom sells the bread, 11.3s."])
def test_seconds_in_the_clue_lines_form_are_a_copied_moment(text):
    """Outside check h19 F10: a decimal number of seconds is how the clue lines give times; "ran it in 9.58 seconds"
    is a measurement."""
    assert states_time(text, durations=False).kind == "point"
    assert states_time("He ran the 100m in 9.58 seconds.", durations=False) is None


def test_a_time_the_evidence_says_is_its_content(wellformed):
    """Outside check h19 F7: "the race starts at 9:30", said by the narrator, asked about and answered."""
    row = {R.TASK: "mcq", R.QUESTION: "When does the race start?", R.ANSWER: "9:30", R.ANSWER_INDEX: 1,
           R.OPTIONS: ["8:30", "9:30", "10:30", "11:30"],
           R.TRANSCRIPT_TEXT: "Good morning from the stadium, the race starts at 9:30."}
    assert _wf(wellformed, **{**row, R.OPTIONS: ["9:30", "10:30"], R.ANSWER_INDEX: 0})[0] is None
    assert _wf(wellformed, **{**row, R.TASK: "open_qa", R.ANSWER: "The race starts at 9:30."})[0] is None
    assert _wf(wellformed, **{**row, R.TASK: "open_qa", R.ANSWER: "The race starts at 0:12."})[0] == "states_time"


def test_a_quote_of_the_narration_is_its_content(wellformed):
    """Outside check h19 F4: answer-first answers quote the transcript; a time said there is what the video says."""
    said = "The race starts at 9:30 on the main square."
    row = {R.TASK: "open_qa", R.QUESTION: "Where does the race start, according to what the narrator says?",
           R.ANSWER: f'The main square: the narrator says "{said}"', R.TRANSCRIPT_TEXT: said}
    assert _wf(wellformed, **row) == (None, [])
    assert _wf(wellformed, **{**row, R.TRANSCRIPT_TEXT: "The race starts on the main square."})[0] == "states_time"


def test_rationale_steps_are_read_for_note_echo_and_bare_reference(wellformed):
    """F6: SmolLM2's CoT whose steps are the prompt's clue lines, kept before."""
    base = {R.TASK: "cot", R.QUESTION: "What is the scene shown in the clip?",
            R.ANSWER: "The scene shown in the clip is a test pattern with a moving counter while Maria bakes bread."}
    for step in ("M1 (title of the video): Bakery and market", "A1 (annotated segment, 0.0-10.0s)",
                 "T1 (speech, 0.6-3.9s) tell you that Maria makes three loaves"):
        reason, message = _wf(wellformed, **base, rationale_steps=[{"text": step, "evidence_timestamps_s": [0.0]}])
        assert reason == "note_echo" and "rationale step 1" in message, (step, reason, message)
    reason, message = _wf(wellformed, **base, rationale_steps=[{"text": "Maria bakes bread.", "evidence_timestamps_s": []},
                                                               {"text": "A2", "evidence_timestamps_s": [10.0]}])
    assert reason == "bare_reference" and "rationale step 2" in message
    # a cot answer that is a cut clue line (F6b)
    assert _wf(wellformed, **{**base, R.ANSWER: "T1 (speech, 0.6-3.9s:"})[0] == "note_echo"


# --- generate: highlights' query, streaming's turns, a placeholder in a reply ---------------------------

from test_h7_saliency import DEAD, ROW  # noqa: E402  (the 20-s kitchen video of four annotated segments)


@pytest.fixture(scope="module")
def generate():
    s = GenerateStage(GenerateConfig(teacher="t", scope="video", tasks={
        "highlights": {}, "streaming_dialogue": {"rephrase": True, "sources": ["segments"]}}),
        RunContext(output_dir="", teachers=DEAD))
    s.setup()
    return s


def _pending(stage, task):
    clues = build_clues(ROW, stage.config)
    _, pending = TASK_FAMILIES[task].plan(stage, ROW, clues, getattr(stage.config.tasks, task))
    return clues, pending[0]


def _scores(p, score=4):
    return [{"id": c.id, "score": score if c.id == p.extra["target"].id else 0} for c in p.extra["units"]]


@pytest.mark.parametrize("query", ["a brown dog runs across the green garden at 31s",
                                   "a brown dog runs across the green garden ten seconds in",
                                   "the brown dog runs across the green garden at one minute",
                                   "the brown dog runs across the green garden (10.0-15.0s)"])
def test_highlights_query_stating_a_time_in_any_form_is_rejected(generate, query):
    clues, p = _pending(generate, "highlights")
    out = TASK_FAMILIES["highlights"].finish(generate, ROW, clues, p, {"query": query, "scores": _scores(p)},
                                             sample_base(generate, ROW, p.task, p.index, p.prompt.id), {})[0]
    assert isinstance(out, Reject) and out.reason == "query_states_time", out


def test_a_highlights_query_saying_how_long_is_content(generate):
    """Outside check h19 F6: QVHighlights-style queries say how long ("a man cooks for 10 minutes")."""
    clues, p = _pending(generate, "highlights")
    query = "a brown dog runs across the green garden for ten seconds"
    out = TASK_FAMILIES["highlights"].finish(generate, ROW, clues, p, {"query": query, "scores": _scores(p)},
                                             sample_base(generate, ROW, p.task, p.index, p.prompt.id), {})[0]
    assert not isinstance(out, Reject), out.message


def test_streaming_rephrase_keeps_no_turn_stating_a_time(generate):
    """F7: m:ss, number words with a unit, "the 30 second mark": each rewritten turn that states a time keeps
    the item's own text; a clean rewrite and an ordinal "second" are kept."""
    clues, p = _pending(generate, "streaming_dialogue")
    turns = p.extra["sample"][R.TURNS]
    assert len(turns) == 5   # the query and the four segments
    replies = ["A woman cuts three red apples at 0:01.", "Now, at 0:10, she pours milk into the blue bowl.",
               "After one minute a brown dog runs in the garden.", "For the second time someone closes the door."]
    before = generate.counters["rephrase_kept_original"]
    (out,) = TASK_FAMILIES["streaming_dialogue"].finish(generate, ROW, clues, p, {"replies": replies},
                                                        sample_base(generate, ROW, p.task, p.index, p.prompt.id), {})
    contents = [t["content"] for t in out[R.TURNS][1:]]
    assert contents[:3] == [t["content"] for t in turns[1:4]], contents   # the originals, not the leaks
    assert contents[3] == replies[3]   # "second" as an ordinal is no time
    assert generate.counters["rephrase_kept_original"] - before == 3


def test_a_reply_writing_placeholder_syntax_is_rejected(generate):
    """F8: `{{span:0,999}}` in a reply was stored escaped and exported as literal text."""
    clues, p = _pending(generate, "highlights")
    res = SimpleNamespace(ok=True, parsed={"query": "a brown dog runs across the green garden {{span:0,999}}",
                                           "scores": _scores(p)}, error=None, error_kind=None, raw="")
    (out,) = generate.finish(ROW, clues, p, res)
    assert isinstance(out, Reject) and out.reason == "placeholder_in_reply", out
    assert "{{" in out.message
    clean = SimpleNamespace(ok=True, parsed={"query": "a brown dog runs across the green garden", "scores": _scores(p)},
                            error=None, error_kind=None, raw="")
    assert not isinstance(generate.finish(ROW, clues, p, clean)[0], Reject)


# --- verify_claims: a stated time is checked (F10) ---------------------------------------------------

TALK = [(0.62, 3.92, "Maria bakes three loaves of bread in the morning."),
        (11.3, 13.28, "Tom sells the bread at the market on Friday."),
        (21.14, 23.82, "The red clock on the wall shows nine o'clock."),
        (31.16, 32.76, "Anna paints the blue door of the shop.")]


def _claim_row(n, answer, start=0.0, end=40.0):
    return {R.SAMPLE_ID: f"s{n}", R.TASK: "grounded_qa", R.QUESTION: "What happens in the video?", R.ANSWER: answer,
            R.CLIP_ID: "talk40", R.SOURCE_URI: "talk40.mp4", R.START_S: start, R.END_S: end,
            R.TRANSCRIPT_SEGMENTS: [{"start_s": a, "end_s": b, "text": t} for a, b, t in TALK]}


@pytest.fixture(scope="module")
def verify():
    s = VerifyClaimsStage(VerifyClaimsConfig(relevance_min=None, evidence_sources=["transcript", "cited"],
                                             min_supported_ratio=0.75, max_refuted_claims=0), RunContext(output_dir=""))
    s.setup()
    return s


def _verdicts(stage, rows):
    out = {}
    for r in stage.process_batch(rows):
        row = r.row if isinstance(r, Reject) else r
        out[row[R.SAMPLE_ID]] = (r.reason if isinstance(r, Reject) else None, row[R.V_CLAIMS])
    return out


def test_a_time_that_contradicts_the_evidence_or_the_video_is_refuted(verify):
    got = _verdicts(verify, [
        _claim_row(1, "Tom sells the bread at the market on Friday, 35 seconds into the video. ({{span:11.3,13.28}})"),
        _claim_row(2, "Maria makes three loaves of bread in the morning at 0:50. ({{span:0.62,3.92}})"),
        _claim_row(3, "In the last ten seconds of the video the clock on the wall shows nine. ({{span:21.14,23.82}})"),
        _claim_row(4, "Tom sells the bread at the market on Friday at 25 seconds.", 10.0, 20.0),   # outside the clip
    ])
    for sid in ("s1", "s2", "s3", "s4"):
        reason, claims = got[sid]
        assert reason == "contradicted" and claims[0]["verdict"] == "refuted", (sid, claims)
    assert "11.3-13.28" in got["s1"][1][0]["note"] and "outside" in got["s2"][1][0]["note"]


def test_a_time_the_evidence_supports_is_kept_and_an_unbacked_one_is_never_support(verify):
    got = _verdicts(verify, [
        _claim_row(5, "Tom sells the bread at the market on Friday at 12 seconds."),
        _claim_row(6, "Tom sells the bread at the market on Friday at 1.5 seconds.", 10.0, 20.0),   # clip-relative
        _claim_row(7, "Maria bakes bread for 20 minutes."),   # a duration: not a position in the video
        _claim_row(8, "A dog barks at 5 seconds."),
        _claim_row(9, "Tom rests the bread ten minutes before the market on Friday."),   # h19: a duration, not refuted
    ])
    assert got["s9"][0] is None and all(c["verdict"] != "refuted" for c in got["s9"][1])
    assert got["s5"][0] is None and got["s5"][1][0]["verdict"] == "supported"
    assert got["s6"][0] is None and got["s6"][1][0]["verdict"] == "supported"
    assert got["s7"][0] is None
    reason, claims = got["s8"]
    assert reason == "hallucination" and claims[0]["verdict"] == "unsupported" and not claims[0]["supported"]
    assert "undecided → unsupported" in claims[0]["note"]
