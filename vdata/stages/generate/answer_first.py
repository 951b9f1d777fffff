"""Answer-first questions about what is said: the answer comes from the transcript, the teacher writes
only the question.

A small writer (SmolLM2-135M in the quickstart) cannot be trusted to find a fact, state it and ask about
it in one go: it copies placeholders, asks vacuous questions or invents the answer. Here the stage picks
the answer itself, deterministically, from a transcript sentence: a counted phrase ("three loaves of
bread"), a name ("Tom"), a day or month ("on Saturday"), or a colour ("blue"). A transcript segment often
holds several sentences (Whisper writes one segment per pause): it is split at sentence ends first, so a
span, its grounding and its quote are one sentence, and a question cannot take its subject from one
sentence and its answer from the next. The teacher is asked for
the question whose answer is that span, its opening words fixed by the span's kind through the JSON
schema's `pattern` ("How many loaves of bread …?", "Who …?", "On which day …?", "What colour …?"). So the answer
stands verbatim in the transcript, and a candidate question is kept only when it is grounded: every
word of its own stands in the sentence, and it does not give the answer away (`check_question`).

Each question is framed as being about speech ("…, according to what the narrator says?") and an open
answer quotes its sentence, so both the sample and its provenance say where the fact comes from. MCQ
distractors are of the answer's own kind: other counts of the same thing at the answer's own scale and
granularity (180 degrees → 140/160/200 degrees, the answer at each place of the sorted run alike, and "one
egg" beside "two eggs" where the noun has a regular singular), other names (those the transcript uses for
other people first), other days, months or colours.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .common import stable_hash

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve"]
# Distractors of a spelled-out count are spelled out too (a lone word among digits gives the answer away);
# these reach past twelve so that "twelve" is not always the largest option.
SPELLED = {**{i: w for i, w in enumerate(NUMBER_WORDS)}, 13: "thirteen", 14: "fourteen", 15: "fifteen",
           16: "sixteen", 17: "seventeen", 18: "eighteen", 19: "nineteen", 20: "twenty"}
# Distractor steps: the largest that divides the answer keeps the options as round as the answer is
# (180 → steps of 20, 40 → 10, 15 → 5), so the answer is neither the only round number nor the only odd one.
STEPS = (1000, 500, 250, 200, 100, 50, 25, 20, 10, 5, 2, 1)
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
COLOURS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey"]
# Distractor names when the transcript has too few other names of its own.
COMMON_NAMES = ["Anna", "Peter", "Sofia", "James", "Lena", "Mark", "Julia", "Paul", "Eva", "Sam", "Nora", "Ben"]
# Words that may open a sentence with a capital letter without being a name.
NOT_NAMES = {"The", "A", "An", "This", "That", "These", "Those", "There", "It", "He", "She", "They", "We", "I",
             "Her", "His", "Their", "Our", "My", "Your", "Its", "And", "But", "So", "Then", "Now", "Today", "Every",
             "Each", "After", "Before", "In", "On", "At", "Yes", "No", "Oh", "Ok", "Okay", "Well", "Hello", "Hi",
             "Captain", "Doctor", "Mister", "Miss", "Mrs", "Professor", "Uncle", "Aunt"}
# Words a phrase after a number stops at ("three loaves | every morning", "five hours | on Saturday").
PHRASE_STOP = {"the", "a", "an", "and", "or", "in", "on", "at", "to", "for", "every", "each", "with", "from", "by",
               "into", "is", "are", "was", "were", "that", "which", "who", "before", "after", "then", "but"}
# Words a grounded question may use besides the sentence's own: question words, function words, light verbs.
QUESTION_WORDS = {"how", "many", "much", "who", "whom", "whose", "when", "what", "which", "where", "why", "colour",
                  "color", "day", "month", "does", "do", "did", "is", "are", "was", "were", "has", "have", "had",
                  "make", "makes", "made", "get", "gets", "got", "the", "a", "an", "of", "in", "on", "at", "to",
                  "for", "with", "by", "from", "her", "his", "their", "she", "he", "they", "it", "its", "them",
                  "him", "this", "that", "there", "and", "or", "s", "every", "each", "usually", "always"}
SPEECH_FRAME = ", according to what the narrator says?"
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[a-z]+)?")
# A counted phrase runs over words joined by spaces (or a hyphen) only: punctuation ends it ("200 degrees, add").
_PLAIN_GAP = re.compile(r"\s+|-")
# A sentence ends at . ! ? (and closing quotes) before a space; not after these abbreviations or an initial.
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*\s+")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "vs", "etc", "mt", "no", "fig", "approx"}


@dataclass(frozen=True)
class Span:
    """An answer taken verbatim from a transcript sentence."""
    text: str          # as it stands in the sentence ("three loaves of bread", "Tom", "on Saturday")
    kind: str          # number | name | day | month | colour
    key: str           # the word that is the answer ("three", "Tom", "Saturday"): never in the question
    opener: str        # the question's fixed first words ("How many loaves of bread", "Who", "When")
    sentence: str      # the transcript sentence it comes from


def words(text: str) -> list[str]:
    return _WORD.findall(text or "")


def stem(word: str) -> str:
    """A light stem, enough to match "stays"/"stay", "delivered"/"delivers", "loaves"/"loaf"."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    for suffix, repl in (("ves", "f"), ("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + repl
            break
    return w[:-1] if w.endswith("e") and len(w) > 3 else w   # "bake"/"baked", "close"/"closes"


