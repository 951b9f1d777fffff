"""A clip file lasts its row (`shots.write_clips`, `vdata.media.clip_cut`), on a variable-frame-rate video.

h21 F5: a screen recording whose slides are single frames held for seconds (x264 from the concat demuxer,
B-frames, so the MP4's sample durations are reordered decode-time steps, not how long a picture shows).
The clip file of the row [4.0, 6.52] (one slide, 2.52 s) lasted 0.12 s: the last sample's duration was
the source's, and nothing checked the written length; a trainer reading `clip_path` saw a 0.12 s video.
Checked on real media made with ffmpeg, by PyAV: every file's container and stream duration is its row's
span, it holds the row's frames at their source times, and its first and last frames are the source's
frames at start_frame and end_frame - 1. A constant-rate video still gets its exact stream copies.
"""
import av
import numpy as np
import pytest

from vdata.media.clip_cut import CUT_MARK, clip_source, cut_clip, holds_clip
from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.hashing import content_id
from vdata.media.probe import probe_video
from vdata.media.synth import Segment, render_held_pictures, render_segments
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.shots import ShotsConfig, ShotsStage

SIZE = "320x180"


def _screen_recording(d) -> str:
    """The tester's vfr_screen.mp4: slide A held 3 s, 10 moving frames at 10 fps, slide C held 2.5 s,
    slide D 1.5 s (the concat demuxer's durations), x264 with its default B-frames, `-fps_mode vfr`."""
    path = d / "vfr_screen.mp4"
    if not path.exists():
        pictures = [("a", "smptebars", 1), ("b_%02d", "testsrc2", 10), ("c", "rgbtestsrc", 1), ("d", "mandelbrot", 1)]
        for name, src, n in pictures:
            run_ffmpeg(["-f", "lavfi", "-i", f"{src}=s={SIZE}:r=10", "-frames:v", str(n), str(d / f"{name}.png")])
        listing = ["file 'a.png'", "duration 3"]
        listing += [line for i in range(1, 11) for line in (f"file 'b_{i:02d}.png'", "duration 0.1")]
        listing += ["file 'c.png'", "duration 2.5", "file 'd.png'", "duration 1.5", "file 'd.png'"]
        (d / "vfr.txt").write_text("\n".join(listing) + "\n")
        run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(d / "vfr.txt"), "-fps_mode", "vfr", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(path)])
    return str(path)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("h21_clip_files")


@pytest.fixture(scope="module")
def vfr_videos(media):
    """F5's video, and `synth.render_held_pictures`' two: a recorder's (25 fps stretches, stills of 6 s
    whose keyframe decodes 6 s before it shows) and a slideshow (one frame every 3 s)."""
    videos = {"screen_recording": _screen_recording(media)}
    for kind in ("screen", "slides"):
        videos[kind] = str(media / f"{kind}_vfr.mp4")
        render_held_pictures(videos[kind], kind, size=(320, 180))
    return videos


def _decoded(path: str) -> tuple[list[float], list[np.ndarray]]:
    """Each frame's time (`frame.time`, from the video stream's first frame) and luma, in display order."""
    with av.open(path) as container:
        frames = sorted(((float(f.time), f.to_ndarray(format="gray").astype(np.float32))
                         for f in container.decode(video=0)), key=lambda tf: tf[0])
    return [t - frames[0][0] for t, _ in frames], [p for _, p in frames]


