"""Kill -9 the build at several points, resume each time: the result equals an uninterrupted run's."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

from vdata.pipelines.runner import build
from vdata.schemas import records as R
from vdata.schemas.config import parse_config
from conftest import copy_to
from test_cluster import kill_session

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, cut_video, bikes, quality_videos, flash_video):
    d = tmp_path_factory.mktemp("resume_in")
    for p in [cut_video[0], bikes, flash_video, *quality_videos.values()]:
        copy_to(p, d)
    copy_to(str(ROOT / "examples" / "videos" / "multishot.mp4"), d)   # the others repeat content above
    return d


def config(inputs, out) -> dict:
    return {"name": "resume", "input": [{"path": str(inputs)}], "output": {"dir": str(out), "rows_per_file": 4},
            "ray": {"num_cpus": 2},
            "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}},
                       {"quality": {"text": {"enabled": False}}}, {"frames": {"num_frames": 3}}]}


def snapshot(out):
    def table(sub):
        t = pads.dataset(str(out / sub), format="parquet").to_table()
        key = R.CLIP_ID if R.CLIP_ID in t.column_names and sub != "rejects" else R.SOURCE_URI
        cols = sorted(t.column_names)
        return t.select(cols).sort_by([(key, "ascending"), (R.SOURCE_URI, "ascending")] if key != R.SOURCE_URI else [(key, "ascending"), ("clip_id", "ascending")])
    return table("clips"), table("rejects")


def test_kill_and_resume_gives_exactly_the_uninterrupted_output(tmp_path, inputs, ray_local):
    ref_out = tmp_path / "ref"
    build(parse_config(config(inputs, ref_out)), progress=False)
    ref_clips, ref_rejects = snapshot(ref_out)
    assert ref_clips.num_rows > 10 and ref_rejects.num_rows > 3

    out = tmp_path / "killed"
    cfg_path = tmp_path / "resume.yaml"
    cfg_path.write_text(yaml.safe_dump(config(inputs, out)))
    tmp_root = Path(tempfile.mkdtemp(prefix="vr", dir="/tmp"))   # Ray's socket paths must stay short
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": str(tmp_root)}
    ledger = out / "_ledger"
    committed = lambda: len(list(ledger.glob("*.json"))) if ledger.exists() else 0  # noqa: E731
    kills = 0
    for extra_delay in (0.0, 0.4, 1.5):   # right after a commit (mid-write of the next), and later
        before = committed()
        proc = subprocess.Popen([str(BIN / "vdata"), "build", str(cfg_path), "--quiet"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while proc.poll() is None and committed() <= before and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(extra_delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        kill_session(str(tmp_root))   # the killed driver's Ray processes
    final = subprocess.run([str(BIN / "vdata"), "build", str(cfg_path), "--quiet"], env=env, capture_output=True,
                           text=True, timeout=600)
    kill_session(str(tmp_root))
    shutil.rmtree(tmp_root, ignore_errors=True)
    assert final.returncode == 0, final.stderr[-3000:]
    clips, rejects = snapshot(out)
    assert clips.column(R.CLIP_ID).to_pylist() == ref_clips.column(R.CLIP_ID).to_pylist()   # no loss, no dupes
    assert len(set(clips.column(R.CLIP_ID).to_pylist())) == clips.num_rows
    assert clips.equals(ref_clips)
    assert rejects.drop_columns(["message", "detail"]).equals(ref_rejects.drop_columns(["message", "detail"]))
    assert kills >= 2, "the build finished before it could be killed: the test proved nothing"


def test_completed_build_resumes_without_work(tmp_path, inputs, ray_local):
    out = tmp_path / "o"
    build(parse_config(config(inputs, out)), progress=False)
    first = snapshot(out)
    result = build(parse_config(config(inputs, out)), progress=False)
    assert all(s["rows_in"] == 0 for s in result.stage_stats)   # nothing recomputed
    second = snapshot(out)
    assert first[0].equals(second[0]) and first[1].equals(second[1])


def test_changed_config_rebuilds(tmp_path, inputs, ray_local):
    out = tmp_path / "o"
    build(parse_config(config(inputs, out)), progress=False)
    changed = config(inputs, out)
    changed["stages"][3] = {"frames": {"num_frames": 2}}
    result = build(parse_config(changed), progress=False)
    clips = pads.dataset(str(out / "clips"), format="parquet").to_table()
    assert all(len(f) == 2 for f in clips.column(R.FRAMES).to_pylist())
    probe, shots, quality, frames = result.stage_stats
    # the stages before the changed one are served from their result cache, the changed one is not
    for s in (probe, shots, quality):
        assert s["rows_in"] > 0 and s["cache_hits"] == s["rows_in"], s
    assert frames["cache_hits"] == 0 and frames["rows_in"] > 0
    # a changed quality threshold invalidates quality (and frames) but not probe / shots
    changed["stages"][2] = {"quality": {"text": {"enabled": False}, "thresholds": {"sharpness_min": 1.0}}}
    result = build(parse_config(changed), progress=False)
    probe, shots, quality, frames = result.stage_stats
    assert probe["cache_hits"] == probe["rows_in"] and shots["cache_hits"] == shots["rows_in"]
    assert quality["cache_hits"] == 0
