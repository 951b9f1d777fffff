"""Follow-ups to the annotation testers' findings: which subtitle sidecar is taken (forced ones last, another
language said), how reject messages name cues, WebVTT text that is not spoken, `#` lines of labels files,
label_mcq's default, template tasks on a clip with no clue, and subtitle cues as claim evidence across a
shot cut. Real files written by each test; no video is decoded (the stage reads sidecars, not frames)."""
from __future__ import annotations

import json
from pathlib import Path

import datasets

import vdata
from vdata.media.subtitles import parse_subtitles
from vdata.schemas import records as R
from vdata.stages.annotations import AnnotationsStage
from vdata.stages.annotations.sources import SourceReader
from vdata.stages.base import Reject
from vdata.stages.generate.stage import GenerateConfig, GenerateStage
from vdata.stages.verify_claims.scope import annotation_texts


def _srt(cues: list[tuple[str, str, str]]) -> str:
    """SRT blocks numbered from 1: (start, end, text), times as written (so a garbled arrow can be)."""
    return "\n".join(f"{i}\n{a} {b}\n{t}\n" for i, (a, b, t) in enumerate(cues, 1))


def _one(text: str, at: int = 1) -> str:
    return _srt([(f"00:00:0{at},000", f"--> 00:00:0{at + 1},000", text)])


def _row(video: Path, meta: dict | None = None) -> dict:
    return {R.PATH: str(video), R.SOURCE_URI: str(video), R.SOURCE_META: json.dumps(meta) if meta else None,
            R.DURATION_S: 10.0, R.VIDEO_ID: video.stem}


def _stage(**settings) -> AnnotationsStage:
    return AnnotationsStage(embedded=False, **settings)   # only sidecars: the videos here are names, not files


def _texts(raw: dict) -> list[str]:
    return [c["text"] for c in raw.get("subtitles") or []]


# --- h12 F7: a forced sidecar after every other file of the wanted languages -------------------------------

def test_a_forced_sidecar_comes_after_every_full_file_of_the_wanted_languages(tmp_path):
    """yt-dlp's `talk.en-US.vtt` beside a media server's `talk.en.forced.srt`: the full English file is read,
    not the forced one (only the foreign-language lines); an SDH file of a later wanted language still
    comes before a forced one; a forced file of a wanted language comes before other languages."""
    (tmp_path / "talk.fr.srt").write_text(_one("FR talk"))
    (tmp_path / "talk.en.forced.srt").write_text(_one("EN forced talk"))
    (tmp_path / "talk.en-US.vtt").write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nEN-US talk\n")
    raw, _ = _stage().gather(_row(tmp_path / "talk.mp4"))
    assert _texts(raw) == ["EN-US talk"]
    (tmp_path / "x.fr.srt").write_text(_one("FR x"))
    (tmp_path / "x.en.forced.srt").write_text(_one("EN forced x"))
    (tmp_path / "x.de.sdh.srt").write_text(_one("DE sdh x"))
    raw, _ = _stage(subtitle_languages=["en", "de"]).gather(_row(tmp_path / "x.mp4"))
    assert _texts(raw) == ["DE sdh x"]
    raw, issues = _stage().gather(_row(tmp_path / "x.mp4"))
    assert _texts(raw) == ["EN forced x"] and not issues
    order = [Path(p).name for p, _ in SourceReader._subtitle_candidates(str(tmp_path / "talk"), ["en"])]
    assert order == ["talk.en-US.vtt", "talk.en.forced.srt", "talk.fr.srt"]


# --- h14 F15: subtitles in a language not asked for are said ----------------------------------------------

def test_subtitles_in_a_language_not_asked_for_are_kept_and_counted_as_a_repair(tmp_path):
    (tmp_path / "onlyde.de.srt").write_text(_one("Nur Deutsch vorhanden"))
    out = _stage().process_row(_row(tmp_path / "onlyde.mp4"))
    kept, *rejects = out if isinstance(out, list) else [out]
    assert not rejects and not isinstance(kept, Reject)
    assert [c["text"] for c in kept[R.ANNOTATIONS]["subtitles"]] == ["Nur Deutsch vorhanden"]
    assert kept[R.ANNOTATION_REPAIRS] == 1 and kept[R.ANNOTATION_ISSUES] == 0
    _, issues = _stage().gather(_row(tmp_path / "onlyde.mp4"))
    assert [(i.reason, i.dropped) for i in issues] == [("subtitle_other_language", False)]
    assert "'de'" in issues[0].message and "onlyde.de.srt" in issues[0].message
    # a wanted language, or German asked for: nothing to say
    _, issues = _stage(subtitle_languages=["de"]).gather(_row(tmp_path / "onlyde.mp4"))
    assert issues == []
    (tmp_path / "both.de.srt").write_text(_one("Deutsch"))
    (tmp_path / "both.en.srt").write_text(_one("English"))
    raw, issues = _stage().gather(_row(tmp_path / "both.mp4"))
    assert _texts(raw) == ["English"] and issues == []


