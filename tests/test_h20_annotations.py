"""h20 findings on annotation inputs: chapter lines with fractional seconds (F7), prose lines that end in a
clock time inside a chapter list (F8), range lines and one-line lists (F9), `<br>` in subtitle cues (F1),
chapter ends the source gave (F10), and segments / chapters across a shot cut at clip scope (F6).

Parsers on real text; the `annotations` stage on ffmpeg-made videos with sidecar files and manifest
columns (`vdata.run_stage`); one real build (probe -> annotations -> shots -> generate) for F6."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pyarrow.dataset as pads
import pytest

import vdata
from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.chapter_lines import parse_chapter_lines
from vdata.media.subtitles import load_subtitles, parse_subtitles
from vdata.media.synth import Segment, render_segments
from vdata.schemas import records as R
from vdata.schemas.annotations import validate_annotations
from vdata.schemas.config import parse_config
from vdata.stages.annotations import AnnotationsStage
from vdata.stages.probe import ProbeStage

from conftest import no_ray

# the tester's stream description (/tmp/h20/prose): two prose lines end in a clock time
STREAM = """\
Welcome to the stream!
0:00 Intro
2:15 Setup
Doors open at 9:30
5:00 Main talk
Recorded 12.03.2024 in Berlin, 18:45
Follow us: twitter.com/x
10:00 Q&A
"""


def _marks(text: str, **kw) -> list[tuple]:
    parsed = parse_chapter_lines(text, **kw)
    return [(c.start_s, getattr(c, "end_s", None), c.title) for c in parsed.items]


def _probed(paths: list[Path], metas: list[dict | None] | None = None):
    rows = [{R.SOURCE_URI: str(p), R.PATH: str(p), R.SOURCE_META: json.dumps(m) if m is not None else None}
            for p, m in zip(paths, metas or [None] * len(paths))]
    kept, rejects = vdata.run_stage(ProbeStage(), datasets.Dataset.from_list(rows))
    assert len(rejects) == 0
    return kept


def _copy(cut_video, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / name
    shutil.copy(cut_video[0], dst)
    return dst


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """11 minutes of one colour, 1 fps, 32x32: a video long enough for the stream's chapter times."""
    path = tmp_path_factory.mktemp("long") / "stream.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=blue:s=32x32:r=1:d=660", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                "-g", "60", str(path)])
    return path


# --- F7: fractional seconds ---------------------------------------------------------------------------------

def test_chapter_lines_with_fractional_seconds_keep_the_fraction():
    assert _marks("0:00.000 Intro\n0:12.250 Demo", require_zero_start=False) == [(0.0, None, "Intro"),
                                                                                 (12.25, None, "Demo")]
    assert _marks("00:00:00 Start\n00:00:07.5 Decimal chapter\n0:00:12 Third") == [
        (0.0, None, "Start"), (7.5, None, "Decimal chapter"), (12.0, None, "Third")]
    # Panda-style milliseconds, a comma as ffmpeg's SRT-style exports write it, and "." still a separator
    assert _marks("0:00:00.000 Opening\n0:00:05.839 Title\n0:00:07,5 Comma\n0:09. Dot") == [
        (0.0, None, "Opening"), (5.839, None, "Title"), (7.5, None, "Comma"), (9.0, None, "Dot")]


def test_fractional_chapter_times_from_a_description_and_a_chapters_file(tmp_path, cut_video):
    """The tester's b20 description (chapters_from_description) and a `.chapters.txt` sidecar, on a real video."""
    described = _copy(cut_video, tmp_path / "a", "b20.mp4")
    sidecar = _copy(cut_video, tmp_path / "b", "talk.mp4")
    (sidecar.parent / "talk.chapters.txt").write_text("0:00:00.000 Opening\n0:00:05.839 Demo\n")
    probed = _probed([described, sidecar],
                     [{"description": "00:00:00 Start\n00:00:07.5 Decimal chapter\n0:00:12 Third"}, None])
    kept, rejects = vdata.run_stage(AnnotationsStage(), probed)
    assert len(rejects) == 0
    chapters = {Path(r[R.PATH]).name: r[R.ANNOTATIONS]["chapters"] for r in kept}
    assert [(c["start_s"], c["title"]) for c in chapters["b20.mp4"]] == [(0.0, "Start"), (7.5, "Decimal chapter"),
                                                                       (12.0, "Third")]
    assert [(c["start_s"], c["end_s"], c["title"]) for c in chapters["talk.mp4"]][0] == (0.0, 5.839, "Opening")
    assert chapters["talk.mp4"][1]["title"] == "Demo"


