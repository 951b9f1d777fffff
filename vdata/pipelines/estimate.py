"""Planning past one machine: what a build of N videos would cost on a cluster of C CPUs and G GPUs,
from the per-stage rates a finished build measured (its `manifest.json`).

The model, and why it is enough for a first estimate:
- every stage's work grows with the seconds of video it is fed (clips, frames and samples all do), so a
  stage's measured busy seconds per second of input video scale to any N x duration;
- a stage runs on as many workers as fit its per-worker resources and its `concurrency`; streaming
  overlaps the stages, so the processing span is the largest of: all the work over all the CPU slots,
  the slowest stage over its own workers (the bottleneck), and one video's path through every stage;
- start-up (Ray, teacher servers, listing) and the final write are fixed costs, measured, added once.
Teacher requests and tokens scale with the input seconds too (measured when the build used teachers,
else the stages' model-free per-row plan times the rows that reached each stage).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from vdata.schemas import records as R


@dataclass
class StageEstimate:
    name: str
    work_s: float          # busy worker-seconds for the whole input
    workers: float         # how many run at once on the cluster
    span_s: float          # work_s / workers: the stage alone
    cpus: float
    gpus: float


@dataclass
class Estimate:
    videos: int
    video_seconds: float
    wall_s: float
    startup_s: float
    cpu_hours: float
    gpu_hours: float
    bottleneck: str
    stages: list[StageEstimate] = field(default_factory=list)
    teacher_requests: float = 0.0
    teacher_prompt_tokens: float = 0.0
    teacher_completion_tokens: float = 0.0


MANIFEST_RECORDS = 2000   # per-batch records kept in manifest.json; more are merged (see compact_records)


def compact_records(records: list[dict], limit: int = MANIFEST_RECORDS) -> list[dict]:
    """The workers' per-batch records for manifest.json: as they are up to `limit`, else each worker's
    consecutive batches merged `k` at a time (counts and busy seconds summed, the last end kept, `batches`
    saying how many), so the report's curves and every total stay as measured. A 100k-video probe ran
    100k batches of one: 31 MB of manifest, where 2000 records draw the same throughput curve."""
    if len(records) <= limit:
        return records
    k = -(-len(records) // limit)
    groups: dict[tuple, list[dict]] = {}
    for r in sorted(records, key=lambda r: r.get("t_end") or 0.0):
        groups.setdefault((r.get("stage_index"), r.get("stage"), r.get("node"), r.get("pid")), []).append(r)
    out = []
    for batch_records in groups.values():
        for i in range(0, len(batch_records), k):
            chunk = batch_records[i:i + k]
            merged = {**chunk[-1], "batches": sum(r.get("batches", 1) for r in chunk)}
            for key in ("rows_in", "rows_out", "seconds", "cache_hits", "mass_out", "mass_rejected"):
                merged[key] = sum(r.get(key) or 0 for r in chunk)
            for key in ("rejects", "counters"):
                merged[key] = {}
                for r in chunk:
                    for name, n in (r.get(key) or {}).items():
                        merged[key][name] = merged[key].get(name, 0) + n
            out.append(merged)
    return sorted(out, key=lambda r: r.get("t_end") or 0.0)


def measured_rates(manifest: dict, data_dir: str | None = None) -> dict:
    """Per-stage busy seconds and rows per input video second, and the fixed costs, from a finished
    build's manifest (and the probe durations of its written rows)."""
    import pyarrow.dataset as pads

    seconds = None
    if data_dir and os.path.isdir(data_dir):
        files = sorted(os.path.join(data_dir, f) for f in os.listdir(data_dir) if f.endswith(".parquet"))
        ds = pads.dataset(files, format="parquet") if files else None
        if ds is not None and {R.VIDEO_ID, R.DURATION_S} <= set(ds.schema.names):
            t = ds.to_table(columns=[R.VIDEO_ID, R.DURATION_S])
            seconds = dict(zip(t[R.VIDEO_ID].to_pylist(), t[R.DURATION_S].to_pylist()))
    videos = int(manifest.get("inputs") or 0) - int(manifest.get("resumed_complete") or 0)
    durations = [float(v) for v in (seconds or {}).values() if isinstance(v, (int, float))]
    # rejected videos have no row to read their duration from: the kept ones' mean stands in for them
    mean_s = sum(durations) / len(durations) if durations else None
    records = manifest.get("stats_records") or []
    start = (manifest.get("timeline") or {}).get("start")
    first = min((r["t_end"] - r["seconds"] for r in records), default=None)
    last = max((r["t_end"] for r in records), default=None)
    wall = float(manifest.get("wall_s") or 0.0)
    startup = max(0.0, first - start) if start is not None and first is not None else 0.0
    finish = max(0.0, wall - (last - start)) if start is not None and last is not None else 0.0
    input_s = videos * mean_s if mean_s else None
    teachers = manifest.get("teachers") or {}
    return {
        "videos": videos, "mean_video_s": mean_s, "input_video_s": input_s, "startup_s": round(startup, 3),
        "finish_s": round(finish, 3), "wall_s": wall,
        # where the rates came from: an in-process build has no Ray start-up and no per-task overhead
        "executor": (manifest.get("ray") or {}).get("executor"),
        "stages": [{"stage": s["stage"], "index": s["index"], "busy_s": s.get("busy_s", 0.0),
                    "rows_in": s.get("rows_in", 0),
                    "batches": sum(r.get("batches", 1) for r in records if r["stage_index"] == s["index"])}
                   for s in manifest.get("stages") or []],
        "teachers": {k: {f: (v or {}).get(f, 0) or 0 for f in ("requests", "prompt_tokens", "completion_tokens")}
                     for k, v in teachers.items()},
    }


