"""Tier 1's word match is not a bag of words, and facts found are not the whole claim (outside check h25 F13).

Against the narration "At noon, Maria sells three yellow lamp to Clara." the answer "Clara sells three yellow
lamps to Maria." was `verified` (every word stands in the sentence: agent and recipient swapped), and
"Tom carries the seven green boxes to the boat." was `verified` because only counts, names, colours and
days are checkable facts, so "boat" was never looked up and the judge never asked; with the judge failing,
"Tom carries heavy boxes that he bought yesterday." was kept too. Now a claim whose content words the
evidence lacks is left to the judge (unsupported when a judge was asked and failed, or as `undecided:` says
without one), and names in swapped roles are not supported by word match — while reordered and passive
paraphrases, and short answers checked with their question, still pass.
"""
from __future__ import annotations

import pytest

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.verify_claims import SUPPORTED, UNSUPPORTED, Evidence, VerifyClaimsConfig, VerifyClaimsStage, match_claim
from vdata.stages.verify_claims.facts import content_words
from vdata.teachers.types import TeacherResult

SPEECH = [(0.4, 3.0, "Maria paints four blue chairs on Tuesday."),
          (6.4, 9.3, "Her brother Tom carries seven green boxes to the truck."),
          (12.4, 15.8, "At noon, Maria sells three yellow lamp to Clara."),
          (18.4, 21.9, "Finally, Tom drives the truck to the harbor on Friday.")]
EV = Evidence.of([], [t for _, _, t in SPEECH])
DEAD = {"dead": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0,
                 "timeout_s": 5}}


def _row(sid: str, question: str, answer: str, task: str = "open_qa") -> dict:
    return {R.SAMPLE_ID: sid, R.CLIP_ID: "harbour:video", R.VIDEO_ID: "harbour", R.START_S: 0.0, R.END_S: 24.0,
            R.TASK: task, R.QUESTION: question, R.ANSWER: answer, R.CAPTION: None, R.DENSE_EVENTS: [],
            R.SOURCE_META: "{}", R.TRANSCRIPT_TEXT: " ".join(t for _, _, t in SPEECH),
            R.TRANSCRIPT_SEGMENTS: [{"start_s": a, "end_s": b, "text": t} for a, b, t in SPEECH],
            R.EVIDENCE: {"captions": [], "frame_timestamps_s": [], "transcript_spans": []}}


def _tier1(claim: str, question: str = "") -> str | None:
    return match_claim(claim, EV, content_words(question) if question else frozenset())[0]


# --- tier 1 alone ------------------------------------------------------------------------------------

def test_swapped_roles_are_not_supported_by_word_match():
    assert _tier1("Clara sells three yellow lamps to Maria.") != SUPPORTED
    assert _tier1("Who sells three yellow lamps to Maria at noon: Clara",
                  "Who sells three yellow lamps to Maria at noon?") != SUPPORTED
    assert _tier1("To whom does Clara sell three yellow lamps: Maria",
                  "To whom does Clara sell three yellow lamps?") != SUPPORTED


@pytest.mark.parametrize("claim,question", [
    ("Maria sells three yellow lamps to Clara.", ""),
    ("At noon, Maria sells three yellow lamps to Clara", ""),
    ("The three yellow lamps are sold by Maria to Clara.", ""),          # passive: the same roles
    ("Three yellow lamps are sold to Clara by Maria at noon.", ""),
    ("Who sells three yellow lamps to Clara at noon: Maria", "Who sells three yellow lamps to Clara at noon?"),
    ("To whom does Maria sell three yellow lamps: Clara", "To whom does Maria sell three yellow lamps?"),
    ("Tom carries the seven green boxes to the truck.", "Where does Tom carry the seven green boxes?"),
    ("Tom carried seven green boxes to the truck.", ""),                 # another tense is the same word
    ("What colour are the boxes Tom carries to the truck: Green",          # the question's own words are given
     "What colour are the boxes Tom carries to the truck?"),
    ("On which day does Maria paint the four blue items: Tuesday", "On which day does Maria paint the four blue items?"),
])
def test_paraphrases_and_short_answers_still_pass_word_match(claim, question):
    assert _tier1(claim, question) == SUPPORTED, match_claim(claim, EV, content_words(question))


@pytest.mark.parametrize("claim,question", [
    ("Tom carries the seven green boxes to the boat.", "Where does Tom carry the seven green boxes?"),
    ("Tom carries seven heavy green boxes that he bought yesterday.", "What does Tom carry to the truck?"),
    ("Maria sells three yellow lamps that she made herself.", "What does Maria sell at noon?"),
])
def test_a_claim_adding_words_the_evidence_lacks_is_left_open(claim, question):
    verdict, note = match_claim(claim, EV, content_words(question))
    assert verdict is None and "not in the evidence" in note, (verdict, note)


