"""Inputs, output, ledger and resume on object storage: a real S3 API (moto's server, on loopback,
started here), real videos uploaded to it, real builds reading and writing `s3://`; an http(s) input
served by a loopback `http.server`; and the routing of gs:// and hf:// to their filesystems."""
from __future__ import annotations

import functools
import http.server
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

from conftest import copy_to
from test_cluster import kill_session, two_node_cluster  # noqa: F401  (a fixture)
from test_web_clips import v2d_dir  # noqa: F401  (a fixture)
from vdata.media import storage as S
from vdata.pipelines.runner import build
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

KEY_ENV, SECRET_ENV = "VDATA_TEST_S3_KEY", "VDATA_TEST_S3_SECRET"
SECRET = "moto-secret-" + os.urandom(6).hex()   # must never show in an output or a log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server on a free loopback port; the credentials reach vdata through `${VAR}`s."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # one line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._port}"
    old = {k: os.environ.get(k) for k in (KEY_ENV, SECRET_ENV)}
    os.environ.update({KEY_ENV: "testing-key", SECRET_ENV: SECRET})
    fs = s3fs.S3FileSystem(key="testing-key", secret=SECRET, endpoint_url=endpoint, use_listings_cache=False)
    try:
        yield endpoint, fs
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def videos(tmp_path_factory, cut_video, flash_video):
    """Four real videos of distinct sizes (no two share content)."""
    d = tmp_path_factory.mktemp("s3_videos")
    for p in (cut_video[0], flash_video, str(ROOT / "examples" / "videos" / "multishot.mp4"),
              str(ROOT / "examples" / "videos" / "blurred.mp4")):
        copy_to(p, d)
    return d


def _bucket(fs, name: str, videos: Path) -> str:
    fs.mkdir(name)
    for p in sorted(videos.iterdir()):
        fs.put_file(str(p), f"{name}/in/{p.name}")
    return name


