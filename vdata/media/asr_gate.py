"""Which decoded Whisper segments are kept: `SegmentGate`, Whisper's own checks as a verdict per segment.

Whisper scores each decoding window (up to 30 s), not each segment: faster-whisper and openai-whisper give
every segment of a window that window's `avg_logprob`, `compression_ratio` and `no_speech_prob`. So a segment
is judged by its own text's compression ratio (Whisper's measure, recomputed), and the window's ratio speaks
against a segment only where that window says the segment's text again ("Thank you." over and over: a loop
Whisper cut into segments, each too short for a ratio of its own).

Whisper's 2.4 is the ratio at which it decodes a window again, hotter (a cheap retry whose result it keeps
whatever it is), not a verdict; repetitive speech passes it. List-like narration ("Box one is red." ...
"Box fifteen is white.", one every 2 s) came out of tiny.en word-perfectly as one 30-s segment at
avg_logprob -0.16, compression 2.51, and every clip of the video was rejected (outside check h25 F14); the
French and Spanish loops tiny.en invents compress 11-16. So a ratio over `max_compression_ratio` drops a
segment where the decoder was unsure of it too (avg_logprob below `confident_logprob`), or where it is a
loop beyond doubt (over `loop_compression_ratio`): "Step one ... step two ..." said clearly is kept.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .asr import SpeechSegment

UNSPACED_LANGUAGES = ("zh", "ja", "th", "lo", "my", "yue")   # faster-whisper splits their words per character


def text_compression_ratio(text: str) -> float:
    """Whisper's measure of repetition: the text's UTF-8 length over its zlib-compressed length."""
    data = text.strip().encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _said(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def windows(segments: list[SpeechSegment]) -> list[list[int]]:
    """Indices of the segments grouped by the decoding window they came from: neighbours that carry the same
    window scores (a window's segments all carry its avg_logprob, compression ratio and no-speech probability;
    two windows with the same three floats do not occur)."""
    groups: list[list[int]] = []
    last = None
    for i, s in enumerate(segments):
        key = (s.avg_logprob, s.compression_ratio, s.no_speech_prob)
        if groups and key == last and None not in key:
            groups[-1].append(i)
        else:
            groups.append([i])
        last = key
    return groups


@dataclass(frozen=True)
class SegmentGate:
    """Which decoded segments are kept: Whisper's own checks and thresholds, as a verdict (Whisper re-decodes
    a failing window hotter, see asr.FALLBACK_TEMPERATURES, then keeps whatever it got). None: a check off.
    tiny.en on espeak narration (four sentences in 24 s): German avg_logprob -1.08, Spanish and French
    compression 11-16 (156 words looping one phrase); real English -0.81 at worst, compression <= 1.41.
    No signal of tiny.en told the German half of an English-then-German file from its English half.
    """

    max_compression_ratio: float | None = 2.4   # repetition: the segment's own text (see the module doc)
    min_avg_logprob: float | None = -1.0        # the decoder unsure of its own text: another language, noise
    max_no_speech_prob: float | None = 0.6      # with a low avg_logprob: no speech at all (Whisper's rule)
    max_words_per_s: float | None = 8.0         # fast speech is 4-5 words/s; loops reached 35 (100 in 2.8 s)
    # 3+ words decoded again (nearly) word for word within 3 segments: a loop too short for the compression
    # ratio (tiny.en on 1 thread: German, Spanish as one invented sentence twice, compression 1.87-1.98)
    drop_repeats: bool = True
    # a ratio over max_compression_ratio drops a segment decoded less surely than this (None: however sure), or
    # one compressing more than loop_compression_ratio: a loop however sure (see the module doc)
    confident_logprob: float | None = -0.5
    loop_compression_ratio: float | None = 4.8

    def problem(self, s: SpeechSegment) -> str | None:
        """Why `s` is not kept ("no_speech", "low_logprob", "repetitive", "word_rate"), or None. The window's
        compression ratio is not read here (see `screen`)."""
        low = self.min_avg_logprob is not None and s.avg_logprob is not None and s.avg_logprob < self.min_avg_logprob
        if low and self.max_no_speech_prob is not None and (s.no_speech_prob or 0.0) > self.max_no_speech_prob:
            return "no_speech"
        if low:
            return "low_logprob"
        if self.repetitive(s):
            return "repetitive"
        words = len(s.words) or len(s.text.split())
        # a second at least: one short word's span says nothing of a rate; no rate where Whisper's "words" are
        # characters (languages written without spaces)
        if (self.max_words_per_s is not None and s.language not in UNSPACED_LANGUAGES
                and words > self.max_words_per_s * max(s.end_s - s.start_s, 1.0)):
            return "word_rate"
        return None

    def repetitive(self, s: SpeechSegment) -> bool:
        """Whether the segment's own text compresses past `max_compression_ratio`, and it is no confident
        decode of repetitive speech (see the module doc)."""
        ratio = text_compression_ratio(s.text)
        if self.max_compression_ratio is None or ratio <= self.max_compression_ratio:
            return False
        sure = (self.confident_logprob is not None and s.avg_logprob is not None
                and s.avg_logprob >= self.confident_logprob)
        return not sure or (self.loop_compression_ratio is not None and ratio > self.loop_compression_ratio)

    def screen(self, segments: list[SpeechSegment]) -> list[str | None]:
        """Each segment's reason to be dropped (see `problem`; "repetitive" also for a segment whose text its
        window, over Whisper's compression ratio, says again; "repeated": see `repeats`), or None."""
        reasons = [self.problem(s) for s in segments]
        for i in self.window_loops(segments, {i for i, r in enumerate(reasons) if r}):
            reasons[i] = "repetitive"
        for i in self.repeats([s if not r else None for s, r in zip(segments, reasons)]):
            reasons[i] = "repeated"
        return reasons

    def window_loops(self, segments: list[SpeechSegment], dropped: set[int] = frozenset()) -> set[int]:
        """Indices of the segments (but those in `dropped`) whose window is over the compression ratio and says
        their text twice or more."""
        found: set[int] = set()
        for group in windows(segments) if self.max_compression_ratio is not None else ():
            if (segments[group[0]].compression_ratio or 0.0) <= self.max_compression_ratio:
                continue
            said = {i: _said(segments[i].text) for i in group if i not in dropped}
            texts = list(said.values())
            found |= {i for i, text in said.items() if text and texts.count(text) > 1}
        return found

    def repeats(self, segments: list[SpeechSegment | None]) -> set[int]:
        """Indices of the segments (None: already dropped) that repeat a near one (see drop_repeats)."""
        from difflib import SequenceMatcher

        words = [_said(s.text) if s else "" for s in segments]
        found: set[int] = set()
        for i, a in enumerate(words):
            near = range(i + 1, min(len(words), i + 4)) if self.drop_repeats and a.count(" ") >= 2 else ()
            found |= {k for j in near if words[j] and SequenceMatcher(None, a, words[j]).ratio() >= 0.9 for k in (i, j)}
        return found
