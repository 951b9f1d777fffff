"""A fault-injecting HTTP proxy for tests and benchmarks of HTTP teachers.

Put it in front of a real OpenAI-compatible server; every ``POST`` to a faulted path draws one
outcome from seeded probabilities:

* ``error_500``   – answers ``500`` without forwarding;
* ``rate_limit``  – answers ``429`` with ``Retry-After: <retry_after_s>``;
* ``hang``        – reads the request, answers nothing, holds the socket ``hang_s`` then drops it;
* ``truncate``    – forwards, then sends the headers with the full ``Content-Length`` and half the
  body, and drops the connection;
* ``invalid_json``– forwards, then answers ``200`` with a corrupted (unparseable) JSON body;
* ``reasoning``   – forwards, then puts a reasoning model's thinking before the answer, as Qwen3 or
  DeepSeek-R1 served without a reasoning parser do: ``<think>`` prose weighing decoy JSON ``</think>``;
* ``reasoning_cut``– forwards, then answers with thinking only, cut before ``</think>`` (``length``);
* otherwise       – forwards faithfully.

``script=[...]`` fixes the first outcomes in order (then the probabilities apply). It counts
everything (``counts``, ``max_inflight``) and logs ``(request_id, attempt, outcome)`` per request from the
``X-Request-Id`` / ``X-Attempt`` headers teachers send, so tests can check that no request is lost or
answered twice. Loopback only; bounded by the caller's request count.

``hold()`` / ``release()`` gate the faithful answers: while held, an upstream answer waits at the
proxy instead of going to its client, and it is counted as ``held``, never as ``forwarded`` — also
when it comes back from upstream after ``release()`` (a request in flight at ``hold()`` time belongs
to the hold), and whether or not its client is still there to read it. A kill test uses it to make
"answers the client got" exact: hold, let the delivered answers land, kill the client, release.

    with FaultProxy("http://127.0.0.1:8000", faults={"error_500": 0.2}) as px:
        teacher = build_teacher("t", {"backend": "openai", "base_url": px.base_url, ...})
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

FAULT_KINDS = ("error_500", "rate_limit", "hang", "truncate", "invalid_json", "reasoning", "reasoning_cut")
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host",
        "proxy-connection", "te", "trailer", "upgrade"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        faults: dict[str, float] | None = None,
        seed: int = 0,
        hang_s: float = 30.0,
        retry_after_s: float = 1.0,
        fault_paths: tuple[str, ...] = ("/v1/chat/completions",),
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_timeout_s: float = 600.0,
        script: list[str] | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        if self.upstream.endswith("/v1"):
            self.upstream = self.upstream[:-3]
        self.faults = dict(faults or {})
        unknown = set(self.faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if sum(self.faults.values()) > 1.0 + 1e-9:
            raise ValueError("fault probabilities add up to more than 1")
        self.hang_s, self.retry_after_s = hang_s, retry_after_s
        self.script = list(script or [])  # outcomes used, in order, before drawing at random
        for kind in self.script:
            if kind not in FAULT_KINDS + ("ok",):
                raise ValueError(f"unknown scripted outcome {kind!r}")
        self.inflight = 0
        self.max_inflight = 0
        self.auth_headers: set[str] = set()
        self.fault_paths = fault_paths
        self.host, self._port = host, port
        self.upstream_timeout_s = upstream_timeout_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, str, str]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._gate_open = threading.Event()   # cleared while holding; parked answers wait on it
        self._gate_open.set()
        self._holding = False
        self._parked = 0
        self._active: set[int] = set()        # tokens of the requests being handled now
        self._caught: set[int] = set()        # ...of those in flight at, or arriving during, a hold
        self._tokens = iter(range(1 << 62))

    # ---- lifecycle
    @property
    def port(self) -> int:
        assert self._server is not None, "proxy not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self, "GET")

            def do_POST(self) -> None:
                proxy._handle(self, "POST")

        self._server = _Server((self.host, self._port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._gate_open.set()   # parked handler threads end
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for c in self._clients:
            c.close()
        self._clients = []

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.log.clear()
            self.max_inflight = self.inflight
            self.auth_headers.clear()

    def set_faults(self, faults: dict[str, float]) -> None:
        with self._lock:
            self.faults = dict(faults)

    # ---- the hold gate
    def hold(self) -> None:
        """From now on, faithful answers wait at the proxy (counted ``held``), including the answers
        of requests already in flight."""
        with self._lock:
            self._holding = True
            self._gate_open.clear()
            self._caught |= self._active

    def release(self) -> None:
        """Let the parked answers (and those still to come of requests caught by the hold) go."""
        with self._lock:
            self._holding = False
            self._gate_open.set()

    @property
    def parked(self) -> int:
        """Answers waiting at the gate now."""
        with self._lock:
            return self._parked

    # ---- per request
    def _client(self) -> httpx.Client:
        c = getattr(self._local, "client", None)
        if c is None:
            c = httpx.Client(timeout=self.upstream_timeout_s)
            self._local.client = c
            with self._lock:
                self._clients.append(c)
        return c

    def _draw(self) -> str:
        with self._lock:
            if self.script:
                return self.script.pop(0)
            x = self._rng.random()
            acc = 0.0
            for kind in FAULT_KINDS:
                acc += self.faults.get(kind, 0.0)
                if x < acc:
                    return kind
        return "ok"

    def _record(self, h: BaseHTTPRequestHandler, outcome: str) -> None:
        rid = h.headers.get("X-Request-Id", "")
        att = h.headers.get("X-Attempt", "")
        with self._lock:
            self.counts[outcome] += 1
            self.counts["requests"] += 1
            if h.command == "POST":
                self.counts["posts"] += 1
            self.log.append((rid, att, outcome))

    def _forward(self, h: BaseHTTPRequestHandler, method: str, body: bytes) -> httpx.Response:
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
        return self._client().request(method, self.upstream + h.path, content=body or None, headers=headers)

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None,
              ctype: str = "application/json") -> None:
        h.answer_done()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def _drop(self, h: BaseHTTPRequestHandler) -> None:
        h.answer_done()
        h.close_connection = True
        try:
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        with self._lock:
            token = next(self._tokens)
            self._active.add(token)
            if self._holding:
                self._caught.add(token)
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            auth = h.headers.get("Authorization")
            if auth:
                self.auth_headers.add(auth)
        finished = False

        def done() -> None:
            # called as the answer starts out (and at the latest when the handler ends): a client that has its
            # answer may send the next request at once, and must not find this one still counted in flight
            nonlocal finished
            with self._lock:
                if not finished:
                    finished = True
                    self.inflight -= 1
                    self._active.discard(token)
                    self._caught.discard(token)

        h.answer_done = done
        try:
            self._handle_inner(h, method, token)
        finally:
            done()

    def _held_back(self, h: BaseHTTPRequestHandler, token: int) -> bool:
        """Whether this answer belongs to a hold; if so it is counted ``held`` and waits for the gate."""
        with self._lock:
            if token not in self._caught:
                return False
            self._parked += 1
        self._record(h, "held")
        self._gate_open.wait()
        with self._lock:
            self._parked -= 1
        return True

    def _handle_inner(self, h: BaseHTTPRequestHandler, method: str, token: int) -> None:
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        path = h.path.split("?", 1)[0]
        outcome = self._draw() if method == "POST" and path in self.fault_paths else "ok"
        try:
            if outcome == "error_500":
                self._record(h, outcome)
                self._send(h, 500, b'{"error":{"message":"injected server error","type":"server_error"}}')
                return
            if outcome == "rate_limit":
                self._record(h, outcome)
                self._send(h, 429, b'{"error":{"message":"injected rate limit","type":"rate_limit"}}',
                           {"Retry-After": f"{self.retry_after_s:g}"})
                return
            if outcome == "hang":
                self._record(h, outcome)
                self._stop.wait(self.hang_s)
                self._drop(h)
                return
            try:
                r = self._forward(h, method, body)
            except httpx.HTTPError as e:
                self._record(h, "upstream_error")
                self._send(h, 502, f'{{"error":{{"message":"upstream: {type(e).__name__}"}}}}'.encode())
                return
            data = r.content
            if outcome == "truncate" and r.status_code == 200:
                self._record(h, outcome)
                h.answer_done()
                h.send_response(200)
                h.send_header("Content-Type", r.headers.get("content-type", "application/json"))
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data[: len(data) // 2])
                self._drop(h)
                return
            if outcome == "invalid_json" and r.status_code == 200:
                self._record(h, outcome)
                self._send(h, 200, data[: len(data) // 2] + b'<<garbage>>')
                return
            if outcome in ("reasoning", "reasoning_cut") and r.status_code == 200:
                self._record(h, outcome)
                self._send(h, 200, _with_thinking(data, cut=outcome == "reasoning_cut"))
                return
            if not (r.status_code == 200 and path in self.fault_paths and self._held_back(h, token)):
                self._record(h, "forwarded" if r.status_code == 200 else f"upstream_{r.status_code}")
            extra = {k: v for k, v in r.headers.items() if k.lower() not in _HOP and k.lower() != "content-type"
                     and k.lower() not in ("date", "server")}
            self._send(h, r.status_code, data, extra, r.headers.get("content-type", "application/json"))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is being handled, so ``log`` holds every attempt that reached the
        proxy. An attempt is logged when its outcome is known (after the upstream answer for the
        forwarded kinds): a client that timed out and retried can get its answer while the first
        attempt is still waiting upstream. True when idle within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                idle = self.inflight == 0
            if idle or time.monotonic() >= deadline:
                return idle
            time.sleep(0.05)

    def delivered_ids(self) -> Counter[str]:
        """How many faithful 200 answers each request id received."""
        with self._lock:
            return Counter(rid for rid, _, outcome in self.log if outcome == "forwarded")


__all__ = ["FAULT_KINDS", "FaultProxy"]


THINKING = ('<think>\nThe user wants JSON. A first try: {"question": "decoy?", "answer": "decoy"}. '
            'Or maybe [1, 2, 3]? No, follow the schema.\n</think>\n\n')


def _with_thinking(data: bytes, cut: bool) -> bytes:
    """A chat completion body whose message content is preceded by thinking (`cut`: only thinking)."""
    import json

    reply = json.loads(data)
    choice = reply["choices"][0]
    content = choice["message"].get("content") or ""
    choice["message"]["content"] = THINKING.split("</think>")[0] if cut else THINKING + content
    if cut:
        choice["finish_reason"] = "length"
    return json.dumps(reply).encode()

