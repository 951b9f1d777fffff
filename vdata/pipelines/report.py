"""The run report: `report.html` (self-contained) and `report.md` (PNG files in `report_assets/`).

Everything comes from what a build leaves in its output folder: `manifest.json` (per-stage counts,
per-batch timing records, rejects by reason, config text, versions, teacher stats), the data Parquet
(only the small columns a plot needs are read — never `frames`), and `rejects/*.parquet` (whose
`detail` JSON holds the quality scores of rejected clips, so the distributions show where each
threshold cut). Each plot appears only when its data exists; both files are built from one list of
sections so they always say the same thing.

    html_path, md_path = write_report("out/quickstart")
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import shutil
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from vdata.schemas import records as R

HTML_NAME = "report.html"
MD_NAME = "report.md"
ASSETS_DIR = "report_assets"
LEVELS = ("samples", "clips", "videos")

KEPT_COLOR = "#2f855a"
REJECTED_COLOR = "#c53030"
THRESHOLD_COLOR = "#1a202c"
# Per-stage colours; no pure greens or reds, which mean kept / rejected everywhere in the report.
PALETTE = ["#3182ce", "#dd6b20", "#805ad5", "#319795", "#d53f8c", "#d69e2e", "#2c5282", "#718096",
           "#9c4221", "#553c9a"]
DPI = 100

# Quality score columns in display order, with a readable label.
QUALITY_LABELS = {
    R.Q_BRIGHTNESS: "brightness (mean luma)", R.Q_SHARPNESS: "sharpness (Laplacian var.)",
    R.Q_MOTION: "motion (flow px)", R.Q_DUP_RATIO: "duplicate-frame ratio", R.Q_TEXT_AREA: "text area share",
    R.Q_BORDER: "border share", R.Q_MIN_SIDE: "min side (px)", R.Q_ASPECT: "aspect (w/h)",
    R.Q_SUITABILITY: "suitability (0..1)",
}


# --------------------------------------------------------------------------- report model
@dataclass
class TableBlock:
    headers: list[str]
    rows: list[list]
    caption: str = ""
    numeric: bool = True     # right-align numeric cells (off for key/value tables such as versions)


@dataclass
class Plot:
    png: bytes
    alt: str                 # the figure's own titles: img alt text in both files


@dataclass
class Section:
    key: str                 # anchor and PNG file name
    title: str
    text: str = ""           # one or two sentences of plain text
    plot: Plot | None = None
    tables: list[TableBlock] = field(default_factory=list)
    preformatted: str = ""   # e.g. the config text
    collapsed: bool = False  # HTML: inside <details>


@dataclass
class RunData:
    """What the report is drawn from, loaded once."""

    output_dir: str
    manifest: dict
    level: str | None
    data: pa.Table | None          # only the small columns, one row per kept row
    rejects: pa.Table              # stage, reason, source_uri, video_id, clip_id, sample_id
    rejected_scores: list[dict]    # quality scores of rejected clips (from rejects' detail JSON)
    thresholds: object | None      # vdata.stages.quality.Thresholds, or None without a quality stage
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- loading
def _parquet_files(folder: str) -> list[str]:
    """The finished part files only (a `.tmp` left by an interrupted write is not Parquet yet)."""
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".parquet"))


def _data_dir(output_dir: str, manifest: dict) -> tuple[str | None, str | None]:
    levels = [manifest["level"]] if manifest.get("level") in LEVELS else list(LEVELS)
    for level in levels:
        d = os.path.join(output_dir, level)
        if _parquet_files(d):
            return level, d
    return manifest.get("level"), None


_DATA_COLUMNS = (R.SOURCE_URI, R.VIDEO_ID, R.CLIP_ID, R.SAMPLE_ID, R.DURATION_S, R.CLIP_DURATION_S,
                 R.SHOTS_IN_VIDEO, *R.QUALITY_COLUMNS, R.TASK, R.QUESTION_TYPE, R.ANSWER_INDEX)


def _read_data(data_dir: str) -> pa.Table:
    ds = pads.dataset(_parquet_files(data_dir), format="parquet")
    names = set(ds.schema.names)
    cols = [c for c in _DATA_COLUMNS if c in names]
    table = ds.to_table(columns=cols)
    if R.OPTIONS in names:   # only the number of options matters (expected answer-position shares)
        lengths = pc.list_value_length(ds.to_table(columns=[R.OPTIONS])[R.OPTIONS])
        table = table.append_column("n_options", lengths)
    return table


def _read_rejects(rejects_dir: str) -> tuple[pa.Table, list[dict]]:
    cols = ["stage", "reason", R.SOURCE_URI, R.VIDEO_ID, R.CLIP_ID, R.SAMPLE_ID]
    files = _parquet_files(rejects_dir)
    if not files:
        return R.REJECT_SCHEMA.empty_table().select(cols), []
    ds = pads.dataset(files, format="parquet", schema=R.REJECT_SCHEMA)
    table = ds.to_table(columns=cols)
    # Only rows whose detail carries scores are parsed (quality rejects); the rest never leave Arrow.
    with_scores = ds.to_table(columns=["detail"], filter=pc.match_substring(pc.field("detail"), '"scores"'))
    scores = []
    for text in with_scores["detail"].to_pylist():
        try:
            s = json.loads(text).get("scores")
        except (ValueError, AttributeError):
            continue
        if isinstance(s, dict):
            scores.append(s)
    return table, scores


def quality_thresholds(config_text: str):
    """The thresholds of the build's first quality stage (defaults filled in), or None without one."""
    import yaml

    from vdata.stages.quality import Thresholds

    try:
        raw = yaml.safe_load(config_text or "") or {}
    except yaml.YAMLError:
        return None
    try:
        from vdata.schemas.config import parse_config

        for name, scfg in parse_config(raw, config_text).stage_specs:
            if name == "quality":
                return scfg.thresholds
        return None
    except Exception:
        pass
    # The config no longer validates (e.g. a stage renamed since): read the quality entry as written.
    for item in raw.get("stages") or []:
        if isinstance(item, dict) and "quality" in item:
            try:
                return Thresholds(**((item["quality"] or {}).get("thresholds") or {}))
            except Exception:
                return Thresholds()
    return None


