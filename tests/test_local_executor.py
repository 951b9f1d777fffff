"""The in-process executor (pipelines/local_run.py): small builds run without Ray and give exactly what the
Ray path gives, commit per video, and resume after a kill."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import copy_to
from test_resume import snapshot, subtitled_manifest, teacher_config, teacher_proxy  # noqa: F401 (a fixture)
from vdata.schemas.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[1]

RUN = """
import sys, json
from vdata.pipelines.runner import build
from vdata.schemas.config import load_config
result = build(load_config(sys.argv[1]), progress=False)
print(json.dumps({"ray_imported": "ray" in sys.modules, "rows": result.rows, "rejects": result.rejects}))
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, cut_video, flash_video):
    d = tmp_path_factory.mktemp("local_in")
    for p in [cut_video[0], flash_video, str(ROOT / "examples" / "videos" / "multishot.mp4")]:
        copy_to(p, d)
    return d


def config(inputs, out, executor: str) -> dict:
    return {"name": "local", "input": [{"path": str(inputs)}], "output": {"dir": str(out), "rows_per_file": 4},
            "ray": {"num_cpus": 2, "executor": executor},
            "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}},
                       {"quality": {"text": {"enabled": False}}}, {"frames": {"num_frames": 3}}]}


def run_build(tmp_path, inputs, out, executor: str) -> dict:
    cfg_path = tmp_path / f"{executor}.yaml"
    cfg_path.write_text(yaml.safe_dump(config(inputs, out, executor)))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", RUN, str(cfg_path)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_small_build_runs_in_process_and_matches_the_ray_path(tmp_path, inputs):
    local = run_build(tmp_path, inputs, tmp_path / "local", "auto")   # 3 videos: auto picks in-process
    assert local["ray_imported"] is False
    ray_run = run_build(tmp_path, inputs, tmp_path / "ray", "ray")
    assert ray_run["ray_imported"] is True
    assert (local["rows"], local["rejects"]) == (ray_run["rows"], ray_run["rejects"]) and local["rows"] > 5
    (clips_l, rej_l), (clips_r, rej_r) = snapshot(tmp_path / "local"), snapshot(tmp_path / "ray")
    assert clips_l.equals(clips_r)
    assert rej_l.drop_columns(["message", "detail"]).equals(rej_r.drop_columns(["message", "detail"]))
    m_local = json.loads((tmp_path / "local" / "manifest.json").read_text())
    m_ray = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert m_local["ray"]["executor"] == "in-process" and m_ray["ray"]["executor"] == "ray"
    # per-stage figures are collected the same way (the report and `vdata plan` read them)
    assert [(s["stage"], s["rows_in"], s["rows_out"]) for s in m_local["stages"]] == \
        [(s["stage"], s["rows_in"], s["rows_out"]) for s in m_ray["stages"]]
    # one part per video, each committed by the ledger
    assert len(list((tmp_path / "local" / "_ledger").glob("*.json"))) >= 3


