"""Inputs named in ways ingest read wrongly: a link to nothing inside an input folder (skipped unsaid), and
manifest rows with `file://` URLs (read as relative paths, rejected as retryable missing files), an unknown
URL scheme, the numbering of a manifest's reject rows, and a named pipe among the inputs."""
from __future__ import annotations

import json
import os
import signal
import threading

import pyarrow.dataset as pads
import pytest

import vdata
from vdata.media.ffmpeg import run_ffmpeg
from vdata.pipelines.ingest import discover, find_duplicates
from vdata.schemas import records as R
from vdata.schemas.config import parse_config


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("ingest") / "tiny.mp4")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1", "-c:v", "libx264", "-preset",
                "ultrafast", "-pix_fmt", "yuv420p", path])
    return path


def config(tmp_path, inputs: list[dict]) -> dict:
    return {"name": "ingest", "input": inputs, "output": {"dir": str(tmp_path / "out")}, "ray": {"executor": "local"},
            "stages": [{"probe": {}}]}


def ingest(tmp_path, inputs: list[dict]):
    """(the rows kept, {source_uri: reject}) as a build's ingest makes them."""
    kept, rejects = find_duplicates(discover(parse_config(config(tmp_path, inputs)), str(tmp_path / "media")))
    return kept, {r.row[R.SOURCE_URI]: r for r in rejects}


def test_a_link_to_nothing_in_an_input_folder_is_a_missing_file_reject(tmp_path, video, in_process):
    """A dangling symlink inside an input folder was skipped without a row (named as `path:` itself it is an
    error, as a manifest row a missing_file reject): it is now a missing_file reject that says it is a broken
    link and where it points, from a folder and from a glob, and the build counts it."""
    folder = tmp_path / "videos"
    folder.mkdir()
    os.symlink(video, folder / "good.mp4")
    gone = str(tmp_path / "moved_away.mp4")
    os.symlink(gone, folder / "dangling.mp4")
    for inputs in ([{"path": str(folder)}], [{"glob": str(folder / "*.mp4")}]):
        kept, rejects = ingest(tmp_path, inputs)
        assert [r[R.PATH] for r in kept] == [str(folder / "good.mp4")]
        (reject,) = rejects.values()
        assert reject.reason == "missing_file" and reject.row[R.PATH] == str(folder / "dangling.mp4")
        assert "broken link" in reject.message and gone in reject.message
        assert reject.detail[R.PATH] == str(folder / "dangling.mp4") and reject.detail["broken_link_to"] == gone
    result = vdata.build(parse_config(config(tmp_path, [{"path": str(folder)}])), progress=False)
    assert result.rejects_by_reason == {"ingest:missing_file": 1}
    rows = pads.dataset(str(tmp_path / "out" / "rejects"), format="parquet").to_table().to_pylist()
    assert [(r["stage"], r["reason"], r["source_uri"]) for r in rows] == [
        ("ingest", "missing_file", str(folder / "dangling.mp4"))]
    assert "broken link" in rows[0]["message"] and json.loads(rows[0]["detail"])["broken_link_to"] == gone


def test_file_urls_in_a_manifest_are_local_paths_and_unknown_schemes_are_final(tmp_path, video):
    """`file:///abs/path.mp4` (what Spark, pyarrow and Hugging Face tools write) was joined to the manifest's
    folder and rejected missing_file, marked retryable though no run could find it. It is now the local
    file (percent-escapes decoded); a URL of an unknown scheme, or a file URL of another host, is a reject
    that says why and is not retried."""
    from pathlib import Path

    spaced = tmp_path / "with space.mp4"   # other bytes: the same ones would be a duplicate_video
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2", "-c:v", "libx264", "-preset",
                "ultrafast", "-pix_fmt", "yuv420p", str(spaced)])
    manifest = tmp_path / "lists" / "list.csv"
    manifest.parent.mkdir()
    manifest.write_text("path,label\n"
                        f"file://{video},plain\n"                  # record 0
                        f"{Path(spaced).as_uri()},escaped\n"       # record 1: file:///...with%20space.mp4
                        "ftp://example.com/clip.mp4,unknown\n"     # record 2
                        "file://otherhost/share/clip.mp4,host\n")  # record 3
    kept, rejects = ingest(tmp_path, [{"manifest": str(manifest)}])
    assert sorted(r[R.PATH] for r in kept) == sorted([video, str(spaced)])
    assert sorted(rejects) == [f"{manifest}#2", f"{manifest}#3"]
    for reject in rejects.values():
        assert reject.reason == "unsupported_url" and not reject.detail.get(R.RETRY_ON_RESUME)
    assert "unknown URL scheme ftp://" in rejects[f"{manifest}#2"].message
    assert "otherhost" in rejects[f"{manifest}#3"].message


