"""Resume when an input file changed since the run that committed its rows (pipelines/checkpoint.py,
point 5): a file replaced at the same path is redone, its old rows and rejects gone and its new rows there
once; an unchanged one is not; a directory an older vdata wrote (no fingerprints) redoes nothing. Real
in-process builds (probe + shots) on small videos rendered with ffmpeg; every mtime is set explicitly."""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pyarrow.dataset as pads
import pytest
from rich.console import Console

import vdata
from vdata.media.hashing import content_id
from vdata.media.synth import Segment, render_segments
from vdata.pipelines import checkpoint
from vdata.schemas import records as R
from vdata.schemas.config import parse_config

T0 = 1_700_000_000   # every input's mtime: the tests never depend on the clock's resolution


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, str]:
    """Small videos with known shots: 3 clips, 1 clip, 2 clips (the replacement), and a cut-short file."""
    d = tmp_path_factory.mktemp("changed_media")
    recipes = {"three": ["testsrc2", "smptebars", "mandelbrot"], "one": ["rgbtestsrc"],
               "two": ["color=c=0x2060c0", "testsrc"]}
    out = {}
    for name, sources in recipes.items():
        out[name] = str(d / f"{name}.mp4")
        render_segments(out[name], [Segment(s, 1.0) for s in sources], size=(160, 96))
    data = Path(out["three"]).read_bytes()
    (d / "cut_short.mp4").write_bytes(data[: len(data) // 4])
    out["cut_short"] = str(d / "cut_short.mp4")
    return out


def place(src: str, dst: Path, mtime: int = T0) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    os.utime(dst, (mtime, mtime))


def config(inputs: Path, out: Path) -> dict:
    return {"name": "changed", "input": [{"path": str(inputs)}], "output": {"dir": str(out), "rows_per_file": 2},
            "ray": {"executor": "local"}, "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}}]}


def run(inputs: Path, out: Path):
    said = io.StringIO()
    result = vdata.build(parse_config(config(inputs, out)), progress=False, console=Console(file=said, width=400))
    return result, said.getvalue(), json.loads((out / "manifest.json").read_text())


def rows_by_file(out: Path, table: str) -> dict[str, list[dict]]:
    rows = pads.dataset(str(out / table), format="parquet").to_table().to_pylist() if (out / table).exists() else []
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(os.path.basename(r[R.SOURCE_URI]), []).append(r)
    return by


def probe_rows_in(result) -> int:
    return next(s["rows_in"] for s in result.stage_stats if s["stage"] == "probe")


def test_a_file_replaced_at_the_same_path_is_redone_and_only_it(tmp_path, videos, in_process):
    inputs, out = tmp_path / "in", tmp_path / "out"
    place(videos["three"], inputs / "a.mp4")
    place(videos["one"], inputs / "b.mp4")
    run(inputs, out)
    before = rows_by_file(out, "clips")
    assert len(before["a.mp4"]) == 3 and len(before["b.mp4"]) == 1
    old_id = before["a.mp4"][0][R.VIDEO_ID]

    place(videos["two"], inputs / "a.mp4", mtime=T0 + 60)   # another video, same path
    result, said, manifest = run(inputs, out)
    assert result.ran and probe_rows_in(result) == 1, said   # a.mp4 alone: b.mp4 is not redone
    assert "1 video(s) already complete" in said and "1 redone because their file changed" in said, said
    assert manifest["resume_repairs"]["changed_sources_redone"] == 1
    after = rows_by_file(out, "clips")
    new_id = content_id(str(inputs / "a.mp4"))
    assert new_id != old_id
    assert [r[R.VIDEO_ID] for r in after["a.mp4"]] == [new_id, new_id]   # the new video's 2 clips, once each
    assert after["b.mp4"] == before["b.mp4"]
    ids = [r[R.CLIP_ID] for rows in after.values() for r in rows]
    assert len(ids) == len(set(ids)) == manifest["rows"] == 3


def test_a_rejected_cut_short_file_replaced_by_a_valid_one_becomes_rows(tmp_path, videos, in_process):
    inputs, out = tmp_path / "in", tmp_path / "out"
    place(videos["cut_short"], inputs / "d.mp4")
    place(videos["one"], inputs / "b.mp4")
    run(inputs, out)
    rejected = rows_by_file(out, "rejects")["d.mp4"]
    assert [r["stage"] for r in rejected] == ["probe"], rejected
    assert "d.mp4" not in rows_by_file(out, "clips")

    place(videos["three"], inputs / "d.mp4", mtime=T0 + 60)   # the whole file, at last
    result, said, manifest = run(inputs, out)
    assert result.ran and probe_rows_in(result) == 1, said
    assert "d.mp4" not in rows_by_file(out, "rejects")   # its reject is gone with the file it described
    clips = rows_by_file(out, "clips")
    assert len(clips["d.mp4"]) == 3 and {r[R.VIDEO_ID] for r in clips["d.mp4"]} == {content_id(str(inputs / "d.mp4"))}
    assert manifest["rejects"] == 0 and manifest["resume_repairs"]["changed_sources_redone"] == 1


def test_an_unchanged_rerun_does_nothing(tmp_path, videos, in_process):
    inputs, out = tmp_path / "in", tmp_path / "out"
    place(videos["three"], inputs / "a.mp4")
    place(videos["one"], inputs / "b.mp4")
    run(inputs, out)
    recorded = checkpoint.read_fingerprints(str(out))
    assert sorted(os.path.basename(u) for u in recorded) == ["a.mp4", "b.mp4"]
    before = rows_by_file(out, "clips")
    place(videos["three"], inputs / "a.mp4")   # the same bytes copied again, with the same mtime: unchanged
    result, said, manifest = run(inputs, out)
    assert not result.ran and "nothing to do" in said, said
    assert manifest["resume_repairs"]["changed_sources_redone"] == 0
    assert rows_by_file(out, "clips") == before and checkpoint.read_fingerprints(str(out)) == recorded


def test_a_directory_without_fingerprints_resumes_without_redoing_and_then_records_them(tmp_path, videos, in_process):
    inputs, out = tmp_path / "in", tmp_path / "out"
    place(videos["three"], inputs / "a.mp4")
    place(videos["one"], inputs / "b.mp4")
    run(inputs, out)
    os.remove(checkpoint.inputs_path(str(out)))   # as an older vdata left it
    before = rows_by_file(out, "clips")
    place(videos["three"], inputs / "a.mp4", mtime=T0 + 60)   # touched since: no fingerprint says so
    result, said, manifest = run(inputs, out)
    assert not result.ran and "nothing to do" in said, said   # an upgrade never redoes everything
    assert rows_by_file(out, "clips") == before
    # the present files are taken as the ones the rows describe: a later replacement is seen
    assert len(checkpoint.read_fingerprints(str(out))) == 2
    place(videos["two"], inputs / "a.mp4", mtime=T0 + 120)
    result, said, manifest = run(inputs, out)
    assert result.ran and probe_rows_in(result) == 1, said
    assert len(rows_by_file(out, "clips")["a.mp4"]) == 2


def test_a_build_stats_each_input_once(tmp_path, videos, in_process, monkeypatch):
    """Ingest's duplicate check (sizes) and the resume fingerprints (sizes and versions) share one
    `storage.info` pass, and the stage cache keys the first stage's row with one more (a get and a put
    used to stat it twice): for a bucket, two HEADs per object instead of four, one without the cache.
    Counted on real builds, first and resumed, by wrapping the function they all read through."""
    from vdata.media import storage as S

    inputs = tmp_path / "in"
    for name in ("three", "one"):
        place(videos[name], inputs / f"{name}.mp4")
    calls: dict[str, int] = {}
    real = S.info

    def counted(path: str) -> dict:
        calls[os.path.basename(path)] = calls.get(os.path.basename(path), 0) + 1
        return real(path)

    monkeypatch.setattr(S, "info", counted)
    for stage_cache, per_input in ((True, 2), (False, 1)):
        cfg = config(inputs, tmp_path / f"out-{stage_cache}")
        cfg["output"]["stage_cache"] = stage_cache
        # a first build, then a resume with nothing to do: no stage runs, so only the shared pass
        for expected in (per_input, 1):
            calls.clear()
            result = vdata.build(parse_config(cfg), progress=False, console=Console(file=io.StringIO()))
            assert result.rows == 4
            stats = {n: c for n, c in calls.items() if n.endswith(".mp4")}
            assert stats == {"three.mp4": expected, "one.mp4": expected}, (stage_cache, calls)
