"""Time renderers: round trips, bounds, the edge times 0 and the visual's duration, specs with bins.

The expected token forms come from the models' own code (see the table in vdata/exporters/timefmt.py):
LITA k = round((T-1) t / d) as `<tk>`; Grounded-VideoLLM k = min(int(N t / d), N) as `<k>`; VTG-LLM
six digit tokens DDDD.D; TimeSuite "a - b seconds" with one decimal.
"""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from vdata.exporters.cli import export_cmd
from vdata.exporters.timefmt import (
    TIME_FORMAT_NAMES,
    TIME_FORMATS,
    TimeFormat,
    parse_time_format,
    parse_vtg_tokens,
    vtg_tokens,
)
from vdata.schemas.config import ExportSpec

ORIGIN, DURATION, FPS = 30.0, 87.5, 25.0
TIMES = [ORIGIN + x for x in (0.0, 0.04, 1.0, 12.34, 43.75, 86.0, DURATION)]
# the most a read-back time may be off: half a position (rounding formats), one bin (flooring), a decimal
# (a moment in `frames` is the frame shown then: it reads back as that frame's start, up to a frame before;
# `relative` is VTimeLLM's 100 positions capped at 99: the end reads back 1/100 of the duration early)
TOLERANCE = {"seconds": 0.05, "timesuite": 0.05, "vtg": 0.05, "bracketed": 0.005, "frames": 1 / FPS,
             "relative": DURATION / 100, "lita": DURATION / 99 / 2, "lita:20": DURATION / 19 / 2,
             "grounded_videollm": DURATION / 300, "grounded_videollm:7": DURATION / 7}


@pytest.mark.parametrize("spec", sorted(TOLERANCE))
def test_round_trip_points_and_spans(spec):
    tf = TimeFormat(spec, ORIGIN, DURATION, FPS)
    for t in TIMES:
        back = tf.parse_times(tf.point(t))
        assert len(back) == 1 and abs(back[0] - (t - ORIGIN)) <= TOLERANCE[spec] + 1e-9, (spec, t, tf.point(t), back)
    a, b = TIMES[2], TIMES[4]
    back = tf.parse_times(tf.span(a, b))
    assert len(back) == 2 and all(abs(x - (y - ORIGIN)) <= TOLERANCE[spec] + 1e-9 for x, y in zip(back, (a, b)))


@pytest.mark.parametrize("spec, first, last", [
    ("lita", "<t0>", "<t99>"), ("lita:20", "<t0>", "<t19>"),
    ("grounded_videollm", "<0>", "<300>"), ("grounded_videollm:7", "<0>", "<7>"),
    ("relative", "00", "99"), ("bracketed", "<0.00>", f"<{DURATION:.2f}>"),
    ("vtg", vtg_tokens(0) + " seconds", vtg_tokens(DURATION) + " seconds"),
    ("timesuite", "0.0 seconds", f"{DURATION:.1f} seconds"),
])
def test_edges_zero_and_duration_and_clamping(spec, first, last):
    tf = TimeFormat(spec, ORIGIN, DURATION, FPS)
    assert tf.point(ORIGIN) == first and tf.point(ORIGIN + DURATION) == last
    # times outside the visual clamp to its edges instead of writing tokens the model does not have
    assert tf.point(ORIGIN - 5) == first and tf.point(ORIGIN + DURATION + 100) == last


def test_token_indices_follow_each_models_code():
    tf = TimeFormat("lita", 0.0, 100.0)
    assert tf.point(50.0) == "<t50>" and tf.point(50.6) == "<t50>" and tf.point(51.0) == "<t50>"   # round(99 t/d)
    g = TimeFormat("grounded_videollm", 0.0, 100.0)
    assert g.point(50.0) == "<150>" and g.point(50.3) == "<150>" and g.point(50.4) == "<151>"        # int(300 t/d)
    # every token index stays inside the vocabulary the model adds
    for spec, top in (("lita:37", 36), ("grounded_videollm:41", 41)):
        tfx = TimeFormat(spec, 0.0, 13.0)
        ks = {int(re.sub(r"\D", "", tfx.point(x / 10))) for x in range(0, 131)}
        assert min(ks) == 0 and max(ks) == top and len(ks) >= min(top, 100) // 2


def test_vtg_tokens_are_six_digit_tokens():
    assert vtg_tokens(5) == "<TIME_ZERO><TIME_ZERO><TIME_ZERO><TIME_FIVE><TIME_DOT><TIME_ZERO>"
    assert vtg_tokens(123.45) .count("<TIME_") == 6
    for t in (0.0, 0.1, 9.9, 10.0, 123.4, 5000.0, 9999.9):
        assert parse_vtg_tokens(vtg_tokens(t)) == [round(t, 1)]
    with pytest.raises(ValueError, match="9999.9"):     # four integer digits at most: refused, never clamped
        vtg_tokens(12345.0)


def test_placeholders_render_in_every_format():
    text = "It starts at {{t:40}} and lasts {{span:40,50.5}}; not {{ this }}."
    for spec in TIME_FORMAT_NAMES:
        tf = TimeFormat(spec, ORIGIN, DURATION, FPS)
        out = tf.render_text(text)
        assert "{{t:" not in out and "{{span" not in out and "{{ this }}" in out
        assert tf.point(40) in out and tf.span(40, 50.5) in out
        assert tf.hint()


def test_specs_and_errors():
    assert parse_time_format("lita") == ("lita", 100) and parse_time_format("lita:64") == ("lita", 64)
    assert parse_time_format("grounded_videollm") == ("grounded_videollm", 300)
    assert parse_time_format("vtg") == ("vtg", None)
    for bad in ("lita:1", "lita:x", "vtg:10", "seconds:3", "minutes", ""):
        assert bad not in TIME_FORMATS
        with pytest.raises(ValueError):
            parse_time_format(bad)
    assert "lita:64" in TIME_FORMATS and "timesuite" in TIME_FORMATS
    with pytest.raises(ValueError, match="duration"):
        TimeFormat("lita", 0.0, None)
    with pytest.raises(ValueError, match="frame rate"):
        TimeFormat("frames", 0.0, 10.0, None)
    TimeFormat("vtg", 0.0, None)          # absolute formats need no duration


def test_config_and_cli_accept_specs(tmp_path):
    assert ExportSpec(format="llava", time="lita:50").time == "lita:50"
    assert ExportSpec(format="llava", time="grounded_videollm").time == "grounded_videollm"
    for bad in ("lita:0", "vtg:3", "minutes"):
        with pytest.raises(ValueError, match="time"):
            ExportSpec(format="llava", time=bad)
    out = tmp_path / "build"
    out.mkdir()
    res = CliRunner().invoke(export_cmd, [str(out), "--format", "llava", "--dest", str(tmp_path / "d"), "--time", "lita:1"])
    assert res.exit_code == 2 and "lita:1" in res.output
