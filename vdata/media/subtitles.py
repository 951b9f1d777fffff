"""Timed text a video arrives with: SRT / WebVTT subtitles and YouTube description chapter lines.

Subtitles are parsed by pysubs2 (timestamps, formatting tags, HTML). pysubs2 is lenient on purpose: a
cue whose timing line is garbled silently becomes text of the cue before it. So the file is first cut
into blank-line separated blocks, each block is checked for one well-formed timing line, and each good
block goes through pysubs2 alone. A bad block (no timing line, a garbled one, no text to show) becomes
a problem (reason code, message, the block's text) and the other cues go on: nothing here raises on
bad input.

Chapter lines follow the YouTube description convention ("0:00 Intro", "1:02:03 - Title",
"(12:30) Title", "Title 12:30"). YouTube makes chapters only when the first timestamp is 0:00 (its
Help Center page "Video chapters"); a list that starts later is reported as `chapters_not_from_zero`
and gives no chapters, because such lists are usually "notable moments", not a division of the video.
"""
from __future__ import annotations

import bisect

import codecs
import html
import os
import re
from dataclasses import dataclass, field

import pysubs2

SUBTITLE_EXTENSIONS = {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ass"}

# A timing line, strictly: SRT "00:01:02,500 --> 00:01:04,000", WebVTT "01:02.500 --> 01:04.000 align:start".
_SRT_TIME = r"\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}"
_VTT_TIME = r"(?:\d{1,4}:)?\d{2}:\d{2}\.\d{3}"
_TIMING = {fmt: re.compile(rf"^\s*({t})\s*-->\s*({t})(?:\s+.*)?$") for fmt, t in (("srt", _SRT_TIME), ("vtt", _VTT_TIME))}
_VTT_SKIPPED_BLOCKS = ("NOTE", "STYLE", "REGION")
_INLINE_TIMESTAMP = re.compile(r"<\d{1,2}(?::\d{2}){1,2}\.\d{3}>")   # WebVTT karaoke timestamps inside a cue
# A line meant as a timing line, well-formed or not: "-->", or an arrow of another length between times
# ("00:00:03,000 -> 00:00:04,000" has a timing line, a garbled one; it used to be "no timing line")
_ARROW = re.compile(r"-->|\d\s*(?:-{1,3}|[=\u2013\u2014])>\s*\d")
# WebVTT ruby: the reading over the base text (<rt>) and the fallback brackets (<rp>) are not what is said
# once more: "<ruby>漢<rt>kan</rt></ruby>" shows 漢, and kept as "漢kan" it broke word matching
_BR = re.compile(r"<br\s*/?>", re.I)   # an HTML line break in a cue's text: <br>, <br/>, <BR />
_RUBY_TEXT = re.compile(r"<(rt|rp)\b[^>]*>.*?</\1\s*>", re.I | re.S)
# Invisible characters a cue's words must not carry: direction marks and embeddings (&lrm; &rlm;), zero
# width spaces, a BOM inside; and no-break spaces, which are spaces to every reader of the text
_INVISIBLE = {cp: None for cp in (0x200B, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067,
                                  0x2068, 0x2069, 0xFEFF)} | {0x00A0: " ", 0x202F: " ", 0x2007: " "}


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class ChapterMark:
    start_s: float
    title: str
    end_s: float | None = None   # where the source gives one: a range line "0:00 - 0:45 Intro"


@dataclass(frozen=True)
class ParseProblem:
    reason: str          # stable code: subtitle_garbled, subtitle_empty_text, chapter_line_unparsable, ...
    message: str         # for humans, with the position
    raw: str             # the offending block or line, as written
    dropped: bool = True   # False: a repair (the text was kept, changed)


@dataclass
class Parsed:
    items: list = field(default_factory=list)           # Cue or ChapterMark, in input order
    problems: list[ParseProblem] = field(default_factory=list)
    format: str = ""


def subtitle_format(text: str, filename: str | None = None) -> str:
    """`srt`, `vtt` or `ass`: from the file name's extension when there is one, else from the text."""
    if filename:
        ext = os.path.splitext(filename)[1].lower()
        if ext in SUBTITLE_EXTENSIONS:
            return SUBTITLE_EXTENSIONS[ext]
    head = text.lstrip("\ufeff \t\r\n")
    return "vtt" if head.startswith("WEBVTT") else "ass" if head.startswith("[Script Info]") else "srt"


def looks_like_subtitles(text: str) -> bool:
    """Whether a text value is SRT/WebVTT/ASS (a header or at least one timing arrow), not a path or prose."""
    stripped = text.lstrip("\ufeff \t\r\n")
    return stripped.startswith(("WEBVTT", "[Script Info]")) or ("-->" in text and "\n" in text.strip())


def parse_subtitles(text: str, fmt: str | None = None) -> Parsed:
    """Cues of an SRT or WebVTT text, in file order, plus one problem per block that is not a cue (ASS:
    `parse_ass`)."""
    fmt = fmt or subtitle_format(text)
    if fmt == "ass":
        return parse_ass(text)
    out = Parsed(format=fmt)
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    # no arrow of the formats anywhere: not subtitle text (a `->` in a file with cues is one garbled block)
    if "-->" not in text:
        if text.strip():
            out.problems.append(ParseProblem("subtitle_unparsable", f"no cue timing line ('-->') anywhere in this "
                                             f"{fmt.upper()} text", text[:200]))
        return out
    shown_cues: list[tuple[float, float, list[str]]] = []   # each cue's time and lines as shown
    for number, block in enumerate(_blocks(text, fmt), start=1):
        lines = block.split("\n")
        if fmt == "vtt" and (number == 1 and lines[0].startswith("WEBVTT") or lines[0].startswith(_VTT_SKIPPED_BLOCKS)):
            continue
        timing_at = next((i for i, line in enumerate(lines) if _ARROW.search(line)), None)
        if timing_at is None:
            out.problems.append(ParseProblem("subtitle_garbled", f"block {number} has no timing line", block))
            continue
        m = _TIMING[fmt].match(lines[timing_at])
        if m is None:
            out.problems.append(ParseProblem("subtitle_garbled", f"block {number}: timing line "
                                             f"{lines[timing_at].strip()!r} is not '{fmt.upper()} time --> time'", block))
            continue
        # one cue through pysubs2: the bare timing line and the text (identifiers, cue settings and karaoke
        # timestamps left out: pysubs2 reads a line with those as a new cue); a `<br>` is a line break, as a
        # new line is (pysubs2 drops it as an unknown tag: "Fourth<br>line" became "Fourthline")
        payload = [part for line in lines[timing_at + 1:]
                   for part in _BR.split(_RUBY_TEXT.sub("", _INLINE_TIMESTAMP.sub("", line)))
                   if part.strip() or not _BR.search(line)]
        events = pysubs2.SSAFile.from_string("\n".join([f"{m.group(1)} --> {m.group(2)}", *payload]) + "\n",
                                             format_=fmt).events
        if len(events) != 1:
            out.problems.append(ParseProblem("subtitle_garbled", f"block {number}: its text holds another timing "
                                             f"line", block))
            continue
        ev = events[0]
        shown = plain_lines(ev)
        if not shown:   # a cue that shows nothing (no text, or only tags such as <i></i>) is a bad cue too
            out.problems.append(ParseProblem("subtitle_empty_text", f"block {number} ({ev.start / 1000:g}-"
                                             f"{ev.end / 1000:g} s) has no text", block))
            continue
        shown_cues.append((ev.start / 1000.0, ev.end / 1000.0, shown))
    out.items = unrolled(shown_cues, rolling=True if _INLINE_TIMESTAMP.search(text) else None)
    return out


def unrolled(shown_cues: list[tuple[float, float, list[str]]], rolling: bool | None = None) -> list[Cue]:
    """Cues from (start, end, lines as shown). Rolling captions (`rolling`, or None: where `_rolls` finds
    them) keep only the lines each cue adds, and a cue that adds none (a 10-ms repeat) is left out."""
    rolling = _rolls(shown_cues) if rolling is None else rolling
    out, previous = [], []   # previous: the lines of the cue before, as shown
    for start, end, shown in shown_cues:
        new = shown[_repeated(previous, shown):] if rolling else shown
        previous = shown or previous
        if new:
            out.append(Cue(start, end, " ".join(new)))
    return out


def _rolls(cues: list[tuple[float, float, list[str]]]) -> bool:
    """Whether captions roll (each cue opens with the line the cue before ended on and adds one), as YouTube's
    automatic captions do, also when converted without their word times or put in the file (yt-dlp
    --embed-subs): two such cues at least, and half of the cues that do not merely repeat the line before
    (YouTube's 10-ms cues, a chorus sung again). A chorus alone is no roll."""
    kept = [(len(b), _repeated(a, b)) for (_, _, a), (_, _, b) in zip(cues, cues[1:]) if a and b]
    rolled = sum(1 for n, k in kept if 0 < k < n)
    repeats = sum(1 for n, k in kept if k == n)
    return rolled >= 2 and rolled >= (len(kept) - repeats) / 2


# ASS styles that are not speech, by fansub convention (Sign, TS, Title, Note, OP/ED, Song, Kara...), and
# typesetting overrides that place text on the picture (\pos, \move, \clip): on-screen text, not dialogue
_NOT_SPEECH_STYLE = re.compile(r"sign|\bts\b|typeset|(?<!sub)title|note|\bop\b|\bed\b|opening|ending|song|kara|lyric",
                               re.I)   # (a dialogue style may be called "Subtitle")
_TYPESET = re.compile(r"\\(?:pos|move|i?clip)\s*\(")


def parse_ass(text: str) -> Parsed:
    """Cues of an ASS/SSA script (fansubs, anime releases, Aegisub exports), in time order: its spoken
    lines. Not its Comment lines, vector drawings (`{\\p1}m 0 0 l ...`: shapes), or signs, titles and songs
    (a style named so, or text placed on the picture): those overlap the dialogue by design, and a
    30-second title card would make every line spoken under it an overlapping cue."""
    out = Parsed(format="ass")
    if "[events]" not in text.lower():
        out.problems.append(ParseProblem("subtitle_unparsable", "no [Events] section in this ASS/SSA text", text[:200]))
        return out
    try:
        events = pysubs2.SSAFile.from_string(text.lstrip("\ufeff"), format_="ass").events
    except Exception as e:   # pysubs2 raises its own and plain parse errors alike
        out.problems.append(ParseProblem("subtitle_unparsable", f"not an ASS/SSA script: {e}", text[:200]))
        return out
    spoken = (e for e in events if not e.is_comment and is_spoken(e))
    for ev in sorted(spoken, key=lambda e: (e.start, e.end)):
        line = plain_text(ev)
        if line:
            out.items.append(Cue(ev.start / 1000.0, ev.end / 1000.0, line))
    return out


def is_spoken(event: pysubs2.SSAEvent) -> bool:
    """Whether an ASS event is a spoken line: not a vector drawing, nor a sign, title or song (its style
    says so, or its text is placed on the picture)."""
    return not (event.is_drawing or _NOT_SPEECH_STYLE.search(event.style or "") or _TYPESET.search(event.text))


def _blocks(text: str, fmt: str) -> list[str]:
    """Cue blocks. SRT is cut at blank lines, spaces or not; WebVTT at empty lines only (YouTube's captions
    hold lines of one space inside cues, and an empty line after the timing). A block that holds a second
    timing line (cues written without the blank line between them) is cut there, the cue's number or
    identifier going with it. Text after an empty line that follows a bare timing line is that cue's text
    (YouTube's captions, and SRT converted from them), unless it opens a block of its own: a timing
    line, an SRT cue number, a WebVTT NOTE."""
    out = []
    for block in re.split(r"\n\n+" if fmt == "vtt" else r"\n[ \t]*\n", text):
        lines = block.split("\n")
        starts = [i for i, line in enumerate(lines) if _TIMING[fmt].match(line)]
        cuts = [i - 1 if _identifier(lines, i, fmt) else i for i in starts[1:]]
        for a, b in zip([0, *cuts], [*cuts, len(lines)]):
            part = "\n".join(lines[a:b]).strip("\n")
            if not part.strip():
                continue
            if out and _TIMING[fmt].match(out[-1].split("\n")[-1]) and not _opens_block(part, fmt):
                out[-1] += "\n" + part
            else:
                out.append(part)
    return out


def _opens_block(part: str, fmt: str) -> bool:
    """Whether a block starts something of its own, not the text of the bare timing line before it: it
    holds a timing arrow (a good or garbled timing line), or starts with an SRT cue number or a WebVTT
    NOTE / STYLE / REGION."""
    first = part.lstrip("\n").split("\n", 1)[0].strip()
    return bool(_ARROW.search(part)) or (first.isdigit() if fmt != "vtt" else first.startswith(_VTT_SKIPPED_BLOCKS))


def _identifier(lines: list[str], timing: int, fmt: str) -> bool:
    """Whether the line before a timing line is its cue's number (SRT) or identifier (WebVTT: a line of its
    own after a line of spaces)."""
    if timing < 1 or not lines[timing - 1].strip():
        return False
    if fmt != "vtt":
        return lines[timing - 1].strip().isdigit()
    return timing >= 2 and not lines[timing - 2].strip()


def _repeated(before: list[str], lines: list[str]) -> int:
    """How many of `lines` open by repeating the last lines of the cue `before` (rolling captions)."""
    return max((k for k in range(1, min(len(before), len(lines)) + 1) if before[-k:] == lines[:k]), default=0)


def plain_lines(event: pysubs2.SSAEvent) -> list[str]:
    """A cue's lines as shown: formatting tags (SRT's <i>, ASS's {\\i1}), karaoke timestamps and HTML
    entities gone, invisible characters gone and no-break spaces plain ones (`_INVISIBLE`), lines of only
    spaces dropped."""
    plain = html.unescape(_INLINE_TIMESTAMP.sub("", event.plaintext)).translate(_INVISIBLE)
    return [part.strip() for part in plain.split("\n") if part.strip()]


def plain_text(event: pysubs2.SSAEvent) -> str:
    """A cue's text on one line (its lines joined by spaces)."""
    return " ".join(plain_lines(event))


def load_subtitles(path: str) -> Parsed:
    """`parse_subtitles` of a file (its encoding found by `decode_text`); the format from its extension.
    Stray bytes in a UTF-8 file are a repair (`subtitle_encoding_repaired`): the cues are kept."""
    with open(path, "rb") as f:
        decoded = decode_text(f.read())
    parsed = parse_subtitles(decoded.text, subtitle_format(decoded.text, path))
    if decoded.stray_bytes:
        parsed.problems.append(ParseProblem("subtitle_encoding_repaired", f"{decoded.stray_bytes} byte(s) that are "
                                            "not UTF-8 in a UTF-8 file, read as Windows-1252", "", dropped=False))
    return parsed


_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
# one well-formed UTF-8 character of two to four bytes (no overlong forms, no surrogates)
_UTF8_CHAR = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
                        rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
                        rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}")
