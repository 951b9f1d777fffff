"""The dataset card and the commands that read a build folder, on the builds an outside tester found them
wrong for: a clips-level build (no teacher, no samples), a build that dropped nothing, an interrupted build
(no manifest.json) and a build folder that cannot be written.

Real builds (probe → shots → quality → frames on the bundled example videos, in process), the real CLI,
and the real `datasets` loader on the build folder.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

import vdata
from vdata.cli_hub import card_cmd
from vdata.exporters import ExportError, export
from vdata.exporters.cli import export_cmd
from vdata.exporters.source import UnfinishedBuild, split_of_file
from vdata.hub import write_card
from vdata.pipelines.report import report_cmd
from vdata.schemas import records as R
from vdata.schemas.config import parse_config
from vdata.stages.quality import Thresholds

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT / "examples" / "videos"   # three of them fail the quality checks: rejects with reasons


def _build(out: Path, videos: str, stages: list) -> Path:
    """`vdata build config.yaml`: the config's text goes into the manifest, which the card reads."""
    data = {"name": "card-cases", "description": "Clips of the example videos.", "license": "cc-by-4.0",
            "input": [{"path": videos}], "output": {"dir": str(out)}, "ray": {"executor": "local"}, "stages": stages}
    result = vdata.build(parse_config(data, raw_text=yaml.safe_dump(data, sort_keys=False)), progress=False)
    return Path(result.output_dir)


@pytest.fixture(scope="module")
def clips_build(tmp_path_factory) -> Path:
    """A curation build: clips, quality scores and frames, no teacher. `quality: {}` runs the default
    thresholds, which the card must still name (they dropped clips)."""
    out = _build(tmp_path_factory.mktemp("clips_build") / "out", str(VIDEOS),
                 [{"probe": {}}, {"shots": {}}, {"quality": {}}, {"frames": {"num_frames": 2, "max_side": 448}}])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["level"] == "clips" and manifest["rows"] > 0
    assert any(k.startswith("quality:") for k in manifest["rejects_by_reason"])
    return out


@pytest.fixture(scope="module")
def clean_build(tmp_path_factory) -> Path:
    """A build that dropped nothing: it writes no rejects part."""
    videos = tmp_path_factory.mktemp("clean_videos")
    for name in ("bikes.mp4", "multishot.mp4"):
        shutil.copy(VIDEOS / name, videos / name)
    out = _build(tmp_path_factory.mktemp("clean_build") / "out", str(videos),
                 [{"probe": {}}, {"shots": {"min_len_s": 0.2}}, {"frames": {"num_frames": 2, "max_side": 160}}])
    assert json.loads((out / "manifest.json").read_text())["rejects"] == 0
    assert not list((out / "rejects").glob("*.parquet"))
    return out


@pytest.fixture(scope="module")
def rejected_build(tmp_path_factory) -> Path:
    """A build that kept nothing: the quality stage's minimum side is larger than any video's, so every
    clip is a reject."""
    videos = tmp_path_factory.mktemp("rejected_videos")
    for name in ("black.mp4", "blurred.mp4"):
        shutil.copy(VIDEOS / name, videos / name)
    out = _build(tmp_path_factory.mktemp("rejected_build") / "out", str(videos),
                 [{"probe": {}}, {"shots": {}}, {"quality": {"thresholds": {"min_side": 100000}}}])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == 0 and manifest["rejects"] > 0 and manifest["level"] == "clips"
    return out


def _front_matter(text: str) -> dict:
    return yaml.safe_load(text.split("---\n", 2)[1])


def _copy(build: Path, dest: Path) -> Path:
    shutil.copytree(build, dest, ignore=shutil.ignore_patterns("_cache"))
    return dest


# --- 1. a clips-level build -------------------------------------------------------------------------

def test_card_of_a_clips_level_build_counts_videos_clips_and_names_every_threshold(clips_build, tmp_path):
    res = CliRunner().invoke(card_cmd, [str(clips_build), "--output", str(tmp_path / "README.md")])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "README.md").read_text()
    parts = sorted(clips_build.glob("clips/*.parquet"))
    rows = pq.read_table(parts, columns=[R.VIDEO_ID, R.CLIP_ID]).to_pylist()
    videos, clips = {r[R.VIDEO_ID] for r in rows}, {r[R.CLIP_ID] for r in rows}
    assert len(videos) > 1 and len(clips) > len(videos)
    assert f"from {len(videos)} source video(s)" in text and f"cut into {len(clips)} clip(s)" in text
    by_split = Counter(s for p in parts for s in [split_of_file(str(p))] * pq.ParquetFile(p).metadata.num_rows)
    for split, n in by_split.items():                                    # the Size table, per split
        assert f"| kept clips | {split} | {n} |" in text
    manifest = json.loads((clips_build / "manifest.json").read_text())
    assert f"| dropped (rejects) | all | {manifest['rejects']} |" in text
    # every limit the quality stage ran with, though the config wrote none of them
    quality = re.search(r"^- quality: (.*)$", text, re.M).group(1)
    for key, value in Thresholds().model_dump().items():
        if value is not None:
            assert f"{key}={value}" in quality
    assert re.search(r"^- shots: min_len_s=", text, re.M) and re.search(r"^- probe: min_frames=", text, re.M)
    assert "max_side" not in text[text.index("Thresholds in force"):text.index("### Teachers")]   # a resize, no limit
    # no teacher ran: no sentence says one did, and no empty LLaMA-Factory command
    assert "written by the teachers above" not in text and "No model wrote any of this data" in text
    assert "No teacher ran in this build" in text and "--dataset \n" not in text


