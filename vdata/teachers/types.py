"""The teacher value types: messages and their content parts, requests, results, token usage.

This is the bottom of ``vdata.teachers``: it imports nothing of vdata, so the accounting, the cache,
structured output and every backend can build on it without import cycles. Errors are values: a
request that cannot be answered comes back as a :class:`TeacherResult` with ``error`` set.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence, Union

import numpy as np

from vdata.errors import find_in_chain

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
    ``schema_retries``: this request's re-asks after an invalid structured reply, in place of the
    teacher's (None). A stage that sends several candidates for one answer sets 0: the candidates are its tries.
    """

    messages: list[Message]
    json_schema: dict[str, Any] | None = None
    schema_name: str = "reply"
    sampling: dict[str, Any] = field(default_factory=dict)
    prompt_template_version: str | None = None
    schema_retries: int | None = None
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
# Error kinds that no request of the teacher would escape: the build stops (TeacherRefusedError)
REFUSALS = {"auth": ("the server refused its credentials", "api_key"),
            "unknown_model": ("the server does not serve its model", "model")}


class TeacherRefusedError(RuntimeError):
    """A teacher's server refused it outright: its credentials (HTTP 401/403) or its model (a 404 that says the
    model does not exist). Not a verdict on one request: every request would fail alike, so the build stops,
    committing none of the videos in flight (a re-run with the config fixed resumes), rather than rejecting
    every row."""

    def __init__(self, teacher: str, detail: str, kind: str = "auth") -> None:
        what, key = REFUSALS.get(kind, REFUSALS["auth"])
        super().__init__(f"teacher {teacher!r}: {what} ({detail}); check teachers.{teacher}.{key}. "
                         f"No video in flight was committed: a re-run resumes")
        self.teacher, self.detail, self.kind = teacher, detail, kind

    def __reduce__(self):   # raised in a Ray worker, it is pickled to the driver
        return (type(self), (self.teacher, self.detail, self.kind))


_REFUSAL_TEXT = re.compile(r"TeacherRefusedError: teacher '(?P<teacher>[^']*)': (?P<what>%s) \((?P<detail>.*?)\); "
                           r"check teachers\." % "|".join(what for what, _ in REFUSALS.values()))


def find_refusal(exc: BaseException | None) -> "TeacherRefusedError | None":
    """The TeacherRefusedError behind `exc`: itself, a cause or context, or, from a Ray worker, its text
    (vdata.errors.find_in_chain)."""
    def from_text(found: re.Match) -> TeacherRefusedError:
        kind = next(k for k, (what, _) in REFUSALS.items() if what == found["what"])
        return TeacherRefusedError(found["teacher"], found["detail"], kind)

    return find_in_chain(exc, TeacherRefusedError, _REFUSAL_TEXT, from_text,
                         lambda e: TeacherRefusedError(e.teacher, e.detail, e.kind))


ERROR_KINDS = (
    "timeout",  # per-request deadline passed on every attempt
    "connection",  # dropped/refused connections, truncated bodies
    "rate_limited",  # 429 after all retries
    "server_error",  # 5xx after all retries
    "bad_response",  # a 200 whose body is no API answer (cut off, not JSON, an HTML page) after all retries
    "bad_request",  # another 4xx (not 429): the request itself is wrong (not retried)
    "auth",  # 401/403: the server refused the credentials; the build stops (TeacherRefusedError)
    "unknown_model",  # 404 saying the model does not exist; the build stops too
    "schema_invalid",  # reply failed JSON parsing / schema validation after all re-asks
    "input_error",  # the request could not be built (bad image, missing file, too long...)
    "engine_error",  # the offline engine failed on this request
    "closed",  # teacher already closed
)


# Failures that say nothing about the request and may pass on their own (a server busy, restarting or
# out of reach; a response body cut off on the way or replaced by a gateway's page, outside check h25 F6):
# a reject that came of one is retried by the next run of the build (`retry_on_resume`). A well-formed
# reply whose content fails the schema is the model's (`schema_invalid`, cached), never transient.
TRANSIENT_ERRORS = frozenset({"timeout", "connection", "rate_limited", "server_error", "bad_response"})


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

    @property
    def transient(self) -> bool:
        """Failed for a reason that may pass on its own (TRANSIENT_ERRORS): worth asking again later."""
        return self.error_kind in TRANSIENT_ERRORS

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


__all__ = [
    "ERROR_KINDS",
    "ImagePart",
    "Message",
    "Part",
    "Role",
    "TeacherRefusedError",
    "TeacherRequest",
    "find_refusal",
    "REFUSALS",
    "TeacherResult",
    "TextPart",
    "TRANSIENT_ERRORS",
    "Usage",
    "VideoPart",
]
