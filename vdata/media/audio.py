"""Audio for speech recognition: the track a player plays, as 16 kHz mono float32 on the video's clock."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import MediaError
from .streams import audio_stream, video_stream

SAMPLE_RATE = 16000
# raised when what decode_audio gives for the same file changes (2: out-of-phase stereo kept, see _mono):
# the transcript cache is named by it
DECODE_VERSION = 2



def _mono(interleaved: np.ndarray) -> np.ndarray:
    """One channel of interleaved stereo: the sum of the two at -3 dB (libswresample's own mix, so levels are
    as before), except where the channels are out of phase (one wired inverted, a common fault of field and
    interview recordings), whose sum cancels the speech to silence: there their difference, which holds it.
    Judged per decoded frame (tens of ms), by energy: the difference must carry ten times the sum's, which
    in-phase speech and music never reach."""
    pairs = interleaved.reshape(-1, 2)
    mid = (pairs[:, 0] + pairs[:, 1]) * np.float32(math.sqrt(0.5))
    side = (pairs[:, 0] - pairs[:, 1]) * np.float32(math.sqrt(0.5))
    return side if float(side @ side) > 10.0 * float(mid @ mid) else mid


@dataclass
class DecodedAudio:
    samples: np.ndarray        # float32 mono at `sample_rate`
    sample_rate: int
    offset_s: float            # time of samples[0] on the video's clock (its first frame is 0)
    packets: int = 0
    failed_packets: int = 0
    codec: str | None = None

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def peak_dbfs(self) -> float:
        if not len(self.samples):
            return -math.inf
        peak = float(np.max(np.abs(self.samples)))
        return 20 * math.log10(peak) if peak > 0 else -math.inf


def decode_audio(path: str, sample_rate: int = SAMPLE_RATE, max_failed_ratio: float = 0.5,
                 language: str | None = None, track: int | None = None) -> DecodedAudio:
    """The audio track a player plays (the `track`-th, else one tagged in `language` first: see
    streams.audio_stream) as mono
    float32 at `sample_rate`, on the video's clock: time 0 is
    the first video frame, the origin every reader and stage uses (MPEG-TS starts its streams at 1.4 s
    or later, and a video track may start after its sound). A file without video keeps its own clock.

    A file without an audio stream gives an empty array. Packets that fail to decode leave silence of
    their length (later words keep their true times); when more than `max_failed_ratio` of the packets
    fail, or none decodes, the stream is corrupt: MediaError("corrupt_audio").
    """
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise MediaError("unreadable", f"cannot open media for audio: {e}")
    with container:
        stream = audio_stream(container, language, track)
        if stream is None:
            return DecodedAudio(np.zeros(0, np.float32), sample_rate, 0.0)
        video = video_stream(container)
        has_start = video is not None and video.start_time is not None
        origin = float(video.start_time * video.time_base) if has_start else 0.0
        codec = stream.codec_context.name
        def resampler_for(channels: int):
            # two channels are kept apart to be mixed here (see _mono); any other count is mixed by libswresample
            return av.AudioResampler(format="flt", layout="stereo" if channels == 2 else "mono", rate=sample_rate)

        resampler = resampler_for(stream.codec_context.channels)
        chunks: list[np.ndarray] = []
        written = 0                   # output samples so far
        offset: float | None = None
        packets = failed = 0
        max_gap = int(0.05 * sample_rate)   # above the resampler's own delay

        def push(frames) -> None:
            nonlocal written
            for out in frames:
                arr = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                if out.layout.nb_channels == 2:
                    arr = _mono(arr)
                chunks.append(arr)
                written += len(arr)

        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                packets += 1
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    failed += 1
                    continue
                for frame in frames:
                    t = frame.time
                    if offset is None:
                        offset = float(t) if t is not None else 0.0
                    elif t is not None:
                        gap = int(round((t - offset) * sample_rate)) - written
                        if gap > max_gap:   # lost packets: keep the timeline
                            chunks.append(np.zeros(gap, np.float32))
                            written += gap
                    try:
                        push(resampler.resample(frame))
                    except ValueError:      # the stream changed layout/rate mid-way: start a new resampler
                        push(resampler.resample(None))
                        resampler = resampler_for(frame.layout.nb_channels)
                        push(resampler.resample(frame))
            push(resampler.resample(None))
        except av.error.FFmpegError as e:   # a damaged container tail: keep what decoded before it
            if not written:
                raise MediaError("corrupt_audio", f"audio stream ({codec}) cannot be read: {e}",
                                 {"codec": codec, "packets": packets, "failed_packets": failed})
    if packets and (failed > max_failed_ratio * packets or (not written and failed)):
        raise MediaError("corrupt_audio", f"audio stream ({codec}) does not decode: {failed} of {packets} packets failed",
                         {"codec": codec, "packets": packets, "failed_packets": failed,
                          "max_failed_packet_ratio": max_failed_ratio})
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return DecodedAudio(samples, sample_rate, (offset or 0.0) - origin, packets, failed, codec)