# --- F8: prose lines that end in a clock time -----------------------------------------------------------------

def test_prose_lines_ending_in_a_time_are_not_chapters():
    parsed = parse_chapter_lines(STREAM)
    assert [(c.start_s, c.title) for c in parsed.items] == [(0.0, "Intro"), (135.0, "Setup"), (300.0, "Main talk"),
                                                             (600.0, "Q&A")]
    assert parsed.problems == []
    # the list's form is its 0:00 line's: a title-first list skips a line that leads with a time
    trailing = parse_chapter_lines("Intro 0:00\nSetup 1:00\n5:00 we took a break, back at\nMain 2:00")
    assert [(c.start_s, c.title) for c in trailing.items] == [(0.0, "Intro"), (60.0, "Setup"), (120.0, "Main")]
    assert trailing.problems == []
    # no 0:00 line (a list named as chapters): most lines decide
    named = parse_chapter_lines("1:00 One\nlunch at 12:30\n2:00 Two\n3:00 Three", require_zero_start=False)
    assert [c.title for c in named.items] == ["One", "Two", "Three"] and named.problems == []
    # a real out-of-order line of the list's own form is still reported
    backwards = parse_chapter_lines("0:00 A\n0:20 B\nsee you at 9:30\n0:10 C\n0:30 D")
    assert [c.title for c in backwards.items] == ["A", "C", "D"]   # of two rising runs, the one that rises least
    assert [p.reason for p in backwards.problems] == ["chapter_out_of_order"]


def test_a_stray_time_of_the_lists_own_form_is_the_one_left_out_and_another_forms_chapter_that_fits_is_kept():
    """Outside check h20 F17: in a "Title 0:00" list the prose line "Doors open 9:30" took the real "Main 1:30"'s
    place; and a chapter line of the other form ("Main part 1:30" among "0:00 Intro" lines) was dropped silently."""
    trailing = parse_chapter_lines("Intro 0:00\nSpecial guest 9:30\nMain 1:30")
    assert [(c.start_s, c.title) for c in trailing.items] == [(0.0, "Intro"), (90.0, "Main")]
    assert [p.reason for p in trailing.problems] == ["chapter_out_of_order"] and "9:30" in trailing.problems[0].raw
    # a time that a preposition or "open" leads is prose in any list: left out without a problem
    trailing = parse_chapter_lines("Intro 0:00\nDoors open 9:30\nMain 1:30")
    assert [(c.start_s, c.title) for c in trailing.items] == [(0.0, "Intro"), (90.0, "Main")] and not trailing.problems
    mixed = parse_chapter_lines("0:00 Intro\nMain part 1:30\n3:00 Outro")
    assert [(c.start_s, c.title) for c in mixed.items] == [(0.0, "Intro"), (90.0, "Main part"), (180.0, "Outro")]
    # a line of the other form whose time does not fit between its neighbours stays prose
    prose = parse_chapter_lines("0:00 Intro\nDoors open at 9:30\n3:00 Outro\nBye at 18:45")
    assert [c.title for c in prose.items] == ["Intro", "Outro"] and prose.problems == []


