"""Two small edge cases: a list of labels written as JSON text (a CSV cell) keeps "Cook, then serve" whole in
the labels stage, while a plain string is still split as documented; and `build_tiny_clip` / `vdata models
tiny-clip` refuse to replace a model of another family in the folder they are given."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.labels import LabelsConfig, LabelsStage, labels_of


def test_a_list_of_labels_keeps_a_label_with_a_comma_whole():
    given = ["Cook, then serve", "Plate the dish"]
    assert labels_of({"label": given}, ["label"]) == given                 # a JSON manifest's or HF list
    assert labels_of({"label": json.dumps(given)}, ["label"]) == given     # the same list in a CSV cell
    # a plain string: comma / semicolon / bar separated, as the stage documents
    assert labels_of({"label": "cooking; serving, plating|eating"}, ["label"]) == ["cooking", "serving", "plating",
                                                                                "eating"]
    assert labels_of({"label": "[draft] cooking, serving"}, ["label"]) == ["[draft] cooking", "serving"]   # no JSON

    stage = LabelsStage(LabelsConfig(match="all"), RunContext(output_dir=""))
    stage.setup()
    row = {R.SAMPLE_ID: "s1", R.TASK: "caption", R.QUESTION_TYPE: "description",
           R.ANSWER: "A chef cooks the pasta, then serves it.", R.SOURCE_META: json.dumps({"label": json.dumps(given)})}
    out = stage.process_row(row)
    assert isinstance(out, Reject) and out.reason == "label_missing"
    assert out.detail["labels"] == given and out.detail["found"] == ["Cook, then serve"], out.detail


def test_tiny_clip_refuses_to_replace_a_model_of_another_family(tmp_path):
    from vdata.cli import main
    from vdata.teachers.tiny_clip import ModelExists, build_tiny_clip

    folder = tmp_path / "model"
    build_tiny_clip(folder, "clip")
    config = (folder / "config.json").read_text()
    with pytest.raises(ModelExists) as e:
        build_tiny_clip(folder, "siglip")
    message = str(e.value)
    assert "tiny CLIP model (family clip), not siglip" in message and str(folder) in message
    assert "OTHER_DIR --family siglip" in message and "overwrite=True" in message
    assert (folder / "config.json").read_text() == config   # the CLIP is still there, untouched

    result = CliRunner().invoke(main, ["models", "tiny-clip", str(folder), "--family", "siglip"])
    assert result.exit_code == 1 and "already holds a tiny CLIP model" in result.output, result.output
    assert "--overwrite" in result.output and "Traceback" not in result.output
    replaced = CliRunner().invoke(main, ["models", "tiny-clip", str(folder), "--family", "siglip", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((folder / "config.json").read_text())["model_type"] == "siglip"
    build_tiny_clip(folder, "clip", overwrite=True)   # back, for the checks below
    assert (folder / "config.json").read_text() == config

    assert build_tiny_clip(folder, "clip") == folder   # the same family: reused
    build_tiny_clip(folder, "siglip", overwrite=True)   # on purpose
    assert json.loads((folder / "config.json").read_text())["model_type"] == "siglip"
    other = tmp_path / "not-clip"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    with pytest.raises(ModelExists, match="'qwen2_5_vl' model"):
        build_tiny_clip(other, "clip")
