"""`vdata push` of a build that holds videos out (`output.splits`): no held-out row in a training file.

A real samples build split by video (tests/test_hf_layout.py's `samples_dir`: label_mcq samples, train and
test videos), pushed to the local Hub stand-in (tests/fakehub.py) in every layout; what a user downloads
is read back with `datasets.load_dataset` and as the files trainers and lmms-eval read.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fakehub import FakeHub
from test_hf_layout import samples_dir, seed, videos  # noqa: F401  (fixtures: the split build)
from test_hub import _front_matter, online, token  # noqa: F401  (fixtures: the Hub token, offline mode off)

from vdata.exporters import open_build
from vdata.schemas import records as R


def _by_split(build_dir: str, column: str) -> dict[str, set]:
    """{split: the values of `column` on that split's rows} of the build."""
    build = open_build(build_dir)
    values = build.read_table([column]).column(column).to_pylist()
    out: dict[str, set] = {}
    for split, value in zip(build.row_splits(), values):
        out.setdefault(split, set()).add(value)
    return out


def _push(build_dir: str, repo: str, token: str, tmp_path, **kw) -> tuple[Path, list[str]]:
    """Push to the stand-in; the downloaded snapshot and the lines push logged."""
    from vdata.hub import push

    said: list[str] = []
    with FakeHub(token) as hub:
        push(build_dir, repo, endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "stage"),
             log=said.append, **kw)
        assert hub.unexpected == []
        snap = tmp_path / "snap"
        hub.write_snapshot(repo, snap)
    return snap, said


def _load(snap: Path, config: str, tmp_path):
    import datasets

    return datasets.load_dataset(str(snap), config, cache_dir=str(tmp_path / "hf_cache"))


def _pushed_video_ids(snap: Path) -> set[str]:
    """The source videos whose frames went up: a clip cut from one is named `<video id>_<start>_<end>`."""
    return {p.stem.split("_")[0] for p in (snap / "videos").rglob("*.mp4")}


@pytest.mark.parametrize("fmt,config", [("llava", "multiple_choice"), ("sharegpt", "mcq")])
def test_a_training_layout_pushes_the_train_split_and_leaves_the_held_out_videos_out(
        samples_dir, fmt, config, token, tmp_path, online):  # noqa: F811
    samples = _by_split(samples_dir, R.SAMPLE_ID)
    clip_videos = _by_split(samples_dir, R.VIDEO_ID)
    assert samples["train"] and samples["test"]   # a split that came out empty would prove nothing
    snap, said = _push(samples_dir, f"me/{fmt}", token, tmp_path, format=fmt)
    configs = _front_matter((snap / "README.md").read_text())["configs"]
    assert [c["config_name"] for c in configs] == [config]
    assert [f["split"] for f in configs[0]["data_files"]] == ["train"]
    ds = _load(snap, config, tmp_path)
    assert set(ds) == {"train"} and set(ds["train"]["id"]) == samples["train"]
    # the held-out videos themselves stay off the Hub, not only their rows
    assert _pushed_video_ids(snap) == clip_videos["train"]
    if fmt == "sharegpt":   # what LLaMA-Factory reads: every file dataset_info.json names
        info = json.loads((snap / "dataset_info.json").read_text())
        ids = {r["id"] for e in info.values() for r in json.loads((snap / e["file_name"]).read_text())}
        assert ids == samples["train"]
    notes = [m for m in said if m.startswith("split:")]
    assert len(notes) == 1 and f"train {len(samples['train'])} (left out: test {len(samples['test'])})" in notes[0]
    assert "held-out videos were left out of the training files" in notes[0]


def test_an_lmms_eval_push_is_the_held_out_test_split(samples_dir, token, tmp_path, online):  # noqa: F811
    samples = _by_split(samples_dir, R.SAMPLE_ID)
    clip_videos = _by_split(samples_dir, R.VIDEO_ID)
    snap, said = _push(samples_dir, "me/bench", token, tmp_path, format="lmms-eval")
    configs = _front_matter((snap / "README.md").read_text())["configs"]
    assert {c["config_name"]: [f["split"] for f in c["data_files"]] for c in configs} == {"mcq": ["test"]}
    ds = _load(snap, "mcq", tmp_path)
    assert set(ds) == {"test"} and set(ds["test"]["question_id"]) == samples["test"]
    assert set(ds["test"]["videoID"]) == clip_videos["test"]
    notes = [m for m in said if m.startswith("split:")]
    assert len(notes) == 1 and f"test {len(samples['test'])} (left out: train {len(samples['train'])})" in notes[0]


