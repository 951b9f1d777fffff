"""The run report: a real quickstart build rendered to HTML + Markdown and opened in headless Chromium,
and synthetic sample-level outputs (QA types, answer positions, teacher stats) for the plots a
clip-level build cannot reach."""
from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner

from vdata.pipelines.report import (KEPT_COLOR, REJECTED_COLOR, answer_position_balance, load_run, report_cmd,
                                    write_report)
from vdata.schemas import records as R

from report_outputs import TEACHERS, make_sample_output, make_video_output  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
CHROMIUM = "/usr/bin/chromium"


def section_ids(html_text: str) -> set[str]:
    return set(re.findall(r'<section id="([a-z_]+)"', html_text))


def markdown_images(md_text: str, out_dir: Path) -> list[Path]:
    return [out_dir / p for p in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md_text)]


def assert_self_contained(html_text: str) -> None:
    # one inline script (the viewer's filter, sortable tables); nothing loaded from a file or the network
    assert html_text.lower().count("<script") == 1 and "<script>" in html_text and "<script src" not in html_text
    assert not re.search(r'(src|href)="(https?:)?//', html_text), "the report must not load anything from the network"
    for tag, src in re.findall(r'(<img[^>]+src="([^"]+)")', html_text):   # plots SVG, frame thumbnails JPEG
        assert src.startswith("data:image/jpeg;base64," if 'class="thumb"' in tag else "data:image/svg+xml;base64,")


def plot_images(text: str) -> int:
    return text.count("<img alt=")


def markdown_plots(md_text: str, out_dir: Path) -> list[Path]:
    return [p for p in markdown_images(md_text, out_dir) if p.suffix == ".svg"]


