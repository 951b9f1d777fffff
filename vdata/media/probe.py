"""Probe a video file with PyAV: the facts every later stage relies on, or a clear MediaError."""
from __future__ import annotations

import os
import re

import numpy as np

from . import MediaError
from .streams import audio_stream, display_size, frame_orientation, frame_rate, packet_times, rewind, video_stream

_INDEXED_FORMATS = ("mov", "mp4", "m4a", "3gp", "mj2")  # full per-sample index in the header


def declared_duration(container, stream) -> float:
    """What the file says its length is: the container's duration, else the stream's, else 0."""
    if container.duration:
        return container.duration / 1_000_000
    if stream.duration:
        return float(stream.duration * stream.time_base)
    return 0.0


_NO_TIMESTAMPS = 0x0080   # AVFMT_NOTIMESTAMPS: the format stores no times (raw elementary streams)


def _what_it_is(path: str) -> str:
    """What a file no demuxer reads holds instead, when its first bytes say so: a failed download often
    saves a site's page or an object store's error under the video's name."""
    try:
        with open(path, "rb") as f:
            head = f.read(2048)
    except OSError:
        return ""
    if head[4:8] == b"ftyp":
        return _mp4_without_index(path)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:300]:
        return ("; it is an HTML page: a download that saved a site's page or error under the video's name, or a "
                "link to a video's page (YouTube, Vimeo, ...), which must be downloaded first (yt-dlp, video2dataset)")
    if text.startswith(b"#extm3u") or (b"<mpd" in text[:400] and b"urn:mpeg:dash" in text):
        return ("; it is a streaming playlist (HLS .m3u8 / DASH .mpd), which names a video's segments: save the "
                "stream as one file first (`ffmpeg -i URL -c copy out.mp4`, or yt-dlp)")
    if text.startswith(b"<?xml") and b"<error>" in text:
        code = re.search(rb"<code>([^<]{1,80})</code>", head, re.IGNORECASE)
        return (f"; it is an object store's XML error ({code.group(1).decode('utf-8', 'replace') if code else 'Error'}) "
                f"saved under the video's name")
    if text[:1] in (b"{", b"[") and head.rstrip()[-1:] in (b"}", b"]"):
        return "; it is a JSON document, not a video"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return "; it is a text file, not a video" if head and all(32 <= c or c in (9, 10, 13) for c in head) else ""


def _mp4_without_index(path: str) -> str:
    """An MP4 / MOV that no demuxer reads: whether its top-level boxes hold no `moov` (the index, written
    last unless the file was made with `-movflags +faststart`): a download or recording cut short."""
    from .mp4_boxes import MAX_BOXES, file_boxes, overrun

    size, boxes = file_boxes(path)
    if not boxes or any(b.kind == b"moov" for b in boxes):
        return ""
    last = boxes[-1]
    if last.start + last.length + 8 <= size and len(boxes) < MAX_BOXES:   # the walk met a length no box has: no MP4 there
        return ""
    cut = f", and its {last.kind.decode('latin-1')} box runs past the end of the file" if overrun(last, size) else ""
    return (f"; it is an MP4/MOV without its index: no moov box{cut}. A download or recording cut short loses the "
            "index, written last unless the file was made with `-movflags +faststart`")


def _box_cut_short(path: str) -> str:
    """The top-level MP4/MOV box that runs past the end of the file, said as a phrase, or "": the file was
    cut short (a download or recording that stopped early), whatever error the decoder then gives."""
    from .mp4_boxes import file_boxes, overrun

    try:
        size, boxes = file_boxes(path)
    except OSError:
        return ""
    last = boxes[-1] if boxes else None
    if last is None or not overrun(last, size):
        return ""
    return (f"its {last.kind.decode('latin-1')} box runs past the end of the file ({size - last.start} of its "
            f"{last.length} bytes are there)")


