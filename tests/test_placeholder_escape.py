r"""Text from a dataset's own annotations is data, not template: a chapter titled "Part {{t:5}} one" or a
segment "Press {{span:1,2}} ok" must reach every export as written, while the times the generator put in
as placeholders are still rendered (outside check h10, finding 4).

A real teacher-free build (probe → annotations → shots → generate at video scope) of an ffmpeg-made 6 s
video whose manifest carries such texts, then real sharegpt, llava, vidchapters and parquet exports and the
build's report. Samples store a source's `{{` as `{\{` (`vdata.prompts.escape_placeholders`); the
exports' time rendering reads it back.
"""
from __future__ import annotations

import glob
import json
from pathlib import Path

import pyarrow.dataset as pads
import pytest

import vdata
from conftest import no_ray
from vdata.exporters import export
from vdata.media.synth import Segment, render_segments
from vdata.prompts import escape_placeholders, unescape_placeholders
from vdata.schemas import records as R
from vdata.schemas.config import parse_config

# Chapter titles, segment texts and a label that look like placeholders (and one that looks like the escape).
TITLE, TITLE_2 = "Part {{t:5}} one", r"Plain {\{ two"
SEGMENT, SEGMENT_2 = "Press {{span:1,2}} then {{ctrl}} ok", "Second {{t:4}} step"
LABEL = "knife {{t:1}}"
VOCABULARY = [LABEL, "cooking", "fishing", "running", "typing"]
SOURCE_TEXTS = (TITLE, TITLE_2, SEGMENT, SEGMENT_2, LABEL)
TASKS = ("chapter_generation", "chapter_title", "chapter_grounding", "segment_grounding", "interval_caption",
         "dense_from_segments", "label_mcq")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """The build's output folder, after one real build of the annotated video."""
    no_ray()   # a build of one video runs in process, as a fresh `vdata build` runs it
    root = tmp_path_factory.mktemp("escape")
    video = str(root / "two_scenes.mp4")
    render_segments(video, [Segment("testsrc2", 3.0), Segment("mandelbrot", 3.0)])
    manifest = root / "videos.jsonl"
    manifest.write_text(json.dumps({
        "path": video, "title": "Braces", "label": LABEL,
        "description": f"0:00 {TITLE}\n0:03 {TITLE_2}",
        "segments": [{"start_s": 0.0, "end_s": 3.0, "text": SEGMENT},
                     {"start_s": 3.0, "end_s": 6.0, "text": SEGMENT_2}]}) + "\n")
    cfg = parse_config({
        "name": "braces", "input": [{"manifest": str(manifest)}], "output": {"dir": str(root / "out")},
        "stages": [{"probe": {}},
                   {"annotations": {"sources": {"chapters": "description", "title": "title", "labels": "label",
                                                "segments": "segments"},
                                    "label_vocabulary": VOCABULARY}},
                   {"shots": {"min_len_s": 0.5}},
                   {"generate": {"scope": "video", "tasks": {t: ({"vocabulary": VOCABULARY} if t == "label_mcq"
                                                                 else {}) for t in TASKS}}}]})
    result = vdata.build(cfg, progress=False)
    assert result.rows >= len(TASKS), result.rejects_by_reason
    return result.output_dir


def _samples(out: str) -> list[dict]:
    return pads.dataset(str(Path(out) / "samples"), format="parquet").to_table().to_pylist()


def _turns(dest: Path) -> list[tuple[str, str]]:
    """(question, answer) of every exported record, of the llava / sharegpt layouts."""
    out = []
    for f in glob.glob(str(dest / "*.json")):
        records = json.loads(Path(f).read_text())
        if not isinstance(records, list):
            continue
        for r in records:
            turns = r.get("conversations") or r.get("messages") or []
            texts = [t.get("value", t.get("content")) for t in turns]
            if len(texts) == 2:
                out.append((texts[0], texts[1]))
    return out


def test_escape_reads_back_exactly_and_leaves_no_placeholder_to_read():
    for text in ("{{t:5}}", "{{{", r"{\{", r"{\\{{", "a { b } {{ c", "plain", "", r"ends {\ "):
        escaped = escape_placeholders(text)
        assert "{{" not in escaped and unescape_placeholders(escaped) == text


def test_annotation_text_passes_verbatim_into_every_export(build, tmp_path):
    samples = _samples(build)
    assert {s[R.TASK] for s in samples} == set(TASKS)
    # stored escaped: the canonical answer of the chapter's title sample has no placeholder in it
    titles = [s[R.ANSWER] for s in samples if s[R.TASK] == "chapter_title"]
    assert escape_placeholders(TITLE) in titles and TITLE not in titles

    by_format = {}
    for fmt in ("sharegpt", "llava"):
        dest = tmp_path / fmt
        export(build, str(dest), fmt, time_format="relative", media="none")
        by_format[fmt] = _turns(dest)
        texts = "\n".join(q + "\n" + a for q, a in by_format[fmt])
        for source in SOURCE_TEXTS:
            assert source in texts, (fmt, source)
        assert escape_placeholders(TITLE) not in texts and escape_placeholders(SEGMENT) not in texts

        answers = {a for _, a in by_format[fmt]}
        # the generator's own placeholders still render: the chapters at 0-3 s and 3-6 s of the 6 s video
        assert f"00 - 50 {TITLE}\n50 - 99 {TITLE_2}" in answers
        assert f"00 - 50 {SEGMENT}\n50 - 99 {SEGMENT_2}" in answers
        assert TITLE in answers and SEGMENT in answers
        assert any(f". {LABEL}\n" in q + "\n" for q, _ in by_format[fmt])   # the label is an MCQ's option
        # a question that names a segment's text asks for its times; one that shows a text asking none does not
        asked = {q: a for q, a in by_format[fmt]}
        caption_question = next(q for q, a in asked.items() if a == SEGMENT)
        assert "Give times" not in caption_question and "00" in caption_question and "50" in caption_question
        grounding = next(q for q in asked if f'"{TITLE}"' in q)
        assert asked[grounding] == "00" and "Give times" in grounding

    dest = tmp_path / "vidchapters"
    export(build, str(dest), "vidchapters", media="none")
    sentences = [s for f in glob.glob(str(dest / "*.json")) for v in json.loads(Path(f).read_text()).values()
                 for s in v["sentences"]]
    assert sentences == [TITLE, TITLE_2]   # the release keeps the annotation's text: the same as sharegpt's


def test_the_report_shows_the_source_text_and_the_parquet_card_explains_placeholders(build, tmp_path):
    report = (Path(build) / "report.md").read_text()
    assert TITLE in report and escape_placeholders(TITLE) not in report
    dest = tmp_path / "parquet"
    export(build, str(dest), "parquet", media="none")
    card = (dest / "README.md").read_text()
    assert "{{span:12.3,20.5}}" in card and "render_text" in card and r"`{\{`" in card
