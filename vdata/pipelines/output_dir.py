"""The output folder of a build: one build at a time, made ready to write or to resume, and the
measurements a run that did nothing must not wipe.

One build at a time: two `vdata build` processes writing to one folder would each commit every video
(the ledger counts a video's mass per run, not across runs), so every row would be there twice, and
their stage caches would rename each other's temporary files. The folder is held with an advisory lock
(`fcntl.flock` on `<output>/_build.lock`, released by the kernel when the process ends, even by kill -9;
NFS v4 carries it too). An output URL (s3://, gs://) has no such lock: two builds there are the user's
to keep apart.
"""
from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager

from vdata.media import storage as S
from vdata.schemas.config import ConfigError

from . import checkpoint
from .planning import Plan

try:
    import fcntl
except ImportError:   # Windows: no advisory lock; one build per folder is then the user's to keep
    fcntl = None

LOCK_NAME = "_build.lock"
LEVELS = ("videos", "clips", "samples")
# what a run that found every video complete has not measured: kept from the manifest of the run that did
MEASURED = ("run_id", "stages", "wall_s", "timeline", "teachers", "stats_records", "rates")


def _cannot_write(out: str, e: OSError) -> ConfigError:
    return ConfigError(f"output.dir: cannot write {out} ({e.strerror or type(e).__name__}"
                       f"{': ' + str(e.filename) if getattr(e, 'filename', None) else ''})")


@contextmanager
def exclusive(out: str):
    """Hold the local output folder `out` for this build, or raise ConfigError naming the build that holds it."""
    if S.is_remote(out) or fcntl is None:
        yield
        return
    try:
        os.makedirs(out, exist_ok=True)
        handle = open(os.path.join(out, LOCK_NAME), "a+", encoding="utf-8")
    except OSError as e:
        raise _cannot_write(out, e) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConfigError(f"output.dir: {out} is being written by another vdata build ({holder}); wait for "
                              "it to finish, or give this build another output.dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare(plan: Plan, console) -> tuple[set[str], dict]:
    """Make the output directory ready; returns the sources already complete (resume) and the repairs
    made to resume (see `checkpoint.recover`). A bucket that cannot be reached (no credentials, no such
    bucket, no network) is said as output.dir's problem, whatever its client library raises."""
    try:
        return _prepare(plan, console)
    except ConfigError:
        raise
    except Exception as e:
        if not S.is_remote(plan.output_dir):
            raise
        raise ConfigError(f"output.dir: cannot use {plan.output_dir} ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None


def _prepare(plan: Plan, console) -> tuple[set[str], dict]:
    out = plan.output_dir
    cfg = plan.config
    level_dirs = [S.join(out, lv) for lv in LEVELS]
    state = checkpoint.read_state(out)
    hashes = cfg.stage_hashes() + [f"splits:{cfg.output.splits.model_dump_json()}"]   # rows are filed by split
    has_data = any(S.listdir(p) for p in level_dirs + [plan.rejects_dir])
    resumable = (cfg.output.mode == "resume" and state is not None and state.get("stage_hashes") == hashes)
    if cfg.output.mode == "error":
        held = [n for n in S.listdir(out) if n != LOCK_NAME] if S.exists(out) else []
        if held:
            raise ConfigError(f"output.dir: {out} is not empty ({', '.join(sorted(held)[:3])}"
                              f"{', ...' if len(held) > 3 else ''}); output.mode: error writes only to an empty "
                              "folder (set output.mode: resume or overwrite, or choose another folder)")
    if resumable:
        return checkpoint.recover(out, [d for d in (plan.data_dir, plan.clips_dir, plan.rejects_dir) if d],
                                  rejects_dir=plan.rejects_dir)
    if state is not None and has_data and cfg.output.mode == "resume":
        console.print("config changed since the last run in this directory: rebuilding "
                      "(cached stage results and teacher replies under _cache/ are reused)")
    for p in level_dirs + [plan.rejects_dir, checkpoint.ledger_dir(out)]:
        S.rmtree(p)
    try:
        S.makedirs(out)
        checkpoint.write_state(out, {"stage_hashes": hashes, "config_hash": cfg.config_hash(), "level": plan.level})
    except OSError as e:   # before any stage runs: said as the config's problem, not a traceback
        raise _cannot_write(out, e) from None
    return set(), {}


def earlier_manifest(out: str) -> dict | None:
    import json

    try:
        return json.loads(S.read_text(S.join(out, "manifest.json")))
    except (OSError, ValueError):
        return None


def keep_measurements(manifest: dict, earlier: dict | None, ran: bool) -> dict:
    """The manifest with what this run did not measure taken from the earlier run's: everything measured
    when nothing ran (a finished build run again), else the rate of each stage served wholly from the
    stage cache (its busy time is the cache's, not the stage's) where the earlier run ran the same stage.
    `vdata plan --videos` scales these rates."""
    if not earlier:
        return manifest
    if not ran:
        return {**manifest, **{k: earlier[k] for k in MEASURED if k in earlier}}
    before = {f"{s['stage']}#{s['index']}": s for s in (earlier.get("rates") or {}).get("stages") or []}
    same = {k for k, h in (manifest.get("stage_hashes") or {}).items() if (earlier.get("stage_hashes") or {}).get(k) == h}
    served = {f"{s['stage']}#{s['index']}" for s in manifest.get("stages") or []
              if s.get("rows_in") and s.get("cache_hits", 0) >= s["rows_in"]}
    rates = manifest.get("rates") or {}
    rates["stages"] = [before[key] if key in served & same and key in before else s
                       for s in rates.get("stages") or [] for key in [f"{s['stage']}#{s['index']}"]]
    return {**manifest, "rates": rates}
