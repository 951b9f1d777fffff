"""Shot detection with real PySceneDetect on rendered cuts and a real clip with cuts."""
import pytest

from vdata.media.synth import Segment, render_segments
from vdata.stages.base import Reject, RunContext
from vdata.stages.shots import (ShotsConfig, ShotsStage, apply_min_scene_len, detect_cuts, repair_segments,
                                scan_video, segments_from_cuts, split_long)
from vdata.media.probe import probe_video
from vdata.media.hashing import content_id
from vdata.schemas import records as R
from conftest import FLASH_FRAME
from test_clip_cut import H264_BFRAMES, LONG_GOP, frame_numbers, ts_audio_ahead, variant, video_after_audio
from vdata.media.ffmpeg import run_ffmpeg

BIKES_CUTS_S = [1.2, 3.04, 5.48, 7.48, 9.68]


def shots_of(path, **cfg):
    """Everything the stage returns for one video: kept clips and rejects."""
    stage = ShotsStage(ShotsConfig(**cfg), RunContext(output_dir="/tmp/unused"))
    row = {R.PATH: path, R.VIDEO_ID: content_id(path), **probe_video(path)}
    return stage.process_batch([row])


def clips_for(path, **cfg):
    out = shots_of(path, **cfg)
    assert all(isinstance(c, dict) for c in out), out
    return out


def frame_span(res):
    """(start_frame, end_frame, reject reason or None) of a kept clip or a clip-level reject."""
    row = res.row if isinstance(res, Reject) else res
    return row[R.START_FRAME], row[R.END_FRAME], res.reason if isinstance(res, Reject) else None


@pytest.mark.parametrize("detector", ["adaptive", "content"])
def test_every_hard_cut_found_within_two_frames(cut_video, detector):
    path, truth = cut_video
    cuts, times, feats, fps = detect_cuts(path, ShotsConfig(detector=detector))
    assert len(cuts) == len(truth), cuts
    for c, t in zip(cuts, truth):
        assert abs(c - t) <= 2


def test_clip_rows_cover_the_known_shots(cut_video):
    path, truth = cut_video
    clips = clips_for(path, min_len_s=0.5)
    assert [c[R.START_FRAME] for c in clips] == [0, *truth]
    assert [c[R.END_FRAME] for c in clips] == [*truth, 350]
    assert clips[0][R.START_S] == 0.0 and clips[-1][R.END_S] == pytest.approx(14.0, abs=1e-3)
    assert all(c[R.SHOTS_IN_VIDEO] == 7 for c in clips)
    assert len({c[R.CLIP_ID] for c in clips}) == 7


def test_real_cuts_in_bikes(bikes):
    clips = clips_for(bikes, min_len_s=0.2)  # the last shot is 0.32 s long
    starts = [c[R.START_S] for c in clips[1:]]
    assert len(starts) == len(BIKES_CUTS_S)
    for s, t in zip(starts, BIKES_CUTS_S):
        assert abs(s - t) <= 2 / 25


@pytest.mark.parametrize("detector", ["adaptive", "content", "hash", "histogram"])
def test_cut_free_clip_is_one_shot(quality_videos, detector):
    clips = clips_for(quality_videos["good"], detector=detector)
    assert len(clips) == 1 and clips[0][R.START_FRAME] == 0 and clips[0][R.END_FRAME] == 100


def test_stitching_merges_a_one_frame_flash(flash_video):
    scan = scan_video(flash_video, ShotsConfig())
    assert FLASH_FRAME in scan.raw_cuts  # the detector does see the flash...
    assert len(clips_for(flash_video)) == 1  # ...and stitching repairs it
    unstitched = shots_of(flash_video, stitch={"enabled": False}, min_len_s=0.0)
    assert len(unstitched) == 3 and all(isinstance(c, dict) for c in unstitched)


def test_unstitched_flash_is_its_own_short_clip_rejected(flash_video):
    out = shots_of(flash_video, stitch={"enabled": False})
    assert [frame_span(r) for r in out] == [(0, FLASH_FRAME, None), (FLASH_FRAME, FLASH_FRAME + 1, "too_short"),
                                            (FLASH_FRAME + 1, 150, None)]


