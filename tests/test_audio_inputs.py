"""Inputs that are not one plain video each: audio-only files (podcasts, lectures) and the same content
at two paths. Real media: espeak-ng speech encoded by ffmpeg, lavfi videos, the packaged tiny.en."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.hashing import content_id
from vdata.media.probe import probe_video
from vdata.media import MediaError
from vdata.pipelines.ingest import discover, find_duplicates
from vdata.pipelines.runner import build
from vdata.schemas import records as R
from vdata.schemas.config import parse_config
from vdata.stages.base import Reject, RunContext
from vdata.stages.probe import ProbeConfig, ProbeStage
from conftest import copy_to

BIN = Path(sys.executable).parent
SENTENCE = "The weather today is sunny and warm, so we will walk to the park with the children."
KEYWORDS = ["weather", "today", "sunny", "warm", "walk", "park", "children"]
AUDIO_FORMATS = {".wav": ["-c:a", "pcm_s16le"], ".mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
                 ".m4a": ["-c:a", "aac", "-b:a", "64k"], ".flac": ["-c:a", "flac"], ".ogg": ["-c:a", "libvorbis"],
                 ".opus": ["-c:a", "libopus"]}

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt)")


def keyword_share(text: str) -> float:
    words = set(re.findall(r"[a-z']+", (text or "").lower()))
    return sum(k in words for k in KEYWORDS) / len(KEYWORDS)


def rows_of(directory) -> list[dict]:
    return pads.dataset(str(directory), format="parquet").to_table().to_pylist() if os.path.isdir(directory) else []


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """The same speech as every audio container ffmpeg here can write, plus a video carrying it."""
    d = tmp_path_factory.mktemp("audio_inputs")
    wav = d / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE], check=True, capture_output=True)
    with wave.open(str(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    out = {"seconds": seconds}
    for ext, codec in AUDIO_FORMATS.items():
        path = d / f"lecture{ext}"
        try:
            run_ffmpeg(["-i", str(wav), "-ar", "48000" if ext == ".opus" else "16000", *codec, str(path)])
        except Exception:   # an encoder this ffmpeg build lacks: that container is not tested
            continue
        out[ext] = str(path)
    video = d / "talk.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-i", str(wav), "-map", "0:v", "-map", "1:a",
                "-t", f"{seconds:.2f}", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                "-c:a", "aac", str(video)])
    out["video"] = str(video)
    return out


# --- audio-only inputs ------------------------------------------------------------------------------

def test_probe_takes_audio_only_files_and_says_so(speech):
    assert {".wav", ".mp3", ".m4a"} <= set(speech)
    stage = ProbeStage(ProbeConfig(), RunContext(output_dir=""))
    for ext in [e for e in AUDIO_FORMATS if e in speech]:
        (row,) = stage.process_batch([{R.PATH: speech[ext], R.SOURCE_URI: speech[ext]}])
        assert not isinstance(row, Reject), (ext, row)
        assert row[R.HAS_VIDEO] is False and row[R.HAS_AUDIO] is True and row[R.NUM_FRAMES] == 0
        assert row[R.WIDTH] is None and row[R.FPS] is None and row[R.AUDIO_CODEC]
        assert abs(row[R.DURATION_S] - speech["seconds"]) < 0.2, (ext, row[R.DURATION_S])
        assert row[R.VIDEO_ID] == content_id(speech[ext])
    (video,) = stage.process_batch([{R.PATH: speech["video"], R.SOURCE_URI: speech["video"]}])
    assert video[R.HAS_VIDEO] is True and video[R.NUM_FRAMES] > 0
    # callers that need frames (haystack sources, demo builds) still get the old verdict
    with pytest.raises(MediaError) as e:
        probe_video(speech[".wav"])
    assert e.value.reason == "no_video_stream"


def test_ingest_lists_audio_extensions_unless_told_otherwise(speech, tmp_path):
    src = tmp_path / "in"
    for key in [e for e in AUDIO_FORMATS if e in speech] + ["video"]:
        copy_to(speech[key], src)
    (src / "notes.txt").write_text("not media")
    cfg = parse_config({"input": [{"path": str(src)}], "output": {"dir": str(tmp_path / "o")}, "stages": [{"probe": {}}]})
    found = sorted(Path(r[R.PATH]).suffix for r in discover(cfg, str(tmp_path / "media")))
    assert found == sorted([e for e in AUDIO_FORMATS if e in speech] + [".mp4"])
    only_video = parse_config({"input": [{"path": str(src), "extensions": [".mp4"]}], "output": {"dir": str(tmp_path / "o")},
                               "stages": [{"probe": {}}]})
    assert [Path(r[R.PATH]).name for r in discover(only_video, str(tmp_path / "media"))] == ["talk.mp4"]


def test_ingest_skips_hidden_entries_below_a_folder(speech, tmp_path):
    """macOS writes `._name` metadata files beside every video it copies to a shared or exFAT drive, and tools
    keep caches in `.folders`: as inputs they made one `unreadable` reject each. Below a searched folder
    hidden entries are skipped (as `datasets` does); a hidden folder or file named as the input is read."""
    src = tmp_path / ".in"
    copy_to(speech["video"], src)
    for hidden in ("._talk.mp4", ".cache/talk.mp4", "sub/.talk.mp4"):
        (src / hidden).parent.mkdir(parents=True, exist_ok=True)
        (src / hidden).write_bytes(b"\x00\x05\x16\x07" * 1024)   # AppleDouble's magic, not a video
    copy_to(speech["video"], src / "sub")
    cfg = parse_config({"input": [{"path": str(src)}, {"path": str(src / ".cache" / "talk.mp4")}],
                        "output": {"dir": str(tmp_path / "o")}, "stages": [{"probe": {}}]})
    found = [os.path.relpath(r[R.PATH], src) for r in discover(cfg, str(tmp_path / "media"))]
    assert found == ["sub/talk.mp4", "talk.mp4", ".cache/talk.mp4"]


def test_audio_only_build_probe_asr_gives_transcript_rows(speech, tmp_path, in_process):
    src = tmp_path / "podcasts"
    for ext in (".wav", ".mp3", ".m4a"):
        copy_to(speech[ext], src)
    cfg = parse_config({"name": "podcasts", "input": [{"path": str(src)}], "output": {"dir": str(tmp_path / "out")},
                        "stages": [{"probe": {}}, {"asr": {"model": "tiny.en", "cpu_threads": 1}}]})
    result = build(cfg, progress=False)
    rows = rows_of(result.data_dir)
    assert Path(result.data_dir).name == "videos"   # no shots stage: one row per input
    assert sorted(Path(r[R.SOURCE_URI]).suffix for r in rows) == [".m4a", ".mp3", ".wav"], rows_of(tmp_path / "out" / "rejects")
    for r in rows:
        assert r[R.HAS_VIDEO] is False and r[R.TRANSCRIPT_LANGUAGE] == "en"
        assert keyword_share(r[R.TRANSCRIPT_TEXT]) >= 0.6, r[R.TRANSCRIPT_TEXT]
        words = [w for s in r[R.TRANSCRIPT_SEGMENTS] for w in s["words"]]
        assert words and all(0 <= w["start_s"] <= w["end_s"] <= speech["seconds"] + 0.6 for w in words)
    assert result.rejects == 0


def test_a_pipeline_that_needs_video_rejects_audio_at_its_first_video_stage(speech, tmp_path, in_process):
    src = tmp_path / "mixed"
    copy_to(speech[".m4a"], src)
    copy_to(speech["video"], src)
    cfg = parse_config({"input": [{"path": str(src)}], "output": {"dir": str(tmp_path / "out")},
                        "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}}, {"frames": {"num_frames": 2}}]})
    result = build(cfg, progress=False)
    (reject,) = rows_of(Path(result.output_dir) / "rejects")
    assert Path(reject[R.SOURCE_URI]).name == "lecture.m4a"
    assert (reject["stage"], reject["reason"]) == ("shots", "no_video_stream")   # shots: the first that decodes frames
    assert "audio-only" in reject["message"] and "aac" in reject["message"]
    assert json.loads(reject["detail"])["stage_needs_video"] == "shots"
    clips = rows_of(result.data_dir)
    assert clips and {Path(c[R.SOURCE_URI]).name for c in clips} == {"talk.mp4"}
    assert all(c[R.HAS_VIDEO] is True for c in clips)


# --- the same content at two paths -------------------------------------------------------------------

def test_find_duplicates_keeps_the_first_in_input_order(speech, tmp_path):
    a = copy_to(speech["video"], tmp_path / "a", "talk.mp4")
    b = copy_to(speech["video"], tmp_path / "b", "talk_copy.mp4")
    other = copy_to(speech[".wav"], tmp_path / "a", "lecture.wav")
    os.link(other, tmp_path / "b" / "hardlink.wav")
    rows = [{R.SOURCE_URI: p, R.PATH: p} for p in (b, other, a, str(tmp_path / "b" / "hardlink.wav"),
                                                    str(tmp_path / "missing.mp4"))]
    kept, rejects = find_duplicates(rows)
    assert [r[R.PATH] for r in kept] == [b, other]
    assert [(r.row[R.PATH], r.reason, r.detail.get("duplicate_of")) for r in rejects] == [
        (a, "duplicate_video", b), (str(tmp_path / "b" / "hardlink.wav"), "duplicate_video", other),
        (str(tmp_path / "missing.mp4"), "missing_file", None)]       # judged here, not sent to a worker
    assert b in rejects[0].message and rejects[0].row[R.VIDEO_ID] == content_id(a)


def _dup_config(inputs: list[str], out, mode: str = "overwrite") -> dict:
    return {"name": "dups", "input": [{"path": p} for p in inputs], "output": {"dir": str(out), "mode": mode},
            "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}}]}


def test_duplicate_input_becomes_a_reject_and_stays_one_on_resume(speech, tmp_path, in_process, cut_video):
    first = copy_to(speech["video"], tmp_path / "in", "a_talk.mp4")
    second = copy_to(speech["video"], tmp_path / "in", "b_talk_again.mp4")
    out = tmp_path / "out"
    result = build(parse_config(_dup_config([str(tmp_path / "in"), cut_video[0]], out)), progress=False)
    rejects = rows_of(out / "rejects")
    assert [(Path(r[R.SOURCE_URI]).name, r["stage"], r["reason"]) for r in rejects] == [
        ("b_talk_again.mp4", "ingest", "duplicate_video")]
    assert first in rejects[0]["message"] and json.loads(rejects[0]["detail"])["duplicate_of"] == first
    assert rejects[0][R.VIDEO_ID] == content_id(second)
    clips = rows_of(result.data_dir)
    ids = [c[R.CLIP_ID] for c in clips]
    assert len(ids) == len(set(ids)) and {Path(c[R.SOURCE_URI]).name for c in clips} == {"a_talk.mp4", "cuts.mp4"}
    assert result.rejects_by_reason == {"ingest:duplicate_video": 1}

    # resumed: the duplicate is done (its reject is committed), nothing runs, nothing is written twice
    again = build(parse_config(_dup_config([str(tmp_path / "in"), cut_video[0]], out, mode="resume")), progress=False)
    assert all(s["rows_in"] == 0 for s in again.stage_stats)
    assert rows_of(out / "rejects") == rejects and sorted(c[R.CLIP_ID] for c in rows_of(again.data_dir)) == sorted(ids)
    manifest = json.loads(Path(again.manifest_path).read_text())
    assert manifest["resumed_complete"] == 3 and manifest["rejects"] == 1

    # input order decides, not names: listing the copy first keeps the copy
    flipped = build(parse_config(_dup_config([second, first], tmp_path / "flipped")), progress=False)
    (rej,) = rows_of(tmp_path / "flipped" / "rejects")
    assert Path(rej[R.SOURCE_URI]).name == "a_talk.mp4" and second in rej["message"]
    assert {Path(c[R.SOURCE_URI]).name for c in rows_of(flipped.data_dir)} == {"b_talk_again.mp4"}


def test_duplicate_reject_in_an_embedded_ray_cli_run(speech, tmp_path):
    """`vdata build` with its own embedded Ray: the same verdict, and no Ray process left after it."""
    copy_to(speech["video"], tmp_path / "in", "a_talk.mp4")
    copy_to(speech["video"], tmp_path / "in", "b_talk_again.mp4")
    cfg_path = tmp_path / "dups.yaml"
    cfg_path.write_text(yaml.safe_dump({**_dup_config([str(tmp_path / "in")], tmp_path / "out"), "ray": {"num_cpus": 2}}))
    ray_tmp = tempfile.mkdtemp(prefix="vg", dir="/tmp")   # Ray's socket paths must stay short
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": ray_tmp}
    try:
        done = subprocess.run([str(BIN / "vdata"), "build", str(cfg_path), "--quiet"], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        (rej,) = rows_of(tmp_path / "out" / "rejects")
        assert (Path(rej[R.SOURCE_URI]).name, rej["reason"]) == ("b_talk_again.mp4", "duplicate_video")
        assert {Path(c[R.SOURCE_URI]).name for c in rows_of(tmp_path / "out" / "clips")} == {"a_talk.mp4"}
        deadline = time.time() + 30
        while _processes_naming(ray_tmp) and time.time() < deadline:
            time.sleep(0.5)
        assert _processes_naming(ray_tmp) == []
    finally:
        _kill_naming(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _processes_naming(marker: str) -> list[str]:
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if marker in cmd and p.pid != os.getpid():
            found.append(f"{p.pid}: {cmd[:120]}")
    return found


def _kill_naming(marker: str) -> None:
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info.get("cmdline") or []) and p.pid != os.getpid():
            try:
                p.kill()
            except psutil.Error:
                pass


@pytest.mark.parametrize("name,args", [
    ("camcorder.MTS", ["-c:v", "libx264", "-f", "mpegts"]), ("clip.m2ts", ["-c:v", "libx264", "-f", "mpegts"]),
    ("phone.3gp", ["-c:v", "mpeg4", "-s", "352x288"]), ("disc.vob", ["-c:v", "mpeg2video", "-f", "vob"]),
    ("broadcast.mxf", ["-c:v", "mpeg2video", "-b:v", "4M", "-s", "720x576"]), ("web.ogv", ["-c:v", "libvpx"]),
    ("animated.gif", ["-c:v", "gif"])])
def test_default_folder_search_takes_common_video_containers_that_probe_reads(tmp_path, name, args):
    """Camcorders, old phones, DVDs, broadcast files and animated GIFs are found in a folder by default
    (any case of extension), and each is a video that probe measures."""
    src = tmp_path / "in"
    src.mkdir()
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", *args, str(src / name)])
    cfg = parse_config({"input": [{"path": str(src)}], "output": {"dir": str(tmp_path / "o")}, "stages": [{"probe": {}}]})
    (row,) = discover(cfg, str(tmp_path / "media"))
    facts = probe_video(row[R.PATH])
    assert Path(row[R.PATH]).name == name and facts["duration_s"] == pytest.approx(2.0, abs=0.1)
    assert facts["num_frames"] >= 48


def _probe_and_transcribe(path: str, out_dir) -> tuple[dict, dict]:
    """(probe's row of `path`, the ASR stage's row of the clip that is all of it), Whisper tiny.en."""
    from vdata.stages.asr import AsrConfig, AsrStage

    (row,) = ProbeStage(ProbeConfig(), RunContext(output_dir="")).process_batch([{R.PATH: path, R.SOURCE_URI: path}])
    assert not isinstance(row, Reject), row
    asr = AsrStage(AsrConfig(model="tiny.en", cpu_threads=1), RunContext(output_dir=str(out_dir)))
    asr.setup()
    (out,) = asr.process_batch([{**row, R.CLIP_ID: os.path.basename(path), R.START_S: 0.0, R.END_S: row[R.DURATION_S]}])
    return row, out


def _heard_the_sentence(out: dict) -> bool:
    return sum(k in out[R.TRANSCRIPT_TEXT].lower() for k in KEYWORDS) >= 5


@pytest.mark.parametrize("ext", [".mp3", ".m4a"])
def test_podcast_with_cover_art_is_audio_and_transcribes(speech, tmp_path, ext):
    """Podcasts and audiobooks carry their artwork as a one-frame picture stream: that is not video. The
    file probes as audio-only (it was rejected `undecodable`) and Whisper transcribes it."""
    cover = tmp_path / "cover.jpg"
    run_ffmpeg(["-f", "lavfi", "-i", "color=red:size=320x320", "-frames:v", "1", str(cover)])
    path = str(tmp_path / f"episode{ext}")
    run_ffmpeg(["-i", speech[ext], "-i", str(cover), "-map", "0", "-map", "1", "-c", "copy",
                "-disposition:v:0", "attached_pic", path])
    row, out = _probe_and_transcribe(path, tmp_path / "out")
    assert row[R.HAS_VIDEO] is False and row[R.NUM_FRAMES] == 0
    assert abs(row[R.DURATION_S] - speech["seconds"]) < 0.2
    assert _heard_the_sentence(out), out[R.TRANSCRIPT_TEXT]
    with pytest.raises(MediaError) as e:   # where frames are needed it says why there are none
        probe_video(path)
    assert e.value.reason == "no_video_stream" and "cover picture" in e.value.message


def test_the_default_audio_track_is_the_one_transcribed(speech, tmp_path):
    """A video with a silent track first and the speech as its default track (films: a commentary or an
    other language first): ASR hears the track a player plays, not merely the first."""
    path = str(tmp_path / "two_tracks.mp4")
    run_ffmpeg(["-i", speech["video"], "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-map", "0:v", "-map", "1:a",
                "-map", "0:a", "-c:v", "copy", "-c:a", "aac", "-disposition:a:0", "0", "-disposition:a:1", "default",
                "-t", f"{speech['seconds']:.2f}", path])
    _, out = _probe_and_transcribe(path, tmp_path / "out")
    assert _heard_the_sentence(out), out[R.TRANSCRIPT_TEXT]


def test_speech_times_are_on_the_video_clock_in_mpeg_ts_too(speech, tmp_path):
    """Speech 3 s into the video. MPEG-TS starts its streams at 1.4 s or later on the container's clock,
    and the transcript was on that clock while every frame is on the video's (its first frame is 0): the
    words came 1.5 s late, and the last ones fell past the clip. Both containers now agree."""
    mp4, ts = str(tmp_path / "late_speech.mp4"), str(tmp_path / "late_speech.ts")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-itsoffset", "3", "-i", speech[".wav"],
                "-map", "0:v", "-map", "1:a", "-t", f"{speech['seconds'] + 4:.2f}", "-c:v", "libx264",
                "-pix_fmt", "yuv420p", "-c:a", "aac", mp4])
    run_ffmpeg(["-i", mp4, "-c", "copy", "-f", "mpegts", ts])
    starts = {}
    for path in (mp4, ts):
        _, out = _probe_and_transcribe(path, tmp_path / "out")
        assert _heard_the_sentence(out), (path, out[R.TRANSCRIPT_TEXT])
        segments = out[R.TRANSCRIPT_SEGMENTS]
        starts[path] = (segments[0]["start_s"], segments[-1]["end_s"])
    assert starts[mp4][0] == pytest.approx(3.0, abs=0.4)
    assert starts[ts][0] == pytest.approx(starts[mp4][0], abs=0.1) and starts[ts][1] == pytest.approx(starts[mp4][1], abs=0.1)
