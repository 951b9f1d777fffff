"""Annotation inputs: SRT / WebVTT / description-line parsers, the validation rules, and the `annotations`
stage on real ffmpeg-made videos, from a manifest's columns and from sidecar files, with every bad item a
reject row carrying its reason while the good items and the video go on."""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import vdata
from vdata.media.chapter_lines import parse_chapter_lines
from vdata.media.subtitles import parse_subtitles, parse_timestamp
from vdata.schemas import records as R
from vdata.schemas.annotations import validate_annotations
from vdata.schemas.config import parse_config
from vdata.stages.annotations import AnnotationsStage
from vdata.stages.probe import ProbeStage

# A talk's subtitles as a subtitle editor writes them: a numbered SRT with italics, a two-line cue, a cue
# that starts before the one before it ends (1.2 s, beyond the 0.5 s tolerance) and a cue whose timing
# line lost a digit.
TALK_SRT = """\
1
00:00:00,500 --> 00:00:02,800
Welcome back to the workshop.

2
00:00:03,000 --> 00:00:05,400
Today we <i>calibrate</i> the camera
before the first shot.

3
00:00:04,200 --> 00:00:06,000
[music]

4
00:00:06,500 --> 00:0:08,000
First, the white balance.

5
00:00:08,200 --> 00:00:09,900
Hold the grey card flat.
"""

# YouTube-style WebVTT: header with metadata, a NOTE block, cue identifiers, cue settings, inline karaoke
# timestamps and class spans, an HTML entity.
LECTURE_VTT = """\
WEBVTT
Kind: captions
Language: en

NOTE exported by the captioning tool

intro
00:00.000 --> 00:02.000 align:start position:0%
<c.colorE5E5E5>Fourier</c><00:00:00.800><c> series</c>, part one

00:02.000 --> 00:04.500
Sines &amp; cosines add up.

outro
00:04.500 --> 00:09.800
Next time: the transform.
"""

DESCRIPTION = """\
In this episode we take the bike out for a spin.

Chapters:
0:00 Intro
(0:03) Climbing the hill
0:06 - Descent
[0:9] Typo line
0:30 Bloopers

Follow the channel for more!"""


def test_parse_timestamp_accepts_youtube_forms_and_refuses_malformed():
    assert [parse_timestamp(t) for t in ("0:00", "12:30", "1:02:03", "00:59")] == [0.0, 750.0, 3723.0, 59.0]
    assert [parse_timestamp(t) for t in ("1:75", "0:9", "1:2:03")] == [None, None, None]


def test_srt_parser_keeps_good_cues_and_reports_the_garbled_one():
    parsed = parse_subtitles(TALK_SRT)
    assert parsed.format == "srt"
    assert [(c.start_s, c.end_s) for c in parsed.items] == [(0.5, 2.8), (3.0, 5.4), (4.2, 6.0), (8.2, 9.9)]
    # tags gone, the two lines joined
    assert parsed.items[1].text == "Today we calibrate the camera before the first shot."
    # the garbled cue is a problem, not silently glued onto the cue before it (as pysubs2 alone would)
    assert [p.reason for p in parsed.problems] == ["subtitle_garbled"]
    assert "00:0:08,000" in parsed.problems[0].raw and "block 4" in parsed.problems[0].message
    assert all("white balance" not in c.text for c in parsed.items)


def test_webvtt_parser_skips_header_notes_and_identifiers():
    parsed = parse_subtitles(LECTURE_VTT)
    assert parsed.format == "vtt" and parsed.problems == []
    assert [(c.start_s, c.end_s, c.text) for c in parsed.items] == [
        (0.0, 2.0, "Fourier series, part one"), (2.0, 4.5, "Sines & cosines add up."),
        (4.5, 9.8, "Next time: the transform.")]


# YouTube's automatic captions as yt-dlp writes them (--write-auto-subs): each cue repeats the line before
# and adds one whose words carry karaoke timestamps, a 10-ms cue repeats the finished line, and lines of
# one space (or an empty line after the timing) stand inside cues.
YOUTUBE_AUTO_VTT = (
    "WEBVTT\nKind: captions\nLanguage: en\n\n"
    "00:00:00.480 --> 00:00:02.550 align:start position:0%\n \n"
    "Today<00:00:00.680><c> we</c><00:00:00.760><c> fix</c><00:00:00.880><c> the</c><00:00:01.040><c> bike</c>\n\n"
    "00:00:02.550 --> 00:00:02.560 align:start position:0%\nToday we fix the bike\n \n\n"
    "00:00:02.560 --> 00:00:04.550 align:start position:0%\nToday we fix the bike\n"
    "&gt;&gt; first<00:00:02.960><c> the</c><00:00:03.200><c> chain</c>\n\n"
    "00:00:04.550 --> 00:00:04.560 align:start position:0%\n&gt;&gt; first the chain\n \n\n"
    "00:00:04.560 --> 00:00:07.000 align:start position:0%\n\n"
    "then<00:00:05.100><c> the</c><00:00:05.400><c> brakes</c>\n")


def test_youtube_automatic_captions_read_once_each_line():
    parsed = parse_subtitles(YOUTUBE_AUTO_VTT)
    assert parsed.problems == []
    assert [(c.start_s, c.end_s, c.text) for c in parsed.items] == [
        (0.48, 2.55, "Today we fix the bike"), (2.56, 4.55, ">> first the chain"), (4.56, 7.0, "then the brakes")]
    # the same captions converted to SRT without their word times still roll: each line once
    srt = "".join(f"{i}\n00:00:0{i},000 --> 00:00:0{i + 1},000\n{a}\n{b}\n\n" for i, (a, b) in enumerate(
        [("today we fix", "the bike"), ("the bike", "first the chain"), ("first the chain", "then the brakes"),
         ("then the brakes", "and we ride")], start=1))
    assert [c.text for c in parse_subtitles(srt).items] == ["today we fix the bike", "first the chain",
                                                            "then the brakes", "and we ride"]
    # a song's chorus sung again and again is said again, as written
    chorus = "WEBVTT\n\n" + "".join(f"00:0{i}.000 --> 00:0{i + 1}.000\nla la la\n\n" for i in range(1, 6))
    assert [c.text for c in parse_subtitles(chorus).items] == ["la la la"] * 5


