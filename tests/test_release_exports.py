"""Release-format exports: every format validates against its release's schema and renders times right.

The build is the demo build's real videos and rows (`vdata.exporters.demo_build.demo_rows`: rendered
lavfi shots, probed, one clip file cut) plus what the issue-13 stages add: `annotations` (title,
labels, chapters = the shots), `sample_scope`, transcript segments, dense-caption fields, and
video-scope samples of the template / temporal tasks (label_mcq, segment_grounding, chapter_generation,
grounded_qa, reasoning_localization, interval_caption, highlights) on the synthetic whole-video row.
Each export is validated with jsonschema against `tests/release_schemas/<format>.schema.json` (written
from the release's own documentation or code; the schema's description says where).
"""
from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vdata.exporters import export
from vdata.exporters.demo_build import SHOTS, demo_rows
from vdata.exporters.timefmt import parse_vtg_tokens
from vdata.schemas import records as R

SCHEMAS = Path(__file__).parent / "release_schemas"
NAME = "release-demo"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validate(name: str, obj) -> None:
    jsonschema.validate(obj, schema(name), cls=jsonschema.Draft202012Validator)


# --- the build -----------------------------------------------------------------------------------

def _video_samples(video_row: dict, shots: list, seg_s: float) -> list[dict]:
    """Video-scope samples on the synthetic whole-video row, as generate(scope: video) writes them."""
    vid, dur = video_row[R.VIDEO_ID], video_row[R.DURATION_S]
    row = {**video_row, R.CLIP_ID: f"{vid}:video", R.CLIP_INDEX: None, R.START_S: 0.0, R.END_S: dur,
           R.CLIP_PATH: None, R.SAMPLE_SCOPE: R.SCOPE_VIDEO}
    names = [s.name for s in SHOTS.values()]
    base = {c: None for c in R.SAMPLE_COLUMNS}
    out = []

    def add(sid, task, qtype, question, answer="", **extra):
        out.append({**row, **base, R.SAMPLE_ID: f"{vid}-{sid}", R.TASK: task, R.QUESTION_TYPE: qtype,
                    R.QUESTION: question, R.ANSWER: answer, R.SAMPLE_TEACHER: None, **extra})

    for i, shot in enumerate(shots):
        a, b = i * seg_s, (i + 1) * seg_s
        opts = [shot.name] + [n for n in names if n != shot.name][:3]
        k = (i + len(vid)) % 4
        opts[0], opts[k] = opts[k], opts[0]
        add(f"label{i}", "label_mcq", "action_antonym", f"What is on screen between {{{{span:{a},{b}}}}}?",
            shot.name, **{R.OPTIONS: opts, R.ANSWER_INDEX: k, R.ANSWER_SPANS: [{"start_s": a, "end_s": b}]})
        add(f"seg{i}", "segment_grounding", "grounding", f"When does the video show {shot.name}?",
            **{R.ANSWER_SPANS: [{"start_s": a, "end_s": b}]})
    add("chapters", "chapter_generation", "chapter", "Divide this video into chapters.",
        **{R.DENSE_EVENTS: [{"start_s": i * seg_s, "end_s": (i + 1) * seg_s, "description": s.name}
                            for i, s in enumerate(shots)]})
    add("gqa", "grounded_qa", "grounded", "What appears first?", shots[0].name,
        **{R.ANSWER_SPANS: [{"start_s": 0.0, "end_s": seg_s}]})
    add("rtl", "reasoning_localization", "reasoning", "When does the picture change for the first time, and why?",
        "the first pattern ends and the next begins", **{R.ANSWER_SPANS: [{"start_s": seg_s - 0.5, "end_s": seg_s + 0.5}]})
    add("icap", "interval_caption", "interval", f"Describe {{{{span:{seg_s},{2 * seg_s}}}}}.", shots[1].caption,
        **{R.ANSWER_SPANS: [{"start_s": seg_s, "end_s": 2 * seg_s}]})   # as generate writes it
    add("hl", "highlights", "highlight", "Which moments stand out?",
        f"The highlight timestamps are in {{{{t:0.5}}}}, {{{{t:{seg_s + 0.5}}}}}.")
    return out


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("release_build")
    media = tmp_path_factory.getbasetemp() / "vdata_demo_media"   # shared with test_exporters
    media.mkdir(exist_ok=True)
    clip_rows, samples, _ = demo_rows(str(media), str(root / "clips"), with_frames=False)
    shots_of = {}
    for c in clip_rows:
        shots_of.setdefault(c[R.VIDEO_ID], []).append(next(s for s in SHOTS.values() if s.caption == c[R.CAPTION]))
    extra_by_clip, rows = {}, []
    for c in clip_rows:
        vid, a, b = c[R.VIDEO_ID], c[R.START_S], c[R.END_S]
        shots = shots_of[vid]
        ann = {"title": f"Patterns {vid[:6]}", "description": "Test patterns.", "labels": [s.name for s in shots],
               "chapters": [{"start_s": i * 2.0, "end_s": (i + 1) * 2.0, "title": s.name} for i, s in enumerate(shots)],
               "segments": [], "subtitles": [{"start_s": 4.2, "end_s": 5.8, "text": "A subtitle cue."}],
               "transcript": None}
        extra_by_clip[c[R.CLIP_ID]] = {
            R.ANNOTATIONS: ann, R.SAMPLE_SCOPE: R.SCOPE_CLIP, R.SHOT_TYPE: "static wide shot",
            R.CAMERA_MOVEMENT: "none", R.CAPTION_SELECTION_SCORE: 0.5 + 0.1 * c[R.CLIP_INDEX],
            R.CAPTION_FIELDS: json.dumps({"shot_type": "close-up", "camera_movement": "static", "content": c[R.CAPTION],
                                          "scene_title": f"Scene {c[R.CLIP_INDEX]}"}) if c[R.CLIP_INDEX] == 1 else None,
            R.CAPTION_STEPS: [{"timestamp_s": a + 0.5, "text": "The pattern appears."},
                              {"timestamp_s": b - 0.5, "text": "Nothing changes."}],
            R.TRANSCRIPT_SEGMENTS: [] if c[R.CLIP_INDEX] == 2 else [{"start_s": a + 0.2, "end_s": b - 0.2, "clip_start_s": 0.2, "clip_end_s": b - a - 0.2,
                                     "text": f" Here is {shots[c[R.CLIP_INDEX]].name}.", "words": [], "language": "en"}]}
    videos = {}
    for s in samples:
        if s[R.CLIP_ID] is not None:
            s.update(extra_by_clip[s[R.CLIP_ID]])
            videos.setdefault(s[R.VIDEO_ID], s)
        else:
            any_clip = next(c for c in clip_rows if c[R.VIDEO_ID] == s[R.VIDEO_ID])
            s.update({R.ANNOTATIONS: extra_by_clip[any_clip[R.CLIP_ID]][R.ANNOTATIONS], R.SAMPLE_SCOPE: R.SCOPE_VIDEO})
        rows.append(s)
    for vid, s in videos.items():
        video_row = {k: v for k, v in s.items() if k not in R.SAMPLE_COLUMNS}
        rows += _video_samples(video_row, shots_of[vid], 2.0)
    cols = sorted({c for r in rows for c in r if c in R.FIELD_TYPES and c not in R.INTERNAL_COLUMNS})
    schema_ = R.data_schema(cols)
    (root / "samples").mkdir()
    table = pa.Table.from_pylist([{c: r.get(c) for c in schema_.names} for r in rows], schema=schema_)
    pq.write_table(table, root / "samples" / "part-00000.parquet")
    (root / "manifest.json").write_text(json.dumps({"name": NAME, "level": "samples"}))
    return str(root)


