"""`vdata plan`, `vdata build` and `vdata new` on a haystack config (the vnbench recipe): `validate`
accepts it, so plan and build run it as `vdata haystack plan|build` do, and `new` says so (VN-1)."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import yaml
from click.testing import CliRunner

from vdata.cli import main
from vdata.media.synth import Segment, render_segments
from vdata.schemas import haystack as H

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "configs" / "recipes" / "vnbench.yaml"


def test_plan_of_the_vnbench_recipe_is_the_haystack_plan():
    runner = CliRunner()
    res = runner.invoke(main, ["plan", str(RECIPE)])
    assert res.exit_code == 0, res.output
    assert "9 items, 36 questions" in res.output and "stages" not in res.output and "config error" not in res.output
    bad = runner.invoke(main, ["plan", str(RECIPE), "--cpus", "4"])
    assert bad.exit_code == 2
    assert "haystack config" in bad.output and "--cpus" in bad.output and f"vdata haystack plan {RECIPE}" in bad.output


def test_build_of_a_haystack_config_builds_the_benchmark(tmp_path):
    (tmp_path / "videos").mkdir()
    render_segments(str(tmp_path / "videos" / "pattern.mp4"), [Segment("testsrc2", 8.0)], size=(320, 180))
    needles = ROOT / "examples" / "haystack" / "needles" / "images"
    cfg = {"name": "tiny", "output": {"dir": str(tmp_path / "out")},
           "haystack": {"sources": {"glob": "videos/*.mp4"}, "lengths_s": [8],
                        "needles": [{"type": "image", "from": f"{needles}/*.jpg", "duration_s": 1.0}],
                        "tasks": ["retrieval"], "needles_per_item": [1], "options": 2, "size": [320, 180]}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    runner = CliRunner()
    refused = runner.invoke(main, ["build", str(path), "--address", "ray://nowhere:10001"])
    assert refused.exit_code == 2 and f"vdata haystack build {path}" in refused.output
    assert not (tmp_path / "out").exists()
    res = runner.invoke(main, ["build", str(path), "--quiet"])
    assert res.exit_code == 0, res.output
    rows = pq.read_table(tmp_path / "out" / "items.parquet").to_pylist()
    assert rows and all(r[H.VERIFIED] is True for r in rows)
    assert (tmp_path / "out" / rows[0][H.VIDEO_PATH]).exists()
    assert "1 items, 2 questions" in res.output


def test_new_from_the_vnbench_recipe_names_commands_that_run_it(tmp_path):
    dest = tmp_path / "vn.yaml"
    res = CliRunner().invoke(main, ["new", str(dest), "--recipe", "vnbench"])
    assert res.exit_code == 0, res.output
    assert f"`vdata build {dest}` (= `vdata haystack build {dest}`)" in res.output
    assert "# `vdata validate` this file and `vdata build` it." in dest.read_text()   # true now: build dispatches
    plain = CliRunner().invoke(main, ["new", str(tmp_path / "mv.yaml"), "--recipe", "mvbench"])
    assert plain.exit_code == 0 and "haystack" not in plain.output
