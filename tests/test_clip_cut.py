"""Clip files hold exactly their shot: `vdata.media.clip_cut`, behind the shots stage's clip files and the
exports' cut clips, on real media made with ffmpeg and checked by decoding.

Every test video is cut from one numbered source: 4 shots of 1 s at 25 fps, 160x120, whose top rows are a
grey level that says the frame's number (16 + 2n). A clip file holds shot k exactly when its frames read
25k .. 25k+24, in order; a grey undecoded frame, a frame of the next shot or a missing one reads wrong.
"""
import json
import os

import av
import numpy as np
import pytest

from vdata.media import MediaError
from vdata.media.clip_cut import CLIP_NOT_WRITTEN, cut_clip
from vdata.media.ffmpeg import run_ffmpeg

FPS = 25
SHOT_FRAMES = 25
SHOTS = 4


def numbered_video(path: str) -> str:
    """The lossless numbered source (see the module docstring): testsrc2 | testsrc | mandelbrot | smptebars."""
    if not os.path.exists(path):
        sources = ["testsrc2", "testsrc", "mandelbrot", "smptebars"]
        inputs = [a for s in sources for a in ("-f", "lavfi", "-t", "1", "-i", f"{s}=size=160x120:rate={FPS}")]
        number = ("geq=lum='if(lt(Y,16),16+2*N,lum(X,Y))':cb='if(lt(Y,8),128,cb(X,Y))'"
                  ":cr='if(lt(Y,8),128,cr(X,Y))'")
        run_ffmpeg([*inputs, "-filter_complex", f"[0][1][2][3]concat=n=4:v=1:a=0,format=yuv420p,{number}[v]",
                    "-map", "[v]", "-c:v", "ffv1", path])
    return path


def variant(media_dir, name: str, *args: str) -> str:
    """`name` made from the numbered source with ffmpeg `args` (output options, or inputs placed after it)."""
    path = str(media_dir / name)
    if not os.path.exists(path):
        run_ffmpeg(["-i", numbered_video(str(media_dir / "numbered.mkv")), *args, path])
    return path


def frame_numbers(path: str) -> list[int]:
    """The number each decoded frame of `path`'s video shows, from the luma plane of its top rows."""
    out = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            plane = frame.planes[0]
            luma = np.frombuffer(bytes(plane), np.uint8).reshape(-1, plane.line_size)[:plane.height, :plane.width]
            out.append(round((float(luma[2:12, 4:100].mean()) - 16) / 2))
    return out


