"""Spans of teacher tasks after the outside check h17 (F2, F4, F9, F11).

- F11: speech that runs across a cut (an ASR segment given to the clip that holds its middle) gave moments
  that started before the clip: every grounding / grounded_qa / reasoning_localization sample on it was
  rejected `bad_timestamps` for 60 ms. Clue times are clamped to the row; a clue the edge cuts short is
  listed but no moment.
- F2: grounded_qa's span was the union of the clues the reply cited (a disjoint citation spanned most of
  the video). The span is the asked moment's own; a reply that does not cite it is `evidence_off_target`.
- F4: caption `strategy: dense` kept zero-length events, 0.05-s events and events repeating another's times.
- F9: a rationale step's evidence span [a, b] rendered as two moments ("at frame 32, frame 82") beside the
  same span's "frames 33 - 81".

The stages are the real ones; the teacher's replies are given by hand (the stage's reading is what is
tested), the dense captioner's through a scripted loopback server as in test_h6_dense_windows.
"""
from __future__ import annotations

import io
import json

import pytest

from loopback_http import QuietHandler, chat_completion, prompt_text, send_json, serve
from test_h6_dense_windows import dense_caption
from vdata.exporters.dialog import cot_text
from vdata.exporters.source import Item
from vdata.exporters.timefmt import TimeFormat
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.caption.dense import window_events
from vdata.stages.generate import TASK_FAMILIES, build_clues
from vdata.stages.generate.common import sample_base
from vdata.stages.generate.grounded import moments
from vdata.stages.generate.stage import GenerateConfig, GenerateStage
from vdata.stages.timestamps import TimestampsConfig, TimestampsStage