def _durations(path: str) -> tuple[float, float]:
    """(container, video stream) duration in seconds, as PyAV reads them from the file's header."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        return container.duration / 1e6, float(stream.duration * stream.time_base)


def _is_frame(picture: np.ndarray, pictures: list[np.ndarray], i: int) -> bool:
    """Whether `picture` is source frame `i`: no source frame is nearer (a still shot's frames are all as near)."""
    distance = [float(np.abs(picture - p).mean()) for p in pictures]
    return distance[i] <= min(distance) + 0.5


def _assert_file_is_the_row(clip: dict, times: list[float], pictures: list[np.ndarray]) -> None:
    a, b, span = clip[R.START_FRAME], clip[R.END_FRAME], clip[R.END_S] - clip[R.START_S]
    assert clip[R.CLIP_DURATION_S] == pytest.approx(span, abs=1e-6)
    gap = min(t1 - t0 for t0, t1 in zip(times, times[1:]))
    container_s, stream_s = _durations(clip[R.CLIP_PATH])
    # a frame interval is the contract; the cut is exact to the stream's time base
    assert abs(stream_s - span) < min(gap, 0.01), (clip[R.CLIP_ID], stream_s, span)
    assert abs(container_s - span) < min(gap, 0.01), (clip[R.CLIP_ID], container_s, span)
    clip_times, clip_pictures = _decoded(clip[R.CLIP_PATH])
    assert len(clip_times) == b - a, clip[R.CLIP_ID]
    assert clip_times == pytest.approx([t - clip[R.START_S] for t in times[a:b]], abs=1e-3), clip[R.CLIP_ID]
    assert _is_frame(clip_pictures[0], pictures, a), clip[R.CLIP_ID]
    assert _is_frame(clip_pictures[-1], pictures, b - 1), clip[R.CLIP_ID]


@pytest.mark.parametrize("clip_codec", ["copy_if_aligned", "reencode"])
@pytest.mark.parametrize("kind", ["screen_recording", "screen", "slides"])
def test_every_clip_file_of_a_variable_rate_video_lasts_its_row(vfr_videos, kind, clip_codec, tmp_path, monkeypatch):
    from vdata.stages.shots import clip_files

    hows, cut = [], clip_files.cut_clip
    monkeypatch.setattr(clip_files, "cut_clip", lambda *a, **kw: hows.append(cut(*a, **kw)) or hows[-1])
    path = vfr_videos[kind]
    probe = probe_video(path)
    assert probe["is_vfr"] or kind == "slides"   # one frame every 3 s: a constant (low) rate
    stage = ShotsStage(ShotsConfig(detector="adaptive", min_len_s=0.5, max_len_s=10, write_clips=True,
                                   clip_codec=clip_codec), RunContext(output_dir=str(tmp_path)))
    out = stage.process_batch([{R.PATH: path, R.VIDEO_ID: content_id(path), **probe}])
    assert all(isinstance(c, dict) for c in out), [(r.reason, r.message) for r in out if isinstance(r, Reject)]
    # what F5 is about: a row that is one picture shown for more than a second
    assert any(c[R.END_FRAME] - c[R.START_FRAME] == 1 and c[R.CLIP_DURATION_S] > 1.0 for c in out), out
    # the rows that start on a keyframe are still copied (the first, and the recorder's moving stretches)
    assert ("copy" in hows) == (clip_codec == "copy_if_aligned"), hows
    times, pictures = _decoded(path)
    for clip in out:
        _assert_file_is_the_row(clip, times, pictures)


def test_the_held_slide_of_the_screen_recording_lasts_2_52_s(vfr_videos, tmp_path):
    """F5's own row, cut alone: [4.0, 6.52) is one frame shown 2.52 s (the file was 0.12 s)."""
    path = vfr_videos["screen_recording"]
    times, pictures = _decoded(path)
    a = times.index(pytest.approx(4.0, abs=1e-3))
    assert times[a + 1] == pytest.approx(6.52, abs=1e-3)
    out = str(tmp_path / "slide.mp4")
    cut_clip(path, 4.0, 2.52, out, copy=True)
    clip = {R.CLIP_ID: "slide", R.CLIP_PATH: out, R.START_S: 4.0, R.END_S: 6.52, R.CLIP_DURATION_S: 2.52,
            R.START_FRAME: a, R.END_FRAME: a + 1}
    _assert_file_is_the_row(clip, times, pictures)
    assert holds_clip(out, path, 4.0, 2.52)


def test_a_resumed_build_recuts_a_held_slide_an_older_vdata_wrote_short(vfr_videos, tmp_path):
    """The file an older vdata wrote for F5's row (its mark, its one frame, 0.12 s long) is not kept."""
    path = vfr_videos["screen_recording"]
    short = str(tmp_path / "short.mp4")
    run_ffmpeg(["-i", path, "-ss", "3.999", "-t", "2.52", "-c:v", "libx264", "-preset", "veryfast",
                "-pix_fmt", "yuv420p", "-metadata", f"comment={CUT_MARK}", short])
    assert _durations(short)[1] < 1.0   # the old file: the source's last-sample duration
    assert not holds_clip(short, path, 4.0, 2.52)


@pytest.fixture(scope="module")
def cfr_video(media):
    """25 fps, 3 shots of 1 s, a keyframe at each shot's start, x264 with B-frames: every shot copies."""
    path = str(media / "cfr.mp4")
    render_segments(path, [Segment(s, 1.0) for s in ("testsrc2", "smptebars", "mandelbrot")], size=(160, 120),
                    gop=25)
    return path


def test_a_constant_rate_video_still_gets_exact_stream_copies(cfr_video, tmp_path):
    times, pictures = _decoded(cfr_video)
    assert len(times) == 75
    for k in range(3):
        start_s, end_s = times[25 * k], (times[25 * (k + 1)] if k < 2 else times[-1] + 0.04)
        source = clip_source(cfr_video, start_s, end_s)
        out = str(tmp_path / f"shot{k}.mp4")
        assert cut_clip(cfr_video, start_s, end_s - start_s, out, copy=True) == "copy", k
        with av.open(out) as container:   # the packets are the source's, byte for byte
            sizes = [p.size for p in container.demux(video=0) if p.size]
        assert sorted(sizes) == sorted(p.size for p in source.after_key[:25]), k
        clip = {R.CLIP_ID: f"shot{k}", R.CLIP_PATH: out, R.START_S: start_s, R.END_S: end_s,
                R.CLIP_DURATION_S: end_s - start_s, R.START_FRAME: 25 * k, R.END_FRAME: 25 * (k + 1)}
        _assert_file_is_the_row(clip, times, pictures)
        assert holds_clip(out, cfr_video, start_s, end_s - start_s)


def test_clip_files_of_an_avi_at_29_97_open_on_their_own_first_frame(media, tmp_path):
    """MPEG-4 in AVI at 30000/1001 fps: the seek half a frame before a clip's keyframe sat on a rounding edge of
    the 1001/30000 clock, and every clip after a cut opened on the previous shot's last frame (outside check h22)."""
    src = str(tmp_path / "src.mp4")
    render_segments(src, [Segment(s, 3.0) for s in ("testsrc2", "smptebars", "rgbtestsrc")], size=(160, 96))
    avi = str(tmp_path / "ntsc.avi")
    run_ffmpeg(["-i", src, "-vf", "fps=30000/1001", "-c:v", "mpeg4", "-q:v", "4", "-an", avi])
    stage = ShotsStage(ShotsConfig(write_clips=True, min_len_s=0.5), RunContext(output_dir=str(tmp_path / "out")))
    clips = [r for r in stage.process_batch([{R.PATH: avi, R.VIDEO_ID: content_id(avi), **probe_video(avi)}])
             if not isinstance(r, Reject)]
    assert len(clips) == 3
    times, pictures = _decoded(avi)
    for clip in clips:
        first = _decoded(clip[R.CLIP_PATH])[1][0]
        assert _is_frame(first, pictures, clip[R.START_FRAME]), clip[R.CLIP_ID]
