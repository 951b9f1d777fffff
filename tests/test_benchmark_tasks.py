"""Benchmark-style task families: `event_order` (Vript-Hard ERO, teacher-free), and the CG-Bench items
`clue_qa` (MCQ + open-ended twins with clue intervals) and `false_premise` (teacher).

The teacher-free tests run on clip rows of a real video: an ffmpeg render with hard cuts, cut into
clips by the probe and shots stages through `vdata.run_stage`; the events are set as the caption stage
or the annotations stage would write them. The order the test expects is recomputed from the events'
own times, never hard-coded. The teacher test uses SmolLM2-135M (vLLM's CPU engine or llama.cpp) and
checks structure only.
"""
from __future__ import annotations

import re
from collections import Counter

import datasets
import pytest

import labelled_set as L
import vdata
from vdata.media.synth import Segment, render_segments
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate import GenerateConfig, GenerateStage
from vdata.stages.probe import ProbeStage
from vdata.stages.shots import ShotsStage

SOURCES = ("testsrc2", "smptebars", "mandelbrot", "rgbtestsrc", "testsrc")
SCENE = re.compile(r"^\(([1-8])\) (.+)$", re.M)
THINGS = ["a dog runs across the lawn", "a kettle boils on the stove", "a child opens a red umbrella",
          "two cyclists pass a bakery", "a man paints a blue fence", "rain falls on a parked car"]


@pytest.fixture(scope="module")
def clip_rows(tmp_path_factory) -> list[dict]:
    """Five 2 s shots of a real 10 s video, as the shots stage writes them."""
    d = tmp_path_factory.mktemp("bench-tasks")
    path = str(d / "five_shots.mp4")
    render_segments(path, [Segment(s, 2.0) for s in SOURCES], size=(160, 90))
    probed, rej = vdata.run_stage(ProbeStage(), datasets.Dataset.from_list([{R.SOURCE_URI: path, R.PATH: path}]))
    assert len(rej) == 0
    clips, rej = vdata.run_stage(ShotsStage(min_len_s=1.0), probed)
    assert len(rej) == 0 and len(clips) == len(SOURCES)
    return sorted(clips.to_list(), key=lambda r: r[R.START_S])


def with_events(clip: dict, n: int, offset: int = 0) -> dict:
    """The clip with `n` dense events splitting it evenly (distinct texts, no overlap)."""
    a, b = clip[R.START_S], clip[R.END_S]
    step = (b - a) / n
    events = [{"start_s": a + i * step, "end_s": a + (i + 1) * step, "description": THINGS[(offset + i) % len(THINGS)]}
              for i in range(n)]
    return dict(clip, **{R.DENSE_EVENTS: events, R.CAPTION: f"shot {clip[R.CLIP_INDEX]} of the test video"})


def generate(rows: list[dict], **tasks) -> tuple[list[dict], list[dict]]:
    kept, rejects = vdata.run_stage(GenerateStage(tasks=tasks), datasets.Dataset.from_list(rows))
    return kept.to_list(), rejects.to_list()


def true_order(sample: dict, events: list[dict]) -> str:
    """The option the sample must mark correct, recomputed from the row's events and the question."""
    start_of = {e["description"]: e["start_s"] for e in events}
    scenes = SCENE.findall(sample[R.QUESTION])
    order = sorted(scenes, key=lambda s: start_of[s[1]])
    return " → ".join(f"({x})" for x, _ in order)


def check_event_order(sample: dict, row: dict, events: list[dict], k: int) -> None:
    assert sample[R.TASK] == "mcq" and sample[R.QUESTION_TYPE] == "event_order"
    scenes = SCENE.findall(sample[R.QUESTION])
    assert [x for x, _ in scenes] == [str(i + 1) for i in range(k)]   # numbered: options are lettered
    assert len({t for _, t in scenes}) == k                       # k different events
    opts = sample[R.OPTIONS]
    assert len(opts) == len(set(opts)) == 4                       # distinct orderings ...
    for o in opts:                                                # ... each a permutation of the letters
        assert sorted(re.findall(r"\(([1-8])\)", o)) == [x for x, _ in scenes]
    assert opts[sample[R.ANSWER_INDEX]] == sample[R.ANSWER] == true_order(sample, events)
    spans = sample[R.ANSWER_SPANS]
    assert len(spans) == k
    assert all(row[R.START_S] <= s["start_s"] < s["end_s"] <= row[R.END_S] for s in spans)
    assert all(p["end_s"] <= q["start_s"] for p, q in zip(spans, spans[1:]))   # in time order, disjoint
    assert len(sample[R.EVIDENCE]["captions"]) == k
    assert sample[R.SAMPLE_TEACHER] is None                       # no teacher wrote it


