"""A build directory is a Hugging Face `datasets` folder: `datasets.load_dataset(output_dir)` opens it.

Real builds (probe → shots → frames on rendered videos, real Ray Data), then the real `datasets` loader
on the build dir: it reads the kept rows by split (disjoint by video), decodes frames as images, leaves
`rejects/`, `_cache/` and `exports/` alone, and still does so after `vdata card` rewrites the card.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from conftest import no_ray
from vdata.media.hashing import content_id
from vdata.media.synth import Segment, render_segments
from vdata.pipelines.runner import build
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, SplitsConfig, parse_config

SOURCES = ("testsrc2", "smptebars", "mandelbrot", "rgbtestsrc", "testsrc", "color=c=0x2060c0")
TEST_SHARE = 0.5


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("hf_videos")
    paths = []
    for i, (a, b) in enumerate(list(zip(SOURCES, SOURCES[1:]))[:4]):
        path = str(d / f"v{i}.mp4")
        render_segments(path, [Segment(a, 1.5), Segment(b, 1.5)], size=(160, 96))
        paths.append(path)
    (d / "broken.mp4").write_bytes(b"this is not a video")   # a reject row
    return paths


@pytest.fixture(scope="module")
def seed(videos) -> int:
    """The first seed that puts these videos in both splits (a video's split depends only on its
    content id and the seed): a test split that came out empty would prove nothing."""
    ids = [content_id(v) for v in videos]
    return next(s for s in range(100) if len({SplitsConfig(test=TEST_SHARE, seed=s).split_of(i) for i in ids}) == 2)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory, videos, seed) -> str:
    no_ray()   # built in process, as a fresh `vdata build` of a few videos runs
    out = tmp_path_factory.mktemp("hf_build") / "out"
    cfg = parse_config({
        "name": "hf-layout", "input": [{"path": os.path.dirname(videos[0])}],
        "output": {"dir": str(out), "splits": {"test": TEST_SHARE, "seed": seed},
                   "exports": [{"format": "parquet", "media": "none"}]},   # exports/ holds other Parquet
        "stages": [{"probe": {}}, {"shots": {}}, {"frames": {"num_frames": 2}}]})
    result = build(cfg, progress=False)
    assert result.rows > 0 and result.rejects >= 1
    assert any(Path(out, "exports", "parquet").rglob("*.parquet")) and Path(out, "_cache").is_dir()
    return str(out)


def _load(path: str, tmp_path, *args):
    import datasets

    return datasets.load_dataset(path, *args, cache_dir=str(tmp_path / "hf_cache"))


def test_load_dataset_opens_the_build_dir_by_split_with_frames_as_images(build_dir, tmp_path, videos, seed):
    import datasets
    import pyarrow.dataset as pads
    from PIL import Image

    ds = _load(build_dir, tmp_path)
    assert set(ds) == {"train", "test"}
    kept = pads.dataset(os.path.join(build_dir, "clips"), format="parquet").to_table()
    assert sum(ds[s].num_rows for s in ds) == kept.num_rows   # the kept rows, nothing from exports/ or _cache/
    assert set(ds["train"].column_names) == set(kept.column_names)   # no export-only `video` column
    # frames decode as images; the other columns keep their Arrow types
    frames = ds["train"].features[R.FRAMES]
    assert isinstance(frames, datasets.List) and isinstance(frames.feature[R.FRAME_JPEG], datasets.Image)
    first = ds["train"][0][R.FRAMES][0]
    assert isinstance(first[R.FRAME_JPEG], Image.Image) and first[R.FRAME_JPEG].size == (160, 96)
    assert ds["train"].features[R.START_S] == datasets.Value("float64")
    # disjoint by video, every video in the split its seeded hash names
    by_split = {s: set(ds[s][R.VIDEO_ID]) for s in ds}
    assert by_split["train"] and by_split["test"] and not by_split["train"] & by_split["test"]
    assert by_split["train"] | by_split["test"] == {content_id(v) for v in videos}
    splits = SplitsConfig(test=TEST_SHARE, seed=seed)
    assert all(splits.split_of(v) == s for s, ids in by_split.items() for v in ids)


def test_rejects_load_as_their_own_config(build_dir, tmp_path):
    rejects = _load(build_dir, tmp_path, "rejects")["train"]
    assert "probe" in rejects["stage"] and all(rejects["reason"])
    assert any(u.endswith("broken.mp4") for u in rejects[R.SOURCE_URI])


def test_card_configs_name_the_local_files_also_after_vdata_card(build_dir, tmp_path):
    from click.testing import CliRunner

    from vdata.cli_hub import card_cmd

    def front_matter() -> dict:
        return yaml.safe_load(Path(build_dir, "README.md").read_text().split("---\n", 2)[1])

    before = front_matter()
    assert [c["config_name"] for c in before["configs"]] == ["clips", "rejects"]
    assert {f["split"]: f["path"] for f in before["configs"][0]["data_files"]} == {
        "train": "clips/*-train.parquet", "test": "clips/*-test.parquet"}
    res = CliRunner().invoke(card_cmd, [build_dir])
    assert res.exit_code == 0, res.output
    after = front_matter()
    assert after["configs"] == before["configs"] and after["dataset_info"] == before["dataset_info"]
    assert after["pretty_name"] == "hf-layout" and "## Loading" in Path(build_dir, "README.md").read_text()
    ds = _load(build_dir, tmp_path)
    assert set(ds) == {"train", "test"}


def test_rerun_keeps_the_assignment_and_the_card(build_dir, tmp_path, in_process, videos, seed):
    """A finished build run again writes nothing new; its card is refreshed, keeping its prose."""
    readme = Path(build_dir, "README.md")
    readme.write_text(readme.read_text() + "\nNotes kept across runs.\n")
    files = sorted(os.listdir(os.path.join(build_dir, "clips")))
    cfg = parse_config({
        "name": "hf-layout", "input": [{"path": os.path.dirname(videos[0])}],
        "output": {"dir": build_dir, "splits": {"test": TEST_SHARE, "seed": seed},
                   "exports": [{"format": "parquet", "media": "none"}]},
        "stages": [{"probe": {}}, {"shots": {}}, {"frames": {"num_frames": 2}}]})
    build(cfg, progress=False)
    assert sorted(os.listdir(os.path.join(build_dir, "clips"))) == files
    assert "Notes kept across runs." in readme.read_text()
    assert set(_load(build_dir, tmp_path)) == {"train", "test"}


def test_a_retried_video_leaves_no_empty_part_behind(tmp_path, in_process, videos):
    """A reject marked for retry (a broken link: the file may come back) is redone on every run. Its old
    part is emptied each time: it must go, with its ledger record, not stay as a file of one empty row
    group (`datasets` fails on the whole build with "BatchSize must be greater than 0")."""
    import pyarrow.parquet as pq

    src = tmp_path / "src"
    src.mkdir()
    os.symlink(videos[0], src / "good.mp4")
    os.symlink(tmp_path / "gone.mp4", src / "lost.mp4")
    out = tmp_path / "out"
    cfg = {"name": "retry", "input": [{"path": str(src)}], "output": {"dir": str(out)},
           "stages": [{"probe": {}}, {"shots": {}}]}
    for _ in range(3):
        build(parse_config(cfg), progress=False)
        parts = sorted(out.rglob("*.parquet"))
        assert parts and all(pq.ParquetFile(p).metadata.num_rows > 0 for p in parts), parts
        assert len(list((out / "_ledger").glob("*.json"))) == len(parts)   # one record per part, none stale
    rejects = _load(str(out), tmp_path, "rejects")["train"]
    assert rejects["reason"] == ["missing_file"] and rejects[R.SOURCE_URI][0].endswith("lost.mp4")
    assert sum(split.num_rows for split in _load(str(out), tmp_path).values()) > 0


def test_parquet_export_keeps_the_splits_and_types_frames_as_images(build_dir, tmp_path):
    """The `parquet` export (what `vdata push` uploads) has the build's splits per subset, and its
    card types frames as images."""
    import datasets

    ds = _load(os.path.join(build_dir, "exports", "parquet"), tmp_path, "clips")
    assert set(ds) == {"train", "test"}
    assert isinstance(ds["test"].features[R.FRAMES].feature[R.FRAME_JPEG], datasets.Image)
    local = _load(build_dir, tmp_path)
    assert {s: sorted(ds[s][R.CLIP_ID]) for s in ds} == {s: sorted(local[s][R.CLIP_ID]) for s in local}


def test_a_card_whose_yaml_is_broken_is_left_as_it_is(build_dir, tmp_path, caplog):
    import shutil

    from vdata.exporters.hf_local import refresh_card

    copy = tmp_path / "copy"
    shutil.copytree(build_dir, copy, ignore=shutil.ignore_patterns("_cache", "exports", "_media"))
    broken = "---\nconfigs: [clips\n---\nmy notes\n"
    (copy / "README.md").write_text(broken)
    assert refresh_card(str(copy)) is None
    assert (copy / "README.md").read_text() == broken and "not refreshed" in caplog.text
    (copy / "README.md").unlink()   # gone: written anew
    assert refresh_card(str(copy)) == str(copy / "README.md") and set(_load(str(copy), tmp_path)) == {"train", "test"}


LABELS = ["cycling", "cooking", "painting", "fishing", "gardening"]


@pytest.fixture(scope="module")
def samples_dir(tmp_path_factory, videos, seed) -> str:
    """A samples-level build: generate's teacher-free `label_mcq` from a label per video (manifest)."""
    no_ray()   # built in process, as a fresh `vdata build` of a few videos runs
    import json

    d = tmp_path_factory.mktemp("hf_samples")
    manifest = d / "videos.jsonl"
    # two labels a video: two MCQs a clip, so that a clip's frames repeated per sample would show
    manifest.write_text("".join(json.dumps({"path": v, "label": [LABELS[i], LABELS[i + 1]]}) + "\n"
                                for i, v in enumerate(videos)))
    cfg = parse_config({
        "name": "hf-samples", "input": [{"manifest": str(manifest)}],
        "output": {"dir": str(d / "out"), "splits": {"test": TEST_SHARE, "seed": seed}},
        "stages": [{"probe": {}}, {"annotations": {"sources": {"labels": "label"}, "require": ["labels"]}},
                   {"shots": {}}, {"frames": {"num_frames": 2}},
                   {"generate": {"tasks": {"label_mcq": {"num_options": 3, "vocabulary": LABELS, "per_clip": 2}}}}]})
    result = build(cfg, progress=False)
    assert result.rows > 0 and result.data_dir.endswith("samples")
    return str(d / "out")


