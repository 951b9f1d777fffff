"""Narrated videos with known facts: espeak-ng speaks a short script over scenes with hard cuts.

Each `Script` is a few `Scene`s; a scene shows one lavfi source with a keyword drawn on it while one
sentence is spoken. The sentences are the script's facts, so what the video says is known exactly:
the quickstart generates and checks QA against their transcript, and the filter benchmark builds true
claims from them and false ones by perturbing them (`perturbations`: another number, another name,
a negation).

espeak-ng comes from Debian (`apt-get install espeak-ng`; scripts/setup.sh installs it). Whisper
tiny.en transcribes its voice almost word for word.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass

from . import MediaError
from .ffmpeg import run_ffmpeg
from .synth import Segment, render_segments, text_filter

NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
SPARE_NAMES = ["Oliver", "Clara", "Jonas", "Emma", "Victor", "Nina"]   # never used in a script
# Moving sources (a still scene would fail the quality stage's motion check) that differ enough to cut.
SCENE_SOURCES = ["testsrc2", "mandelbrot", "cellauto"]


@dataclass(frozen=True)
class Scene:
    keyword: str           # drawn on screen: what the scene shows
    says: str              # the sentence spoken over it: a fact of the script
    negated: str           # the same sentence negated: a false claim


@dataclass(frozen=True)
class Script:
    name: str
    scenes: tuple[Scene, ...]

    @property
    def facts(self) -> list[str]:
        return [s.says for s in self.scenes]

    @property
    def names(self) -> set[str]:
        return {w for s in self.scenes for w in re.findall(r"\b[A-Z][a-z]{2,}\b", s.says)} - {"The", "Her", "His", "She"}


SCRIPTS = (
    Script("bakery", (
        Scene("BREAD", "Maria bakes three loaves of bread every morning.",
              "Maria never bakes bread in the morning."),
        Scene("MARKET", "Her brother Tom sells the bread at the market.",
              "Her brother Tom does not sell the bread at the market."),
        Scene("CLOCK", "The market stays open for five hours on Saturday.",
              "The market is not open on Saturday."),
    )),
    Script("garden", (
        Scene("TOMATO", "Peter grows twelve tomato plants in his garden.",
              "Peter does not grow tomato plants in his garden."),
        Scene("AUGUST", "The tomatoes turn red in August.",
              "The tomatoes do not turn red in August."),
        Scene("BASKET", "His sister Anna carries the tomatoes to the kitchen.",
              "His sister Anna does not carry the tomatoes to the kitchen."),
    )),
    Script("harbour", (
        Scene("BOATS", "Five fishing boats leave the harbour before sunrise.",
              "No fishing boats leave the harbour before sunrise."),
        Scene("CAPTAIN", "Captain Lucas drives the largest boat.",
              "Captain Lucas does not drive the largest boat."),
        Scene("FISH", "The boats return with fish in the afternoon.",
              "The boats never return with fish in the afternoon."),
    )),
    Script("workshop", (
        Scene("BIKES", "Laura repairs three old bicycles in her workshop.",
              "Laura does not repair bicycles in her workshop."),
        Scene("PAINT", "She paints the frames of the bicycles blue.",
              "She does not paint the frames of the bicycles."),
        Scene("MONDAY", "Her friend David delivers the bicycles on Monday.",
              "Her friend David never delivers the bicycles on Monday."),
    )),
)
DEMO_SCRIPTS = ("bakery", "workshop")
# Stories whose characters and objects come back scene after scene (the cross-clip entities stage and its
# MR. Video / StoryTeller recipes): kept apart from SCRIPTS, whose facts the filter benchmarks count.
STORY_SCRIPTS = (
    Script("errand", (
        Scene("CAR", "Maria drives the red car to the market.",
              "Maria does not drive the red car to the market."),
        Scene("DOOR", "Her friend Tom waits for Maria at the door.",
              "Her friend Tom does not wait for Maria at the door."),
        Scene("RIVER", "Maria parks the red car near the river.",
              "Maria does not park the red car near the river."),
    )),
)


def script(name: str) -> Script:
    for s in SCRIPTS + STORY_SCRIPTS:
        if s.name == name:
            return s
    raise KeyError(f"no narrated script {name!r} (have: {', '.join(s.name for s in SCRIPTS)})")


def perturbations(sentence: str, negated: str) -> list[tuple[str, str]]:
    """False claims made from a true sentence: (claim, kind) for kind in number, name, negation."""
    out = []
    for i, n in enumerate(NUMBERS):
        m = re.search(rf"\b{n}\b", sentence, re.I)
        if m:
            other = NUMBERS[i + 1] if i + 1 < len(NUMBERS) else NUMBERS[i - 1]
            other = other.capitalize() if m.group(0)[0].isupper() else other
            out.append((sentence[: m.start()] + other + sentence[m.end():], "number"))
            break
    names = [w for w in re.findall(r"\b[A-Z][a-z]{2,}\b", sentence) if w not in {"The", "Her", "His", "She"}
             and w.lower() not in NUMBERS and w not in {"Saturday", "Monday", "August", "Captain"}]
    if names:
        spare = next(s for s in SPARE_NAMES if s not in sentence)
        out.append((re.sub(rf"\b{names[0]}\b", spare, sentence, count=1), "name"))
    out.append((negated, "negation"))
    return out


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, wav_path: str, speed_wpm: int = 130) -> float:
    """espeak-ng says `text` into a WAV file; returns its duration in seconds."""
    if not have_espeak():
        raise MediaError("no_espeak", "espeak-ng not found: apt-get install espeak-ng (scripts/setup.sh does)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed_wpm), "-w", wav_path, text], check=True,
                   capture_output=True, timeout=60)
    with wave.open(wav_path) as w:
        return w.getnframes() / float(w.getframerate())


def render_narrated(path: str, spec: Script, size=(480, 270), fps: int = 25, lead_s: float = 0.3,
                    gap_s: float = 0.9) -> list[tuple[float, float, str]]:
    """The script as an H.264 + AAC mp4: scene k shows SCENE_SOURCES[k] with its keyword while its sentence
    is spoken (starting `lead_s` into the scene, then `gap_s` of silence). Returns (start_s, end_s,
    sentence) per scene; the scene boundaries are hard cuts."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vdata-narrated-") as tmp:
        wavs, spans, t = [], [], 0.0
        for k, scene in enumerate(spec.scenes):
            wav = os.path.join(tmp, f"s{k}.wav")
            speech = speak(scene.says, wav)
            # whole frames, so that the audio and the cut land on the same instant
            dur = round((lead_s + speech + gap_s) * fps) / fps
            wavs.append((wav, dur))
            spans.append((t, t + dur, scene.says))
            t += dur
        video = os.path.join(tmp, "video.mp4")
        segments = [Segment(SCENE_SOURCES[k % len(SCENE_SOURCES)], dur, text_filter(s.keyword, size=40, box=True))
                    for k, (s, (_, dur)) in enumerate(zip(spec.scenes, wavs))]
        render_segments(video, segments, size=size, fps=fps, crf=30)
        args = ["-i", video]
        chains = []
        for k, (wav, dur) in enumerate(wavs):
            args += ["-i", wav]
            lead = int(lead_s * 1000)
            chains.append(f"[{k + 1}:a]aresample=16000,adelay={lead}:all=1,apad=whole_dur={dur}[a{k}]")
        graph = ";".join(chains) + ";" + "".join(f"[a{k}]" for k in range(len(wavs))) + f"concat=n={len(wavs)}:v=0:a=1[a]"
        run_ffmpeg([*args, "-filter_complex", graph, "-map", "0:v", "-map", "[a]", "-c:v", "copy", "-c:a", "aac",
                    "-b:a", "64k", "-t", f"{t:.3f}", "-movflags", "+faststart", path])
    return spans


def write_narrated_videos(out_dir: str, names=DEMO_SCRIPTS) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    made = []
    for name in names:
        path = os.path.join(out_dir, f"narrated_{name}.mp4")
        render_narrated(path, script(name))
        made.append(path)
    return made
