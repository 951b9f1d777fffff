"""Subtitle and annotation inputs as they arrive from the wild: legacy and mixed encodings, sidecars that
give nothing, upper-case extensions, cues past the video's end, cues across shot cuts, whole-source
subtitle lines of a web clip, forced subtitle tracks and a non-UTF-8 SubRip track. Real files: subtitles
written in the encodings in question, MKVs muxed with imageio-ffmpeg's ffmpeg."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.subtitles import load_subtitles, read_text
from vdata.schemas import records as R
from vdata.schemas.annotations import validate_annotations
from vdata.stages.annotations import AnnotationsStage

FRENCH = ["Ça va très bien, merci. À bientôt, garçon!", "Le café est déjà prêt à côté de la forêt."]


def _srt(lines: list[str], first: int = 1) -> str:
    return "\n".join(f"{i}\n00:00:0{first + 2 * k},000 --> 00:00:0{first + 2 * k + 1},500\n{line}\n"
                     for k, (i, line) in enumerate(enumerate(lines, 1)))


@pytest.fixture(scope="module")
def plain_video(tmp_path_factory) -> str:
    """A 10-s picture-only video, the base every test muxes or names sidecars after."""
    path = tmp_path_factory.mktemp("subs") / "base.mkv"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=10", "-c:v", "mpeg4", str(path)])
    return str(path)


def _gather(video: Path, **settings) -> tuple[dict, list]:
    return AnnotationsStage(**settings).gather({R.PATH: str(video), R.SOURCE_URI: str(video), R.SOURCE_META: None})


def _texts(raw: dict) -> list[str]:
    return [c["text"] for c in raw.get("subtitles") or []]


# --- F2 / F5: encodings ------------------------------------------------------------------------------

def test_western_code_pages_are_not_read_as_baltic_and_other_pages_still_are(tmp_path):
    """French in Latin-1 / cp1252 (charset_normalizer ranks cp1257 first for it) reads as written, the
    example of read_text's own docstring included; a Windows-1252 CSV manifest keeps its file names. Text
    in other legacy pages still decodes in its own page."""
    (tmp_path / "fr.srt").write_bytes(_srt(FRENCH).encode("latin-1"))
    assert [c.text for c in load_subtitles(str(tmp_path / "fr.srt")).items] == FRENCH
    mixed = ["Grüße aus München, ça va? Señor Ñandú", "Déjà vu à l'hôtel"]
    (tmp_path / "mixed.srt").write_bytes(_srt(mixed).encode("cp1252"))
    assert [c.text for c in load_subtitles(str(tmp_path / "mixed.srt")).items] == mixed
    (tmp_path / "list.csv").write_bytes("path,title,transcript\r\ngarçon_à_la_forêt.mp4,Ça va très bien,"
                                        "Le café est déjà prêt à côté de la forêt.\r\n".encode("cp1252"))
    from vdata.pipelines.manifest_tables import read_manifest

    rows = [r for _, r in read_manifest(str(tmp_path / "list.csv")).records]
    assert rows[0]["path"] == "garçon_à_la_forêt.mp4" and rows[0]["title"] == "Ça va très bien"
    for text, encoding in [("Zażółć gęślą jaźń. Właśnie przyszedł do domu, żeby zjeść obiad z rodziną.", "cp1250"),
                           ("Привет, как дела? Я очень рад тебя видеть сегодня вечером.", "cp1251"),
                           ("Καλημέρα, τι κάνεις; Είμαι πολύ καλά, ευχαριστώ.", "cp1253"),
                           ("Günaydın, nasılsın? Çok iyiyim, teşekkür ederim. Şimdi gidiyorum.", "cp1254")]:
        (tmp_path / "other.srt").write_bytes(_srt([text]).encode(encoding))
        assert read_text(str(tmp_path / "other.srt")).splitlines()[2] == text, encoding


def test_a_utf8_file_with_stray_bytes_stays_utf8_and_the_repair_is_counted(tmp_path, plain_video):
    """One Latin-1 word pasted into a UTF-8 file (edited in two editors) made charset_normalizer read the
    whole file in a Cyrillic page; it stays UTF-8, the stray bytes read as Windows-1252, a repair."""
    video = tmp_path / "stray.mkv"
    Path(video).symlink_to(plain_video)
    (tmp_path / "stray.srt").write_bytes("1\n00:00:01,000 --> 00:00:03,000\nNaïve café — “quoted” 日本\n\n"
                                         "2\n00:00:04,000 --> 00:00:05,000\nStray: ".encode("utf-8") + b"\xe9t\xe9\n")
    parsed = load_subtitles(str(tmp_path / "stray.srt"))
    assert [c.text for c in parsed.items] == ["Naïve café — “quoted” 日本", "Stray: été"]
    assert [(p.reason, p.dropped) for p in parsed.problems] == [("subtitle_encoding_repaired", False)]
    assert "2 byte(s)" in parsed.problems[0].message
    raw, issues = _gather(video)
    assert _texts(raw) == ["Naïve café — “quoted” 日本", "Stray: été"]
    assert [(i.reason, i.dropped) for i in issues] == [("subtitle_encoding_repaired", False)]   # counted, no reject


# --- F4 / F6: sidecar lookup ---------------------------------------------------------------------------

def test_a_sidecar_with_no_cue_lets_the_next_source_speak_and_is_reported(tmp_path, plain_video):
    good = _srt(["Real English subtitles"])
    # an empty talk.srt (a failed download) before a good talk.en.srt
    (tmp_path / "empty.mkv").symlink_to(plain_video)
    (tmp_path / "empty.srt").write_bytes(b"")
    (tmp_path / "empty.en.srt").write_text(good)
    raw, issues = _gather(tmp_path / "empty.mkv")
    assert _texts(raw) == ["Real English subtitles"]
    assert [(i.reason, i.dropped) for i in issues] == [("subtitle_empty", True)] and "empty.srt" in issues[0].message
    # a garbled talk.srt: its bad block is said, and the .en.srt is read
    (tmp_path / "garbled.mkv").symlink_to(plain_video)
    (tmp_path / "garbled.srt").write_text("1\n00:00:01,000 -> 00:00:02,000\nbad\n")
    (tmp_path / "garbled.en.srt").write_text(good)
    raw, issues = _gather(tmp_path / "garbled.mkv")
    assert _texts(raw) == ["Real English subtitles"] and [i.reason for i in issues] == ["subtitle_unparsable"]
    # a blank talk.srt next to a video that carries an English track: the track is read
    (tmp_path / "track.srt").write_text(_srt(["Embedded English", "Second cue"]))
    run_ffmpeg(["-i", plain_video, "-i", str(tmp_path / "track.srt"), "-map", "0:v", "-map", "1", "-c:v", "copy",
                "-c:s", "srt", "-metadata:s:s:0", "language=eng", str(tmp_path / "inside.mkv")])
    (tmp_path / "inside.srt").write_text("\n\n")
    raw, issues = _gather(tmp_path / "inside.mkv")
    assert _texts(raw) == ["Embedded English", "Second cue"] and [i.reason for i in issues] == ["subtitle_empty"]
    # the stage counts it: one reject row for the empty file, the video kept with the track's cues
    stage = AnnotationsStage()
    out = stage.process_row({R.PATH: str(tmp_path / "inside.mkv"), R.SOURCE_URI: str(tmp_path / "inside.mkv"),
                             R.SOURCE_META: None, R.DURATION_S: 10.0})
    kept = [r for r in out if isinstance(r, dict)]
    assert len(kept) == 1 and kept[0][R.ANNOTATION_ISSUES] == 1 and len(kept[0][R.ANNOTATIONS]["subtitles"]) == 2
    assert [r.reason for r in out if not isinstance(r, dict)] == ["subtitle_empty"]


def test_sidecar_extensions_match_in_any_case(tmp_path, plain_video):
    for stem, name in [("upper", "upper.SRT"), ("upperlang", "upperlang.en.SRT"), ("web", "web.VTT")]:
        (tmp_path / f"{stem}.mkv").symlink_to(plain_video)
        text = _srt([f"from {name}"]) if name.endswith("SRT") else \
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfrom web.VTT\n"
        (tmp_path / name).write_text(text)
        raw, issues = _gather(tmp_path / f"{stem}.mkv")
        assert _texts(raw) == [f"from {name}"] and issues == []


# --- F7: items past the video's end ---------------------------------------------------------------------

def test_a_cue_that_overlaps_the_video_is_clamped_and_only_one_wholly_outside_is_out_of_range(tmp_path):
    (tmp_path / "pastend.srt").write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nInside\n\n2\n00:00:07,500 --> 00:00:12,000\nEnds 2 s past the end\n\n"
        "3\n00:00:14,000 --> 00:00:16,000\nWholly past the end\n")
    cues = [asdict(c) for c in load_subtitles(str(tmp_path / "pastend.srt")).items]
    out, issues = validate_annotations({"subtitles": cues}, 10.0)
    assert [(c["start_s"], c["end_s"], c["text"]) for c in out["subtitles"]] == [
        (1.0, 2.0, "Inside"), (7.5, 10.0, "Ends 2 s past the end")]
    assert [(i.reason, i.dropped) for i in issues] == [("subtitle_clamped", False), ("subtitle_out_of_range", True)]
    assert "wholly outside" in issues[1].message
    # a chapter that starts before the video but runs into it starts at 0; one wholly before is out
    out, issues = validate_annotations({"chapters": [{"start_s": -9, "title": "Gone"}, {"start_s": -5, "title": "Pre"},
                                                     {"start_s": 4, "title": "Main"}, {"start_s": 12, "title": "Past"}]},
                                       10.0)
    assert out["chapters"] == [{"start_s": 0.0, "end_s": 4.0, "title": "Pre"}, {"start_s": 4.0, "end_s": 10.0, "title": "Main"}]
    assert sorted((i.reason, i.dropped) for i in issues) == [("chapter_before_start", True), ("chapter_clamped", False),
                                                             ("chapter_past_end", True)]
    # a segment describes all its span: clamped when at least half is inside, else out of range as before
    out, issues = validate_annotations({"segments": [[7.0, 12.0, "mostly in"], [5.0, 69.0, "a Panda-70M clip"]]}, 10.0)
    assert out["segments"] == [{"start_s": 7.0, "end_s": 10.0, "text": "mostly in"}]
    assert [(i.reason, i.dropped) for i in issues] == [("segment_clamped", False), ("segment_out_of_range", True)]


# --- F8: clip scope ------------------------------------------------------------------------------------

def test_a_cue_across_a_shot_cut_goes_to_the_clip_holding_its_middle():
    from vdata.stages.generate.clues import annotation_clues

    ann = {"subtitles": [{"start_s": 5.0, "end_s": 7.5, "text": "Straddling cue across the cut"},
                         {"start_s": 8.0, "end_s": 9.0, "text": "Inside clip two"},
                         {"start_s": 11.5, "end_s": 12.3, "text": "Mostly clip two"}],
           "segments": [{"start_s": 5.0, "end_s": 7.5, "text": "an event across the cut"}]}
    clips = [(0.0, 6.0), (6.0, 12.0), (12.0, 18.0)]
    got = {span: [(c.text, c.start_s, c.end_s) for c in annotation_clues(
        {R.START_S: span[0], R.END_S: span[1], R.ANNOTATIONS: ann}, 200) if c.label == "subtitle"] for span in clips}
    assert got == {(0.0, 6.0): [], (6.0, 12.0): [("Straddling cue across the cut", 6.0, 7.5),
                                                 ("Inside clip two", 8.0, 9.0), ("Mostly clip two", 11.5, 12.0)],
                   (12.0, 18.0): []}
    # every cue reaches exactly one clip
    assert sum(len(v) for v in got.values()) == len(ann["subtitles"])
    whole = annotation_clues({R.START_S: 0.0, R.END_S: 18.0, R.ANNOTATIONS: ann}, 200, whole_video=True)
    assert [c.text for c in whole if c.label == "subtitle"] == [s["text"] for s in ann["subtitles"]]


# --- F11: a web clip's subtitles from the whole source --------------------------------------------------

def test_whole_source_subtitle_lines_outside_a_video2dataset_clip_are_left_out():
    from vdata.schemas.annotation_formats.web_clips import _sample_meta

    lines = [{"start": "00:00:01.000", "end": "00:00:03.000", "lines": ["before clip"]},
             {"start": "00:00:04.000", "end": "00:00:06.000", "lines": ["across the start"]},
             {"start": "00:00:06.000", "end": "00:00:08.000", "lines": ["inside clip"]},
             {"start": "00:00:09.000", "end": "00:00:11.000", "lines": ["across the end"]},
             {"start": "00:00:12.000", "end": "00:00:14.000", "lines": ["after clip"]}]
    meta = _sample_meta({"key": "000001", "status": "success", "clips": "[('00:00:05.000', '00:00:10.000')]",
                         "yt_meta_dict": {"subtitles": lines}}, None)
    assert meta["subtitles"] == [{"start_s": 0.0, "end_s": 1.0, "text": "across the start"},
                                 {"start_s": 1.0, "end_s": 3.0, "text": "inside clip"},
                                 {"start_s": 4.0, "end_s": 5.0, "text": "across the end"}]
    _, issues = validate_annotations({"subtitles": meta["subtitles"]}, 5.0)
    assert issues == []


# --- F13 / F14: embedded tracks ------------------------------------------------------------------------

def test_a_full_track_is_taken_before_forced_hearing_impaired_and_commentary_ones(tmp_path, plain_video):
    from vdata.media.embedded import SubtitleTrack, pick_track, read_embedded

    tracks = {"forced": _srt(["[Speaking French] Bonjour only"]), "commentary": _srt(["Director: we shot this"]),
              "sdh": _srt(["[door slams] Full line one"]), "full": _srt(["Full line one", "Full line two"])}
    args = ["-i", plain_video]
    for name, text in tracks.items():
        (tmp_path / f"{name}.srt").write_text(text)
        args += ["-i", str(tmp_path / f"{name}.srt")]
    args += ["-map", "0:v", *[x for k in range(len(tracks)) for x in ("-map", str(k + 1))], "-c:v", "copy", "-c:s", "srt",
             "-metadata:s:s:0", "language=eng", "-metadata:s:s:0", "title=Forced", "-disposition:s:0", "forced",
             "-metadata:s:s:1", "language=eng", "-metadata:s:s:1", "title=Commentary",
             "-metadata:s:s:2", "language=eng", "-disposition:s:2", "hearing_impaired",
             "-metadata:s:s:3", "language=eng", "-metadata:s:s:3", "title=English", "-disposition:s:3", "0"]
    run_ffmpeg([*args, str(tmp_path / "forced_first.mkv")])
    assert [c.text for c in read_embedded(str(tmp_path / "forced_first.mkv"), ["en"]).subtitles.items] == [
        "Full line one", "Full line two"]
    # no full track: the one for the hard of hearing, then the forced one, a commentary last
    sdh, forced, commentary = (SubtitleTrack(2, "en", "subrip", 0x80), SubtitleTrack(1, "en", "subrip", 0x40),
                               SubtitleTrack(3, "en", "subrip", 0, "Director's commentary"))
    assert pick_track([commentary, forced, sdh], ["en"]) == sdh
    assert pick_track([commentary, forced], ["en"]) == forced
    assert pick_track([SubtitleTrack(1, "en", "subrip", 0, "English (Forced)"), SubtitleTrack(2, "en", "subrip")],
                      ["en"]).index == 2
    assert pick_track([forced, SubtitleTrack(4, "de", "subrip")], ["de", "en"]).index == 4   # language first


def test_a_non_utf8_subrip_track_is_read_with_the_charset_fallback(tmp_path, plain_video):
    from vdata.media.embedded import read_embedded

    (tmp_path / "fr.srt").write_bytes(_srt(["<i>" + FRENCH[0] + "</i>", FRENCH[1]]).encode("cp1252"))
    video = tmp_path / "latin1_track.mkv"
    run_ffmpeg(["-i", plain_video, "-i", str(tmp_path / "fr.srt"), "-map", "0:v", "-map", "1", "-c:v", "copy",
                "-c:s", "copy", "-metadata:s:s:0", "language=fre", str(video)])
    parsed = read_embedded(str(video), ["fr"]).subtitles
    assert [(c.start_s, c.end_s, c.text) for c in parsed.items] == [(1.0, 2.5, FRENCH[0]), (3.0, 4.5, FRENCH[1])]
    assert [(p.reason, p.dropped) for p in parsed.problems] == [("subtitle_encoding_repaired", False)]
    raw, issues = _gather(video, subtitle_languages=["fr"])
    assert _texts(raw) == FRENCH and [i.reason for i in issues] == ["subtitle_encoding_repaired"]
