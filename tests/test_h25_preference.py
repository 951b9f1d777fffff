"""Preference pairs after the outside check h25 (F4, F5), on the real generate stage and its openai teacher,
the writer and judge being a scripted loopback server (a small local model cannot be made to hit the answer
cap or to answer the judge out of range on cue).

- F4: a candidate that reached the schema's answer cap (`max_answer_chars`: the grammar closes the string at
  the cap and the reply ends "stop") was used as `chosen` cut mid-sentence. Now such a candidate keeps its
  complete sentences, and one with none is no candidate (`error` "truncated: ...").
- F5: a judge reply out of the schema's range (`scores: [0, 1, 2, 3]`, minimum 1) was dropped silently and the
  pair decided by the writers' self-critique alone. Now the judge is asked once more, and a pair it still gave
  no scores is a `judge_failed` reject (marked `retry_on_resume` when the failure may pass), counted.
"""
from __future__ import annotations

import json
import re

import pytest

from loopback_http import QuietHandler, chat_completion, send_json, serve, stop
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate.stage import GenerateConfig, GenerateStage
from test_grounded_spans import _seg   # the ASR segment of those tests

CAP = 300


def _cut(text: str) -> str:
    assert len(text) > CAP
    return text[:CAP]


# what each candidate writes, by its temperature: the first two reach the cap (the second has no sentence end)
CUT_WITH_SENTENCES = _cut("Maria paints four blue chairs on Tuesday. Her brother Tom carries seven green boxes to the "
                          "truck. At noon Maria sells three yellow lamps to Clara and then walks along the harbour "
                          "wall, looking at the boats that come in from the sea while Tom waits by the truck with the "
                          "boxes and the lamps and the chairs that are left over from the morning")
CUT_NO_SENTENCE = _cut("Maria paints four blue chairs on Tuesday while her brother Tom carries seven green boxes to "
                       "the truck and at noon Maria sells three yellow lamps to Clara and then walks along the "
                       "harbour wall looking at the boats that come in from the sea while Tom waits by the truck "
                       "with the boxes and the lamps and the chairs left over")
SHORT_RIGHT = "Tom drives the truck to the harbour on Friday."
SHORT_WRONG = "Maria sells balloons."
BY_TEMPERATURE = {0.3: CUT_WITH_SENTENCES, 0.7: CUT_NO_SENTENCE, 1.0: SHORT_RIGHT, 1.3: SHORT_WRONG}
WHOLE = "Maria paints four blue chairs on Tuesday. Her brother Tom carries seven green boxes to the truck."
JUDGE_SCORES = {WHOLE[:40]: 9, SHORT_RIGHT[:40]: 6, SHORT_WRONG[:40]: 2}
SELF_SCORES = {SHORT_WRONG[:40]: 10}   # a small writer rates its own wrong answer highest


ROW = {R.CLIP_ID: "harbour:video", R.VIDEO_ID: "harbour", R.START_S: 0.0, R.END_S: 24.0, R.DURATION_S: 24.0,
       R.SAMPLE_SCOPE: R.SCOPE_VIDEO,
       R.TRANSCRIPT_SEGMENTS: [_seg(0.4, 3.0, "Maria paints four blue chairs on Tuesday."),
                               _seg(6.4, 9.3, "Her brother Tom carries seven green boxes to the truck."),
                               _seg(12.4, 15.8, "At noon, Maria sells three yellow lamps to Clara."),
                               _seg(18.4, 21.9, "Finally, Tom drives the truck to the harbour on Friday.")]}


class Scripted:
    """The writer and judge. `judge(n)` answers the n-th judge request (0-based, re-asks included): a reply
    body dict, or an int HTTP status to fail with."""

    def __init__(self, judge) -> None:
        self.judge, self.kinds = judge, []
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.read_json()
                status, content = owner.reply(body)
                if status != 200:
                    send_json(self, status, {"error": {"message": "busy"}})
                else:
                    send_json(self, 200, chat_completion(content, model="scripted"))

        self.httpd, self.base_url = serve(Handler)

    def reply(self, body: dict) -> tuple[int, str]:
        first = next(m["content"] for m in body["messages"] if m["role"] == "user")
        first = first if isinstance(first, str) else " ".join(p.get("text", "") for p in first)
        if first.startswith("You grade answers"):
            n = sum(k == "judge" for k in self.kinds)
            self.kinds.append("judge")
            got = self.judge(n, first)
            return (got, "") if isinstance(got, int) else (200, json.dumps(got))
        if first.startswith("You check your own answer"):
            self.kinds.append("critique")
            answer = re.search(r"Your answer: (.*)", first).group(1)
            return 200, json.dumps({"critique": "nothing", "score": SELF_SCORES.get(answer[:40], 3)})
        self.kinds.append("candidate")
        return 200, json.dumps({"answer": BY_TEMPERATURE[body["temperature"]]})


