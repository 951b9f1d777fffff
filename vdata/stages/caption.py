"""caption: teacher VLMs describe every clip from its sampled frames (and, when present, its speech).

Strategies (`strategy:`), each built from versioned prompt templates in `vdata/prompts/caption/`
that a config can override file by file (`prompts: {multi_frame: my_prompt.txt}`):

- `multi_frame`: the clip's frames, each marked with its time, in one request → a detailed caption.
- `differential` (ShareGPT4Video): describe the first keyframe, then for every next keyframe ask what
  changed (the previous keyframe, the new one, and what has been said so far), then summarise the
  steps into one dense caption with times. Every step is kept in `caption_steps`.
- `dense` (TimeSuite / Vript): a bounded JSON reply — caption, events with `start_s` / `end_s`,
  `shot_type` and `camera_movement` from fixed vocabularies. Every timestamp is checked against the
  clip: slightly outside (≤ `dense.tolerance_s`) is clamped, further out drops the event (or rejects
  the row); both are counted in the row.
- `multi_teacher` (Panda-70M): several teachers and/or several samples per teacher each caption the
  clip; every candidate is kept in `caption_candidates`; a selector picks one — a judge teacher that
  scores the candidates against the frames (bounded JSON: integer scores + the best index), or the
  agreement between candidates (mean cosine similarity of MiniLM sentence embeddings).

Long clips: with `window_frames: W`, a clip with more than W frames is described window by window
(W frames each, in parallel) and the window descriptions are merged by one more request; the window
descriptions are kept in `caption_steps`. Differential summaries over more than W steps are built the
same way.

Times in prompts are seconds from the clip start (what a model sees); every time written to the
dataset is video-absolute, like the `frames` column.

Scheduling: every clip is a small state machine (a generator that yields the teacher calls it needs
next and receives their results), so a sequential strategy never holds up other clips. A pool keeps
`max_in_flight` clips active: with the offline vLLM engine each round sends one batched call with the
pending requests of all active clips and refills finished clips before the next round; with HTTP
teachers each active clip runs on its own thread and sends its next request the moment its previous
answer arrives (no round barrier at all).

Errors are values: a teacher error (timeout, schema failure, ...) rejects the clip with reason
`teacher_<kind>` and keeps the raw reply in the reject's detail.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vdata.prompts import Prompt, load_prompt, shorten
from vdata.schemas import records as R

from .base import Reject, Resources, Stage, StageConfig

log = logging.getLogger("vdata.caption")

STRATEGIES = ("multi_frame", "differential", "dense", "multi_teacher")
PROMPT_GROUP = "caption"
PROMPT_NAMES = ("multi_frame", "window_merge", "differential_first", "differential_next", "differential_summary",
                "dense", "judge", "transcript")

SHOT_TYPES = ("extreme_close_up", "close_up", "medium", "wide", "extreme_wide", "aerial", "point_of_view", "other")
CAMERA_MOVEMENTS = ("static", "pan", "tilt", "zoom_in", "zoom_out", "dolly", "tracking", "handheld", "mixed", "other")

# Dense-caption timestamp bookkeeping. Not (yet) in records.py's CAPTION_COLUMNS: registered here
# through the registry's hook for later floors (same name + type is idempotent if records.py adopts them).
DENSE_TIMESTAMPS_REPAIRED = R.DENSE_TIMESTAMPS_REPAIRED
DENSE_EVENTS_DROPPED = R.DENSE_EVENTS_DROPPED
CAPTION_WRITES = R.CAPTION_COLUMNS


# ================================================================================ configuration
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


class MultiTeacherConfig(_Sub):
    teachers: list[str] = Field(default_factory=list)    # empty: the stage's `teacher` alone
    samples_per_teacher: int = Field(1, ge=1, le=32)
    temperature: float = Field(0.8, ge=0, le=5)          # for samples 2..n of a teacher (sample 1 is greedy)
    min_candidates: int = Field(1, ge=1)                 # fewer successful candidates: the clip is rejected
    selector: Literal["agreement", "judge"] = "agreement"
    judge: str | None = None                             # judge teacher; None: the stage's `teacher`
    embedding_model: str | None = None                   # agreement: sentence-transformers dir; None: packaged MiniLM


class CaptionConfig(StageConfig):
    strategy: Literal["multi_frame", "differential", "dense", "multi_teacher"] = "multi_frame"
    teacher: str = "captioner"                  # a name under the run config's `teachers:`
    max_frames: int = Field(16, ge=1, le=1024)  # frames used per clip (evenly thinned from the `frames` column)
    window_frames: int = Field(0, ge=0, le=1024)   # >0: longer clips are captioned in windows of this many frames, then merged
    frames_as: Literal["images", "video"] = "images"   # timed images, or one video input (Qwen-VL style)
    transcript: bool = True                     # put the clip's speech (from the asr stage) into the prompts
    transcript_max_chars: int = Field(2000, ge=0, le=100000)
    max_tokens: int | None = Field(None, ge=1)  # reply budget per request; None: the teacher's sampling.max_tokens
    sampling: dict[str, Any] = Field(default_factory=dict)   # per-request overrides, incl. backend extras (top_k, ignore_eos)
    max_in_flight: int = Field(16, ge=1, le=4096)   # clips in flight per worker
    scheduler: Literal["auto", "rounds", "threads"] = "auto"   # auto: rounds for offline vLLM, threads for HTTP
    prompts: dict[str, str] = Field(default_factory=dict)      # template name -> the user's file
    differential: DifferentialConfig = Field(default_factory=DifferentialConfig)
    dense: DenseConfig = Field(default_factory=DenseConfig)
    multi_teacher: MultiTeacherConfig = Field(default_factory=MultiTeacherConfig)

    @field_validator("prompts")
    @classmethod
    def _prompt_files(cls, value: dict[str, str]) -> dict[str, str]:
        for name, path in value.items():
            if name not in PROMPT_NAMES:
                raise ValueError(f"prompts.{name}: unknown template (allowed: {', '.join(PROMPT_NAMES)})")
            if not Path(os.path.expanduser(path)).is_file():
                raise ValueError(f"prompts.{name}: no such file {path!r}")
        return {k: os.path.abspath(os.path.expanduser(v)) for k, v in value.items()}

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
        return self


# ================================================================================ the clip scheduler
@dataclass
class Call:
    """One request for a named teacher; `step` names it in error messages (e.g. "differential_next@2.0s")."""

    teacher: str
    request: Any                 # vdata.teachers.TeacherRequest
    step: str


class TeacherFailure(Exception):
    def __init__(self, call: Call, result: Any):
        super().__init__(f"teacher {call.teacher!r} failed at {call.step}: {result.error}")
        self.call, self.result = call, result


# A procedure yields the calls it needs next (a list) and is sent their results (same order).
Procedure = Generator[list, list, Any]


def ask(call: Call) -> Procedure:
    """One request; its result, or TeacherFailure."""
    (result,) = yield [call]
    if not result.ok:
        raise TeacherFailure(call, result)
    return result


def settle(proc: Procedure) -> Procedure:
    """Run `proc`; a teacher failure becomes its return value instead of propagating."""
    try:
        return (yield from proc)
    except TeacherFailure as failure:
        return failure


def gather(procs: list[Procedure]) -> Procedure:
    """Run procedures side by side: every round yields the pending calls of all unfinished ones."""
    results: list[Any] = [None] * len(procs)
    pending: dict[int, list] = {}
    for i, proc in enumerate(procs):
        try:
            pending[i] = next(proc)
        except StopIteration as stop:
            results[i] = stop.value
    while pending:
        order = list(pending.items())
        replies = yield [c for _, calls in order for c in calls]
        pending, pos = {}, 0
        for i, calls in order:
            part, pos = replies[pos:pos + len(calls)], pos + len(calls)
            try:
                pending[i] = procs[i].send(part)
            except StopIteration as stop:
                results[i] = stop.value
    return results


class ClipJob:
    """A per-clip state machine: `pending` calls, `record(results)` advances it, `finished` / `outcome`.

    `on_error(exc)` turns an exception escaping the procedure into the job's outcome (a Reject).
    """

    def __init__(self, proc: Procedure, on_error: Callable[[BaseException], Any]):
        self._proc, self._on_error = proc, on_error
        self.pending: list[Call] = []
        self.outcome: Any = None
        self.finished = False
        self.requests_sent = 0
        self._advance(None)

    def _advance(self, results: list | None) -> None:
        try:
            calls = next(self._proc) if results is None else self._proc.send(results)
            while not calls:          # a procedure that yields nothing needs no round trip
                calls = self._proc.send([])
            self.pending = list(calls)
        except StopIteration as stop:
            self._finish(stop.value)
        except Exception as exc:  # errors are values: the clip fails, the pool goes on
            self._finish(self._on_error(exc))

    def _finish(self, outcome: Any) -> None:
        self.outcome, self.finished, self.pending = outcome, True, []

    def record(self, results: list) -> None:
        if len(results) != len(self.pending):
            raise ValueError(f"{len(results)} results for {len(self.pending)} pending calls")
        self.requests_sent += len(results)
        self._advance(list(results))


@dataclass
class ScheduleStats:
    mode: str = ""
    max_in_flight: int = 0
    clips: int = 0
    requests: int = 0
    round_sizes: list[int] = field(default_factory=list)   # rounds mode: requests per round
    peak_outstanding: int = 0                              # most requests handed to teachers at once
    _outstanding: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def started(self, n: int) -> None:
        with self._lock:
            self._outstanding += n
            self.requests += n
            self.peak_outstanding = max(self.peak_outstanding, self._outstanding)

    def done(self, n: int) -> None:
        with self._lock:
            self._outstanding -= n


def _dispatch(calls: list[Call], teachers: dict, stats: ScheduleStats, fanout: ThreadPoolExecutor | None,
              locks: dict[int, threading.Lock]) -> list:
    """Send `calls`: one generate call per teacher object (two names for one engine share a batch),
    different teachers in parallel; results in call order."""
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(calls):
        groups.setdefault(id(teachers[c.teacher]), []).append(i)
    out: list[Any] = [None] * len(calls)

    def run(idx: list[int]):
        teacher = teachers[calls[idx[0]].teacher]
        requests = [calls[i].request for i in idx]
        try:
            with locks.get(id(teacher)) or contextlib.nullcontext():
                return teacher.generate(requests)
        except Exception as e:  # generate() should never raise; if it does, only these clips fail
            from vdata.teachers import TeacherResult

            return [TeacherResult(r.request_id, error=f"engine_error: {type(e).__name__}: {e}") for r in requests]

    stats.started(len(calls))
    try:
        if len(groups) == 1 or fanout is None:
            answers = [(idx, run(idx)) for idx in groups.values()]
        else:
            futures = [(idx, fanout.submit(run, idx)) for idx in groups.values()]
            answers = [(idx, f.result()) for idx, f in futures]
    finally:
        stats.done(len(calls))
    for idx, results in answers:
        for i, r in zip(idx, results):
            out[i] = r
    return out


def _engine_locks(teachers: dict) -> dict[int, threading.Lock]:
    """An in-process vLLM engine must not be entered from two threads at once (its engine-core socket
    is not thread-safe): its calls are serialised. HTTP teachers take concurrent calls."""
    return {id(t): threading.Lock() for t in teachers.values() if t.backend == "vllm"}


def run_jobs(jobs: list[ClipJob], teachers: dict, max_in_flight: int, mode: Literal["rounds", "threads"]) -> ScheduleStats:
    """Drive `jobs` to completion with at most `max_in_flight` clips active at once.

    `rounds`: each round gathers the pending calls of every active clip into one generate call per
    teacher (what a batching offline engine wants); clips that finish are replaced from the queue
    before the next round, so rounds stay full while clips remain.
    `threads`: each active clip has a thread that sends its next calls as soon as its last results
    are back (HTTP teachers run concurrent requests themselves); a finished clip's thread takes the
    next clip from the queue.
    """
    stats = ScheduleStats(mode=mode, max_in_flight=max_in_flight, clips=len(jobs))
    queue = deque(j for j in jobs if not j.finished)
    n_teachers = len({id(t) for t in teachers.values()})
    locks = _engine_locks(teachers)
    if mode == "rounds":
        active: list[ClipJob] = []
        with ThreadPoolExecutor(max_workers=max(1, n_teachers), thread_name_prefix="caption-fanout") as fanout:
            while queue or active:
                while queue and len(active) < max_in_flight:
                    active.append(queue.popleft())
                calls = [c for j in active for c in j.pending]
                stats.round_sizes.append(len(calls))
                results = _dispatch(calls, teachers, stats, fanout, locks)
                pos = 0
                for j in active:
                    n = len(j.pending)
                    j.record(results[pos:pos + n])
                    pos += n
                active = [j for j in active if not j.finished]
        return stats
    if mode != "threads":
        raise ValueError(f"unknown scheduler mode {mode!r}")
    lock = threading.Lock()

    def worker(fanout: ThreadPoolExecutor) -> None:
        while True:
            with lock:
                if not queue:
                    return
                job = queue.popleft()
            while not job.finished:
                job.record(_dispatch(job.pending, teachers, stats, fanout, locks))

    n_workers = min(max_in_flight, len(queue))
    if n_workers:
        with ThreadPoolExecutor(max_workers=max(1, n_workers * n_teachers), thread_name_prefix="caption-fanout") as fanout, \
                ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="caption-clip") as pool:
            for f in [pool.submit(worker, fanout) for _ in range(n_workers)]:
                f.result()
    return stats


# ================================================================================ prompts and inputs
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


def _fmt(t: float) -> str:
    return f"{t:.1f}"


def transcript_lines(row: dict, clip_start: float, max_chars: int) -> str:
    """The clip's speech as timed lines (clip-relative seconds); "" when there is none."""
    lines = []
    for seg in row.get(R.TRANSCRIPT_SEGMENTS) or []:
        text = (seg.get("text") or "").strip()
        if not text:
            continue
        a = seg.get("clip_start_s")
        b = seg.get("clip_end_s")
        a = a if a is not None else max(0.0, (seg.get("start_s") or clip_start) - clip_start)
        b = b if b is not None else max(a, (seg.get("end_s") or clip_start) - clip_start)
        lines.append(f"[{_fmt(a)}s-{_fmt(b)}s] {text}")
    if not lines and (row.get(R.TRANSCRIPT_TEXT) or "").strip():
        lines.append(row[R.TRANSCRIPT_TEXT].strip())
    return shorten("\n".join(lines), max_chars, collapse_spaces=False) if lines else ""


