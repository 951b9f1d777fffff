"""The run report's figures: SVG charts (`svg_chart`) drawn from a section's plain numbers.

`FIGURES[section.key](**section.figure)` builds a `Chart`; `draw` turns it into a `Plot` (the SVG text + the
figure's titles as alt text).
Legends sit outside the axes so that they never cover a bar; crowded category labels are shortened and
turned so that they never overprint each other.
"""
from __future__ import annotations

import numpy as np

from vdata.schemas import records as R

from .report_data import Plot
from .svg_chart import Chart, Panel, compact

KEPT_COLOR = "#2f855a"
REJECTED_COLOR = "#c53030"
THRESHOLD_COLOR = "#1a202c"
DETECTED_COLOR = "#a0aec0"
# Per-stage colours; no pure greens or reds, which mean kept / rejected everywhere in the report.
PALETTE = ["#3182ce", "#dd6b20", "#805ad5", "#319795", "#d53f8c", "#d69e2e", "#2c5282", "#718096",
           "#9c4221", "#553c9a"]
PX_PER_IN = 100   # the figure sizes below are in inches at this many pixels each

# Quality score columns with a readable label.
QUALITY_LABELS = {
    R.Q_BRIGHTNESS: "brightness (mean luma)", R.Q_SHARPNESS: "sharpness (Laplacian var.)",
    R.Q_MOTION: "motion (flow px)", R.Q_DUP_RATIO: "duplicate-frame ratio", R.Q_TEXT_AREA: "text area share",
    R.Q_BORDER: "border share", R.Q_MIN_SIDE: "min side (px)", R.Q_ASPECT: "aspect (w/h)",
    R.Q_SUITABILITY: "suitability (0..1)",
}


SHARE_COLUMNS = {R.Q_DUP_RATIO, R.Q_TEXT_AREA, R.Q_BORDER, R.Q_SUITABILITY}   # scores on 0..1


# --------------------------------------------------------------------------- house style
def _chart(width_in: float, height_in: float, rows: int = 1, cols: int = 1, **kwargs) -> Chart:
    return Chart(round(width_in * PX_PER_IN), round(height_in * PX_PER_IN), rows, cols, **kwargs)


def _style(ax: Panel, title: str = "", xlabel: str = "", ylabel: str = "", counts: str | None = "y",
           grid: str = "y") -> None:
    """House style; `counts` names the axis that counts rows (whole-number ticks), `grid` the gridded one."""
    ax.title, ax.xlabel, ax.ylabel, ax.counts, ax.grid = title, xlabel, ylabel, counts, grid


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


def _mark_limits(ax: Panel, limits) -> None:
    """A dashed line per threshold, labelled on its kept side (a minimum right of it, a maximum left); labels
    step down so that a min and a max close together on the axis do not overprint."""
    for i, (label, value, op) in enumerate(limits):
        ax.vline(value, THRESHOLD_COLOR, note=label, note_right=op == "<", note_row=i)


# --------------------------------------------------------------------------- one figure per section
def stages_figure(labels, rows_in, rows_out, rejected) -> Chart:
    chart = _chart(10, 3.2)
    ax = chart.panel()
    x = np.arange(len(labels))
    w = 0.27
    ax.bars(x - w, rows_in, w, color=DETECTED_COLOR, label="rows in")
    ax.bars(x, rows_out, w, color=KEPT_COLOR, label="rows out")
    ax.bars(x + w, rejected, w, color=REJECTED_COLOR, label="rejected")
    ax.x_categories = [_short(label, 18) for label in labels]
    _style(ax, "Rows through the stages", ylabel="rows")
    ax.legend = True
    return chart


def rejects_figure(labels, counts, stages, stage_indexes) -> Chart:
    chart = _chart(10, max(2.0, 0.36 * len(labels) + 1.0))
    ax = chart.panel()
    y = np.arange(len(labels))[::-1]
    ax.bars(y, counts, 0.8, horizontal=True, colors=[_stage_color(i) for i in stage_indexes], values=True)
    ax.y_categories = [_short(label, 40) for label in labels][::-1]
    _style(ax, "Rejects by stage and reason", xlabel="rows rejected", counts="x", grid="x")
    for stage, index in dict(zip(stages, stage_indexes)).items():   # one entry per stage, in order
        ax.entries.append((stage, _stage_color(index), "box"))
    ax.legend = True
    return chart