def test_a_stream_description_gives_its_chapters_and_no_out_of_order_rejects(long_video):
    """chapters_from_description (the default) and `sources: {chapters: description}` alike."""
    probed = _probed([long_video], [{"description": STREAM}])
    for settings in ({}, {"sources": {"chapters": "description"}}):
        kept, rejects = vdata.run_stage(AnnotationsStage(**settings), probed)
        assert [r["reason"] for r in rejects] == [], settings
        chapters = kept[0][R.ANNOTATIONS]["chapters"]
        assert [(c["start_s"], c["end_s"], c["title"]) for c in chapters] == [
            (0.0, 135.0, "Intro"), (135.0, 300.0, "Setup"), (300.0, 600.0, "Main talk"),
            (600.0, kept[0][R.DURATION_S], "Q&A")]
        assert kept[0][R.ANNOTATION_ISSUES] == 0 and kept[0][R.ANNOTATION_REPAIRS] == 0


# --- F9: ranges and one-line lists --------------------------------------------------------------------------

def test_range_lines_and_one_line_lists():
    assert _marks("0:00 - 0:45 Intro\n0:45 - 2:00 Part two\n2:00 - 3:00 End") == [
        (0.0, 45.0, "Intro"), (45.0, 120.0, "Part two"), (120.0, 180.0, "End")]
    assert _marks("00:00-02:30 Intro\n02:30-05:00 Main") == [(0.0, 150.0, "Intro"), (150.0, 300.0, "Main")]
    assert _marks("(0:00 – 0:45) Intro\n[0:45-1:00] Outro") == [(0.0, 45.0, "Intro"), (45.0, 60.0, "Outro")]
    assert _marks("Intro 0:00 - 0:45\nOutro 0:45 - 1:30") == [(0.0, 45.0, "Intro"), (45.0, 90.0, "Outro")]
    assert _marks("0:00 Intro | 0:30 Part 2 | 1:00 Outro") == [(0.0, None, "Intro"), (30.0, None, "Part 2"),
                                                               (60.0, None, "Outro")]
    assert _marks("0:00 Intro • 0:30 Demo; 1:00 Q&A") == [(0.0, None, "Intro"), (30.0, None, "Demo"),
                                                          (60.0, None, "Q&A")]
    # spaces alone: three rising times or more (a range's end is no cut); one time inside a title is its text
    assert _marks("0:00 Intro 0:30 Part 2 1:00 Outro") == [(0.0, None, "Intro"), (30.0, None, "Part 2"),
                                                           (60.0, None, "Outro")]
    assert _marks("0:00 - 0:45 Intro 0:45 - 2:00 Part two 2:00 - 3:00 End") == [
        (0.0, 45.0, "Intro"), (45.0, 120.0, "Part two"), (120.0, 180.0, "End")]
    assert _marks("0:00 Breakfast at 7:30 sharp\n0:10 Lunch") == [(0.0, None, "Breakfast at 7:30 sharp"),
                                                                  (10.0, None, "Lunch")]
    # a "|" before words, not a time, is part of the title
    assert _marks("0:00 Intro | welcome\n0:30 Demo") == [(0.0, None, "Intro | welcome"), (30.0, None, "Demo")]
    # ranges whose ends are the next starts change nothing in validation
    out, issues = validate_annotations({"chapters": [
        {"start_s": c.start_s, "end_s": getattr(c, "end_s", None), "title": c.title}
        for c in parse_chapter_lines("0:00 - 0:45 Intro\n0:45 - 2:00 Part two\n2:00 - 3:00 End").items]}, 180.0)
    assert [(c["start_s"], c["end_s"], c["title"]) for c in out["chapters"]] == [
        (0.0, 45.0, "Intro"), (45.0, 120.0, "Part two"), (120.0, 180.0, "End")] and issues == []


def test_range_lines_in_a_chapters_file_keep_titles_and_ends(tmp_path, cut_video):
    video = _copy(cut_video, tmp_path, "talk.mp4")
    (tmp_path / "talk.chapters.txt").write_text("0:00 - 0:05 Opening\n0:05 - 0:09 Middle\n0:09 - 0:12 Close\n")
    kept, rejects = vdata.run_stage(AnnotationsStage(), _probed([video]))
    assert len(rejects) == 0
    row = kept[0]
    assert [(c["start_s"], c["end_s"], c["title"]) for c in row[R.ANNOTATIONS]["chapters"]] == [
        (0.0, 5.0, "Opening"), (5.0, 9.0, "Middle"), (9.0, row[R.DURATION_S], "Close")]
    assert row[R.ANNOTATION_REPAIRS] == 1   # "Close" ended at 12 s, and runs on to the video's end (14 s)


