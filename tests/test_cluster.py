"""The same config on an explicit Ray cluster started with `ray start --head` on loopback."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

pytestmark = pytest.mark.cluster
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_session(marker: str) -> None:
    """Stop only the Ray processes of this test's cluster (`ray stop` would hit every Ray on the box)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        except OSError:
            continue
        if marker in cmd and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def ray_head():
    temp = tempfile.mkdtemp(prefix="vr", dir="/tmp")
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    subprocess.run([str(BIN / "ray"), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                    "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
                   check=True, env=env, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        kill_session(temp)
        time.sleep(1)
        shutil.rmtree(temp, ignore_errors=True)


def test_build_with_address_on_a_started_cluster(tmp_path, ray_head, cut_video):
    cfg = {"name": "cluster", "input": [{"path": cut_video[0]}], "output": {"dir": str(tmp_path / "out")},
           "stages": [{"probe": {}}, {"shots": {}}]}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run([str(BIN / "vdata"), "build", str(p), "--address", ray_head, "--quiet"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pads.dataset(str(tmp_path / "out" / "clips"), format="parquet").to_table()
    assert table.num_rows == 7
    import json

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["ray"]["address"] == ray_head
    assert all(s["nodes"] for s in manifest["stages"])
