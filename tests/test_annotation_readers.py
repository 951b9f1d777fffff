"""Labelled temporal datasets as direct inputs: ActivityNet Captions, Charades-STA, QVHighlights, YouCook2,
VidChapters-7M, ActivityNet v1.3, COIN, DiDeMo, Kinetics, Ego4D NLQ and HowTo100M annotation files, written here in each release's documented layout (see the sources in
vdata/schemas/annotation_formats/), read by `input: [{manifest, format, videos}]` with real ffmpeg-made
videos named by id, through a real `vdata build` (probe -> annotations)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.dataset as pads
import pytest

import vdata
from vdata.media.synth import Segment, render_segments
from vdata.pipelines.ingest import discover, find_duplicates
from vdata.pipelines.planning import preflight
from vdata.schemas import records as R
from vdata.schemas.annotation_formats import (ANNOTATION_FORMATS, FORMAT_KINDS, read_activitynet_captions, read_vidchapters,
                                              read_youcook2)
from vdata.schemas.config import SplitsConfig, parse_config

# --- the files, in the layouts the releases document ----------------------------------------------------

ACTIVITYNET = {   # train.json: id -> duration, parallel timestamps / sentences
    "v_act001": {"duration": 8.0, "timestamps": [[0.5, 3.0], [2.0, 7.5], [6.0, 4.0]],
                 "sentences": ["A man walks in.", "He lifts a box.", "Ends before it starts."]},
    "v_gone": {"duration": 8.0, "timestamps": [[0.0, 5.0]], "sentences": ["No video was downloaded."]},
}
CHARADES_STA = (   # charades_sta_train.txt: "[video name] [start time] [end time]##[sentence]"
    "CH01 0.0 2.5##person opens a door.\n"
    "CH01 3.1 6.0##person sits down on a chair.\n"
    "CH01 4.0##person turns off the light.\n"      # one time only
)
QVHIGHLIGHTS = [   # highlight_train_release.jsonl: one query per line
    {"qid": 1, "query": "Squares scroll past.", "duration": 8, "vid": "qvAbc_60.0_68.0",
     "relevant_windows": [[0, 2], [4, 6]], "relevant_clip_ids": [0, 2], "saliency_scores": [[4, 2, 3], [1, 1, 0]]},
    {"qid": 2, "query": "The bars hold still.", "duration": 8, "vid": "qvAbc_60.0_68.0",
     "relevant_windows": [[2, 4]], "relevant_clip_ids": [1], "saliency_scores": [[3, 3, 3]]},
]
YOUCOOK2 = {"database": {   # youcookii_annotations_trainval.json
    "yc01": {"duration": 8.0, "subset": "training", "recipe_type": "113",
             "video_url": "https://www.youtube.com/watch?v=yc01",
             "annotations": [{"segment": [0, 3], "id": 0, "sentence": "crack two eggs into a bowl"},
                             {"segment": [3, 7], "id": 1, "sentence": "whisk the eggs"},
                             {"segment": [7, 8], "id": 2, "sentence": "  "}]},
}}
VIDCHAPTERS = {   # the chapter file: id -> duration, [{label, time}]
    "vc01": {"duration": 8.0, "chapters": [{"label": "Intro", "time": 0}, {"label": "The main part", "time": 3.5},
                                           {"label": "Outro", "time": 95.0}]},
}

ACTIVITYNET_13 = {"version": "VERSION 1.3", "taxonomy": [], "database": {   # activity_net.v1-3.min.json
    "AN13abcdefg": {"duration": 8.0, "subset": "training", "resolution": "160x96",
                    "url": "https://www.youtube.com/watch?v=AN13abcdefg",
                    "annotations": [{"segment": [0.5, 4.0], "label": "Sharpening knives"},
                                    {"segment": [5.0, 7.9], "label": "Sharpening knives"}]},
}}
COIN = {"database": {   # COIN.json: ActivityNet-like, the steps under "annotation", the task under "class"
    "LtRSn-ntcLY": {"duration": 8.0, "class": "ReplaceCDDriveWithSSD", "recipe_type": 131, "subset": "training",
                    "video_url": "https://www.youtube.com/embed/LtRSn-ntcLY", "start": 0.5, "end": 7.0,
                    "annotation": [{"id": "212", "segment": [1.0, 3.0], "label": "take out the laptop CD drive"},
                                   {"id": "216", "segment": [4.0, 6.0], "label": "insert the hard disk tray"},
                                   {"id": "217", "segment": [60.0, 69.0], "label": "long after the video"}]},
}}
DIDEMO_VIDEO = "26292851@N04_4253489686_265c3c8051.m4v"
DIDEMO = [   # train_data.json: one description per record, each annotator's [first, last] 5-s chunk
    {"video": DIDEMO_VIDEO, "times": [[0, 0], [0, 0], [1, 1], [0, 0]], "description": "the first chunk",
     "annotation_id": 1, "num_segments": 2, "dl_link": "https://www.flickr.com/video_download.gne?id=4253489686"},
    {"video": DIDEMO_VIDEO, "times": [[1, 1], [0, 1], [1, 1]], "description": "the last chunk, cut short",
     "annotation_id": 2, "num_segments": 2},
    {"video": DIDEMO_VIDEO, "times": [[2, 2]], "description": "a chunk the video does not have", "annotation_id": 3},
    {"video": "99@N00_1_ab.mov", "times": [[0, 1]], "description": "found as the user's mp4", "annotation_id": 4},
    {"description": "no video named", "times": [[0, 0]]},
]

KINETICS = (   # kinetics700_2020 train.csv / test.csv: a header, one trimmed 10-s clip per row (test rows unlabelled)
    "label,youtube_id,time_start,time_end,split\n"
    '"air drumming",--07WQ2iBlw,1,11,train\n'            # the downloader's <label>/<id>_<s>_<e>.mp4
    "abseiling,0aAmlgB7eVs,30,40,train\n"               # the CVDF archive's train/<id>_<s>_<e>.mp4
    ",zzTestClip1,5,15,test\n"                           # no label: test/<id>_<s>_<e>.mp4
    "abseiling,badTimeRow1,start,40,train\n"
)
EGO4D_NLQ = {"version": "1", "videos": [   # nlq_train.json: queries timed on the full video (video_*_sec)
    {"video_uid": "e4d-0001", "split": "train", "clips": [
        {"clip_uid": "clip-a", "video_start_sec": 0.0, "video_end_sec": 8.0, "annotations": [
            {"annotation_uid": "ann-1", "language_queries": [
                {"clip_start_sec": 1.0, "clip_end_sec": 3.0, "video_start_sec": 1.0, "video_end_sec": 3.0,
                 "query": "Where did I put the cup?", "template": "Objects: Where is object X before / after event Y?"},
                {"video_start_sec": 5.0, "video_end_sec": 7.5, "query": "", "slot_x": "cup"}]}]}]},
    {"clips": []},
    {"video_uid": "e4d-0002", "split": "val", "clips": [   # only its clips downloaded (`--datasets clips`)
        {"clip_uid": "clip-b", "video_start_sec": 100.0, "video_end_sec": 108.0, "annotations": [
            {"annotation_uid": "ann-2", "language_queries": [
                {"clip_start_sec": 2.0, "clip_end_sec": 4.0, "video_start_sec": 102.0, "video_end_sec": 104.0,
                 "query": "Who did I talk to?", "template": "People: Who did I talk to in location X?"}]}]},
        {"clip_uid": "clip-c", "video_start_sec": 200.0, "video_end_sec": 208.0, "annotations": []}]},
]}

HOWTO100M = {   # caption.json: YouTube's automatic caption lines, parallel lists; each line overlaps the next
    "ht01": {"start": [0.2, 2.0, 4.5], "end": [4.5, 6.0, 7.8], "text": ["so today we are", "going to make", "a cake"]},
}


def _video(path: Path, source: str) -> None:
    """An 8 s H.264 mp4 saved under `path` (whatever its extension: probe reads the content, not the name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rendered = path.with_name(path.stem + ".render.mp4")
    render_segments(str(rendered), [Segment(source, 8.0)], size=(160, 96))
    rendered.rename(path)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    """The annotation files under ann/, the videos under clips/ named by id, as each dataset names them."""
    root = tmp_path_factory.mktemp("labelled")
    ann, clips = root / "ann", root / "clips"
    ann.mkdir()
    _video(clips / "act001.mp4", "testsrc2")              # a mirror that dropped ActivityNet's "v_"
    _video(clips / "CH01.mp4", "smptebars")
    _video(clips / "qvAbc_60.0_68.0.mp4", "mandelbrot")
    _video(clips / "training" / "113" / "yc01.mkv", "rgbtestsrc")   # the YouCook2 downloader's layout
    _video(clips / "vc01.webm", "testsrc")
    _video(clips / "v1-3" / "train_val" / "v_AN13abcdefg.mp4", "smptehdbars")   # the official archives' layout
    (clips / "loop").symlink_to(clips, target_is_directory=True)     # a link back up: listed once
    (clips / ".Trash").mkdir()
    (clips / ".Trash" / "v_gone.mp4").write_bytes(b"deleted")         # hidden folders are not looked in
    _video(clips / "131" / "LtRSn-ntcLY.mp4", "yuvtestsrc")         # COIN's downloader: <recipe_type>/<id>.mp4
    _video(clips / DIDEMO_VIDEO, "pal75bars")                     # DiDeMo's downloader keeps Flickr's name
    _video(clips / "99@N00_1_ab.mp4", "cellauto")                # ... or the user converted it to mp4
    _video(clips / "air drumming" / "--07WQ2iBlw_000001_000011.mp4", "sierpinski")
    _video(clips / "train" / "0aAmlgB7eVs_000030_000040.mp4", "life")
    _video(clips / "test" / "zzTestClip1_000005_000015.mp4", "gradients")
    _video(clips / "v2" / "full_scale" / "e4d-0001.mp4", "zoneplate")    # the Ego4D CLI's layout
    _video(clips / "v2" / "clips" / "clip-b.mp4", "color=c=0x4040c0")   # e4d-0002: only clip-b downloaded
    _video(clips / "ht01.webm", "color=c=0x803020")
    (ann / "caption.json").write_text(json.dumps(HOWTO100M))
    (ann / "kinetics700_train.csv").write_text(KINETICS)
    (ann / "nlq_train.json").write_text(json.dumps(EGO4D_NLQ))
    (ann / "activity_net.v1-3.min.json").write_text(json.dumps(ACTIVITYNET_13))
    (ann / "COIN.json").write_text(json.dumps(COIN))
    (ann / "train_data.json").write_text(json.dumps(DIDEMO))
    (ann / "train.json").write_text(json.dumps(ACTIVITYNET))
    (ann / "charades_sta_train.txt").write_text(CHARADES_STA + "this line is not a record\n")
    lines = [json.dumps(q) for q in QVHIGHLIGHTS] + ['{"qid": 3, "query": "broken', json.dumps({"qid": 4, "query": "no vid"})]
    (ann / "highlight_train_release.jsonl").write_text("\n".join(lines) + "\n")
    (ann / "youcookii_annotations_trainval.json").write_text(json.dumps(YOUCOOK2))
    (ann / "chapters.json").write_text(json.dumps(VIDCHAPTERS))
    return root


INPUTS = [("train.json", "activitynet_captions"), ("charades_sta_train.txt", "charades_sta"),
          ("highlight_train_release.jsonl", "qvhighlights"), ("youcookii_annotations_trainval.json", "youcook2"),
          ("chapters.json", "vidchapters"), ("activity_net.v1-3.min.json", "activitynet"), ("COIN.json", "coin"),
          ("train_data.json", "didemo"), ("kinetics700_train.csv", "kinetics"), ("nlq_train.json", "ego4d_nlq"),
          ("caption.json", "howto100m")]
KINETICS_CLIPS = {"--07WQ2iBlw_000001_000011", "0aAmlgB7eVs_000030_000040", "zzTestClip1_000005_000015"}


def _config(root: Path, out: Path, stages: list | None = None, inputs=INPUTS, splits: dict | None = None):
    splits = splits or {}
    return parse_config({
        "input": [{"manifest": str(root / "ann" / name), "format": fmt, "videos": str(root / "clips"),
                   **({"split": splits[name]} if name in splits else {})} for name, fmt in inputs],
        "output": {"dir": str(out)}, "stages": stages or [{"probe": {}}]})


# --- readers and ingest, no Ray -------------------------------------------------------------------------

def test_ingest_finds_each_video_by_id_and_keeps_the_records(dataset_dir, tmp_path):
    rows = discover(_config(dataset_dir, tmp_path / "o"), media_dir=str(tmp_path / "media"))
    kept, judged = find_duplicates(rows)
    by_id = {json.loads(r[R.SOURCE_META])["dataset_video_id"]: r for r in kept}
    assert set(by_id) == {"v_act001", "CH01", "qvAbc_60.0_68.0", "yc01", "vc01", "AN13abcdefg",
                          "LtRSn-ntcLY", DIDEMO_VIDEO, "99@N00_1_ab.mov", "e4d-0001", "ht01", "clip-b", *KINETICS_CLIPS}
    clips = dataset_dir / "clips"
    assert by_id["clip-b"][R.PATH] == str(clips / "v2" / "clips" / "clip-b.mp4")
    assert by_id["--07WQ2iBlw_000001_000011"][R.PATH] == str(clips / "air drumming" / "--07WQ2iBlw_000001_000011.mp4")
    assert by_id["0aAmlgB7eVs_000030_000040"][R.PATH] == str(clips / "train" / "0aAmlgB7eVs_000030_000040.mp4")
    assert by_id["zzTestClip1_000005_000015"][R.PATH] == str(clips / "test" / "zzTestClip1_000005_000015.mp4")
    assert by_id["e4d-0001"][R.PATH] == str(clips / "v2" / "full_scale" / "e4d-0001.mp4")
    assert by_id["AN13abcdefg"][R.PATH] == str(clips / "v1-3" / "train_val" / "v_AN13abcdefg.mp4")
    assert by_id["LtRSn-ntcLY"][R.PATH] == str(clips / "131" / "LtRSn-ntcLY.mp4")
    assert by_id[DIDEMO_VIDEO][R.PATH] == str(clips / DIDEMO_VIDEO)
    assert by_id["99@N00_1_ab.mov"][R.PATH] == str(clips / "99@N00_1_ab.mp4")
    assert by_id["v_act001"][R.PATH] == str(clips / "act001.mp4")
    assert by_id["yc01"][R.PATH] == str(clips / "training" / "113" / "yc01.mkv")
    assert by_id["vc01"][R.PATH] == str(clips / "vc01.webm")
    # a video not in `videos` is a reject before any worker runs, naming what was looked for; retried next run
    gone, = [j for j in judged if j.reason == "missing_file" and j.row[R.SOURCE_URI].endswith("#v_gone")]
    assert gone.row[R.PATH] == str(clips / "v_gone.*") and "v_gone.*" in gone.message
    assert gone.detail[R.RETRY_ON_RESUME] is True
    assert by_id["CH01"][R.SOURCE_URI].endswith("charades_sta_train.txt#CH01")
    # each format's rows carry the annotation kinds FORMAT_KINDS says (what `vdata new` tells a recipe's user)
    assert set(FORMAT_KINDS) == set(ANNOTATION_FORMATS)
    for fmt, kinds in ((f, FORMAT_KINDS[f]) for _, f in INPUTS):      # the web-clip formats: test_web_clips.py
        metas = [json.loads(r[R.SOURCE_META]) for r in kept if json.loads(r[R.SOURCE_META])["dataset"] == fmt]
        assert metas and all(set(kinds) <= set(m) for m in metas), fmt
    # records tied to no video are rejects at ingest, with their reason and the record
    assert sorted((j.reason, j.row[R.SOURCE_URI].rpartition("#")[2]) for j in judged) == [
        ("annotation_line_unparsable", "line 3"), ("annotation_line_unparsable", "line 4"),
        ("annotation_record_malformed", "line 4"), ("annotation_record_malformed", "line 5"),
        ("annotation_record_malformed", "record 4"), ("annotation_record_malformed", "video 1"),
        ("missing_file", "clip-c"), ("missing_file", "v_gone")]
    assert {j.detail["record"] for j in judged if j.reason == "annotation_line_unparsable"} == {
        "this line is not a record", '{"qid": 3, "query": "broken'}
    # without `videos`, the videos are looked for next to the annotation file
    ann = dataset_dir / "ann"
    alone = parse_config({"input": [{"manifest": str(ann / "chapters.json"), "format": "vidchapters"}],
                          "output": {"dir": str(tmp_path / "o2")}, "stages": [{"probe": {}}]})
    assert [r[R.PATH] for r in discover(alone, media_dir=str(tmp_path / "media"))] == [str(ann / "vc01.*")]


def test_reader_details_unequal_lists_dvc_chapters_and_youcook_steps():
    # ActivityNet: a sentence without its timestamp is kept as an item without times (then rejected)
    anet = read_activitynet_captions(json.dumps({"v_x": {"timestamps": [[1, 2]], "sentences": ["a", "b"]}}))
    assert anet.videos[0].meta["segments"] == [{"start_s": 1.0, "end_s": 2.0, "text": "a"},
                                               {"start_s": None, "end_s": None, "text": "b"}]
    assert anet.videos[0].stems == ("v_x", "x")
    # VidChapters' processed chapters_dvc_<split>.json: ActivityNet-shaped, the sentences are chapter titles
    dvc = read_vidchapters(json.dumps({"abc": {"duration": 60.0, "timestamps": [[0.0, 20.0], [20.0, 60.0]],
                                               "sentences": ["Intro", "Build"], "path": "abc.mp4.npy"}}))
    assert dvc.videos[0].meta == {"chapters": [{"start_s": 0.0, "end_s": 20.0, "title": "Intro"},
                                               {"start_s": 20.0, "end_s": 60.0, "title": "Build"}],
                                  "annotated_duration_s": 60.0}
    steps = read_youcook2(json.dumps(YOUCOOK2)).videos[0]
    assert steps.folders == ("", "training/113", "113") and steps.meta["recipe_type"] == "113"
    assert steps.meta["segments"][1] == {"start_s": 3.0, "end_s": 7.0, "text": "whisk the eggs", "id": 1}


def test_a_video_is_found_whatever_the_case_of_its_extension(tmp_path):
    """A camera's `.MP4` and a `.Mkv` are found by id; where `v.mp4` and `v.MP4` both exist, the lower-case one."""
    from vdata.schemas.annotation_formats import VideoRecord, find_video, video_files

    for rel in ("a.MP4", "x/b.mp4", "b.MP4", "y/c.Mkv", "d.mov.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"0")
    files = video_files(str(tmp_path))
    found = {v: find_video(str(tmp_path), VideoRecord(v, {}), [".mp4", ".mkv", ".mov"], files) for v in "abcd"}
    assert found == {"a": str(tmp_path / "a.MP4"), "b": str(tmp_path / "x" / "b.mp4"), "c": str(tmp_path / "y" / "c.Mkv"),
                     "d": None}


def test_a_source_named_split_is_read_by_its_spellings():
    splits = SplitsConfig()
    assert splits.named_split('{"subset": "training"}') == "train"
    assert splits.named_split('{"subset": " Validation "}') == "validation"
    assert splits.named_split('{"split": "holdout", "subset": "testing"}') == "test"   # the first key that names one
    assert splits.named_split('{"subset": "val"}') == "validation" and splits.named_split('{"split": "dev"}') == "validation"
    for meta in (None, "", "not json", "[1, 2]", '{"subset": 3}', '{"other": "test"}'):
        assert splits.named_split(meta) is None                # these go by the hash shares
    assert SplitsConfig(from_source=[]).named_split('{"subset": "test"}') is None
    assert SplitsConfig(from_source=["fold"]).named_split('{"fold": "TEST", "subset": "train"}') == "test"
    assert SplitsConfig(from_source="fold").from_source == ["fold"] and SplitsConfig(from_source=None).from_source == []


def test_config_errors_name_the_key(dataset_dir, tmp_path):
    def config(spec: dict):
        return parse_config({"input": [spec], "output": {"dir": str(tmp_path / "o")}, "stages": [{"probe": {}}]})

    manifest = str(dataset_dir / "ann" / "train.json")
    with pytest.raises(vdata.ConfigError, match=r"input\[0\]\.format: .*unknown annotation format 'anet'"):
        config({"manifest": manifest, "format": "anet"})
    with pytest.raises(vdata.ConfigError, match=r"input\[0\]: .*format: an annotation format is read from a manifest"):
        config({"path": str(dataset_dir), "format": "charades_sta"})
    with pytest.raises(vdata.ConfigError, match=r"input\[0\]: .*videos: only with format"):
        config({"manifest": manifest, "videos": str(dataset_dir)})
    # a file that is not the declared format at all, a videos folder that is not there: found before the run
    wrong = config({"manifest": manifest, "format": "youcook2", "videos": str(dataset_dir / "clips")})
    with pytest.raises(vdata.ConfigError, match=r"input\[0\]\.manifest: .*train.json' is not a youcook2 file"):
        preflight(wrong)
    # ActivityNet Captions declared as ActivityNet v1.3: the error says which format the file is
    captions = config({"manifest": manifest, "format": "activitynet", "videos": str(dataset_dir / "clips")})
    with pytest.raises(vdata.ConfigError, match=r"not a activitynet file: .*format: activitynet_captions"):
        preflight(captions)
    # videos that are not there: a note when some are missing, an error (before Ray) when all are
    notes: list[str] = []
    preflight(config({"manifest": manifest, "format": "activitynet_captions", "videos": str(dataset_dir / "clips")}), notes)
    assert notes == [f"input[0].videos: 1 of the 2 videos {manifest!r} names are not there; the build rejects them "
                     f"missing_file, and retries them when run again ({dataset_dir / 'clips' / 'v_gone.*'})"]
    (tmp_path / "empty").mkdir()
    elsewhere = config({"manifest": manifest, "format": "activitynet_captions", "videos": str(tmp_path / "empty")})
    with pytest.raises(vdata.ConfigError, match=r"input\[0\]\.videos: none of the 2 videos .* names is in .*empty "
                                                r"\(looked for .*v_act001\.\*, \.\.\.\); set input\[0\]\.allow_empty"):
        preflight(elsewhere)
    gone = config({"manifest": manifest, "format": "activitynet_captions", "videos": str(dataset_dir / "nowhere")})
    with pytest.raises(vdata.ConfigError, match=r"input\[0\]\.videos: .*nowhere' is not a folder"):
        preflight(gone)


# --- a real build ---------------------------------------------------------------------------------------

def test_build_reads_every_format_into_annotations(dataset_dir, tmp_path, ray_local):
    cfg = _config(dataset_dir, tmp_path / "out", [{"probe": {}}, {"annotations": {}}],
                  splits={"charades_sta_train.txt": "test"})     # as if it were charades_sta_test.txt
    result = vdata.build(cfg, progress=False)
    assert result.rejects_by_reason == {
        "ingest:annotation_line_unparsable": 2, "ingest:annotation_record_malformed": 4,
        "ingest:missing_file": 2,                                   # v_gone, and Ego4D's clip-c
        "annotations:segment_inverted": 1, "annotations:segment_malformed": 1,
        "annotations:segment_empty_text": 2, "annotations:chapter_past_end": 1,
        "annotations:segment_out_of_range": 2}                      # COIN's step at 60 s, DiDeMo's chunk 2
    rows = pads.dataset(result.data_dir, format="parquet").to_table(
        columns=[*pads.dataset(result.data_dir, format="parquet").schema.names, "__filename"]).to_pylist()
    by_id = {json.loads(r[R.SOURCE_META])["dataset_video_id"]: r for r in rows}
    # each video in the split its dataset names (subset: training / testing, Kinetics' split), or its input's
    split_of = {v: r["__filename"].rpartition("-")[2].removesuffix(".parquet") for v, r in by_id.items()}
    assert {v: split_of[v] for v in ("AN13abcdefg", "LtRSn-ntcLY", "yc01", "e4d-0001", "CH01", *KINETICS_CLIPS)} == {
        "AN13abcdefg": "train", "LtRSn-ntcLY": "train", "yc01": "train", "e4d-0001": "train", "CH01": "test",
        "--07WQ2iBlw_000001_000011": "train", "0aAmlgB7eVs_000030_000040": "train", "zzTestClip1_000005_000015": "test"}
    assert set(by_id) == {"v_act001", "CH01", "qvAbc_60.0_68.0", "yc01", "vc01", "AN13abcdefg", "LtRSn-ntcLY",
                          DIDEMO_VIDEO, "99@N00_1_ab.mov", "e4d-0001", "ht01", "clip-b", *KINETICS_CLIPS}
    for row in rows:
        assert row[R.DURATION_S] == pytest.approx(8.0, abs=0.05)

    def spans(video_id: str) -> list:
        return [(s["start_s"], s["end_s"], s["text"]) for s in by_id[video_id][R.ANNOTATIONS]["segments"]]

    assert spans("v_act001") == [(0.5, 3.0, "A man walks in."), (2.0, 7.5, "He lifts a box.")]
    assert spans("CH01") == [(0.0, 2.5, "person opens a door."), (3.1, 6.0, "person sits down on a chair.")]
    assert spans("qvAbc_60.0_68.0") == [(0.0, 2.0, "Squares scroll past."), (2.0, 4.0, "The bars hold still."),
                                         (4.0, 6.0, "Squares scroll past.")]
    assert spans("yc01") == [(0.0, 3.0, "crack two eggs into a bowl"), (3.0, 7.0, "whisk the eggs")]
    # ActivityNet v1.3 and COIN: each step / instance a segment, the activity or task the video's label
    assert spans("AN13abcdefg") == [(0.5, 4.0, "Sharpening knives"), (5.0, 7.9, "Sharpening knives")]
    assert by_id["AN13abcdefg"][R.ANNOTATIONS]["labels"] == ["Sharpening knives"]
    assert spans("LtRSn-ntcLY") == [(1.0, 3.0, "take out the laptop CD drive"), (4.0, 6.0, "insert the hard disk tray")]
    assert by_id["LtRSn-ntcLY"][R.ANNOTATIONS]["labels"] == ["ReplaceCDDriveWithSSD"]
    coin_meta = json.loads(by_id["LtRSn-ntcLY"][R.SOURCE_META])
    assert (coin_meta["task_start_s"], coin_meta["task_end_s"], coin_meta["recipe_type"]) == (0.5, 7.0, 131)
    # DiDeMo: the annotators' most common chunks; the last chunk of an 8 s video ends with the video
    didemo_end = by_id[DIDEMO_VIDEO][R.DURATION_S]
    assert spans(DIDEMO_VIDEO) == [(0.0, 5.0, "the first chunk"), (5.0, didemo_end, "the last chunk, cut short")]
    # Kinetics: the clip's class is its label (none for the test split); Ego4D NLQ: each query a segment
    assert [by_id[c][R.ANNOTATIONS]["labels"] for c in sorted(KINETICS_CLIPS)] == [["air drumming"], ["abseiling"], []]
    assert spans("e4d-0001") == [(1.0, 3.0, "Where did I put the cup?")]
    assert spans("clip-b") == [(2.0, 4.0, "Who did I talk to?")]                    # on the clip's clock
    assert json.loads(by_id["clip-b"][R.SOURCE_META])["video_uid"] == "e4d-0002" and split_of["clip-b"] == "validation"
    # HowTo100M: the rolling caption lines as subtitles, each ending where the next begins
    assert [(c["start_s"], c["end_s"], c["text"]) for c in by_id["ht01"][R.ANNOTATIONS]["subtitles"]] == [
        (0.2, 2.0, "so today we are"), (2.0, 4.5, "going to make"), (4.5, 7.8, "a cake")]
    assert spans("99@N00_1_ab.mov") == [(0.0, by_id["99@N00_1_ab.mov"][R.DURATION_S], "found as the user's mp4")]
    chapters = by_id["vc01"][R.ANNOTATIONS]["chapters"]
    assert [(c["start_s"], c["end_s"], c["title"]) for c in chapters] == [
        (0.0, 3.5, "Intro"), (3.5, by_id["vc01"][R.DURATION_S], "The main part")]
    # QVHighlights' saliency and clip ids stay in source_meta, query by query
    queries = json.loads(by_id["qvAbc_60.0_68.0"][R.SOURCE_META])["queries"]
    assert [(q["qid"], q["saliency_scores"]) for q in queries] == [(1, [[4, 2, 3], [1, 1, 0]]), (2, [[3, 3, 3]])]
    assert by_id["v_act001"][R.ANNOTATION_ISSUES] == 1 and by_id["CH01"][R.ANNOTATION_ISSUES] == 1

    rejects = pads.dataset(str(Path(result.output_dir) / "rejects"), format="parquet").to_table().to_pylist()
    by_reason = {r["reason"]: r for r in rejects}
    missing = sorted((r[R.SOURCE_URI].rpartition("/")[2], r["message"]) for r in rejects if r["reason"] == "missing_file")
    assert [uri for uri, _ in missing] == ["nlq_train.json#clip-c", "train.json#v_gone"]
    assert "v2/clips/clip-c.*" in missing[0][1] and "v_gone.*" in missing[1][1]
    assert json.loads(by_reason["segment_inverted"]["detail"])["item"]["text"] == "Ends before it starts."
    assert json.loads(by_reason["segment_malformed"]["detail"])["item"] == {
        "start_s": 4.0, "end_s": None, "text": "person turns off the light.", "line": 3}
    assert json.loads(by_reason["chapter_past_end"]["detail"])["item"]["title"] == "Outro"
    # a second run finds everything done, the ingest rejects included, but for the missing video, looked for again
    again = vdata.build(cfg, progress=False)
    manifest = json.loads(Path(again.manifest_path).read_text())
    assert (manifest["resumed_complete"], manifest["inputs"]) == (21, 23) and again.rows == result.rows
    assert again.rejects_by_reason == result.rejects_by_reason          # still missing: one reject, not two
    # ... and built once its download has arrived
    arrived = dataset_dir / "clips" / "v_gone.mp4"
    _video(arrived, "color=c=0x20a040")
    try:
        third = vdata.build(cfg, progress=False)
    finally:
        arrived.unlink()
    assert third.rows == result.rows + 1 and third.rejects_by_reason["ingest:missing_file"] == 1   # clip-c


def test_a_kinetics_clip_only_downloaded_whole_is_its_span_in_the_whole_video(tmp_path, in_process):
    clips = tmp_path / "clips"
    _video(clips / "abseiling" / "trimmedOne1_000010_000020.mp4", "smptebars")   # the downloader's trimmed clip
    _video(clips / "wholeVideo1.mp4", "rgbtestsrc")                                # yt-dlp's whole video
    (tmp_path / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                        "abseiling,trimmedOne1,10,20,train\n"
                                        '"air drumming",wholeVideo1,2,6,train\n'
                                        ",wholeTest01,1,3,test\n")
    cfg = parse_config({"input": [{"manifest": str(tmp_path / "train.csv"), "format": "kinetics", "videos": str(clips)}],
                        "output": {"dir": str(tmp_path / "out")},
                        "stages": [{"probe": {}}, {"annotations": {}}, {"shots": {}},
                                   {"generate": {"scope": "video", "tasks": {"label_mcq": {
                                       "num_options": 2, "vocabulary": ["abseiling", "air drumming", "juggling"]}}}}]})
    result = vdata.build(cfg, progress=False)
    assert result.rejects_by_reason == {"ingest:missing_file": 1}       # wholeTest01: neither downloaded
    rows = {json.loads(r[R.SOURCE_META])["dataset_video_id"]: r
            for r in pads.dataset(result.data_dir, format="parquet").to_table().to_pylist()}
    assert set(rows) == {"trimmedOne1_000010_000020", "wholeVideo1"}
    assert rows["trimmedOne1_000010_000020"][R.ANNOTATIONS]["segments"] == []
    assert [(s["start_s"], s["end_s"], s["text"]) for s in rows["wholeVideo1"][R.ANNOTATIONS]["segments"]] == [
        (2.0, 6.0, "air drumming")]
    assert rows["wholeVideo1"][R.ANNOTATIONS]["labels"] == ["air drumming"]
    # the label holds on the clip's span only: its MCQ shows that span (MVBench's bound task, start / end), where
    # the trimmed clip's covers its whole video
    whole, trimmed = rows["wholeVideo1"], rows["trimmedOne1_000010_000020"]
    assert (whole[R.START_S], whole[R.END_S], whole[R.SAMPLE_SCOPE]) == (2.0, 6.0, R.SCOPE_CLIP)
    assert whole[R.ANSWER] == "air drumming" and not whole[R.CLIP_ID].endswith(":video")
    assert (trimmed[R.START_S], trimmed[R.SAMPLE_SCOPE]) == (0.0, R.SCOPE_VIDEO)
    from vdata.exporters import export

    export(result.output_dir, str(tmp_path / "mvb"), "mvbench")
    (records,) = [json.loads(f.read_text()) for f in (tmp_path / "mvb" / "json").glob("*.json")]
    by_answer = {r["answer"]: r for r in records}
    # the span, a quarter frame inside at each end (exporters' Visual.loader_interval: MVBench rounds t * fps)
    assert (by_answer["air drumming"]["start"], by_answer["air drumming"]["end"]) == pytest.approx((2.0, 6.0), abs=0.011)
    assert by_answer["abseiling"]["start"] == 0.0 and by_answer["abseiling"]["end"] == pytest.approx(trimmed[R.DURATION_S], abs=0.05)
    assert all(entry[3] is True for entry in json.loads((tmp_path / "mvb" / "data_list.json").read_text()).values())


def test_a_video_id_given_twice_in_one_file_is_a_problem_not_a_silently_lost_record():
    """Outside check h24 F6: `json` keeps the last of two equal keys, so a video id given twice (two split files
    joined by hand) lost its first record without a word; it is now an annotation_record_duplicate problem
    (an ingest reject) and neither record is guessed right."""
    text = ('{"v_AAA": {"duration": 12.0, "timestamps": [[0, 3], [3, 6]], "sentences": ["a", "b"]},'
            ' "v_BBB": {"duration": 8.0, "timestamps": [[0, 2]], "sentences": ["c"]},'
            ' "v_AAA": {"duration": 12.0, "timestamps": [[9, 12]], "sentences": ["d"]}}')
    read = read_activitynet_captions(text)
    assert [v.video_id for v in read.videos] == ["v_BBB"]
    assert [(p.reason, p.where) for p in read.problems] == [("annotation_record_duplicate", "record 'v_AAA'")]
    assert "2 records" in read.problems[0].message
    chapters = read_vidchapters('{"x": {"chapters": [{"label": "A", "time": 0}]}, "x": {"chapters": []}}')
    assert chapters.videos == [] and chapters.problems[0].reason == "annotation_record_duplicate"


def test_every_kinetics_clip_of_one_untrimmed_video_keeps_its_label_and_span(tmp_path, in_process):
    """Outside check h24 F11: two clips (classes) of one YouTube video, downloaded whole once, gave one row with
    the first clip's label only, the second dropped without a trace; F15: a clip whose span is not in the video
    (a re-cut upload) had its label asked over the whole video. Now the whole video carries every clip, a bad
    span is a segment reject and its label a label_span_invalid reject; a repeated line is said once."""
    clips = tmp_path / "clips"
    _video(clips / "wholeVideo2.mp4", "rgbtestsrc")                                # 8 s
    (tmp_path / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                        "juggling,wholeVideo2,1,3,train\n"
                                        "swimming,wholeVideo2,5,7,train\n"
                                        "swimming,wholeVideo2,5,7,train\n"
                                        "abseiling,wholeVideo2,20,30,train\n")
    cfg = parse_config({"input": [{"manifest": str(tmp_path / "train.csv"), "format": "kinetics", "videos": str(clips)}],
                        "output": {"dir": str(tmp_path / "out")},
                        "stages": [{"probe": {}}, {"annotations": {}}, {"shots": {}},
                                   {"generate": {"scope": "video", "tasks": {"label_mcq": {
                                       "num_options": 2, "vocabulary": ["abseiling", "juggling", "swimming", "cooking", "typing"]}}}}]})
    result = vdata.build(cfg, progress=False)
    rows = pads.dataset(result.data_dir, format="parquet").to_table().to_pylist()
    assert {(r[R.ANSWER], r[R.START_S], r[R.END_S]) for r in rows} == {("juggling", 1.0, 3.0), ("swimming", 5.0, 7.0)}
    ann = rows[0][R.ANNOTATIONS]
    assert ann["labels"] == ["juggling", "swimming", "abseiling"]
    assert [(s["start_s"], s["text"]) for s in ann["segments"]] == [(1.0, "juggling"), (5.0, "swimming")]
    assert result.rejects_by_reason == {"ingest:annotation_record_duplicate": 1, "annotations:segment_out_of_range": 1,
                                        "generate:label_span_invalid": 1}


def test_a_clip_with_its_own_file_is_not_asked_again_in_its_whole_video_and_held_out_clips_hold_it_out(tmp_path, in_process):
    """h24 F11 follow-ups: a clip downloaded trimmed was also merged into its untrimmed video's row (asked twice),
    and the merged row took the first clip's split, so a `validate` clip trained."""
    clips = tmp_path / "clips"
    _video(clips / "wholeVideo3.mp4", "rgbtestsrc")
    _video(clips / "wholeVideo3_000001_000003.mp4", "smptebars")        # juggling's own trimmed file
    (tmp_path / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                        "juggling,wholeVideo3,1,3,train\n"
                                        "swimming,wholeVideo3,5,7,train\n"
                                        "cooking,wholeVideo3,6,8,validate\n")
    cfg = parse_config({"input": [{"manifest": str(tmp_path / "train.csv"), "format": "kinetics", "videos": str(clips)}],
                        "output": {"dir": str(tmp_path / "out"), "splits": {"validation": 0.0, "test": 0.0}},
                        "stages": [{"probe": {}}, {"annotations": {}}]})
    rows = discover(cfg, media_dir=str(tmp_path / "media"))
    metas = {json.loads(r[R.SOURCE_META])["dataset_video_id"]: json.loads(r[R.SOURCE_META]) for r in rows}
    assert set(metas) == {"wholeVideo3_000001_000003", "wholeVideo3"}
    whole = metas["wholeVideo3"]
    assert whole["labels"] == ["swimming", "cooking"] and whole["subset"] == "validate"
    assert [(s["start_s"], s["text"]) for s in whole["segments"]] == [(5.0, "swimming"), (6.0, "cooking")]
    result = vdata.build(cfg, progress=False)
    assert result.rejects_by_reason == {}
    names = {os.path.basename(f) for f in os.listdir(result.data_dir)}
    assert any(n.endswith("-validation.parquet") for n in names) and any(n.endswith("-train.parquet") for n in names)


def test_a_yt_dlp_download_is_exported_under_its_youtube_id(tmp_path, in_process):
    """Outside check h24 F17: "My Video [dQw4w9WgXcQ].mp4" (yt-dlp's default name) was exported as
    videos/<content hash>.mp4 and keyed so in the vidchapters release, whose loader finds features and subtitles
    by the key's last 11 characters, the YouTube id."""
    from vdata.exporters import export

    videos = tmp_path / "videos"
    _video(videos / "My Video [dQw4w9WgXcQ].mp4", "smptebars")
    cfg = parse_config({"input": [{"path": str(videos)}], "output": {"dir": str(tmp_path / "out")},
                        "stages": [{"probe": {}}, {"shots": {}}]})
    result = vdata.build(cfg, progress=False)
    export(result.output_dir, str(tmp_path / "pq"), "parquet", media="copy")
    assert [p.name for p in (tmp_path / "pq").rglob("*.mp4")] == ["dQw4w9WgXcQ.mp4"]
