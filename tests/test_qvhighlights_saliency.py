"""generate `highlights: {source: annotations}`: QVHighlights' own queries with their annotators' saliency as
VTG-IT highlight samples, no teacher (outside check h20 F20).

VTG-LLM's conversion, confirmed in gyxxyg/VTG-LLM utils/construct_it_data/process_highlight_data.py (HEAD
ce13f3e): every clip of `relevant_clip_ids` is listed, at `clip id * 2` s, with `round(mean of its annotators'
0..4 ratings, 1)`, in "There are {n} highlight moments in the {times} second. Their saliency scores are
{scores}." vdata stores each clip as a span [2k, 2k + 2] s (cut to the video) and its score on VTG-IT's
1..5 scale (1 + the mean; `score_scale: mean` keeps VTG-LLM's 0..4 mean); the `vtg_it` exporter writes the
grammar. A real QVHighlights-format JSONL on a real ffmpeg-made video, through ingest, probe, annotations,
generate and the vtg_it export."""
from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import pyarrow.dataset as pads
import pytest

import vdata
from vdata.exporters import export
from vdata.exporters.timefmt import parse_vtg_tokens
from vdata.media.synth import Segment, render_segments
from vdata.pipelines.ingest import discover, find_duplicates
from vdata.schemas import records as R
from vdata.schemas.config import parse_config
from vdata.stages.annotations import AnnotationsStage
from vdata.stages.generate.stage import GenerateConfig, GenerateStage
from vdata.stages.probe import ProbeStage
from vdata.stages.shots import ShotsStage

VID = "qvTest_30.0_41.0"   # an 11-s video: clips 0..5, the last one 10-11 s
QUERIES = [   # highlight_train_release.jsonl, one query per line
    {"qid": 101, "query": "Colour bars fill the screen.", "duration": 11, "vid": VID,
     "relevant_windows": [[0, 4]], "relevant_clip_ids": [0, 1], "saliency_scores": [[4, 2, 3], [1, 1, 0]]},
    {"qid": 102, "query": "A test pattern with a moving counter.", "duration": 11, "vid": VID,
     "relevant_windows": [[4, 8]], "relevant_clip_ids": [2, 3], "saliency_scores": [[3, 3, 4], [2, 2, 2]]},
    {"qid": 103, "query": "A fractal closes the video", "duration": 11, "vid": VID,
     "relevant_windows": [[8, 11]], "relevant_clip_ids": [4, 5], "saliency_scores": [[0, 1, 1], [4, 4, 4]]},
    # bad items: each one reject with its reason
    {"qid": 104, "query": "Clips past the end.", "duration": 11, "vid": VID,
     "relevant_windows": [[8, 10]], "relevant_clip_ids": [4, 6], "saliency_scores": [[1, 1, 1], [2, 2, 2]]},
    {"qid": 105, "query": "Fewer ratings than clips.", "duration": 11, "vid": VID,
     "relevant_windows": [[0, 2]], "relevant_clip_ids": [0, 1], "saliency_scores": [[1, 1, 1]]},
    {"qid": 106, "query": "No saliency given.", "duration": 11, "vid": VID,
     "relevant_windows": [[2, 4]], "relevant_clip_ids": [], "saliency_scores": []},
    {"qid": 107, "query": "colour bars fill the screen", "duration": 11, "vid": VID,
     "relevant_windows": [[1, 3]], "relevant_clip_ids": [1], "saliency_scores": [[2, 2, 2]]},
]
# (clip span, VTG-IT 1..5 score = 1 + mean of the annotators, VTG-LLM's 0..4 mean), worked out by hand
EXPECTED = {
    101: [((0.0, 2.0), 4.0, 3.0), ((2.0, 4.0), 1.7, 0.7)],       # (4+2+3)/3 = 3.0; (1+1+0)/3 = 0.67
    102: [((4.0, 6.0), 4.3, 3.3), ((6.0, 8.0), 3.0, 2.0)],       # 10/3 = 3.33; 2.0
    103: [((8.0, 10.0), 1.7, 0.7), ((10.0, 11.0), 5.0, 4.0)],    # 2/3; 4.0 — clip 5 cut to the 11-s video
}
QVH = re.compile(r"There are (\d+) highlight moments in the (.+) second\. Their saliency scores are ([\d., ]+)\.")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """The QVHighlights file and its video (named by `vid`), and a manifest video that has no queries."""
    root = tmp_path_factory.mktemp("qvh")
    videos = root / "videos"
    videos.mkdir()
    render_segments(str(videos / f"{VID}.mp4"), [Segment("smptebars", 4.0), Segment("testsrc", 4.0),
                                                 Segment("mandelbrot", 3.0)], size=(160, 96))
    render_segments(str(videos / "plain.mp4"), [Segment("rgbtestsrc", 4.0)], size=(160, 96))
    (root / "highlight_train_release.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    (root / "plain.jsonl").write_text(json.dumps({"path": "videos/plain.mp4", "segments": [
        {"start_s": 0.0, "end_s": 2.0, "text": "A grey card."}]}) + "\n")
    return root