def test_a_parquet_push_keeps_the_splits_apart_and_its_side_files_take_each_its_own(
        samples_dir, token, tmp_path, online):  # noqa: F811
    samples = _by_split(samples_dir, R.SAMPLE_ID)
    snap, said = _push(samples_dir, "me/all", token, tmp_path)
    ds = _load(snap, "mcq", tmp_path)   # the canonical rows: every split, each under its name
    assert {s: set(ds[s][R.SAMPLE_ID]) for s in ds} == samples
    info = json.loads((snap / "dataset_info.json").read_text())   # LLaMA-Factory trains on these
    assert info and {r["id"] for e in info.values() for r in json.loads((snap / e["file_name"]).read_text())} \
        == samples["train"]
    docs = pq.read_table(snap / "lmms_eval" / "mcq.parquet").column("question_id").to_pylist()
    assert set(docs) == samples["test"]   # lmms-eval scores these
    note = next(m for m in said if m.startswith("split:"))
    assert "LLaMA-Factory files train" in note and "lmms-eval tasks test" in note and "left out of the training" in note


def test_push_split_takes_the_splits_asked_for_in_every_file_and_says_so(samples_dir, token, tmp_path,
                                                                         monkeypatch, online):  # noqa: F811
    from click.testing import CliRunner

    from vdata.cli_hub import push_cmd
    from vdata.exporters.base import NothingToExport
    from vdata.hub import push

    samples = _by_split(samples_dir, R.SAMPLE_ID)
    monkeypatch.setenv("HF_TOKEN", token)
    with FakeHub(token) as hub:
        res = CliRunner().invoke(push_cmd, [samples_dir, "--repo", "me/held", "--format", "llava", "--split", "test",
                                            "--endpoint", hub.endpoint, "--staging", str(tmp_path / "stage")])
        assert res.exit_code == 0, res.output
        snap = tmp_path / "snap"
        hub.write_snapshot("me/held", snap)
    configs = _front_matter((snap / "README.md").read_text())["configs"]
    assert [f["split"] for c in configs for f in c["data_files"]] == ["test"]   # named for the rows it holds
    assert 'split="test")' in (snap / "README.md").read_text()   # and the card's loading example names it
    ds = _load(snap, "multiple_choice", tmp_path)
    assert set(ds) == {"test"} and set(ds["test"]["id"]) == samples["test"]
    assert "held-out videos ARE in the training files" in res.stderr
    # a split the build does not have: nothing is staged or uploaded, the error names the build's splits
    with pytest.raises(NothingToExport, match=r"no rows of split validation \(its splits: test, train\)"):
        push(samples_dir, "me/none", format="llava", endpoint="http://127.0.0.1:9", token=token,
             staging_dir=str(tmp_path / "none"), splits=["validation"])


def test_a_build_without_a_test_split_is_pushed_as_before():
    """Nothing held out: every row in every layout, no note. Train and validation only: the training files
    leave validation out, and the benchmark takes the test split it is made of, which is empty: the push
    refuses rather than label other rows `test` (outside check h26 F6); `--split validation` takes them."""
    from collections import Counter

    from vdata.hub import carried_splits, split_label, split_note

    unsplit = Counter(train=9)
    assert [carried_splits(unsplit, f) for f in ("parquet", "llava", "sharegpt", "lmms-eval")] == [None] * 4
    assert (split_label(unsplit, "llava", None), split_label(unsplit, "lmms-eval", None)) == ("train", "test")
    assert split_note(unsplit, {"llava": None}) is None
    no_test = Counter(train=9, validation=3)
    assert carried_splits(no_test, "sharegpt") == ["train"] and carried_splits(no_test, "lmms-eval") == ["test"]
    assert carried_splits(no_test, "lmms-eval", ["validation"]) == ["validation"]
    assert split_label(no_test, "lmms-eval", ["validation"]) == "validation"
    assert "training videos ARE in the benchmark (`--split validation` leaves them out)" in \
        split_note(no_test, {"lmms-eval": ["train", "validation"]})


def test_a_llava_card_counts_what_the_repo_holds_and_says_where_the_videos_are(
        samples_dir, token, tmp_path, online):  # noqa: F811
    """Outside check h26 F7 / L8: the llava records' `video` paths are relative to `videos/` (LLaVA-NeXT's
    `--video_folder`), not the repo root; the card's sizes are those of the train rows it holds."""
    samples = _by_split(samples_dir, R.SAMPLE_ID)
    snap, _ = _push(samples_dir, "me/llava", token, tmp_path, format="llava")
    card = (snap / "README.md").read_text()
    assert "relative to the repo root" not in card
    assert "--video_folder data/" in card and "/videos" in card and "relative to the `videos/` folder" in card
    files = [f for f in snap.glob("*.json") if not f.name.startswith(".")]   # not the push record
    records = [r for f in files for r in json.loads(f.read_text())]
    assert records and all((snap / "videos" / r["video"]).is_file() for r in records)
    assert not any((snap / r["video"]).is_file() for r in records)
    assert f"| kept samples | train | {len(samples['train'])} |" in card and "| kept samples | test |" not in card
    assert all(f"`{f.name}` (" in card and f"{len(json.loads(f.read_text()))} records)" in card for f in files)
