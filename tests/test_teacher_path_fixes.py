"""Fixes on the teacher paths found by an outside test (notes h4, F1–F5).

F2: verify_claims checks a caption written from speech against the transcript (independent of it); F3:
answer-first spans and grounding are per sentence; F4: count distractors at the answer's own scale; F5:
a counted phrase ends at punctuation.

F1: an `openai` teacher in front of a busy llama-cpp-python server. Its `/v1/models` waits for the model
lock, so a probe sent while the server generates gets no answer; that is no verdict on the server, and
the `json_schema` guess it leads to is refused with an HTTP 500 that names `json_schema`. The teacher
must move on to a dialect the server takes instead of retrying the refused body. The server here is a
real loopback HTTP server (stdlib, one thread per request) that behaves as llama-cpp-python 0.3 does on
these points; only the busy generation is staged.
"""
from __future__ import annotations

import json
import logging
import threading

import pytest

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate.answer_first import (answer_spans, check_question, distractors, masked, open_answer,
                                                sentences)
from vdata.stages.generate.clues import Clue
from vdata.stages.generate.questions import speech_spans
from vdata.stages.verify_claims import VerifyClaimsConfig, VerifyClaimsStage
from vdata.teachers import TeacherRequest
from vdata.teachers.config import parse_teacher_config
from vdata.teachers.openai_compat import OpenAITeacher
from loopback_http import QuietHandler, chat_completion, send_json, serve, stop

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
          "required": ["answer"], "additionalProperties": False}
# llama-cpp-python 0.3.36's answer to response_format type json_schema (its request model takes text | json_object)
REFUSAL = ("1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
           "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
           "'ctx': {'expected': \"'text' or 'json_object'\"}}")


class LlamaCppLike:
    """A loopback server with llama-cpp-python's behaviour on the probe and on structured output:
    `/v1/models` (models owned by "me") and generation share one model lock; `/version` is a 404;
    a `json_schema` response_format is refused before any generation with an HTTP 500; `json_object`
    (with a schema) is answered with JSON that fits it.

    `busy()` stages another client's long generation: it holds the model lock until the next chat
    request arrives, so a probe sent meanwhile waits (as it does on the real server) and is given up by
    its client, and nothing in the test depends on how long anything takes."""

    def __init__(self) -> None:
        self.model_lock = threading.Lock()
        self.posts: list[dict] = []     # the response_format (or None) of every chat POST, in order
        self.gets: list[str] = []
        self._busy = threading.Event()
        owner = self

        class Handler(QuietHandler):

            def _send(self, status: int, body: dict) -> None:
                send_json(self, status, body)   # a client that gave up waiting (the probe's timeout) is no error

            def do_GET(self) -> None:
                owner.gets.append(self.path)
                if self.path != "/v1/models":
                    self._send(404, {"detail": "Not Found"})
                    return
                with owner.model_lock:   # llama-cpp-python takes the model lock to list its model
                    self._send(200, {"object": "list", "data": [
                        {"id": "smollm2", "object": "model", "owned_by": "me", "permissions": []}]})

            def do_POST(self) -> None:
                body = self.read_json()
                fmt = body.get("response_format")
                owner.posts.append(fmt)
                if owner._busy.is_set():   # the staged long generation ends as the next request queues
                    owner._busy.clear()
                    owner.model_lock.release()
                if fmt and fmt.get("type") not in ("text", "json_object"):   # request validation, before the lock
                    self._send(500, {"error": {"message": REFUSAL, "type": "internal_server_error"}})
                    return
                with owner.model_lock:
                    content = json.dumps({"answer": "yes"}) if fmt else "yes"
                    self._send(200, chat_completion(content, model="smollm2", completion_tokens=5))

        self.httpd, self.base_url = serve(Handler)

    def busy(self) -> None:
        self.model_lock.acquire()
        self._busy.set()

    def close(self) -> None:
        stop(self.httpd)


@pytest.fixture
def llama():
    srv = LlamaCppLike()
    yield srv
    srv.close()


def _teacher(url: str, **over) -> OpenAITeacher:
    cfg = {"backend": "openai", "base_url": url, "model": "smollm2", "max_retries": 5, "backoff_base_s": 0.01,
           "backoff_max_s": 0.05, **over}
    t = OpenAITeacher("writer", parse_teacher_config(cfg))
    t.probe_timeout_s = 0.3   # the probe's own deadline: it expires while the staged generation holds the lock
    return t


def _ask(t: OpenAITeacher):
    return t.generate([TeacherRequest.from_prompt("Is the sky blue? Answer yes or no.", json_schema=SCHEMA)])[0]


