"""generate: clip rows → instruction samples (fan-out), written by a teacher as schema-checked JSON.

Each clip's known content becomes a numbered list of *clues* (`clues.py`) — the caption (`C1`), dense
events (`E1…`), caption steps (`S1…`), transcript segments (`T1…`) and, for vision teachers, sampled
frames (`F1…`), each with its video-absolute time. The teacher sees the clues and answers in JSON whose
schema is bounded (length-capped strings, enumerated clue ids, fixed item counts), so every reply
validates and every sample records exactly which clues support it (`evidence`, CG-Bench-style clue
spans). Times never come out of the model as free numbers: a step, an interval or a chapter cites clue
ids, and the stage maps ids back to the clues' times.

Tasks (`tasks:`; each on/off with its own settings), one module per family:
- `captions.py` — `caption`: the clip caption as a sample (fixed, versioned question; no teacher call);
- `qa.py` — `open_qa`: questions of configured types with quota weights (description, action, attribute,
  counting, temporal, causal, camera, ocr, speech, spatial, or your own with a guidance line);
  `mcq`: k options with balanced answer positions, each also stored open-ended (`open_form`);
- `reasoning.py` — `cot`: a rationale whose steps cite clues, their times, and a final answer;
- `temporal.py` — `grounding` (question → interval), `dense_caption` (events, or HowToCaption-style from
  speech), `chapter` (VidChapters-style titles over consecutive events/segments);
- `grounded.py` — `grounded_qa` (an answer plus its supporting span, NExT-GQA), `reasoning_localization`
  (an interval plus an explanation, LITA RTL);
- `saliency.py` — `highlights` (a query and per-moment saliency, VTG-IT), `summarization` (a summary whose
  sentences cite moments, their times as placeholders);
- teacher-free from the `annotations` column (`annotated.py` shares their templates and seeded choices):
  `templates.py` — `label_mcq` (labels → MCQ, distractors from the label vocabulary, MVBench);
  `segments.py` — `segment_grounding`, `interval_caption`, `dense_from_segments` (dense-caption segments),
  `chapter_generation`, `chapter_title`, `chapter_grounding` (VidChapters-7M's three tasks);
- `benchmark_tasks.py` — `event_order` (Vript-Hard ERO): the order of K shuffled events as an MCQ, no teacher;
- `text_tasks.py` — over text rendered as video (`vdata text-videos`), no teacher: `text_qa` (T2Vid: the
  record's own QA kept), `before_after` (T3: which of two chunks / captions comes first or later, an MCQ);
- `t3_tasks.py` — T3's other kinds, no teacher: `attribute_change` (what colour a thing was before / after it
  changed, or at the start / end) and `temporal_referring` (what happens right after / before an event), MCQs;
- `preference.py` — `preference_pairs` (VideoSAVi): N candidate answers per question from several teachers and
  temperatures, ranked by a judge teacher, self-critique (and a vision–text scorer hook) into chosen /
  rejected with every candidate's scores (a second request round, `state["followups"]`);
- `streaming.py` — `streaming_dialogue` (VideoLLM-online LIVE): a user query at time t and assistant turns
  timed to the events that follow it, teacher-free, in `turns`;
- `clue_tasks.py` — CG-Bench items: `clue_qa` (an MCQ and its open-ended twin sharing `sample_group`, the
  cited clues' intervals as `answer_spans`) and `false_premise` (a question on a premise the clues refute).
`scope: video` (`video_scope.py`): all clip rows of a video become one video row (0 to its duration, every
clip caption with its interval, the union of events and speech, annotations) and the families run on it;
its clue list is bounded by the teacher's window with coarser merged captions first, then counted cuts
(`budget.py`; counts in the manifest's `stages[].counters`). See docs/video_scope.md.
Question quotas (`questions.py`), the family contract, ids and schemas (`common.py`) are shared;
`stage.py` holds the config, the registry (task name → family) and the batch loop.

`sample_id` = hash(clip_id, task, index, prompt id): stable across runs, new when a prompt changes.
A failed teacher call (reason `teacher_error`) or an unusable reply (`bad_reply`: one that failed its
schema, cut at `max_tokens` say, or said nothing usable) rejects that one sample, never the clip; a clip
with nothing to generate from is rejected as `no_evidence`.
"""
from __future__ import annotations

from .clues import Clue, build_clues, evidence, source_meta
from .common import Pending, TaskFamily, make_sample_id, stable_hash
from .qa import answer_position
from .questions import DEFAULT_TYPE_WEIGHTS, QuestionTask, assign_types
from .stage import TASK_FAMILIES, TASKS, GenerateConfig, GenerateStage, Tasks

__all__ = ["DEFAULT_TYPE_WEIGHTS", "TASKS", "TASK_FAMILIES", "Clue", "GenerateConfig", "GenerateStage", "Pending",
           "QuestionTask", "TaskFamily", "Tasks", "answer_position", "assign_types", "build_clues", "evidence",
           "make_sample_id", "source_meta", "stable_hash"]
