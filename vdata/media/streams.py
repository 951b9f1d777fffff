"""Which stream of a container is the video: the one a player shows, never a cover picture."""
from __future__ import annotations


def video_stream(container):
    """The video stream a player shows in an open PyAV container, or None.

    A cover picture is not video: the artwork of an MP3, M4A or MP4 (an `attached_pic` or thumbnail
    stream of one frame) made podcasts with artwork probe as one-frame videos that do not decode. Among
    the real video streams this is ffmpeg's own choice (`av_find_best_stream`, the stream OpenCV and
    decord read), so every backend reads the same pictures."""
    import av

    cover = av.stream.Disposition.attached_pic | av.stream.Disposition.timed_thumbnails
    best = container.streams.best("video")
    if best is not None and not best.disposition & cover:
        return best
    return next((s for s in container.streams.video if not s.disposition & cover), None)


def video_stream_count(path: str) -> int:
    """Video streams in `path`, cover pictures included (0 where PyAV cannot open it: the reader's own
    open says what is wrong)."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            return len(container.streams.video)
    except av.error.FFmpegError:
        return 0