@pytest.fixture(scope="module")
def rows(build_dir) -> dict:
    return {r[R.SAMPLE_ID]: r for r in pq.read_table(os.path.join(build_dir, "samples")).to_pylist()}


def _json(dest, fname):
    return json.loads(Path(dest, fname).read_text())


def _origin(row) -> float:
    return 0.0 if row[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO else row[R.START_S]


# --- every release validates against its schema ----------------------------------------------------

def test_vidchapters_from_chapter_annotations(build_dir, rows, tmp_path):
    dest = str(tmp_path / "vc")
    res = export(build_dir, dest, "vidchapters")
    data = _json(dest, "chapters_dvc_train.json")
    validate("vidchapters", data)
    videos = {r[R.VIDEO_ID]: r for r in rows.values()}   # no dataset names in this build: vdata's ids
    assert set(data) == set(videos) and res.total == len(videos)
    assert sorted(f for f in os.listdir(dest) if not f.startswith(".")) == ["chapters_dvc_train.json", "videos"]
    for name, entry in data.items():
        ann = videos[name][R.ANNOTATIONS]
        assert entry["sentences"] == [c["title"] for c in ann["chapters"]]
        assert entry["timestamps"] == [[c["start_s"], c["end_s"]] for c in ann["chapters"]]
        assert entry["duration"] == pytest.approx(videos[name][R.DURATION_S])
        assert all(0 <= a <= b <= entry["duration"] for a, b in entry["timestamps"])
        assert os.path.isfile(os.path.join(dest, entry["path"])) and Path(entry["path"]).stem == name
    # teacher-free and deterministic: a second export is byte-identical
    dest2 = str(tmp_path / "vc2")
    export(build_dir, dest2, "vidchapters")
    assert Path(dest, "chapters_dvc_train.json").read_bytes().replace(dest.encode(), b"") == \
        Path(dest2, "chapters_dvc_train.json").read_bytes().replace(dest2.encode(), b"")
    # the release's times are seconds: another --time is said to be ignored, not silently dropped (outside check h20)
    noted = export(build_dir, str(tmp_path / "vc3"), "vidchapters", time_format="lita")
    assert any("--time lita ignored" in n for n in noted.notes), noted.notes
    assert _json(tmp_path / "vc3", "chapters_dvc_train.json") == json.loads(Path(dest, "chapters_dvc_train.json").read_text()
                                                                              .replace(dest, str(tmp_path / "vc3")))


def test_vidchapters_writes_a_file_per_split_named_as_the_release(build_dir, rows, tmp_path):
    """The release has chapters_dvc_train / _val / _test.json: held-out videos never land in the train file,
    and `--split test` writes only the test file."""
    import shutil

    split_build = tmp_path / "split_build"
    shutil.copytree(build_dir, split_build)
    table = pq.read_table(split_build / "samples" / "part-00000.parquet")
    held_out = sorted({str(v) for v in table.column(R.VIDEO_ID).to_pylist()})[0]
    is_held = pa.array([str(v) == held_out for v in table.column(R.VIDEO_ID).to_pylist()])
    # the held-out video came from a dataset's annotation file that names it: the release is keyed by that name
    meta = [json.dumps({"dataset_video_id": "vidB.mp4"}) if held else m
            for held, m in zip(is_held.to_pylist(), table.column(R.SOURCE_META).to_pylist())]
    table = table.set_column(table.schema.get_field_index(R.SOURCE_META), R.SOURCE_META, pa.array(meta, pa.string()))
    os.remove(split_build / "samples" / "part-00000.parquet")
    pq.write_table(table.filter(pa.compute.invert(is_held)), split_build / "samples" / "part-00000-train.parquet")
    pq.write_table(table.filter(is_held), split_build / "samples" / "part-00000-test.parquet")
    held_name = "vidB"
    res = export(str(split_build), str(tmp_path / "all"), "vidchapters")
    train, test = _json(str(tmp_path / "all"), "chapters_dvc_train.json"), _json(str(tmp_path / "all"), "chapters_dvc_test.json")
    assert list(test) == [held_name] and held_out not in train and train
    assert Path(test[held_name]["path"]).stem == held_name
    assert not any("every split" in n for n in res.notes)
    export(str(split_build), str(tmp_path / "test_only"), "vidchapters", splits=["test"])
    assert sorted(p.name for p in (tmp_path / "test_only").glob("*.json")) == ["chapters_dvc_test.json"]


def test_vidchapters_with_tasks_writes_the_chapters_of_those_samples(build_dir, rows, tmp_path):
    """`--task chapter_generation` asks for the generated chapters, not the annotated ones; a task no
    sample has exports nothing."""
    import shutil

    from vdata.exporters.base import NothingToExport

    # the generated chapters get titles of their own, so that they cannot pass for the annotated ones
    build = tmp_path / "generated_build"
    shutil.copytree(build_dir, build)
    part = build / "samples" / "part-00000.parquet"
    table = pq.read_table(part)
    samples = table.to_pylist()
    for r in samples:
        if r[R.TASK] == "chapter_generation":
            r[R.DENSE_EVENTS] = [{**e, "description": f"generated {i}"} for i, e in enumerate(r[R.DENSE_EVENTS])]
    pq.write_table(pa.Table.from_pylist(samples, schema=table.schema), part)
    dest = str(tmp_path / "gen")
    export(str(build), dest, "vidchapters", tasks=["chapter_generation"])
    data = _json(dest, "chapters_dvc_train.json")
    validate("vidchapters", data)
    generated = {r[R.VIDEO_ID]: r[R.DENSE_EVENTS] for r in samples if r[R.TASK] == "chapter_generation"}
    assert generated and set(data) == set(generated)
    for name, entry in data.items():
        assert entry["sentences"] == [e["description"] for e in generated[name]]
        assert entry["timestamps"] == [[round(e["start_s"], 3), round(e["end_s"], 3)] for e in generated[name]]
    with pytest.raises(NothingToExport):
        export(str(build), str(tmp_path / "none"), "vidchapters", tasks=["speech_qa"])
    # without --task the annotated chapters come first, as before
    export(str(build), str(tmp_path / "all"), "vidchapters")
    assert not any(s.startswith("generated") for e in _json(str(tmp_path / "all"), "chapters_dvc_train.json").values()
                   for s in e["sentences"])


def test_mvbench_per_task_json(build_dir, rows, tmp_path):
    dest = str(tmp_path / "mvb")
    res = export(build_dir, dest, "mvbench")
    data_list = _json(dest, "data_list.json")
    n_mcq = sum(bool(r[R.OPTIONS]) for r in rows.values())
    assert res.total == n_mcq and res.skipped   # open-ended samples are counted as skipped, not lost
    assert "action_antonym" in data_list        # label_mcq samples keep their question type as the task
    seen_bound = 0
    for task, (fname, prefix, kind, bound) in data_list.items():
        recs = _json(dest, f"json/{fname}")
        validate("mvbench", recs)
        for rec in recs:
            assert rec["answer"] in rec["candidates"]
            assert os.path.isfile(os.path.join(prefix, rec["video"]))
            assert ("start" in rec) == bound
            seen_bound += "start" in rec and rec["start"] > 0
    assert seen_bound   # a clip without a clip file: the source video with its interval
    recs = _json(dest, "json/action_antonym.json")
    assert len(recs) == sum(r[R.TASK] == "label_mcq" for r in rows.values())
    for rec in recs:   # the {{span}} placeholder is rendered in seconds from the video's start
        assert "{{" not in rec["question"] and re.search(r"\d+\.\d - \d+\.\d seconds", rec["question"])


def test_cg_bench_clues_inside_the_video(build_dir, rows, tmp_path):
    dest = str(tmp_path / "cg")
    res = export(build_dir, dest, "cg_bench")
    recs = _json(dest, "cgbench.json")
    validate("cg_bench", recs)
    assert len(recs) == sum(r[R.TASK] == "label_mcq" for r in rows.values()) and res.skipped.get("clip_scope")
    for rec in recs:
        assert rec["choices"][ord(rec["right_answer"]) - ord("A")] == rec["answer"]
        assert all(0 <= a < b <= rec["duration"] + 0.5 for a, b in rec["clue_intervals"])
        assert os.path.isfile(os.path.join(dest, "videos", rec["video_uid"] + ".mp4"))


def test_cg_bench_names_false_premise_items_as_hallucination_and_says_which_open_items_it_drops(build_dir, rows, tmp_path):
    """Outside check: false-premise items were written `sub_category: false_premise`, and an open-only one was
    counted with the open twins (`not_mcq:open_qa`), which are carried by their MCQ record."""
    table = pq.read_table(os.path.join(build_dir, "samples"))
    mcq = next(r for r in table.to_pylist() if r[R.TASK] == "label_mcq" and r[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO)
    premise = dict(mcq, **{R.SAMPLE_ID: "fp-mcq", R.QUESTION_TYPE: "false_premise", R.SAMPLE_GROUP: "fp-mcq",
                           R.QUESTION: "Why does the green dog climb the fence?"})
    twin = dict(premise, **{R.SAMPLE_ID: "fp-open", R.TASK: "open_qa", R.OPTIONS: None, R.ANSWER_INDEX: None})
    alone = dict(twin, **{R.SAMPLE_ID: "fp-alone", R.SAMPLE_GROUP: None})
    out = tmp_path / "fp"
    (out / "samples").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([premise, twin, alone], schema=table.schema), out / "samples" / "part-00000.parquet")
    (out / "manifest.json").write_text(json.dumps({"name": NAME, "level": "samples"}))
    res = export(str(out), str(tmp_path / "cg"), "cg_bench")
    (rec,) = _json(tmp_path / "cg", "cgbench.json")
    assert rec["sub_category"] == "Hallucination" and rec["question"].startswith("Why does the green dog")
    assert dict(res.skipped) == {"open_twin": 1, "not_mcq:false_premise": 1}, res.skipped


def test_timesuite_seconds_text(build_dir, rows, tmp_path):
    dest = str(tmp_path / "ts")
    res = export(build_dir, dest, "timesuite")
    recs = _json(dest, f"{NAME}_timeit.json")
    validate("timesuite", recs)
    assert res.total == len(rows) - sum(res.skipped.values())
    grounded = 0
    for rec in recs:
        assert os.path.isfile(os.path.join(dest, "videos", rec["video"]))
        a = rec["QA"][0]["a"]
        m = re.fullmatch(r"(\d+\.\d) - (\d+\.\d) seconds", a)
        if m:   # a grounding answer: the span in seconds from the start of what the model sees
            grounded += 1
            lo, hi = float(m.group(1)), float(m.group(2))
            length = (rec["end"] - rec["start"]) if "start" in rec else None
            assert lo < hi and (length is None or hi <= length + 0.05)
    assert grounded >= 4
    # a question that gives the interval ("Describe 2.0 - 4.0 seconds."): the answer is the caption alone
    captions = {r[R.ANSWER] for k, r in rows.items() if k.endswith("-icap")}
    icaps = [rec["QA"][0] for rec in recs if re.match(r"Describe \d", rec["QA"][0]["q"])]
    assert icaps and all(q["a"] in captions and "Give times" not in q["q"] for q in icaps), icaps


def test_vtg_it_digit_tokens(build_dir, rows, tmp_path):
    dest = str(tmp_path / "vtg")
    export(build_dir, dest, "vtg_it")
    recs = _json(dest, f"{NAME}_vtg-it.json")
    validate("vtg_it", recs)
    spans = [rec["QA"][0]["a"] for rec in recs if re.fullmatch(r"(<TIME_[A-Z]+>){6} - (<TIME_[A-Z]+>){6} seconds", rec["QA"][0]["a"])]
    assert len(spans) >= 4
    for a in spans:
        lo, hi = parse_vtg_tokens(a)
        assert 0 <= lo < hi <= 6.0
    assert not any(re.search(r"\d - \d", rec["QA"][0]["a"]) for rec in recs if "<TIME_" in rec["QA"][0]["a"])


@pytest.mark.parametrize("time_format", ["seconds", "lita:50"])
def test_lita_release_times(build_dir, rows, tmp_path, time_format):
    dest = str(tmp_path / "lita")
    export(build_dir, dest, "lita", time_format=time_format)
    data = _json(dest, f"{NAME}_lita.json")
    validate("lita", data)
    rtl = [(k, qa) for k, v in data.items() for qa in v["QA"] if qa["q"].startswith("When does the picture change")]
    assert rtl
    # LITA's loader opens <video folder>/<key>.mp4: every key's visual is there, clip or whole video
    assert all(os.path.isfile(os.path.join(dest, "videos", f"{key}.mp4")) for key in data), sorted(data)
    # ... and its RTL dataset reads frame folders (<image_folder>/<key>/*.jpg, 5 fps, 320x240): one per key
    from PIL import Image

    for key in data:
        jpgs = sorted(os.listdir(os.path.join(dest, "frames", key)))
        assert jpgs and jpgs[0] == "000001.jpg" and all(j.endswith(".jpg") for j in jpgs)
        assert abs(len(jpgs) - 5 * data[key]["duration"]) <= 2, (key, len(jpgs), data[key]["duration"])
    assert Image.open(os.path.join(dest, "frames", key, "000001.jpg")).size == (320, 240)
    for key, qa in rtl:
        duration = data[key]["duration"]
        if time_format == "seconds":   # the release's own form: <seconds>, quantized by LITA's loader
            times = [float(x) for x in re.findall(r"<(\d+\.\d+)>", qa["a"])]
            assert times == [1.5, 2.5]
        else:                          # LITA's tokens: round((T-1) * t / duration)
            assert re.findall(r"<t(\d+)>", qa["a"]) == [str(round(49 * t / duration)) for t in (1.5, 2.5)]


def test_grounded_videollm_conversations(build_dir, rows, tmp_path):
    dest = str(tmp_path / "gv")
    res = export(build_dir, dest, "grounded_videollm", time_format="lita")
    assert any("bracketed" in n for n in res.notes)   # another token kind is replaced by the release's own
    recs = _json(dest, f"{NAME}_grounded.json")
    validate("grounded_videollm", recs)
    gqa = [r for r in recs if r["question_id"].endswith("-gqa")]
    assert gqa and all(r["conversation"][1]["value"].startswith("from <0.00> to <2.00>") for r in gqa)
    for r in recs:
        assert r["conversation"][0]["value"].startswith("<image>\n")
        assert os.path.isfile(os.path.join(dest, "videos", r["video_file"]))


def test_vript_num_clips_counts_the_videos_shots_when_one_has_no_caption(build_dir, tmp_path):
    """Vript's README: "num_clips: the number of clips in the video. If the integrity is false, some clips may not
    be captioned" (it counted the captioned ones: outside check h20)."""
    import shutil

    copy = tmp_path / "build"
    shutil.copytree(build_dir, copy)
    part = copy / "samples" / "part-00000.parquet"
    table = pq.read_table(part).to_pylist()
    vid = table[0][R.VIDEO_ID]
    for r in table:   # the video's second shot failed its caption
        if r[R.VIDEO_ID] == vid and r.get(R.CLIP_INDEX) == 1:
            r[R.CAPTION] = None
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(part)), part)
    dest = tmp_path / "vript"
    export(str(copy), str(dest), "vript")
    doc = _json(dest, f"vript_captions/{vid}_caption.json")
    shots = next(r[R.SHOTS_IN_VIDEO] for r in table if r[R.VIDEO_ID] == vid)
    assert doc["meta"]["num_clips"] == shots == len(doc["data"]) + 1 and doc["meta"]["integrity"] is False


