"""Tier 1 for a claim that states a time ("Tom sells the bread 35 seconds into the video", "at 0:50").

The times come from the shared detector (vdata/prompts/stated_times.py; durations such as "bakes for
20 minutes" and frame numbers are not positions and are left alone). A stated time is read both ways a
teacher may mean it: seconds from the start of the video, and, for a clip that does not start at 0,
seconds from the start of the clip. Then, in order:

- `refuted` when it lies outside the row (past the end of the video, outside the clip at clip scope),
  beyond `TOLERANCE_S`, either way of reading it;
- `refuted` when the evidence item the claim restates (its content words, the time left out, stand in
  one timed evidence item: a transcript segment, an event, an annotated segment, a caption step, a
  clip caption) lies elsewhere: "the evidence places 'Tom sells the bread' at 11.3-13.3 s, not 35
  seconds";
- the time fits such an item: the rest of tier 1 decides the claim as if no time were stated;
- no timed evidence item restates the claim: the time is undecided, and an undecided time is never
  taken on trust: the claim is `unsupported` whatever `undecided:` says (which only covers claims
  without a time), unless tier 1 refutes it otherwise.
"""
from __future__ import annotations

from vdata.prompts.stated_times import StatedTime, as_said, said_in, stated_times
from vdata.schemas import records as R

from .contradictions import REFUTED, SAME_STATEMENT, UNSUPPORTED
from .facts import content_words

TOLERANCE_S = 0.5          # a stated time this close to an edge (rounded to a tenth, say) still fits
TIMED_UNDECIDED = "stated time(s) {times} that no evidence time supports (undecided → unsupported: a time " \
                  "is never taken on trust)"


def row_bounds(row: dict) -> tuple[float, float] | None:
    """(start, end) of the row in video-absolute seconds, or None when unknown."""
    start = float(row.get(R.START_S) or 0.0)
    end = row.get(R.END_S)
    if end is None:
        end = row.get(R.DURATION_S)
    return None if end is None else (start, float(end))


def timed_evidence(row: dict, sources: set[str]) -> list[tuple[str, float, float]]:
    """(text, start, end) of the row's timed evidence (video-absolute), for the sources in use."""
    out: list = []

    def add(items, text_key: str, start_key: str = "start_s", end_key: str = "end_s") -> None:
        for x in items or []:
            if x and x.get(start_key) is not None and (x.get(text_key) or "").strip():
                a = float(x[start_key])
                b = float(x[end_key]) if x.get(end_key) is not None else a
                out.append((x[text_key], a, max(a, b)))

    ann = row.get(R.ANNOTATIONS) or {}
    if "transcript" in sources:
        add(row.get(R.TRANSCRIPT_SEGMENTS), "text")
        add(ann.get("subtitles"), "text")
    if "events" in sources:
        add(row.get(R.DENSE_EVENTS), "description")
        add(ann.get("segments"), "text")
        add(ann.get("chapters"), "title")
    if "steps" in sources:
        add(row.get(R.CAPTION_STEPS), "text", "timestamp_s", "timestamp_s")
    if "caption" in sources:
        add(row.get(R.CLIP_CAPTIONS), "text")
        bounds = row_bounds(row)
        if bounds and (row.get(R.CAPTION) or "").strip():   # a clip's caption describes the whole clip
            out.append((row[R.CAPTION], *bounds))
    if "cited" in sources:
        add((row.get(R.EVIDENCE) or {}).get("transcript_spans"), "text")
    return out


def pool_timed(rows: list[dict], sources: set[str]) -> dict:
    """source_uri → the timed evidence of every row of the batch from that video (`scope: video`)."""
    pool: dict = {}
    for r in rows:
        items = pool.setdefault(r.get(R.SOURCE_URI), [])
        items += [x for x in timed_evidence(r, sources) if x not in items]
    return pool


def _readings(t: StatedTime, bounds: tuple[float, float]) -> list[tuple[float, float]]:
    """The video-absolute intervals a stated time may mean: from the video's start, and from the clip's."""
    start, end = bounds
    if t.kind == "last":   # the last N seconds of the clip (or of the video, at video scope)
        return [(max(start, end - t.start_s), end)]
    a, b = t.interval()
    out = [(a, b)]
    if start > TOLERANCE_S:
        out.append((a + start, b + start))
    return out


def _overlaps(x: tuple[float, float], a: float, b: float) -> bool:
    return x[0] <= b + TOLERANCE_S and x[1] >= a - TOLERANCE_S


def without_times(claim: str, times: list[StatedTime] | None = None) -> str:
    """The claim with its stated positions in time left out: what the rest of tier 1 reads."""
    for t in times if times is not None else [t for t in stated_times(claim) if t.kind not in ("duration", "frame")]:
        claim = claim.replace(t.text, " ")
    return " ".join(claim.split())


def check_times(claim: str, bounds: tuple[float, float] | None, timed: list[tuple[str, float, float]]
                ) -> tuple[str | None, str] | None:
    """None for a claim that states no position in time; else (REFUTED, why), (None, how the time fits)
    for a time an evidence item supports, or (UNSUPPORTED, TIMED_UNDECIDED) for one none does."""
    times = [t for t in stated_times(claim) if t.kind not in ("duration", "frame")]
    # a time the evidence itself says ("the race starts at 9:30", said by the narrator) is content restated,
    # not a position the claim puts on the video (outside check h19)
    said_there = " ".join(as_said(text) for text, _, _ in timed)
    times = [t for t in times if not said_in(t, said_there)]
    if not times:
        return None
    said = ", ".join(repr(t.text) for t in times)
    if bounds is not None:
        start, end = bounds
        for t in times:
            if not any(a >= start - TOLERANCE_S and b <= end + TOLERANCE_S for a, b in _readings(t, bounds)):
                return REFUTED, (f"the claim states {t.text!r}, outside the sample's {start:g}-{end:g} s "
                                 f"(± {TOLERANCE_S:g} s), read from the start of the video or of the clip")
    cw = content_words(without_times(claim, times))
    shares = [(len(cw & content_words(text)) / len(cw), text, a, b) for text, a, b in timed] if cw else []
    best = max((s for s, *_ in shares), default=0.0)
    same = [(text, a, b) for s, text, a, b in shares if s >= SAME_STATEMENT and s == best]
    if not same or bounds is None:
        return UNSUPPORTED, TIMED_UNDECIDED.format(times=said)
    for t in times:
        if not any(_overlaps(x, a, b) for x in _readings(t, bounds) for _, a, b in same):
            text, a, b = same[0]
            return REFUTED, f"the evidence places {text.strip()[:60]!r} at {a:g}-{b:g} s, not {t.text!r}"
    text, a, b = same[0]
    return None, f"stated time(s) {said} fit the evidence {text.strip()[:60]!r} at {a:g}-{b:g} s"
