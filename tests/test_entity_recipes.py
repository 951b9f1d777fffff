"""The cross-clip entity recipes (`mr_video`, `storyteller_lite`) built on real media with the demo teachers.

The media is a narrated story (vdata.media.narrated's `errand`: espeak-ng speech over hard cuts) in which
Maria and the red car come back clip after clip; Whisper tiny.en transcribes it. On this CPU-only machine
the demo VLM is random, so its captions carry nothing a name could attach to: the builds here caption from
the speech instead (`caption.use_frames: false`: SmolLM2-135M writes each clip's description from its
transcript), and everything else runs as the recipe ships it. With a 135M writer the tests check structure,
consistency and provenance, never wording: the entity table is non-empty, every name in it is backed by
evidence from the clips it lists, the renamed captions use the table's names, and (storyteller_lite) the
QA that survives was checked against the description alone while every dropped item has its reason.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import labelled_set as L
from test_recipes import CONFIGS, check_release_format, runnable, samples_and_exports
from conftest import no_ray
from vdata.schemas import records as R

pytestmark = [pytest.mark.recipes, pytest.mark.slow,
              pytest.mark.skipif(not L.have_smollm(), reason="SmolLM2 is not installed (make setup)")]


@pytest.fixture(scope="module")
def errand(tmp_path_factory) -> tuple[str, list]:
    """The narrated story rendered once: (path, [(start_s, end_s, sentence) per scene])."""
    from vdata.media.narrated import have_espeak, render_narrated, script

    if not have_espeak():
        pytest.skip("espeak-ng not installed (scripts/setup.sh installs it)")
    path = str(tmp_path_factory.mktemp("errand") / "narrated_errand.mp4")
    return path, render_narrated(path, script("errand"))


def speech_config(name: str, tmp_path: Path, video: str, smollm) -> Path:
    """The recipe on the story video, its teachers on the shared SmolLM2 server, captions from speech."""
    data = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    data["output"]["dir"] = str(tmp_path / "out")
    data["input"] = [{"path": video}]
    teacher = L.openai_teacher(smollm, max_concurrency=2)
    data["teachers"] = {t: teacher for t in data["teachers"]}
    for stage in data["stages"]:
        if "caption" in stage:
            stage["caption"]["use_frames"] = False
        if "shots" in stage:   # the story's scenes are 4 s long: one clip each, as the renderer cut them
            stage["shots"]["min_len_s"] = 1.0
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", (text or "").lower()))


def check_entity_table(clips: list[dict]) -> list[dict]:
    """The table every clip row of the video carries: one entry per name, each listed clip backed by
    evidence from that clip (a caption mention or the transcript), each caption mention really in it."""
    table = clips[0][R.ENTITIES]
    assert table and all(c[R.ENTITIES] == table for c in clips)
    by_id = {c[R.CLIP_ID]: c for c in clips}
    names = [e["name"] for e in table]
    assert len(names) == len(set(names)), names
    for e in table:
        assert e["kind"] in ("person", "animal", "object") and e["aliases"]
        assert set(e["clip_ids"]) == {ev["clip_id"] for ev in e["evidence"]}, e
        for ev in e["evidence"]:
            clip = by_id[ev["clip_id"]]
            source = clip[R.TRANSCRIPT_TEXT] if ev["source"] == "transcript" else clip[R.CAPTION]
            assert ev["source"] in ("caption", "transcript") and ev["text"].lower() in source.lower(), (ev, source)
    return table


@pytest.fixture(scope="module")
def mr_video(errand, smollm, tmp_path_factory):
    no_ray()   # built in process, as a fresh `vdata build` of a few videos runs
    from vdata.pipelines.runner import build
    from vdata.schemas.config import load_config

    runnable("mr_video")
    tmp = tmp_path_factory.mktemp("mr_video")
    result = build(load_config(speech_config("mr_video", tmp, errand[0], smollm)), progress=False)
    assert result.rows > 0, result.rejects_by_reason
    return tmp / "out", result


def test_mr_video_names_maria_and_the_red_car_across_clips(mr_video, errand):
    import pyarrow.dataset as pads

    out, _ = mr_video
    clips = sorted(pads.dataset(str(out / "clips"), format="parquet").to_table().to_pylist(),
                   key=lambda r: r[R.START_S])
    assert len(clips) == len(errand[1]) == 3, [(c[R.START_S], c[R.END_S]) for c in clips]
    for c in clips:
        print(f"\n[mr_video] {c[R.TRANSCRIPT_TEXT]!r}\n  caption: {c[R.CAPTION]!r}\n  renamed: {c[R.CAPTION_RENAMED]!r}")
    table = check_entity_table(clips)
    print("[mr_video] entities:", [(e["name"], e["kind"], len(e["clip_ids"])) for e in table])
    by_name = {e["name"]: e for e in table}
    ids = [c[R.CLIP_ID] for c in clips]
    # Maria is said in all three clips, the red car in the first and the last: each one entity over its clips
    maria = by_name["Maria"]
    assert maria["kind"] == "person" and maria["clip_ids"] == ids
    car = next(e for e in table if "car" in e["name"].split())
    assert {ids[0], ids[2]} <= set(car["clip_ids"]) and car["kind"] == "object"
    for c in clips:
        assert c[R.CAPTION] and c[R.CAPTION_RENAMED]
        # a renamed caption only ever swaps a mention for its entity's name: what it adds are table names
        added = _words(c[R.CAPTION_RENAMED]) - _words(c[R.CAPTION])
        assert added <= {w for e in table for w in _words(e["name"])}, added


def test_mr_video_parquet_export_loads_with_the_entity_columns(mr_video, tmp_path):
    """Release format: the Parquet export as `datasets.load_dataset` opens it (one subset, `captions`: a
    captioned clip build), the entity table typed as the schema's nested list of structs."""
    import datasets

    out, _ = mr_video
    export = str(out / "exports" / "parquet")
    assert datasets.get_dataset_config_names(export) == ["captions"]
    ds = datasets.load_dataset(export, "captions", cache_dir=str(tmp_path / "hf"))
    rows = [r for split in ds.values() for r in split]
    assert rows and all(r[R.ENTITIES] and r[R.CAPTION_RENAMED] for r in rows)
    feature = next(iter(ds.values())).features[R.ENTITIES]
    assert set(feature.feature) == {"name", "kind", "aliases", "clip_ids", "evidence"}
    assert {e["name"] for e in rows[0][R.ENTITIES]} >= {"Maria"}