# --- F1: <br> in subtitle cues -----------------------------------------------------------------------------

def test_br_tags_in_cues_are_line_breaks():
    srt = parse_subtitles("1\n00:00:01,000 --> 00:00:02,000\nFourth<br>line one<br/>two <BR />three\n", "srt")
    assert [c.text for c in srt.items] == ["Fourth line one two three"] and srt.problems == []
    vtt = parse_subtitles("WEBVTT\n\n00:01.000 --> 00:02.000\none<br>two\n\n00:02.000 --> 00:03.000\n"
                          "<i>a<br><br>b</i>\n", "vtt")
    assert [c.text for c in vtt.items] == ["one two", "a b"] and vtt.problems == []


def test_br_tags_in_a_subtitle_sidecar(tmp_path, cut_video):
    video = _copy(cut_video, tmp_path, "talk.mp4")
    (tmp_path / "talk.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nFourth<br>line with br\n\n"
                                       "2\n00:00:03,000 --> 00:00:04,000\nplain\nnew line\n")
    assert [c.text for c in load_subtitles(str(tmp_path / "talk.srt")).items] == ["Fourth line with br",
                                                                                  "plain new line"]
    kept, _ = vdata.run_stage(AnnotationsStage(), _probed([video]))
    assert [c["text"] for c in kept[0][R.ANNOTATIONS]["subtitles"]] == ["Fourth line with br", "plain new line"]


# --- F10: chapter ends the source gave -----------------------------------------------------------------------

def test_chapter_ends_a_frame_before_the_next_start_are_no_repair():
    """mkvmerge and other muxers end a chapter one frame (or 1 ms) before the next one starts: each counted a
    chapter_gap_absorbed repair (outside check h23)."""
    chapters = [{"start_s": 0.0, "end_s": 4.96, "title": "One"}, {"start_s": 5.0, "end_s": 8.999, "title": "Two"},
                {"start_s": 9.0, "end_s": 10.0, "title": "Three"}]
    fixed, issues = validate_annotations({"chapters": chapters}, 10.0, tolerance_s=0.5)
    assert issues == [] and [c["end_s"] for c in fixed["chapters"]] == [5.0, 9.0, 10.0]


def test_chapter_ends_that_differ_from_the_next_start_are_repairs():
    out, issues = validate_annotations({"chapters": [{"start_time": 0, "end_time": 4, "title": "x"},
                                                     {"start_time": 5.5, "end_time": 9, "title": "y"}]}, 20.0)
    assert [(c["start_s"], c["end_s"]) for c in out["chapters"]] == [(0.0, 5.5), (5.5, 20.0)]   # as documented
    assert [(i.reason, i.dropped, i.index) for i in issues] == [("chapter_gap_absorbed", False, 0),
                                                                ("chapter_gap_absorbed", False, 1)]
    assert "0-4 s" in issues[0].message and "5.5 s" in issues[0].message
    # the tester's d20.mkv chapters: 0-10, 5-15, 15-30 on a 20 s video
    out, issues = validate_annotations({"chapters": [[0, 10, "Opening"], [5, 15, "Overlapping part"],
                                                     [15, 30, "Runs past end"]]}, 20.0)
    assert [(c["start_s"], c["end_s"]) for c in out["chapters"]] == [(0.0, 5.0), (5.0, 15.0), (15.0, 20.0)]
    assert [(i.reason, i.item[-1]) for i in issues] == [("chapter_overlap_trimmed", "Opening"),
                                                        ("chapter_end_clamped", "Runs past end")]
    assert all(not i.dropped for i in issues)
    # ends that are the next starts, a last end within tolerance of the video's, or no ends: nothing to say
    for chapters in ([[0, 5, "a"], [5, 19.8, "b"]], [[0, 5, "a"], [5, 20.3, "b"]],
                     [{"start_s": 0, "title": "a"}, {"start_s": 5, "title": "b"}]):
        assert validate_annotations({"chapters": chapters}, 20.0)[1] == []


