"""Time rendering findings of outside test h20 (vdata/exporters/timefmt.py and the exporters using it).

- F3: in `frames`, a time and a span's start at the same instant name the same frame (the frame shown
  then), and a span's last frame is the one before the next span's first: a chapter's start is one frame in
  chapter_grounding ({{t:..}}), chapter_generation and chapter_title ({{span:..}}).
- F4: decimals round half up on the decimal time (12.25 -> 12.3, like 15.75 -> 15.8), in seconds, timesuite,
  vtg tokens and bracketed.
- F5: the position formats (relative, lita, grounded_videollm) never write a span whose end index is not
  after its start ("99 - 99"); the lmms-eval export's gold answers score IoU ~1 with its own utils.py.
- F11: `vtg` cannot write a time past 9999.9 s: such samples are skipped with a counted reason
  (`time_out_of_range`) by every exporter, never written as a clamped 9999.9.
"""
from __future__ import annotations

import importlib.util
import json
import random
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from vdata.exporters import export
from vdata.exporters.dialog import SampleError
from vdata.exporters.timefmt import RELATIVE_KINDS, TimeFormat, parse_vtg_tokens, vtg_tokens
from vdata.schemas import records as R

from test_export_times import _build   # noqa: E402  (the small samples build, one writer)

OUT_OF_RANGE = "time_out_of_range"   # the skip reason (timefmt.OUT_OF_RANGE)
TOP = {"relative": 99, "lita": 99, "lita:20": 19, "grounded_videollm": 300, "grounded_videollm:40": 40}


# --- a small samples build (video-scope rows; `--media none` only needs the file to exist) --------------

def _video_row(path: Path, vid: str, dur: float, fps: float = 25.0) -> dict:
    return {R.PATH: str(path), R.VIDEO_ID: vid, R.DURATION_S: dur, R.FPS: fps, R.CLIP_ID: f"{vid}:video",
            R.START_S: 0.0, R.END_S: dur, R.SAMPLE_SCOPE: R.SCOPE_VIDEO}


def _sample(row: dict, sid: str, task: str, question: str, answer: str | None = None, **extra) -> dict:
    return {**row, R.SAMPLE_ID: sid, R.TASK: task, R.QUESTION_TYPE: task, R.QUESTION: question, R.ANSWER: answer,
            **extra}


def _media(tmp_path: Path, name: str) -> Path:
    p = tmp_path / "media" / name
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(b"not decoded with --media none")
    return p


def _records(dest: Path) -> dict:
    """id -> (user text, assistant text) of every llava record under dest."""
    out = {}
    for f in dest.glob("*.json"):
        for rec in json.loads(f.read_text()):
            if isinstance(rec, dict) and "conversations" in rec:
                out[rec["id"]] = tuple(c["value"] for c in rec["conversations"][:2])
    return out


