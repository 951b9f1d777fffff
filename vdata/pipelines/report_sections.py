"""The run report's sections: for each, the text, the tables, and the numbers its figure is drawn from.

Each collector takes the loaded `RunData` and returns a `Section` or None when its data does not exist.
`figure` holds plain lists/arrays and labels only; `report_figures.FIGURES[section.key]` draws it.
"""
from __future__ import annotations

import math
import os
from collections import Counter, defaultdict

import numpy as np
import pyarrow.compute as pc

from vdata.schemas import records as R

from .report_data import (RunData, Section, TableBlock, answer_position_balance, chi_square_p, column, fmt,
                          threshold_limits, unique_by, value_counts)
from .report_samples import reject_examples, samples


def _clip_rows(run: RunData):
    """One row per kept clip when the data has clips (sample rows repeat their clip's columns)."""
    if run.data is not None and R.CLIP_ID in run.data.column_names:
        return unique_by(run.data, R.CLIP_ID)
    return None


def summary(run: RunData) -> Section:
    m = run.manifest
    rows = [["pipeline", m.get("name", "–")], ["run id", m.get("run_id", "–")],
            ["row level", run.level or "–"], ["input videos", fmt(m.get("inputs"))],
            ["rows written", fmt(m.get("rows"))], ["rejects", fmt(m.get("rejects"))],
            ["wall time", f"{m.get('wall_s', 0):.1f} s"], ["config hash", m.get("config_hash", "–")],
            ["ray", (m.get("ray") or {}).get("address", "–")]]
    files = m.get("files") or []
    if files:
        rows.append(["files written", f"{len(files)} Parquet file(s)"])
    return Section("summary", "Summary", tables=[TableBlock(["", ""], rows, numeric=False)])


def stages(run: RunData) -> Section | None:
    stages = run.manifest.get("stages") or []
    if not stages:
        return None
    labels = [f"{s['index'] + 1}. {s['stage']}" for s in stages]
    rejected = [sum(s["rejects"].values()) for s in stages]
    rows = [[label, s["rows_in"], s["rows_out"], n_rej, s.get("workers", 0), f"{s.get('rows_per_s', 0):.2f}",
             f"{s.get('busy_s', 0):.1f}", f"{s.get('active_s', 0):.1f}"]
            for label, s, n_rej in zip(labels, stages, rejected)]
    table = TableBlock(["stage", "rows in", "rows out", "rejected", "workers", "rows/s", "busy s", "active s"], rows)
    figure = {"labels": labels, "rows_in": [s["rows_in"] for s in stages], "rows_out": [s["rows_out"] for s in stages],
              "rejected": rejected}
    return Section("stages", "Stages" + (" (this run only)" if _earlier_videos(run.manifest) else ""),
                   _earlier_work(run.manifest) + "Rows in and out of each stage (a fan-out stage such as shots turns "
                   "one video into many clips). Busy s is the summed worker time; active s the span from its first "
                   "to its last batch.", [table], figure)


def _earlier_videos(manifest: dict) -> int:
    """The input videos an earlier, interrupted run had completed: the stage counts leave them out (they are
    the counts of the run that wrote the manifest)."""
    return int(manifest.get("stages_resumed") or 0)


def _earlier_work(manifest: dict) -> str:
    earlier = _earlier_videos(manifest)
    if not earlier:
        return ""
    return (f"These counts are this run's only: {earlier} of the build's {manifest.get('inputs')} videos were "
            "completed by an earlier run (interrupted, or retried here for failures that may pass) and are not "
            "in them; the summary, the rejects and every section below cover the whole build. ")


def rejects(run: RunData) -> Section | None:
    by_reason = dict(run.manifest.get("rejects_by_reason") or {})
    if not by_reason and run.rejects.num_rows:
        by_reason = dict(Counter(f"{s}:{r}" for s, r in zip(run.rejects["stage"].to_pylist(),
                                                            run.rejects["reason"].to_pylist())))
    if not by_reason:
        return None
    order = {s["stage"]: s["index"] for s in run.manifest.get("stages") or []}
    items = sorted(by_reason.items(), key=lambda kv: (order.get(kv[0].split(":", 1)[0], 99), -kv[1], kv[0]))
    total = sum(by_reason.values())
    table = TableBlock(["stage", "reason", "count", "share"],
                       [[k.split(":", 1)[0], k.split(":", 1)[-1], v, f"{100 * v / total:.1f}%"] for k, v in items])
    stage_of = [k.split(":", 1)[0] for k, _ in items]
    figure = {"labels": [k.replace(":", ": ") for k, _ in items], "counts": [v for _, v in items],
              "stages": stage_of, "stage_indexes": [order.get(s, 0) for s in stage_of]}
    tables = [table]
    examples = reject_examples(run)
    if examples is not None:
        tables.append(examples)
    return Section("rejects", "Rejects", f"{total:,} row(s) dropped; every one is in rejects/*.parquet with a "
                   "message and a JSON detail.", tables, figure)