# --- the stage -----------------------------------------------------------------------------------------

class Judge:
    """Records the claims it is asked about; answers `unsupported`, or fails like a 500."""

    def __init__(self, fail: bool = False):
        self.fail, self.asked = fail, []

    def generate(self, requests):
        out = []
        for req in requests:
            content = req.messages[-1].content
            self.asked.append(content if isinstance(content, str) else " ".join(getattr(p, "text", "") or "" for p in content))
            out.append(TeacherResult(request_id="r", error="server_error: 500") if self.fail
                       else TeacherResult(request_id="r", parsed={"quote": "", "verdict": "unsupported"}))
        return out


def _with_judge(fail: bool = False, **cfg) -> tuple[VerifyClaimsStage, Judge]:
    stage = VerifyClaimsStage(VerifyClaimsConfig(teacher="dead", evidence_sources=["transcript", "cited"],
                                                 min_supported_ratio=0.5, max_refuted_claims=0, **cfg),
                              RunContext(output_dir="", teachers=DEAD))
    stage.setup()
    stage.teacher = Judge(fail)
    return stage, stage.teacher


BOAT = ("Where does Tom carry the seven green boxes?", "Tom carries the seven green boxes to the boat.")
INVENTED = [("What does Tom carry to the truck?", "Tom carries heavy boxes that he bought yesterday."),
            ("What does Maria sell at noon?", "Maria sells three yellow lamps that she made herself.")]
SWAP = ("Who sells three yellow lamps to Maria at noon?", "Clara sells three yellow lamps to Maria.")


def test_a_wrong_destination_and_swapped_roles_go_to_the_judge():
    stage, judge = _with_judge()
    results = stage.process_batch([_row("boat", *BOAT), _row("swap", *SWAP)])
    assert any("to the boat" in text for text in judge.asked), "the judge was never asked about the boat"
    assert any("Clara sells three yellow lamps to Maria" in text for text in judge.asked), "nor about the swap"
    for res in results:
        assert isinstance(res, Reject) and res.reason == "hallucination", res


def test_invented_details_are_not_verified_when_the_judge_fails():
    stage, judge = _with_judge(fail=True)
    results = stage.process_batch([_row(f"inv{k}", q, a) for k, (q, a) in enumerate(INVENTED + [BOAT])])
    assert len(judge.asked) >= 3
    for res in results:
        assert isinstance(res, Reject) and res.reason == "hallucination", res
        assert res.detail.get(R.RETRY_ON_RESUME), res.detail   # the judge may answer on the next run


def test_swapped_roles_are_rejected_without_a_judge():
    """No judge, `undecided: supported` (the default): a role swap is never taken on trust."""
    stage = VerifyClaimsStage(VerifyClaimsConfig(), RunContext(output_dir=""))
    stage.setup()
    (res,) = stage.process_batch([_row("swap", *SWAP)])
    assert isinstance(res, Reject) and res.reason == "hallucination", res
    assert any("roles swapped" in c["note"] for c in res.row[R.V_CLAIMS])
    kept = stage.process_batch([
        _row("right", "Who sells three yellow lamps to Clara at noon?", "Maria sells three yellow lamps to Clara."),
        _row("passive", "What happens at noon?", "The lamps are sold by Maria to Clara."),
        _row("passive3", "What happens at noon?", "The three yellow lamps are sold by Maria to Clara."),
        _row("twin", "Who sells three yellow lamps to Clara at noon?", "Maria")])
    for res in kept:
        assert not isinstance(res, Reject), (res.reason, res.message)
        assert res[R.V_STATUS] == R.STATUS_VERIFIED


def test_without_a_judge_added_words_follow_the_undecided_setting():
    strict = VerifyClaimsStage(VerifyClaimsConfig(undecided="unsupported", relevance_min=None), RunContext(output_dir=""))
    strict.setup()
    (res,) = strict.process_batch([_row("boat", *BOAT)])
    assert isinstance(res, Reject) and res.reason == "hallucination", res
    assert res.row[R.V_CLAIMS][0]["verdict"] == UNSUPPORTED and "boat" in res.row[R.V_CLAIMS][0]["note"]
    (right,) = strict.process_batch([_row("truck", BOAT[0], "Tom carries the seven green boxes to the truck.")])
    assert not isinstance(right, Reject), (right.reason, right.message)
