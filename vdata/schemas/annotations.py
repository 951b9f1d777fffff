"""One video's annotations, normalised and checked against the video: the value of `R.ANNOTATIONS`.

`validate_annotations(raw, duration_s)` takes what the sources gave per kind (see R.ANNOTATION_KINDS),
already decoded from JSON / SRT / description lines into Python values, and returns the
`ANNOTATIONS_TYPE` dict plus a list of `AnnotationIssue`s. Rules, per kind:

- title, description, transcript: text (a list of lines is joined), stripped; empty is absent (None); a
  dict or a bool is `<kind>_malformed` (dropped, never rendered as its repr).
- labels: strings, de-duplicated in order. With a vocabulary, each label is matched case- and
  underscore-insensitively and written in the vocabulary's spelling; one not in it is dropped
  (`label_not_in_vocabulary`).
- chapters: sorted by start; each needs a title (`chapter_untitled`) and a start inside the video
  (`chapter_past_end`); one that starts before the video is clamped to 0 (a repair) unless the next one
  starts at or before 0 (`chapter_before_start`: wholly before it); two at one start keep the first
  (`chapter_duplicate_start`).
  A chapter's end is the next chapter's start, the last one's the video's end; where the source gave an
  end that differs, the change is a repair (`chapter_overlap_trimmed`, `chapter_gap_absorbed`,
  `chapter_end_clamped`).
- segments (dense captions; they may overlap): start < end (`segment_inverted`), text (`segment_empty_text`),
  inside the video: an edge up to `tolerance_s` outside, or any edge of a segment at least half inside,
  is clamped and counted as a repair (`segment_clamped`); a segment wholly or mostly outside (and more
  than `tolerance_s` out) is dropped (`segment_out_of_range`). An item marked `end_rounded_up` (a reader
  whose dataset quantizes times, DiDeMo) has an end past the video clamped however far past. The same
  item twice (times and text) is kept once, a repair (`segment_duplicate`).
- subtitles: the segment rules (reasons `subtitle_*`), except that a cue is clamped into the video when
  any part of it is in it (on screen from its start: the last cue of a trimmed download runs past the
  end) and out of range only when wholly outside; then sorted; a cue that starts before the
  previous kept cue ends is dropped (`subtitle_overlap`), unless the overlap is within `tolerance_s`
  (or `subtitle_overlap="trim"`), when the previous cue's end is cut to the new start (a repair).

Items are given as dicts ({start_s, end_s, text}; the usual spellings `start`/`start_time`,
`timestamp: [s, e]`, `sentence`/`caption`/`title` are accepted), as [start, end, text] lists, or for
segments as ActivityNet Captions' parallel `{timestamps: [[s, e], ...], sentences: [...]}`. Times are
seconds, or "M:SS" / "H:MM:SS" strings. An item that is none of these is `<kind>_malformed`.
An issue with `dropped=False` is a repair: the item was kept, changed. Messages name an item by its
time (by its 1-based place in the list only where it has no readable time), so that a reject can be found
in a file whose blocks the subtitle parser numbers from 1 (vdata/media/subtitles.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable


SINGULAR = {"chapters": "chapter", "segments": "segment", "subtitles": "subtitle", "labels": "label"}
_START_KEYS = ("start_s", "start", "start_time", "begin", "time", "t")
_END_KEYS = ("end_s", "end", "end_time", "stop")
_SAME_TIME_S = 1e-3   # two times this close are one (a float's rounding)
CHAPTER_END_SLACK_S = 0.1   # a chapter's given end this far before the next start is that start (a frame or less)
_SPAN_KEYS = ("timestamp", "timestamps", "segment", "span", "interval")
_TEXT_KEYS = ("text", "title", "sentence", "caption", "description", "label", "name")
# An item flag: the end was rounded up to a fixed chunk (DiDeMo's 5-s chunks), so an end past the video
# means "until the video ends" and is clamped as a repair, however far past.
ENDS_WITH_VIDEO = "end_rounded_up"
_UNPAIRED = "_unpaired"   # an entry of parallel lists that the shorter list left without a partner: why


@dataclass(frozen=True)
class AnnotationIssue:
    kind: str            # the annotation kind: chapters, segments, subtitles, labels, ...
    reason: str          # stable code, e.g. chapter_past_end
    message: str         # for humans, with the numbers
    item: Any = None     # the offending item as given (JSON-able)
    index: int | None = None   # its position in the source's list, when it came from one
    dropped: bool = True       # False: a repair (clamped, trimmed), the item was kept

    def detail(self) -> dict:
        return {"kind": self.kind, "item": self.item, "index": self.index, "dropped": self.dropped}


def label_lines(text: str) -> list[str]:
    """The labels of a labels file (one per line): blank lines and `#` comment lines are not labels. One
    rule for every reader (`annotations.label_vocabulary`, a labels sidecar, `label_mcq.vocabulary`): a
    file written for one and pointed at by another read its "# Kinetics-400 classes" header as a label."""
    return [" ".join(line.split()) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_label_file(path: str) -> list[str]:
    """The labels of a labels file: a JSON list (`.json`), else `label_lines`. One reader for every place that
    takes such a file (a pretty-printed JSON list read line by line made "[" and '"baking",' labels: h23).
    A `.json` file that holds no list raises ValueError."""
    import json

    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    if path.lower().endswith(".json"):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path!r} is not valid JSON ({e.msg}, line {e.lineno})") from None
        if not isinstance(items, list):
            raise ValueError(f"{path!r} must hold a JSON list of labels")
    else:
        items = label_lines(text)
    return [" ".join(str(v).split()) for v in items if str(v).strip()]


def holding_midpoint(items: list | None, start_s: float, end_s: float | None) -> list[dict]:
    """The timed items (subtitle cues) whose middle lies in [start_s, end_s), times cut to it. A subtitle
    line runs across a shot cut as often as the sentence it shows: required wholly inside, it reached no
    clip. The clips of a video meet at their edges, so [start, end) gives a cue to exactly one of them,
    as a speech word goes to the clip holding it. Generate's clues and verify_claims' evidence share it."""
    hi = float("inf") if end_s is None else float(end_s)
    out = []
    for x in items or []:
        if x and x.get("start_s") is not None and x.get("end_s") is not None \
                and start_s <= (x["start_s"] + x["end_s"]) / 2 < hi:
            out.append({**x, "start_s": max(x["start_s"], start_s), "end_s": min(x["end_s"], hi)})
    return out


def label_key(label: str) -> str:
    """How labels compare: case, underscores and spacing do not matter."""
    return " ".join(label.replace("_", " ").casefold().split())


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
            return number if math.isfinite(number) else None
        except ValueError:
            # a clock with or without a fraction ("1:02", "0:01:02.500"); anything else is unreadable
            from vdata.media.subtitles import parse_timestamp   # deferred: pysubs2 costs ~0.05 s at CLI start

            return parse_timestamp(text) if ":" in text else None
    return None


def _first(item: dict, keys: Iterable[str]) -> Any:
    return next((item[k] for k in keys if item.get(k) is not None), None)


def _text_type(item: Any) -> str:
    """" (its text is a int, not text)" for an item whose text has another type (a shifted CSV column, a
    class id): read as text, the number 5 became the caption "5" (outside check h24 F2); else ""."""
    text = _first(item, _TEXT_KEYS) if isinstance(item, dict) else (
        item[-1] if isinstance(item, (list, tuple)) and len(item) in (2, 3) else None)
    return f" (its text is a {type(text).__name__}, not text)" if text is not None and not isinstance(text, str) else ""


def _timed_item(item: Any, needs_end: bool) -> tuple[float | None, float | None, str] | None:
    """(start, end, text) of one item in any accepted spelling; None when it has no readable start."""
    if isinstance(item, dict):
        span = _first(item, _SPAN_KEYS)
        if isinstance(span, (list, tuple)) and len(span) == 2:
            start, end = _seconds(span[0]), _seconds(span[1])
        else:
            start, end = _seconds(_first(item, _START_KEYS)), _seconds(_first(item, _END_KEYS))
        text = _first(item, _TEXT_KEYS)
    elif isinstance(item, (list, tuple)) and len(item) in (2, 3):
        start = _seconds(item[0])
        end = _seconds(item[1]) if len(item) == 3 else None
        text = item[-1]
    else:
        return None
    if start is None or (needs_end and end is None) or (text is not None and not isinstance(text, str)):
        return None
    return start, end, "" if text is None else " ".join(str(text).split())


def timed_items(value: Any) -> list:
    """The item list of a chapters / segments / subtitles value (ActivityNet's parallel lists unzipped)."""
    if value is None:
        return []
    if isinstance(value, dict):
        spans, texts = _first(value, _SPAN_KEYS), _first(value, ("sentences", "captions", "texts", "titles"))
        if isinstance(spans, list) and isinstance(texts, list):
            # paired by place, as the file readers pair them (annotation_formats.base.pair_lists); an entry
            # that the shorter list leaves without a partner is malformed, said so, not "empty text"
            unpaired = f"{len(spans)} spans and {len(texts)} texts: parallel lists of different lengths"
            return [{"timestamp": s, "text": t} for s, t in zip(spans, texts)] + [
                {_UNPAIRED: f"item {i + 1} has no {'text' if len(spans) > len(texts) else 'span'} ({unpaired})"}
                for i in range(min(len(spans), len(texts)), max(len(spans), len(texts)))]
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = "\n".join(str(v) for v in value if v is not None)
    text = str(value).strip()
    return text or None


def _is_text(value: Any) -> bool:
    """Text, a number, or a list of those (lines); a dict or a bool is not (its repr would become the title)."""
    if isinstance(value, (list, tuple)):
        return all(v is None or _is_text(v) and not isinstance(v, (list, tuple)) for v in value)
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


class _Checker:
    def __init__(self, duration_s: float | None, tolerance_s: float):
        self.duration_s, self.tolerance_s = duration_s, tolerance_s
        self.issues: list[AnnotationIssue] = []

    def issue(self, kind: str, reason: str, message: str, item: Any = None, index: int | None = None,
              dropped: bool = True) -> None:
        self.issues.append(AnnotationIssue(kind, reason, message, item, index, dropped))

    def text(self, kind: str, value: Any) -> str | None:
        """A title / description / transcript as text; a value of another shape (a dict of localized
        titles, a YouTube `{"runs": [...]}`) is `<kind>_malformed`, never its Python repr."""
        if value is None or _is_text(value):
            return _text(value)
        self.issue(kind, f"{kind}_malformed", f"{kind} is a {type(value).__name__}, not text: {str(value)[:80]}",
                   value)
        return None

    def labels(self, value: Any, vocabulary: list[str] | None) -> list[str]:
        given = [value] if isinstance(value, str) else (list(value) if isinstance(value, (list, tuple)) else [value])
        canonical = {label_key(v): v for v in vocabulary} if vocabulary is not None else None
        out: list[str] = []
        for i, label in enumerate(given):
            if label is None or (isinstance(label, str) and not label.strip()):
                continue
            if not isinstance(label, (str, int, float)) or isinstance(label, bool):
                self.issue("labels", "label_malformed", f"label {i + 1} is a {type(label).__name__}, not text", label, i)
                continue
            text = " ".join(str(label).split())
            if canonical is not None:
                if label_key(text) not in canonical:
                    self.issue("labels", "label_not_in_vocabulary", f"label {text!r} is not in the label vocabulary "
                               f"({len(canonical)} labels)", label, i)
                    continue
                text = canonical[label_key(text)]
            if text not in out:
                out.append(text)
        return out

    def chapters(self, value: Any) -> list[dict]:
        marks = []
        for i, item in enumerate(timed_items(value)):
            parsed = _timed_item(item, needs_end=False)
            if parsed is None:
                why = item.get(_UNPAIRED) if isinstance(item, dict) else None
                self.issue("chapters", "chapter_malformed", f"the chapters: {why}" if why else
                           f"item {i + 1} of the chapters has no readable start time and title{_text_type(item)}",
                           None if why else item, None if why else i)
                continue
            start, given_end, title = parsed
            if not title:
                self.issue("chapters", "chapter_untitled", f"chapter at {start:g} s has no title", item, i)
                continue
            if start < 0 and start >= -self.tolerance_s:
                self.issue("chapters", "chapter_clamped", f"chapter {title!r} start {start:g} s set to 0", item, i, False)
                start = 0.0
            if self.duration_s is not None and start >= self.duration_s:
                self.issue("chapters", "chapter_past_end", f"chapter {title!r} starts at {start:g} s, at or past the "
                           f"video's end ({self.duration_s:g} s)", item, i)
                continue
            marks.append((start, i, title, item, given_end))
        marks.sort(key=lambda m: (m[0], m[1]))
        # a chapter that starts before the video runs to the next one's start: it is in the video (clamped to
        # start at 0, a repair) unless that start is at or before 0, as for a timed item wholly outside
        for k, (start, i, title, item, given_end) in enumerate(marks):
            if start < 0:
                after = marks[k + 1][0] if k + 1 < len(marks) else self.duration_s
                if after is not None and after <= 0:
                    self.issue("chapters", "chapter_before_start", f"chapter {title!r} starts at {start:g} s and ends "
                               f"at {after:g} s, before the video", item, i)
                else:
                    self.issue("chapters", "chapter_clamped", f"chapter {title!r} start {start:g} s set to 0", item, i,
                               False)
                    marks[k] = (0.0, i, title, item, given_end)
        kept: list[tuple] = []
        for start, i, title, item, given_end in marks:
            if start < 0:
                continue
            if kept and start == kept[-1][0]:
                self.issue("chapters", "chapter_duplicate_start", f"chapter {title!r} starts at {start:g} s like "
                           f"chapter {kept[-1][1]!r}", item, i)
                continue
            kept.append((start, title, i, item, given_end))
        ends = [s for s, *_ in kept[1:]] + [self.duration_s]
        for k, ((start, title, i, item, given), end) in enumerate(zip(kept, ends)):
            self._chapter_end(start, title, i, item, given, end, last=k == len(kept) - 1)
        return [{"start_s": s, "end_s": e, "title": t} for (s, t, *_), e in zip(kept, ends)]

    def _chapter_end(self, start: float, title: str, i: int, item: Any, given: float | None, end: float | None,
                     last: bool) -> None:
        """A chapter's end is the next one's start (the last one's the video's end); where the source gave
        an end of its own (MKV/MP4 chapter END, yt-dlp's `end_time`, a range line), a different one is a
        repair: an overlap trimmed, a gap absorbed, an end past the video clamped. A last chapter ending up to
        `tolerance_s` from the video's end ends with it, unsaid (the source's duration and the file's differ
        by their rounding: yt-dlp's last `end_time` is YouTube's whole-second duration)."""
        # a gap up to a frame is how muxers write ends (mkvmerge: one frame, or 1 ms, before the next start): no repair
        if given is None or end is None or abs(given - end) <= (self.tolerance_s if last else
                                                                 (CHAPTER_END_SLACK_S if given < end else _SAME_TIME_S)):
            return
        name = f"chapter {title!r} ({start:g}-{given:g} s as given)"
        if given > end:
            reason, what = ("chapter_end_clamped", f"ends at the video's end, {end:g} s") if last else \
                ("chapter_overlap_trimmed", f"ends at {end:g} s, where the next chapter starts")
        else:
            reason, what = "chapter_gap_absorbed", f"runs on to {end:g} s, " + (
                "the video's end" if last else "where the next chapter starts")
        self.issue("chapters", reason, f"{name} {what}", item, i, False)

    def spans(self, kind: str, value: Any) -> list[dict]:
        """Segments or subtitles: each item checked and clamped on its own, then sorted."""
        one = SINGULAR[kind]
        out, seen = [], {}
        for i, item in enumerate(timed_items(value)):
            parsed = _timed_item(item, needs_end=True)
            if parsed is None:
                why = item.get(_UNPAIRED) if isinstance(item, dict) else None
                self.issue(kind, f"{one}_malformed", f"the {kind}: {why}" if why else
                           f"item {i + 1} of the {kind} has no readable start, end and text{_text_type(item)}",
                           None if why else item, None if why else i)
                continue
            start, end, text = parsed
            if end <= start and end < 0:   # a negative time (its reader may have clamped the start to 0 already)
                self.issue(kind, f"{one}_out_of_range", f"{one} at {start:g}-{end:g} s ends before the video starts",
                           item, i)
                continue
            if end <= start:
                self.issue(kind, f"{one}_inverted", f"{one} at {start:g} s ends at {end:g} s, not after its start", item, i)
                continue
            if not text:
                self.issue(kind, f"{one}_empty_text", f"{one} at {start:g}-{end:g} s has no text", item, i)
                continue
            lo, hi = 0.0, self.duration_s if self.duration_s is not None else math.inf
            inside = min(end, hi) - max(start, lo)
            if inside <= 0:
                self.issue(kind, f"{one}_out_of_range", f"{one} at {start:g}-{end:g} s lies wholly outside the "
                           f"video (0-{hi:g} s)", item, i)
                continue
            if (kind == "segments" and inside < (end - start) / 2 and not (isinstance(item, dict) and item.get(
                    ENDS_WITH_VIDEO)) and (start < lo - self.tolerance_s or end > hi + self.tolerance_s)):
                # a segment says what happens over all its span: cut to the part in the video, a Panda-70M
                # clip of 5-69 s would caption one second of a 6-s video. A subtitle is on screen (said) from
                # its start, so any part of it in the video is kept (the last cue of a trimmed download)
                self.issue(kind, f"{one}_out_of_range", f"{one} at {start:g}-{end:g} s lies mostly outside the "
                           f"video (0-{hi:g} s): {inside:g} s of it inside, and more than {self.tolerance_s:g} s "
                           "out", item, i)
                continue
            if start < lo or end > hi:
                self.issue(kind, f"{one}_clamped", f"{one} at {start:g}-{end:g} s clamped into 0-{hi:g} s",
                           item, i, False)
                start, end = max(start, lo), min(end, hi)
            key = (round(start, 3), round(end, 3), " ".join(text.split()).casefold())
            if key in seen:   # the same item twice (a release's duplicate row): kept once, and said
                self.issue(kind, f"{one}_duplicate", f"{one} at {start:g}-{end:g} s repeats one given before it: "
                           "kept once", item, i, False)
                continue
            seen[key] = i
            out.append((start, end, text, i, item))
        out.sort(key=lambda s: (s[0], s[1], s[2]))
        return [{"start_s": s, "end_s": e, "text": t, "_index": i, "_item": item} for s, e, t, i, item in out]

    def subtitles(self, value: Any, overlap: str) -> list[dict]:
        kept: list[dict] = []
        for cue in self.spans("subtitles", value):
            prev = kept[-1] if kept else None
            if prev is not None and cue["start_s"] < prev["end_s"]:
                depth = prev["end_s"] - cue["start_s"]
                if (overlap == "trim" or depth <= self.tolerance_s) and cue["start_s"] > prev["start_s"]:
                    self.issue("subtitles", "subtitle_trimmed", f"cue at {prev['start_s']:g} s cut to end at "
                               f"{cue['start_s']:g} s where the next begins ({depth:.3f} s overlap)",
                               prev["_item"], prev["_index"], False)
                    prev["end_s"] = cue["start_s"]
                else:
                    self.issue("subtitles", "subtitle_overlap", f"cue {cue['text'][:40]!r} ({cue['start_s']:g}-"
                               f"{cue['end_s']:g} s) starts {depth:.3f} s before the cue before it ends "
                               f"({prev['end_s']:g} s)", cue["_item"], cue["_index"])
                    continue
            kept.append(cue)
        return kept


def _public(items: list[dict]) -> list[dict]:
    return [{k: v for k, v in it.items() if not k.startswith("_")} for it in items]


def validate_annotations(raw: dict[str, Any], duration_s: float | None, *, vocabulary: list[str] | None = None,
                         tolerance_s: float = 0.5, subtitle_overlap: str = "drop") -> tuple[dict, list[AnnotationIssue]]:
    """(the ANNOTATIONS_TYPE value, the issues) of one video's raw annotations; see the module docstring."""
    check = _Checker(duration_s, tolerance_s)
    out = {
        "title": check.text("title", raw.get("title")),
        "description": check.text("description", raw.get("description")),
        "labels": check.labels(raw.get("labels"), vocabulary) if raw.get("labels") is not None else [],
        "chapters": check.chapters(raw.get("chapters")),
        "segments": _public(check.spans("segments", raw.get("segments"))),
        "subtitles": _public(check.subtitles(raw.get("subtitles"), subtitle_overlap)),
        "transcript": check.text("transcript", raw.get("transcript")),
    }
    return out, check.issues


def present_kinds(annotations: dict | None) -> list[str]:
    """The kinds an ANNOTATIONS value actually holds (non-empty)."""
    return [k for k, v in (annotations or {}).items() if v not in (None, "", [])]
