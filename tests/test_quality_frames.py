"""Quality scores and thresholds on crafted clips; frame sampling modes."""
import numpy as np
import pytest

from vdata.media.images import decode_jpeg
from vdata.media.probe import probe_video
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.frames import FramesConfig, FramesStage
from vdata.stages.quality import QualityConfig, QualityStage, Thresholds, apply_thresholds

EXPECTED = {"black": "too_dark", "blurred": "blurry", "static": "static", "text_heavy": "text_heavy",
            "tiny": "low_resolution", "letterboxed": "borders"}


def clip_row(path):
    info = probe_video(path)
    return {R.PATH: path, R.START_S: 0.0, R.END_S: info["duration_s"], R.CLIP_DURATION_S: info["duration_s"],
            R.FPS: info["fps"], R.WIDTH: info["width"], R.HEIGHT: info["height"]}


@pytest.fixture(scope="module")
def quality_stage():
    stage = QualityStage(QualityConfig(), RunContext(output_dir="/tmp/unused"))
    stage.setup()
    return stage


@pytest.fixture(scope="module")
def scored(quality_videos, quality_stage):
    return {name: quality_stage.process_batch([clip_row(p)])[0] for name, p in quality_videos.items()}


def test_good_clip_is_kept_with_all_scores(scored):
    good = scored["good"]
    assert not isinstance(good, Reject)
    for col in R.QUALITY_COLUMNS:
        assert good[col] is not None
    assert 0 < good[R.Q_SUITABILITY] <= 1


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_crafted_clip_is_dropped_for_the_right_reason(scored, name):
    res = scored[name]
    assert isinstance(res, Reject), f"{name} was kept: {res}"
    assert res.reason == EXPECTED[name], res.message
    # scores travel with the reject so it can be re-thresholded later
    assert res.row[R.Q_BRIGHTNESS] is not None and res.detail["scores"]


def test_rethresholding_from_stored_scores_needs_no_decoding(scored):
    rows = [r.row if isinstance(r, Reject) else r for r in scored.values()]
    loose = Thresholds(**{k: None for k in Thresholds.model_fields})
    assert all(apply_thresholds(r, loose) == [] for r in rows)
    strict = Thresholds(sharpness_min=1e9)
    assert all(apply_thresholds(r, strict)[0][0] in ("blurry", "too_dark", "low_resolution", "borders", "static", "text_heavy")
               for r in rows)
    # the same thresholds give the same decisions as the stage made
    default = Thresholds()
    for name, res in scored.items():
        failed = apply_thresholds(res.row if isinstance(res, Reject) else res, default)
        assert (failed[0][0] if failed else None) == (res.reason if isinstance(res, Reject) else None)


def frames_of(path, **cfg):
    stage = FramesStage(FramesConfig(**cfg), RunContext(output_dir="/tmp/unused"))
    out = stage.process_batch([clip_row(path) | {R.START_S: 2.0, R.END_S: 6.0}])[0]
    assert not isinstance(out, Reject), out
    return out


def test_uniform_frames_are_centred_in_equal_slices(cut_video):
    out = frames_of(cut_video[0], mode="uniform", num_frames=4, max_side=320)
    ts = [f[R.FRAME_TIMESTAMP_S] for f in out[R.FRAMES]]
    assert ts == pytest.approx([2.5, 3.5, 4.5, 5.5], abs=0.021)
    img = decode_jpeg(out[R.FRAMES][0][R.FRAME_JPEG])
    assert img.shape == (180, 320, 3)
    assert out[R.FRAME_SAMPLING] == "uniform:4"


def test_fps_mode_respects_rate_and_cap(cut_video):
    out = frames_of(cut_video[0], mode="fps", fps=2.0, max_frames=100)
    assert len(out[R.FRAMES]) == 8
    capped = frames_of(cut_video[0], mode="fps", fps=10.0, max_frames=5)
    assert len(capped[R.FRAMES]) == 5
    ts = [f[R.FRAME_TIMESTAMP_S] for f in capped[R.FRAMES]]
    assert ts == sorted(ts) and 2.0 <= ts[0] and ts[-1] < 6.0


