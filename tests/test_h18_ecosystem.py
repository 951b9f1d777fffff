"""h18's ecosystem findings: what a haystack benchmark's card (local and pushed) and report say (F10, F12),
and the local paths a pushed Parquet carried (F11). F13 (exports to object storage): test_h18_remote_export.py.

The benchmark folder is written directly (items.parquet, rejects.parquet, summary.json, manifest.json, a
video): what `vdata haystack build` leaves, without the minutes of a render."""
from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from fakehub import FakeHub

from vdata.exporters.demo_build import write_demo_build
from vdata.hub import push, write_card
from vdata.schemas import records as R


def _media(tmp_path_factory) -> str:
    d = tmp_path_factory.getbasetemp() / "vdata_demo_media"   # shared with test_hub / test_exporters
    d.mkdir(exist_ok=True)
    return str(d)


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory) -> str:
    return write_demo_build(str(tmp_path_factory.mktemp("h18build")), media_dir=_media(tmp_path_factory))


@pytest.fixture(scope="module")
def bench(tmp_path_factory, demo_build) -> Path:
    """2 items asked twice each (4 questions) over 2 videos; 3 items dropped (2 needle_leaked, 1
    needle_missing); an lmms_eval task folder as the build writes it."""
    from vdata.schemas import haystack as H

    root = tmp_path_factory.mktemp("h18bench") / "bench"
    (root / "videos").mkdir(parents=True)
    src = next(Path(_media(tmp_path_factory)).glob("*.mp4"))
    rows = []
    for i, task in enumerate(("retrieval", "counting")):
        shutil.copy(src, root / "videos" / f"item{i}.mp4")
        for rot in range(2):
            row = {f.name: None for f in H.ITEM_SCHEMA}
            row.update({"item_id": f"item{i}", "question_id": f"item{i}_r{rot}", "rotation": rot, "task": task,
                        "needle_type": "image", "video_path": f"videos/item{i}.mp4", "question": "Which picture?",
                        "options": ["a cat", "a dog"], "answer_index": rot, "answer": ["a cat", "a dog"][rot],
                        "haystack_length_s": 6.0, "verified": True})
            rows.append(row)
    pq.write_table(pa.Table.from_pylist(rows, schema=H.ITEM_SCHEMA), root / "items.parquet")
    drops = [("needle_leaked", "drop0", "image 'tv bars' at 1.92-2.92 s: also on screen at 8.00 s"),
             ("needle_leaked", "drop1", "image 'tv bars' at 4.00-5.00 s: also visible just outside its interval"),
             ("needle_missing", "drop2", "speech 'forty pies' at 9.12-11.82 s: ASR heard 40% of its words")]
    pq.write_table(pa.Table.from_pylist([{"stage": "haystack", "reason": r, "message": m, "detail": "[]",
                                          "sample_id": s} for r, s, m in drops], schema=R.REJECT_SCHEMA),
                   root / "rejects.parquet")
    (root / "summary.json").write_text(json.dumps({
        "items": 2, "questions": 4, "rejected": {"needle_leaked": 2, "needle_missing": 1},
        "skipped_cells": {"ordering/image/n1: ordering needs at least 2 needles": 1},
        "table": [{"task": "counting", "length_s": 6.0, "needle_type": "image", "items": 1, "questions": 2},
                  {"task": "retrieval", "length_s": 6.0, "needle_type": "image", "items": 1, "questions": 2}]}))
    (root / "run_report.json").write_text(json.dumps({"planned": 6, "kept": 2, "questions": 4,
                                                      "timings": {"wall_s": 12.5}}))
    (root / "manifest.json").write_text(json.dumps({"name": "needles", "config": {
        "name": "needles", "license": "mit", "haystack": {"verify": {"enabled": True}}}}))
    (root / "lmms_eval" / "needles").mkdir(parents=True)
    (root / "lmms_eval" / "needles" / "needles.yaml").write_text("task: needles\n")
    return root