def durations_figure(values, limits, title, unit) -> Chart:
    chart = _chart(10, 3.2)
    ax = chart.panel()
    values = np.asarray(values, dtype=float)
    edges, log = _bins(values, 30)
    ax.hist(edges, np.histogram(values, edges)[0], color=PALETTE[0])
    ax.x_log = log
    _mark_limits(ax, limits)
    _style(ax, title, xlabel="seconds", ylabel=unit)
    return chart


def shots_figure(names, kept, rejected) -> Chart:
    kept, rejected = np.asarray(kept), np.asarray(rejected)
    if len(names) <= 30:
        chart = _chart(10, max(2.2, 0.32 * len(names) + 1.0))
        ax = chart.panel()
        y = np.arange(len(names))[::-1]
        ax.bars(y, kept, 0.8, horizontal=True, color=KEPT_COLOR, label="clips kept")
        ax.bars(y, rejected, 0.8, base=kept, horizontal=True, color=REJECTED_COLOR, label="clips rejected")
        ax.y_categories = [_short(n) for n in names][::-1]
        _style(ax, "Shots per video", xlabel="shots (clips)", counts="x", grid="x")
    else:
        chart = _chart(10, 3.2)
        ax = chart.panel()
        total = kept + rejected
        log = False
        if total.max() <= 60:
            edges = np.arange(0, total.max() + 2) - 0.5
        else:
            edges, log = _bins(np.maximum(total, 1).astype(float), 30)
        # side by side in each bin: every video's shots detected, and how many of them were kept
        # (on a log axis, videos with no clip kept cannot be drawn: the table counts them)
        half = [(lo, float(np.sqrt(lo * hi)) if log else lo + (hi - lo) / 2, hi) for lo, hi in zip(edges[:-1], edges[1:])]
        for values, color, label, side in ((kept[kept > 0] if log else kept, KEPT_COLOR, "clips kept", 0),
                                           (total, DETECTED_COLOR, "shots detected", 1)):
            counts = np.histogram(values, edges)[0]
            for (lo, mid, hi), c in zip(half, counts):
                ax.hist([lo, mid] if side == 0 else [mid, hi], [c], color=color)
            ax.entries.append((label, color, "box"))
        ax.x_log = log
        _style(ax, "Shots per video", xlabel="clips per video", ylabel="videos")
    ax.legend = True
    return chart