def test_busy_server_probe_is_no_verdict_and_a_refused_dialect_falls_back(llama, caplog):
    caplog.set_level(logging.INFO, logger="vdata.teachers")
    t = _teacher(llama.base_url)
    try:
        llama.busy()
        res = _ask(t)
        assert res.ok and res.parsed == {"answer": "yes"}, res.error
        # one refused json_schema attempt (never retried: the same body fails the same way), then json_object
        assert [f and f["type"] for f in llama.posts] == ["json_schema", "json_object"], llama.posts
        assert llama.posts[1]["schema"] == SCHEMA
        # the unanswered probe was not cached as the server's kind; the refusal taught the dialect
        assert t._server_kind is None
        assert t.stats()["structured_output"] == "llamacpp"
        assert any(r.levelno >= logging.WARNING and "'llamacpp'" in r.getMessage() for r in caplog.records)
        # later requests go straight to the dialect the server takes
        assert _ask(t).ok and [f["type"] for f in llama.posts[2:]] == ["json_object"]
        # once the server is idle the probe is asked again and its answer is the verdict
        t.probe_retry_s = 0.0
        t._probe_again_at = 0.0
        assert t._loop.run(t._probe_server()) == "llamacpp" and t._server_kind == "llamacpp"
        assert llama.gets.count("/v1/models") == 2
    finally:
        t.close()


def test_idle_server_probe_picks_the_llamacpp_dialect_first(llama):
    t = _teacher(llama.base_url)
    try:
        res = _ask(t)
        assert res.ok and [f["type"] for f in llama.posts] == ["json_object"]
        assert t._server_kind == "llamacpp" and t.stats()["structured_output"] == "llamacpp"
    finally:
        t.close()


def test_a_configured_dialect_the_server_refuses_fails_once_naming_the_setting(llama):
    t = _teacher(llama.base_url, structured_output="openai")
    try:
        res = _ask(t)
        assert not res.ok and "json_schema" in res.error and "structured_output: openai" in res.error
        assert res.attempts == 1 and len(llama.posts) == 1   # no retries of a refused body
        assert llama.gets == []   # a configured dialect needs no probe
    finally:
        t.close()


# --- F3–F5: answer-first spans, grounding and distractors (Whisper's own transcripts of the h4 narrations) ---

SEGMENT = "The cookies bake for 15 minutes on a blue tray. Her neighbor Peter eats 4 cookies on Sunday."


def test_answer_first_spans_grounding_and_quote_stay_in_one_sentence():
    first, second = "The cookies bake for 15 minutes on a blue tray.", "Her neighbor Peter eats 4 cookies on Sunday."
    spans = speech_spans([Clue("s1", "speech", SEGMENT, 0.0, 6.0)])
    assert {s.sentence for s, _ in spans} == {first, second}
    blue = next(s for s, _ in spans if s.kind == "colour")
    minutes = next(s for s, _ in spans if s.key == "15")
    # a question that takes its subject from one sentence and its answer from the other is not grounded
    assert check_question("What colour is the neighbor on Sunday?", blue) == "ungrounded_question"
    assert check_question("How many minutes does Peter eat 4 cookies?", minutes) == "ungrounded_question"
    assert check_question("How many minutes do the cookies bake on a blue tray?", minutes) is None
    assert open_answer(minutes) == f'15 minutes: the narrator says "{first.rstrip(".")}."'
    assert masked(minutes) == "The cookies bake for ___ on a blue tray."
    # an abbreviation or an initial ends no sentence
    assert sentences("Mr. Smith fixes 3 bikes. J. Lee helps him!") == ["Mr. Smith fixes 3 bikes.", "J. Lee helps him!"]


def test_count_distractors_are_near_the_answer_and_do_not_give_it_away():
    for n in [*range(4, 400), 450, 500, 750, 1000, 1500, 2024, 5000]:
        span = next(s for s in answer_spans(f"The repair takes {n} minutes.") if s.kind == "number")
        ranks = set()
        for seed in range(24):
            wrong = distractors(span, 3, f"sample-{seed}")
            values = [int(w.split()[0]) for w in wrong]
            # one only with the noun in the singular ("1 minute")
            assert len(set(values)) == 3 and n not in values and min(values) >= 1, (n, wrong)
            assert all(w == "1 minute" for w in wrong if w.split()[0] == "1"), (n, wrong)
            assert all(n / 4 <= v <= 3 * n for v in values), (n, wrong)   # the answer's own magnitude
            for r in (10, 100, 1000):   # never the only round number
                assert n % r or any(v % r == 0 for v in values), (n, wrong)
            ranks.add(sorted(values + [n]).index(n))
        assert len(ranks) >= 3, (n, ranks)   # neither always the largest nor always the smallest
    # a spelled-out count gets spelled-out distractors, and "twelve" is not always the largest
    twelve = next(s for s in answer_spans("She bakes twelve loaves of bread.") if s.kind == "number")
    options = [distractors(twelve, 3, f"sample-{seed}") for seed in range(24)]
    assert all(o.split()[0].isalpha() for opts in options for o in opts)
    assert any("thirteen loaves of bread" in opts for opts in options)


