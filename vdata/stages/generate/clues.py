"""Clues: a row's known content as a numbered list the teacher cites, and the evidence a sample stores.

A clip row's clues: the caption `C1`, dense events `E1…`, caption steps `S1…`, transcript segments
`T1…` and, for vision teachers, sampled frames `F1…`, each with its video-absolute time. The video row
of `scope: video` (see `video_scope.py`) lists every clip's caption with its clip interval (`C1…Cn`),
the video caption `V`, and the union of the clips' events, steps and speech. Annotations the input
carries join at both scopes (only items inside the row's interval; a subtitle line in the row holding its
middle): chapters `H1…`, annotated segments `A1…` (dense captions, listed as events), subtitles `U1…`
(listed as speech) and, untimed, the title `M1`, description `M2` and labels `M3`. Times never come out
of the model as free numbers: a reply cites clue ids and the stage maps them back to these clues' times.

`build_clues` bounds each clue's text (`max_clue_chars`) and, at clip scope, the number of events and
segments; whatever it cuts is counted in `stats` (the stage reports the counts to the run manifest).
The teacher's window bounds the whole list in `budget.py`.

A timed clue is clamped to the row's interval (`clamp_to_row`, as speech_captions' `row_speech` does): speech
that runs across a cut (an ASR segment given to the clip holding its middle, an annotation item within the
tolerance of an edge) is listed, stored and answered with the part inside the row, never with a time
before the clip starts or after it ends. `Clue.full_s` keeps the length it had before: a clue with less
than `MIN_MOMENT_S` or less than half of itself inside the row (`cut_short`) is still a clue the teacher
reads, but no moment a task asks about or answers with (`grounded.moments`, grounding targets).

A clue's `text` is the source's text as written: the prompt shows it literally (`Prompt.render`
substitutes values once, never re-reading them). Where a sample stores it (`evidence`), it is escaped
(`vdata.prompts.escape_placeholders`): a transcript saying "{{t:5}}" is speech, not a time for the exports.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Literal

from vdata.prompts import escape_placeholders, shorten
from vdata.schemas import records as R
from vdata.schemas.annotations import holding_midpoint

Kind = Literal["caption", "video_caption", "event", "step", "speech", "chapter", "context", "frame"]
_LABELS = {"caption": "caption of the clip", "video_caption": "caption of the whole video", "event": "event",
           "step": "what changes", "speech": "speech", "chapter": "chapter", "context": "about the video"}
TIME_TOLERANCE_S = 0.05   # an annotation item this close to the row's edges still counts as inside
MIN_MOMENT_S = 0.2        # a clue cut by the row's edge to less than this is no moment of the row
MIN_INSIDE = 0.5          # ... nor one with less than this share of its length inside the row


@dataclass
class Clue:
    id: str
    kind: Kind
    text: str
    start_s: float | None = None
    end_s: float | None = None
    image: bytes | None = None
    label: str | None = None          # how the prompt names it, when not the kind's own name
    span_evidence: bool = False       # stored in evidence with its span (a clip caption at video scope)
    full_s: float | None = None       # its length before it was clamped to the row (None: not clamped)

    @property
    def timed(self) -> bool:
        return self.start_s is not None

    def line(self) -> str:
        if self.kind == "frame":
            return f"{self.id} (frame at {self.start_s:.1f}s): image {self.text} above"
        when = ""
        if self.start_s is not None:
            when = (f", {self.start_s:.1f}-{self.end_s:.1f}s" if self.end_s is not None and self.end_s != self.start_s
                    else f", at {self.start_s:.1f}s")
        text = f'"{self.text}"' if self.kind == "speech" else self.text
        return f"{self.id} ({self.label or _LABELS[self.kind]}{when}): {text}"

    def evidence_caption(self) -> str:
        """How the clue is stored in `evidence.captions`: timed texts carry exporter time placeholders, and
        the source's own text is escaped so that none can be read in it."""
        spanned = self.kind in ("event", "chapter") or self.span_evidence
        text = escape_placeholders(self.text)
        if spanned and self.start_s is not None and self.end_s is not None:
            return f"{{{{span:{self.start_s:g},{self.end_s:g}}}}} {text}"
        if self.kind == "step" and self.start_s is not None:
            return f"{{{{t:{self.start_s:g}}}}} {text}"
        return text

    def times(self) -> list[float]:
        if self.start_s is None:
            return []
        if self.end_s is None or self.end_s == self.start_s:
            return [float(self.start_s)]
        return [float(self.start_s), float(self.end_s)]


