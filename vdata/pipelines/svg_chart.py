"""Small SVG charts for the run report: bars, histograms, steps and thresholds on axes with ticks, grids and
legends that sit outside the plot.

Home-made, for a measured reason. On a one-video probe + shots build (2 cores, bench/bench_build_overhead.py),
the report's four matplotlib figures cost 1.6-2.2 s of the build's 3.9 s fixed cost: 0.7 s to import
`matplotlib.figure`, then 0.9-1.5 s to draw the PNGs (constrained layout draws each figure twice). These charts
are text: they render in milliseconds, stay sharp at any zoom, and show a video's name in any script with the
reader's own fonts (the PNGs drew boxes for letters their bundled font lacks).

A chart records where it drew each bar and legend (`Chart.boxes`, in pixels), so that tests can check that no
legend covers a bar and no tick labels overprint, without a renderer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

FONT = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
CHAR_W = 0.62   # mean advance of a letter in font sizes (DejaVu Sans, the widest of FONT): labels never run short
TICK_PX = 11
LABEL_PX = 12
TITLE_PX = 15
TEXT_COLOR = "#4a5568"
TITLE_COLOR = "#2d3748"
GRID_COLOR = "#e2e8f0"
SWATCH = 12


def text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR_W


def compact(value: float) -> str:
    """Tick label 12k / 1.5M instead of 12000 / 1500000."""
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:g}{unit}"
    return f"{value:g}"


def nice_ticks(lo: float, hi: float, integer: bool = False, n: int = 5) -> list[float]:
    """About `n` round ticks (1, 2, 2.5, 5 x 10^k) inside [lo, hi]; whole numbers only for counts."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer or mag < 1 else (1, 2, 2.5, 5, 10)
    step = next(m * mag for m in steps if m * mag >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    count = int(math.floor((hi - first) / step + 1e-9)) + 1
    return [round(first + i * step, 10) for i in range(max(count, 0))]


@dataclass
class Scale:
    """Data -> pixels along one axis; `log` maps decades evenly. `p0` -> `p1` may run downwards (y)."""
    lo: float
    hi: float
    p0: float = 0.0
    p1: float = 1.0
    log: bool = False

    def _t(self, v: float) -> float:
        return math.log10(max(v, 1e-300)) if self.log else v

    def __call__(self, v: float) -> float:
        lo, hi = self._t(self.lo), self._t(self.hi)
        f = (self._t(v) - lo) / (hi - lo) if hi != lo else 0.5
        return self.p0 + f * (self.p1 - self.p0)

    def ticks(self, integer: bool) -> list[float]:
        if not self.log:
            return nice_ticks(self.lo, self.hi, integer)
        lo, hi = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
        mults = (1, 2, 5) if hi - lo <= 2 else (1,)
        return [m * 10.0 ** e for e in range(lo, hi + 1) for m in mults if self.lo <= m * 10.0 ** e <= self.hi]


@dataclass
class Panel:
    """One set of axes. Draw calls take data coordinates; a category axis has its items at 0, 1, 2, …"""
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    counts: str | None = "y"        # the axis that counts rows: whole-number ticks
    grid: str = "y"
    x_log: bool = False
    y_log: bool = False
    x_categories: list[str] | None = None
    y_categories: list[str] | None = None
    xlim: tuple[float, float] | None = None
    legend: bool = False            # the legend right of the plot, outside it
    hide_x_ticks: bool = False      # a shared x axis labelled on the panel below
    x_format: object = None         # tick label function for x (e.g. compact)
    items: list = field(default_factory=list)
    entries: list = field(default_factory=list)   # legend (label, color, kind)

    def _entry(self, label, color, kind):
        if label and label not in [e[0] for e in self.entries]:
            self.entries.append((label, color, kind))

    def bars(self, positions, lengths, width=0.8, base=None, horizontal=False, color="#3182ce", label=None,
             colors=None, values=False):
        """Bars at category `positions` (floats allowed: grouped bars), `lengths` from `base` (stacked)."""
        base = list(base) if base is not None else [0.0] * len(lengths)
        for i, (p, v, b) in enumerate(zip(positions, lengths, base)):
            self.items.append(("bar", float(p), float(v), float(b), width, horizontal,
                               colors[i] if colors else color, values))
        self._entry(label, color, "box")

    def hist(self, edges, counts, base=None, color="#3182ce", label=None, outline="white"):
        """Histogram bins: bars that fill their bins on a numeric x axis."""
        base = list(base) if base is not None else [0.0] * len(counts)
        self.items.append(("range", float(edges[0]), float(edges[-1])))   # the bins' whole range, empty ones too
        for lo, hi, c, b in zip(edges[:-1], edges[1:], counts, base):
            if c > 0:
                self.items.append(("bin", float(lo), float(hi), float(c), float(b), color, outline))
        self._entry(label, color, "box")

    def step(self, xs, ys, color, label=None, dash=False, width=1.6):
        """A post-step line: each y holds until the next x."""
        self.items.append(("step", [float(x) for x in xs], [float(y) for y in ys], color, dash, width))
        self._entry(label, color, "dash" if dash else "line")

    def stairs(self, values, edges, color, label=None, dash=False, width=1.4):
        """A level per bin between `edges`."""
        xs = [float(e) for e in edges]
        ys = [float(v) for v in values] + [float(values[-1])] if len(values) else []
        self.items.append(("step", xs, ys, color, dash, width))
        self._entry(label, color, "dash" if dash else "line")

    def vspan(self, x0, x1, color, label=None):
        self.items.append(("vspan", float(x0), float(x1), color))
        self._entry(label, color, "box")

    def vline(self, x, color, dash="5 3", note=None, note_right=True, note_row=0, label=None, width=1.3):
        self.items.append(("vline", float(x), color, dash, note, note_right, note_row, width))
        self._entry(label, color, "dash")

    # ---------------------------------------------------------------- layout
    def extents(self) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for it in self.items:
            kind = it[0]
            if kind == "bar":
                _, p, v, b, w, horizontal, _, _ = it
                cat, val = (ys, xs) if horizontal else (xs, ys)
                cat += [p - w / 2, p + w / 2]
                val += [b, b + v, 0.0]
            elif kind == "bin":
                xs += [it[1], it[2]]
                ys += [it[4], it[4] + it[3], 0.0]
            elif kind == "step":
                xs += it[1]
                ys += it[2]
            elif kind in ("vspan", "range"):
                xs += [it[1], it[2]]
            elif kind == "vline":
                xs.append(it[1])
        return xs, ys

    def note_rows(self) -> int:
        """How many rows of threshold labels stand at the top of the plot."""
        return max((it[6] + 1 for it in self.items if it[0] == "vline" and it[4]), default=0)

    def tick_labels(self, axis: str, scale: Scale) -> list[tuple[float, str]]:
        cats = self.x_categories if axis == "x" else self.y_categories
        if cats is not None:
            return list(enumerate(cats))
        integer = self.counts == axis
        fmt = self.x_format if axis == "x" and self.x_format else None
        return [(t, fmt(t) if fmt else f"{t:g}") for t in scale.ticks(integer)]


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


class Chart:
    """A figure of `rows` x `cols` panels, `width` x `height` pixels, with an optional title over them all and
    an optional figure legend in the title's row. `sharex`: every panel shows the same x range, labelled on the
    bottom row only."""

    def __init__(self, width: int, height: int, rows: int = 1, cols: int = 1, title: str = "", sharex: bool = False):
        self.width, self.height, self.rows, self.cols = width, height, rows, cols
        self.title, self.sharex = title, sharex
        self.panels = [[Panel() for _ in range(cols)] for _ in range(rows)]
        self.hidden: set[tuple[int, int]] = set()
        self.legend_entries: list = []      # figure legend (label, color, kind), upper right
        self.boxes: list[tuple[str, float, float, float, float]] = []   # (kind, x0, y0, x1, y1) in pixels
        self.x_tick_px: dict[int, list[float]] = {}   # panel number -> x tick positions (category axes)
        self.x_tick_angle: dict[int, float] = {}

    def panel(self, row: int = 0, col: int = 0) -> Panel:
        return self.panels[row][col]

    @property
    def titles(self) -> list[str]:
        return [p.title for i, row in enumerate(self.panels) for j, p in enumerate(row)
                if p.title and (i, j) not in self.hidden]

    # ---------------------------------------------------------------- scales
    @staticmethod
    def _limits(values: list[float], log: bool, has_area: bool, categories) -> tuple[float, float]:
        if categories is not None:
            lo = min(values, default=-0.4)
            hi = max(values, default=len(categories) - 0.6)
            return min(lo, -0.4) - 0.1, max(hi, len(categories) - 0.6) + 0.1
        if log:
            pos = [v for v in values if v > 0] or [1.0]
            return min(pos) / 1.25, max(pos) * 1.25
        lo, hi = min(values, default=0.0), max(values, default=1.0)
        if has_area or lo >= 0 and hi > 0:
            lo = min(lo, 0.0)
        if hi == lo:
            hi = lo + 1.0
        return lo, hi + (hi - lo) * 0.05

    def _x_limits(self, panel: Panel) -> tuple[float, float]:
        if panel.xlim:
            return panel.xlim
        if self.sharex:
            xs = [x for row in self.panels for p in row for x in p.extents()[0]]
        else:
            xs = panel.extents()[0]
        if panel.x_categories is None and not panel.x_log and xs and any(it[0] == "bin" for it in panel.items):
            lo, hi = min(xs), max(xs)   # a histogram fills its range, as a bar chart starts at zero
            pad = (hi - lo) * 0.02 or 0.5
            return lo - pad, hi + pad
        has_area = any(it[0] == "bar" and it[5] for it in panel.items)
        return self._limits(xs, panel.x_log, has_area, panel.x_categories)

    # ---------------------------------------------------------------- drawing
    def svg(self) -> str:
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
               f'viewBox="0 0 {self.width} {self.height}" font-family="{FONT}">',
               f'<rect width="{self.width}" height="{self.height}" fill="white"/>']
        top = 0.0
        if self.title:
            out.append(_text(10, 20, self.title, TITLE_PX, TITLE_COLOR, bold=True))
            top = 30.0
        if self.legend_entries:
            width = sum(SWATCH + 10 + text_width(label, TICK_PX) + 14 for label, _, _ in self.legend_entries)
            self._legend(out, self.width - width - 8, 6, self.legend_entries, across=True)
            top = max(top, 30.0)
        cell_w, cell_h = self.width / self.cols, (self.height - top) / self.rows
        shown = [p for i, row in enumerate(self.panels) for j, p in enumerate(row) if (i, j) not in self.hidden]
        # panels that share an x axis share their plot's left and right edges, so that times line up
        align = (max(self._sides(p)[0] for p in shown), max(self._sides(p)[1] for p in shown)) if self.sharex else None
        n = 0
        for i, row in enumerate(self.panels):
            for j, panel in enumerate(row):
                n += 1
                if (i, j) in self.hidden:
                    continue
                self._panel(out, panel, n, j * cell_w, top + i * cell_h, cell_w, cell_h, align)
        out.append("</svg>")
        return "\n".join(out)

    def _scales(self, p: Panel) -> tuple[Scale, Scale]:
        ys = p.extents()[1]
        xlo, xhi = self._x_limits(p)
        has_area = any(it[0] == "bar" and not it[5] for it in p.items) or any(it[0] == "bin" for it in p.items)
        ylo, yhi = self._limits(ys, p.y_log, has_area, p.y_categories)
        return Scale(xlo, xhi, log=p.x_log), Scale(ylo, yhi, log=p.y_log)

    def _sides(self, p: Panel) -> tuple[float, float]:
        """Room left of the plot (tick labels, axis label) and right of it (the legend)."""
        yticks = p.tick_labels("y", self._scales(p)[1])
        left = 10 + max((text_width(t, TICK_PX) for _, t in yticks), default=0) + 8 + (LABEL_PX + 8 if p.ylabel else 0)
        legend_w = (SWATCH + 16 + max(text_width(e[0], TICK_PX) for e in p.entries)) if p.legend and p.entries else 0
        return left, legend_w + 14

    def _panel(self, out: list, p: Panel, number: int, x0: float, y0: float, w: float, h: float, align) -> None:
        xscale, yscale = self._scales(p)
        xticks, yticks = p.tick_labels("x", xscale), p.tick_labels("y", yscale)
        left, right = align or self._sides(p)
        plot_w = max(w - left - right, 40.0)
        angle = 0.0
        if p.x_categories is not None and not p.hide_x_ticks:
            used = sum(text_width(t, TICK_PX) + 8 for _, t in xticks)
            angle = 30.0 if used > 0.9 * plot_w else 0.0
        if p.hide_x_ticks:
            bottom = 8.0
        elif angle:
            longest = max((text_width(t, TICK_PX) for _, t in xticks), default=0)
            bottom = 8 + longest * math.sin(math.radians(angle)) + TICK_PX + 6
        else:
            bottom = 8 + TICK_PX + 8
        bottom += LABEL_PX + 10 if p.xlabel else 0
        top = (TITLE_PX + 14) if p.title else 10
        plot_h = max(h - top - bottom, 30.0)
        band = 6 + 13 * p.note_rows() if p.note_rows() else 0
        if band and plot_h > 2 * band and p.y_categories is None and not p.y_log:
            # the data stays below the threshold labels: a label's background never hides a bar's top
            yscale.hi = yscale.lo + (yscale.hi - yscale.lo) * plot_h / (plot_h - band)
            yticks = [(v, t) for v, t in p.tick_labels("y", yscale) if v <= yscale.hi]
        px0, py0 = x0 + left, y0 + top   # plot area's top-left corner
        xscale.p0, xscale.p1 = px0, px0 + plot_w
        yscale.p0, yscale.p1 = py0 + plot_h, py0
        if p.x_categories is None:   # numeric labels that would touch: every k-th one
            widest = max((text_width(t, TICK_PX) for _, t in xticks), default=0) + 10
            step = math.ceil(widest * len(xticks) / plot_w) if xticks else 1
            xticks = xticks[::step] if step > 1 else xticks
        self._grid(out, p, xscale, yscale, xticks, yticks, px0, py0, plot_w, plot_h)
        self._items(out, p, xscale, yscale, py0, plot_h)
        axis = TEXT_COLOR
        out.append(f'<path d="M{_num(px0)},{_num(py0)}V{_num(py0 + plot_h)}H{_num(px0 + plot_w)}" '
                   f'stroke="{axis}" fill="none" stroke-width="1"/>')
        for v, t in yticks:
            y = yscale(v)
            out.append(f'<path d="M{_num(px0 - 4)},{_num(y)}H{_num(px0)}" stroke="{axis}"/>')
            out.append(_text(px0 - 7, y + TICK_PX * 0.35, t, TICK_PX, axis, anchor="end"))
        if not p.hide_x_ticks:
            positions = []
            for v, t in xticks:
                x = xscale(v)
                positions.append(x)
                out.append(f'<path d="M{_num(x)},{_num(py0 + plot_h)}v4" stroke="{axis}"/>')
                ty = py0 + plot_h + 8 + TICK_PX * 0.8
                if angle:
                    out.append(_text(x, ty, t, TICK_PX, axis, anchor="end", rotate=(-angle, x, ty)))
                else:
                    out.append(_text(x, ty, t, TICK_PX, axis, anchor="middle"))
            if p.x_categories is not None:
                self.x_tick_px[number], self.x_tick_angle[number] = positions, angle
        if p.title:
            out.append(_text(px0, py0 - 9, p.title, TITLE_PX * 0.93, TITLE_COLOR, bold=True))
        if p.xlabel:
            out.append(_text(px0 + plot_w / 2, y0 + h - 8, p.xlabel, LABEL_PX, axis, anchor="middle"))
        if p.ylabel:
            cx, cy = x0 + 6 + LABEL_PX * 0.8, py0 + plot_h / 2
            out.append(_text(cx, cy, p.ylabel, LABEL_PX, axis, anchor="middle", rotate=(-90, cx, cy)))
        if p.legend and p.entries:
            self._legend(out, px0 + plot_w + 12, py0, p.entries)

    def _grid(self, out, p: Panel, xscale, yscale, xticks, yticks, px0, py0, plot_w, plot_h) -> None:
        if p.grid == "y" and p.y_categories is None:
            for v, _ in yticks:
                out.append(f'<path d="M{_num(px0)},{_num(yscale(v))}h{_num(plot_w)}" stroke="{GRID_COLOR}"/>')
        if p.grid == "x" and p.x_categories is None:
            for v, _ in xticks:
                out.append(f'<path d="M{_num(xscale(v))},{_num(py0)}v{_num(plot_h)}" stroke="{GRID_COLOR}"/>')

    def _items(self, out, p: Panel, xs: Scale, ys: Scale, py0: float, plot_h: float) -> None:
        notes = []
        order = {"range": 0, "vspan": 0, "bin": 1, "bar": 1, "step": 2, "vline": 3}
        for it in sorted(p.items, key=lambda it: order[it[0]]):
            kind = it[0]
            if kind == "range":
                continue
            if kind == "vspan":
                x0, x1 = xs(it[1]), xs(it[2])
                out.append(_rect(x0, py0, x1 - x0, plot_h, it[3]))
            elif kind == "bin":
                _, lo, hi, c, b, color, outline = it
                x0, x1, y0, y1 = xs(lo), xs(hi), ys(b + c), ys(b if b > 0 or not p.y_log else ys.lo)
                out.append(_rect(x0, y0, x1 - x0, y1 - y0, color, outline))
                self.boxes.append(("bar", x0, y0, x1, y1))
            elif kind == "bar":
                _, pos, v, b, w, horizontal, color, values = it
                if horizontal:
                    x0, x1 = sorted((xs(b), xs(b + v)))
                    y0, y1 = sorted((ys(pos + w / 2), ys(pos - w / 2)))
                else:
                    x0, x1 = xs(pos - w / 2), xs(pos + w / 2)
                    y0, y1 = sorted((ys(b + v), ys(b)))
                if v:
                    out.append(_rect(x0, y0, x1 - x0, y1 - y0, color))
                    self.boxes.append(("bar", x0, y0, x1, y1))
                if values:
                    label = f"{v:g}"
                    if horizontal:
                        out.append(_text(x1 + 3, (y0 + y1) / 2 + TICK_PX * 0.35, label, TICK_PX, TEXT_COLOR))
                    else:
                        out.append(_text((x0 + x1) / 2, y0 - 3, label, TICK_PX, TEXT_COLOR, anchor="middle"))
            elif kind == "step":
                _, x, y, color, dash, width = it
                pts = [(xs(x[0]), ys(y[0]))]
                for k in range(1, len(x)):
                    pts += [(xs(x[k]), ys(y[k - 1])), (xs(x[k]), ys(y[k]))]
                d = "M" + " L".join(f"{_num(a)},{_num(c)}" for a, c in pts)
                out.append(f'<path d="{d}" stroke="{color}" stroke-width="{width}" fill="none"'
                           + (' stroke-dasharray="5 3"' if dash else "") + "/>")
            elif kind == "vline":
                _, x, color, dash, note, right, row, width = it
                px = xs(x)
                out.append(f'<path d="M{_num(px)},{_num(py0)}v{_num(plot_h)}" stroke="{color}" '
                           f'stroke-width="{width}"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
                if note:
                    notes.append((px, color, note, right, row))
        for px, color, note, right, row in notes:   # last, in the band kept free above the data
            tw = text_width(note, TICK_PX * 0.9)
            tx = px + 4 if right else px - 4 - tw
            if tx + tw > xs.p1 or tx < xs.p0:   # it would leave its panel: the other side of its line
                tx = px - 4 - tw if right else px + 4
            tx = min(max(tx, xs.p0 + 2), xs.p1 - tw - 2)
            ty = py0 + 4 + 13 * row
            out.append(_rect(tx - 2, ty, tw + 4, TICK_PX + 3, "white", opacity=0.85))
            out.append(_text(tx, ty + TICK_PX, note, TICK_PX * 0.9, color))

    def _legend(self, out, x: float, y: float, entries, across: bool = False) -> None:
        x_start, widest = x, 0.0
        for label, color, kind in entries:
            if kind == "box":
                out.append(_rect(x, y + 2, SWATCH, SWATCH - 2, color))
            else:
                out.append(f'<path d="M{_num(x)},{_num(y + 7)}h{SWATCH}" stroke="{color}" stroke-width="2"'
                           + (' stroke-dasharray="4 2"' if kind == "dash" else "") + "/>")
            out.append(_text(x + SWATCH + 6, y + 11, label, TICK_PX, TEXT_COLOR))
            step = SWATCH + 10 + text_width(label, TICK_PX)
            widest = max(widest, step)
            if across:
                x += step + 14
            else:
                y += 18
        if across:
            self.boxes.append(("legend", x_start, y, x, y + 18))
        else:
            self.boxes.append(("legend", x_start, y - 18 * len(entries), x_start + widest, y))


def _rect(x, y, w, h, fill, stroke=None, opacity=None) -> str:
    extra = (f' stroke="{stroke}" stroke-width="0.6"' if stroke else "") + (
        f' fill-opacity="{opacity}"' if opacity is not None else "")
    return f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0))}" height="{_num(max(h, 0))}" fill="{fill}"{extra}/>'


def _text(x, y, text, size, color, anchor="start", bold=False, rotate=None) -> str:
    attrs = f'x="{_num(x)}" y="{_num(y)}" font-size="{_num(size)}" fill="{color}"'
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if bold:
        attrs += ' font-weight="bold"'
    if rotate:
        attrs += f' transform="rotate({_num(rotate[0])} {_num(rotate[1])} {_num(rotate[2])})"'
    return f"<text {attrs}>{escape(str(text))}</text>"