def _config(inputs: list[dict], out: str, endpoint: str, rows_per_file: int = 50) -> dict:
    return {"name": "s3", "input": inputs, "output": {"dir": out, "rows_per_file": rows_per_file},
            "ray": {"num_cpus": 2},
            "storage": {"s3": {"endpoint_url": endpoint, "key": f"${{{KEY_ENV}}}", "secret": f"${{{SECRET_ENV}}}"}},
            "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}}]}


def _clips(fs, root: str):
    """The kept clips under an output (a bucket prefix or a folder), sorted by clip id."""
    if fs is None:
        table = pads.dataset(os.path.join(root, "clips"), format="parquet").to_table()
    else:
        table = pads.dataset(f"{root}/clips", format="parquet", filesystem=fs).to_table()
    return table.sort_by([(R.CLIP_ID, "ascending")])


def test_build_reads_and_writes_s3(tmp_path, s3, videos, in_process):
    endpoint, fs = s3
    bucket = _bucket(fs, "build", videos)
    ref = build(parse_config(_config([{"path": str(videos)}], str(tmp_path / "ref"), endpoint)), progress=False)
    cfg_path = tmp_path / "s3.yaml"   # from a file: the manifest keeps its text, `${VAR}`s unexpanded
    cfg_path.write_text(yaml.safe_dump(_config([{"glob": f"s3://{bucket}/in/*.mp4"}], f"s3://{bucket}/out", endpoint)))
    cfg = load_config(cfg_path)
    assert SECRET in cfg.secrets   # a ${VAR} value in storage: is secret
    from rich.console import Console

    shown = io.StringIO()   # the progress display polls the ledger in the bucket
    result = build(cfg, progress=True, console=Console(file=shown, width=200), progress_every=0.2)
    assert "on disk: 4 videos complete" in shown.getvalue(), shown.getvalue()[-2000:]   # counted from the ledger
    assert SECRET not in shown.getvalue()
    # the dataset is in the bucket, not on this disk: parts, rejects' folder, ledger, state, manifest, card
    names = {p.split("/out/", 1)[1] for p in fs.find(f"{bucket}/out")}
    assert {"manifest.json", "_state.json", "README.md", "report.html", "report.md"} <= names, names
    assert any(n.startswith("report_assets/") and n.endswith(".svg") for n in names)   # the report's plots
    assert any(n.startswith("clips/part-") and n.endswith("-train.parquet") for n in names)
    assert any(n.startswith("_ledger/part-") for n in names)
    assert not any(n.startswith(("_cache/", "_work/", "_logs/")) for n in names)   # these stay local
    clips, ref_clips = _clips(fs, f"{bucket}/out"), _clips(None, str(tmp_path / "ref"))
    # the same videos give the same clips (ids are content hashes), whatever the storage
    assert clips.num_rows == ref_clips.num_rows == result.rows > 4
    assert clips[R.CLIP_ID].to_pylist() == ref_clips[R.CLIP_ID].to_pylist()
    assert set(clips[R.SOURCE_URI].to_pylist()) == {f"s3://{bucket}/in/{p.name}" for p in videos.iterdir()}
    assert set(clips[R.PATH].to_pylist()) == set(clips[R.SOURCE_URI].to_pylist())   # the URL, not a local copy
    manifest = json.loads(fs.cat_file(f"{bucket}/out/manifest.json"))
    assert manifest["rows"] == ref.rows and manifest["inputs"] == 4
    assert f"${{{SECRET_ENV}}}" in manifest["config_text"]
    for name in ("manifest.json", "README.md", "report.html", "_state.json"):
        assert SECRET.encode() not in fs.cat_file(f"{bucket}/out/{name}"), name
    # a second build finds every video complete in the bucket's ledger and runs nothing
    again = build(parse_config(_config([{"glob": f"s3://{bucket}/in/*.mp4"}], f"s3://{bucket}/out", endpoint)),
                  progress=False)
    assert not again.ran and again.resumed_complete == 4 and again.rows == result.rows


def test_kill_and_resume_on_s3(tmp_path, s3, videos, in_process):
    """kill -9 the build once some videos are committed to the bucket; the re-run (a fresh process:
    nothing but the bucket remembers) redoes none of them and ends with exactly the uninterrupted clips."""
    endpoint, fs = s3
    bucket = _bucket(fs, "resume", videos)
    ref = tmp_path / "ref"
    build(parse_config(_config([{"path": str(videos)}], str(ref), endpoint)), progress=False)
    ref_clips = _clips(None, str(ref))

    out = f"s3://{bucket}/out"
    cfg_path = tmp_path / "s3.yaml"
    # one part per write task, and one video per block (runner.py): commits come video by video
    killed_cfg = _config([{"glob": f"s3://{bucket}/in/*.mp4"}], out, endpoint, rows_per_file=1)
    # through Ray, as designed above: in process, 4 small videos can all commit between two S3 listings
    killed_cfg["ray"] = {**killed_cfg.get("ray", {}), "executor": "ray"}
    cfg_path.write_text(yaml.safe_dump(killed_cfg))
    tmp_root = Path(tempfile.mkdtemp(prefix="vs", dir="/tmp"))   # Ray's socket paths must stay short
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": str(tmp_root),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "vdata.cli", "build", str(cfg_path), "--quiet"]
    committed = lambda: len([p for p in fs.find(f"{bucket}/out/_ledger") if p.endswith(".json")])  # noqa: E731
    try:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while proc.poll() is None and committed() < 1 and time.time() < deadline:
            time.sleep(0.05)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        kill_session(str(tmp_root))   # the killed driver's Ray processes
        assert killed, "the build finished before it could be killed: the test proved nothing"
        done_at_kill = _complete_sources(fs, f"{bucket}/out/_ledger")
        assert 1 <= len(done_at_kill) < 4, done_at_kill
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stderr[-3000:]
    finally:
        kill_session(str(tmp_root))
        shutil.rmtree(tmp_root, ignore_errors=True)
    manifest = json.loads(fs.cat_file(f"{bucket}/out/manifest.json"))
    assert manifest["resumed_complete"] >= len(done_at_kill)
    probe = manifest["stages"][0]
    # the resumed run probed only the videos the bucket's ledger did not hold as complete
    assert probe["stage"] == "probe" and probe["rows_in"] == 4 - manifest["resumed_complete"]
    clips = _clips(fs, f"{bucket}/out")
    assert clips[R.CLIP_ID].to_pylist() == ref_clips[R.CLIP_ID].to_pylist()   # no loss, no duplicate
    assert len(set(clips[R.CLIP_ID].to_pylist())) == clips.num_rows
    assert SECRET not in final.stderr + final.stdout


def test_two_node_cluster_with_everything_on_s3(tmp_path, s3, videos, two_node_cluster, ray_local):
    """Two Ray nodes (separate raylets), inputs and output only in the bucket: the endpoint and keys
    reach the workers with the sink and the stage tasks (the nodes' environment has no AWS_*), both
    nodes work, and the clips equal a local build's."""
    import datasets

    endpoint, fs = s3
    bucket = _bucket(fs, "cluster", videos)
    # a video that arrives as bytes is written once to <output>/_media: here the bucket, where every node reads it
    hf_dir = tmp_path / "hf"
    datasets.Dataset.from_dict({"video": [(ROOT / "examples" / "videos" / "bikes.mp4").read_bytes()]}).save_to_disk(str(hf_dir))
    hf_input = {"hf": {"path": str(hf_dir)}}
    ref = tmp_path / "ref"
    build(parse_config(_config([{"path": str(videos)}, hf_input], str(ref), endpoint)), progress=False)
    cfg_path = tmp_path / "cluster.yaml"
    cfg_path.write_text(yaml.safe_dump(_config([{"path": f"s3://{bucket}/in"}, hf_input], f"s3://{bucket}/out",
                                               endpoint, rows_per_file=2)))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", "vdata.cli", "build", str(cfg_path), "--address", two_node_cluster,
                           "--quiet"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads(fs.cat_file(f"{bucket}/out/manifest.json"))
    assert len({n for s in manifest["stages"] for n in s["nodes"]}) == 2, manifest["stages"]
    clips = _clips(fs, f"{bucket}/out")
    assert clips[R.CLIP_ID].to_pylist() == _clips(None, str(ref))[R.CLIP_ID].to_pylist()
    media = [p for p in fs.find(f"{bucket}/out/_media")]
    assert len(media) == 1 and f"s3://{media[0]}" in set(clips[R.PATH].to_pylist())


def test_local_copy_is_fetched_once_and_again_when_the_object_changes(tmp_path, s3, videos):
    endpoint, fs = s3
    fs.mkdir("copies")
    first, second = sorted(videos.iterdir())[:2]
    fs.put_file(str(first), "copies/v.mp4")
    S.configure({"s3": {"endpoint_url": endpoint, "key": "testing-key", "secret": SECRET}})
    try:
        a = S.local_copy("s3://copies/v.mp4", str(tmp_path))
        assert Path(a).read_bytes() == first.read_bytes() and a.endswith(".mp4")
        inode = os.stat(a).st_ino   # a second call must reuse this file, not download it again
        assert S.local_copy("s3://copies/v.mp4", str(tmp_path)) == a and os.stat(a).st_ino == inode
        fs.put_file(str(second), "copies/v.mp4")   # new bytes under the same URL: a new ETag
        b = S.local_copy("s3://copies/v.mp4", str(tmp_path))
        assert b != a and Path(b).read_bytes() == second.read_bytes() and os.path.exists(a)
        # over the budget, the least recently used copy goes and the one just fetched stays
        fs.put_file(str(first), "copies/w.mp4")
        c = S.local_copy("s3://copies/w.mp4", str(tmp_path), max_bytes=first.stat().st_size + 1)
        assert os.path.exists(c) and not os.path.exists(a) and not os.path.exists(b)
        with pytest.raises(FileNotFoundError):
            S.local_copy("s3://copies/missing.mp4", str(tmp_path))
    finally:
        S.configure(None)


def test_duplicate_objects_in_a_bucket_are_found_by_content(s3, videos):
    from vdata.media.hashing import content_id
    from vdata.pipelines.ingest import find_duplicates

    endpoint, fs = s3
    fs.mkdir("dupes")
    first, second = sorted(videos.iterdir())[:2]
    for key, src in (("a.mp4", first), ("b.mp4", second), ("copy_of_a.mp4", first)):
        fs.put_file(str(src), f"dupes/{key}")
    S.configure({"s3": {"endpoint_url": endpoint, "key": "testing-key", "secret": SECRET}})
    try:
        rows = [{R.SOURCE_URI: u, R.PATH: u, R.SOURCE_META: None} for u in S.glob("s3://dupes/*.mp4")]
        kept, rejects = find_duplicates(rows)
    finally:
        S.configure(None)
    assert [r[R.PATH] for r in kept] == ["s3://dupes/a.mp4", "s3://dupes/b.mp4"]
    (reject,) = rejects
    assert reject.reason == "duplicate_video" and reject.detail["duplicate_of"] == "s3://dupes/a.mp4"
    assert reject.detail[R.VIDEO_ID] == content_id(str(first))   # read by range from the bucket: the same id


def _complete_sources(fs, ledger: str) -> set[str]:
    total: dict = {}
    for p in fs.find(ledger):
        if p.endswith(".json"):
            for src, m in json.loads(fs.cat_file(p))["mass"].items():
                total[src] = total.get(src, 0.0) + m
    return {s for s, m in total.items() if m >= 1 - 1e-6}


@pytest.fixture(scope="module")
def http_videos(videos):
    """A loopback HTTP server over the video folder (read-only inputs)."""
    handler = functools.partial(_QuietHandler, directory=str(videos))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_http_inputs_are_read_never_written(tmp_path, http_videos, videos, in_process):
    names = sorted(p.name for p in videos.iterdir())[:2]
    urls = [f"{http_videos}/{n}" for n in names]
    cfg = {"name": "http", "input": [{"path": u} for u in urls], "output": {"dir": str(tmp_path / "out")},
           "ray": {"num_cpus": 2}, "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}}]}
    result = build(parse_config(cfg), progress=False)
    ref = build(parse_config({**cfg, "input": [{"path": str(videos / n)} for n in names],
                              "output": {"dir": str(tmp_path / "ref")}}), progress=False)
    clips, ref_clips = _clips(None, str(tmp_path / "out")), _clips(None, str(tmp_path / "ref"))
    assert result.rows == ref.rows > 2 and result.rejects == 0
    assert clips[R.CLIP_ID].to_pylist() == ref_clips[R.CLIP_ID].to_pylist()
    assert set(clips[R.SOURCE_URI].to_pylist()) == set(urls)
    with pytest.raises(ConfigError, match=r"output\.dir: .*read-only"):
        build(parse_config({**cfg, "output": {"dir": f"{http_videos}/out"}}), progress=False)
    with pytest.raises(ConfigError, match=r"input\[0\]\.glob: http:// cannot be listed"):
        build(parse_config({**cfg, "input": [{"glob": f"{http_videos}/*.mp4"}]}), progress=False)
    # a Hugging Face dataset whose video column holds URLs: they are taken as they are, not joined to
    # the dataset's folder as relative paths are
    import datasets

    from vdata.pipelines.ingest import discover

    datasets.Dataset.from_dict({"video": [urls[0], "clips/local.mp4"]}).save_to_disk(str(tmp_path / "hf"))
    found = discover(parse_config({**cfg, "input": [{"hf": {"path": str(tmp_path / "hf")}}]}), str(tmp_path / "m"))
    assert [r[R.PATH] for r in found] == [urls[0], str(tmp_path / "hf" / "clips" / "local.mp4")]


def test_an_http_input_that_serves_a_web_page_is_a_reject_that_says_so(tmp_path, in_process):
    """A link to a video's page (or a server's error page) named as a video: fetched, then rejected at probe
    as `unreadable`, its message saying it is an HTML page to download first; the build goes on."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "watch.mp4").write_text("<!doctype html><html><head><title>Video</title></head><body>player</body></html>")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/watch.mp4"
        result = build(parse_config({"input": [{"path": url}], "output": {"dir": str(tmp_path / "out")},
                                     "stages": [{"probe": {}}]}), progress=False)
    finally:
        server.shutdown()
        server.server_close()
    rejects = pads.dataset(str(tmp_path / "out" / "rejects"), format="parquet").to_table().to_pylist()
    assert result.rows == 0 and [(r["stage"], r["reason"]) for r in rejects] == [("probe", "unreadable")]
    assert "it is an HTML page" in rejects[0]["message"] and "yt-dlp" in rejects[0]["message"]


def test_schemes_route_to_their_filesystems_and_a_missing_package_names_the_key(monkeypatch, tmp_path):
    from huggingface_hub import HfFileSystem

    S.configure({"s3": {"endpoint_url": "http://127.0.0.1:9", "key": "k", "secret": "s"}})
    fs, path = S.filesystem("s3://bucket/videos/a.mp4")
    assert isinstance(fs, s3fs.S3FileSystem) and path == "bucket/videos/a.mp4"
    assert fs.endpoint_url == "http://127.0.0.1:9" and fs.key == "k"   # the configured options reach it
    fs, path = S.filesystem("hf://datasets/user/repo/videos/a.mp4")
    assert isinstance(fs, HfFileSystem) and path == "datasets/user/repo/videos/a.mp4"
    assert not S.is_remote(str(tmp_path)) and not S.is_remote(f"file://{tmp_path}") and S.is_remote("gs://b/x")
    S.configure(None)

    real_find_spec = __import__("importlib.util").util.find_spec
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "gcsfs" else real_find_spec(name, *a))
    cfg = {"name": "gcs", "input": [{"glob": "gs://bucket/videos/*.mp4"}], "output": {"dir": "gs://bucket/out"},
           "stages": [{"probe": {}}]}
    with pytest.raises(ConfigError) as err:
        build(parse_config(cfg), progress=False)
    text = str(err.value)
    assert "output.dir:" in text and "input[0].glob:" in text and "vdata[gcs]" in text and "gcsfs" in text
    with pytest.raises(ConfigError, match=r"output\.dir: .*unknown URL scheme ftp://"):
        build(parse_config({**cfg, "input": [{"path": str(tmp_path)}], "output": {"dir": "ftp://host/out"}}), progress=False)


def test_storage_keys_are_secret_even_when_written_literally():
    literal = "literal-secret-" + os.urandom(6).hex()
    cfg = parse_config({"name": "x", "input": [{"path": "."}], "output": {"dir": "s3://b/out"},
                        "storage": {"s3": {"key": "AK", "secret": literal}, "hf": {"token": "hf-tok-" + literal}},
                        "stages": [{"probe": {}}]})
    assert literal in cfg.secrets and "hf-tok-" + literal in cfg.secrets
    assert literal not in cfg.model_dump_json() and literal not in repr(cfg.storage)
    with pytest.raises(ConfigError) as err:   # an error that quotes the value masks it
        parse_config({"name": "x", "input": [{"path": literal}], "output": {"dir": "o"}, "stages": [{"probe": {}}],
                      "storage": {"s3": {"secret": literal}, "bogus": 1}})
    assert literal not in str(err.value) and "storage.bogus: unknown key" in str(err.value)


def test_a_bucket_folder_is_searched_without_its_hidden_entries(tmp_path, s3, videos):
    """As on disk (test_audio_inputs): `._v.mp4` (macOS metadata beside each copied video) and `.cache/` are
    not inputs; the folder itself may be named whatever it is."""
    from vdata.pipelines.ingest import discover
    from vdata.schemas.storage import fsspec_options

    endpoint, fs = s3
    first = sorted(videos.iterdir())[0]
    fs.mkdir("hidden")
    for key in ("in/v.mp4", "in/sub/w.mp4", "in/._v.mp4", "in/.cache/x.mp4", "in/sub/.y.mp4", ".dot/in/v.mp4"):
        fs.put_file(str(first), f"hidden/{key}")
    cfg = parse_config(_config([{"path": "s3://hidden/in"}], str(tmp_path / "o"), endpoint))
    S.configure(fsspec_options(cfg.storage))   # as a build's preflight does
    assert [r[R.PATH] for r in discover(cfg, str(tmp_path / "media"))] == ["s3://hidden/in/sub/w.mp4", "s3://hidden/in/v.mp4"]
    cfg = parse_config(_config([{"path": "s3://hidden/.dot/in/"}], str(tmp_path / "o"), endpoint))
    assert [r[R.PATH] for r in discover(cfg, str(tmp_path / "media"))] == ["s3://hidden/.dot/in/v.mp4"]
    # `vdata validate` names the types the prefix leaves, hidden entries and sidecars not counted
    from vdata.pipelines.planning import preflight

    for key in ("in/sub/tape.xyz", "in/sub/.x.abc", "in/v.srt"):
        fs.pipe(f"hidden/{key}", b"0")
    notes: list[str] = []
    preflight(parse_config(_config([{"path": "s3://hidden/in"}], str(tmp_path / "o"), endpoint)), notes)
    assert notes == ["input[0].path: 1 file(s) not taken for their extension (1 .xyz); if they are videos, list "
                     "their extensions in input[0].extensions"]


def test_a_manifest_in_a_bucket_names_videos_beside_it_and_elsewhere(tmp_path, s3, videos, in_process):
    """A manifest kept with the videos (the usual layout of a bucket): its relative paths are beside it,
    URLs are taken as they are, and a bad row is a reject row, as for a local manifest."""
    endpoint, fs = s3
    bucket = _bucket(fs, "listed", videos)
    names = sorted(p.name for p in videos.iterdir())
    fs.pipe(f"{bucket}/lists/videos.csv", (f"video;label\n../in/{names[0]};first\ns3://{bucket}/in/{names[1]};second\n"
                                           f"../in/{names[2]};third;extra\n../in/not-uploaded.mp4;fourth\n").encode())
    cfg = parse_config({**_config([{"manifest": f"s3://{bucket}/lists/videos.csv", "path_column": "video"}],
                                  str(tmp_path / "out"), endpoint), "stages": [{"probe": {}}]})
    result = build(cfg, progress=False)
    kept = pads.dataset(result.data_dir, format="parquet").to_table().to_pylist()
    assert sorted((r[R.PATH], json.loads(r[R.SOURCE_META])["label"]) for r in kept) == [
        (f"s3://{bucket}/in/{names[0]}", "first"), (f"s3://{bucket}/in/{names[1]}", "second")]
    assert all(r[R.NUM_FRAMES] > 0 for r in kept)   # read through their local copies
    rejects = pads.dataset(str(tmp_path / "out" / "rejects"), format="parquet").to_table().to_pylist()
    # an object not in the bucket is found missing at ingest, as a missing local file is (and retried by a re-run)
    assert sorted((r["stage"], r["reason"]) for r in rejects) == [("ingest", "manifest_row_malformed"),
                                                                  ("ingest", "missing_file")]
    assert f"s3://{bucket}/in/not-uploaded.mp4" in next(r["message"] for r in rejects if r["reason"] == "missing_file")
    # a prefix that is no downloader's output says what it lacks; an http(s) folder cannot be listed
    cfg = parse_config({**_config([{"manifest": f"s3://{bucket}/lists", "format": "video2dataset"}],
                                  str(tmp_path / "o2"), endpoint)})
    with pytest.raises(ConfigError, match=r"input\[0\]\.manifest: .*no video2dataset sample under it"):
        build(cfg, progress=False)
    cfg = parse_config({**_config([{"manifest": f"s3://{bucket}/lists/videos.csv", "format": "charades_sta",
                                    "videos": "https://example.org/videos/"}], str(tmp_path / "o3"), endpoint)})
    with pytest.raises(ConfigError, match=r"input\[0\]\.videos: .*cannot be listed"):
        build(cfg, progress=False)


def test_a_dataset_annotation_file_and_its_videos_in_a_bucket(tmp_path, s3, videos, in_process):
    """ActivityNet Captions' train.json in a bucket, its videos under another prefix (one in a sub-folder, one
    not uploaded yet): one listing finds them; the one not there is a `missing_file` ingest reject naming
    what was looked for, and the next run, after it is uploaded, builds it and redoes nothing else."""
    endpoint, fs = s3
    bucket, files = "dataset", sorted(videos.iterdir())
    fs.mkdir(bucket)
    fs.put_file(str(files[0]), f"{bucket}/videos/v_aaa.mp4")
    fs.put_file(str(files[1]), f"{bucket}/videos/train/v_bbb.mp4")
    fs.put_file(str(files[1]), f"{bucket}/videos/.trash/v_ccc.mp4")   # hidden: not the video
    spans = {"v_aaa": [[0.0, 1.0]], "v_bbb": [[0.5, 1.5]], "v_ccc": [[0.0, 0.5]]}
    # the release gives each video's duration: the files' own (a video unlike it is rejected duration_mismatch)
    import av

    durations = {}
    for key, f in (("v_aaa", files[0]), ("v_bbb", files[1]), ("v_ccc", files[2])):
        with av.open(str(f)) as container:
            durations[key] = round(container.duration / 1e6, 2)
    fs.pipe(f"{bucket}/annotations/train.json", "\ufeff".encode() + json.dumps(
        {k: {"duration": durations[k], "timestamps": v, "sentences": [f"{k} happens"]} for k, v in spans.items()}).encode())
    cfg = {**_config([{"manifest": f"s3://{bucket}/annotations/train.json", "format": "activitynet_captions",
                       "videos": f"s3://{bucket}/videos"}], str(tmp_path / "out"), endpoint),
           "stages": [{"probe": {}}, {"annotations": {}}]}
    result = build(parse_config(cfg), progress=False)
    kept = pads.dataset(result.data_dir, format="parquet").to_table().to_pylist()
    assert sorted((r[R.PATH], [s["text"] for s in r[R.ANNOTATIONS]["segments"]]) for r in kept) == [
        (f"s3://{bucket}/videos/train/v_bbb.mp4", ["v_bbb happens"]), (f"s3://{bucket}/videos/v_aaa.mp4", ["v_aaa happens"])]
    assert all(r[R.NUM_FRAMES] > 0 for r in kept)
    rejects = pads.dataset(str(tmp_path / "out" / "rejects"), format="parquet").to_table().to_pylist()
    assert [(r["stage"], r["reason"]) for r in rejects] == [("ingest", "missing_file")]
    assert f"s3://{bucket}/videos/v_ccc.*" in rejects[0]["message"]

    fs.put_file(str(files[2]), f"{bucket}/videos/v_ccc.mp4")
    again = build(parse_config(cfg), progress=False)
    assert again.resumed_complete == 2 and again.rows == 3
    assert not pads.dataset(str(tmp_path / "out" / "rejects"), format="parquet").to_table().num_rows


def test_sidecars_beside_a_video_in_a_bucket_are_read(tmp_path, s3, videos, in_process):
    """A yt-dlp download synced to a bucket: `talk.mp4` with `talk.en.srt` and `talk.info.json` beside it. The
    stage decodes a local copy named by its content, yet reads the sidecars beside the URL; a video named
    alike (`talk2.mp4`) and a leftover format part (`talk.f137.mp4`) are not its sidecars."""
    endpoint, fs = s3
    first, second, third = sorted(videos.iterdir())[:3]
    fs.mkdir("ytdl")
    fs.put_file(str(first), "ytdl/dl/talk.mp4")
    fs.put_file(str(second), "ytdl/dl/talk2.mp4")
    fs.put_file(str(third), "ytdl/dl/talk.f137.mp4")
    fs.pipe("ytdl/dl/talk.en.srt", b"1\n00:00:00,500 --> 00:00:02,000\nHello from the bucket\n")
    fs.pipe("ytdl/dl/talk.info.json", json.dumps({"title": "A talk in a bucket", "description": "Notes",
                                                "formats": [{"format_id": "137"}]}).encode())
    cfg = parse_config({**_config([{"glob": "s3://ytdl/dl/talk*.mp4"}], str(tmp_path / "out"), endpoint),
                        "stages": [{"probe": {}}, {"annotations": {}}]})
    result = build(cfg, progress=False)
    rows = {r[R.PATH].rsplit("/", 1)[1]: r for r in pads.dataset(result.data_dir, format="parquet").to_table().to_pylist()}
    talk = rows["talk.mp4"][R.ANNOTATIONS]
    assert talk["title"] == "A talk in a bucket" and talk["description"] == "Notes"
    assert [(c["start_s"], c["end_s"], c["text"]) for c in talk["subtitles"]] == [(0.5, 2.0, "Hello from the bucket")]
    assert rows["talk2.mp4"][R.ANNOTATIONS]["subtitles"] == [] and rows["talk2.mp4"][R.ANNOTATIONS]["title"] is None
    assert all("_remote_path" not in r for r in rows.values())


def test_a_video2dataset_download_written_to_a_bucket(tmp_path, s3, v2d_dir, in_process):  # noqa: F811
    """video2dataset's `output_folder: s3://...`: its files-layout samples (json and caption read in parallel)
    and its webdataset shard (copied down once, its video extracted into `_media/` once) build as from a
    folder; the failed downloads are rejects, `_tmp/` is not read, and a re-run reads no shard again."""
    endpoint, fs = s3
    fs.mkdir("v2d")
    fs.put(str(v2d_dir), "v2d/panda_download", recursive=True)
    cfg = parse_config({**_config([{"manifest": "s3://v2d/panda_download", "format": "video2dataset"}],
                                  str(tmp_path / "out"), endpoint), "stages": [{"probe": {}}, {"annotations": {}}]})
    result = build(cfg, progress=False)
    assert result.rejects_by_reason == {"ingest:source_not_downloaded": 2}
    kept = pads.dataset(result.data_dir, format="parquet").to_table().to_pylist()
    by_key = {json.loads(r[R.SOURCE_META])["dataset_video_id"]: r for r in kept}
    assert {k: json.loads(r[R.SOURCE_META])["caption"] for k, r in by_key.items()} == {
        "0000000_00001": "A man paints a white fence.", "000010000": "Red ball bouncing on grass",
        "000020000": "Waves roll onto a beach"}
    assert by_key["0000000_00001"][R.PATH] == "s3://v2d/panda_download/00000/0000000_00001.mp4"
    assert by_key["0000000_00001"][R.ANNOTATIONS]["title"] == "How to paint a fence"
    extracted = list((tmp_path / "out" / "_media").glob("tar-*.mp4"))
    assert len(extracted) == 1 and by_key["000020000"][R.PATH] == str(extracted[0])
    assert all(r[R.NUM_FRAMES] > 0 for r in kept)
    before = extracted[0].stat().st_mtime_ns
    again = build(cfg, progress=False)
    assert (again.ran, again.resumed_complete) == (False, 5) and extracted[0].stat().st_mtime_ns == before


# --- a build in a bucket, read by the commands that take a build folder --------------------------------

def _store_from_environment(monkeypatch, endpoint: str) -> None:
    """The bucket reached as a user's shell reaches it (AWS_* variables), not through a config's `storage:`:
    the commands that read a build take no config."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    S.configure({})   # a build in this process left its config's options set


def test_commands_that_take_a_build_folder_read_a_build_in_a_bucket(tmp_path, s3, videos, in_process, monkeypatch):
    from click.testing import CliRunner
    from fakehub import FakeHub
    from huggingface_hub import constants

    from vdata.cli import main

    endpoint, fs = s3
    fs.mkdir("cmds")
    out = "s3://cmds/out"
    result = build(parse_config(_config([{"path": str(videos)}], out, endpoint)), progress=False)
    _store_from_environment(monkeypatch, endpoint)
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke
    # an export to a URL goes to the bucket, never to a local folder named `s3:`
    res = run(main, ["export", out, "--format", "parquet", "--media", "none", "--dest", "s3://cmds/exp"])
    assert res.exit_code == 0, res.output
    assert "-> s3://cmds/exp" in res.output and not (tmp_path / "s3:").exists()
    exported = {p.split("/exp/", 1)[1] for p in fs.find("cmds/exp")}
    assert "README.md" in exported and any(p.startswith("data/clips/") for p in exported), exported
    rows = pads.dataset([p for p in fs.find("cmds/exp/data") if p.endswith(".parquet")], format="parquet",
                        filesystem=fs).to_table()
    assert sorted(rows[R.CLIP_ID].to_pylist()) == sorted(_clips(fs, "cmds/out")[R.CLIP_ID].to_pylist())
    # the report and the card are written from a local copy of the tables, and put back in the bucket
    fs.rm("cmds/out/report.md")
    res = run(main, ["report", out])
    assert res.exit_code == 0 and res.output.split() == [f"{out}/report.html", f"{out}/report.md"], res.output
    report = fs.cat_file("cmds/out/report.md").decode()
    assert f"`{out}`" in report.split("\n## ", 1)[0]   # the header names the bucket, not the local copy
    fs.rm("cmds/out/README.md")
    res = run(main, ["card", out])
    assert res.exit_code == 0 and res.output.strip() == f"{out}/README.md", res.output
    assert "config_name: clips" in fs.cat_file("cmds/out/README.md").decode()
    res = run(main, ["rethreshold", out])
    assert res.exit_code == 0 and f"kept {result.rows}, dropped 0" in res.output, res.output
    token = "hf_" + os.urandom(8).hex()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", token)
    with FakeHub(token) as hub:
        res = run(main, ["push", out, "--repo", "me/s3", "--endpoint", hub.endpoint, "--staging", str(tmp_path / "st")])
        assert res.exit_code == 0, res.output
        assert any(p.startswith("data/clips/") for p in hub.repos["me/s3"].files)
    # a URL with no build says so in one line, never that a directory does not exist
    for command in (["export", "s3://cmds/nothing", "--format", "parquet", "--dest", str(tmp_path / "x")],
                    ["report", "s3://cmds/nothing"], ["card", "s3://cmds/nothing"], ["rethreshold", "s3://cmds/nothing"]):
        res = run(main, command)
        assert res.exit_code in (1, 2) and "s3://cmds/nothing: no manifest.json there" in res.output, res.output
        assert "does not exist" not in res.output and "Traceback" not in res.output
    assert SECRET not in res.output


def test_an_export_to_a_url_is_put_in_the_bucket(tmp_path, s3, in_process, monkeypatch):
    from click.testing import CliRunner

    from vdata.exporters.cli import export_cmd

    endpoint, fs = s3
    fs.mkdir("exports")
    videos = tmp_path / "videos"
    copy_to(str(ROOT / "examples" / "videos" / "blurred.mp4"), videos)
    local = build(parse_config(_config([{"path": str(videos)}], str(tmp_path / "out"), endpoint)), progress=False)
    _store_from_environment(monkeypatch, endpoint)
    monkeypatch.chdir(tmp_path)
    fs.pipe_file("exports/x/data/clips/stale.parquet", b"an earlier export's file")
    fs.pipe_file("exports/x/.vdata-export", json.dumps({"parquet": ["data/clips/stale.parquet"]}).encode())
    res = CliRunner().invoke(export_cmd, [local.output_dir, "--format", "parquet", "--dest", "s3://exports/x"])
    assert res.exit_code == 0, res.output
    assert "-> s3://exports/x" in res.output and not (tmp_path / "s3:").exists()   # no local folder named s3:
    names = {p.split("/x/", 1)[1] for p in fs.find("exports/x")}
    assert "README.md" in names and "data/clips/stale.parquet" not in names   # the bucket holds this export
    parts = [f"exports/x/{n}" for n in names if n.startswith("data/clips/") and n.endswith(".parquet")]
    rows = pads.dataset(parts, format="parquet", filesystem=fs).to_table()
    assert sorted(rows[R.CLIP_ID].to_pylist()) == sorted(_clips(None, local.output_dir)[R.CLIP_ID].to_pylist())
    assert any(n.startswith("videos/") for n in names)   # the linked videos, as their bytes


def _lease(fs, out: str, **fields) -> None:
    now = time.time()
    fs.pipe_file(f"{out}/_build.lock/planted", json.dumps({"since": now, "renewed": now, **fields}).encode())


def test_a_lease_in_the_bucket_keeps_a_second_build_out_until_its_build_is_gone(s3):
    from vdata.pipelines import output_dir

    endpoint, fs = s3
    fs.mkdir("lease")
    S.configure({"s3": {"endpoint_url": endpoint, "key": "testing-key", "secret": SECRET}})
    out = "s3://lease/out"
    with output_dir.exclusive(out):   # a live build (this very process): a second one is refused, naming it
        assert len(fs.find("lease/out/_build.lock")) == 1
        with pytest.raises(ConfigError, match=rf"s3://lease/out is being written by another vdata build \(pid {os.getpid()} on"):
            with output_dir.exclusive(out):
                pass
    assert fs.find("lease/out/_build.lock") == []   # released at the end
    gone = subprocess.Popen(["true"])
    gone.wait()   # a build killed on this host: its pid runs no more, its lease is taken over at once
    _lease(fs, "lease/out", host=socket.gethostname(), pid=gone.pid)
    with output_dir.exclusive(out):
        assert [p.rsplit("/", 1)[1] for p in fs.find("lease/out/_build.lock")] != ["planted"]
        assert len(fs.find("lease/out/_build.lock")) == 1
    _lease(fs, "lease/out", host="elsewhere", pid=1)   # another machine's build, renewing its lease: refused
    with pytest.raises(ConfigError, match=r"\(pid 1 on elsewhere, since .*\).*_build.lock/planted"):
        with output_dir.exclusive(out):
            pass
    _lease(fs, "lease/out", host="elsewhere", pid=1, renewed=time.time() - output_dir.LEASE_STALE_S - 1)
    with output_dir.exclusive(out):   # not renewed for LEASE_STALE_S: that build is gone, its lease taken over
        assert "planted" not in " ".join(fs.find("lease/out/_build.lock"))


def test_two_builds_into_one_bucket_prefix_never_both_write(tmp_path, s3, videos, in_process):
    """The second build, started while the first holds the output, is refused naming it; the rows are
    written once."""
    endpoint, fs = s3
    bucket = _bucket(fs, "twice", videos)
    out = f"s3://{bucket}/out"
    data = _config([{"glob": f"s3://{bucket}/in/*.mp4"}], out, endpoint)
    cfg_path = tmp_path / "s3.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    first = subprocess.Popen([sys.executable, "-m", "vdata.cli", "build", str(cfg_path), "--quiet"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while first.poll() is None and not fs.find(f"{bucket}/out/_build.lock") and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first build ended before it could be raced: the test proved nothing"
        with pytest.raises(ConfigError, match=rf"{out} is being written by another vdata build \(pid {first.pid} on"):
            build(parse_config(data), progress=False)
        _, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-3000:]
    clips = _clips(fs, f"{bucket}/out")
    assert clips.num_rows == len(set(clips[R.CLIP_ID].to_pylist())) > 4   # every row once
    manifest = json.loads(fs.cat_file(f"{bucket}/out/manifest.json"))
    assert manifest["rows"] == clips.num_rows
    assert fs.find(f"{bucket}/out/_build.lock") == []   # released: the next build goes ahead
    again = build(parse_config(data), progress=False)
    assert not again.ran and again.rows == clips.num_rows