def test_keyframes_mode_drops_redundant_frames(cut_video, quality_videos):
    # 2–6 s of the cut video spans two different sources: frames within one source are near-identical
    # for the static ones (smptebars), so the distinct set is much smaller than the candidates.
    out = frames_of(cut_video[0], mode="keyframes", candidate_fps=4.0, min_hash_distance=10)
    assert 2 <= len(out[R.FRAMES]) < 16
    static = frames_of(quality_videos["static"], mode="keyframes", candidate_fps=4.0)
    assert len(static[R.FRAMES]) == 1


def test_keyframes_by_embedding_with_a_tiny_clip(cut_video, quality_videos, tmp_path):
    """ShareGPT4Video-style semantic keyframes: the tiny random CLIP (built offline) as the distance. A static
    clip collapses to one frame; two sources keep more than one; max_frames keeps the most distinct."""
    from vdata.teachers.tiny_clip import build_tiny_clip

    model = str(build_tiny_clip(tmp_path / "tiny-clip"))

    def keyframes(path, **cfg):
        stage = FramesStage(FramesConfig(mode="keyframes", candidate_fps=4.0, keyframe_model=model,
                                         max_keyframe_similarity=0.999, **cfg), RunContext(output_dir="/tmp/unused"))
        stage.setup()
        out = stage.process_batch([clip_row(path) | {R.START_S: 2.0, R.END_S: 6.0}])[0]
        assert not isinstance(out, Reject), out
        return out

    static = keyframes(quality_videos["static"])
    assert len(static[R.FRAMES]) == 1 and static[R.FRAME_SAMPLING] == "keyframes:4fps:cos0.999:max32"
    two_sources = keyframes(cut_video[0])
    ts = [f[R.FRAME_TIMESTAMP_S] for f in two_sources[R.FRAMES]]
    assert 2 <= len(ts) <= 16 and ts == sorted(ts)
    capped = keyframes(cut_video[0], max_frames=2)
    assert len(capped[R.FRAMES]) == 2 and keyframes(cut_video[0]) == two_sources   # deterministic


def test_text_detector_sees_the_configured_size_and_still_finds_text(quality_videos, quality_stage):
    """RapidOCR's own default would upscale the 360 px analysis frame to a 736 px short side (ten
    times the pixels); the stage hands it images text.max_side long (by default the analysis frame as
    read) and keeps them at that size."""
    seen = []
    ocr = quality_stage._ocr
    detector = ocr.text_det
    original = detector.__call__

    class Recording:
        def __getattr__(self, name):
            return getattr(detector, name)

        def __call__(self, img):
            seen.append(img.shape[:2])
            return original(img)

    ocr.text_det = Recording()
    try:
        scores = quality_stage.scores(clip_row(quality_videos["text_heavy"]))
    finally:
        ocr.text_det = detector
    side = quality_stage.config.text.max_side or quality_stage.config.analysis_max_side
    assert seen and all(max(shape) == side for shape in seen), seen
    assert scores[R.Q_TEXT_AREA] > quality_stage.config.thresholds.text_area_max
    preprocess = detector.get_preprocess(max(seen[0]))
    assert preprocess.resize(np.zeros((*seen[0], 3), np.uint8)).shape[1] <= side