def test_cues_written_without_the_blank_line_between_them_are_each_read():
    """Converters and hand edits drop the blank line between SRT cues (and WebVTT ones separated by lines of
    spaces): each cue is still read, with its number, not the block lost as 'garbled'."""
    srt = ("1\n00:00:01,000 --> 00:00:02,000\nHello there\n2\n00:00:03,000 --> 00:00:04,000\nWorld,\nagain\n\n"
           "3\n00:00:05,000 --> 00:00:06,000\nBye\n")
    parsed = parse_subtitles(srt)
    assert parsed.problems == []
    assert [(c.start_s, c.text) for c in parsed.items] == [(1.0, "Hello there"), (3.0, "World, again"), (5.0, "Bye")]
    vtt = "WEBVTT\n\nintro\n00:01.000 --> 00:02.000\nHi\n  \nnext\n00:02.500 --> 00:03.000\nYou\n"
    assert [(c.start_s, c.text) for c in parse_subtitles(vtt).items] == [(1.0, "Hi"), (2.5, "You")]


@pytest.mark.parametrize("container,codec", [("mkv", "webvtt"), ("mp4", "mov_text")])
def test_youtube_automatic_captions_embedded_by_yt_dlp_read_once_each_line(tmp_path, cut_video, container, codec):
    """yt-dlp --embed-subs puts the rolling captions in the file as they are; read from the track, each spoken
    line is one cue, as from the sidecar."""
    from vdata.media.embedded import read_embedded
    from vdata.media.ffmpeg import run_ffmpeg

    said = ["Today we fix the bike", "first the chain", "then the brakes", "and then we ride"]
    cues, before = ["WEBVTT\nKind: captions\nLanguage: en\n"], ""
    for i, line in enumerate(said):   # each line rolls in with word times, then its 10-ms repeat
        words = line.split()
        timed = words[0] + "".join(f"<00:00:0{i * 2}.{k + 1}00><c> {w}</c>" for k, w in enumerate(words[1:]))
        cues.append(f"00:00:0{i * 2}.000 --> 00:00:0{i * 2 + 1}.990 align:start position:0%\n{before or ' '}\n{timed}\n")
        cues.append(f"00:00:0{i * 2 + 1}.990 --> 00:00:0{i * 2 + 2}.000 align:start position:0%\n{line}\n \n")
        before = line
    (tmp_path / "auto.vtt").write_text("\n".join(cues))
    assert [c.text for c in parse_subtitles((tmp_path / "auto.vtt").read_text()).items] == said
    video = tmp_path / f"talk.{container}"
    run_ffmpeg(["-i", cut_video[0], "-i", str(tmp_path / "auto.vtt"), "-map", "0:v", "-map", "1", "-c:v", "copy",
                "-c:s", codec, "-metadata:s:s:0", "language=eng", str(video)])
    track = read_embedded(str(video), ["en"]).subtitles.items   # (the track holds no word times)
    assert [c.text for c in track] == said and [c.start_s for c in track] == [0.0, 2.0, 4.0, 6.0]


def test_text_without_any_cue_is_one_problem():
    parsed = parse_subtitles("just a sentence, no cues here\n")
    assert parsed.items == [] and [p.reason for p in parsed.problems] == ["subtitle_unparsable"]


@pytest.mark.parametrize("encoding, text", [
    ("cp1252", ["Ça va très bien, señor — naïve café", "Zürich “quotes” 5 €"]),
    ("utf-16", ["Ça va très bien, señor — naïve café", "Zürich “quotes” 5 €"]),       # with a BOM
    ("utf-16-le", ["Ça va très bien, señor — naïve café", "Zürich “quotes” 5 €"]),    # without
    ("utf-8-sig", ["Ça va très bien, señor — naïve café", "Zürich “quotes” 5 €"]),
    ("cp1250", ["Zażółć gęślą jaźń, powiedział", "Świętokrzyski żółw"]),
    ("cp1251", ["Привет, как дела? Всё хорошо.", "До свидания, друзья"]),
    ("utf-16-le", ["Plain English only", "is valid UTF-8 too"]),   # no BOM, ASCII: was read with NULs (h24 F8)
    ("utf-16-be", ["Plain English only", "is valid UTF-8 too"]),
])
def test_a_subtitle_file_in_a_legacy_encoding_reads_as_written(tmp_path, encoding, text):
    """Subtitle sites served Windows code pages and "Unicode" (UTF-16) for decades; read as UTF-8, a cp1252
    file's "Ça va très bien" became "\ufffda va tr\ufffds bien" in the annotations."""
    from vdata.media.subtitles import load_subtitles

    path = tmp_path / "film.srt"
    path.write_bytes(f"1\n00:00:00,500 --> 00:00:02,000\n{text[0]}\n\n2\n00:00:02,500 --> 00:00:04,000\n{text[1]}\n"
                     .encode(encoding))
    parsed = load_subtitles(str(path))
    assert [c.text for c in parsed.items] == text and not parsed.problems


def test_description_chapter_lines():
    parsed = parse_chapter_lines(DESCRIPTION)
    assert [(c.start_s, c.title) for c in parsed.items] == [(0.0, "Intro"), (3.0, "Climbing the hill"),
                                                            (6.0, "Descent"), (30.0, "Bloopers")]
    assert [p.reason for p in parsed.problems] == ["chapter_line_unparsable"]   # "[0:9]": one-digit seconds
    late = parse_chapter_lines("Intro 0:15\n1:02:03 - Finale")    # title-first form; no 0:00
    assert late.items == [] and [p.reason for p in late.problems] == ["chapters_not_from_zero"]
    assert "15 Intro" in late.problems[0].raw and "3723 Finale" in late.problems[0].raw
    backwards = parse_chapter_lines("0:00 A\n0:20 B\n0:10 C")
    # of two equally long rising runs, the one that rises least stands (a stray time is most often a large one)
    assert [c.title for c in backwards.items] == ["A", "C"] and backwards.problems[0].reason == "chapter_out_of_order"
    assert parse_chapter_lines("no timestamps at all\njust prose about 3 things").items == []
    lone = parse_chapter_lines("Recorded live, we start at 10:30")      # one time in prose: no chapters, no problem
    assert lone.items == [] and lone.problems == []
    # the separators people type between time and title are not part of the title
    typed = parse_chapter_lines("0:00 -- Intro\n0:10 • Tools\n0:20 => Fit\n0:30 ~ Ride\n0:40 Part 1.5 - more")
    assert [c.title for c in typed.items] == ["Intro", "Tools", "Fit", "Ride", "Part 1.5 - more"]


