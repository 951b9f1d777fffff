"""The Python API that `import vdata` exposes: the CLI's build and plan as functions, a pipeline built
from stage objects in code, and one stage run over a dataset you already hold.

    import vdata
    from vdata.stages.probe import ProbeStage
    from vdata.stages.shots import ShotsStage

    pipe = vdata.Pipeline([ProbeStage(), ShotsStage(min_len_s=1.0)], input="videos/", output_dir="out/demo")
    print(pipe.plan_text())
    result = pipe.build()                       # the same runner, checkpoint and rejects as `vdata build`
    clips, rejects = vdata.run_stage(ShotsStage(), some_dataset)   # ray.data.Dataset or datasets.Dataset

A `Pipeline` compiles to the same validated `BuildConfig` a YAML file gives (so a pipeline made in code
and its YAML twin have one config hash and share their caches); stages are resolved by their registered
name (`vdata.schemas.registry.STAGES`), which is how Ray workers find them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import yaml

from vdata.schemas import records as R
from vdata.schemas.config import BuildConfig, ConfigError, load_config, parse_config
from vdata.schemas.registry import STAGES, stage_class
from vdata.stages.base import Stage

from . import execution as X
from . import runner
from .planning import with_later_problems


def _stage_entry(stage: Any, index: int) -> dict:
    """One `stages:` entry, {name: settings}, from a Stage object or a {name: settings} mapping."""
    if isinstance(stage, dict) and len(stage) == 1:
        return dict(stage)
    if isinstance(stage, Stage):
        name = type(stage).name
        if name not in STAGES or stage_class(name) is not type(stage):
            raise ConfigError(f"stages[{index}]: {type(stage).__name__} is not a registered stage; add a line for it "
                              f"to vdata/schemas/registry.py (Ray workers find stages by name)")
        return {name: stage.config.model_dump(mode="json", exclude_unset=True)}
    raise ConfigError(f"stages[{index}]: expected a Stage object or a one-key mapping {{name: settings}}, "
                      f"got {type(stage).__name__}")


class Pipeline:
    """An ordered list of stages with its inputs and output folder, built in code instead of YAML."""

    def __init__(self, stages: list | None = None, *, input: str | list, output_dir: str, name: str = "vdata",
                 teachers: dict | None = None, **settings: Any):
        self.stages = list(stages or [])
        self.inputs = [input] if isinstance(input, (str, dict)) else list(input)
        self.output_dir, self.name, self.teachers, self.settings = output_dir, name, teachers or {}, settings

    def add(self, stage) -> "Pipeline":
        self.stages.append(stage)
        return self

    def to_dict(self) -> dict:
        """The config as a YAML file would hold it (`settings` go to its top level, e.g. `ray`, `license`)."""
        data: dict = {"name": self.name, **self.settings,
                      "input": [{"path": i} if isinstance(i, str) else dict(i) for i in self.inputs],
                      "stages": [_stage_entry(s, i) for i, s in enumerate(self.stages)]}
        data["output"] = {**data.get("output", {}), "dir": self.output_dir}
        if self.teachers:
            data["teachers"] = self.teachers
        return data

    def config(self) -> BuildConfig:
        data = self.to_dict()
        return parse_config(data, raw_text=yaml.safe_dump(data, sort_keys=False), base_dir=Path.cwd())

    def plan(self) -> runner.Plan:
        return runner.make_plan(self.config())

    def plan_text(self, cpus: int | None = None, gpus: int | None = None) -> str:
        return runner.plan_text(self.plan(), cpus=cpus, gpus=gpus)

    def build(self, **kwargs) -> runner.BuildResult:
        return runner.build(self.config(), **kwargs)


def _config(config) -> BuildConfig:
    if isinstance(config, Pipeline):
        return config.config()
    if isinstance(config, BuildConfig):
        return config
    try:
        return load_config(config)
    except ConfigError as e:   # every problem in one round, as `vdata build` reports them
        raise with_later_problems(e) from None


def plan(config) -> runner.Plan:
    """The checked plan of a config (a YAML path, a BuildConfig or a Pipeline); runs nothing."""
    return runner.make_plan(_config(config))


def build(config, **kwargs) -> runner.BuildResult:
    """Run a build, as `vdata build` does; keyword arguments go to the runner (address, progress, verbose, progress_every)."""
    return runner.build(_config(config), **kwargs)


# --- one stage over a dataset in hand ---------------------------------------------------------------

class StageOutput(NamedTuple):
    """What `run_stage` returns: the kept rows and the rejects, each the same kind of dataset as the input."""

    data: Any
    rejects: Any


def _in_flight_schema(stage: Stage, schema: pa.Schema) -> pa.Schema:
    """The stage's output schema: its declared columns typed by records.py, the caller's own columns
    (not vdata columns) carried through with their input types."""
    known = [c for c in schema.names if c in R.FIELD_TYPES and c not in R.INTERNAL_COLUMNS]
    out = R.schema_for(list(stage.output_columns(known)) + list(R.INTERNAL_COLUMNS))
    extra = [f for f in schema if f.name not in R.FIELD_TYPES and f.name not in stage.drops]
    return pa.schema(list(out) + extra)


def _run_batch(stage: Stage, table: pa.Table) -> pa.Table:
    missing = [c for c in stage.reads if c not in table.column_names]
    if missing:
        raise ValueError(f"run_stage: {stage.name} reads columns {missing} that the dataset lacks "
                         f"(it has {table.column_names})")
    if R.MASS not in table.column_names:
        table = table.append_column(R.MASS, pa.array([1.0] * table.num_rows, pa.float64()))
    return X.run_stage_on_table(stage, table, _in_flight_schema(stage, table.schema), 0, None)


def _kept(table: pa.Table) -> pa.Table:
    data_schema = pa.schema([f for f in table.schema if f.name not in R.INTERNAL_COLUMNS])
    return X.split_table(table, data_schema)[0]


def _rejects(table: pa.Table) -> pa.Table:
    return X.split_table(table, pa.schema([]))[1]


class _StageBatches:
    """Ray Data callable: `setup()` once per worker (per actor for actor stages, per task otherwise)."""

    def __init__(self, stage: Stage):
        self.stage, self.ready = stage, False
        self.__name__ = f"{type(self).__name__}[{stage.name}]"   # Ray's map_groups names its wrapper after it

    def __call__(self, table: pa.Table) -> pa.Table:
        if not self.ready:
            self.stage.setup()
            self.ready = True
        return _run_batch(self.stage, table)


def run_stage(stage: Stage, dataset) -> StageOutput:
    """Run one stage over a `ray.data.Dataset` or a Hugging Face `datasets.Dataset` of vdata rows.

    Returns `StageOutput(data, rejects)`, both the input's kind: `data` has the kept rows with the
    stage's columns added (columns vdata does not know pass through unchanged), `rejects` one row per
    dropped input with the stage, reason code and message (the build's `rejects/` schema). A Ray
    dataset is run lazily by Ray Data and materialised once, so the stage runs once for both parts.
    """
    kind = type(dataset).__module__.split(".")[0]
    if kind == "ray":
        import ray.data

        missing = [c for c in stage.reads if c not in (dataset.columns() or [])]
        if missing:
            raise ValueError(f"run_stage: {stage.name} reads columns {missing} that the dataset lacks")
        res = stage.resources()
        common: dict = dict(batch_format="pyarrow", num_cpus=res.num_cpus)
        if res.num_gpus:
            common["num_gpus"] = res.num_gpus
        compute = ray.data.ActorPoolStrategy(size=res.concurrency or 1) if res.actors else None
        fn = _StageBatches if res.actors else _StageBatches(stage)
        args = dict(fn_constructor_args=(stage,)) if res.actors else {}
        group_by = type(stage).grouping(stage.config)
        if group_by:   # every row with the same key in one batch, as the runner does
            out = dataset.groupby(group_by).map_groups(fn, compute=compute, **args, **common)
        else:
            out = dataset.map_batches(fn, compute=compute, batch_size=res.batch_size, **args, **common)
        out = out.materialize()
        return StageOutput(out.map_batches(_kept, batch_format="pyarrow"),
                           out.map_batches(_rejects, batch_format="pyarrow"))
    if kind == "datasets":
        import datasets

        stage.setup()
        table = _run_batch(stage, dataset.with_format("arrow")[:])
        return StageOutput(datasets.Dataset(_kept(table)), datasets.Dataset(_rejects(table)))
    raise TypeError(f"run_stage: expected a ray.data.Dataset or a datasets.Dataset, got {type(dataset).__name__}")
