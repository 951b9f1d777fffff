"""A named pipe (FIFO) called `x.mp4` among the inputs was skipped without a word (in a folder or a glob) or
called missing (named as `path:`). It is a `not_a_file` ingest reject that says what it is, and it is never
opened: a read of a FIFO waits for a writer, so a build that opened it would hang."""
from __future__ import annotations

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

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("fifo") / "tiny.mp4")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1", "-c:v", "libx264", "-preset",
                "ultrafast", "-pix_fmt", "yuv420p", path])
    return path


def config(tmp_path, inputs: list[dict]) -> dict:
    return {"name": "fifo", "input": inputs, "output": {"dir": str(tmp_path / "out")}, "ray": {"executor": "local"},
            "stages": [{"probe": {}}]}


def _within(seconds: float, fn):
    """fn's result; fails (rather than hangs the suite) when fn does not return in time (a FIFO opened)."""
    out: list = []
    worker = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert out, f"did not return within {seconds} s: a FIFO was opened for reading?"
    return out[0]


def test_a_fifo_among_the_inputs_is_a_reject_and_is_never_opened(tmp_path, video, in_process):
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
