"""A stream-copied clip file starts at time 0, like an encoded one (`vdata.media.clip_cut`).

x264 with B-frames (its default, and nearly every real H.264 file) shows its first frame a reorder delay
after it decodes it. A copy whose first decode time was moved to 0 showed its first frame at that delay
(2 frames), so every clip-relative time that a time-based reader (PyAV seek, torchcodec, HF
`datasets.Video`, players) looks up landed 2 frames late. Checked on real media made with ffmpeg, by
decoding: the first frame is at 0 within half a frame, the file holds end_frame - start_frame frames and
its first frame is the source's frame at start_frame, pixel for pixel.
"""
import av
import numpy as np
import pytest

from vdata.media.clip_cut import CUT_MARK, clip_source, cut_clip, holds_clip
from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.synth import Segment, render_segments

SHOTS = ["testsrc2", "smptebars", "mandelbrot"]   # one second each, a keyframe at every shot's start
SIZE = (160, 120)


def _lavfi(fps: str) -> list[str]:
    inputs = []
    for s in SHOTS:
        inputs += ["-f", "lavfi", "-t", "1", "-i", f"{s}=size={SIZE[0]}x{SIZE[1]}:rate={fps}"]
    return [*inputs, "-filter_complex", f"concat=n={len(SHOTS)}:v=1:a=0,format=yuv420p[v]", "-map", "[v]"]


def _make(kind: str, d) -> str:
    path = str(d / f"{kind}.mp4")
    if kind == "25fps":        # render_segments: x264 veryfast, 3 B-frames
        render_segments(path, [Segment(s, 1.0) for s in SHOTS], size=SIZE, gop=25)
    elif kind == "sound_first":   # sound packets before the video's: the copy started even later
        render_segments(path, [Segment(s, 1.0) for s in SHOTS], size=SIZE, gop=25, audio_tone_hz=440)
    elif kind == "pyramid":
        run_ffmpeg([*_lavfi("25"), "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "3",
                    "-x264-params", "b-pyramid=normal", path])
    elif kind == "29.97fps":
        run_ffmpeg([*_lavfi("30000/1001"), "-c:v", "libx264", "-g", "30", path])
    elif kind == "start_10s":   # the container's clock starts at 10 s
        run_ffmpeg(["-i", _make("25fps", d), "-c", "copy", "-output_ts_offset", "10", path])
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("clip_origin")


def _frames(path: str) -> tuple[float, list[float], list[np.ndarray]]:
    """(container start, each frame's `frame.time`, its luma), in display order."""
    with av.open(path) as container:
        start = container.start_time / 1e6 if container.start_time is not None else 0.0
        decoded = [(float(f.time), f.to_ndarray(format="gray").astype(np.float32))
                   for f in container.decode(video=0)]
    decoded.sort(key=lambda tf: tf[0])
    return start, [t for t, _ in decoded], [p for _, p in decoded]


def _shots(path: str) -> tuple[list[float], list[np.ndarray], list[tuple[int, int]]]:
    """The source's frame times from its first frame (vdata's clock), lumas, and each shot's frame span."""
    _, times, pixels = _frames(path)
    times = [t - times[0] for t in times]
    per_shot = len(times) // len(SHOTS)
    return times, pixels, [(k * per_shot, (k + 1) * per_shot) for k in range(len(SHOTS))]


@pytest.mark.parametrize("kind", ["25fps", "pyramid", "29.97fps", "start_10s", "sound_first"])
def test_copied_clip_starts_at_zero_with_the_clip_frames(kind, media, tmp_path):
    path = _make(kind, media)
    with av.open(path) as container:   # the delay this is about
        assert container.streams.video[0].codec_context.has_b_frames
    times, pixels, spans = _shots(path)
    gap = times[1] - times[0]
    for k, (start_frame, end_frame) in enumerate(spans):
        start_s = times[start_frame]
        end_s = times[end_frame] if end_frame < len(times) else times[-1] + gap
        out = str(tmp_path / f"{kind}_{k}.mp4")
        assert cut_clip(path, start_s, end_s - start_s, out, copy=True) == "copy", (kind, k)
        container_start, clip_times, clip_pixels = _frames(out)
        assert abs(clip_times[0]) < gap / 2, (kind, k, clip_times[0])
        assert abs(container_start) < gap / 2, (kind, k, container_start)
        assert len(clip_times) == end_frame - start_frame, (kind, k)
        assert float(np.abs(clip_pixels[0] - pixels[start_frame]).mean()) < 0.5, (kind, k)
        assert float(np.abs(clip_pixels[-1] - pixels[end_frame - 1]).mean()) < 0.5, (kind, k)
        assert holds_clip(out, path, start_s, end_s - start_s)


def test_a_resumed_build_recuts_a_copy_that_starts_late(media, tmp_path):
    """A copy an older vdata wrote (decode time moved to 0, first frame 2 frames late) is not kept."""
    path = _make("25fps", media)
    source = clip_source(path, 1.0, 2.0)
    late = str(tmp_path / "late.mp4")
    run_ffmpeg(["-ss", "1", "-i", path, "-c", "copy", "-frames:v", str(source.frames),
                "-avoid_negative_ts", "make_zero", "-metadata", f"comment={CUT_MARK}", late])
    _, clip_times, _ = _frames(late)
    assert clip_times[0] > 0.05   # the old copy: shown from the B-frame delay on
    assert not holds_clip(late, path, 1.0, 1.0)
    out = str(tmp_path / "fresh.mp4")
    cut_clip(path, 1.0, 1.0, out, copy=True)
    assert holds_clip(out, path, 1.0, 1.0)