def load_run(output_dir: str) -> RunData:
    manifest_path = os.path.join(output_dir, "manifest.json")
    if not os.path.isfile(manifest_path):
        raise FileNotFoundError(f"{output_dir}: no manifest.json (not the output folder of a vdata build)")
    manifest = json.loads(Path(manifest_path).read_text())
    warnings = []
    level, data_dir = _data_dir(output_dir, manifest)
    data = None
    if data_dir:
        try:
            data = _read_data(data_dir)
        except Exception as e:   # a damaged part file must not cost the whole report
            warnings.append(f"could not read {data_dir}: {e}")
    try:
        rejects, scores = _read_rejects(os.path.join(output_dir, "rejects"))
    except Exception as e:
        warnings.append(f"could not read rejects: {e}")
        rejects, scores = R.REJECT_SCHEMA.empty_table(), []
    return RunData(output_dir, manifest, level, data, rejects, scores,
                   quality_thresholds(manifest.get("config_text", "")), warnings)


# --------------------------------------------------------------------------- helpers
def _figure(width: float, height: float):
    from matplotlib.figure import Figure   # object API: no pyplot global state, Agg canvas by default

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def _png(fig) -> Plot:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    suptitle = fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_visible() and ax.get_title(loc="left")]
    return Plot(buf.getvalue(), suptitle or " / ".join(titles))


def _style(ax, title: str = "", xlabel: str = "", ylabel: str = "", counts: str | None = "y", grid: str = "y") -> None:
    """House style; `counts` names the axis that counts rows (integer ticks only), `grid` the gridded one."""
    from matplotlib.ticker import MaxNLocator

    if title:
        ax.set_title(title, fontsize=11, loc="left", fontweight="bold", color="#2d3748")
    ax.set_xlabel(xlabel, fontsize=9, color="#4a5568")
    ax.set_ylabel(ylabel, fontsize=9, color="#4a5568")
    ax.tick_params(labelsize=8, colors="#4a5568")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis=grid, color="#e2e8f0", linewidth=0.8)
    ax.set_axisbelow(True)
    if counts:
        getattr(ax, f"{counts}axis").set_major_locator(MaxNLocator(integer=True))


def _column(table: pa.Table | None, name: str) -> np.ndarray | None:
    """Non-null values of a numeric column as float64, or None if absent/empty."""
    if table is None or name not in table.column_names:
        return None
    col = pc.drop_null(table[name])
    if len(col) == 0:
        return None
    values = col.to_numpy(zero_copy_only=False).astype(np.float64)
    values = values[np.isfinite(values)]
    return values if values.size else None


def _unique_by(table: pa.Table | None, key: str) -> pa.Table | None:
    """First row per key (sample rows repeat their clip's columns; plots count each clip once)."""
    if table is None or key not in table.column_names or table.num_rows == 0:
        return table
    ids = table[key].to_numpy(zero_copy_only=False)
    _, first = np.unique(ids.astype(str), return_index=True)
    return table.take(pa.array(np.sort(first)))


