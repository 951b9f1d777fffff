"""The run report's figures: matplotlib (object API, Agg) drawn from a section's plain numbers → PNG.

`FIGURES[section.key](**section.figure)` draws a matplotlib Figure; `draw` turns it into a `Plot`
(PNG bytes + the figure's titles as alt text).
Legends sit outside the axes so that they never cover a bar; crowded category labels are shortened and
turned so that they never overprint each other.
"""
from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

import numpy as np

from vdata.schemas import records as R

from .report_data import Plot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

KEPT_COLOR = "#2f855a"
REJECTED_COLOR = "#c53030"
THRESHOLD_COLOR = "#1a202c"
# Per-stage colours; no pure greens or reds, which mean kept / rejected everywhere in the report.
PALETTE = ["#3182ce", "#dd6b20", "#805ad5", "#319795", "#d53f8c", "#d69e2e", "#2c5282", "#718096",
           "#9c4221", "#553c9a"]
DPI = 100

# Quality score columns with a readable label.
QUALITY_LABELS = {
    R.Q_BRIGHTNESS: "brightness (mean luma)", R.Q_SHARPNESS: "sharpness (Laplacian var.)",
    R.Q_MOTION: "motion (flow px)", R.Q_DUP_RATIO: "duplicate-frame ratio", R.Q_TEXT_AREA: "text area share",
    R.Q_BORDER: "border share", R.Q_MIN_SIDE: "min side (px)", R.Q_ASPECT: "aspect (w/h)",
    R.Q_SUITABILITY: "suitability (0..1)",
}


# --------------------------------------------------------------------------- house style
def _figure(width: float, height: float):
    from matplotlib.figure import Figure   # object API: no pyplot global state, Agg canvas by default

    return Figure(figsize=(width, height), layout="constrained")


def _png(fig) -> Plot:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # A video named in Chinese or Arabic has letters the bundled font lacks: the plot shows boxes there
        # (the report's tables show the names), and a warning per letter would flood the build's output.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
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


def _legend_outside(ax, **kwargs) -> None:
    """Legend right of the axes (constrained layout makes room): it cannot cover a bar or a line."""
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **kwargs)


def _category_ticks(ax, positions, labels: list[str], width_in: float) -> None:
    """x tick labels that fit: shortened, and turned 30° when side by side they would overprint."""
    short = [_short(label, 18) for label in labels]
    # ~0.075 in per character at 8 pt; the labels share the axis width
    crowded = sum(len(s) for s in short) * 0.075 > 0.8 * width_in
    ax.set_xticks(positions, short, rotation=30 if crowded else 0, ha="right" if crowded else "center",
                  rotation_mode="anchor" if crowded else "default")


def _compact(value: float, _pos=None) -> str:
    """Tick label 12k / 1.5M instead of 12000 / 1500000."""
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:g}{unit}"
    return f"{value:g}"


def _stage_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


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


# --------------------------------------------------------------------------- one figure per section
def stages_figure(labels, rows_in, rows_out, rejected) -> Figure:
    fig = _figure(10, 3.2)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    w = 0.27
    ax.bar(x - w, rows_in, w, label="rows in", color="#a0aec0")
    ax.bar(x, rows_out, w, label="rows out", color=KEPT_COLOR)
    ax.bar(x + w, rejected, w, label="rejected", color=REJECTED_COLOR)
    _category_ticks(ax, x, labels, 8.5)
    _style(ax, "Rows through the stages", ylabel="rows")
    _legend_outside(ax)
    return fig


def rejects_figure(labels, counts, stages, stage_indexes) -> Figure:
    from matplotlib.patches import Patch

    fig = _figure(10, max(2.0, 0.36 * len(labels) + 1.0))
    ax = fig.add_subplot()
    y = np.arange(len(labels))[::-1]
    bars = ax.barh(y, counts, color=[_stage_color(i) for i in stage_indexes])
    ax.set_yticks(y, [_short(label, 40) for label in labels])
    ax.bar_label(bars, padding=3, fontsize=8)
    _style(ax, "Rejects by stage and reason", xlabel="rows rejected", counts="x", grid="x")
    legend = dict(zip(stages, (_stage_color(i) for i in stage_indexes)))   # one entry per stage, in order
    _legend_outside(ax, handles=[Patch(color=c, label=s) for s, c in legend.items()])
    return fig


def durations_figure(values, limits, title, unit) -> Figure:
    fig = _figure(10, 3.2)
    ax = fig.add_subplot()
    edges, log = _bins(values, 30)
    ax.hist(values, bins=edges, color=PALETTE[0], edgecolor="white")
    if log:
        ax.set_xscale("log")
    _mark_limits(ax, limits)
    _style(ax, title, xlabel="seconds", ylabel=unit)
    return fig


def shots_figure(names, kept, rejected) -> Figure:
    if len(names) <= 30:
        fig = _figure(10, max(2.2, 0.32 * len(names) + 1.0))
        ax = fig.add_subplot()
        y = np.arange(len(names))[::-1]
        ax.barh(y, kept, color=KEPT_COLOR, label="clips kept")
        ax.barh(y, rejected, left=kept, color=REJECTED_COLOR, label="clips rejected")
        ax.set_yticks(y, [_short(n) for n in names])
        _style(ax, "Shots per video", xlabel="shots (clips)", counts="x", grid="x")
    else:
        fig = _figure(10, 3.2)
        ax = fig.add_subplot()
        total = kept + rejected
        log = False
        if total.max() <= 60:
            edges = np.arange(0, total.max() + 2) - 0.5
        else:
            edges, log = _bins(np.maximum(total, 1).astype(float), 30)
        # drawn side by side: every video's shots detected, and how many of them were kept
        # (on a log axis, videos with no clip kept cannot be drawn: the table counts them)
        ax.hist([kept[kept > 0] if log else kept, total], bins=edges,
                color=[KEPT_COLOR, "#a0aec0"], label=["clips kept", "shots detected"])
        if log:
            ax.set_xscale("log")
        _style(ax, "Shots per video", xlabel="clips per video", ylabel="videos")
    _legend_outside(ax)
    return fig