def shot_times(path: str) -> list[tuple[float, float]]:
    """(start, end) of each shot in the times vdata uses: from the video stream's first frame."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        origin = float((stream.start_time or 0) * stream.time_base)
        times = sorted(float(f.pts * stream.time_base) - origin for f in container.decode(stream))
    starts = times[::SHOT_FRAMES]
    return list(zip(starts, [*starts[1:], times[-1] + 1 / FPS]))


def video_offset(path: str) -> float:
    """How far the video stream starts after the container (where ffmpeg's -ss counts from)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        return float(stream.start_time * stream.time_base) - container.start_time / 1e6


def shot_frames(k: int) -> list[int]:
    return list(range(k * SHOT_FRAMES, (k + 1) * SHOT_FRAMES))


def assert_every_shot_cut_exactly(path: str, tmp_path, copy: bool) -> list[str]:
    hows = []
    for k, (start, end) in enumerate(shot_times(path)):
        out = str(tmp_path / f"shot{k}.mp4")
        hows.append(cut_clip(path, start, end - start, out, copy=copy))
        assert frame_numbers(out) == shot_frames(k), (k, hows[-1])
    return hows


H264_BFRAMES = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-bf", "3", "-pix_fmt", "yuv420p")
# no keyframe at the cuts: every clip but the first starts inside a GOP
LONG_GOP = ("-x264-params", "scenecut=0:keyint=300:bframes=3")


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("clip_cut")


def video_after_audio(media_dir) -> str:
    """An MP4 whose video track starts 1 s after its sound (screen recordings, `-itsoffset`)."""
    base = variant(media_dir, "base.mp4", *H264_BFRAMES)
    path = str(media_dir / "video_after_audio.mp4")
    if not os.path.exists(path):
        run_ffmpeg(["-itsoffset", "1", "-i", base, "-f", "lavfi", "-t", "5", "-i", "sine=f=440:r=16000",
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", path])
    return path


def ts_audio_ahead(media_dir) -> str:
    """Broadcast shape: an MPEG-TS whose sound starts 0.6 s before the video."""
    base = variant(media_dir, "base.mp4", *H264_BFRAMES)
    path = str(media_dir / "audio_ahead.ts")
    if not os.path.exists(path):
        run_ffmpeg(["-itsoffset", "0.6", "-i", base, "-f", "lavfi", "-t", "5", "-i", "sine=f=300",
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-f", "mpegts", path])
    return path


@pytest.mark.parametrize("copy", [True, False])
@pytest.mark.parametrize("make", [video_after_audio, ts_audio_ahead])
def test_clip_cut_counts_from_the_video_streams_first_frame(media_dir, tmp_path, make, copy):
    """ffmpeg's -ss counts from the container's start: with the sound 1 s ahead every file held the shot
    before (the first none at all); with it 0.6 s ahead in MPEG-TS every file ended 0.6 s early."""
    path = make(media_dir)
    assert video_offset(path) > 0.5   # the shape under test
    assert_every_shot_cut_exactly(path, tmp_path, copy)


@pytest.mark.parametrize("codec", [
    ("-c:v", "libx264", "-preset", "veryfast", *LONG_GOP),
    ("-c:v", "mpeg2video", "-q:v", "2", "-g", "300", "-bf", "2", "-sc_threshold", "1000000000"),
], ids=["h264", "mpeg2"])
def test_clip_cut_of_a_long_gop_mpeg_ts_is_never_empty(media_dir, tmp_path, codec):
    """MPEG-TS has no index: a fast seek landed past the only keyframe and ffmpeg wrote a file without
    video, with success. The cut decodes from the keyframe and checks what it wrote."""
    path = variant(media_dir, f"long_gop_{codec[1]}.ts", *codec, "-pix_fmt", "yuv420p", "-f", "mpegts")
    assert_every_shot_cut_exactly(path, tmp_path, copy=True)


@pytest.mark.parametrize("name,codec", [
    ("h264_bframes.mkv", (*H264_BFRAMES, *LONG_GOP)),
    ("hevc_bframes.mkv", ("-c:v", "libx265", "-preset", "ultrafast", "-crf", "10",
                          "-x265-params", "scenecut=0:keyint=300:log-level=error")),
])
def test_clip_cut_stream_copy_never_runs_into_the_next_shot(media_dir, tmp_path, name, codec):
    """The first clip starts on a keyframe, but B-frames shown before its end are decoded after a frame of the
    next shot: a copy cut by time carried that frame (and more) along. Such a clip is encoded."""
    path = variant(media_dir, name, *codec)
    assert_every_shot_cut_exactly(path, tmp_path, copy=True)


@pytest.mark.parametrize("name,codec", [
    ("gop25.mp4", (*H264_BFRAMES, "-g", "25", "-keyint_min", "25", "-sc_threshold", "0")),
    ("gop25.webm", ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-crf", "10", "-b:v", "0",
                    "-g", "25", "-keyint_min", "25")),
])
def test_clip_cut_copies_where_both_ends_are_clean(media_dir, tmp_path, name, codec):
    """Keyframes on every cut, closed GOPs: the clips are stream copies (the source's packets), still exact."""
    path = variant(media_dir, name, *codec)
    assert assert_every_shot_cut_exactly(path, tmp_path, copy=True) == ["copy"] * SHOTS


def test_clip_cut_of_an_mpeg4_avi_with_b_frames_starts_on_the_shots_first_frame(media_dir, tmp_path):
    """ffmpeg's seek in this AVI handed the decoder a frame that is no keyframe: clips began with grey
    frames. Its first frame shows at 0.04 s, so no clip starts at 0 either."""
    path = variant(media_dir, "mpeg4_bframes.avi", "-c:v", "mpeg4", "-bf", "2", "-q:v", "2")
    assert shot_times(path)[0][0] == pytest.approx(0.04)
    assert_every_shot_cut_exactly(path, tmp_path, copy=True)


@pytest.mark.parametrize("name,codec,size", [
    ("odd_444.mp4", ("-vf", "scale=161:121,setsar=1", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv444p"),
     (162, 122)),
    ("odd_vp9.webm", ("-vf", "scale=213:120,setsar=1", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                      "-b:v", "300k", "-g", "250"), (214, 120)),
])
def test_clip_cut_pads_odd_sizes_to_even(media_dir, tmp_path, name, codec, size):
    """4:2:0 H.264 has no odd sizes: every encode failed, and with it the video. Padded, each clip is exact."""
    path = variant(media_dir, name, *codec)
    assert_every_shot_cut_exactly(path, tmp_path, copy=False)
    with av.open(str(tmp_path / "shot1.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == size


def test_clip_cut_of_a_one_pixel_video(tmp_path):
    path = str(tmp_path / "one_pixel.mp4")
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=red:s=1x1:r=25:d=3", "-c:v", "libx264", "-pix_fmt", "yuv444p", path])
    out = str(tmp_path / "clip.mp4")
    cut_clip(path, 1.0, 1.0, out)
    with av.open(out) as container:
        assert sum(1 for _ in container.decode(video=0)) == FPS


def test_clip_cut_without_frames_is_an_error_and_leaves_no_file(media_dir, tmp_path):
    """Nothing of the video lies in the interval: no attempt writes video, and no file is left behind."""
    path = variant(media_dir, "base.mp4", *H264_BFRAMES)
    out = str(tmp_path / "past_the_end.mp4")
    with pytest.raises(MediaError) as e:
        cut_clip(path, 10.0, 1.0, out)
    assert e.value.reason == CLIP_NOT_WRITTEN and "no video frames" in e.value.message
    assert not os.path.exists(out)


def test_export_cuts_hold_their_clip_and_record_what_could_not_be_cut(media_dir, tmp_path):
    """The export's cut clips (`MediaPlanner`, e.g. `vdata export --format parquet`): a long-GOP MPEG-TS, a
    video after its sound, an odd size, and a clip past the end of its video. The three are exact; the
    last is counted as failed and listed in not_cut.jsonl, never an empty file counted as cut. A re-export
    cuts again a file an older vdata left empty."""
    from vdata.exporters.media import NOT_CUT_FILE, MediaPlanner
    from vdata.exporters.source import Item
    from vdata.schemas import records as R

    sources = [(variant(media_dir, "long_gop_libx264.ts", "-c:v", "libx264", "-preset", "veryfast", *LONG_GOP,
                        "-pix_fmt", "yuv420p", "-f", "mpegts"), 2),
               (video_after_audio(media_dir), 0),
               (variant(media_dir, "odd_444.mp4", "-vf", "scale=161:121,setsar=1", "-c:v", "libx264", "-preset",
                        "veryfast", "-pix_fmt", "yuv444p"), 3)]

    def item(path, clip_id, start, end):
        row = {R.PATH: path, R.VIDEO_ID: os.path.basename(path), R.CLIP_ID: clip_id, R.START_S: start, R.END_S: end,
               R.DURATION_S: 4.0, R.FPS: float(FPS), R.SAMPLE_ID: clip_id}
        return Item(row, "captions")

    items = [item(path, f"clip{i}", *shot_times(path)[k]) for i, (path, k) in enumerate(sources)]
    items.append(item(sources[0][0], "past_the_end", 5.0, 6.0))
    dest = tmp_path / "export"
    planner = MediaPlanner(str(dest))
    visuals = [planner.visual(it) for it in items]
    (dest / "videos" / "clips").mkdir(parents=True)
    # what an older vdata left and counted as cut: a file without video
    run_ffmpeg(["-f", "lavfi", "-t", "1", "-i", "sine", "-c:a", "aac", str(dest / visuals[0].rel)])
    stats = planner.materialize(workers=1)
    assert stats["cut"] == 3 and list(stats["failed"]) == ["clip:past_the_end"], stats
    for visual, (_, k) in zip(visuals, sources):
        assert frame_numbers(planner.abspath(visual)) == shot_frames(k), visual.key
    assert not os.path.exists(planner.abspath(visuals[3]))
    noted = [json.loads(line) for line in (dest / "videos" / NOT_CUT_FILE).read_text().splitlines()]
    assert [(n["visual"], n["start_s"]) for n in noted] == [("clip:past_the_end", 5.0)]
    assert CLIP_NOT_WRITTEN in noted[0]["error"]