@pytest.fixture
def online(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def _front_matter(text: str) -> dict:
    return yaml.safe_load(text.split("---\n", 2)[1])


def _says_the_counts(text: str) -> None:
    assert "2 item(s)" in text and "4 question(s)" in text
    assert "| kept items (one video each) | test | 2 |" in text and "| questions (rows) | test | 4 |" in text
    assert "| dropped items (rejects) | all | 3 |" in text and "No item was dropped" not in text
    assert "| haystack | needle_leaked | 2 |" in text and "| haystack | needle_missing | 1 |" in text
    assert "| retrieval | 1 | 2 |" in text and "| counting | 1 | 2 |" in text   # task: items, questions
    assert "### Pipeline" not in text                                             # no empty table


# --- F10: the card of a haystack benchmark ------------------------------------------------------------

def test_local_card_of_a_haystack_benchmark_says_items_questions_and_drops(bench, tmp_path):
    text = Path(write_card(str(bench), str(tmp_path / "README.md"))).read_text()
    _says_the_counts(text)
    meta = _front_matter(text)
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert configs["haystack"]["data_files"][0]["split"] == "test" and "rejects" in configs
    assert 'split="test"' in text
    assert "--include_path lmms_eval/needles" in text          # the task folder that is in this folder


def test_pushed_haystack_benchmark_is_the_test_split_and_its_card_is_true(bench, tmp_path, online):
    import datasets

    token = "hf_" + secrets.token_hex(16)
    with FakeHub(token) as hub:
        push(str(bench), "me/needles", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "stage"))
        snap = tmp_path / "snap"
        hub.write_snapshot("me/needles", snap)
    text = (snap / "README.md").read_text()
    _says_the_counts(text)
    configs = {c["config_name"]: c for c in _front_matter(text)["configs"]}
    assert all(d["split"] == "test" for c in configs.values() for d in c["data_files"])
    assert 'load_dataset("me/needles", "haystack", split="test")' in text
    assert list((snap / "data" / "haystack").glob("test-*.parquet"))
    ds = datasets.load_dataset(str(snap), "haystack", split="test", cache_dir=str(tmp_path / "c"))
    assert len(ds) == 4
    # the lmms-eval task goes up written for this repo (h18 F17; its checks: tests/haystack/test_haystack_push.py)
    assert configs["lmms_eval"]["default"] and "lmms_eval" in [p.name for p in snap.iterdir()]
    assert "lmms_eval/needles/" in text and "next to the items" not in text


# --- F12: the report of a haystack benchmark ----------------------------------------------------------

def test_report_of_a_haystack_benchmark_counts_items_questions_and_drops(bench):
    from click.testing import CliRunner

    from vdata.pipelines.report import report_cmd

    res = CliRunner().invoke(report_cmd, [str(bench)])
    assert res.exit_code == 0, res.output
    md = (bench / "report.md").read_text()
    assert "**items** 2" in md and "**questions** 4" in md and "**dropped items** 3" in md
    assert "| needle_leaked | 2 |" in md and "drop0: image 'tv bars' at 1.92-2.92 s" in md
    assert "| needle_missing | 1 |" in md and "ordering needs at least 2 needles" in md
    html = (bench / "report.html").read_text()
    assert "needle_missing" in html and "&#x27;tv bars&#x27;" in html and "–" not in html


# --- F11: no local path of the builder's machine in a pushed Parquet ---------------------------------

def test_pushed_parquet_names_sources_relative_to_the_input_folder(demo_build, tmp_path, online):
    build_rows = pq.read_table(os.path.join(demo_build, "samples")).to_pylist()
    local = {r[R.PATH] for r in build_rows} | {str(r[R.SOURCE_URI]).split("#")[0] for r in build_rows}
    assert all(os.path.isabs(p) for p in local)                 # the build itself keeps what its workers read
    token = "hf_" + secrets.token_hex(16)
    with FakeHub(token) as hub:
        push(demo_build, "me/rel", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "stage"))
        snap = tmp_path / "snap"
        hub.write_snapshot("me/rel", snap)
    parts = list((snap / "data").rglob("*.parquet"))
    assert parts
    for part in parts:
        t = pq.read_table(part)
        for col in (R.PATH, R.SOURCE_URI):
            if col not in t.column_names:
                continue
            for v in t.column(col).to_pylist():
                assert v and not os.path.isabs(v) and not v.startswith(".."), (part, col, v)
    root = os.path.commonpath([os.path.dirname(p) for p in local])
    row = pq.read_table(next(p for p in parts if R.PATH in pq.read_schema(p).names)).to_pylist()[0]
    assert os.path.isfile(os.path.join(root, row[R.PATH]))      # relative to the inputs' folder
