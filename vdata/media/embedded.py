"""Annotations a video file carries inside its container: chapters, text subtitle tracks, title and
description. yt-dlp writes all four into the file with `--embed-chapters --embed-subs --embed-metadata`
(and MKV/MP4 exports of editors and players do the same), so a folder of downloads often has no sidecar
files at all.

Chapters, metadata and subtitle tracks come from PyAV: libavcodec decodes every text format (SubRip,
WebVTT, ASS/SSA, MP4's mov_text) to ASS dialogue, whose tags pysubs2 takes out as it does a sidecar's.
Picture-based subtitles (DVD, Blu-ray bitmaps) carry no text and are left out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .streams import COMMENT, FORCED, HEARING_IMPAIRED, iso_639_1, video_stream
from .subtitles import ChapterMark, ParseProblem, Parsed, decode_as, decode_text, is_spoken, plain_lines, unrolled

TEXT_SUBTITLE_CODECS = {"subrip", "srt", "webvtt", "ass", "ssa", "mov_text", "text", "microdvd", "subviewer"}
_SUBRIP = {"subrip", "srt", "text"}   # packets of plain SubRip text: readable without libavcodec
# what a track's title says of it where the muxer set no disposition (mkvmerge users, yt-dlp, HandBrake)
_TITLE_FORCED = re.compile(r"\bforced\b|\bsigns?\b|\bforeign\b", re.I)
_TITLE_SDH = re.compile(r"\bsdh\b|\bcc\b|hearing|\bhi\b|\bdeaf\b", re.I)
_TITLE_COMMENTARY = re.compile(r"comment", re.I)


@dataclass(frozen=True)
class SubtitleTrack:
    index: int             # the stream's index in the container (ffmpeg's -map 0:<index>)
    language: str | None   # ISO 639-1 ("en") where the track names a language ffmpeg-style ("eng") or so
    codec: str
    disposition: int = 0   # ffmpeg's flags: forced, hearing_impaired, comment, ...
    title: str = ""

    @property
    def rank(self) -> int:
        """0: the full dialogue; 1: for the hard of hearing (the dialogue and sounds); 2: forced (only the
        foreign-language lines); 3: a commentary (not the video's speech at all). As sidecars are ranked."""
        if self.disposition & COMMENT or _TITLE_COMMENTARY.search(self.title):
            return 3
        if self.disposition & FORCED or _TITLE_FORCED.search(self.title):
            return 2
        return 1 if self.disposition & HEARING_IMPAIRED or _TITLE_SDH.search(self.title) else 0


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
                                    " ".join(str(c.get("metadata", {}).get("title", "")).split()),
                                    round(float(c["end"] * c["time_base"]) - start, 6) if c.get("end") else None)
                        for c in container.chapters()]
            tracks = [SubtitleTrack(s.index, iso_639_1(s.metadata.get("language")), s.codec.name, int(s.disposition),
                                    str(s.metadata.get("title") or ""))
                      for s in container.streams.subtitles if s.codec.name in TEXT_SUBTITLE_CODECS]
            track = pick_track(tracks, languages) if languages is not None else None
            subtitles = _read_track(container, track, start) if track is not None else None
    except (av.error.FFmpegError, ValueError, TypeError):
        return Embedded()
    description = next((meta[k] for k in ("description", "synopsis") if meta.get(k, "").strip()), None)
    return Embedded(title=meta.get("title") or None, description=description, chapters=chapters or None,
                    subtitles=subtitles)


def pick_track(tracks: list[SubtitleTrack], languages: list[str]) -> SubtitleTrack | None:
    """The best track (`SubtitleTrack.rank`: a full one before one for the hard of hearing, a forced
    one, a commentary; then file order) in the first preferred language; else of the tracks that name
    no language; else of all. (A sidecar chooses the same way: `<stem>.<lang>.srt` in preference order,
    `.sdh` and `.forced` ones last in their language, then the rest.)"""
    def best(some: list[SubtitleTrack]) -> SubtitleTrack | None:
        return min(some, key=lambda t: (t.rank, tracks.index(t)), default=None)

    for lang in languages:
        found = best([t for t in tracks if t.language == iso_639_1(lang)])
        if found is not None:
            return found
    return best([t for t in tracks if t.language is None]) or best(tracks)


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
        packets = [p for p in container.demux(stream) if p.pts is not None]
        payloads = [bytes(p) for p in packets]
        starts = [p.pts * tb - video_start_s for p in packets]
        times = [(round(t, 6), round(t + (p.duration or 0) * tb, 6)) for t, p in zip(starts, packets)]
        if track.codec in _SUBRIP and not _utf8(payloads):
            return _raw_subrip(track, payloads, times)
        for packet, (start, end) in zip(packets, times):
            # an ASS packet holds the event's fields (ReadOrder, Layer, Style, Name, ..., Text): its style
            # tells signs and songs from dialogue, as in a sidecar script
            fields = bytes(packet).decode("utf-8", errors="replace").split(",", 8) if ass else []
            style = fields[2] if len(fields) == 9 else "Default"
            for sub in packet.decode():
                event = pysubs2.SSAEvent(text=sub.dialogue.decode("utf-8", errors="replace"), style=style)
                lines = plain_lines(event) if is_spoken(event) else []
                if lines:
                    shown.append((start, end, lines))
    except av.error.FFmpegError as e:
        problem = ParseProblem("subtitle_track_unreadable", f"subtitle track {track.index} ({track.codec}): {e}", "")
        return Parsed(items=unrolled(shown), problems=[problem], format=track.codec)
    # yt-dlp --embed-subs puts YouTube's rolling automatic captions in the file as they are
    return Parsed(items=unrolled(shown), format=track.codec)


def _utf8(payloads: list[bytes]) -> bool:
    try:
        for payload in payloads:
            payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _raw_subrip(track: SubtitleTrack, payloads: list[bytes], times: list[tuple[float, float]]) -> Parsed:
    """A SubRip track that is not UTF-8 (the Matroska spec wants UTF-8; some muxers copy a Windows code
    page file as it is): libavcodec's decoder rejects such a packet, which lost every cue. Its packets are
    plain SubRip text, read here with the charset fallback a sidecar gets (`decode_text` over the whole
    track: one packet is too short to tell a code page by), their tags taken out by pysubs2."""
    import pysubs2

    decoded = decode_text(b"\n".join(payloads))
    shown = []
    for payload, (start, end) in zip(payloads, times):
        text = "\n".join(line for line in decode_as(payload, decoded.encoding).splitlines() if line.strip())
        events = pysubs2.SSAFile.from_string(f"1\n00:00:00,000 --> 00:00:01,000\n{text}\n", format_="srt").events
        lines = [line for event in events for line in plain_lines(event)]
        if lines:
            shown.append((start, end, lines))
    problem = ParseProblem("subtitle_encoding_repaired", f"subtitle track {track.index} ({track.codec}) is not UTF-8: "
                           f"read as {decoded.encoding}", "", dropped=False)
    return Parsed(items=unrolled(shown), problems=[problem], format=track.codec)
