"""Caption budgets and cut replies (h11 KO-1, SG-2, PA-1, PA-2).

- a structured schema whose bounds cannot fit `max_tokens` is a config error at its key (koala36m shipped 96);
- a prose caption the teacher stopped at max_tokens (finish_reason "length") rejects its clip
  `cut_at_max_tokens` (multi_frame, differential) or is no multi_teacher candidate, instead of being kept;
- multi_frame / multi_teacher prompts carry the video's title and description when the row has them, and
  render exactly as the v1 template did when it has neither;
- `selector: agreement` with fewer than 3 candidates is a config error at its key (panda70m shipped 2).

The teacher is a loopback OpenAI-compatible server (fault injection): it answers with a long text and,
like a real server, stops at the request's max_tokens (~4 characters per token) with finish_reason "length".
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from vdata.prompts import load_prompt
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages.base import Reject, RunContext
from vdata.stages.caption import DEMO_SERVED_NAME, PROMPT_GROUP, PROMPT_NAMES, Captioner, CaptionConfig, CaptionStage
from vdata.stages.caption.config import schema_fields, schema_tokens
from loopback_http import QuietHandler, chat_completion, prompt_text, send_json, serve, stop

RECIPES = Path(__file__).resolve().parent.parent / "configs" / "recipes"
LONG = ("A woman in a red apron cuts three red apples into thin slices at a wooden counter, then moves them onto a "
        "green plate while a man washes a blue bowl at the sink behind her; warm light comes from the left. ") * 6
SHORT = "A woman cuts apples in a kitchen."


class CuttingVLM:
    """A loopback chat-completions server. Replies `LONG`, or `SHORT` to a request with temperature 0 or none
    when `short_greedy` and to one whose seed is in `short_seeds`; a reply longer than max_tokens * 4 characters is cut there, finish_reason "length"."""

    def __init__(self, short_greedy: bool = False, short_seeds: tuple = ()) -> None:
        self.prompts: list[str] = []
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.read_json()
                owner.prompts.append(prompt_text(body))
                short = (short_greedy and not body.get("temperature")) or body.get("seed") in short_seeds
                text = SHORT if short else LONG
                if "response_format" in body:        # the multi_teacher judge: every candidate alike, the first best
                    n = len(body["response_format"]["json_schema"]["schema"]["properties"]["best"]["enum"])
                    text = json.dumps({"scores": [5] * n, "best": 0})
                limit = int(body.get("max_tokens") or body.get("max_completion_tokens") or 10**6) * 4
                finish = "length" if len(text) > limit else "stop"
                send_json(self, 200, chat_completion(text[:limit], model="cutting", finish_reason=finish,
                                                     completion_tokens=min(len(text), limit) // 4))

        self.httpd, self.base_url = serve(Handler)

    def close(self) -> None:
        stop(self.httpd)


@pytest.fixture
def vlm():
    server = CuttingVLM()
    yield server
    server.close()


def _row(annotations: dict | None = None, frames: int = 3) -> dict:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (40, 120, 200)).save(buf, format="JPEG")
    row = {R.CLIP_ID: "v_0.0_6.0", R.VIDEO_ID: "v", R.SOURCE_URI: "v.mp4", R.START_S: 0.0, R.END_S: 6.0,
           R.FRAMES: [{R.FRAME_TIMESTAMP_S: 0.5 + 2 * i, R.FRAME_JPEG: buf.getvalue()} for i in range(frames)]}
    if annotations is not None:
        row[R.ANNOTATIONS] = annotations
    return row


def _caption(server: CuttingVLM, rows: list[dict], model: str = "cutting", stats: dict | None = None, **cfg) -> list:
    teacher = {"backend": "openai", "base_url": server.base_url, "model": model, "max_retries": 0, "timeout_s": 30,
               "video": {"mode": "frames"}, "structured_output": "openai"}
    stage = CaptionStage(CaptionConfig(teacher="vlm", transcript=False, **cfg),
                         RunContext(output_dir="", teachers={"vlm": teacher}))
    stage.setup()
    try:
        return stage.process_batch(rows)
    finally:
        if stats is not None:
            stats.update(stage.stats())
        stage.close()


# ================================================================ KO-1: the structured budget
def test_structured_schema_that_cannot_fit_max_tokens_is_an_error_at_its_key():
    koala = schema_fields(CaptionConfig(strategy="structured").structured)
    need = schema_tokens(koala)
    assert need > sum(f.max_chars for f in koala) / 4          # the maxLength total plus the JSON around it
    with pytest.raises(ValidationError, match=rf"max_tokens\n.*96 tokens cannot hold .* set max_tokens >= {need}"):
        CaptionConfig(strategy="structured", max_tokens=96)
    CaptionConfig(strategy="structured", max_tokens=need)
    CaptionConfig(strategy="structured", max_tokens=96, structured={"max_chars": 60})   # shorter fields fit
    CaptionConfig(strategy="structured", structured={"preset": "vript"}, max_tokens=400)   # the vript recipe's
    data = yaml.safe_load((RECIPES / "koala36m.yaml").read_text())
    caption = next(s["caption"] for s in data["stages"] if "caption" in s)
    caption["max_tokens"] = 96                                  # what koala36m shipped
    with pytest.raises(ConfigError, match=r"stages\[4\]\.caption\.max_tokens: 96 tokens cannot hold"):
        parse_config(data)


# ================================================================ PA-2: agreement needs 3 candidates
def test_agreement_with_two_candidates_is_an_error_at_its_key():
    for mt in ({"samples_per_teacher": 2}, {"teachers": ["a", "b"]}):
        with pytest.raises(ValidationError, match=r"multi_teacher\.selector\n.*agreement needs at least 3"):
            CaptionConfig(strategy="multi_teacher", multi_teacher=mt)
    CaptionConfig(strategy="multi_teacher", multi_teacher={"samples_per_teacher": 3})
    CaptionConfig(strategy="multi_teacher", multi_teacher={"samples_per_teacher": 2, "selector": "judge"})
    data = yaml.safe_load((RECIPES / "panda70m.yaml").read_text())
    caption = next(s["caption"] for s in data["stages"] if "caption" in s)
    assert caption["multi_teacher"]["selector"] == "agreement"
    parse_config(data)                                          # the shipped recipe: 3 candidates
    caption["multi_teacher"]["samples_per_teacher"] = 2         # what panda70m shipped
    with pytest.raises(ConfigError, match=r"stages\[5\]\.caption\.multi_teacher\.selector: agreement needs"):
        parse_config(data)


# ================================================================ SG-2: cut prose replies
@pytest.mark.parametrize("cfg", [{"strategy": "multi_frame"},
                                 {"strategy": "multi_frame", "window_frames": 2},
                                 {"strategy": "differential"}], ids=["multi_frame", "windows", "differential"])
def test_a_caption_cut_at_max_tokens_rejects_its_clip(vlm, cfg):
    (rej,) = _caption(vlm, [_row()], max_tokens=32, **cfg)
    assert isinstance(rej, Reject) and rej.reason == "cut_at_max_tokens", rej
    assert "max_tokens=32" in rej.message and 'finish_reason "length"' in rej.message
    assert rej.detail["max_tokens"] == 32 and rej.detail["raw"] == LONG[:128]
    (row,) = _caption(vlm, [_row()], max_tokens=1024, **cfg)   # room for the whole reply: kept
    assert isinstance(row, dict) and row[R.CAPTION] == LONG.strip()


def test_a_cut_reply_keeps_its_complete_sentences(vlm):
    """max_tokens=64 cuts LONG after its first sentence: the caption is that sentence, never the half one after
    it, and the stage's stats count the trimmed reply."""
    stats: dict = {}
    (row,) = _caption(vlm, [_row()], stats=stats, max_tokens=64, strategy="multi_frame")
    first = LONG.split("; warm light comes from the left. ")[0] + "; warm light comes from the left."
    assert isinstance(row, dict) and row[R.CAPTION] == first, row
    assert stats["trimmed_at_max_tokens"] == {"multi_frame": 1}, stats


