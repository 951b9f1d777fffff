"""Odd media that probe and the frames stage read wrongly without an error: a mirrored display matrix (front
cameras, edited phone video), an MPEG-TS whose timestamps wrap around, variable-rate and slideshow timing,
and sampling grids that lost a frame to float rounding. Every file is made here with ffmpeg, and what vdata
reads is checked against what ffmpeg itself decodes."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from vdata.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from vdata.media.images import decode_jpeg
from vdata.media.probe import probe_video
from vdata.media.reader import open_reader
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.frames import FramesConfig, FramesStage, sample_times

SIZE = (160, 120)   # (width, height) stored
RATE = 10


def decoded_by_ffmpeg(path: str, size: tuple[int, int]) -> np.ndarray:
    """Every frame as ffmpeg's CLI shows it (its autorotate applies the display matrix), none repeated to a
    constant rate: (frames, h, w, 3)."""
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", path, "-fps_mode", "passthrough", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, size[1], size[0], 3)


def differs(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def stored_frame_is(frame: dict, shown: np.ndarray, rate: float) -> None:
    """A frames-stage JPEG is, of all the frames ffmpeg shows, nearest the one at its timestamp, and close to it."""
    image = decode_jpeg(frame[R.FRAME_JPEG])
    index = round(frame[R.FRAME_TIMESTAMP_S] * rate)
    distances = [differs(image, other) for other in shown]
    assert int(np.argmin(distances)) == index and distances[index] < 10.0, (index, distances)


def frames_of(path: str, info: dict, start: float, end: float, **cfg) -> dict | Reject:
    stage = FramesStage(FramesConfig(max_side=320, **cfg), RunContext(output_dir="/tmp/unused"))
    row = {R.PATH: path, R.SOURCE_URI: path, **info, R.CLIP_ID: "clip", R.START_S: start, R.END_S: end}
    return stage.process_batch([row])[0]


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("mirrors") / "plain.mp4")
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate={RATE}:duration=1", "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", path])
    return path


# (ffmpeg's display options, the turn probe reports: the mirror is done after it)
MIRRORS = {"hflip": (["-display_hflip"], 0), "vflip": (["-display_vflip"], 180),
           "rot90_hflip": (["-display_rotation", "90", "-display_hflip"], 90),
           "rot270_hflip": (["-display_rotation", "270", "-display_hflip"], 270),
           "rot180": (["-display_rotation", "180"], 180)}   # no mirror: the half turn a plain mirror was taken for


@pytest.mark.parametrize("name", MIRRORS)
def test_a_mirrored_display_matrix_reads_mirrored_as_ffmpeg_shows_it(plain, tmp_path, name):
    """A front camera's (or an edited phone video's) display matrix mirrors the picture. PyAV's angle for a
    plain left-right mirror is -180, and frames came out upside down (a turn by 90 and a mirror: mirrored
    the wrong way), while the clip files (ffmpeg's autorotate) were right, and probe said rotation 180.
    Every reader and the frames stage now give ffmpeg's picture; probe reports the turn alone."""
    options, turn = MIRRORS[name]
    path = str(tmp_path / f"{name}.mp4")
    run_ffmpeg([*options, "-i", plain, "-c", "copy", path])
    shown_size = SIZE[::-1] if turn in (90, 270) else SIZE
    shown = decoded_by_ffmpeg(path, shown_size)
    assert differs(shown[5], np.flip(shown[5], 1)) > 20   # the picture is no mirror image of itself
    info = probe_video(path)
    assert (info["rotation"], info["width"], info["height"]) == (turn, *shown_size)
    for backend in ("pyav", "opencv", "decord"):
        with open_reader(path, backend) as reader:
            assert (reader.width, reader.height) == shown_size
            [(t, image)] = reader.read_at([0.5])
            assert differs(image, shown[round(t * RATE)]) < 3.0, (backend, name)
        with open_reader(path, backend, purpose="stream") as reader:
            _, _, streamed = next(iter(reader.iter_frames(fmt="rgb24")))
            assert differs(streamed, shown[0]) < 3.0, (backend, name)
    clip = frames_of(path, info, 0.0, 1.0, num_frames=2)
    assert not isinstance(clip, Reject), clip
    for frame in clip[R.FRAMES]:
        stored_frame_is(frame, shown, RATE)
    # a teacher that is sent the video itself (vLLM's offline engine) sees the same picture
    from vdata.teachers.media_encoding import sample_video_frames

    sampled = sample_video_frames(path, 3)
    for index, image in zip(sampled["frame_indices"], sampled["frames"]):
        assert image.shape[:2] == shown_size[::-1] and differs(image, shown[index]) < 3.0, (name, index)


def test_frames_before_an_mpeg_ts_timestamp_wrap_are_read(tmp_path):
    """A broadcast capture's 33-bit PTS wraps around (every 26.5 h): libavformat makes the times before the
    wrap negative, and a rewind to time 0 landed at the wrap, seconds in; with B-frames a seek to the
    (negative) start itself landed past the first keyframe. The frames of every clip before the wrap were
    rejected `corrupt` ("asked for 0.250s, got a frame at 2s")."""
    path = str(tmp_path / "ptswrap.ts")
    # the wrap ~1.5 s in: 2^33 / 90 kHz = 95443.72 s, less the muxer's 1.4 s delay and 1.5 s of video
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate={RATE}:duration=4", "-c:v", "libx264",
                "-preset", "veryfast", "-bf", "2", "-g", "20", "-pix_fmt", "yuv420p", "-output_ts_offset", "95440.8",
                "-f", "mpegts", path])
    shown = decoded_by_ffmpeg(path, SIZE)
    info = probe_video(path)
    assert (info["num_frames"], info["duration_s"]) == (len(shown), pytest.approx(4.0))
    asked = [0.05, 0.55, 1.05, 1.35, 1.85, 2.45, 3.25, 3.95]
    with open_reader(path, "pyav") as reader:
        got = reader.read_at(asked)
    assert [t for t, _ in got] == pytest.approx(asked, abs=0.051)
    for t, image in got:
        assert differs(image, shown[round(t * RATE)]) < 3.0, t
    for start in (0.0, 2.0):
        clip = frames_of(path, info, start, start + 2.0, num_frames=4)
        assert not isinstance(clip, Reject), clip
        for frame in clip[R.FRAMES]:
            assert start <= frame[R.FRAME_TIMESTAMP_S] < start + 2.0
            stored_frame_is(frame, shown, RATE)


