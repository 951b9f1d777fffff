"""Outside check h4, F11: windowed dense captions. Each window's prompt asks for events "in seconds from the
start of the clip, between" the window's own start and end, and marks every frame with its clip time. A
vision model that counts from its first frame answers every window with the same window-relative times
(0.5-2.0 s, 2.0-3.5 s), and the stage used to pool them and check them against the whole clip only: a
19.8 s clip got each event three times, all in its first 3.5 s, with nothing repaired or dropped.

Now each window's events are checked against that window's span: an event outside it (beyond the
tolerance) is dropped and counted, not shifted on a guess (the prompt asked for clip times, so a time
outside the window is a wrong answer, not another convention), and an event given alike more than once
is kept once. The teacher is a scripted loopback server (an OpenAI-compatible HTTP endpoint, stdlib),
the caption stage and its openai teacher are the real ones.
"""
from __future__ import annotations

import io
import json
import re

import pytest

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.caption import CaptionConfig, CaptionStage
from vdata.stages.caption.dense import window_events
from loopback_http import QuietHandler, chat_completion, prompt_text, send_json, serve

CLIP_START, CLIP_END, FRAMES = 10.0, 29.8, 12   # windows of 4 frames: [0, 6.6], [6.6, 13.2], [13.2, 19.8] s


class ScriptedVLM:
    """Answers dense prompts with events in the convention `mode` names: `window` (every window from 0, as
    a model counting from its first frame does) or `clip` (inside the window, each event listed twice)."""

    def __init__(self, mode: str) -> None:
        self.mode, self.prompts = mode, []
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                prompt = prompt_text(self.read_json())
                owner.prompts.append(prompt)
                content = owner.reply(prompt)
                send_json(self, 200, chat_completion(content, model="scripted"))

        self.httpd, self.base_url = serve(Handler)

    def reply(self, prompt: str) -> str:
        window = re.search(r"cover seconds ([0-9.]+) to ([0-9.]+)", prompt)
        if not window:   # the merge of the window captions
            return "Cells spread over a grid, then thin out."
        a = float(window.group(1))
        if self.mode == "window":
            events = [{"start_s": 0.5, "end_s": 2.0, "description": "A pattern of cells spreads."},
                      {"start_s": 2.0, "end_s": 3.5, "description": "The cells thin out."}]
        else:
            one = {"start_s": round(a + 0.5, 1), "end_s": round(a + 2.0, 1), "description": f"Cells move after {a:g}s."}
            events = [one, dict(one)]
        return json.dumps({"caption": f"Cells on a grid from {a:g}s.", "events": events, "shot_type": "wide",
                           "camera_movement": "static"})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _clip_row() -> dict:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (40, 120, 200)).save(buf, format="JPEG")
    step = (CLIP_END - CLIP_START) / FRAMES
    frames = [{R.FRAME_TIMESTAMP_S: round(CLIP_START + (i + 0.5) * step, 3), R.FRAME_JPEG: buf.getvalue()}
              for i in range(FRAMES)]
    return {R.CLIP_ID: "recipe_10.0_29.8", R.VIDEO_ID: "recipe", R.START_S: CLIP_START, R.END_S: CLIP_END,
            R.FRAMES: frames}


def dense_caption(base_url: str, row: dict, window_frames: int = 0, **dense) -> dict | Reject:
    """The dense caption of `row` from the scripted server at `base_url` (also used by test_grounded_spans)."""
    teacher = {"backend": "openai", "base_url": base_url, "model": "scripted", "structured_output": "openai",
               "max_retries": 0, "timeout_s": 30, "video": {"mode": "frames"}}
    cfg = CaptionConfig(strategy="dense", teacher="vlm", window_frames=window_frames, dense=dense)
    stage = CaptionStage(cfg, RunContext(output_dir="", teachers={"vlm": teacher}))
    stage.setup()
    try:
        (out,) = stage.process_batch([row])
        return out
    finally:
        stage.close()


def _caption(server: ScriptedVLM, **dense) -> dict | Reject:
    return dense_caption(server.base_url, _clip_row(), window_frames=4, **dense)


@pytest.fixture
def vlm(request):
    server = ScriptedVLM(request.param)
    yield server
    server.close()


@pytest.mark.parametrize("vlm", ["window"], indirect=True)
def test_window_relative_events_of_later_windows_are_dropped_and_counted(vlm):
    row = _caption(vlm)
    assert isinstance(row, dict), row
    assert sum("between 6.6 and 13.2" in p for p in vlm.prompts) == 1   # the window the prompt asked about
    # window 0 starts at the clip's start: its events stand; windows 1 and 2 timed theirs from 0 as well
    assert [(e["start_s"], e["end_s"]) for e in row[R.DENSE_EVENTS]] == [(10.5, 12.0), (12.0, 13.5)]
    assert row[R.DENSE_EVENTS_DROPPED] == 4 and row[R.DENSE_TIMESTAMPS_REPAIRED] == 0


@pytest.mark.parametrize("vlm", ["window"], indirect=True)
def test_reject_row_names_the_windows(vlm):
    rej = _caption(vlm, on_out_of_range="reject_row")
    assert isinstance(rej, Reject) and rej.reason == "timestamps_out_of_range", rej
    assert "4 dense event(s)" in rej.message and "[6.6, 13.2]s" in rej.message
    assert any("window 1: event 0: start_s=0.5s is outside the window [6.6, 13.2]s" in p
               for p in rej.detail["problems"])


@pytest.mark.parametrize("vlm", ["clip"], indirect=True)
def test_events_inside_their_windows_are_kept_and_each_once(vlm):
    row = _caption(vlm)
    assert isinstance(row, dict), row
    starts = [(e["start_s"], e["end_s"], e["description"]) for e in row[R.DENSE_EVENTS]]
    assert starts == [(10.5, 12.0, "Cells move after 0s."), (17.1, 18.6, "Cells move after 6.6s."),
                      (23.7, 25.2, "Cells move after 13.2s.")]
    assert row[R.DENSE_EVENTS_DROPPED] == 0 and row[R.DENSE_TIMESTAMPS_REPAIRED] == 0


def test_window_events_clamps_at_the_window_edges_and_merges_what_windows_share():
    spans = [(0.0, 5.0), (5.0, 10.0)]
    edge = {"start_s": 4.8, "end_s": 5.0, "description": "The door  opens."}
    replies = [[edge, {"start_s": 1.0, "end_s": 5.3, "description": "A long pan."}],
               [{"start_s": 4.8, "end_s": 5.0, "description": "the door opens."},   # the same event, told alike
                {"start_s": 4.9, "end_s": 6.0, "description": "A cat walks in."}]]
    check = window_events(replies, spans, duration_s=10.0, tolerance_s=0.5)
    # 5.3 → 5.0 in window 0; 4.8 → 5.0 and 4.9 → 5.0 in window 1 (each within the tolerance of its edge)
    assert check.repaired == 3 and check.dropped == 0
    assert [e[:2] for e in check.events] == [(1.0, 5.0), (4.8, 5.0), (5.0, 5.0), (5.0, 6.0)]
    one_window = window_events([replies[0] + replies[0]], [(0.0, 10.0)], duration_s=10.0, tolerance_s=0.5)
    assert len(one_window.events) == 2 and one_window.dropped == 0   # a reply that repeats an event: once
