"""In-process execution for small builds: the same stages, caches, ledger and parts as the Ray path,
without Ray.

Why a second executor: starting an embedded Ray, its actor pools and the streaming plan costs a fixed
9–13 s per build on a 2-core machine (measured for issue 16: a probe+shots build of one 30 s video took
10–11 s through Ray against 1.3 s of direct stage calls), which dominates every small build, test and
first try. Small inputs gain nothing from Ray's parallelism that would pay for it.

How it runs: the videos stream through the stages, one thread per stage, as Ray Data streams blocks
through its operators: while the caption stage waits on its teacher for one video, the decoding stages
already work on the next ones and the text teacher answers the stages after caption for earlier ones,
so a teacher server sees the requests of several stages at once and batches them. A stage that only
waits on HTTP teachers works on `batches_per_actor` videos at once (4 by default), as each of its Ray
actors does; every other stage sees the videos one at a time and in order (one instance per stage).
Each stage passes its results on in video order, and the calling thread writes the finished videos' rows
as a part and commits it in the ledger, exactly as one Ray write task would (`execution.write_split_parts`):
once `output.rows_per_file` rows wait, or `COMMIT_EVERY_S` after the last commit, and when the build ends
or stops. A part per video made 1.45 rows per file on a folder of 314 short videos (outside check h16: 409
Parquet files and as many ledger entries for 630 rows); a kill loses at most the last seconds' videos. No stage groups wider than one video (`Stage.grouping` is a video's
source at most), so a video's rows are complete at every stage; cross-video indexes (dedup, semdedup)
fall back to their in-process form, which here is global because there is one stage instance per
stage. A kill leaves the finished videos committed and the next run resumes after them.
Measured on the quickstart (8 videos, two managed vLLM CPU teachers, 2 cores, same rows and rejects):
148.8 s one video at a time through every stage, 143.8 s with the stages side by side, 132.2 s with the
teacher stages also 4 videos wide.

`ray.executor` chooses: `ray` always uses Ray; `local` never does; `auto` (the default) runs in
process when no cluster address is given, this process has not already started or joined a Ray (a
notebook connected to a cluster keeps using it), and the build has at most `ray.local_max_videos` videos.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import pyarrow as pa

from vdata.media import storage as S
from vdata.schemas import records as R
from vdata.schemas.config import ray_address_problem
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


def address_problem(cfg, address: str | None) -> str | None:
    """What keeps this build from the Ray cluster it names (--address, else ray.address), found before
    anything starts: a cluster named beside `ray.executor: local` (which never uses Ray), or an address
    where nothing answers (`ray.init` would wait on it for minutes, saying nothing but in Ray's log)."""
    given = address or cfg.ray.address
    if not given:
        return None
    key = "--address" if address else "ray.address"
    if cfg.ray.executor == "local":   # only --address gets here: the config refuses ray.address beside it
        return (f"--address: {address!r} names a Ray cluster, but ray.executor is local (this process, no "
                "Ray): drop one of them")
    if given in ("auto", "local"):
        return None   # Ray's own lookup of a running cluster, or a new local one
    if problem := ray_address_problem(given):
        return f"{key}: {problem}"
    target = given.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=ADDRESS_TIMEOUT_S).close()
    except OSError as e:
        return (f"{key}: no Ray cluster answers at {target} ({e.strerror or type(e).__name__}); start one "
                "(`ray start --head`) or check the address")
    return None


ADDRESS_TIMEOUT_S = 5.0   # a cluster's head answers a TCP connect in milliseconds, even across regions


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


# Videos a stage may hold finished before the next stage takes them: enough for the decoding stages to
# run ahead while a teacher stage waits on its server, few enough that a long local build holds only a
# handful of videos' frames in memory at once.
_QUEUE_DEPTH = 2
_DONE = object()   # the end of the stream, passed down from stage to stage
# The longest finished videos wait before their commit: what a kill can lose (a video slower than this
# is committed as soon as it is done).
COMMIT_EVERY_S = 10.0


