"""Times stated in free text: the one detector every check of a teacher's text uses.

A teacher is asked never to write a time: a sample carries its times as `{{t:..}}` / `{{span:..}}`
placeholders that every export renders in its own time form (and relative to a clip visual). A literal
"at 11.3 seconds" is left as it is by the exports, so an answer then holds two clocks. The placeholders
are removed first; then `stated_times` finds, each with its value in seconds:

- numbers with a unit of seconds or minutes: "11.3 seconds", "11.3s", "31s", "12 s", "13 sec", "2 min",
  "the 30 second mark", "a 30-second clip";
- ranges: "11.3-13.3s", "from 20.0 to 30.0s", "between 0.6 and 3.9 seconds", "1-2 minutes";
- clock forms: "0:10", "at 0:50", "1:02:03" (m:ss and h:mm:ss);
- number words with a unit: "ten seconds", "one minute", "twenty-five seconds", "half a minute";
- "the first ten seconds" (0 to 10 s), "the last ten seconds" (counted back from the end: `from_end`);
- frame numbers: "frame 50", "frames 33 - 81" (no value in seconds without the frame rate).

Not times: counts ("3 loaves"), years and decades ("1990s", "the 80s"), "second" as an ordinal ("second
place", "a second person", "for a second time", "the twenty-second day": a number word with the singular
"second" is a time only for "one second" or before "mark"/"point"), hours ("open for five hours" is what
a video is about, hardly where in it something happens), a clock read in words ("nine o'clock", "shows
nine") and a clock time marked as one ("9:00 am", "9:00 o'clock", "21:00h"). A bare "9:00" is taken for
a video time: written with digits it cannot be told from m:ss, and the prompts ask for no time at all,
so the cost of the doubt is one sample, not a wrong time in the data. Where the text around says the time of
day is the subject ("8 o'clock", "7:30 pm", "noon", "what time does the train leave?", a clock time in the
speech: `says_time_of_day`), `video_times(text, times_of_day=True)` reads such a "7:30" as one, content
(outside check h25 F17: "7:30" beside the answer "8 o'clock" was rejected as a video time); "0:12" and a
clock said as a place in the video ("7:30 into the video", "the clip at 7:30") stay video times.

A time is a moment of the video (`point`, `range`) only where the words around it say so: "at 3.0s", "from 20
to 30 s", "(11.3-13.3s)", "35 seconds into the video", "the 30 second mark", a bare span in the clue lines'
form ("0.6-3.9s"), a clock time ("0:50") unless said as a time of day, a length or a reading ("9:30 in the
morning", "finished in 2:01:39", "the timer shows 5:00"). Every other one is a `duration`: "bake 20
minutes", "for 20 seconds", "won by two seconds", "simmer 5-10 minutes" say how long, not where (outside
check h19: a list of duration words missed most of them). Checks that compare a time with the video
(verify_claims) and wellformed's `states_time` skip durations; checks that forbid any time (a highlight
query, a spoken turn) count them too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# vdata's own time placeholders (vdata/exporters/timefmt.py): times the exports render, not stated ones
PLACEHOLDER = re.compile(r"\{\{\s*(?:t|span)\s*:[^{}]*\}\}")

# number words, also read by the haystack speech check (vdata/haystack/words.py)
NUMBER_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                            "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
NUMBER_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
_WORDNUM = (rf"(?:(?:{'|'.join(NUMBER_TENS)})(?:[\s-](?:{'|'.join(k for k in NUMBER_UNITS if 0 < NUMBER_UNITS[k] < 10)}))?"
            rf"|{'|'.join(sorted(NUMBER_UNITS, key=len, reverse=True))})")
_DIGITS = r"\d+(?:\.\d+)?"
_NUM = rf"(?:{_DIGITS}|{_WORDNUM})"
_SEC = r"(?:seconds?|secs?\b\.?|s)"
_MIN = r"(?:minutes?|mins?\b\.?)"
_UNIT = rf"(?P<unit>{_SEC}|{_MIN})"
_END = r"(?![\w'’])"

_RANGE = re.compile(rf"(?:\b(?:from|between)\s+)?(?<![\w.])(?P<a>{_NUM})\s*(?:-|–|—|\bto\b|\band\b|\buntil\b)\s*"
                    rf"(?P<b>{_NUM})[\s-]*{_UNIT}{_END}", re.IGNORECASE)
_EDGE = re.compile(rf"\b(?P<edge>first|last|final|opening|closing)\s+(?P<a>{_NUM})[\s-]*{_UNIT}{_END}", re.IGNORECASE)
_POINT = re.compile(rf"(?<![\w.])(?P<a>{_NUM})(?P<sep>[\s-]*){_UNIT}{_END}", re.IGNORECASE)
_HALF = re.compile(rf"\bhalf an? (?P<unit>minute|second){_END}", re.IGNORECASE)
_CLOCK = re.compile(r"(?<![\d:.])(?P<h>\d{1,2}):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?(?:\.(?P<f>\d+))?(?![\d:])"
                    r"(?!\s*(?:[ap]\.?m\b\.?|o['’]?clock|h\b|hrs?\b|hours?\b))", re.IGNORECASE)
_FRAME = re.compile(r"\bframes?\s+(?:no\.?\s*|number\s+|#\s*)?(?P<a>\d+)(?:\s*(?:-|–|to|and)\s*(?P<b>\d+))?\b",
                    re.IGNORECASE)
_DURATION_CUE = re.compile(r"\b(?:for|lasts?|lasted|lasting|takes?|took|taking|spends?|spent|within|an?)"
                           r"\s+(?:(?:about|around|roughly|nearly|almost|just|only|over|under|another|a|an|"
                           r"the|some|approximately|exactly)\s+)*$", re.IGNORECASE)
# A number of seconds or minutes names a moment of the video only where the words around it say so: "at 3.0s",
# "from 20 to 30 s", "(11.3-13.3s)", "35 seconds into the video", "the 30 second mark". Instruction data and
# narration say how long far more often, and in many more ways than a list of duration words could hold
# ("bake 20 minutes", "rest 10 minutes", "won by two seconds", "ran it in 9.58 seconds", "five minutes
# later", outside check h19): without such words a time is a `duration`.
_POSITION_BEFORE = re.compile(r"(?:\b(?:at|from|until|till|since|between)\s+(?:(?:about|around|roughly|nearly|"
                              r"approximately|exactly|precisely|just|only|the|time)\s+)*|[(\[]\s*)$", re.IGNORECASE)
_POSITION_AFTER = re.compile(r"^[\s-]*(?:into\b|in\s*(?:[.,;:!?)]|$)|in\s+(?:the|this)\s+(?:video|clip)\b|mark\b|point\b|"
                             r"timestamp\b|time\s*stamp\b)", re.IGNORECASE)
# a clock time said as a time of day, a length or a reading ("9:30 in the morning", "finished in 2:01:39",
# "the timer shows 5:00"), not as a moment of the video
_CLOCK_NOT_MOMENT_BEFORE = re.compile(r"\b(?:for|in|lasts?|lasted|lasting|takes?|took|shows?|showed|showing|reads?|"
                                      r"read|to|of|was|were|is|timer|clock)\s+(?:(?:about|around|roughly|just|only|"
                                      r"a|an|the)\s+)*$", re.IGNORECASE)
_CLOCK_NOT_MOMENT_AFTER = re.compile(r"^\s*(?:in\s+the\s+(?:morning|afternoon|evening)|at\s+night|tonight|today|"
                                     r"tomorrow|de\s+la\b|du\s+(?:matin|soir)|uhr\b|local\s+time)", re.IGNORECASE)
_MEASURE_BEFORE = re.compile(r"\b(?:in|under|over|within|by|of|than)\s+(?:(?:about|around|roughly|just|only)\s+)*$",
                             re.IGNORECASE)
# words that say a time of day (a clock time marked as one, the day's parts); "what time" asks one where no
# word of the video's own timeline stands beside it ("what time in the video ...", "... seconds")
_TIME_OF_DAY = re.compile(r"o['’]?clock\b|\d\s*[ap]\.?m\b|\b[ap]\.m\.|\b(?:noon|midday|midnight|tonight|half past|"
                          r"quarter (?:past|to)|time of (?:the )?day|in the (?:morning|afternoon|evening)|at night)\b",
                          re.IGNORECASE)
_WHAT_TIME = re.compile(r"\b(?:what|which) (?:time|hour)\b", re.IGNORECASE)
_VIDEO_TIMELINE = re.compile(r"\b(?:video|clip|footage|recording|scene|time\s*stamps?|frames?|seconds?|minutes?|"
                             r"mark)\b", re.IGNORECASE)
_OF_VIDEO_BEFORE = re.compile(r"\b(?:video|clip|footage|recording|time\s*stamp|mark)\b[\s,:]*"
                              r"(?:(?:at|around|about|from|to|until)\s+)?$", re.IGNORECASE)
_DECADE_BEFORE = re.compile(r"(?:\bthe|\bearly|\blate|\bmid|-|['’])\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class StatedTime:
    text: str                    # as written in the text
    kind: str                    # point | range | duration | last | frame
    start_s: float | None        # seconds (a range's start; for `last`, how long before the end); None: frames
    end_s: float | None = None   # a range's end
    frames: tuple[int, ...] = ()

    def interval(self, duration_s: float | None = None) -> tuple[float, float] | None:
        """(start, end) in seconds from the start of the video (a point is start == end); None when it
        cannot be told (frame numbers; the last N seconds of a video of unknown length)."""
        if self.start_s is None:
            return None
        if self.kind == "last":
            return None if duration_s is None else (max(0.0, duration_s - self.start_s), duration_s)
        return (self.start_s, self.end_s if self.end_s is not None else self.start_s)

    def seconds(self) -> tuple[float, ...]:
        """The values the text states, in seconds."""
        return tuple(v for v in (self.start_s, self.end_s) if v is not None)


def strip_placeholders(text: str) -> str:
    return PLACEHOLDER.sub(" ", text or "")


def number(word: str) -> float | None:
    """'11.3' -> 11.3, 'twenty-five' -> 25, 'ten' -> 10; None for anything else."""
    w = word.strip().lower()
    if re.fullmatch(_DIGITS, w):
        return float(w)
    parts = re.split(r"[\s-]+", w)
    if len(parts) == 1:
        return float(NUMBER_UNITS[w]) if w in NUMBER_UNITS else float(NUMBER_TENS[w]) if w in NUMBER_TENS else None
    if len(parts) == 2 and parts[0] in NUMBER_TENS and parts[1] in NUMBER_UNITS:
        return float(NUMBER_TENS[parts[0]] + NUMBER_UNITS[parts[1]])
    return None


def _scale(unit: str) -> float:
    return 60.0 if unit.lower().startswith("m") else 1.0


def _is_word(token: str) -> bool:
    return not token[:1].isdigit()


def _ordinal_second(m: re.Match, text: str) -> bool:
    """A number word with the singular "second"/"minute" ("the twenty second day", "a ten minute walk"):
    an ordinal or an adjective, unless it is "one second" or stands before "mark"/"point"."""
    unit = m.group("unit").lower()
    if unit not in ("second", "minute") or not _is_word(m.group("a")) or number(m.group("a")) == 1:
        return False
    return not re.match(r"\s+(?:mark|point|stamp|timestamp)\b", text[m.end():], re.IGNORECASE)


def _decade(m: re.Match, text: str) -> bool:
    """'1990s', 'the 80s', "'90s": decades, not seconds."""
    a, unit, sep = m.group("a"), m.group("unit"), m.groupdict().get("sep", "")
    if unit.lower() != "s" or sep or not a.isdigit():
        return False
    return (len(a) == 4 and 1000 <= int(a) <= 2099) or \
        (len(a) == 2 and a.endswith("0") and bool(_DECADE_BEFORE.search(text[:m.start()])))


def _duration(text: str, at: int) -> bool:
    """Whether a duration word ("for", "takes", "a") stands right before position `at`."""
    return bool(_DURATION_CUE.search(text[max(0, at - 60):at]))


def _moment(text: str, start: int, end: int) -> bool:
    """Whether the words around text[start:end] make it a moment of the video (see _POSITION_BEFORE)."""
    return bool(_POSITION_BEFORE.search(text[max(0, start - 40):start]) or _POSITION_AFTER.match(text[end:end + 30]))


def _range_moment(m: re.Match, text: str) -> bool:
    """A span of the video: "from 20 to 30 s", "between 0.6 and 3.9 seconds", "at 2-4 s", "(11.3-13.3s)", or a
    bare span in the clue lines' form (decimals or the unit "s": "0.6-3.9s"); "simmer 5-10 minutes", "for 5 to
    10 minutes" say how long."""
    if _duration(text, m.start()):
        return False
    said = m.group(0).lower()
    if said.startswith(("from", "between")) or _moment(text, m.start(), m.end()):
        return True
    return "." in m.group("a") + m.group("b") or m.group("unit").lower() in ("s", "sec", "secs")


