"""h26 F5 / F12: `vdata rethreshold`.

F5: `--write-to DIR` keeps the build's split layout (`<level>/*-train.parquet`, `*-test.parquet`, the clips
table by split) with a card and a manifest, so DIR loads with `datasets.load_dataset` and `vdata export`
reads it; the held-out test rows never land in the train file.
F12: a --set threshold on a score column that is null on every row is refused (it would test nothing);
when only some rows lack the score, the result says how many, and that they are kept.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from test_rethreshold import config_text, sample, write_build

from vdata.cli import main
from vdata.pipelines.rethreshold import rethreshold_dataset
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError


def _split_build(tmp_path: Path) -> tuple[str, set[str], str]:
    """The demo build with its parts filed by split as `vdata build` files them: the first video's rows in
    `*-test.parquet`, the others in `*-train.parquet` (samples and clips alike). One train clip is blurry.
    Returns (build, the test split's sample ids, the blurry clip)."""
    from vdata.exporters.demo_build import write_demo_build

    out = write_demo_build(str(tmp_path / "demo"))
    samples = pq.read_table(next(Path(out, "samples").glob("*.parquet")))
    held_out = sorted(set(samples[R.VIDEO_ID].to_pylist()))[0]
    train_clips = [c for c, v in zip(samples[R.CLIP_ID].to_pylist(), samples[R.VIDEO_ID].to_pylist())
                   if c and v != held_out]
    blurry = train_clips[0]
    sharp = [None if c is None else (10.0 if c == blurry else 400.0) for c in samples[R.CLIP_ID].to_pylist()]
    at = samples.schema.get_field_index(R.Q_SHARPNESS)
    samples = samples.set_column(at, samples.schema.field(at), pa.array(sharp, samples.schema.field(at).type))
    for folder, table in (("samples", samples), ("clips", pq.read_table(next(Path(out, "clips").glob("*.parquet"))))):
        for part in Path(out, folder).glob("*.parquet"):
            part.unlink()
        is_test = pc.equal(table[R.VIDEO_ID], held_out)
        pq.write_table(table.filter(is_test), Path(out, folder, "part-x-00000-test.parquet"))
        pq.write_table(table.filter(pc.invert(is_test)), Path(out, folder, "part-x-00000-train.parquet"))
    test_ids = {s for s, v in zip(samples[R.SAMPLE_ID].to_pylist(), samples[R.VIDEO_ID].to_pylist()) if v == held_out}
    return out, test_ids, blurry


def test_write_to_keeps_the_splits_and_loads_as_a_dataset(tmp_path):
    import datasets

    out, test_ids, blurry = _split_build(tmp_path)
    dest = tmp_path / "strict"
    result = rethreshold_dataset(out, {"sharpness_min": "100"}, write_to=str(dest))
    assert result.dropped["blurry"] > 0 and result.kept == result.rows - result.dropped["blurry"]

    # the build's layout: kept rows by split, the clips table by split, rejects, manifest, card
    assert sorted(p.name for p in (dest / "samples").iterdir()) == ["part-rethreshold-test.parquet",
                                                                    "part-rethreshold-train.parquet"]
    train = pq.read_table(dest / "samples" / "part-rethreshold-train.parquet")
    test = pq.read_table(dest / "samples" / "part-rethreshold-test.parquet")
    assert set(test[R.SAMPLE_ID].to_pylist()) == test_ids            # the held-out rows stay held out
    assert not test_ids & set(train[R.SAMPLE_ID].to_pylist())
    assert blurry not in train[R.CLIP_ID].to_pylist()
    assert train.num_rows + test.num_rows == result.kept
    for split, table in (("train", train), ("test", test)):
        clips = pq.read_table(dest / "clips" / f"part-rethreshold-{split}.parquet")
        assert set(clips[R.CLIP_ID].to_pylist()) == {c for c in table[R.CLIP_ID].to_pylist() if c}
    assert (dest / "README.md").read_text().startswith("---\nconfigs:")
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["derived_from"]["build"] == str(Path(out).resolve())
    assert manifest["derived_from"]["settings"] == {"quality.sharpness_min": 100.0}
    assert manifest["rows"] == result.kept and manifest["level"] == "samples"

    cache = str(tmp_path / "hf")   # datasets caches a local folder by its name: keep it to this test
    ds = datasets.load_dataset(str(dest), cache_dir=cache)
    assert {k: v.num_rows for k, v in ds.items()} == {"train": train.num_rows, "test": test.num_rows}
    assert set(ds["test"]["sample_id"]) == test_ids
    clips_ds = datasets.load_dataset(str(dest), "clips", cache_dir=cache)
    assert set(clips_ds) == {"train", "test"}
    rejects = datasets.load_dataset(str(dest), "rejects", cache_dir=cache)["train"]
    mine = [r for r in rejects if r["reason"] == "blurry" and "rethreshold" in r["message"]]
    assert len(mine) == result.dropped["blurry"] and {r["clip_id"] for r in mine} == {blurry}

    # a build folder of its own: rethreshold starts from the settings applied here, export reads it
    again = rethreshold_dataset(str(dest), {"sharpness_min": "50"})
    assert (again.rows, again.kept, again.loosened) == (result.kept, result.kept, ["quality.sharpness_min"])
    assert again.changes == [("quality.sharpness_min", 100.0, 50.0)]
    res = CliRunner().invoke(main, ["export", str(dest), "--format", "sharegpt", "--dest", str(tmp_path / "sg"),
                                    "--media", "none"])
    assert res.exit_code == 0, res.output
    records = [r for f in (tmp_path / "sg").glob("*.json") if f.name != "dataset_info.json"
               for r in json.loads(f.read_text())]
    assert len(records) == result.kept


def test_write_to_replaces_its_own_output_and_refuses_other_folders(tmp_path):
    out, _, _ = _split_build(tmp_path)
    dest = tmp_path / "strict"
    rethreshold_dataset(out, {"sharpness_min": "100"}, write_to=str(dest))
    # again with nothing dropped: the earlier output is replaced as a whole (no stale rejects part)
    result = rethreshold_dataset(out, {"sharpness_min": "5"}, write_to=str(dest))
    assert result.dropped == {} and not list((dest / "rejects").glob("part-rethreshold*"))
    assert json.loads((dest / "manifest.json").read_text())["rows"] == result.rows
    # the one mixed file older versions wrote (and their clips/) is replaced too
    old = tmp_path / "old"
    (old / "clips").mkdir(parents=True)
    for f in (old / "part-rethreshold.parquet", old / "clips" / "part-rethreshold.parquet"):
        f.write_bytes(b"PAR1")
    rethreshold_dataset(out, {}, write_to=str(old))
    assert not (old / "part-rethreshold.parquet").exists() and (old / "samples" / "part-rethreshold-test.parquet").exists()
    assert sorted(p.name for p in (old / "clips").iterdir()) == ["part-rethreshold-test.parquet",
                                                                 "part-rethreshold-train.parquet"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="holds other files"):
        rethreshold_dataset(out, {}, write_to=str(mine))
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


# --- F12 ------------------------------------------------------------------------------------------------

def _watermark_build(tmp_path: Path, scores: list) -> Path:
    rows = []
    for i, score in enumerate(scores):
        row = {k: v for k, v in sample(f"c{i}", "caption").items() if k not in R.SAMPLE_COLUMNS and not k.startswith("v_")}
        row.update({R.CLIP_ID: f"v0_{i:07d}_{i + 1:07d}", R.Q_WATERMARK: score, R.Q_TEXT_SIMILARITY: None})
        rows.append(row)
    text = config_text([{"clip_embed": {"model": "openai/clip-vit-base-patch32", "drop_below": False}}])
    return write_build(tmp_path / "clips-build", "clips", rows, text)


def test_a_threshold_on_a_score_no_row_has_is_refused(tmp_path):
    out = _watermark_build(tmp_path, [None, None, None])
    with pytest.raises(ConfigError, match=r"clip_embed.watermark_max.*q_watermark has no score on any of the 3 "
                                          r"clips.*watermark_head.*would test nothing"):
        rethreshold_dataset(str(out), {"watermark_max": "0.1"})
    res = CliRunner().invoke(main, ["rethreshold", str(out), "--set", "watermark_max=0.1",
                                    "--set", "text_similarity_min=0.5"])
    assert res.exit_code == 2
    assert "q_watermark" in res.output and "q_text_similarity" in res.output and "dropped" not in res.output
    # disabling a threshold, or leaving it as the build had it, is no test of the empty column
    assert rethreshold_dataset(str(out), {"watermark_max": None}).kept == 3


def test_rows_without_the_score_are_counted_and_kept(tmp_path, caplog):
    out = _watermark_build(tmp_path, [0.9, None, 0.05])
    with caplog.at_level("WARNING", logger="vdata"):
        result = rethreshold_dataset(str(out), {"watermark_max": "0.1"})
    assert (result.kept, result.dropped) == (2, {"watermark": 1})
    assert result.notes == ["clip_embed.watermark_max: 1 of 3 clips have no q_watermark (the clip_embed stage did "
                            "not score them); they are kept, as the stage keeps them"]
    assert result.notes[0] in caplog.text