def test_card_thresholds_keep_written_values_and_add_the_defaults():
    from vdata.hub import _thresholds

    out = _thresholds([("quality", {"thresholds": {"brightness_min": 5}}), ("frames", {"max_side": 448}),
                       ("unknown_stage", {"score_min": 0.3, "max_tokens": 9})])
    assert "brightness_min=5," in out["quality"] and "sharpness_min=30.0" in out["quality"]
    assert "frames" not in out                                   # max_frames / max_side pick and size frames
    assert out["unknown_stage"] == "score_min=0.3"               # as written where the stage is not known


def test_card_of_a_manifest_without_its_config_lists_the_stages_and_claims_no_threshold(clips_build, tmp_path):
    """A build from a config made in Python without its text records no `config_text`."""
    bare = _copy(clips_build, tmp_path / "bare")
    manifest = json.loads((bare / "manifest.json").read_text())
    (bare / "manifest.json").write_text(json.dumps({**manifest, "config_text": ""}))
    text = Path(write_card(str(bare), str(tmp_path / "README.md"))).read_text()
    for i, stage in enumerate(("probe", "shots", "quality", "frames"), 1):
        assert f"| {i} | {stage} | not recorded |" in text
    assert "Thresholds in force" not in text and "thresholds its stages ran with are not known" in text


# --- 2. a build that dropped nothing ----------------------------------------------------------------

def test_a_build_that_dropped_nothing_still_has_a_loadable_rejects_config(clean_build, tmp_path):
    import datasets

    reject_features = datasets.Features.from_arrow_schema(R.REJECT_SCHEMA)
    for step in ("build", "card"):   # the card `vdata build` writes, then the one `vdata card` writes
        if step == "card":
            write_card(str(clean_build))
        card = (clean_build / "README.md").read_text()
        configs = {c["config_name"]: c for c in _front_matter(card)["configs"]}
        assert set(configs) == {"clips", "rejects"}, step
        cache = str(tmp_path / f"hf-{step}")
        rejects = datasets.load_dataset(str(clean_build), "rejects", split="train", streaming=True, cache_dir=cache)
        assert rejects.features == reject_features and list(rejects) == []
        kept = datasets.load_dataset(str(clean_build), cache_dir=cache)   # the default config is untouched
        assert sum(len(kept[s]) for s in kept) == json.loads((clean_build / "manifest.json").read_text())["rows"]
    assert "No item was dropped. The `rejects` config is an empty table" in card


# --- 2b. a build that kept nothing -----------------------------------------------------------------

def test_a_build_that_kept_nothing_never_serves_its_rejects_as_the_data(rejected_build, tmp_path):
    import datasets

    manifest = json.loads((rejected_build / "manifest.json").read_text())
    clip_features = None
    for step in ("build", "card"):   # the card `vdata build` writes, then the one `vdata card` writes
        if step == "card":
            res = CliRunner().invoke(card_cmd, [str(rejected_build)])
            assert res.exit_code == 0, res.output
        card = (rejected_build / "README.md").read_text()
        configs = _front_matter(card)["configs"]
        # the kept table is the default, empty; the rejects stay a config of their own
        assert [c["config_name"] for c in configs] == ["clips", "rejects"] and configs[0].get("default"), step
        cache = str(tmp_path / f"hf-{step}")
        with pytest.raises(ValueError, match="corresponds to no data"):   # empty, never the rejects as train
            datasets.load_dataset(str(rejected_build), cache_dir=cache)
        kept = datasets.load_dataset(str(rejected_build), split="train", streaming=True, cache_dir=cache)
        assert list(kept) == [] and R.CLIP_ID in kept.features and "reason" not in kept.features
        clip_features = clip_features or kept.features
        assert kept.features == clip_features   # the same table whichever wrote the card
        rejects = datasets.load_dataset(str(rejected_build), "rejects", split="train", cache_dir=cache)
        assert len(rejects) == manifest["rejects"]
    assert f"| dropped (rejects) | all | {manifest['rejects']} |" in card
    # an export says why there is nothing to export, not that this is no build
    res = CliRunner().invoke(export_cmd, [str(rejected_build), "--format", "parquet", "--dest", str(tmp_path / "x")])
    assert res.exit_code == 2 and "every row was rejected" in res.output and "quality:" in res.output, res.output