def _import_utils(dest: Path):
    spec = importlib.util.spec_from_file_location(f"h20_utils_{dest.name}", dest / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- F3 -------------------------------------------------------------------------------------------------

CHAPTERS = [(0.0, "First"), (10.5, "Second"), (15.25, "Third")]   # the tester's b20.mp4: 20 s at 25 fps


def test_f3_a_chapter_start_is_one_frame_as_moment_and_as_span():
    tf = TimeFormat("frames", 0.0, 20.0, 25.0)
    ends = [c[0] for c in CHAPTERS[1:]] + [20.0]
    spans = [tf.frame_span(a, b) for (a, _), b in zip(CHAPTERS, ends)]
    # 10.5 s is inside frame 262 (shown 10.48-10.52): the moment and the span both open on it
    assert tf.point(10.5) == "frame 262" and spans[1][0] == 262
    assert tf.point(15.25) == "frame 381" and spans[2][0] == 381
    assert spans == [(0, 261), (262, 380), (381, 499)]
    for (a, _), (first, _last) in zip(CHAPTERS, spans):
        assert tf.frame_at(a) == first
    # placeholders as the chapter tasks write them agree
    generation = tf.render_text("\n".join(f"{{{{span:{a},{b}}}}} {t}" for (a, t), b in zip(CHAPTERS, ends)))
    assert generation.splitlines()[1] == "frames 262 - 380 Second"
    assert tf.render_text("{{t:10.5}}") == "frame 262"
    assert tf.render_text("between {{t:10.5}} and {{t:15.25}}") == "between frame 262 and frame 380"


@pytest.mark.parametrize("fps", [25.0, 29.97, 30.0, 12.5])
def test_f3_adjacent_spans_share_no_frame_and_starts_match_moments(fps):
    rng = random.Random(3)
    dur = 60.0
    tf = TimeFormat("frames", 0.0, dur, fps)
    cuts = sorted({0.0, dur, *(round(rng.uniform(0.5, dur - 0.5), 3) for _ in range(40))})
    spans = [tf.frame_span(a, b) for a, b in zip(cuts, cuts[1:]) if b - a > 1.5 / fps]
    bounds = [(a, b) for a, b in zip(cuts, cuts[1:]) if b - a > 1.5 / fps]
    for (a, _), (first, last) in zip(bounds, spans):
        assert first == tf.frame_at(a) and last >= first
    for (_, b), (_, last), (a2, _), (first2, _) in zip(bounds, spans, bounds[1:], spans[1:]):
        if b == a2:
            assert last + 1 == first2, (fps, b, last, first2)
    assert spans[-1][1] == tf.frame_at(dur)   # the last span keeps the visual's last frame


def test_f3_variable_rate_frames_follow_the_same_rule():
    # 10 fps for 2 s (frames 0-19), then 30 fps for 1 s (20-49)
    times = [i / 10 for i in range(20)] + [2.0 + i / 30 for i in range(30)]
    tf = TimeFormat("frames", 0.0, 3.0, None, times)
    assert tf.point(1.05) == "frame 10" and tf.span(1.05, 2.5) == "frames 10 - 34"
    assert tf.span(0.0, 1.05) == "frames 0 - 9" and tf.span(2.5, 3.0) == "frames 35 - 49"


def test_f3_chapter_tasks_of_one_video_agree_in_a_frames_export(tmp_path):
    row = _video_row(_media(tmp_path, "b20.mp4"), "b20", 20.0)
    ends = [c[0] for c in CHAPTERS[1:]] + [20.0]
    listing = "\n".join(f"{{{{span:{a:g},{b:g}}}}} {t}" for (a, t), b in zip(CHAPTERS, ends))
    samples = [_sample(row, "gen", "chapter_generation", "Split this video into chapters.", listing)]
    for (a, t), b in zip(CHAPTERS, ends):
        samples.append(_sample(row, f"ground-{t}", "chapter_grounding", f'When does the chapter "{t}" start?',
                               f"{{{{t:{a:g}}}}}"))
        samples.append(_sample(row, f"title-{t}", "chapter_title",
                               f"What is a fitting title for the segment {{{{span:{a:g},{b:g}}}}}?", t))
    build = _build(tmp_path / "build", samples)
    res = export(build, str(tmp_path / "ex"), "llava", time_format="frames", media="none")
    assert res.skipped == {}
    recs = _records(tmp_path / "ex")
    gen = dict(reversed(line.split(" ", 4)[1:5:3]) for line in recs["gen"][1].splitlines())   # title -> first
    for _, t in CHAPTERS:
        start_frame = recs[f"ground-{t}"][1]
        assert start_frame == f"frame {gen[t]}", (t, start_frame, recs["gen"][1])
        assert f"segment frames {gen[t]} - " in recs[f"title-{t}"][0]
    assert gen == {"First": "0", "Second": "262", "Third": "381"}


# --- F4 -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["seconds", "timesuite"])
def test_f4_seconds_round_half_up(spec):
    tf = TimeFormat(spec, 0.0, 30.0, 25.0)
    assert tf.point(12.25) == "12.3 seconds" and tf.point(15.25) == "15.3 seconds"
    assert tf.point(15.75) == "15.8 seconds" and tf.point(0.05) == "0.1 seconds"
    assert tf.span(12.25, 15.75) == "12.3 - 15.8 seconds"
    # a clip origin subtracted away: 12.35 - 0.1 is 12.249999999999998 as a float, the 12.25 it stands for
    assert TimeFormat(spec, 0.1, 30.0, 25.0).point(12.35) == "12.3 seconds"
    assert TimeFormat(spec, 0.0, 30.0, 25.0).point(12.24) == "12.2 seconds"


def test_f4_vtg_tokens_and_bracketed_round_half_up():
    assert parse_vtg_tokens(vtg_tokens(15.25)) == [15.3] and parse_vtg_tokens(vtg_tokens(12.25)) == [12.3]
    assert parse_vtg_tokens(vtg_tokens(0.45)) == [0.5] and parse_vtg_tokens(vtg_tokens(15.75)) == [15.8]
    vtg = TimeFormat("vtg", 0.0, 30.0)
    assert vtg.point(12.25) == vtg_tokens(12.3) + " seconds"
    b = TimeFormat("bracketed", 0.0, 30.0)
    assert b.point(1.125) == "<1.13>" and b.point(2.675) == "<2.68>" and b.span(0.005, 1.115) == "from <0.01> to <1.12>"


# --- F5 -------------------------------------------------------------------------------------------------

def test_f5_relative_short_span_keeps_its_end_after_its_start():
    assert TimeFormat("relative", 0.0, 20.0).span(19.8, 20.0) == "98 - 99"     # was "99 - 99"
    assert TimeFormat("relative", 0.0, 600.0).span(102.0, 104.0) == "17 - 18"  # was "17 - 17"
    assert TimeFormat("relative", 0.0, 600.0).span(0.0, 1.0) == "00 - 01"
    assert TimeFormat("relative", 0.0, 100.0).span(10.0, 40.0) == "10 - 40"    # VTimeLLM's positions otherwise
    assert TimeFormat("relative", 0.0, 600.0).render_text("from {{t:102}} to {{t:104}}") == "from 17 to 18"
    assert TimeFormat("grounded_videollm", 0.0, 20.0).span(10.0, 10.05) == "from <150> to <151>"
    assert TimeFormat("lita:20", 0.0, 20.0).span(19.6, 20.0) == "from <t18> to <t19>"


@pytest.mark.parametrize("spec", ["relative", "lita", "lita:20", "grounded_videollm", "grounded_videollm:40"])
def test_f5_every_position_format_writes_start_before_end_inside_its_range(spec):
    rng = random.Random(5)
    for dur in (7.0, 20.0, 600.0, 3600.0):
        tf = TimeFormat(spec, 0.0, dur)
        assert tf.kind in RELATIVE_KINDS
        for _ in range(300):
            a = rng.uniform(0.0, dur)
            b = min(dur, a + rng.choice([0.01, 0.2, 1.0, dur / 50]))
            if b <= a:
                continue
            text = tf.span(a, b)
            i, j = (int(n) for n in re.findall(r"\d+", text))
            assert 0 <= i < j <= TOP[spec], (spec, dur, a, b, text)
            back = tf.parse_times(text)
            assert len(back) == 2 and back[0] < back[1]
            # in a text, two moments that bound the span render as the span does
            pair = tf.render_text(f"from {{{{t:{a}}}}} to {{{{t:{b}}}}}")
            assert re.findall(r"\d+", pair) == re.findall(r"\d+", text), (pair, text)


@pytest.mark.parametrize("spec", ["relative", "lita", "grounded_videollm", "seconds", "frames"])
def test_f5_lmms_eval_gold_answers_score_full_iou_with_the_exported_scorer(tmp_path, spec):
    a20 = _video_row(_media(tmp_path, "a20.mp4"), "a20", 20.0)
    long = _video_row(_media(tmp_path, "l600.mp4"), "l600", 600.0)
    spans = {"end": (a20, 19.8, 20.0), "mid": (a20, 12.25, 15.75), "step": (long, 102.0, 104.0),
             "tiny": (long, 300.1, 300.4)}
    samples = [_sample(row, sid, "segment_grounding", f"When does {sid} happen?",
                       **{R.ANSWER_SPANS: [{"start_s": a, "end_s": b}]}) for sid, (row, a, b) in spans.items()]
    dest = tmp_path / "lmms"
    res = export(_build(tmp_path / "build", samples), str(dest), "lmms-eval", time_format=spec, media="none")
    assert res.rows.get("grounding") == len(spans), res.summary()
    utils = _import_utils(dest)
    docs = {d["question_id"]: d for d in pq.read_table(dest / "data" / "grounding.parquet").to_pylist()}
    for sid, d in docs.items():
        score = utils.process_results_grounding(d, [d["answer"]])
        # position formats: exactly their grid; frames / seconds: within a frame / a decimal of a 0.3-s span
        assert score["mean_iou"] >= (0.999 if spec in RELATIVE_KINDS else 0.9), (spec, sid, d["answer"], d["spans"])
        assert score["recall_at_iou_0.5"] == 1.0
    if spec == "relative":
        assert docs["end"]["answer"] == "98 - 99" and docs["step"]["answer"] == "17 - 18"
        # a reply one position off still scores below the gold
        off = utils.process_results_grounding(docs["step"], ["18 - 19"])["mean_iou"]
        assert off < 0.5


# --- F11 ------------------------------------------------------------------------------------------------

def test_f11_vtg_tokens_refuse_times_past_four_digits():
    assert parse_vtg_tokens(vtg_tokens(9999.9)) == [9999.9] and parse_vtg_tokens(vtg_tokens(9999.94)) == [9999.9]
    for bad in (9999.95, 10000.0, 10100.0, -1.0):
        with pytest.raises(SampleError) as e:
            vtg_tokens(bad)
        assert e.value.reason == OUT_OF_RANGE
    tf = TimeFormat("vtg", 0.0, 10500.0)
    assert tf.span(100.0, 200.0) == f"{vtg_tokens(100)} - {vtg_tokens(200)} seconds"
    with pytest.raises(SampleError):
        tf.span(10100.0, 10200.0)
    with pytest.raises(SampleError):
        tf.render_text("Describe what happens between {{t:10100}} and {{t:10200}}.")


def _long_build(tmp_path: Path) -> str:
    row = _video_row(_media(tmp_path, "long.mp4"), "long", 10500.0, fps=1.0)
    samples = []
    for sid, (a, b) in {"early": (100.0, 200.0), "late": (10100.0, 10200.0)}.items():
        samples.append(_sample(row, f"{sid}-seg", "segment_grounding", f"When does the {sid} event happen?",
                               f"{{{{span:{a:g},{b:g}}}}}", **{R.ANSWER_SPANS: [{"start_s": a, "end_s": b}]}))
        samples.append(_sample(row, f"{sid}-icap", "interval_caption",
                               f"Describe what takes place between {{{{t:{a:g}}}}} and {{{{t:{b:g}}}}}.", f"{sid} event"))
    samples.append(_sample(row, "dialog", "streaming_dialogue", None, None, **{R.TURNS: [
        {"role": "user", "content": "Tell me what happens.", "time_s": 50.0},
        {"role": "assistant", "content": "The early event.", "time_s": 150.0},
        {"role": "assistant", "content": "The late event.", "time_s": 10150.0}]}))
    samples.append(_sample(row, "dialog-early", "streaming_dialogue", None, None, **{R.TURNS: [
        {"role": "user", "content": "Tell me what happens.", "time_s": 50.0},
        {"role": "assistant", "content": "The early event.", "time_s": 150.0},
        {"role": "assistant", "content": "It goes on.", "time_s": 180.0}]}))
    return _build(tmp_path / "build", samples)


def test_f11_exports_skip_samples_vtg_cannot_time_and_count_them(tmp_path):
    build = _long_build(tmp_path)
    clamped = vtg_tokens(9999.9)
    for fmt in ("llava", "sharegpt", "vtg_it", "lmms-eval", "llava_dialogue"):
        dest = tmp_path / f"ex_{fmt}"
        res = export(build, str(dest), fmt, time_format="vtg", media="none")
        text = "".join(p.read_text() for p in dest.rglob("*.json*"))
        assert clamped not in text, fmt
        assert res.skipped.get(OUT_OF_RANGE, 0) >= 1 and f"{OUT_OF_RANGE}=" in res.summary(), (fmt, res.summary())
        if fmt in ("llava", "sharegpt", "vtg_it"):
            assert vtg_tokens(100) in text and res.skipped[OUT_OF_RANGE] == 2, (fmt, res.skipped)
        if fmt == "llava_dialogue":
            assert res.skipped[OUT_OF_RANGE] == 1 and vtg_tokens(150) in text, res.skipped
