"""Config and input errors name the key path; unusable sources are skipped with a reason."""
from __future__ import annotations

import shutil

import pytest
import yaml

from .haystack_helpers import haystack_config
from vdata.haystack import build_haystack, load_haystack_config
from vdata.haystack.needles import load_needle_sets
from vdata.haystack.sources import load_sources
from vdata.schemas.config import ConfigError


def _error(path) -> str:
    with pytest.raises(ConfigError) as e:
        cfg = load_haystack_config(path)
        load_sources(cfg)
        load_needle_sets(cfg)
    return str(e.value)


def test_schema_errors_name_the_key(hs_root):
    msg = _error(haystack_config(hs_root, "e1", needles=[{"type": "image", "from": "needles/images/*.jpg",
                                                          "colour": "red"}]))
    assert "haystack.needles[0].colour: unknown key" in msg and "from," in msg and "from_" not in msg
    msg = _error(haystack_config(hs_root, "e2", lengths_s=[30, -5]))
    assert "haystack.lengths_s" in msg and "> 0" in msg
    msg = _error(haystack_config(hs_root, "e3", depths=[0.5, 1.5]))
    assert "haystack.depths" in msg and "[0, 1]" in msg
    msg = _error(haystack_config(hs_root, "e4", tasks=["retrieval", "needle_soup"]))
    assert "haystack.tasks[1]" in msg
    msg = _error(haystack_config(hs_root, "e5", needles=[{"type": "text", "from": "needles/phrases.txt"}]))
    assert "haystack.needles[0]" in msg and "phrases" in msg
    msg = _error(haystack_config(hs_root, "e6", sources={"globb": "videos/*.mp4"}))
    assert "haystack.sources[0].globb: unknown key" in msg
    msg = _error(haystack_config(hs_root, "e7", size=[641, 360]))
    assert "haystack.size" in msg and "even" in msg
    msg = _error(haystack_config(hs_root, "e8", needles=[{"type": "image", "from": "needles/images/*.jpg"},
                                                         {"type": "image", "from": "needles/images/*.jpg"}]))
    assert "names must be unique" in msg