@pytest.fixture(scope="module")
def short_shot_videos(media_dir):
    """A 0.5-s shot between two 3-s ones, at 25 and 30 fps, and between two shots of one scene."""
    out = {}
    for fps in (25, 30):
        path = str(media_dir / f"short_shot_{fps}.mp4")
        out[fps] = (path, render_segments(path, [Segment("testsrc2", 3.0), Segment("smptebars", 0.5),
                                                 Segment("mandelbrot", 3.0)], size=(320, 180), fps=fps))
    return out


@pytest.mark.parametrize("fps", [25, 30])
def test_a_half_second_shot_is_its_own_clip_rejected_too_short(short_shot_videos, fps):
    path, truth = short_shot_videos[fps]
    out = shots_of(path)
    got = [frame_span(r) for r in out]
    assert [g[2] for g in got] == [None, "too_short", None], got
    # both real cuts are clip boundaries: nothing is merged across them
    for (a, b, _), cut in zip(got[1:], truth):
        assert abs(a - cut) <= 1
    short = out[1]
    assert short.row[R.CLIP_DURATION_S] == pytest.approx(0.5, abs=1.5 / fps)
    assert "min_len_s=1.0" in short.message and f"{got[1][1] - got[1][0]} frames" in short.message
    # every frame is in exactly one row, kept or rejected
    assert got[0][0] == 0 and all(x[1] == y[0] for x, y in zip(got, got[1:])) and got[-1][1] == probe_video(path)["num_frames"]


def test_short_shots_keep_mode_keeps_the_short_clip(short_shot_videos):
    path, _ = short_shot_videos[25]
    clips = clips_for(path, short_shots="keep")
    assert len(clips) == 3 and clips[1][R.CLIP_DURATION_S] < 1.0
    assert {c[R.SHOTS_IN_VIDEO] for c in clips} == {3}


def test_detector_min_scene_len_keeps_a_strobe_burst_in_few_shots(media_dir):
    # 1.6 s of two sources alternating every 4 frames between two long shots: the detector sees a cut
    # at every switch; its own minimum scene length keeps the burst from becoming a dozen shots.
    path = str(media_dir / "strobe.mp4")
    burst = [Segment(s, 0.16) for s in ["smptebars", "rgbtestsrc"] * 5]
    render_segments(path, [Segment("testsrc2", 2.0), *burst, Segment("mandelbrot", 2.0)], size=(320, 180))
    scan = scan_video(path, ShotsConfig())
    assert len(scan.raw_cuts) >= 8, scan.raw_cuts
    assert len(scan.cuts) <= 4, scan.cuts
    assert abs(scan.cuts[0] - 50) <= 1 and abs(scan.cuts[-1] - 90) <= 1   # into and out of the burst
    forced = scan_video(path, ShotsConfig(detector_args={"min_scene_len": 1}))
    assert len(forced.cuts) >= 8


def test_min_scene_len_filter_restores_a_hidden_cut_only_before_a_stable_shot():
    # PySceneDetect's own filter (15 frames) with raw cuts: a burst at 30..45, a short shot 100..110
    burst = [30, 33, 36, 39, 42, 45]
    from scenedetect.detector import FlashFilter

    cuts = apply_min_scene_len([*burst, 100, 110], 200, 25.0, FlashFilter(FlashFilter.Mode.SUPPRESS, 15), 15)
    assert cuts == [30, 45, 100, 110]


def test_fade_gives_no_cut_outside_the_transition(fade_video):
    cuts, times, feats, fps = detect_cuts(fade_video, ShotsConfig(detector="content"))
    assert all(3.0 * fps - 2 <= c <= 5.0 * fps + 2 for c in cuts), cuts


def test_max_len_splits_into_equal_windows():
    assert split_long([[0, 100]], 25.0, 1.5) == [[0, 33], [33, 66], [66, 100]]
    assert split_long([[0, 30]], 25.0, 10) == [[0, 30]]


