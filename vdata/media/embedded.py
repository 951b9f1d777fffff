"""Annotations a video file carries inside its container: chapters, text subtitle tracks, title and
description. yt-dlp writes all four into the file with `--embed-chapters --embed-subs --embed-metadata`
(and MKV/MP4 exports of editors and players do the same), so a folder of downloads often has no sidecar
files at all.

Chapters and metadata come from PyAV. A subtitle track is turned into SRT by ffmpeg's own converters
(SubRip, WebVTT, ASS/SSA and MP4's mov_text alike), then parsed like a sidecar file. Picture-based
subtitles (DVD, Blu-ray bitmaps) carry no text and are left out.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

from .ffmpeg import ffmpeg_exe
from .streams import video_stream
from .subtitles import ChapterMark, Cue, Parsed, parse_subtitles

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
    subtitle_tracks: list[SubtitleTrack] | None = None
    # the video's first frame on the container's clock: subtracted from chapter and cue times, so that
    # they are on the video's clock (its first frame is 0) as frames and speech are
    video_start_s: float = 0.0


def read_embedded(path: str) -> Embedded:
    """What the container says; an unreadable file says nothing (probe reports why it cannot be read)."""
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
    except (av.error.FFmpegError, ValueError, TypeError):
        return Embedded()
    description = next((meta[k] for k in ("description", "synopsis") if meta.get(k, "").strip()), None)
    return Embedded(title=meta.get("title") or None, description=description, chapters=chapters or None,
                    subtitle_tracks=tracks or None, video_start_s=start)


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


def pick_track(tracks: list[SubtitleTrack], languages: list[str]) -> SubtitleTrack | None:
    """The first track in the first preferred language; else a track that names no language; else the
    first. (A sidecar chooses the same way: `<stem>.<lang>.srt` in preference order, then the rest.)"""
    for lang in languages:
        for track in tracks:
            if track.language == iso_639_1(lang):
                return track
    return next((t for t in tracks if t.language is None), tracks[0] if tracks else None)


def read_subtitle_track(path: str, track: SubtitleTrack, video_start_s: float = 0.0, timeout_s: float = 120) -> Parsed:
    """The cues of one text subtitle track, converted to SRT by ffmpeg and parsed as a sidecar is, moved
    onto the video's clock (`Embedded.video_start_s`)."""
    # -copyts: cue times on the container's clock, as they are stored (not moved to start at 0)
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-copyts", "-i", path,
                           "-map", f"0:{track.index}", "-c:s", "srt", "-f", "srt", "-"],
                          capture_output=True, timeout=timeout_s)
    if proc.returncode != 0:
        from .subtitles import ParseProblem

        tail = " | ".join(proc.stderr.decode(errors="replace").strip().splitlines()[-2:])
        return Parsed(problems=[ParseProblem("subtitle_track_unreadable",
                                             f"subtitle track {track.index} ({track.codec}): {tail}", "")])
    parsed = parse_subtitles(proc.stdout.decode("utf-8", errors="replace"), "srt")
    if video_start_s:
        parsed.items = [Cue(round(c.start_s - video_start_s, 6), round(c.end_s - video_start_s, 6), c.text)
                        for c in parsed.items]
    return parsed