def cut_short(c: Clue) -> bool:
    """A clue clamped to the row with too little of it left inside to be a moment of the row."""
    if c.full_s is None or c.start_s is None or c.end_s is None:
        return False
    inside = float(c.end_s) - float(c.start_s)
    return inside < MIN_MOMENT_S or inside < MIN_INSIDE * c.full_s


def row_bounds(row: dict) -> tuple[float, float]:
    start, end = row.get(R.START_S), row.get(R.END_S)
    return float(start or 0.0), float(end) if end is not None else float("inf")


def clamp_to_row(clues: list[Clue], start: float, end: float, stats: Counter | None = None) -> list[Clue]:
    """The clues with their times inside [start, end]: a span cut to the part inside (its former length in
    `full_s`), a point outside moved to the edge; a span wholly outside the row is left out (counted)."""
    out = []
    for c in clues:
        if c.start_s is None:
            out.append(c)
            continue
        a = float(c.start_s)
        b = float(c.end_s) if c.end_s is not None else a
        if a >= start and b <= end:
            out.append(c)
            continue
        if b == a:   # a point a hair outside (a frame or step time at the edge)
            t = min(max(a, start), end)
            out.append(replace(c, start_s=t, end_s=t if c.end_s is not None else None))
            continue
        lo, hi = max(a, start), min(b, end)
        if stats is not None:
            stats["clues_clamped_to_row"] += 1
        if not hi > lo:
            if stats is not None:
                stats["clues_outside_row"] += 1
            continue
        out.append(replace(c, start_s=lo, end_s=hi, full_s=c.full_s if c.full_s is not None else b - a))
    return out


def clue_lines(clues: list[Clue]) -> str:
    """The clues as the prompt lists them (also part of each request's seed key)."""
    return "\n".join(c.line() for c in clues)


source_meta = R.source_meta   # named here too: the generate modules import it from clues


def is_video_row(row: dict) -> bool:
    return row.get(R.SAMPLE_SCOPE) == R.SCOPE_VIDEO


class _Bounded:
    """`shorten` that counts the characters it cuts."""

    def __init__(self, stats: Counter | None):
        self.stats = stats if stats is not None else Counter()

    def __call__(self, text: str, limit: int) -> str:
        out = shorten(text, limit)
        cut = len(" ".join(str(text or "").split())) - len(out.rstrip("…"))
        if cut > 0:
            self.stats["clue_chars_cut"] += cut
            self.stats["clues_shortened"] += 1
        return out

    def capped(self, items: list, cap: int, what: str) -> list:
        if len(items) > cap:
            self.stats["clues_dropped_cap"] += len(items) - cap
            self.stats[f"clues_dropped_cap_{what}"] += len(items) - cap
        return items[:cap]


def build_clues(row: dict, cfg, stats: Counter | None = None) -> list[Clue]:
    """`cfg`: the stage's GenerateConfig (clue limits, frames on/off, the caption fallback key); `stats`
    receives the truncation counts. A video row (`sample_scope: video`) gets the video's clues."""
    cut = _Bounded(stats)
    if is_video_row(row):
        return clamp_to_row(_video_clues(row, cfg, cut), *row_bounds(row), cut.stats)
    clues: list[Clue] = []
    limit = cfg.max_clue_chars
    start, end = row.get(R.START_S), row.get(R.END_S)
    caption = row.get(R.CAPTION)
    if not caption and cfg.caption_from_source_meta:   # the input's caption: only for a clip that is its video
        caption = R.source_caption(row, cfg.caption_from_source_meta)
        if caption is None and R.source_meta(row).get(cfg.caption_from_source_meta):
            cut.stats["source_caption_not_this_clip"] += 1
    if caption and caption.strip():
        clues.append(Clue("C1", "caption", cut(caption, limit * 3), start, end))
    clues += _event_clues(row, limit, cut, cfg.max_events)
    clues += _step_clues(row, limit, cut, cfg.max_events)
    segments = _speech_segments(row)
    clues += [Clue(f"T{i}", "speech", cut(s["text"], limit), s.get("start_s"), s.get("end_s"))
              for i, s in enumerate(cut.capped(segments, cfg.max_segments, "speech"), 1)]
    if not segments and (row.get(R.TRANSCRIPT_TEXT) or "").strip() and cfg.max_segments:
        clues.append(Clue("T1", "speech", cut(row[R.TRANSCRIPT_TEXT], limit * 2), start, end))
    clues += _frame_clues(row, cfg)
    clues += annotation_clues(row, limit, cut, whole_video=False)
    return clamp_to_row(clues, *row_bounds(row), cut.stats)


