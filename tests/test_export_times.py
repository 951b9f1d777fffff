"""Times the exporters write, checked against the frames of real (ffmpeg-made) videos (outside test h15).

- `frames` on a variable-frame-rate video numbers the video's real frames (its demuxed frame times), not
  t x the average rate; where those times cannot be read the sample is skipped with a counted reason.
- `frames` spans name their first and last frame, both inclusive (a [1.0, 2.0) s span at 25 fps is 25 - 49).
- `relative` is VTimeLLM's `min(round(100 t / d), 99)`; readers map NN back as NN/100 d.
- LITA's questions carry LITA's own `<tK>` tokens (its loader converts answers only).
- Interval-referenced clips (InternVL `clip`, TimeSuite `start`/`end`) land a flooring loader on the clip's
  first frame, not on the previous shot's last.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vdata import lmms_task_utils as U
from vdata.exporters import export
from vdata.exporters.timefmt import TimeFormat
from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.synth import Segment, render_segments
from vdata.schemas import records as R

NAME = "times"
# vfr.mp4: 2 s at 10 fps (frames 0-19), 1 s at 30 fps (20-49), 2 s at 5 fps (50-59): 60 frames in 5 s, 12 fps average
VFR_DUR, VFR_AVG_FPS = 5.0, 12.0
# cfr.mp4: 25 fps, 75 frames, cuts at frames 29 (1.16 s) and 58 (2.32 s): 1.16 * 25 = 28.999999999999996
CFR_DUR, CFR_FPS = 3.0, 25.0


def _vfr_video(path: str) -> None:
    """Three segments at 10, 30 and 5 fps, concatenated with their own frame times kept (as a phone or screen
    recorder writes variable-rate video; /tmp/h15/make_media2.sh makes the tester's the same way)."""
    parts = [("testsrc2", 10, 2), ("smptebars", 30, 1), ("color=c=red", 5, 2)]
    args, chains = [], []
    for i, (src, rate, dur) in enumerate(parts):
        sep = ":" if "=" in src else "="
        args += ["-f", "lavfi", "-i", f"{src}{sep}size=96x64:rate={rate}:duration={dur}"]
        chains.append(f"[{i}:v]settb=1/1000,format=yuv420p,setsar=1[v{i}]")
    graph = ";".join(chains) + ";" + "".join(f"[v{i}]" for i in range(len(parts))) + f"concat=n={len(parts)}:v=1:a=0[v]"
    run_ffmpeg(["-y", *args, "-filter_complex", graph, "-map", "[v]", "-fps_mode", "passthrough",
                "-enc_time_base", "1/1000", "-c:v", "libx264", "-video_track_timescale", "1000", path])


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("export_times_media")
    vfr, cfr, broken = str(root / "vfr.mp4"), str(root / "cfr.mp4"), str(root / "broken.mp4")
    _vfr_video(vfr)
    render_segments(cfr, [Segment("testsrc2", 1.16), Segment("smptebars", 1.16), Segment("mandelbrot", 0.68)],
                    size=(96, 64), fps=int(CFR_FPS))
    Path(broken).write_text("not a video")
    return {"vfr": vfr, "cfr": cfr, "broken": broken}


def _row(path, vid, dur, fps, vfr, sid, task, question, answer="", spans=None, clip=None):
    base = {c: None for c in R.SAMPLE_COLUMNS}
    start, end = clip or (0.0, dur)
    return {**base, R.PATH: path, R.SOURCE_URI: path, R.VIDEO_ID: vid, R.DURATION_S: dur, R.FPS: fps, R.IS_VFR: vfr,
            R.CLIP_ID: f"{vid}:{start}" if clip else f"{vid}:video", R.CLIP_INDEX: 0 if clip else None,
            R.START_S: start, R.END_S: end, R.CLIP_PATH: None,
            R.SAMPLE_SCOPE: R.SCOPE_CLIP if clip else R.SCOPE_VIDEO, R.SAMPLE_ID: sid, R.TASK: task,
            R.QUESTION_TYPE: task, R.QUESTION: question, R.ANSWER: answer,
            R.ANSWER_SPANS: [{"start_s": a, "end_s": b} for a, b in spans] if spans else None}


def _build(root: Path, rows: list[dict]) -> str:
    cols = sorted({c for r in rows for c in r if c in R.FIELD_TYPES and c not in R.INTERNAL_COLUMNS})
    schema = R.data_schema(cols)
    (root / "samples").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows], schema=schema),
                   root / "samples" / "part-00000.parquet")
    (root / "manifest.json").write_text(json.dumps({"name": NAME, "level": "samples"}))
    return str(root)