def _config(root: Path, out: Path) -> dict:
    return {"input": [{"manifest": str(root / "highlight_train_release.jsonl"), "format": "qvhighlights",
                       "videos": str(root / "videos")},
                      {"manifest": str(root / "plain.jsonl")}],
            "output": {"dir": str(out)},
            "stages": [{"probe": {}}, {"annotations": {"sources": {"segments": "segments"}, "require": ["segments"]}},
                       {"shots": {"min_len_s": 1.0}},
                       {"generate": {"scope": "video", "tasks": {"highlights": {"source": "annotations"},
                                                                 "segment_grounding": {}}}},
                       {"wellformed": {"language": "en"}}, {"timestamps": {}}]}   # the vtg_it recipe's filters


def test_qvhighlights_queries_become_vtg_it_highlights_without_a_teacher(files, tmp_path, in_process):
    raw = _config(files, tmp_path / "out")
    cfg = parse_config(raw)
    assert not cfg.teachers and "teacher" not in raw["stages"][3]["generate"]   # no teacher anywhere
    result = vdata.build(cfg, progress=False)
    assert result.rejects_by_reason == {   # the samples pass wellformed and timestamps
        "generate:highlight_past_end": 1, "generate:highlight_malformed": 1, "generate:highlight_no_saliency": 1,
        "generate:highlight_duplicate_query": 1, "generate:missing_annotation": 1}
    samples = pads.dataset(result.data_dir, format="parquet").to_table().to_pylist()
    highlights = [s for s in samples if s[R.TASK] == "highlights"]
    by_query = {qid: next(s for s in highlights if f'"{q}"' in s[R.QUESTION]) for qid, q in (
        (101, "Colour bars fill the screen"), (102, "A test pattern with a moving counter"),
        (103, "A fractal closes the video"))}
    assert len(highlights) == 3
    duration = by_query[103][R.DURATION_S]
    assert duration == pytest.approx(11.0, abs=0.05)
    for qid, s in by_query.items():
        spans = [(a, min(b, duration)) for (a, b), _, _ in EXPECTED[qid]]
        assert [(x["start_s"], x["end_s"]) for x in s[R.ANSWER_SPANS]] == spans
        assert s[R.ANSWER_SCORES] == [v for _, v, _ in EXPECTED[qid]]
        assert s[R.SAMPLE_TEACHER] is None and s[R.SAMPLE_MODEL] is None and s[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO
        assert s[R.SAMPLE_PROMPT_VERSION].startswith("generate/template_questions@")
        assert s[R.ANSWER].splitlines() == [f"{{{{span:{a:g},{b:g}}}}} saliency {v:g}" for (a, b), v
                                            in zip(spans, s[R.ANSWER_SCORES])]
    assert by_query[101][R.ANSWER] == "{{span:0,2}} saliency 4\n{{span:2,4}} saliency 1.7"
    assert by_query[101][R.EVIDENCE]["captions"] == ["{{span:0,4}} Colour bars fill the screen"]
    # the query windows are still the segments of segment_grounding
    assert any(s[R.TASK] == "segment_grounding" for s in samples)

    rejects = pads.dataset(str(Path(result.output_dir) / "rejects"), format="parquet").to_table().to_pylist()
    mine = {r["reason"]: r for r in rejects if r["stage"] == "generate"}
    assert json.loads(mine["highlight_past_end"]["detail"])["query"]["qid"] == 104
    assert "[6]" in mine["highlight_past_end"]["message"]
    assert json.loads(mine["highlight_malformed"]["detail"])["query"]["qid"] == 105
    assert "2 clip id(s) and 1 saliency rating(s)" in mine["highlight_malformed"]["message"]
    assert json.loads(mine["highlight_no_saliency"]["detail"])["query"]["qid"] == 106
    assert "qid 101" in mine["highlight_duplicate_query"]["message"]
    assert mine["missing_annotation"]["message"] == "highlights: no annotation queries in the video's annotations"
    assert json.loads(mine["missing_annotation"]["detail"])["task"] == "highlights"

    # the vtg_it export writes VTG-IT's QVHighlights grammar: every clip at clip id * 2 s, with its score
    dest = tmp_path / "vtg"
    export(result.output_dir, str(dest), "vtg_it", time_format="vtg", media="none", tasks=["highlights"])
    records = json.loads(next(dest.glob("*_vtg-it.json")).read_text())
    answers = {qa["q"]: qa["a"] for rec in records for qa in rec["QA"]}
    assert len(answers) == 3
    for qid, q in ((101, "Colour bars fill the screen"), (102, "A test pattern with a moving counter"),
                   (103, "A fractal closes the video")):
        answer = next(a for question, a in answers.items() if f'"{q}"' in question)
        m = QVH.fullmatch(answer)
        assert m, answer
        assert int(m.group(1)) == 2 and parse_vtg_tokens(m.group(2)) == [a for (a, _), _, _ in EXPECTED[qid]]
        assert m.group(3) == ", ".join(f"{v:.1f}" for _, v, _ in EXPECTED[qid])
    assert answers[next(q for q in answers if "Colour bars" in q)] == (
        "There are 2 highlight moments in the <TIME_ZERO><TIME_ZERO><TIME_ZERO><TIME_ZERO><TIME_DOT><TIME_ZERO>, "
        "<TIME_ZERO><TIME_ZERO><TIME_ZERO><TIME_TWO><TIME_DOT><TIME_ZERO> second. Their saliency scores are 4.0, 1.7.")


@pytest.fixture(scope="module")
def annotated_rows(files, tmp_path_factory) -> list[dict]:
    """The two videos' clip rows after ingest -> probe -> annotations -> shots, each stage with `vdata.run_stage`."""
    out = tmp_path_factory.mktemp("qvh_rows")
    cfg = parse_config(_config(files, out / "o"))
    rows, judged = find_duplicates(discover(cfg, media_dir=str(out / "media")))
    assert not judged
    ds = datasets.Dataset.from_list(rows)
    for stage in (ProbeStage(), AnnotationsStage(sources={"segments": "segments"}, sidecars=False),
                  ShotsStage(min_len_s=1.0)):
        ds, rejects = vdata.run_stage(stage, ds)
        assert len(rejects) == 0, rejects.to_list()
    rows = ds.to_list()
    qv = next(r for r in rows if r[R.SOURCE_URI].endswith(f"#{VID}"))
    assert len([r for r in rows if r[R.SOURCE_URI] == qv[R.SOURCE_URI]]) > 1      # cut at its shots
    assert [q["qid"] for q in R.source_meta(qv)["queries"]] == [q["qid"] for q in QUERIES]   # kept for generate
    return rows


def _generate(rows: list[dict], scope: str = "video", **highlights):
    cfg = GenerateConfig(scope=scope, tasks={"highlights": {"source": "annotations", **highlights}})
    kept, rejects = vdata.run_stage(GenerateStage(cfg), datasets.Dataset.from_list(rows))
    return kept.to_list(), rejects.to_list()


def test_score_scale_mean_keeps_vtg_llms_annotator_means(annotated_rows):
    samples, _ = _generate(annotated_rows, score_scale="mean")
    scores = {s[R.ANSWER_SPANS][0]["start_s"]: s[R.ANSWER_SCORES] for s in samples}
    assert scores == {spans[0][0][0]: [m for _, _, m in spans] for spans in EXPECTED.values()}
    assert all(s[R.SAMPLE_TEACHER] is None for s in samples)


def test_clip_rows_are_not_video_scope_rejects(annotated_rows):
    """At clip scope the queries' clips are the video's, not a clip's: each clip row says so."""
    clips = [r for r in annotated_rows if r[R.SOURCE_URI].endswith(f"#{VID}")]
    samples, rejects = _generate(clips, scope="clip")
    assert samples == [] and [r["reason"] for r in rejects] == ["not_video_scope"] * len(clips)
    assert "scope: video" in rejects[0]["message"]


def test_only_the_teacher_variant_needs_a_teacher():
    assert GenerateConfig(tasks={"highlights": {"source": "annotations"}}).teacher is None
    with pytest.raises(ValueError, match=r"teacher: required by task\(s\) \['highlights'\]"):
        GenerateConfig(tasks={"highlights": {}})
    with pytest.raises(ValueError, match="min_score: a setting of the teacher's highlights"):
        GenerateConfig(tasks={"highlights": {"source": "annotations", "min_score": 2}})
    with pytest.raises(ValueError, match="score_scale: a setting of source: annotations"):
        GenerateConfig(teacher="t", tasks={"highlights": {"score_scale": "mean"}})