def test_a_manifests_records_are_numbered_one_way_in_source_uris(tmp_path, video):
    """Kept records were `list.csv#<index from 0>` while a record naming no file was `list.csv#row<n from 1>`:
    `#4` and `row4` named different records of one table. Every record is now `#<index from 0>`, kept or not
    (the source_uri earlier builds gave kept records); only text that never became a record, a line of the
    wrong width, is named by its line."""
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"path,label\n{video},first\n,no file\n{tmp_path / 'absent.mp4'},second\n"
                        f"{video},again,extra\n")
    kept, rejects = ingest(tmp_path, [{"manifest": str(manifest)}])
    assert [r[R.SOURCE_URI] for r in kept] == [f"{manifest}#0"]
    assert {uri.rsplit("#", 1)[1]: r.reason for uri, r in rejects.items()} == {
        "1": "manifest_row_malformed", "2": "missing_file", "line5": "manifest_row_malformed"}
    assert "row 2 names no file in 'path' (record #1)" in rejects[f"{manifest}#1"].message
    assert json.loads(kept[0][R.SOURCE_META]) == {"label": "first"}


def _within(seconds: float, fn):
    """fn's result; fails (rather than hangs the suite) when fn does not return in time (a FIFO opened)."""
    out: list = []
    worker = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert out, f"did not return within {seconds} s: a FIFO was opened for reading?"
    return out[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_a_fifo_among_the_inputs_is_a_reject_and_is_never_opened(tmp_path, video, in_process):
    """A named pipe (FIFO) called `x.mp4` among the inputs was skipped without a word (in a folder or a glob) or
    called missing (named as `path:`). It is a `not_a_file` ingest reject that says what it is, and it is never
    opened: a read of a FIFO waits for a writer, so a build that opened it would hang."""
    folder = tmp_path / "videos"
    folder.mkdir()
    os.symlink(video, folder / "good.mp4")
    pipe = folder / "x.mp4"
    os.mkfifo(pipe)
    for inputs in ([{"path": str(folder)}], [{"glob": str(folder / "*.mp4")}], [{"path": str(pipe)}]):
        cfg = parse_config(config(tmp_path, inputs))
        kept, rejects = _within(60, lambda: find_duplicates(discover(cfg, str(tmp_path / "media"))))
        assert [r[R.PATH] for r in kept] == ([] if inputs[0].get("path") == str(pipe) else [str(folder / "good.mp4")])
        (reject,) = rejects
        assert reject.reason == "not_a_file" and reject.row[R.PATH] == str(pipe), reject
        assert "named pipe (FIFO)" in reject.message and str(pipe) in reject.message
    # the whole build, in the main thread (a build sets signal handlers); an alarm ends a hang
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the build hung: a FIFO was opened for reading?"))
    signal.alarm(300)
    try:
        result = vdata.build(parse_config(config(tmp_path, [{"path": str(folder)}])), progress=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert result.rejects_by_reason == {"ingest:not_a_file": 1}
    rows = pads.dataset(str(tmp_path / "out" / "rejects"), format="parquet").to_table().to_pylist()
    assert [(r["stage"], r["reason"], r["source_uri"]) for r in rows] == [("ingest", "not_a_file", str(pipe))]
