"""Timed text a video arrives with: SRT / WebVTT subtitles and YouTube description chapter lines.

Subtitles are parsed by pysubs2 (timestamps, formatting tags, HTML). pysubs2 is lenient on purpose: a cue whose
timing line is garbled silently becomes text of the cue before it. So the file is first cut into blank-line
separated blocks, each block is checked for one well-formed timing line, and each good block goes through pysubs2
alone. A bad block (no timing line, a garbled one, no text to show) becomes a problem (reason code, message, the
block's text) and the other cues go on: nothing here raises on bad input.

Chapter lines follow the YouTube description convention ("0:00 Intro", "1:02:03 - Title", "(12:30) Title", "Title
12:30"): vdata/media/chapter_lines.py. YouTube makes chapters only when the first timestamp is 0:00 (its Help Center
page "Video chapters"); a list that starts later is reported as `chapters_not_from_zero` and gives no chapters,
because such lists are usually "notable moments", not a division of the video.
"""
from __future__ import annotations


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
    """Bytes of a text file whatever its encoding: a BOM's; else UTF-16 without a BOM (every other byte 0:
    Windows tools' "Unicode"); else UTF-8; else UTF-8 with stray bytes when most of its non-ASCII characters
    are well-formed UTF-8 (a file edited in two editors, SRTs joined), each stray byte read as Windows-1252
    ("caf\\xe9" is "café"); else the legacy code page charset_normalizer finds, Windows-1252 (Western) where
    it reads about as well as the best (`_WESTERN_MARGIN`). Subtitle sites served Windows code pages for
    decades: read as UTF-8, "Ça va très bien" became "\ufffda va tr\ufffds bien"."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return Decoded(raw.decode(encoding, errors="replace"), encoding)
    # UTF-16 before UTF-8: ASCII text in UTF-16 is valid UTF-8 too (a NUL is a legal byte), and real text
    # holds no NULs; tested first, a BOM-less UTF-16 SRT is no longer "1\x00\n\x000\x00..." (h24 F8)
    if len(raw) >= 4:
        zeros_even, zeros_odd = raw[0::2].count(0), raw[1::2].count(0)
        if max(zeros_even, zeros_odd) > 0.3 * len(raw) / 2:
            encoding = "utf-16-be" if zeros_even > zeros_odd else "utf-16-le"
            return Decoded(raw.decode(encoding, errors="replace"), encoding)
    try:
        return Decoded(raw.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
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