def test_validation_normalises_and_names_each_problem():
    raw = {
        "title": "  Bikes  ", "labels": ["Riding_Bike", "riding bike", "unicycle"],
        "chapters": [{"start_time": 6, "title": "Descent", "end_time": 99}, {"start": "0:00", "title": "Intro"},
                     [3, "Climb"], {"start_s": 3, "title": "Climb again"}, {"start_s": 12, "title": "Past"},
                     {"start_s": 8, "title": ""}, "garbage"],
        "segments": {"timestamps": [[0, 2.0], [8.0, 10.3], [7.5, 14.0], [5, 4]], "sentences": ["a", "b", "c", "d"]},
        "subtitles": [{"start_s": 1.0, "end_s": 3.2, "text": "x"}, {"start_s": 3.0, "end_s": 4.0, "text": "y"},
                      {"start_s": 3.5, "end_s": 5.0, "text": "z"}],
    }
    out, issues = validate_annotations(raw, 10.0, vocabulary=["riding bike", "walking"], tolerance_s=0.5)
    assert out["title"] == "Bikes" and out["description"] is None and out["transcript"] is None
    assert out["labels"] == ["riding bike"]                    # vocabulary spelling, deduplicated
    # sorted, end = next start, last = the video's end; the source's end 99 clamped (a repair)
    assert out["chapters"] == [{"start_s": 0.0, "end_s": 3.0, "title": "Intro"},
                               {"start_s": 3.0, "end_s": 6.0, "title": "Climb"},
                               {"start_s": 6.0, "end_s": 10.0, "title": "Descent"}]
    assert out["segments"] == [{"start_s": 0.0, "end_s": 2.0, "text": "a"}, {"start_s": 8.0, "end_s": 10.0, "text": "b"}]
    # 0.2 s overlap within tolerance: trimmed; 0.5 s overlap with the trimmed cue... 3.5 < 4.0 by 0.5: trimmed too
    assert [(s["start_s"], s["end_s"]) for s in out["subtitles"]] == [(1.0, 3.0), (3.0, 3.5), (3.5, 5.0)]
    dropped = sorted((i.kind, i.reason) for i in issues if i.dropped)
    assert dropped == [("chapters", "chapter_duplicate_start"), ("chapters", "chapter_malformed"),
                       ("chapters", "chapter_past_end"), ("chapters", "chapter_untitled"),
                       ("labels", "label_not_in_vocabulary"),
                       ("segments", "segment_inverted"), ("segments", "segment_out_of_range")]
    repairs = sorted(i.reason for i in issues if not i.dropped)
    assert repairs == ["chapter_end_clamped", "segment_clamped", "subtitle_trimmed", "subtitle_trimmed"]
    past = next(i for i in issues if i.reason == "chapter_past_end")
    assert past.item == {"start_s": 12, "title": "Past"} and past.index == 4 and "10 s" in past.message
    # with no tolerance the same overlaps are dropped, the earlier cue kept
    out, issues = validate_annotations({"subtitles": raw["subtitles"]}, 10.0, tolerance_s=0.0)
    assert [s["text"] for s in out["subtitles"]] == ["x", "z"]
    assert [i.reason for i in issues] == ["subtitle_overlap"]
    # a negative point time whose reader clamped the window's start to 0 (Ego4D's timestamp_sec -1): out of range
    _, issues = validate_annotations({"segments": [{"start_s": 0.0, "end_s": -0.49, "text": "C opens the door"}]}, 10.0)
    assert [(i.reason, "before the video starts" in i.message) for i in issues] == [("segment_out_of_range", True)]
    # a release's duplicate row (ActivityNet Captions, Ego4D): kept once, and counted as a repair
    twice = [{"start_s": 1.0, "end_s": 2.0, "text": "A man waves."}, {"start_s": 1.0, "end_s": 2.0, "text": "a man  waves."}]
    out, issues = validate_annotations({"segments": twice}, 10.0)
    assert out["segments"] == [{"start_s": 1.0, "end_s": 2.0, "text": "A man waves."}]
    assert [(i.reason, i.dropped, i.index) for i in issues] == [("segment_duplicate", False, 1)]



def test_clock_strings_with_a_fraction_are_times_and_other_text_is_unreadable():
    raw = {"segments": [["0:00:01.500", "0:00:03.25", "a"], {"start": "0:04.5", "end": "0:06", "text": "b"},
                        ["soon", "0:07", "c"], ["1:75", "1:80", "d"]]}
    out, issues = validate_annotations(raw, 10.0)
    assert out["segments"] == [{"start_s": 1.5, "end_s": 3.25, "text": "a"}, {"start_s": 4.5, "end_s": 6.0, "text": "b"}]
    assert sorted(i.index for i in issues if i.reason == "segment_malformed") == [2, 3]

# --- the stage on real videos ---------------------------------------------------------------------------

def _videos(tmp_path: Path, cut_video, bikes) -> tuple[Path, Path]:
    """talk.mp4 (14 s, with talk.srt) and lecture.mp4 (10 s real footage, with lecture.en.vtt)."""
    media = tmp_path / "media"
    media.mkdir()
    talk, lecture = media / "talk.mp4", media / "lecture.mp4"
    shutil.copy(cut_video[0], talk)
    shutil.copy(bikes, lecture)
    (media / "talk.srt").write_text(TALK_SRT)
    (media / "lecture.en.vtt").write_text(LECTURE_VTT)
    (media / "lecture.fr.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nBonjour\n")   # not the preferred language
    return talk, lecture


def _manifest(tmp_path: Path) -> Path:
    """A manifest with annotation columns: chapters as description lines, labels, dense segments as JSON."""
    import csv

    path = tmp_path / "videos.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "title", "description", "label", "events"])
        w.writerow(["media/talk.mp4", "Camera workshop", "Workshop notes.\n0:00 Welcome\n0:05 White balance\n"
                    "0:20 Q&A", "teaching", json.dumps([[0.5, 4.0, "a presenter talks"], [9.0, 14.3, "card shown"]])])
        w.writerow(["media/lecture.mp4", "Fourier series", "", "riding bike; juggling",
                    json.dumps([[1.0, 3.0, "bikes pass"], [2.0, 25.0, "runs past the end"]])])
    return path


