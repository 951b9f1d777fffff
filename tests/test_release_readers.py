"""Release exports read the way the releases' own loaders and their users' readers read them.

Each test parses an export as a named reader of the release does (the parse is restated here, not the
reader's code) and checks what that reader would get:
- Koala-36M CSV: readers `ast.literal_eval(row["timestamp"])` and take `[0]` / `[1]` as the clip's
  `H:MM:SS.mmm` start / end; filters keep rows with `video_training_suitability_score >= 3.0`-ish.
- ShareGPT4Video JSONL: loaders open `os.path.join(<video root>, ex["video_path"])` and use
  `Path(ex["zip_folder"]).stem` (the zip shard's name) and the caption with `idx == "-1"`.
- Panda-70M CSV: the release's video2dataset reads it with pandas, `select`s the README's
  `--save_additional_columns` plus clips / caption / url, and `eval`s each list column per clip.
- LLaVA JSON with `video_token="<video>"`: Video-LLaVA's `preprocess_multimodal` turns each `<video>` into
  `num_frames` x `<image>`, one per frame feature.
"""
from __future__ import annotations

import ast
import csv
import json
import os
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vdata.exporters import ExportError, export
from vdata.exporters.demo_build import write_demo_build
from vdata.schemas import records as R


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> str:
    media = tmp_path_factory.getbasetemp() / "vdata_demo_media"   # shared with test_exporters
    media.mkdir(exist_ok=True)
    return write_demo_build(str(tmp_path_factory.mktemp("build")), media_dir=str(media), with_frames=False)


@pytest.fixture(scope="module")
def clip_spans(build_dir) -> set[tuple[float, float]]:
    rows = pq.read_table(os.path.join(build_dir, "samples"), columns=[R.START_S, R.END_S]).to_pylist()
    return {(round(r[R.START_S], 3), round(r[R.END_S], 3)) for r in rows if r[R.START_S] is not None}


def _seconds(timecode: str) -> float:
    t = datetime.strptime(timecode, "%H:%M:%S.%f")
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def _csv(dest: str, suffix: str) -> str:
    return next(str(p) for p in Path(dest).glob(f"*_{suffix}.csv"))


def test_koala36m_timestamp_is_the_flat_start_end_pair_readers_parse(build_dir, clip_spans, tmp_path):
    dest = str(tmp_path / "koala")
    export(build_dir, dest, "koala36m")
    with open(_csv(dest, "koala36m"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        ts = ast.literal_eval(row["timestamp"])
        assert isinstance(ts, (list, tuple)) and len(ts) == 2   # else a reader's parser returns (None, None)
        start, end = _seconds(ts[0]), _seconds(ts[1])        # strptime of a nested list raises TypeError
        assert (round(start, 3), round(end, 3)) in clip_spans and end > start


def test_koala36m_vdata_score_stays_out_of_the_release_vtss_column(build_dir, tmp_path):
    dest = str(tmp_path / "koala")
    export(build_dir, dest, "koala36m")
    release = ["videoID", "url", "timestamp", "caption", "clarity_score", "aesthetic_score", "motion_score",
               "video_training_suitability_score"]
    df = pd.read_csv(_csv(dest, "koala36m"), usecols=release)   # a score-analysis reader's usecols
    assert list(df.columns) == release
    # no 0..1 heuristic where a reader's VTSS threshold (release scale ~2.5-4.95) would drop every row
    assert df["video_training_suitability_score"].isna().all()
    own = pd.read_csv(_csv(dest, "koala36m"))["vdata_suitability_score"]
    assert own.notna().all() and own.between(0.0, 1.0).all()


def test_sharegpt4video_records_carry_video_path_and_a_zip_shard_name(build_dir, tmp_path):
    dest = str(tmp_path / "s4v")
    export(build_dir, dest, "sharegpt4video")
    lines = next(Path(dest).glob("*_sharegpt4video.jsonl")).read_text().splitlines()
    assert lines
    for line in lines:
        ex = json.loads(line)
        vpath = os.path.join(dest, ex["video_path"])          # KeyError on a record without video_path
        assert os.path.isfile(vpath)
        assert os.path.basename(vpath) == ex["video_id"] + ".mp4"
        # the release's zip_folder is a shard file name ("panda_videos_1.zip"); readers take its stem
        assert ex["zip_folder"].endswith(".zip") and "/" not in ex["zip_folder"]
        assert Path(ex["zip_folder"]).stem == os.path.basename(os.path.dirname(vpath))
        assert [c["content"] for c in ex["captions"] if c["idx"] == "-1"]


def test_panda70m_csv_goes_through_the_release_downloaders_column_selection(build_dir, tmp_path):
    dest = str(tmp_path / "panda")
    export(build_dir, dest, "panda70m")
    # video2dataset input_sharder: pandas -> arrow, rename the url / caption / clip columns, select
    table = pa.Table.from_pandas(pd.read_csv(_csv(dest, "panda70m")))
    renamed = {"caption": "caption", "timestamp": "clips", "url": "url"}
    table = table.rename_columns([renamed.get(c, c) for c in table.column_names])
    extra = ["matching_score", "desirable_filtering", "shot_boundary_detection"]   # the README's command
    shard = table.select(extra + ["clips", "caption", "url"]).to_pylist()   # KeyError when a column is missing
    assert shard
    for meta in shard:
        clips = eval(meta["clips"])   # noqa: S307 - the release's loader evals these cells
        for i, _ in enumerate(clips):   # download_worker: one value per clip from every list column
            assert isinstance(eval(meta["caption"])[i], str)   # noqa: S307
            for col in extra:
                eval(meta[col])[i]   # noqa: S307 - IndexError / TypeError if the column is not one item per clip


def _human_turns(dest: str) -> list[str]:
    out = []
    for f in Path(dest).glob("*.json"):
        out += [rec["conversations"][0]["value"] for rec in json.loads(f.read_text())]
    return out


def test_llava_writes_the_video_token_video_llava_trainers_expand(build_dir, tmp_path):
    default, video = str(tmp_path / "default"), str(tmp_path / "video")
    export(build_dir, default, "llava")
    export(build_dir, video, "llava", video_token="<video>")
    assert all(t.startswith("<image>\n") for t in _human_turns(default))   # the default is unchanged
    turns = _human_turns(video)
    assert turns and all(t.startswith("<video>\n") and "<image>" not in t for t in turns)
    num_frames = 8   # Video-LLaVA preprocess_multimodal: each <video> -> num_frames x <image>
    assert all(t.replace("<video>", "<image>" * num_frames).count("<image>") == num_frames for t in turns)


def test_llava_refuses_an_unknown_video_token_before_writing(build_dir, tmp_path):
    dest = tmp_path / "bad"
    with pytest.raises(ExportError, match="video_token"):
        export(build_dir, str(dest), "llava", video_token="<vid>")
    assert not dest.exists()
