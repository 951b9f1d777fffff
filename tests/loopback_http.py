"""A loopback HTTP server for tests that stand in for an OpenAI-compatible endpoint in a way no real local
server can be made to behave (replies cut at max_tokens, scripted event lists, a staged busy model lock).
Each test file keeps its own handler (what it stages); this is the plumbing they share."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean (no access log line per request)."""

    def log_message(self, *args) -> None:
        pass

    def read_json(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))


def prompt_text(body: dict) -> str:
    """The text of a chat request's last message (its text parts joined, for multimodal content)."""
    parts = body["messages"][-1]["content"]
    return parts if isinstance(parts, str) else "\n".join(p.get("text", "") for p in parts if p.get("type", "text") == "text")


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """Start `handler` on a free loopback port in a daemon thread; returns the server and its `/v1` base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def stop(httpd: ThreadingHTTPServer) -> None:
    httpd.shutdown()
    httpd.server_close()


def send_json(handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
    """Answer with `body` as JSON; a client that gave up waiting (a probe's timeout) is no error here."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    try:
        handler.wfile.write(data)
    except OSError:
        pass


def chat_completion(content: str, *, model: str, finish_reason: str = "stop", completion_tokens: int = 10) -> dict:
    """A chat.completion reply with one choice."""
    return {"id": "x", "object": "chat.completion", "model": model, "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": completion_tokens}}
