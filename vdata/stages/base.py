"""The stage contract.

A stage is one file: a pydantic config model, the columns it reads and writes, the resources it asks
for, `setup()` (runs once per worker: load models, open engines) and `process_batch()` (rows in, rows
out). A stage may fan out (one video row → many clip rows) or drop rows. Errors are values: a row that
fails comes back as a `Reject`, and the runner turns it into a reject row; it never kills the run.

Stages know nothing of Ray. The runner wraps them (see vdata.pipelines.runner).
"""
from __future__ import annotations

import json
import os
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

from pydantic import BaseModel, ConfigDict, Field

from vdata.schemas import records as R

_TEACHER_LOCK = threading.Lock()


class Resources(BaseModel):
    """What one worker of a stage needs. `concurrency` is the actor-pool size (or max parallel tasks)."""

    model_config = ConfigDict(extra="forbid")
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    concurrency: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    actors: bool | None = None  # None: the stage's default (model stages use actor pools)
    # batches one actor works on at once, in threads; None: 4 for a stage that only waits on teachers
    # served over HTTP (Stage.concurrent_batches), else 1: one actor would otherwise send a teacher one
    # video's requests at a time
    batches_per_actor: int | None = Field(None, ge=1)


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resources: Resources = Field(default_factory=Resources)


@dataclass
class RunContext:
    """What every worker of a run may know: where to write, which teachers exist. Must pickle."""

    output_dir: str
    run_id: str = ""
    work_dir: str = ""            # scratch shared by workers (clip files, HF bytes)
    teachers: dict = field(default_factory=dict)   # name -> teacher config (plain dict)
    cache_dir: str = ""
    storage: dict = field(default_factory=dict)   # fsspec options per protocol (media/storage.configure)


@dataclass
class Reject:
    """A row that a stage could not or would not keep."""

    row: dict
    reason: str          # short stable code, e.g. "too_dark", "unreadable"
    message: str         # for humans: what and why, with the numbers
    detail: dict = field(default_factory=dict)