def sentences(text: str) -> list[str]:
    """The sentences of a transcript segment, in order."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text or ""):
        if text[m.start()] == ".":
            prev = re.search(r"([A-Za-z]+)$", text[start:m.start()])
            if prev and (prev.group(1).lower() in _ABBREVIATIONS or re.fullmatch(r"[A-Z]", prev.group(1))):
                continue   # "Mr. Smith", "J. Smith": not a sentence end
        out.append(text[start:m.end()].strip())
        start = m.end()
    out.append((text or "")[start:].strip())
    return [x for x in out if x]


_TOKEN = re.compile(r"[A-Za-z0-9]+(?:'[a-z]+)?")
# After a sentence's first word, words that make it the subject: "Maria bakes", "Tom repaired", "Anna is"
_SUBJECT_NEXT = re.compile(r"[a-z]+(?<!s)s|[a-z]+ed|is|was|has|had|will|can|could|would|should|may|might|must|and")


# Verbs that open instructions ("Chop onions", "Press buttons"): a plural after them is an object, not a verb
IMPERATIVES = set("""Add Apply Attach Bake Beat Blend Boil Bring Brush Check Chop Clean Clip Close Combine Connect Cook
Cover Crack Cut Dice Drain Drill Dry Fill Fold Fry Get Give Glue Go Grab Grate Grease Heat Hold Insert Install Keep
Knead Lift Line Loosen Lower Make Mark Measure Melt Mince Mix Move Open Paint Peel Place Plug Pour Preheat Press
Pull Push Put Remove Repeat Replace Roll Rotate Sand Screw Season Serve Set Shape Slice Slide Sprinkle Spread Start
Stir Take Tighten Transfer Try Turn Unplug Unscrew Use Wash Whisk""".split())


def answer_spans(text: str) -> list[Span]:
    """Every span a question can be asked about, sentence by sentence, in a fixed order within each:
    counts, times, colours, then names."""
    parts = sentences(text)
    # capitalised words seen inside a sentence: a sentence's first word is a name if it is one of these
    inner = {t.group(0) for part in parts for t in list(_TOKEN.finditer(part))[1:] if t.group(0)[:1].isupper()}
    return [span for sentence in parts for span in _sentence_spans(sentence, inner)]


def _named_subject(sentence: str, toks: list, inner: set[str]) -> bool:
    """Whether a sentence's capitalised first word is a name: seen capitalised inside a sentence, the first
    of two capitalised words, or the subject of a verb ("Maria bakes ..."). Imperatives ("Pour the batter", "Add two cups") and adverbs
    ("Carefully remove", "Next, replace") open recipes and repairs: not names."""
    w = toks[0].group(0)
    if w in inner:
        return True
    if w in IMPERATIVES or w.endswith("ly") or len(toks) < 2 or not _PLAIN_GAP.fullmatch(sentence[toks[0].end():toks[1].start()]):
        return False
    after = toks[1].group(0)
    return after[:1].isupper() or bool(_SUBJECT_NEXT.fullmatch(after))   # "Maria Bake, ...": a two-word name


def _sentence_spans(sentence: str, inner: set[str] = frozenset()) -> list[Span]:
    toks = list(_TOKEN.finditer(sentence))
    out: list[Span] = []
    for i, m in enumerate(toks):
        w = m.group(0)
        if w.lower() in NUMBER_WORDS[2:] or (w.isdigit() and 1 < int(w) < 10_000 and not _part_of_number(sentence, m)):
            run = []   # the words after the number up to the first punctuation
            for prev, t in zip(toks[i:], toks[i + 1:]):
                if not _PLAIN_GAP.fullmatch(sentence[prev.end(): t.start()]):
                    break
                run.append(t.group(0))
            phrase = _counted_phrase(run)
            if phrase:
                text = sentence[m.start(): toks[i + len(phrase)].end()]
                out.append(Span(text, "number", w, "How many " + " ".join(phrase), sentence))
    for i, m in enumerate(toks):
        w = m.group(0)
        prep = toks[i - 1].group(0).lower() if i else ""
        with_prep = prep in ("on", "in") and i > 0
        text = sentence[toks[i - 1].start(): m.end()] if with_prep else w
        if w in DAYS:
            out.append(Span(text, "day", w, "On which day", sentence))
        elif w in MONTHS:
            out.append(Span(text, "month", w, "In which month", sentence))
    for m in toks:
        if m.group(0).lower() in COLOURS:
            out.append(Span(m.group(0), "colour", m.group(0), "What colour", sentence))
    for i, m in enumerate(toks):
        w = m.group(0)
        if (re.fullmatch(r"[A-Z][a-z]{2,}", w) and w not in NOT_NAMES and w not in DAYS and w not in MONTHS
                and w.lower() not in NUMBER_WORDS and not (i and toks[i - 1].group(0)[:1].isupper()
                                                            and toks[i - 1].group(0) not in NOT_NAMES)
                and (i or _named_subject(sentence, toks, inner))):
            # the first word of a two-word name ("Maria Bake") stands for it; its second word is no answer
            out.append(Span(w, "name", w, "Who", sentence))
    return out


def _part_of_number(sentence: str, m: re.Match) -> bool:
    """Digits that are part of a number written with a separator ("1,500", "2.5"): the count is the whole
    number, never one of its parts."""
    return bool(re.search(r"\d[.,]$", sentence[: m.start()])) or bool(re.match(r"[.,]\d", sentence[m.end():]))


def _counted_phrase(after: list[str]) -> list[str]:
    """The noun phrase a number counts: up to 3 words, "of" + a word allowed ("loaves of bread"); `after` holds
    the words up to the first punctuation."""
    phrase: list[str] = []
    for j, w in enumerate(after[:4]):
        low = w.lower()
        if low == "of" and phrase and j + 1 < len(after) and after[j + 1].lower() not in PHRASE_STOP:
            phrase += [w, after[j + 1]]
            break
        if low in PHRASE_STOP or low.isdigit() or low in NUMBER_WORDS or len(phrase) == 3:
            break
        phrase.append(w)
    return phrase


def pick_span(spans: list[Span], clip_id: str, task: str, index: int) -> Span | None:
    """The span of a clip's index-th question of a task: tasks start at different offsets, so a clip's
    open question and its MCQ ask about different facts when it has more than one."""
    if not spans:
        return None
    offset = {"open_qa": 0, "mcq": 1}.get(task, 2)
    return spans[(stable_hash("span", clip_id) + offset + index) % len(spans)]


def question_schema(span: Span) -> dict:
    """The reply schema: one question that opens with the span's fixed words and ends with '?'. The
    opener is letters and spaces only (no regex escapes: llama.cpp's schema-to-grammar converter rejects
    them) and the rest an unbounded run (a bounded repeat becomes a grammar rule per character); the
    request's max_tokens bounds the length."""
    opener = re.sub(r"[^A-Za-z0-9 ]", "", span.opener)
    prop = {"type": "string", "pattern": "^" + opener + " [A-Za-z0-9 ,']+\\?$"}
    return {"type": "object", "properties": {"question": prop}, "required": ["question"], "additionalProperties": False}


