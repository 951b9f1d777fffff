"""Planning: config → the checked stage chain, before anything runs (`vdata validate`, `vdata plan`,
and the first thing `vdata build` does).

`preflight()` finds every problem that needs no Ray: stage order (every column a stage reads is
written upstream), teachers (a name that exists, a kind that fits what the stage sends), inputs (exist,
match files). `plan_text()` is what `vdata plan` prints: stages, workers, teachers, spend estimates.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import pyarrow as pa

from vdata.media import storage as S
from vdata.schemas import records as R
from vdata.schemas.annotation_formats import FOLDER_FORMATS
from vdata.schemas.config import BuildConfig, ConfigError
from vdata.schemas.storage import fsspec_options
from vdata.schemas.secrets import redact
from vdata.stages import stage_class
from vdata.stages.base import Resources, RunContext

from .input_checks import input_problems


@dataclass
class StagePlan:
    index: int
    name: str
    config: object
    resources: Resources
    input_columns: list[str]
    output_columns: list[str]
    config_hash: str
    description: str

    @property
    def out_schema(self) -> pa.Schema:
        return R.schema_for(list(self.output_columns) + list(R.INTERNAL_COLUMNS))

    @property
    def in_level(self) -> str:
        return level_of(self.input_columns)

    @property
    def out_level(self) -> str:
        return level_of(self.output_columns)


def level_of(columns) -> str:
    """What one row of a table with these columns is: a sample, a clip or a video."""
    cols = set(columns)
    return "samples" if R.SAMPLE_ID in cols else "clips" if R.CLIP_ID in cols else "videos"


@dataclass
class Plan:
    config: BuildConfig
    output_dir: str
    stages: list[StagePlan]
    final_columns: list[str]
    # each path / glob / manifest input's rows as preflight listed them (input index -> rows): the build's
    # ingest takes them instead of listing a large input again (discover pops them)
    listed: dict[int, list[dict]] = field(default_factory=dict)

    @property
    def level(self) -> str:
        return level_of(self.final_columns)

    @property
    def data_dir(self) -> str:
        return S.join(self.output_dir, self.level)

    @property
    def rejects_dir(self) -> str:
        return S.join(self.output_dir, "rejects")

    @property
    def local_dir(self) -> str:
        """Where this machine keeps the run's caches, scratch and logs: the output folder itself, or
        for an output URL a local folder (see remote.py for why caches stay local)."""
        from .remote import local_root

        if S.is_remote(self.output_dir):
            configured = self.config.storage.local_root
            return local_root(self.output_dir, self.config.resolve(configured) if configured else None)
        return self.output_dir

    @property
    def clips_schema(self) -> pa.Schema | None:
        """The clips table's schema (see R.CLIPS_TABLE): a sample build with frames stores them once per
        clip there, not on every sample row; None for other builds."""
        if self.level != "samples" or not any(c in self.final_columns for c in R.CLIPS_TABLE_PAYLOAD):
            return None
        return R.data_schema([c for c in R.CLIPS_TABLE_COLUMNS if c in self.final_columns])

    @property
    def clips_dir(self) -> str | None:
        return S.join(self.output_dir, R.CLIPS_TABLE) if self.clips_schema is not None else None

    @property
    def data_schema(self) -> pa.Schema:
        moved = R.CLIPS_TABLE_PAYLOAD if self.clips_schema is not None else ()
        return R.data_schema([c for c in self.final_columns if c not in moved])


def make_plan(cfg: BuildConfig) -> Plan:
    """The stage chain, checked without running anything: every column a stage reads is written
    upstream, and every teacher a stage names exists and fits what the stage sends."""
    cols = list(R.INGEST_COLUMNS)
    stages, problems = [], []
    hashes = cfg.stage_hashes()
    ctx = RunContext(output_dir="")
    teachers = teacher_configs(cfg)
    for i, (at, (name, scfg)) in enumerate(zip(cfg.stage_positions, cfg.stage_specs)):
        cls = stage_class(name)
        stage = cls(scfg, ctx)
        missing = [c for c in stage.reads if c not in cols]   # the stage's: a setting may change what it reads
        if missing:
            problems.append(f"stages[{at}].{name}: needs columns {missing} that no earlier stage writes "
                            f"(order the stages so that their producers come first)")
        out = cls.output_columns(cols)
        problems += _teacher_problems(at, stage, teachers)
        res = stage.resources()
        if res.batches_per_actor is None:
            res.batches_per_actor = _batches_per_actor(stage, res, teachers)
        stages.append(StagePlan(i, name, scfg, res, cols, out, hashes[i], stage.describe()))
        cols = out
    if teachers:   # managed servers start on this machine: a model path of theirs must be here
        from vdata.teachers.model_paths import missing_model_problems
        problems += missing_model_problems(teachers)
    problems += export_problems(cfg, cols)
    if problems:
        raise ConfigError(redact("\n  ".join(problems) if len(problems) == 1 else
                                 "invalid config:\n  " + "\n  ".join(problems), cfg.secrets))
    return Plan(cfg, cfg.resolve(cfg.output.dir), stages, cols)


# the formats whose records are instructions: they carry samples, or the caption / dense events of clips
TEXT_EXPORTS = ("llava", "sharegpt", "swift", "internvl", "lmms-eval", "vlmevalkit")


def export_problems(cfg: BuildConfig, columns: list[str]) -> list[str]:
    """`output.exports` that the stage chain can never feed: an instruction format on a build whose rows
    carry no text. Found here, the build is not run to end in "nothing to export" and status 0."""
    level = level_of(columns)
    has_text = level == "samples" or (level == "clips" and (R.CAPTION in columns or R.DENSE_EVENTS in columns))
    return [f"output.exports[{i}].format: {spec.format} exports samples, or the captions of clips, and this "
            f"build's stages make {level} rows with no caption or dense events (add a caption or generate "
            f"stage, or export `format: parquet`)"
            for i, spec in enumerate(cfg.output.exports) if spec.format in TEXT_EXPORTS and not has_text]


def teacher_configs(cfg: BuildConfig) -> dict:
    """The `teachers:` entries as their typed models (parse_config has already validated them)."""
    if not cfg.teachers:   # the teacher config models (pydantic) load only for a build that has teachers
        return {}
    from vdata.teachers.config import parse_teacher_config

    return {name: parse_teacher_config(raw) for name, raw in cfg.teachers.items()}


def _batches_per_actor(stage, res, teachers: dict) -> int:
    """`resources.batches_per_actor` left to vdata: 4 for an actor pool whose stage keeps no per-batch state
    and only waits on teachers served over HTTP (the server batches what several threads send), else 1.
    One batch at a time, the quickstart's video_caption sent its writer one video's request at a time."""
    names = [name for _, name in stage_teacher_refs(stage)]
    http = bool(names) and all(getattr(teachers.get(n), "backend", None) in ("openai", "managed") for n in names)
    return 4 if res.actors and type(stage).concurrent_batches and http else 1


def stage_teacher_refs(stage) -> list[tuple[str, str]]:
    """(config key, teacher name) for every teacher a stage's config names: the stage's own
    `teacher_refs()` where it has one (several teachers), else its `teacher` setting."""
    refs = getattr(stage, "teacher_refs", None)
    if callable(refs):
        return list(refs())
    name = getattr(stage.config, "teacher", None)
    return [("teacher", name)] if isinstance(name, str) and name else []


def _teacher_problems(index: int, stage, teachers: dict) -> list[str]:
    """Unknown teacher names, and text-only teachers for stages that send frames (a stage sends frames
    when it reads the frames column, unless its `use_frames` setting says otherwise)."""
    out = []
    sends_images = bool(getattr(stage.config, "use_frames", R.FRAMES in type(stage).reads))
    for key, name in stage_teacher_refs(stage):
        where = f"stages[{index}].{stage.name}.{key}"
        if name not in teachers:
            out.append(f"{where}: unknown teacher {name!r}; defined: {', '.join(sorted(teachers)) or 'none'}")
            continue
        from vdata.teachers.config import takes_images   # here: a stage without teachers never needs it

        vision, why = takes_images(teachers[name])
        if sends_images and vision is False:
            out.append(f"{where}: teacher {name!r} is text-only ({why}), but {stage.name} sends frames; name a "
                       f"vision teacher, or set teachers.{name}.vision: true if its model does take images")
    return out


def storage_problems(cfg: BuildConfig) -> list[str]:
    """URLs whose filesystem is not installed or that cannot be used where they stand (an http(s)
    output or glob, a `format:` annotation file); sets this process's storage options from `storage:`."""
    S.configure(fsspec_options(cfg.storage))
    out = [f"storage.{protocol}.options: {problem}" for protocol in ("s3", "gcs", "hf")
           for problem in S.option_problems(protocol, getattr(cfg.storage, protocol).options)]
    try:
        S.check_writable(cfg.output.dir)
    except S.StorageError as e:
        out.append(f"output.dir: {e}")
    if not S.is_remote(cfg.output.dir) and os.path.isfile(cfg.resolve(cfg.output.dir)):
        out.append(f"output.dir: {cfg.resolve(cfg.output.dir)} is a file; name a folder")
    for i, spec in enumerate(cfg.input):
        for key in ("path", "glob", "manifest", "videos"):
            value = getattr(spec, key)
            if not (isinstance(value, str) and S.is_remote(value)):
                continue
            try:
                S.check_backend(value)
                needs_listing = key == "videos" or (key == "manifest" and spec.format is not None and (
                    spec.videos is None or spec.format in FOLDER_FORMATS))
                if needs_listing and S.scheme(value) in S.READ_ONLY:
                    raise S.StorageError(f"{value!r}: the videos of a dataset's annotation file are found by "
                                         f"listing their folder, and an http(s) folder cannot be listed; name "
                                         f"a local folder or a bucket (s3://, gs://, hf://)")
            except S.StorageError as e:
                out.append(f"input[{i}].{key}: {e}")
    return out