def test_a_samples_build_loads_by_split_with_its_clips_frames(samples_dir, tmp_path, videos):
    """Sample rows refer to their clip by id; each clip's frames are stored once, in the `clips` config
    (the clips table), in the split of its samples, typed as images."""
    import datasets
    import pyarrow.parquet as pq

    ds = _load(samples_dir, tmp_path)
    assert set(ds) == {"train", "test"}
    assert R.FRAMES not in ds["train"].features   # not repeated on every sample row
    assert set(ds["train"][R.TASK]) == {"label_mcq"}
    by_split = {s: set(ds[s][R.VIDEO_ID]) for s in ds}
    assert not by_split["train"] & by_split["test"]
    assert by_split["train"] | by_split["test"] == {content_id(v) for v in videos}

    clips = _load(samples_dir, tmp_path, R.CLIPS_TABLE)
    assert set(clips) == {"train", "test"}
    assert isinstance(clips["train"].features[R.FRAMES].feature[R.FRAME_JPEG], datasets.Image)
    for split in ds:
        sample_clips = ds[split][R.CLIP_ID]
        clip_ids = clips[split][R.CLIP_ID]
        assert len(clip_ids) == len(set(clip_ids)) < len(sample_clips)   # once per clip, fewer than samples
        assert set(sample_clips) == set(clip_ids)                         # every sample finds its clip
        first = clips[split][0][R.FRAMES]
        assert len(first) == 2 and first[0][R.FRAME_JPEG].size == (160, 96)
    # on disk: the sample parts carry no frame bytes; the clips parts hold one row per clip
    sample_parts = list(Path(samples_dir, "samples").glob("*.parquet"))
    assert sample_parts and all(R.FRAMES not in pq.read_schema(p).names for p in sample_parts)


