"""Tier 2: the verifier teacher's verdict on one claim, held to a quote from the evidence.

No NLI model ships inside a PyPI package that this project can install (the NLI packages download
their weights from a model hub at run time), so the teacher is asked for a verdict — supported,
refuted or unsupported — together with the evidence sentence that supports or refutes the claim. A
small model often names a verdict without grounds; a verdict is only accepted when its quote really
stands in the evidence (fuzzy: the best window of the evidence matches the quote at `QUOTE_MIN_RATIO`
or more, so a dropped comma or a changed article still counts) and shares a content word with the
claim. Otherwise the verdict is downgraded to `unsupported`.
"""
from __future__ import annotations

from difflib import SequenceMatcher

from .contradictions import REFUTED, SUPPORTED, UNSUPPORTED
from .facts import PLACEHOLDER, content_words, words

QUOTE_MIN_RATIO = 0.85
JUDGE_SCHEMA = {
    "type": "object",
    # the quote first: the model copies its grounds before it names the verdict
    "properties": {"quote": {"type": "string", "maxLength": 300},
                   "verdict": {"type": "string", "enum": [SUPPORTED, REFUTED, UNSUPPORTED]}},
    "required": ["quote", "verdict"], "additionalProperties": False,
}


def quote_match(quote: str, evidence: str) -> float:
    """How well `quote` matches its best window of `evidence` (0..1), on normalised words."""
    q = words(quote)
    ev = words(PLACEHOLDER.sub(" ", evidence))
    if not q or not ev:
        return 0.0
    target = " ".join(q)
    best = 0.0
    for size in {max(1, len(q) - 2), len(q), len(q) + 2}:
        for i in range(0, max(1, len(ev) - size + 1)):
            window = " ".join(ev[i: i + size])
            m = SequenceMatcher(None, target, window, autojunk=False)
            if m.real_quick_ratio() <= best or m.quick_ratio() <= best:
                continue
            best = max(best, m.ratio())
            if best == 1.0:
                return best
    return best


def judged(claim: str, reply: dict, evidence: str) -> tuple[str, str]:
    """(verdict, note) for the teacher's reply: its verdict when the quote holds, else unsupported."""
    verdict = reply.get("verdict")
    quote = (reply.get("quote") or "").strip()
    if verdict not in (SUPPORTED, REFUTED):
        return UNSUPPORTED, f"judge: {verdict or 'no verdict'}"
    ratio = quote_match(quote, evidence)
    if ratio < QUOTE_MIN_RATIO:
        return UNSUPPORTED, (f"judge said {verdict}, but its quote {quote[:80]!r} is not in the evidence "
                             f"(best match {ratio:.2f} < {QUOTE_MIN_RATIO}): downgraded")
    if not content_words(quote) & content_words(claim):
        return UNSUPPORTED, f"judge said {verdict}, but its quote {quote[:80]!r} shares no word with the claim: downgraded"
    return verdict, f"judge: {verdict}, quoting {quote[:120]!r}"