def _clue_form(m: re.Match, text: str) -> bool:
    """Seconds with a decimal ("11.3s", "11.3 seconds"), the clue lines' own form: a time copied from them, unless
    said as a measurement ("ran it in 9.58 seconds", "under 2.5 s")."""
    return ("." in m.group("a") and m.group("unit").lower().startswith("s")
            and not _MEASURE_BEFORE.search(text[max(0, m.start() - 20):m.start()]))


def _clock_moment(text: str, start: int, end: int) -> bool:
    return not (_CLOCK_NOT_MOMENT_BEFORE.search(text[max(0, start - 40):start]) or
                _CLOCK_NOT_MOMENT_AFTER.match(text[end:end + 30]))


def stated_times(text: str) -> list[StatedTime]:
    """Every time stated in `text` (placeholders removed), in the order written."""
    return [t for _, _, t in time_spans(strip_placeholders(text))]


def time_spans(clean: str) -> list[tuple[int, int, StatedTime]]:
    """(start, end, the time) of every time stated in `clean` (a text without placeholders), in order."""
    found: list[tuple[int, int, StatedTime]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e, _ in found)

    def add(m: re.Match, t: StatedTime, start: int | None = None) -> None:
        s = m.start() if start is None else start
        if free(s, m.end()):
            found.append((s, m.end(), t))

    for m in _FRAME.finditer(clean):
        frames = tuple(int(x) for x in (m.group("a"), m.group("b")) if x)
        add(m, StatedTime(m.group(0).strip(), "frame", None, None, frames))
    for m in _RANGE.finditer(clean):
        unit = m.group("unit")
        if unit.lower() == "s" and (_is_word(m.group("a")) or _is_word(m.group("b"))):
            continue
        a, b = number(m.group("a")), number(m.group("b"))
        compound = number(f"{m.group('a')}-{m.group('b')}") is not None   # "twenty-five", one number
        if a is None or b is None or compound or _decade(m, clean) or _ordinal_second(m, clean):
            continue
        kind = "range" if a <= b and _range_moment(m, clean) else "duration"   # "counts from 10 to 1 seconds": no span
        add(m, StatedTime(m.group(0).strip(), kind, a * _scale(unit), b * _scale(unit)))
    for m in _EDGE.finditer(clean):
        unit, a = m.group("unit"), number(m.group("a"))
        if a is None or (unit.lower() == "s" and _is_word(m.group("a"))):
            continue
        n = a * _scale(unit)
        last = m.group("edge").lower() in ("last", "final", "closing")
        add(m, StatedTime(m.group(0).strip(), "last", n) if last else StatedTime(m.group(0).strip(), "range", 0.0, n))
    for m in _POINT.finditer(clean):
        unit = m.group("unit")
        if unit.lower() == "s" and _is_word(m.group("a")):
            continue   # "ones", "tens": words, not "N s"
        a = number(m.group("a"))
        if a is None or _decade(m, clean) or _ordinal_second(m, clean):
            continue
        moment = _moment(clean, m.start(), m.end()) or _clue_form(m, clean)
        kind = "point" if not _duration(clean, m.start()) and moment else "duration"
        add(m, StatedTime(m.group(0).strip(), kind, a * _scale(unit)))
    for m in _HALF.finditer(clean):
        kind = "point" if not _duration(clean, m.start()) and _moment(clean, m.start(), m.end()) else "duration"
        add(m, StatedTime(m.group(0), kind, 0.5 * _scale(m.group("unit"))))
    for m in _CLOCK.finditer(clean):
        h, mi, s = int(m.group("h")), int(m.group("m")), m.group("s")
        value = (h * 3600 + mi * 60 + int(s)) if s is not None else h * 60 + mi
        value += float("0." + m.group("f")) if m.group("f") else 0.0
        add(m, StatedTime(m.group(0), "point" if _clock_moment(clean, m.start(), m.end()) else "duration", float(value)))
    return sorted(found, key=lambda x: x[0])


