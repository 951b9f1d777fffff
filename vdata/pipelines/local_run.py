"""In-process execution for small builds: the same stages, caches, ledger and parts as the Ray path,
without Ray.

Why a second executor: starting an embedded Ray, its actor pools and the streaming plan costs a fixed
9–13 s per build on a 2-core machine (measured for issue 16: a probe+shots build of one 30 s video took
10–11 s through Ray against 1.3 s of direct stage calls), which dominates every small build, test and
first try. Small inputs gain nothing from Ray's parallelism that would pay for it.

How it runs: one video at a time through every stage, then its rows are written as a part and
committed in the ledger, exactly as one Ray write task would (`execution.write_split_parts`). No stage
groups wider than one video (`Stage.grouping` is a video's source at most), so a video's rows are
complete at every stage; cross-video indexes (dedup, semdedup) fall back to their in-process form,
which here is global because there is one stage instance per stage. A kill leaves the finished videos
committed and the next run resumes after them.

`ray.executor` chooses: `ray` always uses Ray; `local` never does; `auto` (the default) runs in
process when no cluster address is given, this process has not already started or joined a Ray (a
notebook connected to a cluster keeps using it), and the build has at most `ray.local_max_videos` videos.
"""
from __future__ import annotations

import os
import sys
import uuid
from collections import defaultdict

import pyarrow as pa

from vdata.media import storage as S
from vdata.schemas import records as R
from vdata.stages import stage_class

from . import checkpoint
from . import execution as X


def use_in_process(cfg, address: str | None, n_sources: int) -> bool:
    """Whether this build runs without Ray (see the module docstring)."""
    mode = cfg.ray.executor
    if mode == "local":
        return True
    if mode == "ray" or address or cfg.ray.address:
        return False
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return False
    return n_sources <= cfg.ray.local_max_videos


class LocalStats:
    """The stats collector of the Ray path (`execution.StatsCollector`), called directly."""

    def __init__(self):
        self.collector = X.StatsCollector()

    def since(self, n: int) -> list[dict]:
        return self.collector.since(n)


def _batches(stage_cls, config, table: pa.Table, batch_size: int | None) -> list[pa.Table]:
    """The batches Ray would hand the stage: one per group for grouped stages, else `batch_size` rows."""
    if table.num_rows == 0:
        return []
    key = stage_cls.grouping(config)
    if key:
        groups: dict = defaultdict(list)
        for i, value in enumerate(table[key].to_pylist()):
            groups[value].append(i)
        return [table.take(pa.array(idx)) for idx in groups.values()]
    size = batch_size or table.num_rows
    return [table.slice(i, size) for i in range(0, table.num_rows, size)]


def execute_in_process(plan, cfg, sources: list[dict], ctx, run_id: str, stats: LocalStats) -> list[dict]:
    """Run every source through the plan's stages in this process; returns the stats records."""
    from vdata.media.reader import set_decode_threads

    set_decode_threads(os.cpu_count() or 1)   # the one worker has the whole machine
    X.set_local_collector(stats.collector)
    schema = R.schema_for([*R.INGEST_COLUMNS, R.MASS])
    ledger = checkpoint.ledger_dir(plan.output_dir)
    for d in (plan.data_dir, plan.rejects_dir, ledger, plan.clips_dir):
        if d:
            S.makedirs(d)   # a URL output (s3://...) needs none; the driver configured its storage options
    stages = []
    try:
        for s in plan.stages:
            cls = stage_class(s.name)
            cache = (X.StageResultCache(ctx.cache_dir, s.name, s.config_hash, cls.writes)
                     if cls.cache_results and cfg.output.stage_cache else None)
            stage = X.get_stage((run_id, s.index), s.name, s.config, ctx)
            set_decode_threads(os.cpu_count() or 1)   # get_stage sized it for one Ray worker's CPUs
            stages.append((s, cls, stage, cache))
        for n, source in enumerate(sources):
            table = pa.Table.from_pylist([source], schema=schema)
            for s, cls, stage, cache in stages:
                parts = [X.run_stage_on_table(stage, batch, s.out_schema, s.index, X.LOCAL_COLLECTOR, cache)
                         for batch in _batches(cls, s.config, table, s.resources.batch_size)]
                table = (pa.concat_tables(parts, promote_options="permissive") if parts
                         else s.out_schema.empty_table())
            name = f"part-{run_id}-{n:05d}-{uuid.uuid4().hex[:8]}"
            X.write_split_parts(table, name, plan.data_dir, plan.rejects_dir, ledger, plan.data_schema,
                                cfg.output.splits, clips_dir=plan.clips_dir, clips_schema=plan.clips_schema)
        return stats.collector.dump()
    finally:
        X.set_local_collector(None)
        for _, _, stage, _ in stages:
            close = getattr(stage, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # a stage that fails to close must not hide the build's own result
                    pass
        X.forget_stages(run_id)
