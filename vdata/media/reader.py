"""Frame decoding behind one interface, with decord and PyAV backends.

`read_at` fetches sparse frames by timestamp (sampling for captions and quality); `iter_frames`
streams every frame of a span at reduced size (shot detection, motion). The default backend per use is
the faster one measured in bench/bench_frames.py and bench/bench_shots.py: decord for sparse reads,
OpenCV's capture (threaded decode and colour conversion in C++) for streams.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from . import MediaError

BACKENDS = ("decord", "pyav", "opencv")


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    # even sizes keep swscale and JPEG encoders happy
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


class FrameReader:
    """Base class: subclasses fill in the two read methods and the metadata attributes."""

    backend = ""
    fps: float
    num_frames: int
    width: int
    height: int

    def read_at(self, times_s: Sequence[float], max_side: int | None = None) -> list[tuple[float, np.ndarray]]:
        """RGB frames nearest to each time (video-absolute seconds), with their own timestamps."""
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

        try:
            probe = decord.VideoReader(path, num_threads=1)
            w, h = probe[0].shape[1], probe[0].shape[0]
            del probe
            sw, sh = _scaled_size(w, h, max_side)
            self._vr = decord.VideoReader(path, width=sw, height=sh, num_threads=threads or _DECODE_THREADS)
        except Exception as e:  # decord raises its own DECORDError and RuntimeError
            raise MediaError("unreadable", f"decord cannot open video: {str(e).splitlines()[0][:200]}")
        self.width, self.height = w, h
        self.num_frames = len(self._vr)
        self.fps = float(self._vr.get_avg_fps())
        self._times = self._vr.get_frame_timestamp(range(self.num_frames))[:, 0].astype(np.float64)

    def _indices_for(self, times_s: Sequence[float]) -> np.ndarray:
        idx = np.searchsorted(self._times, np.asarray(times_s, dtype=np.float64) + 1e-6, side="right") - 1
        return np.clip(idx, 0, self.num_frames - 1)

    def read_at(self, times_s, max_side=None):
        idx = self._indices_for(times_s)
        frames = self._vr.get_batch(list(idx)).asnumpy()
        out = []
        for i, frame in zip(idx, frames):
            out.append((float(self._times[i]), _resize(frame, max_side)))
        return out

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


class PyAVReader(FrameReader):
    backend = "pyav"

    def __init__(self, path: str, threads: str = "AUTO"):
        import av

        try:
            self._container = av.open(path, metadata_errors="ignore")
            self._stream = self._container.streams.video[0]
        except (av.error.FFmpegError, IndexError) as e:
            raise MediaError("unreadable", f"PyAV cannot open video: {e}")
        self._stream.thread_type = threads
        if _DECODE_THREADS:
            self._stream.codec_context.thread_count = _DECODE_THREADS
        cc = self._stream.codec_context
        self.width, self.height = cc.width, cc.height
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 25.0
        self.num_frames = int(self._stream.frames or 0)
        self._tb = float(self._stream.time_base)
        self._start = float(self._stream.start_time or 0) * self._tb

    def _decode_from(self, t: float):
        """Frames from the keyframe at or before t onwards."""
        target = int(max(0.0, t) / self._tb) + (self._stream.start_time or 0)
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        return self._container.decode(self._stream)

    def read_at(self, times_s, max_side=None):
        w, h = _scaled_size(self.width, self.height, max_side)
        order = np.argsort(times_s)
        results: dict[int, tuple[float, np.ndarray]] = {}
        half = 0.5 / self.fps
        frames = None
        pending = None  # a decoded frame that may also serve the next target
        last_t = None
        for k in order:
            t = float(times_s[k])
            # Seek only when the next target is far ahead: decoding forward is cheaper than a seek
            # into a long GOP.
            if frames is None or last_t is None or t - last_t > 2.0 or t < last_t:
                frames = self._decode_from(t)
                pending = None
            chosen = prev = None
            while True:
                if pending is not None:
                    frame, pending = pending, None
                else:
                    frame = next(frames, None)
                if frame is None:
                    break
                if _time(frame) + half >= t:
                    chosen = frame
                    break
                prev = frame
            chosen = chosen or prev
            if chosen is None:
                raise MediaError("undecodable", f"no frame decodes at {t:.3f}s")
            results[int(k)] = (_time(chosen), chosen.to_ndarray(width=w, height=h, format="rgb24"))
            pending = chosen
            last_t = _time(chosen)
        return [results[i] for i in range(len(times_s))]

    def iter_frames(self, start_s=0.0, end_s=None, max_side=None, fmt="bgr24"):
        w, h = _scaled_size(self.width, self.height, max_side)
        from_start = start_s <= 0
        frames = self._container.decode(self._stream) if from_start else self._decode_from(start_s)
        count = 0
        for frame in frames:
            t = _time(frame)
            if t + 1e-6 < start_s:
                continue
            if end_s is not None and t >= end_s - 1e-6:
                break
            # From the start, the decode order count is the exact frame index (also for VFR video);
            # after a seek, the index can only be derived from the time.
            index = count if from_start else int(round((t - self._start) * self.fps))
            count += 1
            yield index, t, frame.to_ndarray(width=w, height=h, format=fmt)

    def close(self):
        self._container.close()


class OpenCVReader(FrameReader):
    """Sequential streaming through cv2.VideoCapture: decode and BGR conversion stay in C++ threads."""

    backend = "opencv"

    def __init__(self, path: str):
        import cv2

        self._cap = (cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, _DECODE_THREADS])
                     if _DECODE_THREADS else cv2.VideoCapture(path))
        if not self._cap.isOpened():
            raise MediaError("unreadable", "OpenCV cannot open video")
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 25.0)
        self.num_frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def read_at(self, times_s, max_side=None):
        import cv2

        out = []
        for t in times_s:
            self._cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, float(t)) * 1000.0)
            ok, frame = self._cap.read()
            if not ok:
                raise MediaError("undecodable", f"no frame decodes at {t:.3f}s")
            ts = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            out.append((ts, _resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), max_side)))
        return out

    def iter_frames(self, start_s=0.0, end_s=None, max_side=None, fmt="bgr24"):
        import cv2

        w, h = _scaled_size(self.width, self.height, max_side)
        if start_s > 0:
            self._cap.set(cv2.CAP_PROP_POS_MSEC, start_s * 1000.0)
        index = int(round(start_s * self.fps)) if start_s > 0 else 0
        while True:
            ok, frame = self._cap.read()
            if not ok:
                break
            t = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0   # the frame just read
            if end_s is not None and t >= end_s - 1e-6:
                break
            if (w, h) != (self.width, self.height):
                frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
            if fmt == "rgb24":
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            elif fmt == "gray":
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            yield index, t, frame
            index += 1

    def close(self):
        self._cap.release()


def prefetch(iterator, depth: int = 32):
    """Run `iterator` in a background thread (decoders release the GIL), yielding its items in order."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in iterator:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as e:  # re-raised in the consumer
            q.put(e)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except Exception:
                thread.join(0.05)


def _time(frame) -> float:
    return float(frame.time) if frame.time is not None else 0.0


def _resize(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    if not max_side or max(frame.shape[:2]) <= max_side:
        return frame
    import cv2

    w, h = _scaled_size(frame.shape[1], frame.shape[0], max_side)
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)


def open_reader(path: str, backend: str = "auto", purpose: str = "sparse", max_side: int | None = None) -> FrameReader:
    """Open `path` with `backend` ("auto" picks the measured best for `purpose`: sparse | stream).

    `max_side` lets decord decode straight to a smaller size (PyAV scales per frame instead).
    """
    if backend == "auto":
        backend = "decord" if purpose == "sparse" else "opencv"
    if backend == "decord":
        try:
            import decord  # noqa: F401
        except ImportError:
            backend = "pyav"
    if backend == "decord":
        return DecordReader(path, max_side=max_side)
    if backend == "pyav":
        return PyAVReader(path)
    if backend == "opencv":
        return OpenCVReader(path)
    raise ValueError(f"unknown reader backend {backend!r}; allowed: auto, {', '.join(BACKENDS)}")
