"""The llava export's `video_token` reaches it from a recipe's `output.exports` entry and from `vdata export`,
and is checked when the config is read (Video-STaR's Video-LLaVA trainer needs `<video>`; the default stays
`<image>`)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from vdata.exporters.cli import export_cmd
from vdata.exporters.demo_build import write_demo_build
from vdata.schemas.config import ExportSpec

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "recipes"


def test_video_star_recipe_exports_llava_with_the_video_token():
    exports = yaml.safe_load((CONFIGS / "video_star.yaml").read_text())["output"]["exports"]
    specs = [ExportSpec.model_validate(e) for e in exports]
    assert [(s.format, s.video_token) for s in specs] == [("llava", "<video>")]


def test_video_token_is_refused_at_config_time_where_no_exporter_takes_it():
    assert ExportSpec.model_validate({"format": "llava"}).video_token is None   # default: the exporter's <image>
    with pytest.raises(ValidationError, match="video_token"):
        ExportSpec.model_validate({"format": "sharegpt", "video_token": "<video>"})
    with pytest.raises(ValidationError):
        ExportSpec.model_validate({"format": "llava", "video_token": "<vid>"})


def test_vdata_export_video_token_option(tmp_path):
    build = write_demo_build(str(tmp_path / "build"), media_dir=str(tmp_path / "media"), with_frames=False)
    res = CliRunner().invoke(export_cmd, [build, "--format", "llava", "--dest", str(tmp_path / "out"),
                                          "--video-token", "<video>"])
    assert res.exit_code == 0, res.output
    turns = [r["conversations"][0]["value"] for f in (tmp_path / "out").glob("*.json")
             for r in json.loads(f.read_text())]
    assert turns and all(t.startswith("<video>\n") for t in turns)
    # another format with it is a usage error, not a TypeError traceback (outside check h26 F15)
    res = CliRunner().invoke(export_cmd, [build, "--format", "sharegpt", "--dest", str(tmp_path / "sg"),
                                          "--video-token", "<video>"])
    assert res.exit_code == 2 and "--format llava only" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "sg").exists()
