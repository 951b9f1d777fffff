"""caption: the clip caption as a sample; the question comes from a fixed, versioned list (no teacher call).

At video scope the sample is the video caption (`V`, the whole-video caption); a video without one
gets no caption sample (the joined clip captions are clues, not a description of the video). The caption is
the source's text: stored escaped (`escape_placeholders`), so a "{{t:5}}" in it is no time placeholder."""
from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from vdata.prompts import escape_placeholders
from vdata.schemas import records as R

from .clues import Clue, evidence, source_meta
from .common import Strict, TaskFamily, pick_question, sample_base

if TYPE_CHECKING:
    from .common import StageView


class CaptionTask(Strict):
    per_clip: int = Field(1, ge=0, le=1)


def _plan_caption(stage: StageView, row: dict, clues: list[Clue], tcfg: CaptionTask):
    kind = "video_caption" if row.get(R.SAMPLE_SCOPE) == R.SCOPE_VIDEO else "caption"
    caption = next((c for c in clues if c.kind == kind), None)
    if not tcfg.per_clip or caption is None:
        return [], []
    prompt = stage.prompts["task_questions"]
    out = sample_base(stage, row, "caption", 0, prompt.id, teacher=False)
    out[R.QUESTION_TYPE] = "description"
    out[R.QUESTION] = pick_question(stage, "caption", out[R.SAMPLE_ID])
    out[R.ANSWER] = _full_text(stage, row, kind) or escape_placeholders(caption.text)
    out[R.SAMPLE_TEACHER] = row.get(R.CAPTION_TEACHER)
    out[R.SAMPLE_MODEL] = row.get(R.CAPTION_MODEL)
    out[R.EVIDENCE] = evidence([caption])
    return [out], []


def _full_text(stage: StageView, row: dict, kind: str) -> str | None:
    """The caption as written (a clue's text may be bounded for the prompt), escaped as a sample stores it."""
    if kind == "caption":
        text = row.get(R.CAPTION)
    else:
        key = stage.config.caption_from_source_meta
        text = row.get(R.VIDEO_CAPTION) or (source_meta(row).get(key) if key else None)
    return escape_placeholders(text) if isinstance(text, str) and text.strip() else None


CAPTION = TaskFamily(CaptionTask, _plan_caption)
