"""Outside check h4, F13: with the quickstart's filter chain at its defaults, no filter looked at
grounded_qa, reasoning_localization, chapter, highlights or summarization samples (`v_status:
not_checked`), so hallucinated answers were kept; and chapters that lie inside one another passed the
timestamps stage, which only asked that they be sorted.

verify_claims' default `tasks` now take every task whose text says something about the clip; of a
highlights sample the query is checked (its saliency ratings are no claim), and a sample that is times
and ratings only (an extractive summary) is `not_checked`. blind's defaults take grounded_qa
(tests/test_h6_blind_mcq_leak.py). The stages run as the build runs them, on rows shaped as generate
writes them, about a narration whose words are the evidence (tier 1 and the packaged MiniLM, no teacher).
"""
from __future__ import annotations

import pytest

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.timestamps import TimestampsConfig, TimestampsStage
from vdata.stages.verify_claims import VerifyClaimsConfig, VerifyClaimsStage

NARRATION = ("Maria bakes twelve cookies on Saturday. She heats the oven to one hundred and eighty degrees. She "
             "mixes three eggs with two cups of flour. The cookies bake for fifteen minutes on a blue tray. Her "
             "neighbour Peter eats four cookies on Sunday.")
HIGHLIGHTS_Q = 'Which moments of the video match the query "{}"? Give the time of each and its saliency score.'
SUMMARY_Q = "Summarize this video, giving the time of each part you describe."


def _sample(sid: str, task: str, question: str, answer: str) -> dict:
    return {R.SAMPLE_ID: sid, R.CLIP_ID: "cooking:video", R.VIDEO_ID: "cooking", R.START_S: 0.0, R.END_S: 17.0,
            R.TASK: task, R.QUESTION: question, R.ANSWER: answer, R.CAPTION: None, R.DENSE_EVENTS: [],
            R.SOURCE_META: "{}", R.TRANSCRIPT_TEXT: NARRATION,
            R.TRANSCRIPT_SEGMENTS: [{"start_s": 0.0, "end_s": 17.0, "text": NARRATION}],
            R.EVIDENCE: {"captions": [], "frame_timestamps_s": [], "transcript_spans": []}}


# (sample, hallucinated?) — the wrong ones as a small writer makes them (h4's c15 and c14 builds)
SAMPLES = [
    (_sample("gqa-wrong", "grounded_qa", "Who bakes the cookies?", "Sarah bakes them ({{span:0,9}})"), True),
    (_sample("gqa-right", "grounded_qa", "How long do the cookies bake?",
             "The cookies bake for fifteen minutes ({{span:9,13}})"), False),
    (_sample("rtl-wrong", "reasoning_localization", "When could a viewer learn how the dough gets its shape?",
             "{{span:0,9}} Sarah shapes the dough with a rolling pin"), True),
    (_sample("rtl-right", "reasoning_localization", "When could a viewer learn what the neighbour eats?",
             "{{span:13,17}} Peter eats four cookies on Sunday"), False),
    (_sample("chapter-wrong", "chapter", "Divide the video into chapters.",
             "{{span:0,16.26}} The story of Tom Ripper\n{{span:3.62,9.9}} The story of Tom Ripper, a bicycle rider "
             "with red wheels}, ["), True),
    (_sample("chapter-right", "chapter", "Divide the video into chapters.",
             "{{span:0,9}} Maria bakes cookies\n{{span:9,17}} Peter eats cookies"), False),
    (_sample("highlights-wrong", "highlights", HIGHLIGHTS_Q.format("a man repairs a red bicycle"),
             "{{span:0,5}} saliency 5"), True),
    (_sample("highlights-right", "highlights", HIGHLIGHTS_Q.format("Peter eats four cookies"),
             "{{span:13,17}} saliency 5"), False),
    (_sample("summary-wrong", "summarization", SUMMARY_Q,
             "A man repairs an old bicycle in his garage ({{span:0,9}}). He rides it to the beach ({{span:9,17}})."), True),
    (_sample("summary-right", "summarization", SUMMARY_Q,
             "Maria bakes twelve cookies ({{span:0,9}}). Peter eats four cookies on Sunday ({{span:13,17}})."), False),
]


@pytest.fixture(scope="module")
def verifier():
    stage = VerifyClaimsStage(VerifyClaimsConfig(), RunContext(output_dir=""))   # the defaults, as the quickstart
    stage.setup()
    return stage


