"""Outside check h25 F17: a clock time that is a time of day is content, not a video timestamp.

A correct MCQ "At what time does the train leave the station?" (transcript "The train leaves the station at
8 o'clock.") with the distractor "7:30" was rejected `states_time`. A time of day ("7:30", "8 o'clock", "noon",
"7:30 pm") is content where the question is about one or the row's evidence says one; a stated position in the
video ("at 0:12 in the video", "12 seconds in", "7:30 into the video") is still a time the teacher must write
as a placeholder.
"""
from __future__ import annotations

import pytest

from vdata.prompts.stated_times import says_time_of_day, video_times
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.wellformed import WellformedConfig, WellformedStage

TRAIN = {R.TASK: "mcq", R.QUESTION: "At what time does the train leave the station?", R.ANSWER: "8 o'clock",
         R.OPTIONS: ["8 o'clock", "9 o'clock", "10 o'clock", "7:30"], R.ANSWER_INDEX: 0,
         R.TRANSCRIPT_TEXT: "The train leaves the station at 8 o'clock."}


@pytest.fixture(scope="module")
def wellformed():
    return WellformedStage(WellformedConfig(), RunContext(output_dir=""))


def _reason(stage, **row):
    out = stage.process_row({R.SAMPLE_ID: "s", R.SAMPLE_TEACHER: "lm", **row})
    return (out.reason, out.message) if isinstance(out, Reject) else (None, out[R.V_WELLFORMED_ISSUES])


def test_the_trains_mcq_with_a_clock_distractor_is_kept(wellformed):
    """The tester's row is kept, and so it is where only the question, or only the evidence, speaks of the
    time of day."""
    assert _reason(wellformed, **TRAIN) == (None, [])
    digits = {**TRAIN, R.ANSWER: "8:00", R.OPTIONS: ["8:00", "9:00", "10:00", "7:30"]}
    # the question alone asks a time of day (the evidence says none)
    assert _reason(wellformed, **{**digits, R.TRANSCRIPT_TEXT: "The train leaves the station."}) == (None, [])
    # the evidence alone says one (the question asks "when")
    assert _reason(wellformed, **{**digits, R.QUESTION: "When does the train leave the station?"}) == (None, [])
    # neither does: the clock times are read as places in the video, as before
    assert _reason(wellformed, **{**digits, R.QUESTION: "When does the train leave the station?",
                                  R.TRANSCRIPT_TEXT: "The train leaves the station."})[0] == "states_time"
    # the distractors may be any time-of-day form
    assert _reason(wellformed, **{**TRAIN, R.OPTIONS: ["8 o'clock", "noon", "7:30 pm", "19:45"]}) == (None, [])


def test_a_clock_time_the_speech_says_makes_other_clock_times_content(wellformed):
    """The narrator says "9:30" (a transcript writes the clock as digits): "10:00" beside it is a time of day."""
    row = {R.TASK: "open_qa", R.QUESTION: "When does the race start?",
           R.ANSWER: "The race starts at 9:30, not at 10:00.",
           R.TRANSCRIPT_TEXT: "Welcome to the stadium. The race starts at 9:30 today."}
    assert _reason(wellformed, **row) == (None, [])
    segments = [{"start_s": 1.0, "end_s": 4.0, "text": "The race starts at 9:30.", "words": []}]
    assert _reason(wellformed, **{**row, R.TRANSCRIPT_TEXT: "", R.TRANSCRIPT_SEGMENTS: segments}) == (None, [])
    # subtitles are speech too
    subtitles = {"subtitles": [{"start_s": 1.0, "end_s": 4.0, "text": "The race starts at 9:30."}]}
    assert _reason(wellformed, **{**row, R.TRANSCRIPT_TEXT: "", R.ANNOTATIONS: subtitles}) == (None, [])


@pytest.mark.parametrize("answer", [
    "The train leaves at 0:12 in the video.",      # "0:12" is no time of day
    "The train leaves 12 seconds in.",             # a position said in seconds
    "The train leaves at 7:30 into the video.",    # a clock said as a place in the video
    "The clip at 7:30 shows the train leaving.",
    "The train leaves at the 7:30 mark.",
])
def test_a_position_in_the_video_is_still_states_time(wellformed, answer):
    row = {R.TASK: "open_qa", R.QUESTION: "At what time does the train leave the station?", R.ANSWER: answer,
           R.TRANSCRIPT_TEXT: "The train leaves the station at 8 o'clock."}
    assert _reason(wellformed, **row)[0] == "states_time"


def test_without_a_time_of_day_a_bare_clock_stays_a_video_time(wellformed):
    # nothing says the time of day: "7:30" is read as m:ss, as before
    row = {R.TASK: "open_qa", R.QUESTION: "When does the man jump into the pool?", R.ANSWER: "He jumps at 7:30.",
           R.TRANSCRIPT_TEXT: "Look at him go."}
    assert _reason(wellformed, **row)[0] == "states_time"
    # "what time" about the video's own timeline asks for a position, not a time of day
    asked = {**row, R.QUESTION: "At what time in the video does the man jump into the pool?"}
    assert _reason(wellformed, **asked)[0] == "states_time"
    # chapter lines ("0:00 Intro") are positions: a clock in annotations other than subtitles is no speech
    chapters = {**row, R.TRANSCRIPT_TEXT: "", R.ANNOTATIONS: {"chapters": [{"start_s": 0, "end_s": 9,
                                                                            "title": "Pool 5:00"}]}}
    assert _reason(wellformed, **chapters)[0] == "states_time"


def test_the_detector_reads_times_of_day():
    for text in ("The train leaves at 8 o'clock.", "We meet at 7:30 pm.", "Lunch is at noon.",
                 "At what time does the train leave the station?", "She wakes up in the morning."):
        assert says_time_of_day(text), text
    for text in ("At what time in the video does he jump?", "What happens at 0:12?", "He jumps at 7:30.",
                 "I am here.", "Good morning, everyone."):
        assert not says_time_of_day(text), text
    assert says_time_of_day("The race starts at 9:30.", clocks=True)
    assert not says_time_of_day("Go at 0:12.", clocks=True)
    assert [t.text for t in video_times("Leaves at 7:30, or 0:12 in the video.", times_of_day=True)] == ["0:12"]
    assert [t.text for t in video_times("Leaves at 7:30, or 0:12 in the video.")] == ["7:30", "0:12"]
    assert [t.text for t in video_times("From 1:02:03 on.", times_of_day=True)] == ["1:02:03"]
