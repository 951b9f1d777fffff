"""The vLLM teacher through Ray: ``ray.data.llm`` processor and the Ray actor pool."""

from __future__ import annotations

import importlib.util
import json

import jsonschema
import numpy as np
import pytest

from vdata.teachers import TeacherRequest, build_teacher
from vdata.teachers.config import VLLMTeacherConfig
from vdata.teachers.vllm_engine import VLLMPoolTeacher, apply_vllm_teacher

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.cluster,
    pytest.mark.timeout(600),
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM not installed"),
]


@pytest.fixture(scope="module")
def ray_cluster():
    """Ray with 8 logical CPUs: ray.data.llm's stages each reserve CPUs, which 2 real cores cannot cover.

    An embedded Ray that an earlier test left running (the session's ``ray_local`` has 4) would make the
    processor wait for CPUs forever, so it is restarted with 8 and shut down afterwards."""
    ray = pytest.importorskip("ray")
    kw = dict(include_dashboard=False, log_to_driver=False)
    if ray.is_initialized():
        if int(ray.cluster_resources().get("CPU", 0)) >= 8:
            yield ray
            return
        ray.shutdown()
    ray.init(num_cpus=8, **kw)
    yield ray
    ray.shutdown()   # later in-process builds start their own embedded Ray, as in a fresh process


def _cfg(model, cpu_engine, **kw):
    return VLLMTeacherConfig(model=str(model), gpus_per_replica=0, replicas=1, engine=cpu_engine,
                             sampling={"max_tokens": 16}, batch_size=8, **kw)


def test_ray_data_processor(ray_cluster, tiny_vlm, cpu_engine, bounded_schema):
    ray = ray_cluster
    cfg = _cfg(tiny_vlm, cpu_engine)
    rng = np.random.default_rng(0)
    rows = [{"id": i, "image": rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)} for i in range(6)]

    def to_request(row):
        schema = bounded_schema if row["id"] % 2 else None
        return TeacherRequest.from_prompt(f"Item {row['id']}.", images=[row["image"]], json_schema=schema,
                                          sampling={"max_tokens": 96 if schema else 16})

    out = apply_vllm_teacher(ray.data.from_items(rows), cfg, to_request, column="cap", concurrency=1, batch_size=8)
    out = sorted(out.take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in out] == list(range(6))
    for r in out:
        assert not r.get("__inference_error__"), r.get("__inference_error__")
        assert isinstance(r["cap_text"], str) and r["cap_prompt_tokens"] > 0 and r["cap_completion_tokens"] > 0
        assert r["image"].shape == (64, 96, 3)  # the row's own columns are kept
        if r["id"] % 2:
            assert r["cap_error"] is None, (r["cap_error"], r["cap_text"])
            jsonschema.validate(json.loads(r["cap_json"]), bounded_schema)
        else:
            assert r["cap_json"] is None


def test_ray_actor_pool_teacher(ray_cluster, tiny_vlm, cpu_engine, tmp_path):
    t = build_teacher("pool", _cfg(tiny_vlm, cpu_engine), cache_dir=tmp_path, in_process=False)
    assert isinstance(t, VLLMPoolTeacher)
    try:
        reqs = [TeacherRequest.from_prompt(f"p{i}") for i in range(5)]
        res = t.generate(reqs)
        assert [r.request_id for r in res] == [r.request_id for r in reqs]
        assert all(r.ok for r in res), [r.error for r in res]
        again = t.generate([TeacherRequest.from_prompt(f"p{i}") for i in range(5)])
        assert all(r.cached for r in again)
        st = t.stats()
        assert st["requests"] == 10 and st["cache_hits"] == 5 and st["completion_tokens"] > 0
    finally:
        t.close()