def test_yt_dlp_chapter_ends_are_counted_as_repairs_by_the_stage(tmp_path, cut_video):
    video = _copy(cut_video, tmp_path, "talk.mp4")
    (tmp_path / "talk.info.json").write_text(json.dumps({"id": "x", "title": "Talk", "chapters": [
        {"start_time": 0.0, "end_time": 4.0, "title": "Start"},
        {"start_time": 5.0, "end_time": 10.0, "title": "Overlap"},
        {"start_time": 9.0, "end_time": 30.0, "title": "Runs past end"}]}))
    kept, rejects = vdata.run_stage(AnnotationsStage(), _probed([video]))
    assert len(rejects) == 0
    row = kept[0]
    assert [(c["start_s"], c["end_s"]) for c in row[R.ANNOTATIONS]["chapters"]] == [(0.0, 5.0), (5.0, 9.0),
                                                                                   (9.0, row[R.DURATION_S])]
    assert row[R.ANNOTATION_REPAIRS] == 3 and row[R.ANNOTATION_ISSUES] == 0
    # which repairs, by reason, for the manifest's stage counters (a row keeps only their number: outside check h20)
    stage = AnnotationsStage()
    stage.setup()
    stage.process_batch(_probed([video]).to_list())
    assert stage.take_counters() == {"repaired_chapter_gap_absorbed": 1, "repaired_chapter_overlap_trimmed": 1,
                                     "repaired_chapter_end_clamped": 1}


# --- F6: segments and chapters across a shot cut at clip scope ------------------------------------------------

SEGMENTS = [{"start_s": 0.5, "end_s": 2.5, "text": "The bars appear."},
            {"start_s": 2.0, "end_s": 4.5, "text": "Overlapping second event."},   # across the cut at 3 s
            {"start_s": 3.5, "end_s": 5.5, "text": "The colours change."},
            {"start_s": 6.5, "end_s": 8.5, "text": "A fractal zooms."}]


def test_items_across_a_shot_cut_leave_one_reject_each(tmp_path):
    """Three scenes (cuts at 3 and 6 s), clip scope: the 2-4.5 s segment and both chapters (0-4 s, 4-9 s)
    cross a cut, so no clip holds them whole: one `annotation_crosses_clip` reject each, from the clip
    holding the item's start, whatever the number of clips and of tasks reading the kind."""
    no_ray()
    video = str(tmp_path / "three.mp4")
    render_segments(video, [Segment("testsrc2", 3.0), Segment("smptebars", 3.0), Segment("mandelbrot", 3.0)])
    manifest = tmp_path / "videos.jsonl"
    manifest.write_text(json.dumps({"path": video, "description": "0:00 Opening\n0:04 Middle",
                                    "segments": SEGMENTS}) + "\n")
    tasks = ("segment_grounding", "interval_caption", "dense_from_segments", "chapter_title", "chapter_grounding")
    cfg = parse_config({
        "input": [{"manifest": str(manifest)}], "output": {"dir": str(tmp_path / "out")},
        "stages": [{"probe": {}}, {"annotations": {"sources": {"chapters": "description"}}},
                   {"shots": {"min_len_s": 0.5}},
                   {"generate": {"scope": "clip", "tasks": {t: {} for t in tasks}}}]})
    result = vdata.build(cfg, progress=False)
    samples = pads.dataset(str(Path(result.output_dir) / "samples"), format="parquet").to_table().to_pylist()
    clips = sorted({(s[R.START_S], s[R.END_S]) for s in samples})
    assert [round(a) for a, _ in clips] == [0, 3, 6]
    rejects = pads.dataset(str(Path(result.output_dir) / "rejects"), format="parquet").to_table().to_pylist()
    crossing = [r for r in rejects if r["reason"] == "annotation_crosses_clip"]
    assert result.rejects_by_reason["generate:annotation_crosses_clip"] == 3
    found = sorted((d["kind"], d["item"]["start_s"], d["item"]["end_s"], tuple(round(x) for x in d["clip"]))
                   for d in (json.loads(r["detail"]) for r in crossing))
    assert found == [("chapters", 0.0, 4.0, (0, 3)), ("chapters", 4.0, 9.0, (3, 6)),
                     ("segments", 2.0, 4.5, (0, 3))]
    segment = next(r for r in crossing if json.loads(r["detail"])["kind"] == "segments")
    assert "segment 2-4.5 s 'Overlapping second event.' crosses the clip bounds [0, 3" in segment["message"]
    # the segment is in no sample; the segments inside the clips are
    grounded = [s for s in samples if s[R.TASK] == "segment_grounding"]
    assert sorted(sp["start_s"] for s in grounded for sp in s[R.ANSWER_SPANS]) == [0.5, 3.5, 6.5]