def _video_clues(row: dict, cfg, cut: _Bounded) -> list[Clue]:
    """All of a video's clues; no count caps here (the teacher's window bounds them, in `budget.py`)."""
    limit = cfg.max_clue_chars
    duration = row.get(R.END_S)
    clues: list[Clue] = []
    video_caption = row.get(R.VIDEO_CAPTION)
    if not video_caption and cfg.caption_from_source_meta:   # a manifest's caption describes the whole video
        value = source_meta(row).get(cfg.caption_from_source_meta)
        video_caption = value if isinstance(value, str) else None
    if video_caption and video_caption.strip():
        clues.append(Clue("V", "video_caption", cut(video_caption, limit * 4), 0.0, duration))
    annotated = annotation_clues(row, limit, cut, whole_video=True)
    clues += [c for c in annotated if c.kind in ("context", "chapter")]
    captions = [c for c in (row.get(R.CLIP_CAPTIONS) or []) if c and (c.get("text") or "").strip()]
    clues += [Clue(f"C{i}", "caption", cut(c["text"], limit), c.get("start_s"), c.get("end_s"), label="caption of a clip",
                   span_evidence=True) for i, c in enumerate(captions, 1)]
    clues += _event_clues(row, limit, cut, None)
    clues += [c for c in annotated if c.kind == "event"]
    clues += _step_clues(row, limit, cut, None)
    segments = _speech_segments(row)
    clues += [Clue(f"T{i}", "speech", cut(s["text"], limit), s.get("start_s"), s.get("end_s"))
              for i, s in enumerate(segments, 1)]
    given = ((row.get(R.ANNOTATIONS) or {}).get("transcript") or "").strip()
    if not segments and (given or (row.get(R.TRANSCRIPT_TEXT) or "").strip()):
        clues.append(Clue("T1", "speech", cut(given or row[R.TRANSCRIPT_TEXT], limit * 4), 0.0, duration,
                          label="transcript"))
    clues += [c for c in annotated if c.kind == "speech"]
    clues += _frame_clues(row, cfg)
    return clues


def _event_clues(row: dict, limit: int, cut: _Bounded, cap: int | None) -> list[Clue]:
    events = sorted((e for e in (row.get(R.DENSE_EVENTS) or []) if e and (e.get("description") or "").strip()),
                    key=lambda e: (e.get("start_s") or 0.0))
    if cap is not None:
        events = cut.capped(events, cap, "event")
    return [Clue(f"E{i}", "event", cut(e["description"], limit), e.get("start_s"), e.get("end_s"))
            for i, e in enumerate(events, 1)]


def _step_clues(row: dict, limit: int, cut: _Bounded, cap: int | None) -> list[Clue]:
    steps = [s for s in (row.get(R.CAPTION_STEPS) or []) if s and (s.get("text") or "").strip()]
    if cap is not None:
        steps = cut.capped(steps, cap, "step")
    return [Clue(f"S{i}", "step", cut(s["text"], limit), s.get("timestamp_s"), s.get("timestamp_s"))
            for i, s in enumerate(steps, 1)]


def _speech_segments(row: dict) -> list[dict]:
    return [s for s in (row.get(R.TRANSCRIPT_SEGMENTS) or []) if s and (s.get("text") or "").strip()]


