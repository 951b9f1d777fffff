"""Release exports after the outside check h5: VTG-IT's highlight / summarization answer grammar (F15) and
CG-Bench's `domain` (F9).

VTG-IT, confirmed in gyxxyg/VTG-LLM utils/construct_it_data/process_highlight_data.py:
  QVHighlights  "There are {n} highlight moments in the {times} second. Their saliency scores are {scores}."
                (times = 2-s clip id * 2, scores = mean of the annotators, one decimal)
  TVSum / SumMe "The highlight timestamps are in the {times} seconds. Their saliency scores are {scores}."
                (scores s * 4 + 1: 1..5, one decimal)
CG-Bench, confirmed in CG-Bench/CG-Bench cgbench_mini.json: every item has `domain` (one of 14 content domains,
"Life Record", "Art & Culture", ...) and `sub_category` ("Hallucination" for the false-premise questions)."""
from __future__ import annotations

import json
import os
import re
import shutil

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vdata.exporters import export
from vdata.exporters.demo_build import write_demo_build
from vdata.exporters.releases.cg_bench import content_domain
from vdata.exporters.releases.vtg_it import saliency_answer, saliency_points
from vdata.exporters.source import Item
from vdata.exporters.timefmt import TimeFormat, parse_vtg_tokens
from vdata.schemas import records as R

SCHEMAS = os.path.join(os.path.dirname(__file__), "release_schemas")
QVH = re.compile(r"There are (\d+) highlight moments in the (.+) second\. Their saliency scores are ([\d., ]+)\.")
TVSUM = re.compile(r"The highlight timestamps are in the (.+) seconds\. Their saliency scores are ([\d., ]+)\.")


def _item(task, spans, scores, **extra) -> Item:
    row = {R.SAMPLE_ID: task, R.TASK: task, R.QUESTION: "Which moments match the query \"a dog runs\"?",
           R.ANSWER_SPANS: [{"start_s": a, "end_s": b} for a, b in spans], R.ANSWER_SCORES: scores, **extra}
    return Item(row, "temporal")


def test_scored_spans_become_vtg_it_points_and_scores():
    tf = TimeFormat("vtg", origin_s=0.0, duration_s=20.0)
    item = _item("highlights", [(0.0, 5.0), (4.0, 9.0), (15.0, 15.6)], [4.0, 5.0, 3.0])
    # the 2-s clips whose middle lies in a span, named by their start; a clip in two spans keeps the higher score;
    # a span shorter than a clip gives the clip holding its middle
    assert saliency_points(item, tf) == [(0.0, 4.0), (2.0, 4.0), (4.0, 5.0), (6.0, 5.0), (14.0, 3.0)]
    answer = saliency_answer(item, tf)
    m = QVH.fullmatch(answer)
    assert m and m.group(1) == "5" and m.group(3) == "4.0, 4.0, 5.0, 5.0, 3.0", answer
    assert parse_vtg_tokens(m.group(2)) == [0.0, 2.0, 4.0, 6.0, 14.0]   # times as VTG-LLM's digit tokens
    summary = saliency_answer(_item("summarization", [(10.0, 14.0)], [4.0]), tf)
    m = TVSUM.fullmatch(summary)
    assert m and parse_vtg_tokens(m.group(1)) == [10.0, 12.0] and m.group(2) == "4.0, 4.0", summary
    # a clip-scope visual: times count from the clip's start
    assert saliency_points(_item("highlights", [(104.0, 108.0)], [5.0]), TimeFormat("vtg", 100.0, 10.0)) == \
        [(4.0, 5.0), (6.0, 5.0)]


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> str:
    """The demo build plus video-scope highlights and summaries, as generate writes them."""
    root = tmp_path_factory.mktemp("h7_build")
    path = write_demo_build(str(root / "b"), media_dir=str(tmp_path_factory.getbasetemp() / "vdata_demo_media"),
                            with_frames=False)
    part = next(os.path.join(path, "samples", f) for f in sorted(os.listdir(os.path.join(path, "samples")))
                if f.endswith(".parquet"))
    rows = pq.read_table(part).to_pylist()
    first = rows[0]
    video = {**{k: v for k, v in first.items() if k not in R.SAMPLE_COLUMNS}, R.CLIP_ID: f"{first[R.VIDEO_ID]}:video",
             R.CLIP_INDEX: None, R.START_S: 0.0, R.END_S: first[R.DURATION_S], R.CLIP_PATH: None,
             R.SAMPLE_SCOPE: R.SCOPE_VIDEO}
    base = {c: None for c in R.SAMPLE_COLUMNS}
    spans = [{"start_s": 0.0, "end_s": 2.0}, {"start_s": 4.0, "end_s": 6.0}]
    rows += [
        {**video, **base, R.SAMPLE_ID: "h7-hl", R.TASK: "highlights", R.SAMPLE_TEACHER: "t",
         R.QUESTION: 'Which moments of the video match the query "colour bars"? Give the time of each and its saliency score.',
         R.ANSWER: "{{span:0,2}} saliency 5\n{{span:4,6}} saliency 4", R.ANSWER_SPANS: spans, R.ANSWER_SCORES: [5.0, 4.0]},
        {**video, **base, R.SAMPLE_ID: "h7-key", R.TASK: "summarization", R.SAMPLE_TEACHER: "t",
         R.QUESTION: "Summarize this video by its key moments: give the time of each and its saliency score from 1 to 5.",
         R.ANSWER: "{{span:0,2}} saliency 5\n{{span:4,6}} saliency 4", R.ANSWER_SPANS: spans, R.ANSWER_SCORES: [5.0, 4.0]},
        {**video, **base, R.SAMPLE_ID: "h7-sentences", R.TASK: "summarization", R.SAMPLE_TEACHER: "t",
         R.QUESTION: "Summarize this video, giving the time of each part you describe.",
         R.ANSWER: "Colour bars appear ({{span:0,2}}).", R.ANSWER_SPANS: spans[:1]},
    ]
    cols = sorted({c for r in rows for c in r if c in R.FIELD_TYPES and c not in R.INTERNAL_COLUMNS})
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows], schema=R.data_schema(cols)), part)
    return path


