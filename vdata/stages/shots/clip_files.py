"""The file of one clip (`shots.write_clips`): a stream copy where the clip starts on a keyframe, else an
H.264 encode, and never a file without video."""
from __future__ import annotations

from vdata.media import MediaError
from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.streams import video_stream


def write_clip_file(path: str, start_s: float, duration_s: float, tmp: str, clip_codec: str) -> None:
    """Write [start_s, start_s + duration_s) of `path` to `tmp` (an .mp4), or raise MediaError."""
    start, length = f"{start_s:.6f}", f"{duration_s:.6f}"
    video, aligned = _clip_source(path, start_s)
    fast_seek = ["-ss", start, "-i", path, "-t", length]
    encode = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac"]
    attempts = [[*fast_seek, *encode],
                # a seek in the container's index can land nowhere (an MKV indexed on a picture track):
                # ffmpeg then writes an empty file and succeeds; decoding from the start always works
                ["-i", path, "-ss", start, "-t", length, *encode]]
    if clip_codec == "copy_if_aligned" and aligned:
        # MP4 cannot hold every codec a source may carry (ProRes, GIF): those are encoded
        attempts.insert(0, [*fast_seek, "-c", "copy", "-avoid_negative_ts", "make_zero"])
    problem = None
    for args in attempts:
        try:
            run_ffmpeg([*args, "-map", video, "-map", "0:a?", tmp])
        except MediaError as e:
            if e.reason != "ffmpeg_failed":
                raise
            problem = e.message
            continue
        if _holds_video(tmp):
            break
        problem = "ffmpeg wrote a clip without video"
    else:
        raise MediaError("clip_not_written", f"clip {start}s +{length}s: {problem}")


def _holds_video(path: str) -> bool:
    import av

    try:
        with av.open(path) as c:
            stream = video_stream(c)
            return stream is not None and bool(stream.frames)
    except av.error.FFmpegError:
        return False


def _clip_source(path: str, t: float) -> tuple[str, bool]:
    """From one open of the source: ffmpeg's `-map` for the video stream vdata reads (`video_map`), and
    whether a clip starting at `t` starts on a keyframe (then it can be copied)."""
    import av

    with av.open(path) as c:
        vs = video_stream(c)
        tb = float(vs.time_base)
        start = float(vs.start_time or 0) * tb
        try:
            keys = [e.timestamp * tb - start for e in vs.index_entries if e.is_keyframe]
        except Exception:
            keys = []
        return f"0:{vs.index}", any(abs(k - t) < 1e-3 for k in keys)