def screenshot(html_path: str, png_path: Path, profile_dir: Path) -> np.ndarray:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile_dir}", f"--screenshot={png_path}", "--window-size=1200,3000",
           "file://" + os.path.abspath(html_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert png_path.is_file(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    from PIL import Image

    with Image.open(png_path) as im:
        return np.asarray(im.convert("RGB"))


def dump_dom(html_path: str, profile_dir: Path, fragment: str = "") -> str:
    """The DOM as Chromium built it (after parsing, layout and the page's script), not the file as written."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
           "--disable-background-networking", f"--user-data-dir={profile_dir}", "--dump-dom",
           "file://" + os.path.abspath(html_path) + fragment]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert "<html" in proc.stdout, f"chromium dumped no DOM (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


def pixels_near(img: np.ndarray, hex_color: str, tol: int = 12) -> int:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img.astype(int) - rgb).max(axis=2) <= tol).sum())


# --------------------------------------------------------------------------- a real build
@pytest.fixture(scope="module")
def quickstart_out(tmp_path_factory, _ray_session):
    from vdata.pipelines.runner import build
    from vdata.schemas.config import load_config

    # a fresh Ray: pools or objects an earlier module left behind would skew the rates this build records
    # (how close the plan comes to a build's wall time is measured in bench/bench_plan.py, not here)
    _ray_session.shutdown()
    _ray_session.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    tmp = tmp_path_factory.mktemp("report_build")
    data = yaml.safe_load(QUICKSTART.read_text())
    data["input"] = [{"path": str(ROOT / "examples" / "videos")}]
    data["output"]["dir"] = str(tmp / "out")
    # the curation part of the quickstart (its teacher stages are exercised in test_pipeline)
    data["stages"] = [s for s in data["stages"] if set(s) <= {"probe", "shots", "quality", "frames"}]
    data.pop("teachers", None)
    data["output"].pop("exports", None)
    cfg_path = tmp / "quickstart.yaml"
    cfg_path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = build(load_config(cfg_path), progress=False)
    assert result.rows > 0 and result.rejects > 0
    return Path(result.output_dir)


def test_report_of_a_real_build_has_every_plot_its_data_supports(quickstart_out, tmp_path):
    html_path, md_path = write_report(quickstart_out)
    assert Path(html_path) == quickstart_out / "report.html" and Path(md_path) == quickstart_out / "report.md"
    text = Path(html_path).read_text()
    assert_self_contained(text)
    expected = {"summary", "stages", "rejects", "samples", "durations", "shots", "quality", "throughput", "versions",
                "config"}
    assert section_ids(text) == expected          # no teachers / QA data in a clip-level curation run
    assert plot_images(text) == 6               # stages, rejects, durations, shots, quality, throughput
    assert "Report warnings" not in text
    assert "(shaded) went to start-up: Ray" in text   # the throughput axis starts with the build, not its 1st batch
    alts = re.findall(r'<img alt="([^"]+)"', text)   # each plot's own titles
    assert alts == ["Rows through the stages", "Rejects by stage and reason", "Clip durations (kept clips)",
                    "Shots per video", "Quality scores, kept vs rejected clips (dashed: thresholds)",
                    "Throughput per stage over time"]

    manifest = json.loads((quickstart_out / "manifest.json").read_text())
    run = load_run(str(quickstart_out))
    assert R.FRAMES not in run.data.column_names              # JPEG bytes are never loaded
    # every reject reason of the manifest is listed, with its count
    for key, count in manifest["rejects_by_reason"].items():
        stage, reason = key.split(":", 1)
        assert re.search(rf"<td>{stage}</td><td>{reason}</td><td class=\"n\">{count}</td>", text), key
    # the thresholds of the config are marked (and listed) on the quality plots
    for label in ("brightness_min=20", "sharpness_min=30", "border_max=0.3", "text_area_max=0.08"):
        assert label in text
    # rejected clips' scores are in the distributions: the rejected count per score = quality rejects
    quality_rejects = sum(v for k, v in manifest["rejects_by_reason"].items() if k.startswith("quality:"))
    assert len(run.rejected_scores) == quality_rejects > 0
    assert re.search(rf"<td>q_sharpness</td><td class=\"n\">{manifest['rows']}</td><td class=\"n\">{quality_rejects}</td>", text)
    # the stages table matches the manifest
    for s in manifest["stages"]:
        assert re.search(rf"<td>{s['index'] + 1}\. {s['stage']}</td><td class=\"n\">{s['rows_in']}</td>"
                         rf"<td class=\"n\">{s['rows_out']}</td>", text), s["stage"]

    md = Path(md_path).read_text()
    images = markdown_plots(md, quickstart_out)
    assert len(images) == 6 and all(p.is_file() and p.read_bytes().startswith(b"<svg ") for p in images)
    assert all(p.parent == quickstart_out / "report_assets" for p in images)
    assert "| quality | blurry |" in md and "## Quality score distributions" in md

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium): HTML rendering not checked")
    shot = tmp_path / "report.png"
    img = screenshot(html_path, shot, tmp_path / "chromium-profile")
    assert img.shape[:2] == (3000, 1200)
    assert img.std() > 20, "screenshot is blank"
    # the embedded plots were decoded and drawn: kept-green and rejected-red bars are on screen
    assert pixels_near(img, KEPT_COLOR) > 500 and pixels_near(img, REJECTED_COLOR) > 500
    keep = os.environ.get("VDATA_REPORT_SCREENSHOT")   # for a human look: copy the screenshot out
    if keep:
        shutil.copy(shot, keep)
    # the viewer: one card per shown clip, each with thumbnails of its real frames, as Chromium parsed it
    dom = dump_dom(html_path, tmp_path / "chromium-profile")
    clip_ids = run.data[R.CLIP_ID].to_pylist()
    shown = re.findall(r'<article class="sample"><h3>clip — [^<]*\(([^)]+)\)</h3>', dom)
    assert len(shown) == min(6, len(clip_ids)) and set(shown) <= set(clip_ids)
    assert len({cid.rsplit("_", 2)[0] for cid in shown}) > 1   # spread over videos, not one video's clips
    thumbs = re.findall(r'<img class="thumb" alt="frame at ([0-9.]+) s" src="data:image/jpeg;base64,([^"]+)"', dom)
    assert len(thumbs) == 2 * len(shown)
    from PIL import Image

    for _, b64 in thumbs:
        with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
            assert im.format == "JPEG" and im.width == 160 and im.height > 40   # 640x360-ish frames downscaled


# --------------------------------------------------------------------------- synthetic sample-level output
def test_answer_position_balance_expects_each_questions_own_option_count():
    observed, expected = answer_position_balance(np.array([0, 0, 1, 3, 0, 1]), np.array([4, 4, 4, 4, 2, 2]))
    assert observed.tolist() == [3, 2, 0, 1]
    assert expected.tolist() == [2.0, 2.0, 1.0, 1.0]   # 4 four-option questions + 2 two-option ones
    observed, expected = answer_position_balance(np.array([2, 2, 0]), None)
    assert observed.tolist() == [1, 0, 2] and expected.tolist() == [1.0, 1.0, 1.0]


def test_sample_level_report_shows_qa_balance_teachers_and_marked_thresholds(tmp_path):
    out = tmp_path / "out"
    made = make_sample_output(out)
    html_path, md_path = write_report(out)
    text = Path(html_path).read_text()
    assert_self_contained(text)
    assert "Report warnings" not in text
    assert section_ids(text) == {"summary", "stages", "rejects", "samples", "durations", "shots", "quality",
                                 "throughput", "teachers", "qa_types", "answer_positions", "versions", "config"}
    assert plot_images(text) == 9
    for title in ("Teachers", "Sample tasks and question types", "Answer-position balance"):
        assert f"<h2>{title}</h2>" in text
    alts = re.findall(r'<img alt="([^"]+)"', text)
    assert {"Teacher tokens / Teacher latency", "Tasks / Question types", "MCQ answer-position balance"} <= set(alts)

    run = load_run(str(out))
    assert R.FRAMES not in run.data.column_names and "n_options" in run.data.column_names
    # tasks / question types counted from the data
    assert re.search(r'<td>mcq</td><td class="n">18</td><td class="n">50.0%</td>', text)
    assert re.search(r'<td>caption</td><td class="n">9</td>', text)
    qtype_counts = {}
    for r in made["rows"]:
        if r.get(R.QUESTION_TYPE):
            qtype_counts[r[R.QUESTION_TYPE]] = qtype_counts.get(r[R.QUESTION_TYPE], 0) + 1
    for qt, n in qtype_counts.items():
        assert re.search(rf'<td>{qt}</td><td class="n">{n}</td>', text), qt
    # answer positions: observed per letter and the bias named
    mcq = [r for r in made["rows"] if r[R.TASK] == "mcq"]
    observed, expected = answer_position_balance(np.array([r[R.ANSWER_INDEX] for r in mcq]),
                                                 np.array([len(r[R.OPTIONS]) for r in mcq]))
    assert f"{len(mcq)} multiple-choice question(s)" in text
    for letter, obs, exp in zip("ABCD", observed, expected):
        assert re.search(rf'<td>{letter}</td><td class="n">{int(obs)}</td><td class="n">{exp:.1f}</td>', text), letter
    worst = int(np.argmax(np.abs((observed - expected) / np.sqrt(expected))))
    assert worst == 0 and f"Largest deviation: A ({int(observed[0])} vs {expected[0]:.1f} expected" in text
    p_value = re.search(r"chi-square test of uniform placement: p = ([0-9][0-9.e-]*[0-9])", text)
    if p_value:   # SciPy is optional; with it, a 12-of-18 pile-up on A is flagged
        assert float(p_value.group(1)) < 0.05
    # the time axis starts with the build: the 9.5 s before the first batch are start-up, shaded
    assert "the first 9.5 s (shaded) went to start-up" in text
    # teachers: names, models, token counts
    for name, s in TEACHERS.items():
        assert f"<td>{name}</td><td>{s['model']}</td>" in text
        assert f"{s['prompt_tokens']:,}" in text and f"{s['completion_tokens']:,}" in text
    # thresholds from config_text merged over the defaults; a threshold set to null is not drawn
    assert "sharpness_min=55" in text and "brightness_min=20" in text and "motion_min=" not in text
    # a clip counts once in the quality plots (4 sample rows each), rejected clips come from rejects
    assert re.search(r'<td>q_sharpness</td><td class="n">9</td><td class="n">3</td>', text)
    # shots per video: kept clips from the data, whole-clip rejects from rejects (sample rejects are not clips)
    assert re.search(r'<td>3</td><td class="n">0</td><td class="n">9</td><td class="n">3</td><td class="n">4</td>'
                     r'<td class="n">4</td>', text)

    md = Path(md_path).read_text()
    images = markdown_plots(md, out)
    assert len(images) == 9 and all(p.is_file() for p in images)
    assert sorted(p.name for p in (out / "report_assets").glob("*.svg")) == sorted(p.name for p in images)
    assert "| verify | unsupported_claims | 2 | 40.0% |" in md
    # the two rejected samples are counted under their task, beside the kept ones (18 mcq kept, 2 rejected)
    assert "| mcq | 18 | 2 | 90.0% |" in md
    assert re.search(r'<td>caption</td><td class="n">9</td><td class="n">0</td><td class="n">100.0%</td>', text)

    # a second report replaces the first one's plots rather than piling up next to them
    (out / "report_assets" / "99_stale.svg").write_bytes(b"old")
    write_report(out)
    assert not (out / "report_assets" / "99_stale.svg").exists()


def test_sample_viewer_shows_frames_text_evidence_and_reject_messages_in_chromium(tmp_path):
    out = tmp_path / "out"
    make_sample_output(out)
    html_path, md_path = write_report(out)
    text = Path(html_path).read_text()
    assert_self_contained(text)
    viewer = text.split('<section id="samples">')[1].split("</section>")[0]
    # every task gets cards (capped at 6 of its 9 rows), spread over the 3 videos
    for task in ("caption", "open_qa", "mcq"):
        titles = re.findall(rf"<h3>{task}[^<]*\(([^)]+)\)</h3>", viewer)
        assert len(titles) == 6 and {t.split("_")[0] for t in titles} == {"vid0", "vid1", "vid2"}, task
    # open QA: question, answer, answer span and the evidence it cites; its thumbnails are the cited frame
    assert "<dt>question</dt><dd>what rolls in vid0_0000000_0000001 (1)?</dd>" in viewer
    assert "<dt>answer spans</dt><dd>1.0–1.8 s</dd>" in viewer
    assert "<dt>evidence: speech</dt><dd>[1.0–1.8 s] the ball rolls in video 0</dd>" in viewer
    assert "<dt>evidence: frames at</dt><dd>1.5 s</dd>" in viewer
    qa_card = viewer.split("<h3>open_qa")[1].split("</article>")[0]
    assert re.findall(r'alt="frame at ([0-9.]+) s"', qa_card) == ["1.5"]
    # MCQ: every option, the correct one marked
    mcq_card = viewer.split("<h3>mcq")[1].split("</article>")[0]
    assert mcq_card.count("<dt>option ") in (2, 4) and mcq_card.count(" ✓</dt>") == 1
    # rejects: examples with their messages, per reason
    # ... each named by its file first, then its id
    assert ("<td>quality</td><td>blurry</td><td>video_0.mp4 · vid0_0000003_0000004</td>"
            "<td>q_sharpness=12 &lt; sharpness_min=55</td>") in text
    assert text.count("<td>verify</td><td>unsupported_claims</td><td>video_0.mp4 · ") == 2
    md = Path(md_path).read_text()
    assert "- evidence: speech: [1.0–1.8 s] the ball rolls in video 0" in md
    thumbs_md = [p for p in markdown_images(md, out) if p.suffix == ".jpg"]
    assert len(thumbs_md) == 18 * 2 - 6 and all(p.read_bytes()[:2] == b"\xff\xd8" for p in thumbs_md)

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium): viewer rendering not checked")
    dom = dump_dom(html_path, tmp_path / "profile")
    assert dom.count('<img class="thumb"') == 18 * 2 - 6   # open QA cards show only their one cited frame
    assert "the ball rolls in video 2" in dom
    assert 'data-shown="18"' in dom and "18 of 18 samples shown" in dom   # the script ran: nothing filtered
    # filtered from the URL: only the cards whose text has every word stay, and empty task groups hide
    cards = re.findall(r"<article class=\"sample\">(.*?)</article>", viewer, re.S)
    expected = sum(1 for c in cards if "vid2" in c and "rolls" in c)
    assert 0 < expected < len(cards)
    filtered = dump_dom(html_path, tmp_path / "profile", "#filter=vid2%20rolls")
    assert f'data-shown="{expected}"' in filtered
    visible = re.findall(r"<article class=\"sample\"(?! hidden)", filtered)
    assert len(visible) == expected and filtered.count('<article class="sample" hidden=""') == len(cards) - expected
    img = screenshot(html_path, tmp_path / "viewer.png", tmp_path / "profile")
    # the thumbnails were decoded and drawn at 160 px: both frame colours fill thousands of pixels
    assert pixels_near(img, "#ff00ff", 40) > 5000 and pixels_near(img, "#00c8ff", 40) > 5000


def test_a_failing_section_becomes_a_visible_warning_and_the_rest_still_renders(tmp_path):
    out = tmp_path / "out"
    make_sample_output(out, stats_records=[{"stage_index": 0, "stage": "probe", "t_end": 5.0}])  # no rows_in
    html_path, md_path = write_report(out)
    text = Path(html_path).read_text()
    assert "Report warnings" in text and "throughput" in text.split("Report warnings")[1][:400]
    assert "throughput" not in section_ids(text)
    assert {"quality", "teachers", "answer_positions"} <= section_ids(text)
    assert "> **Report warnings**" in Path(md_path).read_text()


def test_video_level_build_reports_video_durations_and_no_clip_plots(tmp_path):
    out = tmp_path / "out"
    make_video_output(out)
    html_path, _ = write_report(out)
    text = Path(html_path).read_text()
    assert section_ids(text) == {"summary", "stages", "durations", "config"}
    assert "Video durations" in text
    assert re.search(r'<td>video duration \(s\)</td><td class="n">4</td><td class="n">50.0 s</td>', text)


def test_report_command_writes_both_files_and_explains_a_folder_that_is_not_a_build(tmp_path):
    out = tmp_path / "out"
    make_video_output(out)
    res = CliRunner().invoke(report_cmd, [str(out)])
    assert res.exit_code == 0, res.output
    assert res.output.split() == [str(out / "report.html"), str(out / "report.md")]
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(report_cmd, [str(empty)])
    assert res.exit_code != 0 and "no manifest.json" in res.output


# --------------------------------------------------------------------------- figures and templates
def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_legends_never_cover_a_bar_and_crowded_stage_labels_do_not_overprint(tmp_path):
    from vdata.pipelines import report_figures, report_sections
    from vdata.pipelines.svg_chart import TICK_PX, text_width

    out = tmp_path / "out"
    make_sample_output(out)
    run = load_run(str(out))
    sections = [s for _, collect in report_sections.COLLECTORS if (s := collect(run)) is not None and s.figure]
    names = ["probe", "shots", "quality", "frames", "asr", "generate", "timestamps", "verify_claims", "blind",
             "labels", "dedup"]   # the longest pipeline of the tests: its labels would run into each other flat
    labels = [f"{i + 1}. {n}" for i, n in enumerate(names)]
    crowded = report_figures.stages_figure(labels, list(range(10, 21)), list(range(9, 20)), [1] * 11)
    two = report_figures.stages_figure(labels[:2], [3, 3], [2, 3], [1, 0])
    figures = [(s.key, report_figures.FIGURES[s.key](**s.figure)) for s in sections]
    figures += [("stages x11", crowded), ("stages x2", two)]
    checked = 0
    for key, chart in figures:
        chart.svg()   # the layout is made while drawing; the chart records what it drew where
        bars = [b[1:] for b in chart.boxes if b[0] == "bar"]
        legends = [b[1:] for b in chart.boxes if b[0] == "legend"]
        if not legends or not bars:   # a line plot (throughput): its legend sits outside too, nothing to cover
            continue
        for legend in legends:
            assert not any(_overlap(legend, b) for b in bars), f"{key}: legend covers a bar"
        assert all(0 <= v[0] and v[2] <= chart.width for v in legends), f"{key}: legend outside the picture"
        checked += 1
    assert checked >= 6   # stages, rejects, shots, teachers, answer positions, quality (+ the crowded one)
    # flat labels must not touch; turned ones are parallel lines whose gap across the text (tick spacing
    # times the sine of the angle) must exceed the text height
    for chart, n in ((crowded, len(names)), (two, 2)):
        xs, angle = chart.x_tick_px[1], math.radians(chart.x_tick_angle[1])
        assert len(xs) == n
        if angle == 0:
            widths = [text_width(t, TICK_PX) for t in labels[:n]]
            assert all(b - a > (wa + wb) / 2 for a, b, wa, wb in zip(xs, xs[1:], widths, widths[1:])), "x labels overprint"
        else:
            assert float(np.diff(xs).min()) * math.sin(angle) > TICK_PX, "x labels overprint"
    assert crowded.x_tick_angle[1] > 0 and two.x_tick_angle[1] == 0   # turned only when they would not fit


def test_report_templates_ship_as_package_data():
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["vdata"]
    shipped = {p for pattern in patterns for p in (ROOT / "vdata").glob(pattern) if p.is_file()}
    templates = [p for p in (ROOT / "vdata" / "pipelines" / "templates").iterdir() if p.is_file()]
    assert {p.name for p in templates} >= {"report.html.j2", "report.md.j2"}
    assert set(templates) <= shipped


def test_report_warns_of_demo_teacher_rows_and_unverified_samples():
    import pyarrow as pa

    from vdata.pipelines.report_data import limitations

    data = pa.table({"caption_model": ["vdata-tiny-demo-vlm", "vdata-tiny-demo-vlm", None],
                     "sample_model": ["qwen2.5-72b", "qwen2.5-72b", "qwen2.5-72b"]})
    notes = limitations({"verification": {"verified": 4, "unverified": 2}}, data)
    assert any("2 row value(s)" in n and "vdata-tiny-demo-vlm" in n and "noise" in n for n in notes)
    assert any("2 kept sample(s) are unverified" in n for n in notes)
    assert limitations({}, pa.table({"sample_model": ["qwen2.5-72b"]})) == []
    # a build that kept nothing says so first thing (outside check h8: "ROWS WRITTEN 0" read like any run)
    assert any("no rows kept" in n for n in limitations({"rows": 0, "rejects": 2}, None))
    assert limitations({"rows": 3, "rejects": 2}, None) == []


# --------------------------------------------------------------------------- planning from measured rates
def test_plan_estimates_from_a_builds_own_rates_and_names_the_bottleneck(quickstart_out, tmp_path):
    from vdata.cli import main
    from vdata.pipelines.estimate import estimate, load_rates
    from vdata.pipelines.planning import make_plan
    from vdata.schemas.config import load_config

    manifest = json.loads((quickstart_out / "manifest.json").read_text())
    rates = manifest["rates"]   # written by the build itself
    assert rates["videos"] == manifest["inputs"] and rates["mean_video_s"] > 0 and rates["startup_s"] > 0
    assert [s["stage"] for s in rates["stages"]] == ["probe", "shots", "quality", "frames"]
    config = quickstart_out.parent / "quickstart.yaml"
    cfg = load_config(config)
    cpus = cfg.ray.num_cpus or os.cpu_count()
    res = CliRunner().invoke(main, ["plan", str(config), "--videos", str(manifest["inputs"]), "--cpus", str(cpus)])
    assert res.exit_code == 0, res.output
    assert f"estimate for {manifest['inputs']} video(s)" in res.output and "bottleneck" in res.output
    # it says which executor measured the rates (outside check h16: an in-process build's rates leave out Ray's costs)
    executor = {"in-process": "in-process build", "ray": "Ray build"}[manifest["ray"]["executor"]]
    assert rates["executor"] == manifest["ray"]["executor"] and f"measured by the {executor} of" in res.output
    own = estimate(make_plan(cfg), load_rates(str(quickstart_out)), manifest["inputs"], None, cpus, 0)
    # the estimate of the measured build is made of what that build recorded: its start-up and stage work
    assert own.startup_s == rates["startup_s"]
    assert sum(st.work_s for st in own.stages) == pytest.approx(sum(s["busy_s"] for s in rates["stages"]), rel=1e-3)
    assert any(name in own.bottleneck for name in ("probe", "shots", "quality", "frames"))
    assert own.gpu_hours == 0 and own.teacher_requests == 0   # a curation run: no GPU stage, no teacher
    # a config whose output folder holds no build: the message says what to do
    fresh = yaml.safe_load(config.read_text())
    fresh["output"]["dir"] = str(tmp_path / "nothing_built")
    (tmp_path / "fresh.yaml").write_text(yaml.safe_dump(fresh))
    res = CliRunner().invoke(main, ["plan", str(tmp_path / "fresh.yaml"), "--videos", "10"])
    assert res.exit_code != 0 and "no manifest.json: build a small sample first" in res.output


def test_plan_scales_work_with_video_seconds_and_time_with_cpus():
    """Arithmetic of the estimate on fixed rates (no clock involved): the measured build's timings
    feed it in test_plan_estimates_from_a_builds_own_rates_and_names_the_bottleneck."""
    from vdata.pipelines.estimate import estimate
    from vdata.pipelines.planning import make_plan
    from vdata.schemas.config import load_config

    plan = make_plan(load_config(Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"))
    rates = {"videos": 4, "mean_video_s": 10.0, "input_video_s": 40.0, "startup_s": 3.0, "finish_s": 1.0,
             "stages": [{"stage": s.name, "index": s.index, "busy_s": 2.0 * (k + 1), "rows_in": 4, "batches": 2}
                        for k, s in enumerate(plan.stages)], "teachers": {}}
    cpus = 4
    startup, finish = rates["startup_s"], rates["finish_s"]

    def processing(e) -> float:   # the estimate's time between its start-up and its finish
        return e.wall_s - startup - finish

    own = estimate(plan, rates, 4, None, cpus, 0)
    assert own.startup_s == startup
    # the measured size: one video's way through the stages (each stage's work per batch) is the longest
    assert own.bottleneck == "one video's path through the stages"
    assert processing(own) == pytest.approx(sum(s["busy_s"] / s["batches"] for s in rates["stages"]))
    # 100x the videos at twice the length: the work scales with the seconds of video, start-up does not
    big = estimate(plan, rates, 400, 2 * rates["mean_video_s"], cpus, 0)
    assert big.cpu_hours == pytest.approx(200 * own.cpu_hours) and big.startup_s == startup
    assert big.bottleneck.startswith("CPU: all stages share the CPUs")
    assert processing(big) == pytest.approx(big.cpu_hours * 3600 / cpus)
    # the same work on 8x the CPUs: an eighth of the time
    wide = estimate(plan, rates, 400, 2 * rates["mean_video_s"], 8 * cpus, 0)
    assert wide.cpu_hours == pytest.approx(big.cpu_hours)
    assert processing(wide) == pytest.approx(processing(big) / 8)


def test_video_names_in_any_script_are_plot_text_and_markup_in_them_stays_text():
    """Shots per video are labelled with file names. The plots are SVG text: a name in Chinese shows with the
    reader's fonts (a PNG's bundled font drew boxes, and warned once per letter), and a name that looks like
    markup is escaped, never part of the picture's code."""
    import xml.etree.ElementTree as ET

    from vdata.pipelines.report_figures import draw

    names = ["Ünïcödé 視頻.mp4", "<b>&amp; \"odd\".mp4"]
    plot = draw("shots", {"names": names, "kept": [3, 1], "rejected": [0, 2]})
    root = ET.fromstring(plot.svg)   # well-formed XML
    texts = {el.text for el in root.iter("{http://www.w3.org/2000/svg}text")}
    assert set(names) <= texts and plot.alt == "Shots per video"
    rects = [el for el in root.iter("{http://www.w3.org/2000/svg}rect") if el.get("fill") in (KEPT_COLOR, REJECTED_COLOR)]
    assert len(rects) == 3 + 2   # two kept bars, one rejected, and the two legend swatches


def test_a_large_builds_batch_records_are_merged_for_the_manifest_with_every_total_kept():
    """100k one-row probe batches made a 31 MB manifest.json: past MANIFEST_RECORDS, each worker's consecutive
    batches are merged, and the report's totals and the measured rates read the same."""
    from vdata.pipelines.estimate import MANIFEST_RECORDS, compact_records, measured_rates
    from vdata.pipelines.report_sections import throughput

    rng = np.random.default_rng(0)
    records = []
    for i in range(9000):
        stage_index = i % 2
        records.append({"stage": ["probe", "shots"][stage_index], "stage_index": stage_index, "node": "n", "pid": i % 3,
                        "rows_in": 1, "rows_out": int(rng.integers(0, 2)), "seconds": 0.01, "t_end": 1000.0 + i * 0.01,
                        "cache_hits": 0, "mass_out": 1.0, "mass_rejected": 0.0,
                        "rejects": {"missing_file": 1} if i % 5 == 0 else {}, "counters": {"frames": 2}})
    small = records[:100]
    assert compact_records(small) == small                          # a small build's records stay as they are
    merged = compact_records(records)
    assert len(merged) <= MANIFEST_RECORDS + 6 and sum(r["batches"] for r in merged) == len(records)
    for key in ("rows_in", "rows_out"):
        assert sum(r[key] for r in merged) == sum(r[key] for r in records)
    assert sum(r["rejects"].get("missing_file", 0) for r in merged) == 1800
    assert sum(r["counters"]["frames"] for r in merged) == 18000
    assert sum(r["seconds"] for r in merged) == pytest.approx(sum(r["seconds"] for r in records))
    manifest = {"inputs": 4500, "stages": [{"stage": "probe", "index": 0}, {"stage": "shots", "index": 1}],
                "timeline": {"start": 999.0}, "wall_s": 95.0}
    before = measured_rates({**manifest, "stats_records": records})
    after = measured_rates({**manifest, "stats_records": merged})
    assert [s["batches"] for s in after["stages"]] == [s["batches"] for s in before["stages"]] == [4500, 4500]
    assert after["startup_s"] == pytest.approx(before["startup_s"], abs=0.5)

    run = type("Run", (), {"manifest": {**manifest, "stats_records": merged}})()
    table = throughput(run).tables[0]
    assert [row[1] for row in table.rows] == [4500, 4500] and [row[2] for row in table.rows] == [4500, 4500]


def test_a_demo_teacher_that_others_wrote_from_is_a_limitation_of_their_rows():
    """Outside check h25 F12: the writer merged the random VLM's captions into video captions and QA; those rows
    name no demo model, so neither the report nor the card said they carry its noise."""
    from vdata.pipelines.report_data import limitations

    teachers = {"captioner": {"model": "vdata-tiny-demo-vlm", "requests": 4},
                "writer": {"model": "smollm2", "requests": 7}}
    said = limitations({"teachers": teachers, "rows": 3}, None)
    assert any("vdata-tiny-demo-vlm wrote text that the other teachers wrote from" in line for line in said), said
    alone = limitations({"teachers": {"writer": {"model": "smollm2", "requests": 7}}, "rows": 3}, None)
    assert not any("wrote text that the other teachers" in line for line in alone)
