"""Exports of a build whose videos are in a bucket (s3:// inputs, a real S3 API: moto's server on
loopback): the rows name the videos by URL, and an export still places (downloads), cuts or references
them. It once skipped every row as `missing_media` (a local-file check on a URL) and exited 0."""
from __future__ import annotations

import os

import av
import pyarrow.parquet as pq
import pytest

from test_object_storage import _bucket, _config, s3, videos  # noqa: F401  (the moto server and videos)
from vdata.pipelines.runner import build
from vdata.schemas.config import parse_config


def _frames(path: str) -> int:
    with av.open(path) as container:
        return sum(1 for _ in container.decode(video=0))


def test_exports_of_a_build_of_bucket_videos_place_cut_and_reference_them(tmp_path, s3, videos, in_process):
    endpoint, fs = s3
    bucket = _bucket(fs, "remote-exports", videos)   # a name no test of test_object_storage (same server) takes
    cfg = _config([{"glob": f"s3://{bucket}/in/*.mp4"}], str(tmp_path / "out"), endpoint)
    cfg["output"]["exports"] = [{"format": "parquet", "media": "copy", "dest": str(tmp_path / "copied")},
                                {"format": "parquet", "media": "none", "dest": str(tmp_path / "referenced")}]
    result = build(parse_config(cfg), progress=False)
    assert result.rows > len(list(videos.iterdir()))          # some videos were cut into several clips
    by_dest = {e["dest"]: e for e in result.exports}
    assert all(e["status"] == "written" for e in result.exports), result.exports
    for dest in (tmp_path / "copied", tmp_path / "referenced"):
        assert "missing_media" not in by_dest[str(dest)]["summary"], by_dest[str(dest)]
    # copied: every clip is a local file of its own, cut from the bucket's video, holding frames
    copied = pq.read_table(next((tmp_path / "copied").rglob("*.parquet"))).to_pylist()
    assert len(copied) == result.rows
    for row in copied:
        path = row["video"] if isinstance(row["video"], str) else row["video"]["path"]
        local = path if os.path.isabs(path) else str(tmp_path / "copied" / path)
        assert os.path.isfile(local) and _frames(local) > 0, row
    assert not list((tmp_path / "copied").rglob(".vdata-sources"))   # the downloaded sources are gone
    # referenced: a whole video is named by its object's URL, as it lies; a cut clip exists nowhere else,
    # so it is cut into the export as with `copy`
    referenced = pq.read_table(next((tmp_path / "referenced").rglob("*.parquet"))).to_pylist()
    urls = [r["video"] for r in referenced if str(r["video"]).startswith("s3://")]
    assert urls and all(u.startswith(f"s3://{bucket}/in/") and fs.isfile(u) for u in urls)
    cut = [r["video"] for r in referenced if not str(r["video"]).startswith("s3://")]
    assert cut and all(os.path.isfile(tmp_path / "referenced" / v) for v in cut)


def test_a_configured_export_of_a_build_in_a_bucket_lands_in_the_bucket(tmp_path, s3, videos, in_process):
    """`output.exports` of a build whose output.dir is a bucket: each export is put under
    `<output.dir>/exports/<format>` (rendered locally by `export`, then uploaded), its records readable there."""
    endpoint, fs = s3
    fs.mkdir("configured-exports")
    cfg = _config([{"path": str(videos)}], "s3://configured-exports/out", endpoint)
    cfg["output"]["exports"] = [{"format": "parquet", "media": "none"}]
    result = build(parse_config(cfg), progress=False)
    [entry] = result.exports
    assert entry["status"] == "written" and entry["dest"] == "s3://configured-exports/out/exports/parquet", entry
    files = fs.find("configured-exports/out/exports/parquet")
    assert any(f.endswith("README.md") for f in files)
    parts = [f for f in files if f.endswith(".parquet")]
    with fs.open(parts[0], "rb") as f:
        assert pq.read_table(f).num_rows > 0
