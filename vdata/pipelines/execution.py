"""Glue between stages and Ray Data: batch adapter, per-run stats actor, and the dataset sink.

A batch arrives as an Arrow table. Rows already rejected upstream pass through untouched; live rows
go to the stage; its results (rows or Rejects) leave as one table with the stage's declared output
schema plus the in-flight reject columns. The sink writes kept rows and rejects to separate Parquet
files in one pass, so nothing is decoded or computed twice to split them.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from vdata.media import storage as S
from vdata.schemas import records as R
from vdata.stages import stage_class
from vdata.stages.base import Reject, RunContext, reject_row
from vdata.teachers.types import TeacherRefusedError

from .stage_cache import StageResultCache
from .stage_start import StageStartError, find_start_error  # noqa: F401  (the runner reads it here)

STATS_ACTOR_PREFIX = "vdata-stats-"
_STAGE_CACHE: dict = {}   # per worker process: one set-up stage instance per (run, stage index)


def get_stage(key, name, config, ctx):
    stage = _STAGE_CACHE.get(key)
    if stage is None:
        stage = stage_class(name)(config, ctx)
        from vdata.media.reader import set_decode_threads

        # a worker decodes with as many threads as CPUs it was given (at least one)
        set_decode_threads(max(1, round(stage.resources().num_cpus)))
        try:
            stage.setup()
        except Exception as e:
            from vdata.schemas.config import ConfigError
            from vdata.teachers.managed import ServerStartError

            # those say what to fix in their own words (the CLI prints each); anything else names the stage
            if isinstance(e, (ConfigError, ServerStartError, TeacherRefusedError)):
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else "no detail"
            raise StageStartError(key[1], name, f"{type(e).__name__}: {first}") from e
        _STAGE_CACHE[key] = stage
    return stage


def _process(stage, rows: list[dict]) -> list:
    try:
        out = stage.process_batch(rows)
    except Exception as e:  # a batch-level failure: every row becomes a reject, the run goes on
        out = [stage.error_reject(r, e) for r in rows]
    # A server that refuses a teacher (its key, or its model: teachers.types.REFUSALS) would reject every row alike:
    # the build stops here, before these rows reach the stage cache or a committed part, so that a re-run with the
    # config fixed redoes them.
    refused = stage.refused_teacher()
    if refused is not None:
        raise TeacherRefusedError(refused.name, refused.refused[1], refused.refused[0])
    return out


def run_stage_on_table(stage, table: pa.Table, out_schema: pa.Schema, index: int, stats_actor_name: str | None,
                       cache: StageResultCache | None = None) -> pa.Table:
    t0 = time.time()
    S.configure(stage.ctx.storage)   # this worker's filesystems: the run's endpoint and keys (URL paths)
    rows = table.to_pylist()
    passthrough = [r for r in rows if r.get(R.REJECT_REASON) is not None]
    live = [r for r in rows if r.get(R.REJECT_REASON) is None]
    results: list = []
    work = live
    if stage.needs_video:
        results = [_audio_only_reject(stage, r) for r in live if r.get(R.HAS_VIDEO) is False]
        work = [r for r in live if r.get(R.HAS_VIDEO) is not False]
    hits = 0
    if work and cache is not None:
        todo = []
        for r in work:
            where = cache.path_for(r)
            cached = cache.get(r, where)
            if cached is None:
                todo.append((r, where))
            else:
                results.extend(cached)
                hits += 1
        for r, where in todo:   # row by row, so that each input's results can be stored under its key
            out = _process_local(stage, [r])
            cache.put(r, out, where)
            results.extend(out)
    elif work:
        results.extend(_process_local(stage, work))
    out_rows, reasons = [], Counter()
    for res in results:
        if isinstance(res, Reject):
            reasons[res.reason] += 1
            out_rows.append(reject_row(stage.name, res))
        else:
            out_rows.append(res)
    out_rows.extend(_conserve_mass(stage, live, out_rows, reasons))
    # how much of its videos this batch finished (rejected here) or passed on: the progress display's
    # "videos through every stage" is the last stage's mass out plus every stage's mass rejected
    mass_rejected = sum(r[R.MASS] for r in out_rows if r.get(R.REJECT_REASON) is not None)
    mass_out = sum(r[R.MASS] for r in out_rows if r.get(R.REJECT_REASON) is None)
    out_rows.extend(passthrough)
    out = pa.Table.from_pylist(out_rows, schema=out_schema)
    if stats_actor_name:
        _report(stats_actor_name, {
            "stage_index": index, "stage": stage.name, "rows_in": len(live),
            "rows_out": len(out_rows) - len(passthrough) - sum(reasons.values()),
            "rejects": dict(reasons), "cache_hits": hits, "teachers": _teacher_stats(stage),
            "mass_out": mass_out, "mass_rejected": mass_rejected,
            "counters": _counters(stage),
            "seconds": time.time() - t0, "t_end": time.time(), "pid": os.getpid(),
            "node": _node_id(),
        })
    return out


def _process_local(stage, rows: list[dict]) -> list:
    """`_process`, each remote video (an s3:// or http(s):// `path`) given to the stage as a local copy (decoders
    need a seekable file; storage.local_copy), its URL beside it (R.REMOTE_PATH) and put back in what it
    returns. A video that cannot be fetched is a `missing_file` reject, as a missing local file is at probe."""
    if not (R.PATH in stage.reads or stage.needs_video) or not any(S.is_remote(r.get(R.PATH) or "") for r in rows):
        return _process(stage, rows)
    cache_dir = os.path.join(stage.ctx.work_dir or os.path.join(os.path.expanduser("~"), ".cache", "vdata"), "remote-media")
    local, urls, failed = [], {}, []
    for r in rows:
        url = r.get(R.PATH) or ""
        if not S.is_remote(url):
            local.append(r)
            continue
        try:
            path = S.local_copy(url, cache_dir)
        except (OSError, ValueError) as e:
            failed.append(Reject(r, "missing_file", f"cannot fetch {url}: {type(e).__name__}: {e}", {R.PATH: url}))
            continue
        urls[path] = url
        local.append({**r, R.PATH: path, R.REMOTE_PATH: url})
    out = _process(stage, local) if local else []
    for row in (res.row if isinstance(res, Reject) else res for res in out):
        row.pop(R.REMOTE_PATH, None)
        if row.get(R.PATH) in urls:
            row[R.PATH] = urls[row[R.PATH]]
    return out + failed


def _audio_only_reject(stage, row: dict) -> Reject:
    """An audio-only input at a stage that decodes frames: rejected here, before the stage sees it."""
    codec, duration = row.get(R.AUDIO_CODEC) or "unknown", row.get(R.DURATION_S) or 0.0
    return Reject(row, "no_video_stream",
                  f"{stage.name} needs a video stream, but this input is audio-only ({codec} audio, {duration:.1f} s); "
                  f"audio-only inputs go only through stages that need no video (probe, asr, text stages)",
                  {"stage_needs_video": stage.name, R.AUDIO_CODEC: codec, R.DURATION_S: duration})


def _conserve_mass(stage, live: list[dict], out_rows: list[dict], reasons: Counter) -> list[dict]:
    """Give each output row its share of its video's input mass (see R.MASS).

    A video whose rows produced nothing in this batch would silently lose mass and never count as
    complete, so it gets a reject row instead: stages must say why they drop something.
    """
    mass_in: dict = {}
    first: dict = {}
    for r in live:
        key = r.get(R.SOURCE_URI)
        mass_in[key] = mass_in.get(key, 0.0) + (r.get(R.MASS) or 0.0)
        first.setdefault(key, r)
    count: Counter = Counter(r.get(R.SOURCE_URI) for r in out_rows)
    for r in out_rows:
        key = r.get(R.SOURCE_URI)
        if key not in mass_in:
            raise ValueError(f"stage {stage.name} produced a row for {key!r}, which was not in its input")
        r[R.MASS] = mass_in[key] / count[key]
    extra = []
    for key, mass in mass_in.items():
        if not count[key]:
            reasons["dropped"] += 1
            row = reject_row(stage.name, Reject(first[key], "dropped", f"{stage.name} returned nothing for these rows"))
            row[R.MASS] = mass
            extra.append(row)
    return extra


def _counters(stage) -> dict:
    try:
        return stage.take_counters()
    except Exception:
        return {}


def _teacher_stats(stage) -> dict:
    try:
        return stage.teacher_stats()
    except Exception:
        return {}


def _node_id() -> str | None:
    ray = sys.modules.get("ray")   # an in-process run never imports Ray (seconds) just to say it has none
    if ray is None or not ray.is_initialized():
        return None
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:
        return None


_ACTOR_HANDLES: dict = {}
LOCAL_COLLECTOR = "vdata-stats-in-process"   # the stats "actor name" of an in-process run (local_run.py)
_LOCAL: list = [None]


def set_local_collector(collector) -> None:
    """Records reported under LOCAL_COLLECTOR go to `collector` (a StatsCollector) directly."""
    _LOCAL[0] = collector


def forget_stages(run_id: str) -> None:
    """Drop the set-up stages of a finished in-process run (a Ray worker's die with the worker)."""
    for key in [k for k in _STAGE_CACHE if k[0] == run_id]:
        del _STAGE_CACHE[key]


_REPORT_TIMEOUT_S = 60.0
_REPORT_WARNED: list = []


def _report(actor_name: str, record: dict) -> None:
    if actor_name == LOCAL_COLLECTOR:
        if _LOCAL[0] is not None:
            _LOCAL[0].record(record)
        return
    try:
        import ray

        handle = _ACTOR_HANDLES.get(actor_name)
        if handle is None:
            handle = _ACTOR_HANDLES[actor_name] = ray.get_actor(actor_name)
        # Waited for (about a millisecond): fired and forgotten, a record still in flight when the last
        # write finishes is missing from the run's stats, and on a loaded machine that can be a whole stage.
        ray.get(handle.record.remote(record), timeout=_REPORT_TIMEOUT_S)
    except Exception as e:   # stats are never worth failing the data path for; say so, once per worker
        if not _REPORT_WARNED:
            _REPORT_WARNED.append(True)
            logging.getLogger("vdata").warning("stage stats not recorded (%s: %s); the report's counts may be short",
                                               type(e).__name__, e)


class StageTask:
    """Picklable callable for task-based stages; the set-up stage is cached per worker process."""

    def __init__(self, key, name, config, ctx: RunContext, out_schema, index, stats_actor_name, cache=None):
        self.args = (key, name, config, ctx)
        self.__name__ = f"StageTask[{name}]"   # Ray's map_groups names its wrapper after the callable
        self.out_schema, self.index, self.stats_actor_name, self.cache = out_schema, index, stats_actor_name, cache

    def __call__(self, table: pa.Table) -> pa.Table:
        stage = get_stage(*self.args)
        return run_stage_on_table(stage, table, self.out_schema, self.index, self.stats_actor_name, self.cache)


def actor_pool(res):
    """Ray Data's strategy for a stage's actor pool: `concurrency` actors (1 by default), each running
    `batches_per_actor` batches at once in threads (see Resources)."""
    import ray.data

    threads = res.batches_per_actor or 1
    if threads == 1:
        return ray.data.ActorPoolStrategy(size=res.concurrency or 1)
    return ray.data.ActorPoolStrategy(size=res.concurrency or 1, max_concurrent_calls_per_actor=threads,
                                      enable_true_multi_threading=True)


class StageActor:
    """Actor-pool wrapper: `setup()` runs once in the constructor (model stages)."""

    def __init__(self, key, name, config, ctx: RunContext, out_schema, index, stats_actor_name, cache=None):
        self.stage = get_stage(key, name, config, ctx)
        self.out_schema, self.index, self.stats_actor_name, self.cache = out_schema, index, stats_actor_name, cache

    def __call__(self, table: pa.Table) -> pa.Table:
        return run_stage_on_table(self.stage, table, self.out_schema, self.index, self.stats_actor_name, self.cache)


class StatsCollector:
    """A tiny Ray actor the workers report to: per-stage counters and a time series for the report."""

    def __init__(self):
        self.records: list[dict] = []

    def record(self, rec: dict) -> None:
        self.records.append(rec)

    def dump(self) -> list[dict]:
        return self.records

    def since(self, n: int) -> list[dict]:
        """The records after the first `n` (the driver's progress display polls with this)."""
        return self.records[n:]


def to_reject_records(rows: list[dict]) -> list[dict]:
    return [{
        "stage": r.get(R.REJECT_STAGE), "reason": r.get(R.REJECT_REASON), "message": r.get(R.REJECT_MESSAGE),
        "detail": r.get(R.REJECT_DETAIL), R.SOURCE_URI: r.get(R.SOURCE_URI), R.VIDEO_ID: r.get(R.VIDEO_ID),
        R.CLIP_ID: r.get(R.CLIP_ID), R.SAMPLE_ID: r.get(R.SAMPLE_ID), R.TASK: r.get(R.TASK),
        R.START_S: _seconds(r.get(R.START_S)), R.END_S: _seconds(r.get(R.END_S)),
    } for r in rows]


def _seconds(value) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def split_table(table: pa.Table, data_schema: pa.Schema) -> tuple[pa.Table, pa.Table]:
    import pyarrow.compute as pc

    if R.REJECT_REASON in table.column_names:
        is_rej = pc.is_valid(table[R.REJECT_REASON])
        kept = table.filter(pc.invert(is_rej))
        rejected = table.filter(is_rej)
    else:
        kept, rejected = table, table.slice(0, 0)
    kept = kept.select(data_schema.names).cast(data_schema)
    rej = pa.Table.from_pylist(to_reject_records(rejected.to_pylist()), schema=R.REJECT_SCHEMA)
    return kept, rej


def mass_by_source(table: pa.Table) -> dict:
    out: dict = {}
    for key, mass in zip(table.column(R.SOURCE_URI).to_pylist(), table.column(R.MASS).to_pylist()):
        out[key] = out.get(key, 0.0) + (mass or 0.0)
    return out


def write_ledger(ledger_dir: str, part_name: str, masses: dict, rows: int, rejects: int) -> None:
    S.write_text(S.join(ledger_dir, part_name + ".json"),
                 json.dumps({"part": part_name, "rows": rows, "rejects": rejects, "mass": masses}))


def write_driver_rejects(rejects_dir: str, ledger_dir: str, run_id: str, stage: str, rejects: list[Reject]) -> str:
    """Rejects decided on the driver before any worker runs (e.g. ingest's duplicate inputs), committed
    like a sink part: the part file, then its ledger entry, so that a resumed run counts them done."""
    for d in (rejects_dir, ledger_dir):
        S.makedirs(d)
    rows = [reject_row(stage, r) for r in rejects]
    table = pa.Table.from_pylist(to_reject_records(rows), schema=R.REJECT_SCHEMA)
    name = f"part-{run_id}-{stage}-{uuid.uuid4().hex[:8]}.parquet"
    S.write_parquet(table, S.join(rejects_dir, name), compression="zstd")
    masses: dict = {}
    for r in rows:
        masses[r[R.SOURCE_URI]] = masses.get(r[R.SOURCE_URI], 0.0) + 1.0
    write_ledger(ledger_dir, name, masses, 0, len(rows))
    return S.join(rejects_dir, name)


def write_split_parts(table: pa.Table, name: str, data_dir: str, rejects_dir: str, ledger_dir: str,
                      data_schema: pa.Schema, splits=None, clips_dir: str | None = None,
                      clips_schema: pa.Schema | None = None) -> dict:
    """Kept rows → one part per split, `<data_dir>/<name>-<split>.parquet` (a video's split is the one its
    source_meta names, else `splits.split_of(video_id)`, see SplitsConfig; every kept row is in `train`
    when `splits` is None), so that `datasets` loads a split by a glob; rejects →
    `<rejects_dir>/<name>.parquet`. Each part is committed by its own ledger entry holding the mass of its
    rows (see checkpoint.py), written after the part.

    With `clips_dir` (a sample build with frames, see R.CLIPS_TABLE), the frames of the kept rows' clips
    go once per clip to `<clips_dir>/<same part name>`, written before the sample part: the ledger entry
    of the part name commits both, and resume repairs both alike."""
    rejected = pc.is_valid(table[R.REJECT_REASON]) if R.REJECT_REASON in table.column_names else None
    if splits is None:
        labels = ["train"] * table.num_rows
    else:
        ids = table[R.VIDEO_ID].to_pylist() if R.VIDEO_ID in table.column_names else [None] * table.num_rows
        metas = table[R.SOURCE_META].to_pylist() if R.SOURCE_META in table.column_names else [None] * table.num_rows
        named: dict = {}   # source_meta text -> the split it names: a video's rows all carry the same text
        for meta in metas:
            if meta not in named:
                named[meta] = splits.named_split(meta)
        labels = [named[meta] or splits.split_of(v or uri)
                  for v, uri, meta in zip(ids, table[R.SOURCE_URI].to_pylist(), metas)]
    if rejected is not None:
        labels = [None if r else lab for lab, r in zip(labels, rejected.to_pylist())]
    out = {"rows": 0, "rejects": 0, "files": []}
    for label in dict.fromkeys(labels):
        part = table.filter(pa.array([lab == label for lab in labels], pa.bool_()))
        kept, rej = split_table(part, data_schema)
        part_name = f"{name}.parquet" if label is None else f"{name}-{label}.parquet"
        if label is not None and clips_dir is not None:
            from vdata.exporters.source import first_per_clip   # deferred: only a samples build writes clips

            clips, _ = split_table(part, clips_schema)
            S.write_parquet(first_per_clip(clips), S.join(clips_dir, part_name), compression="zstd")
        path = S.join(rejects_dir if label is None else data_dir, part_name)
        S.write_parquet(rej if label is None else kept, path, compression="zstd")
        write_ledger(ledger_dir, part_name, mass_by_source(part), kept.num_rows, rej.num_rows)
        out["rows"] += kept.num_rows
        out["rejects"] += rej.num_rows
        out["files"].append(path)
    return out


# A write commits what it holds, and the Ray path's writes wait for their rows: at `rows_per_file` (5000)
# a build of fewer rows committed once, at its very end, and a kill lost every finished video (outside check
# h16: a 310-video build killed at 65% redid them all). So a build writes in at least about this many parts.
COMMITS_PER_BUILD = 10


def rows_per_write(rows_per_file: int, videos: int) -> int:
    """The rows a Ray write waits for: `rows_per_file`, or fewer where the build has too few videos for
    COMMITS_PER_BUILD commits of that size (one row a video taken as the least a video gives)."""
    return max(1, min(rows_per_file, videos // COMMITS_PER_BUILD))


def make_sink(data_dir: str, rejects_dir: str, ledger_dir: str, data_schema: pa.Schema, rows_per_file: int, run_id: str,
              splits=None, storage_options: dict | None = None, clips_dir: str | None = None,
              clips_schema: pa.Schema | None = None):
    """`storage_options` (see storage.configure) travel with the sink to the write tasks, which
    may run on machines that share no disk with the driver: the parts go straight to the output URL."""
    from ray.data import Datasink

    class VdataSink(Datasink):
        """Kept rows → data_dir (one file per split), rejects → rejects_dir; per write task (≈ `rows_per_file`
        rows: the caller passes `rows_per_write`)."""

        def on_write_start(self, schema=None):
            for d in (data_dir, rejects_dir, ledger_dir, clips_dir):
                if d:
                    S.makedirs(d)

        def write(self, blocks, ctx):
            if storage_options is not None:
                S.configure(storage_options)
            for d in (data_dir, rejects_dir, ledger_dir, clips_dir):   # another node's disk, for a local output
                if d:
                    S.makedirs(d)
            tables = [b if isinstance(b, pa.Table) else pa.Table.from_pandas(b) for b in blocks]
            tables = [t for t in tables if t.num_rows]
            if not tables:
                return {"rows": 0, "rejects": 0, "files": []}
            table = pa.concat_tables(tables, promote_options="permissive")
            name = f"part-{run_id}-{ctx.task_idx:05d}-{uuid.uuid4().hex[:8]}"
            return write_split_parts(table, name, data_dir, rejects_dir, ledger_dir, data_schema, splits,
                                     clips_dir, clips_schema)

        def on_write_complete(self, write_result):
            self.results = list(write_result.write_returns)

        @property
        def min_rows_per_write(self):
            return rows_per_file

    return VdataSink()


def read_rejects(rejects_dir: str) -> pa.Table:
    files = sorted(S.join(rejects_dir, f) for f in S.listdir(rejects_dir) if f.endswith(".parquet"))
    if not files:
        return R.REJECT_SCHEMA.empty_table()
    return pa.concat_tables([S.read_parquet(f, schema=R.REJECT_SCHEMA) for f in files])


def summarize_rejects(table: pa.Table) -> dict:
    counts: Counter = Counter()
    for stage, reason in zip(table.column("stage").to_pylist(), table.column("reason").to_pylist()):
        counts[f"{stage}:{reason}"] += 1
    return dict(sorted(counts.items()))


def verification_counts(data_dir: str) -> dict:
    """Kept samples by `v_status` (verified / unverified / not_checked): how many were checked against
    evidence other than themselves. Empty when the build wrote no such column."""
    files = sorted(S.join(data_dir, f) for f in S.listdir(data_dir) if f.endswith(".parquet"))
    if files and S.is_remote(data_dir):
        fs, _ = S.filesystem(data_dir)
        dataset = pads.dataset([S.filesystem(f)[1] for f in files], format="parquet", filesystem=fs)
    else:
        dataset = pads.dataset(files, format="parquet") if files else None
    if dataset is None or R.V_STATUS not in dataset.schema.names:
        return {}
    counts = pc.value_counts(dataset.to_table(columns=[R.V_STATUS]).column(R.V_STATUS))
    return {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
