"""single_frame: the frame it picks (middle of the evidence, else of the clip) decoded from a real video
whose colour changes at known times; the rotated requests it sends; its share re-thresholded from the
stored column; and, with the tiny random Qwen2.5-VL on CPU vLLM, the whole stage (structure only: the
model is random)."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import labelled_set as L
from vdata.media.images import encode_jpeg
from vdata.media.synth import Segment, render_segments
from vdata.pipelines.rethreshold import rethreshold_dataset
from vdata.prompts import load_prompt
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.single_frame import SingleFrameConfig, SingleFrameStage, frame_time

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    """2 s red, 2 s blue, 2 s green."""
    path = str(tmp_path_factory.mktemp("sf") / "colours.mp4")
    render_segments(path, [Segment("color=c=red", 2.0), Segment("color=c=blue", 2.0), Segment("color=c=green", 2.0)],
                    size=(160, 90), fps=10)
    return path


def mcq(sid, path, *, spans=None, start=0.0, end=6.0, task="mcq", options=("red", "blue", "green"), answer_index=1):
    return {R.SAMPLE_ID: sid, R.TASK: task, R.QUESTION: "What colour fills the screen?", R.OPTIONS: list(options),
            R.ANSWER_INDEX: answer_index, R.PATH: path, R.START_S: start, R.END_S: end,
            R.ANSWER_SPANS: [{"start_s": a, "end_s": b} for a, b in spans] if spans else None}


def unset_stage(**cfg) -> SingleFrameStage:
    """The stage with its prompt but no teacher (for the parts that need none)."""
    stage = SingleFrameStage(SingleFrameConfig(teacher="vlm", **cfg), RunContext(output_dir=""))
    stage.prompt = load_prompt("verify", "single_frame_mcq")
    return stage


def nearest_colour(image: np.ndarray) -> tuple[int, int, int]:
    mean = image.reshape(-1, 3).mean(axis=0)
    return min((RED, BLUE, GREEN), key=lambda c: float(np.abs(mean - np.array(c)).sum()))


def test_frame_is_the_middle_of_the_evidence_else_of_the_clip(colours):
    stage = unset_stage()
    # the longest answer span is 2.2-3.8 (blue); the short one in the red part is not taken
    row = mcq("a", colours, spans=[(0.1, 0.5), (2.2, 3.8)])
    assert frame_time(row) == pytest.approx(3.0)
    t, image = stage.frame(row, frame_time(row))
    assert abs(t - 3.0) <= 0.1 and nearest_colour(image) == BLUE
    # no spans: the clip's middle (4.0-6.0: green)
    row = mcq("b", colours, start=4.0, end=6.0)
    t, image = stage.frame(row, frame_time(row))
    assert abs(t - 5.0) <= 0.1 and nearest_colour(image) == GREEN
    assert frame_time({R.SAMPLE_ID: "c"}) is None
    # a row with stored frames: the nearest stored one, no decoding (the path does not even exist)
    frames = [{R.FRAME_TIMESTAMP_S: 1.0, R.FRAME_JPEG: encode_jpeg(np.full((8, 8, 3), RED, np.uint8))},
              {R.FRAME_TIMESTAMP_S: 4.5, R.FRAME_JPEG: encode_jpeg(np.full((8, 8, 3), GREEN, np.uint8))}]
    row = dict(mcq("d", "/nowhere.mp4", start=3.0, end=6.0), **{R.FRAMES: frames})
    t, image = stage.frame(row, frame_time(row))
    assert t == 4.5 and nearest_colour(image) == GREEN


def test_a_batch_opens_each_video_once_and_keeps_every_row_in_place(colours):
    stage = unset_stage()
    wanted = [(mcq("g", colours), 5.0), (mcq("x", "/nowhere.mp4"), 1.0), (mcq("r", colours), 1.0),
              (mcq("b", colours), 3.0)]
    got = stage.frames(wanted)
    assert isinstance(got[1], Exception)                  # the missing video fails its row only
    assert [nearest_colour(got[i][1]) for i in (0, 2, 3)] == [GREEN, RED, BLUE]
    assert [round(got[i][0]) for i in (0, 2, 3)] == [5, 1, 3]


def test_requests_rotate_the_correct_option_and_carry_the_frame(colours):
    stage = unset_stage()
    row = mcq("a", colours, spans=[(2.2, 3.8)])
    _, image = stage.frame(row, 3.0)
    tries = stage.attempts_for(row, image)
    assert len(tries) == 3 and all(target == "blue" for _, target in tries)
    for shift, (req, _) in enumerate(tries):
        enum = req.json_schema["properties"]["answer"]["enum"]
        assert enum.index("blue") == (1 + shift) % 3              # the answer visits every position
        parts = req.messages[-1].parts()
        assert [p.type for p in parts] == ["image", "text"] and parts[0].image is image
    assert len(unset_stage(attempts=2).attempts_for(row, image)) == 2


def test_text_only_teacher_is_refused_with_its_key_path(tmp_path):
    from vdata.pipelines.runner import preflight
    from vdata.schemas.config import ConfigError, load_config

    cfg = {"name": "sf", "input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "out")},
           "stages": [{"probe": {}}, {"shots": {}}, {"generate": {"tasks": {"mcq": {}}, "teacher": "t"}},
                      {"single_frame": {"teacher": "t"}}],
           "teachers": {"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "vision": False}}}
    (tmp_path / "a.mp4").write_bytes(b"")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"stages\[3\]\.single_frame\.teacher: teacher 't' is text-only"):
        preflight(load_config(path))


def test_stored_share_rethresholds_without_a_teacher(tmp_path):
    rows = [{R.SAMPLE_ID: f"s{i}", R.TASK: "mcq", R.V_SINGLE_FRAME_CORRECT: v}
            for i, v in enumerate([0.0, 0.25, 0.5, None])]
    (tmp_path / "samples").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=R.data_schema(rows[0].keys())),
                   tmp_path / "samples" / "part-0.parquet")
    config_text = yaml.safe_dump({"name": "x", "input": [{"path": "v"}], "output": {"dir": "o"},
                                  "stages": [{"single_frame": {"teacher": "vlm", "max_single_frame_correct": 0.5}}]})
    (tmp_path / "manifest.json").write_text(json.dumps({"level": "samples", "config_text": config_text}))
    result = rethreshold_dataset(str(tmp_path), {"single_frame.max_single_frame_correct": "0.2"})
    # 0.25 and 0.5 are over 0.2; a null share (not checked) passes
    assert (result.kept, result.dropped) == (2, {"single_frame_answerable": 2})
    assert result.changes == [("single_frame.max_single_frame_correct", 0.5, 0.2)]


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not L.have_vllm(), reason="vLLM not installed")
def test_stage_on_tiny_vlm(colours, vlm_server):
    teachers = {"vlm": L.openai_teacher(vlm_server, sampling={"max_tokens": 24})}
    rows = [mcq("a", colours, spans=[(2.2, 3.8)]), mcq("b", colours, start=4.0, end=6.0, answer_index=2),
            dict(mcq("open", colours), **{R.TASK: "open_qa", R.OPTIONS: None, R.ANSWER_INDEX: None}),
            mcq("gone", "/nowhere.mp4")]
    stage = SingleFrameStage(SingleFrameConfig(teacher="vlm", max_single_frame_correct=None),
                             RunContext(output_dir="", teachers=teachers))
    stage.setup()
    out = {(r.row if isinstance(r, Reject) else r)[R.SAMPLE_ID]: r for r in stage.process_batch(rows)}
    for sid, t in (("a", 3.0), ("b", 5.0)):
        row = out[sid]
        assert not isinstance(row, Reject), row
        assert row[R.V_SINGLE_FRAME_CORRECT] in (0.0, 1 / 3, 2 / 3, 1.0) and abs(row[R.V_SINGLE_FRAME_TIME_S] - t) <= 0.1
    assert out["open"][R.V_SINGLE_FRAME_CORRECT] is None          # not an MCQ: not checked, kept
    assert isinstance(out["gone"], Reject) and out["gone"].reason == "unreadable"   # no video: its own reject
    stats = stage.teacher.stats()
    assert stats["requests"] == 6 and stats["prompt_tokens"] > 6 * 40   # three rotations each, with an image