def test_the_teachers_own_budget_is_named_when_the_stage_sets_none(vlm):
    teacher_budget = {"sampling": {"max_tokens": 40}}
    teacher = {"backend": "openai", "base_url": vlm.base_url, "model": "cutting", "max_retries": 0,
               "video": {"mode": "frames"}, **teacher_budget}
    stage = CaptionStage(CaptionConfig(teacher="vlm", transcript=False), RunContext(output_dir="", teachers={"vlm": teacher}))
    stage.setup()
    try:
        (rej,) = stage.process_batch([_row()])
    finally:
        stage.close()
    assert isinstance(rej, Reject) and rej.reason == "cut_at_max_tokens" and rej.detail["max_tokens"] == 40


def test_a_cut_multi_teacher_candidate_is_no_candidate():
    server = CuttingVLM(short_greedy=True)     # sample 0 (greedy) ends; samples 1, 2 (temperature) are cut
    try:
        # judge: one candidate left needs no judging (and no embedding model is loaded)
        (row,) = _caption(server, [_row()], strategy="multi_teacher", max_tokens=32,
                          multi_teacher={"samples_per_teacher": 3, "selector": "judge"})
        (rej,) = _caption(server, [_row()], strategy="multi_teacher", max_tokens=32,
                          multi_teacher={"samples_per_teacher": 3, "selector": "judge", "min_candidates": 2})
    finally:
        server.close()
    assert isinstance(row, dict), row
    assert row[R.CAPTION] == SHORT and [c["text"] for c in row[R.CAPTION_CANDIDATES]] == [SHORT]
    assert isinstance(rej, Reject) and rej.reason == "cut_at_max_tokens", rej


