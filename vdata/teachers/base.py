"""The teacher contract: the :class:`Teacher` interface every backend implements.

Stages build :class:`TeacherRequest` objects (chat messages whose content mixes text, images and
videos), hand a list of them to :meth:`Teacher.generate`, and get back one :class:`TeacherResult`
per request, in order. Errors are values: a request that cannot be answered comes back with
``error`` set (and ``raw`` holding the last reply, if any) — ``generate`` does not raise for it.

The value types live in :mod:`vdata.teachers.types` (the bottom of this package); they are
re-exported here for code that imports them from ``vdata.teachers.base``.
"""

from __future__ import annotations

import abc
import asyncio
import threading
import time
from typing import Any, Callable, Sequence

from vdata.teachers.accounting import Accountant, estimate_tokens
from vdata.teachers.cache import request_key, storable
from vdata.teachers.types import (
    ERROR_KINDS,
    REFUSALS,
    ImagePart,
    Message,
    Part,
    Role,
    TeacherRequest,
    TeacherResult,
    TextPart,
    Usage,
    VideoPart,
)


# --------------------------------------------------------------------------- interface
class Teacher(abc.ABC):
    """A named model endpoint. Thread-safe for ``generate``; use as a context manager or ``close()``."""

    backend: str = "?"

    def __init__(self, name: str, config: Any, cache: Any = None) -> None:
        self.name = name
        self.config = config
        self.cache = cache if getattr(config, "cache", True) else None
        self.accounting = Accountant(name=name, backend=self.backend, model=self.model_name)
        self._closed = False
        self._close_lock = threading.Lock()
        self.refused: tuple[str, str] | None = None   # (error kind, why), once the server refused it (REFUSALS)

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
                # Each answer (or settled invalid reply) is cached the moment it arrives: a run killed
                # mid-batch must not pay again for the replies it already received.
                i = todo[j]
                if self.cache is not None and storable(res) and keys[i] is not None and i not in stored:
                    self.cache.put(keys[i], res)
                    stored.add(i)

            fresh = self._generate_uncached([requests[i] for i in todo], on_result=keep)
            for j, (i, res) in enumerate(zip(todo, fresh)):
                results[i] = res
                keep(j, res)   # backends that answer a batch at once report nothing earlier
        out = [r for r in results if r is not None]
        assert len(out) == len(requests)
        self.accounting.record_batch(out, wall_s=time.perf_counter() - t0)
        refused = next((r for r in out if r.error_kind in REFUSALS), None)
        if refused is not None:   # not the request's fault: the runner stops the build (see TeacherRefusedError)
            self.refused = (refused.error_kind, (refused.error or "").split(": ", 1)[-1][:300])
        return out

    async def agenerate(self, requests: Sequence[TeacherRequest]) -> list[TeacherResult]:
        """``generate`` for callers that run their own event loop (runs in a worker thread)."""
        return await asyncio.to_thread(self.generate, list(requests))

    @abc.abstractmethod
    def _generate_uncached(self, requests: list[TeacherRequest],
                           on_result: Callable[[int, TeacherResult], None] | None = None) -> list[TeacherResult]:
        """Backend work for cache misses: one result per request, in order, never raising.
        Backends that answer requests one by one call ``on_result(index, result)`` as each finishes."""

    def cache_key(self, request: TeacherRequest) -> str:
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

    def schema_retries(self, request: TeacherRequest) -> int:
        """Re-asks after an invalid structured reply: the request's own count, else the teacher's."""
        return self.config.schema_retries if request.schema_retries is None else request.schema_retries

    def estimate_tokens(self, request: TeacherRequest) -> dict[str, int]:
        """Rough prompt/completion token estimate for ``vdata plan`` (no model call)."""
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
        try:
            self._close()
        finally:
            if self.cache is not None:
                self.cache.close()

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
    "Role",
    "Teacher",
    "TeacherRequest",
    "TeacherResult",
    "TextPart",
    "Usage",
    "VideoPart",
]