def check_question(question: str, span: Span) -> str | None:
    """Why a candidate question is unusable (a reject reason), or None when it is grounded."""
    q = (question or "").strip()
    if not q.startswith(span.opener) or not q.endswith("?"):
        return "bad_reply"
    said = {stem(w) for w in words(span.sentence)}
    key = {stem(w) for w in words(span.key)}
    own = [w for w in words(q[len(span.opener):]) if w.lower() not in QUESTION_WORDS]
    if key & {stem(w) for w in words(q)}:
        return "answer_in_question"
    if any(stem(w) not in said for w in own):
        return "ungrounded_question"
    if len({stem(w) for w in own}) < 2:
        return "vacuous_question"
    if len({stem(w) for w in own}) < len(own):   # "… delivers the bicycles to her friend David, … David": garbled
        return "repetitive_question"
    return None


def ungrounded_words(question: str, span: Span) -> list[str]:
    said = {stem(w) for w in words(span.sentence)}
    return [w for w in words(question[len(span.opener):]) if w.lower() not in QUESTION_WORDS and stem(w) not in said]


def masked(span: Span) -> str:
    """The sentence with its answer blanked out: the teacher cannot copy into the question what it never sees."""
    return re.sub(rf"\b{re.escape(span.text)}\b", "___", span.sentence, count=1).strip()


