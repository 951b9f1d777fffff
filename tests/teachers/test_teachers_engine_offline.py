"""The ``vllm`` backend on a real offline engine (tiny random Qwen-VL on the CPU)."""

from __future__ import annotations

import importlib.util
import json

import jsonschema
import numpy as np
import pytest

from vdata.teachers import ImagePart, Message, RequestCache, TeacherRequest, TextPart, VideoPart, build_teacher
from vdata.teachers.config import VLLMTeacherConfig
from vdata.teachers.media_encoding import frames_to_mp4
from vdata.teachers.vllm_engine import VLLMTeacher

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM not installed"),
]


def _cfg(model, cpu_engine, **kw):
    return VLLMTeacherConfig(
        model=str(model), gpus_per_replica=0, engine=cpu_engine, sampling={"max_tokens": 16}, batch_size=16, **kw
    )


@pytest.fixture(scope="module")
def engine(tiny_vlm, cpu_engine):
    t = build_teacher("captioner", _cfg(tiny_vlm, cpu_engine), in_process=True)
    assert isinstance(t, VLLMTeacher)
    t.start()
    yield t
    t.close()


def _img(rng, h, w):
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_image_batch(engine, rng):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_img(rng, 90, 120)).save(buf, format="JPEG")
    reqs = [
        TeacherRequest.from_prompt("Describe the picture.", images=[_img(rng, 120, 160)]),
        TeacherRequest.from_prompt("Compare the two.", images=[_img(rng, 64, 64), buf.getvalue()]),
        TeacherRequest.from_prompt("Caption.", images=[_img(rng, 200, 100)], sampling={"max_tokens": 8}),
        TeacherRequest.from_prompt("Just text."),
    ]
    res = engine.generate(reqs)
    assert [r.request_id for r in res] == [r.request_id for r in reqs]
    for r in res:
        assert r.ok, r.error
        assert isinstance(r.text, str) and r.finish_reason in ("stop", "length")
        assert r.attempts == 1 and r.usage.prompt_tokens > 0
    assert res[2].usage.completion_tokens <= 8
    assert all(r.usage.completion_tokens <= 16 for r in res)
    # visual tokens are really in the prompt: image prompts are longer than the text-only one
    assert res[0].usage.prompt_tokens > res[3].usage.prompt_tokens + 4
    assert res[1].usage.prompt_tokens > res[0].usage.prompt_tokens


def test_video_frames_with_metadata_and_file(engine, rng, tmp_path):
    frames = np.stack([_img(rng, 96, 128) for _ in range(8)])
    ts = [i * 0.5 for i in range(8)]
    path = tmp_path / "clip.mp4"
    path.write_bytes(frames_to_mp4(list(frames), fps=2.0))
    reqs = [
        TeacherRequest.from_prompt("What happens?", video=VideoPart(frames=frames, timestamps=ts, fps=30.0)),
        TeacherRequest.from_prompt("What happens?", video=VideoPart(frames=list(frames[:4]), fps=2.0)),
        TeacherRequest.from_prompt("What happens?", video=VideoPart(path=path)),
        TeacherRequest.from_prompt("No video."),
    ]
    res = engine.generate(reqs)
    for r in res:
        assert r.ok, r.error
        assert r.finish_reason in ("stop", "length")
    assert res[0].usage.prompt_tokens > res[3].usage.prompt_tokens + 8
    assert res[0].usage.prompt_tokens > res[1].usage.prompt_tokens  # 8 frames > 4 frames


def test_structured_output_bounded_schema(engine, bounded_schema):
    reqs = [
        TeacherRequest.from_prompt(f"Classify item {i} as JSON.", json_schema=bounded_schema,
                                   sampling={"max_tokens": 96})
        for i in range(6)
    ]
    res = engine.generate(reqs)
    for r in res:
        assert r.ok, (r.error, r.raw)
        assert r.finish_reason == "stop"
        jsonschema.validate(r.parsed, bounded_schema)
        assert json.loads(r.text, strict=False) == r.parsed


