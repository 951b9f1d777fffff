"""The output folder of a build: one build at a time, made ready to write or to resume, and the
measurements a run that did nothing must not wipe.

One build at a time: two `vdata build` processes writing to one folder would each commit every video
(the ledger counts a video's mass per run, not across runs), so every row would be there twice, and
their stage caches would rename each other's temporary files. The folder is held with an advisory lock
(`fcntl.flock` on `<output>/_build.lock`, released by the kernel when the process ends, even by kill -9;
NFS v4 carries it too).

An output URL (s3://, gs://) has no lock, so the build holds a lease there: an object
`<output>/_build.lock/<id>` naming its host, pid and start, renewed every LEASE_RENEW_S seconds and deleted
at the end. A build that finds another's lease is refused, naming it. A store has no create-if-absent
that every S3-compatible server honours, so the lease is written first and the folder listed after: a
build that then sees another live lease beside its own withdraws (two that start at the same moment may
both withdraw; never both write). A lease whose build is gone is taken over: at once when it names this
host and a pid that no longer runs (a kill -9 here), else once it has not been renewed for LEASE_STALE_S
seconds (a build killed on another machine; deleting the object takes it over sooner).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
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
LEASE_RENEW_S = 30     # how often a build at a URL renews its lease
LEASE_STALE_S = 300    # a lease not renewed for this long is a build that is gone: taken over
LEVELS = ("videos", "clips", "samples")
# what a run that found every video complete has not measured: kept from the manifest of the run that did
MEASURED = ("run_id", "stages", "stages_resumed", "wall_s", "timeline", "teachers", "stats_records", "rates")


def _cannot_write(out: str, e: OSError) -> ConfigError:
    return ConfigError(f"output.dir: cannot write {out} ({e.strerror or type(e).__name__}"
                       f"{': ' + str(e.filename) if getattr(e, 'filename', None) else ''})")


@contextmanager
def exclusive(out: str):
    """Hold the output folder `out` for this build (a lock, or a lease at a URL), or raise ConfigError naming
    the build that holds it."""
    if S.is_remote(out):
        with _lease(out):
            yield
        return
    if fcntl is None:
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


def _holder_text(lease: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lease.get("since") or 0))
    return f"pid {lease.get('pid')} on {lease.get('host')}, since {since}"


def _lease_is_gone(lease: dict, now: float) -> bool:
    """Whether the build a lease names has ended without deleting it (see the module docstring)."""
    if now - float(lease.get("renewed") or 0) > LEASE_STALE_S:
        return True
    if lease.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(lease.get("pid")), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, TypeError, ValueError, OverflowError):   # another user's process: alive
        return False
    return False


def _other_leases(folder: str, own: str | None) -> dict[str, dict]:
    """The leases in `folder` other than `own`, by URL; an unreadable one (half-deleted) is left out."""
    out = {}
    for name in S.listdir(folder):
        url = S.join(folder, name)
        if name == own:
            continue
        try:
            out[url] = json.loads(S.read_text(url))
        except (OSError, ValueError):
            continue
    return out


@contextmanager
def _lease(out: str):
    """Hold a lease on the output URL `out` (see the module docstring); a store that cannot be reached is
    output.dir's problem, said in one line."""
    folder = S.join(out, LOCK_NAME)
    name = uuid.uuid4().hex
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "id": name}
    try:
        for url, lease in _other_leases(folder, None).items():   # before writing ours: refuse, or take over
            if not _lease_is_gone(lease, time.time()):
                raise _held(out, url, lease)
            S.remove(url)
        S.write_text(S.join(folder, name), json.dumps({**mine, "renewed": time.time()}))
        rivals = {u: x for u, x in _other_leases(folder, name).items() if not _lease_is_gone(x, time.time())}
        if rivals:   # another build wrote its lease while this one did: neither is sure to be alone
            S.remove(S.join(folder, name))
            raise _held(out, *next(iter(rivals.items())))
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"output.dir: cannot use {out} ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(S.join(folder, name), mine, stop), name="vdata-lease",
                               daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        try:
            S.remove(S.join(folder, name))
        except Exception:   # gone with the network: it goes stale, and the next build takes it over
            pass


def _renew(url: str, lease: dict, stop: threading.Event) -> None:
    while not stop.wait(LEASE_RENEW_S):
        try:
            S.write_text(url, json.dumps({**lease, "renewed": time.time()}))
        except Exception:   # a lost request: the next renewal comes well before the lease goes stale
            continue


def _held(out: str, url: str, lease: dict) -> ConfigError:
    return ConfigError(f"output.dir: {out} is being written by another vdata build ({_holder_text(lease)}); wait "
                       f"for it to finish, or give this build another output.dir (a build that is gone leaves its "
                       f"lease {url}: taken over once {LEASE_STALE_S // 60} minutes old, or delete it)")


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
    if not ran:   # what the earlier run measured, or nothing: this run's zeros would read as its counts
        kept = {k: v for k, v in manifest.items() if k not in MEASURED or k in ("run_id", "wall_s", "timeline")}
        return {**kept, **{k: earlier[k] for k in MEASURED if k in earlier}}
    before = {f"{s['stage']}#{s['index']}": s for s in (earlier.get("rates") or {}).get("stages") or []}
    same = {k for k, h in (manifest.get("stage_hashes") or {}).items() if (earlier.get("stage_hashes") or {}).get(k) == h}
    served = {f"{s['stage']}#{s['index']}" for s in manifest.get("stages") or []
              if s.get("rows_in") and s.get("cache_hits", 0) >= s["rows_in"]}
    rates = manifest.get("rates") or {}
    rates["stages"] = [before[key] if key in served & same and key in before else s
                       for s in rates.get("stages") or [] for key in [f"{s['stage']}#{s['index']}"]]
    return {**manifest, "rates": rates}
