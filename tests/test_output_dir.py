"""The output folder (pipelines/output_dir.py): one build at a time, `output.mode: error` on any non-empty
folder, an output.dir that names no folder refused, and a run that does nothing (or serves a stage from the
stage cache) keeps the measured rates that `vdata plan --videos` scales. Real in-process builds and real
`vdata build` processes on real videos."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

import vdata
from conftest import copy_to
from vdata.pipelines import output_dir
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, cut_video, flash_video):
    d = tmp_path_factory.mktemp("out_in")
    for p in (cut_video[0], flash_video):
        copy_to(p, d)
    return d


def config(inputs, out, **output) -> dict:
    return {"name": "outdir", "input": [{"path": str(inputs)}], "output": {"dir": str(out), **output},
            "ray": {"executor": "local"}, "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}},
                                                     {"frames": {"num_frames": 2}}]}


def cli_build(cfg: dict, where: Path) -> subprocess.Popen:
    path = where / f"cfg-{os.urandom(4).hex()}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "vdata.cli", "build", str(path), "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def clip_ids(out: Path) -> list[str]:
    return pads.dataset(str(out / "clips"), format="parquet").to_table(columns=[R.CLIP_ID])[R.CLIP_ID].to_pylist()


def test_a_second_build_into_a_held_folder_is_refused_and_two_at_once_never_duplicate(tmp_path, inputs):
    out = tmp_path / "out"
    with output_dir.exclusive(str(out)):   # a build holding the folder (the lock is per open file)
        proc = cli_build(config(inputs, out), tmp_path)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, err
        assert "is being written by another vdata build (pid" in err and "Traceback" not in err
        assert not (out / "clips").exists()
    # two builds started at the same moment: whichever order they take, every clip is written once
    procs = [cli_build(config(inputs, out), tmp_path) for _ in range(2)]
    outcomes = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in outcomes)[0] == 0 and {rc for rc, _ in outcomes} <= {0, 2}, outcomes
    assert all("another vdata build" in err for rc, err in outcomes if rc == 2)
    ids = clip_ids(out)
    assert ids and len(ids) == len(set(ids))
    assert json.loads((out / "manifest.json").read_text())["rows"] == len(ids)


def test_mode_error_refuses_any_non_empty_folder_and_output_dir_must_name_one(tmp_path, inputs, in_process):
    kept = tmp_path / "notes"
    kept.mkdir()
    (kept / "important.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"output.dir: .*notes is not empty \(important.txt\)"):
        vdata.build(parse_config(config(inputs, kept, mode="error")), progress=False)
    assert sorted(os.listdir(kept)) == ["_build.lock", "important.txt"]   # nothing else written
    for empty in ("", "  ", "/"):
        with pytest.raises(ConfigError, match="output.dir: .*must name a folder"):
            parse_config(config(inputs, empty))
    as_url = parse_config(config(inputs, f"file://{tmp_path}/from-url"))
    assert as_url.resolve(as_url.output.dir) == str(tmp_path / "from-url")


def test_runs_that_measure_nothing_keep_the_rates_plan_scales(tmp_path, inputs, in_process):
    out = tmp_path / "out"
    first = vdata.build(parse_config(config(inputs, out)), progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    rates = {s["stage"]: s["busy_s"] for s in manifest["rates"]["stages"]}
    assert first.ran and all(v > 0 for v in rates.values()), rates
    again = vdata.build(parse_config(config(inputs, out)), progress=False)   # nothing to do
    assert not again.ran
    rerun = json.loads((out / "manifest.json").read_text())
    assert rerun["rates"] == manifest["rates"] and rerun["stages"] == manifest["stages"]
    assert rerun["rows"] == manifest["rows"] and rerun["resumed_complete"] == 2
    # frames changed: probe and shots come from the stage cache, their rates stay the ones measured
    changed = config(inputs, out)
    changed["stages"][2] = {"frames": {"num_frames": 3}}
    vdata.build(parse_config(changed), progress=False)
    rebuilt = json.loads((out / "manifest.json").read_text())
    by_stage = {s["stage"]: s for s in rebuilt["stages"]}
    assert by_stage["probe"]["cache_hits"] == by_stage["probe"]["rows_in"] > 0
    after = {s["stage"]: s["busy_s"] for s in rebuilt["rates"]["stages"]}
    assert after["probe"] == rates["probe"] and after["shots"] == rates["shots"]


def test_config_and_cluster_mistakes_are_one_line_errors_before_anything_starts(tmp_path, inputs):
    """A config that is not UTF-8 (a video passed by mistake), YAML errors naming the file, --address beside
    `executor: local`, an address where no cluster answers (ray.init waited minutes, silent), a bucket
    without credentials, and negative plan sizes: each a message naming the key, exit 2, no traceback."""
    from click.testing import CliRunner

    from vdata.cli import main

    runner = CliRunner()
    video = tmp_path / "passed-by-mistake.yaml"
    video.write_bytes(Path(inputs / os.listdir(inputs)[0]).read_bytes()[:4096])
    for command in ("validate", "plan", "build"):
        res = runner.invoke(main, [command, str(video)])
        assert res.exit_code == 2 and "not UTF-8 text (byte 0x" in res.output, (command, res.output)
        assert "Traceback" not in res.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ninput: [{path: a}\n")
    res = runner.invoke(main, ["validate", str(broken)])
    assert res.exit_code == 2 and str(broken) in res.output and "<unicode string>" not in res.output
    local = tmp_path / "local.yaml"
    local.write_text(yaml.safe_dump(config(inputs, tmp_path / "o1")))
    res = runner.invoke(main, ["build", str(local), "--address", "127.0.0.1:1"])
    assert res.exit_code == 2 and "--address: '127.0.0.1:1' names a Ray cluster, but ray.executor is local" in res.output
    with_ray = tmp_path / "ray.yaml"
    with_ray.write_text(yaml.safe_dump({**config(inputs, tmp_path / "o2"), "ray": {"executor": "ray"}}))
    res = runner.invoke(main, ["build", str(with_ray), "--address", "127.0.0.1:1"])
    assert res.exit_code == 2 and "--address: no Ray cluster answers at 127.0.0.1:1" in res.output, res.output
    assert not (tmp_path / "o2" / "clips").exists()
    # a head's IP without its port (Ray's own answer was a traceback after the build started: outside check h21)
    res = runner.invoke(main, ["build", str(with_ray), "--address", "10.0.0.1"])
    assert res.exit_code == 2 and "--address: '10.0.0.1' is no Ray address" in res.output, res.output
    assert "10.0.0.1:6379" in res.output and "Traceback" not in res.output
    no_port = tmp_path / "no_port.yaml"
    no_port.write_text(yaml.safe_dump({**config(inputs, tmp_path / "o4"), "ray": {"address": "nonsense::"}}))
    res = runner.invoke(main, ["validate", str(no_port)])
    assert res.exit_code == 2 and "ray.address: 'nonsense::' is no Ray address" in " ".join(res.output.split()), res.output
    both = {**config(inputs, tmp_path / "o3"), "ray": {"executor": "local", "address": "10.0.0.1:6379"}}
    with pytest.raises(ConfigError, match="ray.address '10.0.0.1:6379' names a Ray cluster, but ray.executor is local"):
        parse_config(both)
    res = runner.invoke(main, ["plan", str(local), "--videos", "-5"])
    assert res.exit_code == 2 and "--videos" in res.output
    res = runner.invoke(main, ["plan", str(local)])
    assert res.exit_code == 0 and "executor: in process, no Ray (ray.executor: local)" in res.output
    pytest.importorskip("s3fs")
    bucket = tmp_path / "bucket.yaml"
    bucket.write_text(yaml.safe_dump(config(inputs, "s3://vdata-no-such-bucket-for-tests/out")))
    env = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_CONFIG_FILE": str(tmp_path / "none")}
    res = runner.invoke(main, ["build", str(bucket)], env=env)
    assert res.exit_code == 2 and "output.dir: cannot use s3://vdata-no-such-bucket-for-tests/out (" in res.output


def test_a_video_gone_from_the_inputs_is_named_when_its_build_resumes(tmp_path, inputs, in_process):
    import io

    from rich.console import Console

    own = tmp_path / "in"
    for name in os.listdir(inputs):
        copy_to(str(inputs / name), own)
    out = tmp_path / "out"
    vdata.build(parse_config(config(own, out)), progress=False)
    gone = sorted(os.listdir(own))[0]
    os.remove(own / gone)
    said = io.StringIO()
    result = vdata.build(parse_config(config(own, out)), progress=False, console=Console(file=said, width=400))
    assert not result.ran
    assert "1 video(s) in" in said.getvalue() and "no longer among the inputs" in said.getvalue()
    assert gone in said.getvalue()
    # the report follows the manifest's new input count though nothing ran (outside check h16: it kept the old one)
    left = len(os.listdir(own))
    assert json.loads((out / "manifest.json").read_text())["inputs"] == left
    report = (out / "report.md").read_text()
    assert any("input videos" in line and f"| {left} " in line for line in report.splitlines()), report[:2000]


def test_nothing_is_written_into_a_build_s_own_folders(tmp_path, inputs, in_process):
    """An export into `<build>/samples` made the table unreadable, a rethreshold into `<build>/rejects` broke
    `load_dataset(build, "rejects")`: every own folder is refused, `<build>/exports/` is not."""
    from vdata.exporters import ExportError, export
    from vdata.pipelines.rethreshold import rethreshold_dataset

    out = tmp_path / "out"
    vdata.build(parse_config(config(inputs, out)), progress=False)
    for inside in ("clips", "rejects", "clips/deeper", "_cache", "."):
        with pytest.raises(ExportError, match=r"--dest .*: it is (inside the build's own|the build directory)"):
            export(str(out), str(out / inside), "parquet")
        with pytest.raises(ConfigError, match=r"--write-to .*: it is (inside the build's own|the build directory)"):
            rethreshold_dataset(str(out), {}, write_to=str(out / inside))
    before = clip_ids(out)
    export(str(out), str(out / "exports" / "parquet"), "parquet")
    assert clip_ids(out) == before and (out / "exports" / "parquet").is_dir()


def test_a_rerun_that_dies_leaves_no_manifest_of_the_run_before(tmp_path, inputs, in_process, monkeypatch):
    """The manifest is written last, so its presence means "finished": a re-run that starts work removes the
    earlier one, and dying half-way (an injected fault in a stage) leaves a folder that card and export
    refuse as unfinished, not the earlier run's manifest over half of the new run's parts."""
    from vdata.exporters import ExportError, export
    from vdata.pipelines import execution as X

    out = tmp_path / "out"
    vdata.build(parse_config(config(inputs, out)), progress=False)
    assert (out / "manifest.json").is_file()
    real = X.run_stage_on_table

    def failing(stage, table, *args, **kwargs):
        if stage.name == "frames":   # injected fault: the last stage dies on its first video
            raise RuntimeError("injected: frames died")
        return real(stage, table, *args, **kwargs)

    monkeypatch.setattr(X, "run_stage_on_table", failing)
    changed = config(inputs, out)
    changed["stages"][2] = {"frames": {"num_frames": 3}}
    with pytest.raises(RuntimeError, match="injected"):
        vdata.build(parse_config(changed), progress=False)
    assert not (out / "manifest.json").exists()
    with pytest.raises(ExportError, match="manifest|finished"):
        export(str(out), str(tmp_path / "exp"), "parquet")
    monkeypatch.undo()
    vdata.build(parse_config(changed), progress=False)   # the next run finishes it
    assert json.loads((out / "manifest.json").read_text())["rows"] == len(clip_ids(out)) > 0


def test_a_file_listed_twice_by_a_manifest_is_a_reject_naming_the_first(tmp_path, inputs, in_process):
    """Two manifest rows for one file (each with its own label): the file is processed once and the second
    row is a duplicate_video reject naming the first, where it vanished unsaid; a resumed run keeps it so."""
    name = sorted(os.listdir(inputs))[0]
    (tmp_path / "list.csv").write_text(f"path,label\n{inputs / name},first\n{inputs / name},second\n")
    cfg = config(inputs, tmp_path / "out")
    cfg["input"] = [{"manifest": str(tmp_path / "list.csv")}]
    for _ in range(2):
        result = vdata.build(parse_config(cfg), progress=False)
        assert result.rejects_by_reason == {"ingest:duplicate_video": 1}
    rejects = pads.dataset(str(tmp_path / "out" / "rejects"), format="parquet").to_table().to_pylist()
    assert [(r["source_uri"].rsplit("#", 1)[1], r["reason"]) for r in rejects] == [("1", "duplicate_video")]
    assert "list.csv#0" in rejects[0]["message"]


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_ctrl_c_is_a_message_and_status_130(tmp_path, inputs, signame):
    """SIGINT while a stage waits on a teacher (a server that accepts and never answers): one line saying how to
    resume, exit status 130 (a shell's code for Ctrl-C), no traceback, no "Aborted!". SIGTERM (a scheduler's,
    `timeout`'s) the same, status 143 (it died silently before: outside check h21)."""
    import signal
    import socket
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)   # accepts (the kernel's backlog) and never answers
    port = server.getsockname()[1]
    out = tmp_path / "out"
    cfg = config(inputs, out)
    cfg["stages"].append({"caption": {"teacher": "t"}})
    cfg["teachers"] = {"t": {"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "x",
                             "timeout_s": 600, "max_retries": 0}}
    proc = cli_build(cfg, tmp_path)
    try:
        lock = out / "_build.lock"
        while not (lock.is_file() and lock.read_text()):   # the build holds its folder: preflight is done
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        server.settimeout(300)
        server.accept()   # a request reached the silent server: the caption stage waits on its teacher
        proc.send_signal(getattr(signal, signame))
        rc = proc.wait(timeout=120)
        err = proc.stderr.read()
    finally:
        proc.kill()
        server.close()
    assert rc == (130 if signame == "SIGINT" else 143), err
    how = "interrupted" if signame == "SIGINT" else "terminated"
    assert f"{how}: the videos finished so far are committed" in err and "Traceback" not in err
    assert "Aborted!" not in err and not (out / "manifest.json").exists()


