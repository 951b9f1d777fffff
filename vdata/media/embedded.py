"""Annotations a video file carries inside its container: chapters, text subtitle tracks, title and
description. yt-dlp writes all four into the file with `--embed-chapters --embed-subs --embed-metadata`
(and MKV/MP4 exports of editors and players do the same), so a folder of downloads often has no sidecar
files at all.

Chapters, metadata and subtitle tracks come from PyAV: libavcodec decodes every text format (SubRip,
WebVTT, ASS/SSA, MP4's mov_text) to ASS dialogue, whose tags pysubs2 takes out as it does a sidecar's.
Picture-based subtitles (DVD, Blu-ray bitmaps) carry no text and are left out.
"""
from __future__ import annotations

from dataclasses import dataclass

from .streams import iso_639_1, video_stream
from .subtitles import ChapterMark, ParseProblem, Parsed, is_spoken, plain_lines, unrolled

TEXT_SUBTITLE_CODECS = {"subrip", "srt", "webvtt", "ass", "ssa", "mov_text", "text", "microdvd", "subviewer"}


@dataclass(frozen=True)
class SubtitleTrack:
    index: int             # the stream's index in the container (ffmpeg's -map 0:<index>)
    language: str | None   # ISO 639-1 ("en") where the track names a language ffmpeg-style ("eng") or so
    codec: str


@dataclass
class Embedded:
    title: str | None = None
    description: str | None = None
    chapters: list[ChapterMark] | None = None
    subtitles: Parsed | None = None      # the chosen text subtitle track's cues, on the video's clock


def read_embedded(path: str, languages: list[str] | None) -> Embedded:
    """What the container says, from one open: tags, chapters, and the text subtitle track `pick_track`
    chooses for `languages` (None: no track is read). Times are on the video's clock (its first frame is
    0), as frames and speech are. An unreadable file says nothing (probe reports why it cannot be read)."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            meta = {k.lower(): v for k, v in container.metadata.items()}
            video = video_stream(container)
            start = float(video.start_time * video.time_base) if video is not None and video.start_time else 0.0
            chapters = [ChapterMark(round(float(c["start"] * c["time_base"]) - start, 6),
                                    " ".join(str(c.get("metadata", {}).get("title", "")).split()))
                        for c in container.chapters()]
            tracks = [SubtitleTrack(s.index, iso_639_1(s.metadata.get("language")), s.codec.name)
                      for s in container.streams.subtitles if s.codec.name in TEXT_SUBTITLE_CODECS]
            track = pick_track(tracks, languages) if languages is not None else None
            subtitles = _read_track(container, track, start) if track is not None else None
    except (av.error.FFmpegError, ValueError, TypeError):
        return Embedded()
    description = next((meta[k] for k in ("description", "synopsis") if meta.get(k, "").strip()), None)
    return Embedded(title=meta.get("title") or None, description=description, chapters=chapters or None,
                    subtitles=subtitles)


def pick_track(tracks: list[SubtitleTrack], languages: list[str]) -> SubtitleTrack | None:
    """The first track in the first preferred language; else a track that names no language; else the
    first. (A sidecar chooses the same way: `<stem>.<lang>.srt` in preference order, then the rest.)"""
    for lang in languages:
        for track in tracks:
            if track.language == iso_639_1(lang):
                return track
    return next((t for t in tracks if t.language is None), tracks[0] if tracks else None)


def _read_track(container, track: SubtitleTrack, video_start_s: float) -> Parsed:
    """The cues of one text subtitle track, `video_start_s` (the video's first frame on the container's
    clock) taken off their times. libavcodec's subtitle decoders turn every text format into ASS dialogue;
    pysubs2 takes its tags out as it does a sidecar's. In process: an ffmpeg process per video converting
    the track to SRT ran the stage at 34 videos/s, 0.06x PyAV reading the same packets
    (bench/bench_annotations.py)."""
    import av
    import pysubs2

    shown = []   # (start, end, lines as shown) per cue
    ass = track.codec in ("ass", "ssa")
    stream = container.streams[track.index]
    tb = float(stream.time_base)
    try:
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            start = packet.pts * tb - video_start_s
            end = start + (packet.duration or 0) * tb
            # an ASS packet holds the event's fields (ReadOrder, Layer, Style, Name, ..., Text): its style
            # tells signs and songs from dialogue, as in a sidecar script
            fields = bytes(packet).decode("utf-8", errors="replace").split(",", 8) if ass else []
            style = fields[2] if len(fields) == 9 else "Default"
            for sub in packet.decode():
                event = pysubs2.SSAEvent(text=sub.dialogue.decode("utf-8", errors="replace"), style=style)
                lines = plain_lines(event) if is_spoken(event) else []
                if lines:
                    shown.append((round(start, 6), round(end, 6), lines))
    except av.error.FFmpegError as e:
        problem = ParseProblem("subtitle_track_unreadable", f"subtitle track {track.index} ({track.codec}): {e}", "")
        return Parsed(items=unrolled(shown), problems=[problem], format=track.codec)
    # yt-dlp --embed-subs puts YouTube's rolling automatic captions in the file as they are
    return Parsed(items=unrolled(shown), format=track.codec)
