"""`kill -9` of `vdata build` must not leave its embedded Ray running (dashboard agent, runtime-env
agent, workers): the guard process sweeps them. A real CLI, a real Ray, a real SIGKILL."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from vdata.media.synth import Segment, render_segments

BIN = Path(sys.executable).parent
# the agents the raylet starts, by script path or by the title they give themselves once running
AGENTS = (("dashboard/agent.py", "ray::DashboardAgent"), ("runtime_env/agent", "ray::RuntimeEnvAgent"))
SWEEP_WAIT_S = 30   # the guard reacts within a second; Ray's own exit paths take a few more

psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.cluster


def _cmd(p) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def _run_processes(cli, marker: str) -> dict[int, tuple[float, str]]:
    """The CLI's descendants and every process naming this run's Ray temp dir: pid -> (create time, cmd)."""
    procs = {}
    try:
        below = cli.children(recursive=True)
    except psutil.Error:
        below = []
    for p in below + [p for p in psutil.process_iter() if marker in _cmd(p)]:
        try:
            procs[p.pid] = (p.create_time(), _cmd(p)[:160])
        except psutil.Error:
            pass
    procs.pop(os.getpid(), None)
    return procs


def _alive(procs: dict[int, tuple[float, str]], marker: str) -> list[str]:
    left = []
    for pid, (created, cmd) in procs.items():
        try:
            p = psutil.Process(pid)
            if abs(p.create_time() - created) < 1e-3 and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{pid}: {cmd}")
        except psutil.Error:
            pass
    for p in psutil.process_iter():
        if marker in _cmd(p) and p.pid not in procs and p.pid != os.getpid():
            left.append(f"{p.pid}: {_cmd(p)[:160]}")
    return left


def _kill_all(marker: str, procs: dict) -> None:
    for pid in list(procs) + [p.pid for p in psutil.process_iter() if marker in _cmd(p)]:
        try:
            if pid != os.getpid():
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@contextlib.contextmanager
def _owner_script(script: Path, *args):
    """Run `script`, which starts a guard and prints its pid and its test processes' pids on one line:
    yields the owner and those processes; every one of them is killed afterwards."""
    # the arguments (the Ray session directory among them) reach the script through its environment, not its
    # command line: the guard takes any process whose command line names the session for one of Ray's, and
    # everything below it, so an owner naming it made the guard sweep an orphan it spawned elsewhere whenever a
    # poll caught the orphan's short-lived parent (a loaded CI machine). vdata's CLI never names the session.
    run = ("import os, runpy, sys; sys.argv = [sys.argv[1], *os.environ['VDATA_TEST_ARGS'].split('\\n')[1:]]; "
           "runpy.run_path(sys.argv[0], run_name='__main__')")
    owner = subprocess.Popen([sys.executable, "-c", run, str(script)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
                                  "VDATA_TEST_ARGS": "\n".join(["", *map(str, args)])})
    procs = [psutil.Process(int(pid)) for pid in owner.stdout.readline().split()]
    try:
        yield owner, procs
    finally:
        for p in [owner, *procs]:
            try:
                p.kill()
            except (psutil.Error, OSError):
                pass


def _kill_owner_and_await_sweep(owner: subprocess.Popen, guard) -> None:
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    guard.wait(timeout=SWEEP_WAIT_S)   # the guard finished its sweep


def _await_guard_running(guard, timeout_s: float = 60) -> None:
    """Until the guard has imported psutil (its extension is mapped): its polls have begun. A loaded
    machine can take seconds to start its interpreter, and a guard killed off before its first poll
    has nothing recorded."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if "_psutil_linux" in Path(f"/proc/{guard.pid}/maps").read_text():
                return
        except OSError:
            return
        time.sleep(0.1)


def _gone(p) -> bool:
    return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE


