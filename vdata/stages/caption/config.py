"""The caption stage's configuration, its strategies and template names, and the dense vocabularies."""
from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from vdata.schemas.config import config_file

from ..base import StageConfig

STRATEGIES = ("multi_frame", "differential", "dense", "multi_teacher", "structured")
PROMPT_GROUP = "caption"
PROMPT_NAMES = ("multi_frame", "window_merge", "differential_first", "differential_next", "differential_summary",
                "dense", "judge", "transcript", "structured", "structured_title", "structured_previous", "speech", "video_context")

SHOT_TYPES = ("extreme_close_up", "close_up", "medium", "wide", "extreme_wide", "aerial", "point_of_view", "other")
CAMERA_MOVEMENTS = ("static", "pan", "tilt", "zoom_in", "zoom_out", "dolly", "tracking", "handheld", "mixed", "other")


class _Sub(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DifferentialConfig(_Sub):
    summarize: bool = True            # False: the caption is the timed steps themselves
    context_chars: int = Field(1200, ge=50, le=20000)   # each earlier description is cut to this in prompts


class DenseConfig(_Sub):
    max_events: int = Field(8, ge=1, le=64)
    max_caption_chars: int = Field(1200, ge=20, le=20000)
    max_description_chars: int = Field(300, ge=10, le=4000)
    tolerance_s: float = Field(0.5, ge=0)       # a time at most this far outside the clip is clamped
    on_out_of_range: Literal["drop_event", "reject_row"] = "drop_event"   # beyond the tolerance
    min_event_s: float = Field(0.5, ge=0)       # a shorter event (zero-length too) is dropped, counted; 0: any length
    duplicate_tolerance_s: float = Field(0.25, ge=0)   # start and end this close to a kept event's: dropped, counted


class MultiTeacherConfig(_Sub):
    teachers: list[str] = Field(default_factory=list)    # empty: the stage's `teacher` alone
    samples_per_teacher: int = Field(1, ge=1, le=32)
    temperature: float = Field(0.8, ge=0, le=5)          # for samples 2..n of a teacher (sample 1 is greedy)
    min_candidates: int = Field(1, ge=1)                 # fewer successful candidates: the clip is rejected
    selector: Literal["agreement", "judge", "similarity"] = "agreement"
    judge: str | None = None                             # judge teacher; None: the stage's `teacher`
    embedding_model: str | None = None                   # agreement: sentence-transformers dir; None: packaged MiniLM
    # similarity (Panda-70M's retrieval-model pick): a CLIP/SigLIP-family checkpoint, local dir / package: / hub id
    similarity_model: str | None = None


class StructuredField(_Sub):
    """One named field of a structured caption: what the teacher is asked for, and its bounds."""
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    ask: str = Field(min_length=3, max_length=400)          # the instruction for this field in the prompt
    max_chars: int = Field(400, ge=10, le=4000)
    choices: list[str] | None = None                        # a closed vocabulary (an enum in the schema)


class StructuredConfig(_Sub):
    # koala (Koala-36M): subject / motion / background / camera; vript (Vript): content / shot_type /
    # camera_movement / scene_title. `fields:` replaces the preset's fields with your own schema.
    preset: Literal["koala", "vript"] = "koala"
    fields: list[StructuredField] | None = None
    caption_from: list[str] | None = None    # fields joined into `caption` (None: the preset's choice)
    max_chars: int | None = Field(None, ge=10, le=4000)   # caps every prose field (shorter captions)
    previous_scene: bool = True              # the previous clip's caption of the same video as context (Vript)
    title: bool = True                       # the video title (annotations, else source_meta) in the prompt
    context_chars: int = Field(600, ge=50, le=20000)   # the previous scene's caption is cut to this

    @model_validator(mode="after")
    def _names(self):
        if self.fields is not None:
            names = [f.name for f in self.fields]
            if not names:
                raise ValueError("fields: give at least one field (or leave it out for the preset's)")
            if len(set(names)) != len(names):
                raise ValueError(f"fields: duplicate field names {sorted(n for n in set(names) if names.count(n) > 1)}")
        return self


# Structured-caption presets: (fields in the release's order, fields joined into `caption`). Sources in
# structured.py's docstring.
PRESETS: dict[str, tuple[list[StructuredField], list[str]]] = {
    "koala": ([
        StructuredField(name="subject", ask="the main subject or subjects: who or what they are and how they look "
                        "(appearance, clothing, colours, size)", max_chars=500),
        StructuredField(name="motion", ask="what the subjects do and how they move, in the order it happens",
                        max_chars=500),
        StructuredField(name="background", ask="the setting and background: the place, the objects around the "
                        "subjects, the lighting", max_chars=400),
        StructuredField(name="camera", ask="the camera: shot size, viewing angle, and how the camera moves",
                        max_chars=300),
    ], ["subject", "motion", "background", "camera"]),
    "vript": ([
        StructuredField(name="shot_type", ask="the dominant shot size", choices=list(SHOT_TYPES)),
        StructuredField(name="camera_movement", ask="the dominant camera movement", choices=list(CAMERA_MOVEMENTS)),
        StructuredField(name="content", ask="a detailed description of the scene: the subjects, what they do and "
                        "how it unfolds, the setting, and any visible text", max_chars=1200),
        StructuredField(name="scene_title", ask="a short title for this scene, a few words", max_chars=80),
    ], ["content"]),
}


def schema_fields(cfg: StructuredConfig) -> list[StructuredField]:
    """The schema's fields: yours or the preset's, prose fields capped at `max_chars` when set."""
    fields = list(cfg.fields) if cfg.fields is not None else list(PRESETS[cfg.preset][0])
    if cfg.max_chars is None:
        return fields
    return [f if f.choices else f.model_copy(update={"max_chars": min(f.max_chars, cfg.max_chars)}) for f in fields]


# A structured reply's size, estimated before anything runs: ~4 characters per token (English prose in the
# BPE vocabularies of Qwen, Llama and GPT models; fewer for other scripts, so the estimate is a lower bound),
# each string at its schema maxLength (an enum at its longest choice), plus the JSON around each field:
# the quoted key, `": "`, the value's quotes and `, ` (the key's length + 6) and the object's braces.
CHARS_PER_TOKEN = 4


def schema_tokens(fields: list[StructuredField]) -> int:
    """Tokens a reply that fills every field up to its bound needs (the estimate above)."""
    chars = 2 + sum((max(map(len, f.choices)) if f.choices else f.max_chars) + len(f.name) + 6 for f in fields)
    return -(-chars // CHARS_PER_TOKEN)


def key_error(model: str, key: tuple, message: str, value: Any) -> ValidationError:
    """A config error at its own key path below the caption stage (parse_config prefixes the stage's place)."""
    # the message travels as a context value: a `{` in it is not a format field
    return ValidationError.from_exception_data(model, [InitErrorDetails(
        type=PydanticCustomError("caption_config", "{message}", {"message": message}), loc=key, input=value)])


def caption_fields_of(cfg: StructuredConfig) -> list[str]:
    """The fields joined into `caption`."""
    if cfg.caption_from:
        return list(cfg.caption_from)
    if cfg.fields is not None:
        return [f.name for f in cfg.fields if not f.choices]
    return list(PRESETS[cfg.preset][1])


class CaptionConfig(StageConfig):
    strategy: Literal["multi_frame", "differential", "dense", "multi_teacher", "structured"] = "multi_frame"
    teacher: str = "captioner"                  # a name under the run config's `teachers:`
    max_frames: int = Field(16, ge=1, le=1024)  # frames used per clip (evenly thinned from the `frames` column)
    window_frames: int = Field(0, ge=0, le=1024)   # >0: longer clips are captioned in windows of this many frames, then merged
    frames_as: Literal["images", "video"] = "images"   # timed images, or one video input (Qwen-VL style)
    # False: the caption is written from the clip's speech alone (the `speech` template, no frames sent), so a
    # text-only teacher can write it; a clip with no speech is rejected `no_speech`. multi_frame only.
    use_frames: bool = True
    transcript: bool = True                     # put the clip's speech (from the asr stage) into the prompts
    transcript_max_chars: int = Field(2000, ge=0, le=100000)
    # multi_frame / multi_teacher: the video's title and description (the annotations stage's, else
    # source_meta's) in the prompt, as Panda-70M's teachers got them; the description is cut to this; 0: left out
    video_context_chars: int = Field(800, ge=0, le=20000)
    max_tokens: int | None = Field(None, ge=1)  # reply budget per request; None: the teacher's sampling.max_tokens
    sampling: dict[str, Any] = Field(default_factory=dict)   # per-request overrides, incl. backend extras (top_k, ignore_eos)
    max_in_flight: int = Field(16, ge=1, le=4096)   # clips in flight per worker
    scheduler: Literal["auto", "rounds", "threads"] = "auto"   # auto: rounds for offline vLLM, threads for HTTP
    prompts: dict[str, str] = Field(default_factory=dict)      # template name -> the user's file
    differential: DifferentialConfig = Field(default_factory=DifferentialConfig)
    dense: DenseConfig = Field(default_factory=DenseConfig)
    multi_teacher: MultiTeacherConfig = Field(default_factory=MultiTeacherConfig)
    structured: StructuredConfig = Field(default_factory=StructuredConfig)

    @field_validator("prompts")
    @classmethod
    def _prompt_files(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for name, path in value.items():
            if name not in PROMPT_NAMES:
                raise ValueError(f"prompts.{name}: unknown template (allowed: {', '.join(PROMPT_NAMES)})")
            if not os.path.isfile(config_file(path, info)):
                raise ValueError(f"prompts.{name}: no such file {path!r}")
        return {k: config_file(v, info) for k, v in value.items()}

    @model_validator(mode="after")
    def _speech_only(self):
        if not self.use_frames:
            if self.strategy != "multi_frame":
                raise ValueError(f"use_frames: false (captions from speech alone) works with strategy multi_frame, "
                                 f"not {self.strategy!r}")
            if not self.transcript or not self.transcript_max_chars:
                raise ValueError("use_frames: false writes the caption from the transcript: keep transcript: true "
                                 "and transcript_max_chars > 0")
        return self

    @model_validator(mode="after")
    def _structured_settings(self):
        if self.strategy == "structured":
            if self.window_frames:
                raise ValueError("window_frames: the structured strategy asks for its fields in one request "
                                 "(up to max_frames frames); leave window_frames at 0")
            names = [f.name for f in schema_fields(self.structured)]
            unknown = [n for n in (self.structured.caption_from or []) if n not in names]
            if unknown:
                raise ValueError(f"structured.caption_from: {unknown} are not fields of the schema ({', '.join(names)})")
            # a budget the schema cannot fit cuts every reply that uses its bounds: the JSON is left unterminated
            # and the clip is rejected, so every clip of a build can be lost to one number (Koala-36M's ~200-word
            # captions in 96 tokens); the teacher's own sampling.max_tokens (max_tokens unset) is not known here
            need = schema_tokens(schema_fields(self.structured))
            if self.max_tokens is not None and self.max_tokens < need:
                raise key_error(type(self).__name__, ("max_tokens",), f"{self.max_tokens} tokens cannot hold a "
                                f"structured caption of this schema: its fields allow {need} tokens of JSON "
                                f"(maxLength total at ~{CHARS_PER_TOKEN} characters per token, plus the keys); "
                                f"set max_tokens >= {need}, or lower structured.max_chars", self.max_tokens)
        return self

    @model_validator(mode="after")
    def _enough_candidates(self):
        mt = self.multi_teacher
        if self.strategy == "multi_teacher":
            n = max(1, len(mt.teachers)) * mt.samples_per_teacher
            if n < 2:
                raise ValueError("multi_teacher.teachers / multi_teacher.samples_per_teacher: the multi_teacher "
                                 "strategy needs at least 2 candidates (list several teachers or set "
                                 "samples_per_teacher >= 2)")
            if mt.min_candidates > n:
                raise ValueError(f"multi_teacher.min_candidates: {mt.min_candidates} is more than the {n} "
                                 f"candidates configured")
            # agreement scores a candidate by its mean similarity to the others: with two, both get the same
            # score (their one similarity) and candidate 0 wins every time, whatever it says
            if mt.selector == "agreement" and n < 3:
                raise key_error(type(self).__name__, ("multi_teacher", "selector"), f"agreement needs at least 3 "
                                f"candidates to choose (each is scored by its mean similarity to the others; with "
                                f"2 both score the same and the first always wins); {n} configured "
                                f"(teachers x samples_per_teacher): list more teachers, raise "
                                f"samples_per_teacher, or use selector judge / similarity", mt.selector)
            if mt.selector == "similarity" and not mt.similarity_model:
                raise ValueError("multi_teacher.similarity_model: the similarity selector needs a CLIP/SigLIP-family "
                                 "model (a local directory, package:<module>, or a hub id when online)")
        return self
