"""Structured captions (caption `strategy: structured`, Koala-36M / Vript presets): the bounded schema, the
field checks, the prompt's title / previous scene / voice-over, config errors with key paths, and real
runs on a tiny random Qwen2.5-VL (CPU vLLM) over real clips, where only structure can be asserted.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow as pa
import pytest
from caption_conftest import cut_clips, tiny_vlm_dir, vllm_teacher_config, with_transcript  # noqa: F401  (fixtures)
from pydantic import ValidationError

from vdata.prompts import load_prompt
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages.base import Reject, RunContext
from vdata.stages.caption import (CAMERA_MOVEMENTS, PRESETS, PROMPT_GROUP, PROMPT_NAMES, SHOT_TYPES, Captioner,
                                  CaptionConfig, CaptionStage, PreviousScene, check_fields, joined_caption,
                                  schema_fields, structured_request, structured_schema, video_title)
from vdata.teachers import build_teacher

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "videos"


def _prompt_text(req) -> str:
    return "\n".join(p.text for m in req.messages for p in m.content if hasattr(p, "text"))


def _captioner(cfg: dict) -> tuple[CaptionStage, Captioner]:
    """The stage's templates and clip building without a teacher: what a request would carry."""
    stage = CaptionStage(CaptionConfig(strategy="structured", **cfg), RunContext(output_dir=""))
    stage.prompts = {n: load_prompt(PROMPT_GROUP, n) for n in PROMPT_NAMES}
    return stage, Captioner(stage.config, stage.prompts, {}, None, stage.reject)   # type: ignore[arg-type]


# ================================================================================ no model needed
def test_presets_give_bounded_schemas_in_the_release_field_order():
    for preset, names in (("koala", ["subject", "motion", "background", "camera"]),
                          ("vript", ["shot_type", "camera_movement", "content", "scene_title"])):
        fields = schema_fields(CaptionConfig(strategy="structured", structured={"preset": preset}).structured)
        schema = structured_schema(fields)
        assert list(schema["properties"]) == names == schema["required"]
        assert schema["additionalProperties"] is False
        for prop in schema["properties"].values():   # every string capped or from a closed vocabulary
            assert "enum" in prop or 0 < prop["maxLength"] <= 4000
    vript = structured_schema(PRESETS["vript"][0])["properties"]
    assert vript["shot_type"]["enum"] == list(SHOT_TYPES) and vript["camera_movement"]["enum"] == list(CAMERA_MOVEMENTS)
    capped = schema_fields(CaptionConfig(strategy="structured", structured={"preset": "vript", "max_chars": 40}).structured)
    assert [f.max_chars for f in capped if not f.choices] == [40, 40]


def test_field_checks_catch_what_a_grammar_lets_through():
    fields = PRESETS["vript"][0]
    good = {"shot_type": "wide", "camera_movement": "pan", "content": "A red  car\nturns left", "scene_title": "The turn"}
    values, problems = check_fields(good, fields)
    assert not problems and values["content"] == "A red car turns left" and list(values) == list(good)
    bad = {"shot_type": "sideways", "camera_movement": "pan", "content": "   ",
           "scene_title": "a short title for this scene, a few words"}
    _, problems = check_fields(bad, fields)
    assert len(problems) == 3
    assert any(p.startswith("shot_type:") and "not one of" in p for p in problems)
    assert any(p.startswith("content: missing or blank") for p in problems)
    assert any(p.startswith("scene_title: copies its instruction") for p in problems)
    assert check_fields({}, fields)[1] == [f"{f.name}: missing or blank" for f in fields]
    assert joined_caption({"a": "One", "b": "two!", "c": ""}, ["a", "b", "c"]) == "One. two!"


def test_title_comes_from_annotations_then_source_meta():
    assert video_title({R.ANNOTATIONS: {"title": " How to  fix a bike "}, R.SOURCE_META: '{"title": "meta"}'}) \
        == "How to fix a bike"
    assert video_title({R.ANNOTATIONS: {"title": None}, R.SOURCE_META: '{"title": "From the manifest"}'}) \
        == "From the manifest"
    assert video_title({R.SOURCE_META: "not json"}) == "" and video_title({}) == ""