def test_event_order_from_dense_events_is_deterministic_and_checks_out(clip_rows):
    rows = [with_events(c, 5, offset=i) for i, c in enumerate(clip_rows)]
    kept, rejects = generate(rows, event_order={"per_clip": 2})
    again, _ = generate(rows, event_order={"per_clip": 2})
    assert not rejects
    assert len(kept) == 2 * len(rows)
    assert [(s[R.SAMPLE_ID], s[R.QUESTION], s[R.OPTIONS], s[R.ANSWER_INDEX]) for s in kept] == \
        [(s[R.SAMPLE_ID], s[R.QUESTION], s[R.OPTIONS], s[R.ANSWER_INDEX]) for s in again]
    by_clip = {r[R.CLIP_ID]: r for r in rows}
    for s in kept:
        row = by_clip[s[R.CLIP_ID]]
        check_event_order(s, row, row[R.DENSE_EVENTS], 4)
    assert len({s[R.SAMPLE_ID] for s in kept}) == len(kept)
    # a different seed draws different items from the same rows
    other, _ = generate(rows, event_order={"per_clip": 2, "seed": 7})
    assert [s[R.QUESTION] for s in other] != [s[R.QUESTION] for s in kept]


def test_event_order_on_a_whole_video_row_uses_clip_captions_and_reads_annotations(clip_rows):
    """A row spanning the whole video (as the video scope builds it): its clip captions are the events
    when the row carries no dense events; an annotations-only row orders its annotated segments."""
    duration = clip_rows[-1][R.END_S]
    video = dict(clip_rows[0], **{R.CLIP_ID: f"{clip_rows[0][R.VIDEO_ID]}:video", R.START_S: 0.0, R.END_S: duration,
                                  R.CAPTION: "a test video of five shots", R.DENSE_EVENTS: []})
    segments = [{"start_s": c[R.START_S] + 0.2, "end_s": c[R.END_S] - 0.2, "text": THINGS[i]}
                for i, c in enumerate(clip_rows)]
    annotated = dict(video, **{R.ANNOTATIONS: {"segments": segments + [
        {"start_s": duration - 1.0, "end_s": duration + 30.0, "text": "a segment past the end of this row"}]}})
    kept, rejects = generate([annotated], event_order={"events": 4, "open_form": True})
    assert not rejects and len(kept) == 2
    mcq, twin = kept
    events = [{"start_s": s["start_s"], "description": s["text"]} for s in segments]
    check_event_order(mcq, annotated, events, 4)
    assert twin[R.TASK] == "open_qa" and twin[R.OPTIONS] is None and twin[R.QUESTION] == mcq[R.QUESTION]
    assert twin[R.SAMPLE_GROUP] == mcq[R.SAMPLE_GROUP] == mcq[R.SAMPLE_ID] != twin[R.SAMPLE_ID]
    assert twin[R.ANSWER_SPANS] == mcq[R.ANSWER_SPANS] and twin[R.ANSWER].count("{{span:") == 4