def test_agreement_left_with_two_candidates_chooses_none():
    # 3 configured, the third cut: agreement would score both survivors alike and always keep the first
    server = CuttingVLM(short_greedy=True, short_seeds=(1001,))
    teacher = {"backend": "openai", "base_url": server.base_url, "model": "cutting", "max_retries": 0,
               "timeout_s": 30, "video": {"mode": "frames"}}
    stage = CaptionStage(CaptionConfig(teacher="vlm", transcript=False, strategy="multi_teacher", max_tokens=32,
                                       multi_teacher={"samples_per_teacher": 3, "selector": "agreement"}),
                         RunContext(output_dir="", teachers={"vlm": teacher}))
    stage.setup()
    try:
        (row,) = stage.process_batch([_row()])
    finally:
        stage.close()
        server.close()
    assert isinstance(row, dict), row
    assert [c["text"] for c in row[R.CAPTION_CANDIDATES]] == [SHORT, SHORT]
    assert [c["score"] for c in row[R.CAPTION_CANDIDATES]] == [None, None]
    assert row[R.CAPTION_SELECTION_SCORE] is None and stage.counters["agreement_undecided"] == 1


def test_the_demo_models_cut_replies_are_kept(vlm):
    # the random demo model never ends a reply: rejecting would leave the quickstart with no caption
    (row,) = _caption(vlm, [_row()], model=DEMO_SERVED_NAME, max_tokens=32)
    assert isinstance(row, dict) and row[R.CAPTION] == LONG[:128].strip()


def test_recipe_budgets_hold_the_captions_they_ask_for():
    # koala: the preset's JSON; sharegpt4video: the summary, a ~270-word dense caption (~360 tokens);
    # panda70m: the multi_frame template's one or two paragraphs (~250 words at most)
    need = {"koala36m": schema_tokens(schema_fields(CaptionConfig(strategy="structured").structured)),
            "sharegpt4video": 360, "panda70m": 330}
    for name, tokens in need.items():
        data = yaml.safe_load((RECIPES / f"{name}.yaml").read_text())
        caption = next(s["caption"] for s in data["stages"] if "caption" in s)
        assert caption["max_tokens"] >= tokens, (name, caption["max_tokens"], tokens)


# ================================================================ PA-1: title and description in the prompt
ANN = {"title": "Apples in the kitchen", "description": "Anna and Ben cook.\n\n0:00 Cutting apples\n0:06 Washing"}


@pytest.mark.parametrize("cfg", [{"strategy": "multi_frame"},
                                 {"strategy": "multi_teacher", "multi_teacher": {"samples_per_teacher": 3,
                                                                                 "selector": "judge"}}],
                         ids=["multi_frame", "multi_teacher"])
def test_title_and_description_reach_the_caption_prompt(vlm, cfg):
    (row,) = _caption(vlm, [_row(ANN)], max_tokens=1024, **cfg)
    assert isinstance(row, dict), row
    described = [p for p in vlm.prompts if "Describe the clip in detail" in p]     # not the judge's
    assert len(described) == (3 if cfg["strategy"] == "multi_teacher" else 1)
    assert all("Title: Apples in the kitchen\nDescription: Anna and Ben cook.\n0:00 Cutting apples\n"
               "0:06 Washing\n" in p for p in described)
    ids = row[R.CAPTION_PROMPT_VERSION].split(",")
    assert "caption/video_context@v1" in ids and "caption/multi_frame@v2" in ids
    vlm.prompts.clear()
    (row,) = _caption(vlm, [_row({"title": "Only a title"})], max_tokens=1024, **cfg)
    described = [p for p in vlm.prompts if "Describe the clip in detail" in p]
    assert described and all("Title: Only a title\n" in p and "Description:" not in p for p in described)


def test_a_row_without_title_or_description_renders_as_the_v1_template():
    stage = CaptionStage(CaptionConfig(transcript=False), RunContext(output_dir=""))
    stage.prompts = {n: load_prompt(PROMPT_GROUP, n) for n in PROMPT_NAMES}
    cap = Captioner(stage.config, stage.prompts, {}, None, stage.reject)   # type: ignore[arg-type]
    v1 = load_prompt(PROMPT_GROUP, "multi_frame", version=1)
    for row in (_row(), _row({"title": " ", "description": ""}), _row({"label": "cooking"})):
        clip = stage._clip(row)
        req = cap.request(clip, "multi_frame", clip.frames, {"span_start": "0.0", "span_end": "6.0"})
        text = req.messages[0].content[-1].text
        assert text == v1.render(duration="6.0", transcript="", num_frames=3, frame_times="0.5s, 2.5s, 4.5s",
                                 span_start="0.0", span_end="6.0")
        assert "Title" not in text and "caption/video_context@v1" not in clip.prompt_ids
    # video_context_chars: 0 leaves them out
    stage.config = CaptionConfig(transcript=False, video_context_chars=0)
    assert stage._clip(_row(ANN)).video == ""