def durations(run: RunData) -> Section | None:
    col, label, title = R.CLIP_DURATION_S, "clip", "Clip durations"
    values = column(_clip_rows(run), col)
    if values is None:
        col, label, title = R.DURATION_S, "video", "Video durations"
        values = column(unique_by(run.data, R.VIDEO_ID), col)
    if values is None:
        return None
    limits = threshold_limits(run.thresholds, R.CLIP_DURATION_S) if col == R.CLIP_DURATION_S else []
    stats = TableBlock(["", "count", "total", "min", "median", "mean", "max"],
                       [[f"{label} duration (s)", int(values.size), f"{values.sum():.1f} s", fmt(float(values.min())),
                         fmt(float(np.median(values))), fmt(float(values.mean())), fmt(float(values.max()))]])
    figure = {"values": values, "limits": limits, "title": f"{title} (kept {label}s)", "unit": f"{label}s"}
    return Section("durations", title, f"Durations of the kept {label}s.", [stats], figure)


def shots(run: RunData) -> Section | None:
    if run.data is None or R.CLIP_ID not in run.data.column_names or R.VIDEO_ID not in run.data.column_names:
        return None
    kept_clips = unique_by(run.data, R.CLIP_ID)
    kept: dict[str, set] = defaultdict(set)
    names: dict[str, str] = {}
    for vid, cid, uri in zip(kept_clips[R.VIDEO_ID].to_pylist(), kept_clips[R.CLIP_ID].to_pylist(),
                             kept_clips[R.SOURCE_URI].to_pylist() if R.SOURCE_URI in kept_clips.column_names else
                             [None] * kept_clips.num_rows):
        kept[vid].add(cid)
        names.setdefault(vid, os.path.basename(uri or "") or vid)
    rejected: dict[str, set] = defaultdict(set)
    rj = run.rejects
    for vid, cid, sid, uri in zip(rj[R.VIDEO_ID].to_pylist(), rj[R.CLIP_ID].to_pylist(), rj[R.SAMPLE_ID].to_pylist(),
                                  rj[R.SOURCE_URI].to_pylist()):
        # a clip dropped whole (not one of its samples), and not kept through another of its rows
        if vid and cid and not sid and cid not in kept.get(vid, ()):
            rejected[vid].add(cid)
            names.setdefault(vid, os.path.basename(uri or "") or vid)
    videos = sorted(names, key=lambda v: (-(len(kept[v]) + len(rejected[v])), names[v]))
    if not videos:
        return None
    n_kept = np.array([len(kept[v]) for v in videos])
    n_rej = np.array([len(rejected[v]) for v in videos])
    total = n_kept + n_rej
    table = TableBlock(["videos with clips", "none kept", "clips kept", "clips rejected", "shots per video (median)",
                        "max"], [[len(videos), int((n_kept == 0).sum()), int(n_kept.sum()), int(n_rej.sum()),
                                  fmt(float(np.median(total))), int(total.max())]])
    figure = {"names": [names[v] for v in videos], "kept": n_kept, "rejected": n_rej}
    return Section("shots", "Shots per video", "Clips per source video: kept (green) and dropped by a later "
                   "stage (red); together they are the shots the shots stage cut.", [table], figure)


def quality(run: RunData) -> Section | None:
    kept = _clip_rows(run)
    if kept is None:   # video-level data: one row per video already
        kept = run.data
    columns = []
    for col in R.QUALITY_COLUMNS:
        k = column(kept, col)
        rej = np.array([float(s[col]) for s in run.rejected_scores if isinstance(s.get(col), (int, float))
                        and math.isfinite(float(s[col]))])
        if k is not None or rej.size:
            columns.append((col, k if k is not None else np.array([]), rej, threshold_limits(run.thresholds, col)))
    if not columns:
        return None
    rows = [[col, k.size, rej.size, fmt(float(np.median(k))) if k.size else "–",
             fmt(float(np.median(rej))) if rej.size else "–", ", ".join(lbl for lbl, _, _ in limits) or "–"]
            for col, k, rej, limits in columns]
    table = TableBlock(["score", "kept", "rejected", "median kept", "median rejected", "thresholds"], rows)
    text = ("Scores of every scored clip, rejected ones included (from the rejects' detail), so each "
            "threshold's cut is visible." + ("" if run.thresholds is not None else
                                             " No quality stage in the config: no thresholds to mark."))
    return Section("quality", "Quality score distributions", text, [table], {"columns": columns})


