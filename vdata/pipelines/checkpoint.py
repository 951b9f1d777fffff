"""Resume with exactly-once output: the output directory is its own checkpoint.

Every part file the sink writes (kept rows in `<level>/`, rejects in `rejects/`) is committed by a
ledger entry in `_ledger/` written after it, listing the mass (see `R.MASS`) it holds per source
video. On start:
1. parts without a ledger entry were cut off mid-commit: they are deleted (their rows are redone);
2. a video whose committed mass sums to 1 is complete: it is not fed to the pipeline again;
3. a video with some but not all of its rows committed (a crash between two part files) has those
   rows removed from their parts, so that redoing it cannot duplicate them;
4. when a run resumes, a video with a reject marked `retry_on_resume` (a teacher timeout, 5xx, 429 or
   lost connection: a failure that may have passed; or `error`, vdata itself failing, perhaps fixed
   since) is treated as partial too and redone, its rows removed first. The teacher replies it did get
   come from the request cache, paid once;
5. a complete video whose file changed since (replaced at the same path: its size or modification time,
   or an object's ETag, differs) is redone like a partial one, its rows and rejects removed first: the
   ledger keys videos by source_uri, which says nothing of what is at that path now. Each source's
   fingerprint (`<size>:<version>` of `storage.info`, a stat or HEAD, never a read: cheap over 10^5
   videos) is recorded in `_ledger/inputs.fingerprints` (JSON, written whole) for every video about to
   run, before it runs, and after any changed video's rows are gone: a kill at any point leaves either
   the old fingerprint (the change is seen again) or the new one with rows that are not yet complete
   (redone anyway). A source with no fingerprint (a directory an older vdata wrote) counts as unchanged
   and gets its present one, so an upgrade redoes nothing; a file that cannot be stat-ed (gone) keeps
   its rows.
`_state.json` records the stage hashes of the run that owns the directory; a run with a different
final hash does not resume (its earlier stages' work is still reused through the stage and request
caches under `_cache/`).

Why not Ray Data's own checkpointing (`ray.data.checkpoint.CheckpointConfig`, Ray 2.60): it records
the ids of rows written and filters input rows by them, so it needs an id column that is unique per
row and the same from read to write. A vdata pipeline fans out (one video → clips → samples) and drops
rows, so the input id (the video) is shared by many output rows that land in different write blocks:
the first block written would mark the video done and a crash before the second would lose its rows.
The ledger counts each video's mass instead, which says exactly when all of its rows are on disk, and it
lives in the output directory (no separate network-mounted checkpoint path to configure).

The output directory may be a URL (`s3://bucket/out`, see vdata/media/storage.py): parts, ledger
entries and `_state.json` then live in the bucket, and a re-run on any machine resumes from them. An
object PUT is atomic, so the only order that matters there too is part first, ledger entry second.
"""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from vdata.media import storage as S
from vdata.schemas import records as R

LEDGER = "_ledger"
STATE = "_state.json"
INPUTS = "inputs.fingerprints"   # see point 5 of the docstring
EPS = 1e-6


def ledger_dir(output_dir: str) -> str:
    return S.join(output_dir, LEDGER)


def read_state(output_dir: str) -> dict | None:
    try:
        return json.loads(S.read_text(S.join(output_dir, STATE)))
    except (OSError, ValueError):
        return None


def write_state(output_dir: str, state: dict) -> None:
    S.write_text(S.join(output_dir, STATE), json.dumps(state, indent=2))


def _ledgers(output_dir: str) -> dict[str, dict]:
    d = ledger_dir(output_dir)
    out = {}
    for name in sorted(S.listdir(d)):
        if name.endswith(".json"):
            entry = json.loads(S.read_text(S.join(d, name)))
            out[entry["part"]] = entry
    return out


def recover(output_dir: str, part_dirs: list[str], rejects_dir: str | None = None) -> tuple[set[str], dict]:
    """Repair the directory as described above; with `rejects_dir` (a run resuming), also redo the videos
    whose rejects there may pass on a retry. Returns (complete sources, repair counts)."""
    ledgers = _ledgers(output_dir)
    removed_parts = 0
    for d in part_dirs:
        for name in S.listdir(d):
            if name.endswith(".tmp") or (name.endswith(".parquet") and name not in ledgers):
                S.remove(S.join(d, name))
                removed_parts += 1
    for name in S.listdir(ledger_dir(output_dir)):
        if name.endswith(".tmp"):
            S.remove(S.join(ledger_dir(output_dir), name))
    total: dict[str, float] = {}
    for entry in ledgers.values():
        for src, m in entry["mass"].items():
            total[src] = total.get(src, 0.0) + m
    retried = _retryable_sources(rejects_dir, set(ledgers)) if rejects_dir else set()
    complete = {s for s, m in total.items() if m >= 1.0 - EPS} - retried
    partial = {s for s, m in total.items() if m < 1.0 - EPS} | (retried & set(total))
    rewritten = _drop(output_dir, part_dirs, ledgers, partial, rejects_dir)
    return complete, {"uncommitted_parts_removed": removed_parts, "parts_rewritten": rewritten,
                      "partial_sources_redone": len(partial - retried), "complete_sources": len(complete),
                      "retried_sources": len(retried & set(total))}