def probe_video(path: str, min_frames: int = 2, allow_audio_only: bool = False) -> dict:
    """Return probe columns for `path` (keys are vdata.schemas.records constants' values).

    Checks that the file is non-empty, is a media container, has a video stream whose first frame
    decodes, is not truncated (for indexed containers: the sample table must fit in the file), and has
    at least `min_frames` frames. With `allow_audio_only`, a file with audio but no video stream is
    probed as audio (see `_probe_audio_only`) instead of being rejected `no_video_stream`.
    """
    import av

    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise MediaError("missing_file", f"cannot read file {path}: {e.strerror}")
    if size == 0:
        raise MediaError("empty_file", "file is empty (0 bytes)")
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise MediaError("unreadable", f"not a readable media container ({type(e).__name__}: {e.strerror or e})"
                         + _what_it_is(path))
    with container:
        if container.format.flags & _NO_TIMESTAMPS:
            # a raw H.264 / HEVC / AV1 / MPEG elementary stream: the demuxer makes times up from a rate it
            # guesses (25 fps for a 30 fps recording), or has none at all, and cannot seek
            raise MediaError("no_container", f"a raw {container.format.name} elementary stream, in no container: it "
                             "has no timestamps and its frame rate is a guess; put it in one at its true rate, e.g. "
                             f"`ffmpeg -framerate 30 -i {os.path.basename(path)} -c copy OUT.mp4`")
        vs = video_stream(container)
        if vs is None:
            if allow_audio_only and container.streams.audio:
                return _probe_audio_only(container, size)
            kinds = sorted({"cover picture" if s.type == "video" else s.type for s in container.streams})
            raise MediaError("no_video_stream", f"no video stream (streams: {', '.join(kinds) or 'none'})")
        cc = vs.codec_context
        fmt = container.format.name or ""
        entries = _index(vs) if any(f in fmt.split(",") for f in _INDEXED_FORMATS) else None
        if entries is not None:
            end = int(max(e[0] + e[1] for e in entries)) if len(entries) else 0
            if end > size:
                raise MediaError("truncated", f"truncated: media data ends at byte {end} but file has {size} bytes")
            timestamps = np.array(sorted(e[2] for e in entries), dtype=np.float64) * float(vs.time_base)
            if len(timestamps) and timestamps[0] < float(vs.start_time or 0) * float(vs.time_base):
                # Index times are decode times; with reordered (B-) frames they start before the first shown
                # frame and say nothing of when frames are shown: a VFR slideshow read as 3 s apart, 20.6 s
                # long, where its frames show at 0, 3, ..., 12, 13, 14 s. The packets' own presentation times
                # cost a demux, about 2.5 ms per MB (10 ms for a 30 s 720p file here).
                timestamps = _demux_timestamps(container, vs)
        else:
            timestamps = _demux_timestamps(container, vs)
        num_frames = int(len(timestamps))
        first = _first_frame(container, vs)
        if num_frames < min_frames:
            image = fmt.removesuffix("_pipe") if fmt.endswith("_pipe") or fmt == "image2" else ""
            raise MediaError("too_few_frames", f"video has {num_frames} frame(s); at least {min_frames} needed"
                             + (f"; it is a still image ({image}), not a video" if image else ""))

        deltas = np.diff(timestamps)
        deltas = deltas[deltas > 0]
        avg_rate = frame_rate(vs) or 0.0
        if not avg_rate and len(deltas):
            avg_rate = 1.0 / float(np.median(deltas))
        is_vfr = bool(len(deltas) > 2 and (deltas.max() - deltas.min()) > 0.5 * float(np.median(deltas)))
        duration = declared_duration(container, vs)
        if len(timestamps) and is_vfr:
            # Neither the peak rate (an MKV declares no average: 30 fps for one averaging 15) nor a mean
            # interval tells how long the last picture shows (a slideshow's 1/0.44 fps: 2.3 s past its end)
            duration = _shown_until(container, vs, timestamps) - float(timestamps[0])
            avg_rate = num_frames / duration
        elif len(timestamps) and avg_rate:
            # The stream's own span is what frames can be read from (container duration may include audio).
            end, own = float(timestamps[-1]) + 1.0 / avg_rate, _stream_end(vs)
            if own is not None and timestamps[-1] < own < end:
                end = own   # a header's mean rate (a slideshow's 4 pictures / 9.04 s) put the end 2.3 s past it
            duration = end - float(timestamps[0])
        # the turn read from the display matrix (PyAV's angle took a plain mirror for a half turn); the mirror
        # itself has no column to go in yet
        rotation = frame_orientation(first).rotation
        width, height = display_size(vs, rotation)
        audio = audio_stream(container)
        return {
            "file_size": size,
            "duration_s": round(duration, 6),
            "fps": avg_rate,
            "is_vfr": is_vfr,
            "num_frames": num_frames,
            "width": width,
            "height": height,
            "rotation": rotation,
            "video_codec": cc.name,
            "pix_fmt": cc.pix_fmt,
            "bitrate": int(container.bit_rate or 0),
            "has_audio": audio is not None,
            "audio_codec": audio.codec_context.name if audio is not None else None,
            "audio_sample_rate": int(audio.codec_context.sample_rate or 0) if audio is not None else None,
            "audio_channels": int(audio.codec_context.channels or 0) if audio is not None else None,
        }