# --- h12 F12, h14 F18: reject messages, and WebVTT text that is not spoken --------------------------------

def test_subtitle_rejects_name_blocks_and_times_one_way_without_a_doubled_prefix(tmp_path):
    (tmp_path / "a.srt").write_text(_srt([
        ("00:00:01,000", "--> 00:00:02,000", "good one"),
        ("00:00:02,500", "-> 00:00:03,000", "single-dash arrow"),      # block 2: a garbled timing line
        ("00:00:07,000", "--> 00:00:06,500", "inverted"),               # block 3: parsed, then inverted
        ("00:00:08,000", "--> 00:00:09,000", "good two"),
    ]))
    out = _stage().process_row(_row(tmp_path / "a.mp4", {"transcript": None}))
    kept, *rejects = out
    assert [c["text"] for c in kept[R.ANNOTATIONS]["subtitles"]] == ["good one", "good two"]
    by_reason = {r.reason: r.message for r in rejects}
    assert set(by_reason) == {"subtitle_garbled", "subtitle_inverted"}
    assert "block 2" in by_reason["subtitle_garbled"] and "timing line '00:00:02,500 -> 00:00:03,000'" in \
        by_reason["subtitle_garbled"] and "no timing line" not in by_reason["subtitle_garbled"]
    # the inverted cue is named by its time (the file's block 3 was the parsed cue 1: an index misled)
    assert "at 7 s ends at 6.5 s" in by_reason["subtitle_inverted"] and "subtitle 1" not in by_reason["subtitle_inverted"]
    # a missing file and unequal parallel columns: the kind said once
    out = _stage().process_row(_row(tmp_path / "b.mp4", {"subtitles": "nope.srt"}))
    assert [r.message for r in out[1:]] == ["subtitles: file 'nope.srt' not found next to the video or the manifest"]
    stage = _stage(sources={"segments": {"start": "s", "end": "e", "text": "t"}})
    out = stage.process_row(_row(tmp_path / "c.mp4", {"s": [1, 2], "e": [2], "t": ["a", "b"]}))
    assert len(out) == 2 and out[1].message.startswith("segments: columns ") and "segments: segments" not in out[1].message
    bad = _stage(on_bad_item="reject_video").process_row(_row(tmp_path / "b.mp4", {"subtitles": "nope.srt"}))
    assert bad.message.count("subtitles:") == 1


def test_webvtt_ruby_readings_direction_marks_and_no_break_spaces_leave_the_text():
    parsed = parse_subtitles("WEBVTT\n\n00:01.000 --> 00:02.000\n<ruby>漢<rt>kan</rt></ruby>字 a&nbsp;b &lrm;x&rlm;\n"
                             "\n00:03.000 --> 00:04.000\nzero\u200bwidth\u00a0gap\n", "vtt")
    assert [c.text for c in parsed.items] == ["漢字 a b x", "zerowidth gap"] and parsed.problems == []


# --- h12 F13: one rule for labels files ---------------------------------------------------------------------

def test_hash_lines_of_a_labels_file_are_comments_for_the_annotations_vocabulary(tmp_path):
    (tmp_path / "labels.txt").write_text("# Kinetics classes\nbaking\n\n  # another note\nrepairing bicycles\n")
    stage = _stage(label_vocabulary=str(tmp_path / "labels.txt"), sources={"labels": "label"})
    assert stage.config.label_vocabulary == ["baking", "repairing bicycles"]
    out = stage.process_row(_row(tmp_path / "v.mp4", {"label": "# Kinetics classes; baking"}))
    kept, *rejects = out
    assert kept[R.ANNOTATIONS]["labels"] == ["baking"]
    assert [r.reason for r in rejects] == ["label_not_in_vocabulary"]


# --- generate: label_mcq's default, and template tasks on a clip with no clue --------------------------------

def _clip_rows(annotations: dict, spans: list[tuple[float, float]]) -> list[dict]:
    return [{R.VIDEO_ID: "v", R.CLIP_ID: f"v_{i}", R.SOURCE_URI: "/data/v.mp4", R.PATH: "/data/v.mp4",
             R.START_S: float(a), R.END_S: float(b), R.DURATION_S: 12.0, R.ANNOTATIONS: annotations}
            for i, (a, b) in enumerate(spans)]


