"""Tier 1 verdicts: a claim against the evidence by string matching, before any model is asked.

`match_claim` gives one of
- `refuted`: the evidence says otherwise — the same statement with the opposite polarity ("is not" vs
  "is"), another count of the same thing ("four loaves" where the evidence has three), another name in
  an otherwise matching statement ("Anna bakes bread" where the evidence says "Maria bakes bread"), a
  colour+shape pair or a shape count the evidence has differently;
- `unsupported`: the claim states something checkable that the evidence lacks (quoted or on-screen
  text, spoken words, a colour or shape, a name the evidence never mentions);
- `supported`: every content word of the claim stands in one evidence sentence of the same polarity
  with its names in the same roles, or every checkable fact is found and every other content word
  stands in the evidence too (beyond the question's own words; `wording.py`);
- None: nothing decidable by matching (left to the off-topic check and the judge) — also a claim whose
  names play swapped roles in the sentence that has its words, or one that adds content words the
  evidence lacks.

These checks are deliberately literal: a paraphrase is left undecided rather than guessed at.
"""
from __future__ import annotations

from .facts import (PLACEHOLDER, Evidence, content_words, extract_facts, has_negation, names_in, words)
from .wording import MISSING, missing_words, role_conflict

SUPPORTED, REFUTED, UNSUPPORTED = "supported", "refuted", "unsupported"
VERDICTS = (SUPPORTED, REFUTED, UNSUPPORTED)
# Share of a claim's content words that must stand in one evidence sentence for the two to be about the
# same thing (then a polarity, number or name difference is a contradiction).
SAME_STATEMENT = 0.75


def _best_sentence(claim_words: set, ev: Evidence, polarity: bool | None = None):
    """(overlap share, sentence, its polarity) of the evidence sentence sharing most of `claim_words`."""
    best = (0.0, "", False)
    if not claim_words:
        return best
    for sent, sw, neg in ev.sentences:
        if polarity is not None and neg != polarity:
            continue
        share = len(claim_words & sw) / len(claim_words)
        if share > best[0]:
            best = (share, sent, neg)
    return best


def polarity_conflict(claim: str, ev: Evidence) -> str | None:
    """The evidence sentence that states the claim with the opposite polarity, if one does."""
    cw = content_words(claim)
    if len(cw) < 2:
        return None
    share, sent, _ = _best_sentence(cw, ev, polarity=not has_negation(claim))
    return sent if share >= SAME_STATEMENT and share > _best_sentence(cw, ev, has_negation(claim))[0] else None


def number_conflict(claim: str, ev: Evidence) -> str | None:
    f = extract_facts(claim)
    for n, noun in sorted(f.quantities):
        known = {m for m, x in ev.facts.quantities if x == noun}
        if known and n not in known:
            return f"the evidence counts {'/'.join(map(str, sorted(known)))} {noun}(s), not {n}"
    return None


def name_conflict(claim: str, ev: Evidence) -> tuple[str | None, str | None]:
    """(refuting note, unsupported note): a name the evidence lacks, in a statement it has with another name."""
    missing = names_in(claim) - ev.names
    if not missing:
        return None, None
    rest = content_words(claim) - missing
    share, sent, _ = _best_sentence(rest, ev)
    others = names_in(sent) - names_in(claim)
    if rest and share >= SAME_STATEMENT and others:
        return (f"the evidence names {sorted(others)} where the claim names {sorted(missing)}: {sent!r}", None)
    return None, f"name(s) {sorted(missing)} not in the evidence"


def match_claim(claim: str, ev: Evidence, given: frozenset | set = frozenset()) -> tuple[str | None, str]:
    """Tier 1: (verdict or None, note). `given`: the content words of the sample's question, which the
    claim may repeat without the evidence having them."""
    opposite = polarity_conflict(claim, ev)
    if opposite:
        return REFUTED, f"the evidence says the opposite: {opposite!r}"
    numbers = number_conflict(claim, ev)
    if numbers:
        return REFUTED, numbers
    refuting_name, missing_name = name_conflict(claim, ev)
    if refuting_name:
        return REFUTED, refuting_name
    if has_negation(claim):
        return None, "negated: left to the judge"
    f = extract_facts(claim)
    efacts = ev.facts
    for colour, shape in sorted(f.pairs):
        known = {c for c, s in efacts.pairs if s == shape}
        if known and colour not in known:
            return REFUTED, f"the evidence has a {'/'.join(sorted(known))} {shape}, not a {colour} one"
    for n, shape in sorted(f.counts):
        known = {m for m, s in efacts.counts if s == shape}
        if known and n not in known:
            return REFUTED, f"the evidence counts {'/'.join(map(str, sorted(known)))} {shape}(s), not {n}"
    if missing_name:
        return UNSUPPORTED, missing_name
    norm_ev = " ".join(words(PLACEHOLDER.sub(" ", ev.text)))
    for t in sorted(f.texts):
        if f" {t} " not in f" {norm_ev} ":
            return UNSUPPORTED, f"text {t!r} not in the evidence"
    for t in sorted(f.caps):
        if t not in (ev.visual_words or ev.words):
            return UNSUPPORTED, f"on-screen text {t.upper()!r} not in the visual evidence"
    if f.spoken:
        pool = ev.speech_words or ev.words
        missing = [w for w in f.spoken if w not in pool]
        if len(missing) > len(f.spoken) / 4:
            return UNSUPPORTED, f"spoken words not in the transcript: {missing[:6]}"
    if f.shown:
        missing = [w for w in f.shown if w not in (ev.visual_words or ev.words)]
        if len(missing) > len(f.shown) / 4:
            return UNSUPPORTED, f"on-screen words not in the evidence: {missing[:6]}"
    if f.colours and efacts.colours:
        extra = f.colours - efacts.colours
        if extra:
            return UNSUPPORTED, f"colour(s) {sorted(extra)} not in the evidence (it names {sorted(efacts.colours)})"
    if f.shapes and efacts.shapes:
        extra = f.shapes - efacts.shapes
        if extra:
            return UNSUPPORTED, f"shape(s) {sorted(extra)} not in the evidence (it names {sorted(efacts.shapes)})"
    unknown = (f.colours - efacts.colours) | (f.shapes - efacts.shapes)
    if unknown:
        return None, f"the evidence says nothing about {sorted(unknown)}"
    # the question's words, which a short answer's claim repeats ("What is the title: Six test patterns"), are
    # given, not claimed: the answer's own words must stand in one evidence sentence (two of them at least)
    cw = content_words(claim) - set(given)
    full = [sent for sent, sw, neg in ev.sentences if not neg and cw <= sw] if len(cw) >= 2 else []
    if full:   # a bag of words: the roles of its names must agree too (wording.py, h25 F13)
        swapped = role_conflict(claim, full)
        if swapped:
            return None, swapped
        return SUPPORTED, f"every content word stands in the evidence sentence {full[0]!r}"
    if not f.checkable():
        return None, "no checkable fact"
    # the facts found say nothing of what else the claim adds ("to the boat", "that he bought yesterday")
    missing = missing_words(claim, ev, given)
    if missing:
        return None, f"content word(s) {missing[:6]} {MISSING}"
    swapped = role_conflict(claim, [sent for sent, _, neg in ev.sentences if not neg])
    if swapped:
        return None, swapped
    return SUPPORTED, "every checkable fact found in the evidence"