def test_chapter_ends_inside_an_mkv_and_a_chapters_dvc_file_reach_the_repair_check(tmp_path):
    """The container's chapters and VidChapters' chapters_dvc windows bring their ends: a gap between chapters
    is counted as a repair there too (they were read without their ends, so nothing was counted)."""
    from dataclasses import asdict

    from vdata.media.embedded import read_embedded
    from vdata.schemas.annotation_formats.captions import read_vidchapters

    meta = tmp_path / "chapters.txt"
    meta.write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=4000\ntitle=One\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=5500\nEND=10000\ntitle=Two\n")
    video = tmp_path / "v.mkv"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=10", "-i", str(meta), "-map_metadata", "1",
                "-map_chapters", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(video)])
    inside = read_embedded(str(video), None).chapters
    assert [(c.start_s, c.end_s) for c in inside] == [(0.0, 4.0), (5.5, 10.0)]
    dvc = read_vidchapters(json.dumps({"v1": {"duration": 10.0, "timestamps": [[0, 4], [5.5, 10]],
                                              "sentences": ["One", "Two"]}}))
    for chapters in ([asdict(c) for c in inside], dvc.videos[0].meta["chapters"]):
        fixed, issues = validate_annotations({"chapters": chapters}, 10.0, tolerance_s=0.5)
        assert [(c["start_s"], c["end_s"]) for c in fixed["chapters"]] == [(0.0, 5.5), (5.5, 10.0)]
        assert [(i.reason, i.dropped) for i in issues] == [("chapter_gap_absorbed", False)], issues


def test_chapter_lists_as_people_write_them_second_pass():
    """Outside check h23 on this stop's parser: a chapter title holding several clock times stayed one chapter
    only where the line is the whole list; a list under an "Intro 0:00" line kept its "1:00 A" lines; the first
    of two lines at one time stands; emoji, keycap and markdown bullets lead a time."""
    def parsed(text):
        result = parse_chapter_lines(text)
        return [(c.start_s, c.title) for c in result.items], [p.reason for p in result.problems]

    assert parsed("0:00 Intro\n0:40 Agenda: 9:00 coffee 10:00 talks 12:00 lunch\n1:20 Q&A\n2:00 Outro") == (
        [(0.0, "Intro"), (40.0, "Agenda: 9:00 coffee 10:00 talks 12:00 lunch"), (80.0, "Q&A"), (120.0, "Outro")], [])
    assert parsed("0:00 Intro 0:30 Part 2 1:00 Outro")[0] == [(0.0, "Intro"), (30.0, "Part 2"), (60.0, "Outro")]
    four = [(0.0, "Intro"), (60.0, "A"), (120.0, "B"), (180.0, "C")]
    assert parsed("Intro 0:00\n1:00 A\n2:00 B\n3:00 C") == (four, [])
    assert parsed("0:00 Intro\nA 1:00\nB 2:00\nC 3:00") == (four, [])
    assert parsed("0:00 Intro\n1:00 A\n1:00 B\n2:00 C") == ([(0.0, "Intro"), (60.0, "A"), (120.0, "C")],
                                                         ["chapter_out_of_order"])
    bullets = [(0.0, "Intro"), (83.0, "The fight"), (165.0, "Tips")]
    assert parsed("🎬 0:00 Intro\n🔥 1:23 The fight\n💡 2:45 Tips") == (bullets, [])
    assert parsed("1️⃣ 0:00 Intro\n2️⃣ 1:23 The fight\n3️⃣ 2:45 Tips") == (bullets, [])
    assert parsed("**0:00** Intro\n**1:23** The fight\n**2:45** Tips") == (bullets, [])
    # the list runs from its 0:00 line to the next: a tracklist after it, lyrics before it are not chapters
    three = [(0.0, "Intro"), (60.0, "A"), (120.0, "B")]
    assert parsed("0:00 Intro\n1:00 A\n2:00 B\n\nMusic used:\n0:00 Song1 - Artist\n2:30 Song2 - Artist") == (three, [])
    assert parsed("[0:12] la la\n[0:18] la\n[0:25] lo\n0:00 Intro\n1:00 A\n2:00 B") == (three, [])
    # third pass (h23 again): a prose line ending in a time leaves a one-line list whole, a prose "jump to 0:00"
    # is a list of one beside the real one, and two titles at 0:00 open one list
    assert parsed("Doors open at 9:30\n0:00 Intro | 0:30 Part 2 | 1:00 Outro")[0] == [(0.0, "Intro"), (30.0, "Part 2"),
                                                                                   (60.0, "Outro")]
    assert parsed("Skip the ad: jump to 0:00\n\n0:00 Intro\n1:00 A\n2:00 B") == (three, [])
    assert parsed("0:00 Intro\n0:00 Cold open\n1:00 A\n2:00 B") == (three, ["chapter_out_of_order"])


