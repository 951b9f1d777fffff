"""Tier 1's word match held to what a claim adds and to who does what (outside check h25 F13).

Counts, names, colours, shapes and quoted text are the facts tier 1 can check; a claim whose facts all
stand in the evidence was taken as `supported`, whatever else it said ("Tom carries the seven green
boxes to the boat": only "seven" and "green" were looked up), and a claim whose every content word
stands in one evidence sentence was `supported` as a bag of words ("Clara sells three yellow lamps to
Maria" against "Maria sells three yellow lamps to Clara"). Two guards:

- `missing_words`: the claim's content words (nouns, verbs, places, adjectives — not only the fact
  kinds) that no evidence text has, compared by a light stem ("carried" is "carry", "sold" is "sell").
  Words the sample's question already uses are given, not claimed: a short answer is checked with its
  question ("What colour are the boxes …: Green"), and the question's wording is not the answer's.
  A claim with such a word is left undecided: the judge decides it when there is one.
- `role_conflict`: named entities that the claim and an evidence sentence both mention, in swapped
  roles around the same word (the doer before the verb or after "by", anyone else after it or behind a
  preposition). A passive or reordered paraphrase keeps the roles ("The lamps are sold by Maria to
  Clara"), so it is no conflict. The claim is then not supported by word match; left to the judge, and
  never taken on trust when no judge decides it (`ROLE_SWAP` in its note).
"""
from __future__ import annotations

import re

from .facts import NUMBER_WORDS, PLACEHOLDER, STOPWORDS, Evidence, content_words, names_in, singular, words

UNSUPPORTED = "unsupported"   # contradictions.py's verdict (it imports this module)
ROLE_SWAP = "roles swapped"
MISSING = "not in the evidence: left to the judge"
# Irregular past forms and participles: "sold" stands for "sell"
IRREGULAR = {
    "sold": "sell", "bought": "buy", "gave": "give", "given": "give", "took": "take", "taken": "take",
    "made": "make", "went": "go", "gone": "go", "ran": "run", "ate": "eat", "eaten": "eat", "drove": "drive",
    "driven": "drive", "brought": "bring", "told": "tell", "saw": "see", "seen": "see", "held": "hold",
    "got": "get", "gotten": "get", "threw": "throw", "thrown": "throw", "caught": "catch", "found": "find",
    "left": "leave", "paid": "pay", "sent": "send", "built": "build", "wrote": "write", "written": "write",
    "drew": "draw", "drawn": "draw", "taught": "teach", "thought": "think", "came": "come", "sat": "sit",
    "stood": "stand", "wore": "wear", "worn": "wear", "won": "win", "began": "begin", "begun": "begin",
    "fell": "fall", "fallen": "fall", "flew": "fly", "flown": "fly", "grew": "grow", "grown": "grow",
    "knew": "know", "known": "know", "rode": "ride", "ridden": "ride", "rose": "rise", "risen": "rise",
    "sang": "sing", "sung": "sing", "spoke": "speak", "spoken": "speak", "swam": "swim", "broke": "break",
    "broken": "break", "chose": "choose", "chosen": "choose", "drank": "drink", "drunk": "drink", "fed": "feed",
    "felt": "feel", "kept": "keep", "led": "lead", "lost": "lose", "met": "meet", "shot": "shoot",
    "shook": "shake", "shaken": "shake", "slept": "sleep", "woke": "wake", "hid": "hide", "hidden": "hide",
    "hung": "hang", "lit": "light", "laid": "lay", "dug": "dig", "spent": "spend", "lent": "lend",
    "bent": "bend", "shown": "show", "showed": "show", "struck": "strike", "fought": "fight", "sought": "seek",
    "stole": "steal", "stolen": "steal", "tore": "tear", "torn": "tear", "froze": "freeze", "frozen": "freeze",
    "swept": "sweep", "wept": "weep", "bit": "bite", "bitten": "bite", "blew": "blow", "blown": "blow",
    "dealt": "deal", "meant": "mean", "heard": "hear", "understood": "understand", "forgot": "forget",
    "forgotten": "forget", "children": "child", "men": "man", "women": "woman", "people": "person",
    "feet": "foot", "teeth": "tooth", "mice": "mouse", "geese": "goose",
}
# Words about the medium or about being seen, not about the content: "written on screen", "appears in the
# clip", "is shown" add no fact to what the evidence says is there
MEDIUM = {"screen", "onscreen", "frame", "scene", "shot", "image", "picture", "footage", "view", "show", "shown",
          "display", "appear", "visible", "see", "seen", "present", "feature", "depict", "contain", "viewer",
          "camera", "moment", "time", "later", "first", "next", "finally", "now"}
PREPOSITIONS = {"to", "for", "from", "with", "at", "of", "into", "onto", "toward", "towards", "behind", "near",
                "beside", "after", "before", "like", "than", "about", "on", "in", "under", "over", "past",
                "through", "without", "against", "among", "between", "around", "across", "along", "upon", "via",
                "within", "during", "until", "since", "per", "despite", "beyond", "throughout"}