def _drop(output_dir: str, part_dirs: list[str], ledgers: dict[str, dict], sources: set[str],
          rejects_dir: str | None) -> int:
    """Remove every committed row and reject of `sources` from their parts, and their mass from the
    ledger entries, so that redoing them cannot duplicate a row; returns the parts rewritten."""
    rewritten = 0
    for part, entry in ledgers.items():
        drop = sources & set(entry["mass"])
        if not drop:
            continue
        for k, d in enumerate(part_dirs):
            path = S.join(d, part)
            if S.exists(path):
                table = S.read_parquet(path)
                keep = pc.invert(pc.is_in(table[R.SOURCE_URI], value_set=pa.array(sorted(drop), pa.string())))
                kept = table.filter(keep)
                if kept.num_rows:
                    S.write_parquet(kept, path, compression="zstd")
                else:   # a file of one empty row group fails `datasets.load_dataset` on the whole build
                    S.remove(path)
                # the counts the manifest, summary and progress add up follow the rewrite (they kept the
                # redone videos' rows, and a resumed build reported rows it had deleted)
                if k == 0 and d != rejects_dir:
                    entry["rows"] = kept.num_rows
                elif d == rejects_dir:
                    entry["rejects"] = kept.num_rows
        entry["mass"] = {s: m for s, m in entry["mass"].items() if s not in drop}
        record = S.join(ledger_dir(output_dir), part + ".json")
        if entry["mass"]:
            S.write_text(record, json.dumps(entry))
        else:   # every row of the part is being redone: the part is gone, and so is its record
            S.remove(record)
        rewritten += 1
    return rewritten


def retryable_rejects(rejects: pa.Table) -> pa.Array:
    """A mask over a rejects table: the rows marked `retry_on_resume` in their detail."""
    marker = json.dumps({R.RETRY_ON_RESUME: True})[1:-1]   # the detail's JSON is written with these separators
    return pc.fill_null(pc.match_substring(rejects["detail"], marker), False)


def count_retryable(rejects: pa.Table) -> int:
    return int(pc.sum(retryable_rejects(rejects)).as_py() or 0)


def _retryable_sources(rejects_dir: str, committed_parts: set[str]) -> set[str]:
    """Source videos with a committed reject that a retry may turn into rows."""
    out: set[str] = set()
    for name in S.listdir(rejects_dir):
        if name in committed_parts:
            table = S.read_parquet(S.join(rejects_dir, name), columns=["detail", R.SOURCE_URI])
            out.update(s for s in table.filter(retryable_rejects(table))[R.SOURCE_URI].to_pylist() if s)
    return out


def inputs_path(output_dir: str) -> str:
    # in `_ledger/` (rebuilt with it, and never a place to export to); not `.json`: read as no ledger entry
    return S.join(ledger_dir(output_dir), INPUTS)


def read_fingerprints(output_dir: str) -> dict[str, str]:
    try:
        return json.loads(S.read_text(inputs_path(output_dir)))["fingerprints"]
    except (OSError, ValueError, KeyError, TypeError):   # none yet: an older vdata's directory, or a new one
        return {}


def fingerprint(found: dict | Exception) -> str | None:
    """`<size>:<version>` of a file from its `storage.info` (version: mtime in ns, or an object's ETag or
    last modification): one stat or HEAD, never a read. None where it could not be had (gone, no
    permission, a URL without HEAD), and so never a redo."""
    return None if isinstance(found, Exception) else f"{found['size']}:{found['version']}"


def _fingerprints(inputs: list[dict], infos: dict[str, dict | Exception] | None = None) -> dict[str, str | None]:
    """The fingerprint of each input's source (its files', joined, where it names more than one)."""
    paths = [r[R.PATH] for r in inputs]
    infos = S.info_all(paths, infos)
    out: dict[str, list] = {}
    for r in inputs:
        out.setdefault(r[R.SOURCE_URI], []).append(fingerprint(infos[r[R.PATH]]))
    return {uri: None if None in fs else "|".join(fs) for uri, fs in out.items()}


def redo_changed(output_dir: str, part_dirs: list[str], rejects_dir: str | None, inputs: list[dict],
                 complete: set[str], repairs: dict, infos: dict[str, dict | Exception] | None = None
                 ) -> tuple[set[str], dict]:
    """Point 5 of the module docstring: the complete sources whose file changed since lose their rows and
    rejects, and are no longer complete; then the fingerprints of the sources about to run are recorded.
    Returns (complete sources, repair counts with `changed_sources_redone`)."""
    recorded = read_fingerprints(output_dir)
    now = _fingerprints(inputs, infos)
    changed = {u for u in complete & set(recorded) if now.get(u) is not None and now[u] != recorded[u]}
    rewritten = _drop(output_dir, part_dirs, _ledgers(output_dir), changed, rejects_dir) if changed else 0
    complete = complete - changed
    # written after the drop: a kill between the two leaves the old fingerprint, and the next run drops
    # again; written before the drop, it would take the stale rows for the new file's. Recorded: the sources
    # about to run, and complete ones without a fingerprint (an older vdata's), taken as unchanged from now
    merged = {**recorded, **{u: f for u, f in now.items()
                             if f is not None and (u not in complete or u not in recorded)}}
    if merged != recorded:
        S.makedirs(ledger_dir(output_dir))
        S.write_text(inputs_path(output_dir), json.dumps({"fingerprints": merged}))
    if not repairs:   # not resuming (prepare emptied the directory): nothing was repaired, nothing changed
        return complete, repairs
    return complete, {**repairs, "changed_sources_redone": len(changed), "complete_sources": len(complete),
                      "parts_rewritten": repairs["parts_rewritten"] + rewritten}
