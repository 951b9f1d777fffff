"""The coarse-to-fine shot scan (reference frames everywhere, every frame only around candidate cuts)
finds exactly the cuts of the full pass, on every test video and GOP structure."""
import numpy as np
import pytest

from vdata.media import cut_pass as P
from vdata.media import cuts as C
from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.synth import CUT_SOURCES, Segment, render_segments
from vdata.stages.shots import ShotsConfig, scan_video

# x264 settings whose GOP structure differs: default (keyframes at scene cuts), long and short fixed
# GOPs, no scenecut keyframes, no B-frames.
ENCODINGS = {"default": [], "g250": ["-g", "250"], "g12": ["-g", "12"],
             "scenecut0": ["-x264-params", "scenecut=0"], "no_bframes": ["-bf", "0"]}


@pytest.fixture(scope="module")
def reencoded(media_dir, cut_video, bikes):
    """cut_video (lavfi sources) + bikes (real footage with cuts) joined, re-encoded five ways."""
    src = str(media_dir / "fast_src.mp4")
    run_ffmpeg(["-i", cut_video[0], "-i", bikes, "-filter_complex",
                "[0:v]scale=320:180,setsar=1[a];[1:v]scale=320:180,setsar=1,fps=25[b];[a][b]concat=n=2:v=1:a=0[v]",
                "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", src])
    out = {}
    for name, args in ENCODINGS.items():
        out[name] = str(media_dir / f"fast_{name}.mp4")
        run_ffmpeg(["-i", src, "-c:v", "libx264", "-preset", "veryfast", *args, out[name]])
    return out


def both(path, **cfg):
    full = scan_video(path, ShotsConfig(coarse_to_fine=False, **cfg), backend="pyav")
    fast = scan_video(path, ShotsConfig(**cfg))
    return full, fast


@pytest.mark.parametrize("name", sorted(ENCODINGS))
@pytest.mark.parametrize("detector", ["adaptive", "content"])
def test_coarse_to_fine_equals_full_pass_on_each_gop_structure(reencoded, name, detector):
    full, fast = both(reencoded[name], detector=detector)
    assert fast.mode == "coarse_to_fine"
    assert fast.windows[0] > 0   # H.264: the one decode took every frame where the packets hinted a cut
    assert len(full.cuts) >= 10, full.cuts   # 6 lavfi cuts, the junction, 5 in bikes (some may merge)
    assert fast.cuts == full.cuts and fast.raw_cuts == full.raw_cuts
    assert len(fast.times) == len(full.times) and (abs(fast.times - full.times) < 1e-6).all()


def test_coarse_to_fine_equals_full_pass_on_every_fixture_video(cut_video, flash_video, fade_video, quality_videos,
                                                                bikes, bunny):
    videos = [cut_video[0], flash_video, fade_video, bikes, bunny, *quality_videos.values()]
    for path in videos:
        full, fast = both(path)
        assert fast.cuts == full.cuts, path
        assert fast.raw_cuts == full.raw_cuts, path


def test_coarse_pass_decodes_reference_frames_only_and_windows_cover_each_cut(cut_video):
    path, truth = cut_video
    table = C.frame_table(path)
    coarse = C.coarse_scan(path, table)
    assert 0 < len(coarse.indices) < len(table.times)   # B-frames were skipped
    windows = C.windows_from_gaps(coarse, len(table.times), bar=6.0, before=7, after=5)
    assert all(any(a <= t <= b for a, b in windows) for t in truth)
    assert sum(b - a + 1 for a, b in windows) < len(table.times) / 2


def test_window_frames_are_the_full_decode_frames(cut_video):
    import numpy as np
    from vdata.media.reader import open_reader

    path, truth = cut_video
    table = C.frame_table(path)
    windows = [(truth[0] - 7, truth[0] + 5), (truth[3] - 3, truth[3] + 2)]
    got = {i: img for i, _, img in C.decode_windows(path, table, windows, (128, 72))}
    assert sorted(got) == [i for a, b in windows for i in range(a, b + 1)]
    with open_reader(path, "pyav", purpose="stream") as reader:
        for i, _, img in reader.iter_frames(max_side=128):
            if i in got:
                assert np.array_equal(img, got[i]), i


def test_intra_only_video_takes_the_full_pass(media_dir):
    path = str(media_dir / "intra.mp4")
    render_segments(path, [Segment(s, 1.0) for s in CUT_SOURCES[:3]], size=(160, 90), gop=1)
    assert C.frame_table(path).problem and "intra-only" in C.frame_table(path).problem
    scan = scan_video(path, ShotsConfig())
    assert scan.mode == "full" and scan.cuts == [25, 50]


def test_other_detectors_and_opt_out_take_the_full_pass(cut_video):
    assert scan_video(cut_video[0], ShotsConfig(detector="histogram")).mode == "full"
    assert scan_video(cut_video[0], ShotsConfig(coarse_to_fine=False)).mode == "full"