def test_prompt_carries_title_previous_scene_and_voice_over(cut_clips):
    stage, cap = _captioner({"structured": {"preset": "vript", "context_chars": 60}})
    row = with_transcript({**cut_clips[1], R.SOURCE_META: json.dumps({"title": "Colour bars explained"})},
                          "now the colour bars appear")
    clip = stage._clip(row)
    previous = PreviousScene(2.0, "A test pattern with moving circles and a counter. " * 5)
    req = structured_request(cap, clip, previous)
    text = _prompt_text(req)
    assert 'titled "Colour bars explained"' in text
    assert "ending at 2.0 seconds" in text and "A test pattern with moving circles" in text
    assert len([x for x in text.splitlines() if x.startswith("A test pattern")][0]) <= 60   # context_chars
    assert "now the colour bars appear" in text                                             # the voice-over
    for name in ("shot_type", "camera_movement", "content", "scene_title"):
        assert f'"{name}"' in text
    assert req.json_schema == structured_schema(schema_fields(stage.config.structured))
    assert {"caption/structured@v1", "caption/structured_title@v1", "caption/structured_previous@v1",
            "caption/transcript@v2"} <= set(clip.prompt_ids)
    # no ASR: the subtitles the input carries are the voice-over (the cues overlapping the clip)
    start = cut_clips[3][R.START_S]
    subs = {"subtitles": [{"start_s": start - 1.0, "end_s": start + 0.5, "text": "across the cut"},
                          {"start_s": start + 9.0, "end_s": start + 9.5, "text": "long after this clip"}]}
    clip = stage._clip({**cut_clips[3], R.ANNOTATIONS: subs})
    text = _prompt_text(structured_request(cap, clip, None))
    assert "[0.0s-0.5s] across the cut" in text and "long after" not in text
    # off: no title, no previous scene (first clip), no transcript
    stage, cap = _captioner({"structured": {"title": False}, "transcript": False})
    clip = stage._clip({**cut_clips[0], R.SOURCE_META: json.dumps({"title": "Hidden"})})
    text = _prompt_text(structured_request(cap, clip, None))
    assert "Hidden" not in text and "scene just before" not in text and '"subject"' in text
    assert set(clip.prompt_ids) == {"caption/structured@v1"}