class _Stream:
    """The stage threads of one in-process build. The first error of any thread stops them all and is
    raised in the calling thread (an interrupt there, such as a teacher server that failed to start,
    stops them the same way)."""

    def __init__(self, stages: list, first: "queue.Queue"):
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.queues = [first] + [queue.Queue(_QUEUE_DEPTH) for _ in stages]
        self.threads = [threading.Thread(target=self._run, args=(entry, self.queues[i], self.queues[i + 1]),
                                         name=f"vdata-stage-{entry[0].name}", daemon=True)
                        for i, entry in enumerate(stages)]

    def _put(self, q: "queue.Queue", item) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, q: "queue.Queue"):
        while True:
            if self.error is not None:
                raise self.error
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():   # a thread's error is recorded before it stops the others
                    raise self.error or RuntimeError("the in-process build was stopped")

    def _run(self, entry, inbox: "queue.Queue", outbox: "queue.Queue") -> None:
        """Feed one stage its videos in order and pass its results on in the same order. A stage that only
        waits on teachers over HTTP works on `batches_per_actor` videos at once, in threads, as each of its
        Ray actors does (planning._batches_per_actor): its server then batches several videos' requests."""
        width = entry[0].resources.batches_per_actor or 1
        pending: deque = deque()   # (video index, future of its table), in video order; at most `width` at work
        finished = False
        try:
            while not self.stop.is_set():
                if pending and (finished or len(pending) >= width or pending[0][1].done()):
                    try:
                        table = pending[0][1].result(timeout=0.1)
                    except FutureTimeout:
                        continue
                    if not self._put(outbox, (pending.popleft()[0], table)):
                        return
                elif finished:
                    self._put(outbox, _DONE)
                    return
                else:
                    try:
                        item = inbox.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    if item is _DONE:
                        finished = True
                    elif width == 1:
                        done: Future = Future()
                        done.set_result(_run_stage(entry, item[1]))
                        pending.append((item[0], done))
                    else:
                        pending.append((item[0], _in_thread(entry, item[1])))
        except BaseException as e:  # handed to the calling thread, which raises it
            if self.error is None:
                self.error = e
            self.stop.set()

    def close(self) -> None:
        self.stop.set()
        # threads inside a long teacher request are not waited for beyond one shared 2 s: they are daemons,
        # their stages are closed next and their results dropped
        deadline = time.monotonic() + 2.0
        for t in self.threads:
            if t.ident is not None:   # a Ctrl-C while the threads were being started leaves some unstarted
                t.join(timeout=max(0.0, deadline - time.monotonic()))


def _in_thread(entry, table: pa.Table) -> Future:
    """`_run_stage` in a daemon thread of its own. Not a ThreadPoolExecutor: the interpreter waits for its
    threads at exit, so an interrupted build would hang on a teacher request still in flight."""
    future: Future = Future()

    def work():
        try:
            future.set_result(_run_stage(entry, table))
        except BaseException as e:  # raised by the stage thread that waits on this future
            future.set_exception(e)

    threading.Thread(target=work, name=f"vdata-stage-{entry[0].name}-video", daemon=True).start()
    return future


def _run_stage(entry, table: pa.Table) -> pa.Table:
    s, cls, stage, cache = entry
    parts = [X.run_stage_on_table(stage, batch, s.out_schema, s.index, X.LOCAL_COLLECTOR, cache)
             for batch in _batches(cls, s.config, table, s.resources.batch_size)]
    return pa.concat_tables(parts, promote_options="permissive") if parts else s.out_schema.empty_table()


def execute_in_process(plan, cfg, sources: list[dict], ctx, run_id: str, stats: LocalStats) -> list[dict]:
    """Run every source through the plan's stages in this process, one thread per stage (module
    docstring); returns the stats records."""
    from vdata.media.reader import set_decode_threads

    set_decode_threads(os.cpu_count() or 1)   # the one worker has the whole machine
    X.set_local_collector(stats.collector)
    schema = R.schema_for([*R.INGEST_COLUMNS, R.MASS])
    ledger = checkpoint.ledger_dir(plan.output_dir)
    for d in (plan.data_dir, plan.rejects_dir, ledger, plan.clips_dir):
        if d:
            S.makedirs(d)   # a URL output (s3://...) needs none; the driver configured its storage options
    stages = []
    stream = None
    try:
        for s in plan.stages:
            cls = stage_class(s.name)
            cache = (X.StageResultCache(ctx.cache_dir, s.name, s.config_hash, cls.writes)
                     if cls.cache_results and cfg.output.stage_cache else None)
            stage = X.get_stage((run_id, s.index), s.name, s.config, ctx)
            set_decode_threads(os.cpu_count() or 1)   # get_stage sized it for one Ray worker's CPUs
            stages.append((s, cls, stage, cache))
        S.configure(ctx.storage)   # once, before the threads: each stage call then finds it set
        first: queue.Queue = queue.Queue()
        for n, source in enumerate(sources):
            first.put((n, pa.Table.from_pylist([source], schema=schema)))
        first.put(_DONE)
        stream = _Stream(stages, first)
        for t in stream.threads:
            t.start()
        waiting: list[tuple[int, pa.Table]] = []   # finished videos not yet committed
        last = time.monotonic()

        def commit() -> None:
            if waiting:
                table = pa.concat_tables([t for _, t in waiting], promote_options="permissive")
                name = f"part-{run_id}-{waiting[0][0]:05d}-{uuid.uuid4().hex[:8]}"
                waiting.clear()
                X.write_split_parts(table, name, plan.data_dir, plan.rejects_dir, ledger, plan.data_schema,
                                    cfg.output.splits, clips_dir=plan.clips_dir, clips_schema=plan.clips_schema)

        try:
            while (item := stream.get(stream.queues[-1])) is not _DONE:
                waiting.append(item)
                if (sum(t.num_rows for _, t in waiting) >= cfg.output.rows_per_file
                        or time.monotonic() - last >= COMMIT_EVERY_S):
                    commit()
                    last = time.monotonic()
        finally:   # the end, Ctrl-C or a stage that stopped the build: the finished videos are committed
            commit()
        return stats.collector.dump()
    finally:
        if stream is not None:
            stream.close()
        X.set_local_collector(None)
        for _, _, stage, _ in stages:
            close = getattr(stage, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # a stage that fails to close must not hide the build's own result
                    pass
        X.forget_stages(run_id)