@pytest.mark.parametrize("name", ["default", "scenecut0", "no_bframes"])
def test_one_pass_coarse_is_the_reference_frames_pass(reencoded, name):
    """The one decode's tiny images are coarse_scan's (the reference frames, from nal_ref_idc), so
    its windows and gradual transitions are the two-pass design's."""
    from scenedetect import AdaptiveDetector

    path = reencoded[name]
    table = C.frame_table(path)
    coarse = C.coarse_scan(path, table)
    assert np.flatnonzero(table.refs).tolist() == coarse.indices.tolist()
    hints = P.packet_windows(table, 4, 3)
    one, _, judged = P.one_pass(path, table, hints, 256, lambda: AdaptiveDetector(min_scene_len=1), 3, 2)
    assert np.array_equal(judged, P.settled(hints, len(table.times), 3, 2))   # every hinted frame was fed
    assert one.indices.tolist() == coarse.indices.tolist()
    assert np.array_equal(one.distances, coarse.distances) and np.array_equal(one.layouts, coarse.layouts)


def test_packet_hints_cover_keyframe_cuts_and_ignore_a_fixed_gop(cut_video, media_dir):
    path, truth = cut_video   # x264 defaults: a keyframe at each cut
    table = C.frame_table(path)
    hints = P.packet_windows(table, 4, 3)
    assert all(any(a <= t <= b for a, b in hints) for t in truth), hints
    assert sum(b - a + 1 for a, b in hints) < len(table.times) / 2
    fixed = str(media_dir / "fixed_gop.mp4")   # one shot, a keyframe every 10 frames: no hint
    render_segments(fixed, [Segment("testsrc2", 4.0)], size=(160, 90), gop=10)
    assert P.packet_windows(C.frame_table(fixed), 4, 3) == []


def _table_with_keyframes(keys: list[int], n: int = 72) -> C.FrameTable:
    """Packets of an I/P stream (no B-frames), all of one size, keyframes at `keys`."""
    frames = np.arange(n)
    return C.FrameTable(frames / 25.0, frames * 512, np.asarray(keys), 25.0, None, np.full(n, 1000), frames,
                        np.ones(n, bool))


def test_a_fixed_gop_that_drifts_by_a_frame_gives_no_hint_and_an_off_period_keyframe_does():
    # x264 at -g 12 ends some GOPs a frame early where B-frames close them: still the period
    assert P.packet_windows(_table_with_keyframes([0, 12, 23, 35, 47, 60]), 4, 3) == []
    hints = P.packet_windows(_table_with_keyframes([0, 12, 24, 30, 42, 54, 66]), 4, 3)
    assert any(a <= 30 <= b for a, b in hints) and sum(b - a + 1 for a, b in hints) < 20, hints


def test_windows_over_most_of_the_video_take_the_full_pass(media_dir):
    path = str(media_dir / "strobe.mp4")   # a cut every 4 frames
    render_segments(path, [Segment(CUT_SOURCES[i % 6], 0.16) for i in range(25)], size=(160, 90))
    assert scan_video(path, ShotsConfig(gradual=False)).mode == "full"


def test_other_codecs_take_the_two_pass_path_with_the_same_cuts(reencoded, media_dir):
    """No reference flags outside H.264: no packet hints, every window decoded after the coarse pass."""
    path = str(media_dir / "fast_mpeg4.mp4")
    run_ffmpeg(["-i", reencoded["default"], "-c:v", "mpeg4", "-bf", "2", "-q:v", "4", path])
    assert C.frame_table(path).refs is None
    full, fast = both(path)
    assert fast.mode == "coarse_to_fine" and fast.windows[0] == 0 and fast.windows[1] > 0
    assert fast.cuts == full.cuts and fast.raw_cuts == full.raw_cuts


def test_a_copy_cut_with_an_edit_list_keeps_its_frames_and_cuts(cut_video, tmp_path):
    """`ffmpeg -ss 3 -i in.mp4 -c copy out.mp4`, the lossless trim: the MP4 keeps the frames from the keyframe
    before 3 s (the cut at 2 s) and an edit list that hides them, their packets flagged discard. Counted as
    frames, they made the probe declare 14 s and 350 frames where 275 show, and the shots stage rejected the
    whole video `truncated`. They are not frames of the video: cuts, times and clips are the trimmed file's."""
    import av

    from vdata.media.hashing import content_id
    from vdata.media.probe import probe_video
    from vdata.media.reader import open_reader
    from vdata.schemas import records as R
    from vdata.stages.base import Reject, RunContext
    from vdata.stages.shots import ShotsStage

    path, cuts = cut_video
    trimmed = str(tmp_path / "trimmed.mp4")
    run_ffmpeg(["-ss", "3", "-i", path, "-c", "copy", trimmed])
    with av.open(trimmed) as container:
        assert sum(p.is_discard for p in container.demux(container.streams.video[0])) == 25   # 2.0-3.0 s
    with open_reader(trimmed, "pyav") as reader:
        shown = [t for _, t, _ in reader.iter_frames()]
    info = probe_video(trimmed)
    assert info["num_frames"] == len(shown) == 275 and info["duration_s"] == pytest.approx(11.0, abs=0.05)
    full, fast = both(trimmed)
    assert fast.mode == "coarse_to_fine"
    assert fast.cuts == full.cuts == [c - 75 for c in cuts if c > 75]
    row = {R.PATH: trimmed, R.SOURCE_URI: trimmed, R.VIDEO_ID: content_id(trimmed), **info}
    clips = ShotsStage(ctx=RunContext(output_dir=str(tmp_path / "out"))).process_batch([row])
    assert not any(isinstance(c, Reject) for c in clips), clips
    assert [c[R.START_S] for c in clips] == pytest.approx([0.0, 1.0, 3.0, 5.0, 7.0, 9.0])