def preflight(cfg: BuildConfig, notes: list[str] | None = None, inputs_as_notes: bool = False) -> Plan:
    """Everything that can be checked before Ray starts: the plan (columns, teachers) and the inputs.
    Raises one ConfigError naming every problem by its key path; `notes` gets what is worth saying of a
    valid config (`input_problems`). `inputs_as_notes` (`vdata plan`, which runs nothing: a cluster's
    config planned where its shared storage is not mounted) makes the inputs' problems notes, not errors."""
    problems = storage_problems(cfg)
    if problems:   # listing an input through a filesystem that is not there would only add noise
        raise ConfigError(redact("\n  ".join(problems) if len(problems) == 1 else
                                 "invalid config:\n  " + "\n  ".join(problems), cfg.secrets))
    plan = None
    try:
        plan = make_plan(cfg)
    except ConfigError as e:
        text = str(e)
        problems += text.split("\n  ")[1:] if text.startswith("invalid config:") else [text]
    listed: dict[int, list[dict]] = {}
    found = input_problems(cfg, notes, listed)
    if inputs_as_notes and notes is not None:
        notes += [f"{p} (a build stops here)" for p in found]
    else:
        problems += found
    if problems:
        raise ConfigError(redact("\n  ".join(problems) if len(problems) == 1 else
                                 "invalid config:\n  " + "\n  ".join(problems), cfg.secrets))
    plan.listed = listed
    return plan