def test_vript_caption_files(build_dir, rows, tmp_path):
    dest = str(tmp_path / "vript")
    res = export(build_dir, dest, "vript")
    files = sorted(Path(dest, "vript_captions").glob("*_caption.json"))
    assert len(files) == len({r[R.VIDEO_ID] for r in rows.values()})
    captions = {r[R.CAPTION] for r in rows.values() if r[R.CAPTION]}
    for f in files:
        doc = json.loads(f.read_text())
        validate("vript", doc)
        assert doc["meta"]["num_clips"] == len(doc["data"]) and doc["meta"]["integrity"]
        for k, (cid, clip) in enumerate(doc["data"].items(), start=1):
            assert cid.endswith(f"-Scene-{k:03d}") and clip["caption"]["content"] in captions
            assert Path(dest, "vript_clips", "clips", f"{cid}.mp4").is_file()   # the clip file the id names
            # the clip's ASR segments; the third clip has none, so its subtitle cue is the voice-over
            assert clip["voiceover"] == ["A subtitle cue."] if k == 3 else clip["voiceover"][0].startswith("Here is")
            # the structured caption's fields when the clip has them, the dense-caption columns otherwise
            assert (clip["caption"]["scene_title"], clip["caption"]["shot_type"]) == (
                ("Scene 1", "close-up") if k == 2 else ("", "static wide shot"))
    assert res.total == sum(len(json.loads(f.read_text())["data"]) for f in files)