def test_a_resume_that_finds_every_video_committed_says_whose_stage_counts_it_shows(tmp_path, s3, videos, in_process):
    """What kill -9 after the last commit leaves in the bucket: every part and its ledger entry, no
    manifest, no card, no report, and the killed build's lease."""
    endpoint, fs = s3
    fs.mkdir("killed")
    out = "s3://killed/out"
    cfg = parse_config(_config([{"path": str(videos)}], out, endpoint))
    first = build(cfg, progress=False)
    for name in ("manifest.json", "README.md", "report.md", "report.html"):
        fs.rm(f"killed/out/{name}")
    gone = subprocess.Popen(["true"])
    gone.wait()
    _lease(fs, "killed/out", host=socket.gethostname(), pid=gone.pid)
    again = build(cfg, progress=False)
    assert not again.ran and again.resumed_complete == 4 and again.rows == first.rows
    manifest = json.loads(fs.cat_file("killed/out/manifest.json"))
    assert manifest["stages_resumed"] == 4 and manifest["output_dir"] == out
    report = fs.cat_file("killed/out/report.md").decode()
    assert "## Stages (this run only)" in report, report[:3000]
    assert "4 of the build's 4 videos were completed by an earlier run" in report
    header = report.split("\n## ", 1)[0]
    assert f"`{out}`" in header and str(Path.home()) not in header   # the bucket, not the local mirror