def with_later_problems(error: ConfigError) -> ConfigError:
    """`error` (parse_config's) with what preflight finds in the part of the config that validated:
    teacher names, inputs, storage, so that one round names every problem. The stage order is left out
    where a stage did not validate (its columns are missing from the chain), as are teacher references
    where a teacher did not."""
    cfg = error.partial
    if cfg is None:
        return error
    first = str(error).split("\n  ")[1:]
    try:
        preflight(cfg)
        return error
    except ConfigError as e:
        later = str(e).split("\n  ")[1:] if str(e).startswith("invalid config:") else [str(e)]
    except (ValueError, TypeError):   # a teacher that did not validate: named already; inputs still count
        later = input_problems(cfg)
    dropped = len(cfg.stage_specs) < len(cfg.stages)
    later = [p for p in later if p not in first and not (dropped and "that no earlier stage writes" in p)]
    return ConfigError(redact("invalid config:\n  " + "\n  ".join(first + later), cfg.secrets)) if later else error


def fetch_assets(plan: Plan) -> None:
    """Download what the stages load from a model hub (`Stage.fetch`), once, here in the driver: before Ray,
    the actor pools and the teacher servers start, and with the failing key named (a ConfigError)."""
    problems = []
    for s in plan.stages:
        try:
            stage_class(s.name).fetch(s.config)
        except ValueError as e:
            problems.append(f"stages[{s.index}].{s.name}.{e}")
    problems += endpoint_problems(plan.config)
    if problems:
        raise ConfigError(redact("\n  ".join(problems) if len(problems) == 1 else
                                 "cannot fetch what the stages need:\n  " + "\n  ".join(problems),
                                 plan.config.secrets))