def test_a_variable_rate_video_has_its_average_rate_and_lasts_until_its_last_picture_ends(tmp_path):
    """An MKV of 1 s at 10 fps, 1 s at 30 and 1 s at 5 (45 frames, 3 s) declares no average rate: probe took
    the peak (30 fps) and made the file 2.833 s long (the last frame plus 1/30 s)."""
    path = str(tmp_path / "vfr.mkv")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=1", "-f", "lavfi", "-i", "smptebars=s=160x120:r=30:d=1",
                "-f", "lavfi", "-i", "testsrc=s=160x120:r=5,trim=duration=1", "-filter_complex",
                "[0][1][2]concat=n=3:v=1:a=0,format=yuv420p[v]", "-map", "[v]", "-fps_mode", "passthrough",
                "-c:v", "libx264", "-preset", "ultrafast", path])
    frames = len(decoded_by_ffmpeg(path, SIZE))
    info = probe_video(path)
    assert info["is_vfr"] and info["num_frames"] == frames == 45
    assert info["duration_s"] == pytest.approx(3.0, abs=1e-3)
    assert info["fps"] == pytest.approx(frames / info["duration_s"])
    with open_reader(path, "pyav") as reader:
        assert [t for _, t, _ in reader.iter_frames()][-1] == pytest.approx(2.8)   # shown until 3.0


def test_a_slideshow_lasts_as_long_as_its_stream_says_not_one_mean_interval_more(tmp_path):
    """Three stills for 3 s each (ffmpeg's concat demuxer: frames at 0, 3, 6 and 9 s, the stream 9.04 s
    long): its mean rate, 4 frames / 9.04 s, put the end 2.26 s past the last frame, at 11.26 s, and the
    last clip ran past the end of the file."""
    listing = tmp_path / "list.txt"
    for i, colour in enumerate(("red", "green", "blue")):
        run_ffmpeg(["-f", "lavfi", "-i", f"color=c={colour}:s=160x120", "-frames:v", "1", str(tmp_path / f"s{i}.png")])
    listing.write_text("".join(f"file 's{i}.png'\nduration 3\n" for i in range(3)) + "file 's2.png'\n")
    path = str(tmp_path / "slideshow.mp4")
    run_ffmpeg(["-f", "concat", "-i", str(listing), "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", path])
    with open_reader(path, "pyav") as reader:
        shown = [t for _, t, _ in reader.iter_frames()]
    assert shown == pytest.approx([0.0, 3.0, 6.0, 9.0])
    info = probe_video(path)
    assert 9.0 < info["duration_s"] <= 9.1, info
    assert info["fps"] == pytest.approx(len(shown) / info["duration_s"], rel=1e-3)
    clip = frames_of(path, info, 6.0, info["duration_s"], num_frames=4)
    assert not isinstance(clip, Reject), clip
    assert {f[R.FRAME_TIMESTAMP_S] for f in clip[R.FRAMES]} <= {6.0, 9.0}
    # the shots stage's last clip ends with the file, not one mean interval (2.26 s) past it
    import datasets

    import vdata
    from vdata.stages.probe import ProbeStage
    from vdata.stages.shots import ShotsStage

    probed, _ = vdata.run_stage(ProbeStage(), datasets.Dataset.from_list([{R.SOURCE_URI: path, R.PATH: path}]))
    clips, rejects = vdata.run_stage(ShotsStage(min_len_s=0.5), probed)
    assert len(rejects) == 0 and len(clips) == 3, clips.to_list()
    assert clips[-1][R.END_S] == pytest.approx(probed[0][R.DURATION_S], abs=1e-3) and clips[-1][R.START_S] == 6.0