@pytest.fixture(scope="module")
def build(media, tmp_path_factory) -> str:
    v, c = media["vfr"], media["cfr"]
    rows = [
        _row(v, "vfr", VFR_DUR, VFR_AVG_FPS, True, "vfr-bars", "segment_grounding", "When are the colour bars shown?",
             spans=[(2.0, 3.0)]),
        _row(v, "vfr", VFR_DUR, VFR_AVG_FPS, True, "vfr-red", "segment_grounding", "When is the screen red?",
             spans=[(3.0, 5.0)]),
        _row(v, "vfr", VFR_DUR, VFR_AVG_FPS, True, "vfr-icap", "interval_caption",
             "Describe what takes place between {{t:2.0}} and {{t:3.0}}.", "Colour bars."),
        # a clip of the VFR video shown as the source plus its interval: frames count from the clip's first
        _row(v, "vfr", VFR_DUR, VFR_AVG_FPS, True, "vfr-clip", "segment_grounding", "When are bars shown?",
             spans=[(2.0, 2.5)], clip=(2.0, 3.0)),
        _row(media["broken"], "broken", VFR_DUR, VFR_AVG_FPS, True, "broken-seg", "segment_grounding",
             "When does it happen?", spans=[(1.0, 2.0)]),
        _row(c, "cfr", CFR_DUR, CFR_FPS, False, "cfr-seg", "segment_grounding", "When are the colour bars shown?",
             spans=[(1.16, 2.32)]),
        _row(c, "cfr", CFR_DUR, CFR_FPS, False, "cfr-late", "segment_grounding", "When does the fractal show?",
             spans=[(1.0, 2.404)]),
        _row(c, "cfr", CFR_DUR, CFR_FPS, False, "cfr-icap", "interval_caption", "Describe {{span:1.16,2.32}}.",
             "Colour bars."),
        _row(c, "cfr", CFR_DUR, CFR_FPS, False, "cfr-clip", "segment_grounding", "When are bars shown?",
             spans=[(1.16, 1.56)], clip=(1.16, 2.32)),
    ]
    return _build(tmp_path_factory.mktemp("export_times_build"), rows)


def _turns(dest: str) -> dict:
    """LLaVA records by sample id: (question, answer)."""
    out = {}
    for f in Path(dest).glob("*.json"):
        for rec in json.loads(f.read_text()):
            conv = rec["conversations"]
            out[rec["id"]] = (conv[0]["value"], conv[1]["value"])
    return out


def _real_frame_times(path: str) -> list[float]:
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        return sorted(float(p.pts * s.time_base) for p in c.demux(s) if p.size)


def test_vfr_frames_are_the_videos_own_frames(build, media, tmp_path):
    times = _real_frame_times(media["vfr"])
    assert len(times) == 60 and times.index(2.0) == 20 and times.index(3.0) == 50   # the video is what it says
    dest = str(tmp_path / "llava")
    res = export(build, dest, "llava", time_format="frames", media="none")
    t = _turns(dest)
    # colour bars are frames 20..49 of the file; t x 12 fps would say 24 - 36, an earlier and shorter run
    assert t["vfr-bars"][1] == "frames 20 - 49", t["vfr-bars"]
    assert t["vfr-red"][1] == "frames 50 - 59", t["vfr-red"]
    # two moments bounding an interval in a question: the end is the interval's last frame
    assert "between frame 20 and frame 49" in t["vfr-icap"][0], t["vfr-icap"]
    # no one rate for a VFR video: the hint counts frames
    assert "frame numbers of the video" in t["vfr-bars"][0] and "per second" not in t["vfr-bars"][0]
    assert "at 25 frames per second" in t["cfr-seg"][0]
    # the unreadable VFR file: skipped and counted, not numbered by its average rate
    assert "broken-seg" not in t and res.skipped.get("no_frame_times") == 1, res.skipped
    assert "no_frame_times=1" in res.summary()


def test_vfr_clip_frames_count_from_the_clips_first_frame(build, tmp_path):
    dest = str(tmp_path / "internvl")
    export(build, dest, "internvl", time_format="frames", media="none")
    recs = {r["id"]: r for f in Path(dest).glob("*.jsonl") for r in map(json.loads, f.read_text().splitlines())}
    # the clip [2.0, 3.0) of the VFR video holds its 30 fps frames; [2.0, 2.5) is their first 15
    assert recs["vfr-clip"]["conversations"][1]["value"] == "frames 0 - 14"