def test_sigkill_of_vdata_build_leaves_no_ray_process(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i, source in enumerate(("testsrc2", "mandelbrot", "smptebars")):   # enough work to be mid-run when killed
        render_segments(str(src / f"v{i}.mp4"), [Segment(source, 8.0), Segment("life", 8.0)], size=(320, 240))
    cfg_path = tmp_path / "build.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "name": "guard", "input": [{"path": str(src)}], "output": {"dir": str(tmp_path / "out")},
        "ray": {"num_cpus": 2, "executor": "ray"},   # the guard is for the embedded Ray
        "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}}, {"quality": {"text": {"enabled": False}}},
                   {"frames": {"num_frames": 8}}]}))
    ray_tmp = tempfile.mkdtemp(prefix="vk", dir="/tmp")   # Ray's socket paths must stay short
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": ray_tmp}
    cli = subprocess.Popen([str(BIN / "vdata"), "build", str(cfg_path), "--quiet"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict = {}
    try:
        handle = psutil.Process(cli.pid)
        deadline = time.time() + 240
        # wait until Ray is fully up: both agents the raylet starts are running
        while cli.poll() is None and time.time() < deadline:
            seen.update(_run_processes(handle, ray_tmp))
            cmds = " ".join(cmd for _, cmd in seen.values())
            if all(any(name in cmds for name in agent) for agent in AGENTS) and any("default_worker.py" in c or "ray::" in c for _, c in seen.values()):
                break
            time.sleep(0.2)
        assert cli.poll() is None, "the build finished before Ray was up: the test proved nothing"
        seen.update(_run_processes(handle, ray_tmp))
        assert any("raylet" in c for _, c in seen.values()) and len(seen) >= 5, seen
        cli.send_signal(signal.SIGKILL)
        cli.wait()
        deadline = time.time() + SWEEP_WAIT_S
        while _alive(seen, ray_tmp) and time.time() < deadline:
            time.sleep(0.5)
        assert _alive(seen, ray_tmp) == [], "Ray processes outlived the killed CLI"
    finally:
        if cli.poll() is None:
            cli.kill()
        _kill_all(ray_tmp, seen)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_guard_spares_what_is_not_its_run(tmp_path):
    """The guard's sweep after its owner dies touches the owner's Ray processes only: a sibling process
    of the owner that is not Ray, and an unrelated process, stay alive."""
    script = tmp_path / "owner.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "from vdata.pipelines.ray_guard import RayGuard\n"
        "g = RayGuard.start()\n"
        "ray_like = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', 'raylet-standin'])\n"
        "other = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', 'teacher-server'])\n"
        "print(g.pid, ray_like.pid, other.pid, flush=True)\n"
        "time.sleep(120)\n")
    with _owner_script(script) as (owner, (guard, ray_like, other)):
        _await_guard_running(guard)
        time.sleep(1.5)   # a few guard polls: it has seen the children
        _kill_owner_and_await_sweep(owner, guard)
        assert _gone(ray_like)
        assert not _gone(other)   # the guard spared this


def test_guard_sweeps_orphans_by_run_token_and_by_files_held_in_the_session_dir(tmp_path):
    """What `ray.init()` starts can lose every trace the poll relies on before the guard looks: the
    raylet dies with the CLI, its agents are re-parented and have renamed themselves. An orphan that
    left the owner's tree at once and names nothing of Ray is still swept when it was started inside
    `marking()` (the token) or holds a file open in the session directory (the agents' logs). One
    started after the block, logging elsewhere, is not."""
    session = tmp_path / "session_x"
    session.mkdir()
    script = tmp_path / "owner.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "from vdata.pipelines.ray_guard import RayGuard\n"
        "g = RayGuard.start()\n"
        "def orphan(log):\n"   # a double fork: the grandchild is re-parented before the guard's first poll
        "    code = ('import subprocess, sys; print(subprocess.Popen([sys.executable, \"-c\", \"import time; '\n"
        "            'time.sleep(120)\"], start_new_session=True, stdout=open(sys.argv[1], \"w\"), '\n"
        "            'stderr=subprocess.DEVNULL).pid)')\n"
        "    out = subprocess.run([sys.executable, '-c', code, log], capture_output=True, text=True, check=True)\n"
        "    return int(out.stdout)\n"
        "with g.marking():\n"
        "    marked = orphan(sys.argv[2] + '/elsewhere_1.log')\n"
        "g.set_session_dir(sys.argv[1])\n"
        "logging = orphan(sys.argv[1] + '/logs_agent.out')\n"
        "unmarked = orphan(sys.argv[2] + '/elsewhere_2.log')\n"
        "print(g.pid, marked, logging, unmarked, flush=True)\n"
        "time.sleep(120)\n")
    with _owner_script(script, session, tmp_path) as (owner, (guard, marked, logging, unmarked)):
        assert all(p.ppid() != owner.pid for p in (marked, logging, unmarked))
        _await_guard_running(guard)
        _kill_owner_and_await_sweep(owner, guard)
        assert _gone(marked) and _gone(logging)
        assert not _gone(unmarked)