def endpoint_problems(cfg: BuildConfig) -> list[str]:
    """OpenAI-compatible teachers whose `base_url` is not the API's root where a corrected one answers
    (teachers/endpoint.py): one GET each, side by side, before the build asks them anything."""
    if not any(raw.get("backend") == "openai" for raw in cfg.teachers.values()):
        return []   # before the imports: a build without such a teacher never loads them
    from concurrent.futures import ThreadPoolExecutor

    import logging

    from vdata.teachers.config import OpenAITeacherConfig
    from vdata.teachers.endpoint import probe

    remote = {name: OpenAITeacherConfig.model_validate(raw) for name, raw in cfg.teachers.items()
              if raw.get("backend") == "openai"}
    with ThreadPoolExecutor(len(remote)) as pool:
        found = dict(zip(remote, pool.map(probe, remote.values())))
    for name, (_, down) in found.items():
        if down:   # it may come up while the CPU stages run: said, not stopped
            logging.getLogger("vdata").warning(
                "teachers.%s: %s; its requests will be retried, and if it stays down every row it should answer "
                "becomes a teacher_connection reject (run the build again once it is up)", name, down)
    return [f"teachers.{name}.base_url: {problem}" for name, (problem, _) in found.items() if problem]


def _executor_text(ray) -> str:
    if ray.executor == "local":
        return "in process, no Ray (ray.executor: local)"
    if ray.address:
        return f"the Ray cluster at {ray.address}"
    if ray.executor == "ray":
        return "an embedded local Ray"
    return (f"in process for up to {ray.local_max_videos} video(s), else an embedded local Ray "
            "(ray.executor: auto)")


def export_dest(plan: Plan, spec) -> str:
    """Where an `output.exports` entry is written: its `dest` (from the config's folder), else exports/<format>."""
    return plan.config.resolve(spec.dest) if spec.dest else S.join(plan.output_dir, "exports", spec.format)