def test_prose_after_a_trailing_time_list_that_ends_in_a_clock_is_no_chapter():
    """"New videos every Friday at 18:00" after an "Intro 0:00" list became an 18-minute chapter (a
    chapter_past_end reject on a shorter video); a preposition before the time marks prose."""
    text = "Intro 0:00\nPart two 1:00\nOutro 2:30\nNew videos every Friday at 18:00\nLive from 9:30 until 11:00"
    parsed = parse_chapter_lines(text)
    assert [(c.start_s, c.title) for c in parsed.items] == [(0.0, "Intro"), (60.0, "Part two"), (150.0, "Outro")]
    assert parsed.problems == []
    # titles that end in a separator, not a preposition, stay chapters
    assert [c.title for c in parse_chapter_lines("Intro - 0:00\nQ&A | 1:30\nThe end @ 2:00").items] == \
        ["Intro", "Q&A", "The end"]


def test_text_that_opens_with_a_bracket_is_read_in_its_kinds_text_form(long_video):
    """Outside check h24 F10: the label "[Music] guitar" was a label_unparsable reject ("not valid JSON") and
    lost; a description "[Official Video]" over chapter lines gave a chapter_unparsable reject although its
    chapters were read. JSON is what starts like JSON; real JSON text is still read as JSON."""
    metas = [{"labels": "[Music] guitar", "description": "[Official Video]\n0:00 Intro\n0:04 Middle\n0:08 End"},
             {"labels": '["drums", "bass"]', "chapters": "{remastered}\n0:00 Start\n0:04 Finish"},
             {"labels": '["drums", '}]
    probed = _probed([long_video] * 3, metas)
    kept, rejects = vdata.run_stage(AnnotationsStage(sources={"labels": "labels", "chapters": ["chapters", "description"]}),
                                    probed)
    by_labels = {tuple(r[R.ANNOTATIONS]["labels"]): r for r in kept}
    assert set(by_labels) == {("[Music] guitar",), ("drums", "bass"), ()}
    assert [c["title"] for c in by_labels[("[Music] guitar",)][R.ANNOTATIONS]["chapters"]] == ["Intro", "Middle", "End"]
    assert [c["title"] for c in by_labels[("drums", "bass")][R.ANNOTATIONS]["chapters"]] == ["Start", "Finish"]
    assert [r["reason"] for r in rejects.to_list()] == ["label_unparsable"]   # '["drums", ' is broken JSON