def test_guard_reads_the_session_dir_from_the_first_ray_command_line(tmp_path):
    """A `kill -9` before `ray.init()` returns: the CLI never told the guard the session directory, and
    an agent that renamed itself has neither the token (its environment block is overwritten) nor a
    command line naming the session. The guard read the directory from GCS's command line, so an orphan
    holding a log file there is swept; one logging elsewhere is not."""
    session = tmp_path / "ray" / "session_2026-11-28_01-06-44_441992_4242"
    (session / "logs").mkdir(parents=True)
    script = tmp_path / "owner.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "from vdata.pipelines.ray_guard import RayGuard\n"
        "g = RayGuard.start()\n"
        "gcs = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', 'gcs_server',\n"
        "                        '--log_dir=' + sys.argv[1] + '/logs'])\n"
        "time.sleep(2.0)\n"   # the guard polls twice a second: it has read GCS's command line
        "def orphan(log):\n"   # its parent lives 1.5 s more: the guard's polls see it below the owner
        "    code = ('import subprocess, sys, time; print(subprocess.Popen([sys.executable, \"-c\", \"import time; '\n"
        "            'time.sleep(120)\"], start_new_session=True, stdout=open(sys.argv[1], \"w\"), '\n"
        "            'stderr=subprocess.DEVNULL).pid, flush=True); time.sleep(1.5)')\n"
        "    out = subprocess.run([sys.executable, '-c', code, log], capture_output=True, text=True, check=True)\n"
        "    return int(out.stdout)\n"
        "agent = orphan(sys.argv[1] + '/logs/dashboard_agent.log')\n"
        "other = orphan(sys.argv[2] + '/elsewhere.log')\n"
        "print(g.pid, gcs.pid, agent, other, flush=True)\n"
        "time.sleep(120)\n")
    with _owner_script(script, session, tmp_path) as (owner, (guard, gcs, agent, other)):
        _await_guard_running(guard)
        _kill_owner_and_await_sweep(owner, guard)
        assert _gone(gcs) and _gone(agent)
        assert not _gone(other)


def test_a_normal_shutdown_sweeps_nothing_of_the_owner(tmp_path):
    """After `ray.shutdown()` the driver still holds its own log files in the session directory: the
    guard's sweep on a normal close must spare the process that started it (it once SIGTERMed it)."""
    ray_tmp = tempfile.mkdtemp(prefix="vk", dir="/tmp")
    code = ("import time\n"
            "from vdata.pipelines import ray_session\n"
            "ray_session.start_local_ray(num_cpus=1)\n"
            "ray_session.stop_local_ray()\n"
            "time.sleep(1.0)\n"   # a late signal would land here
            "print('survived', flush=True)\n")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
                              env={**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": ray_tmp,
                                   "PYTHONPATH": os.pathsep.join(sys.path)})
        assert done.returncode == 0 and "survived" in done.stdout, (done.returncode, done.stderr[-2000:])
    finally:
        _kill_all(ray_tmp, {})
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _stopped_in_session(session: int) -> list[str]:
    """Processes of this session stopped by job control (state T): what a terminal's SIGTTOU leaves."""
    out = []
    for p in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if os.getsid(p.info["pid"]) == session and p.info["status"] == psutil.STATUS_STOPPED:
                out.append(f"{p.info['pid']}: {' '.join(p.info['cmdline'] or [])[:120]}")
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return out


def test_a_build_started_from_a_terminal_is_not_stopped_by_job_control(tmp_path):
    """`vdata build` typed in a terminal, through Ray: a Ray worker runs in a process group of its own, in the
    background of the terminal's session, and PySceneDetect's `ffmpeg -v quiet` probe in it set terminal
    modes on the inherited tty: SIGTTOU stopped the worker and the build hung in `shots` for good. Run in a
    real pseudo-terminal, the build finishes, and no process of its session is ever seen stopped."""
    import pty
    import select

    src = tmp_path / "in"
    src.mkdir()
    for i, source in enumerate(("testsrc2", "smptebars")):
        render_segments(str(src / f"v{i}.mp4"), [Segment(source, 1.5), Segment("mandelbrot", 1.5)], size=(160, 96))
    cfg_path = tmp_path / "build.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "name": "tty", "input": [{"path": str(src)}], "output": {"dir": str(tmp_path / "out")},
        "ray": {"num_cpus": 2, "executor": "ray"}, "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}}]}))
    ray_tmp = tempfile.mkdtemp(prefix="vk", dir="/tmp")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": ray_tmp, "TERM": "xterm"}
    pid, fd = pty.fork()
    if pid == 0:   # the child: session leader with the pseudo-terminal as its controlling terminal and stdin
        os.execve(str(BIN / "vdata"), [str(BIN / "vdata"), "build", str(cfg_path)], env)
    output, status, stopped = b"", None, []
    try:
        while status is None:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    output += os.read(fd, 65536)
                except OSError:   # the terminal closed: the build has exited
                    pass
            stopped = _stopped_in_session(pid)
            assert not stopped, f"stopped by job control: {stopped}\n{output.decode(errors='replace')[-2000:]}"
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(code)
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    text = output.decode(errors="replace")
    assert status == 0, text[-3000:]
    assert (tmp_path / "out" / "manifest.json").is_file()
