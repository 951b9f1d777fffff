"""Frame decoding behind one interface, with decord and PyAV backends.

`read_at` fetches sparse frames by timestamp (sampling for captions and quality); `iter_frames`
streams every frame of a span at reduced size (shot detection, motion). The default backend per use is
the faster one measured in bench/bench_frames.py and bench/bench_shots.py: PyAV for sparse reads (its
decoder skips the non-reference pictures shown before each target: 1.4x decord's speed on the frames
stage's 720p clips), OpenCV's capture (threaded decode and colour conversion in C++) for streams.

Readers check what they get back. decord reads some containers wrongly without an error (an AVI with
H.264 B-frames comes back with timestamps of about -3.7e17 s, so every request maps to one frozen frame),
and fails outright on damaged packets; in both cases the decord reader hands over to PyAV. PyAV skips
packets that do not decode and counts them in `decode_errors`, so stages can say how damaged a file is.
OpenCV's capture hands over to PyAV where its own FFmpeg decodes no frame (AV1) or cannot convert
interlaced pictures (it returns black or stale buffers).

Pictures come as a player shows them: upright where a display matrix turns them (a phone's portrait
video; `width` and `height` are the upright size), mirrored where it mirrors them (a front camera's), and
PyAV's RGB stills of HDR video tone mapped to SDR. decord and OpenCV turn a picture by the matrix's angle
alone, which for a mirror is a half turn (upside down): a mirrored video goes to PyAV.
"""
from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import numpy as np

from vdata.hdr import rgb24

from . import MediaError
from .streams import (decoded_size, display_size, frame_rate, pixel_aspect, rewind, scaled_size, skips_per_packet,
                      square_pixels, upright, video_facts, video_stream, video_stream_count)
from .timestamps import (display_orientation, display_times_unreliable, frame_shown_at,  # noqa: F401
                         returned_times_problem, timestamp_table_problem)

BACKENDS = ("decord", "pyav", "opencv")


class ImplausibleRead(Exception):
    """A backend returned frames whose timestamps cannot be right; another backend must read the file."""