# ================================================================================ dense timestamps
def dense_schema(max_events: int, max_caption_chars: int, max_description_chars: int, time_bound: float) -> dict:
    """The dense reply schema. Every field is bounded: enums, string lengths, item counts, and numbers
    in [0, time_bound] — a bound wider than the clip, so that the grammar keeps numbers finite while
    values outside the clip still reach the validator (which counts and repairs them)."""
    t = {"type": "number", "minimum": 0, "maximum": round(time_bound, 1)}
    event = {"type": "object",
             "properties": {"start_s": t, "end_s": t,
                            "description": {"type": "string", "minLength": 1, "maxLength": max_description_chars}},
             "required": ["start_s", "end_s", "description"], "additionalProperties": False}
    return {"type": "object",
            "properties": {"caption": {"type": "string", "minLength": 1, "maxLength": max_caption_chars},
                           "events": {"type": "array", "items": event, "minItems": 1, "maxItems": max_events},
                           "shot_type": {"type": "string", "enum": list(SHOT_TYPES)},
                           "camera_movement": {"type": "string", "enum": list(CAMERA_MOVEMENTS)}},
            "required": ["caption", "events", "shot_type", "camera_movement"], "additionalProperties": False}


def dense_time_bound(duration_s: float) -> float:
    return duration_s * 2 + 10.0


