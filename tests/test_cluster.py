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


@pytest.fixture
def two_node_cluster():
    """A head and a second node, each a separate `ray start` with one CPU (distinct node ids)."""
    temp = tempfile.mkdtemp(prefix="vr", dir="/tmp")
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    common = ["--num-cpus=1", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
    try:
        subprocess.run([str(BIN / "ray"), "start", "--head", f"--port={port}", "--include-dashboard=false",
                        f"--temp-dir={temp}", *common], check=True, env=env, capture_output=True, timeout=120)
        subprocess.run([str(BIN / "ray"), "start", f"--address=127.0.0.1:{port}", *common,
                        f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}"],
                       check=True, env=env, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}"
    finally:
        kill_session(temp)
        time.sleep(1)
        shutil.rmtree(temp, ignore_errors=True)


def test_multi_node_build_uses_both_nodes_and_matches_local(tmp_path, two_node_cluster, cut_video, bikes, quality_videos):
    import json

    inputs = tmp_path / "in"
    inputs.mkdir()
    for p in [cut_video[0], bikes, *quality_videos.values()]:
        shutil.copy(p, inputs)

    def run(out, address=None):
        cfg = {"name": "nodes", "input": [{"path": str(inputs)}], "output": {"dir": str(out)},
               "stages": [{"probe": {}}, {"shots": {}}, {"quality": {"text": {"enabled": False}}}]}
        p = tmp_path / f"{out.name}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        cmd = [str(BIN / "vdata"), "build", str(p), "--quiet"] + (["--address", address] if address else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        clips = pads.dataset(str(out / "clips"), format="parquet").to_table().sort_by("clip_id")
        return clips, json.loads((out / "manifest.json").read_text())

    cluster_clips, manifest = run(tmp_path / "cluster", two_node_cluster)
    nodes = set()
    for s in manifest["stages"]:
        nodes.update(s["nodes"])
    assert len(nodes) == 2, manifest["stages"]
    local_clips, _ = run(tmp_path / "local")
    drop = ["source_uri", "path"]
    assert cluster_clips.drop_columns(drop).equals(local_clips.drop_columns(drop))