def _stage_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _short(name: str, n: int = 28) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _bins(values: np.ndarray, n: int = 24) -> tuple[np.ndarray, bool]:
    """Histogram edges; log-spaced when positive values span more than two decades."""
    lo, hi = float(values.min()), float(values.max())
    if lo > 0 and hi / lo > 100:
        return np.geomspace(lo, hi * 1.0001, n + 1), True
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n + 1), False


# --------------------------------------------------------------------------- sections
def _summary_section(run: RunData) -> Section:
    m = run.manifest
    rows = [["pipeline", m.get("name", "–")], ["run id", m.get("run_id", "–")],
            ["row level", run.level or "–"], ["input videos", _fmt(m.get("inputs"))],
            ["rows written", _fmt(m.get("rows"))], ["rejects", _fmt(m.get("rejects"))],
            ["wall time", f"{m.get('wall_s', 0):.1f} s"], ["config hash", m.get("config_hash", "–")],
            ["ray", (m.get("ray") or {}).get("address", "–")]]
    files = m.get("files") or []
    if files:
        rows.append(["files written", f"{len(files)} Parquet file(s)"])
    return Section("summary", "Summary", tables=[TableBlock(["", ""], rows, numeric=False)])


def _stages_section(run: RunData) -> Section | None:
    stages = run.manifest.get("stages") or []
    if not stages:
        return None
    rows = []
    for s in stages:
        rows.append([f"{s['index'] + 1}. {s['stage']}", s["rows_in"], s["rows_out"], sum(s["rejects"].values()),
                     s.get("workers", 0), f"{s.get('rows_per_s', 0):.2f}", f"{s.get('busy_s', 0):.1f}",
                     f"{s.get('active_s', 0):.1f}"])
    table = TableBlock(["stage", "rows in", "rows out", "rejected", "workers", "rows/s", "busy s", "active s"], rows)
    fig = _figure(10, 3.2)
    ax = fig.add_subplot()
    x = np.arange(len(stages))
    w = 0.27
    ax.bar(x - w, [s["rows_in"] for s in stages], w, label="rows in", color="#a0aec0")
    ax.bar(x, [s["rows_out"] for s in stages], w, label="rows out", color=KEPT_COLOR)
    ax.bar(x + w, [sum(s["rejects"].values()) for s in stages], w, label="rejected", color=REJECTED_COLOR)
    ax.set_xticks(x, [f"{s['index'] + 1}. {s['stage']}" for s in stages])
    _style(ax, "Rows through the stages", ylabel="rows")
    ax.legend(fontsize=8, frameon=False)
    return Section("stages", "Stages", "Rows in and out of each stage (a fan-out stage such as shots turns one "
                   "video into many clips). Busy s is the summed worker time; active s the span from its first "
                   "to its last batch.", _png(fig), [table])


def _rejects_section(run: RunData) -> Section | None:
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
    fig = _figure(10, max(2.0, 0.36 * len(items) + 1.0))
    ax = fig.add_subplot()
    y = np.arange(len(items))[::-1]
    colors = [_stage_color(order.get(k.split(":", 1)[0], 0)) for k, _ in items]
    bars = ax.barh(y, [v for _, v in items], color=colors)
    ax.set_yticks(y, [k.replace(":", ": ") for k, _ in items])
    ax.bar_label(bars, padding=3, fontsize=8)
    _style(ax, "Rejects by stage and reason", xlabel="rows rejected", counts="x", grid="x")
    seen = {}
    for k, _ in items:
        stage = k.split(":", 1)[0]
        seen.setdefault(stage, _stage_color(order.get(stage, 0)))
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=s) for s, c in seen.items()], fontsize=8, frameon=False, loc="lower right")
    return Section("rejects", "Rejects", f"{total:,} row(s) dropped; every one is in rejects/*.parquet with a "
                   "message and a JSON detail.", _png(fig), [table])


def _duration_section(run: RunData) -> Section | None:
    clips = _unique_by(run.data, R.CLIP_ID) if run.data is not None and R.CLIP_ID in run.data.column_names else None
    col, label, title = R.CLIP_DURATION_S, "clip", "Clip durations"
    values = _column(clips, col)
    if values is None:
        videos = _unique_by(run.data, R.VIDEO_ID)
        col, label, title = R.DURATION_S, "video", "Video durations"
        values = _column(videos, col)
    if values is None:
        return None
    fig = _figure(10, 3.2)
    ax = fig.add_subplot()
    edges, log = _bins(values, 30)
    ax.hist(values, bins=edges, color=PALETTE[0], edgecolor="white")
    if log:
        ax.set_xscale("log")
    limits = _limits_for(run.thresholds, R.CLIP_DURATION_S) if col == R.CLIP_DURATION_S else []
    _mark_limits(ax, limits)
    _style(ax, f"{title} (kept {label}s)", xlabel="seconds", ylabel=f"{label}s")
    stats = TableBlock(["", "count", "total", "min", "median", "mean", "max"],
                       [[f"{label} duration (s)", int(values.size), f"{values.sum():.1f} s", _fmt(float(values.min())),
                         _fmt(float(np.median(values))), _fmt(float(values.mean())), _fmt(float(values.max()))]])
    return Section("durations", title, f"Durations of the kept {label}s.", _png(fig), [stats])


