"""Keep an embedded Ray from outliving the vdata process that started it, however that process ends.

Ray ties its head processes (GCS, raylet) to the driver with PR_SET_PDEATHSIG, but the processes
the raylet starts (dashboard agent, runtime-env agent, workers) only watch their parent, and after a
`kill -9` of `vdata build` they were still alive 60 s later. Ray 2.60 has no option for that, so
vdata starts this guard next to an embedded Ray:

- a separate process in its own session (a signal to the CLI's process group does not reach it),
  with the read end of a pipe as stdin whose write end only the CLI holds: when the CLI exits for any
  reason, SIGKILL included, the kernel closes it and the guard reads EOF. No pid polling, so a reused
  pid can never look alive;
- while it waits, it records the Ray processes of this run every `POLL_S`: the CLI's descendants that
  are Ray processes (`raylet`, `gcs_server`, `ray::` workers, anything started from the Ray package or
  naming the session directory) and everything below them. A record is (pid, create time), so a pid
  reused by an unrelated process later is never touched;
- a poll can miss what is short-lived in the tree: CI saw both agents outlive a `kill -9` issued 0.3 s
  after they started. The raylet dies with the CLI (PDEATHSIG), its agents are re-parented, and they
  have renamed themselves ("ray::DashboardAgent"), which wipes the session directory from their
  command line. So the sweep also finds this run's processes by what they cannot drop: the log files
  they hold open inside the session directory (every agent and worker writes there), and a per-run
  token the CLI puts in its environment only while `ray.init()` runs (`RUN_ENV`, inherited by GCS,
  raylet and workers). The token does not cover the agents: renaming itself overwrites a process's
  environment block too (`/proc/<pid>/environ` of `ray::DashboardAgent` reads empty), and CI saw an
  agent outlive a `kill -9` sent before `ray.init()` returned, when the CLI had not yet told the
  guard the session directory. So the guard reads that directory itself from the first Ray process
  of its owner whose command line names one (GCS starts first, with `--log_dir=<session>/logs`);
- on EOF it sends SIGTERM to every recorded process still alive, and to every process naming the
  session directory (which the CLI sends once Ray is up), holding a file in it, or carrying the token; waits
  `GRACE_S`, then SIGKILLs the rest.

After a normal `ray.shutdown()` the CLI closes the pipe itself; the guard then finds nothing or only
stragglers, and exits. Only what this run started is touched: other Ray clusters and other processes
of the CLI (teacher servers) are not Ray processes of this session.

Usage (in the CLI): `guard = RayGuard.start()` before `ray.init()`, `with guard.marking(): ray.init()`,
`guard.set_session_dir(path)` after it, `guard.close()` after `ray.shutdown()`.
"""
from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid

POLL_S = 0.5
GRACE_S = 3.0
RUN_ENV = "VDATA_RAY_RUN"
_RAY_MARKERS = ("raylet", "gcs_server", "ray::", "/ray/", "ray_process_reaper", "default_worker.py")
# Ray's session directories are named session_<date>_<time>_<usec>_<driver pid>
_SESSION_DIR = re.compile(r"(/[^\s=]*/session_\d{4}-\d\d-\d\d_[\d_-]+)(?=/|\s|$)")


