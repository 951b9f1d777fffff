"""The ``openai`` backend: any OpenAI-compatible ``/v1/chat/completions`` endpoint.

A synchronous facade (``generate``) over an asyncio core that runs on one private event-loop
thread per teacher, so it works the same from a plain script, a Ray actor or a notebook.

* bounded concurrency (``max_concurrency`` HTTP requests in flight) and an optional ``rpm`` budget
  (a GCRA pacer with one second of burst; retries spend budget too);
* per-attempt deadline ``timeout_s``; retries with exponential backoff + jitter on 429, 408, 5xx,
  timeouts, dropped connections, truncated or unparseable bodies, honouring ``Retry-After`` /
  ``retry-after-ms``; other 4xx are final (``bad_request``);
* images as base64 JPEG ``image_url`` parts (``image.max_side`` / ``image.jpeg_quality``); videos as
  timestamped frames or as a base64 MP4 ``video_url`` (vLLM servers);
* structured output in the server's dialect + lenient parse + jsonschema + bounded re-ask.

Requests go out with raw ``httpx`` (no SDK object model on the hot path): the benchmark compares
this against a bare httpx load generator.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from typing import Any, Coroutine, Mapping, TypeVar

import httpx

from vdata.teachers.base import (
    ImagePart,
    Message,
    Teacher,
    TeacherRequest,
    TeacherResult,
    TextPart,
    Usage,
    VideoPart,
)
from vdata.teachers.config import ManagedTeacherConfig, OpenAITeacherConfig
from vdata.teachers.media_encoding import (
    file_data_url,
    frames_to_mp4,
    data_url,
    jpeg_data_url,
    sample_video_frames,
)
from vdata.teachers.redaction import redact
from vdata.teachers.structured import (
    dialect_from_server_info,
    settle_reply,
    structured_body,
    with_schema_instruction,
)

log = logging.getLogger("vdata.teachers")
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})
_STD_SAMPLING = ("temperature", "top_p", "max_tokens", "seed", "stop", "presence_penalty", "frequency_penalty")


# --------------------------------------------------------------------------- pure helpers
def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delta-seconds or HTTP date)."""
    h = {k.lower(): v for k, v in headers.items()}
    ms = h.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = h.get("retry-after")
    if ra is None:
        return None
    ra = ra.strip()
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    if dt is None:
        return None
    return max(0.0, dt.timestamp() - (time.time() if now is None else now))


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    max_retry_after: float = 120.0,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry number ``attempt + 1`` (``attempt`` counts from 0).

    Exponential ``base * 2**attempt`` capped at ``cap`` with equal jitter (half fixed, half random);
    a server's ``Retry-After`` is a floor (itself capped at ``max_retry_after``)."""
    r = rng or random
    d = min(cap, base * (2.0**attempt))
    d = d / 2.0 + r.uniform(0.0, d / 2.0)
    if retry_after is not None:
        d = max(d, min(retry_after, max_retry_after))
    return d


class RpmLimiter:
    """Generic cell rate pacer: ``rpm`` requests per minute, bursts of up to one second's worth."""

    def __init__(self, rpm: float) -> None:
        self.interval = 60.0 / rpm
        burst = max(1.0, rpm / 60.0)
        self.tolerance = self.interval * (burst - 1.0)
        self._tat = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            tat = max(self._tat, now)
            wait = tat - self.tolerance - now
            self._tat = tat + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


