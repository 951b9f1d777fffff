"""Words as the speech check compares them: lower-case tokens, number words written as digits.

Whisper writes numbers as digits ("forty pies" is heard as "40 pies"), while a needle's transcript may
spell them out (or the other way round), so both sides are brought to digits before they are compared.
The number words of the stated-times detector (vdata/prompts/stated_times.py: zero to nineteen, the
tens) and "hundred" cover what a spoken needle says; a library
(Whisper's EnglishTextNormalizer, text2num) would pull in a dependency, and its other rewrites
(spellings, currencies, ordinals) for a check that only needs numbers.
"""
from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

from vdata.prompts.stated_times import NUMBER_TENS as TENS
from vdata.prompts.stated_times import NUMBER_UNITS as UNITS


def _below_100(tokens: list[str], i: int) -> tuple[int | None, int]:
    """(value, next index) of "forty two" / "forty" / "seven" at tokens[i], or (None, i)."""
    if i < len(tokens) and tokens[i] in TENS:
        value = TENS[tokens[i]]
        if i + 1 < len(tokens) and 0 < UNITS.get(tokens[i + 1], 0) < 10:
            return value + UNITS[tokens[i + 1]], i + 2
        return value, i + 1
    if i < len(tokens) and tokens[i] in UNITS:
        return UNITS[tokens[i]], i + 1
    return None, i


def digits(tokens: list[str]) -> list[str]:
    """Number words as digits: "forty two" -> "42", "three hundred and five" -> "305", "a hundred" stays."""
    out, i = [], 0
    while i < len(tokens):
        value, j = _below_100(tokens, i)
        if value is None:
            out.append(tokens[i])
            i += 1
            continue
        if j < len(tokens) and tokens[j] == "hundred":
            value *= 100
            k = j + 2 if j + 1 < len(tokens) and tokens[j + 1] == "and" else j + 1
            rest, after = _below_100(tokens, k)
            j = after if rest is not None else j + 1
            value += rest or 0
        out.append(str(value))
        i = j
    return out


def words(s: str) -> list[str]:
    return digits(re.findall(r"[a-z0-9']+", s.lower()))


def same_word(a: str, b: str) -> bool:
    """Equal, or alike in spelling (ASR slips); numbers only when equal ("4" is not "40")."""
    if a == b:
        return True
    if a.isdigit() or b.isdigit():
        return False
    return SequenceMatcher(None, a, b).ratio() >= 0.75


def fold_text(text: str) -> str:
    """Text as the OCR check compares it: NFKC, case-folded, accents dropped (the OCR model reads "û" as
    "u": it has no "û" to write), letters and digits of any script only (spacing and punctuation are not
    what the check is about)."""
    s = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    s = unicodedata.normalize("NFKC", "".join(c for c in s if not unicodedata.combining(c)))
    return "".join(c for c in s if c.isalnum())


def text_similarity(expected: str, found: str) -> float:
    """Share of the expected characters (`fold_text`: letters and digits of any script) found in order in `found`."""
    e, f = fold_text(expected), fold_text(found)
    if not e:
        return 0.0
    return sum(b.size for b in SequenceMatcher(None, e, f, autojunk=False).get_matching_blocks()) / len(e)
