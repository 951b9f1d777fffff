"""A Hugging Face dataset input (`input: [{hf: {path, split, column}}]`) that cannot be opened as written is a
config error naming its key, from `vdata validate` (exit code 2) where that can be known without
downloading the dataset, and the same words from the build's ingest (outside check h9, 3c/3d: a path that
was neither a folder nor a Hub id, a Hub id offline, a split the saved dataset lacks and a missing column
all passed validate, then ended the build in a raw traceback from `datasets`).

Real parts: datasets written with `save_to_disk` and `to_parquet`, a video rendered by ffmpeg; the Hub is
never reached (HF_HUB_OFFLINE, set by conftest before `datasets` is imported, or an endpoint that refuses).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from vdata.cli import main
from vdata.media.ffmpeg import run_ffmpeg
from vdata.pipelines.ingest import discover
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hf_media") / "tiny.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "1", "-c:v", "libx264",
                "-pix_fmt", "yuv420p", str(path)])
    return path


def _config(tmp_path: Path, hf: dict) -> dict:
    return {"input": [{"hf": hf}], "output": {"dir": str(tmp_path / "out")}, "stages": [{"probe": {}}]}


def _validate(tmp_path: Path, hf: dict):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, hf)))
    return CliRunner().invoke(main, ["validate", str(path)])


def _ingest_error(tmp_path: Path, hf: dict) -> str:
    """What the build's ingest says of the same input (it opens the dataset through the same function)."""
    with pytest.raises(ConfigError) as raised:
        discover(parse_config(_config(tmp_path, hf)), str(tmp_path / "out" / "_media"))
    return str(raised.value)


def _assert_named_alike(tmp_path: Path, hf: dict, expected: str) -> None:
    result = _validate(tmp_path, hf)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert expected in _ingest_error(tmp_path, hf)


def test_a_path_that_is_neither_a_folder_nor_a_hub_id_is_named(tmp_path):
    _assert_named_alike(tmp_path, {"path": "../nonexist_ds", "split": "train", "column": "video"},
                        "input[0].hf.path: no such folder, and not a Hub dataset id: '../nonexist_ds'")


def test_a_hub_id_that_cannot_be_had_offline_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _assert_named_alike(tmp_path, {"path": "vdata-tests/no-such-dataset-h9"},
                        "input[0].hf.path: 'vdata-tests/no-such-dataset-h9' is not on the Hub or could not be "
                        "reached (offline: HF_HUB_OFFLINE is set")


def test_a_split_or_column_that_a_saved_dataset_lacks_is_named(tmp_path, tiny_video):
    import datasets

    video = tiny_video.read_bytes()
    splits = tmp_path / "splits"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"video": [video]})}).save_to_disk(str(splits))
    _assert_named_alike(tmp_path, {"path": str(splits), "split": "validation"},
                        "input[0].hf.split: the dataset has splits [train], not 'validation'")
    single = tmp_path / "single"
    datasets.Dataset.from_dict({"video": [video], "caption": ["a test pattern"]}).save_to_disk(str(single))
    _assert_named_alike(tmp_path, {"path": str(single), "column": "vid"},
                        "input[0].hf.column: dataset has no column 'vid' (columns: video, caption)")
    # as written, both pass, and the build's ingest writes the video once under _media
    for path in (splits, single):
        ok = _validate(tmp_path, {"path": str(path)})
        assert ok.exit_code == 0 and "valid" in ok.output, ok.output
    rows = discover(parse_config(_config(tmp_path, {"path": str(single)})), str(tmp_path / "out" / "_media"))
    assert len(rows) == 1 and Path(rows[0][R.PATH]).read_bytes() == video


def test_a_local_dataset_folder_is_checked_without_being_converted(tmp_path, tiny_video):
    """A folder of data files (not save_to_disk): validate lists them and reads the schema, so a split or a
    column it lacks is named there; a folder whose README declares several configs needs `name:`."""
    import datasets

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "clips").mkdir()
    (folder / "clips" / "tiny.mp4").write_bytes(tiny_video.read_bytes())
    datasets.Dataset.from_dict({"video": ["clips/tiny.mp4"], "caption": ["a test pattern"]}).to_parquet(
        str(folder / "train.parquet"))
    _assert_named_alike(tmp_path, {"path": str(folder), "split": "validation"},
                        "input[0].hf.split: the dataset has splits [train], not 'validation'")
    _assert_named_alike(tmp_path, {"path": str(folder), "column": "vid"},
                        "input[0].hf.column: dataset has no column 'vid' (columns: video, caption)")
    ok = _validate(tmp_path, {"path": str(folder), "split": "train[:1]"})   # a slice of a split it has
    assert ok.exit_code == 0 and "valid" in ok.output, ok.output
    rows = discover(parse_config(_config(tmp_path, {"path": str(folder)})), str(tmp_path / "out" / "_media"))
    assert [r[R.PATH] for r in rows] == [str(folder / "clips" / "tiny.mp4")]   # relative to the folder

    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("first", "second"):
        (configs / f"{name}.parquet").write_bytes((folder / "train.parquet").read_bytes())
    (configs / "README.md").write_text("---\nconfigs:\n- config_name: first\n  data_files: first.parquet\n"
                                       "- config_name: second\n  data_files: second.parquet\n---\n")
    _assert_named_alike(tmp_path, {"path": str(configs)},
                        "input[0].hf.name: the dataset has configs: name one: ValueError: Config name is missing. "
                        "Please pick one among the available configs: ['first', 'second']")
    _assert_named_alike(tmp_path, {"path": str(configs), "name": "third"},
                        "input[0].hf.name: 'third' does not name one of the dataset's configs")
    assert _validate(tmp_path, {"path": str(configs), "name": "second"}).exit_code == 0


def test_validate_leaves_an_online_hub_dataset_to_the_build(tmp_path):
    """Online, a well-formed Hub id is not looked up by validate (that would download its metadata, and
    its split and column need the data): here the Hub refuses every connection, and validate still passes."""
    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path, {"path": "vdata-tests/some-dataset", "column": "vid"})))
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT="http://127.0.0.1:9")   # an empty cache, a hub that refuses
    proc = subprocess.run([sys.executable, "-m", "vdata.cli", "validate", str(config)], capture_output=True,
                          text=True, timeout=300, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid" in proc.stdout
