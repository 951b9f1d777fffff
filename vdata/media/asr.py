"""Whisper speech recognition: transcripts and the engines that make them.

No stage logic lives here (grouping clips by video, caching, attaching words to clips: see
`vdata.stages.asr`). Three modules answer three questions:

1. **Which weights?** `vdata.media.whisper_models`: `locate_model(spec, backend)` and `materialize()`.
2. **Which samples?** `vdata.media.audio`: `decode_audio(path)`, 16 kHz mono on the video's clock (its first
   frame is 0).
3. **Which words, in which language?** here: `load_engine(...)` returns a `WhisperEngine`
   (faster-whisper: CTranslate2, int8 on CPU / float16 on GPU, Silero VAD, segment + word
   timestamps; or openai-whisper where installed) whose `transcribe(path)` gives a `Transcript` with
   video-absolute times and a language on every segment.

Language per window, not per video: Whisper fixes one language per call (faster-whisper's
`multilingual=True` re-detects per 30-s decoding window but does not say which language a segment got,
and a 30-s window easily spans a switch). So with a multilingual model and no configured language,
the engine cuts the audio at pauses (Silero VAD, the same model faster-whisper filters with), detects
the language of each speech window, joins neighbouring windows of one language into a run, and
transcribes each run with its language fixed. Every segment records the language it was decoded in.
A monolingual file still costs one transcription, plus one language detection per speech window.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from .audio import DECODE_VERSION, SAMPLE_RATE, DecodedAudio, decode_audio
from .whisper_models import (BACKENDS, PACKAGED_MODELS, ModelLocation, ModelNotAvailable, PackagedModel,
                             _fingerprint, default_model_cache, is_offline, locate_model, materialize)

__all__ = ["BACKENDS", "PACKAGED_MODELS", "SAMPLE_RATE", "DecodedAudio", "ModelLocation", "ModelNotAvailable",
           "PackagedModel", "SpeechSegment", "Transcript", "TranscribeOptions", "WhisperEngine", "Word",
           "decode_audio", "default_model_cache", "dominant_language", "is_offline", "load_engine",
           "locate_model", "materialize"]

LANGUAGE_MODES = ("window", "video")
# A speech window shorter than this gives Whisper too little to tell languages apart (espeak and real
# speech alike: under a second, the detector's top guess flips between related languages); such a
# window, or one whose top language scores below MIN_LANGUAGE_PROBABILITY, takes its neighbour's.
MIN_DETECT_S = 1.0
MIN_LANGUAGE_PROBABILITY = 0.5
MAX_WINDOW_S = 30.0   # Whisper's own input length: detection never sees more than this
# Whisper's temperature fallback decodes a window that fails its checks (repetitive text, a low mean
# log-probability) again by sampling at rising temperatures, and keeps the best-scoring try. Sampling
# draws from an unseeded generator: the same audio then gave a correct transcript in one run and
# "7, 3, 5, 6, 10, ..." in the next. So a fixed temperature of 0 (the same decode every run) is the
# default; `temperature_fallback` turns the fallback on, with the generator seeded before each pass.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FALLBACK_SEED = 0


@dataclass
class Word:
    start_s: float        # video-absolute
    end_s: float
    word: str             # as the model emits it (leading space included: "".join(words) is the text)
    probability: float


@dataclass
class SpeechSegment:
    start_s: float
    end_s: float
    text: str
    words: list[Word] = field(default_factory=list)
    language: str | None = None     # the language this segment was decoded in


def dominant_language(segments: list[dict] | list[SpeechSegment]) -> str | None:
    """The language with the most speech time among `segments` (dicts or SpeechSegments)."""
    spoken: dict[str, float] = {}
    for s in segments:
        lang, start, end = ((s.get("language"), s["start_s"], s["end_s"]) if isinstance(s, dict)
                            else (s.language, s.start_s, s.end_s))
        if lang:
            spoken[lang] = spoken.get(lang, 0.0) + max(end - start, 1e-3)
    return max(spoken, key=spoken.__getitem__) if spoken else None


@dataclass
class Transcript:
    """One video's speech. Times are video-absolute (the container clock the clip times use).
    `language` is the language with the most speech; each segment carries its own."""

    language: str | None
    language_probability: float | None
    duration_s: float
    segments: list[SpeechSegment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]

    @property
    def languages(self) -> list[str]:
        """Every language spoken, in order of first appearance."""
        return list(dict.fromkeys(s.language for s in self.segments if s.language))

    @classmethod
    def empty(cls, duration_s: float = 0.0) -> "Transcript":
        return cls(None, None, duration_s, [])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Transcript":
        segs = [SpeechSegment(s["start_s"], s["end_s"], s["text"], [Word(**w) for w in s.get("words") or []],
                              s.get("language"))
                for s in d.get("segments") or []]
        return cls(d.get("language"), d.get("language_probability"), d.get("duration_s", 0.0), segs)


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = None           # None: detect
    language_detection: str = "window"    # window: per speech window (see module doc); video: once per video
    initial_prompt: str | None = None     # text the decoder continues from (spellings, style, context)
    hotwords: str | None = None           # words to favour (faster-whisper only)
    vad: bool = True
    vad_min_silence_ms: int = 500
    word_timestamps: bool = True
    beam_size: int = 5
    temperature_fallback: bool = False   # sample again at rising temperatures where a window fails (see above)
    silence_dbfs: float = -60.0           # a track whose peak stays below this is silent: no model run
    max_failed_packet_ratio: float = 0.5


@dataclass
class _Run:
    """A stretch of audio in one language: sample range, language and its detection probability."""

    start: int
    end: int
    language: str | None
    probability: float | None


class WhisperEngine:
    """A loaded Whisper model. `transcriptions` counts videos decoded and transcribed by this object;
    `model_runs` those that reached the model; `decode_calls` the model's transcription passes."""

    backend = ""

    def __init__(self, location: ModelLocation, options: TranscribeOptions):
        if options.language_detection not in LANGUAGE_MODES:
            raise ValueError(f"language_detection must be one of {LANGUAGE_MODES}, not {options.language_detection!r}")
        self.location = location
        self.options = options
        self.transcriptions = 0
        self.model_runs = 0
        self.decode_calls = 0

    @property
    def model_name(self) -> str:
        return self.location.name

    @property
    def cache_id(self) -> str:
        """Names the transcript cache: changes with the weights and with every output-affecting option."""
        opts = {k: v for k, v in asdict(self.options).items() if k != "max_failed_packet_ratio"}
        opts["decode_version"] = DECODE_VERSION
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.location.label)
        return f"{self.backend}-{safe}-{_fingerprint(self.location.fingerprint, opts)[:10]}"

    @property
    def is_multilingual(self) -> bool:
        return True

    def transcribe(self, path: str) -> Transcript:
        # the track in the language asked for, or the one an English-only model understands
        language = self.options.language or (None if self.is_multilingual else "en")
        audio = decode_audio(path, max_failed_ratio=self.options.max_failed_packet_ratio, language=language)
        self.transcriptions += 1
        return self.transcribe_audio(audio)

    def transcribe_audio(self, audio: DecodedAudio) -> Transcript:
        if audio.peak_dbfs() < self.options.silence_dbfs:
            return Transcript.empty(audio.duration_s)
        self.model_runs += 1
        runs = self._language_runs(audio.samples)
        segments: list[SpeechSegment] = []
        for run in runs:
            language, probability, segs = self._decode(audio.samples[run.start:run.end], run.language)
            self.decode_calls += 1
            shift = audio.offset_s + run.start / SAMPLE_RATE
            for s in segs:
                s.language = s.language or language
                s.start_s, s.end_s = s.start_s + shift, s.end_s + shift
                for w in s.words:
                    w.start_s, w.end_s = w.start_s + shift, w.end_s + shift
            if run.language is None:   # the decoder detected it
                run.language, run.probability = language, probability
            segments += [s for s in segs if s.text.strip()]
        if not segments:
            return Transcript(None, None, audio.duration_s, [])
        language = dominant_language(segments)
        probs = [r.probability for r in runs if r.language == language and r.probability is not None]
        return Transcript(language, max(probs) if probs else None, audio.duration_s, segments)

    def _language_runs(self, samples: np.ndarray) -> list[_Run]:
        """Where each language is spoken. One run over everything (language None: the decoder detects
        it) unless the language is detected per window (see the module doc)."""
        o = self.options
        whole = [_Run(0, len(samples), o.language, None)]
        if o.language or o.language_detection != "window" or not self.is_multilingual:
            return whole
        windows = self._speech_windows(samples)
        labels: list[tuple[str, float] | None] = []
        for start, end in windows:
            if end - start < MIN_DETECT_S * SAMPLE_RATE:
                labels.append(None)
                continue
            language, probability = self._detect(samples[start:end])
            labels.append((language, probability) if probability >= MIN_LANGUAGE_PROBABILITY else None)
        sure = [i for i, lab in enumerate(labels) if lab is not None]
        if not sure:
            return whole
        # an unsure window takes the language of the nearest sure one before it (after it, at the start)
        filled = [labels[i] if labels[i] is not None else labels[max([j for j in sure if j < i] or [sure[0]])]
                  for i in range(len(labels))]
        runs: list[_Run] = []
        for (start, end), (language, probability) in zip(windows, filled):
            if runs and runs[-1].language == language:
                runs[-1].end = end
                runs[-1].probability = max(runs[-1].probability or 0.0, probability)
            else:
                runs.append(_Run(start, end, language, probability))
        if len(runs) == 1:   # one language: decode everything in one pass, as a fixed-language call would
            return [_Run(0, len(samples), runs[0].language, runs[0].probability)]
        # each run reaches to the middle of the pause before the next, so no speech edge is cut off
        for a, b in zip(runs, runs[1:]):
            a.end = b.start = (a.end + b.start) // 2 if a.end < b.start else a.end
        runs[0].start, runs[-1].end = 0, len(samples)
        return runs

    def _speech_windows(self, samples: np.ndarray) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _detect(self, samples: np.ndarray) -> tuple[str, float]:
        raise NotImplementedError

    def _decode(self, samples: np.ndarray, language: str | None) -> tuple[str | None, float | None, list[SpeechSegment]]:
        raise NotImplementedError