def quality_figure(columns) -> Chart:
    ncols = 3
    nrows = -(-len(columns) // ncols)
    chart = _chart(11, 2.6 * nrows + 0.4, nrows, ncols,
                   title="Quality scores, kept vs rejected clips (dashed: thresholds)")
    for i, (col, kept, rejected, limits) in enumerate(columns):
        ax = chart.panel(i // ncols, i % ncols)
        kept, rejected = np.asarray(kept, dtype=float), np.asarray(rejected, dtype=float)
        # the range includes the thresholds so that a cut outside the data still shows where it is, and a
        # share's zero: 0.068 beside a cut at 0.08 is a small share, not one at the bottom of the scale
        floor = [0.0] if col in SHARE_COLUMNS else []
        edges, log = _bins(np.concatenate([kept, rejected, [v for _, v, _ in limits], floor]), 20)
        n_kept = np.histogram(kept, edges)[0]
        ax.hist(edges, n_kept, color=KEPT_COLOR)
        ax.hist(edges, np.histogram(rejected, edges)[0], base=n_kept, color=REJECTED_COLOR)
        ax.x_log = log
        _mark_limits(ax, limits)
        _style(ax, QUALITY_LABELS.get(col, col), ylabel="clips" if i % ncols == 0 else "")
    for j in range(len(columns), nrows * ncols):
        chart.hidden.add((j // ncols, j % ncols))
    chart.legend_entries = [("kept", KEPT_COLOR, "box"), ("rejected", REJECTED_COLOR, "box")]
    return chart


def throughput_figure(edges, series, startup=None, from_start=False) -> Chart:
    chart = _chart(10, 5.4, 2, 1, sharex=True)
    ax_cum, ax_rate = chart.panel(0), chart.panel(1)
    if startup:   # the time before the first batch: Ray, teacher servers, listing the inputs
        for ax in (ax_cum, ax_rate):
            ax.vspan(0, startup["until"], "#e2e8f0", label="start-up" if ax is ax_cum else None)
            if "teachers_ready" in startup:
                ax.vline(startup["teachers_ready"], THRESHOLD_COLOR, dash="2 2", width=1.2,
                         label="teachers ready" if ax is ax_cum else None)
    for s in series:
        color = _stage_color(s["index"])
        ax_cum.step(s["done_at"], s["done"], color, label=s["label"])
        ax_rate.stairs(s["rate"], edges, color)
    _style(ax_cum, "Throughput per stage over time", ylabel="rows done (cumulative)")
    ax_cum.hide_x_ticks = True
    ax_rate.xlim = ax_cum.xlim = (0.0, float(edges[-1]))
    _style(ax_rate, "", xlabel="seconds since the build started" if from_start else
           "seconds since the first batch started", ylabel="rows / s", counts=None)
    ax_cum.legend = True
    return chart


def teachers_figure(names, prompt_tokens, completion_tokens, latency_p50_s, latency_p95_s) -> Chart:
    chart = _chart(10, max(2.4, 0.45 * len(names) + 1.4), 1, 2)
    ax_tok, ax_lat = chart.panel(0, 0), chart.panel(0, 1)
    y = np.arange(len(names))[::-1]
    labels = [_short(n, 20) for n in names][::-1]
    prompt = np.asarray(prompt_tokens, dtype=float)
    ax_tok.bars(y, prompt, 0.8, horizontal=True, color="#90cdf4", label="prompt")
    ax_tok.bars(y, completion_tokens, 0.8, base=prompt, horizontal=True, color=PALETTE[0], label="completion")
    ax_tok.y_categories = labels
    _style(ax_tok, "Teacher tokens", xlabel="tokens", counts="x", grid="x")
    ax_tok.x_format = compact   # six-digit tick labels would run into each other
    ax_tok.legend = True
    h = 0.38
    ax_lat.bars(y + h / 2, latency_p50_s, h, horizontal=True, color="#fbd38d", label="p50")
    ax_lat.bars(y - h / 2, latency_p95_s, h, horizontal=True, color=PALETTE[1], label="p95")
    ax_lat.y_categories = labels
    _style(ax_lat, "Teacher latency", xlabel="seconds per request", counts=None, grid="x")
    ax_lat.legend = True
    return chart


def qa_types_figure(panels) -> Chart:
    chart = _chart(10, max(2.4, 0.3 * max(len(c) for _, c in panels) + 1.2), 1, len(panels))
    for j, ((title, counts), color) in enumerate(zip(panels, (PALETTE[3], PALETTE[5]))):
        ax = chart.panel(0, j)
        y = np.arange(len(counts))[::-1]
        ax.bars(y, [c for _, c in counts], 0.8, horizontal=True, color=color, values=True)
        ax.y_categories = [_short(k, 22) for k, _ in counts][::-1]
        _style(ax, title, xlabel="samples", counts="x", grid="x")
    return chart


def answer_positions_figure(letters, observed, expected) -> Chart:
    chart = _chart(10, 3.0)
    ax = chart.panel()
    x = np.arange(len(letters))
    ax.bars(x, observed, 0.6, color=PALETTE[0], label="correct answer here", values=True)
    ax.stairs(expected, np.arange(len(letters) + 1) - 0.5, THRESHOLD_COLOR, label="expected if uniform", dash=True,
              width=1.3)
    ax.x_categories = list(letters)
    _style(ax, "MCQ answer-position balance", xlabel="position of the correct option", ylabel="questions")
    ax.legend = True
    return chart


FIGURES = {"stages": stages_figure, "rejects": rejects_figure, "durations": durations_figure,
           "shots": shots_figure, "quality": quality_figure, "throughput": throughput_figure,
           "teachers": teachers_figure, "qa_types": qa_types_figure, "answer_positions": answer_positions_figure}


def draw(key: str, figure: dict) -> Plot:
    """The section's figure as SVG; `figure` holds the keyword arguments of its drawing function."""
    chart = FIGURES[key](**figure)
    return Plot(chart.svg().encode("utf-8"), chart.title or " / ".join(chart.titles))