def test_motion_of_a_slow_stretch_of_variable_frame_rate_video(tmp_path, quality_stage):
    """A phone drops its frame rate in dim light: a stretch at 10 fps inside video that averages about 30.
    Both times of a motion pair then fall on one frame; the stage reads the next frame instead, and
    reports motion per frame of the average rate, as it does for the same pictures at a constant rate."""
    import subprocess

    from vdata.media.ffmpeg import ffmpeg_exe

    def encode(path, graph, *extra):
        subprocess.run([ffmpeg_exe(), "-v", "error", "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264",
                        "-pix_fmt", "yuv420p", *extra, path], check=True)

    slow = "testsrc2=size=320x180:rate=10:duration=3"
    variable, steady = str(tmp_path / "vfr.mp4"), str(tmp_path / "steady10.mp4")
    encode(variable, f"{slow}[a];testsrc2=size=320x180:rate=50:duration=3,setpts=PTS-STARTPTS[b];"
                     "[a][b]concat=n=2:v=1[v]", "-fps_mode", "vfr")
    encode(steady, f"{slow}[v]")
    info = probe_video(variable)
    assert info["is_vfr"] and info["fps"] > 20
    stretch = {**clip_row(variable), R.END_S: 3.0, R.CLIP_DURATION_S: 3.0}
    scores = quality_stage.scores(stretch)
    reference = quality_stage.scores(clip_row(steady))[R.Q_MOTION] * 10 / info["fps"]   # per frame of ~30 fps
    assert scores[R.Q_MOTION] > QualityConfig().thresholds.motion_min
    assert scores[R.Q_MOTION] == pytest.approx(reference, rel=0.25)


def test_a_picture_held_for_seconds_in_variable_frame_rate_video_is_read_not_rejected(tmp_path):
    """A screen recording sends a frame only when the screen changes: here 2 s at 25 fps, then no frame for
    2 s, then frames 80 ms apart. The frame after the still stretch is the nearest one to a time inside it,
    so the clip is kept; a frame that the reader returned from outside the held interval is still caught."""
    from vdata.media.ffmpeg import run_ffmpeg
    from vdata.media.timestamps import held_frame_gap

    path = str(tmp_path / "held.mp4")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4", "-c:v", "libx264", "-pix_fmt",
                "yuv420p", "-vf", "setpts='if(lt(N,50),N/25/TB,(N*2)/25/TB)'", "-fps_mode", "vfr", path])
    info = probe_video(path)
    assert info["is_vfr"]
    assert held_frame_gap(path, [3.0]) == pytest.approx(4.0 - 1.96, abs=1e-3)
    assert held_frame_gap(path, [1.0, 5.0]) == pytest.approx(0.08, abs=1e-3)   # no held picture there
    stage = FramesStage(FramesConfig(num_frames=4, max_side=160), RunContext(output_dir="/tmp/unused"))
    row = {R.PATH: path, R.SOURCE_URI: path, **info, R.CLIP_ID: "held_0", R.START_S: 0.0, R.END_S: 8.0}
    out = stage.process_batch([row])[0]
    assert not isinstance(out, Reject), out
    got = [f[R.FRAME_TIMESTAMP_S] for f in out[R.FRAMES]]
    assert got[1] in (pytest.approx(1.96), pytest.approx(4.0))   # asked for 3.0 s: a frame bounding the gap
    # the same answer for a time outside the held interval is wrong, and still found so
    assert FramesStage._unsound(path, [1.0, 6.5], [(1.0, None), (4.0, None)], [], info["fps"], True, 7.9)


