"""generate `highlights` / `summarization` after the outside check h5 (F14, F15): a query pasted from the clue list,
highlights that leave out the moment the query describes, scores on VTG-IT's 1..5 scale, and VTG-IT's extractive
video summarization. The teacher's replies are given by hand (the stage's parsing is what is tested)."""
from __future__ import annotations

import pytest

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate import TASK_FAMILIES, build_clues
from vdata.stages.generate.common import sample_base
from vdata.stages.generate.stage import GenerateConfig, GenerateStage

# a teacher nobody answers: setup needs its config, the replies below stand in for it
DEAD = {"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0, "timeout_s": 5}}
# the video row of F14's repro (/tmp/h5/ann/hl.jsonl): four annotated segments of a 20-s kitchen video
SEGMENTS = [(0.0, 5.0, "A woman cuts three red apples"), (5.0, 10.0, "She pours milk into a blue bowl"),
            (10.0, 15.0, "A brown dog runs across the green garden"), (15.0, 20.0, "Someone closes the wooden door")]
ROW = {R.CLIP_ID: "kitchen:video", R.VIDEO_ID: "kitchen", R.START_S: 0.0, R.END_S: 20.0, R.DURATION_S: 20.0,
       R.SAMPLE_SCOPE: R.SCOPE_VIDEO,
       R.ANNOTATIONS: {"title": "Kitchen and garden", "segments": [{"start_s": a, "end_s": b, "text": t}
                                                                  for a, b, t in SEGMENTS]}}


def _stage(**tasks) -> GenerateStage:
    s = GenerateStage(GenerateConfig(teacher="t", scope="video", tasks=tasks or {"highlights": {}, "summarization": {}}),
                      RunContext(output_dir="", teachers=DEAD))
    s.setup()
    return s


@pytest.fixture(scope="module")
def stage():
    return _stage()


def _run(stage, task, reply):
    """Plan the task on ROW, answer its first request with `reply` (or `reply(pending)`), finish it."""
    family, clues = TASK_FAMILIES[task], build_clues(ROW, stage.config)
    _, pending = family.plan(stage, ROW, clues, getattr(stage.config.tasks, task))
    p = pending[0]
    out = family.finish(stage, ROW, clues, p, reply(p) if callable(reply) else reply,
                        sample_base(stage, ROW, p.task, p.index, p.prompt.id), {})
    return p, out[0]


def _scores(**by_id):
    return [{"id": k, "score": v} for k, v in by_id.items()]


def test_the_moments_are_the_annotated_segments(stage):
    p, _ = _run(stage, "highlights", {"query": "", "scores": []})
    assert [c.id for c in p.extra["units"]] == ["A1", "A2", "A3", "A4"]
    assert "Do not write any time" in p.prompt.text and p.prompt.id.endswith("@v2")


@pytest.mark.parametrize("query, reason", [
    ("A3 (annotated segment, 10.0-15.0s): A brown dog runs across the green garden", "query_states_time"),  # F14
    ("the dog at 12 seconds", "query_states_time"),
    ("dog running 0:12", "query_states_time"),
    ("A3 brown dog", "query_names_note"),
])
def test_a_query_with_a_time_or_a_note_id_is_a_pasted_clue_line(stage, query, reason):
    p, out = _run(stage, "highlights", lambda p: {"query": query, "scores": _scores(**{p.extra["target"].id: 4})})
    assert isinstance(out, Reject) and out.reason == reason, out
    assert "copied" in out.message


@pytest.mark.parametrize("query", ["the second time the dog runs across the garden", "the dog runs like an F1 car"])
def test_an_ordinal_second_or_a_name_the_clues_use_is_not_a_pasted_clue_line(query):
    """ "second" without a number is no time; an id-like word the clues themselves say ("F1") is content."""
    segments = [*SEGMENTS[:2], (10.0, 15.0, "A brown dog runs across the green garden like an F1 car"), SEGMENTS[3]]
    row = {**ROW, R.ANNOTATIONS: {"title": "Kitchen and garden",
                                  "segments": [{"start_s": a, "end_s": b, "text": t} for a, b, t in segments]}}
    stage = _stage()
    family, clues = TASK_FAMILIES["highlights"], build_clues(row, stage.config)
    _, pending = family.plan(stage, row, clues, stage.config.tasks.highlights)
    p = next(p for p in pending if p.extra["target"].id == "A3") if any(
        p.extra["target"].id == "A3" for p in pending) else pending[0]
    p.extra["target"] = next(c for c in p.extra["units"] if c.id == "A3")
    out = family.finish(stage, row, clues, p, {"query": query, "scores": _scores(A3=4)},
                        sample_base(stage, row, p.task, p.index, p.prompt.id), {})[0]
    assert not isinstance(out, Reject), out.message


def test_the_described_moment_must_be_a_highlight(stage):
    # F14: the highlights (apples, door) leave out the moment the query was written for
    def reply(p):
        target = p.extra["target"]
        others = [c.id for c in p.extra["units"] if c.id != target.id]
        return {"query": target.text.lower(), "scores": _scores(**{others[0]: 4, others[-1]: 4, target.id: 1})}

    p, out = _run(stage, "highlights", reply)
    assert isinstance(out, Reject) and out.reason == "moment_not_highlighted", out
    assert p.extra["target"].id in out.message and "rated 1" in out.message
    p, out = _run(stage, "highlights", lambda p: {"query": p.extra["target"].text,
                                                  "scores": _scores(**{c.id: 0 for c in p.extra["units"]})})
    assert out.reason == "no_highlight"


def test_a_kept_highlight_carries_vtg_it_scores(stage):
    def reply(p):
        target = p.extra["target"]
        other = next(c.id for c in p.extra["units"] if c.id != target.id)
        return {"query": target.text, "scores": _scores(**{target.id: 4, other: 3})}

    p, s = _run(stage, "highlights", reply)
    assert not isinstance(s, Reject), s.message
    target = p.extra["target"]
    assert {"start_s": target.start_s, "end_s": target.end_s} in s[R.ANSWER_SPANS]
    assert sorted(s[R.ANSWER_SCORES]) == [4.0, 5.0]                   # 1 + 4 * (3, 4) / 4
    assert len(s[R.ANSWER_SPANS]) == len(s[R.ANSWER_SCORES]) == 2
    _, s = _run(_stage(highlights={"scale": 10}), "highlights", reply)   # another scale, the same 1..5 range
    assert sorted(s[R.ANSWER_SCORES]) == [2.2, 2.6]


def test_extractive_summarization_rates_key_moments(stage):
    extractive = _stage(summarization={"form": "extractive"})
    p, s = _run(extractive, "summarization", {"scores": _scores(A1=4, A2=1, A3=3, A4=0)})
    assert p.question_type == "key_moments" and "summarization_extractive" in p.prompt.id
    assert not isinstance(s, Reject), s.message
    assert s[R.ANSWER_SPANS] == [{"start_s": 0.0, "end_s": 5.0}, {"start_s": 10.0, "end_s": 15.0}]
    assert s[R.ANSWER_SCORES] == [5.0, 4.0] and "saliency score" in s[R.QUESTION]
    assert s[R.ANSWER] == "{{span:0,5}} saliency 5\n{{span:10,15}} saliency 4"
    _, r = _run(extractive, "summarization", {"scores": _scores(A1=2, A2=1)})
    assert isinstance(r, Reject) and r.reason == "no_key_moment"
    # the default stays the sentence summary
    p, s = _run(stage, "summarization", {"sentences": [{"text": "A dog runs.", "evidence": ["A3"]}]})
    assert p.question_type == "summary" and s[R.ANSWER] == "A dog runs ({{span:10,15}})." and not s.get(R.ANSWER_SCORES)


def test_summary_sentences_tell_one_stretch_each_in_time_order(stage):
    """Outside check h17 F2, F3: a sentence citing the first and the last moment got their union (most of the video),
    and sentences kept the teacher's order. A sentence whose cited moments skip one is dropped and counted;
    the rest are put in time order."""
    stage.take_counters()
    reply = {"sentences": [{"text": "A dog runs and the door closes.", "evidence": ["A3", "A4"]},
                           {"text": "Apples are cut and a door is closed.", "evidence": ["A1", "A4"]},
                           {"text": "Apples are cut.", "evidence": ["A1"]}]}
    _, s = _run(stage, "summarization", reply)
    assert not isinstance(s, Reject), s.message
    assert s[R.ANSWER_SPANS] == [{"start_s": 0.0, "end_s": 5.0}, {"start_s": 10.0, "end_s": 20.0}]
    assert s[R.ANSWER].startswith("Apples are cut ({{span:0,5}}).") and "door is closed" not in s[R.ANSWER]
    assert stage.take_counters().get("summary_sentences_dropped_disjoint") == 1
    _, r = _run(stage, "summarization", {"sentences": [{"text": "Apples and a door.", "evidence": ["A1", "A4"]}]})
    assert isinstance(r, Reject) and r.reason == "bad_reply"


def test_a_highlight_inside_another_is_one_span_rated_the_higher():
    """Outside check h17 F3: a spoken line inside an annotated segment, both rated, gave two nested highlight spans."""
    from vdata.stages.generate.clues import Clue
    from vdata.stages.generate.saliency import _rated_answer

    units = [Clue("A1", "event", "a woman cuts apples", 0.0, 5.0),
             Clue("T1", "speech", "cut them thin", 1.0, 2.5), Clue("A2", "event", "milk", 5.0, 10.0)]
    base = {}
    top = _rated_answer(base, units, {"A1": 3, "T1": 4, "A2": 4}, 3, 4)
    assert [c.id for c in top] == ["A1", "A2"]
    assert base[R.ANSWER_SPANS] == [{"start_s": 0.0, "end_s": 5.0}, {"start_s": 5.0, "end_s": 10.0}]
    assert base[R.ANSWER_SCORES] == [5.0, 5.0]   # A1 takes T1's 4: 1 + 4 * 4 / 4


def test_a_whisper_fragment_between_two_cited_lines_leaves_the_stretch_whole():
    """Outside check h19 F8: Whisper split "Tom | sells the bread" (a 0.3 s fragment): a sentence citing the lines
    around it tells one stretch."""
    from vdata.stages.generate.clues import Clue
    from vdata.stages.generate.saliency import _skips_a_moment

    a, frag, b = Clue("T1", "speech", "Serve it with butter.", 24.32, 26.28), Clue("T2", "speech", "Tom", 26.64, 26.94), \
        Clue("T3", "speech", "sells the bread on Friday.", 26.94, 28.42)
    assert not _skips_a_moment([a, b], [a, frag, b])
    long = Clue("T2", "speech", "Then the oven is cleaned.", 26.4, 27.9)
    assert _skips_a_moment([a, Clue("T3", "speech", "He sells it.", 28.0, 29.5)], [a, long, b])