# --- 3. an interrupted build ------------------------------------------------------------------------

def test_card_and_export_refuse_a_build_without_manifest(clips_build, tmp_path):
    """What kill -9 leaves: committed parts and their ledger, no manifest.json (the build writes it last)."""
    killed = _copy(clips_build, tmp_path / "killed")
    for name in ("manifest.json", "README.md"):
        (killed / name).unlink()
    res = CliRunner().invoke(card_cmd, [str(killed)])
    assert res.exit_code == 2 and "no manifest.json" in res.output and "not a finished build" in res.output
    assert not (killed / "README.md").exists()
    res = CliRunner().invoke(export_cmd, [str(killed), "--format", "parquet", "--dest", str(tmp_path / "x")])
    assert res.exit_code == 2 and "no manifest.json" in res.output and not (tmp_path / "x").exists()
    with pytest.raises(UnfinishedBuild, match="no manifest.json") as e:
        export(str(killed), str(tmp_path / "y"), "llava")
    assert isinstance(e.value, ExportError)
    res = CliRunner().invoke(report_cmd, [str(killed)])                  # the refusal these now share
    assert res.exit_code != 0 and "no manifest.json" in res.output


# --- 4. a build folder that cannot be written -------------------------------------------------------

def test_a_path_in_the_way_is_one_clear_error_not_a_traceback(clips_build, tmp_path):
    blocked = _copy(clips_build, tmp_path / "blocked")
    (blocked / "README.md").unlink()
    (blocked / "README.md").mkdir()                                     # a folder where the card goes
    res = CliRunner().invoke(card_cmd, [str(blocked)])
    assert res.exit_code == 2 and res.output.strip() == (
        f"error: cannot write {blocked / 'README.md'} (Is a directory); give another file with --output")
    shutil.rmtree(blocked / "report_assets")
    (blocked / "report_assets").write_text("not a folder")               # a file where the plots go
    res = CliRunner().invoke(report_cmd, [str(blocked)])
    assert res.exit_code == 1 and res.output.strip() == f"Error: cannot write {blocked / 'report_assets'} (File exists)"


def _read_only_command(folder: Path, argv: list[str]) -> list[str] | None:
    """`argv` run with `folder` read-only: chmod where that binds (not root), else a read-only bind mount in
    a private mount namespace; None where neither is possible here."""
    if os.geteuid() != 0:   # files too: an existing README.md stays writable in a read-only folder
        for p in [folder, *folder.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        return argv
    probe = ["unshare", "-m", "--propagation", "private", "true"]
    if not shutil.which("unshare") or subprocess.run(probe, capture_output=True).returncode != 0:
        return None
    f = str(folder)
    script = f'mount --bind "{f}" "{f}" && mount -o remount,bind,ro "{f}" && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv]


@pytest.mark.parametrize("command,target", [("report", "report_assets"), ("card", "README.md")])
def test_a_read_only_build_folder_is_one_clear_error(clips_build, tmp_path, command, target):
    folder = _copy(clips_build, tmp_path / "ro")
    cli = [sys.executable, "-c", "from vdata.cli import main; main(prog_name='vdata')", command, str(folder)]
    argv = _read_only_command(folder, cli)
    if argv is None:
        pytest.skip("no way to make a folder read-only for root here (no unshare)")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    finally:   # writable again, for pytest to remove
        for p in [folder, *folder.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out, out
    reason = r"\((Read-only file system|Permission denied)\)"
    assert re.search(rf"cannot write {re.escape(str(folder))}/{target}\S* {reason}", out), out


def test_the_card_names_a_demo_teacher_whose_text_the_other_teachers_wrote_from(tmp_path):
    """Outside check h25 F12: at video scope the demo VLM's clip captions reach no kept row, only the writer's
    questions written from them: the card listed no demo teacher and said nothing of that noise."""
    from vdata.exporters.demo_build import write_demo_build

    build = Path(write_demo_build(str(tmp_path / "b"), media_dir=str(tmp_path / "media"), with_frames=False))
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["teachers"] = {**(manifest.get("teachers") or {}),
                            "captioner": {"model": "vdata-tiny-demo-vlm", "requests": 4}}
    (build / "manifest.json").write_text(json.dumps(manifest))
    text = Path(write_card(str(build), str(tmp_path / "README.md"))).read_text()
    limits = text.split("## Limitations", 1)[1].split("\n## ", 1)[0]
    assert "vdata-tiny-demo-vlm" in limits and "**noise**" in limits
    assert "The other teachers wrote from what the demo teachers wrote" in limits