STAGE_SETTINGS = {"sources": {"labels": "label", "segments": "events"}, "label_vocabulary": ["teaching", "riding bike"]}


def _probed(rows: list[dict]):
    import datasets

    kept, rejects = vdata.run_stage(ProbeStage(), datasets.Dataset.from_list(rows))
    assert len(rejects) == 0
    return kept


def test_stage_through_run_stage_keeps_the_good_items_and_rejects_each_bad_one(tmp_path, cut_video, bikes):
    talk, lecture = _videos(tmp_path, cut_video, bikes)
    manifest = _manifest(tmp_path)
    import csv

    with open(manifest) as f:   # source_meta as ingest writes it: the manifest's other columns as JSON
        rows = [{R.SOURCE_URI: f"{manifest}#{i}", R.PATH: str(tmp_path / rec.pop("file")),
                 R.SOURCE_META: json.dumps(rec)} for i, rec in enumerate(csv.DictReader(f))]
    kept, rejects = vdata.run_stage(AnnotationsStage(**STAGE_SETTINGS), _probed(rows))
    by_name = {Path(r[R.PATH]).name: r for r in kept}
    assert set(by_name) == {"talk.mp4", "lecture.mp4"}             # both videos go on
    t = by_name["talk.mp4"][R.ANNOTATIONS]
    duration = by_name["talk.mp4"][R.DURATION_S]
    assert duration == pytest.approx(14.0, abs=0.05)
    assert t["title"] == "Camera workshop" and t["labels"] == ["teaching"]
    assert [(c["start_s"], c["title"]) for c in t["chapters"]] == [(0.0, "Welcome"), (5.0, "White balance")]
    assert t["chapters"][-1]["end_s"] == duration                   # "0:20 Q&A" is past the 14 s video
    assert t["segments"][-1] == {"start_s": 9.0, "end_s": duration, "text": "card shown"}   # 0.3 s over: clamped
    assert [c["text"] for c in t["subtitles"]] == ["Welcome back to the workshop.",
                                                   "Today we calibrate the camera before the first shot.",
                                                   "Hold the grey card flat."]
    lec = by_name["lecture.mp4"][R.ANNOTATIONS]
    assert lec["labels"] == ["riding bike"] and lec["chapters"] == [] and lec["description"] is None
    assert [c["text"] for c in lec["subtitles"]][0] == "Fourier series, part one"   # .en.vtt, not .fr.vtt
    assert [s["text"] for s in lec["segments"]] == ["bikes pass"]
    # one reject per bad item, each with its reason and the item itself
    assert sorted(r["reason"] for r in rejects) == ["chapter_past_end", "label_not_in_vocabulary", "segment_out_of_range",
                                                    "subtitle_garbled", "subtitle_overlap"]
    assert all(r["stage"] == "annotations" and r["message"] for r in rejects)
    detail = {r["reason"]: json.loads(r["detail"]) for r in rejects}
    assert detail["label_not_in_vocabulary"]["item"] == "juggling"
    assert detail["subtitle_overlap"]["item"]["text"] == "[music]"
    assert detail["chapter_past_end"]["item"]["title"] == "Q&A"
    assert by_name["talk.mp4"][R.ANNOTATION_ISSUES] == 3 and by_name["lecture.mp4"][R.ANNOTATION_ISSUES] == 2
    assert by_name["talk.mp4"][R.ANNOTATION_REPAIRS] == 1


def test_required_kinds_strict_mode_and_sidecar_json(tmp_path, cut_video, bikes):
    talk, lecture = _videos(tmp_path, cut_video, bikes)
    # yt-dlp's info.json gives the lecture a title and chapters (its own start_time / end_time spelling);
    # its `subtitles` and `automatic_captions` list downloads, not cues: lecture.en.vtt still gives them
    listing = {"en": [{"ext": "vtt", "url": "https://www.youtube.com/api/timedtext?v=x&lang=en&fmt=vtt", "name": "English"}]}
    (lecture.parent / "lecture.info.json").write_text(json.dumps({
        "id": "x", "title": "Bike lecture", "tags": ["bikes"], "subtitles": listing, "automatic_captions": listing,
        "chapters": [{"start_time": 0.0, "end_time": 4.0, "title": "Start"},
                     {"start_time": 4.0, "end_time": 10.0, "title": "End"}]}))
    probed = _probed([{R.SOURCE_URI: str(p), R.PATH: str(p), R.SOURCE_META: None} for p in (talk, lecture)])
    kept, rejects = vdata.run_stage(AnnotationsStage(require=["chapters"]), probed)
    assert [Path(r[R.PATH]).name for r in kept] == ["lecture.mp4"]
    lec = kept[0][R.ANNOTATIONS]
    assert lec["title"] == "Bike lecture" and [c["title"] for c in lec["chapters"]] == ["Start", "End"]
    assert lec["subtitles"][0]["text"] == "Fourier series, part one" and kept[0][R.ANNOTATION_ISSUES] == 0
    assert [r["reason"] for r in rejects] == ["missing_annotation"]
    assert "chapters" in rejects[0]["message"] and Path(rejects[0][R.SOURCE_URI]).name == "talk.mp4"
    # a mapped key (a recipe's `labels: label`) that a row lacks: the kind's own name is read (the annotation
    # formats write that), the mapped key first where both are there
    both = _probed([{R.SOURCE_URI: str(p), R.PATH: str(p), R.SOURCE_META: json.dumps({"labels": ["cycling"], **extra})}
                    for p, extra in ((talk, {}), (lecture, {"label": "bikes"}))])
    kept, _ = vdata.run_stage(AnnotationsStage(sources={"labels": "label"}, require=["labels"]), both)
    assert [r[R.ANNOTATIONS]["labels"] for r in kept] == [["cycling"], ["bikes"]]
    # strict: a video with any bad item is rejected whole, under the first item's reason
    kept, rejects = vdata.run_stage(AnnotationsStage(on_bad_item="reject_video"), probed)
    assert [Path(r[R.PATH]).name for r in kept] == ["lecture.mp4"]
    assert [r["reason"] for r in rejects] == ["subtitle_garbled"] and "2 bad annotation item(s)" in rejects[0]["message"]
    # sidecars off: nothing read next to the video
    kept, rejects = vdata.run_stage(AnnotationsStage(sidecars=False), probed)
    assert len(rejects) == 0 and all(r[R.ANNOTATIONS]["subtitles"] == [] for r in kept)