class RayGuard:
    """The CLI's handle on its guard process."""

    def __init__(self, process: subprocess.Popen, token: str):
        self.process = process
        self.token = token

    @classmethod
    def start(cls) -> "RayGuard":
        token = uuid.uuid4().hex
        # the owner's clock, not the guard's: on a loaded machine the guard's interpreter can take more than
        # the poll's one-second slack to start, and the processes started meanwhile would be left out
        since = repr(time.time())
        proc = subprocess.Popen([sys.executable, "-m", "vdata.pipelines.ray_guard", str(os.getpid()), token, since],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
        return cls(proc, token)

    @contextlib.contextmanager
    def marking(self):
        """Processes started inside this block carry the run's token (see the module docstring).
        Only this one variable is restored afterwards (not a copy of the whole environment, as
        `mock.patch.dict` would): what `ray.init()` sets in `os.environ` meanwhile must stay."""
        before = os.environ.get(RUN_ENV)
        os.environ[RUN_ENV] = self.token
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(RUN_ENV, None)
            else:
                os.environ[RUN_ENV] = before

    @property
    def pid(self) -> int:
        return self.process.pid

    def set_session_dir(self, session_dir: str) -> None:
        try:
            self.process.stdin.write(f"session {session_dir}\n".encode())
            self.process.stdin.flush()
        except (OSError, ValueError):
            pass

    def close(self, wait_s: float = 10.0) -> None:
        """Ray was shut down: let the guard sweep stragglers and exit."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass


def _is_ray(text: str, session_dir: str | None) -> bool:
    """A command line (or, where it is empty, the process name) of a Ray process of this run."""
    return _names_session(text, session_dir) or any(m in text for m in _RAY_MARKERS)


def _names_session(cmdline: str, session_dir: str | None) -> bool:
    return bool(session_dir) and session_dir in cmdline


def _snapshot(owner, session_dir: str | None, since: float, seen: dict[int, float]) -> str | None:
    """Add this run's Ray processes (and everything below them) to `seen` (pid -> create time); return
    the session directory, read from their command lines where it was not known yet.

    One pass over the process table per poll, the tree built from it: psutil's `children(recursive=True)`
    reads every process's parent again on each call, and a call per Ray process made a poll cost 51 ms of
    CPU with 15 Ray processes (10% of a core at two polls a second); one pass costs 21 ms."""
    import psutil

    procs: dict[int, psutil.Process] = {}
    cmdlines: dict[int, str] = {}
    kids: dict[int, list[int]] = {}
    for p in psutil.process_iter(["ppid", "cmdline", "create_time"]):   # one stat and one cmdline read each
        procs[p.pid], cmdlines[p.pid] = p, _cmdline(p)
        kids.setdefault(p.info["ppid"], []).append(p.pid)

    def below(pid: int) -> list[int]:
        found, todo = [], list(kids.get(pid, ()))
        while todo:
            child = todo.pop()
            found.append(child)
            todo.extend(kids.get(child, ()))
        return found

    def text(pid: int) -> str:
        if cmdlines[pid]:
            return cmdlines[pid]
        try:   # a process with no command line (a zombie, a kernel thread): its name, read only here
            return procs[pid].name()
        except psutil.Error:
            return ""

    roots = []
    try:
        if owner.is_running():   # a dead owner's pid may be another process's now: its tree is not ours
            roots = [pid for pid in below(owner.pid)
                     if (procs[pid].info["create_time"] or 0) >= since - 1 and _is_ray(text(pid), session_dir)]
    except psutil.Error:
        pass
    if not session_dir:
        session_dir = next((m.group(1) for pid in roots if (m := _SESSION_DIR.search(cmdlines[pid]))), None)
    if session_dir:
        roots += [pid for pid, cmdline in cmdlines.items() if _names_session(cmdline, session_dir)]
    for pid in roots + [c for r in roots for c in below(r)]:
        created = procs[pid].info["create_time"]
        if created is not None:
            seen.setdefault(pid, created)
    return session_dir


def _children(proc) -> list:
    import psutil

    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _cmdline(proc) -> str:
    """The command line `process_iter(["cmdline"])` already read."""
    return " ".join(proc.info.get("cmdline") or [])


def _of_this_run(proc, session_dir: str | None, token: str) -> bool:
    """Found by the sweep's one scan of every process: cheapest test first (open files need a readlink
    per descriptor)."""
    return _names_session(_cmdline(proc), session_dir) or _carries(proc, token) or _holds_file_in(proc, session_dir)


def _carries(proc, token: str) -> bool:
    try:
        return proc.environ().get(RUN_ENV) == token
    except Exception:   # another user's process, or gone
        return False


def _holds_file_in(proc, session_dir: str | None) -> bool:
    if not session_dir:
        return False
    prefix = session_dir.rstrip("/") + "/"
    try:
        return any(f.path.startswith(prefix) for f in proc.open_files())
    except Exception:   # another user's process, or gone
        return False


def _sweep(seen: dict[int, float], session_dir: str | None, token: str, owner_pid: int) -> int:
    """SIGTERM, grace, SIGKILL for every recorded process still alive (same pid and create time),
    and every process that names the session directory, holds a file in it, or carries the token."""
    import psutil

    me = os.getpid()
    spared = {me, owner_pid}   # after a normal shutdown the owner still holds its driver logs in the session dir
    targets = []
    for pid, created in list(seen.items()):
        try:
            p = psutil.Process(pid)
            if pid not in spared and abs(p.create_time() - created) < 1e-3:
                targets.append(p)
                targets += [c for c in _children(p) if c.pid not in spared]   # started after the last look
        except psutil.Error:
            continue
    known = spared | {p.pid for p in targets}
    targets += [p for p in psutil.process_iter(["cmdline"])
                if p.pid not in known and _of_this_run(p, session_dir, token)]
    targets = list({p.pid: p for p in targets}.values())
    for p in targets:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(targets, timeout=GRACE_S)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=GRACE_S)
    return len(targets)


def main(owner_pid: int, token: str, since: float) -> int:
    import psutil

    try:
        owner = psutil.Process(owner_pid)
    except psutil.Error:   # gone before this interpreter was up: its pipe is closed, sweep what it left
        owner = None
    seen: dict[int, float] = {}
    session_dir: str | None = None
    buffer = b""
    fd = sys.stdin.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:   # the CLI is gone or done: nothing of its Ray may stay
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.startswith(b"session "):   # the CLI's word wins over what a command line suggested
                    session_dir = line[len(b"session "):].decode()
        if owner is not None:
            session_dir = _snapshot(owner, session_dir, since, seen)
    _sweep(seen, session_dir, token, owner_pid)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C meant for the CLI must not stop the guard
    sys.exit(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