class FrameReader:
    """Base class: subclasses fill in the two read methods and the metadata attributes."""

    backend = ""
    fps: float
    num_frames: int
    width: int
    height: int
    # degrees the stored picture is turned (counter-clockwise) to come out upright; decord turns it
    # without saying so, and its readers keep 0
    rotation: int = 0
    mirrored: bool = False   # flipped left to right after the turn (a front camera's display matrix)
    # Times (s) of packets that failed to decode so far; only PyAV can see them (OpenCV stops at
    # the first one, decord raises).
    decode_errors: list[float]
    # Why this reader is not the backend that was asked for (e.g. decord's timestamps were absurd).
    fallback_reason: str | None = None

    def read_at(self, times_s: Sequence[float], max_side: int | None = None,
                on_frame=None) -> list[tuple[float, np.ndarray]]:
        """RGB frames nearest to each time (video-absolute seconds), with their own timestamps.
        `on_frame(k, image)` is called as the frame for `times_s[k]` is ready, so that a caller can
        start work on it while later frames decode (PyAV releases the GIL in the decoder)."""
        raise NotImplementedError

    def iter_frames(self, start_s: float = 0.0, end_s: float | None = None, max_side: int | None = None,
                    fmt: str = "bgr24") -> Iterator[tuple[int, float, np.ndarray]]:
        """Every frame in [start_s, end_s): (frame index, timestamp, array in `fmt`)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Decoder threads per reader; 0 = the library's default (one per core). Workers set it to the CPUs the
# runner gave their stage, so that N workers on N cores do not each spin up N decode threads.
_DECODE_THREADS = 0


def set_decode_threads(n: int) -> None:
    """Cap the decode threads of readers opened in this process (and OpenCV's own thread pool)."""
    global _DECODE_THREADS
    _DECODE_THREADS = max(0, int(n))
    if _DECODE_THREADS:
        import cv2

        cv2.setNumThreads(_DECODE_THREADS)


class DecordReader(FrameReader):
    backend = "decord"

    def __init__(self, path: str, max_side: int | None = None, threads: int = 0):
        import decord

        orientation = display_orientation(path, PyAVReader._CHECK_FRAMES)
        if orientation.mirrored:
            raise ImplausibleRead("decord turns a mirrored picture by its display matrix's angle alone")
        try:
            probe = decord.VideoReader(path, num_threads=1)
            w, h = probe[0].shape[1], probe[0].shape[0]
            del probe
            w, h = square_pixels(w, h, pixel_aspect(path), orientation.rotation)
            sw, sh = scaled_size(w, h, max_side)   # decord turns the picture upright itself, and scales to this
            self._vr = decord.VideoReader(path, width=sw, height=sh, num_threads=threads or _DECODE_THREADS)
        except Exception as e:  # decord raises its own DECORDError and RuntimeError
            raise MediaError("unreadable", f"decord cannot open video: {str(e).splitlines()[0][:200]}")
        self.width, self.height = w, h
        self.num_frames = len(self._vr)
        self.fps = float(self._vr.get_avg_fps())
        self._times = self._vr.get_frame_timestamp(range(self.num_frames))[:, 0].astype(np.float64)
        self.decode_errors = []
        self._path = path
        self._fallback: PyAVReader | None = None
        problem = timestamp_table_problem(self._times, self.fps)
        if problem:
            raise ImplausibleRead(f"decord frame timestamps are wrong: {problem}")

    def _indices_for(self, times_s: Sequence[float]) -> np.ndarray:
        idx = np.searchsorted(self._times, np.asarray(times_s, dtype=np.float64) + 1e-6, side="right") - 1
        return np.clip(idx, 0, self.num_frames - 1)

    def read_at(self, times_s, max_side=None, on_frame=None):
        if self._fallback is not None:
            return self._fallback.read_at(times_s, max_side, on_frame)
        idx = self._indices_for(times_s)
        try:
            frames = self._vr.get_batch(list(idx)).asnumpy()
        except Exception as e:  # decord's DECORDError on a packet that does not decode
            return self._hand_over(f"decord failed: {str(e).splitlines()[-1][:160]}").read_at(times_s, max_side, on_frame)
        out = [(float(self._times[i]), _resize(frame, max_side)) for i, frame in zip(idx, frames)]
        span = (float(self._times[0]), float(self._times[-1]))
        # the frame at or before each time is right by construction, however far apart VFR frames are
        gap = float(np.diff(self._times).max()) if self.num_frames > 1 else 0.0
        tol = max(gap, 1.0 / self.fps if self.fps > 0 else 0.0) + 1e-3
        problem = returned_times_problem(times_s, [t for t, _ in out], self.fps, span, tolerance_s=tol)
        if problem:
            return self._hand_over(f"decord returned wrong frames: {problem}").read_at(times_s, max_side, on_frame)
        if on_frame is not None:
            for k, (_, image) in enumerate(out):
                on_frame(k, image)
        return out

    def _hand_over(self, why: str) -> "PyAVReader":
        self._fallback = PyAVReader(self._path)
        self._fallback.fallback_reason = why
        self.fallback_reason = why
        self.backend = self._fallback.backend   # what actually reads from now on
        self.decode_errors = self._fallback.decode_errors   # the same list: errors seen from now on
        return self._fallback

    def iter_frames(self, start_s=0.0, end_s=None, max_side=None, fmt="bgr24"):
        import cv2

        first = int(self._indices_for([start_s])[0])
        last = self.num_frames if end_s is None else int(np.searchsorted(self._times, end_s - 1e-6))
        self._vr.seek(first)
        for i in range(first, last):
            frame = _resize(self._vr.next().asnumpy(), max_side)
            if fmt == "bgr24":
                frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            elif fmt == "gray":
                frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            yield i, float(self._times[i]), frame

    def close(self):
        self._vr = None
        if self._fallback is not None:
            self._fallback.close()


class PyAVReader(FrameReader):
    """PyAV decoding. Times are seconds from the stream's first frame (as decord and OpenCV give them).

    Containers without presentation timestamps (AVI with B-frames: frames come out in display order
    but carry decode-order times, 0.04, 0.12, 0.16, 0.08, ...) are read in *counted* mode: a frame's
    time is its display position / fps, and reads decode forward from the start instead of seeking.
    """

    backend = "pyav"
    # frames decoded at open to see whether the container's timestamps can be trusted
    _CHECK_FRAMES = 8

    def __init__(self, path: str, threads: str = "AUTO"):
        import av

        try:
            self._container = av.open(path, metadata_errors="ignore")
            self._stream = video_stream(self._container)
        except av.error.FFmpegError as e:
            raise MediaError("unreadable", f"PyAV cannot open video: {e}")
        if self._stream is None:
            self._container.close()
            raise MediaError("no_video_stream", "PyAV finds no video stream")
        self._stream.thread_type = threads
        if _DECODE_THREADS:
            self._stream.codec_context.thread_count = _DECODE_THREADS
        cc = self._stream.codec_context
        # the same remembered decode as _counted
        self.rotation, self.mirrored = display_orientation(path, self._CHECK_FRAMES)
        self.width, self.height = display_size(self._stream, self.rotation)
        self.fps = frame_rate(self._stream) or 25.0
        self.num_frames = int(self._stream.frames or 0)
        self._tb = float(self._stream.time_base)
        self._start = float(self._stream.start_time or 0) * self._tb
        self.decode_errors = []
        self.first_unsound_s: float | None = None
        self.concealed: list[float] = []   # times of frames the decoder concealed damage in (its corrupt flag)
        self._counted = display_times_unreliable(path, self._CHECK_FRAMES)
        # read_at decodes towards a target with the decoder skipping non-reference pictures shown
        # before it: nothing depends on them, and they are ~45% of x264's frames (bench_quality).
        self._skip_before: float | None = None
        self._skipping = False
        self._skips = skips_per_packet(self._stream.codec_context)
        self._reformatter = av.video.reformatter.VideoReformatter()
        span = self._stream.duration * self._tb if self._stream.duration else (self._container.duration or 0) / 1e6
        self._skip_until = span - 1.0   # near the end read_at may fall back to the last frame shown
        self._moved = False   # packets were read: the container is no longer at its start

    def _decode_packets(self):
        """(time, frame) from the current position (the start, in counted mode); a packet that does
        not decode is counted in `decode_errors` and skipped (the decoder conceals what depends on it)."""
        import av

        previous: float | None = None   # time of the packet decoded last
        count = 0
        self._moved = True
        for packet in self._container.demux(self._stream):
            t = packet.pts if packet.pts is not None else packet.dts
            at = round(float(t) * self._tb - self._start, 6) if t is not None else None
            skip = self._skip_before is not None and packet.pts is not None and at < self._skip_before
            if skip != self._skipping and self._skips:
                self._stream.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
                self._skipping = skip
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                if not self.decode_errors and previous is not None:
                    # Damaged bytes rarely start on a packet boundary: the packet before the first
                    # failure may hold their start and decode to a wrong picture without an error.
                    self.first_unsound_s = previous if self.first_unsound_s is None else min(self.first_unsound_s, previous)
                if (at if at is not None else -1.0) not in self.decode_errors:   # read_at may re-decode after a seek
                    self.decode_errors.append(at if at is not None else -1.0)
                continue
            previous = at if at is not None else previous
            for frame in frames:
                ft = count / self.fps if self._counted else _time(frame) - self._start
                count += 1
                if frame.is_corrupt:
                    self.concealed.append(ft)
                if self.decode_errors:
                    # Frames decoded after a failed packet may be concealed guesses, even ones shown
                    # before it (B-frames that reference it).
                    self.first_unsound_s = ft if self.first_unsound_s is None else min(self.first_unsound_s, ft)
                yield ft, frame

    def _decode_from(self, t: float):
        """(time, frame) from the keyframe at or before t onwards (from the start in counted mode)."""
        if self._counted:
            rewind(self._container)
            return self._decode_packets()
        target = int(max(0.0, t) / self._tb) + (self._stream.start_time or 0)
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        frames = self._decode_packets()
        first = next(frames, None)
        if first is None or first[0] > t + 0.5 / self.fps:
            # Containers without an index (MPEG-TS) seek to a packet that is not a keyframe: nothing
            # decodes from there, so decode from the start instead.
            rewind(self._container)
            return self._decode_packets()
        return itertools.chain([first], frames)

    def _convert(self, frame, width: int, height: int, fmt: str) -> np.ndarray:
        """Through one reformatter kept per reader: its scaler is set up once, where each to_ndarray
        sets up its own (0.63 against 1.28 ms a 720p frame to 360 px, the same pixels)."""
        if fmt == "rgb24":   # an HDR frame tone mapped, as a player shows it on an SDR screen
            return rgb24(frame, width, height, self._reformatter)
        return self._reformatter.reformat(frame, width, height, fmt).to_ndarray()

    def _picture(self, frame, width: int, height: int) -> np.ndarray:
        """An RGB still. An interlaced frame (broadcast, DV) holds two fields 1/50 s apart: scaled whole,
        anything moving is combed, which a model sees and which inflates sharpness. Its top field alone
        (every other line) is the still instead, as a player's simplest deinterlacer shows it."""
        if not frame.interlaced_frame:
            return self._convert(frame, width, height, "rgb24")
        import cv2

        field = self._convert(frame, width, frame.height, "rgb24")[0::2]
        shrink = height <= len(field)
        return cv2.resize(field, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def read_at(self, times_s, max_side=None, on_frame=None):
        w, h = decoded_size(self.width, self.height, self.rotation, max_side)
        order = np.argsort(times_s)
        results: dict[int, tuple[float, np.ndarray]] = {}
        # half a frame: at 24 fps and up, the frame nearest each time; below (variable-rate video whose
        # mean rate says little, a slideshow), the frame being shown then unless one starts just after
        half = 0.5 / max(self.fps, 24.0)
        frames = None
        pending = None  # a decoded frame that may also serve the next target
        prev = None     # the frame decoded before `pending`: shown until `pending`'s time
        last_t = None
        for k in order:
            t = float(times_s[k])
            # Seek only when the next target is far ahead: decoding forward is cheaper than a seek
            # into a long GOP. In counted mode only going back needs a new pass from the start.
            if frames is None or last_t is None or t < last_t or (t - last_t > 2.0 and not self._counted):
                frames, pending, prev = self._decode_from(t), None, None
            skip_ok = not self._counted and t < self._skip_until
            # unreferenced pictures a mean interval before `t` are skipped (a held one is decoded again below)
            self._skip_before = t - 1.0 / self.fps - 1e-3 if skip_ok else None
            chosen, pending, prev = frame_shown_at(t, half, frames, pending, prev)
            if chosen is not None and chosen is prev and self._skip_before is not None and chosen[0] < self._skip_before:
                # A picture held from well before `t` (variable rate): the frames skipped while decoding
                # towards `t` (non-reference pictures) may include the one shown at `t`. Decode again in full.
                self._skip_before = None
                frames = self._decode_from(t)
                chosen, pending, prev = frame_shown_at(t, half, frames, None, None)
            if chosen is None:
                raise MediaError("undecodable", f"no frame decodes at {t:.3f}s")
            self._skip_before = None
            results[int(k)] = (chosen[0], upright(self._picture(chosen[1], w, h), self.rotation, self.mirrored))
            if on_frame is not None:
                on_frame(int(k), results[int(k)][1])
            last_t = chosen[0]
        return [results[i] for i in range(len(times_s))]

    def iter_frames(self, start_s=0.0, end_s=None, max_side=None, fmt="bgr24"):
        from .convert import small_bgr
        w, h = decoded_size(self.width, self.height, self.rotation, max_side)
        from_start = start_s <= 0 or self._counted
        if from_start and self._moved and not self._counted:   # after a read_at: from the first frame again
            rewind(self._container)
        frames = self._decode_from(0.0) if self._counted else (
            self._decode_packets() if from_start else self._decode_from(start_s))
        count = 0
        for t, frame in frames:
            if t + 1e-6 < start_s:
                count += 1
                continue
            if end_s is not None and t >= end_s - 1e-6:
                break
            # From the start, the decode order count is the exact frame index (also for VFR video);
            # after a seek, the index can only be derived from the time.
            index = count if from_start else int(round(t * self.fps))
            count += 1
            image = small_bgr(frame, w, h) if fmt == "bgr24" else self._convert(frame, w, h, fmt)
            yield index, t, upright(image, self.rotation, self.mirrored)

    def close(self):
        self._container.close()


class OpenCVReader(FrameReader):
    """Sequential streaming through cv2.VideoCapture: decode and BGR conversion stay in C++ threads."""

    backend = "opencv"

    def __init__(self, path: str):
        import cv2

        if display_orientation(path, PyAVReader._CHECK_FRAMES).mirrored:
            raise MediaError("unreadable", "OpenCV turns a mirrored picture by its display matrix's angle alone")
        self._cap = (cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, _DECODE_THREADS])
                     if _DECODE_THREADS else cv2.VideoCapture(path))
        if not self._cap.isOpened():
            raise MediaError("unreadable", "OpenCV cannot open video")
        # OpenCV's scaler fails on interlaced pictures, giving black or stale buffers without an error, and
        # its own FFmpeg lacks some decoders PyAV's has (AV1 in software: it opens the file, reports 300
        # frames, then reads none): ask PyAV first, then read the first frame now, so that open_reader can
        # fall back to PyAV
        facts = video_facts(path)
        ok, self._first = (False, None) if facts.interlaced else self._cap.read()
        if not ok:
            self._cap.release()
            raise MediaError("undecodable", "OpenCV's FFmpeg cannot convert interlaced pictures" if facts.interlaced
                             else "OpenCV's FFmpeg decodes no frame of this stream")
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        # OpenCV reports the stream's average rate as it is, 60000 for a DV tape: the rate PyAV's streams.frame_rate reads
        self.fps = facts.fps or float(self._cap.get(cv2.CAP_PROP_FPS) or 25.0)
        self.num_frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.rotation = -int(self._cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360   # OpenCV counts clockwise
        sar = (self._cap.get(cv2.CAP_PROP_SAR_NUM) or 1) / (self._cap.get(cv2.CAP_PROP_SAR_DEN) or 1)
        self.width, self.height = square_pixels(self.width, self.height, sar, self.rotation)
        self.decode_errors = []

    def read_at(self, times_s, max_side=None, on_frame=None):
        import cv2

        out = []
        w, h = scaled_size(self.width, self.height, max_side)
        self._first = None
        for k, t in enumerate(times_s):
            self._cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, float(t)) * 1000.0)
            ok, frame = self._cap.read()
            if not ok:
                raise MediaError("undecodable", f"no frame decodes at {t:.3f}s")
            ts = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if frame.shape[:2] != (h, w):
                frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
            out.append((ts, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
            if on_frame is not None:
                on_frame(k, out[-1][1])
        return out

    def iter_frames(self, start_s=0.0, end_s=None, max_side=None, fmt="bgr24"):
        import cv2

        w, h = scaled_size(self.width, self.height, max_side)
        if start_s > 0:
            self._cap.set(cv2.CAP_PROP_POS_MSEC, start_s * 1000.0)
            self._first = None
        index = int(round(start_s * self.fps)) if start_s > 0 else 0
        while True:
            ok, frame = (True, self._first) if self._first is not None else self._cap.read()   # read on opening
            self._first = None
            if not ok:
                break
            t = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0   # the frame just read
            if end_s is not None and t >= end_s - 1e-6:
                break
            if frame.shape[:2] != (h, w):
                frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
            if fmt == "rgb24":
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            elif fmt == "gray":
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            yield index, t, frame
            index += 1

    def close(self):
        self._cap.release()


def _time(frame) -> float:
    return float(frame.time) if frame.time is not None else 0.0


def _resize(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    if not max_side or max(frame.shape[:2]) <= max_side:
        return frame
    import cv2

    w, h = scaled_size(frame.shape[1], frame.shape[0], max_side)
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)


def open_reader(path: str, backend: str = "auto", purpose: str = "sparse", max_side: int | None = None) -> FrameReader:
    """Open `path` with `backend` ("auto" picks the measured best for `purpose`: sparse | stream).

    `max_side` lets decord decode straight to a smaller size (PyAV scales per frame instead).
    """
    if backend == "auto":
        backend = "pyav" if purpose == "sparse" else "opencv"
    if backend == "decord":
        try:
            import decord  # noqa: F401
        except ImportError:
            backend = "pyav"
    if backend == "decord":
        try:
            return DecordReader(path, max_side=max_side)
        except (ImplausibleRead, MediaError) as e:   # decord cannot open some files PyAV reads (MPEG-TS)
            reader = PyAVReader(path)
            reader.fallback_reason = str(e)
            return reader
    if backend == "pyav":
        return PyAVReader(path)
    if backend == "opencv":
        if video_stream_count(path) > 1:   # OpenCV reads one frame, or none, where a picture track comes first
            reader = PyAVReader(path)
            reader.fallback_reason = "several video streams: OpenCV cannot choose the one to read"
            return reader
        try:
            return OpenCVReader(path)
        except MediaError as e:   # PyAV decodes more codecs, and says what it cannot read
            reader = PyAVReader(path)
            reader.fallback_reason = str(e)
            return reader
    raise ValueError(f"unknown reader backend {backend!r}; allowed: auto, {', '.join(BACKENDS)}")


def scan_decode(path: str) -> tuple[list[float], list[float], float | None]:
    """Decode every frame of `path` with PyAV, without converting pixels, to locate damage where a
    stream reader only stopped: (frame times, times of packets that failed to decode, the earliest
    frame time decoded after the first failure). Slice threads only: with frame threads a decoder
    reports an error a few packets late, which would blur where the damage starts."""
    with PyAVReader(path, threads="SLICE") as reader:
        times = [t for t, _ in reader._decode_packets()]
        return times, list(reader.decode_errors), reader.first_unsound_s