def test_a_video_unlike_its_annotation_files_duration_is_rejected(tmp_path, cut_video, bikes):
    """ActivityNet Captions gives each video's duration. A 14-s file annotated as 45 s is a truncated download
    (or another cut): its times point elsewhere, so the video is a `duration_mismatch` reject, not kept with
    a third of its events silently dropped; a small difference (the release's rounding) passes."""
    from vdata.schemas.annotation_formats.captions import read_activitynet_captions

    talk, lecture = _videos(tmp_path, cut_video, bikes)   # 14 s and 10 s
    release = read_activitynet_captions(json.dumps({
        "v_talk": {"duration": 45.0, "timestamps": [[0.0, 5.0], [30.0, 44.0]], "sentences": ["a", "b"]},
        "v_lecture": {"duration": 10.3, "timestamps": [[0.0, 5.0]], "sentences": ["bikes pass"]}}))
    meta = {Path(r.video_id[2:]).name: r.meta for r in release.videos}
    probed = _probed([{R.SOURCE_URI: str(p), R.PATH: str(p), R.SOURCE_META: json.dumps(meta[p.stem])}
                      for p in (talk, lecture)])
    kept, rejects = vdata.run_stage(AnnotationsStage(sidecars=False), probed)
    assert [Path(r[R.PATH]).name for r in kept] == ["lecture.mp4"]
    assert kept[0][R.ANNOTATIONS]["segments"][0]["text"] == "bikes pass"
    assert [r["reason"] for r in rejects] == ["duration_mismatch"] and Path(rejects[0][R.SOURCE_URI]).name == "talk.mp4"
    assert "45.0 s" in rejects[0]["message"] and "14.0 s" in rejects[0]["message"]
    assert json.loads(rejects[0]["detail"])["annotated_duration_s"] == 45.0
    # duration_tolerance: null keeps it, with the event past its end dropped as before
    kept, rejects = vdata.run_stage(AnnotationsStage(sidecars=False, duration_tolerance=None), probed)
    assert len(kept) == 2 and [r["reason"] for r in rejects] == ["segment_out_of_range"]


def test_chapters_mapped_to_the_description_fall_back_to_yt_dlp_chapters(tmp_path, cut_video, bikes):
    """VidChapters' recipe maps `chapters: description` (the creator's "0:00 Intro" lines). A video whose
    description has no such lines but whose yt-dlp info.json lists chapters (YouTube's automatic ones) gets
    those; where the description has lines, they win (the user-written chapters the recipe reproduces)."""
    talk, lecture = _videos(tmp_path, cut_video, bikes)
    auto = [{"start_time": 0.0, "end_time": 4.0, "title": "Opening"}, {"start_time": 4.0, "end_time": 10.0, "title": "Closing"}]
    (lecture.parent / "lecture.info.json").write_text(json.dumps(
        {"id": "x", "description": "A talk about bikes. No timestamps here.", "chapters": auto}))
    (talk.parent / "talk.info.json").write_text(json.dumps(
        {"id": "y", "description": "0:00 Welcome\n0:03 Wheels", "chapters": auto}))
    probed = _probed([{R.SOURCE_URI: str(p), R.PATH: str(p), R.SOURCE_META: None} for p in (talk, lecture)])
    kept, rejects = vdata.run_stage(AnnotationsStage(sources={"chapters": "description"}, require=["chapters"]), probed)
    assert "missing_annotation" not in rejects["reason"]   # the talk's own garbled subtitle cues are rejects of theirs
    chapters = {Path(r[R.PATH]).name: [(c["start_s"], c["title"]) for c in r[R.ANNOTATIONS]["chapters"]] for r in kept}
    assert chapters == {"lecture.mp4": [(0.0, "Opening"), (4.0, "Closing")], "talk.mp4": [(0.0, "Welcome"), (3.0, "Wheels")]}

EMBEDDED_META = """;FFMETADATA1
title=Folding a paper crane
description=We fold a crane in three steps.
[CHAPTER]
TIMEBASE=1/1000
START=0
END=6000
title=Intro
[CHAPTER]
TIMEBASE=1/1000
START=6000
END=14000
title=Folding the base
"""


@pytest.mark.parametrize("container,subtitle_codec", [("mkv", "srt"), ("mp4", "mov_text"), ("mkv", "ass")])
def test_annotations_the_video_file_carries_inside(tmp_path, cut_video, container, subtitle_codec):
    """yt-dlp's --embed-chapters --embed-subs --embed-metadata put everything inside the file: chapters,
    a German and an English subtitle track (ISO 639-2 names), title and description. The stage reads
    them when nothing else gives them; a sidecar still wins; `embedded: false` reads none of them."""
    from vdata.media.ffmpeg import run_ffmpeg

    (tmp_path / "meta.txt").write_text(EMBEDDED_META)
    (tmp_path / "de.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHallo zusammen\n")
    (tmp_path / "en.srt").write_text("1\n00:00:00,500 --> 00:00:02,800\nTake a <i>square</i> sheet.\n\n"
                                     "2\n00:00:03,000 --> 00:00:05,400\nFold it corner to corner,\ntwice.\n")
    video = tmp_path / f"crane.{container}"
    run_ffmpeg(["-i", cut_video[0], "-i", str(tmp_path / "meta.txt"), "-i", str(tmp_path / "de.srt"),
                "-i", str(tmp_path / "en.srt"), "-map", "0:v", "-map", "2", "-map", "3", "-map_metadata", "1",
                "-map_chapters", "1", "-c:v", "copy", "-c:s", subtitle_codec, "-metadata:s:s:0", "language=ger",
                "-metadata:s:s:1", "language=eng", str(video)])
    probed = _probed([{R.SOURCE_URI: str(video), R.PATH: str(video), R.SOURCE_META: None}])
    kept, rejects = vdata.run_stage(AnnotationsStage(), probed)
    a = kept[0][R.ANNOTATIONS]
    assert a["title"] == "Folding a paper crane" and a["description"] == "We fold a crane in three steps."
    assert [(c["start_s"], c["title"]) for c in a["chapters"]] == [(0.0, "Intro"), (6.0, "Folding the base")]
    assert [c["text"] for c in a["subtitles"]] == ["Take a square sheet.", "Fold it corner to corner, twice."]
    assert [(c["start_s"], c["end_s"]) for c in a["subtitles"]] == [(0.5, 2.8), (3.0, 5.4)]
    assert len(rejects) == 0
    german = vdata.run_stage(AnnotationsStage(subtitle_languages=["de", "en"]), probed)[0][0][R.ANNOTATIONS]
    assert [c["text"] for c in german["subtitles"]] == ["Hallo zusammen"]
    (tmp_path / "crane.chapters.txt").write_text("0:00 Sidecar start\n0:10 Sidecar end\n")
    sidecar = vdata.run_stage(AnnotationsStage(), probed)[0][0][R.ANNOTATIONS]
    assert [c["title"] for c in sidecar["chapters"]] == ["Sidecar start", "Sidecar end"]
    off = vdata.run_stage(AnnotationsStage(embedded=False, sidecars=False), probed)[0][0][R.ANNOTATIONS]
    assert off["subtitles"] == [] and off["chapters"] == [] and off["title"] is None