def test_an_export_takes_the_splits_asked_for_and_says_when_held_out_videos_are_in_it(samples_dir, tmp_path):
    """A training export of every split would put the held-out videos in the training set: `split:` keeps
    only those asked for; without it, the export says which splits it holds."""
    import json

    from vdata.exporters import export
    from vdata.exporters.base import NothingToExport

    ds = _load(samples_dir, tmp_path)
    every = export(samples_dir, str(tmp_path / "all"), "llava", media="none")
    assert any("the rows of every split are in this export" in n and f"test {ds['test'].num_rows}" in n
               for n in every.notes)
    train = export(samples_dir, str(tmp_path / "train"), "llava", media="none", splits=["train"])
    assert not any("every split" in n for n in train.notes)

    def ids(folder):
        return {r["id"] for f in Path(folder).glob("*.json") for r in json.loads(Path(f).read_text())}

    assert ids(tmp_path / "train") and ids(tmp_path / "train") < ids(tmp_path / "all")
    assert len(ids(tmp_path / "train")) == ds["train"].num_rows
    with pytest.raises(NothingToExport, match="no rows of split validation"):
        export(samples_dir, str(tmp_path / "val"), "llava", media="none", splits=["validation"])
    # in a config: one split as a word, or a list; a split that does not exist names its key
    assert parse_config({"input": [{"path": "."}], "output": {"dir": "o", "exports": [{"format": "llava", "split": "train"}]},
                         "stages": [{"probe": {}}]}).output.exports[0].split == ["train"]
    with pytest.raises(ConfigError, match=r"output\.exports\[0\]\.split\[0\]: Input should be 'train'"):
        parse_config({"input": [{"path": "."}], "output": {"dir": "o", "exports": [{"format": "llava", "split": "tst"}]},
                      "stages": [{"probe": {}}]})