def test_panda70m_csv(build_dir, rows, tmp_path):
    dest = str(tmp_path / "panda")
    export(build_dir, dest, "panda70m")
    with open(os.path.join(dest, f"{NAME}_panda70m.csv"), newline="") as f:
        recs = list(csv.DictReader(f))
    assert recs
    for rec in recs:
        lists = ("timestamp", "caption", "matching_score", "desirable_filtering", "shot_boundary_detection")
        parsed = {k: (ast.literal_eval(v) if k in lists else v) for k, v in rec.items()}
        validate("panda70m", parsed)
        assert len({len(parsed[k]) for k in lists}) == 1   # one item per clip in every list column
        starts = [sum(float(x) * m for x, m in zip(a.split(":"), (3600, 60, 1))) for a, _ in parsed["timestamp"]]
        assert starts == sorted(starts) and starts[0] == 0.0 and starts[1] == 2.0
        assert os.path.isfile(os.path.join(dest, parsed["url"]))


def test_sharegpt4video_jsonl(build_dir, rows, tmp_path):
    dest = str(tmp_path / "s4v")
    export(build_dir, dest, "sharegpt4video")
    lines = Path(dest, f"{NAME}_sharegpt4video.jsonl").read_text().splitlines()
    clips = {r[R.CLIP_ID]: r for r in rows.values() if r[R.SAMPLE_SCOPE] == R.SCOPE_CLIP}
    assert len(lines) == len(clips)
    for line in lines:
        rec = json.loads(line)
        validate("sharegpt4video", rec)
        whole = [c["content"] for c in rec["captions"] if c["idx"] == "-1"]
        assert whole == [clips[rec["video_id"]][R.CAPTION]]
        assert os.path.isfile(os.path.join(dest, rec["video_path"]))
        assert os.path.basename(rec["video_path"]) == rec["video_id"] + ".mp4"


