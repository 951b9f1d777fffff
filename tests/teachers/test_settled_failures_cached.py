"""A reply that failed validation after its re-asks is settled: a re-run (a resumed video, a changed config that
reuses the cache) gets the same failure from the cache instead of paying for the same replies again (outside
check h17 F5: each such request was sent 3 more times on resume). Failures that may pass (5xx, 429, timeouts)
are still asked again. The server is a loopback stand-in: no real server can be told to answer prose to a JSON
request every time, or to fail with HTTP 500 on demand."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopback_http import QuietHandler, chat_completion, prompt_text, send_json, serve, stop  # noqa: E402

from vdata.teachers import TeacherRequest, build_teacher  # noqa: E402

SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"],
          "additionalProperties": False}


class Scripted:
    """Prose (never JSON) to prompts that say 'prose', HTTP 500 to those that say 'fail' while `failing`."""

    def __init__(self) -> None:
        self.posts: list[str] = []
        self.failing = True
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.read_json()
                first = body["messages"][0]["content"]   # a re-ask's last message is the validation error
                text = first if isinstance(first, str) else prompt_text({"messages": body["messages"][:1]})
                owner.posts.append(text)
                if "fail" in text and owner.failing:
                    send_json(self, 500, {"error": {"message": "boom"}})
                elif "prose" in text:
                    send_json(self, 200, chat_completion("I would rather tell you a story.", model="m"))
                else:
                    send_json(self, 200, chat_completion('{"label": "cat"}', model="m"))

        self.httpd, self.base_url = serve(Handler)


def _teacher(url: str, cache_dir: Path):
    return build_teacher("writer", {"backend": "openai", "base_url": url, "model": "m", "structured_output": "none",
                                    "schema_retries": 2, "max_retries": 0, "timeout_s": 30}, cache_dir=cache_dir)


def _requests():
    return [TeacherRequest.from_prompt(f"{what}: reply as JSON.", json_schema=SCHEMA) for what in ("ok", "prose", "fail")]


def test_an_invalid_reply_is_not_asked_again_on_a_rerun_while_a_server_error_is(tmp_path):
    server = Scripted()
    try:
        first = _teacher(server.base_url, tmp_path / "cache")
        ok, prose, fail = first.generate(_requests())
        first.close()
        assert ok.ok and prose.error_kind == "schema_invalid" and fail.error_kind == "server_error"
        assert sum("prose" in p for p in server.posts) == 3   # asked, then re-asked twice
        server.posts.clear()
        server.failing = False
        again = _teacher(server.base_url, tmp_path / "cache")
        ok2, prose2, fail2 = again.generate(_requests())
        again.close()
        # only the request that may pass is asked again
        assert [p.split(":")[0] for p in server.posts] == ["fail"]
        assert ok2.cached and ok2.parsed == {"label": "cat"}
        assert prose2.cached and prose2.error == prose.error and prose2.raw == prose.raw and prose2.attempts == 0
        assert fail2.ok and not fail2.cached
        # `cache: false` asks everything again
        server.posts.clear()
        fresh = build_teacher("writer", {"backend": "openai", "base_url": server.base_url, "model": "m", "cache": False,
                                         "structured_output": "none", "schema_retries": 0}, cache_dir=tmp_path / "cache")
        fresh.generate(_requests()[1:2])
        fresh.close()
        assert len(server.posts) == 1
    finally:
        stop(server.httpd)
