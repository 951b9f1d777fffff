"""Outside check h25 F14: confident list-like narration is not dropped for its decoding window's compression ratio.

faster-whisper gives every segment of a 30-s decoding window that window's compression ratio: "Box one is red."
... "Box fifteen is white.", one sentence every 2 s, decoded word-perfectly, compresses 2.49 over the window
(above Whisper's 2.4) and every clip of the video was rejected `undecodable_speech`, with a message about
speech in another language. A segment is now judged by its own text; the window's ratio drops only segments
whose text the window says again (a loop cut into segments).

The gate's rules are checked on constructed segments; the end-to-end check uses espeak-ng speech and the
packaged tiny.en. Assertions are on behaviour (kept, dropped, rejected, what the message names), never exact text.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from vdata.media.asr import SegmentGate, SpeechSegment, Transcript, Word, text_compression_ratio
from vdata.media.ffmpeg import run_ffmpeg
from vdata.schemas import records as R
from vdata.stages.asr import AsrConfig, AsrStage
from vdata.stages.base import Reject, RunContext

NUMBERS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split()
COLOURS = ["red", "blue", "green", "yellow", "white"]
BOXES = [f"Box {n} is {COLOURS[i % 5]}." for i, n in enumerate(NUMBERS)]


def _window(texts: list[str], ratio: float, logprob: float = -0.13, step: float = 2.0) -> list[SpeechSegment]:
    """Segments of one decoding window: each carries the window's scores, as faster-whisper gives them."""
    out = []
    for i, text in enumerate(texts):
        start = i * step
        words = [Word(start + k * 0.3, start + k * 0.3 + 0.25, f" {w}", 0.9) for k, w in enumerate(text.split())]
        out.append(SpeechSegment(start, start + 1.5, text, words, "en", logprob, ratio, 0.01))
    return out


def test_a_confident_window_of_list_narration_keeps_every_segment():
    gate = SegmentGate()
    segments = _window(BOXES, ratio=2.49)   # one segment a sentence, each with the window's ratio
    assert [gate.problem(s) for s in segments] == [None] * len(BOXES)
    kept, dropped = Transcript("en", None, 30.0, segments).screened(gate)
    assert dropped == [] and len(kept.segments) == len(BOXES)
    # all of it as one segment (tiny.en's decode of the tester's video): its own text is over 2.4 too, and the
    # decoder sure of it; the same text decoded unsurely is dropped
    said = ", ".join(b.rstrip(".") for b in BOXES) + ", Box fifteen is white,"   # as tiny.en wrote it
    assert text_compression_ratio(said) > gate.max_compression_ratio
    whole = _window([said], ratio=2.51, step=0.0)[0]
    whole.end_s = 30.0
    assert gate.problem(whole) is None
    whole.avg_logprob = -0.8
    assert gate.problem(whole) == "repetitive"
    # a segment whose own text loops is still dropped, however sure the decoder and whatever its window's ratio
    loop = _window(["I don't know what I'm saying, " * 12], ratio=1.3, logprob=-0.05)
    assert gate.problem(loop[0]) == "repetitive"


def test_a_loop_cut_into_segments_is_dropped_by_its_windows_ratio():
    gate = SegmentGate()
    # "Thank you." over and over, each copy its own segment: each too short for a ratio of its own
    loop = _window(["Box one is red."] + ["Thank you."] * 5, ratio=3.1)
    kept, dropped = Transcript("en", None, 30.0, loop).screened(gate)
    assert [s.text for s in kept.segments] == ["Box one is red."]
    assert [r for _, r in dropped] == ["repetitive"] * 5
    # the same words in a window Whisper did not find repetitive: two "Thank you."s are just speech
    calm = _window(["Box one is red.", "Thank you.", "Box two is blue.", "Thank you."], ratio=1.6)
    assert Transcript("en", None, 30.0, calm).screened(gate)[1] == []
    # the next window's copy is not the loop's: windows are told apart by their scores
    other = _window(["Thank you."], ratio=1.2)
    for s in other:
        s.start_s, s.end_s = 40.0, 41.0
    kept, dropped = Transcript("en", None, 60.0, _window(["Box one is red.", "Thank you."], ratio=3.1) + other
                               ).screened(gate)
    assert dropped == [] and len(kept.segments) == 3
    # switched off with the ratio check
    assert Transcript("en", None, 30.0, loop).screened(SegmentGate(max_compression_ratio=None))[1] == []


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt)")


@pytest.fixture(scope="module")
def boxes(tmp_path_factory) -> str:
    """30 s of audio, one sentence every 2 s ("Box one is red." ...), as the tester's boxes.mp4."""
    d: Path = tmp_path_factory.mktemp("boxes")
    inputs, chains = [], []
    for i, text in enumerate(BOXES):
        wav = d / f"b{i}.wav"
        subprocess.run(["espeak-ng", "-s", "170", "-w", str(wav), text], check=True, capture_output=True)
        inputs += ["-i", str(wav)]
        ms = int((i * 2 + 0.2) * 1000)
        chains.append(f"[{i}:a]aresample=16000,adelay={ms}|{ms}[a{i}]")
    mix = "".join(f"[a{i}]" for i in range(len(BOXES))) + f"amix=inputs={len(BOXES)}:normalize=0,apad,atrim=0:30[a]"
    out = d / "boxes.m4a"
    run_ffmpeg([*inputs, "-filter_complex", ";".join(chains) + ";" + mix, "-map", "[a]", "-c:a", "aac", "-t", "30",
                str(out)])
    return str(out)


@needs_espeak
def test_list_narration_clips_keep_their_transcript(boxes, tmp_path):
    stage = AsrStage(AsrConfig(model="tiny.en", cpu_threads=2), RunContext(output_dir="", cache_dir=str(tmp_path)))
    stage.setup()
    clips = [{R.PATH: boxes, R.VIDEO_ID: "boxes", R.HAS_AUDIO: True, R.START_S: float(a), R.END_S: float(a + 5)}
             for a in range(0, 30, 5)]
    out = stage.process_batch(clips)
    heard = stage.transcript_for(clips[0])   # the decode the clips were cut from (memory cache)
    # the case of the finding: Whisper's window ratio is over its threshold, and the decode is confident
    ratios = [s.compression_ratio for s in heard.segments]
    assert any((r or 0.0) > 2.4 for r in ratios), ratios
    assert all(s.avg_logprob > -0.5 for s in heard.segments)
    rejected = [o for o in out if isinstance(o, Reject)]
    assert not rejected, rejected[0].message if rejected else ""
    assert all(o[R.TRANSCRIPT_TEXT] and o[R.TRANSCRIPT_LANGUAGE] == "en" for o in out)
    counters = stage.take_counters()
    assert not any(k.startswith("segments_dropped_") for k in counters), counters
    # what a failure says: the check that failed and the text it dropped; no language guessed for repetition
    seg = SpeechSegment(0.0, 4.0, "Box seven is blue.", [], "en", -0.2, 3.0, 0.01)
    out = stage.attach({**clips[0], R.END_S: 5.0}, Transcript.empty(30.0), [(seg, "repetitive")])
    assert isinstance(out, Reject) and out.reason == "undecodable_speech"
    assert "compression ratio > 2.4" in out.message and "Box seven is blue." in out.message, out.message
    assert "if this speech is not English" in out.message and "comes out as invented English" not in out.message
    silent = stage.attach({**clips[0], R.END_S: 5.0}, Transcript.empty(30.0), [(seg, "no_speech")])
    assert isinstance(silent, Reject) and "English" not in silent.message, silent.message