_HIGH = re.compile(rb"[\x80-\xff]")
# How much more "chaos" (charset_normalizer's mess score) Windows-1252 may have than the best match and
# still be taken: for French or Spanish Latin-1 text it scores cp1257 (Baltic) 0.05-0.1 below cp1252, at
# the same coherence, because ç/à/ô are rarer letters there; a Turkish or Polish text reads less coherent
# as cp1252, and a Cyrillic or Greek one does not decode as cp1252 at all.
_WESTERN_MARGIN = 0.15


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str        # the codec used (for a UTF-8 file with stray bytes: "utf-8")
    stray_bytes: int = 0   # bytes of a UTF-8 file that are not UTF-8, read as Windows-1252


def decode_text(raw: bytes) -> Decoded:
    """Bytes of a text file whatever its encoding: a BOM's; else UTF-8; else UTF-8 with stray bytes when
    most of its non-ASCII characters are well-formed UTF-8 (a file edited in two editors, SRTs joined),
    each stray byte read as Windows-1252 ("caf\\xe9" is "café"); else UTF-16 without a BOM (every other
    byte 0: Windows tools' "Unicode"); else the legacy code page charset_normalizer finds, Windows-1252
    (Western) where it reads about as well as the best (`_WESTERN_MARGIN`). Subtitle sites served Windows
    code pages for decades: read as UTF-8, "Ça va très bien" became "\ufffda va tr\ufffds bien"."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return Decoded(raw.decode(encoding, errors="replace"), encoding)
    try:
        return Decoded(raw.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    if len(raw) >= 4:
        zeros_even, zeros_odd = raw[0::2].count(0), raw[1::2].count(0)
        if max(zeros_even, zeros_odd) > 0.3 * len(raw) / 2:
            encoding = "utf-16-be" if zeros_even > zeros_odd else "utf-16-le"
            return Decoded(raw.decode(encoding, errors="replace"), encoding)
    chars = _UTF8_CHAR.findall(raw)
    stray = len(_HIGH.findall(raw)) - sum(len(c) for c in chars)
    # a legacy code page rarely makes well-formed UTF-8 by chance, so UTF-8 characters that outnumber the
    # stray bytes say UTF-8; and a stray byte read as cp1252 is right where a cp1252 part was pasted in
    if chars and len(chars) >= stray:
        return Decoded(raw.decode("utf-8", errors=_CP1252_FALLBACK), "utf-8", stray)
    encoding = _legacy_code_page(raw)
    return Decoded(raw.decode(encoding, errors="replace"), encoding)


def _legacy_code_page(raw: bytes) -> str:
    import charset_normalizer

    matches = list(charset_normalizer.from_bytes(raw))
    if not matches:
        return "cp1252"
    best = matches[0]
    western = next((m for m in matches if "cp1252" in m.could_be_from_charset), None)
    if western is not None and western.chaos <= best.chaos + _WESTERN_MARGIN and western.coherence >= best.coherence:
        return "cp1252"
    return best.encoding


def decode_as(raw: bytes, encoding: str) -> str:
    """`raw` in the encoding `decode_text` found (for UTF-8, stray bytes read as Windows-1252)."""
    return raw.decode(encoding, errors=_CP1252_FALLBACK if encoding == "utf-8" else "replace")


def _cp1252_bytes(error: UnicodeDecodeError) -> tuple[str, int]:
    return error.object[error.start:error.end].decode("cp1252", errors="replace"), error.end


_CP1252_FALLBACK = "vdata.cp1252_fallback"
codecs.register_error(_CP1252_FALLBACK, _cp1252_bytes)


def read_text(path: str) -> str:
    """A sidecar text file (subtitles, a description, chapter lines, a CSV manifest), whatever its
    encoding (`decode_text`)."""
    with open(path, "rb") as f:
        return decode_text(f.read()).text


# --- chapters from description lines -----------------------------------------------------------------

# a clock, with a fraction or not ("0:07.5", "00:00:07,500": ffmpeg's and mkvmerge's chapter exports)
_TS = r"\d{1,2}(?::\d{1,2}){1,2}(?:[.,]\d+)?"
# what people type between a time and its title; a "." right before a digit is a fraction, never a separator
_SEP = r"(?:\s*(?:[-–—:|•·~>=*_]|\.(?!\d))+\s*|\s+|$)"
# the end of a range "0:00 - 0:45"
_RANGE_END = rf"(?:\s*(?:[-–—~]+|to)\s*(?P<end>{_TS}))?"
# "0:00 Intro", "- 0:00 Intro", "1. 0:00 Intro", "(0:00) Intro", and a range "0:00 - 0:45 Intro" (its end kept);
# a bullet may be any symbols: an emoji ("🎬 0:00 Intro", "1️⃣ 0:00 Intro"), markdown ("**0:00** Intro"), "#1"
_BULLET = r"(?:(?:[^\w\s(\[]|\d\ufe0f?\u20e3)+\s*(?:\d+[.)]?\s+)?|#?\d+[.)]?\s+)"
_LEAD = re.compile(rf"^\s*{_BULLET}?[(\[]?(?P<ts>{_TS}){_RANGE_END}[)\]]?{_SEP}"
                   rf"(?P<title>.*)$")
_TRAIL = re.compile(rf"^(?P<title>.*?\S)\s*(?:[-–—:|@]\s*)?[(\[]?(?P<ts>{_TS}){_RANGE_END}[)\]]?\s*$")
# where a one-line list ("0:00 Intro | 0:30 Part 2 | 1:00 Outro") is cut: a list separator before a time
_ONE_LINE_CUT = re.compile(rf"\s*[|•·;]\s*(?=[(\[]?{_TS}(?:[)\]]|\s|$))")
_SPACE_CUT = re.compile(rf"(?<![-–—~\s])(?<!\bto)\s+(?={_TS}\s+\S)")   # not inside a range "0:00 - 0:45"


_CLOCK = re.compile(r"\s*(\d+):([0-5]\d)(?::([0-5]\d))?(?:\.(\d*))?\s*")


def parse_timestamp(text: str) -> float | None:
    """Seconds of "M:SS", "MM:SS" or "H:MM:SS", with a fraction or not ("0:00:05.839": Panda-70M's and
    WebVTT's timecodes); None when it is not one or a field is out of range ("1:75")."""
    clock = _CLOCK.fullmatch(text)
    if clock is None:
        return None
    first, second, third, fraction = clock.groups()
    whole = int(first) * 3600 + int(second) * 60 + int(third) if third is not None else int(first) * 60 + int(second)
    return whole + (float(f"0.{fraction}") if fraction else 0.0)


def parse_chapter_lines(text: str, require_zero_start: bool = True) -> Parsed:
    """Chapter marks from description text: one per line that starts (or ends) with a timestamp.

    Prose lines are not chapters and are skipped silently; a line whose timestamp is malformed, or a
    time that breaks the rising order of the others (`_ascending`: the longest rising run stands), is a
    problem. A list has one form: times leading ("0:00 Intro") or trailing ("Intro 0:00"), the form of most
    of its lines, else of its 0:00 line (`_list_form`); a line of the other form is prose ("Doors open at
    9:30" in a list of leading times) unless its time fits between the chapters around it (or it is the
    0:00 line before them). A range "0:00 - 0:45 Intro" gives the chapter's start and end; a line of several "time
    title" pairs cut by `|`, `•`, `·` or `;` (or spaces alone, for three rising pairs or more) is one
    chapter per pair. With `require_zero_start` (YouTube's rule) a list whose first timestamp is not
    0:00 gives no chapters and one problem; a single such line is taken for prose and gives neither.
    """
    out = Parsed(format="chapter_lines")
    found = []   # (form, match, line) of each line with a time, in order
    lines = (text or "").replace("\r\n", "\n").split("\n")
    # a line holding a whole list ("0:00 Intro | 0:30 Part 2") only where it is the text's one timed line: in a
    # list of lines, "0:40 Agenda: 9:00 coffee 10:00 talks 12:00 lunch" is one chapter (outside check h23)
    alone = sum(1 for line in lines if _LEAD.match(line) or _TRAIL.match(line)) == 1
    for line in lines:
        for part in (_one_line_list(line) if alone else [line]):
            m = _LEAD.match(part)
            form = "lead" if m is not None else "trail"
            m = m or _TRAIL.match(part)
            if m is not None:
                found.append((form, m, part.strip()))
    form = _list_form(found)
    timed = []   # (position, is of the list's form, match, line, start)
    for k, (line_form, m, line) in enumerate(found):
        start = parse_timestamp(m.group("ts").replace(",", "."))
        ours = form is None or line_form == form
        if start is None:
            if ours:
                out.problems.append(ParseProblem("chapter_line_unparsable", f"timestamp {m.group('ts')!r} is not "
                                                 f"M:SS or H:MM:SS", line))
            continue
        timed.append((k, ours, m, line, start))
    own = [t for t in timed if t[1]]
    kept = set(_ascending([t[4] for t in own]))
    chosen = [t for i, t in enumerate(own) if i in kept]
    for i, (_, _, m, line, start) in enumerate(own):
        if i not in kept:   # a time that breaks the rising order of the others (a prose line's, most often)
            out.problems.append(ParseProblem("chapter_out_of_order", f"{m.group('ts')} ({start:g} s) does not fit "
                                             "the rising times of the other chapters", line))
    for t in (t for t in timed if not t[1]):
        # a line of the other form ("Main part 1:30" among "0:00 Intro" lines) is a chapter where its time fits
        # between the chapters around it; elsewhere it is prose ("Doors open at 9:30")
        before = [c for c in chosen if c[0] < t[0]]
        after = [c for c in chosen if c[0] > t[0]]
        if after and (before[-1][4] < t[4] if before else t[4] == 0) and t[4] < after[0][4]:
            chosen.append(t)   # (with nothing before it, only the list's 0:00 line: "Intro 0:00" over "1:00 A" lines)
    for _, _, m, line, start in sorted(chosen, key=lambda t: t[4]):
        end = m.groupdict().get("end")
        end = parse_timestamp(end.replace(",", ".")) if end else None
        out.items.append(ChapterMark(start, m.group("title").strip(), end if end is not None and end > start else None))
    if require_zero_start and len(out.items) == 1 and out.items[0].start_s != 0 and not out.problems:
        out.items = []   # one timestamp in prose ("we meet at 10:30"), not a chapter list
    if require_zero_start and out.items and out.items[0].start_s != 0:
        first = out.items[0]
        out.problems.append(ParseProblem("chapters_not_from_zero", f"the first timestamp is {first.start_s:g} s, "
                                         f"not 0:00, so these {len(out.items)} lines are not chapters (YouTube's rule)",
                                         "\n".join(f"{c.start_s:g} {c.title}" for c in out.items)))
        out.items = []
    return out


def _one_line_list(line: str) -> list[str]:
    """A line as the chapter lines it holds: "0:00 Intro | 0:30 Part 2" is two when every part is a "time
    title" line, and so is "0:00 Intro 0:30 Part 2 1:00 Outro" (three times or more, rising: "0:00 Breakfast
    at 7:30" is one chapter); any other line is itself."""
    if not line.strip() or _LEAD.match(line) is None:
        return [line] if line.strip() else []
    for parts, least in ((_ONE_LINE_CUT.split(line), 2), (_SPACE_CUT.split(line), 3)):
        marks = [_LEAD.match(p) for p in parts]
        if len(parts) >= least and all(m and m.group("title").strip() for m in marks):
            times = [parse_timestamp(m.group("ts").replace(",", ".")) for m in marks]
            if None not in times and times == sorted(set(times)):   # "Final | 2:1 win" is one title (h23)
                return parts
    return [line]


def _ascending(values: list[float]) -> list[int]:
    """Indices of a longest strictly rising subsequence of `values`, the one with the smallest last values
    (patience sorting): a stray time, a prose line's "9:30" among minutes of chapters, is the one left out, not
    the real chapters after it."""
    tails: list[int] = []            # tails[k]: index of the smallest last value of a rising run of length k+1
    before = [-1] * len(values)
    for i, v in enumerate(values):
        k = bisect.bisect_left([values[j] for j in tails], v)
        if k < len(tails) and values[tails[k]] == v:
            continue   # two lines at one time: the first stands (as YouTube shows the first)
        before[i] = tails[k - 1] if k else -1
        if k == len(tails):
            tails.append(i)
        else:
            tails[k] = i
    out, i = [], tails[-1] if tails else -1
    while i >= 0:
        out.append(i)
        i = before[i]
    return out[::-1]


def _list_form(found: list) -> str | None:
    """The form of a list's lines, "lead" or "trail": the one of the most lines, of the 0:00 line (YouTube's
    lists start there) where both have as many; None (both count) where that is a tie too. (A lone 0:00 line
    of the other form decided it before, and a list of "1:00 A" lines under "Intro 0:00" lost them: h23.)"""
    score = {form: (sum(1 for f, _, _ in found if f == form),
                    any(f == form and parse_timestamp(m.group("ts").replace(",", ".")) == 0 for f, m, _ in found))
             for form in ("lead", "trail")}
    return None if score["lead"] == score["trail"] else max(score, key=score.get)