class _LoopThread:
    """One asyncio loop on a daemon thread; ``run`` blocks the caller until a coroutine finishes."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"vdata-teacher-{name}", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("generate() called from the teacher's own event loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class _AttemptError(Exception):
    def __init__(self, kind: str, detail: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.retryable, self.retry_after = kind, detail, retryable, retry_after


# --------------------------------------------------------------------------- teacher
class OpenAITeacher(Teacher):
    backend = "openai"

    def __init__(
        self,
        name: str,
        config: OpenAITeacherConfig | ManagedTeacherConfig,
        cache: Any = None,
        *,
        base_url: str | None = None,
        model: str | None = None,
        dialect: str | None = None,
        server_kind: str | None = None,
    ) -> None:
        super().__init__(name, config, cache)
        self.wire_model = model or str(config.model)  # the name sent in requests
        self.base_url = (base_url or getattr(config, "base_url", None) or "").rstrip("/")
        if not self.base_url:
            raise ValueError(f"teacher {name!r}: no base_url")
        key = getattr(config, "api_key", None)
        if key is not None:
            self._api_key: str | None = key.get_secret_value() or None
        elif "api.openai.com" in self.base_url:
            # the ambient key only ever goes to OpenAI itself, never to an arbitrary endpoint
            self._api_key = os.environ.get("OPENAI_API_KEY") or None
        else:
            self._api_key = None
        self._extra_headers = {k: v.get_secret_value() for k, v in (getattr(config, "headers", {}) or {}).items()}
        self._secrets = [s for s in [self._api_key, *self._extra_headers.values()] if s]
        self._dialect = dialect if dialect is not None else (
            None if config.structured_output == "auto" else config.structured_output
        )
        self._server_kind = server_kind  # "vllm" | "llamacpp" | "openai" | None (probe lazily)
        self._loop = _LoopThread(name)
        self._client: httpx.AsyncClient | None = None
        self._http_sem: asyncio.Semaphore | None = None
        self._admit_sem: asyncio.Semaphore | None = None
        self._limiter: RpmLimiter | None = None
        self._rng = random.Random()
        self._probe_lock: asyncio.Lock | None = None

    def cache_key_extra(self) -> dict[str, Any]:
        c = self.config
        return {"image": c.image.model_dump(), "video": c.video.model_dump(), "extra_body": c.extra_body}

    def __repr__(self) -> str:
        shown = re.sub(r"//[^/@]*@", "//***@", self.base_url)  # never show userinfo credentials
        return f"<OpenAITeacher {self.name!r} model={self.model_name!r} base_url={shown!r}>"

    # ---- lifecycle
    def _ensure_async_state(self) -> None:
        if self._client is not None:
            return
        c = self.config
        headers = {"Content-Type": "application/json", **self._extra_headers}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(c.timeout_s, connect=min(c.timeout_s, 30.0)),
            limits=httpx.Limits(max_connections=c.max_concurrency, max_keepalive_connections=c.max_concurrency),
        )
        self._http_sem = asyncio.Semaphore(c.max_concurrency)
        self._admit_sem = asyncio.Semaphore(max(2 * c.max_concurrency, 8))
        self._limiter = RpmLimiter(c.rpm) if c.rpm else None
        self._probe_lock = asyncio.Lock()

    def _close(self) -> None:
        async def _aclose() -> None:
            if self._client is not None:
                await self._client.aclose()

        try:
            self._loop.run(_aclose())
        except Exception:
            pass
        self._loop.stop()

    # ---- server detection
    async def _probe_server(self) -> str:
        if self._server_kind is not None:
            return self._server_kind
        assert self._probe_lock is not None and self._client is not None
        async with self._probe_lock:
            if self._server_kind is not None:
                return self._server_kind
            models = version = None
            try:
                r = await self._client.get(self.base_url + "/models", timeout=10.0)
                if r.status_code == 200:
                    models = r.json()
            except Exception:
                pass
            root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
            if models is None or not any(
                isinstance(m, dict) and m.get("owned_by") for m in (models or {}).get("data", [])
            ):
                try:
                    r = await self._client.get(root + "/version", timeout=10.0)
                    if r.status_code == 200:
                        version = r.json()
                except Exception:
                    pass
            self._server_kind = dialect_from_server_info(self.base_url, models, version)
            log.debug("teacher %s: server detected as %s", self.name, self._server_kind)
            return self._server_kind

    async def _resolve_dialect(self) -> str:
        if self._dialect is None:
            self._dialect = await self._probe_server()
        return self._dialect

    async def _resolve_video_mode(self) -> str:
        mode = self.config.video.mode
        if mode != "auto":
            return mode
        return "video_url" if (await self._probe_server()) == "vllm" else "frames"

    # ---- request building
    def _content(self, parts: list[Any], video_mode: str) -> list[dict[str, Any]]:
        c = self.config
        out: list[dict[str, Any]] = []
        for p in parts:
            if isinstance(p, TextPart):
                out.append({"type": "text", "text": p.text})
            elif isinstance(p, ImagePart):
                url = jpeg_data_url(p.image, c.image.max_side, c.image.jpeg_quality)
                out.append({"type": "image_url", "image_url": {"url": url}})
            elif isinstance(p, VideoPart):
                out.extend(self._video_content(p, video_mode))
            else:
                raise TypeError(f"unknown content part {type(p).__name__}")
        return out

    def _video_content(self, v: VideoPart, mode: str) -> list[dict[str, Any]]:
        c = self.config
        if mode == "video_url":
            if v.path is not None:
                url = file_data_url(v.path)
            else:
                ts = v.resolved_timestamps()
                span = ts[-1] - ts[0] if len(ts) > 1 else 0.0
                rate = (len(ts) - 1) / span if span > 0 else (v.fps or 1.0)
                mp4 = frames_to_mp4(v.frame_list(), rate, c.image.max_side)
                url = data_url(mp4, "video/mp4")
            return [{"type": "video_url", "video_url": {"url": url}}]
        if v.path is not None:
            s = sample_video_frames(v.path, c.video.max_frames)
            frames, ts = s["frames"], s["timestamps"]
        else:
            frames, ts = v.frame_list(), v.resolved_timestamps()
        out: list[dict[str, Any]] = []
        for f, t in zip(frames, ts):
            if c.video.timestamps_in_text:
                out.append({"type": "text", "text": f"<{t:.2f}s>"})
            out.append(
                {"type": "image_url", "image_url": {"url": jpeg_data_url(f, c.image.max_side, c.image.jpeg_quality)}}
            )
        return out

    def _messages_json(self, messages: list[Message], video_mode: str) -> list[dict[str, Any]]:
        out = []
        for m in messages:
            if isinstance(m.content, str):
                out.append({"role": m.role, "content": m.content})
            elif all(isinstance(p, TextPart) for p in m.content):
                out.append({"role": m.role, "content": "".join(p.text for p in m.content)})
            else:
                out.append({"role": m.role, "content": self._content(list(m.content), video_mode)})
        return out

    def _body(self, request: TeacherRequest, messages: list[Message], dialect: str, video_mode: str) -> bytes:
        body: dict[str, Any] = {"model": self.wire_model, "messages": self._messages_json(messages, video_mode)}
        for k, v in self.effective_sampling(request).items():
            body[k] = v
        if request.json_schema is not None:
            body.update(structured_body(dialect, request.json_schema, request.schema_name))
        for k, v in self.config.extra_body.items():
            body.setdefault(k, v)
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _base_messages(self, request: TeacherRequest) -> list[Message]:
        msgs = list(request.messages)
        sp = self.config.system_prompt
        if sp and not any(m.role == "system" for m in msgs):
            msgs.insert(0, Message("system", sp))
        return msgs

    # ---- one HTTP attempt
    async def _attempt(self, payload: bytes, request_id: str, attempt: int) -> dict[str, Any]:
        assert self._client is not None and self._http_sem is not None
        c = self.config
        if self._limiter is not None:
            await self._limiter.acquire()
        async with self._http_sem:
            try:
                r = await asyncio.wait_for(
                    self._client.post(
                        self.base_url + "/chat/completions",
                        content=payload,
                        headers={"X-Request-Id": request_id, "X-Attempt": str(attempt)},
                    ),
                    timeout=c.timeout_s,
                )
            except (asyncio.TimeoutError, httpx.TimeoutException):
                raise _AttemptError("timeout", f"no answer within {c.timeout_s:g}s", True) from None
            except httpx.TransportError as e:
                raise _AttemptError("connection", f"{type(e).__name__}: {e}", True) from None
        status = r.status_code
        if status == 200:
            try:
                data = json.loads(r.content)
                choice = data["choices"][0]
                _ = choice["message"]
                return data
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise _AttemptError("bad_response", f"unparseable response body ({type(e).__name__})", True) from None
        ra = parse_retry_after(r.headers)
        detail = f"HTTP {status}: {r.text[:300]!r}"
        if status == 429:
            raise _AttemptError("rate_limited", detail, True, ra)
        if status in RETRYABLE_STATUS or status >= 500:
            raise _AttemptError("server_error", detail, True, ra)
        raise _AttemptError("bad_request", detail, False)

    async def _post_with_retries(self, payload: bytes, request_id: str, first_attempt: int) -> tuple[dict | None, _AttemptError | None, int]:
        c = self.config
        last: _AttemptError | None = None
        for i in range(c.max_retries + 1):
            try:
                return await self._attempt(payload, request_id, first_attempt + i), None, i + 1
            except _AttemptError as e:
                last = e
                if not e.retryable or i == c.max_retries:
                    return None, e, i + 1
                delay = backoff_delay(
                    i,
                    base=c.backoff_base_s,
                    cap=c.backoff_max_s,
                    retry_after=e.retry_after,
                    max_retry_after=c.max_retry_after_s,
                    rng=self._rng,
                )
                log.debug("teacher %s: %s; retry %d in %.2fs", self.name, redact(str(e), self._secrets), i + 1, delay)
                await asyncio.sleep(delay)
        return None, last, c.max_retries + 1  # pragma: no cover

    # ---- one request, end to end
    async def _one(self, request: TeacherRequest) -> TeacherResult:
        assert self._admit_sem is not None
        async with self._admit_sem:
            t0 = time.perf_counter()
            res = TeacherResult(request_id=request.request_id)
            try:
                await self._run_request(request, res)
            except Exception as e:  # never lose a request to an unexpected bug
                res.error = redact(f"engine_error: unexpected {type(e).__name__}: {e}", self._secrets)
            res.latency_s = time.perf_counter() - t0
            if res.error is not None:
                res.error = redact(res.error, self._secrets)
                if res.raw is not None:
                    res.raw = redact(res.raw, self._secrets)
                log.warning("teacher %s: request %s failed: %s", self.name, request.request_id, res.error[:300])
            return res

    async def _run_request(self, request: TeacherRequest, res: TeacherResult) -> None:
        schema = request.json_schema
        dialect = await self._resolve_dialect() if schema is not None else "none"
        parts = [p for m in request.messages for p in m.parts()]
        has_video = any(isinstance(p, VideoPart) for p in parts)
        has_media = has_video or any(isinstance(p, ImagePart) for p in parts)
        video_mode = await self._resolve_video_mode() if has_video else "frames"
        base = self._base_messages(request)
        if schema is not None and dialect == "none":
            base = with_schema_instruction(base, schema)
        messages = base
        loop = asyncio.get_running_loop()
        last_err = ""
        for round_ in range(self.config.schema_retries + 1 if schema is not None else 1):
            try:
                if has_media:  # JPEG/MP4 encoding off the event loop
                    payload = await loop.run_in_executor(None, self._body, request, messages, dialect, video_mode)
                else:
                    payload = self._body(request, messages, dialect, video_mode)
            except Exception as e:
                res.error = f"input_error: {type(e).__name__}: {e}"
                return
            data, err, n = await self._post_with_retries(payload, request.request_id, res.attempts)
            res.attempts += n
            if err is not None:
                res.error = str(err)
                return
            assert data is not None
            u = data.get("usage") or {}
            res.usage.add(Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)))
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            res.finish_reason = choice.get("finish_reason")
            retry = settle_reply(res, text, schema, base)
            if retry is None:
                return
            last_err, messages = retry
        res.error = f"schema_invalid: {last_err}"

    async def _agenerate(self, requests: list[TeacherRequest], on_result=None) -> list[TeacherResult]:
        self._ensure_async_state()

        async def answer(index: int, request: TeacherRequest) -> TeacherResult:
            res = await self._one(request)
            if on_result is not None:
                on_result(index, res)
            return res

        return list(await asyncio.gather(*(answer(i, r) for i, r in enumerate(requests))))

    def _generate_uncached(self, requests: list[TeacherRequest], on_result=None) -> list[TeacherResult]:
        return self._loop.run(self._agenerate(requests, on_result))


__all__ = ["OpenAITeacher", "RpmLimiter", "backoff_delay", "parse_retry_after"]