@pytest.mark.parametrize("start", [0.0, 2.68, 6.04, 0.1, 3.3, 1234.56])
def test_fps_and_keyframes_grids_keep_every_slot_of_a_clip(start):
    """4.68 - 2.68 is 1.9999999999999996: `int(span * rate)` gave 3 slots at 2 fps where [0, 2] got 4."""
    end = round(start + 2.0, 6)   # clip times are stored to the microsecond
    for mode in ("fps", "keyframes"):
        times = sample_times(mode, start, end, FramesConfig(mode=mode, fps=2.0, candidate_fps=2.0))
        assert times == pytest.approx([start + 0.25, start + 0.75, start + 1.25, start + 1.75]), (mode, start)


def test_a_clip_starting_off_the_grid_gets_all_its_frames(tmp_path):
    """Through the stage, on a real file: the clip [2.68, 4.68] of a 25 fps video at 2 fps (the tester's
    edit-list cut) gets 4 frames, as [2.0, 4.0] does."""
    path = str(tmp_path / "cfr.mp4")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=6", "-c:v", "libx264", "-preset",
                "ultrafast", "-pix_fmt", "yuv420p", path])
    info = probe_video(path)
    for start, end in ((2.0, 4.0), (2.68, 4.68)):
        clip = frames_of(path, info, start, end, mode="fps", fps=2.0)
        assert not isinstance(clip, Reject), clip
        assert len(clip[R.FRAMES]) == 4, (start, [f[R.FRAME_TIMESTAMP_S] for f in clip[R.FRAMES]])


def test_a_cut_short_mp4_and_a_still_image_say_what_they_are(tmp_path):
    """A download cut short before an MP4's index (written last without faststart) read as 'not a readable
    media container', and a PNG saved as .mp4 as a 1-frame video: both now say what the file is."""
    from vdata.media import MediaError

    whole, faststart = str(tmp_path / "whole.mp4"), str(tmp_path / "faststart.mp4")
    for path, flags in ((whole, []), (faststart, ["-movflags", "+faststart"])):
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-t", "3", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", *flags, path])
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(open(whole, "rb").read()[:20000])
    with pytest.raises(MediaError) as e:
        probe_video(str(cut))
    assert "without its index: no moov box, and its mdat box runs past the end" in str(e.value)
    cut_fast = tmp_path / "cut_fast.mp4"   # the index comes first: what is cut is the media data
    cut_fast.write_bytes(open(faststart, "rb").read()[:20000])
    with pytest.raises(MediaError) as e:
        probe_video(str(cut_fast))
    assert "moov" not in str(e.value) and "truncated" in str(e.value)
    assert probe_video(whole)["num_frames"] == 75   # a whole file is not taken for one
    # the index written last and only its tail cut (100 bytes): PyAV opens it, then its decoder fails with an
    # unrelated OS error ("Operation not permitted"); the reason says the file is cut short (outside check h16)
    tail = tmp_path / "tail.mp4"
    tail.write_bytes(open(whole, "rb").read()[:-100])
    with pytest.raises(MediaError) as e:
        probe_video(str(tail))
    assert e.value.reason == "truncated" and "cut short: its moov box runs past the end of the file" in str(e.value)
    still = tmp_path / "still.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x90", "-frames:v", "1", "-f", "image2", "-c:v", "png", str(still)])
    with pytest.raises(MediaError) as e:
        probe_video(str(still))
    assert "it is a still image (png), not a video" in str(e.value)
