"""Which stream of a container is the video (the one a player shows, never a cover picture), and the
picture as a player shows it: square pixels, turned upright."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vdata.display import Orientation, frame_orientation, upright  # noqa: F401  (the readers' names for them)

from . import MediaError


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


def frame_rate(stream) -> float | None:
    """Frames per second of a video stream: its average rate, unless that is more than half again its base
    rate (the smallest rate all its times fit), which no stream's frames can be: the DV demuxer gives its
    1/60000 clock as the average, 60000 fps for a 25 fps tape. Then the base rate. None when it declares
    neither."""
    average, base = stream.average_rate, stream.guessed_rate
    if average and base and float(average) > 1.5 * float(base):
        return float(base)
    rate = average or base
    return float(rate) if rate else None


class VideoFacts(NamedTuple):
    fps: float | None     # frame_rate of the video stream; None when there is none or the file cannot be opened
    interlaced: bool      # its pictures are interlaced


def video_facts(path: str) -> VideoFacts:
    """What a reader that is not PyAV needs of PyAV, from one opening: the frame rate, and whether the
    pictures are interlaced (the field order the demuxer read while opening, or, where that is unknown,
    the first picture's flag)."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = video_stream(container)
            if stream is None:
                return VideoFacts(None, False)
            order = stream.codec_context.field_order   # 0 unknown, 1 progressive, 2-5 the field orders
            try:
                fields = order > 1 if order else bool(next(container.decode(stream)).interlaced_frame)
            except (av.error.FFmpegError, StopIteration):
                fields = False
            return VideoFacts(frame_rate(stream), fields)
    except av.error.FFmpegError:
        return VideoFacts(None, False)


def shown_packets(container, stream):
    """`stream`'s packets that hold a frame of the video: not empty, and not an edit list's pre-roll (a copy
    cut with `ffmpeg -ss` keeps the packets from the keyframe before the cut, flagged discard; decoders use
    them for what follows and show none)."""
    return (p for p in container.demux(stream) if p.size and not p.is_discard)


class PacketTimes(NamedTuple):
    times: np.ndarray                           # presentation times (s), sorted
    error: Exception | None                     # what ended the demux early (a damaged tail), else None
    jump_back: tuple[int, float, float] | None  # (packet, from s, to s): the first break back in decode order


# Decode times never go back inside one timeline; a break back further than this is a second timeline (MPEG-TS
# recordings joined with `cat`, a broadcast splice). Smaller steps back are muxer rounding, left alone.
JUMP_BACK_S = 0.5


def packet_times(container, stream) -> PacketTimes:
    """Presentation times (seconds, the stream's time base) of the frames `stream`'s packets show, sorted, read by
    a demux without decoding; a damaged tail ends the list there, and the error that ended it comes back too.
    The same pass notes where decode times first jump back (`JUMP_BACK_S`): sorting would hide it, and
    the times of the two timelines would interleave."""
    pts, error, jump = [], None, None
    base = float(stream.time_base)
    last_dts = None
    try:
        for packet in shown_packets(container, stream):
            if packet.pts is not None:
                pts.append(packet.pts)
            if packet.dts is not None:
                if jump is None and last_dts is not None and (last_dts - packet.dts) * base > JUMP_BACK_S:
                    jump = (len(pts) - 1, last_dts * base, packet.dts * base)
                last_dts = packet.dts
    except Exception as e:
        error = e
    return PacketTimes(np.sort(np.asarray(pts, dtype=np.float64)) * base, error, jump)


def rewind(container) -> None:
    """Seek `container` back to its first packet. A container without a seek index whose first keyframe
    shows after time 0 (Sorenson FLV, the old YouTube and Flash format, video from 25 ms) has no keyframe
    at or before 0 for libavformat's backward seek, which fails (EPERM); a forward seek to 0 lands on that
    first keyframe, which there is the start.

    Time 0 is not always the start: an MPEG-TS whose 33-bit PTS wraps around less than 60 s in (a broadcast
    capture) has its times before the wrap unwrapped by libavformat to negative ones, and a seek to 0 lands
    at the wrap, seconds into the video. Such a file is sought a second before its (negative) start time:
    its first packets' decode times lie before that start (reordered frames), and a seek to the start
    itself lands past its first keyframe, where nothing decodes until the next one."""
    import av

    start = container.start_time or 0
    start = 0 if start >= 0 else start - 1_000_000   # AV_TIME_BASE: microseconds
    try:
        container.seek(start)
    except av.error.FFmpegError:
        container.seek(start, backward=False)


def video_stream_count(path: str) -> int:
    """Video streams in `path`, cover pictures included (0 where PyAV cannot open it: the reader's own
    open says what is wrong)."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            return len(container.streams.video)
    except av.error.FFmpegError:
        return 0


def skips_per_packet(codec_context) -> bool:
    """Whether the decoder reads `skip_frame` anew for each packet. libavcodec's own decoders do; an
    external library's wrapper (libdav1d for AV1) reads it once, when the decoder opens: set to NONREF
    before the first packet, an AV1 decode then never shows a non-reference picture."""
    return not codec_context.codec.name.startswith("lib")


def display_size(stream, rotation: int = 0) -> tuple[int, int]:
    """(width, height) of the stream's pictures as a player shows them: non-square pixels widened to
    square ones (a 16:9 DVD stores 720x480 with pixels 32:27 wide: shown 854x480; HDV 1440x1080 at 4:3:
    1920x1080), as ffmpeg's `scale=iw*sar:ih` does, then turned by `rotation`. No decoder or reader
    library applies the pixel aspect itself, so frames for a model would come out squeezed."""
    cc = stream.codec_context
    width, height = square_width(cc.width, _aspect(stream)), cc.height
    return (height, width) if rotation in (90, 270) else (width, height)


def square_width(width: int, aspect: float) -> int:
    """A stored width in square pixels, for pixels `aspect` times as wide as tall (even, as scalers like)."""
    return width if abs(aspect - 1.0) < 1e-3 else max(2, int(round(width * aspect / 2)) * 2)


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    # even sizes keep swscale and JPEG encoders happy
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def square_pixels(width: int, height: int, aspect: float, rotation: int) -> tuple[int, int]:
    """An upright picture's size with its stored pixels (`aspect` times as wide as tall) made square."""
    if rotation in (90, 270):   # the stored width is the upright height
        return width, square_width(height, aspect)
    return square_width(width, aspect), height


def decoded_size(width: int, height: int, rotation: int, max_side: int | None) -> tuple[int, int]:
    """The size to decode or scale a stored picture to, so that turned by `rotation` it is the upright
    (`width`, `height`) scaled to `max_side`."""
    w, h = scaled_size(width, height, max_side)
    return (h, w) if rotation in (90, 270) else (w, h)


def _aspect(stream) -> float:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return float(sar) if sar and sar.numerator > 0 and sar.denominator > 0 else 1.0


def pixel_aspect(path: str) -> float:
    """The width of a stored pixel over its height (1.0 where the file does not say, or cannot be read)."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = video_stream(container)
            return _aspect(stream) if stream is not None else 1.0
    except av.error.FFmpegError:
        return 1.0


# ffmpeg's stream dispositions (libavformat/avformat.h AV_DISPOSITION_*), for audio and subtitle tracks alike
DEFAULT, COMMENT, FORCED, HEARING_IMPAIRED, VISUAL_IMPAIRED, DESCRIPTIONS = 0x1, 0x8, 0x40, 0x80, 0x100, 0x20000
_SIDE_TRACK = COMMENT | VISUAL_IMPAIRED | DESCRIPTIONS   # never the video's own speech


def audio_stream(container, language: str | None = None, track: int | None = None):
    """The audio track a player plays, or None: ffmpeg's own pick (the default track, the one that
    belongs with the video), not merely the first. A film with a silent or commentary track first
    would otherwise be transcribed from that one. With `language` ("en", "eng"), a track tagged in it
    comes first (a film dubbed in French by default, its English track second, for an English model).

    `track` picks by position among the audio streams instead (0: the first; asr's `audio_track`), for
    untagged tracks no rule can tell apart (a commentary and the narration); a file with fewer is
    MediaError("no_audio_track"), not another track heard in its place."""
    tracks = list(container.streams.audio)
    if track is not None:
        if tracks and not 0 <= track < len(tracks):
            raise MediaError("no_audio_track", f"audio_track {track}: the file has {len(tracks)} audio "
                                               f"stream(s), numbered from 0")
        return tracks[track] if tracks else None
    # a director's commentary or an audio description is never the speech of the video: tagged in the
    # language asked for (an English commentary beside an untagged narration), it took the narration's place
    main = [s for s in tracks if not int(s.disposition) & _SIDE_TRACK] or tracks
    wanted = iso_639_1(language)
    if wanted is not None:
        tagged = [s for s in main if iso_639_1(s.metadata.get("language")) == wanted]
        if tagged:
            return next((s for s in tagged if int(s.disposition) & DEFAULT), tagged[0])
    best = container.streams.best("audio") or (tracks[0] if tracks else None)
    return best if best is None or best in main else next((s for s in main if int(s.disposition) & DEFAULT), main[0])


def iso_639_1(code: str | None) -> str | None:
    """"eng" / "ger" / "deu" / "en" / "en-US" -> "en"; None for no language ("und") or an unknown code."""
    if not code or code.lower() in ("und", "unk", "mul", "zxx"):
        return None
    import pycountry

    base = code.replace("_", "-").split("-")[0].lower()
    if len(base) == 2:
        return base
    lang = pycountry.languages.get(alpha_3=base) or pycountry.languages.get(bibliographic=base)
    return getattr(lang, "alpha_2", None) if lang else None