def test_a_re_export_into_the_same_folder_leaves_no_stale_records(tmp_path_factory, tmp_path):
    """Exporting again with fewer tasks: the records files the first export wrote and this one does not are
    removed (and said), a file of the user's in the folder is kept, and a push stages no bookkeeping."""
    from vdata.exporters import EXPORT_LEDGER, export
    from vdata.exporters.demo_build import write_demo_build

    media = tmp_path_factory.getbasetemp() / "vdata_demo_media"
    media.mkdir(exist_ok=True)
    build = write_demo_build(str(tmp_path / "build"), media_dir=str(media), with_frames=False)
    dest = tmp_path / "llava"
    first = export(build, str(dest), "llava")
    assert len(first.rows) >= 2, first.rows
    (dest / "my_notes.txt").write_text("mine")
    again = export(build, str(dest), "llava")   # the same export again: nothing stale
    assert set(again.rows) == set(first.rows) and not any("removed" in n for n in again.notes)
    one_task = export(build, str(dest), "llava", tasks=["caption"])
    gone = set(first.files) - set(one_task.files)
    assert gone and not any((dest / f).exists() for f in gone)
    assert all((dest / f).exists() for f in one_task.files) and (dest / "my_notes.txt").read_text() == "mine"
    assert any("removed" in n for n in one_task.notes)
    assert json.loads((dest / EXPORT_LEDGER).read_text())["llava"] == sorted(set(one_task.files))
    from vdata.hub import stage

    stage(build, str(tmp_path / "staged"), "llava")
    assert not (tmp_path / "staged" / EXPORT_LEDGER).exists()   # the exports' bookkeeping never reaches the Hub