def quality_figure(columns) -> Figure:
    ncols = 3
    nrows = -(-len(columns) // ncols)
    fig = _figure(11, 2.6 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, (col, kept, rejected, limits) in enumerate(columns):
        ax = axes[i // ncols][i % ncols]
        # the range includes the thresholds so that a cut outside the data still shows where it is
        edges, log = _bins(np.concatenate([kept, rejected, [v for _, v, _ in limits]]), 20)
        ax.hist([kept, rejected], bins=edges, stacked=True, color=[KEPT_COLOR, REJECTED_COLOR],
                label=["kept", "rejected"], edgecolor="white", linewidth=0.4)
        if log:
            ax.set_xscale("log")
        _mark_limits(ax, limits)
        _style(ax, QUALITY_LABELS.get(col, col), ylabel="clips" if i % ncols == 0 else "")
    for j in range(len(columns), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper right", ncols=2, fontsize=8, frameon=False)
    fig.suptitle("Quality scores, kept vs rejected clips (dashed: thresholds)", fontsize=11, x=0.01, ha="left",
                 fontweight="bold", color="#2d3748")
    return fig


def throughput_figure(edges, series, startup=None, from_start=False) -> Figure:
    fig = _figure(10, 5.4)
    ax_cum, ax_rate = fig.subplots(2, 1, sharex=True)
    if startup:   # the time before the first batch: Ray, teacher servers, listing the inputs
        for ax in (ax_cum, ax_rate):
            ax.axvspan(0, startup["until"], color="#e2e8f0", label="start-up" if ax is ax_cum else None)
            if "teachers_ready" in startup:
                ax.axvline(startup["teachers_ready"], color=THRESHOLD_COLOR, linestyle=":", linewidth=1.2,
                           label="teachers ready" if ax is ax_cum else None)
    for s in series:
        color = _stage_color(s["index"])
        ax_cum.step(s["done_at"], s["done"], where="post", color=color, label=s["label"], linewidth=1.6)
        ax_rate.stairs(s["rate"], edges, color=color, label=s["label"], linewidth=1.4)
    _style(ax_cum, "Throughput per stage over time", ylabel="rows done (cumulative)")
    ax_rate.set_xlim(0, edges[-1])
    _style(ax_rate, "", xlabel="seconds since the build started" if from_start else
           "seconds since the first batch started", ylabel="rows / s", counts=None)
    _legend_outside(ax_cum)
    return fig


def teachers_figure(names, prompt_tokens, completion_tokens, latency_p50_s, latency_p95_s) -> Figure:
    fig = _figure(10, max(2.4, 0.45 * len(names) + 1.4))
    ax_tok, ax_lat = fig.subplots(1, 2)
    y = np.arange(len(names))[::-1]
    labels = [_short(n, 20) for n in names]
    prompt = np.asarray(prompt_tokens, dtype=float)
    ax_tok.barh(y, prompt, color="#90cdf4", label="prompt")
    ax_tok.barh(y, completion_tokens, left=prompt, color=PALETTE[0], label="completion")
    ax_tok.set_yticks(y, labels)
    _style(ax_tok, "Teacher tokens", xlabel="tokens", counts="x", grid="x")
    ax_tok.xaxis.set_major_formatter(_compact)   # six-digit tick labels would run into each other
    _legend_outside(ax_tok)
    h = 0.38
    ax_lat.barh(y + h / 2, latency_p50_s, h, color="#fbd38d", label="p50")
    ax_lat.barh(y - h / 2, latency_p95_s, h, color=PALETTE[1], label="p95")
    ax_lat.set_yticks(y, labels)
    _style(ax_lat, "Teacher latency", xlabel="seconds per request", counts=None, grid="x")
    _legend_outside(ax_lat)
    return fig


def qa_types_figure(panels) -> Figure:
    fig = _figure(10, max(2.4, 0.3 * max(len(c) for _, c in panels) + 1.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, counts), color in zip(axes, panels, (PALETTE[3], PALETTE[5])):
        y = np.arange(len(counts))[::-1]
        bars = ax.barh(y, [c for _, c in counts], color=color)
        ax.set_yticks(y, [_short(k, 22) for k, _ in counts])
        ax.bar_label(bars, padding=3, fontsize=8)
        _style(ax, title, xlabel="samples", counts="x", grid="x")
    return fig


def answer_positions_figure(letters, observed, expected) -> Figure:
    fig = _figure(10, 3.0)
    ax = fig.add_subplot()
    x = np.arange(len(letters))
    bars = ax.bar(x, observed, 0.6, color=PALETTE[0], label="correct answer here")
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.stairs(expected, np.arange(len(letters) + 1) - 0.5, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.3,
              label="expected if uniform")
    ax.set_xticks(x, letters)
    _style(ax, "MCQ answer-position balance", xlabel="position of the correct option", ylabel="questions")
    _legend_outside(ax)
    return fig


FIGURES = {"stages": stages_figure, "rejects": rejects_figure, "durations": durations_figure,
           "shots": shots_figure, "quality": quality_figure, "throughput": throughput_figure,
           "teachers": teachers_figure, "qa_types": qa_types_figure, "answer_positions": answer_positions_figure}


def draw(key: str, figure: dict) -> Plot:
    """The section's figure as PNG; `figure` holds the keyword arguments of its drawing function."""
    return _png(FIGURES[key](**figure))
