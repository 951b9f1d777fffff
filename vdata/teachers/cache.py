"""Content-addressed on-disk cache of teacher answers.

The key is a SHA-256 over everything that decides the answer: backend, model, the messages with a
digest of every image/video byte, the effective sampling parameters, the JSON schema, the prompt
template version and backend settings that change what the model sees (image size/quality, video
mode). A re-run of the same work therefore makes zero requests. Only successful answers are
stored (errors are retried on the next run). Entries never contain credentials: they hold the
request key and the answer only.

Layout: ``<root>/<key[:2]>/<key>.json``, written atomically (temp file + rename), so concurrent
Ray workers on one filesystem can share a cache directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from vdata.teachers.base import ImagePart, Message, TeacherRequest, TeacherResult, TextPart, Usage, VideoPart

CACHE_FORMAT = 1


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
    """Directory of cached answers. ``get`` returns a result marked ``cached=True`` or None."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.writes = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> TeacherResult | None:
        p = self._path(key)
        try:
            with open(p, encoding="utf-8") as f:
                entry = json.load(f)
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
            )
        except (OSError, ValueError, KeyError, TypeError):
            with self._lock:
                self.misses += 1
            return None
        with self._lock:
            self.hits += 1
        return res

    def put(self, key: str, result: TeacherResult) -> None:
        if not result.ok:
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
            },
        }
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=p.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(entry, f, ensure_ascii=False)
            os.replace(tmp, p)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        with self._lock:
            self.writes += 1

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json"))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"root": str(self.root), "hits": self.hits, "misses": self.misses, "writes": self.writes}


__all__ = ["RequestCache", "canonical_json", "media_digest", "messages_repr", "request_key"]