def test_max_len_splits_a_variable_rate_shot_into_equal_times():
    """3 s at 25 fps, 3 s at 5 fps, 3 s at 50 fps (240 frames, 9 s): equal frame counts made 6.6 s of a 5 s
    limit, and a 4 s limit left a 1.6 s piece that min_len_s rejected (outside check h13 F6)."""
    import numpy as np

    starts = np.concatenate([np.arange(75) / 25, 3 + np.arange(15) / 5, 6 + np.arange(150) / 50, [9.0]])
    seconds = lambda a, b: float(starts[b] - starts[a])  # noqa: E731
    for limit, pieces in ((5.0, 2), (4.0, 3), (1.0, 9)):
        got = split_long([[0, 240]], 240 / 9, limit, seconds=seconds)
        lengths = [seconds(a, b) for a, b in got]
        assert len(got) == pieces and got[0][0] == 0 and got[-1][1] == 240, got
        assert all(x[1] == y[0] for x, y in zip(got, got[1:]))
        assert max(lengths) <= limit + 1e-6 and min(lengths) >= 9 / pieces - 0.2, (limit, lengths)


def test_repair_never_merges_a_short_shot_into_a_neighbour():
    import numpy as np

    feats = np.zeros((30, 32 + 144), np.float32)
    feats[:10, 0] = 1      # scene A
    feats[10:12, 5] = 1    # a 2-frame shot that looks like B
    feats[12:, 5] = 1      # scene B
    segs = repair_segments(segments_from_cuts([10, 12], 30), feats, 25.0, ShotsConfig(min_len_s=0.2))
    # 10..12 and 12..30 look alike at their boundary: stitching (same scene) joins them; A stays apart
    assert segs == [[0, 10], [10, 30]]
    feats[10:12, 5], feats[10:12, 9] = 0, 1   # now the short shot is a scene of its own
    segs = repair_segments(segments_from_cuts([10, 12], 30), feats, 25.0, ShotsConfig(min_len_s=0.2))
    assert segs == [[0, 10], [10, 12], [12, 30]]


def test_clip_ids_stable_and_path_independent(cut_video, tmp_path):
    from conftest import copy_to

    a = [c[R.CLIP_ID] for c in clips_for(cut_video[0])]
    b = [c[R.CLIP_ID] for c in clips_for(copy_to(cut_video[0], tmp_path, "other-name.mp4"))]
    assert a == b


def test_write_clips_produces_playable_files(cut_video, tmp_path):
    stage = ShotsStage(ShotsConfig(write_clips=True), RunContext(output_dir=str(tmp_path)))
    path = cut_video[0]
    row = {R.PATH: path, R.VIDEO_ID: content_id(path), **probe_video(path)}
    clips = stage.process_batch([row])
    for c in clips[:3]:
        info = probe_video(c[R.CLIP_PATH])
        assert info["duration_s"] == pytest.approx(c[R.CLIP_DURATION_S], abs=0.1)


def test_write_clips_of_a_codec_mp4_cannot_hold(tmp_path):
    """ProRes (every frame a keyframe) cannot be copied into MP4: the clip is encoded instead of the whole
    video being rejected (ffmpeg_failed)."""
    import subprocess

    from vdata.media.ffmpeg import ffmpeg_exe

    path = str(tmp_path / "source.mov")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=3",
                    "-f", "lavfi", "-i", "sine=d=3", "-c:v", "prores_ks", path], check=True)
    stage = ShotsStage(ShotsConfig(write_clips=True), RunContext(output_dir=str(tmp_path / "out")))
    clips = stage.process_batch([{R.PATH: path, R.VIDEO_ID: content_id(path), **probe_video(path)}])
    assert clips and all(isinstance(c, dict) for c in clips), clips
    for c in clips:
        info = probe_video(c[R.CLIP_PATH])
        assert info["video_codec"] == "h264" and info["duration_s"] == pytest.approx(c[R.CLIP_DURATION_S], abs=0.1)


# --- variable frame rate: pictures held for seconds ----------------------------------------------------