def test_teacher_written_tasks_are_claim_checked_by_default(verifier):
    for task in ("grounded_qa", "reasoning_localization", "chapter", "highlights", "summarization",
                 "speech_captions", "preference_pairs"):
        assert task in VerifyClaimsConfig().tasks, task
    out = verifier.process_batch([row for row, _ in SAMPLES])
    got = {(r.row if isinstance(r, Reject) else r)[R.SAMPLE_ID]: r for r in out}
    for row, wrong in SAMPLES:
        res = got[row[R.SAMPLE_ID]]
        if wrong:
            assert isinstance(res, Reject) and res.reason in ("hallucination", "contradicted"), (row[R.SAMPLE_ID], res)
        else:
            assert isinstance(res, dict) and res[R.V_STATUS] == R.STATUS_VERIFIED, (row[R.SAMPLE_ID], res)
            assert res[R.V_SUPPORTED_RATIO] == 1.0
    # a highlights sample is checked on its query, never on "saliency 5"
    claims = [c["claim"] for c in got["highlights-right"][R.V_CLAIMS]]
    assert claims == ["Peter eats four cookies"]


def test_a_sample_of_times_and_ratings_only_is_not_checked(verifier):
    extractive = _sample("key-moments", "summarization", "Summarize this video by its key moments: give the time "
                         "of each and its saliency score from 1 to 5.", "{{span:0,9}} saliency 4.2\n{{span:13,17}} saliency 5")
    unquoted = _sample("custom-template", "highlights", "Rate every moment for: a baker", "{{span:0,9}} saliency 5")
    for row in verifier.process_batch([extractive, unquoted]):
        assert isinstance(row, dict) and row[R.V_STATUS] == R.STATUS_NOT_CHECKED and row[R.V_CLAIMS] == []


# --- chapters that overlap --------------------------------------------------------------------------

def _chapters(sid: str, spans: list[tuple[float, float]], task: str = "chapter") -> dict:
    return {R.SAMPLE_ID: sid, R.TASK: task, R.START_S: 0.0, R.END_S: 20.0, R.QUESTION: "Divide the video into chapters.",
            R.ANSWER: "\n".join(f"{{{{span:{a:g},{b:g}}}}} Part {i}" for i, (a, b) in enumerate(spans)),
            R.ANSWER_SPANS: [{"start_s": a, "end_s": b} for a, b in spans]}


def test_chapters_that_lie_inside_or_across_one_another_are_invalid():
    stage = TimestampsStage(TimestampsConfig(), RunContext(output_dir=""))
    nested = stage.process_row(_chapters("nested", [(0.0, 16.26), (3.62, 9.9)]))
    assert isinstance(nested, Reject) and nested.reason == "bad_timestamps", nested
    assert nested.detail["overlapping"] == 1 and not nested.row[R.V_TIMESTAMPS_VALID]
    assert "1 overlapping" in nested.message and "chapter 2 (3.62-9.9s) lies inside chapter 1" in nested.message
    # the third chapter starts inside the first, which reaches furthest
    across = stage.process_row(_chapters("across", [(0.0, 12.0), (4.0, 6.0), (10.0, 18.0)]))
    assert isinstance(across, Reject) and across.detail["overlapping"] == 2
    assert any("chapter 3 (10-18s) overlaps chapter 1" in e for e in across.detail["examples"])
    # chapters that meet (or overlap by less than tolerance_s) are fine; so are overlapping dense events
    for row in (_chapters("meet", [(0.0, 9.0), (9.0, 20.0)]), _chapters("near", [(0.0, 9.03), (9.0, 20.0)]),
                _chapters("events", [(0.0, 16.26), (3.62, 9.9)], task="dense_caption")):
        out = stage.process_row(row)
        assert isinstance(out, dict) and out[R.V_TIMESTAMPS_VALID], (row[R.SAMPLE_ID], out)
    # chapters from annotations (chapter_generation) are held to the same rule; the list is a setting
    assert isinstance(stage.process_row(_chapters("vc", [(0.0, 16.0), (3.0, 9.0)], "chapter_generation")), Reject)
    lenient = TimestampsStage(TimestampsConfig(disjoint_tasks=[]), RunContext(output_dir=""))
    assert isinstance(lenient.process_row(_chapters("nested", [(0.0, 16.26), (3.62, 9.9)])), dict)