def about_speech(question: str) -> str:
    """The question framed as one about what is said."""
    return question.rstrip(" ?") + SPEECH_FRAME


def open_answer(span: Span) -> str:
    """The open answer: the span, with the sentence that says it quoted."""
    text = span.text[0].upper() + span.text[1:]
    return f'{text}: the narrator says "{span.sentence.strip().rstrip(".")}."'


def distractors(span: Span, k: int, seed_key: str, other_names: list[str] = ()) -> list[str]:
    """k wrong options of the span's own kind: the span with its key word replaced."""
    key = span.key
    if span.kind == "number":
        n = int(key) if key.isdigit() else NUMBER_WORDS.index(key.lower())
        noun = _counted_noun(span)
        one = singular(noun) if noun else None   # "one egg": a count of one needs the noun's singular
        counts = _near_counts(n, k, seed_key, spelled=not key.isdigit(), floor=1 if one else 2)
        texts = []
        for m in counts:
            text = re.sub(rf"\b{re.escape(key)}\b", str(m) if key.isdigit() else _cased(SPELLED[m], key), span.text,
                          count=1)
            texts.append(re.sub(rf"\b{re.escape(noun)}\b", one, text, count=1) if m == 1 else text)
        return texts
    if span.kind == "name":
        # other people the transcript names first, then common names in a fixed per-sample order
        own = [x for x in dict.fromkeys(other_names) if x != key]
        rest = sorted((x for x in COMMON_NAMES if x != key and x not in own),
                      key=lambda x: stable_hash("distractor", seed_key, x))
        picks = (own + rest)[:k]
    else:
        pool = {"day": DAYS, "month": MONTHS, "colour": COLOURS}[span.kind]
        picks = sorted((x for x in pool if x.lower() != key.lower()),
                       key=lambda x: stable_hash("distractor", seed_key, x))[:k]
    picks = [x.capitalize() if key[0].isupper() else x.lower() for x in picks]
    return [re.sub(rf"\b{re.escape(key)}\b", x, span.text, count=1) for x in picks]