@pytest.fixture(scope="module")
def held_picture_videos(media_dir):
    """(path, true cut times) of a screen recording as recorders write it (a still screen is one frame held
    for 6 s) and of a slideshow (one frame per slide, each shown 3 s): `synth.render_held_pictures`."""
    from vdata.media.synth import render_held_pictures

    return {kind: (str(media_dir / f"{kind}_vfr.mp4"), render_held_pictures(str(media_dir / f"{kind}_vfr.mp4"), kind))
            for kind in ("screen", "slides")}


@pytest.mark.parametrize("kind", ["screen", "slides"])
@pytest.mark.parametrize("detector", ["adaptive", "content"])
def test_pictures_held_for_seconds_are_shots_with_their_cuts(held_picture_videos, kind, detector):
    """Counted as one frame each, a picture shown for 6 s was shorter than the detector's 15-frame minimum
    scene (its cut dropped) and than min_len_s (rejected too_short); the detector now sees each picture
    for as long as it is shown, and lengths are times."""
    path, truth = held_picture_videos[kind]
    probe = probe_video(path)
    assert probe["num_frames"] < probe["duration_s"] * 25 / 2   # the file really holds its pictures
    scan = scan_video(path, ShotsConfig(detector=detector))
    assert [round(float(scan.times[c]), 2) for c in scan.cuts] == truth, (scan.cuts, scan.times)
    out = shots_of(path, detector=detector)
    assert all(isinstance(r, dict) for r in out), [(r.reason, r.message) for r in out if isinstance(r, Reject)]
    assert [(r[R.START_S], r[R.END_S]) for r in out][1:] == list(zip(truth, [*truth[1:], out[-1][R.END_S]]))


def test_a_picture_held_longer_than_max_len_s_stays_one_clip_and_is_counted(held_picture_videos):
    """Clips are cut between frames: a still screen that is one frame shown 6 s cannot be split under a 4 s
    max_len_s. It stays one clip, and the stage counts it (it passed silently: outside check h21)."""
    path, truth = held_picture_videos["screen"]
    stage = ShotsStage(ShotsConfig(max_len_s=4.0), RunContext(output_dir=""))
    out = stage.process_batch([{R.PATH: path, R.VIDEO_ID: content_id(path), **probe_video(path)}])
    held = [r for r in out if isinstance(r, dict) and r[R.CLIP_DURATION_S] > 4.0 + 1e-6]
    assert [(r[R.START_S], r[R.END_S]) for r in held] == [(3.0, 9.0), (12.0, 18.0)]
    assert stage.take_counters()["clips_over_max_len_held_picture"] == 2
    # the moving stretches are split as before: every other clip is within the limit
    assert all(r[R.CLIP_DURATION_S] <= 4.0 + 1e-6 for r in out if isinstance(r, dict) and r not in held)


def test_transnetv2_on_cuda_asks_ray_for_a_gpu_unless_the_config_says():
    """A Ray worker sees only the GPUs its stage asks for: `device: cuda` without `resources.num_gpus` found none."""
    def gpus(**cfg):
        return ShotsStage(ShotsConfig(**cfg), RunContext(output_dir="")).resources().num_gpus

    assert gpus(detector="transnetv2", detector_args={"device": "cuda"}) == 1.0
    assert gpus(detector="transnetv2", detector_args={"device": "cuda:0"}, resources={"num_gpus": 0.5}) == 0.5
    assert gpus(detector="transnetv2") == gpus(detector="transnetv2", detector_args={"device": "cpu"}) == 0.0
    assert gpus() == 0.0


# --- clip files (write_clips): each holds exactly its clip's frames ------------------------------------

def clip_files_of(path, tmp_path, **cfg):
    stage = ShotsStage(ShotsConfig(write_clips=True, min_len_s=0.5, **cfg), RunContext(output_dir=str(tmp_path)))
    return stage.process_batch([{R.PATH: path, R.VIDEO_ID: content_id(path), **probe_video(path)}])


@pytest.fixture(scope="module")
def numbered_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("numbered")