def test_vtg_it_export_writes_vtg_it_grammar_and_skips_sentence_summaries(build, tmp_path):
    dest = tmp_path / "vtg"
    res = export(build, str(dest), "vtg_it", media="none")
    recs = json.loads(next(dest.glob("*_vtg-it.json")).read_text())
    jsonschema.validate(recs, json.loads(open(os.path.join(SCHEMAS, "vtg_it.schema.json")).read()))
    answers = [qa["a"] for rec in recs for qa in rec["QA"]]
    highlights = [a for a in answers if a.startswith("There are")]
    summaries = [a for a in answers if a.startswith("The highlight timestamps")]
    assert len(highlights) == 1 and len(summaries) == 1, answers
    m = QVH.fullmatch(highlights[0])
    assert m and parse_vtg_tokens(m.group(2)) == [0.0, 4.0] and m.group(3) == "5.0, 4.0"
    assert TVSUM.fullmatch(summaries[0])
    # no other grammar under VTG-IT's task names: spans with "saliency N" lines are gone, sentences skipped
    assert not any("saliency 5" in a or "Colour bars appear" in a for a in answers)
    assert res.skipped.get("abstractive_summary") == 1
    assert any("form: extractive" in n for n in res.notes), res.notes
    question = next(qa["q"] for rec in recs for qa in rec["QA"] if qa["a"] == highlights[0])
    assert '"colour bars"' in question and "from 1 to 5" in question and "Give times in seconds" in question


def test_cg_bench_domain_comes_from_the_input():
    assert content_domain({R.SOURCE_META: json.dumps({"domain": "Life Record", "stem": "x"})}) == "Life Record"
    assert content_domain({R.SOURCE_META: {"category": "Sports & Exercise"}}) == "Sports & Exercise"
    assert content_domain({R.ANNOTATIONS: {"title": "Küche & Garten", "labels": ["cooking", "garden"]}}) == "cooking"
    # the title names the video, not its domain; with nothing to go on the field stays empty, never the build name
    assert content_domain({R.ANNOTATIONS: {"title": "Küche & Garten"}, R.SOURCE_META: "{}"}) == ""


def test_cg_bench_export_names_no_build_as_domain(build, tmp_path):
    """A false-premise MCQ of a video whose manifest names its domain: CG-Bench's category and that domain;
    the other items' videos name none, so their domain is empty, never the build's name."""
    marked = tmp_path / "labelled"
    shutil.copytree(build, marked)
    part = next(p for p in (marked / "samples").glob("*.parquet"))
    table = pq.read_table(part)
    rows = table.to_pylist()
    duration = rows[0][R.DURATION_S]
    template = next(r for r in rows if r[R.SAMPLE_ID] == "h7-key")
    rows.append({**template, R.SAMPLE_ID: "h7-fp", R.TASK: "mcq", R.QUESTION_TYPE: "false_premise",
                 R.QUESTION: "Why does the blue car stop?", R.ANSWER: "There is no car in the video.",
                 R.OPTIONS: ["It is out of fuel.", "There is no car in the video.", "The light is red."],
                 R.ANSWER_INDEX: 1, R.ANSWER_SCORES: None, R.ANSWER_SPANS: [{"start_s": 0.0, "end_s": duration / 4}],
                 R.SOURCE_META: json.dumps({"domain": "Special Scenes"})})
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
    dest = tmp_path / "cg"
    export(str(marked), str(dest), "cg_bench", media="none")
    items = json.loads((dest / "cgbench.json").read_text())
    jsonschema.validate(items, json.loads(open(os.path.join(SCHEMAS, "cg_bench.schema.json")).read()))
    fp = [it for it in items if it["question"] == "Why does the blue car stop?"]
    assert len(fp) == 1 and fp[0]["sub_category"] == "Hallucination" and fp[0]["domain"] == "Special Scenes"
    assert {it["domain"] for it in items if it is not fp[0]} <= {""}, items


def test_cg_bench_sub_categories_are_the_releases_names_where_one_asks_the_same():
    """cgbench_mini.json's 12 sub-categories (Entity / Event / Text / Time / 2D Spatial / Scene Perception, five
    Cognition ones, Hallucination); a type it has no category for keeps its own name."""
    from types import SimpleNamespace

    from vdata.exporters.releases.cg_bench import SUB_CATEGORY, sub_category

    release = {f"{k} Perception" for k in ("Entity", "Event", "Text", "Time", "2D Spatial", "Scene")} | {
        f"{k} Cognition" for k in ("Entity", "Event", "Text", "Time", "Scene")} | {"Hallucination"}
    assert set(SUB_CATEGORY.values()) <= release

    def item(qtype, task="mcq"):
        return SimpleNamespace(get=lambda key: {R.QUESTION_TYPE: qtype}.get(key), task=task)

    assert sub_category(item("counting")) == "Entity Perception" and sub_category(item("ocr")) == "Text Perception"
    assert sub_category(item("false_premise")) == "Hallucination" and sub_category(item("causal")) == "Event Cognition"
    assert sub_category(item("camera")) == "camera" and sub_category(item(None, "label_mcq")) == "label_mcq"