def load_rates(output_dir: str) -> dict:
    """The rates of the build in `output_dir`: the manifest's own, or measured now for an older one."""
    path = os.path.join(output_dir, "manifest.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{output_dir}: no manifest.json: build a small sample first (vdata build), "
                                f"or point --measured at a finished build's output folder")
    manifest = json.loads(Path(path).read_text())
    if manifest.get("rates"):
        return manifest["rates"]
    level = manifest.get("level") or "clips"
    return measured_rates(manifest, os.path.join(output_dir, level))


def estimate(plan, rates: dict, videos: int, avg_duration_s: float | None, cpus: float, gpus: float) -> Estimate:
    """Wall time, CPU / GPU hours, teacher traffic and the bottleneck for `videos` videos of
    `avg_duration_s` seconds (default: the measured build's mean) on `cpus` CPUs and `gpus` GPUs."""
    from .planning import teacher_spend

    mean_s = rates.get("mean_video_s") or avg_duration_s or 1.0
    duration = avg_duration_s or mean_s
    measured_s = max(rates.get("input_video_s") or rates["videos"] * mean_s, 1e-9)
    scale = videos * duration / measured_s       # new input seconds / measured input seconds
    measured = {s["index"]: s for s in rates["stages"]}
    stages = []
    for s in plan.stages:
        m = measured.get(s.index)
        if m is None or m["stage"] != s.name:
            raise ValueError(f"stages[{s.index}].{s.name}: the measured build has no such stage; build a small "
                             f"sample with this config first")
        r = s.resources
        fits = [r.concurrency] if r.concurrency else []
        if r.num_cpus:
            fits.append(cpus / r.num_cpus)
        if r.num_gpus:
            fits.append(gpus / r.num_gpus if gpus else 0.0)
        workers = max(min(fits) if fits else cpus, 0.0)
        work = m["busy_s"] * scale
        span = work / workers if workers > 0 else float("inf")
        stages.append(StageEstimate(s.name, work, workers, span, r.num_cpus, r.num_gpus))
    cpu_work = sum(st.work_s * st.cpus for st in stages)
    slowest = max(stages, key=lambda st: st.span_s)
    # one video's way through every stage: its share of each stage's work, at least one batch's worth
    per_video = sum(m["busy_s"] / max(m["batches"], 1) for m in rates["stages"]) * duration / mean_s
    spans = {"all stages share the CPUs": cpu_work / max(cpus, 1e-9), f"stage {slowest.name}": slowest.span_s,
             "one video's path through the stages": per_video}
    bottleneck, processing = max(spans.items(), key=lambda kv: kv[1])
    if bottleneck.startswith("all stages"):
        heaviest = max(stages, key=lambda st: st.work_s * st.cpus)
        bottleneck = f"CPU: all stages share the CPUs; most CPU time goes to stage {heaviest.name}"
    wall = rates.get("startup_s", 0.0) + processing + rates.get("finish_s", 0.0)
    gpu_hours = sum(st.work_s * st.gpus for st in stages) / 3600
    est = Estimate(videos, videos * duration, wall, rates.get("startup_s", 0.0), cpu_work / 3600, gpu_hours,
                   bottleneck, stages)
    teachers = rates.get("teachers") or {}
    if teachers:
        est.teacher_requests = sum(t["requests"] for t in teachers.values()) * scale
        est.teacher_prompt_tokens = sum(t["prompt_tokens"] for t in teachers.values()) * scale
        est.teacher_completion_tokens = sum(t["completion_tokens"] for t in teachers.values()) * scale
    else:   # no measurement: the stages' own plan per row, times the rows that reached each stage
        rows_in = {m["stage"]: m["rows_in"] * scale for m in rates["stages"]}
        for e in teacher_spend(plan):
            n = rows_in.get(e["stage"], 0.0)
            est.teacher_requests += e["requests"] * n
            est.teacher_prompt_tokens += e["prompt_tokens"] * n
            est.teacher_completion_tokens += e["completion_tokens"] * n
    return est


def estimate_text(est: Estimate, measured_from: str, rates: dict | None = None) -> str:
    rates = rates or {}
    executor = {"in-process": "in-process build", "ray": "Ray build"}.get(rates.get("executor") or "", "build")
    measured = f"{rates['videos']:,} video(s), " if rates.get("videos") else ""
    lines = [f"estimate for {est.videos:,} video(s), {est.video_seconds / 3600:,.2f} h of video "
             f"(rates measured by the {executor} of {measured}in {measured_from}):",
             f"  wall time      {_duration(est.wall_s)}  (start-up {_duration(est.startup_s)})",
             f"  CPU hours      {est.cpu_hours:,.2f}  (worker CPU slots x busy time)",
             f"  GPU hours      {est.gpu_hours:,.2f}",
             f"  teacher        {est.teacher_requests:,.0f} requests, {est.teacher_prompt_tokens:,.0f} prompt tokens, "
             f"{est.teacher_completion_tokens:,.0f} completion tokens",
             f"  bottleneck     {est.bottleneck}",
             "  per stage:     work (worker-s)   workers   alone"]
    for st in est.stages:
        lines.append(f"    {st.name:<14} {st.work_s:>12,.1f} {st.workers:>9.1f}   {_duration(st.span_s)}")
    if rates.get("executor") == "in-process":
        lines.append("  (an in-process build's rates leave out Ray's start-up and per-task costs, which a build of many "
                     "videos pays: measure with ray.executor: ray for a closer figure)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "never (no worker fits)"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
