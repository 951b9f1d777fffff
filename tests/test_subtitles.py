"""Subtitle cues that show nothing: each is a problem with its reason (`subtitle_empty_text`), as every
other bad cue is, so the annotations stage rejects and counts it instead of losing it silently."""
from __future__ import annotations

import json
import shutil

import datasets

import vdata
from vdata.media.subtitles import parse_subtitles
from vdata.schemas import records as R
from vdata.stages.annotations import AnnotationsStage
from vdata.stages.probe import ProbeStage

# A subtitle editor's export (CRLF): a cue with a timing line and no text, one with only italics tags, one
# with only a non-breaking space, and one whose text comes after a blank line under its timing line.
EMPTY_CUES_SRT = (
    "1\r\n00:00:01,000 --> 00:00:02,000\r\nHello there.\r\n\r\n"
    "2\r\n00:00:03,000 --> 00:00:04,000\r\n\r\n"
    "3\r\n00:00:05,000 --> 00:00:06,000\r\n<i></i>\r\n\r\n"
    "4\r\n00:00:07,000 --> 00:00:08,000\r\n&nbsp;\r\n\r\n"
    "5\r\n00:00:09,000 --> 00:00:10,000\r\n\r\nAfter a blank line.\r\n\r\n"
    "6\r\n00:00:11,000 --> 00:00:12,000\r\nTwo lines,\r\n<i>both shown.</i>\r\n")


def test_an_srt_cue_that_shows_nothing_is_a_problem():
    parsed = parse_subtitles(EMPTY_CUES_SRT)
    assert [(c.start_s, c.text) for c in parsed.items] == [
        (1.0, "Hello there."), (9.0, "After a blank line."), (11.0, "Two lines, both shown.")]
    assert [p.reason for p in parsed.problems] == ["subtitle_empty_text"] * 3
    assert [p.raw.split("\n")[0] for p in parsed.problems] == ["2", "3", "4"]      # each names its cue
    assert "(3-4 s) has no text" in parsed.problems[0].message and "<i></i>" in parsed.problems[1].raw
    # the last cue of a file, with nothing after its timing line
    last = parse_subtitles("1\n00:00:01,000 --> 00:00:02,000\nHi\n\n2\n00:00:03,000 --> 00:00:04,000\n")
    assert [c.text for c in last.items] == ["Hi"] and [p.reason for p in last.problems] == ["subtitle_empty_text"]


def test_a_webvtt_cue_that_shows_nothing_is_a_problem_and_lines_of_spaces_inside_a_cue_are_not():
    vtt = ("WEBVTT\n\n00:01.000 --> 00:02.000\nHello\n\n"
           "empty\n00:03.000 --> 00:04.000\n\n"
           "NOTE a comment is not the text of the cue before\n\n"
           "00:05.000 --> 00:06.000\nFirst line\n \nsecond line\n\n"
           "00:07.000 --> 00:08.000 align:start position:0%\n \n \n\n"
           "00:09.000 --> 00:10.000\n<c.yellow></c>\n")
    parsed = parse_subtitles(vtt)
    assert [(c.start_s, c.text) for c in parsed.items] == [(1.0, "Hello"), (5.0, "First line second line")]
    assert [p.reason for p in parsed.problems] == ["subtitle_empty_text"] * 3
    assert ["00:03.000" in parsed.problems[0].raw, "00:07.000" in parsed.problems[1].raw,
            "00:09.000" in parsed.problems[2].raw] == [True] * 3


def test_the_annotations_stage_rejects_and_counts_an_empty_cue(tmp_path, cut_video):
    video = tmp_path / "talk.mp4"
    shutil.copy(cut_video[0], video)
    (tmp_path / "talk.srt").write_bytes(EMPTY_CUES_SRT.encode("utf-8"))
    rows = [{R.SOURCE_URI: str(video), R.PATH: str(video), R.SOURCE_META: None}]
    probed, probe_rejects = vdata.run_stage(ProbeStage(), datasets.Dataset.from_list(rows))
    assert len(probe_rejects) == 0
    kept, rejects = vdata.run_stage(AnnotationsStage(), probed)
    assert [c["text"] for c in kept[0][R.ANNOTATIONS]["subtitles"]] == [
        "Hello there.", "After a blank line.", "Two lines, both shown."]
    assert list(rejects["reason"]) == ["subtitle_empty_text"] * 3
    assert kept[0][R.ANNOTATION_ISSUES] == 3
    assert json.loads(rejects[0]["detail"])["kind"] == "subtitles"