def test_a_reply_cut_at_max_tokens_is_reasked_as_often_as_its_request_says(engine, bounded_schema):
    """Four tokens cannot hold the schema's object, so every try fails: the teacher's 2 re-asks by default,
    the request's own count where it gives one (a stage's candidates are their own tries)."""
    def cut(i, **kw):
        return TeacherRequest.from_prompt(f"Item {i} as JSON.", json_schema=bounded_schema,
                                          sampling={"max_tokens": 4}, **kw)

    reqs = [cut(0), cut(1, schema_retries=0), cut(2, schema_retries=1), cut(3)]
    res = engine.generate(reqs)
    assert [r.error_kind for r in res] == ["schema_invalid"] * 4
    assert all("cut at max_tokens" in r.error and r.raw is not None for r in res)
    assert [r.attempts for r in res] == [3, 1, 2, 3]


def test_one_bad_request_does_not_fail_the_batch(engine, rng):
    too_many = TeacherRequest.from_prompt("three images", images=[_img(rng, 32, 32)] * 3)  # limit is 2
    broken = TeacherRequest(messages=[Message("user", [ImagePart(b"\x00garbage"), TextPart("x")])])
    too_long = TeacherRequest.from_prompt("word " * 5000)  # beyond max_model_len
    good = TeacherRequest.from_prompt("fine", images=[_img(rng, 32, 32)])
    res = engine.generate([too_many, good, broken, too_long])
    assert [r.request_id for r in res] == [too_many.request_id, good.request_id, broken.request_id,
                                           too_long.request_id]
    assert res[1].ok, res[1].error
    assert res[0].error_kind in ("engine_error", "input_error")
    assert res[2].error_kind == "input_error"
    assert res[3].error_kind in ("engine_error", "input_error")
    assert all(r.error for r in (res[0], res[2], res[3]))


def test_cache_rerun_makes_no_engine_calls(engine, tiny_vlm, cpu_engine, tmp_path, rng, bounded_schema):
    cache = RequestCache(tmp_path / "cache")
    cached = VLLMTeacher("captioner", _cfg(tiny_vlm, cpu_engine), cache, llm=engine.llm)
    img = _img(rng, 64, 80)
    reqs = [TeacherRequest.from_prompt("Describe.", images=[img], prompt_template_version="v1"),
            TeacherRequest.from_prompt("JSON.", json_schema=bounded_schema, sampling={"max_tokens": 96})]
    first = cached.generate(reqs)
    assert all(r.ok and not r.cached for r in first)
    calls = cached.stats()["attempts"]
    again = [TeacherRequest.from_prompt("Describe.", images=[img.copy()], prompt_template_version="v1"),
             TeacherRequest.from_prompt("JSON.", json_schema=bounded_schema, sampling={"max_tokens": 96})]
    second = cached.generate(again)
    assert all(r.cached for r in second)
    assert [r.text for r in second] == [r.text for r in first] and second[1].parsed == first[1].parsed
    assert [r.request_id for r in second] == [r.request_id for r in again]
    st = cached.stats()
    assert st["attempts"] == calls and st["cache_hits"] == 2
    # a new prompt-template version is a miss
    third = cached.generate([TeacherRequest.from_prompt("Describe.", images=[img], prompt_template_version="v2")])
    assert not third[0].cached
    cached.close()
    assert engine.generate([TeacherRequest.from_prompt("still alive")])[0].ok  # shared engine not shut down


def test_stats_json(engine):
    st = engine.stats()
    json.dumps(st)
    assert st["backend"] == "vllm" and st["requests"] >= 10 and st["completion_tokens"] > 0
    assert st["latency_p50_s"] is not None and st["tokens_per_s"] > 0


def test_qwen3_vl_images_video_schema(engine, tiny_vlm3, cpu_engine, rng, bounded_schema):
    engine.close()  # one engine at a time on 2 cores
    t = build_teacher("q3", _cfg(tiny_vlm3, cpu_engine), in_process=True)
    try:
        frames = np.stack([_img(rng, 96, 128) for _ in range(6)])
        res = t.generate([
            TeacherRequest.from_prompt("Describe.", images=[_img(rng, 120, 160)]),
            TeacherRequest.from_prompt("What happens?", video=VideoPart(frames=frames, timestamps=[0, .5, 1, 1.5, 2, 2.5],
                                                                         fps=24.0)),
            TeacherRequest.from_prompt("JSON.", json_schema=bounded_schema, sampling={"max_tokens": 96}),
        ])
        assert all(r.ok for r in res), [r.error for r in res]
        assert res[2].finish_reason == "stop"
        jsonschema.validate(res[2].parsed, bounded_schema)
    finally:
        t.close()
