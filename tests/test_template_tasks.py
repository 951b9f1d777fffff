"""Template (teacher-free) tasks and the new temporal teacher tasks of `generate`.

Teacher-free: a real ffmpeg video (7 hard cuts) through probe → annotations → shots with
`vdata.run_stage` (a label, description chapter lines and dense-caption segments from the manifest
columns; other annotations set on rows in the column's type for the bad cases), then `generate` with the
template families on the clip rows and on the whole-video row: structure, spans inside each row, distractors from the vocabulary, byte-identical
twice, bad inputs rejected with reasons. The teacher families' reply readers run on given replies (no
model); one slow test runs them with SmolLM2-135M (vLLM's CPU engine or llama.cpp) and checks structure and
validity only.
"""
from __future__ import annotations

import json
import re
from collections import Counter

import datasets
import pyarrow as pa
import pytest

import labelled_set as L
import vdata
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate import TASK_FAMILIES, build_clues
from vdata.stages.generate.common import sample_base
from vdata.stages.generate.stage import GenerateConfig, GenerateStage
from vdata.stages.timestamps import TimestampsConfig, TimestampsStage

VOCAB = ["cooking", "dancing", "juggling", "painting", "running", "swimming", "typing"]
CHAPTERS = [(0.0, 4.0, "Colour bars"), (4.0, 9.0, "Moving patterns"), (9.0, 14.0, "Test card")]
SEGMENTS = [(0.5, 1.8, "A grid of colour bars appears."), (2.2, 3.6, "Bright bars scroll across."),
            (3.5, 6.5, "The pattern changes colour."),        # crosses the 4 s cut: only the video row uses it
            (8.1, 9.7, "A test card fades in."), (10.2, 13.5, "Numbers count up on the card.")]
TEMPLATE_TASKS = ("label_mcq", "segment_grounding", "interval_caption", "dense_from_segments", "chapter_generation",
                  "chapter_title", "chapter_grounding")
