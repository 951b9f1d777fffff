"""The output folder (pipelines/output_dir.py): one build at a time, `output.mode: error` on any non-empty
folder, an output.dir that names no folder refused, and a run that does nothing (or serves a stage from the
stage cache) keeps the measured rates that `vdata plan --videos` scales. Real in-process builds and real
`vdata build` processes on real videos."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

import vdata
from conftest import copy_to
from vdata.pipelines import output_dir
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, cut_video, flash_video):
    d = tmp_path_factory.mktemp("out_in")
    for p in (cut_video[0], flash_video):
        copy_to(p, d)
    return d


def config(inputs, out, **output) -> dict:
    return {"name": "outdir", "input": [{"path": str(inputs)}], "output": {"dir": str(out), **output},
            "ray": {"executor": "local"}, "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}},
                                                     {"frames": {"num_frames": 2}}]}


def cli_build(cfg: dict, where: Path) -> subprocess.Popen:
    path = where / f"cfg-{os.urandom(4).hex()}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "vdata.cli", "build", str(path), "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def clip_ids(out: Path) -> list[str]:
    return pads.dataset(str(out / "clips"), format="parquet").to_table(columns=[R.CLIP_ID])[R.CLIP_ID].to_pylist()


def test_a_second_build_into_a_held_folder_is_refused_and_two_at_once_never_duplicate(tmp_path, inputs):
    out = tmp_path / "out"
    with output_dir.exclusive(str(out)):   # a build holding the folder (the lock is per open file)
        proc = cli_build(config(inputs, out), tmp_path)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, err
        assert "is being written by another vdata build (pid" in err and "Traceback" not in err
        assert not (out / "clips").exists()
    # two builds started at the same moment: whichever order they take, every clip is written once
    procs = [cli_build(config(inputs, out), tmp_path) for _ in range(2)]
    outcomes = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in outcomes)[0] == 0 and {rc for rc, _ in outcomes} <= {0, 2}, outcomes
    assert all("another vdata build" in err for rc, err in outcomes if rc == 2)
    ids = clip_ids(out)
    assert ids and len(ids) == len(set(ids))
    assert json.loads((out / "manifest.json").read_text())["rows"] == len(ids)


def test_mode_error_refuses_any_non_empty_folder_and_output_dir_must_name_one(tmp_path, inputs, in_process):
    kept = tmp_path / "notes"
    kept.mkdir()
    (kept / "important.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"output.dir: .*notes is not empty \(important.txt\)"):
        vdata.build(parse_config(config(inputs, kept, mode="error")), progress=False)
    assert sorted(os.listdir(kept)) == ["_build.lock", "important.txt"]   # nothing else written
    for empty in ("", "  ", "/"):
        with pytest.raises(ConfigError, match="output.dir: .*must name a folder"):
            parse_config(config(inputs, empty))
    as_url = parse_config(config(inputs, f"file://{tmp_path}/from-url"))
    assert as_url.resolve(as_url.output.dir) == str(tmp_path / "from-url")


def test_runs_that_measure_nothing_keep_the_rates_plan_scales(tmp_path, inputs, in_process):
    out = tmp_path / "out"
    first = vdata.build(parse_config(config(inputs, out)), progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    rates = {s["stage"]: s["busy_s"] for s in manifest["rates"]["stages"]}
    assert first.ran and all(v > 0 for v in rates.values()), rates
    again = vdata.build(parse_config(config(inputs, out)), progress=False)   # nothing to do
    assert not again.ran
    rerun = json.loads((out / "manifest.json").read_text())
    assert rerun["rates"] == manifest["rates"] and rerun["stages"] == manifest["stages"]
    assert rerun["rows"] == manifest["rows"] and rerun["resumed_complete"] == 2
    # frames changed: probe and shots come from the stage cache, their rates stay the ones measured
    changed = config(inputs, out)
    changed["stages"][2] = {"frames": {"num_frames": 3}}
    vdata.build(parse_config(changed), progress=False)
    rebuilt = json.loads((out / "manifest.json").read_text())
    by_stage = {s["stage"]: s for s in rebuilt["stages"]}
    assert by_stage["probe"]["cache_hits"] == by_stage["probe"]["rows_in"] > 0
    after = {s["stage"]: s["busy_s"] for s in rebuilt["rates"]["stages"]}
    assert after["probe"] == rates["probe"] and after["shots"] == rates["shots"]