def test_in_process_build_commits_per_video_and_resumes_after_a_kill(tmp_path, inputs):
    ref = run_build(tmp_path, inputs, tmp_path / "ref", "local")
    out = tmp_path / "killed"
    cfg_path = tmp_path / "killed.yaml"
    cfg_path.write_text(yaml.safe_dump(config(inputs, out, "local")))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    ledger = out / "_ledger"
    committed = lambda: len(list(ledger.glob("*.json"))) if ledger.exists() else 0  # noqa: E731
    proc = subprocess.Popen([sys.executable, "-m", "vdata.cli", "build", str(cfg_path), "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and committed() == 0 and time.time() < deadline:
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = committed()
    final = subprocess.run([sys.executable, "-m", "vdata.cli", "build", str(cfg_path)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    if killed and done_before:
        assert "resuming" in final.stderr   # the finished video was not built again
    clips, rejects = snapshot(out)
    ref_clips, ref_rejects = snapshot(tmp_path / "ref")
    assert clips.equals(ref_clips)   # no loss, no duplicates
    assert rejects.drop_columns(["message", "detail"]).equals(ref_rejects.drop_columns(["message", "detail"]))
    assert ref["rows"] == clips.num_rows
    again = subprocess.run([sys.executable, "-m", "vdata.cli", "build", str(cfg_path)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert "nothing to do" in again.stderr


def test_in_process_parts_gather_videos_up_to_rows_per_file(tmp_path, inputs):
    """The in-process build commits its finished videos together, up to `rows_per_file` rows (or every
    COMMIT_EVERY_S): a part per video made 1.45-row files on a folder of short videos (outside check h16).
    The rows are the same whatever the grouping."""
    import vdata

    parts = {}
    for rows_per_file in (1, 5000):
        out = tmp_path / f"rpf{rows_per_file}"
        cfg = config(inputs, out, "local")
        cfg["output"]["rows_per_file"] = rows_per_file
        result = vdata.build(parse_config(cfg), progress=False)
        assert result.rows > 5
        parts[rows_per_file] = (len(list((out / "clips").glob("*.parquet"))), snapshot(out))
    (many, (clips_1, rej_1)), (few, (clips_5000, rej_5000)) = parts[1], parts[5000]
    assert many >= 3 and few == 1, (many, few)   # 3 videos: a part each, then one for all
    assert clips_5000.equals(clips_1)
    assert rej_5000.drop_columns(["message", "detail"]).equals(rej_1.drop_columns(["message", "detail"]))


def test_a_ray_build_of_few_rows_commits_as_it_goes(tmp_path, inputs):
    """The Ray path's writes wait for their rows: at rows_per_file (5000) a smaller build committed once, at
    its end, and a kill lost every finished video (outside check h16). Now a build writes in parts of
    `rows_per_write` rows: here a write per block of videos (a part name each: its splits and its rejects)."""
    from vdata.pipelines.execution import COMMITS_PER_BUILD, rows_per_write

    assert rows_per_write(5000, 3) == 1 and rows_per_write(5000, 310) == 31 and rows_per_write(5000, 10**6) == 5000
    assert rows_per_write(4, 310) == 4 and COMMITS_PER_BUILD == 10
    out = tmp_path / "ray"
    cfg_path = tmp_path / "ray.yaml"
    cfg = config(inputs, out, "ray")
    cfg["output"]["rows_per_file"] = 5000
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", RUN, str(cfg_path)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    writes = {f.name.rsplit("-", 1)[0] if f.name.endswith(("-train.parquet.json", "-test.parquet.json"))
              else f.name.removesuffix(".parquet.json") for f in (out / "_ledger").glob("*.json")}
    assert len(writes) >= 2, sorted(p.name for p in (out / "_ledger").glob("*.json"))


def test_executor_is_checked_with_the_key_named(tmp_path, inputs):
    with pytest.raises(ConfigError, match=r"ray\.executor"):
        parse_config(config(inputs, tmp_path / "o", "threads"))


def _mass_through(collector, stages: list[str]) -> float:
    """How many videos' worth of rows have gone through the first stages, `stages`, so far: what the last of
    them passed on plus what each rejected (the progress display's measure)."""
    records = list(collector.records) if collector is not None else []
    return (sum(r["mass_out"] for r in records if r["stage"] == stages[-1])
            + sum(r["mass_rejected"] for r in records if r["stage"] in stages))


@pytest.mark.slow
def test_a_teacher_stage_waiting_on_its_server_holds_back_no_decoding_stage(tmp_path, flash_video, teacher_proxy,
                                                                              in_process):
    """In process the stages run side by side, one thread each, as Ray Data's operators do: while generate
    waits on its teacher (its answers held at the proxy), probe, shots and frames go through every video.
    One video at a time through every stage would leave the other videos waiting until the teacher answered."""
    from vdata.pipelines import execution as X
    from vdata.pipelines.runner import build

    DECODING = ["probe", "annotations", "shots", "frames"]   # the stages of teacher_config before generate
    videos = [(flash_video, "a colour gradient"), (str(ROOT / "examples" / "videos" / "multishot.mp4"), "a short film")]
    manifest = subtitled_manifest(videos, tmp_path / "in")
    proxy = teacher_proxy
    proxy.reset()
    proxy.hold()
    outcome: dict = {}

    config = parse_config(teacher_config(manifest, tmp_path / "out", proxy.base_url))

    def run():
        try:
            outcome["result"] = build(config, progress=False)
        except BaseException as e:  # noqa: BLE001 (asserted below)
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    try:
        thread.start()
        deadline = time.time() + 240
        while time.time() < deadline and "error" not in outcome and (
                _mass_through(X._LOCAL[0], DECODING) < len(videos) - 1e-6 or proxy.counts["posts"] < 1):
            time.sleep(0.05)
        frames_through = _mass_through(X._LOCAL[0], DECODING)
        generate_batches = sum(r["stage"] == "generate" for r in list(X._LOCAL[0].records))
        asked = proxy.counts["posts"]   # generate had sent its first requests
    finally:
        proxy.release()
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    # both videos decoded and framed while the teacher's first answers were still held
    assert frames_through == pytest.approx(len(videos)) and asked >= 1 and generate_batches == 0, (frames_through, asked)
    result = outcome["result"]
    assert result.rows >= 2 and proxy.counts["forwarded"] >= result.rows


def test_an_error_in_a_stage_thread_ends_the_build_in_the_caller(tmp_path, inputs, in_process, monkeypatch):
    """A stage thread that fails stops the other stages and raises its error where `build` was called."""
    from vdata.pipelines import execution as X
    from vdata.pipelines.runner import build

    real = X.run_stage_on_table

    def failing(stage, table, *args, **kwargs):
        if stage.name == "quality":   # injected fault: the third stage of four dies on its first video
            raise RuntimeError("injected: the quality stage died")
        return real(stage, table, *args, **kwargs)

    monkeypatch.setattr(X, "run_stage_on_table", failing)
    with pytest.raises(RuntimeError, match="injected: the quality stage died"):
        build(parse_config(config(inputs, tmp_path / "out", "local")), progress=False)
    deadline = time.time() + 10
    while any(t.name.startswith("vdata-stage-") for t in threading.enumerate()) and time.time() < deadline:
        time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("vdata-stage-")]
    assert not list((tmp_path / "out" / "_ledger").glob("*.json"))   # nothing was committed


def test_a_video_that_met_an_unexpected_error_is_redone_by_the_next_run(tmp_path, inputs, flash_video, in_process,
                                                                          monkeypatch):
    """An `error` reject is vdata failing, not a verdict on the video (an unreadable FLV was one): the next
    run of the build redoes that video, with the fixed code, and nothing else."""
    import pyarrow.parquet as pq

    from vdata.pipelines.runner import build
    from vdata.stages import probe as probe_stage

    real, flash = probe_stage.probe_video, os.path.basename(flash_video)

    def failing(path, *args, **kwargs):
        if os.path.basename(path) == flash:   # injected fault: a bug that only this video meets
            raise ValueError("injected: probe bug")
        return real(path, *args, **kwargs)

    out = tmp_path / "out"
    monkeypatch.setattr(probe_stage, "probe_video", failing)
    build(parse_config(config(inputs, out, "local")), progress=False)
    rejects = pq.read_table(out / "rejects").to_pylist()
    assert [(r["stage"], r["reason"]) for r in rejects if flash in r["source_uri"]] == [("probe", "error")]
    clips_before = pq.read_table(out / "clips").to_pylist()
    assert clips_before and not any(flash in r["source_uri"] for r in clips_before)
    parts_before = {p.name: p.stat().st_mtime_ns for p in (out / "clips").glob("*.parquet")}

    monkeypatch.setattr(probe_stage, "probe_video", real)   # the bug fixed
    build(parse_config(config(inputs, out, "local")), progress=False)
    rejects = pq.read_table(out / "rejects").to_pylist()
    assert not [r for r in rejects if r["reason"] == "error"]
    clips = pq.read_table(out / "clips").to_pylist()
    assert any(flash in r["source_uri"] for r in clips)
    assert sorted(r["clip_id"] for r in clips if flash not in r["source_uri"]) == \
        sorted(r["clip_id"] for r in clips_before)
    # the other videos' parts were not written again
    assert all((out / "clips" / name).stat().st_mtime_ns == t for name, t in parts_before.items())


def test_a_ctrl_c_while_the_stage_threads_start_closes_cleanly():
    """A SIGINT that lands in `Thread.start` leaves the later threads unstarted; closing the stream joined them
    and raised "cannot join thread before it is started" over the interrupt (the fresh-clone run caught it: a
    traceback and status 1 instead of the one-line message and 130)."""
    import queue
    from types import SimpleNamespace

    from vdata.pipelines.local_run import _Stream

    stages = [(SimpleNamespace(name=n), None, None, None) for n in ("probe", "caption")]
    stream = _Stream(stages, queue.Queue())
    stream.threads[0].start()   # the interrupt came before the second one started
    stream.close()
    assert stream.stop.is_set() and stream.threads[1].ident is None