def test_split_shares_are_checked_with_their_key_path(tmp_path):
    with pytest.raises(ConfigError, match=r"output\.splits\.test"):
        parse_config({"output": {"dir": str(tmp_path), "splits": {"test": 1.5}}, "input": [{"path": str(tmp_path)}],
                      "stages": [{"probe": {}}]})
    with pytest.raises(ConfigError, match=r"output\.splits"):
        parse_config({"output": {"dir": str(tmp_path), "splits": {"test": 0.6, "validation": 0.5}},
                      "input": [{"path": str(tmp_path)}], "stages": [{"probe": {}}]})


def _video_decodes_here() -> bool:
    """What `datasets.Video()` needs to decode, checked on its own: the feature, and torchcodec loading."""
    import datasets

    if not hasattr(datasets, "Video"):
        return False
    try:
        import torchcodec.decoders  # noqa: F401
    except Exception:
        return False
    return True


def test_video_path_is_typed_video_only_where_it_decodes(build_dir, tmp_path):
    """The card types the source video's path as `datasets.Video()` where the installed `datasets` decodes
    video, else as a string: either way the build loads, and the type matches this machine."""
    import datasets

    from vdata.exporters.hf_local import video_feature_unavailable

    decodes = _video_decodes_here()
    assert (video_feature_unavailable() is None) == decodes
    meta = yaml.safe_load(Path(build_dir, "README.md").read_text().split("---")[1])
    info = next(i for i in meta["dataset_info"] if i["config_name"] == "clips")
    path_feature = next(f for f in info["features"] if f["name"] == R.PATH)
    assert path_feature == ({"name": R.PATH, "dtype": "video"} if decodes else {"name": R.PATH, "dtype": "string"})
    ds = _load(build_dir, tmp_path)["train"]
    assert isinstance(ds.features[R.PATH], datasets.Video) == decodes
    if not decodes:   # why, in words a user can act on
        assert "torchcodec" in video_feature_unavailable() or "Video" in video_feature_unavailable()


