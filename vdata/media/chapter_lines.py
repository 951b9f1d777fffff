"""Chapter marks from description text: YouTube's "0:00 Intro" lines, as people write them.

Split from subtitles.py (which keeps the cue parsing and `parse_timestamp`): the lists' forms, ranges, one-line
lists, bullets, stray times and second lists are most of what description chapters need, and grew past what one
file of the house holds.
"""
from __future__ import annotations

import bisect
import re

from .subtitles import ChapterMark, Parsed, ParseProblem, parse_timestamp

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
# a clock time in prose: "New videos every Friday at 18:00", "Live until 9:30" end in a time that a preposition
# leads; a trailing-time chapter title ("Intro 0:00", "Q&A - 12:30") does not end in one
_PROSE_BEFORE_TIME = re.compile(r"\b(?:at|from|until|till|til|by|around|about|before|after|since|between|"
                                r"approx|approximately|starting|starts|ends|open|opens|closes)\W*$", re.IGNORECASE)


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
    alone = sum(1 for line in lines if _LEAD.match(line)) == 1   # prose ending in a time does not count (h23)
    for line in lines:
        for part in (_one_line_list(line) if alone else [line]):
            m = _LEAD.match(part)
            form = "lead" if m is not None else "trail"
            if m is None and (m := _TRAIL.match(part)) is not None and _PROSE_BEFORE_TIME.search(m.group("title")):
                continue   # prose that ends in a clock time, whatever the list's form (outside check h23 F4)
            if m is not None:
                found.append((form, m, part.strip()))
    # The list runs from its 0:00 line to the next 0:00 line: timed lines before it (lyrics, "recorded at 18:45")
    # are not its chapters, and a second list (a tracklist, credits) restarts at 0:00 (outside check h23)
    # Of several such lists, the longest stands (a prose "jump to 0:00" before the real list is a list of one:
    # h23); a 0:00 line right after another is the same list's (two titles at its start).
    at_zero = [parse_timestamp(m.group("ts").replace(",", ".")) == 0 for _, m, _ in found]
    starts = [k for k, zero in enumerate(at_zero) if zero and not (k and at_zero[k - 1])]
    if starts:
        lists = [found[a:b] for a, b in zip(starts, [*starts[1:], len(found)])]
        found = max(lists, key=len)
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
    tail_values: list[float] = []    # values[tails[k]], kept beside them for the bisection
    before = [-1] * len(values)
    for i, v in enumerate(values):
        k = bisect.bisect_left(tail_values, v)
        if k < len(tails) and tail_values[k] == v:
            continue   # two lines at one time: the first stands (as YouTube shows the first)
        before[i] = tails[k - 1] if k else -1
        if k == len(tails):
            tails.append(i)
            tail_values.append(v)
        else:
            tails[k], tail_values[k] = i, v
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
