"""Plain data for a planned benchmark: base haystacks (sources + trims), needle placements, items."""
from __future__ import annotations

from dataclasses import dataclass, field

from vdata.schemas import haystack as H

from .needles import Needle


@dataclass(frozen=True)
class Segment:
    """One pass through a source: haystack [offset_s, offset_s + end_s - start_s) = source [start_s, end_s)."""

    source_id: str
    offset_s: float
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Base:
    """A needle-free haystack of one length: sources concatenated (in a seeded order) and trimmed."""

    base_id: str
    length_s: float
    frames: int
    fps: float
    width: int
    height: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Placement:
    needle: Needle
    role: str                                     # target | other | anchor | other_anchor
    start_s: float
    end_s: float
    style: str                                    # fullframe | overlay | audio
    box: tuple[int, int, int, int] | None = None  # x, y, w, h of the needle's pixels; None for audio

    @property
    def kind(self) -> str:
        return self.needle.kind

    def row(self) -> dict:
        x, y, w, h = self.box if self.box else (None, None, None, None)
        return {"needle_id": self.needle.needle_id, "kind": self.needle.kind, "label": self.needle.label,
                "role": self.role, "start_s": self.start_s, "end_s": self.end_s, "style": self.style,
                "x": x, "y": y, "w": w, "h": h}


@dataclass
class ItemPlan:
    item_id: str
    task: str
    needle_type: str
    needles_per_item: int
    depth: float | None
    target_depth: float | None
    base: Base
    placements: list[Placement]
    question: str
    options: list[str]
    answer_index: int
    open_question: str
    open_answer: str
    answer_labels: list[str]
    answer_interval: tuple[float, float] | None = None
    meta: dict = field(default_factory=dict)
    vnbench_type: str | None = None              # VNBench's sub-task id (vnbench.py), None outside its nine
    # Needles the item names as NOT shown (a wrong option, a counting target asked about 0 times), each
    # with the box it would have on screen and start_s = end_s = -1: the verifier checks they are not
    # in the rendered video either (else a "wrong" option is true).
    absent: list[Placement] = field(default_factory=list)
    media_id: str = ""                           # opaque file name of the video (set by the planner)

    @property
    def video_path(self) -> str:
        return f"videos/{self.media_id or self.item_id}.mp4"

    def rows(self, circular: bool, seed: int, config_hash: str, verified: bool | None,
             verify_detail: str | None) -> list[dict]:
        """The Parquet rows of this item: one, or one per rotation of the options with circular eval."""
        k = len(self.options)
        out = []
        for r in (range(k) if circular else range(1)):
            options = self.options[r:] + self.options[:r]
            answer_index = (self.answer_index - r) % k
            out.append({
                H.ITEM_ID: self.item_id,
                H.QUESTION_ID: f"{self.item_id}_r{r}" if circular else self.item_id,
                H.ROTATION: r,
                H.TASK: self.task,
                H.NEEDLE_TYPE: self.needle_type,
                H.NEEDLES_PER_ITEM: self.needles_per_item,
                H.DEPTH: self.depth,
                H.TARGET_DEPTH: self.target_depth,
                H.HAYSTACK_ID: self.base.base_id,
                H.HAYSTACK_LENGTH_S: self.base.length_s,
                H.VIDEO_PATH: self.video_path,
                H.QUESTION: self.question,
                H.OPTIONS: options,
                H.ANSWER_INDEX: answer_index,
                H.ANSWER: options[answer_index],
                H.OPEN_QUESTION: self.open_question,
                H.OPEN_ANSWER: self.open_answer,
                H.ANSWER_LABELS: list(self.answer_labels),
                H.ANSWER_START_S: self.answer_interval[0] if self.answer_interval else None,
                H.ANSWER_END_S: self.answer_interval[1] if self.answer_interval else None,
                H.PLACEMENTS: [p.row() for p in self.placements],
                H.SEED: seed,
                H.CONFIG_HASH: config_hash,
                H.VERIFIED: verified,
                H.VERIFY_DETAIL: verify_detail,
                H.VNBENCH_TYPE: self.vnbench_type,
            })
        return out


@dataclass(frozen=True)
class SkippedCell:
    """A grid cell that cannot be built (too few needles in the pool, does not fit the length, ...)."""

    task: str
    needle_type: str
    needles_per_item: int
    length_s: float
    depth: float | None
    reason: str
