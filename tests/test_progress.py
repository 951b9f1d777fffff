"""`vdata build` shows vdata's own progress (stage names, rows per stage, videos complete on disk), not
Ray's operator bars or hints; through a pipe it is one plain line every N seconds and nothing wraps; a
re-run of a finished build says so in one line. Real builds (probe + shots) on small rendered videos,
through a pipe and through a pseudo-terminal."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from vdata.media.synth import CUT_SOURCES, Segment, render_segments

ROOT = Path(__file__).resolve().parents[1]
RAY_NOISE = ("MapBatches", "StageTask", "Running Dataset", "logging_progress", "worker.py", "Started a local Ray",
             "Progress bars disabled", "core_worker", "Tip:")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory) -> Path:
    """Two short videos with one hard cut each (shots makes 2 clips of each) and a text file named .mp4
    (probe rejects it)."""
    d = tmp_path_factory.mktemp("progress_in")
    for i in range(2):
        render_segments(str(d / f"v{i}.mp4"), [Segment(CUT_SOURCES[i], 1.0), Segment(CUT_SOURCES[i + 2], 1.0)],
                        size=(160, 120))
    (d / "notes.mp4").write_text("not a video\n" * 20)
    return d


def _config(tmp_path: Path, inputs: Path, shots: dict | None = None, executor: str = "ray") -> Path:
    """`executor: ray` by default: these tests are about keeping Ray's own output away from vdata's."""
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump({
        "name": "progress", "input": [{"path": str(inputs)}],
        "output": {"dir": str(tmp_path / "out"), "mode": "resume"}, "ray": {"num_cpus": 2, "executor": executor},
        "stages": [{"probe": {}}, {"shots": shots or {}}]}))
    return path


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "RAY_AUTH_MODE": "disabled"}


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "vdata.cli", "build", *map(str, args)]


def _clips(tmp_path: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (tmp_path / "out" / "clips").glob("*.parquet"))


def _no_ray_noise_and_short(lines: list[str]) -> None:
    for line in lines:
        assert not any(n in line for n in RAY_NOISE), line
        assert len(line) <= 200, line


def test_through_a_pipe_plain_lines_then_a_resumed_rerun(two_videos, tmp_path):
    # shots as an actor pool: Ray's C++ core then writes an `E ... core_worker.cc` line to stderr
    cfg = _config(tmp_path, two_videos, shots={"resources": {"actors": True, "concurrency": 1}})
    env = {k: v for k, v in _env().items() if k != "COLUMNS"}
    done = subprocess.run(_cli(cfg, "--progress-every", "0.5"), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    _no_ray_noise_and_short(lines)
    progress = [ln for ln in lines if re.match(r"progress \d+:\d\d: ", ln)]
    assert len(progress) >= 2   # at least one tick and the final line
    assert _clips(tmp_path) == 4
    assert progress[-1].endswith(": 3/3 videos finished, done | on disk: 3 videos complete, 4 clips, 1 rejects "
                                 "| probe 3 in, 2 out, 1 rejected | shots 2 in, 4 out")
    # the summary: each path whole on its own line (rich would wrap them at 80 columns outside a terminal)
    out = tmp_path / "out"
    for name, path in (("data", out / "clips"), ("manifest", out / "manifest.json"), ("report", out / "report.html")):
        assert f"  {name + ':':<10}{path}" in lines
    ray_log = (out / "_logs" / "ray.log").read_text()   # where Ray's own output went
    assert ray_log.count("Started a local Ray instance") == 1 and "core_worker.cc" in ray_log

    again = subprocess.run(_cli(cfg), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed: 3 video(s) already complete, nothing to do" in again.stderr
    assert "rows in" not in again.stderr and "progress " not in again.stderr   # no table of zeros, no Ray


def test_in_process_build_shows_the_same_final_line(two_videos, tmp_path):
    """A small build runs without Ray (local_run.py): vdata's progress reads its in-process collector."""
    cfg = _config(tmp_path, two_videos, executor="auto")
    done = subprocess.run(_cli(cfg, "--progress-every", "0.5"), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    _no_ray_noise_and_short(lines)
    progress = [ln for ln in lines if re.match(r"progress \d+:\d\d: ", ln)]
    assert progress and progress[-1].endswith(": 3/3 videos finished, done | on disk: 3 videos complete, 4 clips, "
                                              "1 rejects | probe 3 in, 2 out, 1 rejected | shots 2 in, 4 out")
    assert not (tmp_path / "out" / "_logs" / "ray.log").exists()   # no Ray started


def _read_pty(master: int, proc: subprocess.Popen, timeout_s: float) -> str:
    chunks, deadline = [], time.time() + timeout_s
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:   # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", "replace")


def test_in_a_terminal_one_line_per_stage(two_videos, tmp_path):
    cfg = _config(tmp_path, two_videos)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))   # 40 rows, 120 columns
    env = {k: v for k, v in _env().items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(_cli(cfg), env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    try:
        text = _read_pty(master, proc, timeout_s=600)
        assert proc.wait(timeout=60) == 0, text[-3000:]
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    lines = [ANSI.sub("", ln).rstrip() for ln in re.split(r"\r?\n|\r", text)]
    _no_ray_noise_and_short(lines)
    assert not any(ln.startswith("progress ") for ln in lines)   # the live block, not the log lines
    stage_lines = {name: [ln for ln in lines if re.match(rf"{name}\s+\S", ln)]
                   for name in ("probe", "shots", "finished", "on disk")}
    assert all(stage_lines.values()), lines
    # the block's last state: every video through both stages and on disk
    assert stage_lines["probe"][-1].endswith("3/3 videos in, 2 videos out, 1 rejected")
    assert stage_lines["shots"][-1].endswith("2/2 videos in, 4 clips out")
    assert "3/3 videos through every stage" in stage_lines["finished"][-1] and stage_lines["finished"][-1].endswith("done")
    assert stage_lines["on disk"][-1].endswith("3/3 videos complete, 4 clips + 1 rejects written")
    assert _clips(tmp_path) == 4
    assert any(ln.startswith("done in ") and ln.endswith("4 clips, 1 rejects") for ln in lines)


def test_the_plain_line_stays_short_and_the_eta_waits_for_a_finished_video():
    """Eleven stages: the log line switches to its compact form rather than run past 200 characters."""
    import io

    from rich.console import Console

    from vdata.pipelines.progress import MAX_LINE, BuildProgress

    stages = [(f"stage_number_{i}", "clips", "clips") for i in range(11)]
    shown = BuildProgress(Console(file=io.StringIO(), width=80), stages, 10, "clips", every_s=60)
    assert shown.eta() == "ETA after the first video"
    for i in range(11):
        shown.stage_rows(i, 100, 90, 10, mass_out=4.0 if i == 10 else 0.0, mass_rejected=0.1)
    line = shown.plain_line()
    assert len(line) <= MAX_LINE and "stage_number_0 100>90-10" in line and line.endswith(" more")
    assert shown.videos_finished == 5   # 4.0 out of the last stage + 11 x 0.1 rejected
    assert re.fullmatch(r"ETA \d+:\d\d", shown.eta())


def test_ray_log_records_go_to_the_file_with_secrets_masked(tmp_path):
    import logging

    from vdata.pipelines.progress import ray_output_to_file
    from vdata.teachers.redaction import MASK

    secret = "sk-progress-test-0123456789"
    logger = logging.getLogger("ray.data._internal.some_module")
    path = tmp_path / "_logs" / "ray.log"
    console = logging.StreamHandler()   # stands for the console handler Ray installs on import
    logging.getLogger("ray").addHandler(console)
    before = {n: list(logging.getLogger(n).handlers) for n in ("ray", "ray.data")}
    try:
        with ray_output_to_file(str(path), verbose=False, secrets=(secret,)):
            assert console not in logging.getLogger("ray").handlers
            logger.warning("Tip: a hint naming %s", secret)
        assert {n: list(logging.getLogger(n).handlers) for n in before} == before   # the console is back
    finally:
        logging.getLogger("ray").removeHandler(console)
    text = path.read_text()
    assert "Tip: a hint naming" in text and secret not in text and MASK in text


def test_the_cli_console_does_not_wrap_a_long_command_outside_a_terminal():
    """An export's training command printed into a log must stay one copyable line (rich wrapped it at 80)."""
    command = "  note: train with --data_path " + "/data/some_long_folder_name" * 8 + "/llava.yaml --image_folder /x"
    code = f"from vdata.cli import console\nconsole.print({command!r})\n"
    env = {k: v for k, v in _env().items() if k != "COLUMNS"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [command]