def test_a_counted_phrase_stops_at_punctuation():
    seg = "first, preheat the oven to 200 degrees, add 2 cups of sugar to the bowl, whisk 3 eggs with a fork."
    nums = [s for s in answer_spans(seg) if s.kind == "number"]
    assert [(s.text, s.opener) for s in nums] == [("200 degrees", "How many degrees"),
                                                  ("2 cups of sugar", "How many cups of sugar"),
                                                  ("3 eggs", "How many eggs")]
    assert all("," not in d for s in nums for d in distractors(s, 3, "sample-1"))
    assert not [s for s in answer_spans("Bake it for 200, then cool it.") if s.kind == "number"]
    # a number written with a separator is one number: neither of its parts is an answer
    assert not [s for s in answer_spans("Pour 1,500 milliliters of water and 2.5 cups of milk.") if s.kind == "number"]


# --- F2: a caption written from speech is checked against the transcript (Whisper tiny.en's, from h4) -------

TRANSCRIPT = "Maria makes 12 cookies on Saturday. She eats November to 100 and 80 degrees. She mixes 3 eggs with two"


def _caption_sample(sid: str, caption: str, frames: list[float], transcript: str | None = TRANSCRIPT) -> dict:
    segs = [{"start_s": 0.0, "end_s": 6.0, "clip_start_s": 0.0, "clip_end_s": 6.0, "text": transcript, "words": []}]
    return {R.SAMPLE_ID: sid, R.CLIP_ID: "cooking_0", R.VIDEO_ID: "cooking", R.START_S: 0.0, R.END_S: 6.0,
            R.TASK: "caption", R.QUESTION: "Describe this video in detail.", R.ANSWER: caption, R.CAPTION: caption,
            R.CAPTION_STRATEGY: "multi_frame", R.CAPTION_FRAME_TIMESTAMPS: frames, R.SOURCE_META: "{}",
            R.TRANSCRIPT_TEXT: transcript, R.TRANSCRIPT_SEGMENTS: segs if transcript else [],
            R.EVIDENCE: {"captions": [caption], "frame_timestamps_s": [], "transcript_spans": []}}


def test_caption_samples_are_checked_against_the_speech_they_do_not_come_from():
    stage = VerifyClaimsStage(VerifyClaimsConfig(evidence_sources=["transcript", "cited"], relevance_min=None,
                                                 min_supported_ratio=0.75, max_refuted_claims=0),
                              RunContext(output_dir="", teachers={}))
    stage.setup()
    wrong = ("The speech tells the story of Maria, who makes 12 cookies on Saturday. She mixes two eggs with two, "
             "which is an example of her creative use of technology in her life.")
    rows = [_caption_sample("speech-wrong", wrong, []),                       # written from speech (use_frames: false)
            _caption_sample("speech-right", "Maria makes 12 cookies on Saturday. She mixes 3 eggs.", []),
            _caption_sample("speech-alone", wrong, [], transcript=None),      # no speech to check it against
            _caption_sample("frames-seen", "A woman in a red apron stands at a kitchen counter.", [0.5, 3.0]),
            _caption_sample("frames-wrong", "A woman stands at a counter. She mixes two eggs with two.", [0.5, 3.0])]
    out = {(r.row if isinstance(r, Reject) else r)[R.SAMPLE_ID]: r for r in stage.process_batch(rows)}
    # the speech caption that miscounts the eggs is contradicted by the transcript, never kept as unverified
    bad = out["speech-wrong"]
    assert isinstance(bad, Reject) and bad.reason == "contradicted", bad
    assert any(c["verdict"] == "refuted" and "two eggs" in c["claim"] for c in bad.row[R.V_CLAIMS])
    good = out["speech-right"]
    assert not isinstance(good, Reject) and good[R.V_STATUS] == R.STATUS_VERIFIED and good[R.V_SUPPORTED_RATIO] == 1.0
    # no independent evidence: unverified, as before
    alone = out["speech-alone"]
    assert not isinstance(alone, Reject) and alone[R.V_STATUS] == R.STATUS_UNVERIFIED and alone[R.V_CLAIMS] == []
    # a caption of what was seen is not dropped for being unnarrated, only for contradicting the speech
    seen = out["frames-seen"]
    assert not isinstance(seen, Reject) and seen[R.V_STATUS] == R.STATUS_UNVERIFIED and seen[R.V_CLAIMS] == []
    assert isinstance(out["frames-wrong"], Reject) and out["frames-wrong"].reason == "contradicted"


def test_a_sentence_opening_verb_or_adverb_is_no_name():
    """Outside check (h4 F6): imperative narration ("Pour the batter ...") made 'Who' questions answered 'Pour'."""
    from vdata.stages.generate.answer_first import answer_spans

    def names(text):
        return [s.text for s in answer_spans(text) if s.kind == "name"]

    recipe = ("Add two cups of sugar to the bowl. Whisk three eggs with a fork. Pour the batter into a yellow pan. "
              "Carefully remove the four screws on the back. Next, replace the battery. Chop onions finely.")
    assert names(recipe) == []
    assert names("Maria bakes twelve cookies on Saturday. Her neighbour Peter eats four cookies.") == ["Maria", "Peter"]
    assert names("Tom repaired the bike. Anna is his sister.") == ["Tom", "Anna"]
    assert names("Lena, the baker, sells bread. Then Lena leaves.")[0] == "Lena"   # seen inside a sentence too
