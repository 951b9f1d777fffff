"""Which structured-output dialect an OpenAI-compatible server takes: probed, guessed, or learned from a refusal.

``structured_output: auto`` asks the server what it is (``GET /v1/models``, ``GET /version``;
:func:`~vdata.teachers.structured.dialect_from_server_info`). Two things can make that answer wrong:

* **No answer is not a verdict.** llama-cpp-python's ``/v1/models`` waits for its model lock, so while
  the server generates it does not answer at all. A probe that timed out (or met a 5xx / dropped
  connection) gives a provisional guess for the requests at hand and is asked again after
  ``probe_retry_s``; only an HTTP answer is cached as the server's kind.
* **A refusal is one.** When a server answers a structured request with an error that names the
  dialect's own field (``json_schema`` / ``response_format`` / ``structured_outputs``; llama-cpp-python
  answers ``json_schema`` with HTTP 500 "Input should be 'text' or 'json_object'"), the same request
  would fail the same way on every retry. The error is final for that attempt, and an ``auto`` teacher
  moves on to the next dialect (``vllm`` → ``openai`` → ``llamacpp`` → ``none``, the schema in the
  prompt) for this request and every later one. A dialect set in the config is kept, and the error
  names the setting to change.

The dialect in use is logged (INFO when detected, WARNING when a refusal changes it) and is in the
teacher's ``stats()`` as ``structured_output``.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from vdata.teachers.structured import dialect_from_server_info

log = logging.getLogger("vdata.teachers")

# after a refusal, the dialect to try next; `none` states the schema in the prompt, which every server takes
NEXT_DIALECT = {"vllm": "openai", "openai": "llamacpp", "llamacpp": "none"}
_ORDER = ("vllm", "openai", "llamacpp", "none")
# the words a refusal of each dialect's request field contains (lower case)
_FIELD_WORDS = {"openai": ("json_schema", "response_format"), "llamacpp": ("json_object", "response_format"),
                "vllm": ("structured_outputs",)}
# statuses that answer something else than the body's shape: auth, unknown model, rate limits, timeouts
_NOT_ABOUT_BODY = frozenset({401, 403, 404, 408, 429})


def refuses_dialect(status: int, text: str, dialect: str) -> bool:
    """True when an error answer to a structured request says the server does not take the dialect's field."""
    if status < 400 or status in _NOT_ABOUT_BODY:
        return False
    low = (text or "").lower()
    return any(w in low for w in _FIELD_WORDS.get(dialect, ()))


def _answered(status: int | None) -> bool:
    """An HTTP answer that says what the server is (a 404 does: no such route); a busy or failing one does not."""
    return status is not None and status < 500 and status not in (408, 429)


class ServerDialect:
    """Mixin for :class:`~vdata.teachers.openai_compat.OpenAITeacher`: the server probe and the dialect in use.

    Needs ``name``, ``base_url``, ``_client`` (httpx.AsyncClient) and ``_probe_lock`` from the teacher."""

    probe_timeout_s = 10.0     # per probe request; a busy llama-cpp-python server does not answer at all
    probe_retry_s = 30.0       # after a probe that got no answer, ask again no sooner than this

    def _init_dialect(self, dialect: str | None, configured: bool, server_kind: str | None) -> None:
        self._dialect = dialect                 # None: not known yet (auto)
        self._dialect_configured = configured   # set by the config: kept whatever the server says
        self._server_kind = server_kind         # "vllm" | "llamacpp" | "openai" | None (probe lazily)
        self._probe_again_at = 0.0

    async def _get_json(self, url: str) -> tuple[int | None, Any]:
        """(status, JSON body or None); status None when the server did not answer."""
        try:
            r = await self._client.get(url, timeout=self.probe_timeout_s)
        except Exception:   # a timeout or a dropped connection: no answer, so no verdict
            return None, None
        try:
            return r.status_code, (r.json() if r.status_code == 200 else None)
        except ValueError:
            return r.status_code, None

    async def _probe_server(self) -> str:
        """The server's kind: cached once the server answered; a provisional guess while it does not."""
        if self._server_kind is not None:
            return self._server_kind
        assert self._probe_lock is not None and self._client is not None
        guess = dialect_from_server_info(self.base_url)
        if time.monotonic() < self._probe_again_at:   # asked recently and got no answer: do not queue on it again
            return guess
        async with self._probe_lock:
            if self._server_kind is not None:
                return self._server_kind
            if time.monotonic() < self._probe_again_at:
                return guess
            status_m, models = await self._get_json(self.base_url + "/models")
            status_v = version = None
            root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
            if models is None or not any(
                isinstance(m, dict) and m.get("owned_by") for m in (models or {}).get("data", [])
            ):
                status_v, version = await self._get_json(root + "/version")
            kind = dialect_from_server_info(self.base_url, models, version)
            if models is None and not _answered(status_m) and not (version is not None and _answered(status_v)):
                self._probe_again_at = time.monotonic() + self.probe_retry_s
                log.info("teacher %s: the server did not answer GET /models (busy?): structured output as %r "
                         "for now, asking again in %gs", self.name, kind, self.probe_retry_s)
                return kind
            self._server_kind = kind
            log.info("teacher %s: server detected as %s", self.name, kind)
            return kind

    async def _resolve_dialect(self) -> str:
        if self._dialect is not None:
            return self._dialect
        kind = await self._probe_server()
        if self._server_kind is not None and self._dialect is None:   # a verdict, not a guess: keep it
            self._dialect = kind
            log.info("teacher %s: structured output dialect %r (from the server's answer)", self.name, kind)
        return self._dialect or kind

    def _after_refusal(self, dialect: str, detail: str) -> str | None:
        """The dialect to resend a request in after the server refused `dialect`, or None (keep the error)."""
        if self._dialect_configured or dialect not in NEXT_DIALECT:
            return None
        nxt = NEXT_DIALECT[dialect]
        current = self._dialect
        if current is not None and _ORDER.index(current) > _ORDER.index(nxt):
            return current   # another request already learned a later one
        if current != nxt:
            self._dialect = nxt
            log.warning("teacher %s: the server refused structured output as %r (%s); using %r from now on "
                        "(set `structured_output:` on the teacher to choose)", self.name, dialect, detail[:160], nxt)
        return nxt

    def dialect_stats(self) -> dict[str, Any]:
        return {"structured_output": self._dialect}


__all__ = ["NEXT_DIALECT", "ServerDialect", "refuses_dialect"]