PLACEHOLDER = re.compile(r"\{\{(t|span):[-0-9.e+]+(,[-0-9.e+]+)?\}\}")
DEAD = {"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0, "timeout_s": 5}}


def _annotations(labels=("juggling",), chapters=CHAPTERS, segments=SEGMENTS) -> dict:
    """The `annotations` column as the annotations stage writes it (records.ANNOTATIONS_TYPE)."""
    return {"title": "Test patterns", "description": None, "labels": list(labels),
            "chapters": [{"start_s": a, "end_s": b, "title": t} for a, b, t in chapters],
            "segments": [{"start_s": a, "end_s": b, "text": t} for a, b, t in segments],
            "subtitles": [], "transcript": None}


@pytest.fixture(scope="module")
def clip_rows(cut_video):
    """Clip rows of a real 14 s video (cuts every 2 s): probe → annotations → shots, each with
    `vdata.run_stage`. The annotations come from the manifest's columns (`source_meta`): a label, the
    description's "0:00 Title" chapter lines and dense-caption segments as JSON."""
    from vdata.stages.annotations import AnnotationsStage
    from vdata.stages.probe import ProbeStage
    from vdata.stages.shots import ShotsStage

    path, _ = cut_video
    meta = {"labels": "juggling", "title": "Test patterns",
            "description": "Chapters:\n" + "\n".join(f"0:{int(a):02d} {t}" for a, _, t in CHAPTERS),
            "segments": [{"start": a, "end": b, "text": t} for a, b, t in SEGMENTS]}
    ds = datasets.Dataset.from_list([{R.SOURCE_URI: path, R.PATH: path, R.SOURCE_META: json.dumps(meta)}])
    for stage in (ProbeStage(), AnnotationsStage(sidecars=False), ShotsStage(min_len_s=1.0, max_len_s=5.0)):
        ds, rejects = vdata.run_stage(stage, ds)
        assert len(rejects) == 0, rejects.to_list()
    rows = ds.to_list()
    assert len(rows) >= 4 and rows[-1][R.END_S] == pytest.approx(rows[0][R.DURATION_S], abs=0.1)
    written = rows[0][R.ANNOTATIONS]   # as the stage wrote it: what _annotations() builds by hand
    assert written["labels"] == ["juggling"] and written["title"] == "Test patterns"
    assert [(c["start_s"], c["title"]) for c in written["chapters"]] == [(a, t) for a, _, t in CHAPTERS]
    assert [(x["start_s"], x["end_s"], x["text"]) for x in written["segments"]] == SEGMENTS
    return rows


def _with(rows: list[dict], **annotation_kw) -> list[dict]:
    """The rows with other annotations (none given: the stage's own); a caption as the caption stage would
    leave it: the stage on main lets no row without clues reach the families (annotation clues come with
    the video-scope work)."""
    caption = {R.CAPTION: "A synthetic test pattern."}
    return [dict(r, **caption, **({R.ANNOTATIONS: _annotations(**annotation_kw)} if annotation_kw else {}))
            for r in rows]


def _video_row(clips: list[dict]) -> dict:
    """The whole-video row of `scope: video` (the contract: start 0, end = duration, `<video_id>:video`)."""
    first = clips[0]
    return {**first, R.CLIP_ID: f"{first[R.VIDEO_ID]}:video", R.START_S: 0.0, R.END_S: first[R.DURATION_S],
            R.SAMPLE_SCOPE: R.SCOPE_VIDEO}


def _config(**tasks) -> GenerateConfig:
    return GenerateConfig(tasks=tasks or {t: {} for t in TEMPLATE_TASKS})


def _run(cfg: GenerateConfig, rows: list[dict]):
    """`generate` over rows with `vdata.run_stage` (Arrow in and out, as in a build): (samples, rejects), the
    rejects as the build's `rejects/` records (stage, reason, message, detail JSON, ids)."""
    kept, rejects = vdata.run_stage(GenerateStage(cfg), datasets.Dataset.from_list(rows))
    return kept.to_list(), rejects.to_list()


def _inside(sample: dict) -> bool:
    return all(sample[R.START_S] - 1e-6 <= s["start_s"] < s["end_s"] <= sample[R.END_S] + 1e-6
               for s in sample[R.ANSWER_SPANS])


# ================================================================================ teacher-free, real rows
def test_template_tasks_on_clip_rows_and_the_video_row(clip_rows):
    rows = _with(clip_rows)
    video = _video_row(rows)
    cfg = _config(**{t: {} for t in TEMPLATE_TASKS} | {"label_mcq": {"vocabulary": VOCAB}})
    samples, rejects = _run(cfg, rows + [video])
    by_row = {r[R.CLIP_ID]: r for r in rows + [video]}
    whole = [s for s in samples if s[R.CLIP_ID] == video[R.CLIP_ID]]
    # the video row sees every annotation item: one sample per segment / chapter, one list each
    assert Counter(s[R.TASK] for s in whole) == {"label_mcq": 1, "segment_grounding": 5, "interval_caption": 5,
                                                 "dense_from_segments": 1, "chapter_generation": 1,
                                                 "chapter_title": 3, "chapter_grounding": 3}
    for s in samples:
        row = by_row[s[R.CLIP_ID]]
        assert s[R.QUESTION] and s[R.ANSWER] and s[R.SAMPLE_TEACHER] is None
        assert s[R.SAMPLE_PROMPT_VERSION] == "generate/template_questions@v3"
        assert (s[R.START_S], s[R.END_S]) == (row[R.START_S], row[R.END_S])
        if s[R.TASK] != "label_mcq":
            assert s[R.ANSWER_SPANS] and _inside(s), (s[R.TASK], s[R.ANSWER_SPANS], row[R.START_S], row[R.END_S])
        text = s[R.QUESTION] + s[R.ANSWER]
        assert "$" not in text and all(PLACEHOLDER.fullmatch(m.group(0)) for m in re.finditer(r"\{\{.*?\}\}", text))
    # times go in as placeholders of the annotation's own times
    ground = next(s for s in whole if s[R.TASK] == "segment_grounding" and "count up" in s[R.QUESTION])
    assert ground[R.ANSWER] == "{{span:10.2,13.5}}" and ground[R.ANSWER_SPANS] == [{"start_s": 10.2, "end_s": 13.5}]
    cap = next(s for s in whole if s[R.TASK] == "interval_caption" and s[R.ANSWER] == "A test card fades in.")
    assert ("{{t:8.1}}" in cap[R.QUESTION] and "{{t:9.7}}" in cap[R.QUESTION]) or "{{span:8.1,9.7}}" in cap[R.QUESTION]
    chapters = next(s for s in whole if s[R.TASK] == "chapter_generation")
    assert chapters[R.ANSWER].splitlines() == [f"{{{{span:{a:g},{b:g}}}}} {t}" for a, b, t in CHAPTERS]
    title = next(s for s in whole if s[R.TASK] == "chapter_title" and s[R.ANSWER] == "Moving patterns")
    assert title[R.ANSWER_SPANS] == [{"start_s": 4.0, "end_s": 9.0}]
    found = next(s for s in whole if s[R.TASK] == "chapter_grounding" and "Moving patterns" in s[R.QUESTION])
    assert found[R.ANSWER] == "{{t:4}}" and found[R.ANSWER_SPANS] == [{"start_s": 4.0, "end_s": 9.0}]
    spans, _ = _run(_config(chapter_grounding={"answer": "span"}), [video])
    assert sorted(s[R.ANSWER] for s in spans) == sorted(f"{{{{span:{a:g},{b:g}}}}}" for a, b, _ in CHAPTERS)
    assert all("start and end" in s[R.QUESTION] or "time span" in s[R.QUESTION] for s in spans)
    # clip rows: only the items inside the clip — the segment across the 4 s cut appears on no clip row
    for s in samples:
        if s[R.CLIP_ID] != video[R.CLIP_ID] and s[R.TASK] in ("segment_grounding", "interval_caption"):
            assert s[R.ANSWER_SPANS] != [{"start_s": 3.5, "end_s": 6.5}]
    per_clip = Counter(s[R.TASK] for s in samples if s[R.CLIP_ID] != video[R.CLIP_ID])
    inside = sum(1 for r in rows for a, b, _ in SEGMENTS if r[R.START_S] - 1e-3 <= a and b <= r[R.END_S] + 1e-3)
    assert per_clip["label_mcq"] == len(rows) and per_clip["segment_grounding"] == inside < len(SEGMENTS)
    # clip rows without an item of a kind: one missing_annotation reject per task, with the row's interval;
    # an item across a cut, which no clip row holds: one annotation_crosses_clip reject each, not one per task
    assert rejects and {r["reason"] for r in rejects} == {"missing_annotation", "annotation_crosses_clip"}
    crossing = [json.loads(r["detail"])["item"] for r in rejects if r["reason"] == "annotation_crosses_clip"]
    held = [(a, b) for a, b, _ in SEGMENTS + CHAPTERS
            if not any(r[R.START_S] - 1e-3 <= a and b <= r[R.END_S] + 1e-3 for r in rows)]
    assert (3.5, 6.5) in held and sorted((i["start_s"], i["end_s"]) for i in crossing) == sorted(held)
    assert all(r[R.CLIP_ID] != video[R.CLIP_ID] for r in rejects)
    assert all(json.loads(r["detail"])["task"] in TEMPLATE_TASKS for r in rejects)
    # the timestamps filter agrees: every span inside its visual, ordered
    checked = TimestampsStage(TimestampsConfig(), RunContext(output_dir="")).process_batch(
        [s for s in samples if s[R.TASK] != "label_mcq"])
    assert all(not isinstance(c, Reject) and c[R.V_TIMESTAMPS_VALID] for c in checked)


def test_label_mcq_distractors_from_the_vocabulary_and_balanced_positions(clip_rows):
    rows = []
    for i in range(40):   # many videos: the answer position must spread over the options
        r = _with(clip_rows[:1], labels=[VOCAB[i % len(VOCAB)], VOCAB[(i + 2) % len(VOCAB)]])[0]
        rows.append(dict(r, **{R.CLIP_ID: f"v{i}_clip"}))
    cfg = _config(label_mcq={"vocabulary": VOCAB, "num_options": 4, "per_clip": 2})
    samples, rejects = _run(cfg, rows)
    assert not rejects and len(samples) == 80
    positions = Counter()
    for s in samples:
        labels = next(r for r in rows if r[R.CLIP_ID] == s[R.CLIP_ID])[R.ANNOTATIONS]["labels"]
        opts = s[R.OPTIONS]
        assert len(opts) == 4 and len(set(opts)) == 4 and set(opts) <= set(VOCAB)
        assert opts[s[R.ANSWER_INDEX]] == s[R.ANSWER] and s[R.ANSWER] in labels
        assert not (set(opts) - {s[R.ANSWER]}) & set(labels), "another label of the video is never a distractor"
        positions[s[R.ANSWER_INDEX]] += 1
    assert set(positions) == {0, 1, 2, 3} and min(positions.values()) >= 80 / 4 / 2
    two = [s[R.ANSWER_INDEX] for s in samples if s[R.CLIP_ID] == "v0_clip"]
    assert len(set(two)) == 2, "a row's MCQs rotate the position"


def test_byte_identical_twice_and_the_seed_changes_choices(clip_rows):
    rows = _with(clip_rows, labels=["juggling"])
    rows.append(_video_row(rows))
    cfg = _config(**{t: {} for t in TEMPLATE_TASKS} | {"label_mcq": {"vocabulary": VOCAB}})

    def table(c):
        kept, _ = vdata.run_stage(GenerateStage(c), datasets.Dataset.from_list(rows))
        return kept.data.table

    first, second = table(cfg), table(cfg)
    assert first.equals(second) and first.num_rows > 10
    sink = pa.BufferOutputStream()   # byte-identical once written, as a build writes it
    import pyarrow.parquet as pq

    pq.write_table(first, sink)
    again = pa.BufferOutputStream()
    pq.write_table(second, again)
    assert sink.getvalue().to_pybytes() == again.getvalue().to_pybytes()
    # another seed: same ids (the sample is the same item), other distractors or question wording
    reseeded = _config(**{t: {"seed": 7} for t in TEMPLATE_TASKS} | {"label_mcq": {"vocabulary": VOCAB, "seed": 7}})
    other = table(reseeded).to_pylist()
    base = first.to_pylist()
    assert sorted(s[R.SAMPLE_ID] for s in other) == sorted(s[R.SAMPLE_ID] for s in base)
    assert [(s[R.QUESTION], s[R.OPTIONS]) for s in other] != [(s[R.QUESTION], s[R.OPTIONS]) for s in base]


def test_bad_inputs_are_rejects_with_reasons(clip_rows):
    row = _with(clip_rows[:1])[0]
    cases = {
        "unknown": dict(row, **{R.CLIP_ID: "unknown", R.ANNOTATIONS: _annotations(labels=["yodelling"])}),
        "nolabel": dict(row, **{R.CLIP_ID: "nolabel", R.ANNOTATIONS: _annotations(labels=[])}),
        "noseg": dict(row, **{R.CLIP_ID: "noseg", R.ANNOTATIONS: _annotations(segments=[], chapters=[])}),
        "noannot": dict(row, **{R.CLIP_ID: "noannot", R.ANNOTATIONS: None}),
    }
    cfg = _config(label_mcq={"vocabulary": VOCAB}, segment_grounding={}, chapter_title={})
    samples, rejects = _run(cfg, list(cases.values()))
    got = {(r[R.CLIP_ID], json.loads(r["detail"])["task"], r["reason"]) for r in rejects}
    assert not {(s[R.CLIP_ID], s[R.TASK]) for s in samples} & {(c, t) for c, t, _ in got}
    assert ("unknown", "label_mcq", "label_not_in_vocabulary") in got
    assert {("nolabel", "label_mcq", "missing_annotation"), ("noseg", "segment_grounding", "missing_annotation"),
            ("noseg", "chapter_title", "missing_annotation"), ("noannot", "label_mcq", "missing_annotation")} <= got
    assert ("unknown", "segment_grounding") in {(s[R.CLIP_ID], s[R.TASK]) for s in samples}   # the rest goes on
    assert len(samples) + len(rejects) >= 4 * 3 and all(r["message"] for r in rejects)
    # a vocabulary too small for the options: a config error when configured (outside check h20), a reject when
    # the row brings its own
    with pytest.raises(ValueError, match=r"2 label\(s\), fewer than num_options 4"):
        _config(label_mcq={"vocabulary": ["juggling", "typing"], "num_options": 4})
    small_own = dict(row, **{R.SOURCE_META: json.dumps({"vocabulary": ["juggling", "typing"]})})
    small, rej = _run(_config(label_mcq={"num_options": 4}), [small_own])
    assert not small and [r["reason"] for r in rej] == ["too_few_distractors"]
    # no configured vocabulary: the row's own source_meta list, else a reject
    own = dict(row, **{R.SOURCE_META: json.dumps({"vocabulary": ["juggling", "knitting", "rowing"]})})
    made, rej = _run(_config(label_mcq={"num_options": 3}), [own, row])
    assert [sorted(s[R.OPTIONS]) for s in made] == [["juggling", "knitting", "rowing"]]
    assert [(r[R.CLIP_ID], r["reason"]) for r in rej] == [(row[R.CLIP_ID], "missing_annotation")]


def test_templates_from_config_per_dataset_and_config_errors(clip_rows, tmp_path):
    row = dict(_with(clip_rows[:1])[0], **{R.SOURCE_META: json.dumps({"dataset": "kinetics"})})
    cfg = _config(label_mcq={"vocabulary": VOCAB, "templates": ["Which activity is this?"],
                             "templates_by_dataset": {"kinetics": ["What is the action performed by the person?"]}},
                  segment_grounding={"templates": ["Where is <$text>?"]})
    samples, _ = _run(cfg, [row])
    mcq = next(s for s in samples if s[R.TASK] == "label_mcq")
    assert mcq[R.QUESTION] == "What is the action performed by the person?" and mcq[R.QUESTION_TYPE] == "kinetics"
    assert mcq[R.SAMPLE_PROMPT_VERSION].startswith("generate/label_mcq@config:")
    ground = [s for s in samples if s[R.TASK] == "segment_grounding"]
    assert ground and all(re.fullmatch(r"Where is <[^$]+>\?", s[R.QUESTION]) for s in ground)
    base = {"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "out")}}

    def err(tasks):
        with pytest.raises(ConfigError) as e:
            parse_config({**base, "stages": [{"generate": {"tasks": tasks}}]})
        return str(e.value)

    assert "stages[0].generate.tasks.segment_grounding" in err({"segment_grounding": {"templates": ["When is $title?"]}})
    assert "needs one of $end, $span, $start" in err({"interval_caption": {"templates": ["Describe it."]}})
    assert "tasks.label_mcq.vocabulary" in err({"label_mcq": {"vocabulary": str(tmp_path / "none.txt")}})
    assert "tasks.label_mcq: vocabulary: 2 label(s), fewer than num_options 4" in err(
        {"label_mcq": {"vocabulary": ["a", "b", "B "]}})   # labels count once, however spelt
    assert "tasks.highlights: min_score" in err({"highlights": {"scale": 2, "min_score": 3}})
    ok = parse_config({**base, "stages": [{"generate": {"tasks": list(TEMPLATE_TASKS)}}]})
    assert ok.stage_specs[0][1].tasks.enabled() == list(TEMPLATE_TASKS) and ok.stage_specs[0][1].teacher is None
    vocab = tmp_path / "labels.txt"
    vocab.write_text("# Kinetics-like\njuggling\nTyping\ntyping\nrowing\n")
    made, _ = _run(_config(label_mcq={"vocabulary": str(vocab), "num_options": 3}), [row])
    assert sorted(made[0][R.OPTIONS]) == ["Typing", "juggling", "rowing"]   # first spelling kept, comments skipped


def test_annotation_only_row_needs_no_caption(clip_rows):
    """The families read the annotations, not the clues: a row with nothing but annotations plans samples."""
    row = dict(clip_rows[0], **{R.ANNOTATIONS: _annotations()})
    video = _video_row([row])
    stage = GenerateStage(_config(**{t: {} for t in TEMPLATE_TASKS} | {"label_mcq": {"vocabulary": VOCAB}}))
    stage.setup()
    free, pending = stage.plan_clip(video, build_clues(video, stage.config))
    assert not pending and Counter(s[R.TASK] for s in free if not isinstance(s, Reject))["chapter_grounding"] == 3


def test_a_chapter_over_most_of_the_video_left_out_of_grounding_says_so(clip_rows):
    """VidChapters' moment retrieval drops windows of 90 % of the video or more; a video whose other chapters
    are asked about now also has one covers_video reject per chapter left out (it was silent: outside check h20)."""
    row = dict(clip_rows[0], **{R.ANNOTATIONS: _annotations(chapters=[(0.0, 1.0, "Intro"), (1.0, 14.0, "Main part")])})
    video = _video_row([row])
    samples, rejects = _run(_config(chapter_grounding={}), [video])
    assert [s[R.QUESTION] for s in samples if s[R.TASK] == "chapter_grounding"] and all("Intro" in s[R.QUESTION]
                                                                                       for s in samples)
    (wide,) = [r for r in rejects if r["reason"] == "covers_video"]
    assert "'Main part' (1-14 s) covers 90% of the video" in wide["message"] and wide[R.TASK] == "chapter_grounding"


# ================================================================================ teacher tasks: reply readers
def _teacher_row(clip_rows) -> dict:
    """A video row with timed clues: dense events and speech over the 14 s video."""
    video = _video_row(_with(clip_rows))
    return dict(video, **{
        R.DENSE_EVENTS: [{"start_s": a, "end_s": b, "description": t} for a, b, t in SEGMENTS],
        R.TRANSCRIPT_SEGMENTS: [{"start_s": 11.0, "end_s": 12.5, "clip_start_s": 0.0, "clip_end_s": 1.5,
                                 "text": "now the numbers count up", "words": []}]})


def _plan_and_finish(stage, row, task, replies):
    family = TASK_FAMILIES[task]
    clues = build_clues(row, stage.config)
    _, pending = family.plan(stage, row, clues, getattr(stage.config.tasks, task))
    out = []
    for p, reply in zip(pending, replies):
        out.extend(family.finish(stage, row, clues, p, reply, sample_base(stage, row, p.task, p.index, p.prompt.id), {}))
    return clues, pending, out


def test_teacher_task_replies_become_spans_from_clue_times(clip_rows):
    row = _teacher_row(clip_rows)
    stage = GenerateStage(GenerateConfig(teacher="t", tasks={
        "grounded_qa": {"per_clip": 2}, "reasoning_localization": {}, "highlights": {}, "summarization": {}}),
        RunContext(output_dir="", teachers=DEAD))
    stage.setup()
    asked = TASK_FAMILIES["grounded_qa"].plan(stage, row, build_clues(row, stage.config),
                                              stage.config.tasks.grounded_qa)[1][0].extra["target"]
    other = "E1" if asked.id != "E1" else "E5"
    clues, pending, out = _plan_and_finish(stage, row, "grounded_qa", [
        {"question": "What appears on the card?", "answer": "Numbers.", "evidence": [other, asked.id]},
        {"question": "What scrolls?", "answer": "Bars.", "evidence": []}])
    assert len(pending) == 2 and all(c.id not in ("C1",) for c in pending[0].extra["spans"])   # C1 covers the row
    good, bad = out
    # the span is the asked moment's own; the other cited clue is evidence only (h17 F2: no union)
    a, b = asked.start_s, asked.end_s
    assert good[R.ANSWER_SPANS] == [{"start_s": a, "end_s": b}] and good[R.ANSWER] == f"Numbers. ({{{{span:{a:g},{b:g}}}}})"
    assert isinstance(bad, Reject) and bad.reason == "bad_reply"
    target = TASK_FAMILIES["reasoning_localization"].plan(stage, row, clues, stage.config.tasks.reasoning_localization)[1][0]\
        .extra["target"]
    _, _, out = _plan_and_finish(stage, row, "reasoning_localization", [
        {"question": "When could you learn what comes next?", "explanation": f"Because then: {target.text}"}])
    assert out[0][R.ANSWER_SPANS] == [{"start_s": target.start_s, "end_s": target.end_s}]
    assert out[0][R.ANSWER] == f"{{{{span:{target.start_s:g},{target.end_s:g}}}}} Because then: {target.text}"
    ev = out[0][R.EVIDENCE]
    assert out[0][R.RATIONALE] == f"Because then: {target.text}" and (ev["captions"] or ev["transcript_spans"])
    _, _, out = _plan_and_finish(stage, row, "reasoning_localization", [
        {"question": "When could you learn what comes next?", "explanation": "Because of it."}])
    assert out[0].reason == "off_target"
    target = TASK_FAMILIES["highlights"].plan(stage, row, clues, stage.config.tasks.highlights)[1][0].extra["target"]
    assert target.id == "E2"   # the moment the query is written for must be among the highlights (h7: F14)
    _, pending, out = _plan_and_finish(stage, row, "highlights", [
        {"query": pending_query(stage, row), "scores": [{"id": "E5", "score": 4}, {"id": "T1", "score": 3},
                                                        {"id": "E5", "score": 0}, {"id": "E1", "score": 1},
                                                        {"id": "E2", "score": 3}]}])
    s = out[0]
    assert not isinstance(s, Reject), s.message
    # T1 (11.0-12.5) lies inside E5 (10.2-13.5): one span, rated the higher (h17 F3: no nested highlights)
    assert s[R.ANSWER_SPANS] == [{"start_s": 2.2, "end_s": 3.6}, {"start_s": 10.2, "end_s": 13.5}]
    # scores on VTG-IT's 1..5 saliency scale: 1 + 4 * score / scale
    assert s[R.ANSWER_SCORES] == [4.0, 5.0] and s[R.ANSWER].splitlines()[1] == "{{span:10.2,13.5}} saliency 5"
    _, _, out = _plan_and_finish(stage, row, "highlights", [{"query": pending_query(stage, row),
                                                             "scores": [{"id": "E1", "score": 1}]}])
    assert out[0].reason == "no_highlight"
    _, _, out = _plan_and_finish(stage, row, "summarization", [{"sentences": [
        {"text": "Colour bars appear.", "evidence": ["E1", "E2"]}, {"text": "No time here.", "evidence": []},
        {"text": "A card counts up.", "evidence": ["E5"]}]}])
    assert out[0][R.ANSWER] == "Colour bars appear ({{span:0.5,3.6}}). A card counts up ({{span:10.2,13.5}})."
    assert out[0][R.ANSWER_SPANS] == [{"start_s": 0.5, "end_s": 3.6}, {"start_s": 10.2, "end_s": 13.5}]


def pending_query(stage, row) -> str:
    """A query naming the moment the highlights request describes (so it is on target)."""
    _, pending = TASK_FAMILIES["highlights"].plan(stage, row, build_clues(row, stage.config), stage.config.tasks.highlights)
    return pending[0].extra["target"].text


# ========================================================================= SmolLM2 (vLLM's CPU engine or llama.cpp)
@pytest.mark.slow
@pytest.mark.skipif(not L.have_smollm(), reason="SmolLM2 is not installed (make setup)")
def test_teacher_tasks_with_smollm(clip_rows, smollm):
    row = _teacher_row(clip_rows)
    cfg = GenerateConfig(teacher="t", max_tokens=200, tasks={
        "grounded_qa": {}, "reasoning_localization": {}, "highlights": {}, "summarization": {}})
    kept, rejects = vdata.run_stage(GenerateStage(cfg, RunContext(output_dir="", teachers={"t": L.openai_teacher(smollm)})),
                                    datasets.Dataset.from_list([row]))
    samples, rejects = kept.to_list(), rejects.to_list()
    print(f"\n[template tasks smollm] {Counter(s[R.TASK] for s in samples)} "
          f"rejects {Counter(r['reason'] for r in rejects)}")
    assert len(samples) + len(rejects) == 4   # one request per task, nothing lost
    assert {r["reason"] for r in rejects} <= {"bad_reply", "off_target", "ambiguous_moment", "truncated", "no_highlight",
                                              "teacher_error", "query_states_time", "query_names_note",
                                              "moment_not_highlighted"}
    assert not any(r["reason"] == "teacher_error" for r in rejects)
    for s in samples:
        assert s[R.QUESTION] and s[R.ANSWER] and s[R.SAMPLE_TEACHER] == "t" and s[R.ANSWER_SPANS]
        assert _inside(s) and "{{span:" in s[R.ANSWER]
        assert s[R.EVIDENCE]["captions"] or s[R.EVIDENCE]["transcript_spans"]
        if s[R.TASK] == "highlights":
            assert len(s[R.ANSWER_SCORES]) == len(s[R.ANSWER_SPANS])


def test_long_video_times_keep_their_decimals(clip_rows):
    """Placeholders carry the annotation's seconds to the millisecond, also past an hour (`:g` would cut)."""
    row = dict(_video_row(clip_rows), **{R.END_S: 7200.0, R.DURATION_S: 7200.0, R.CAPTION: "A long talk.",
                                         R.ANNOTATIONS: _annotations(segments=[(3725.125, 3790.5, "A demo.")])})
    samples, _ = _run(_config(segment_grounding={}, dense_from_segments={"min_segments": 1}), [row])
    assert {s[R.ANSWER] for s in samples} == {"{{span:3725.125,3790.5}}", "{{span:3725.125,3790.5}} A demo."}


def test_items_that_ask_the_same_question_make_one_sample_and_order_is_asked_only_where_plain(clip_rows):
    """Real releases repeat themselves: QVHighlights gives a query two windows, Charades-STA and ActivityNet a
    sentence at two times, YouCook2 two steps over the same seconds and a step done twice. A question must
    have one answer: grounding answers with every window of its text, a caption question with every text of
    its interval; order questions leave out the repeated step and the steps that overlap."""
    repeated = [(0.5, 2.0, "Add a slice of cheese."), (2.0, 4.0, "Flip the sandwich."),
                (2.0, 4.0, "The cheese turns brown."), (4.5, 6.0, "add a slice of cheese"),
                (6.5, 8.0, "Cut the sandwich in half."), (9.0, 11.0, "Serve it on a plate.")]
    video = _video_row(_with(clip_rows, segments=repeated))
    cfg = _config(segment_grounding={}, interval_caption={}, before_after={"per_clip": 16},
                  temporal_referring={"per_clip": 16, "num_options": 3})
    samples, rejects = _run(cfg, [video])
    assert not rejects, rejects
    by_task: dict[str, list] = {}
    for s in samples:
        by_task.setdefault(s[R.TASK if s[R.TASK] != "mcq" else R.QUESTION_TYPE], []).append(s)
    ground = by_task["segment_grounding"]
    assert len(ground) == 5 == len({s[R.QUESTION] for s in ground})          # 6 items, one text twice
    cheese = next(s for s in ground if "slice of cheese" in s[R.QUESTION])
    assert cheese[R.ANSWER] == "{{span:0.5,2}} and {{span:4.5,6}}"
    assert cheese[R.ANSWER_SPANS] == [{"start_s": 0.5, "end_s": 2.0}, {"start_s": 4.5, "end_s": 6.0}]
    captions = by_task["interval_caption"]
    assert len(captions) == 5 == len({s[R.QUESTION] for s in captions})      # 6 items, one interval twice
    both = next(s for s in captions if s[R.ANSWER_SPANS] == [{"start_s": 2.0, "end_s": 4.0}] * 2)
    assert both[R.ANSWER] == "Flip the sandwich. The cheese turns brown."
    # order: never the step done twice, never the two steps over the same seconds together
    order = by_task["order"]
    assert order
    ranks = {"Flip the sandwich": 2.0, "The cheese turns brown": 2.0, "Cut the sandwich in half": 6.5,
             "Serve it on a plate": 9.0}
    for s in order:
        assert not any("cheese" in o and "slice" in o for o in s[R.OPTIONS]), s[R.QUESTION]
        assert set(s[R.OPTIONS]) != {"Flip the sandwich", "The cheese turns brown"}
        a, b = sorted(s[R.OPTIONS], key=ranks.__getitem__)
        later = "later" in s[R.QUESTION] or "after" in s[R.QUESTION]
        assert s[R.ANSWER] == (b if later else a), s[R.QUESTION]
    assert len(order) == 5   # the 4 steps said once make 6 pairs; the two over the same seconds are not one
    referring = by_task["temporal_referring"]
    truth = {("after", "Cut the sandwich in half"): "Serve it on a plate",
             ("before", "Cut the sandwich in half"): "add a slice of cheese",
             ("before", "Serve it on a plate"): "Cut the sandwich in half",
             ("after", "Flip the sandwich"): "add a slice of cheese",
             ("after", "The cheese turns brown"): "add a slice of cheese",
             ("before", "Flip the sandwich"): "Add a slice of cheese",
             ("before", "The cheese turns brown"): "Add a slice of cheese"}
    asked = set()
    for s in referring:
        anchor = s[R.QUESTION].split('"')[1]
        ask = "after" if "right after" in s[R.QUESTION] else "before"
        asked.add((ask, anchor))
        assert s[R.ANSWER] == truth[(ask, anchor)], s[R.QUESTION]
        assert s[R.OPTIONS][s[R.ANSWER_INDEX]] == s[R.ANSWER] and len(set(s[R.OPTIONS])) == len(s[R.OPTIONS]) == 3
        # what happens during the anchor is never offered as the wrong answer
        same_time = {"Flip the sandwich", "The cheese turns brown"} if anchor in ranks and ranks[anchor] == 2.0 else set()
        assert not ({anchor} | same_time) & set(s[R.OPTIONS]), s[R.OPTIONS]
    assert asked == set(truth)


def test_a_label_placed_in_time_is_asked_where_it_holds(clip_rows):
    """A label that the row's segments place in time (Kinetics' clip span on its untrimmed video, ActivityNet's
    instances) is asked over that span: the video row's MCQ becomes a clip sample of the span, a clip row
    partly inside it is bound to the overlap, and a clip row that does not show it is a reject."""
    rows = _with(clip_rows, labels=["juggling"], segments=[(3.0, 7.0, "Juggling")])
    video = _video_row(rows)
    cfg = _config(label_mcq={"vocabulary": VOCAB})
    (whole,), _ = _run(cfg, [video])
    assert (whole[R.START_S], whole[R.END_S], whole[R.SAMPLE_SCOPE]) == (3.0, 7.0, R.SCOPE_CLIP)
    assert whole[R.CLIP_ID] != video[R.CLIP_ID] and whole[R.CLIP_PATH] is None and whole[R.ANSWER] == "juggling"
    outcomes = set()
    for row in rows:
        samples, rejects = _run(cfg, [row])
        overlap = (max(row[R.START_S], 3.0), min(row[R.END_S], 7.0))
        if overlap[1] <= overlap[0]:
            assert not samples and [r["reason"] for r in rejects] == ["missing_annotation"]
            assert "outside" in rejects[0]["message"]
            outcomes.add("outside")
        else:
            (s,) = samples
            assert (s[R.START_S], s[R.END_S]) == overlap
            outcomes.add("whole" if overlap == (row[R.START_S], row[R.END_S]) else "part")
            assert (s[R.CLIP_ID] == row[R.CLIP_ID]) == (overlap == (row[R.START_S], row[R.END_S]))
    assert outcomes == {"outside", "whole", "part"}


def test_shipped_questions_read_right_in_every_time_format():
    """A time-token format renders a span as "from <t3> to <t26>": a shipped question must not say
    "during $span" ("during from <t3> ..."). Every shipped template with a time, in every format."""
    import string

    from vdata.exporters.timefmt import TIME_FORMAT_NAMES, TimeFormat
    from vdata.prompts import load_prompt
    from vdata.stages.generate.annotated import time_values

    lines = []
    for name in ("template_questions", "speech_captions_questions"):
        text = load_prompt("generate", name).text
        lines += [ln.split(":", 1)[1] for ln in text.splitlines()
                  if ln and not ln.startswith("#") and ("$span" in ln or "{{span" in ln)]
    assert len(lines) >= 3
    for fmt in TIME_FORMAT_NAMES:
        tf = TimeFormat(fmt, 0.0, 30.0, 25.0)
        for line in lines:
            filled = string.Template(line.replace("{{span:$start,$end}}", "$span")).safe_substitute(**time_values(3.0, 26.0))
            shown = tf.render_text(filled)
            assert "during from" not in shown and "$span" not in shown and "{{" not in shown, (fmt, shown)


def test_label_mcq_reads_a_vocabulary_as_the_annotations_stage_does(clip_rows, tmp_path):
    """One class spelt two ways ("Test_Pattern", "test pattern") was an answer and its own distractor; a
    pretty-printed JSON list file was read line by line ("[", '"baking",'): outside check h23."""
    row = dict(_with(clip_rows[:1])[0], **{R.ANNOTATIONS: _annotations(labels=["test pattern"])})
    twice = tmp_path / "twice.txt"
    twice.write_text("# classes\nbaking\ncycling\nCycling\nfishing\nTest_Pattern\ntest pattern\n")
    with pytest.raises(ValueError, match=r"4 label\(s\), fewer than num_options 5"):
        _config(label_mcq={"vocabulary": str(twice), "num_options": 5})
    made, _ = _run(_config(label_mcq={"vocabulary": str(twice), "num_options": 4}), [row])
    (mcq,) = [s for s in made if s[R.TASK] == "label_mcq"]
    keys = [" ".join(o.replace("_", " ").casefold().split()) for o in mcq[R.OPTIONS]]
    assert len(set(keys)) == 4 and keys.count("test pattern") == 1, mcq[R.OPTIONS]
    listed = tmp_path / "labels.json"
    listed.write_text(json.dumps(["baking", "cycling", "fishing", "test pattern"], indent=2))
    made, rejects = _run(_config(label_mcq={"vocabulary": str(listed)}), [row])
    assert [s[R.ANSWER] for s in made if s[R.TASK] == "label_mcq"] == ["test pattern"], rejects


def test_dense_from_segments_past_max_segments_is_one_reject_and_merged_answers_say_a_span_once(clip_rows):
    """Outside check h24 F1: 3,000 Ego4D-style segments became one 114,570-character dense caption; F5: two
    texts equal but for a full stop over one span answered "{{span:0,4}} and {{span:0,4}}"."""
    many = [(i * 0.004, i * 0.004 + 0.5, f"event number {i}") for i in range(70)]
    video = _video_row(_with(clip_rows, segments=many))
    samples, rejects = _run(_config(dense_from_segments={}), [video])
    assert samples == [] and [r["reason"] for r in rejects] == ["too_many_segments"]
    assert "max_segments (64)" in rejects[0]["message"]
    samples, rejects = _run(_config(dense_from_segments={"max_segments": None}), [video])
    assert len(samples) == 1 and len(samples[0][R.ANSWER_SPANS]) == 70 and rejects == []
    twice = [(0.0, 4.0, "A test card with a counter is shown."), (0.0, 4.0, "A test card with a counter is shown"),
             (5.0, 7.0, "A test card with a counter is shown")]
    samples, _ = _run(_config(segment_grounding={}), [_video_row(_with(clip_rows, segments=twice))])
    assert len(samples) == 1
    assert [(s["start_s"], s["end_s"]) for s in samples[0][R.ANSWER_SPANS]] == [(0.0, 4.0), (5.0, 7.0)]
    assert samples[0][R.ANSWER].count("{{span:0") == 1


def test_label_mcq_open_twin_asks_without_options(clip_rows):
    """Outside check h24 F4: the open-ended twin kept "Which option matches the content of this video?" with
    no options shown; it now asks with the shipped label_mcq_open wording, or a configured template that
    names no option."""
    rows = _with(clip_rows)
    twins = []
    for seed in range(6):
        samples, _ = _run(_config(label_mcq={"vocabulary": VOCAB, "open_form": True, "seed": seed}), rows)
        twins += [s for s in samples if s[R.TASK] == "open_qa"]
    assert twins and all(s[R.OPTIONS] is None for s in twins)
    assert not [s[R.QUESTION] for s in twins if re.search(r"option|following", s[R.QUESTION], re.I)]
    given = ["Which option best describes the clip?", "What is the person doing?"]
    samples, _ = _run(_config(label_mcq={"vocabulary": VOCAB, "open_form": True, "templates": given}), rows)
    assert {s[R.QUESTION] for s in samples if s[R.TASK] == "open_qa"} == {"What is the person doing?"}


def test_an_inputs_caption_describes_its_video_not_each_shot_cut_from_it(clip_rows):
    """Outside check h24 F9: a manifest's whole-video `caption` became the caption of every shot at clip scope
    (4 shots of a 12-s video each "described" by the whole video's text), and the evidence verify_claims
    judged each shot's samples by."""
    caption = "Colour bars, then moving patterns, then a test card that counts up."
    rows = [dict(r, **{R.SOURCE_META: json.dumps({"caption": caption})}) for r in clip_rows]
    assert all(R.source_caption(r, "caption") is None for r in rows)      # each a part of the video
    samples, rejects = _run(_config(caption={}), rows)
    assert not [s for s in samples if s[R.ANSWER] == caption]
    whole = dict(rows[0], **{R.START_S: 0.0, R.END_S: rows[0][R.DURATION_S]})
    assert R.source_caption(whole, "caption") == caption
    samples, _ = _run(_config(caption={}), [whole])
    assert [s[R.ANSWER] for s in samples if s[R.TASK] == "caption"] == [caption]


def test_per_item_tasks_draw_at_most_256_items_a_row_and_count_the_rest(clip_rows):
    """Outside check h24 F12: every per-item sample carries its row's annotations, so 3,000 narrations made
    6,000 samples of 3,000 segments each (7.4 GB). Past 256 items a row's samples are drawn (seeded)."""
    from vdata.stages.generate.segments import MAX_ITEMS_PER_ROW

    many = [(i * 0.004, i * 0.004 + 0.5, f"event number {i}") for i in range(300)]
    video = _video_row(_with(clip_rows, segments=many))
    stage = GenerateStage(_config(segment_grounding={}), RunContext(output_dir=""))
    stage.setup()
    out = stage.process_batch([video])
    samples = [s for s in out if not isinstance(s, Reject)]
    assert len(samples) == MAX_ITEMS_PER_ROW == 256
    assert stage.counters["items_not_drawn_segment_grounding"] == 300 - 256
    again = GenerateStage(_config(segment_grounding={}), RunContext(output_dir=""))
    again.setup()
    assert [s[R.SAMPLE_ID] for s in again.process_batch([video]) if not isinstance(s, Reject)] == \
        [s[R.SAMPLE_ID] for s in samples]


def test_segment_grounding_leaves_out_a_moment_over_nearly_the_whole_video(clip_rows):
    """Outside check h24 L3: a segment over 95 % of the video became "When does … happen?" → the whole video,
    where chapter_grounding already rejects such items covers_video (max_video_share 0.9)."""
    video = _video_row(_with(clip_rows))
    duration = video[R.DURATION_S]
    wide = [(0.2, duration - 0.3, "The whole test pattern plays."), (2.2, 3.6, "Bright bars scroll across.")]
    samples, rejects = _run(_config(segment_grounding={}), [_video_row(_with(clip_rows, segments=wide))])
    assert [s[R.ANSWER_SPANS][0]["start_s"] for s in samples] == [2.2]
    assert [r["reason"] for r in rejects] == ["covers_video"]
    samples, rejects = _run(_config(segment_grounding={"max_video_share": None}),
                            [_video_row(_with(clip_rows, segments=wide))])
    assert len(samples) == 2 and rejects == []