def test_howtocaption_dict(build_dir, rows, tmp_path):
    dest = str(tmp_path / "htc")
    export(build_dir, dest, "howtocaption")
    data = _json(dest, f"{NAME}_howtocaption.json")
    validate("howtocaption", data)
    with open(os.path.join(dest, f"{NAME}_howtocaption.pickle"), "rb") as f:
        assert pickle.load(f) == data
    for entry in data.values():
        assert len(entry["start"]) == len(entry["end"]) == len(entry["text"]) >= 2
        assert all(a < b for a, b in zip(entry["start"], entry["end"]))


def test_howtocaption_takes_the_narration_aligned_captions_of_a_video_scope_build(build_dir, rows, tmp_path):
    """Outside check: the howtocaption recipe's speech_captions sit on whole-video rows, which the export skipped
    ('no timed caption'): HowToCaption's own captions are those, narration-aligned, and they come first."""
    video_row = next(r for r in rows.values() if r[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO)
    answer = "{{span:0,2.5}} A person opens the box.\n{{span:3,5.02}} She lifts the lid."
    narrated = {**{k: v for k, v in video_row.items() if k not in R.SAMPLE_COLUMNS},
                R.SAMPLE_ID: "sc-window", R.TASK: "speech_captions", R.QUESTION: "Describe each narrated step.",
                R.ANSWER: answer, R.ANSWER_SPANS: [{"start_s": 0.0, "end_s": 2.5}, {"start_s": 3.0, "end_s": 5.02}]}
    table = pq.read_table(os.path.join(build_dir, "samples"))
    for only_narrated in (True, False):
        out = tmp_path / f"b{only_narrated}"
        (out / "samples").mkdir(parents=True)
        kept = [] if only_narrated else table.to_pylist()
        pq.write_table(pa.Table.from_pylist(kept + [{c: narrated.get(c) for c in table.schema.names}], schema=table.schema),
                       out / "samples" / "part-00000.parquet")
        (out / "manifest.json").write_text(json.dumps({"name": NAME, "level": "samples"}))
        dest = tmp_path / f"htc{only_narrated}"
        export(str(out), str(dest), "howtocaption")
        data = _json(dest, f"{NAME}_howtocaption.json")
        validate("howtocaption", data)
        entry = next(e for e in data.values() if e["text"] == [["A person opens the box."], ["She lifts the lid."]])
        assert (entry["start"], entry["end"]) == ([0, 3], [3, 6])   # whole seconds, as align_and_filter writes
        assert len(data) == (1 if only_narrated else len({r[R.VIDEO_ID] for r in rows.values()}))


def test_every_release_export_is_deterministic(build_dir, tmp_path):
    def digest(folder):
        h = hashlib.sha256()
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file() and not p.is_symlink() and p.suffix in (".json", ".jsonl", ".csv"):
                h.update(p.relative_to(folder).as_posix().encode())
                h.update(p.read_bytes().replace(str(folder).encode(), b""))
        return h.hexdigest()

    for fmt in ("mvbench", "cg_bench", "timesuite", "vtg_it", "lita", "vript"):
        a, b = tmp_path / f"{fmt}-a", tmp_path / f"{fmt}-a2"
        export(build_dir, str(a), fmt, media="none")
        export(build_dir, str(b), fmt, media="none")
        assert digest(a) == digest(b), fmt


def test_koala36m_csv(build_dir, rows, tmp_path):
    dest = str(tmp_path / "koala")
    export(build_dir, dest, "koala36m")
    with open(os.path.join(dest, f"{NAME}_koala36m.csv"), newline="") as f:
        recs = list(csv.DictReader(f))
    clips = {r[R.CLIP_ID]: r for r in rows.values() if r[R.SAMPLE_SCOPE] == R.SCOPE_CLIP}
    assert len(recs) == len(clips)
    scores = {"clarity_score", "aesthetic_score", "motion_score", "video_training_suitability_score", "vdata_suitability_score"}
    for rec in recs:
        parsed = {k: (ast.literal_eval(v) if k == "timestamp" else (float(v) if v else None) if k in scores else v)
                  for k, v in rec.items()}
        validate("koala36m", parsed)
        assert parsed["caption"] in {c[R.CAPTION] for c in clips.values()}
        assert parsed["video_training_suitability_score"] is None   # no learned VTSS: not vdata's 0..1 score
        assert parsed["vdata_suitability_score"] == pytest.approx(0.9)   # the demo's q_suitability
        assert os.path.isfile(os.path.join(dest, parsed["url"]))
        # url and timestamp name the same video: the source video, and the clip's span in it
        clip = next(c for c in clips.values() if c[R.CAPTION] == parsed["caption"])
        assert os.path.realpath(os.path.join(dest, parsed["url"])) == os.path.realpath(clip[R.PATH])
        assert parsed["timestamp"][0].endswith(f"{clip[R.START_S]:06.3f}")


# --- the token renderers through the training exporters and the CLI -------------------------------

@pytest.mark.parametrize("spec", ["grounded_videollm:60", "lita", "vtg"])
def test_training_exports_render_token_times(build_dir, rows, tmp_path, spec):
    from click.testing import CliRunner

    from vdata.exporters.cli import export_cmd

    dest = tmp_path / "sharegpt"
    res = CliRunner().invoke(export_cmd, [build_dir, "--format", "sharegpt", "--dest", str(dest), "--time", spec,
                                          "--media", "none", "--task", "grounding"])
    assert res.exit_code == 0, res.output
    recs = _json(dest, f"{NAME}_grounding.json")
    assert len(recs) == sum(r[R.TASK] == "grounding" for r in rows.values())
    for rec in recs:
        row = rows[rec["id"]]
        span = row[R.ANSWER_SPANS][0]
        origin = _origin(row) if row[R.CLIP_ID] else 0.0
        length = (row[R.END_S] - row[R.START_S]) if row[R.SAMPLE_SCOPE] == R.SCOPE_CLIP else row[R.DURATION_S]
        a, b = span["start_s"] - origin, span["end_s"] - origin
        answer = rec["messages"][1]["content"]
        if spec.startswith("grounded"):
            expected = f"from <{min(int(60 * a / length), 60)}> to <{min(int(60 * b / length), 60)}>"
        elif spec == "lita":
            expected = f"from <t{round(99 * a / length)}> to <t{round(99 * b / length)}>"
        else:
            assert parse_vtg_tokens(answer) == [round(a, 1), round(b, 1)]
            continue
        assert answer == expected, (rec["id"], answer, expected)
        assert "time tokens" in rec["messages"][0]["content"]   # the question says how to write times


def test_builds_without_what_a_release_needs_write_nothing(tmp_path_factory, tmp_path):
    from vdata.exporters import ExportError
    from vdata.exporters.demo_build import write_demo_build

    media = tmp_path_factory.getbasetemp() / "vdata_demo_media"
    media.mkdir(exist_ok=True)
    plain = write_demo_build(str(tmp_path / "plain"), media_dir=str(media), with_frames=False)   # no annotations
    with pytest.raises(ExportError, match="no video has 2 or more chapters"):
        export(plain, str(tmp_path / "vc"), "vidchapters")
    with pytest.raises(ExportError, match="nothing to export"):
        export(plain, str(tmp_path / "cg"), "cg_bench")        # no whole-video multiple-choice question
    assert not (tmp_path / "vc").exists() and not (tmp_path / "cg").exists()


def test_markup_in_text_is_written_as_text_in_every_release(build_dir, tmp_path):
    """`<image>` / `<video>` / chat tokens in a sample's text or an annotation (a chapter titled "The <video>
    tag") are markup to a release's trainer (LLaVA-style): written as ‹image›, as the training formats do."""
    import shutil

    marked = tmp_path / "marked"
    shutil.copytree(build_dir, marked)
    part = marked / "samples" / "part-00000.parquet"
    rows = pq.read_table(part).to_pylist()
    for r in rows:
        r[R.QUESTION] = (r[R.QUESTION] or "") + " What do <image> and </s> mean?"
        for c in (r.get(R.ANNOTATIONS) or {}).get("chapters") or []:
            c["title"] += " <video>"
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(part)), part)
    for fmt in ("timesuite", "lita", "grounded_videollm", "vtg_it", "vidchapters"):
        dest = tmp_path / fmt
        res = export(str(marked), str(dest), fmt)
        text = "".join(p.read_text(encoding="utf-8") for p in dest.rglob("*.json"))
        own = res.total if fmt == "grounded_videollm" else 0   # its own "<image>\n" opens each conversation
        assert text and text.count("<image>") == own and "<video>" not in text and "</s>" not in text, fmt
        assert "\u2039" in text and any("written as text" in n for n in res.notes), (fmt, res.notes)