def plan_text(plan: Plan, cpus: int | None = None, gpus: int | None = None) -> str:
    """A human-readable plan; with a cluster shape, how many workers each stage would get."""
    lines = [f"pipeline {plan.config.name!r}  (config hash {plan.config.config_hash()})",
             "  executor: " + _executor_text(plan.config.ray)
             + (f"; cluster shape: {cpus or '?'} CPUs, {gpus or 0} GPUs" if cpus or gpus else ""),
             f"  0. ingest   {len(plan.config.input)} input spec(s) -> {', '.join(R.INGEST_COLUMNS)}"]
    for s in plan.stages:
        r = s.resources
        kind = "actor pool" if r.actors else "tasks"
        group_by = stage_class(s.name).grouping(s.config)
        if group_by:
            kind += f" on groups of equal {group_by}"
        conc = r.concurrency or "auto"
        if (cpus or gpus) and not r.concurrency:
            fits = []
            if r.num_gpus and gpus:
                fits.append(int(gpus // r.num_gpus))
            if r.num_cpus and cpus:
                fits.append(int(cpus // r.num_cpus))
            conc = f"up to {min(fits)}" if fits else "auto"
        new = [c for c in s.output_columns if c not in s.input_columns]
        lines.append(f"  {s.index + 1}. {s.name:<8} {kind}, {r.num_cpus:g} CPU {r.num_gpus:g} GPU per worker, "
                     f"workers: {conc}, batch: {r.batch_size or 'auto'}"
                     + (f", {threads} batches at once per worker" if (threads := r.batches_per_actor or 1) > 1 else ""))
        lines.append(f"       config: {s.description}")
        lines.append(f"       writes: {', '.join(new) or '-'}")
    fits = plan_fits(plan, cpus, gpus)
    if fits is not None:
        need_cpus, need_gpus, _ = resource_floor(plan)
        lines.append(f"  actor pools hold: {need_cpus:g} CPU, {need_gpus:g} GPU for the whole run -> "
                     + ("fits" if fits else "DOES NOT FIT: lower the stages' resources or use a bigger cluster"))
    lines += _teacher_lines(plan)
    spend = teacher_spend(plan)
    if spend:
        lines.append("  teacher spend estimate (model-free; per 1,000 rows reaching the stage, upper bounds):")
        for e in spend:
            lines.append(f"       {e['stage']:<13} -> {e['teacher']:<12} {e['requests'] * 1000:>10,.0f} requests  "
                         f"{e['prompt_tokens'] * 1000:>14,.0f} prompt tokens  "
                         f"<= {e['completion_tokens'] * 1000:>12,.0f} completion tokens  (per 1,000 {e['per']}s)")
    sp = plan.config.output.splits
    shares = ", ".join(f"{name} {share:.0%}" for name, share in (("validation", sp.validation), ("test", sp.test)) if share)
    lines.append(f"  output: {plan.data_dir}/*-<split>.parquet ({len(plan.data_schema)} columns), "
                 f"{plan.rejects_dir}/*.parquet, {plan.output_dir}/manifest.json, README.md (datasets.load_dataset)")
    if plan.clips_dir:
        lines.append(f"  frames: once per clip in {plan.clips_dir}/*-<split>.parquet; samples refer to them by clip_id")
    named = f"the split a video's source names ({' or '.join(sp.from_source)}), else " if sp.from_source else ""
    lines.append(f"  splits by video: {named}by hash (seed {sp.seed}): "
                 + (f"{shares}, the rest train" if shares else "all train"))
    for spec in plan.config.output.exports:   # written after the build
        lines.append(f"  export: {spec.format} -> {export_dest(plan, spec)} (times: {spec.time}, media: {spec.media})")
    return redact("\n".join(lines), plan.config.secrets)


def plan_fits(plan: Plan, cpus: int | None, gpus: int | None) -> bool | None:
    """Whether the actor pools fit a cluster of that shape; None when no shape was given."""
    if not (cpus or gpus):
        return None
    need_cpus, need_gpus, _ = resource_floor(plan)
    return need_cpus <= (cpus or 0) + 1e-9 and need_gpus <= (gpus or 0) + 1e-9


def _teacher_lines(plan: Plan) -> list[str]:
    """One line per teacher: backend, model, replicas, GPUs, whether it takes images, who uses it."""
    from vdata.teachers.config import ManagedTeacherConfig, takes_images, teacher_gpus

    teachers = teacher_configs(plan.config)
    if not teachers:
        return []
    users: dict[str, list[str]] = {}
    for s in plan.stages:
        for _, name in stage_teacher_refs(stage_class(s.name)(s.config, RunContext(output_dir=""))):
            users.setdefault(name, []).append(f"stages[{s.index}].{s.name}")
    lines = ["  teachers:"]
    for name, t in teachers.items():
        backend = f"managed {t.engine}" if isinstance(t, ManagedTeacherConfig) else t.backend
        replicas, gpus = teacher_gpus(t)
        vision = {True: "yes", False: "no", None: "unknown"}[takes_images(t)[0]]
        used = ", ".join(dict.fromkeys(users.get(name, []))) or "no stage (not started)"
        gpu_text = f"{gpus:g}" if isinstance(gpus, (int, float)) else "- (a remote endpoint)"
        lines.append(f"       {name:<12} {backend:<16} model {t.model}  replicas {replicas}  GPUs {gpu_text}  "
                     f"images: {vision}  used by: {used}")
    return lines


def resource_floor(plan: Plan) -> tuple[float, float, list[str]]:
    """CPUs and GPUs the actor pools hold for the whole run (Ray Data creates every pool's actors when
    the run starts). A cluster smaller than that cannot place them all; if a downstream pool takes the
    slots an upstream one needs, Ray Data waits forever (the run hangs instead of failing)."""
    cpus = gpus = 0.0
    held = []
    for s in plan.stages:
        r = s.resources
        if r.actors:
            n = r.concurrency or 1
            cpus += r.num_cpus * n
            gpus += r.num_gpus * n
            held.append(f"{s.name} {n}x{r.num_cpus:g} CPU" + (f" {r.num_gpus:g} GPU" if r.num_gpus else ""))
    return cpus, gpus, held


def check_fits(plan: Plan, cpus: float, gpus: float) -> None:
    need_cpus, need_gpus, held = resource_floor(plan)
    if need_cpus > cpus + 1e-9 or need_gpus > gpus + 1e-9:
        raise ConfigError(
            f"stages: the actor pools hold {need_cpus:g} CPU / {need_gpus:g} GPU for the whole run "
            f"({'; '.join(held)}), but the cluster has {cpus:g} CPU / {gpus:g} GPU: the run would wait forever. "
            f"Lower stages.<name>.resources.num_cpus for stages that mostly wait on a teacher server (0.25 is "
            f"plenty for an HTTP client), or give ray.num_cpus more (logical slots, not cores).")


def teacher_spend(plan: Plan) -> list[dict]:
    """Per stage and teacher: requests and tokens per input row, from the frames the stage will see."""
    frames, side = 16, 448
    out = []
    for s in plan.stages:
        if s.name == "frames":
            c = s.config
            frames = c.num_frames if c.mode == "uniform" else c.max_frames
            side = c.max_side
        stage = stage_class(s.name)(s.config, RunContext(output_dir=""))
        for e in stage.teacher_plan(frames, (round(side * 9 / 16), side)):
            out.append({"stage": s.name, "teacher": e["teacher"], "requests": e["requests_per_row"],
                        "prompt_tokens": e["requests_per_row"] * e["prompt_tokens"],
                        "completion_tokens": e["requests_per_row"] * e["completion_tokens"],
                        "per": e.get("per", "clip")})
    return out