def test_previous_scene_groups_whole_videos_and_config_errors_name_keys(tmp_path):
    assert CaptionStage.grouping(CaptionConfig(strategy="structured")) == R.SOURCE_URI
    assert CaptionStage.grouping(CaptionConfig(strategy="structured", structured={"previous_scene": False})) is None
    assert CaptionStage.grouping(CaptionConfig()) is None
    with pytest.raises(ValidationError, match="window_frames"):
        CaptionConfig(strategy="structured", window_frames=4)
    with pytest.raises(ValidationError, match=r"structured.caption_from: \['plot'\]"):
        CaptionConfig(strategy="structured", structured={"caption_from": ["plot"]})
    with pytest.raises(ValidationError, match="fields: duplicate field names"):
        CaptionConfig(strategy="structured", structured={"fields": [{"name": "a", "ask": "xyz"}] * 2})
    with pytest.raises(ConfigError, match=r"stages\[1\].caption.structured.preset"):
        parse_config({"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "o")},
                      "stages": [{"probe": {}}, {"caption": {"strategy": "structured", "structured": {"preset": "x"}}}]})
    # the new column is declared with its type
    assert R.CAPTION_FIELDS in CaptionStage.writes and R.FIELD_TYPES[R.CAPTION_FIELDS] == pa.string()
    # the build plan feeds the stage whole videos and writes the fields column
    from vdata.pipelines.planning import make_plan, plan_text

    cfg = parse_config({"input": [{"path": str(EXAMPLES / "narrated_bakery.mp4")}], "output": {"dir": str(tmp_path / "o")},
                        "stages": [{"probe": {}}, {"shots": {}}, {"frames": {}},
                                   {"caption": {"strategy": "structured", "teacher": "cap"}}],
                        "teachers": {"cap": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x"}}})
    (line,) = [x for x in plan_text(make_plan(cfg)).splitlines() if x.strip().startswith("4. caption")]
    assert "on groups of equal source_uri" in line and R.CAPTION_FIELDS in make_plan(cfg).data_schema.names


# ================================================================================ tiny Qwen2.5-VL on CPU vLLM
@pytest.fixture(scope="module")
def engine(tiny_vlm_dir):
    teacher = build_teacher("captioner", vllm_teacher_config(tiny_vlm_dir), in_process=True)
    teacher.start()
    yield teacher
    teacher.close()


def _run(engine, clips, **structured):
    stage = CaptionStage(CaptionConfig(strategy="structured", max_tokens=300,
                                       structured={"max_chars": 30, **structured}), RunContext(output_dir=""))
    stage.use_teachers({"captioner": engine})
    stage.setup()
    return stage, stage.process_batch(clips)


def _check(row, clip, stage):
    """A kept row: every field present in schema order and valid, the caption joined from them, the row
    fits the stage's declared output schema."""
    if isinstance(row, Reject):   # the random model may write a blank field: rejected with its problems
        assert row.reason in ("structured_field_invalid", "teacher_schema_invalid"), row.message
        return None
    fields = schema_fields(stage.config.structured)
    got = json.loads(row[R.CAPTION_FIELDS])
    assert list(got) == [f.name for f in fields]
    assert not check_fields(got, fields)[1]
    names = stage.config.structured.caption_from or PRESETS[stage.config.structured.preset][1]
    assert row[R.CAPTION] == joined_caption(got, names) and row[R.CAPTION].strip()
    assert row[R.CAPTION_STRATEGY] == "structured"
    assert row[R.CAPTION_FRAME_TIMESTAMPS] == [f[R.FRAME_TIMESTAMP_S] for f in clip[R.FRAMES]]
    pa.Table.from_pylist([row], schema=R.schema_for(CaptionStage.output_columns(list(clip))))
    return got


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not HAVE_VLLM, reason="vLLM not installed")
def test_vript_scene_by_scene_and_koala_side_by_side_on_a_real_teacher(engine, cut_clips):
    clips = [{**c, R.SOURCE_META: json.dumps({"title": "Seven test patterns"})} for c in cut_clips]
    clips[2] = with_transcript(clips[2], "here the mandelbrot set zooms in")
    shuffled = clips[::-1]                      # the stage restores time order inside the video
    stage, out = _run(engine, shuffled, preset="vript")
    kept = 0
    for row, clip in zip(out, shuffled):
        got = _check(row, clip, stage)
        if got is None:
            continue
        kept += 1
        assert got["shot_type"] == row[R.SHOT_TYPE] and got["camera_movement"] == row[R.CAMERA_MOVEMENT]
        ids = row[R.CAPTION_PROMPT_VERSION].split(",")
        assert "caption/structured@v1" in ids and "caption/structured_title@v1" in ids
        # the previous scene is the nearest earlier clip of the video that got a caption
        earlier_kept = any(isinstance(r, dict) and r[R.START_S] < clip[R.START_S] for r in out)
        assert ("caption/structured_previous@v1" in ids) is earlier_kept
        assert ("caption/transcript@v2" in ids) is (clip[R.CLIP_ID] == clips[2][R.CLIP_ID])
    assert kept >= 1
    # one video: each clip waits for the one before it, so every engine round carries one request
    assert stage.last_schedule.round_sizes == [1] * len(clips)
    # koala without the previous scene: all seven clips go out in one round
    stage, out = _run(engine, clips, preset="koala", previous_scene=False)
    assert sum(_check(r, c, stage) is not None for r, c in zip(out, clips)) >= 1
    assert stage.last_schedule.round_sizes == [len(clips)]
    assert all(r[R.SHOT_TYPE] is None for r in out if isinstance(r, dict))