def test_a_held_picture_clip_gets_its_own_frame_and_no_motion_from_the_next_shot(tmp_path, quality_stage):
    """A screen recording's still screens (one frame held 6 s, `synth.render_held_pictures`): a time inside
    the hold was answered with the nearest frame, which is the next shot's (the frames of clip 3-9 s were
    the picture at 9 s); the quality stage measured motion against the next shot too. Now the frame shown
    at each time is read, every frame of a clip lies inside it, and a held picture has no motion."""
    from vdata.media.hashing import content_id
    from vdata.media.reader import open_reader
    from vdata.media.synth import render_held_pictures
    from vdata.stages.shots import ShotsStage

    path = str(tmp_path / "screen.mp4")
    cuts = render_held_pictures(path, "screen")
    with open_reader(path, "pyav") as reader:
        assert [t for t, _ in reader.read_at([2.9, 5.25, 8.9, 9.0, 14.0, 17.9])] == pytest.approx(
            [2.88, 3.0, 3.0, 9.0, 12.0, 12.0])
    row = {R.PATH: path, R.SOURCE_URI: path, R.VIDEO_ID: content_id(path), **probe_video(path)}
    clips = ShotsStage(ctx=RunContext(output_dir="/tmp/unused")).process_batch([row])
    assert [c[R.START_S] for c in clips][1:] == cuts
    frames = FramesStage(FramesConfig(num_frames=4, max_side=160), RunContext(output_dir="/tmp/unused"))
    for clip in frames.process_batch(clips):
        assert not isinstance(clip, Reject), clip
        times = [f[R.FRAME_TIMESTAMP_S] for f in clip[R.FRAMES]]
        assert all(clip[R.START_S] <= t < clip[R.END_S] for t in times), (clip[R.START_S], clip[R.END_S], times)
    held = [c for c in clips if c[R.START_S] in (3.0, 12.0)]
    for scored in quality_stage.process_batch(held):
        scores = scored.row if isinstance(scored, Reject) else scored
        assert scores[R.Q_MOTION] == 0.0, scores[R.Q_MOTION]


def test_a_low_frame_rate_video_is_read_in_one_pass(tmp_path, monkeypatch):
    """At 10 fps a time between two frames gets the one being shown; reading it must not need a second
    decode from a seek (that is for a picture held over skipped ones): sorted times, one pass."""
    from vdata.media.ffmpeg import run_ffmpeg
    from vdata.media.reader import PyAVReader

    path = str(tmp_path / "ten_fps.mp4")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10:duration=10", "-c:v", "libx264",
                "-pix_fmt", "yuv420p", path])
    times = [0.37 + 0.3 * k for k in range(30)]
    passes = []
    original = PyAVReader._decode_from
    monkeypatch.setattr(PyAVReader, "_decode_from", lambda self, t: passes.append(t) or original(self, t))
    with PyAVReader(path) as reader:
        got = [t for t, _ in reader.read_at(times)]
    assert got == pytest.approx([int(t * 10) / 10 for t in times]) and len(passes) == 1, passes


@pytest.mark.parametrize("encoding", [["-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error"],
                                      ["-vf", "fps=10"]], ids=["hevc10.mkv", "gif"])
def test_still_colour_bars_are_static_whatever_the_encoding(tmp_path, quality_stage, encoding):
    """Colour bars held still: Farneback's flow between two identical frames was 1.42 px for 10-bit HEVC and
    0.82 px for a GIF (a few pixels at 15-400 px where its equations are ill-posed), so a still clip passed
    as moving. Flow the flow back does not confirm no longer counts; a pattern that moves keeps its motion."""
    from vdata.media.ffmpeg import run_ffmpeg

    ext = "gif" if "fps=10" in encoding else "mkv"
    still, moving = str(tmp_path / f"still.{ext}"), str(tmp_path / f"moving.{ext}")
    for source, path in (("smptebars", still), ("testsrc2", moving)):
        run_ffmpeg(["-f", "lavfi", "-i", f"{source}=s=640x360:r=25", "-t", "4", *encoding, path])
    scored = quality_stage.process_batch([clip_row(still)])[0]
    assert isinstance(scored, Reject) and scored.reason == "static", scored
    assert scored.row[R.Q_MOTION] < 0.01
    kept = quality_stage.process_batch([clip_row(moving)])[0]
    assert not isinstance(kept, Reject) and kept[R.Q_MOTION] > 0.3, kept