def test_event_order_at_video_scope_orders_clips_far_apart(clip_rows):
    """`generate` at `scope: video` (the video row of helper "scope"): the clip captions are the events,
    with their clip intervals in video time, and the item is stored at video scope."""
    pytest.importorskip("vdata.stages.generate.video_scope")
    rows = [dict(c, **{R.CAPTION: THINGS[i]}) for i, c in enumerate(clip_rows)]
    kept, rejects = vdata.run_stage(GenerateStage(scope="video", tasks={"event_order": {"events": 4}}),
                                    datasets.Dataset.from_list(rows))
    kept = kept.to_list()
    assert len(rejects) == 0 and len(kept) == 1
    video = dict(rows[0], **{R.START_S: 0.0, R.END_S: clip_rows[-1][R.END_S]})
    sample = kept[0]
    assert sample[R.CLIP_ID].endswith(":video") and sample[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO
    events = [{"start_s": c[R.START_S], "description": THINGS[i]} for i, c in enumerate(clip_rows)]
    check_event_order(sample, video, events, 4)
    clip_spans = {(c[R.START_S], c[R.END_S]) for c in clip_rows}
    assert {(s["start_s"], s["end_s"]) for s in sample[R.ANSWER_SPANS]} <= clip_spans   # whole clips, video time


def test_event_order_rejects_rows_with_too_few_events(clip_rows):
    overlapping = dict(clip_rows[1], **{R.DENSE_EVENTS: [    # three events, but two overlap: 2 orderable
        {"start_s": clip_rows[1][R.START_S], "end_s": clip_rows[1][R.START_S] + 1.5, "description": THINGS[0]},
        {"start_s": clip_rows[1][R.START_S] + 0.5, "end_s": clip_rows[1][R.START_S] + 1.0, "description": THINGS[1]},
        {"start_s": clip_rows[1][R.START_S] + 1.5, "end_s": clip_rows[1][R.END_S], "description": THINGS[2]}]})
    same_text = with_events(clip_rows[2], 4)
    for e in same_text[R.DENSE_EVENTS]:
        e["description"] = "the same thing again"
    rows = [with_events(clip_rows[0], 2), overlapping, same_text, with_events(clip_rows[3], 3)]
    kept, rejects = generate(rows, event_order={})
    assert [r["reason"] for r in rejects] == ["too_few_events"] * 3
    assert all("need" in r["detail"] and r[R.CLIP_ID] == row[R.CLIP_ID] for r, row in zip(rejects, rows))
    assert len(kept) == 1 and kept[0][R.CLIP_ID] == clip_rows[3][R.CLIP_ID]   # the rest goes on
    check_event_order(kept[0], rows[3], rows[3][R.DENSE_EVENTS], 3)            # 3 events: K shrinks to 3


def test_event_order_config_errors_name_the_key(tmp_path):
    from vdata.schemas.config import ConfigError, parse_config

    base = {"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "out")}}
    for bad, key in [({"events": 2}, "events"), ({"sources": ["frames"]}, "sources"),
                     ({"questions": ["In what order?"]}, "questions")]:
        with pytest.raises(ConfigError, match=rf"stages\[0\]\.generate\.tasks\.event_order"):
            parse_config({**base, "stages": [{"generate": {"tasks": {"event_order": bad}}}]})
    with pytest.raises(ValueError, match="teacher: required"):
        GenerateConfig(tasks=["false_premise"])
    # the spend estimate counts one request per clue question and per false-premise question, none for ERO
    from vdata.teachers.spend import generate_spend

    spend = generate_spend(GenerateConfig(teacher="t", tasks={"clue_qa": {"per_clip": 3}, "false_premise": {},
                                                              "event_order": {"per_clip": 5}}), 4, (90, 160))
    assert [s["requests_per_row"] for s in spend] == [4]


# --- CG-Bench items: how replies are read (replies injected; the real teacher is the slow test below) ----

def teacher_stage(**tasks) -> GenerateStage:
    """A stage with a teacher configured but never called: its replies are given to `finish` directly."""
    dead = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    stage = GenerateStage(GenerateConfig(teacher="t", tasks=tasks), RunContext(output_dir="", teachers={"t": dead}))
    stage.setup()
    return stage


def read(stage: GenerateStage, row: dict, replies: list[dict]) -> list:
    from vdata.stages.generate import build_clues
    from vdata.teachers.types import TeacherResult

    clues = build_clues(row, stage.config)
    free, pending = stage.plan_clip(row, clues)
    assert not free and len(pending) == len(replies)
    state: dict = {}
    return [r for p, reply in zip(pending, replies)
            for r in stage.finish(row, clues, p, TeacherResult(request_id="x", parsed=reply), state)]


def test_clue_qa_reply_becomes_twins_with_merged_clue_intervals(clip_rows):
    row = with_events(clip_rows[2], 4)            # E1..E4 split the clip in quarters; C1 spans it
    e = row[R.DENSE_EVENTS]
    stage = teacher_stage(clue_qa={"per_clip": 3, "question_types": {"action": 1}})
    good = {"question": "What does the kettle do?", "answer": "It boils", "evidence": ["E1", "E3", "E2"],
            "distractors": ["It falls over", "It whistles a tune", "It is cold"]}
    out = read(stage, row, [good, dict(good, evidence=["E1", "Z9"]), dict(good, distractors=["it boils", "a", "b"])])
    mcq, twin, unknown, same = out
    assert mcq[R.TASK] == "mcq" and twin[R.TASK] == "open_qa" and twin[R.OPTIONS] is None
    assert mcq[R.OPTIONS][mcq[R.ANSWER_INDEX]] == "It boils" == twin[R.ANSWER]
    assert mcq[R.SAMPLE_GROUP] == twin[R.SAMPLE_GROUP] == mcq[R.SAMPLE_ID] != twin[R.SAMPLE_ID]
    # E1, E2, E3 touch: one clue interval; the evidence keeps each cited event
    assert mcq[R.ANSWER_SPANS] == twin[R.ANSWER_SPANS] == [{"start_s": e[0]["start_s"], "end_s": e[2]["end_s"]}]
    assert len(mcq[R.EVIDENCE]["captions"]) == 3
    assert isinstance(unknown, Reject) and unknown.reason == "bad_evidence" and "Z9" in unknown.message
    assert isinstance(same, Reject) and same.reason == "bad_options"


def test_clue_intervals_never_cover_the_whole_video(clip_rows):
    """Outside check: an item citing the whole-video caption, or every part of the video, had a clue interval
    of the whole video (CG-Bench's cover a median 0.6% and never 90%: clue accuracy and mIoU lose their sense)."""
    row = with_events(clip_rows[2], 4)            # E1..E4 split the clip in quarters; C1 spans it
    e = row[R.DENSE_EVENTS]
    stage = teacher_stage(clue_qa={"per_clip": 3, "question_types": {"action": 1}, "open_form": False})
    good = {"question": "What does the kettle do?", "answer": "It boils", "evidence": ["C1", "E2"],
            "distractors": ["It falls over", "It whistles a tune", "It is cold"]}
    spanned, whole, every = read(stage, row, [good, dict(good, evidence=["C1"]), dict(good, evidence=["E1", "E2", "E3", "E4"])])
    assert spanned[R.ANSWER_SPANS] == [{"start_s": e[1]["start_s"], "end_s": e[1]["end_s"]}]   # C1 gives no interval
    assert whole.reason == "no_clue_interval" and every.reason == "clue_covers_video" and "100%" in every.message


def test_false_premise_reply_is_checked_against_the_clues(clip_rows):
    row = with_events(clip_rows[3], 3)
    e = row[R.DENSE_EVENTS]
    stage = teacher_stage(false_premise={"per_clip": 3})
    good = {"question": "Why does the green dog climb the fence?", "premise": "a green dog climbs a fence",
            "answer": "The premise is false: a dog runs across the lawn; nothing climbs a fence.",
            "premise_answers": ["To reach a ball", "It is chased", "It wants to escape"], "evidence": ["E1"]}
    stated = dict(good, premise=e[1]["description"])
    accepting_twice = dict(good, premise_answers=["To reach a ball", "to reach a ball!", "It is chased"])
    mcq, twin, true_premise, open_only, bad_mcq = read(stage, row, [good, stated, accepting_twice])
    assert (mcq[R.TASK], twin[R.TASK]) == ("mcq", "open_qa") and mcq[R.QUESTION_TYPE] == "false_premise"
    assert mcq[R.OPTIONS][mcq[R.ANSWER_INDEX]] == good["answer"] and len(set(mcq[R.OPTIONS])) == 4
    assert mcq[R.ANSWER_SPANS] == [{"start_s": e[0]["start_s"], "end_s": e[0]["end_s"]}]
    assert twin[R.SAMPLE_GROUP] == mcq[R.SAMPLE_ID]
    assert true_premise.reason == "premise_in_clues"
    assert open_only[R.TASK] == "open_qa" and open_only[R.OPTIONS] is None and open_only[R.SAMPLE_GROUP] is None
    assert bad_mcq.reason == "bad_options"    # the MCQ form is rejected with its reason, the open form kept


# --- CG-Bench items with the SmolLM2 teacher ------------------------------------------------------------

TEACHER_REJECTS = {"teacher_error", "bad_reply", "bad_options", "bad_evidence", "no_clue_interval", "premise_in_clues",
                   "clue_covers_video", "truncated"}   # truncated: a field the schema's cap cut (h25 F15)


@pytest.mark.slow
def test_clue_qa_twins_and_false_premise_with_smollm(clip_rows, smollm, tmp_path):
    rows = [with_events(c, 3, offset=i) for i, c in enumerate(clip_rows[:2])]
    cfg = GenerateConfig(teacher="writer", max_tokens=200, tasks={
        "clue_qa": {"per_clip": 1, "question_types": {"action": 1, "attribute": 1}}, "false_premise": {"per_clip": 1}})
    stage = GenerateStage(cfg, RunContext(output_dir="", teachers={"writer": L.openai_teacher(smollm)},
                                          cache_dir=str(tmp_path / "cache")))
    stage.setup()
    out = stage.process_batch(rows)
    stage.close()
    samples = [r for r in out if not isinstance(r, Reject)]
    rejects = [r for r in out if isinstance(r, Reject)]
    print(f"\n[benchmark smollm] {Counter((s[R.TASK], s[R.QUESTION_TYPE]) for s in samples)} "
          f"rejects {Counter(r.reason for r in rejects)}")
    for s in samples[:8]:
        print(f"  {s[R.TASK]:<8} {s[R.QUESTION_TYPE]:<13} Q: {s[R.QUESTION][:70]!r} A: {s[R.ANSWER][:60]!r}")
    assert all(r.reason in TEACHER_REJECTS for r in rejects), [(r.reason, r.message) for r in rejects]
    # 2 rows × (1 clue_qa + 1 false_premise) requests: each is an item (MCQ + twin) or a reject, none lost
    made = {s[R.SAMPLE_GROUP] or s[R.SAMPLE_ID] for s in samples}
    assert len(made) + len({r.row[R.SAMPLE_ID] for r in rejects if not r.row[R.SAMPLE_ID].endswith("-mcq")}) == 4
    assert samples, "the teacher wrote no usable item at all"
    by_clip = {r[R.CLIP_ID]: r for r in rows}
    clue_ids = {r[R.CLIP_ID]: {e["description"] for e in r[R.DENSE_EVENTS]} | {r[R.CAPTION]} for r in rows}
    for s in samples:
        row = by_clip[s[R.CLIP_ID]]
        assert s[R.QUESTION] and s[R.ANSWER] and s[R.SAMPLE_TEACHER] == "writer"
        assert s[R.SAMPLE_PROMPT_VERSION].startswith(("generate/clue_qa@", "generate/false_premise@"))
        texts = [re.sub(r"^\{\{span:[^}]*\}\} ", "", c) for c in s[R.EVIDENCE]["captions"]]
        assert texts and set(texts) <= clue_ids[s[R.CLIP_ID]]      # evidence = cited clues of this row
        spans = s[R.ANSWER_SPANS] or []
        assert all(row[R.START_S] <= p["start_s"] < p["end_s"] <= row[R.END_S] for p in spans)
        assert all(p["end_s"] < q["start_s"] for p, q in zip(spans, spans[1:]))   # merged clue intervals
        if s[R.SAMPLE_PROMPT_VERSION].startswith("generate/clue_qa@"):
            assert spans, "a clue question keeps its clue intervals"
        if s[R.TASK] == "mcq":
            opts = s[R.OPTIONS]
            assert len(opts) == 4 and opts[s[R.ANSWER_INDEX]] == s[R.ANSWER]
            twin = [t for t in samples if t[R.SAMPLE_GROUP] == s[R.SAMPLE_ID] and t is not s]
            assert len(twin) == 1 and twin[0][R.TASK] == "open_qa" and twin[0][R.OPTIONS] is None
            assert (twin[0][R.QUESTION], twin[0][R.ANSWER], twin[0][R.ANSWER_SPANS]) == \
                (s[R.QUESTION], s[R.ANSWER], s[R.ANSWER_SPANS])
        else:
            assert s[R.TASK] == "open_qa" and s[R.OPTIONS] is None
    assert {s[R.QUESTION_TYPE] for s in samples} <= {"action", "attribute", "false_premise"}


def test_an_event_whose_text_recurs_at_another_time_has_no_place_in_an_order():
    """Outside check h24 F3: "Colour bars appear." at 3-6 s and again at 9-12 s was listed as one event of an
    event_order item, and the key marked one of two right orders. The same text twice over one stretch of
    time is still one event."""
    from vdata.stages.generate.benchmark_tasks import orderable
    from vdata.stages.generate.clues import Clue

    events = [Clue("S1", "segment", "A counter ticks.", 0.0, 3.0), Clue("S2", "segment", "Colour bars appear.", 3.0, 6.0),
              Clue("S3", "segment", "A fractal zooms in.", 6.0, 9.0), Clue("S4", "segment", "colour bars appear", 9.0, 12.0)]
    assert [c.text for c in orderable(events, 0.0)] == ["A counter ticks.", "A fractal zooms in."]
    twice_at_once = [*events[:3], Clue("S5", "segment", "A fractal zooms in.", 7.0, 8.5)]
    assert [c.id for c in orderable(twice_at_once, 0.0)] == ["S1", "S2", "S3"]
