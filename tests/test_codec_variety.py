"""Shots and frames on codecs beyond x264's progressive H.264, each encoded here by ffmpeg: AV1 (decoded
by libdav1d, an external library that reads `skip_frame` once, when it opens, and that OpenCV's own
FFmpeg cannot decode at all), interlaced H.264 (OpenCV's scaler turns its pictures black without an
error), MPEG-1 in a program stream and MPEG-2 in a transport stream (whose seeks land after the keyframe
asked for: tried again from further back) and HEVC with x265's
B-pyramid (a later frame's packet reaches the decoder while an earlier window is read). Each finds the
cuts at the frames where the sources change, as the full PyAV pass does."""
import av
import pytest

from vdata.media import cuts as C
from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.reader import PyAVReader, open_reader
from vdata.media.synth import CUT_SOURCES, Segment, render_segments
from vdata.stages.shots import ShotsConfig, scan_video

ENCODINGS = {
    "av1.mp4": ["-c:v", "libsvtav1", "-preset", "12"],
    "interlaced.mp4": ["-c:v", "libx264", "-preset", "veryfast", "-flags", "+ilme+ildct", "-x264-params", "tff=1"],
    "mpeg1.mpg": ["-c:v", "mpeg1video", "-q:v", "4"],
    "mpeg2.ts": ["-c:v", "mpeg2video", "-q:v", "4", "-bf", "2"],
    "vp9.webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"],
    "hevc.mp4": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:bframes=4:b-pyramid=1",
                 "-tag:v", "hvc1"],
}


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    d = tmp_path_factory.mktemp("codecs")
    src = str(d / "src.mp4")
    truth = render_segments(src, [Segment(s, 4.0) for s in CUT_SOURCES[:3]], size=(320, 180))
    out = {}
    for name, args in ENCODINGS.items():
        out[name] = str(d / name)
        run_ffmpeg(["-i", src, *args, "-an", out[name]])
    return out, truth


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_default_scan_finds_each_cut_as_the_full_pyav_pass(encoded, name):
    videos, truth = encoded
    full = scan_video(videos[name], ShotsConfig(coarse_to_fine=False), backend="pyav")
    default = scan_video(videos[name], ShotsConfig())
    hard_only = scan_video(videos[name], ShotsConfig(gradual=False))   # the detector's own cuts, not the gradual pass's
    assert full.cuts == truth
    assert default.cuts == truth and hard_only.cuts == truth
    assert hard_only.raw_cuts == full.raw_cuts
    if name in ("hevc.mp4", "mpeg1.mpg", "mpeg2.ts"):   # every window decoded whole: no need of the full pass
        assert hard_only.mode == "coarse_to_fine"


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_stream_reader_gives_the_pictures_pyav_decodes(encoded, name):
    """The stream reader (OpenCV where it can) yields every frame, none of them black, close to PyAV's
    picture; where OpenCV cannot (AV1, interlaced) PyAV reads and says why."""
    videos, _ = encoded
    path = videos[name]
    with av.open(path) as c:
        count = sum(1 for _ in c.decode(video=0))
    with open_reader(path, "auto", purpose="stream") as reader:
        frames = [(i, img) for i, _, img in reader.iter_frames(max_side=160)]
        if isinstance(reader, PyAVReader):
            assert reader.fallback_reason, "PyAV read a stream without saying why OpenCV did not"
    assert len(frames) == count
    assert all(img.mean() > 20 for _, img in frames)   # the sources are bright: no black picture
    with open_reader(path, "pyav", purpose="stream") as reader:
        reference = {i: img for i, _, img in reader.iter_frames(max_side=160)}
    # the same picture: two scalers differ in detail (up to 18 per pixel on testsrc2's fine lines), not in level
    assert all(abs(img.mean() - reference[i].mean()) < 8 for i, img in frames)


@pytest.mark.parametrize("name", ["hevc.mp4", "av1.mp4", "mpeg1.mpg", "mpeg2.ts"])
def test_windows_a_frame_apart_decode_whole(encoded, name):
    """Two windows a frame apart around each cut (the coarse pass marks such pairs): each frame of both
    comes back, though the second window's first frames went to the decoder while the first was read."""
    videos, truth = encoded
    path = videos[name]
    table = C.frame_table(path)
    windows = sorted(w for t in truth for w in ((t - 15, t - 6), (t - 4, t + 3)))
    got = sorted(i for i, _, _ in C.decode_windows(path, table, windows, (160, 90)))
    assert got == [i for a, b in windows for i in range(a, b + 1)]


def test_av1_window_decode_shows_every_frame_of_each_window(encoded):
    """libdav1d ignores a `skip_frame` change after it opened: the windows decode every frame instead
    of skipping non-reference ones outside them, and each window is whole."""
    videos, truth = encoded
    path = videos["av1.mp4"]
    table = C.frame_table(path)
    windows = [(t - 5, t + 4) for t in truth]
    got = {i for i, _, _ in C.decode_windows(path, table, windows, (160, 90))}
    assert got == {i for a, b in windows for i in range(a, b + 1)}


def test_a_decoder_that_skips_nothing_feeds_the_detector_in_its_one_pass(encoded, monkeypatch):
    """libvpx's realtime VP9 frames are all references: the coarse pass decodes every frame. Fed to the
    detector as they come (here always: the cost test is set aside), they are judged as a full pass judges
    them, in one decode, and no window is left to decode again."""
    from scenedetect import AdaptiveDetector

    from vdata.media import cut_pass as P

    videos, truth = encoded
    path = videos["vp9.webm"]
    table = C.frame_table(path)
    assert table.refs is None   # not H.264: the packets do not say which frames are references
    monkeypatch.setattr(P, "STREAK_TRIAL", 10 ** 9)
    coarse, raw, judged = P.one_pass(path, table, [], 256, lambda: AdaptiveDetector(min_scene_len=1), 3, 2)
    n = len(table.times)
    assert len(coarse.indices) == n and judged.sum() >= n - P.STREAK_TO_FEED - 3
    full = scan_video(path, ShotsConfig(coarse_to_fine=False, gradual=False), backend="pyav")
    assert raw == full.raw_cuts and truth == full.cuts
    fast = scan_video(path, ShotsConfig(gradual=False))
    assert fast.mode == "coarse_to_fine" and fast.windows == (0, 0) and fast.cuts == truth
