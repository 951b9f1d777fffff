"""`vdata haystack` commands through click: plan, build (manifest mode), score, and config errors."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
from click.testing import CliRunner

from .haystack_helpers import haystack_config
from vdata.haystack.cli import haystack_cmd
from vdata.schemas import haystack as H


def test_plan_build_and_score(hs_root, tmp_path):
    cfg = haystack_config(hs_root, "cli", lengths_s=[24, 600], needles_per_item=[1, 2], out_dir=tmp_path / "o")
    runner = CliRunner()
    plan = runner.invoke(haystack_cmd, ["plan", str(cfg)])
    assert plan.exit_code == 0, plan.output
    assert "not built: ordering/image/n1: ordering needs at least 2 needles" in plan.output

    build = runner.invoke(haystack_cmd, ["build", str(cfg), "--render", "manifest", "--quiet"])
    assert build.exit_code == 0, build.output
    items = tmp_path / "o" / "items.parquet"
    rows = pq.read_table(items).to_pylist()
    assert len({r[H.ITEM_ID] for r in rows}) == 2 * (5 * 4 + 3 * 4)   # 2 lengths × (n=2 all tasks, n=1 three)
    assert not (tmp_path / "o" / "videos").exists()                   # manifest mode renders nothing

    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps({"question_id": r[H.QUESTION_ID], "prediction": "ABCD"[r[H.ANSWER_INDEX]]})
                               for r in rows))
    score = runner.invoke(haystack_cmd, ["score", str(items), str(preds)])
    assert score.exit_code == 0, score.output
    report = json.loads(score.output)
    assert report["score"] == 100.0 and set(report["by_length"]) == {"24s", "600s"}


def test_config_errors_exit_2_with_key_path(hs_root):
    cfg = haystack_config(hs_root, "clibad", needles=[{"type": "audio", "from": "needles/speech/*.wav", "style": "overlay"}])
    result = CliRunner().invoke(haystack_cmd, ["build", str(cfg)])
    assert result.exit_code == 2
    assert "haystack.needles[0]" in result.output and "audio needles have no on-screen style" in result.output


def test_plan_lists_skipped_sources(hs_root, tmp_path, bad_files):
    """`plan` says which sources it skipped and why, as `build` does."""
    import shutil

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(hs_root / "videos/bikes.mp4", mixed / "bikes.mp4")
    for name in ("truncated", "audio_only"):
        shutil.copy(bad_files[name], mixed / f"{name}.mp4")
    cfg = haystack_config(hs_root, "cliskip", sources={"glob": str(mixed / "*.mp4")}, tasks=["retrieval"],
                          needles_per_item=[1], needles=[{"type": "image", "from": "needles/images/*.jpg"}])
    plan = CliRunner().invoke(haystack_cmd, ["plan", str(cfg)])
    assert plan.exit_code == 0, plan.output
    skipped = [line for line in plan.output.splitlines() if line.startswith("skipped source")]
    assert len(skipped) == 2, plan.output
    assert any("truncated.mp4" in line and "(truncated)" in line for line in skipped)
    assert any("audio_only.mp4" in line and "(no_video_stream)" in line for line in skipped)
