"""Whisper speech recognition: transcripts and the engines that make them.

No stage logic lives here (grouping clips by video, caching, attaching words to clips: see
`vdata.stages.asr`). Three modules answer three questions:

1. **Which weights?** `vdata.media.whisper_models`: `locate_model(spec, backend)` and `materialize()`.
2. **Which samples?** `vdata.media.audio`: `decode_audio(path)`, 16 kHz mono on the video's clock.
3. **Which words, in which language?** here: `load_engine(...)` returns a `WhisperEngine` (faster-whisper:
   CTranslate2, int8 on CPU / float16 on GPU, Silero VAD, segment + word timestamps; or openai-whisper)
   whose `transcribe(path)` gives a `Transcript`: video-absolute times, a language on every segment.

Language per window, not per video: Whisper fixes one language per call (faster-whisper's
`multilingual=True` re-detects per 30-s decoding window but does not say which language a segment got,
and a 30-s window easily spans a switch). So with a multilingual model and no configured language,
the engine cuts the audio at pauses (Silero VAD, the same model faster-whisper filters with), detects
the video's language on all its speech together, then each speech window's. A window takes another
language only if it names that one first (>= 0.5) and all but rules out the video's (< 0.1,
`language_switch_below`): Whisper base named single sentences of German and Spanish files English or
Italian (up to 0.64) while still giving them 0.15-0.21, where the German halves of bilingual files
scored 0.77-0.98 and English 0.005-0.044. Neighbouring windows of one language join into a run, each
transcribed with its language fixed; every segment records the language it was decoded in. A
monolingual file costs one transcription, one language detection per speech window and per 30 s of speech.

An English-only model (`*.en`) detects nothing: its `language` is the one decoding was fixed to (en), and
non-English speech comes out as invented English, which Whisper's own confidence tells: see SegmentGate
(vdata.media.asr_gate).
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .asr_gate import UNSPACED_LANGUAGES, SegmentGate, text_compression_ratio
from .audio import DECODE_VERSION, SAMPLE_RATE, DecodedAudio, decode_audio
from .streams import iso_639_1
from .whisper_models import (BACKENDS, PACKAGED_MODELS, ModelLocation, ModelNotAvailable, PackagedModel,
                             _fingerprint, default_model_cache, is_offline, locate_model, materialize)

__all__ = ["BACKENDS", "PACKAGED_MODELS", "SAMPLE_RATE", "DecodedAudio", "ModelLocation", "ModelNotAvailable",
           "PackagedModel", "SegmentGate", "SpeechSegment", "Transcript", "TranscribeOptions", "WhisperEngine", "Word",
           "UNSPACED_LANGUAGES", "WHISPER_LANGUAGES", "decode_audio", "default_model_cache", "dominant_language",
           "english_only", "is_offline", "load_engine", "locate_model", "materialize", "text_compression_ratio",
           "whisper_language"]

LANGUAGE_MODES = ("window", "video")
# Under a second of speech the detector's top guess flips between related languages (espeak and real
# speech alike): a window that short is not asked, and takes the video's language.
MIN_DETECT_S = 1.0
MIN_LANGUAGE_PROBABILITY = 0.5      # a window's language other than the video's: named first at least this sure,
LANGUAGE_SWITCH_BELOW = 0.1         # and the video's below this (module doc)
MAX_WINDOW_S = 30.0   # Whisper's own input length: detection never sees more than this
# Whisper's temperature fallback decodes a window that fails its checks (repetitive text, a low mean
# log-probability) again by sampling at rising temperatures, and keeps the best-scoring try. Sampling
# draws from an unseeded generator: the same audio then gave a correct transcript in one run and
# "7, 3, 5, 6, 10, ..." in the next. So a fixed temperature of 0 (the same decode every run) is the
# default; `temperature_fallback` turns the fallback on, with the generator seeded before each pass.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FALLBACK_SEED = 0

# The languages Whisper's tokenizer knows (faster_whisper.tokenizer._LANGUAGE_CODES, private there): a
# code outside them fails inside a worker ("'xx' is not a valid language code"), so configs are checked here.
WHISPER_LANGUAGES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi hr ht hu "
    "hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc pa pl ps pt "
    "ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo zh yue").split()
# ISO codes and names whose Whisper code differs (some of Whisper's aliases; its Javanese is "jw")
_LANGUAGE_ALIASES = {"jv": "jw", "iw": "he", "nb": "no", "in": "id", "mandarin": "zh", "cantonese": "yue",
                     "castilian": "es", "flemish": "nl", "burmese": "my", "hawaiian": "haw"}


def whisper_language(value: str) -> str:
    """A language as Whisper names it: "en", "EN", "en-US", "eng", "english" -> "en". ValueError (listing
    the codes Whisper knows) for anything else."""
    text = value.strip().lower().replace("_", "-")
    iso = iso_639_1(text)   # codes: en, en-US, eng, ger, deu (the rule audio and subtitle tracks are matched by)
    if iso is None:   # an English name (german, Mandarin)
        import pycountry
        try:
            iso = getattr(pycountry.languages.lookup(text), "alpha_2", None)
        except LookupError:
            pass
    for code in (_LANGUAGE_ALIASES.get(key, key) for key in (text, iso) if key):
        if code in WHISPER_LANGUAGES:
            return code
    raise ValueError(f"unknown language {value!r} for Whisper: give one of its codes ({', '.join(WHISPER_LANGUAGES)}), "
                     f"an ISO 639 code (eng, deu) or an English name (german)")


def english_only(location: ModelLocation) -> bool:
    """Whether the weights at `location` are an English-only Whisper (tiny.en, base.en, ...): by name, and
    for a local CTranslate2 directory also by vocabulary (51864 tokens; multilingual ones have more)."""
    name = location.label if location.kind in ("package", "split_package") else location.spec
    if re.search(r"\.en(\.pt)?$", name.strip().rstrip("/"), re.IGNORECASE):
        return True
    vocabulary = f"{location.where}/vocabulary.txt"
    if location.kind in ("dir", "package") and os.path.isfile(vocabulary):
        with open(vocabulary, encoding="utf-8", errors="replace") as f:
            return sum(1 for _ in f) < 51865
    return False


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
    # Whisper's confidence in the decoding window (up to 30 s) the segment came from; None where unknown
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None


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
                              s.get("language"), s.get("avg_logprob"), s.get("compression_ratio"), s.get("no_speech_prob"))
                for s in d.get("segments") or []]
        return cls(d.get("language"), d.get("language_probability"), d.get("duration_s", 0.0), segs)

    def screened(self, gate: "SegmentGate") -> tuple["Transcript", list[tuple[SpeechSegment, str]]]:
        """The transcript without the segments `gate` rejects (its language then that of what is left), and
        those segments with the reason of each."""
        reasons = gate.screen(self.segments)
        kept = [s for s, r in zip(self.segments, reasons) if not r]
        dropped = [(s, r) for s, r in zip(self.segments, reasons) if r]
        if not dropped:
            return self, []
        return replace(self, language=dominant_language(kept), segments=kept), dropped


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
    language_switch_below: float = LANGUAGE_SWITCH_BELOW   # see the module doc
    audio_track: int | None = None        # index among the file's audio streams; None: streams.audio_stream's pick
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
        if options.language:   # "eng", "English", "en-US": the code Whisper takes ("en")
            options = replace(options, language=whisper_language(options.language))
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
        # the track asked for by position, else the one in the language asked for, or the one an English-only
        # model understands (see streams.audio_stream)
        o = self.options
        audio = decode_audio(path, max_failed_ratio=o.max_failed_packet_ratio, track=o.audio_track,
                             language=o.language or (None if self.is_multilingual else "en"))
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
        if not windows:
            return whole
        video, video_p = self._video_language(samples, windows)
        labels: list[tuple[str, float]] = []
        for start, end in windows:
            label = (video, video_p)
            if end - start >= MIN_DETECT_S * SAMPLE_RATE:
                probs = self._detect(samples[start:end])
                top = max(probs, key=probs.__getitem__)
                if (top != video and probs[top] >= MIN_LANGUAGE_PROBABILITY
                        and probs.get(video, 0.0) < o.language_switch_below):
                    label = (top, probs[top])
            labels.append(label)
        runs: list[_Run] = []
        for (start, end), (language, probability) in zip(windows, labels):
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

    def _video_language(self, samples: np.ndarray, windows: list[tuple[int, int]]) -> tuple[str, float]:
        """The language of all the speech together (windows joined, up to 30 s at a time: Whisper's input),
        each part weighted by its length, and its probability. A sentence alone is weak evidence (see the
        module doc); the whole file's speech named the language right where single sentences did not."""
        speech = np.concatenate([samples[a:b] for a, b in windows])
        step = int(MAX_WINDOW_S * SAMPLE_RATE)
        total: dict[str, float] = {}
        for i in range(0, len(speech), step):
            part = speech[i:i + step]
            for language, p in self._detect(part).items():
                total[language] = total.get(language, 0.0) + p * len(part) / len(speech)
        best = max(total, key=total.__getitem__)
        return best, total[best]

    def _speech_windows(self, samples: np.ndarray) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _detect(self, samples: np.ndarray) -> dict[str, float]:   # every language's probability (30 s heard at most)
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
        if not self.is_multilingual and options.language and whisper_language(options.language) != "en":
            # faster-whisper would decode in English anyway: invented English text from the other language
            raise ValueError(f"{location.label} is English-only: language {options.language!r} needs a multilingual model")

    @property
    def is_multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def _speech_windows(self, samples):
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        vad = VadOptions(min_silence_duration_ms=self.options.vad_min_silence_ms, max_speech_duration_s=MAX_WINDOW_S)
        return [(c["start"], c["end"]) for c in get_speech_timestamps(samples, vad, sampling_rate=SAMPLE_RATE)]

    def _detect(self, samples):
        _, _, probs = self.model.detect_language(audio=samples)
        return {language: float(p) for language, p in probs}

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
                             [Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in (s.words or [])],
                             None, float(s.avg_logprob), float(s.compression_ratio), float(s.no_speech_prob))
               for s in segments]   # a generator: decoding happens here
        # an English-only model reports "en" at probability 1 without detecting anything
        return info.language, float(info.language_probability) if self.is_multilingual else None, out


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
                              for w in s.get("words") or []],
                             None, s.get("avg_logprob"), s.get("compression_ratio"), s.get("no_speech_prob"))
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