class FasterWhisperEngine(WhisperEngine):
    backend = "faster-whisper"

    def __init__(self, location: ModelLocation, options: TranscribeOptions, device: str = "auto",
                 compute_type: str = "auto", cpu_threads: int = 0, cache_dir: str | None = None):
        super().__init__(location, options)
        import ctranslate2
        from faster_whisper import WhisperModel

        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        self.device, self.compute_type = device, compute_type
        path = materialize(location, cache_dir)
        self.model = WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                  local_files_only=is_offline())

    @property
    def is_multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def _speech_windows(self, samples):
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        vad = VadOptions(min_silence_duration_ms=self.options.vad_min_silence_ms, max_speech_duration_s=MAX_WINDOW_S)
        return [(c["start"], c["end"]) for c in get_speech_timestamps(samples, vad, sampling_rate=SAMPLE_RATE)]

    def _detect(self, samples):
        language, probability, _ = self.model.detect_language(audio=samples)
        return language, float(probability)

    def _decode(self, samples, language):
        o = self.options
        if o.temperature_fallback:
            import ctranslate2

            ctranslate2.set_random_seed(FALLBACK_SEED)
        segments, info = self.model.transcribe(
            samples, language=language, beam_size=o.beam_size, word_timestamps=o.word_timestamps,
            initial_prompt=o.initial_prompt, hotwords=o.hotwords, temperature=_temperature(o),
            vad_filter=o.vad, vad_parameters={"min_silence_duration_ms": o.vad_min_silence_ms} if o.vad else None)
        out = [SpeechSegment(float(s.start), float(s.end), s.text,
                             [Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in (s.words or [])])
               for s in segments]   # a generator: decoding happens here
        return info.language, float(info.language_probability), out


