"""The teacher contract: request/result value types and the :class:`Teacher` interface.

Stages build :class:`TeacherRequest` objects (chat messages whose content mixes text, images and
videos), hand a list of them to :meth:`Teacher.generate`, and get back one :class:`TeacherResult`
per request, in order. Errors are values: a request that cannot be answered comes back with
``error`` set (and ``raw`` holding the last reply, if any) — ``generate`` does not raise for it.
"""

from __future__ import annotations

import abc
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, Union

import numpy as np

Role = Literal["system", "user", "assistant"]


# --------------------------------------------------------------------------- content parts
@dataclass
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass
class ImagePart:
    """One image: encoded bytes (JPEG/PNG/...), an ``HxWx3`` uint8 RGB array, or a PIL image."""

    image: Any
    type: Literal["image"] = "image"


@dataclass
class VideoPart:
    """A video: sampled ``frames`` (``TxHxWx3`` uint8 array, or a list of arrays / encoded images)
    with their ``timestamps`` (seconds) and the source ``fps``; or a file ``path``.

    ``duration`` / ``total_num_frames`` / ``frame_indices`` describe the source clip for models
    that use them (Qwen2.5/3-VL); they are derived from timestamps and fps when omitted.
    """

    frames: Any = None
    timestamps: Sequence[float] | None = None
    fps: float | None = None
    path: str | Path | None = None
    duration: float | None = None
    total_num_frames: int | None = None
    frame_indices: Sequence[int] | None = None
    type: Literal["video"] = "video"

    def __post_init__(self) -> None:
        if (self.frames is None) == (self.path is None):
            raise ValueError("VideoPart needs exactly one of frames= or path=")

    def frame_list(self) -> list[Any]:
        if self.frames is None:
            return []
        if isinstance(self.frames, np.ndarray):
            return [self.frames[i] for i in range(self.frames.shape[0])]
        return list(self.frames)

    def resolved_timestamps(self) -> list[float]:
        n = len(self.frame_list())
        if self.timestamps is not None:
            ts = [float(t) for t in self.timestamps]
            if len(ts) != n:
                raise ValueError(f"VideoPart: {len(ts)} timestamps for {n} frames")
            return ts
        if self.frame_indices is not None and self.fps:
            return [float(i) / float(self.fps) for i in self.frame_indices]
        step = 1.0 / float(self.fps) if self.fps else 1.0
        return [i * step for i in range(n)]

    def metadata(self) -> dict[str, Any]:
        """Source-clip metadata in the shape Qwen-VL video processors expect."""
        ts = self.resolved_timestamps()
        fps = float(self.fps) if self.fps else (
            (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 1.0
        )
        if self.frame_indices is not None:
            idx = [int(i) for i in self.frame_indices]
        else:
            idx = [int(round(t * fps)) for t in ts]
        duration = float(self.duration) if self.duration else (ts[-1] + 1.0 / fps if ts else 0.0)
        total = int(self.total_num_frames) if self.total_num_frames else max(
            int(round(duration * fps)), (idx[-1] + 1) if idx else 0
        )
        return {
            "fps": fps,
            "duration": duration,
            "total_num_frames": total,
            "frames_indices": idx,
            "video_backend": "opencv",
            "do_sample_frames": False,
        }


Part = Union[TextPart, ImagePart, VideoPart]


@dataclass
class Message:
    role: Role
    content: str | list[Part]

    def parts(self) -> list[Part]:
        return [TextPart(self.content)] if isinstance(self.content, str) else list(self.content)


# --------------------------------------------------------------------------- request / result
@dataclass
class TeacherRequest:
    """One chat request.

    ``json_schema``: when set the teacher enforces it (structured decoding where the backend can,
    always lenient parse + jsonschema validation + bounded re-ask) and fills ``TeacherResult.parsed``.
    ``sampling``: per-request overrides of the teacher's ``SamplingConfig`` fields.
    ``prompt_template_version``: part of the cache key, so editing a prompt invalidates its entries.
    """

    messages: list[Message]
    json_schema: dict[str, Any] | None = None
    schema_name: str = "reply"
    sampling: dict[str, Any] = field(default_factory=dict)
    prompt_template_version: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def from_prompt(
        cls,
        prompt: str,
        *,
        images: Sequence[Any] = (),
        video: VideoPart | None = None,
        system: str | None = None,
        **kwargs: Any,
    ) -> "TeacherRequest":
        """Shorthand: one user turn with media first, then the text prompt."""
        parts: list[Part] = []
        if video is not None:
            parts.append(video)
        parts.extend(ImagePart(im) for im in images)
        parts.append(TextPart(prompt))
        msgs = [Message("system", system)] if system else []
        msgs.append(Message("user", parts))
        return cls(messages=msgs, **kwargs)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


# Stable error kinds: ``TeacherResult.error`` starts with one of these, then ": detail".
ERROR_KINDS = (
    "timeout",  # per-request deadline passed on every attempt
    "connection",  # dropped/refused connections, truncated bodies
    "rate_limited",  # 429 after all retries
    "server_error",  # 5xx after all retries
    "bad_response",  # unparseable/invalid response body after all retries
    "bad_request",  # 4xx other than 429: the request itself is wrong (not retried)
    "schema_invalid",  # reply failed JSON parsing / schema validation after all re-asks
    "input_error",  # the request could not be built (bad image, missing file, too long...)
    "engine_error",  # the offline engine failed on this request
    "closed",  # teacher already closed
)


@dataclass
class TeacherResult:
    """The answer to one request. ``usage`` adds up every attempt (what was actually spent)."""

    request_id: str
    text: str | None = None
    parsed: Any = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    latency_s: float = 0.0
    attempts: int = 0
    error: str | None = None
    raw: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_kind(self) -> str | None:
        return None if self.error is None else self.error.split(":", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "text": self.text,
            "parsed": self.parsed,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "finish_reason": self.finish_reason,
            "latency_s": self.latency_s,
            "attempts": self.attempts,
            "error": self.error,
            "raw": self.raw,
            "cached": self.cached,
        }


# --------------------------------------------------------------------------- interface
class Teacher(abc.ABC):
    """A named model endpoint. Thread-safe for ``generate``; use as a context manager or ``close()``."""

    backend: str = "?"

    def __init__(self, name: str, config: Any, cache: Any = None) -> None:
        from vdata.teachers.accounting import Accountant

        self.name = name
        self.config = config
        self.cache = cache if getattr(config, "cache", True) else None
        self.accounting = Accountant(name=name, backend=self.backend, model=self.model_name)
        self._closed = False
        self._close_lock = threading.Lock()

    # ---- the contract
    @property
    def model_name(self) -> str:
        return str(getattr(self.config, "model", "?"))

    def generate(self, requests: Sequence[TeacherRequest]) -> list[TeacherResult]:
        """Answer every request, in order. Never raises for a single bad request."""
        requests = list(requests)
        if not requests:
            return []
        if self._closed:
            return [TeacherResult(r.request_id, error="closed: teacher is closed") for r in requests]
        t0 = time.perf_counter()
        results: list[TeacherResult | None] = [None] * len(requests)
        todo: list[int] = []
        keys: list[str | None] = [None] * len(requests)
        for i, req in enumerate(requests):
            if self.cache is not None:
                try:
                    keys[i] = self.cache_key(req)
                    hit = self.cache.get(keys[i])
                except Exception:  # an unreadable input is reported by the backend below
                    hit = None
                if hit is not None:
                    hit.request_id = req.request_id
                    results[i] = hit
                    continue
            todo.append(i)
        if todo:
            stored: set[int] = set()

            def keep(j: int, res: TeacherResult) -> None:
                # Each answer is cached the moment it arrives: a run killed mid-batch must not pay again
                # for the answers it already received.
                i = todo[j]
                if self.cache is not None and res.ok and keys[i] is not None and i not in stored:
                    self.cache.put(keys[i], res)
                    stored.add(i)

            fresh = self._generate_uncached([requests[i] for i in todo], on_result=keep)
            for j, (i, res) in enumerate(zip(todo, fresh)):
                results[i] = res
                keep(j, res)   # backends that answer a batch at once report nothing earlier
        out = [r for r in results if r is not None]
        assert len(out) == len(requests)
        self.accounting.record_batch(out, wall_s=time.perf_counter() - t0)
        return out

    async def agenerate(self, requests: Sequence[TeacherRequest]) -> list[TeacherResult]:
        """``generate`` for callers that run their own event loop (runs in a worker thread)."""
        import asyncio

        return await asyncio.to_thread(self.generate, list(requests))

    @abc.abstractmethod
    def _generate_uncached(self, requests: list[TeacherRequest],
                           on_result: Callable[[int, TeacherResult], None] | None = None) -> list[TeacherResult]:
        """Backend work for cache misses: one result per request, in order, never raising.
        Backends that answer requests one by one call ``on_result(index, result)`` as each finishes."""

    def cache_key(self, request: TeacherRequest) -> str:
        from vdata.teachers.cache import request_key

        return request_key(
            backend=self.backend,
            model=self.model_name,
            request=request,
            sampling=self.effective_sampling(request),
            extra=self.cache_key_extra(),
        )

    def cache_key_extra(self) -> dict[str, Any]:
        """Backend settings that change what the model sees (image encoding, video mode...)."""
        return {}

    def effective_sampling(self, request: TeacherRequest) -> dict[str, Any]:
        """Config sampling defaults overridden by the request's; unknown keys pass through to the
        backend (e.g. vLLM's ``min_tokens`` / ``ignore_eos``)."""
        base = self.config.sampling.model_dump()
        base.update(request.sampling)
        return {k: v for k, v in base.items() if v is not None}

    def estimate_tokens(self, request: TeacherRequest) -> dict[str, int]:
        """Rough prompt/completion token estimate for ``vdata plan`` (no model call)."""
        from vdata.teachers.accounting import estimate_tokens

        image = getattr(self.config, "image", None)
        return estimate_tokens(
            request,
            max_tokens=int(self.effective_sampling(request)["max_tokens"]),
            max_side=image.max_side if image is not None else 768,
        )

    def stats(self) -> dict[str, Any]:
        """JSON-serialisable accounting for the run manifest."""
        return self.accounting.stats()

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._close()

    def _close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> "Teacher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} backend={self.backend} model={self.model_name!r}>"

    def __reduce__(self):  # teachers hold engines/sockets: rebuild them, never pickle them
        raise TypeError("Teacher objects are not picklable: pass the config and build_teacher() in the worker")


__all__ = [
    "ERROR_KINDS",
    "ImagePart",
    "Message",
    "Part",
    "Teacher",
    "TeacherRequest",
    "TeacherResult",
    "TextPart",
    "Usage",
    "VideoPart",
]
