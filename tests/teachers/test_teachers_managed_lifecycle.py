"""ManagedServer process lifecycle (start on a free port, /health, stop by PID, exit, signals).

A stand-in server script replaces the engine so these run in seconds; the real vLLM server is
exercised in test_server.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from vdata.teachers.managed import ManagedServer, ServerStartError

REPO = Path(__file__).resolve().parents[2]

FAKE_SERVER = textwrap.dedent(
    """
    import sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    port = int(sys.argv[1]); delay = float(sys.argv[2]); mode = sys.argv[3]
    if mode == "crash":
        print("fatal: cannot load model", flush=True); sys.exit(3)
    time.sleep(delay)
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            ok = self.path == "/health" and mode != "unhealthy"
            self.send_response(200 if ok else 503); self.send_header("Content-Length", "0"); self.end_headers()
    HTTPServer(("127.0.0.1", port), H).serve_forever()
    """
)


def _fake_cls(script: Path, delay: float = 0.3, mode: str = "ok"):
    class FakeServer(ManagedServer):
        def command(self, port: int) -> list[str]:
            return [sys.executable, str(script), str(port), str(delay), mode]

    return FakeServer


@pytest.fixture
def fake_script(tmp_path):
    p = tmp_path / "fake_server.py"
    p.write_text(FAKE_SERVER)
    return p


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0); it is gone for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_start_health_stop(fake_script, tmp_path):
    srv = _fake_cls(fake_script)("vllm", "model-dir", log_dir=tmp_path, startup_timeout_s=30)
    with srv:
        assert srv.alive() and srv.port and srv.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(srv.root_url + "/health").status_code == 200
        pid = srv.pid
        assert srv.startup_s is not None and srv.startup_s >= 0.3
    assert srv.pid is None and _gone(pid)
    srv.stop()  # idempotent


def test_startup_failure_reports_log_tail(fake_script, tmp_path):
    srv = _fake_cls(fake_script, mode="crash")("vllm", "m", log_dir=tmp_path, startup_timeout_s=30)
    with pytest.raises(ServerStartError, match="cannot load model"):
        srv.start()
    assert srv.pid is None


@pytest.mark.timeout(60)   # the 2 s start-up timeout must end start(); a start that waits on fails here
def test_startup_timeout_stops_process(fake_script, tmp_path):
    srv = _fake_cls(fake_script, mode="unhealthy")("vllm", "m", log_dir=tmp_path, startup_timeout_s=2)
    with pytest.raises(ServerStartError, match="not healthy"):
        srv.start()
    assert srv.pid is None


def test_commands_for_both_engines():
    v = ManagedServer("vllm", "/m", served_model_name="tiny", engine_args={"max_model_len": 2048, "enforce_eager": True})
    cmd = v.command(1234)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert "--served-model-name" in cmd and "--enforce-eager" in cmd and cmd[cmd.index("--port") + 1] == "1234"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    ll = ManagedServer("llamacpp", "/m.gguf", engine_args={"n_ctx": 2048}).command(5)
    assert ll[1:3] == ["-m", "llama_cpp.server"] and "--n_ctx" in ll
    with pytest.raises(ValueError):
        ManagedServer("sglang", "/m")


_CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from vdata.teachers.managed import ManagedServer
    class FakeServer(ManagedServer):
        def command(self, port):
            return [sys.executable, {script!r}, str(port), "0.1", "ok"]
    srv = FakeServer("vllm", "m", startup_timeout_s=30).start()
    print(srv.pid, flush=True)
    if {mode!r} == "exit":
        sys.exit(0)          # atexit stops the server
    if {mode!r} == "raise":
        raise RuntimeError("stage crashed")
    time.sleep(60)           # killed by a signal
    """
)


@pytest.mark.parametrize("mode,sig", [("sleep", signal.SIGINT), ("sleep", signal.SIGTERM), ("exit", None),
                                      ("raise", None)])
def test_server_stopped_on_exit_error_and_signals(fake_script, tmp_path, mode, sig):
    child = tmp_path / "child.py"
    child.write_text(_CHILD.format(repo=str(REPO), script=str(fake_script), mode=mode))
    p = subprocess.Popen([sys.executable, str(child)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server_pid = int(p.stdout.readline().strip())
        if sig is not None:
            assert not _gone(server_pid)
            p.send_signal(sig)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    deadline = time.monotonic() + 10
    while not _gone(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(server_pid), f"server {server_pid} survived its owner ({mode}, {sig})"


def test_a_request_to_a_server_that_never_comes_up_ends_after_wait_ready_s():
    """`wait_ready_s` (the workers' config for a managed server still loading): the first request polls the
    server while the others wait on it, and gives up with a connection error once the wait is over. The
    wait is not repeated: the others then take their own retries (none here) and fail as well."""
    from vdata.teachers import TeacherRequest, build_teacher
    from vdata.teachers.managed import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"   # nothing listens there
    teacher = build_teacher("waiting", {"backend": "openai", "model": "m", "base_url": url, "wait_ready_s": 1.5,
                                        "max_retries": 0})
    try:
        results = teacher.generate([TeacherRequest.from_prompt(f"q{i}") for i in range(3)])
    finally:
        teacher.close()
    assert [r.error_kind for r in results] == ["connection"] * 3
    waited = [r for r in results if "did not answer within wait_ready_s=1.5" in r.error]
    assert len(waited) == 1 and waited[0].attempts == 0
    assert all(r.attempts == 1 for r in results if r is not waited[0])