def test_hf_dataset_columns_parallel_lists_and_chapter_dicts(tmp_path, bikes):
    """An HF dataset as they are usually shaped: video bytes, dense captions as parallel list columns
    (ActivityNet Captions style), chapters as a list of {time, label} dicts, subtitles as SRT text."""
    import datasets

    from vdata.pipelines.ingest import discover

    hf_dir = tmp_path / "hf"
    datasets.Dataset.from_dict({
        "video": [Path(bikes).read_bytes()],
        "captions_starts": [[0.0, 2.5, 6.0]], "captions_ends": [[2.5, 6.0, 30.0]],
        "en_captions": [["riders enter", "a rider jumps", "they leave"]],
        "chapters": [[{"time": 0.0, "label": "Start"}, {"time": 5.0, "label": "Jumps"}]],
        "subtitles": ["1\n00:00:01,000 --> 00:00:02,000\nLook at that!\n"],
    }).save_to_disk(str(hf_dir))
    cfg = parse_config({"input": [{"hf": {"path": str(hf_dir), "column": "video"}}], "output": {"dir": str(tmp_path / "o")},
                        "stages": [{"probe": {}}]})
    rows = discover(cfg, media_dir=str(tmp_path / "o" / "_media"))
    settings = {"sources": {"segments": {"start": "captions_starts", "end": "captions_ends", "text": "en_captions"}}}
    kept, rejects = vdata.run_stage(AnnotationsStage(**settings), _probed(rows))
    ann = kept[0][R.ANNOTATIONS]
    assert [(s["start_s"], s["end_s"], s["text"]) for s in ann["segments"]] == [(0.0, 2.5, "riders enter"),
                                                                              (2.5, 6.0, "a rider jumps")]
    assert [(c["start_s"], c["end_s"], c["title"]) for c in ann["chapters"]] == [(0.0, 5.0, "Start"),
                                                                                (5.0, kept[0][R.DURATION_S], "Jumps")]
    assert ann["subtitles"] == [{"start_s": 1.0, "end_s": 2.0, "text": "Look at that!"}]
    assert [r["reason"] for r in rejects] == ["segment_out_of_range"]      # "they leave" runs to 30 s of a 10 s video
    with pytest.raises(ValueError, match="sources.segments.end: segments need an end column"):
        AnnotationsStage(sources={"segments": {"start": "a", "text": "b"}})


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(vdata.ConfigError, match=r"stages\[1\]\.annotations\.sources.*captions: unknown annotation kind"):
        parse_config({"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "o")},
                      "stages": [{"probe": {}}, {"annotations": {"sources": {"captions": "c"}}}]})
    with pytest.raises(ValueError, match="(?s)label_vocabulary.*no such file"):
        AnnotationsStage(label_vocabulary=str(tmp_path / "missing.txt"))
    vocab = tmp_path / "classes.txt"
    vocab.write_text("riding bike\n\nwalking the dog\n")
    assert AnnotationsStage(label_vocabulary=str(vocab)).config.label_vocabulary == ["riding bike", "walking the dog"]


def _canonical(directory: str, key: list[str]) -> bytes:
    table = pads.dataset(directory, format="parquet").to_table().sort_by([(k, "ascending") for k in key])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_build_from_manifest_and_sidecars_is_byte_identical_twice(tmp_path, in_process, cut_video, bikes):
    _videos(tmp_path, cut_video, bikes)
    manifest = _manifest(tmp_path)

    def run(out: Path):
        cfg = parse_config({"input": [{"manifest": str(manifest), "path_column": "file"}],
                            "output": {"dir": str(out)},
                            "stages": [{"probe": {}}, {"annotations": STAGE_SETTINGS}, {"shots": {"min_len_s": 0.2}}]})
        return vdata.build(cfg, progress=False)

    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    assert first.rejects_by_reason == {"annotations:chapter_past_end": 1, "annotations:label_not_in_vocabulary": 1,
                                       "annotations:segment_out_of_range": 1, "annotations:subtitle_garbled": 1,
                                       "annotations:subtitle_overlap": 1}
    clips = pads.dataset(first.data_dir, format="parquet").to_table().to_pylist()
    per_video: dict = {}
    for c in clips:
        per_video.setdefault(Path(c[R.PATH]).name, []).append(c)
    assert len(per_video["talk.mp4"]) == 7 and len(per_video["lecture.mp4"]) >= 2   # the videos went on to shots
    for clips_of_video in per_video.values():                     # every clip row keeps its video's annotations
        assert len({json.dumps(c[R.ANNOTATIONS], sort_keys=True) for c in clips_of_video}) == 1
    assert per_video["talk.mp4"][0][R.ANNOTATIONS]["labels"] == ["teaching"]
    assert _canonical(first.data_dir, [R.SOURCE_URI, R.CLIP_ID]) == _canonical(second.data_dir, [R.SOURCE_URI, R.CLIP_ID])
    rejects = [os.path.join(r.output_dir, "rejects") for r in (first, second)]
    assert _canonical(rejects[0], [R.SOURCE_URI, "reason"]) == _canonical(rejects[1], [R.SOURCE_URI, "reason"])
    # the kept row and its item rejects together carry the video's whole mass: a re-run finds both videos done
    again = run(tmp_path / "a")
    assert json.loads(Path(again.manifest_path).read_text())["resumed_complete"] == 2 and again.rows == first.rows


