"""What every caption strategy shares: the clip and its frames, request and row building, small helpers.

A strategy is `async def strategy(cap: Captioner, clip: Clip) -> dict`: it awaits `cap.pool.ask(...)`
for each request, and returns the clip's output row (`cap.row(...)`) or raises (`RowReject` for a
specific reject, `TeacherFailure` for a failed request).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from vdata.prompts import Prompt, complete_sentences, shorten
from vdata.schemas import records as R

from ..base import Reject
from .config import CaptionConfig
from .demo import is_demo_model
from .scheduler import Call, ClipPool, TeacherFailure

CUT_REASON = "cut_at_max_tokens"

# Dense-caption timestamp bookkeeping. Not (yet) in records.py's CAPTION_COLUMNS: registered here
# through the registry's hook for later floors (same name + type is idempotent if records.py adopts them).
DENSE_TIMESTAMPS_REPAIRED = R.DENSE_TIMESTAMPS_REPAIRED
DENSE_EVENTS_DROPPED = R.DENSE_EVENTS_DROPPED


@dataclass
class Frame:
    abs_s: float     # video-absolute (dataset columns)
    rel_s: float     # from the clip start (prompts)
    jpeg: bytes


@dataclass
class Clip:
    row: dict
    start_s: float
    duration_s: float
    frames: list[Frame]
    transcript: str                       # rendered transcript block, or ""
    fps: float | None
    prompt_ids: dict[str, None] = field(default_factory=dict)   # ordered set of template ids used
    video: str = ""                       # rendered title / description block (multi_frame), or ""


class RowReject(Exception):
    """Raised inside a strategy to end the clip with a specific Reject."""

    def __init__(self, reject: Reject):
        super().__init__(reject.message)
        self.reject = reject


def thin_evenly(items: list, k: int) -> list:
    """`k` items spread evenly over `items` (first and last included), order kept."""
    n = len(items)
    if n <= k:
        return list(items)
    if k == 1:
        return [items[n // 2]]
    return [items[round(i * (n - 1) / (k - 1))] for i in range(k)]


def windows_of(items: list, size: int) -> list[list]:
    if size <= 0 or len(items) <= size:
        return [list(items)]
    return [items[i:i + size] for i in range(0, len(items), size)]


def fmt(t: float) -> str:
    return f"{t:.1f}"


def span_values(span: tuple[float, float]) -> dict:
    return {"span_start": fmt(span[0]), "span_end": fmt(span[1])}


def majority(values: list) -> Any:
    counts = Counter(v for v in values if v)
    return counts.most_common(1)[0][0] if counts else None


def window_spans(clip: Clip, windows: list[list[Frame]]) -> list[tuple[float, float]]:
    """Consecutive clip-relative spans: boundaries halfway between windows, the first from 0, the last to the end."""
    bounds = [0.0] + [(a[-1].rel_s + b[0].rel_s) / 2 for a, b in zip(windows, windows[1:])] + [clip.duration_s]
    return list(zip(bounds, bounds[1:]))


def nonempty(text: str | None, teacher: str, step: str) -> str:
    text = (text or "").strip()
    if not text:
        from vdata.teachers import TeacherResult

        raise TeacherFailure(Call(teacher, None, step), TeacherResult("", text="", error="empty_reply: the teacher "
                                                                          "answered with no text"))
    return text


class CutReply(TeacherFailure):
    """A prose reply the teacher stopped at max_tokens (finish_reason "length") before it finished one
    sentence. A caption cut mid-sentence reads as complete in every export, so it fails like a failed
    request: a multi_teacher candidate is dropped, any other step rejects the clip `cut_at_max_tokens`
    (structured and dense replies are JSON: the teachers' schema check already fails a cut one)."""

    def __init__(self, call: Call, result, max_tokens: int | None):
        super().__init__(call, result)
        self.max_tokens = max_tokens


def _video_meta(row: dict, key: str) -> str:
    """The video's `key` text: the `annotations` column's, else source_meta's; "" when neither has one."""
    ann = row.get(R.ANNOTATIONS)
    value = ann.get(key) if isinstance(ann, dict) else None
    if not (isinstance(value, str) and value.strip()):
        value = R.source_meta(row).get(key)
    return value.strip() if isinstance(value, str) else ""


def video_title(row: dict) -> str:
    """The video's title: the `annotations` column's, else source_meta's `title`."""
    return " ".join(_video_meta(row, "title").split())


def video_context_lines(row: dict, max_chars: int) -> str:
    """The video's title and description as `Title:` / `Description:` lines, only those it has ("" for
    neither). The description keeps its line breaks (chapter lists read as lists) and is cut to `max_chars`."""
    title = shorten(video_title(row), 200)
    description = "\n".join(line.strip() for line in _video_meta(row, "description").splitlines() if line.strip())
    lines = [f"Title: {title}"] if title else []
    if description:
        lines.append("Description: " + shorten(description, max_chars, collapse_spaces=False))
    return "\n".join(lines)


ASR_SOURCE = "automatic transcript; it may contain recognition errors"
SUBTITLE_SOURCE = "the video's own subtitles"


def transcript_source(row: dict) -> str:
    """What `transcript_lines` read, as the transcript prompt names it: the teacher may trust a subtitle track
    (names, numbers) more than speech recognition (outside check h20: subtitles were called an automatic transcript)."""
    asr = any((s.get("text") or "").strip() for s in row.get(R.TRANSCRIPT_SEGMENTS) or [])
    return ASR_SOURCE if asr or (row.get(R.TRANSCRIPT_TEXT) or "").strip() else SUBTITLE_SOURCE


def transcript_lines(row: dict, clip_start: float, max_chars: int) -> str:
    """The clip's speech as timed lines (clip-relative seconds): the asr stage's segments, its text, else
    the annotation subtitles over the clip; "" when there is none."""
    lines = []
    for seg in row.get(R.TRANSCRIPT_SEGMENTS) or []:
        text = (seg.get("text") or "").strip()
        if not text:
            continue
        a = seg.get("clip_start_s")
        b = seg.get("clip_end_s")
        a = a if a is not None else max(0.0, (seg.get("start_s") or clip_start) - clip_start)
        b = b if b is not None else max(a, (seg.get("end_s") or clip_start) - clip_start)
        lines.append(f"[{fmt(a)}s-{fmt(b)}s] {text}")
    if not lines and (row.get(R.TRANSCRIPT_TEXT) or "").strip():
        lines.append(row[R.TRANSCRIPT_TEXT].strip())
    if not lines:   # no ASR: subtitles the input carries (annotations), the cues that overlap the clip
        end = row.get(R.END_S)
        for cue in ((row.get(R.ANNOTATIONS) or {}).get("subtitles") or []) if end is not None else []:
            text = " ".join(str(cue.get("text") or "").split())
            a, b = cue.get("start_s"), cue.get("end_s")
            if text and a is not None and b is not None and b > clip_start and a < end:
                lines.append(f"[{fmt(max(0.0, a - clip_start))}s-{fmt(min(b, end) - clip_start)}s] {text}")
    return shorten("\n".join(lines), max_chars, collapse_spaces=False) if lines else ""


@dataclass
class Captioner:
    """What a strategy needs from the stage for one batch: settings, templates, teachers, the pool."""

    config: CaptionConfig
    prompts: dict[str, Prompt]
    teachers: dict                                   # name -> Teacher
    pool: ClipPool
    reject: Callable[..., Reject]                    # Stage.reject(row, reason, message, **detail)
    embedder: Any = None      # multi_teacher's selector model: a text embedder (agreement) or a vision-text model
    trimmed: Counter = field(default_factory=Counter)   # step -> replies cut at max_tokens, kept to their last sentence
    undecided: int = 0        # multi_teacher clips whose agreement selector had two candidates left: no choice

    async def ask(self, teacher: str, request: Any, step: str) -> Any:
        return await self.pool.ask(Call(teacher, request, step))

    async def ask_text(self, teacher: str, request: Any, step: str) -> str:
        """A prose reply's text: not blank, and never cut mid-sentence. A reply stopped at max_tokens
        (finish_reason "length") keeps its complete sentences (`trimmed` counts them, the stage's stats
        say how many); one with no complete sentence fails (CutReply)."""
        res = await self.ask(teacher, request, step)
        text = nonempty(res.text, teacher, step)
        # the demo's random-weight model never ends a reply, and its text is placeholder noise either way:
        # trimming or rejecting its cut replies would leave the quickstart and the recipe demos with no caption
        if res.finish_reason == "length" and not is_demo_model(self.teachers[teacher].model_name):
            whole = complete_sentences(text)
            if whole:
                self.trimmed[re.split(r"[\[@#]", step)[0]] += 1   # by kind of step, not per window or keyframe
                return whole
            budget = (request.sampling or {}).get("max_tokens") or self._default_max_tokens(teacher)
            error = f"{CUT_REASON}: the reply stopped at max_tokens={budget} (finish_reason \"length\")"
            raise CutReply(Call(teacher, request, step), replace(res, error=error, raw=res.text), budget)
        return text

    def _default_max_tokens(self, teacher: str) -> int | None:
        sampling = getattr(getattr(self.teachers[teacher], "config", None), "sampling", None)
        return getattr(sampling, "max_tokens", None)

    def request(self, clip: Clip, template: str, frames: list[Frame], values: dict, *,
                schema: dict | None = None, sampling: dict | None = None, as_images: bool = False):
        from vdata.teachers import ImagePart, Message, TeacherRequest, TextPart, VideoPart

        prompt = self.prompts[template]
        clip.prompt_ids[prompt.id] = None
        base = {"duration": fmt(clip.duration_s), "transcript": clip.transcript, "video": clip.video,
                "num_frames": len(frames), "frame_times": ", ".join(f"{fmt(f.rel_s)}s" for f in frames)}
        text = prompt.render(**{**base, **values})
        parts: list = []
        if self.config.frames_as == "video" and len(frames) > 1 and not as_images:
            parts.append(VideoPart(frames=[f.jpeg for f in frames], timestamps=[f.rel_s for f in frames],
                                   fps=clip.fps or None, duration=clip.duration_s or None))
        else:
            for f in frames:
                parts += [TextPart(f"<{fmt(f.rel_s)}s>"), ImagePart(f.jpeg)]
        parts.append(TextPart(text))
        samp = {**self.config.sampling, **(sampling or {})}
        if self.config.max_tokens:
            samp.setdefault("max_tokens", self.config.max_tokens)
        return TeacherRequest(messages=[Message("user", parts)], json_schema=schema, schema_name=template,
                              sampling=samp, prompt_template_version=prompt.id)

    def row(self, clip: Clip, *, caption: str, teacher: str, model: str | None = None, steps=None, events=None,
            shot_type=None, camera_movement=None, candidates=None, selection_score=None, repaired=None,
            dropped=None, fields: str | None = None) -> dict:
        row = dict(clip.row)
        row.update({
            R.CAPTION: caption,
            R.CAPTION_STRATEGY: self.config.strategy,
            R.CAPTION_TEACHER: teacher,
            R.CAPTION_MODEL: model or self.teachers[teacher].model_name,
            R.CAPTION_PROMPT_VERSION: ",".join(clip.prompt_ids),
            R.CAPTION_FRAME_TIMESTAMPS: [f.abs_s for f in clip.frames],
            R.CAPTION_STEPS: [{"timestamp_s": t, "text": text} for t, text in steps] if steps else None,
            R.CAPTION_CANDIDATES: candidates,
            R.CAPTION_SELECTION_SCORE: selection_score,
            R.DENSE_EVENTS: events,
            R.SHOT_TYPE: shot_type,
            R.CAMERA_MOVEMENT: camera_movement,
            DENSE_TIMESTAMPS_REPAIRED: repaired,
            DENSE_EVENTS_DROPPED: dropped,
            R.CAPTION_FIELDS: fields,
        })
        return row