def _stream_end(vs) -> float | None:
    """When the stream says it ends (its start plus its own duration), or None where it does not say."""
    if not vs.duration:
        return None
    return float(((vs.start_time or 0) + vs.duration) * vs.time_base)


def _shown_until(container, vs, timestamps: np.ndarray) -> float:
    """When a variable-rate stream's last picture stops showing: the stream's own end where it lies past
    the last frame; else the container's where it lies past it by no more than the longest interval
    between two frames (beyond that, it is a longer audio track's); else one last interval on."""
    last, gaps, own = float(timestamps[-1]), np.diff(timestamps), _stream_end(vs)
    gaps = gaps[gaps > 0]   # a time written twice is no interval
    if own is not None and own > last:
        return own
    if container.duration:
        end = ((container.start_time or 0) + container.duration) / 1_000_000
        if last < end <= last + float(gaps.max()) + 1e-3:
            return end
    return last + float(gaps[-1])


def _index(vs):
    try:
        return [(e.pos, e.size, e.timestamp) for e in vs.index_entries if not e.is_discard]
    except Exception:
        return None


def _demux_timestamps(container, vs) -> np.ndarray:
    times, error, jump = packet_times(container, vs)   # a damaged tail: keep what demuxed before it
    if error is not None and not len(times):
        raise MediaError("unreadable", f"cannot demux video packets: {error}")
    if jump is not None:
        # Readers find frames by time, and here one time names two frames: seeks, frame choice and every
        # span would be wrong. Players and ffmpeg's own remux lay the second timeline after the first.
        packet, before, after = jump
        raise MediaError("timestamp_discontinuity",
                         f"video times jump back at packet {packet} ({before:.3f}s -> {after:.3f}s): the file joins "
                         f"recordings with separate timelines (MPEG-TS parts joined with cat, a broadcast splice); "
                         f"remux it so that its times run on, e.g. `ffmpeg -i IN -c copy OUT.mp4`")
    rewind(container)
    return times


def _first_frame(container, vs):
    import av

    error = None
    # Seeking to the stream's own start finds nothing in some MPEG-TS files; the container start does.
    for target in ([vs.start_time] if vs.start_time is not None else []) + [0]:
        try:
            container.seek(target, stream=vs)
            for frame in container.decode(vs):
                return frame
        except av.error.FFmpegError as e:
            error = e
    if error is not None:
        # an MP4 whose index (moov, written last) lost its tail opens, then fails with an unrelated OS error
        # ("[Errno 1] Operation not permitted", outside check h16): the boxes say what happened
        cut = _box_cut_short(container.name) if {"mp4", "mov"} & set((container.format.name or "").split(",")) else ""
        if cut:
            raise MediaError("truncated", f"the file is cut short: {cut}. A download or recording that stopped "
                             f"early; its first video frame does not decode ({error})")
        raise MediaError("undecodable", f"first video frame does not decode: {error}")
    raise MediaError("undecodable", "no video frame decodes")


def _probe_audio_only(container, size: int) -> dict:
    """An audio-only file (podcast, lecture): `has_video: False`, the audio facts, no video ones (None).
    Its first audio frame must decode, as a video's first frame must."""
    import av

    audio = audio_stream(container)
    cc = audio.codec_context
    try:
        first = next(iter(container.decode(audio)), None)
    except av.error.FFmpegError as e:
        raise MediaError("undecodable", f"first audio frame does not decode: {e}")
    if first is None:
        raise MediaError("undecodable", "audio-only file: no audio frame decodes")
    duration = declared_duration(container, audio)
    return {
        "file_size": size, "duration_s": round(duration, 6), "fps": None, "is_vfr": None, "num_frames": 0,
        "width": None, "height": None, "rotation": None, "video_codec": None, "pix_fmt": None,
        "bitrate": int(container.bit_rate or 0), "has_audio": True, "has_video": False,
        "audio_codec": cc.name, "audio_sample_rate": int(cc.sample_rate or 0), "audio_channels": int(cc.channels or 0),
    }
