"""Ego4D narrations as input, in both releases' layouts: each narration a moment of the video, read as a
segment with EgoClip's window, cleaned as VideoLLM-online cleans it, and built into a streaming dialogue."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as pads
import pytest

import vdata
from vdata.media.synth import Segment, render_segments
from vdata.schemas import records as R
from vdata.schemas.annotation_formats import FormatError, read_ego4d_narrations
from vdata.schemas.config import parse_config

# narration.json (v1): two annotators' passes per video, narrations at points in time, summaries over spans
NARRATION_V1 = {
    "e4d-narr-1": {
        "narration_pass_1": {
            "narrations": [
                {"timestamp_sec": 1.0, "timestamp_frame": 30, "narration_text": "#C C picks up a knife", "annotation_uid": "p1"},
                {"timestamp_sec": 3.0, "timestamp_frame": 90, "narration_text": "#C C cuts the onion.", "annotation_uid": "p1"},
                {"timestamp_sec": 5.0, "timestamp_frame": 150, "narration_text": "#O a man X talks to C", "annotation_uid": "p1"},
                {"timestamp_sec": 7.9, "timestamp_frame": 237, "narration_text": "#C C puts down the knife", "annotation_uid": "p1"},
                {"timestamp_frame": 240, "narration_text": "#C C has no time", "annotation_uid": "p1"}],
            "summaries": [{"start_sec": 0.0, "end_sec": 8.0, "summary_text": "#Summary C cooked in a kitchen",
                           "annotation_uid": "p1"}]},
        "narration_pass_2": {"narrations": [
            {"timestamp_sec": 1.2, "timestamp_frame": 36, "narration_text": "#C C holds a knife", "annotation_uid": "p2"}]},
    },
    "e4d-narr-2": {"narration_pass_2": {"narrations": [      # only a second pass: that one is read
        {"timestamp_sec": "2.0", "narration_text": "#C C opens a door", "annotation_uid": "q2"},   # a time as text
        {"timestamp_sec": 8.0, "narration_text": "#C C walks out", "annotation_uid": "q2"}]}},
    "e4d-narr-3": "not a record",
}
# all_narrations_redacted.json (v2): both passes in one list, told apart by _annotation_uid
NARRATION_V2 = {"videos": {"e4d-narr-1": {"narrations": [
    {"time": 1.0, "text": "#C C picks up a knife", "_annotation_uid": "p1"},
    {"time": 1.2, "text": "#C C holds a knife", "_annotation_uid": "p2"},
    {"time": 3.0, "text": "#C C cuts the onion.", "_annotation_uid": "p1"}]}}}


def test_reader_windows_cleaning_and_passes():
    parsed = read_ego4d_narrations(json.dumps(NARRATION_V1))
    by_id = {v.video_id: v.meta for v in parsed.videos}
    assert [(p.where, p.reason) for p in parsed.problems] == [("record 'e4d-narr-3'", "annotation_record_malformed")]
    first = by_id["e4d-narr-1"]["segments"]
    # pass 1 only; its text cleaned, the narration as written and its time on the item
    assert [s["text"] for s in first] == ["C picks up a knife.", "C cuts the onion.", "A man X talks to C.",
                                         "C puts down the knife.", "C has no time."]
    assert (first[0]["narration_text"], first[0]["time_s"], first[0]["annotation_uid"]) == (
        "#C C picks up a knife", 1.0, "p1")
    # EgoClip's window t ± β/2α: β the video's mean gap (6.9/3 = 2.3 s here, 6 s for video 2), α their mean
    beta1, beta2 = 6.9 / 3, 6.0
    half1 = beta1 / (2 * (beta1 + beta2) / 2)
    assert first[1]["start_s"] == pytest.approx(3.0 - half1) and first[1]["end_s"] == pytest.approx(3.0 + half1)
    assert first[4]["start_s"] is None                                  # no time: the annotations stage rejects it
    second = by_id["e4d-narr-2"]["segments"]
    assert [s["text"] for s in second] == ["C opens a door.", "C walks out."]
    assert second[0]["end_s"] - second[0]["start_s"] == pytest.approx(beta2 / ((beta1 + beta2) / 2))
    assert by_id["e4d-narr-1"]["summaries"] == [{"start_s": 0.0, "end_s": 8.0, "text": "#Summary C cooked in a kitchen"}]
    assert parsed.videos[0].folders[:2] == ("", "full_scale")
    # v2: the first annotator's narrations; one video alone gets 1-s windows (β/α = 1)
    v2 = read_ego4d_narrations(json.dumps(NARRATION_V2)).videos[0].meta["segments"]
    assert [(s["start_s"], s["end_s"], s["text"]) for s in v2] == [(0.5, 1.5, "C picks up a knife."),
                                                                  (2.5, 3.5, "C cuts the onion.")]
    with pytest.raises(FormatError, match="Ego4D narration files hold"):
        read_ego4d_narrations(json.dumps({"database": {"x": {"annotations": []}}}))


def test_narrations_build_into_annotations_and_a_streaming_dialogue(tmp_path, in_process):
    videos = tmp_path / "ego4d" / "v2" / "full_scale"
    for uid, source in (("e4d-narr-1", "smptebars"), ("e4d-narr-2", "rgbtestsrc")):
        videos.mkdir(parents=True, exist_ok=True)
        render_segments(str(videos / f"{uid}.mp4"), [Segment(source, 8.0)], size=(160, 96))
    (tmp_path / "narration.json").write_text(json.dumps(NARRATION_V1))
    cfg = parse_config({
        "input": [{"manifest": str(tmp_path / "narration.json"), "format": "ego4d_narrations",
                   "videos": str(tmp_path / "ego4d")}],
        "output": {"dir": str(tmp_path / "out"), "exports": [{"format": "livechat"}, {"format": "llava_dialogue"}]},
        "stages": [{"probe": {}}, {"annotations": {"require": ["segments"]}}, {"shots": {}},
                   {"generate": {"scope": "video", "tasks": {"streaming_dialogue": {
                       "per_clip": 1, "sources": ["segments"], "min_turns": 2, "respond_at": "start"}}}}]})
    result = vdata.build(cfg, progress=False)
    assert result.rejects_by_reason == {"ingest:annotation_record_malformed": 1, "annotations:segment_malformed": 1}
    rows = pads.dataset(result.data_dir, format="parquet").to_table().to_pylist()
    by_id = {json.loads(r[R.SOURCE_META])["dataset_video_id"]: r for r in rows}
    segments = by_id["e4d-narr-1"][R.ANNOTATIONS]["segments"]
    # the last narration's window, past the 8-s video, ends with it
    assert segments[-1]["text"] == "C puts down the knife." and segments[-1]["end_s"] == pytest.approx(
        by_id["e4d-narr-1"][R.DURATION_S])
    turns = by_id["e4d-narr-1"][R.TURNS]
    replies = [t for t in turns if t["role"] == "assistant"]
    assert [t["content"] for t in replies] == ["C picks up a knife.", "C cuts the onion.", "A man X talks to C.",
                                               "C puts down the knife."]
    assert [t["time_s"] for t in replies] == sorted(t["time_s"] for t in replies)
    # the exports name each video as Ego4D does (its video_uid), not by its content id
    chat = json.loads((Path(result.output_dir) / "exports" / "livechat" / "vdata_livechat.json").read_text())
    assert sorted(r["video_uid"] for r in chat) == ["e4d-narr-1", "e4d-narr-2"]
    assert all(r["video"].endswith(f"videos/{r['video_uid']}.mp4") for r in chat)
    llava_dir = Path(result.output_dir) / "exports" / "llava_dialogue"
    assert sorted(p.name for p in (llava_dir / "videos").iterdir()) == ["e4d-narr-1.mp4", "e4d-narr-2.mp4"]
    # every record's video id follows the name (lmms-eval's videoID is the visual's video_id)
    from vdata.exporters.media import MediaPlanner
    from vdata.exporters.source import Item

    row = by_id["e4d-narr-2"]
    planner = MediaPlanner(str(tmp_path / "dest"), names={row[R.VIDEO_ID]: "e4d-narr-2"})
    visual = planner.visual(Item({**row, R.SAMPLE_SCOPE: R.SCOPE_VIDEO}, "open_qa"))
    assert (visual.video_id, visual.rel) == ("e4d-narr-2", "videos/e4d-narr-2.mp4")


# goalstep_valid.json: a goal over the video, its steps, a step's substeps, all on the full video's clock
GOALSTEP_VALID = {"version": "1.0", "split": "val", "videos": [
    {"video_uid": "e4d-goal-1", "start_time": 0.02, "end_time": 7.9, "goal_category": "COOKING:MAKE_OMELET",
     "goal_description": "Make omelette", "goal_wikihow_url": "https://www.wikihow.com/Cook-a-Basic-Omelette",
     "summary": ["Toasting bread", "Making omelet"], "is_procedural": True, "segments": [
        {"start_time": 0.5, "end_time": 4.0, "step_category": "Cook: Toast bread", "step_description": "Toast bread",
         "is_continued": False, "is_procedural": True, "is_relevant": "essential", "summary": [], "segments": [
            {"start_time": 0.5, "end_time": 2.0, "step_category": "Cook: heat", "step_description": "heat skillet",
             "is_relevant": "essential"},
            {"start_time": 2.0, "end_time": 2.0, "step_description": "ends where it starts"}]},
        {"start_time": 4.2, "end_time": 7.5, "step_category": "Cook: omelet", "step_description": "Make omelet\n-",
         "is_relevant": "optional", "segments": []}]},
    {"start_time": 0, "segments": []}]}
# goalstep_test.json: the steps to ground, without their times
GOALSTEP_TEST = {"version": "1.0", "split": "test", "videos": [
    {"video_uid": "e4d-goal-2", "step_segments": [{"step_description": "slice broccoli", "segment_count": 1},
                                                  {"step_description": "stir pasta", "segment_count": 3}]}]}


def test_goalstep_steps_and_substeps_become_segments_on_the_full_video(tmp_path, in_process):
    videos = tmp_path / "ego4d" / "v2" / "full_scale"
    videos.mkdir(parents=True)
    for uid, source in (("e4d-goal-1", "smptebars"), ("e4d-goal-2", "rgbtestsrc")):
        render_segments(str(videos / f"{uid}.mp4"), [Segment(source, 8.0)], size=(160, 96))
    (tmp_path / "goalstep_valid.json").write_text(json.dumps(GOALSTEP_VALID))
    (tmp_path / "goalstep_test.json").write_text(json.dumps(GOALSTEP_TEST))
    cfg = parse_config({
        "input": [{"manifest": str(tmp_path / name), "format": "ego4d_goalstep", "videos": str(tmp_path / "ego4d")}
                  for name in ("goalstep_valid.json", "goalstep_test.json")],
        "output": {"dir": str(tmp_path / "out")},
        "stages": [{"probe": {}}, {"annotations": {}}]})
    result = vdata.build(cfg, progress=False)
    assert result.rejects_by_reason == {"ingest:annotation_record_malformed": 1, "annotations:segment_inverted": 1}
    dataset = pads.dataset(result.data_dir, format="parquet")
    rows = dataset.to_table(columns=[*dataset.schema.names, "__filename"]).to_pylist()
    by_id = {json.loads(r[R.SOURCE_META])["dataset_video_id"]: r for r in rows}
    goal = by_id["e4d-goal-1"]
    assert [(s["start_s"], s["end_s"], s["text"]) for s in goal[R.ANNOTATIONS]["segments"]] == [
        (0.5, 2.0, "heat skillet"), (0.5, 4.0, "Toast bread"), (4.2, 7.5, "Make omelet -")]
    assert goal[R.ANNOTATIONS]["labels"] == ["COOKING:MAKE_OMELET"]
    meta = json.loads(goal[R.SOURCE_META])
    assert (meta["goal_description"], meta["goal_start_s"], meta["goal_end_s"]) == ("Make omelette", 0.02, 7.9)
    assert [(s["level"], s.get("is_relevant")) for s in meta["segments"]] == [
        ("step", "essential"), ("substep", "essential"), ("substep", None), ("step", "optional")]
    test_video = by_id["e4d-goal-2"]
    assert test_video[R.ANNOTATIONS]["segments"] == []
    assert [q["text"] for q in json.loads(test_video[R.SOURCE_META])["step_queries"]] == ["slice broccoli", "stir pasta"]
    split_of = {v: r["__filename"].rpartition("-")[2].removesuffix(".parquet") for v, r in by_id.items()}
    assert split_of == {"e4d-goal-1": "validation", "e4d-goal-2": "test"}