def test_input_errors_name_the_key(hs_root, tmp_path):
    msg = _error(haystack_config(hs_root, "i1", needles=[{"type": "clip", "from": "needles/nothing/*.mp4"}]))
    assert "haystack.needles[0].from: no files match" in msg
    msg = _error(haystack_config(hs_root, "i2", sources={"glob": "nowhere/*.mp4"}))
    assert "haystack.sources[0].glob: no files match" in msg
    long_phrase = "A PHRASE FAR TOO LONG TO EVER FIT ON ONE LINE OF A SMALL FRAME " * 3
    msg = _error(haystack_config(hs_root, "i3", needles=[{"type": "text", "phrases": [long_phrase]}]))
    assert "haystack.needles[0].phrases" in msg and "too long" in msg
    dup = hs_root / "dup_images"
    dup.mkdir(exist_ok=True)
    shutil.copy(hs_root / "needles/images/red_square.jpg", dup / "red_square.jpg")
    (dup / "other.txt").write_text("blue circle\n")        # sidecar label of a second file ...
    shutil.copy(hs_root / "needles/images/blue_circle.jpg", dup / "other.jpg")
    shutil.copy(hs_root / "needles/images/yellow_star.jpg", dup / "blue_circle.jpg")   # ... clashing with this stem
    msg = _error(haystack_config(hs_root, "i4", needles=[{"type": "image", "from": "dup_images/*.jpg"}]))
    assert "haystack.needles[0]" in msg and "blue circle" in msg
    (tmp_path / "notes.yaml").write_text("haystack: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_haystack_config(tmp_path / "notes.yaml")


def test_bad_sources_are_skipped_with_reason(hs_root, tmp_path, bad_files):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(hs_root / "videos/bikes.mp4", mixed / "bikes.mp4")
    for name in ("empty", "truncated", "audio_only"):
        shutil.copy(bad_files[name], mixed / f"{name}.mp4")
    cfg = haystack_config(hs_root, "mixed", sources={"glob": str(mixed / "*.mp4")}, tasks=["retrieval"],
                          needles_per_item=[1], needles=[{"type": "image", "from": "needles/images/*.jpg"}])
    result = build_haystack(cfg, render="manifest", out_dir=str(tmp_path / "o"))
    reasons = {s.path.split("/")[-1]: s.reason for s in result.skipped_sources}
    assert reasons == {"empty.mp4": "empty_file", "truncated.mp4": "truncated", "audio_only.mp4": "no_video_stream"}
    assert result.planned == 1
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    shutil.copy(bad_files["empty"], only_bad / "x.mp4")
    cfg = yaml.safe_load(open(cfg))
    cfg["haystack"]["sources"] = {"glob": str(only_bad / "*.mp4")}
    (hs_root / "onlybad.yaml").write_text(yaml.safe_dump(cfg))
    msg = _error(hs_root / "onlybad.yaml")
    assert "haystack.sources: no usable haystack video" in msg and "empty" in msg


def test_shipped_haystack_configs_plan():
    """configs/haystack_*.yaml and the example plan without errors and build every task."""
    from pathlib import Path

    from vdata.haystack import plan_haystack

    root = Path(__file__).resolve().parents[2]
    paths = sorted(root.glob("configs/haystack_*.yaml")) + [root / "examples/haystack/haystack.yaml"]
    assert len(paths) >= 2
    for path in paths:
        plan = plan_haystack(path)
        assert plan["items"] > 0 and plan["sources"] > 0, path
        assert {r["task"] for r in plan["table"]} == {"retrieval", "ordering", "counting", "multihop", "localization"}
        assert set(plan["needle_sets"]) == {"image", "text", "clip", "audio"}


def test_text_phrases_the_font_cannot_draw_are_refused(hs_root):
    """Characters the text font has no glyph for (emoji, CJK in DejaVu) would be drawn as empty boxes
    that OCR skips: refused at load, naming the key path and the phrase."""
    for phrase in ("EMOJI 🎉 PARTY", "日本語テキスト"):
        msg = _error(haystack_config(hs_root, "glyphs", needles=[
            {"type": "text", "phrases": ["PLAIN ASCII ONE", "Café Crème Brûlée", phrase]}]))
        assert "haystack.needles[0].phrases" in msg and repr(phrase) in msg and "no glyph" in msg, msg


def test_text_phrases_the_ocr_cannot_read_are_refused_when_verifying(hs_root, tmp_path):
    """Greek and Cyrillic are drawn fine but the OCR model cannot write them, so every item would be
    dropped as "OCR found 0%": refused before rendering, saying what the OCR reads; without
    verification they are planned. Accented Latin is read (accents aside) and accepted."""
    from vdata.haystack import plan_haystack

    phrases = ["PLAIN ASCII ONE", "PLAIN ASCII TWO", "Café Crème Brûlée"]
    ok = haystack_config(hs_root, "latin", tasks=["retrieval"], needles_per_item=[1],
                         needles=[{"type": "text", "phrases": phrases + ["COPPER KETTLE 42"]}])
    assert plan_haystack(ok)["items"] == 1
    for phrase in ("ΑΛΦΑ ΒΗΤΑ", "ЗЕЛЁНЫЙ СЛОН", "!!! ???"):
        cfg = haystack_config(hs_root, "script", tasks=["retrieval"], needles_per_item=[1],
                              needles=[{"type": "text", "phrases": phrases + [phrase]}])
        with pytest.raises(ConfigError) as e:
            plan_haystack(cfg)
        msg = str(e.value)
        assert "haystack.needles[0].phrases" in msg and repr(phrase) in msg, msg
        if phrase != "!!! ???":
            assert "cannot read" in msg and "Latin letters and digits" in msg, msg
        with pytest.raises(ConfigError):
            build_haystack(cfg, out_dir=str(tmp_path / "v"))
        unverified = build_haystack(cfg, render="manifest", verify=False, out_dir=str(tmp_path / "m"))
        assert unverified.planned == 1