DEAD = {"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0, "timeout_s": 5}}


def _seg(a, b, text):
    return {"start_s": a, "end_s": b, "text": text, "words": []}


# the 10-20 s clip of h17's cross20.mp4: ASR gave it the segment 9.94-10.92 (its middle after the cut at 10 s);
# 9.3-10.25 is cut by the edge to 0.25 s of its 0.95 s (a subtitle-like item), 14-16 s is plainly inside
CLIP = {R.CLIP_ID: "cross20_10", R.VIDEO_ID: "cross20", R.START_S: 10.0, R.END_S: 20.0, R.DURATION_S: 20.0,
        R.SAMPLE_SCOPE: R.SCOPE_CLIP,
        R.TRANSCRIPT_SEGMENTS: [_seg(9.3, 10.25, "at the bakery on the corner"),
                                _seg(9.94, 10.92, "market on Friday"),
                                _seg(14.0, 16.0, "Anna paints the blue door of the shop")]}


def _stage(scope="clip", **tasks) -> GenerateStage:
    s = GenerateStage(GenerateConfig(teacher="t", scope=scope, tasks=tasks), RunContext(output_dir="", teachers=DEAD))
    s.setup()
    return s


def _checked(samples: list[dict]) -> list:
    return TimestampsStage(TimestampsConfig(), RunContext(output_dir="")).process_batch(samples)


def _finish(stage, row, task, pick, reply):
    """Plan `task` on `row`, answer the request whose target `pick` names with `reply(target)`."""
    family, clues = TASK_FAMILIES[task], build_clues(row, stage.config)
    free, pending = family.plan(stage, row, clues, getattr(stage.config.tasks, task))
    p = next(p for p in pending if p.extra["target"].id == pick)
    out = family.finish(stage, row, clues, p, reply(p.extra["target"]),
                        sample_base(stage, row, p.task, p.index, p.prompt.id), {})
    return p, out


# ============================================================================ F11: clues clamped to the row
def test_speech_across_the_cut_is_listed_and_timed_inside_the_clip():
    stage = _stage(grounded_qa={"per_clip": 4})
    clues = {c.id: c for c in build_clues(CLIP, stage.config)}
    t1, t2, t3 = clues["T1"], clues["T2"], clues["T3"]
    assert (t1.start_s, t1.end_s) == (10.0, 10.25) and (t2.start_s, t2.end_s) == (10.0, 10.92)
    assert (t3.start_s, t3.end_s) == (14.0, 16.0) and t3.full_s is None
    # the line the teacher reads says the clamped times, never 9.9 s in a clip that starts at 10 s
    assert t2.line() == 'T2 (speech, 10.0-10.9s): "market on Friday"' and "9.9" not in t2.line()
    # T1 keeps a quarter of itself inside the clip: a clue (its words are heard) but no moment of it
    assert [c.id for c in moments(CLIP, list(clues.values()))] == ["T2", "T3"]


def test_grounding_on_speech_across_the_cut_passes_timestamps():
    stage = _stage(grounding={"rephrase": False, "per_clip": 8})
    free, _ = TASK_FAMILIES["grounding"].plan(stage, CLIP, build_clues(CLIP, stage.config), stage.config.tasks.grounding)
    spans = sorted((s[R.ANSWER_SPANS][0]["start_s"], s[R.ANSWER_SPANS][0]["end_s"]) for s in free)
    assert spans == [(10.0, 10.92), (14.0, 16.0)]   # T1 (cut short by the edge) is no target
    checked = _checked(free)
    assert all(not isinstance(c, Reject) and c[R.V_TIMESTAMPS_VALID] for c in checked), checked


@pytest.mark.parametrize("task, reply", [
    ("grounded_qa", lambda t: {"question": "What is sold on Friday?", "answer": "Bread.", "evidence": [t.id]}),
    ("reasoning_localization", lambda t: {"question": "When could a viewer learn the day of the market?",
                                          "explanation": "Someone says the market is on Friday."}),
])
def test_teacher_moments_across_the_cut_answer_inside_the_clip(task, reply):
    stage = _stage(**{task: {"per_clip": 4}})
    p, (sample,) = _finish(stage, CLIP, task, "T2", reply)
    assert "10.0-10.9s" in p.extra["target"].line()
    assert not isinstance(sample, Reject), sample
    assert sample[R.ANSWER_SPANS] == [{"start_s": 10.0, "end_s": 10.92}] and "{{span:10,10.92}}" in sample[R.ANSWER]
    assert sample[R.EVIDENCE]["transcript_spans"][0]["start_s"] == 10.0
    (checked,) = _checked([sample])
    assert not isinstance(checked, Reject) and checked[R.V_TIMESTAMPS_VALID], checked


# ======================================================================= F2: grounded_qa answers its moment
TALK = [(0.0, 10.0, "A test pattern with a moving counter"), (10.0, 20.0, "Colour bars fill the screen"),
        (20.0, 30.0, "A fractal zooms in"), (30.0, 40.0, "A blue grid is shown")]
VIDEO = {R.CLIP_ID: "talk40:video", R.VIDEO_ID: "talk40", R.START_S: 0.0, R.END_S: 40.0, R.DURATION_S: 40.0,
         R.SAMPLE_SCOPE: R.SCOPE_VIDEO,
         R.TRANSCRIPT_SEGMENTS: [_seg(0.62, 3.92, "Maria bakes three loaves of bread in the morning"),
                                 _seg(11.3, 13.28, "Tom sells the bread at the market on Friday")],
         R.ANNOTATIONS: {"title": "Bakery and market",
                         "segments": [{"start_s": a, "end_s": b, "text": t} for a, b, t in TALK]}}


def test_grounded_qa_span_is_the_asked_moment_not_the_union_of_citations():
    stage = _stage(scope="video", grounded_qa={"per_clip": 8})
    reply = lambda t: {"question": "What does Maria make?", "answer": "Three loaves of bread.", "evidence": [t.id, "A4"]}
    _, (sample,) = _finish(stage, VIDEO, "grounded_qa", "T1", reply)
    assert not isinstance(sample, Reject), sample
    # h17 F2 kept {{span:0.62,40}}: 98 % of the video, across a 26 s gap
    assert sample[R.ANSWER_SPANS] == [{"start_s": 0.62, "end_s": 3.92}]
    assert sample[R.ANSWER] == "Three loaves of bread. ({{span:0.62,3.92}})"
    ev = sample[R.EVIDENCE]   # the other cited clue stays evidence
    assert ev["transcript_spans"][0]["start_s"] == 0.62 and any("A blue grid" in c for c in ev["captions"])


def test_grounded_qa_reply_that_does_not_cite_its_moment_is_evidence_off_target():
    stage = _stage(scope="video", grounded_qa={"per_clip": 8})
    reply = lambda t: {"question": "What is on screen at the end?", "answer": "A blue grid.", "evidence": ["A4"]}
    _, (out,) = _finish(stage, VIDEO, "grounded_qa", "T1", reply)
    assert isinstance(out, Reject) and out.reason == "evidence_off_target", out
    assert "cites A4" in out.message and "not T1" in out.message


# ==================================================================== F4: dense events: length and repeats
class ScriptedVLM:
    """Answers every dense prompt with the events of h17's fake_dense reply."""

    EVENTS = [{"start_s": 2.0, "end_s": 2.0, "description": "zero length flash"},
              {"start_s": 5.0, "end_s": 3.0, "description": "reversed"},
              {"start_s": 1.0, "end_s": 6.0, "description": "the pattern moves"},
              {"start_s": 1.0, "end_s": 6.0, "description": "the pattern moves around"},
              {"start_s": 6.0, "end_s": 9.0, "description": "the counter ticks"},
              {"start_s": 9.95, "end_s": 10.0, "description": "a last flicker"}]

    def __init__(self) -> None:
        self.events = list(self.EVENTS)
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                prompt_text(self.read_json())
                content = json.dumps({"caption": "A test pattern moves.", "events": owner.events,
                                      "shot_type": "wide", "camera_movement": "static"})
                send_json(self, 200, chat_completion(content, model="scripted"))

        self.httpd, self.base_url = serve(Handler)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def vlm():
    server = ScriptedVLM()
    yield server
    server.close()


def _clip_row() -> dict:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (40, 120, 200)).save(buf, format="JPEG")
    frames = [{R.FRAME_TIMESTAMP_S: 1.25 + 2.5 * i, R.FRAME_JPEG: buf.getvalue()} for i in range(4)]
    return {R.CLIP_ID: "talk40_0", R.VIDEO_ID: "talk40", R.START_S: 0.0, R.END_S: 10.0, R.FRAMES: frames}