@dataclass
class EventCheck:
    events: list[tuple[float, float, str]]    # clip-relative, inside [0, duration], sorted by start
    repaired: int = 0                          # timestamps clamped into the clip
    dropped: int = 0                           # events dropped
    problems: list[str] = field(default_factory=list)


def check_events(raw_events: list[dict], duration_s: float, tolerance_s: float) -> EventCheck:
    """Validate model events against the clip [0, duration_s] (clip-relative seconds).

    A time within `tolerance_s` outside the clip is clamped (counted as repaired); further out, or an
    event that ends before it starts, is dropped (counted, with the reason in `problems`).
    """
    out = EventCheck(events=[])
    for k, ev in enumerate(raw_events):
        try:
            times = [float(ev["start_s"]), float(ev["end_s"])]
        except (KeyError, TypeError, ValueError):
            out.dropped += 1
            out.problems.append(f"event {k}: no numeric start_s/end_s")
            continue
        if not all(math.isfinite(t) for t in times):
            out.dropped += 1
            out.problems.append(f"event {k}: non-finite time")
            continue
        fixed, ok = [], True
        for name, t in zip(("start_s", "end_s"), times):
            if 0.0 <= t <= duration_s:
                fixed.append(t)
            elif -tolerance_s <= t < 0.0 or duration_s < t <= duration_s + tolerance_s:
                fixed.append(min(max(t, 0.0), duration_s))
                out.repaired += 1
            else:
                ok = False
                out.problems.append(f"event {k}: {name}={t:g}s is outside the clip [0, {duration_s:g}]s "
                                    f"by more than the tolerance {tolerance_s:g}s")
        if ok and fixed[1] < fixed[0]:
            ok = False
            out.problems.append(f"event {k}: ends ({fixed[1]:g}s) before it starts ({fixed[0]:g}s)")
        if not ok:
            out.dropped += 1
            continue
        out.events.append((fixed[0], fixed[1], str(ev.get("description") or "").strip()))
    out.events.sort(key=lambda e: (e[0], e[1]))
    return out