class OpenAIWhisperEngine(WhisperEngine):
    """openai-whisper (PyTorch). No VAD of its own: silence is left to its no-speech threshold, and the
    language is detected once per video (no speech windows to detect it in)."""

    backend = "openai-whisper"

    def __init__(self, location: ModelLocation, options: TranscribeOptions, device: str = "auto",
                 compute_type: str = "auto", cpu_threads: int = 0, cache_dir: str | None = None):
        super().__init__(location, options)
        if options.hotwords:
            raise ValueError("hotwords need backend faster-whisper (openai-whisper has no hotword option); "
                             "use initial_prompt instead")
        import torch
        import whisper

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if cpu_threads:
            torch.set_num_threads(cpu_threads)
        self.device = device
        self.compute_type = "float16" if device == "cuda" and compute_type in ("auto", "float16") else "float32"
        self.model = whisper.load_model(materialize(location), device=device)

    @property
    def is_multilingual(self) -> bool:
        return False   # no per-window detection here: one call, whose language Whisper detects itself

    def _decode(self, samples, language):
        o = self.options
        if o.temperature_fallback:
            import torch

            torch.manual_seed(FALLBACK_SEED)
        result = self.model.transcribe(samples, language=language, word_timestamps=o.word_timestamps,
                                       beam_size=o.beam_size, initial_prompt=o.initial_prompt,
                                       temperature=_temperature(o),
                                       fp16=self.compute_type == "float16", verbose=None)
        out = [SpeechSegment(float(s["start"]), float(s["end"]), s["text"],
                             [Word(float(w["start"]), float(w["end"]), w["word"], float(w.get("probability", 0.0)))
                              for w in s.get("words") or []])
               for s in result.get("segments", [])]
        return result.get("language"), None, out


def _temperature(options: TranscribeOptions) -> float | tuple[float, ...]:
    """The decoding temperature(s): 0 alone, or the fallback's rising ones (see FALLBACK_TEMPERATURES)."""
    return FALLBACK_TEMPERATURES if options.temperature_fallback else 0.0


def load_engine(location: ModelLocation, options: TranscribeOptions | None = None, device: str = "auto",
                compute_type: str = "auto", cpu_threads: int = 0, cache_dir: str | None = None) -> WhisperEngine:
    """Load the model once; transcribe many videos with the returned engine."""
    cls = OpenAIWhisperEngine if location.backend == "openai-whisper" else FasterWhisperEngine
    return cls(location, options or TranscribeOptions(), device=device, compute_type=compute_type,
               cpu_threads=cpu_threads, cache_dir=cache_dir)
