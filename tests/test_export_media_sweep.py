"""A `--split train` export into the folder of an earlier all-splits export: the held-out videos go with the
held-out records (a training folder holding test videos is test contamination), while a file of the
user's, another format's videos and the sources a linked video points at are kept.

A real demo build (ffmpeg-made videos) whose samples are split by video: `flat` is held out (test).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from vdata.exporters import EXPORT_LEDGER, export
from vdata.exporters.demo_build import write_demo_build
from vdata.schemas import records as R

HELD_OUT = "flat"


@pytest.fixture(scope="module")
def split_build(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("split_media")
    media = tmp_path_factory.getbasetemp() / "vdata_demo_media"   # shared with test_exporters
    media.mkdir(exist_ok=True)
    build = write_demo_build(str(root / "build"), media_dir=str(media), with_frames=False)
    (part,) = Path(build, "samples").glob("*.parquet")
    table = pq.read_table(part)
    held = pc.match_substring(table.column(R.PATH), f"/{HELD_OUT}.mp4")
    assert 0 < pc.sum(held).as_py() < table.num_rows
    pq.write_table(table.filter(pc.invert(held)), part.with_name(part.stem + "-train.parquet"))
    pq.write_table(table.filter(held), part.with_name(part.stem + "-test.parquet"))
    part.unlink()
    return build


def _media(dest: Path) -> set[str]:
    return {str(p.relative_to(dest)) for p in (dest / "videos").rglob("*") if p.is_file() or p.is_symlink()}


def _referenced(dest: Path) -> set[str]:
    """The media the llava records of `dest` name (relative to dest)."""
    out = set()
    for f in dest.glob("*.json"):
        for r in json.loads(f.read_text()):
            out.add(os.path.relpath(os.path.normpath(dest / "videos" / r["video"]), dest))
    return out


def _source_of_held_out(build: str) -> Path:
    """The held-out source video (what a linked export's link points at)."""
    (part,) = Path(build, "samples").glob("*-test.parquet")
    return Path(pq.read_table(part).column(R.PATH)[0].as_py())


def test_a_train_export_removes_the_held_out_videos_an_all_splits_export_placed(split_build, tmp_path):
    dest = tmp_path / "llava"
    export(split_build, str(dest), "llava", media="link")
    everything = _media(dest)
    assert everything == _referenced(dest) and len(everything) >= 2, everything
    (dest / "videos" / "my_own.mp4").write_bytes(b"the user's")
    train = export(split_build, str(dest), "llava", media="link", splits=["train"])
    kept, train_media = _media(dest), _referenced(dest)
    held_out = everything - train_media
    assert held_out, "the held-out video's records named media of their own"
    assert kept == train_media | {"videos/my_own.mp4"}, (kept, train_media)
    assert any("video file(s)" in n and "were removed" in n for n in train.notes), train.notes
    assert json.loads((dest / EXPORT_LEDGER).read_text())["llava media"] == sorted(train_media)
    assert _source_of_held_out(split_build).is_file()   # a link goes, never the video it points at


def test_another_formats_videos_in_the_same_folder_are_kept(split_build, tmp_path):
    dest = tmp_path / "shared"
    export(split_build, str(dest), "sharegpt", media="copy")
    shared = _media(dest)
    export(split_build, str(dest), "llava", media="copy")
    export(split_build, str(dest), "llava", media="copy", splits=["train"])
    assert _media(dest) == shared   # sharegpt's records still name every one of them


def test_an_export_made_before_media_were_listed_is_swept_too(split_build, tmp_path):
    """A folder whose ledger an older vdata wrote (records only): the media folder of the format, the only
    one exported there, keeps what this export places and nothing else."""
    dest = tmp_path / "old"
    export(split_build, str(dest), "llava", media="link")
    ledger = dest / EXPORT_LEDGER
    ledger.write_text(json.dumps({"llava": json.loads(ledger.read_text())["llava"]}))
    before = _media(dest)
    export(split_build, str(dest), "llava", media="link", splits=["train"])
    after = _media(dest)
    assert after == _referenced(dest) and after < before