class Stage:
    name: ClassVar[str]
    # Bumped when the stage's results for the same config and input change (a fix): part of the stage's hash, so
    # results cached or committed by an older vdata are computed again, and so is every stage after it.
    version: ClassVar[int] = 1
    Config: ClassVar[type[StageConfig]] = StageConfig
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()
    drops: ClassVar[tuple[str, ...]] = ()
    default_resources: ClassVar[Resources] = Resources()
    uses_actors: ClassVar[bool] = False   # default for resources.actors
    # config fields naming a model the stage loads (local dir, `package:`, hub id): checked before Ray starts
    HUB_MODEL_FIELDS: ClassVar[tuple[str, ...]] = ()
    # process_batch keeps no per-batch state on the stage, so one actor may run batches in threads
    concurrent_batches: ClassVar[bool] = False
    is_filter: ClassVar[bool] = False
    # Row-wise stages whose results are worth keeping across config changes (decode-heavy ones).
    cache_results: ClassVar[bool] = False
    # A column whose equal values must arrive together in one batch (e.g. every clip of a video for a
    # video-level step). The runner groups the stream by it before the stage: a shuffle barrier.
    group_by: ClassVar[str | None] = None
    # Stages that decode frames set this. An audio-only input (probe's `has_video: False`) reaching such
    # a stage is rejected `no_video_stream` by the runner before the stage sees it; every other stage
    # (probe, asr, text stages) takes audio-only inputs as they are.
    needs_video: ClassVar[bool] = False

    def __init__(self, config: StageConfig | dict | None = None, ctx: RunContext | None = None, **settings: Any):
        """`Stage(config, ctx)` as the runner builds it, or `ShotsStage(min_len_s=2)` in Python code
        (settings validated by the stage's Config; a context with no output directory)."""
        if config is None or isinstance(config, dict):
            config = self.Config.model_validate({**(config or {}), **settings})
        elif settings:
            raise TypeError(f"{type(self).__name__}: give a config object or settings, not both")
        self.config = config
        self.ctx = ctx if ctx is not None else RunContext(output_dir="")

    # --- planning ---
    @classmethod
    def output_columns(cls, input_columns: Iterable[str]) -> list[str]:
        cols = [c for c in input_columns if c not in cls.drops]
        return cols + [c for c in cls.writes if c not in cols]

    @classmethod
    def grouping(cls, config: StageConfig) -> str | None:
        """The column to group by for this config (`group_by`, unless a config setting such as
        `scope: video` asks for whole videos)."""
        if getattr(config, "scope", None) == "video":
            return R.SOURCE_URI
        return cls.group_by

    def resources(self) -> Resources:
        merged = self.default_resources.model_dump()
        merged.update(self.config.resources.model_dump(exclude_unset=True))
        res = Resources(**merged)
        if res.actors is None:
            res.actors = self.uses_actors
        return res

    def teacher_plan(self, frames_per_clip: int, frame_hw: tuple[int, int]) -> list[dict]:
        """What this stage would ask its teachers per input row, for `vdata plan`'s spend estimate:
        [{teacher, requests_per_row, prompt_tokens, completion_tokens}] (tokens per request).
        Stages without teachers return []; the table `teachers.spend.SPEND_BY_STAGE` holds the estimates."""
        from vdata.teachers.spend import SPEND_BY_STAGE

        estimate = SPEND_BY_STAGE.get(self.name)
        return estimate(self.config, frames_per_clip, frame_hw) if estimate else []

    def describe(self) -> str:
        """One line for `vdata plan`: the settings that matter."""
        return json.dumps(self.config.model_dump(exclude={"resources"}, mode="json"), sort_keys=True)

    @classmethod
    def fetch(cls, config: StageConfig) -> None:
        """Check or download what `setup` would fetch from a model hub, in the driver before Ray and the
        teachers start (`planning.fetch_assets`); raise ValueError("<config key>: why") when it cannot be had.
        By default the config fields in HUB_MODEL_FIELDS (model ids: a local directory, `package:`, a hub id)."""
        from vdata.teachers.packaged import hub_model_problem

        for key in cls.HUB_MODEL_FIELDS:   # dotted for a sub-config's field: "multi_teacher.similarity_model"
            value = config
            for part in key.split("."):
                value = getattr(value, part, None)
            problem = hub_model_problem(value)
            if problem:
                raise ValueError(f"{key}: {problem}")

    # --- execution ---
    def setup(self) -> None:
        """Expensive, once per worker."""

    def teacher(self, name: str):
        """The run's teacher `name` (from the config's `teachers:`), built once per worker.

        Requests go through the run's request cache (`<output>/_cache/teachers`), so a resumed or
        repeated build never pays for the same request twice.
        """
        teachers = self.__dict__.setdefault("_teachers", {})
        with _TEACHER_LOCK:   # batches in threads (resources.batches_per_actor) share one client per teacher
            return teachers[name] if name in teachers else self._build_teacher(name, teachers)

    def _build_teacher(self, name: str, teachers: dict):
        if name not in (self.ctx.teachers or {}):
            from vdata.schemas.config import ConfigError

            raise ConfigError(f"stages.{self.name}.teacher: no teacher named {name!r} under teachers: "
                              f"(defined: {sorted(self.ctx.teachers or {}) or 'none'})")
        from vdata.teachers import build_teacher

        cache = os.path.join(self.ctx.cache_dir, "teachers") if self.ctx.cache_dir else None
        teachers[name] = build_teacher(name, self.ctx.teachers[name], cache_dir=cache, in_process=True)
        return teachers[name]

    @property
    def counters(self) -> Counter:
        """Counts a stage keeps about its work (e.g. generate's clue truncations); the runner sums them
        per stage into the manifest (`stages[].counters`). Kept per thread: a batch runs in one thread, so
        its counts are reported with it even while the actor runs other batches."""
        return self.__dict__.setdefault("_counters", {}).setdefault(threading.get_ident(), Counter())

    def take_counters(self) -> dict[str, int]:
        """The counts this thread gathered since its last call (reported after every batch), then reset."""
        counters = self.__dict__.get("_counters", {}).pop(threading.get_ident(), None)
        return {k: v for k, v in counters.items() if v} if counters else {}

    def refused_teacher(self):
        """A teacher of this worker whose server refused it outright (`Teacher.refused`), or None."""
        return next((t for t in self.__dict__.get("_teachers", {}).values() if getattr(t, "refused", None)), None)

    def teacher_stats(self) -> dict[str, dict]:
        """Cumulative accounting of the teachers this worker built (reported after every batch)."""
        return {name: t.stats() for name, t in self.__dict__.get("_teachers", {}).items()}

    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        """Default: rows one at a time, each isolated so one bad row cannot spoil the batch."""
        out: list[dict | Reject] = []
        for row in rows:
            try:
                result = self.process_row(row)
            except Exception as e:  # errors are values
                result = self.error_reject(row, e)
            if result is None:
                continue
            if isinstance(result, list):
                out.extend(result)
            else:
                out.append(result)
        return out

    def process_row(self, row: dict) -> dict | list[dict] | Reject | None:
        raise NotImplementedError

    def reject(self, row: dict, reason: str, message: str, **detail: Any) -> Reject:
        return Reject(row, reason, message, detail)

    def teacher_reject(self, row: dict, reason: str, message: str, results, **detail: Any) -> Reject:
        """A reject for failed teacher call(s) (`results`: the TeacherResult, or every attempt's). When a
        failure may pass on its own (a timeout, 5xx, 429, a lost connection), the reject is marked so
        that the build's next run redoes its video; the answers it did receive come from the cache."""
        if any(r.transient for r in (results if isinstance(results, (list, tuple)) else [results])):
            detail[R.RETRY_ON_RESUME] = True
        return Reject(row, reason, message, detail)

    def error_reject(self, row: dict, exc: BaseException) -> Reject:
        from vdata.media import MediaError

        if isinstance(exc, MediaError):
            return Reject(row, exc.reason, exc.message, dict(getattr(exc, "detail", None) or {}))
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        # An unexpected failure is vdata's, not a verdict on the input: like the stage cache, which does not
        # keep it, the next run of the build redoes the video (with a fixed vdata, say).
        return Reject(row, "error", f"{self.name} failed: {tb}",
                      {"traceback": traceback.format_exc(limit=6), R.RETRY_ON_RESUME: True})


def reject_row(stage: str, rej: Reject) -> dict:
    """A Reject as an in-flight row: the original columns plus the reject markers."""
    row = dict(rej.row)
    row[R.REJECT_STAGE] = stage
    row[R.REJECT_REASON] = rej.reason
    row[R.REJECT_MESSAGE] = rej.message
    row[R.REJECT_DETAIL] = json.dumps(rej.detail, default=str, sort_keys=True) if rej.detail else None
    return row