# ================================================================================ agreement selector
def agreement_scores(texts: list[str], embed: Callable[[list[str]], Any]) -> list[float]:
    """Each text's mean cosine similarity to the others (its agreement with the rest), in [-1, 1]."""
    import numpy as np

    if len(texts) < 2:
        return [1.0] * len(texts)
    vecs = np.asarray(embed(texts), dtype=np.float64)
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    sim = vecs @ vecs.T
    n = len(texts)
    return [float((sim[i].sum() - sim[i, i]) / (n - 1)) for i in range(n)]


def judge_schema(n: int) -> dict:
    return {"type": "object",
            "properties": {"scores": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 10},
                                      "minItems": n, "maxItems": n},
                           "best": {"type": "integer", "enum": list(range(n))}},
            "required": ["scores", "best"], "additionalProperties": False}


# ================================================================================ the stage
class CaptionStage(Stage):
    name = "caption"
    Config = CaptionConfig
    reads = (R.CLIP_ID, R.START_S, R.END_S, R.FRAMES)
    writes = CAPTION_WRITES
    default_resources = Resources(num_cpus=1, batch_size=64)
    uses_actors = True


    def teacher_plan(self, frames_per_clip: int, frame_hw: tuple[int, int]) -> list[dict]:
        """Requests and tokens per clip by strategy (see Stage.teacher_plan); a model-free estimate."""
        from vdata.teachers.accounting import image_tokens

        c = self.config
        n = max(1, min(c.max_frames, frames_per_clip or c.max_frames))
        windows = -(-n // c.window_frames) if c.window_frames and n > c.window_frames else 1
        per_image = image_tokens(*frame_hw) + 12          # + the timestamp line each frame gets
        # the template (~90 tokens) plus, when speech is included, a quarter of its budget on average
        text = 90 + (c.transcript_max_chars // 4 // 4 if c.transcript else 0)
        out_tokens = c.max_tokens or 256
        def row(teacher, requests, images):
            return {"teacher": teacher, "requests_per_row": requests,
                    "prompt_tokens": int(text + images * per_image), "completion_tokens": out_tokens}
        merge = 1 if windows > 1 else 0
        if c.strategy == "multi_frame" or c.strategy == "dense":
            plan = [row(c.teacher, windows, -(-n // windows))]
            if merge:
                plan.append(row(c.teacher, merge, 0))
            return plan
        if c.strategy == "differential":
            plan = [row(c.teacher, n, 2)]   # each step sees the keyframe (and the first one)
            if c.differential.summarize:
                plan.append(row(c.teacher, windows, 0))
            return plan
        mt = c.multi_teacher
        names = mt.teachers or [c.teacher]
        plan = [row(t, mt.samples_per_teacher, n) for t in names]
        if mt.selector == "judge":
            plan.append(row(mt.judge or c.teacher, 1, n))
        return plan
    def __init__(self, config: CaptionConfig, ctx):
        super().__init__(config, ctx)
        self.teachers: dict = {}
        self._owned: set[str] = set()      # teachers this stage built (and closes)
        self.prompts: dict[str, Prompt] = {}
        self._embedder = None
        self.last_schedule: ScheduleStats | None = None

    def describe(self) -> str:
        """The plan line: the settings of the chosen strategy only."""
        import json

        unused = {"differential", "dense", "multi_teacher", "resources"} - {self.config.strategy}
        return json.dumps(self.config.model_dump(exclude=unused, mode="json"), sort_keys=True)

    # ---------------------------------------------------------------- setup
    def teacher_names(self) -> list[str]:
        c = self.config
        names = [c.teacher]
        if c.strategy == "multi_teacher":
            names = list(c.multi_teacher.teachers or [c.teacher])
            if c.multi_teacher.selector == "judge":
                names.append(c.multi_teacher.judge or c.teacher)
        return list(dict.fromkeys(names))

    def use_teachers(self, teachers: dict) -> None:
        """Attach already-built teachers by name (shared engines, e.g. one engine for many stages);
        `setup()` builds only the ones missing, and `close()` leaves attached ones open."""
        self.teachers.update(teachers)

    def setup(self) -> None:
        from vdata.schemas.config import ConfigError

        c = self.config
        defined = self.ctx.teachers or {}
        for key, name in self.teacher_refs():
            if name not in defined and name not in self.teachers:
                raise ConfigError(f"stages.caption.{key}: no teacher {name!r} under `teachers:` "
                                  f"(defined: {', '.join(sorted(defined)) or 'none'})")
        self.prompts = {n: load_prompt(PROMPT_GROUP, n, override=c.prompts.get(n)) for n in PROMPT_NAMES}
        try:
            for name in self.teacher_names():
                if name in self.teachers:
                    continue
                # built once per worker through the run's request cache; reported in the manifest
                teacher = self.teacher(name)
                self.teachers[name] = teacher
                self._owned.add(name)
                if hasattr(teacher, "start"):      # offline engines load here, once, not on the first clip
                    teacher.start()
            for name in self.teacher_names():
                if _is_demo_model(self.teachers[name].model_name):
                    log.warning("caption: teacher %r runs a demo-size random model (%s): its captions are "
                                "placeholder text, useful only to exercise the pipeline", name,
                                self.teachers[name].model_name)
            if c.strategy == "multi_teacher" and c.multi_teacher.selector == "agreement":
                from vdata.teachers.packaged import PACKAGED_MINILM, load_text_embedder

                encoder = load_text_embedder(c.multi_teacher.embedding_model or PACKAGED_MINILM)
                self._embedder = lambda texts: encoder.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        except BaseException:
            self.close()
            raise

    def teacher_refs(self) -> list[tuple[str, str]]:
        """(config key, teacher name) for every teacher this stage's config names — for checking a run
        config's `teachers:` before anything starts."""
        c = self.config
        if c.strategy != "multi_teacher":
            return [("teacher", c.teacher)]
        refs = [(f"multi_teacher.teachers[{i}]", n) for i, n in enumerate(c.multi_teacher.teachers)]
        if not c.multi_teacher.teachers:
            refs.append(("teacher", c.teacher))
        if c.multi_teacher.selector == "judge":
            refs.append(("multi_teacher.judge" if c.multi_teacher.judge else "teacher", c.multi_teacher.judge or c.teacher))
        return refs

    def close(self) -> None:
        """Stop the teachers this stage built (managed servers, engines); attached ones stay open."""
        owned, self._owned = self._owned, set()
        teachers = [self.teachers.pop(n) for n in owned if n in self.teachers]
        built = self.__dict__.get("_teachers", {})     # Stage.teacher()'s per-worker registry
        for n in owned:
            built.pop(n, None)
        for t in teachers:
            try:
                t.close()
            except Exception as e:  # pragma: no cover - best effort
                log.warning("caption: closing teacher %s: %s", t.name, e)

    def stats(self) -> dict:
        """Per-teacher accounting (requests, failures, tokens, latency) and the last batch's schedule."""
        sched = self.last_schedule
        return {"teachers": {n: t.stats() for n, t in self.teachers.items()},
                "schedule": None if sched is None else {
                    "mode": sched.mode, "max_in_flight": sched.max_in_flight, "clips": sched.clips,
                    "requests": sched.requests, "peak_outstanding": sched.peak_outstanding,
                    "rounds": len(sched.round_sizes)}}

    def active_teachers(self) -> dict:
        return {n: self.teachers[n] for n in self.teacher_names()}

    def scheduler_mode(self) -> str:
        if self.config.scheduler != "auto":
            return self.config.scheduler
        return "rounds" if any(t.backend == "vllm" for t in self.active_teachers().values()) else "threads"

    # ---------------------------------------------------------------- batch
    def process_batch(self, rows: list[dict]) -> list:
        jobs = []
        for row in rows:
            try:
                clip = self._clip(row)
            except Exception as e:
                jobs.append(_Done(self.error_reject(row, e)))
                continue
            if isinstance(clip, Reject):
                jobs.append(_Done(clip))
                continue
            jobs.append(ClipJob(self._procedure(clip), on_error=lambda exc, row=row: self._failure(row, exc)))
        self.last_schedule = run_jobs([j for j in jobs if isinstance(j, ClipJob)], self.active_teachers(),
                                      self.config.max_in_flight, self.scheduler_mode())
        return [j.outcome for j in jobs]

    def _failure(self, row: dict, exc: BaseException) -> Reject:
        if isinstance(exc, TeacherFailure):
            res = exc.result
            kind = res.error_kind or "error"
            return self.reject(row, f"teacher_{kind}", f"caption: teacher {exc.call.teacher!r} failed at "
                               f"{exc.call.step}: {res.error}", teacher=exc.call.teacher, step=exc.call.step,
                               error=res.error, raw=res.raw if res.raw is not None else res.text,
                               attempts=res.attempts, finish_reason=res.finish_reason)
        if isinstance(exc, _RowReject):
            return exc.reject
        return self.error_reject(row, exc)

    def _clip(self, row: dict) -> Clip | Reject:
        c = self.config
        start, end = float(row[R.START_S]), float(row[R.END_S])
        duration = max(0.0, end - start)
        items = [f for f in (row.get(R.FRAMES) or []) if f and f.get(R.FRAME_JPEG)]
        if not items:
            return self.reject(row, "no_frames", "caption: the clip has no frames (run the frames stage first)")
        items.sort(key=lambda f: f[R.FRAME_TIMESTAMP_S])
        frames = [Frame(float(f[R.FRAME_TIMESTAMP_S]), min(max(float(f[R.FRAME_TIMESTAMP_S]) - start, 0.0), duration),
                        bytes(f[R.FRAME_JPEG])) for f in thin_evenly(items, c.max_frames)]
        transcript = ""
        if c.transcript and c.transcript_max_chars:
            lines = transcript_lines(row, start, c.transcript_max_chars)
            transcript = self.prompts["transcript"].render(lines=lines) if lines else ""
        clip = Clip(row, start, duration, frames, transcript, row.get(R.FPS))
        if transcript:
            clip.prompt_ids[self.prompts["transcript"].id] = None
        return clip

    # ---------------------------------------------------------------- requests
    def _request(self, clip: Clip, template: str, frames: list[Frame], values: dict, *,
                 schema: dict | None = None, sampling: dict | None = None, as_images: bool = False):
        from vdata.teachers import ImagePart, Message, TeacherRequest, TextPart, VideoPart

        prompt = self.prompts[template]
        clip.prompt_ids[prompt.id] = None
        base = {"duration": _fmt(clip.duration_s), "transcript": clip.transcript,
                "num_frames": len(frames), "frame_times": ", ".join(f"{_fmt(f.rel_s)}s" for f in frames)}
        text = prompt.render(**{**base, **values})
        parts: list = []
        if self.config.frames_as == "video" and len(frames) > 1 and not as_images:
            parts.append(VideoPart(frames=[f.jpeg for f in frames], timestamps=[f.rel_s for f in frames],
                                   fps=clip.fps or None, duration=clip.duration_s or None))
        else:
            for f in frames:
                parts += [TextPart(f"<{_fmt(f.rel_s)}s>"), ImagePart(f.jpeg)]
        parts.append(TextPart(text))
        samp = {**self.config.sampling, **(sampling or {})}
        if self.config.max_tokens:
            samp.setdefault("max_tokens", self.config.max_tokens)
        return TeacherRequest(messages=[Message("user", parts)], json_schema=schema, schema_name=template,
                              sampling=samp, prompt_template_version=prompt.id)

    def _window_spans(self, clip: Clip, windows: list[list[Frame]]) -> list[tuple[float, float]]:
        """Consecutive clip-relative spans: boundaries halfway between windows, the first from 0, the last to the end."""
        bounds = [0.0] + [(a[-1].rel_s + b[0].rel_s) / 2 for a, b in zip(windows, windows[1:])] + [clip.duration_s]
        return list(zip(bounds, bounds[1:]))

    # ---------------------------------------------------------------- procedures
    def _procedure(self, clip: Clip) -> Procedure:
        return {"multi_frame": self._multi_frame, "differential": self._differential, "dense": self._dense,
                "multi_teacher": self._multi_teacher}[self.config.strategy](clip)

    def _describe(self, clip: Clip, teacher: str, sampling: dict | None = None, tag: str = "") -> Procedure:
        """A detailed caption from the frames: one request, or windows + a merge. Returns (text, steps)."""
        windows = windows_of(clip.frames, self.config.window_frames)
        if len(windows) == 1:
            req = self._request(clip, "multi_frame", clip.frames, _span((0.0, clip.duration_s)), sampling=sampling)
            res = yield from ask(Call(teacher, req, f"multi_frame{tag}"))
            return _nonempty(res.text, teacher, f"multi_frame{tag}"), None
        spans = self._window_spans(clip, windows)
        reqs = [Call(teacher, self._request(clip, "multi_frame", w, _span(s), sampling=sampling),
                     f"multi_frame{tag}[window {k}]")
                for k, (w, s) in enumerate(zip(windows, spans))]
        results = yield from gather([ask(c) for c in reqs])
        texts = [_nonempty(r.text, teacher, c.step) for r, c in zip(results, reqs)]
        merged = yield from self._merge(clip, teacher, list(zip(spans, texts)), sampling, tag)
        steps = [(w[0].abs_s, t) for w, t in zip(windows, texts)]
        return merged, steps

    def _merge(self, clip: Clip, teacher: str, parts: list, sampling: dict | None, tag: str) -> Procedure:
        listing = "\n\n".join(f"[{_fmt(a)}s-{_fmt(b)}s]\n{text}" for (a, b), text in parts)
        req = self._request(clip, "window_merge", [], {"parts": listing}, sampling=sampling)
        res = yield from ask(Call(teacher, req, f"window_merge{tag}"))
        return _nonempty(res.text, teacher, f"window_merge{tag}")

    def _multi_frame(self, clip: Clip) -> Procedure:
        text, steps = yield from self._describe(clip, self.config.teacher)
        return self._row(clip, caption=text, teacher=self.config.teacher, steps=steps)

    def _differential(self, clip: Clip) -> Procedure:
        c, t = self.config, self.config.teacher
        limit = c.differential.context_chars
        first = clip.frames[0]
        req = self._request(clip, "differential_first", [first], {"timestamp": _fmt(first.rel_s)})
        res = yield from ask(Call(t, req, f"differential_first@{_fmt(first.rel_s)}s"))
        first_text = _nonempty(res.text, t, "differential_first")
        steps = [(first, first_text)]
        for prev, cur in zip(clip.frames, clip.frames[1:]):
            context = f"At {_fmt(first.rel_s)}s (first keyframe): {shorten(first_text, limit, collapse_spaces=False)}"
            if len(steps) > 1:
                context += f"\nAt {_fmt(prev.rel_s)}s (latest change): {shorten(steps[-1][1], limit, collapse_spaces=False)}"
            req = self._request(clip, "differential_next", [prev, cur],
                                {"previous_timestamp": _fmt(prev.rel_s), "timestamp": _fmt(cur.rel_s), "context": context},
                                as_images=True)   # two distinct keyframes to compare, not a video
            step = f"differential_next@{_fmt(cur.rel_s)}s"
            res = yield from ask(Call(t, req, step))
            steps.append((cur, _nonempty(res.text, t, step)))
        timed = [(f.rel_s, text) for f, text in steps]
        if len(steps) == 1:
            caption = first_text
        elif not c.differential.summarize:
            caption = "\n".join(f"<{_fmt(r)}s> {text}" for r, text in timed)
        else:
            caption = yield from self._summarize(clip, t, timed)
        return self._row(clip, caption=caption, teacher=t, steps=[(f.abs_s, text) for f, text in steps])

    def _summarize(self, clip: Clip, teacher: str, timed: list[tuple[float, str]]) -> Procedure:
        """One summary of the timed steps; more than `window_frames` steps: summaries per chunk, then a merge."""
        def listing(chunk):
            return "\n".join(f"At {_fmt(r)}s: {text}" for r, text in chunk)

        chunks = windows_of(timed, self.config.window_frames)
        calls = [Call(teacher, self._request(clip, "differential_summary", [], {"steps": listing(ch)}),
                      "differential_summary" + (f"[window {k}]" if len(chunks) > 1 else ""))
                 for k, ch in enumerate(chunks)]
        results = yield from gather([ask(call) for call in calls])
        texts = [_nonempty(r.text, teacher, call.step) for r, call in zip(results, calls)]
        if len(chunks) == 1:
            return texts[0]
        bounds = [ch[0][0] for ch in chunks] + [clip.duration_s]
        return (yield from self._merge(clip, teacher, list(zip(zip(bounds, bounds[1:]), texts)), None, ""))

    def _dense(self, clip: Clip) -> Procedure:
        c, t = self.config, self.config.teacher
        d = c.dense
        windows = windows_of(clip.frames, c.window_frames)
        spans = self._window_spans(clip, windows) if len(windows) > 1 else [(0.0, clip.duration_s)]
        schema = dense_schema(d.max_events, d.max_caption_chars, d.max_description_chars, dense_time_bound(clip.duration_s))
        calls = []
        for k, (w, span) in enumerate(zip(windows, spans)):
            values = {**_span(span), "max_events": d.max_events,
                      "max_caption_chars": d.max_caption_chars, "shot_types": ", ".join(SHOT_TYPES),
                      "camera_movements": ", ".join(CAMERA_MOVEMENTS)}
            calls.append(Call(t, self._request(clip, "dense", w, values, schema=schema),
                              "dense" + (f"[window {k}]" if len(windows) > 1 else "")))
        results = yield from gather([ask(call) for call in calls])
        raw_events, captions, shots, moves = [], [], [], []
        for res in results:
            reply = res.parsed or {}
            raw_events += list(reply.get("events") or [])
            captions.append(str(reply.get("caption") or "").strip())
            shots.append(reply.get("shot_type"))
            moves.append(reply.get("camera_movement"))
        check = check_events(raw_events, clip.duration_s, d.tolerance_s)
        detail = {"problems": check.problems[:20], "repaired": check.repaired, "dropped": check.dropped,
                  "raw": [r.text for r in results]}
        if check.dropped and d.on_out_of_range == "reject_row":
            raise _RowReject(self.reject(clip.row, "timestamps_out_of_range",
                                         f"caption: {check.dropped} dense event(s) had times outside the clip "
                                         f"[0, {clip.duration_s:g}]s beyond the tolerance {d.tolerance_s:g}s", **detail))
        if not check.events:
            raise _RowReject(self.reject(clip.row, "no_valid_events",
                                         f"caption: none of the {len(raw_events)} dense event(s) lies inside the clip "
                                         f"[0, {clip.duration_s:g}]s", **detail))
        if len(captions) == 1:
            caption = _nonempty(captions[0], t, "dense")
        else:
            caption = yield from self._merge(clip, t, list(zip(spans, captions)), None, "")
        events = [{"start_s": round(clip.start_s + a, 6), "end_s": round(clip.start_s + b, 6), "description": text}
                  for a, b, text in check.events]
        steps = [(w[0].abs_s, text) for w, text in zip(windows, captions)] if len(windows) > 1 else None
        return self._row(clip, caption=caption, teacher=t, steps=steps, events=events,
                         shot_type=_majority(shots), camera_movement=_majority(moves),
                         repaired=check.repaired, dropped=check.dropped)

    def _multi_teacher(self, clip: Clip) -> Procedure:
        c = self.config
        mt = c.multi_teacher
        plan = []
        for name in (mt.teachers or [c.teacher]):
            for s in range(mt.samples_per_teacher):
                # sample 0 uses the teacher's own sampling; further samples are drawn with temperature
                # and distinct seeds so that they differ (and get distinct cache keys)
                sampling = None if s == 0 else {"temperature": mt.temperature, "seed": 1000 + s}
                plan.append((name, sampling, f"[{name}#{s}]"))
        outcomes = yield from gather([settle(self._describe(clip, name, sampling, tag)) for name, sampling, tag in plan])
        candidates, failures = [], []
        for (name, _, tag), out in zip(plan, outcomes):
            if isinstance(out, TeacherFailure):
                failures.append(out)
                log.warning("caption: candidate %s of clip %s failed: %s", tag, clip.row.get(R.CLIP_ID), out)
            else:
                candidates.append({"teacher": name, "model": self.teachers[name].model_name, "text": out[0],
                                   "steps": out[1]})
        if len(candidates) < mt.min_candidates:
            if failures:
                raise failures[0]
            raise _RowReject(self.reject(clip.row, "too_few_candidates", f"caption: {len(candidates)} candidate(s), "
                                         f"fewer than multi_teacher.min_candidates={mt.min_candidates}"))
        texts = [cand["text"] for cand in candidates]
        if len(candidates) == 1:
            scores, best = [None], 0
        elif mt.selector == "agreement":
            scores = agreement_scores(texts, self._embedder)
            best = max(range(len(scores)), key=lambda i: scores[i])
        else:
            judge = mt.judge or c.teacher
            listing = "\n\n".join(f"{i}: {text}" for i, text in enumerate(texts))
            req = self._request(clip, "judge", clip.frames, {"candidates": listing, "num_candidates": len(texts)},
                                schema=judge_schema(len(texts)))
            res = yield from ask(Call(judge, req, "judge"))
            scores = [min(max(int(s), 0), 10) / 10.0 for s in res.parsed["scores"]]
            best = int(res.parsed["best"])
        chosen = candidates[best]
        kept = [{"teacher": cand["teacher"], "model": cand["model"], "text": cand["text"], "score": score}
                for cand, score in zip(candidates, scores)]
        return self._row(clip, caption=chosen["text"], teacher=chosen["teacher"], model=chosen["model"],
                         steps=chosen["steps"], candidates=kept, selection_score=scores[best])

    # ---------------------------------------------------------------- output
    def _row(self, clip: Clip, *, caption: str, teacher: str, model: str | None = None, steps=None, events=None,
             shot_type=None, camera_movement=None, candidates=None, selection_score=None, repaired=None,
             dropped=None) -> dict:
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
        })
        return row


class _RowReject(Exception):
    """Raised inside a procedure to end the clip with a specific Reject."""

    def __init__(self, reject: Reject):
        super().__init__(reject.message)
        self.reject = reject


@dataclass
class _Done:
    """A clip settled before scheduling (no frames, bad row)."""

    outcome: Any
    finished: bool = True


def _nonempty(text: str | None, teacher: str, step: str) -> str:
    text = (text or "").strip()
    if not text:
        from vdata.teachers import TeacherResult

        raise TeacherFailure(Call(teacher, None, step), TeacherResult("", text="", error="empty_reply: the teacher "
                                                                          "answered with no text"))
    return text


def _span(span: tuple[float, float]) -> dict:
    return {"span_start": _fmt(span[0]), "span_end": _fmt(span[1])}


def _majority(values: list) -> Any:
    counts = Counter(v for v in values if v)
    return counts.most_common(1)[0][0] if counts else None


# Served name for the demo teacher (quickstart): every row's `caption_model` then says what made it.
DEMO_SERVED_NAME = "vdata-tiny-demo-vlm"


def _is_demo_model(model: str) -> bool:
    """True for the tiny random checkpoints vdata builds offline: a directory with their `.vdata-tiny`
    stamp, or the demo teacher's served name (workers reach a driver-managed server by that name)."""
    if str(model).startswith(DEMO_SERVED_NAME):
        return True
    try:
        return (Path(model) / ".vdata-tiny").is_file()
    except (OSError, TypeError, ValueError):
        return False


# ================================================================================ demo teacher
def ensure_tiny_vlm(directory: str | os.PathLike | None = None, kind: str = "qwen2_5_vl") -> Path:
    """Build (once) the tiny random Qwen-VL checkpoint the quickstart's embedded teacher serves.

    `directory` defaults to `~/.cache/vdata/models/tiny-<kind>`; a finished build is reused (its
    recipe stamp matches), so calling this on every quickstart costs nothing after the first time.
    Demo-size random weights: the captions it yields are placeholder text, not descriptions.
    """
    from vdata.teachers.tiny_models import build_tiny_vlm

    target = Path(directory) if directory else Path.home() / ".cache" / "vdata" / "models" / f"tiny-{kind}"
    return build_tiny_vlm(target, kind)  # type: ignore[arg-type]