def _shots_section(run: RunData) -> Section | None:
    if run.data is None or R.CLIP_ID not in run.data.column_names or R.VIDEO_ID not in run.data.column_names:
        return None
    kept_clips = _unique_by(run.data, R.CLIP_ID)
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
    if len(videos) <= 30:
        fig = _figure(10, max(2.2, 0.32 * len(videos) + 1.0))
        ax = fig.add_subplot()
        y = np.arange(len(videos))[::-1]
        ax.barh(y, n_kept, color=KEPT_COLOR, label="clips kept")
        ax.barh(y, n_rej, left=n_kept, color=REJECTED_COLOR, label="clips rejected")
        ax.set_yticks(y, [_short(names[v]) for v in videos])
        _style(ax, "Shots per video", xlabel="shots (clips)", counts="x", grid="x")
    else:
        fig = _figure(10, 3.2)
        ax = fig.add_subplot()
        total = n_kept + n_rej
        log = False
        if total.max() <= 60:
            edges = np.arange(0, total.max() + 2) - 0.5
        else:
            edges, log = _bins(np.maximum(total, 1).astype(float), 30)
        # drawn side by side: every video's shots detected, and how many of them were kept
        # (on a log axis, videos with no clip kept cannot be drawn: the table counts them)
        ax.hist([n_kept[n_kept > 0] if log else n_kept, total], bins=edges,
                color=[KEPT_COLOR, "#a0aec0"], label=["clips kept", "shots detected"])
        if log:
            ax.set_xscale("log")
        _style(ax, "Shots per video", xlabel="clips per video", ylabel="videos")
    ax.legend(fontsize=8, frameon=False, loc="lower right" if len(videos) <= 30 else "upper right")
    total = n_kept + n_rej
    table = TableBlock(["videos with clips", "none kept", "clips kept", "clips rejected", "shots per video (median)",
                        "max"], [[len(videos), int((n_kept == 0).sum()), int(n_kept.sum()), int(n_rej.sum()),
                                  _fmt(float(np.median(total))), int(total.max())]])
    return Section("shots", "Shots per video", "Clips per source video: kept (green) and dropped by a later "
                   "stage (red); together they are the shots the shots stage cut.", _png(fig), [table])


def _limits_for(thresholds, column: str) -> list[tuple[str, float]]:
    """(label, value) of every active threshold on a score column."""
    if thresholds is None:
        return []
    from vdata.stages.quality import CHECKS

    limits = thresholds.model_dump()
    return [(f"{key}={limits[key]:g}", float(limits[key]), op) for col, key, _, op in CHECKS
            if col == column and limits.get(key) is not None]


def _mark_limits(ax, limits) -> None:
    """A dashed line per threshold, labelled on its kept side (a minimum right of it, a maximum left)."""
    for i, (label, value, op) in enumerate(limits):
        ax.axvline(value, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.3)
        right = op == "<"
        # labels step down so that a min and a max close together on the axis do not overprint
        ax.annotate(label, xy=(value, 1), xycoords=("data", "axes fraction"), xytext=(4 if right else -4, -4 - 12 * i),
                    textcoords="offset points", fontsize=7.5, color=THRESHOLD_COLOR, va="top",
                    ha="left" if right else "right",
                    bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.85))