def test_where_video_decodes_the_path_loads_as_a_video_feature(build_dir, tmp_path, monkeypatch):
    """The other branch, on the real loader: with `Video()` available (stood in for here when torchcodec is
    missing), the card types `path` as `datasets.Video()`, the build still loads, and each row's video
    resolves to the source file (read undecoded: decoding is torchcodec's)."""
    import shutil

    import datasets

    from vdata.exporters import hf_local

    monkeypatch.setattr(hf_local, "video_feature_unavailable", lambda: None)
    copy = tmp_path / "copy"
    shutil.copytree(build_dir, copy, ignore=shutil.ignore_patterns("_cache", "exports", "_media", "README.md"))
    hf_local.refresh_card(str(copy))
    ds = _load(str(copy), tmp_path)["train"]
    assert isinstance(ds.features[R.PATH], datasets.Video)
    raw = ds.cast_column(R.PATH, datasets.Video(decode=False))
    assert raw[0][R.PATH]["bytes"] is None and os.path.isfile(raw[0][R.PATH]["path"])
    # a parquet export with absolute video paths (--media none) types `video` the same way
    from vdata.exporters import export

    res = export(str(copy), str(tmp_path / "pq"), "parquet", media="none")
    video = [f for i in res.dataset_info for f in i["features"] if f["name"] == "video"]
    assert video and all(f["dtype"] == "video" for f in video)


def test_the_card_written_beside_the_report_in_a_forked_child_equals_the_card_written_in_line(build_dir, tmp_path):
    """A build without Ray writes README.md in a forked child while it draws the report (card_child.card_beside):
    the same card as in line, and the child's error comes back as the build's. A fresh process, as a
    `vdata build` is: this test's worker may hold Ray's threads, which are not forked."""
    import json
    import shutil
    import subprocess
    import sys

    from vdata.exporters.hf_local import refresh_card

    inline, forked, damaged, late = (tmp_path / name for name in ("inline", "forked", "damaged", "late"))
    for copy in (inline, forked, damaged, late):
        shutil.copytree(build_dir, copy, ignore=shutil.ignore_patterns("_cache", "exports", "_media", "README.md"))
    for data in damaged.rglob("*.parquet"):
        data.write_bytes(b"not parquet")
    refresh_card(str(inline))
    script = (
        "import json, multiprocessing, sys\n"
        "from vdata.pipelines import card_child\n"
        "card_child.prepare()   # as an in-process build does when its stages start\n"
        "warm = len(multiprocessing.active_children())\n"
        "done = card_child.card_beside(sys.argv[1])\n"
        "children = len(multiprocessing.active_children())\n"
        "path = done()\n"
        "try:\n"
        "    card_child.card_beside(sys.argv[2])()\n"
        "    error = None\n"
        "except Exception as e:\n"
        "    error = type(e).__name__\n"
        "card_child.CARD_WAIT_S = 0   # a child that does not answer: the card is written here instead\n"
        "late = card_child.card_beside(sys.argv[3])()\n"
        "card_child.prepare()\n"
        "card_child.discard()   # a run that failed: its prepared child is stopped\n"
        "print(json.dumps({'path': path, 'warm': warm, 'children': children, 'ray': 'ray' in sys.modules,\n"
        "                  'error': error, 'late': late, 'left': len(multiprocessing.active_children())}))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(forked), str(damaged), str(late)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["warm"] == answer["children"] == 1 and not answer["ray"], answer   # the prepared child wrote it
    assert answer["left"] == 0, answer
    assert answer["path"] == str(forked / "README.md")
    assert answer["late"] == str(late / "README.md")
    for card in (forked, late):
        assert (card / "README.md").read_text() == (inline / "README.md").read_text()
    with pytest.raises(Exception) as inline_error:
        refresh_card(str(damaged))
    assert answer["error"] == type(inline_error.value).__name__ == "ArrowInvalid"
