"""Tier 1 of the claim check: facts that string matching can find in a claim and in the evidence.

Colours, shapes, colour+shape pairs, counted nouns ("three loaves"), proper names, quoted or ALL-CAPS
on-screen text and words someone "says" are pulled out of a text; `Evidence` holds the clip's evidence
text with its facts, split into visual and speech parts. `contradictions.py` compares the two.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from vdata.prompts.stated_times import PLACEHOLDER  # the time placeholders (read by the claim checks too)

# --- lexicons --------------------------------------------------------------------------------------
COLOURS = {"red", "orange", "yellow", "green", "blue", "purple", "violet", "pink", "brown", "black", "white",
           "grey", "gray", "cyan", "magenta", "gold", "silver", "teal", "navy", "beige", "maroon", "turquoise"}
COLOUR_ALIASES = {"gray": "grey", "violet": "purple"}
SHAPES = {"circle", "square", "triangle", "rectangle", "star", "ellipse", "oval", "hexagon", "pentagon",
          "diamond", "heart", "cross", "ring", "cube", "sphere", "ball", "box", "dot", "disc", "disk", "arrow"}
SHAPE_ALIASES = {"disk": "disc", "dot": "circle", "ball": "sphere", "oval": "ellipse", "box": "square"}
NUMBER_WORDS = {"zero": 0, "one": 1, "a single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20,
                "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100}
FILLERS = {"large", "small", "big", "little", "tiny", "bright", "dark", "light", "pale", "deep", "solid",
           "filled", "outlined", "thick", "thin", "round", "shiny", "colored", "coloured", "and", ",", "-"}
NEGATIONS = {"no", "not", "never", "without", "none", "nothing", "neither", "nor", "n't", "cannot", "isn't",
             "aren't", "doesn't", "don't", "didn't", "wasn't", "weren't", "won't", "can't", "nobody"}
SPEECH_VERBS = r"(?:says?|said|saying|mentions?|mentioned|announces?|announced|tells?|told|speaks? about|talks? about|narrates?|asks?|asked)"
TEXT_NOUNS = {"text", "sign", "screen", "caption", "title", "label", "banner", "board", "poster", "subtitle",
              "subtitles", "words", "writing", "card", "slide", "message", "it"}
STOPWORDS = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "is", "are", "was", "were", "be", "it",
             "that", "this", "with", "for", "as", "by", "we", "you", "i", "he", "she", "they", "them", "his", "her",
             "their", "its", "our", "your", "will", "would", "so", "then", "there", "here", "from", "about", "into",
             "has", "have", "had", "does", "do", "did", "can", "also", "very", "some", "every", "each", "all",
             "him", "who", "what", "which", "when", "where", "how", "why", "video", "clip", "narrator", "speaker",
             "someone", "says", "said", "mentions", "tells", "person", "people", "one", "s"}
# Words that start a sentence or a question with a capital letter without being a name.
NOT_NAMES = {"the", "a", "an", "this", "that", "these", "those", "there", "it", "he", "she", "they", "we", "i",
             "what", "who", "which", "when", "where", "why", "how", "is", "are", "does", "do", "did", "in", "on",
             "at", "after", "before", "then", "first", "next", "finally", "yes", "no", "her", "his", "their", "our",
             "my", "your", "its", "and", "but", "so", "every", "each", "one", "today", "monday", "tuesday",
             "wednesday", "thursday", "friday", "saturday", "sunday"}

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_QUOTED = re.compile(r"[\"“”]([^\"“”]{2,80})[\"“”]|(?<![a-z])'([^']{2,80})'(?![a-z])", re.I)
_CAPS = re.compile(r"\b[A-Z][A-Z0-9]{2,}\b")
_NAME = re.compile(r"\b[A-Z][a-z]{2,}\b")
SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


def words(text: str) -> list[str]:
    return _WORD.findall((text or "").lower().replace("’", "'"))


def singular(w: str) -> str:
    """A light plural → singular for matching nouns ("loaves" → "loaf", "boxes" → "box", "eggs" → "egg")."""
    if w.endswith("ves") and len(w) > 4:
        return w[:-3] + "f"
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("es") and w[:-2] in SHAPES | {"box", "dish", "glass", "bus", "match", "peach"}:
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


def _colour(w: str) -> str | None:
    return COLOUR_ALIASES.get(w, w) if w in COLOURS else None


def _shape(w: str) -> str | None:
    s = singular(w)
    return SHAPE_ALIASES.get(s, s) if s in SHAPES else None


def _number(tokens: list[str], i: int) -> int | None:
    w = tokens[i]
    if w.isdigit() and len(w) <= 4:
        return int(w)
    return NUMBER_WORDS.get(w)


def content_words(text: str) -> set[str]:
    """Singular content words: what a statement is about, negations and function words removed, number
    words as digits ("three" and "3" are one word)."""
    out = set()
    for w in words(PLACEHOLDER.sub(" ", text or "")):
        if w in STOPWORDS or w in NEGATIONS or w.endswith("n't"):
            continue
        w = w[:-2] if w.endswith("'s") else w   # "the boat's" (a transcript's apostrophe) is still "boat"
        out.add(str(NUMBER_WORDS[w]) if w in NUMBER_WORDS else singular(w))
    return out


def has_negation(text: str) -> bool:
    return bool(NEGATIONS & set(words(text))) or "n't" in (text or "").lower()


def names_in(text: str) -> set[str]:
    """Capitalised words that are not sentence openers or function words: people, places, brands."""
    out = set()
    for m in _NAME.finditer(text or ""):
        w = m.group(0).lower()
        if w not in NOT_NAMES and w not in STOPWORDS and w not in COLOURS and w not in NUMBER_WORDS:
            out.add(w)
    return out


@dataclass
class Facts:
    colours: set = field(default_factory=set)
    shapes: set = field(default_factory=set)
    pairs: set = field(default_factory=set)          # (colour, shape)
    counts: set = field(default_factory=set)         # (n, shape)
    quantities: set = field(default_factory=set)     # (n, singular noun) for any counted noun
    texts: set = field(default_factory=set)          # quoted strings, normalised (on screen or spoken)
    caps: set = field(default_factory=set)           # ALL-CAPS words: on-screen text
    spoken: list = field(default_factory=list)       # content words after a speech verb
    shown: list = field(default_factory=list)        # content words that on-screen text "says"

    def checkable(self) -> int:
        return (len(self.colours) + len(self.shapes) + len(self.texts) + len(self.caps) + len(self.spoken)
                + len(self.shown))


def extract_facts(text: str) -> Facts:
    f = Facts()
    clean = PLACEHOLDER.sub(" ", text or "")
    tokens = words(clean)
    for i, w in enumerate(tokens):
        c = _colour(w)
        if c:
            f.colours.add(c)
            for j in range(i + 1, min(len(tokens), i + 4)):   # "red square", "large red square", "red and blue square"
                s = _shape(tokens[j])
                if s:
                    f.pairs.add((c, s))
                    break
                if tokens[j] not in FILLERS and not _colour(tokens[j]):
                    break
        s = _shape(w)
        if s:
            f.shapes.add(s)
        n = _number(tokens, i)
        if n is not None:
            for j in range(i + 1, min(len(tokens), i + 4)):
                s = _shape(tokens[j])
                if s:
                    f.counts.add((n, s))
                    break
                if tokens[j] not in FILLERS and not _colour(tokens[j]):
                    break
            # any counted noun: the next word that is neither a filler, a colour nor a function word
            for j in range(i + 1, min(len(tokens), i + 3)):
                t = tokens[j]
                if t in FILLERS or _colour(t) or t in {"fresh", "whole", "more"}:
                    continue
                if t not in STOPWORDS and not t.isdigit() and t not in NUMBER_WORDS:
                    f.quantities.add((n, singular(t)))
                break
    for m in _QUOTED.finditer(clean):
        q = " ".join(words(m.group(1) or m.group(2)))
        if q:
            f.texts.add(q)
    for m in _CAPS.finditer(clean):
        f.caps.add(m.group(0).lower())
    for m in re.finditer(SPEECH_VERBS + r"\s*:?\s*(?:that\s+)?(.+?)(?:[.!?;]|$)", clean, re.I):
        said = [w for w in words(m.group(1)) if w not in STOPWORDS]
        # "the sign says OPEN" is on-screen text, "the narrator says ..." is speech
        subject = set(words(clean[max(0, m.start() - 30): m.start()]))
        (f.shown if subject & TEXT_NOUNS else f.spoken).extend(said)
    return f


@dataclass
class Evidence:
    text: str
    speech: str
    facts: Facts
    words: set
    speech_words: set
    visual_words: set
    sentences: list = field(default_factory=list)    # evidence sentences, each with content words and polarity
    names: set = field(default_factory=set)

    @classmethod
    def of(cls, visual_texts: list[str], speech_texts: list[str]) -> "Evidence":
        text = "\n".join(t for t in visual_texts if t)
        speech = "\n".join(t for t in speech_texts if t)
        both = text + "\n" + speech
        sents = [s.strip() for s in SENTENCE.split(PLACEHOLDER.sub(" ", both)) if len(words(s)) >= 2]
        return cls(text=both, speech=speech, facts=extract_facts(both), words=set(words(both)),
                   speech_words=set(words(speech)), visual_words=set(words(text)),
                   sentences=[(s, content_words(s), has_negation(s)) for s in sents], names=names_in(both))


_CLAUSE = re.compile(r",\s+(?:and|while|then|but)\s+|\s+and then\s+|;\s*", re.I)


def split_claims(text: str, max_claims: int = 12) -> list[str]:
    """Sentences, then coordinated clauses: short, separately checkable statements."""
    text = PLACEHOLDER.sub(" ", text or "").strip()
    out = []
    for sent in SENTENCE.split(text):
        for part in _CLAUSE.split(sent):
            part = part.strip(" ,.;:-\t")
            if len(words(part)) >= 1:
                out.append(part)
    return out[:max_claims]