_CLAUSE = re.compile(r",|;|\s+(?:and then|then|while|but|whereas|because)\s+", re.I)


def stem(word: str) -> str:
    """A light stem for matching a claim's words with the evidence's: plural, tense and -ing forms fold."""
    w = IRREGULAR.get(word, word)
    w = singular(w) if not w.isdigit() else w
    w = IRREGULAR.get(w, w)
    if w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("ing") and len(w) > 5:
        w = w[:-3]
    elif w.endswith("ed") and len(w) > 4 and not w.endswith("eed"):
        w = w[:-2]
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiou":
        w = w[:-1]
    return w


def _token(w: str) -> str:
    """A text's word as content_words writes it, stemmed."""
    w = w[:-2] if w.endswith("'s") else w
    return stem(str(NUMBER_WORDS[w]) if w in NUMBER_WORDS else singular(w))


def missing_words(claim: str, ev: Evidence, given: frozenset | set = frozenset()) -> list[str]:
    """The claim's content words (beyond `given`, the question's) that no evidence text has."""
    have = {stem(w) for w in content_words(ev.text)}
    known = {stem(w) for w in given | MEDIUM | PREPOSITIONS}
    return sorted(w for w in content_words(claim) if stem(w) not in have and stem(w) not in known)


def _roles(tokens: list[str], names: set[str], pivot: str) -> dict[str, str] | None:
    """name -> 'agent' | 'other' around the first `pivot` token of `tokens` (None: no pivot there)."""
    stems = [_token(t) for t in tokens]
    if pivot not in stems:
        return None
    at = stems.index(pivot)
    where = {n: tokens.index(n) for n in names if n in tokens}
    passive = any(i > 0 and tokens[i - 1] == "by" for i in where.values())
    roles = {}
    for n, i in where.items():
        before = tokens[i - 1] if i > 0 else ""
        if before == "by":
            roles[n] = "agent"
        elif before in PREPOSITIONS:
            roles[n] = "other"
        else:   # a bare name: the doer before the verb (unless a "by" names the doer), the object after it
            roles[n] = "agent" if i < at and not passive else "other"
    return roles


def _pivot(tokens: list[str], names: set[str], shared: set[str]) -> str | None:
    """The word the roles are read around: the claim's first shared word after its first bare name (the
    verb of "Clara sells …"), else its first shared word ("The lamps are sold by Maria …")."""
    stems = [_token(t) for t in tokens]
    bare = [i for i, t in enumerate(tokens) if t in names and not (i > 0 and tokens[i - 1] in PREPOSITIONS | {"by"})]
    start = bare[0] + 1 if bare else 0
    for i in range(start, len(tokens)):
        if stems[i] in shared and tokens[i] not in names:
            return stems[i]
    for i, s in enumerate(stems):
        if s in shared and tokens[i] not in names:
            return s
    return None


def role_conflict(claim: str, sentences: list[str]) -> str | None:
    """A note when the claim's named entities stand in swapped roles in every evidence sentence that
    names them around the claim's verb; None when one agrees or none is comparable."""
    text = claim
    if ": " in claim:   # "<question>: <answer>": the answer fills the question's wh-slot, its role unread
        text = claim.rsplit(": ", 1)[0]
    cnames = names_in(claim)
    ctokens = words(PLACEHOLDER.sub(" ", text))
    ckeep = {_token(t) for t in ctokens if t not in STOPWORDS}
    conflict = None
    for sent in sentences:
        shared_names = cnames & names_in(sent)
        if len(shared_names) < 2:
            continue
        for clause in [c for c in _CLAUSE.split(sent) if c and c.strip()] + [sent]:
            ttokens = words(clause)
            if len(shared_names & set(ttokens)) < 2:
                continue
            shared = ckeep & {_token(t) for t in ttokens if t not in STOPWORDS}
            pivot = _pivot(ctokens, shared_names, shared - shared_names)
            if pivot is None:
                break
            mine, theirs = _roles(ctokens, shared_names, pivot), _roles(ttokens, shared_names, pivot)
            if mine is None or theirs is None:
                break
            both = [n for n in mine if n in theirs]
            swapped = [n for n in both if mine[n] != theirs[n]]
            if both and not swapped:
                return None                     # one sentence says it with the same roles
            if swapped and "agent" in {*mine.values(), *theirs.values()}:
                conflict = (f"{ROLE_SWAP}: {sorted(swapped)} play another role in the evidence sentence {sent!r} "
                            "than in the claim: not supported by word match")
            break
    return conflict


def undecided(note: str, fallback: str) -> tuple[str, str]:
    """A claim nobody decided: `fallback` (what `undecided:` says) — except names in swapped roles, never
    taken on trust, and content words the evidence lacks that a judge was asked about and failed to answer."""
    if ROLE_SWAP in note or (MISSING in note and note.startswith("judge failed")):
        return UNSUPPORTED, note + " (undecided → unsupported: tier 1 found it doubtful)"
    return fallback, note + f" (undecided → {fallback})"
