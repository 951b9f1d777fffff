"""What `vdata` imports before it needs it (issue 16: a small build's fixed cost). Every module named here
was imported by the CLI's start or by every build before it was made lazy; each is used by some commands
or builds only, and now loads where it is used. Checked in fresh interpreters (this test process has
imported everything already). No timings here: bench/bench_build_overhead.py measures them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# `import vdata.cli`, and a build until its run starts: none is needed to parse the command line, load and
# check a config, or start a build without teachers and annotation files
NOT_AT_START = (
    "pysubs2", "vdata.media.subtitles",    # subtitle parsing: the annotation readers that meet one
    "vdata.schemas.annotation_formats.actions", "vdata.schemas.annotation_formats.captions",
    "vdata.schemas.annotation_formats.grounding", "vdata.schemas.annotation_formats.web_clips",
    "diskcache", "vdata.teachers.cache",   # the teachers' request cache
    "vdata.teachers.base", "vdata.teachers.accounting", "vdata.teachers.config",
)
# `import vdata.cli` only: the teachers' value types (and their numpy) come with a build's runner
NOT_AT_CLI_START = (*NOT_AT_START, "numpy", "vdata.teachers.types")
# `import vdata.pipelines.runner`, the start of every `vdata build`: the card (a forked child writes it)
# and its exporters are used once the run is done, and by some builds only
NOT_AT_RUNNER_IMPORT = (
    "vdata.exporters", "vdata.exporters.hf_local", "vdata.exporters.source", "vdata.exporters.base",
    "vdata.exporters.media",
)
# a build without teachers and without a quality stage
NOT_IN_A_PROBE_BUILD = ("vdata.teachers.config", "vdata.teachers.endpoint", "vdata.teachers.vllm_env",
                        "vdata.stages.quality")


def _run(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter; it prints a JSON object as its last line."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _loaded(*modules: str) -> set[str]:
    return set(_run(f"import json, sys, {', '.join(modules)}; print(json.dumps(sorted(sys.modules)))"))


def test_the_cli_starts_without_the_modules_only_some_commands_use():
    loaded = _loaded("vdata.cli")
    assert {"vdata.schemas.config", "pydantic"} <= loaded   # the check sees what is imported
    assert not loaded & set(NOT_AT_CLI_START), sorted(loaded & set(NOT_AT_CLI_START))


def test_the_runner_imports_nothing_that_only_the_finished_build_uses():
    loaded = _loaded("vdata.cli", "vdata.pipelines.runner")
    assert "vdata.pipelines.execution" in loaded
    late = set(NOT_AT_START) | set(NOT_AT_RUNNER_IMPORT)
    assert not loaded & late, sorted(loaded & late)


BUILD = """
import json, multiprocessing, sys
import vdata.cli
import vdata.pipelines.runner as runner

seen = {}
execute, card_beside = runner._execute, runner.card_child.card_beside
def _execute(*args, **kwargs):   # what the build has imported when its run starts
    seen["run"] = sorted(sys.modules)
    return execute(*args, **kwargs)
def _card_beside(*args, **kwargs):
    done = card_beside(*args, **kwargs)
    seen["forked"] = len(multiprocessing.active_children()) == 1   # the card is written in a child
    return done
runner._execute, runner.card_child.card_beside = _execute, _card_beside
sys.argv = ["vdata", "build", sys.argv[1], "--quiet"]
try:
    vdata.cli.main()
except SystemExit as e:
    assert not e.code, e.code
seen["end"] = sorted(sys.modules)
print(json.dumps(seen))
"""


def test_a_probe_build_loads_what_its_run_and_outputs_use_where_they_use_it(bikes, tmp_path):
    import yaml

    config = tmp_path / "probe.yaml"
    config.write_text(yaml.safe_dump({"name": "imports", "input": [{"path": bikes}],
                                      "output": {"dir": str(tmp_path / "out"), "stage_cache": False},
                                      "ray": {"executor": "local"}, "stages": [{"probe": {}}]}))
    seen = _run(BUILD, str(config))
    before_run, at_end = set(seen["run"]), set(seen["end"])
    assert "vdata.stages.probe" in before_run
    late = set(NOT_AT_START) | set(NOT_AT_RUNNER_IMPORT) | set(NOT_IN_A_PROBE_BUILD)
    assert not before_run & late, sorted(before_run & late)
    assert not at_end & set(NOT_IN_A_PROBE_BUILD), sorted(at_end & set(NOT_IN_A_PROBE_BUILD))
    out = tmp_path / "out"
    assert (out / "report.html").is_file() and (out / "README.md").is_file() and (out / "manifest.json").is_file()
    assert "vdata.pipelines.report_figures" in at_end and "matplotlib" not in at_end   # SVG plots, no matplotlib
    if seen["forked"]:   # the card's exporters, `datasets` and `huggingface_hub` loaded in the child only
        card = {"vdata.exporters.hf_local", "datasets", "huggingface_hub"}
        assert not at_end & card, sorted(at_end & card)
