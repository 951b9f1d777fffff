"""The report's SVG charts on awkward data: one value, all zeros, six decades, negative values, a billion,
labels of 40 letters, 1-40 categories. Every figure must stay well-formed XML with finite coordinates."""
from __future__ import annotations

import math
from pathlib import Path
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from vdata.pipelines import report_figures as F
from vdata.pipelines.svg_chart import Scale, nice_ticks

NUMBER_ATTRS = ("x", "y", "width", "height")


def values(rng, n: int, kind: str) -> np.ndarray:
    return {"uniform": lambda: rng.uniform(0, 10, n), "constant": lambda: np.full(n, 3.0),
            "decades": lambda: np.geomspace(0.01, 1e5, n), "small ints": lambda: rng.integers(0, 3, n).astype(float),
            "huge": lambda: rng.uniform(0, 1e9, n), "signed": lambda: rng.uniform(-5, 5, n)}[kind]()


def charts(rng, n: int, kind: str) -> list:
    labels = [f"stage {i} " + "x" * int(rng.integers(0, 30)) for i in range(n)]
    counts = rng.integers(0, 1000, n)
    edges = np.linspace(0, float(rng.uniform(0.1, 1000)), 11)
    return [
        F.stages_figure(labels, counts, counts // 2, counts - counts // 2),
        F.rejects_figure(labels, rng.integers(1, 500, n), [f"s{i % 3}" for i in range(n)], [i % 3 for i in range(n)]),
        F.durations_figure(values(rng, n, kind), [("min_s=1", 1.0, "<"), ("max_s=5", 5.0, ">")], "Clip durations", "clips"),
        F.shots_figure([f"v{i}.mp4" for i in range(n)], rng.integers(0, 100, n), rng.integers(0, 5, n)),
        F.quality_figure([("q_brightness", values(rng, n, kind), values(rng, max(1, n // 3), kind),
                           [("brightness_min=2", 2.0, "<")])] * int(rng.integers(1, 5))),
        F.throughput_figure(edges, [{"label": "1. probe", "index": 0, "done_at": np.sort(rng.uniform(0, edges[-1], 5)),
                                     "done": np.arange(5), "rate": rng.uniform(0, 5, 10)}],
                            {"until": 1.0, "teachers_ready": 0.5}, True),
        F.teachers_figure(["writer", "judge"], [1e6, 0], [5, 0], [0.1, 0.0], [2.0, 0.0]),
        F.qa_types_figure([("Tasks", [("open_qa", 3), ("mcq", 0)]), ("Question types", [("why", 1)])]),
        F.answer_positions_figure(["A", "B", "C", "D"], [0, 0, 0, 0], [0.0] * 4),
    ]


@pytest.mark.parametrize("kind", ["uniform", "constant", "decades", "small ints", "huge", "signed"])
def test_every_figure_draws_well_formed_svg_with_finite_coordinates(kind):
    rng = np.random.default_rng(len(kind))
    for n in (1, 2, 7, 40):
        for chart in charts(rng, n, kind):
            svg = chart.svg()
            root = ET.fromstring(svg)
            for el in root.iter():
                for attr in NUMBER_ATTRS:
                    if attr in el.attrib:
                        assert math.isfinite(float(el.attrib[attr])), (kind, n, el.tag, el.attrib)
                d = el.attrib.get("d", "")
                assert not re.search(r"nan|inf", d, re.IGNORECASE), (kind, n, d[:80])
            assert chart.width > 0 and chart.height > 0


def test_ticks_are_round_and_inside_the_range():
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0, 3.2, integer=True) == [0, 1, 2, 3]   # counts: whole numbers only
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(5, 5) == [5]
    log = Scale(0.5, 2000, log=True)
    assert log.ticks(False) == [1.0, 10.0, 100.0, 1000.0]    # decades on a log axis
    assert Scale(0, 10, 100, 200)(5) == 150 and Scale(0, 10, 200, 100)(10) == 100   # y runs downwards


def test_a_template_cache_that_cannot_be_written_costs_a_compile_not_the_report(tmp_path, monkeypatch):
    import tempfile

    from vdata.pipelines import report

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    assert report._bytecode_cache() is not None   # the builds' cache, in this user's temp folder
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", full_disk)   # what dump_bytecode writes through
    env = report._environment.__wrapped__()
    env.bytecode_cache = report._TemplateCache(str(tmp_path))   # empty: compiled, then the dump is refused
    assert "<html" in env.get_template("report.html.j2").render(
        name="x", run_id="r", written="now", output_dir="/o", sections=[], warnings=[], cards=[]).lower()


def test_one_value_is_one_narrow_bar_in_a_padded_range_and_a_share_starts_at_zero():
    """Outside check h8: one 3.0 s clip filled the plot's width with ticks 3, 3.01, 3.02, 3.03 (the axis
    spanned only the bins that held a value), and a text-area share of 0.068 was drawn from 0.066."""
    chart = F.durations_figure(np.array([3.0]), [], "Clip durations", "clips")
    chart.svg()
    bars = [b for b in chart.boxes if b[0] == "bar"]
    assert len(bars) == 1 and bars[0][3] - bars[0][1] < 0.1 * chart.width
    quality = F.quality_figure([("q_text_area", np.array([0.068]), np.array([]), [("text_area_max=0.08", 0.08, ">")])])
    svg = quality.svg()
    assert re.search(r">0</text>", svg)   # the share's axis starts at zero


def test_threshold_labels_stay_in_their_panel_and_above_the_bars():
    """Outside check h8: a minimum's label at the right end of its panel ran into the next panel, and the
    labels' white backgrounds hid the tops of bars."""
    quality = F.quality_figure([("q_sharpness", np.array([]), np.array([2.0, 5.0, 25.0]), [("sharpness_min=30", 30.0, "<")]),
                                ("q_motion", np.array([0.2, 0.3]), np.array([0.01]), [("motion_min=0.05", 0.05, "<"),
                                                                                      ("motion_max=12", 12.0, ">")])] * 2)
    svg = quality.svg()
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    notes = [el for el in root.iter(ns + "rect") if el.get("fill") == "white" and el.get("fill-opacity")]
    bars = [b[1:] for b in quality.boxes if b[0] == "bar"]
    assert notes
    third = quality.width / 3
    for el in notes:
        x, y, w, h = (float(el.get(k)) for k in ("x", "y", "width", "height"))
        assert int(x // third) == int((x + w) // third), "a label crosses into the next panel"
        assert not any(x < b[2] and b[0] < x + w and y < b[3] and b[1] < y + h for b in bars), "a label hides a bar"


def test_report_markdown_shows_markup_in_names_literally():
    from vdata.pipelines.report import _md_text

    assert _md_text("pipe|a *star* [x](y) <i>it</i> q_a.mp4") == r"pipe|a \*star\* [x\](y) \<i\>it\</i\> q_a.mp4"
    assert _md_text("speech: [1.0-1.8 s] the ball") == "speech: [1.0-1.8 s] the ball"
    template = (Path(F.__file__).parent / "templates" / "report.md.j2").read_text()
    assert "c.title | md_text" in template and "text | md_text" in template
