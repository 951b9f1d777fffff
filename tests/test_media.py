"""Probe, readers and hashing on real files."""
import itertools
import re

import numpy as np
import pytest

from vdata.media import MediaError
from vdata.media.hashing import content_id, hamming, phash
from vdata.media.probe import probe_video
from vdata.media.reader import open_reader
from conftest import copy_to


def test_probe_facts_of_a_rendered_video(cut_video):
    info = probe_video(cut_video[0])
    assert info["num_frames"] == 350
    assert info["fps"] == pytest.approx(25.0)
    assert info["duration_s"] == pytest.approx(14.0, abs=0.05)
    assert (info["width"], info["height"]) == (640, 360)
    assert info["video_codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["has_audio"] is False and info["is_vfr"] is False
    assert info["bitrate"] > 0


def test_probe_reads_presentation_times_of_a_vfr_slideshow_with_b_frames(tmp_path):
    """A slideshow that keeps a frame only when the picture changes (ffmpeg's mpdecimate), x264 with B-frames:
    frames shown at 0, 2, 4, 6, then every 0.1 s. The MP4 index holds decode times, which the muxer spaces
    otherwise: read as such, the file was 14.3 s long where its last frame shows at 9.9 s. Changing the probe's answer changes its stage version,
    so results cached by the older code are not reused."""
    from vdata.media.ffmpeg import run_ffmpeg
    from vdata.schemas.config import parse_config
    from vdata.stages.probe import ProbeStage

    path = str(tmp_path / "slides.mp4")
    slides = ["color=c=white:", "color=c=0x202060:", "smptebars=", "color=c=0x602020:", "testsrc="]
    run_ffmpeg([arg for src in slides for arg in ("-f", "lavfi", "-i", f"{src}s=320x180:d=2")]
               + ["-filter_complex", "".join(f"[{i}]" for i in range(len(slides))) + f"concat=n={len(slides)},fps=10,"
                  "mpdecimate", "-c:v", "libx264", "-bf", "3", "-fps_mode", "vfr", path])
    info = probe_video(path)
    with open_reader(path, "pyav") as reader:
        shown = [t for _, t, _ in reader.iter_frames()]
    assert info["is_vfr"] and info["num_frames"] == len(shown)
    assert shown[-1] < info["duration_s"] < shown[-1] + 3.0, (info, shown)
    config = {"input": [{"path": "."}], "output": {"dir": "o"}, "stages": [{"probe": {}}, {"shots": {}}]}
    before = parse_config(config).stage_hashes()
    ProbeStage.version += 1
    try:
        after = parse_config(config).stage_hashes()
    finally:
        ProbeStage.version -= 1
    assert before[0] != after[0] and before[1] != after[1]   # the probe and everything after it


@pytest.mark.parametrize("content,says", [
    (b"<!DOCTYPE html>\n<html><head><title>Error 403</title></head><body>Forbidden</body></html>\n", "an HTML page"),
    (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not '
     b'exist.</Message></Error>', "object store's XML error (NoSuchKey)"),
    (b'{"error": {"code": 404, "message": "not found"}}', "a JSON document"),
    (b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:6.0,\nseg0.ts\n", "a streaming playlist"),
    (b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"></MPD>', "a streaming playlist"),
    (b"AccessDenied\n", "a text file"),
    (bytes(range(256)) * 8, None),   # bytes that say nothing: no guess
])
def test_what_a_file_no_demuxer_reads_holds_instead_is_said(tmp_path, content, says):
    """A failed download saves a site's page or an object store's error under the video's name: the reject
    stays `unreadable` and its message says what the file is."""
    path = tmp_path / "video.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError) as e:
        probe_video(str(path))
    assert e.value.reason == "unreadable" and "not a readable media container" in e.value.message
    assert (says in e.value.message) if says else "; it is" not in e.value.message


def test_a_dv_tape_is_read_at_its_frame_rate(tmp_path):
    """The DV demuxer gives its 1/60000 clock as the stream's average rate: 60000 fps for a 25 fps tape. The
    probe, the readers and the shots stage's frame table all read 25, and the clip lasts as long as its frames."""
    from vdata.media.cuts import frame_table
    from vdata.media.ffmpeg import run_ffmpeg

    path = str(tmp_path / "tape.dv")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25:d=2", "-c:v", "dvvideo", "-pix_fmt", "yuv420p", path])
    info = probe_video(path)
    assert (info["fps"], info["num_frames"]) == (25.0, 50) and info["duration_s"] == pytest.approx(2.0, abs=0.01)
    assert (info["width"], info["height"]) == (768, 576)   # PAL 4:3, square pixels
    for backend in ("pyav", "opencv"):
        with open_reader(path, backend) as reader:
            assert reader.fps == 25.0, backend
    assert frame_table(path).fps == 25.0


def test_probe_reports_audio(bunny):
    info = probe_video(bunny)
    assert info["has_audio"] is True
    assert info["audio_codec"] == "aac" and info["audio_sample_rate"] > 0
    assert (info["width"], info["height"]) == (1280, 720)


@pytest.mark.parametrize("kind,reason", [
    ("empty", "empty_file"), ("text", "unreadable"), ("truncated", "truncated"),
    ("audio_only", "no_video_stream"), ("one_frame", "too_few_frames"),
])
def test_probe_rejects_bad_files_with_reason(bad_files, kind, reason):
    with pytest.raises(MediaError) as e:
        probe_video(bad_files[kind])
    assert e.value.reason == reason
    assert len(e.value.message) > 10


def test_probe_rejects_ts_parts_joined_with_separate_timelines_and_reads_their_remux(tmp_path):
    """Two MPEG-TS recordings joined byte for byte (`cat a.ts b.ts`), each with its own timeline from 1.4 s:
    sorted, the times hid the join (6 s of 12, every time twice), shots read a 4 s shot as -2 s long and
    frames came from the wrong part. The probe now names the jump; parts whose times run on stay whole."""
    from vdata.media.ffmpeg import run_ffmpeg

    parts = []
    for i, (source, offset) in enumerate([("testsrc2", 1.4), ("smptebars", 1.4), ("mandelbrot", 4.4)]):
        parts.append(tmp_path / f"part{i}.ts")
        run_ffmpeg(["-f", "lavfi", "-i", f"{source}=s=320x180:r=25", "-t", "3", "-c:v", "libx264", "-g", "25",
                    "-output_ts_offset", str(offset), "-f", "mpegts", str(parts[-1])])
    joined, continuous = tmp_path / "joined.ts", tmp_path / "continuous.ts"
    joined.write_bytes(parts[0].read_bytes() + parts[1].read_bytes())
    continuous.write_bytes(parts[0].read_bytes() + parts[2].read_bytes())
    with pytest.raises(MediaError) as e:
        probe_video(str(joined))
    assert e.value.reason == "timestamp_discontinuity"
    jump = re.search(r"jump back at packet 75 \(([\d.]+)s -> ([\d.]+)s\)", e.value.message)
    assert jump and float(jump[1]) - float(jump[2]) == pytest.approx(2.96, abs=0.01)   # the last frame of part 0
    assert "ffmpeg -i" in e.value.message
    info = probe_video(str(continuous))
    assert info["num_frames"] == 150 and info["duration_s"] == pytest.approx(6.0, abs=0.05)
    remuxed = str(tmp_path / "remuxed.mp4")
    run_ffmpeg(["-i", str(joined), "-c", "copy", remuxed])   # the fix the message names
    info = probe_video(remuxed)
    assert info["num_frames"] == 150 and info["duration_s"] == pytest.approx(6.0, abs=0.1)


def test_a_flash_video_with_sound_probes_and_reads_at_its_times(tmp_path):
    """Sorenson FLV (old YouTube and Flash downloads) with an MP3 track: the container has no seek index
    and its video starts 25 ms in, after the first sound, so libavformat finds no keyframe at or before 0
    and the probe's rewind failed (EPERM): the whole video was rejected with a traceback."""
    from vdata.media.ffmpeg import run_ffmpeg

    path, reference = str(tmp_path / "flash.flv"), str(tmp_path / "reference.mkv")
    source = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=3", "-f", "lavfi", "-i", "sine=duration=3"]
    run_ffmpeg(source + ["-c:v", "flv1", "-c:a", "libmp3lame", "-ar", "44100", path])
    run_ffmpeg(source + ["-c:v", "ffv1", "-an", reference])
    info = probe_video(path)
    assert info["num_frames"] == 75 and info["duration_s"] == pytest.approx(3.0, abs=0.05)
    assert info["video_codec"] == "flv" and info["has_audio"]
    times = [2.4, 0.0, 1.0, 0.52]   # out of order: the reader goes back
    with open_reader(path, backend="pyav") as reader:
        got = reader.read_at(times)
    with open_reader(reference, backend="pyav") as reader:
        want = reader.read_at(times)
    assert [round(t, 3) for t, _ in got] == [round(t, 3) for t, _ in want] == times
    for (_, image), (_, truth) in zip(got, want):   # the same pictures, up to the lossy codec
        assert np.abs(image.astype(int) - truth).mean() < 8


@pytest.mark.parametrize("fmt, ext", [("h264", "h264"), ("hevc", "hevc"), ("m4v", "m4v")])
def test_a_raw_elementary_stream_is_rejected_with_the_remux_that_fixes_it(tmp_path, fmt, ext):
    """A camera's or an encoder's raw stream (.h264, .hevc) is in no container: it carries no times, the
    demuxer guesses 25 fps (this one is 30), and it cannot seek. The probe failed on the seek with a
    traceback (`error`); it now names the problem and the fix, which then probes at the true rate."""
    from vdata.media.ffmpeg import run_ffmpeg

    raw = tmp_path / f"camera.{ext}"
    codec = {"h264": "libx264", "hevc": "libx265", "m4v": "mpeg4"}[fmt]
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=2", "-c:v", codec, "-f", fmt, str(raw)])
    with pytest.raises(MediaError) as e:
        probe_video(str(raw))
    assert e.value.reason == "no_container" and "ffmpeg -framerate 30 -i camera." in e.value.message
    fixed = str(tmp_path / "fixed.mp4")
    run_ffmpeg(["-framerate", "30", "-i", str(raw), "-c", "copy", fixed])   # the fix the message names
    info = probe_video(fixed)   # at 30 fps (a stream copy without times may lose a B-frame or two)
    assert 57 <= info["num_frames"] <= 60 and info["fps"] == pytest.approx(30, abs=0.3)
    assert info["duration_s"] == pytest.approx(2.0, abs=0.1)


def test_content_id_depends_on_bytes_not_path(cut_video, tmp_path, bikes):
    a = content_id(cut_video[0])
    b = content_id(copy_to(cut_video[0], tmp_path / "elsewhere", "renamed.mp4"))
    assert a == b
    assert content_id(bikes) != a


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_readers_return_frames_at_requested_times(cut_video, backend):
    path, cuts = cut_video
    # the middle of each segment: segments come from different sources, so frames must differ
    times = [1.0 + 2.0 * k for k in range(7)]
    with open_reader(path, backend, max_side=320) as r:
        frames = r.read_at(times, max_side=320)
    assert [round(t, 2) for t, _ in frames] == [round(t, 2) for t in times]
    assert all(f.shape == (180, 320, 3) for _, f in frames)
    hashes = [phash(f) for _, f in frames]
    assert all(hamming(a, b) > 6 for a, b in zip(hashes, hashes[1:]))


@pytest.mark.parametrize("backend", ["decord", "pyav", "opencv"])
def test_read_at_hands_each_frame_over_as_it_is_ready(cut_video, backend):
    """on_frame gets every requested frame once, under its index in the request (requests out of
    time order included), with the pixels read_at returns."""
    path, _ = cut_video
    times = [9.0, 1.0, 5.0, 1.04]
    seen = []
    with open_reader(path, backend, max_side=160) as r:
        frames = r.read_at(times, max_side=160, on_frame=lambda k, image: seen.append((k, image)))
    assert sorted(k for k, _ in seen) == [0, 1, 2, 3]
    for k, image in seen:
        assert np.array_equal(image, frames[k][1])
    if backend == "pyav":   # decoded in time order: the callback sees the earliest first
        assert [k for k, _ in seen] == [1, 3, 2, 0]


def test_backends_agree_on_pixels(bikes):
    times = [0.5, 2.2, 2.24, 6.0, 9.9]
    with open_reader(bikes, "decord") as d, open_reader(bikes, "pyav") as p:
        fd, fp = d.read_at(times), p.read_at(times)
    for (td, a), (tp, b) in zip(fd, fp):
        assert td == pytest.approx(tp, abs=1e-3)
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3.0


def test_stream_iteration_counts_every_frame(cut_video):
    with open_reader(cut_video[0], "pyav") as r:
        idx = [i for i, _, _ in r.iter_frames(max_side=64)]
    assert idx == list(range(350))


def test_workers_decode_with_the_threads_they_were_given(cut_video):
    """The runner caps decode threads per worker at its CPU share (N workers on N cores, not N x N threads)."""
    import cv2

    from vdata.media import reader as rd

    try:
        rd.set_decode_threads(1)
        with rd.OpenCVReader(cut_video[0]) as r:
            assert r._cap.get(cv2.CAP_PROP_N_THREADS) == 1
            assert sum(1 for _ in r.iter_frames(0, 1.0)) == 25   # and it still decodes every frame
        with rd.PyAVReader(cut_video[0]) as r:
            assert r._stream.codec_context.thread_count == 1
        assert cv2.getNumThreads() == 1
    finally:
        rd.set_decode_threads(0)
        cv2.setNumThreads(-1)


def test_phash_decisions_hold(cut_video):
    """The thresholds callers use were set on the earlier hand-written pHash; on imagehash's pHash they
    still separate the cases: a static picture 40 ms later is a duplicate for quality (<= 4), and
    frames of different sources are distinct for frames' keyframes (> 10) and haystack verify (> 12).
    (Checked once more broadly: on 160 frames of 10 videos both hashes took the same decision on 99.8 %
    of 12,720 pairs at 10 and 12; the rest sat within 2 bits of the threshold.)"""
    from vdata.haystack.config import VerifySpec
    from vdata.stages.frames import FramesConfig
    from vdata.stages.quality import QualityConfig

    textured = [0, 1, 2, 4, 5]     # CUT_SOURCES without the flat colour (a flat frame has no stable pHash)
    with open_reader(cut_video[0], "pyav", max_side=320) as r:
        mid = [f for _, f in r.read_at([1.0 + 2.0 * k for k in textured], max_side=320)]
        later = [f for _, f in r.read_at([1.04 + 2.0 * k for k in textured], max_side=320)]
    hashes = [phash(f) for f in mid]
    distinct = [hamming(a, b) for a, b in itertools.combinations(hashes, 2)]
    assert min(distinct) > max(FramesConfig().min_hash_distance, VerifySpec().phash_max_distance)
    smptebars = 1
    assert hamming(hashes[smptebars], phash(later[smptebars])) <= QualityConfig().dup_hash_distance
    assert all(hamming(a, phash(b)) <= FramesConfig().min_hash_distance for a, b in zip(hashes, later))


def test_reader_checks_flag_absurd_and_misplaced_times():
    from vdata.media.reader import returned_times_problem, timestamp_table_problem

    assert timestamp_table_problem(np.arange(100) / 25.0, 25.0) is None
    assert "run from" in timestamp_table_problem(np.full(100, -3.6893487e17), 25.0)
    assert "backwards" in timestamp_table_problem(np.array([0.0, 0.08, 0.04, 0.12]), 25.0)
    assert returned_times_problem([0.5, 1.5], [0.48, 1.48], 25.0) is None
    assert "off" in returned_times_problem([0.5, 1.5], [3.96, 3.96], 25.0)
    # asking past the last frame rightly gets the last frame
    assert returned_times_problem([5.0], [3.96], 25.0, span=(0.0, 3.96)) is None
    assert "out of order" in returned_times_problem([0.5, 1.0], [0.52, 0.48], 1.0)


def _first_frame_by_ffmpeg(path: str, size: tuple[int, int], *args: str) -> np.ndarray:
    """Frame 0 of `path` as ffmpeg's CLI gives it (its autorotate; `args` before the output), RGB of `size`."""
    import subprocess

    from vdata.media.ffmpeg import ffmpeg_exe

    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", path, *args, "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(size[1], size[0], 3)


@pytest.fixture(scope="module")
def sideways_videos(tmp_path_factory):
    """A landscape video stored once plainly and then with a display matrix for each turn (what a phone's
    portrait video carries), with the picture ffmpeg's CLI shows for each (its autorotate) at frame 0."""
    import subprocess

    from vdata.media.ffmpeg import ffmpeg_exe

    d = tmp_path_factory.mktemp("rotated")
    plain = str(d / "plain.mp4")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x176:rate=25:duration=2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", plain], check=True)
    out = {}
    for turn in (0, 90, 180, 270):
        path = str(d / f"turned_{turn}.mp4")
        subprocess.run([ffmpeg_exe(), "-v", "error", "-display_rotation", str(turn), "-i", plain, "-c", "copy", path],
                       check=True)
        size = (176, 320) if turn in (90, 270) else (320, 176)   # (width, height) as shown
        out[turn] = (path, _first_frame_by_ffmpeg(path, size))
    return out


@pytest.mark.parametrize("backend", ["pyav", "opencv", "decord"])
def test_sideways_stored_video_reads_upright_as_ffmpeg_shows_it(sideways_videos, backend):
    """Every reader gives the picture a player shows (PyAV alone does not turn it), at every size it is
    asked for, and the probe's width and height are that picture's."""
    for turn, (path, shown) in sideways_videos.items():
        height, width = shown.shape[:2]
        facts = probe_video(path)
        assert (facts["width"], facts["height"], facts["rotation"]) == (width, height, turn)
        with open_reader(path, backend) as r:
            assert (r.width, r.height) == (width, height)
            [(_, full)], [(_, small)] = r.read_at([0.0]), r.read_at([0.0], max_side=160)
            assert full.shape == shown.shape
            assert np.abs(full.astype(int) - shown.astype(int)).mean() < 3.0, (backend, turn)
            assert max(small.shape[:2]) == 160 and (small.shape[0] > small.shape[1]) == (height > width)
            _, _, streamed = next(iter(r.iter_frames(max_side=80, fmt="rgb24")))
            assert max(streamed.shape[:2]) == 80 and (streamed.shape[0] > streamed.shape[1]) == (height > width)
            assert np.abs(streamed.astype(int) - _area(shown, streamed.shape).astype(int)).mean() < 12.0, (backend, turn)


def _area(image, shape):
    import cv2

    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def test_teacher_frames_and_transnet_input_are_upright(sideways_videos):
    """The offline teacher's own video sampling and TransNetV2's 48x27 input see the picture as shown."""
    from vdata.media.transnet import decode_small
    from vdata.teachers.media_encoding import sample_video_frames

    path, shown = sideways_videos[90]
    first = sample_video_frames(path, 2)["frames"][0]
    assert np.abs(first.astype(int) - shown.astype(int)).mean() < 3.0
    frames, _, _ = decode_small(path)
    assert frames.shape[1:] == (27, 48, 3)
    assert np.abs(frames[0].astype(int) - _area(shown, (27, 48)).astype(int)).mean() < 20.0


def test_a_picture_track_before_the_video_is_not_what_is_read(tmp_path):
    """An MKV whose first video track is a one-frame picture (a thumbnail muxed as a track): probe, every
    reader and the clip files take the real video, ffmpeg's own pick (decord's too). OpenCV read one frame
    of it, so such a file goes to PyAV; ffmpeg's indexed seek writes an empty clip, so the clip decodes
    from the start."""
    import subprocess

    from vdata.media.ffmpeg import ffmpeg_exe, run_ffmpeg
    from vdata.media.hashing import content_id
    from vdata.schemas import records as R
    from vdata.stages.base import RunContext
    from vdata.stages.shots import ShotsConfig, ShotsStage

    video, thumb, path = tmp_path / "v.mp4", tmp_path / "t.jpg", str(tmp_path / "with_thumbnail.mkv")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x176:rate=25:duration=3", "-c:v", "libx264", str(video)])
    run_ffmpeg(["-f", "lavfi", "-i", "color=red:size=160x90", "-frames:v", "1", str(thumb)])
    run_ffmpeg(["-i", str(thumb), "-i", str(video), "-map", "0", "-map", "1", "-c", "copy", path])
    streams = subprocess.run([ffmpeg_exe(), "-i", path], capture_output=True, text=True).stderr
    assert "Stream #0:0: Video: mjpeg" in streams   # the picture is the first video track
    facts = probe_video(path)
    assert (facts["video_codec"], facts["num_frames"], facts["width"]) == ("h264", 75, 320)
    for backend in ("pyav", "opencv", "decord"):
        with open_reader(path, backend) as r:
            [(t, image)] = r.read_at([2.0])
            assert image.shape == (176, 320, 3) and t == pytest.approx(2.0, abs=0.05), backend
            assert image[..., 0].mean() < 200, backend   # testsrc2, not the red picture
            assert (r.backend == "pyav" and "several video streams" in r.fallback_reason) if backend == "opencv" else True
    stage = ShotsStage(ShotsConfig(write_clips=True), RunContext(output_dir=str(tmp_path / "out")))
    (clip,) = stage.process_batch([{R.PATH: path, R.VIDEO_ID: content_id(path), **facts}])
    assert probe_video(clip[R.CLIP_PATH])["num_frames"] >= 74


@pytest.mark.parametrize("backend", ["pyav", "opencv", "decord"])
def test_non_square_pixels_read_at_the_shape_a_player_shows(tmp_path, backend):
    """A 16:9 DVD stores 720x480 pictures with pixels 32:27 wide: probe, every reader and the teacher's own
    sampling give 854x480, the pixels ffmpeg's `scale=iw*sar:ih` makes (no library applies it itself)."""
    from vdata.media.ffmpeg import run_ffmpeg
    from vdata.teachers.media_encoding import sample_video_frames

    path = str(tmp_path / "dvd.vob")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=720x480:rate=25:duration=2", "-vf", "setsar=32/27",
                "-c:v", "mpeg2video", "-b:v", "6M", "-f", "vob", path])
    shown = _first_frame_by_ffmpeg(path, (854, 480), "-vf", "scale=854:480")
    assert (probe_video(path)["width"], probe_video(path)["height"]) == (854, 480)
    with open_reader(path, backend) as r:
        assert (r.width, r.height) == (854, 480)
        [(_, full)], [(_, small)] = r.read_at([0.0]), r.read_at([0.0], max_side=448)
        _, _, streamed = next(iter(r.iter_frames(max_side=200, fmt="rgb24")))
    assert full.shape == (480, 854, 3)   # a squeezed reading is 720 wide: the shape is what differs
    luma = [x.astype(float).mean(axis=2) for x in (full, shown)]   # scalers' colour matrices differ a little
    assert np.abs(luma[0] - luma[1]).mean() < 8.0, backend
    assert small.shape == (252, 448, 3) and streamed.shape == (112, 200, 3)
    assert sample_video_frames(path, 1)["frames"][0].shape == (480, 854, 3)


def test_an_interlaced_frame_reads_as_one_field_not_combed(tmp_path):
    """Broadcast and DV video is interlaced: each frame holds two fields 1/50 s apart. Here the fields are
    black and white, so the whole frame is stripes; the still a stage reads is one field, uniform."""
    from vdata.media.ffmpeg import run_ffmpeg

    path = str(tmp_path / "interlaced.mp4")
    run_ffmpeg(["-f", "lavfi", "-i", "color=black:size=720x576:rate=50:duration=1,format=yuv420p,"
                "geq=lum='if(mod(N\\,2)\\,235\\,16)':cb=128:cr=128", "-vf", "tinterlace=mode=interleave_top,setfield=tff",
                "-c:v", "libx264", "-crf", "10", "-flags", "+ilme+ildct", "-x264-params", "tff=1", path])
    import av

    with av.open(path) as c:
        raw = next(c.decode(video=0))
        assert raw.interlaced_frame and raw.to_ndarray(format="gray").std() > 100   # stripes
    with open_reader(path, "pyav") as r:
        for max_side in (None, 448):
            [(_, still)] = r.read_at([0.5], max_side=max_side)
            assert still.shape[:2] == ((576, 720) if max_side is None else (358, 448))
            assert still.astype(float).mean(axis=2).std() < 5, max_side


def test_iter_frames_after_read_at_starts_from_the_first_frame(cut_video, bikes):
    """A reader that has served read_at is mid-stream: iter_frames from 0 must rewind, not go on from
    there with frame indexes counted from 0 (every index would name a later frame)."""
    from vdata.media import reader as rd

    for path in (cut_video[0], bikes):
        with rd.PyAVReader(path) as r:
            fresh = [(i, round(t, 3)) for i, t, _ in r.iter_frames(0, 1.0, max_side=64)]
        with rd.PyAVReader(path) as r:
            r.read_at([1.5, 3.0], max_side=64)
            again = [(i, round(t, 3)) for i, t, _ in r.iter_frames(0, 1.0, max_side=64)]
            twice = [(i, round(t, 3)) for i, t, _ in r.iter_frames(0, 1.0, max_side=64)]
        assert fresh and again == fresh and twice == fresh, (path, fresh[:3], again[:3])