def test_a_file_name_that_is_not_utf8_builds_with_its_sidecar(tmp_path, in_process, cut_video):
    """An old archive's Latin-1 file name ('caf\\xe9.mp4') crashed the build where Parquet got the path.
    It is read through a UTF-8 link under the output, its source_uri shows the odd byte escaped, and its
    sidecar subtitles (next to the real file) are read."""
    src = tmp_path / "archive"
    src.mkdir()
    name = b"caf\xe9"
    shutil.copy(cut_video[0], os.path.join(os.fsencode(src), name + b".mp4"))
    with open(os.path.join(os.fsencode(src), name + b".srt"), "w") as f:
        f.write("1\n00:00:01,000 --> 00:00:02,000\nCoffee first.\n")
    with open(os.path.join(os.fsencode(src), name + b".json"), "w") as f:
        f.write("{not json")   # its issue names the file: escaped, like the source_uri
    cfg = parse_config({"input": [{"path": str(src)}], "output": {"dir": str(tmp_path / "out")},
                        "stages": [{"probe": {}}, {"annotations": {}}, {"shots": {}}]})
    result = vdata.build(cfg, progress=False)
    rows = pads.dataset(result.data_dir, format="parquet").to_table().to_pylist()
    assert len(rows) == len(cut_video[1]) + 1   # every shot of the video
    assert {r[R.SOURCE_URI] for r in rows} == {f"{src}/caf\\xe9.mp4"}
    assert all(os.path.realpath(r[R.PATH]) == os.fsdecode(os.path.join(os.fsencode(src), name + b".mp4")) for r in rows)
    assert [c["text"] for c in rows[0][R.ANNOTATIONS]["subtitles"]] == ["Coffee first."]
    rejects = pads.dataset(os.path.join(result.output_dir, "rejects"), format="parquet").to_table().to_pylist()
    assert [r["message"] for r in rejects] == ["sidecars: caf\\xe9.json: not valid JSON (Expecting property name "
                                               "enclosed in double quotes, line 1)"]


def test_embedded_cues_are_on_the_video_clock(tmp_path, cut_video):
    """A video track that starts 2 s into its container: an embedded cue stored at 2.5 s is shown 0.5 s
    into the video, where frames and speech put it (ffmpeg's own conversion would move it to 0)."""
    from vdata.media.ffmpeg import run_ffmpeg

    (tmp_path / "en.srt").write_text("1\n00:00:02,500 --> 00:00:03,500\nAfter the start.\n")
    video = tmp_path / "late.mkv"
    run_ffmpeg(["-itsoffset", "2", "-i", cut_video[0], "-i", str(tmp_path / "en.srt"), "-map", "0:v", "-map", "1",
                "-c:v", "copy", "-c:s", "srt", str(video)])
    probed = _probed([{R.SOURCE_URI: str(video), R.PATH: str(video), R.SOURCE_META: None}])
    kept, rejects = vdata.run_stage(AnnotationsStage(), probed)
    assert [(c["start_s"], c["end_s"], c["text"]) for c in kept[0][R.ANNOTATIONS]["subtitles"]] == \
        [(0.5, 1.5, "After the start.")]


# An Aegisub-style script: styled dialogue with a line break, a translator's Comment, a vector drawing (a
# box behind a sign), a title card over the whole scene, a sign placed on the picture and an opening song
# line, listed out of time order as scripts often are. Only the two spoken lines are subtitles.
ANIME_ASS = r"""[Script Info]
ScriptType: v4.00+
PlayResX: 1920
PlayResY: 1080

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,60,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,10,10,10,1
Style: Signs,Arial,50,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,8,10,10,10,1
Style: OP,Arial,50,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,8,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:04.00,0:00:06.00,Default,Kai,0,0,0,,{\i1}Where are you going?{\i0}\NCome back!
Comment: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,TL note: a pun on the name
Dialogue: 0,0:00:01.00,0:00:03.50,Default,Mio,0,0,0,,{\an8}Good morning.
Dialogue: 1,0:00:07.00,0:00:09.00,Default,,0,0,0,,{\p1}m 0 0 l 100 0 100 100 0 100{\p0}
Dialogue: 0,0:00:00.00,0:00:09.00,Signs,,0,0,0,,{\fad(200,200)}EPISODE 3: THE STORM
Dialogue: 0,0:00:02.00,0:00:05.00,Default,,0,0,0,,{\pos(320,80)}BAKERY
Dialogue: 0,0:00:06.00,0:00:08.00,OP,,0,0,0,,{\k20}Fly {\k30}away
"""


def test_ass_scripts_beside_and_inside_the_video_give_their_dialogue(tmp_path, cut_video):
    from vdata.media.ffmpeg import run_ffmpeg

    expected = [(1.0, 3.5, "Good morning."), (4.0, 6.0, "Where are you going? Come back!")]
    sidecar = tmp_path / "episode.mp4"
    shutil.copy(cut_video[0], sidecar)
    (tmp_path / "episode.en.ass").write_text(ANIME_ASS, encoding="utf-8-sig")
    (tmp_path / "script.ass").write_text(ANIME_ASS)
    inside = tmp_path / "inside.mkv"
    run_ffmpeg(["-i", cut_video[0], "-i", str(tmp_path / "script.ass"), "-map", "0:v", "-map", "1", "-c:v", "copy",
                "-c:s", "ass", str(inside)])
    probed = _probed([{R.SOURCE_URI: str(p), R.PATH: str(p), R.SOURCE_META: None} for p in (sidecar, inside)])
    kept, rejects = vdata.run_stage(AnnotationsStage(), probed)
    assert len(kept) == 2 and len(rejects) == 0
    for row in kept:
        assert [(c["start_s"], c["end_s"], c["text"]) for c in row[R.ANNOTATIONS]["subtitles"]] == expected, row[R.PATH]
    assert parse_subtitles("[Script Info]\nTitle: no events here\n").problems[0].reason == "subtitle_unparsable"
    # inline, as a manifest or dataset column holds it: known by its header
    assert [(c.start_s, c.end_s, c.text) for c in parse_subtitles(ANIME_ASS).items] == expected


