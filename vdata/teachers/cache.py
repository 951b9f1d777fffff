"""Content-addressed on-disk cache of teacher answers.

The key is a SHA-256 over everything that decides the answer: backend, model, the messages with a
digest of every image/video byte, the effective sampling parameters, the JSON schema, the prompt
template version and backend settings that change what the model sees (image size/quality, video
mode). A re-run of the same work therefore makes zero requests. Answers are stored, and so are
replies that failed validation after their re-asks (`SETTLED_FAILURES`): the same request gets the same
reply again, so asking on a re-run would pay for it again (outside check h17 F5: a resumed video re-sent
each of its invalid replies' 3 calls). Other errors (timeouts, 5xx, 429, lost connections) are retried on
the next run; `cache: false` on a teacher asks everything again. Entries never contain credentials: they hold the
request key and the answer only.

The store is ``diskcache`` (why not files of our own: it gives atomic writes, safe sharing between
processes and threads, and one SQLite index instead of one small file per answer). Each answer is
stored the moment it arrives (see ``Teacher.generate``), so a run killed mid-batch keeps what it got.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import diskcache
import numpy as np

from vdata.teachers.types import ImagePart, Message, TeacherRequest, TeacherResult, TextPart, Usage, VideoPart

CACHE_FORMAT = 1
# Failures of the reply itself, settled once the request's re-asks are spent
SETTLED_FAILURES = frozenset({"schema_invalid", "reasoning_only"})


def storable(result: TeacherResult) -> bool:
    """Whether `result` is worth keeping: an answer, or a reply that failed validation for good."""
    return result.ok or result.error_kind in SETTLED_FAILURES
log = logging.getLogger("vdata.teachers")


# --------------------------------------------------------------------------- digests
def _file_digest(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def media_digest(obj: Any) -> str:
    """SHA-256 of an image-like object's content (bytes, ndarray, PIL image or file path)."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return hashlib.sha256(bytes(obj)).hexdigest()
    if isinstance(obj, np.ndarray):
        h = hashlib.sha256(f"nd|{obj.shape}|{obj.dtype.str}|".encode())
        h.update(np.ascontiguousarray(obj).data)
        return h.hexdigest()
    if isinstance(obj, (str, os.PathLike)):
        return "file:" + _file_digest(obj)
    if hasattr(obj, "tobytes") and hasattr(obj, "mode") and hasattr(obj, "size"):  # PIL
        h = hashlib.sha256(f"pil|{obj.mode}|{obj.size}|".encode())
        h.update(obj.tobytes())
        return h.hexdigest()
    raise TypeError(f"cannot digest media of type {type(obj).__name__}")


def _part_repr(part: Any) -> Any:
    if isinstance(part, TextPart):
        return ["text", part.text]
    if isinstance(part, ImagePart):
        return ["image", media_digest(part.image)]
    if isinstance(part, VideoPart):
        if part.path is not None:
            return ["video_file", media_digest(str(part.path))]
        frames = part.frame_list()
        return [
            "video_frames",
            [media_digest(f) for f in frames],
            part.resolved_timestamps(),
            part.metadata(),
        ]
    raise TypeError(f"unknown message part {type(part).__name__}")


def messages_repr(messages: list[Message]) -> list[Any]:
    out = []
    for m in messages:
        content = m.content if isinstance(m.content, str) else [_part_repr(p) for p in m.content]
        out.append([m.role, content])
    return out


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def request_key(
    *,
    backend: str,
    model: str,
    request: TeacherRequest,
    sampling: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> str:
    """The cache key of one request (hex SHA-256). ``request_id`` is deliberately not part of it."""
    payload = {
        "format": CACHE_FORMAT,
        "backend": backend,
        "model": model,
        "messages": messages_repr(request.messages),
        "sampling": sampling,
        "schema": request.json_schema,
        "schema_name": request.schema_name if request.json_schema is not None else None,
        "prompt_template_version": request.prompt_template_version,
        "extra": extra or {},
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


# --------------------------------------------------------------------------- store
class RequestCache:
    """A directory of cached answers, kept by ``diskcache`` (SQLite index + value files).

    ``get`` returns a result marked ``cached=True``, or None (a miss, or an entry it cannot read).
    Several processes (Ray workers) and threads may share one directory: diskcache serialises
    writers in SQLite transactions. Nothing is ever evicted (a dropped answer would be paid for
    again), and values are the entry's JSON text, never pickles: reading a cache runs no code.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._store = diskcache.Cache(str(self.root), eviction_policy="none")
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.write_errors = 0

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def get(self, key: str) -> TeacherResult | None:
        try:
            entry = json.loads(self._store.get(key))
            r = entry["result"]
            res = TeacherResult(
                request_id="",
                text=r["text"],
                parsed=r.get("parsed"),
                usage=Usage(int(r.get("prompt_tokens", 0)), int(r.get("completion_tokens", 0))),
                finish_reason=r.get("finish_reason"),
                latency_s=0.0,
                attempts=0,
                cached=True,
                error=r.get("error"),
                raw=r.get("raw"),
            )
        except (ValueError, KeyError, TypeError):  # absent (None), torn or foreign entries are misses
            self._count("misses")
            return None
        self._count("hits")
        return res

    def put(self, key: str, result: TeacherResult) -> None:
        if not storable(result):
            return
        entry = {
            "format": CACHE_FORMAT,
            "key": key,
            "result": {
                "text": result.text,
                "parsed": result.parsed,
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
                "finish_reason": result.finish_reason,
                "latency_s": result.latency_s,
                **({"error": result.error, "raw": result.raw} if result.error is not None else {}),
            },
        }
        try:
            self._store.set(key, json.dumps(entry, ensure_ascii=False))
        except (OSError, sqlite3.Error, diskcache.Timeout) as e:  # a full disk costs a re-ask, not the run
            log.warning("teacher cache %s: answer not stored: %s: %s", self.root, type(e).__name__, e)
            self._count("write_errors")
            return
        self._count("writes")

    def __len__(self) -> int:
        return len(self._store)

    def close(self) -> None:
        """Close this process's database handles (the cache reopens them if used again)."""
        self._store.close()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"root": str(self.root), "hits": self.hits, "misses": self.misses, "writes": self.writes,
                    "write_errors": self.write_errors}


__all__ = ["SETTLED_FAILURES", "RequestCache", "storable", "canonical_json", "media_digest", "messages_repr", "request_key"]