def _near_counts(n: int, k: int, seed_key: str, spelled: bool, floor: int = 2) -> list[int]:
    """k other counts in steps of the answer's own granularity around it, the answer at a per-sample place
    in the run, each of the k + 1 places alike (so the rank of the answer among the sorted options says
    nothing); never below `floor` (one only where the noun has a singular), and for a spelled-out answer
    only counts that have a word."""
    ok = (lambda m: m in SPELLED) if spelled else (lambda m: True)
    want = stable_hash("count_rank", seed_key) % (k + 1)   # how many options lie below the answer
    below: list[int] = []
    above: list[int] = []
    # the roundest step (that keeps the options at the answer's magnitude) with room for the answer's place:
    # 40 in steps of 20 has only 20 below it, so a 40 above three options runs in steps of 10 (10/20/30/40),
    # and below them in 20s (40/60/80/100); either run comes of other answers too (20/40/60/80 of 20, 40, 60
    # and 80), so the step tells nothing
    for step in (1,) if n <= 12 else [s for s in STEPS if n % s == 0 and 2 * s <= n - 2]:
        below = [n - j * step for j in range(1, k + 1) if n - j * step >= floor and ok(n - j * step)]
        above = [n + j * step for j in range(1, k + 1) if ok(n + j * step)]
        if len(below) >= want and len(above) >= k - want:
            break
    lo = min(want, len(below), k)
    lo = max(lo, k - len(above))   # too few above (a spelled "twenty"): more below
    picks = sorted(below[:lo] + above[: k - lo])
    r = _decade(n)
    if picks and r >= 10 and r > max(map(_decade, picks)) and ok(n + r):
        # a round answer among less round neighbours (100 among 50/75/125, 10 among 8/9/11) stands out: one
        # option as round as it (200, 20) replaces the farthest above, which keeps the answer's place. With
        # every option below, nothing there is as round (only 10, 100, 1000 themselves get there: 10 among
        # 7/8/9): the lowest gives way, and the answer its top place (8/9/20).
        drop = picks[-1] if picks[-1] > n else picks[0]
        picks = sorted([m for m in picks if m != drop] + [n + r])
    return picks


def _counted_noun(span: Span) -> str | None:
    """The noun a count counts, where it is a regular plural: the first such word of its phrase before any
    "of" ("three large eggs", "two cups of flour"); None when there is none ("two cookies")."""
    phrase = words(span.text)[1:]
    low = [w.lower() for w in phrase]
    return next((w for w in phrase[: low.index("of") if "of" in low else None] if singular(w)), None)


def singular(noun: str) -> str | None:
    """The singular of a regular plural ("eggs" → "egg", "minutes" → "minute"); None where a rule could
    go wrong ("cookies"/"berries", "knives"/"loaves", "tomatoes", "boxes", "glasses", "children")."""
    low = noun.lower()
    if len(low) < 4 or not low.endswith("s") or low.endswith(("ss", "us", "is", "ies", "ves", "oes", "xes", "ches",
                                                                "shes", "zes", "sses", "uses")):
        return None
    return noun[:-1]


def _cased(word: str, like: str) -> str:
    return word.capitalize() if like[0].isupper() else word.lower()


def _decade(m: int) -> int:
    """How round a count reads: the largest of 1000, 100, 10 that divides it (1 when none does)."""
    return next((d for d in (1000, 100, 10) if m % d == 0), 1)
