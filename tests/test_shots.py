"""Shot detection with real PySceneDetect on rendered cuts and a real clip with cuts."""
import pytest

from vdata.stages.base import RunContext
from vdata.stages.shots import ShotsConfig, ShotsStage, detect_cuts, repair_segments, segments_from_cuts, split_long
from vdata.media.probe import probe_video
from vdata.media.hashing import content_id
from vdata.schemas import records as R
from conftest import FLASH_FRAME

BIKES_CUTS_S = [1.2, 3.04, 5.48, 7.48, 9.68]


def clips_for(path, **cfg):
    stage = ShotsStage(ShotsConfig(**cfg), RunContext(output_dir="/tmp/unused"))
    row = {R.PATH: path, R.VIDEO_ID: content_id(path), **probe_video(path)}
    out = stage.process_batch([row])
    assert all(isinstance(c, dict) for c in out), out
    return out


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
    cuts, times, feats, fps = detect_cuts(flash_video, ShotsConfig())
    assert FLASH_FRAME in cuts  # the detector does see the flash...
    assert len(clips_for(flash_video)) == 1  # ...and stitching repairs it
    unstitched = clips_for(flash_video, stitch={"enabled": False}, min_len_s=0.0)
    assert len(unstitched) == 3


def test_short_shots_drop_mode_leaves_a_gap(flash_video):
    clips = clips_for(flash_video, stitch={"enabled": False}, short_shots="drop")
    assert [(c[R.START_FRAME], c[R.END_FRAME]) for c in clips] == [(0, FLASH_FRAME), (FLASH_FRAME + 1, 150)]


def test_fade_gives_no_cut_outside_the_transition(fade_video):
    cuts, times, feats, fps = detect_cuts(fade_video, ShotsConfig(detector="content"))
    assert all(3.0 * fps - 2 <= c <= 5.0 * fps + 2 for c in cuts), cuts


def test_max_len_splits_into_equal_windows():
    assert split_long([[0, 100]], 25.0, 1.5) == [[0, 33], [33, 66], [66, 100]]
    assert split_long([[0, 30]], 25.0, 10) == [[0, 30]]


def test_repair_merges_short_shot_into_more_similar_neighbour():
    import numpy as np

    feats = np.zeros((30, 32 + 144), np.float32)
    feats[:10, 0] = 1      # scene A
    feats[10:12, 5] = 1    # a 2-frame glitch that looks like B
    feats[12:, 5] = 1      # scene B
    segs = repair_segments(segments_from_cuts([10, 12], 30), feats, 25.0, ShotsConfig(min_len_s=0.2))
    assert segs == [[0, 10], [10, 30]]


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