def test_frame_spans_are_inclusive_and_read_back_to_the_frame_end(build, tmp_path):
    dest = str(tmp_path / "llava")
    export(build, dest, "llava", time_format="frames", media="none")
    t = _turns(dest)
    # [1.16, 2.32) s is frames 29..57 (58 is the next shot's first): both ends name frames of the span
    assert t["cfr-seg"][1] == "frames 29 - 57", t["cfr-seg"]
    assert "Describe frames 29 - 57." in t["cfr-icap"][0]
    assert "the end frame included" in t["cfr-seg"][0]
    tf = TimeFormat("frames", 0.0, CFR_DUR, CFR_FPS)
    assert tf.point(1.16) == "frame 29" and tf.point(1.15) == "frame 28"   # a moment: the frame shown then
    assert tf.span(0.0, CFR_DUR) == "frames 0 - 74"                       # a 75-frame video: 0 - 74
    back = tf.parse_times("frames 29 - 57")
    assert back == pytest.approx([1.16, 2.32])
    assert U.parse_span("frames 29 - 57", "frames", CFR_DUR, CFR_FPS) == pytest.approx((1.16, 2.32))


def test_relative_positions_are_vtimellms(build, tmp_path):
    dest = str(tmp_path / "rel")
    export(build, dest, "llava", time_format="relative", media="none")
    t = _turns(dest)
    # VTimeLLM convert: min(round(100 t / d), 99): 1.0/3 -> 33, 2.404/3 -> 80 (round(99 x) would give 79)
    assert t["cfr-late"][1] == "33 - 80", t["cfr-late"]
    assert TimeFormat("relative", 0.0, 10.0).point(10.0) == "99"
    assert U.parse_span("33 - 80", "relative", CFR_DUR, None) == pytest.approx((0.99, 2.4))
    assert TimeFormat("relative", 0.0, CFR_DUR).parse_times("33 - 80") == pytest.approx([0.99, 2.4])


def test_lita_questions_carry_litas_tokens(build, tmp_path):
    dest = str(tmp_path / "lita")
    export(build, dest, "lita", media="none")
    data = json.loads(Path(dest, f"{NAME}_lita.json").read_text())
    qas = [qa for v in data.values() for qa in v["QA"]]
    (icap,) = [qa for qa in data["cfr"]["QA"] if qa["a"] == "Colour bars."]   # keyed by the video's stem
    # LITA's loader converts `<seconds>` in answers only: a question's times are tokens already,
    # round(99 t / d) as the loader would write them (1.16 / 3 -> 38, 2.32 / 3 -> 77)
    assert re.findall(r"<t(\d+)>", icap["q"]) == ["38", "77"], icap
    grounding = [qa for qa in qas if qa["q"].startswith("When are the colour bars")]
    assert grounding
    for qa in grounding + [icap]:
        assert not re.search(r"<\d+\.\d+>", qa["q"]) and "angle brackets" not in qa["q"], qa
    for qa in grounding:   # the answers stay `<seconds>`, which the loader turns into its tokens
        assert re.findall(r"<\d+\.\d+>", qa["a"]) and "<t0> (start of the video)" in qa["q"], qa


@pytest.mark.parametrize("fmt", ["internvl", "timesuite"])
def test_interval_clips_start_on_the_clips_first_frame(build, tmp_path, fmt):
    dest = str(tmp_path / fmt)
    export(build, dest, fmt, media="none")
    if fmt == "internvl":
        recs = [r for f in Path(dest).glob("*.jsonl") for r in map(json.loads, f.read_text().splitlines())]
        start, end = next(r["clip"] for r in recs if r["id"] == "cfr-clip")
    else:
        recs = json.loads(Path(dest, f"{NAME}_timeit.json").read_text())
        rec = next(r for r in recs if "start" in r and abs(r["start"] - 1.16) < 0.05)
        start, end = rec["start"], rec["end"]
    # the clip is frames 29..57: the loaders' int(t * fps) (and round) must land on 29 and 57, not on 28,
    # the previous shot's last frame (1.16 * 25 = 28.999999999999996)
    assert int(start * CFR_FPS) == 29 and round(start * CFR_FPS) == 29, start
    assert int(end * CFR_FPS) == 57, end


def test_lmms_eval_grounding_docs_of_a_vfr_video_are_skipped_in_frames(build, tmp_path):
    """lmms-eval's utils.py reads a reply's frame numbers back at the doc's one `fps`: on a variable-rate
    video those would be scored as other frames, so its grounding docs are skipped, counted with a reason;
    a constant-rate video's are written, their spans in seconds."""
    import datasets

    dest = str(tmp_path / "lmms")
    res = export(build, dest, "lmms-eval", time_format="frames", media="none")
    assert res.skipped.get("frames_on_variable_rate") == 3, res.skipped   # vfr-bars, vfr-red, vfr-clip
    docs = [d for f in Path(dest).rglob("*.parquet") for d in datasets.load_dataset(
        "parquet", data_files=str(f), split="train").to_list()]
    ids = {d["question_id"] for d in docs}
    assert "cfr-seg" in ids and not ids & {"vfr-bars", "vfr-red", "vfr-clip"}, ids