def _day_clock(clean: str, start: int, end: int, t: StatedTime) -> bool:
    """Whether the time clean[start:end] is a clock time that can be a time of day ("7:30", "19:45"; not "0:12",
    "1:02:03" or "4:05.5") and is not said as a place in the video ("7:30 into the video", "the clip at 7:30")."""
    m = _CLOCK.fullmatch(t.text)
    return (bool(m) and not m.group("s") and not m.group("f") and 1 <= int(m.group("h")) <= 23
            and not _POSITION_AFTER.match(clean[end:end + 30])
            and not _OF_VIDEO_BEFORE.search(clean[max(0, start - 40):start]))


def says_time_of_day(text: str, clocks: bool = False) -> bool:
    """Whether `text` speaks of a time of day: "8 o'clock", "7:30 pm", "noon", "in the morning", or asks "what
    time" with no word of the video's timeline ("At what time does the train leave the station?"). With `clocks`
    (speech: a transcript, subtitles, which state no places in the video) a clock time that can be one ("the
    race starts at 9:30"; not "0:12") counts too."""
    clean = strip_placeholders(text)
    if _TIME_OF_DAY.search(clean) or (_WHAT_TIME.search(clean) and not _VIDEO_TIMELINE.search(clean)):
        return True
    return clocks and any(_day_clock(clean, s, e, t) for s, e, t in time_spans(clean))


