"""Per-teacher accounting (requests, retries, failures, tokens, latency) and token estimates.

``Accountant.stats()`` is JSON-serialisable and goes into the run manifest. It carries a
log-bucket latency histogram so stats from many Ray workers can be combined with
:func:`merge_stats` (percentiles of merged stats are bucket-accurate, ~±12%).
"""

from __future__ import annotations

import bisect
import io
import json
import math
import threading
import time
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

from vdata.teachers.types import ImagePart, TeacherRequest, TeacherResult, TextPart, VideoPart

# latency histogram bucket upper bounds (seconds): 1 ms .. ~1.2 h, ratio 1.25
_EDGES = [1e-3 * 1.25**i for i in range(70)]
_MAX_SAMPLES = 200_000


def _bucket(x: float) -> int:
    return min(bisect.bisect_left(_EDGES, x), len(_EDGES) - 1)


def _hist_quantile(hist: dict[int, int], q: float) -> float | None:
    total = sum(hist.values())
    if total == 0:
        return None
    target = q * total
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= target:
            return _EDGES[b]
    return _EDGES[max(hist)]


class Accountant:
    def __init__(self, name: str, backend: str, model: str) -> None:
        self.name, self.backend, self.model = name, backend, model
        self._lock = threading.Lock()
        self.requests = 0
        self.cache_hits = 0
        self.attempts = 0
        self.retries = 0
        self.failures = 0
        self.errors: Counter[str] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.busy_s = 0.0
        self._lat: list[float] = []
        self._hist: Counter[int] = Counter()
        self._rng = np.random.default_rng(0)
        self._seen_lat = 0
        self.started = time.time()

    def record_batch(self, results: Sequence[TeacherResult], wall_s: float) -> None:
        with self._lock:
            self.busy_s += wall_s
            for r in results:
                self.requests += 1
                if r.cached:
                    self.cache_hits += 1
                    continue
                self.attempts += r.attempts
                self.retries += max(0, r.attempts - 1)
                self.prompt_tokens += r.usage.prompt_tokens
                self.completion_tokens += r.usage.completion_tokens
                if r.error is not None:
                    self.failures += 1
                    self.errors[r.error_kind or "unknown"] += 1
                self._hist[_bucket(r.latency_s)] += 1
                self._seen_lat += 1
                if len(self._lat) < _MAX_SAMPLES:
                    self._lat.append(r.latency_s)
                else:  # reservoir sampling keeps the percentiles unbiased
                    j = int(self._rng.integers(0, self._seen_lat))
                    if j < _MAX_SAMPLES:
                        self._lat[j] = r.latency_s

    def stats(self) -> dict[str, Any]:
        with self._lock:
            lat = np.asarray(self._lat, dtype=float)
            p50 = float(np.percentile(lat, 50)) if lat.size else None
            p95 = float(np.percentile(lat, 95)) if lat.size else None
            return {
                "name": self.name,
                "backend": self.backend,
                "model": self.model,
                "requests": self.requests,
                "cache_hits": self.cache_hits,
                "attempts": self.attempts,
                "retries": self.retries,
                "failures": self.failures,
                "errors": dict(sorted(self.errors.items())),
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "latency_p50_s": p50,
                "latency_p95_s": p95,
                "busy_s": round(self.busy_s, 6),
                "tokens_per_s": (self.completion_tokens / self.busy_s) if self.busy_s > 0 else 0.0,
                "total_tokens_per_s": ((self.prompt_tokens + self.completion_tokens) / self.busy_s)
                if self.busy_s > 0
                else 0.0,
                "latency_hist": {str(k): v for k, v in sorted(self._hist.items())},
            }


def merge_stats(stats: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Combine ``stats()`` dicts of one teacher from several workers.

    Busy time is summed (so ``tokens_per_s`` is per-worker throughput); percentiles come from the
    merged histogram."""
    stats = list(stats)
    if not stats:
        return {}
    out: dict[str, Any] = {k: stats[0].get(k) for k in ("name", "backend", "model")}
    for k in ("requests", "cache_hits", "attempts", "retries", "failures", "prompt_tokens", "completion_tokens"):
        out[k] = sum(int(s.get(k, 0)) for s in stats)
    errors: Counter[str] = Counter()
    hist: Counter[int] = Counter()
    for s in stats:
        errors.update(s.get("errors", {}))
        hist.update({int(k): int(v) for k, v in s.get("latency_hist", {}).items()})
    out["errors"] = dict(sorted(errors.items()))
    out["latency_p50_s"] = _hist_quantile(hist, 0.5)
    out["latency_p95_s"] = _hist_quantile(hist, 0.95)
    busy = sum(float(s.get("busy_s", 0.0)) for s in stats)
    out["busy_s"] = busy
    out["tokens_per_s"] = out["completion_tokens"] / busy if busy > 0 else 0.0
    out["total_tokens_per_s"] = (out["prompt_tokens"] + out["completion_tokens"]) / busy if busy > 0 else 0.0
    out["latency_hist"] = {str(k): v for k, v in sorted(hist.items())}
    out["workers"] = len(stats)
    return out


# --------------------------------------------------------------------------- estimates
def _image_hw(img: Any) -> tuple[int, int] | None:
    if isinstance(img, np.ndarray) and img.ndim >= 2:
        return int(img.shape[0]), int(img.shape[1])
    if isinstance(img, (bytes, bytearray)):
        try:
            from PIL import Image

            with Image.open(io.BytesIO(bytes(img))) as im:
                return im.height, im.width
        except Exception:
            return None
    if hasattr(img, "size") and hasattr(img, "mode"):
        w, h = img.size
        return h, w
    return None


def image_tokens(h: int, w: int, max_side: int = 768, patch: int = 28) -> int:
    """Qwen-VL-style visual tokens of an image after resizing its long side to ``max_side``."""
    s = min(1.0, max_side / max(h, w, 1))
    return max(1, math.ceil(h * s / patch)) * max(1, math.ceil(w * s / patch))


def estimate_tokens(
    request: TeacherRequest,
    *,
    max_tokens: int = 512,
    max_side: int = 768,
    chars_per_token: float = 3.6,
    default_image_tokens: int = 256,
    default_video_frames: int = 32,
) -> dict[str, int]:
    """A cheap, model-free estimate: ``{"prompt_tokens", "completion_tokens"}`` (the completion is
    the ``max_tokens`` upper bound). Text ≈ chars/3.6; images ≈ 28-px patches after resizing;
    video ≈ half the frames' patches (2-frame temporal patches)."""
    prompt = 0
    for m in request.messages:
        prompt += 4  # role + separators
        for p in m.parts():
            if isinstance(p, TextPart):
                prompt += math.ceil(len(p.text) / chars_per_token)
            elif isinstance(p, ImagePart):
                hw = _image_hw(p.image)
                prompt += image_tokens(*hw, max_side=max_side) if hw else default_image_tokens
            elif isinstance(p, VideoPart):
                frames = p.frame_list()
                if frames:
                    hw = _image_hw(frames[0])
                    per = image_tokens(*hw, max_side=max_side) if hw else default_image_tokens
                    prompt += math.ceil(len(frames) / 2) * per + 8 * len(frames)
                else:
                    prompt += math.ceil(default_video_frames / 2) * default_image_tokens
    if request.json_schema is not None:
        prompt += math.ceil(len(json.dumps(request.json_schema)) / chars_per_token)
    return {"prompt_tokens": prompt, "completion_tokens": int(max_tokens)}


__all__ = ["Accountant", "estimate_tokens", "image_tokens", "merge_stats"]
