"""caption: teacher VLMs describe every clip from its sampled frames (and, when present, its speech).

Strategies (`strategy:`), one module each, built from versioned prompt templates in
`vdata/prompts/caption/` that a config can override file by file (`prompts: {multi_frame: my_prompt.txt}`):

- `multi_frame` (multi_frame.py): the clip's frames, each marked with its time, in one request; with the
  video's title and description (annotations, else source_meta) when it has them (`video_context_chars`).
- `differential` (differential.py, ShareGPT4Video): the first keyframe, then what changed at each next
  keyframe, then a summary of the timed steps.
- `dense` (dense.py, TimeSuite / Vript): bounded JSON with timed events, shot type and camera movement;
  every timestamp is checked against the clip.
- `multi_teacher` (multi_teacher.py, Panda-70M): several candidates, one picked by a judge or by agreement.
- `structured` (structured.py, Koala-36M / Vript): named fields from a bounded schema (`structured.preset`
  koala or vript, or your own `structured.fields`), validated, stored in `caption_fields`; with the video
  title, the voice-over and (Vript) the previous scene's caption in the prompt.

Long clips: with `window_frames: W`, a clip with more than W frames is described window by window
(W frames each, side by side) and the window descriptions are merged by one more request.

Times in prompts are seconds from the clip start (what a model sees); every time written to the
dataset is video-absolute, like the `frames` column.

Scheduling (scheduler.py): every clip's strategy is a coroutine; a pool keeps `max_in_flight` clips
active on one event loop per batch and starts the next clip the moment one finishes. HTTP teachers get
each request the moment a clip asks for it (no round, no barrier); the offline vLLM engine gets one
batched call whenever every active clip is waiting for answers.

Errors are values: a teacher error (timeout, schema failure, ...) rejects the clip with reason
`teacher_<kind>` and keeps the raw reply in the reject's detail. A prose reply the teacher stopped at
max_tokens (finish_reason "length") keeps its complete sentences (the stage's stats count them as
`trimmed_at_max_tokens`); one with no complete sentence is no caption: the clip is rejected
`cut_at_max_tokens` (a multi_teacher candidate is dropped). The demo's random model, which never ends a
reply, is left as it is. A structured schema
whose bounds cannot fit `max_tokens` is a config error.

Layout: config.py (settings) → scheduler.py (the pool) → common.py (clip, requests, rows) → one module
per strategy → stage.py (CaptionStage); demo.py builds the quickstart's tiny teacher.
"""
from __future__ import annotations

from vdata.schemas import records as R

from .common import DENSE_EVENTS_DROPPED, DENSE_TIMESTAMPS_REPAIRED, Captioner, Clip, Frame, RowReject
from .common import thin_evenly, transcript_lines, windows_of
from .config import (
    CAMERA_MOVEMENTS,
    PROMPT_GROUP,
    PROMPT_NAMES,
    SHOT_TYPES,
    STRATEGIES,
    CaptionConfig,
    DenseConfig,
    DifferentialConfig,
    MultiTeacherConfig,
    PRESETS,
    StructuredConfig,
    StructuredField,
    schema_fields,
)
from .demo import DEMO_SERVED_NAME, ensure_tiny_vlm, is_demo_model
from .dense import EventCheck, check_events, dense_schema, dense_time_bound
from .multi_teacher import agreement_scores, judge_schema
from .scheduler import Call, ClipPool, ScheduleStats, TeacherFailure, settle
from .stage import CaptionStage
from .structured import PreviousScene, check_fields, joined_caption, structured_request, structured_schema, video_title

CAPTION_WRITES = R.CAPTION_COLUMNS

__all__ = [
    "CAMERA_MOVEMENTS", "CAPTION_WRITES", "DEMO_SERVED_NAME", "DENSE_EVENTS_DROPPED", "DENSE_TIMESTAMPS_REPAIRED",
    "PROMPT_GROUP", "PROMPT_NAMES", "SHOT_TYPES", "STRATEGIES", "Call", "CaptionConfig", "CaptionStage",
    "Captioner", "Clip", "ClipPool", "DenseConfig", "DifferentialConfig", "EventCheck", "Frame",
    "MultiTeacherConfig", "PRESETS", "PreviousScene", "RowReject", "StructuredConfig", "StructuredField", "check_fields",
    "joined_caption", "schema_fields", "structured_request", "structured_schema", "video_title", "ScheduleStats", "TeacherFailure", "agreement_scores", "check_events",
    "dense_schema", "dense_time_bound", "ensure_tiny_vlm", "is_demo_model", "judge_schema", "settle",
    "thin_evenly", "transcript_lines", "windows_of",
]
