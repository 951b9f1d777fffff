"""Which timed clue a teacher's text is about: a grounding question must name its moment better than any other.

A grounding sample's span is the moment the stage asked about (never a model number), so a question that
describes another moment of the row is answered with the wrong time (h25 F11: asked about T2, "the brother
Tom carries seven green boxes to", the teacher wrote "When does Tom drive the truck to the harbor?", T5's
words; kept with T2's span). `rival_moment` compares the content words (light stems) of the text with each
timed clue's: the target must share more of them than every other timed clue at another time, else the
sample is `off_target` (another clue matches better) or `ambiguous_moment` (one matches as well).

A clue at the same moment is no rival: one whose span holds the target's (the clip's caption, a chapter,
an annotated segment around it), or one that overlaps it by at least half of the shorter of the two (the
subtitle of the same sentence, an event inside a speech segment). A point clue (a step, a frame) inside the
target is the same moment too; frames, whose text is no description, are left out.
"""
from __future__ import annotations

import re

from .clues import Clue

STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "is", "are", "was", "were", "be", "it", "that",
        "this", "with", "for", "as", "by", "when", "what", "which", "who", "how", "does", "do", "did", "video", "clip",
        "happen", "happens", "time", "moment", "someone", "says", "say", "because", "why", "there", "then", "where",
        "from", "into", "they", "he", "she", "his", "her", "their", "its", "after", "before", "while", "during"}
SAME_MOMENT_SHARE = 0.5   # overlap (of the shorter one) from which two spans are the same moment


def stem(w: str) -> str:
    """A light suffix stemmer: "chopping" / "chops" / "chopped" → "chop", "carries" / "carried" → "carry",
    "drives" / "drive" / "driving" → "driv"."""
    for suffix, keep in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + keep
            break
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


def stems(text: str, stop: set[str] | frozenset[str] = frozenset(STOP)) -> set[str]:
    return {stem(w) for w in re.findall(r"[a-z0-9]+", (text or "").lower()) if w not in stop and len(w) > 1}


def _bounds(c: Clue) -> tuple[float, float]:
    a = float(c.start_s)
    return a, float(c.end_s) if c.end_s is not None else a


def same_moment(c: Clue, target: Clue) -> bool:
    a, b = _bounds(c)
    ta, tb = _bounds(target)
    if a <= ta and b >= tb:                       # holds the target (a caption, a chapter around it)
        return True
    overlap = min(b, tb) - max(a, ta)
    shorter = min(b - a, tb - ta)
    if shorter <= 0:                              # a point: the same moment when it lies inside the other
        return overlap >= 0
    return overlap >= SAME_MOMENT_SHARE * shorter


def rival_moment(text: str, target: Clue, clues: list[Clue]) -> tuple[str, Clue, int, int] | None:
    """None when `text` shares more content words with `target` than with every timed clue at another
    moment (or shares none with any); else (reason, the best-matching rival, the target's count, the
    rival's count), reason `off_target` (the rival matches better) or `ambiguous_moment` (as well)."""
    words = stems(text)
    own = len(words & stems(target.text))
    best: tuple[int, Clue] | None = None
    for c in clues:
        if c.id == target.id or c.kind == "frame" or not c.timed or same_moment(c, target):
            continue
        n = len(words & stems(c.text))
        if n and n >= own and (best is None or n > best[0]):
            best = (n, c)
    if best is None:
        return None
    return ("off_target" if best[0] > own else "ambiguous_moment"), best[1], own, best[0]


def rival_message(what: str, target: Clue, found: tuple[str, Clue, int, int]) -> str:
    reason, rival, own, n = found
    how = "better than" if reason == "off_target" else "as well as"
    return (f"{what} matches {rival.id} ({n} content word(s): {rival.text[:80]!r}) {how} the moment it was asked "
            f"about, {target.id} ({own}): its span would answer another moment")