def _quality_section(run: RunData) -> Section | None:
    kept = _unique_by(run.data, R.CLIP_ID) if run.data is not None and R.CLIP_ID in run.data.column_names else run.data
    columns = []
    for col in R.QUALITY_COLUMNS:
        k = _column(kept, col)
        rej = np.array([float(s[col]) for s in run.rejected_scores if isinstance(s.get(col), (int, float))
                        and math.isfinite(float(s[col]))])
        if k is not None or rej.size:
            columns.append((col, k if k is not None else np.array([]), rej))
    if not columns:
        return None
    ncols = 3
    nrows = math.ceil(len(columns) / ncols)
    fig = _figure(11, 2.6 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    rows = []
    for i, (col, k, rej) in enumerate(columns):
        ax = axes[i // ncols][i % ncols]
        both = np.concatenate([k, rej])
        limits = _limits_for(run.thresholds, col)
        # the range includes the thresholds so that a cut outside the data still shows where it is
        edges, log = _bins(np.concatenate([both, [v for _, v, _ in limits]]), 20)
        ax.hist([k, rej], bins=edges, stacked=True, color=[KEPT_COLOR, REJECTED_COLOR], label=["kept", "rejected"],
                edgecolor="white", linewidth=0.4)
        if log:
            ax.set_xscale("log")
        _mark_limits(ax, limits)
        _style(ax, QUALITY_LABELS.get(col, col), ylabel="clips" if i % ncols == 0 else "")
        rows.append([col, k.size, rej.size, _fmt(float(np.median(k))) if k.size else "–",
                     _fmt(float(np.median(rej))) if rej.size else "–", ", ".join(l for l, _, _ in limits) or "–"])
    for j in range(len(columns), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper right", ncols=2, fontsize=8, frameon=False)
    fig.suptitle("Quality scores, kept vs rejected clips (dashed: thresholds)", fontsize=11, x=0.01, ha="left",
                 fontweight="bold", color="#2d3748")
    table = TableBlock(["score", "kept", "rejected", "median kept", "median rejected", "thresholds"], rows)
    text = ("Scores of every scored clip, rejected ones included (from the rejects' detail), so each "
            "threshold's cut is visible." + ("" if run.thresholds is not None else
                                             " No quality stage in the config: no thresholds to mark."))
    return Section("quality", "Quality score distributions", text, _png(fig), [table])


def _throughput_section(run: RunData) -> Section | None:
    records = [r for r in run.manifest.get("stats_records") or [] if r.get("t_end") is not None]
    if not records:
        return None
    starts = np.array([r["t_end"] - r["seconds"] for r in records], dtype=float)
    ends = np.array([r["t_end"] for r in records], dtype=float)
    t0 = float(starts.min())
    starts, ends = starts - t0, ends - t0
    span = max(float(ends.max()), 1e-3)
    n_bins = int(min(60, max(10, len(records) // 3)))
    edges = np.linspace(0.0, span, n_bins + 1)
    width = edges[1] - edges[0]
    stages = sorted({(r["stage_index"], r["stage"]) for r in records})
    fig = _figure(10, 5.4)
    ax_cum, ax_rate = fig.subplots(2, 1, sharex=True)
    rows = []
    for index, name in stages:
        sel = np.array([r["stage_index"] == index for r in records])
        rin = np.array([r["rows_in"] for r in records], dtype=float)[sel]
        s, e = starts[sel], ends[sel]
        order = np.argsort(e)
        label = f"{index + 1}. {name}"
        color = _stage_color(index)
        ax_cum.step(np.concatenate([[0], e[order]]), np.concatenate([[0], np.cumsum(rin[order])]), where="post",
                    color=color, label=label, linewidth=1.6)
        # Spread each batch's rows evenly over its own [start, end] so the rate reflects when work happened.
        dur = np.maximum(e - s, 1e-9)
        overlap = np.clip(np.minimum(e[:, None], edges[None, 1:]) - np.maximum(s[:, None], edges[None, :-1]), 0, None)
        rate = (overlap * (rin / dur)[:, None]).sum(axis=0) / width
        ax_rate.stairs(rate, edges, color=color, label=label, linewidth=1.4)
        busy = float((e - s).sum())
        rows.append([label, int(sel.sum()), int(rin.sum()), f"{busy:.1f}", f"{float(s.min()):.1f}",
                     f"{float(e.max()):.1f}", f"{rin.sum() / max(busy, 1e-9):.2f}", f"{float(rate.max()):.2f}"])
    _style(ax_cum, "Throughput per stage over time", ylabel="rows done (cumulative)")
    _style(ax_rate, "", xlabel="seconds since the first batch started", ylabel="rows / s", counts=None)
    ax_cum.legend(fontsize=8, frameon=False, loc="upper left")
    table = TableBlock(["stage", "batches", "rows in", "busy s", "first start s", "last end s",
                        "rows/s per worker", "peak rows/s"], rows)
    return Section("throughput", "Throughput over time", "From the per-batch records the workers reported: "
                   "cumulative rows each stage finished, and its rate in time bins of "
                   f"{width:.2g} s.", _png(fig), [table])


def _teachers_section(run: RunData) -> Section | None:
    teachers = run.manifest.get("teachers")
    if not isinstance(teachers, dict) or not teachers:
        return None
    names = sorted(teachers)
    stats = [teachers[n] or {} for n in names]

    def num(s, k):
        v = s.get(k)
        return float(v) if isinstance(v, (int, float)) else 0.0

    rows = [[n, s.get("model", "–"), _fmt(s.get("requests")), _fmt(s.get("cache_hits")), _fmt(s.get("failures")),
             _fmt(s.get("prompt_tokens")), _fmt(s.get("completion_tokens")),
             _fmt(s.get("latency_p50_s")), _fmt(s.get("latency_p95_s")), _fmt(s.get("tokens_per_s"))]
            for n, s in zip(names, stats)]
    table = TableBlock(["teacher", "model", "requests", "cache hits", "failures", "prompt tokens",
                        "completion tokens", "latency p50 s", "latency p95 s", "completion tok/s"], rows)
    fig = _figure(10, max(2.4, 0.45 * len(names) + 1.4))
    ax_tok, ax_lat = fig.subplots(1, 2)
    y = np.arange(len(names))[::-1]
    prompt = np.array([num(s, "prompt_tokens") for s in stats])
    completion = np.array([num(s, "completion_tokens") for s in stats])
    ax_tok.barh(y, prompt, color="#90cdf4", label="prompt")
    ax_tok.barh(y, completion, left=prompt, color=PALETTE[0], label="completion")
    ax_tok.set_yticks(y, [_short(n, 20) for n in names])
    _style(ax_tok, "Teacher tokens", xlabel="tokens", counts="x", grid="x")
    ax_tok.legend(fontsize=8, frameon=False)
    h = 0.38
    ax_lat.barh(y + h / 2, [num(s, "latency_p50_s") for s in stats], h, color="#fbd38d", label="p50")
    ax_lat.barh(y - h / 2, [num(s, "latency_p95_s") for s in stats], h, color=PALETTE[1], label="p95")
    ax_lat.set_yticks(y, [_short(n, 20) for n in names])
    _style(ax_lat, "Teacher latency", xlabel="seconds per request", counts=None, grid="x")
    ax_lat.legend(fontsize=8, frameon=False)
    return Section("teachers", "Teachers", "Requests, tokens and latency per teacher model (cache hits cost no "
                   "tokens).", _png(fig), [table])


def _counts(table: pa.Table, col: str) -> list[tuple[str, int]]:
    if col not in table.column_names:
        return []
    vc = pc.value_counts(pc.drop_null(table[col])).to_pylist()
    return sorted(((str(d["values"]), int(d["counts"])) for d in vc), key=lambda kv: (-kv[1], kv[0]))


def _qa_types_section(run: RunData) -> Section | None:
    if run.data is None:
        return None
    tasks, qtypes = _counts(run.data, R.TASK), _counts(run.data, R.QUESTION_TYPE)
    panels = [(t, c) for t, c in (("Tasks", tasks), ("Question types", qtypes)) if c]
    if not panels:
        return None
    fig = _figure(10, max(2.4, 0.3 * max(len(c) for _, c in panels) + 1.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, counts), color in zip(axes, panels, (PALETTE[3], PALETTE[5])):
        y = np.arange(len(counts))[::-1]
        bars = ax.barh(y, [c for _, c in counts], color=color)
        ax.set_yticks(y, [_short(k, 22) for k, _ in counts])
        ax.bar_label(bars, padding=3, fontsize=8)
        _style(ax, title, xlabel="samples", counts="x", grid="x")
    tables = [TableBlock([title.lower().rstrip("s"), "samples", "share"],
                         [[k, v, f"{100 * v / sum(c for _, c in counts):.1f}%"] for k, v in counts])
              for title, counts in panels]
    return Section("qa_types", "Sample tasks and question types", "How the kept samples split over tasks and "
                   "question types.", _png(fig), tables)


def answer_position_balance(answer_index: np.ndarray, n_options: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Observed count per answer position and the count expected if the correct option were placed
    uniformly at random among each question's own options."""
    answer_index = answer_index.astype(int)
    k = int(max(answer_index.max() + 1, n_options.max() if n_options is not None and n_options.size else 0))
    observed = np.bincount(answer_index, minlength=k).astype(float)
    if n_options is None:
        expected = np.full(k, answer_index.size / k)
    else:
        n = np.maximum(n_options.astype(int), answer_index + 1)   # a malformed row still counts once
        expected = np.zeros(k)
        for size, count in zip(*np.unique(n, return_counts=True)):
            expected[:size] += count / size
    return observed, expected


def _answer_position_section(run: RunData) -> Section | None:
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
    fig = _figure(10, 3.0)
    ax = fig.add_subplot()
    x = np.arange(observed.size)
    bars = ax.bar(x, observed, 0.6, color=PALETTE[0], label="correct answer here")
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.stairs(expected, np.arange(observed.size + 1) - 0.5, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.3,
              label="expected if uniform")
    ax.set_xticks(x, letters)
    _style(ax, "MCQ answer-position balance", xlabel="position of the correct option", ylabel="questions")
    ax.legend(fontsize=8, frameon=False)
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
    p_value = _chi_square_p(observed, expected)
    if p_value is not None:
        text += f"; chi-square test of uniform placement: p = {p_value:.3g}"
    return Section("answer_positions", "Answer-position balance", text + ".", _png(fig), [table])


def _chi_square_p(observed: np.ndarray, expected: np.ndarray) -> float | None:
    """Goodness-of-fit p-value, when SciPy is importable (it is optional for vdata)."""
    try:
        from scipy.stats import chisquare
    except ImportError:
        return None
    used = expected > 0
    if used.sum() < 2:
        return None
    return float(chisquare(observed[used], expected[used] * observed[used].sum() / expected[used].sum()).pvalue)


def _versions_section(run: RunData) -> Section | None:
    versions = run.manifest.get("versions") or {}
    tables = []
    if versions:
        tables.append(TableBlock(["package", "version"], [[k, v] for k, v in versions.items()], numeric=False))
    hashes = run.manifest.get("stage_hashes") or {}
    if hashes:
        tables.append(TableBlock(["stage", "config hash"], [[k, v] for k, v in hashes.items()], numeric=False))
    if not tables:
        return None
    return Section("versions", "Versions", "What produced this dataset.", tables=tables)


def _config_section(run: RunData) -> Section | None:
    text = run.manifest.get("config_text")
    if not text:
        return None
    return Section("config", "Config", "As written (environment variables not interpolated).",
                   preformatted=text, collapsed=True)


SECTION_BUILDERS = (_summary_section, _stages_section, _rejects_section, _duration_section, _shots_section,
                    _quality_section, _throughput_section, _teachers_section, _qa_types_section,
                    _answer_position_section, _versions_section, _config_section)


def build_sections(run: RunData) -> list[Section]:
    """Every section whose data exists. A section that fails becomes a visible note, not a lost report."""
    sections = []
    for builder in SECTION_BUILDERS:
        try:
            s = builder(run)
        except Exception as e:
            run.warnings.append(f"{builder.__name__.strip('_').replace('_section', '')}: "
                                f"{traceback.format_exception_only(type(e), e)[-1].strip()}")
            continue
        if s is not None:
            sections.append(s)
    return sections


# --------------------------------------------------------------------------- rendering
CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f7fafc;color:#1a202c;font:14px/1.5 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",
Helvetica,Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:28px 24px 60px}
header h1{font-size:26px;margin:0 0 4px}
header p{margin:0;color:#4a5568}
nav{margin:16px 0 8px;display:flex;flex-wrap:wrap;gap:6px}
nav a{font-size:12px;padding:3px 10px;border-radius:999px;background:#e2e8f0;color:#2d3748;text-decoration:none}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:18px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:12px 14px}
.card .v{font-size:22px;font-weight:600}
.card .k{font-size:12px;color:#718096;text-transform:uppercase;letter-spacing:.04em}
section{background:#fff;border:1px solid #e2e8f0;border-radius:12px;padding:18px 22px;margin:18px 0}
section h2{font-size:18px;margin:0 0 6px}
section p{margin:4px 0 12px;color:#4a5568}
img{max-width:100%;height:auto;display:block;margin:8px 0 14px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px;min-width:40%}
th,td{padding:5px 12px;border-bottom:1px solid #edf2f7;text-align:left}
th{background:#f7fafc;color:#4a5568;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fbfdff}
pre{background:#1a202c;color:#e2e8f0;padding:14px;border-radius:8px;overflow:auto;font-size:12px}
.warn{background:#fffaf0;border:1px solid #f6ad55;border-radius:8px;padding:10px 14px;color:#7b341e}
summary{cursor:pointer;font-weight:600}
footer{color:#a0aec0;font-size:12px;text-align:center}
"""


def _is_number(v) -> bool:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return True
    s = str(v).replace(",", "").rstrip("%s ").lstrip("+")
    try:
        float(s)
        return True
    except ValueError:
        return False


def _html_table(t: TableBlock) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in t.headers) if any(t.headers) else ""
    body = []
    for row in t.rows:
        cells = "".join(f'<td class="n">{html.escape(_fmt(v))}</td>' if t.numeric and j and _is_number(v)
                        else f"<td>{html.escape(_fmt(v))}</td>" for j, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    return f"<table>{cap}{'<thead><tr>' + head + '</tr></thead>' if head else ''}<tbody>{''.join(body)}</tbody></table>"


def _cards(run: RunData) -> str:
    m = run.manifest
    kept, rej = m.get("rows", 0) or 0, m.get("rejects", 0) or 0
    items = [("rows written", _fmt(kept)), ("rejects", _fmt(rej)), ("input videos", _fmt(m.get("inputs"))),
             ("wall time", f"{m.get('wall_s', 0):.1f} s"), ("level", run.level or "–")]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{html.escape(k)}</div><div class="v">{html.escape(v)}</div></div>'
        for k, v in items) + "</div>"


def render_html(run: RunData, sections: list[Section]) -> str:
    name = run.manifest.get("name", "vdata build")
    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
             f'<meta name="viewport" content="width=device-width,initial-scale=1">'
             f"<title>vdata report: {html.escape(name)}</title><style>{CSS}</style></head><body><main>",
             f"<header><h1>vdata run report: {html.escape(name)}</h1>"
             f"<p>run {html.escape(str(run.manifest.get('run_id', '–')))} · written "
             f"{time.strftime('%Y-%m-%d %H:%M:%S')} · {html.escape(os.path.abspath(run.output_dir))}</p></header>",
             "<nav>" + "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections) + "</nav>",
             _cards(run)]
    if run.warnings:
        parts.append('<div class="warn"><b>Report warnings</b><ul>' +
                     "".join(f"<li>{html.escape(w)}</li>" for w in run.warnings) + "</ul></div>")
    for s in sections:
        inner = [f"<p>{html.escape(s.text)}</p>" if s.text else ""]
        if s.plot:
            inner.append(f'<img alt="{html.escape(s.plot.alt or s.title)}" src="data:image/png;base64,'
                         f'{base64.b64encode(s.plot.png).decode()}">')
        inner.extend(_html_table(t) for t in s.tables)
        if s.preformatted:
            inner.append(f"<pre>{html.escape(s.preformatted)}</pre>")
        body = "".join(inner)
        if s.collapsed:
            body = f"<details><summary>show</summary>{body}</details>"
        parts.append(f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>{body}</section>')
    parts.append("<footer>generated by vdata · self-contained: no scripts, no network</footer></main></body></html>")
    return "".join(parts)


def _md_cell(v) -> str:
    return _fmt(v).replace("|", "\\|").replace("\n", " ")


def _md_table(t: TableBlock) -> str:
    headers = [h or " " for h in t.headers]
    align = ["---"] + ["--:" if t.numeric and t.rows and _is_number(t.rows[0][j]) else "---"
                       for j in range(1, len(headers))]
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in t.rows]
    return "\n".join(lines)


def render_markdown(run: RunData, sections: list[Section], image_paths: dict[str, str]) -> str:
    name = run.manifest.get("name", "vdata build")
    out = [f"# vdata run report: {name}", "",
           f"run `{run.manifest.get('run_id', '–')}` · written {time.strftime('%Y-%m-%d %H:%M:%S')} · "
           f"`{os.path.abspath(run.output_dir)}`", "",
           " · ".join(f"[{s.title}](#{s.key.replace('_', '-')})" for s in sections), ""]
    if run.warnings:
        out += ["> **Report warnings**", ">"] + [f"> - {w}" for w in run.warnings] + [""]
    for s in sections:
        out += [f'<a id="{s.key.replace("_", "-")}"></a>', "", f"## {s.title}", ""]
        if s.text:
            out += [s.text, ""]
        if s.key in image_paths:
            alt = (s.plot.alt or s.title).replace("[", "(").replace("]", ")")
            out += [f"![{alt}]({image_paths[s.key]})", ""]
        for t in s.tables:
            out += [_md_table(t), ""]
        if s.preformatted:
            out += ["```yaml", s.preformatted.rstrip("\n"), "```", ""]
    return "\n".join(out)


def write_report(output_dir: str | os.PathLike) -> tuple[str, str]:
    """Write `report.html` and `report.md` (+ `report_assets/*.png`) into a build's output folder."""
    output_dir = str(output_dir)
    run = load_run(output_dir)
    sections = build_sections(run)
    assets = os.path.join(output_dir, ASSETS_DIR)
    if os.path.isdir(assets):   # the folder is the report's own: stale plots of an earlier run go
        shutil.rmtree(assets)
    image_paths = {}
    figures = [s for s in sections if s.plot]
    if figures:
        os.makedirs(assets)
    for i, s in enumerate(figures, 1):
        rel = f"{ASSETS_DIR}/{i:02d}_{s.key}.png"
        Path(output_dir, rel).write_bytes(s.plot.png)
        image_paths[s.key] = rel
    html_path = os.path.join(output_dir, HTML_NAME)
    md_path = os.path.join(output_dir, MD_NAME)
    _write_atomic(html_path, render_html(run, sections))
    _write_atomic(md_path, render_markdown(run, sections, image_paths))
    return html_path, md_path


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    Path(tmp).write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@click.command("report")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
def report_cmd(out_dir):
    """Write report.html and report.md for the finished build in OUT_DIR."""
    try:
        html_path, md_path = write_report(out_dir)
    except FileNotFoundError as e:
        raise click.ClickException(str(e))
    click.echo(html_path)
    click.echo(md_path)
