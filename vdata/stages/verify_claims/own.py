"""An answer must state something of its own (outside check h25 F10).

A short answer is checked with its question ("<question>: <answer>", stage.py's `_with_question`), so an
answer with no word at all ("...", "") left the question alone as the claim — which matches the evidence
by construction — and a VIGC rewrite reading `"..."` was kept `verified`, supported 1.0. Now:

- an answer of a task whose answer is checked (`OWN_TASKS`) with no word of its own gets the claim
  `(answer) '…'`, unsupported: the sample cannot pass on its question's words, whatever its ratio;
- a rewrite (`correct: true`) is held to the basic form checks wellformed applies before this stage, which
  never sees the rewrite: words, no ellipsis or template slot, no placeholder ("N/A", "unknown"), not the
  question repeated, at least `MIN_REWRITE_WORDS` words; a rewrite failing one is not judged and fails its
  round (`correction_failed` in the round's claim note);
- a rewrite passes only with at least one supported claim of its own (not a question premise).
"""
from __future__ import annotations

import re

from vdata.schemas import records as R

from .contradictions import SUPPORTED, UNSUPPORTED
from .facts import PLACEHOLDER, STOPWORDS, words

ANSWER_CLAIM = "(answer) "
PREMISE = "(question premise) "
# the tasks whose answer is the text checked (with its question when short): it must say something itself
OWN_TASKS = ("open_qa", "mcq", "cot", "caption")
MIN_REWRITE_WORDS = {"caption": 3}          # other tasks: 1 (an MCQ twin's answer is a word: "Tuesday")
NO_WORDS_NOTE = "the answer states nothing of its own: the question's words alone are no claim"
REWRITE_FAILED = "correction_failed"
_ELLIPSIS = re.compile(r"\.\s*\.\s*\.|…")
_SLOT = re.compile(r"<[a-z][a-z_ ]{0,24}>|\[[a-z][a-z_ ]{0,24}\]", re.I)
PLACEHOLDER_ANSWERS = {"n a", "na", "tbd", "todo", "unknown", "answer", "the answer", "your answer", "corrected answer",
                       "the corrected answer", "placeholder", "lorem ipsum", "insert answer here", "answer here",
                       "no answer", "i don't know", "i do not know", "not sure", "cannot answer", "none given", "xxx",
                       "same as above", "see above", "etc"}


def wordless(row: dict, task: str | None) -> bool:
    """The answer of a checked-answer task has no word at all (times are words here: {{span…}} answers
    a "When …?" question)."""
    return task in OWN_TASKS and not words(row.get(R.ANSWER) or "")


def answer_claim(answer: str) -> tuple[str, tuple[str, str]]:
    """The claim and verdict standing for an answer with nothing of its own."""
    return ANSWER_CLAIM + repr((answer or "").strip()[:40]), (UNSUPPORTED, NO_WORDS_NOTE)


def rewrite_issue(answer: str, question: str, task: str | None) -> str | None:
    """Why a teacher's rewrite is no answer, or None."""
    text = (answer or "").strip()
    said = words(PLACEHOLDER.sub(" ", text))
    if not said:
        return f"the rewrite {text[:40]!r} has no words"
    if _ELLIPSIS.search(text):
        return f"the rewrite {text[:60]!r} holds an ellipsis: cut off or a placeholder"
    if _SLOT.search(text):
        return f"the rewrite {text[:60]!r} keeps a template slot"
    if " ".join(said) in PLACEHOLDER_ANSWERS:
        return f"the rewrite {text[:40]!r} is a placeholder, not an answer"
    if said == words(PLACEHOLDER.sub(" ", question or "")):
        return "the rewrite repeats the question"
    least = MIN_REWRITE_WORDS.get(task or "", 1)
    if len(said) < least:
        return f"the rewrite has {len(said)} word(s) < {least}"
    return None


def own_support(claims: list[str], verdicts: list, answer: str) -> bool:
    """At least one supported claim of the answer's own: not a question premise nor the no-words stand-in,
    and saying a word of the answer (a CoT's rewritten answer is not supported by its old steps alone)."""
    said = set(words(PLACEHOLDER.sub(" ", answer or "")))
    own = (said - STOPWORDS) or said
    return any(v == SUPPORTED and not c.startswith((PREMISE, ANSWER_CLAIM)) and own & set(words(c))
               for c, (v, _) in zip(claims, verdicts))