def _caption(server: ScriptedVLM, **dense) -> dict | Reject:
    return dense_caption(server.base_url, _clip_row(), **dense)


def test_dense_drops_short_and_repeated_events_and_counts_them(vlm):
    row = _caption(vlm)
    assert isinstance(row, dict), row
    kept = [(e["start_s"], e["end_s"], e["description"]) for e in row[R.DENSE_EVENTS]]
    assert kept == [(1.0, 6.0, "the pattern moves"), (6.0, 9.0, "the counter ticks")]
    # reversed, zero-length, 0.05 s, and the second 1-6 s event
    assert row[R.DENSE_EVENTS_DROPPED] == 4 and row[R.DENSE_TIMESTAMPS_REPAIRED] == 0


def test_dense_short_or_repeated_events_never_reject_a_row_for_its_range(vlm):
    vlm.events = [e for e in vlm.events if e["description"] != "reversed"]
    row = _caption(vlm, on_out_of_range="reject_row", min_event_s=0.0, duplicate_tolerance_s=0.0)
    assert isinstance(row, dict), row
    # min_event_s 0: every length stays; the 1-6 s repeat is dropped, counted; the row is kept
    assert [(e["start_s"], e["end_s"]) for e in row[R.DENSE_EVENTS]] == [(1.0, 6.0), (2.0, 2.0), (6.0, 9.0),
                                                                         (9.95, 10.0)]
    assert row[R.DENSE_EVENTS_DROPPED] == 1


def test_window_events_repeats_within_the_tolerance():
    replies = [[{"start_s": 1.0, "end_s": 6.0, "description": "a pan"},
                {"start_s": 1.1, "end_s": 6.2, "description": "the camera pans"},
                {"start_s": 1.0, "end_s": 6.0, "description": "A  pan"},          # the same event: once, silently
                {"start_s": 1.0, "end_s": 1.4, "description": "a blink"}]]
    check = window_events(replies, [(0.0, 10.0)], 10.0, 0.5, min_event_s=0.5, duplicate_tolerance_s=0.25)
    assert [e[2] for e in check.events] == ["a pan"]
    assert (check.short, check.repeated, check.dropped, check.dropped_total) == (1, 1, 0, 2)
    loose = window_events(replies, [(0.0, 10.0)], 10.0, 0.5)
    assert [e[2] for e in loose.events] == ["a blink", "a pan", "the camera pans"]
    # two different events over one span both stay (outside check h19: ActivityNet-style concurrent events)
    both = window_events([[{"start_s": 0.0, "end_s": 5.0, "description": "a man talks"},
                           {"start_s": 0.0, "end_s": 5.0, "description": "music plays"}]], [(0.0, 10.0)], 10.0, 0.5,
                         duplicate_tolerance_s=0.25)
    assert [e[2] for e in both.events] == ["a man talks", "music plays"] and both.repeated == 0


# ================================================================= F9: a step's evidence span renders as a span
def _cot_item(times, frames=()) -> Item:
    return Item({R.SAMPLE_ID: "c", R.TASK: "cot", R.ANSWER: "He sells bread.", R.START_S: 10.0, R.END_S: 20.0,
                 R.RATIONALE_STEPS: [{"text": "Tom says where he sells the bread.", "evidence_timestamps_s": times}],
                 R.EVIDENCE: {"captions": [], "frame_timestamps_s": list(frames), "transcript_spans": []}}, "x")


def test_cot_step_evidence_span_renders_like_the_span_elsewhere():
    tf = TimeFormat("frames", origin_s=10.0, duration_s=10.0, fps=25.0)
    text = cot_text(_cot_item([11.3, 13.28]), tf)
    # 1.3 s at 25 fps is inside frame 32: the span opens on the frame shown then, as a moment at 1.3 s names it
    assert f"({tf.span(11.3, 13.28)})" in text and "(frames 32 - 81)" in text and "at frame" not in text
    # two cited frames are two moments; one time is a moment
    assert "(at frame 25, frame 75)" in cot_text(_cot_item([11.0, 13.0], frames=[11.0, 13.0]), tf)
    assert "(at frame 25)" in cot_text(_cot_item([11.0]), tf)
    assert "(at 1.3 seconds, 3.3 seconds, 5.0 seconds)" in cot_text(
        _cot_item([11.3, 13.3, 15.0]), TimeFormat("seconds", origin_s=10.0, duration_s=10.0))
