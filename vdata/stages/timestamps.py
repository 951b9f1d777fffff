"""timestamps: every time a sample states lies inside its clip (or video), intervals are ordered.

Checked, all video-absolute seconds:
- `answer_spans`: inside the bounds, start < end (start == end allowed for points), and for the
  multi-span tasks (dense captions, chapters) sorted by start; chapters (`disjoint_tasks`) also may not
  overlap: a chapter that starts more than `tolerance_s` before an earlier one ends (one lying inside
  another, "{{span:0,16.26}} … / {{span:3.62,9.9}} …") is counted `overlapping`;
- `rationale_steps[].evidence_timestamps_s` and `evidence.frame_timestamps_s`: inside the bounds;
- `evidence.transcript_spans`: start ≤ end and overlapping the bounds (speech may run across a cut);
- `{{t:…}}` / `{{span:…}}` time placeholders inside question, answer and rationale texts: same rules.

Bounds are the clip (`scope: clip`, `start_s`..`end_s`) or the video (`scope: video`, 0..`duration_s`),
widened by `tolerance_s`; a video-scope sample (`sample_scope: video`) is always held to its video. The
check is per sample, so `scope: video` does not group rows by video. `v_timestamps_valid` is stored for every sample (true when it states no time);
an invalid one is rejected as `bad_timestamps` with the counts (checked, outside, reversed, unsorted,
overlapping) and the first offending values in its detail.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from vdata.schemas import records as R

from .base import Reject, Resources, Stage, StageConfig

_PLACEHOLDER = re.compile(r"\{\{\s*(t|span)\s*:\s*([-+0-9.eE]+)\s*(?:,\s*([-+0-9.eE]+)\s*)?\}\}")


class TimestampsConfig(StageConfig):
    scope: Literal["clip", "video"] = "clip"
    tolerance_s: float = Field(0.05, ge=0)
    sorted_tasks: list[str] = Field(default_factory=lambda: ["dense_caption", "chapter"])
    # chapters divide the video: one may not start before the one before it ends (events may overlap)
    disjoint_tasks: list[str] = Field(default_factory=lambda: ["chapter", "chapter_generation"])
    drop_invalid: bool = True            # false: score only


PROBLEMS = ("outside", "reversed", "unsorted", "overlapping", "not_finite")


def check_sample(row: dict, lo: float, hi: float, sorted_tasks: list[str],
                 disjoint_tasks: list[str] = (), tolerance_s: float = 0.0) -> dict:
    """Counts of timestamp problems in one sample, with examples."""
    c = {"checked": 0, "outside": 0, "reversed": 0, "unsorted": 0, "overlapping": 0, "not_finite": 0,
         "examples": []}

    def point(t, what):
        c["checked"] += 1
        if t is None or t != t or t in (float("inf"), float("-inf")):
            c["not_finite"] += 1
            c["examples"].append(f"{what}: {t}")
            return
        if not (lo <= t <= hi):
            c["outside"] += 1
            c["examples"].append(f"{what}: {t:g} outside [{lo:g}, {hi:g}]")

    def span(a, b, what, overlap_only=False):
        c["checked"] += 1
        if a is None or b is None or a != a or b != b:
            c["not_finite"] += 1
            c["examples"].append(f"{what}: ({a}, {b})")
            return
        if a > b:
            c["reversed"] += 1
            c["examples"].append(f"{what}: start {a:g} after end {b:g}")
        inside = (b >= lo and a <= hi) if overlap_only else (lo <= a <= hi and lo <= b <= hi)
        if not inside:
            c["outside"] += 1
            c["examples"].append(f"{what}: ({a:g}, {b:g}) outside [{lo:g}, {hi:g}]")

    spans = row.get(R.ANSWER_SPANS) or []
    for i, s in enumerate(spans):
        span(s.get("start_s"), s.get("end_s"), f"answer_spans[{i}]")
    if row.get(R.TASK) in sorted_tasks:
        starts = [s.get("start_s") for s in spans if s.get("start_s") is not None]
        bad = sum(1 for a, b in zip(starts, starts[1:]) if b < a)
        if bad:
            c["unsorted"] += bad
            c["examples"].append(f"answer_spans not sorted by start: {starts[:8]}")
    if row.get(R.TASK) in disjoint_tasks:
        _count_overlaps(spans, tolerance_s, c)
    for i, step in enumerate(row.get(R.RATIONALE_STEPS) or []):
        for t in step.get("evidence_timestamps_s") or []:
            point(t, f"rationale_steps[{i}]")
    ev = row.get(R.EVIDENCE) or {}
    for t in ev.get("frame_timestamps_s") or []:
        point(t, "evidence.frame_timestamps_s")
    for i, s in enumerate(ev.get("transcript_spans") or []):
        span(s.get("start_s"), s.get("end_s"), f"evidence.transcript_spans[{i}]", overlap_only=True)
    texts = [row.get(R.QUESTION), row.get(R.ANSWER), row.get(R.RATIONALE), *(ev.get("captions") or [])]
    for text in texts:
        for m in _PLACEHOLDER.finditer(text or ""):
            if m.group(1) == "t":
                point(float(m.group(2)), "text {{t}}")
            elif m.group(3) is not None:
                span(float(m.group(2)), float(m.group(3)), "text {{span}}")
    c["examples"] = c["examples"][:6]
    return c


def _count_overlaps(spans: list[dict], tolerance_s: float, c: dict) -> None:
    """Chapters that start before an earlier chapter ends (by more than `tolerance_s`), in start order."""
    timed = sorted((float(s["start_s"]), float(s["end_s"]), i) for i, s in enumerate(spans)
                   if s.get("start_s") is not None and s.get("end_s") is not None)
    latest = None   # (end, index) of the chapter that reaches furthest so far
    for a, b, i in timed:
        if latest is not None and a < latest[0] - tolerance_s:
            c["overlapping"] += 1
            j, end = latest[1], latest[0]
            how = "lies inside" if b <= end + tolerance_s else "overlaps"
            c["examples"].append(f"chapter {i + 1} ({a:g}-{b:g}s) {how} chapter {j + 1} (… to {end:g}s)")
        if latest is None or b > latest[0]:
            latest = (b, i)


class TimestampsStage(Stage):
    name = "timestamps"
    version = 2   # 2: chapters that overlap (one inside another) are invalid
    Config = TimestampsConfig
    reads = (R.SAMPLE_ID, R.TASK, R.START_S, R.END_S)
    writes = (R.V_TIMESTAMPS_VALID,)
    default_resources = Resources(num_cpus=0.25, batch_size=256)
    is_filter = True

    @classmethod
    def grouping(cls, config) -> str | None:
        return cls.group_by   # row by row at either scope: no need to gather whole videos

    def bounds(self, row: dict) -> tuple[float, float]:
        tol = self.config.tolerance_s
        if self.config.scope == "video" or row.get(R.SAMPLE_SCOPE) == R.SCOPE_VIDEO:
            dur = row.get(R.DURATION_S)
            if dur is None:
                raise ValueError("scope: video needs the duration_s column (run probe first)")
            return -tol, float(dur) + tol
        start, end = row.get(R.START_S), row.get(R.END_S)
        if start is None or end is None:
            dur = row.get(R.DURATION_S)
            if dur is None:
                raise ValueError("sample has neither clip bounds (start_s/end_s) nor duration_s")
            return -tol, float(dur) + tol
        return float(start) - tol, float(end) + tol

    def process_row(self, row: dict) -> dict | Reject:
        lo, hi = self.bounds(row)
        cfg = self.config
        counts = check_sample(row, lo, hi, cfg.sorted_tasks, cfg.disjoint_tasks, cfg.tolerance_s)
        bad = sum(counts[k] for k in PROBLEMS)
        row = dict(row)
        row[R.V_TIMESTAMPS_VALID] = bad == 0
        if bad and self.config.drop_invalid:
            scope = row.get(R.SAMPLE_SCOPE) or self.config.scope
            problems = ", ".join(f"{counts[k]} {k}" for k in PROBLEMS if counts[k])
            return self.reject(row, "bad_timestamps",
                               f"{bad} of {counts['checked']} time value(s) invalid ({problems}); "
                               f"bounds [{lo:g}, {hi:g}] ({scope}): {counts['examples'][:2]}",
                               **counts, bounds=[lo, hi], scope=scope)
        return row