@pytest.mark.parametrize("make", [
    # F1: an odd size needs an encode padded to even; it lost the whole video
    lambda d: variant(d, "odd_444.mp4", "-vf", "scale=161:121,setsar=1", "-c:v", "libx264", "-preset", "veryfast",
                      "-pix_fmt", "yuv444p"),
    lambda d: variant(d, "odd_vp9.webm", "-vf", "scale=213:120,setsar=1", "-c:v", "libvpx-vp9", "-deadline",
                      "realtime", "-cpu-used", "8", "-b:v", "300k", "-g", "250"),
    # F15: clip times count from the video's first frame, ffmpeg's -ss from the container's start
    video_after_audio, ts_audio_ahead,
    # F3: a stream copy by time ran past the cut into the next shot
    lambda d: variant(d, "h264_bframes.mkv", *H264_BFRAMES, *LONG_GOP),
    # F2: the seek handed the decoder a frame that is no keyframe: grey frames first
    lambda d: variant(d, "mpeg4_bframes.avi", "-c:v", "mpeg4", "-bf", "2", "-q:v", "2"),
], ids=["odd_444", "odd_vp9", "video_after_audio", "ts_audio_ahead", "h264_bframes_mkv", "mpeg4_bframes_avi"])
def test_write_clips_hold_exactly_their_shot(numbered_dir, tmp_path, make):
    """Every clip of the video is kept with a file whose frames are the clip's, read by their numbers."""
    path = make(numbered_dir)
    out = clip_files_of(path, tmp_path)
    assert all(isinstance(c, dict) for c in out), [(r.reason, r.message) for r in out if isinstance(r, Reject)]
    assert len(out) == 4
    for clip in out:
        assert frame_numbers(clip[R.CLIP_PATH]) == list(range(clip[R.START_FRAME], clip[R.END_FRAME])), clip[R.CLIP_ID]


def test_write_clips_rejects_a_clip_whose_file_cannot_be_written_alone(numbered_dir, tmp_path, monkeypatch):
    """A clip file that cannot be written rejects that clip, with the reason; the video's other clips stay."""
    from vdata.media import MediaError
    from vdata.stages.shots import clip_files

    real_cut = clip_files.cut_clip

    def cut_but_the_second(path, start_s, duration_s, out, **kw):
        if 0.5 < start_s < 1.5:
            raise MediaError("clip_not_written", "clip 1.000000s +1.000000s not written: encode: ffmpeg failed")
        return real_cut(path, start_s, duration_s, out, **kw)

    monkeypatch.setattr(clip_files, "cut_clip", cut_but_the_second)
    out = clip_files_of(variant(numbered_dir, "base.mp4", *H264_BFRAMES), tmp_path)
    assert [frame_span(r) for r in out] == [(0, 25, None), (25, 50, "clip_not_written"), (50, 75, None),
                                            (75, 100, None)]
    assert "ffmpeg failed" in out[1].message and out[1].row[R.CLIP_PATH] is None
    for clip in (c for c in out if isinstance(c, dict)):
        assert frame_numbers(clip[R.CLIP_PATH]) == list(range(clip[R.START_FRAME], clip[R.END_FRAME]))


def test_write_clips_redoes_files_an_older_run_left_wrong(numbered_dir, tmp_path):
    """A build resumed into the same folder reuses a clip file only where this vdata cut it and it holds
    the clip: not one without video, nor one of the right length that an older vdata cut from the shot
    before (as it did where the sound starts first)."""
    path = variant(numbered_dir, "base.mp4", *H264_BFRAMES)
    first = clip_files_of(path, tmp_path)
    empty, shifted = first[2][R.CLIP_PATH], first[3][R.CLIP_PATH]
    run_ffmpeg(["-f", "lavfi", "-t", "1", "-i", "sine", "-c:a", "aac", "-f", "mp4", empty])
    run_ffmpeg(["-i", first[1][R.CLIP_PATH], "-map_metadata", "-1", "-c", "copy", "-f", "mp4", shifted])
    assert frame_numbers(shifted) == list(range(25, 50))
    again = clip_files_of(path, tmp_path)
    assert [c[R.CLIP_PATH] for c in again] == [c[R.CLIP_PATH] for c in first]
    assert frame_numbers(empty) == list(range(50, 75)) and frame_numbers(shifted) == list(range(75, 100))
