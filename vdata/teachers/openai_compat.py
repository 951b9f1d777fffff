"""The ``openai`` backend: any OpenAI-compatible ``/v1/chat/completions`` endpoint.

A synchronous facade (``generate``) over an asyncio core that runs on one private event-loop
thread per teacher, so it works the same from a plain script, a Ray actor or a notebook.

* bounded concurrency (``max_concurrency`` HTTP requests in flight) and an optional ``rpm`` budget
  paced by ``aiolimiter`` (a leaky bucket with one second of burst; retries spend budget too);
* per-attempt deadline ``timeout_s``; retries by ``tenacity`` (exponential backoff with full jitter)
  on 429, 408, 5xx, timeouts, dropped connections, truncated or unparseable bodies, where a server's
  ``Retry-After`` / ``retry-after-ms`` is a floor on the wait; other 4xx are final (``bad_request``);
* images as base64 JPEG ``image_url`` parts (``image.max_side`` / ``image.jpeg_quality``); videos as
  timestamped frames or as a base64 MP4 ``video_url`` (vLLM servers);
* structured output in the server's dialect + lenient parse + jsonschema + bounded re-ask; the dialect
  is probed, and an ``auto`` teacher whose dialect the server refuses moves on to one it takes
  (``server_dialect.py``).

Why ``tenacity`` over raw ``httpx`` and not the ``openai`` SDK's own retries: the SDK's backoff is
fixed (0.5 s doubling to 8 s, module constants), it does not retry a ``200`` whose body is not valid
JSON, and it does not tell the caller how many attempts a request took (accounting and the
fault-proxy tests count every attempt, numbered in an ``X-Attempt`` header). Raw ``httpx`` also
keeps the SDK's object model off the hot path: ``bench/bench_teachers.py`` compares this client
with a bare httpx load generator (goal: >= 95 % of its throughput). Neither tenacity nor httpx
parses ``Retry-After``; :func:`parse_retry_after` does, with the standard library's HTTP-date parser
(the SDK's parser is a private method of its client class).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import threading
import time
from typing import Any, Mapping

import httpx
import tenacity
from aiolimiter import AsyncLimiter

from vdata.teachers.base import Teacher
from vdata.teachers.loop_thread import LoopThread
from vdata.teachers.config import ManagedTeacherConfig, OpenAITeacherConfig
from vdata.teachers.media_encoding import (
    data_url,
    file_data_url,
    frames_to_mp4,
    jpeg_data_url,
    sample_video_frames,
)
from vdata.teachers.redaction import redact
from vdata.teachers.server_dialect import ServerDialect, refuses_dialect
from vdata.teachers.structured import (
    settle_reply,
    structured_body,
    with_schema_instruction,
)
from vdata.teachers.types import ImagePart, Message, TeacherRequest, TeacherResult, TextPart, Usage, VideoPart

log = logging.getLogger("vdata.teachers")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})


# --------------------------------------------------------------------------- retry policy
def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delta-seconds or HTTP date)."""
    h = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = h.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
    try:
        when = email.utils.parsedate_to_datetime(h.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class AttemptError(Exception):
    """Why one HTTP attempt failed; ``retryable`` and the server's ``retry_after`` steer the retry."""

    def __init__(self, kind: str, detail: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.retryable, self.retry_after = kind, detail, retryable, retry_after


class _RetryAfterFloor(tenacity.wait.wait_base):
    """The wrapped wait, but never shorter than the server's ``Retry-After`` (capped)."""

    def __init__(self, inner: tenacity.wait.wait_base, max_retry_after: float) -> None:
        self.inner, self.max_retry_after = inner, max_retry_after

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        delay = self.inner(retry_state)
        outcome = retry_state.outcome
        err = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = getattr(err, "retry_after", None)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay


def backoff_wait(base: float, cap: float, max_retry_after: float = 120.0) -> tenacity.wait.wait_base:
    """Full-jitter exponential backoff (uniform in ``[0, min(cap, base * 2**(n-1))]`` before retry
    ``n``) with the server's ``Retry-After`` as a floor, itself capped at ``max_retry_after``."""
    return _RetryAfterFloor(tenacity.wait_random_exponential(multiplier=base, max=cap), max_retry_after)


def rpm_limiter(rpm: float) -> AsyncLimiter:
    """``rpm`` requests per minute, in bursts of up to one second's worth (at least one request)."""
    burst = max(1.0, rpm / 60.0)
    return AsyncLimiter(burst, time_period=burst * 60.0 / rpm)


# --------------------------------------------------------------------------- teacher
def api_key_for(config: Any, base_url: str) -> str | None:
    """The key a teacher sends: its `api_key`, else $OPENAI_API_KEY for OpenAI's own API only (the ambient
    key never goes to an arbitrary endpoint)."""
    key = getattr(config, "api_key", None)
    if key is not None:
        return key.get_secret_value() or None
    return (os.environ.get("OPENAI_API_KEY") or None) if "api.openai.com" in base_url else None


class OpenAITeacher(ServerDialect, Teacher):
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
        self._api_key = api_key_for(config, self.base_url)
        self._extra_headers = {k: v.get_secret_value() for k, v in (getattr(config, "headers", {}) or {}).items()}
        self._secrets = [s for s in [self._api_key, *self._extra_headers.values()] if s]
        configured = None if config.structured_output == "auto" else config.structured_output
        self._init_dialect(dialect if dialect is not None else configured,
                           dialect is not None or configured is not None, server_kind)
        self._loop = LoopThread(name)
        self._client: httpx.AsyncClient | None = None
        self._http_sem: asyncio.Semaphore | None = None
        self._admit_sem: asyncio.Semaphore | None = None
        self._limiter: AsyncLimiter | None = None
        self._probe_lock: asyncio.Lock | None = None
        self._ready = not getattr(config, "wait_ready_s", 0)   # see _await_ready

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
        self._limiter = rpm_limiter(c.rpm) if c.rpm else None
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
    async def _await_ready(self) -> str | None:
        """With `wait_ready_s` (a server still loading its model): the first request polls /models until
        the server answers, the others wait on it. Once: after the wait, requests take their own retries.
        None when the server answered, else why not."""
        if self._ready:
            return None
        assert self._probe_lock is not None and self._client is not None
        async with self._probe_lock:
            deadline = time.monotonic() + self.config.wait_ready_s
            while not self._ready:
                try:
                    self._ready = (await self._client.get(self.base_url + "/models", timeout=5.0)).status_code == 200
                except httpx.HTTPError:
                    pass
                if self._ready:
                    break
                if time.monotonic() > deadline:
                    self._ready = True   # the wait is spent: from here on each request takes its own retries
                    return f"connection: the server did not answer within wait_ready_s={self.config.wait_ready_s:g}"
                await asyncio.sleep(0.5)
        return None

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
    async def _attempt(self, payload: bytes, request_id: str, attempt: int, dialect: str = "none") -> dict[str, Any]:
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
                raise AttemptError("timeout", f"no answer within {c.timeout_s:g}s", True) from None
            except httpx.TransportError as e:
                raise AttemptError("connection", f"{type(e).__name__}: {e}", True) from None
        status = r.status_code
        if status == 200:
            try:
                data = json.loads(r.content)
                choice = data["choices"][0]
                _ = choice["message"]
                return data
            except (ValueError, KeyError, IndexError, TypeError) as e:
                # a body cut off mid-way, or no API answer at all (a gateway's HTML page sent with 200): the
                # transport failed, not the model (whose reply is the content inside a well-formed body) —
                # retried here and, as a transient failure (TRANSIENT_ERRORS), by the build's next run
                raise AttemptError("bad_response", f"unparseable response body ({type(e).__name__}; "
                                   f"{len(r.content)} bytes: {r.text[:120]!r})", True) from None
        ra = parse_retry_after(r.headers)
        detail = f"HTTP {status}: {r.text[:300]!r}"
        if status in (401, 403):
            raise AttemptError("auth", detail, False)
        if status == 404 and "does not exist" in r.text and "model" in r.text.lower():   # vLLM's, OpenAI's words
            raise AttemptError("unknown_model", detail, False)
        if status == 429:
            raise AttemptError("rate_limited", detail, True, ra)
        if refuses_dialect(status, r.text, dialect):   # the same body fails the same way: never retried
            raise AttemptError("structured_output_refused", detail, False)
        if status in RETRYABLE_STATUS or status >= 500:
            raise AttemptError("server_error", detail, True, ra)
        raise AttemptError("bad_request", detail, False)

    def _retrying(self) -> tenacity.AsyncRetrying:
        # one per request: a tenacity retrier keeps its iteration state on itself
        c = self.config
        return tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(c.max_retries + 1),
            wait=backoff_wait(c.backoff_base_s, c.backoff_max_s, c.max_retry_after_s),
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, AttemptError) and e.retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.debug("teacher %s: %s; retry %d in %.2fs", self.name, redact(str(err), self._secrets),
                  state.attempt_number, delay)

    async def _post_with_retries(
        self, payload: bytes, request_id: str, first_attempt: int, dialect: str = "none"
    ) -> tuple[dict | None, AttemptError | None, int]:
        """``(reply, None, attempts)`` or ``(None, last error, attempts)``; attempts are numbered on
        from ``first_attempt`` across re-ask rounds, so each number goes out once."""
        attempts = 0
        try:
            async for attempt in self._retrying():
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    data = await self._attempt(payload, request_id, first_attempt + attempts - 1, dialect)
        except AttemptError as e:
            return None, e, attempts
        return data, None, attempts

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
        not_ready = await self._await_ready()
        if not_ready is not None:
            res.error = not_ready
            return
        schema = request.json_schema
        dialect = await self._resolve_dialect() if schema is not None else "none"
        parts = [p for m in request.messages for p in m.parts()]
        has_video = any(isinstance(p, VideoPart) for p in parts)
        has_media = has_video or any(isinstance(p, ImagePart) for p in parts)
        video_mode = await self._resolve_video_mode() if has_video else "frames"
        while True:
            refused = await self._exchange(request, res, dialect, video_mode, has_media)
            if refused is None:
                return
            nxt = self._after_refusal(dialect, refused.detail)
            if nxt is None:
                res.error = str(refused) + (f" (the teacher's `structured_output: {dialect}`: set one the server takes)"
                                            if self._dialect_configured else "")
                return
            dialect = nxt   # the same request in the next dialect; its attempt numbers run on

    async def _exchange(self, request: TeacherRequest, res: TeacherResult, dialect: str, video_mode: str,
                        has_media: bool) -> AttemptError | None:
        """The request's rounds (re-asks of invalid replies) in one dialect; fills `res`. Returns the error
        when the server refused the dialect itself (`res` left for the caller), else None."""
        schema = request.json_schema
        base = self._base_messages(request)
        if schema is not None and dialect == "none":
            base = with_schema_instruction(base, schema)
        messages = base
        loop = asyncio.get_running_loop()
        last_err = ""
        for round_ in range(self.schema_retries(request) + 1 if schema is not None else 1):
            try:
                if has_media:  # JPEG/MP4 encoding off the event loop
                    payload = await loop.run_in_executor(None, self._body, request, messages, dialect, video_mode)
                else:
                    payload = self._body(request, messages, dialect, video_mode)
            except Exception as e:
                res.error = f"input_error: {type(e).__name__}: {e}"
                return None
            data, err, n = await self._post_with_retries(payload, request.request_id, res.attempts, dialect)
            res.attempts += n
            if err is not None and err.kind == "structured_output_refused":
                return err
            if err is not None:
                res.error = str(err)
                return None
            assert data is not None
            u = data.get("usage") or {}
            res.usage.add(Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)))
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            res.finish_reason = choice.get("finish_reason")
            retry = settle_reply(res, text, schema, base)
            if retry is None:
                return None
            last_err, messages = retry
        res.error = f"schema_invalid: {last_err}"
        return None

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.dialect_stats()}

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


__all__ = ["AttemptError", "OpenAITeacher", "backoff_wait", "parse_retry_after", "rpm_limiter"]