def test_cg_bench_of_mcqs_without_clues_writes_nothing(build_dir, tmp_path):
    """Whole-video MCQs without clue intervals (a label MCQ): CG-Bench carries none, so nothing is written
    (it wrote an empty cgbench.json and linked every video, exit 0)."""
    import shutil

    from vdata.exporters import ExportError

    only = tmp_path / "label_only"
    shutil.copytree(build_dir, only)
    part = only / "samples" / "part-00000.parquet"
    table = pq.read_table(part)
    keep = [dict(r, **{R.ANSWER_SPANS: None, R.EVIDENCE: None, R.RATIONALE_STEPS: None}) for r in table.to_pylist()
            if r[R.TASK] == "label_mcq" and r[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO]
    assert keep
    pq.write_table(pa.Table.from_pylist(keep, schema=table.schema), part)
    with pytest.raises(ExportError, match="nothing to export"):
        export(str(only), str(tmp_path / "cg"), "cg_bench")
    assert not (tmp_path / "cg").exists()


def test_a_benchmark_of_several_splits_says_so(build_dir, tmp_path):
    """An evaluation export of a build whose videos fall in several splits holds the train videos too: said,
    with the counts, and `--split test` keeps the held-out ones only."""
    import shutil

    split_build = tmp_path / "split_build"
    shutil.copytree(build_dir, split_build)
    table = pq.read_table(split_build / "samples" / "part-00000.parquet")
    held_out = sorted({str(v) for v in table.column(R.VIDEO_ID).to_pylist()})[0]
    is_held = pa.array([str(v) == held_out for v in table.column(R.VIDEO_ID).to_pylist()])
    os.remove(split_build / "samples" / "part-00000.parquet")
    pq.write_table(table.filter(pa.compute.invert(is_held)), split_build / "samples" / "part-00000-train.parquet")
    pq.write_table(table.filter(is_held), split_build / "samples" / "part-00000-test.parquet")
    res = export(str(split_build), str(tmp_path / "lmms"), "lmms-eval", media="none")
    assert any("rows of every split are in this benchmark (train" in n and "--split test" in n for n in res.notes)
    only = export(str(split_build), str(tmp_path / "lmms-test"), "lmms-eval", media="none", splits=["test"])
    assert 0 < only.total < res.total and not any("every split" in n for n in only.notes)


def test_vidchapters_leaves_out_a_video_with_one_chapter(build_dir, rows, tmp_path):
    """VidChapters-7M keeps a description's chapters only where it gives two or more
    (antoyang/VidChapters collection/desc2chapters.py): a video whose description names one chapter is
    skipped and said (`one_chapter`), the others are written as before."""
    import shutil

    one = tmp_path / "one_chapter_build"
    shutil.copytree(build_dir, one)
    path = one / "samples" / "part-00000.parquet"
    table = pq.read_table(path)
    single = sorted({str(v) for v in table.column(R.VIDEO_ID).to_pylist()})[0]
    items = table.to_pylist()
    for r in items:
        if str(r[R.VIDEO_ID]) == single:
            first = r[R.ANNOTATIONS]["chapters"][0]
            r[R.ANNOTATIONS] = {**r[R.ANNOTATIONS], "chapters": [{**first, "end_s": r[R.DURATION_S]}]}
    pq.write_table(pa.Table.from_pylist(items, schema=table.schema), path)
    res = export(str(one), str(tmp_path / "vc"), "vidchapters")
    data = _json(str(tmp_path / "vc"), "chapters_dvc_train.json")
    assert single not in data and data and all(len(e["timestamps"]) >= 2 for e in data.values())
    assert res.skipped.get("one_chapter") == 1, res.skipped