def _annotations(**kinds) -> dict:
    return {"title": None, "description": None, "labels": [], "chapters": [], "segments": [], "subtitles": [],
            "transcript": None, **kinds}


def _generate(tasks: dict, rows: list[dict]) -> tuple[list[dict], list[dict]]:
    kept, rejects = vdata.run_stage(GenerateStage(GenerateConfig(tasks=tasks)), datasets.Dataset.from_list(rows))
    return kept.to_list(), rejects.to_list()


def test_label_mcq_asks_about_every_label_of_a_video_by_default():
    vocab = ["repairing bicycles", "baking", "juggling", "surfing", "knitting", "skiing"]
    rows = _clip_rows(_annotations(labels=["repairing bicycles", "baking"]), [(0, 12)])
    samples, rejects = _generate({"label_mcq": {"vocabulary": vocab}}, rows)
    assert sorted(s[R.ANSWER] for s in samples) == ["baking", "repairing bicycles"] and rejects == []
    samples, _ = _generate({"label_mcq": {"vocabulary": vocab, "per_clip": 1}}, rows)
    assert len(samples) == 1


def test_a_clip_holding_no_annotation_item_is_missing_annotation_not_no_evidence():
    """ActivityNet segments at 0-3 s and 3-9.5 s; clips cut at 1 and 2.5 s hold none: each template task says
    `missing_annotation` with the clip's interval, as at video scope, not "clip has no ... annotations"."""
    segments = [{"start_s": 0.0, "end_s": 3.0, "text": "A man walks in."},
                {"start_s": 3.0, "end_s": 9.5, "text": "He sits down."}]
    rows = _clip_rows(_annotations(segments=segments), [(0, 1), (1, 2.5), (0, 12)])
    samples, rejects = _generate({"segment_grounding": {}, "interval_caption": {}}, rows)
    assert {s[R.CLIP_ID] for s in samples} == {"v_2"}
    assert sorted((r[R.CLIP_ID], r["reason"], json.loads(r["detail"] or "{}").get("task")) for r in rejects) == [
        ("v_0", "missing_annotation", "interval_caption"), ("v_0", "missing_annotation", "segment_grounding"),
        ("v_1", "missing_annotation", "interval_caption"), ("v_1", "missing_annotation", "segment_grounding")]
    assert all("inside [" in r["message"] for r in rejects)


# --- h14 F8: a subtitle cue across a shot cut is claim evidence for the clip holding its middle --------------

def test_a_cue_across_a_cut_is_claim_evidence_for_the_clip_holding_its_middle():
    ann = _annotations(subtitles=[{"start_s": 5.0, "end_s": 7.5, "text": "Straddling cue across the cut"},
                                  {"start_s": 8.0, "end_s": 9.0, "text": "Inside clip two"}],
                       segments=[{"start_s": 5.0, "end_s": 7.5, "text": "A segment across the cut"}])
    first, second = ({R.START_S: a, R.END_S: b, R.ANNOTATIONS: ann} for a, b in ((0.0, 6.0), (6.0, 12.0)))
    sources = {"transcript", "events"}
    assert annotation_texts(first, sources) == ([], [])
    assert annotation_texts(second, sources) == ([], ["Straddling cue across the cut", "Inside clip two"])
    whole = annotation_texts(first, sources, whole_video=True)
    assert whole[0] == ["A segment across the cut"] and whole[1][:2] == ["Straddling cue across the cut",
                                                                          "Inside clip two"]


def test_beside_teacher_tasks_a_clip_without_clues_says_the_video_has_annotations_elsewhere():
    """The teacher tasks of a clue-less clip share one `no_evidence` reject, which no longer says the clip has
    no annotations when the video has them (just not in this clip); the template task still says its own.
    The teacher is never asked (a dead address): there is nothing to ask about."""
    from vdata.stages.base import RunContext

    segments = [{"start_s": 3.0, "end_s": 9.5, "text": "He sits down."}]
    rows = _clip_rows(_annotations(segments=segments), [(0, 1)])
    stage = GenerateStage(GenerateConfig(teacher="t", tasks={"segment_grounding": {}, "open_qa": {"per_clip": 1}}),
                          RunContext(output_dir="", teachers={"t": {"backend": "openai",
                                                                    "base_url": "http://127.0.0.1:9/v1", "model": "m"}}))
    stage.setup()
    out = stage.process_batch(rows)
    assert all(isinstance(r, Reject) for r in out)
    assert sorted(r.reason for r in out) == ["missing_annotation", "no_evidence"]
    message = next(r.message for r in out if r.reason == "no_evidence")
    assert "none of the video's annotations (segments) lie in it" in message and "transcript, annotations" not in message
    stage.close()