def test_storyteller_lite_keeps_only_qa_the_description_supports(errand, smollm, tmp_path, in_process):
    import pyarrow.dataset as pads

    from vdata.pipelines.runner import build
    from vdata.schemas.config import load_config

    recipe = runnable("storyteller_lite")
    result = build(load_config(speech_config("storyteller_lite", tmp_path, errand[0], smollm)), progress=False)
    out = tmp_path / "out"
    print("\n[storyteller_lite] rows", result.rows, "rejects", result.rejects_by_reason)
    manifest = json.loads(Path(result.manifest_path).read_text())
    by_stage = {s["stage"]: s for s in manifest["stages"]}
    assert by_stage["caption"]["rows_out"] == 3 and by_stage["entities"]["rows_out"] == 3
    rejects = pads.dataset(str(out / "rejects"), format="parquet").to_table().to_pylist() \
        if (out / "rejects").exists() else []
    assert all(r["reason"] and r["message"] and r["stage"] for r in rejects)
    assert result.rows > 0, result.rejects_by_reason
    samples, _ = samples_and_exports(out)
    for s in samples:
        print(f"[storyteller_lite] Q: {s[R.QUESTION]!r}\n  A: {s[R.ANSWER]!r}\n  caption: {s[R.CAPTION]!r}")
        # the description the QA was checked against is the renamed one, and it carried the story's names
        assert s[R.CAPTION] == s[R.CAPTION_RENAMED] and s[R.ENTITIES]
        assert s[R.VIDEO_CAPTION]
        # written answer first from what is said, then checked from the description alone: claims supported,
        # none refuted
        assert s[R.TASK] == "open_qa" and s[R.QUESTION_TYPE] == "speech" and "?" in s[R.QUESTION]
        assert s[R.V_STATUS] == R.STATUS_VERIFIED and s[R.V_REFUTED_CLAIMS] == 0 and s[R.V_SUPPORTED_RATIO] >= 0.5
        assert any(c["verdict"] == "supported" for c in s[R.V_CLAIMS])
    assert "Maria" in {e["name"] for e in samples[0][R.ENTITIES]}
    for fmt in {e["format"] for e in recipe.data["output"]["exports"]}:
        assert check_release_format(fmt, out / "exports" / fmt) > 0
