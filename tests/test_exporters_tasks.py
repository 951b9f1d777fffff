"""The training / eval exporters know every sample task of issue 13 and every time format.

The build is the demo build's real videos (rendered lavfi shots, probed; `demo_build.demo_rows`) with
sample rows of the new tasks in the shapes their families write them: answers carrying `{{span:..}}` /
`{{t:..}}` placeholders (template and temporal families), and the bare shapes an exporter must still
handle (answer_spans with no answer text, an explanation only in `rationale`). Most samples are
video-scope (the synthetic whole-video row: clip id `<video>:video`, start 0, `sample_scope` video);
a few are clip-scope on a clip without a clip file.
Checked: the subset of every task, span answers rendered in each time format and read back,
MCQ-like tasks lettered, video-scope samples pointing at the whole video, lmms-eval's scorer reading
every time format, `vdata push --time name:bins`, the package docs.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from vdata.exporters import export
from vdata.exporters.demo_build import SHOTS, demo_rows
from vdata.exporters.dialog import time_points_only
from vdata.exporters.source import Item
from vdata.exporters.timefmt import TIME_FORMAT_NAMES, TimeFormat
from vdata.media.probe import probe_video
from vdata.schemas import records as R
from vdata.schemas.registry import EXPORT_FORMATS

NAME = "tasks-demo"
SEG_S = 2.0
_PLACEHOLDER = re.compile(r"\{\{(t|span):([0-9.]+)(?:,([0-9.]+))?\}\}")

# where each task's samples must land: LLaVA-Video-178K's cap / oe / mc files (temporal tasks are
# open-ended there) and the subset name of the other formats
EXPECTED_SUBSET = {
    "interval_caption": "captions", "dense_from_segments": "captions", "chapter_generation": "captions",
    "chapter_title": "captions", "speech_captions": "captions",
    "label_mcq": "mcq", "event_order": "mcq", "clue_qa": "mcq", "false_premise": "mcq", "mcq": "mcq",
    "segment_grounding": "grounding", "chapter_grounding": "grounding", "grounded_qa": "grounding",
    "reasoning_localization": "grounding", "highlights": "grounding", "summarization": "grounding",
    "open_qa": "open_qa",
}
LLAVA_FILE = {"captions": "cap", "mcq": "mc_qa", "grounding": "oe_qa", "open_qa": "oe_qa"}


def span(a, b) -> str:
    return f"{{{{span:{a:g},{b:g}}}}}"


def t(a) -> str:
    return f"{{{{t:{a:g}}}}}"


def _task_samples(row: dict, shots: list) -> list[dict]:
    """Samples of every new task on `row` (a clip row or the video row), as the families write them."""
    names = [s.name for s in SHOTS.values()]
    base = {c: None for c in R.SAMPLE_COLUMNS}
    key = row[R.CLIP_ID]
    o = row[R.START_S]   # items of the row are inside its interval
    out = []

    def add(sid, task, question, answer=None, **extra):
        out.append({**row, **base, R.SAMPLE_ID: f"{key}-{sid}", R.TASK: task, R.QUESTION_TYPE: task,
                    R.QUESTION: question, R.ANSWER: answer, **extra})

    items = [(o + i * SEG_S, o + (i + 1) * SEG_S, s) for i, s in enumerate(shots)]
    (a0, b0, s0), (a1, b1, s1) = items[0], items[-1]
    opts = [s0.name] + [n for n in names if n != s0.name][:3]
    opts[0], opts[2] = opts[2], opts[0]
    add("label", "label_mcq", "What is on screen?", s0.name, **{R.OPTIONS: opts, R.ANSWER_INDEX: 2})
    add("seg", "segment_grounding", f"When does the video show {s1.name}?", span(a1, b1),
        **{R.ANSWER_SPANS: [{"start_s": a1, "end_s": b1}]})
    add("seg-bare", "segment_grounding", f"When does the video show {s0.name}?",   # spans only, no answer text
        **{R.ANSWER_SPANS: [{"start_s": a0, "end_s": b0}]})
    add("icap", "interval_caption", f"What happens in {span(a1, b1)}?", s1.caption,
        **{R.ANSWER_SPANS: [{"start_s": a1, "end_s": b1}]})
    lines = "\n".join(f"{span(a, b)} {s.caption}" for a, b, s in items)
    add("dense", "dense_from_segments", "Describe every event with its time.", lines,
        **{R.ANSWER_SPANS: [{"start_s": a, "end_s": b} for a, b, _ in items]})
    add("chapters", "chapter_generation", "Divide this video into chapters.",
        "\n".join(f"{span(a, b)} {s.name}" for a, b, s in items),
        **{R.ANSWER_SPANS: [{"start_s": a, "end_s": b} for a, b, _ in items]})
    add("ctitle", "chapter_title", f"What is the title of the chapter {span(a0, b0)}?", s0.name,
        **{R.ANSWER_SPANS: [{"start_s": a0, "end_s": b0}]})
    add("cground", "chapter_grounding", f"When does the chapter \"{s1.name}\" start?", t(a1),
        **{R.ANSWER_SPANS: [{"start_s": a1, "end_s": b1}]})
    add("gqa", "grounded_qa", "What appears first?", f"{s0.name} ({span(a0, b0)})",
        **{R.ANSWER_SPANS: [{"start_s": a0, "end_s": b0}]})
    add("gqa-bare", "grounded_qa", "What appears last?", s1.name, **{R.ANSWER_SPANS: [{"start_s": a1, "end_s": b1}]})
    add("rtl", "reasoning_localization", "When would I see colour bars?",
        f"{span(a1, b1)} the bars fill the screen there", **{R.ANSWER_SPANS: [{"start_s": a1, "end_s": b1}],
                                                            R.RATIONALE: "the bars fill the screen there"})
    add("rtl-bare", "reasoning_localization", "When does the picture first change?",   # explanation in rationale only
        **{R.ANSWER_SPANS: [{"start_s": b0 - 0.5, "end_s": b0 + 0.5}], R.RATIONALE: "the first pattern ends there"})
    hl = {R.ANSWER_SPANS: [{"start_s": a0, "end_s": b0}, {"start_s": a1, "end_s": b1}]}
    add("hl", "highlights", f"Which moments show {s0.name}?",
        f"{span(a0, b0)} saliency 4\n{span(a1, b1)} saliency 3", **hl)
    add("hl-bare", "highlights", f"Which moments show {s1.name}?", **hl)
    add("sum", "summarization", "Summarize the video with times.",
        f"{s0.caption} ({span(a0, b0)}). {s1.caption} ({span(a1, b1)}).", **hl)
    add("speech", "speech_captions", "Describe the video from its narration.",
        f"{span(a0 + 0.2, b0 - 0.2)} A voice names the pattern.")
    order = [f"({c})" for c in "ABC"][:len(items)]
    add("ero", "mcq", "In which order do the scenes appear?", " ".join(order),
        **{R.QUESTION_TYPE: "event_order", R.OPTIONS: [" ".join(order), " ".join(reversed(order))], R.ANSWER_INDEX: 0,
           R.ANSWER_SPANS: [{"start_s": a, "end_s": b} for a, b, _ in items]})
    add("ero-task", "event_order", "Order the scenes.", " ".join(order),
        **{R.OPTIONS: [" ".join(reversed(order)), " ".join(order)], R.ANSWER_INDEX: 1,
           R.ANSWER_SPANS: [{"start_s": a, "end_s": b} for a, b, _ in items]})
    add("clue", "clue_qa", "Which pattern comes last?", s1.name,
        **{R.OPTIONS: [s1.name, s0.name], R.ANSWER_INDEX: 0, R.ANSWER_SPANS: [{"start_s": a1, "end_s": b1}]})
    add("clue-open", "open_qa", "Which pattern comes last?", s1.name, **{R.ANSWER_SPANS: [{"start_s": a1, "end_s": b1}]})
    add("fp", "false_premise", "Why does the dog bark?", "There is no dog in the video.",
        **{R.OPTIONS: ["Because it is hungry.", "There is no dog in the video."], R.ANSWER_INDEX: 1})
    return out


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("tasks_build")
    media = tmp_path_factory.getbasetemp() / "vdata_demo_media"   # shared with test_exporters
    media.mkdir(exist_ok=True)
    clip_rows, _, _ = demo_rows(str(media), str(root / "clips"), with_frames=False)
    rows, seen = [], set()
    for c in clip_rows:
        vid = c[R.VIDEO_ID]
        shots = [s for s in SHOTS.values() if any(r[R.CAPTION] == s.caption for r in clip_rows if r[R.VIDEO_ID] == vid)]
        clip = {k: v for k, v in c.items() if k not in (R.FRAMES, R.FRAME_SAMPLING)}
        clip[R.SAMPLE_SCOPE] = R.SCOPE_CLIP
        if vid not in seen:
            seen.add(vid)
            dur = c[R.DURATION_S]
            # the video row ends at the last clip's end, which can fall short of the container's duration
            video = {**clip, R.CLIP_ID: f"{vid}:video", R.CLIP_INDEX: None, R.START_S: 0.0,
                     R.END_S: round(len(shots) * SEG_S - 0.4, 3), R.CLIP_PATH: None, R.SAMPLE_SCOPE: R.SCOPE_VIDEO}
            assert video[R.END_S] < dur - 0.1
            rows += _task_samples(video, shots)
        elif c[R.CLIP_INDEX] == 1 and not c.get(R.CLIP_PATH):   # a clip without a clip file: cut on export
            clip_shot = next(s for s in shots if s.caption == c[R.CAPTION])
            rows += [r for r in _task_samples(clip, [clip_shot, clip_shot]) if r[R.TASK] in
                     ("segment_grounding", "grounded_qa", "label_mcq")]
    for r in rows:   # one shot per clip row: shrink the clip-scope items into the clip
        if r[R.SAMPLE_SCOPE] == R.SCOPE_CLIP:
            a, b = r[R.START_S], r[R.END_S]
            r[R.ANSWER_SPANS] = [{"start_s": a + 0.5, "end_s": b - 0.5}]
            if r[R.ANSWER] and "{{" in r[R.ANSWER]:
                r[R.ANSWER] = _PLACEHOLDER.sub(span(a + 0.5, b - 0.5), r[R.ANSWER])
    cols = sorted({c for r in rows for c in r if c in R.FIELD_TYPES and c not in R.INTERNAL_COLUMNS})
    schema = R.data_schema(cols)
    (root / "samples").mkdir()
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows], schema=schema),
                   root / "samples" / "part-00000.parquet")
    (root / "manifest.json").write_text(json.dumps({"name": NAME, "level": "samples"}))
    return str(root)


@pytest.fixture(scope="module")
def canonical(build_dir) -> dict:
    return {r[R.SAMPLE_ID]: r for r in pq.read_table(os.path.join(build_dir, "samples")).to_pylist()}


def _origin(row) -> float:
    return 0.0 if row[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO else row[R.START_S]


def _expected_times(row) -> list[float]:
    """Video-absolute times the answer must carry: its placeholders, else its spans."""
    ans = row[R.ANSWER] or ""
    found = [float(x) for m in _PLACEHOLDER.finditer(ans) for x in m.groups()[1:] if x is not None]
    if found:
        return found
    return [x for s in row[R.ANSWER_SPANS] or [] for x in (s["start_s"], s["end_s"])]


def _llava(dest) -> dict:
    out = {}
    for kind in ("cap", "oe_qa", "mc_qa"):
        p = Path(dest, f"{NAME}_{kind}.json")
        for rec in json.loads(p.read_text()) if p.exists() else []:
            out[rec["id"]] = (kind, rec)
    return out


# --- tests -----------------------------------------------------------------------------------------

def test_every_task_lands_in_its_subset_and_nothing_is_skipped(build_dir, canonical, tmp_path):
    res = export(build_dir, str(tmp_path / "llava"), "llava", media="none")
    assert res.skipped == {}
    got = _llava(tmp_path / "llava")
    assert set(got) == set(canonical)
    for sid, row in canonical.items():
        assert got[sid][0] == LLAVA_FILE[EXPECTED_SUBSET[row[R.TASK]]], (sid, row[R.TASK], got[sid][0])
    for fmt in ("sharegpt", "swift", "internvl"):
        dest = tmp_path / fmt
        res = export(build_dir, str(dest), fmt, media="none")
        assert res.skipped == {}, fmt
        for f in res.files:
            if not f.endswith((".json", ".jsonl")) or f in ("dataset_info.json",) or f.endswith("_meta.json"):
                continue
            subset = f[len(NAME) + 1:].rsplit(".", 1)[0]
            text = Path(dest, f).read_text()
            recs = json.loads(text) if f.endswith(".json") else [json.loads(x) for x in text.splitlines()]
            for rec in recs:
                assert EXPECTED_SUBSET[canonical[rec["id"]][R.TASK]] == subset, (fmt, rec["id"], subset)


@pytest.mark.parametrize("mode", ["seconds", "lita:50", "vtg", "grounded_videollm", "relative", "frames", "bracketed"])
def test_span_answers_rendered_in_the_time_format(build_dir, canonical, tmp_path, mode):
    export(build_dir, str(tmp_path / "llava"), "llava", time_format=mode, media="none")
    got = _llava(tmp_path / "llava")
    checked = 0
    for sid, row in canonical.items():
        user, answer = (c["value"] for c in got[sid][1]["conversations"])
        assert "{{" not in user and "{{" not in answer, (sid, user, answer)
        if EXPECTED_SUBSET[row[R.TASK]] != "grounding" and row[R.TASK] not in ("dense_from_segments",
                                                                               "chapter_generation", "speech_captions"):
            continue
        o = _origin(row)
        dur = (row[R.DURATION_S] if row[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO else row[R.END_S] - row[R.START_S])
        tf = TimeFormat(mode, o, dur, row[R.FPS])
        back = tf.parse_times(answer)
        step = {"lita": dur / 49, "grounded_videollm": dur / 300, "relative": dur / 99,
                "frames": 1 / row[R.FPS]}.get(tf.kind, 0.05)
        for x in _expected_times(row):
            assert any(abs(y - (x - o)) <= step + 1e-6 for y in back), (mode, sid, x, answer)
        # the question says how to write times: moments where the answer names moments (a chapter's start)
        assert tf.hint(points=time_points_only(Item(row, ""))) in user, (sid, user)
        checked += 1
    assert checked >= 20
    # the text part of the composed answers survives next to the span
    vid_rows = {sid: r for sid, r in canonical.items() if r[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO}
    for sid, row in vid_rows.items():
        answer = got[sid][1]["conversations"][1]["value"]
        if sid.endswith("-gqa-bare"):
            assert answer.startswith(row[R.ANSWER] + " (")
        if sid.endswith("-rtl-bare"):
            assert answer.endswith(" " + row[R.RATIONALE])
        if sid.endswith("-hl-bare"):   # every highlight span, each as the format writes a span
            tf = TimeFormat(mode, 0.0, row[R.DURATION_S], row[R.FPS])
            assert all(tf.span(s["start_s"], s["end_s"]) in answer for s in row[R.ANSWER_SPANS]), answer


def test_mcq_like_tasks_are_lettered(build_dir, canonical, tmp_path):
    export(build_dir, str(tmp_path / "sg"), "sharegpt", media="none")
    recs = {r["id"]: r for r in json.loads(Path(tmp_path, "sg", f"{NAME}_mcq.json").read_text())}
    assert {canonical[s][R.TASK] for s in recs} >= {"mcq", "label_mcq", "event_order", "clue_qa", "false_premise"}
    for sid, rec in recs.items():
        row = canonical[sid]
        user, answer = (m["content"] for m in rec["messages"])
        letter = "ABCDEFGH"[row[R.ANSWER_INDEX]]
        assert answer == letter
        assert f"{letter}. {row[R.OPTIONS][row[R.ANSWER_INDEX]]}" in user.splitlines()
        assert user.rstrip().endswith("Answer with the option's letter from the given choices directly.")


def test_video_scope_samples_show_the_whole_video(build_dir, canonical, tmp_path):
    dest = tmp_path / "ivl"
    res = export(build_dir, str(dest), "internvl", media="copy")
    recs = {}
    for f in res.files:
        if f.endswith(".jsonl"):
            recs.update({r["id"]: r for r in map(json.loads, Path(dest, f).read_text().splitlines())})
    for sid, row in canonical.items():
        rec = recs[sid]
        path = Path(dest, "videos", rec["video"])
        if row[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO:
            assert "clip" not in rec and "clips/" not in rec["video"], rec
            assert abs(probe_video(str(path))[R.DURATION_S] - row[R.DURATION_S]) < 0.1
        else:   # a clip without a clip file: the source video and the clip interval
            q = 0.25 / row[R.FPS]   # a quarter frame inside: InternVL floors start * fps (Visual.loader_interval)
            assert rec["clip"] == [round(row[R.START_S] + q, 3), round(row[R.END_S] - q, 3)]
    # formats that cannot name an interval cut the clips, and only them
    res = export(build_dir, str(tmp_path / "llava"), "llava", media="link")
    n_clips = len({r[R.CLIP_ID] for r in canonical.values() if r[R.SAMPLE_SCOPE] == R.SCOPE_CLIP})
    assert res.media["cut"] == n_clips
    for sid, (_, rec) in _llava(tmp_path / "llava").items():
        assert rec["video"].startswith("clips/") == (canonical[sid][R.SAMPLE_SCOPE] == R.SCOPE_CLIP)
    # parquet keeps the whole video as the visual too, and its canonical columns
    res = export(build_dir, str(tmp_path / "pq"), "parquet", media="none")
    table = pa.concat_tables([pq.read_table(Path(tmp_path, "pq", f)) for f in res.files if f.endswith(".parquet")])
    for row in table.select([R.SAMPLE_ID, R.SAMPLE_SCOPE, "video_origin_s"]).to_pylist():
        assert (row["video_origin_s"] == 0.0) == (row[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO)


def _import_utils(folder):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"lmms_utils_{abs(hash(str(folder)))}", os.path.join(folder, "utils.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("mode", ["seconds", "timesuite", "relative", "frames", "lita", "lita:50", "vtg",
                                  "grounded_videollm", "grounded_videollm:40", "bracketed"])
def test_lmms_eval_scores_spans_in_every_time_format(build_dir, canonical, tmp_path, mode):
    dest = tmp_path / "lmms"
    res = export(build_dir, str(dest), "lmms-eval", time_format=mode, media="none")
    utils = _import_utils(dest)
    docs = pq.read_table(dest / "data" / "grounding.parquet").to_pylist()
    assert {canonical[d["question_id"]][R.TASK] for d in docs} >= {
        "segment_grounding", "grounded_qa", "reasoning_localization", "highlights"}
    # chapter_grounding asks for the chapter's start: a moment item, its reference found where it says
    moments = pq.read_table(dest / "data" / "moment.parquet").to_pylist()
    assert {canonical[d["question_id"]][R.TASK] for d in moments} == {"chapter_grounding"}
    for d in moments:
        assert utils.process_results_moment(d, [d["answer"]])["within_3s"] == 1.0, (mode, d["answer"], d["spans"])
    assert res.rows["mcq"] == sum(EXPECTED_SUBSET[r[R.TASK]] == "mcq" for r in canonical.values())
    for d in docs:
        assert d["time_format"] == mode
        # the reference answer, as a trained model would write it, scores (close to) full IoU
        score = utils.process_results_grounding(d, [d["answer"]])
        assert score["mean_iou"] >= 0.8, (mode, d["question_id"], d["answer"], d["spans"])
    if mode not in ("seconds", "timesuite"):
        # plain seconds are not this format's times: a token format finds no span in them
        d = docs[0]
        plain = TimeFormat("seconds", 0, d["duration_s"], d["fps"]).span(*d["spans"][0])
        got = utils.parse_span(plain, mode, d["duration_s"], d["fps"])
        want = tuple(d["spans"][0])
        assert got is None or mode in ("relative", "frames") and got != pytest.approx(want, abs=0.05)


def test_push_time_takes_name_bins(build_dir, tmp_path, monkeypatch):
    import secrets

    from fakehub import FakeHub
    from huggingface_hub import constants

    from vdata.cli_hub import push_cmd

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    token = "hf_" + secrets.token_hex(16)
    monkeypatch.setenv("HF_TOKEN", token)
    runner = CliRunner()
    bad = runner.invoke(push_cmd, [build_dir, "--repo", "me/x", "--time", "lita:1"])
    assert bad.exit_code == 2 and "Invalid value for '--time'" in bad.output
    with FakeHub(token) as hub:
        ok = runner.invoke(push_cmd, [build_dir, "--repo", "me/tasks", "--format", "llava", "--time", "lita:50",
                                      "--endpoint", hub.endpoint, "--staging", str(tmp_path / "stage")])
        assert ok.exit_code == 0, ok.output
        files = hub.repos["me/tasks"].files
    answers = [c["value"] for name, data in files.items() if name.endswith(".json") and "_oe_qa" in name
               for rec in json.loads(data) for c in rec["conversations"] if c["from"] == "gpt"]
    assert answers and any(re.search(r"<t\d+>", a) for a in answers)
    assert all(int(k) <= 49 for a in answers for k in re.findall(r"<t(\d+)>", a))   # 50 tokens: <t0>..<t49>


def test_package_docs_list_release_formats_and_time_formats():
    import vdata.exporters as ex

    doc = ex.__doc__
    for name in EXPORT_FORMATS:
        assert re.search(rf"\b{re.escape(name)}\b", doc), name
    for name in TIME_FORMAT_NAMES:
        assert f"`{name}" in doc, name


# --- the template families' own samples, end to end (runs once the families are on the branch) ----------

def test_template_family_samples_export_end_to_end(cut_video, tmp_path):
    """probe → shots on a real video, annotations on its rows, `generate` with the teacher-free template
    tasks on the clip rows and the whole-video row, written as a build: every sample exports, in its
    subset, with its times in LITA tokens."""
    pytest.importorskip("vdata.stages.generate.segments", reason="the template task families are not merged yet")
    import datasets

    import vdata
    from vdata.stages.generate.stage import GenerateConfig, GenerateStage
    from vdata.stages.probe import ProbeStage
    from vdata.stages.shots import ShotsStage

    path, _ = cut_video
    ds = datasets.Dataset.from_list([{R.SOURCE_URI: path, R.PATH: path, R.SOURCE_META: None}])
    for stage in (ProbeStage(), ShotsStage(min_len_s=1.0, max_len_s=5.0)):
        ds, _ = vdata.run_stage(stage, ds)
    ann = {"title": "Test patterns", "description": None, "labels": ["juggling"],
           "chapters": [{"start_s": 0.0, "end_s": 6.0, "title": "Colour bars"},
                        {"start_s": 6.0, "end_s": 14.0, "title": "Test card"}],
           "segments": [{"start_s": 0.5, "end_s": 1.8, "text": "A grid of colour bars appears."},
                        {"start_s": 8.1, "end_s": 9.7, "text": "A test card fades in."}],
           "subtitles": [], "transcript": None}
    clips = [dict(r, **{R.ANNOTATIONS: ann, R.CAPTION: "A synthetic test pattern.", R.SAMPLE_SCOPE: R.SCOPE_CLIP})
             for r in ds.to_list()]
    video = {**clips[0], R.CLIP_ID: f"{clips[0][R.VIDEO_ID]}:video", R.CLIP_INDEX: None, R.START_S: 0.0,
             R.END_S: clips[0][R.DURATION_S], R.CLIP_PATH: None, R.SAMPLE_SCOPE: R.SCOPE_VIDEO}
    tasks = {t: {} for t in ("segment_grounding", "interval_caption", "dense_from_segments", "chapter_generation",
                             "chapter_title", "chapter_grounding")}
    tasks["label_mcq"] = {"vocabulary": ["cooking", "dancing", "juggling", "painting", "running"]}
    kept, _ = vdata.run_stage(GenerateStage(GenerateConfig(tasks=tasks)), datasets.Dataset.from_list(clips + [video]))
    root = tmp_path / "build"
    (root / "samples").mkdir(parents=True)
    kept = kept.remove_columns([c for c in kept.column_names if c in R.INTERNAL_COLUMNS])
    kept.to_parquet(str(root / "samples" / "part-00000.parquet"))
    (root / "manifest.json").write_text(json.dumps({"name": NAME, "level": "samples"}))
    rows = {r[R.SAMPLE_ID]: r for r in kept.to_list()}
    assert {r[R.TASK] for r in rows.values() if r[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO} == set(tasks)

    res = export(str(root), str(tmp_path / "llava"), "llava", time_format="lita:50", media="link")
    assert res.skipped == {} and res.total == len(rows)
    for sid, (kind, rec) in _llava(tmp_path / "llava").items():
        row = rows[sid]
        assert kind == LLAVA_FILE[EXPECTED_SUBSET[row[R.TASK]]]
        user, answer = (c["value"] for c in rec["conversations"])
        assert "{{" not in user + answer
        if row[R.TASK] in ("segment_grounding", "chapter_grounding", "dense_from_segments", "chapter_generation"):
            assert re.search(r"<t\d+>", answer), (row[R.TASK], answer)
        assert rec["video"].startswith("clips/") == (row[R.SAMPLE_SCOPE] == R.SCOPE_CLIP)