def test_a_subtitle_sidecar_in_a_regional_or_three_letter_tag_of_the_preferred_language_wins(tmp_path):
    """yt-dlp names YouTube's own captions `.en-orig.vtt`, players and rippers write `.en-US.srt` or
    `.eng.srt`: each is English, before a German file that sorts first."""
    from vdata.stages.annotations.sources import SourceReader

    stem = str(tmp_path / "talk")
    for name in ("talk.de.vtt", "talk.en-orig.vtt"):
        (tmp_path / name).write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nHi\n")
    assert _best_sidecar(stem, ["en"]).endswith("talk.en-orig.vtt")
    assert _best_sidecar(stem, ["de", "en"]).endswith("talk.de.vtt")
    (tmp_path / "talk.en-orig.vtt").unlink()
    (tmp_path / "talk.eng.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    assert _best_sidecar(stem, ["en"]).endswith("talk.eng.srt")
    assert _best_sidecar(stem, ["fr"]).endswith("talk.de.vtt")   # none preferred: name order


def test_subtitle_sidecars_named_as_media_servers_name_them(tmp_path):
    """Plex and Jellyfin name a film's subtitles `Film.en.srt`, `Film.en.sdh.srt` and `Film.en.forced.srt`
    (only the lines in a foreign language): the full English track is chosen, the forced one never before it."""
    from vdata.stages.annotations.sources import SourceReader

    stem = str(tmp_path / "Some.Film.2020.1080p")
    for name in ("Some.Film.2020.1080p.en.forced.srt", "Some.Film.2020.1080p.en.sdh.srt", "Some.Film.2020.1080p.de.srt"):
        (tmp_path / name).write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    assert _best_sidecar(stem, ["en"]).endswith(".en.sdh.srt")
    (tmp_path / "Some.Film.2020.1080p.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    assert _best_sidecar(stem, ["en"]).endswith("1080p.en.srt")
    assert _best_sidecar(stem, ["de", "en"]).endswith(".de.srt")
    # the subtitles of another video whose name extends this one's are not this video's
    (tmp_path / "talk.part2.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    assert _best_sidecar(str(tmp_path / "talk"), ["en"]) is None
    (tmp_path / "talk.English.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    assert _best_sidecar(str(tmp_path / "talk"), ["en"]).endswith("talk.English.srt")


def test_time_lines_of_a_description_that_make_no_youtube_chapters_are_no_bad_chapters(cut_video):
    """A description's "0:02 Fractal" lines not from 0:00 are no chapters by YouTube's rule: a run that never
    named the description as chapters gets none, and no reject rows about chapters it never asked for. Named
    (`sources.chapters: description`), the same lines are read as chapters."""
    description = "Patterns:\n0:02 Fractal\n0:04 Game of life\n0:08 Test card"
    video, _ = cut_video
    probed = _probed([{R.SOURCE_URI: video, R.PATH: video,
                       R.SOURCE_META: json.dumps({"description": description, "label": "patterns"})}])
    kept, rejects = vdata.run_stage(AnnotationsStage(sources={"labels": "label"}, sidecars=False), probed)
    assert len(rejects) == 0 and kept[0][R.ANNOTATIONS]["chapters"] == [] and kept[0][R.ANNOTATION_ISSUES] == 0
    kept, _ = vdata.run_stage(AnnotationsStage(sources={"chapters": "description"}, sidecars=False), probed)
    assert [c["title"] for c in kept[0][R.ANNOTATIONS]["chapters"]] == ["Fractal", "Game of life", "Test card"]


def _best_sidecar(stem: str, languages: list[str]) -> str | None:
    """The subtitle file the annotations stage reads first; None when the video has none."""
    from vdata.stages.annotations.sources import SourceReader

    return next((path for path, _ in SourceReader._subtitle_candidates(stem, languages)), None)


def test_a_title_that_is_not_text_is_rejected_never_rendered_as_its_repr():
    """A YouTube `{"runs": [...]}` title or a dict of localized titles became "{'runs': ...}" in prompts and
    exports; a bool became "True". Lines given as a list, or a number, are still text."""
    out, issues = validate_annotations({"title": {"runs": [{"text": "Cooking"}]}, "description": {"en": "d"},
                                        "transcript": ["first line", "second line"]}, 10.0)
    assert out["title"] is None and out["description"] is None
    assert out["transcript"] == "first line\nsecond line"
    assert sorted(i.reason for i in issues) == ["description_malformed", "title_malformed"]
    assert all(i.dropped for i in issues) and "dict" in issues[0].message
    out, issues = validate_annotations({"title": True, "description": 2024}, 10.0)
    assert out["title"] is None and out["description"] == "2024"
    assert [i.reason for i in issues] == ["title_malformed"]
    out, issues = validate_annotations({"title": ["a", {"b": 1}]}, 10.0)
    assert out["title"] is None and [i.reason for i in issues] == ["title_malformed"]


def test_parallel_lists_of_different_lengths_pair_by_place_and_name_the_unpaired_entry():
    """ActivityNet-style `{timestamps, sentences}` given inline: zip() dropped the unpaired entries without a
    word; they are now `<kind>_malformed` rejects that say which list is short."""
    out, issues = validate_annotations({"segments": {"timestamps": [[0, 2], [3, 4], [5, 6]], "sentences": ["a"]}}, 10.0)
    assert [s["text"] for s in out["segments"]] == ["a"]
    assert [i.reason for i in issues] == ["segment_malformed", "segment_malformed"]
    assert "item 2 has no text" in issues[0].message and "3 spans and 1 texts" in issues[0].message
    out, issues = validate_annotations({"segments": {"timestamps": [[0, 2]], "sentences": ["a", "b"]}}, 10.0)
    assert len(out["segments"]) == 1 and "item 2 has no span" in issues[0].message


def test_an_item_whose_text_is_a_number_is_malformed_not_the_caption_5():
    """Outside check h24 F2: `{"start_s": 2, "end_s": 4, "text": 5}` (a shifted CSV column) became the caption
    "5"; a VidChapters `{"label": 7}` the chapter "7"."""
    out, issues = validate_annotations({"segments": [{"start_s": 2, "end_s": 4, "text": 5},
                                                     {"start_s": 5, "end_s": 6, "text": "five"}],
                                        "chapters": [{"start_s": 0, "title": 7}, {"start_s": 3, "title": "Seven"}]}, 10.0)
    assert [s["text"] for s in out["segments"]] == ["five"] and [c["title"] for c in out["chapters"]] == ["Seven"]
    assert sorted(i.reason for i in issues) == ["chapter_malformed", "segment_malformed"]
    assert all("its text is a int, not text" in i.message for i in issues)