def _frame_clues(row: dict, cfg) -> list[Clue]:
    if not cfg.use_frames:
        return []
    frames = [f for f in (row.get(R.FRAMES) or []) if f and f.get(R.FRAME_JPEG)]
    out = []
    for n, k in enumerate(_even_picks(len(frames), cfg.max_frames), 1):
        f = frames[k]
        t = float(f[R.FRAME_TIMESTAMP_S])
        out.append(Clue(f"F{n}", "frame", str(n), t, t, image=bytes(f[R.FRAME_JPEG])))
    return out


def annotation_clues(row: dict, limit: int, cut: _Bounded | None = None, whole_video: bool = False) -> list[Clue]:
    """The `annotations` column as clues: title, description and labels (untimed context), the chapters
    and segments inside the row's interval and the subtitles whose middle is in it, in video time."""
    ann = row.get(R.ANNOTATIONS) or {}
    if not ann:
        return []
    cut = cut or _Bounded(None)
    lo = float(row.get(R.START_S) or 0.0) - TIME_TOLERANCE_S
    hi = row.get(R.END_S)
    hi = float(hi) + TIME_TOLERANCE_S if hi is not None else float("inf")

    def inside(items: list | None) -> list[dict]:
        return [x for x in (items or []) if x and x.get("start_s") is not None and x.get("end_s") is not None
                and lo <= x["start_s"] and x["end_s"] <= hi]

    clues: list[Clue] = []
    if (ann.get("title") or "").strip():
        clues.append(Clue("M1", "context", cut(ann["title"], limit), label="title of the video"))
    if (ann.get("description") or "").strip():
        clues.append(Clue("M2", "context", cut(ann["description"], limit * (4 if whole_video else 2)),
                          label="description of the video"))
    labels = [x for x in (ann.get("labels") or []) if x and x.strip()]
    if labels:
        clues.append(Clue("M3", "context", cut(", ".join(labels), limit), label="labels of the video"))
    clues += [Clue(f"H{i}", "chapter", cut(c.get("title") or "", limit), c["start_s"], c["end_s"])
              for i, c in enumerate(inside(ann.get("chapters")), 1) if (c.get("title") or "").strip()]
    clues += [Clue(f"A{i}", "event", cut(s.get("text") or "", limit), s["start_s"], s["end_s"], label="annotated segment")
              for i, s in enumerate(inside(ann.get("segments")), 1) if (s.get("text") or "").strip()]
    clues += [Clue(f"U{i}", "speech", cut(s.get("text") or "", limit), s["start_s"], s["end_s"], label="subtitle")
              for i, s in enumerate(holding_midpoint(ann.get("subtitles"), float(row.get(R.START_S) or 0.0),
                                                     row.get(R.END_S)), 1) if (s.get("text") or "").strip()]
    return clues


def _even_picks(n: int, k: int) -> list[int]:
    if n <= k:
        return list(range(n))
    return sorted({min(n - 1, int((i + 0.5) * n / k)) for i in range(k)})


def evidence(clues: list[Clue]) -> dict:
    """The `evidence` column of a sample: the cited clues' texts, frame times and transcript spans."""
    seen, caps, frames, spans = set(), [], [], []
    for c in clues:
        if c.id in seen:
            continue
        seen.add(c.id)
        if c.kind == "frame":
            frames.append(float(c.start_s))
        elif c.kind == "speech":
            spans.append({"start_s": c.start_s, "end_s": c.end_s, "text": escape_placeholders(c.text)})
        else:
            caps.append(c.evidence_caption())
            if c.kind == "step" and c.start_s is not None:
                frames.append(float(c.start_s))
    return {"captions": caps, "frame_timestamps_s": sorted(frames), "transcript_spans": spans}


def cited(reply: dict, clues: list[Clue], key: str = "evidence") -> list[Clue]:
    """The clues a reply cites under `key`, in the reply's order; unknown ids are dropped."""
    by_id = {c.id: c for c in clues}
    return [by_id[i] for i in reply.get(key, []) if i in by_id]