def video_times(text: str, times_of_day: bool = False) -> list[StatedTime]:
    """The moments and spans `text` states (durations left out). With `times_of_day` (the sample or its evidence
    speaks of the time of day: `says_time_of_day`) a clock time that can be one ("7:30") is content, not a
    place in the video, unless said as one ("7:30 into the video")."""
    clean = strip_placeholders(text)
    return [t for s, e, t in time_spans(clean) if t.kind != "duration"
            and not (times_of_day and _day_clock(clean, s, e, t))]


def content_time(answer: str | None, said: str) -> bool:
    """Whether `answer` states a time, and every moment it states is one `said` (an `as_said` evidence) says."""
    times = video_times(answer or "")
    return bool(times) and all(said_in(t, said) for t in times)


def shift_times(text: str, offset_s: float) -> str:
    """`text` with each time it states as a moment or a span moved by `offset_s` seconds: a clip caption's times
    (seconds from the clip's start, as its prompt asks) said from the start of the video. Durations, frame
    numbers and "the first / last N seconds" are left as written (they name no moment of the video)."""
    if not offset_s or PLACEHOLDER.search(text or ""):
        return text
    out, at = [], 0
    for start, end, t in time_spans(text):
        said = text[start:end]
        if t.kind not in ("point", "range") or _EDGE.match(said):
            continue
        a = t.start_s + offset_s
        if t.kind == "range":
            lead = re.match(r"(from|between)\s+", said, re.IGNORECASE)
            word = "and" if lead and lead.group(1).lower() == "between" else "to"
            moved = f"{lead.group(0)}{a:.1f}s {word} {t.end_s + offset_s:.1f}s" if lead else f"{a:.1f}-{t.end_s + offset_s:.1f}s"
        elif _CLOCK.fullmatch(said):
            moved = f"{int(a // 60)}:{a % 60:04.1f}" if "." in said else f"{int(a // 60)}:{int(round(a % 60)):02d}"
        else:
            moved = f"{a:.1f}s"
        out += [text[at:start], moved]
        at = end
    return "".join(out) + text[at:]


def as_said(text: str) -> str:
    """`text` lower-cased with its spacing made single: the form `said_in` compares."""
    return " ".join((text or "").lower().split())


def said_in(t: StatedTime, said: str) -> bool:
    """Whether the time `t` stands as written in `said` (an `as_said` text: a row's evidence, say): a time the
    video's own evidence says ("the race starts at 9:30") is its content, not one a teacher put on it."""
    return as_said(t.text) in said


def states_time(text: str, durations: bool = True) -> StatedTime | None:
    """The first time `text` states (durations too unless `durations=False`), or None."""
    for t in stated_times(text):
        if durations or t.kind != "duration":
            return t
    return None
