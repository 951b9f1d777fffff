"""A response body cut off on the way, or a gateway's HTML page sent with status 200 (outside check h25 F6).

The client retried such a reply in-run as transient, but the reject it ended in (`bad_response`) was not
marked `retry_on_resume`: a re-run with the server fixed never asked again and the rejects stayed. It is a
transport failure like a lost connection: transient, never cached, and its generate reject is retried by the
next run (what `checkpoint.count_retryable` counts). A well-formed reply whose content fails the schema stays
the model's: `bad_reply`, cached, not retried on resume. Real openai teacher and generate stage, a loopback
server that sends the broken bodies.
"""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from loopback_http import QuietHandler, chat_completion, send_json, serve, stop
from vdata.pipelines.checkpoint import count_retryable
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext, reject_row
from vdata.stages.generate.stage import GenerateConfig, GenerateStage
from vdata.teachers import TeacherRequest, build_teacher

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "minLength": 1}}, "required": ["answer"],
          "additionalProperties": False}
HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


class Broken:
    """Answers every chat request as `mode` says: `cut` (the first half of a valid body, its length declared as
    such: nothing at the HTTP level is wrong), `html` (a gateway's page with 200), `invalid` (a valid body whose
    content fails the schema) or `ok`."""

    def __init__(self, mode: str) -> None:
        self.mode, self.posts = mode, 0
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.read_json()
                owner.posts += 1
                if owner.mode in ("ok", "invalid"):
                    content = json.dumps({"answer": "Tom drives the truck."} if owner.mode == "ok" else {"nope": 1})
                    send_json(self, 200, chat_completion(content, model="scripted"))
                    return
                body = json.dumps(chat_completion('{"answer": "Tom drives the truck."}', model="scripted")).encode()
                body, kind = (body[: len(body) // 2], "application/json") if owner.mode == "cut" else (HTML, "text/html")
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd, self.base_url = serve(Handler)


@pytest.fixture
def server():
    made = []

    def make(mode):
        made.append(Broken(mode))
        return made[-1]

    yield make
    for s in made:
        stop(s.httpd)


def _teacher(url: str, cache_dir: str):
    return build_teacher("writer", {"backend": "openai", "base_url": url, "model": "scripted", "structured_output": "openai",
                                    "max_retries": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.02, "timeout_s": 10},
                         cache_dir=cache_dir)


@pytest.mark.parametrize("mode", ["cut", "html"])
def test_a_cut_or_foreign_body_is_transient_and_asked_again_by_the_next_run(server, mode, tmp_path):
    srv = server(mode)
    request = TeacherRequest.from_prompt("Where does Tom drive?", json_schema=SCHEMA, prompt_template_version="p1")
    t = _teacher(srv.base_url, str(tmp_path / "cache"))
    try:
        (res,) = t.generate([request])
    finally:
        t.close()
    assert res.error_kind == "bad_response" and res.transient, res.error
    assert res.attempts == 3 and srv.posts == 3                  # retried in-run, as before
    srv.mode = "ok"                                               # the server fixed: the next run asks, and gets it
    again = _teacher(srv.base_url, str(tmp_path / "cache"))
    try:
        (res2,) = again.generate([request])
    finally:
        again.close()
    assert res2.ok and res2.parsed == {"answer": "Tom drives the truck."} and srv.posts == 4


CLIP = {R.CLIP_ID: "train_0", R.VIDEO_ID: "train", R.START_S: 0.0, R.END_S: 6.0, R.DURATION_S: 18.0,
        R.SOURCE_URI: "file:///train.mp4", R.SAMPLE_SCOPE: R.SCOPE_CLIP,
        R.TRANSCRIPT_SEGMENTS: [{"start_s": 0.5, "end_s": 3.0, "text": "Peter waits for the train on Monday.", "words": []}]}


def _generate(url: str, cache_dir: str) -> list:
    teachers = {"writer": {"backend": "openai", "base_url": url, "model": "scripted", "structured_output": "openai",
                           "max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.02, "timeout_s": 10}}
    stage = GenerateStage(GenerateConfig(teacher="writer", tasks={"open_qa": {"per_clip": 1}}),
                          RunContext(output_dir="", teachers=teachers, cache_dir=cache_dir))
    stage.setup()
    try:
        return stage.process_batch([dict(CLIP)])
    finally:
        stage.close()


def _retryable(rejects: list[Reject]) -> int:
    rows = [reject_row("generate", r) for r in rejects]
    return count_retryable(pa.Table.from_pylist([{"detail": r[R.REJECT_DETAIL]} for r in rows]))


@pytest.mark.parametrize("mode", ["cut", "html"])
def test_generate_marks_a_cut_body_retry_on_resume(server, mode, tmp_path):
    srv = server(mode)
    (rej,) = _generate(srv.base_url, str(tmp_path / "cache"))
    assert isinstance(rej, Reject) and rej.reason == "teacher_error" and "bad_response" in rej.message
    assert rej.detail.get(R.RETRY_ON_RESUME) is True and _retryable([rej]) == 1


def test_a_well_formed_reply_that_fails_the_schema_stays_the_models_and_is_cached(server, tmp_path):
    srv = server("invalid")
    (rej,) = _generate(srv.base_url, str(tmp_path / "cache"))
    assert isinstance(rej, Reject) and rej.reason == "bad_reply" and R.RETRY_ON_RESUME not in rej.detail
    assert _retryable([rej]) == 0
    asked = srv.posts
    (again,) = _generate(srv.base_url, str(tmp_path / "cache"))   # the same reply would come back: from the cache
    assert isinstance(again, Reject) and again.reason == "bad_reply" and srv.posts == asked