def test_motion_is_the_same_at_any_frame_rate_and_where_pictures_are_held(tmp_path):
    """One pattern moving at a steady speed, filmed at 30, 60 and 120 fps, shown at 30 fps in a 120 fps file
    (each frame four times: a screen or game capture), and drawn on twos, threes and fours at 24 fps
    (animation holds each drawing for 2, 3 or 4 frames). Measured between adjacent frames, the motion fell
    with the frame rate and held pictures read as none: all but the 30 and 60 fps ones were rejected
    `static`. Now motion is per frame up to 30 fps and per 1/30 s above, measured to the next picture that
    differs: the same at 30 fps and above, about 30/24 of that per frame at 24 fps. Colour bars stay still."""
    from vdata.media.ffmpeg import run_ffmpeg

    # name: (source, its rate, what the file is made of it, the file's rate)
    sources = {"30": ("testsrc2", 30, [], 30), "60": ("testsrc2", 60, [], 60), "120": ("testsrc2", 120, [], 120),
               "30 in 120": ("testsrc2", 30, ["-vf", "fps=120"], 120),
               "on twos": ("testsrc2", 12, ["-vf", "fps=24"], 24), "on threes": ("testsrc2", 8, ["-vf", "fps=24"], 24),
               "on fours": ("testsrc2", 6, ["-vf", "fps=24"], 24), "still 60": ("smptebars", 60, [], 60)}
    stage = QualityStage(QualityConfig(text={"enabled": False}), RunContext(output_dir="/tmp/unused"))
    stage.setup()   # testsrc2's counter is text: only motion decides here
    motion, kept, per_frame = {}, {}, {}
    for name, (source, rate, extra, file_rate) in sources.items():
        path = str(tmp_path / f"{name.replace(' ', '_')}.mp4")
        run_ffmpeg(["-f", "lavfi", "-i", f"{source}=size=320x180:rate={rate}:duration=3", *extra, "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", path])
        out = stage.process_batch([clip_row(path)])[0]
        row = out.row if isinstance(out, Reject) else out
        motion[name], kept[name] = row[R.Q_MOTION], not isinstance(out, Reject) or out.reason
        per_frame[name] = max(1 / file_rate, 1 / 30) * 30   # the unit, in 1/30 s
    reference = motion.pop("30")
    assert reference > 4 * QualityConfig().thresholds.motion_min, reference
    assert motion.pop("still 60") < 0.01 and kept.pop("still 60") == "static"
    assert all(k is True for k in kept.values()), kept
    # a camera at any rate moves as at 30 fps; drawings that jump every 2-4 frames read within a factor 2
    steady = {name: pytest.approx(reference * per_frame[name], rel=0.3) for name in ("60", "120", "30 in 120")}
    assert {name: motion[name] for name in steady} == steady, (reference, motion)
    held = {name: motion[name] / (reference * per_frame[name]) for name in ("on twos", "on threes", "on fours")}
    assert all(0.5 < ratio < 2 for ratio in held.values()), (reference, motion)


def test_slides_of_a_half_fps_video_are_static_not_moving_into_the_next_slide(tmp_path, quality_stage):
    """At 0.5 fps a 2 s clip is one picture: its first frame pair reached the next slide (outside check h13 F4),
    so every slide but the last read as moving. A frame at the clip's end is the next shot's: no motion."""
    from vdata.media.ffmpeg import run_ffmpeg

    path = str(tmp_path / "slides.mp4")
    sources = ["smptebars", "pal100bars", "rgbtestsrc"]
    run_ffmpeg([arg for s in sources for arg in ("-f", "lavfi", "-i", f"{s}=s=320x180:r=0.5:d=2")]
               + ["-filter_complex", "".join(f"[{i}:v]" for i in range(3)) + "concat=n=3:v=1:a=0",
                  "-c:v", "libx264", "-pix_fmt", "yuv420p", path])
    base = clip_row(path)
    assert base[R.FPS] == pytest.approx(0.5)
    clips = [dict(base, **{R.START_S: 2.0 * i, R.END_S: 2.0 * i + 2, R.CLIP_DURATION_S: 2.0}) for i in range(3)]
    for out in quality_stage.process_batch(clips):
        assert isinstance(out, Reject) and out.reason == "static" and out.row[R.Q_MOTION] == 0.0, out