def throughput(run: RunData) -> Section | None:
    records = [r for r in run.manifest.get("stats_records") or [] if r.get("t_end") is not None]
    if not records:
        return None
    starts = np.array([r["t_end"] - r["seconds"] for r in records], dtype=float)
    ends = np.array([r["t_end"] for r in records], dtype=float)
    # The axis starts when the build started (Ray and teacher servers starting up count against the
    # wall time); manifests older than the timeline start at the first batch.
    timeline = run.manifest.get("timeline") or {}
    first = float(starts.min())
    has_start = isinstance(timeline.get("start"), (int, float))
    # min: a worker's clock behind the driver's (another node) must not put batches before the axis
    t0 = min(float(timeline["start"]), first) if has_start else first
    starts, ends = starts - t0, ends - t0
    wall = run.manifest.get("wall_s")
    span = max(float(ends.max()), float(wall) if has_start and isinstance(wall, (int, float)) else 0.0, 1e-3)
    startup = {"until": first - t0} if first > t0 else None
    if startup and isinstance(timeline.get("teachers_ready"), (int, float)):
        startup["teachers_ready"] = float(timeline["teachers_ready"]) - t0
    n_bins = int(min(60, max(10, len(records) // 3)))
    edges = np.linspace(0.0, span, n_bins + 1)
    width = edges[1] - edges[0]
    series, rows = [], []
    for index, name in sorted({(r["stage_index"], r["stage"]) for r in records}):
        sel = np.array([r["stage_index"] == index for r in records])
        rin = np.array([r["rows_in"] for r in records], dtype=float)[sel]
        s, e = starts[sel], ends[sel]
        order = np.argsort(e)
        label = f"{index + 1}. {name}"
        # Spread each batch's rows evenly over its own [start, end] so the rate reflects when work happened.
        dur = np.maximum(e - s, 1e-9)
        overlap = np.clip(np.minimum(e[:, None], edges[None, 1:]) - np.maximum(s[:, None], edges[None, :-1]), 0, None)
        rate = (overlap * (rin / dur)[:, None]).sum(axis=0) / width
        series.append({"label": label, "index": index, "done_at": np.concatenate([[0], e[order]]),
                       "done": np.concatenate([[0], np.cumsum(rin[order])]), "rate": rate})
        busy = float((e - s).sum())
        batches = sum(r.get("batches", 1) for r, chosen in zip(records, sel) if chosen)
        rows.append([label, batches, int(rin.sum()), f"{busy:.1f}", f"{float(s.min()):.1f}",
                     f"{float(e.max()):.1f}", f"{rin.sum() / max(busy, 1e-9):.2f}", f"{float(rate.max()):.2f}"])
    table = TableBlock(["stage", "batches", "rows in", "busy s", "first start s", "last end s",
                        "rows/s per worker", "peak rows/s"], rows)
    text = ("From the per-batch records the workers reported: cumulative rows each stage finished, and its rate "
            f"in time bins of {width:.2g} s, from the start of the {'build' if has_start else 'first batch'}")
    if startup:
        ready = startup.get("teachers_ready")
        during = ready is not None and ready <= startup["until"]
        text += (f"; the first {startup['until']:.1f} s (shaded) went to start-up: Ray"
                 + (f", teacher servers (ready at {ready:.1f} s)" if during else "") + ", the input listing")
        if ready is not None and not during:   # the servers load in the background while the stages run
            text += f"; the teacher servers loaded while the first stages ran (ready at {ready:.1f} s, dotted line)"
    elif not has_start:
        text += " (this manifest has no build start time: the axis starts at the first batch)"
    return Section("throughput", "Throughput over time", text + ".", [table],
                   {"edges": edges, "series": series, "startup": startup, "from_start": has_start})


def teachers(run: RunData) -> Section | None:
    teachers = run.manifest.get("teachers")
    if not isinstance(teachers, dict) or not teachers:
        return None
    names = sorted(teachers)
    stats = [teachers[n] or {} for n in names]

    def num(key):
        return [float(s[key]) if isinstance(s.get(key), (int, float)) else 0.0 for s in stats]

    rows = [[n, s.get("model", "–"), fmt(s.get("requests")), fmt(s.get("cache_hits")), fmt(s.get("failures")),
             fmt(s.get("prompt_tokens")), fmt(s.get("completion_tokens")),
             fmt(s.get("latency_p50_s")), fmt(s.get("latency_p95_s")), fmt(s.get("tokens_per_s"))]
            for n, s in zip(names, stats)]
    table = TableBlock(["teacher", "model", "requests", "cache hits", "failures", "prompt tokens",
                        "completion tokens", "latency p50 s", "latency p95 s", "completion tok/s"], rows)
    figure = {"names": names, "prompt_tokens": num("prompt_tokens"), "completion_tokens": num("completion_tokens"),
              "latency_p50_s": num("latency_p50_s"), "latency_p95_s": num("latency_p95_s")}
    return Section("teachers", "Teachers", "Requests, tokens and latency per teacher model (cache hits cost no "
                   "tokens).", [table], figure)


def qa_types(run: RunData) -> Section | None:
    tasks = value_counts(run.data, R.TASK) if run.data is not None else []
    qtypes = value_counts(run.data, R.QUESTION_TYPE) if run.data is not None else []
    panels = [(t, c) for t, c in (("Tasks", tasks), ("Question types", qtypes)) if c]
    dropped = dict(value_counts(run.rejects, R.TASK))
    if not panels and not dropped:
        return None
    tables = [TableBlock([title.lower().rstrip("s"), "samples", "share"],
                         [[k, v, f"{100 * v / sum(c for _, c in counts):.1f}%"] for k, v in counts])
              for title, counts in panels]
    # Which task loses what: a build with several tasks tells a weak task from a strict filter here.
    if dropped:
        kept = dict(tasks)
        names = sorted(set(kept) | set(dropped), key=lambda t: (-kept.get(t, 0), t))
        tables.append(TableBlock(["task", "kept", "rejected", "kept share"],
                                 [[t, kept.get(t, 0), dropped.get(t, 0),
                                   f"{100 * kept.get(t, 0) / (kept.get(t, 0) + dropped.get(t, 0)):.1f}%"] for t in names]))
    return Section("qa_types", "Sample tasks and question types", "How the kept samples split over tasks and "
                   "question types" + (", and how many samples of each task were rejected (rejects/*.parquet, "
                   "column task)." if dropped else "."), tables, {"panels": panels} if panels else None)


def answer_positions(run: RunData) -> Section | None:
    if run.data is None or R.ANSWER_INDEX not in run.data.column_names:
        return None
    valid = pc.is_valid(run.data[R.ANSWER_INDEX])
    if "n_options" in run.data.column_names:
        valid = pc.and_(valid, pc.is_valid(run.data["n_options"]))
    mcq = run.data.filter(valid)
    if mcq.num_rows == 0:
        return None
    idx = mcq[R.ANSWER_INDEX].to_numpy(zero_copy_only=False)
    good = idx >= 0
    idx = idx[good]
    if idx.size == 0:
        return None
    n_opt = mcq["n_options"].to_numpy(zero_copy_only=False)[good] if "n_options" in mcq.column_names else None
    observed, expected = answer_position_balance(idx, n_opt)
    letters = [chr(ord("A") + i) if i < 26 else str(i) for i in range(observed.size)]
    # Pearson residuals: a deviation weighed by how much chance alone would allow at that position.
    residual = (observed - expected) / np.sqrt(np.maximum(expected, 1e-9))
    worst = int(np.argmax(np.abs(residual)))
    rows = [[letters[i], int(observed[i]), f"{expected[i]:.1f}", f"{100 * observed[i] / idx.size:.1f}%",
             f"{residual[i]:+.2f}"] for i in range(observed.size)]
    table = TableBlock(["position", "questions", "expected", "share", "residual"], rows)
    text = (f"{idx.size:,} multiple-choice question(s); expected counts assume the correct option is placed "
            f"uniformly among each question's own options. A model can learn a position bias from an unbalanced "
            f"set. Largest deviation: {letters[worst]} ({int(observed[worst])} vs {expected[worst]:.1f} expected, "
            f"residual {residual[worst]:+.2f})")
    p_value = chi_square_p(observed, expected)
    if p_value is not None:
        text += f"; chi-square test of uniform placement: p = {p_value:.3g}"
    figure = {"letters": letters, "observed": observed, "expected": expected}
    return Section("answer_positions", "Answer-position balance", text + ".", [table], figure)


def versions(run: RunData) -> Section | None:
    versions = run.manifest.get("versions") or {}
    tables = []
    if versions:
        tables.append(TableBlock(["package", "version"], [[k, v] for k, v in versions.items()], numeric=False))
    hashes = run.manifest.get("stage_hashes") or {}
    if hashes:
        tables.append(TableBlock(["stage", "config hash"], [[k, v] for k, v in hashes.items()], numeric=False))
    if not tables:
        return None
    return Section("versions", "Versions", "What produced this dataset.", tables)


def config(run: RunData) -> Section | None:
    text = run.manifest.get("config_text")
    if not text:
        return None
    return Section("config", "Config", "As written (environment variables not interpolated).",
                   preformatted=text, collapsed=True)


# In report order; the name is what a warning calls a section that failed.
COLLECTORS = (("summary", summary), ("stages", stages), ("rejects", rejects), ("samples", samples),
              ("duration", durations), ("shots", shots), ("quality", quality), ("throughput", throughput), ("teachers", teachers),
              ("qa_types", qa_types), ("answer_position", answer_positions), ("versions", versions),
              ("config", config))