def judged_by_text(n: int, prompt: str) -> dict:
    answers = re.findall(r"^Answer \d+: (.*)$", prompt, re.M)
    return {"scores": [JUDGE_SCORES.get(a[:40], 5) for a in answers]}


def out_of_range(n: int, prompt: str) -> dict:
    count = int(re.search(r"a list of (\d+) integers", prompt).group(1))
    return {"scores": list(range(count))}   # 0, 1, 2, ...: the schema's minimum is 1


@pytest.fixture
def run(tmp_path):
    servers = []

    def go(judge):
        server = Scripted(judge)
        servers.append(server)
        teachers = {"t": {"backend": "openai", "base_url": server.base_url, "model": "scripted",
                          "structured_output": "openai", "max_retries": 0, "timeout_s": 10}}
        cfg = GenerateConfig(teacher="t", scope="video", tasks={"preference_pairs": {
            "per_clip": 1, "candidates": 4, "temperatures": sorted(BY_TEMPERATURE)}})
        stage = GenerateStage(cfg, RunContext(output_dir="", teachers=teachers, cache_dir=str(tmp_path / f"c{len(servers)}")))
        stage.setup()
        try:
            (out,) = stage.process_batch([dict(ROW)])
        finally:
            stage.close()
        return out, stage.take_counters(), server

    yield go
    for s in servers:
        stop(s.httpd)


def test_a_candidate_cut_at_the_answer_cap_is_never_a_cut_chosen_or_rejected(run):
    pair, counters, _ = run(judged_by_text)
    assert not isinstance(pair, Reject), pair
    cands = {c["temperature"]: c for c in pair[R.PREFERENCE_CANDIDATES]}
    # the cut candidate with whole sentences before the cut keeps them; the one without is no candidate
    assert cands[0.3]["text"] == WHOLE and cands[0.3]["error"] is None
    assert cands[0.7]["text"] is None and cands[0.7]["error"].startswith("truncated")
    assert cands[0.7]["judge_score"] is None and cands[0.7]["rank"] is None
    for text in (pair[R.CHOSEN], pair[R.REJECTED]):
        assert len(text) < CAP and text.rstrip().endswith(".")
    assert pair[R.CHOSEN] == WHOLE and pair[R.REJECTED] == SHORT_WRONG
    assert counters["preference_candidates_trimmed"] == 1 and counters["preference_candidates_cut_off"] == 1
    assert counters["preference_pairs_ranked_by_judge+self_critique"] == 1


def test_a_judge_reply_out_of_range_is_asked_again_then_the_pair_is_rejected_not_ranked_by_self_critique(run):
    out, counters, server = run(out_of_range)
    assert isinstance(out, Reject) and out.reason == "judge_failed", out
    assert "schema_invalid" in out.detail["judge_error"]
    assert all(c["judge_score"] is None for c in out.detail["candidates"])
    assert "retry_on_resume" not in out.detail          # the model's reply, cached: a re-run gets the same
    # the teacher's own re-asks (2 by default) for the first request, then one fresh judge request with its own
    assert server.kinds.count("judge") == 6
    assert counters["preference_judge_asked_again"] == 1 and counters["preference_judge_failed"] == 1
    assert not any(k.startswith("preference_pairs_ranked_by") for k in counters)


def test_a_judge_that_answers_when_asked_again_ranks_the_pair(run):
    out, counters, server = run(lambda n, prompt: out_of_range(n, prompt) if n < 3 else judged_by_text(n, prompt))
    assert not isinstance(out, Reject), out
    scored = [c for c in out[R.PREFERENCE_CANDIDATES] if c["text"]]
    assert all(c["judge_score"] is not None for c in scored)
    assert out[R.CHOSEN] == WHOLE                      # the judge's preference, not the writer's self-score
    assert counters["preference_judge_asked_again"] == 1 and counters.get("preference_judge_failed", 0) == 0
    assert server.kinds.count("judge") == 4


def test_a_judge_whose_server_fails_gives_a_reject_the_next_run_retries(run):
    out, counters, server = run(lambda n, prompt: 503)
    assert isinstance(out, Reject) and out.reason == "judge_failed", out
    assert out.detail["retry_on_resume"] is True
    assert server.kinds.count("judge") == 1            # max_retries 0, and a server failure is not re-asked
    assert counters.get("preference_judge_asked_again", 0) == 0
