"""speech_captions (HowToCaption, Shvetsova et al., ECCV 2024; ninatu/howtocaption): captions of a how-to
video written from its narration, each re-timed to the speech that backs it.

1. The row's speech — ASR transcript segments, or the `annotations` subtitles (YouTube subtitles, as in
   HowToCaption) — is cut into windows of about `window_words` words (a segment is never split). At
   `scope: video` the row is the whole video, so the windows run over all of it.
2. Per window the teacher writes up to `max_captions` captions, each with an estimated time in whole
   seconds (a bounded schema: the time lies in the window).
3. Each caption is re-timed to the transcript segment near its estimate (within `search_s`) that it
   matches best — by shared content words (`match: words`) or by MiniLM cosine similarity (`match:
   embedding`, the packaged model) or, as the paper does, by vision–text similarity with the frames of
   that segment's span (`match: vision`, a CLIP/SigLIP-family `vision_model`; the row's sampled frames
   inside the span, else the frame nearest its middle) — and takes that segment's span, clipped to the
   row. A caption that matches no segment at `min_similarity` is dropped as a reject (`speech_unmatched`,
   with its scores); with `samples: window`, of two captions that match one segment the better match stays,
   the other is a `speech_duplicate` reject (one event told twice on one span is no dense caption).

`samples: window` writes one timed sample per window (HowToCaption's caption list for that part of the
video); `samples: pairs` one sample per caption (its span in the question, HowToCaption's clip-caption
pairs). Works on a clip row and on the video row of `scope: video` alike: only the row's interval and
its speech are read.

The narration is text: the prompt lists it as said (`Prompt.render` reads a value once), and samples store it,
and the teacher's captions made from it, escaped (`escape_placeholders`): a "{{t:5}}" said or copied is no time.
"""
from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from vdata.prompts import escape_placeholders
from vdata.schemas import records as R

from .clues import Clue
from .moment_match import stem   # one light stemmer for the generate tasks that match words to moments
from .common import (Pending, Strict, TaskFamily, parse_lines, sample_base, spans_answer, stable_hash, strict_object,
                     teacher_request, text_field)

if TYPE_CHECKING:
    from .common import StageView

DEFAULT_MIN_SIMILARITY = {"words": 0.3, "embedding": 0.4, "vision": 0.2}
_STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "is", "are", "was", "were", "be", "it", "its",
         "that", "this", "with", "for", "as", "by", "then", "now", "we", "you", "i", "our", "your", "my", "they", "he",
         "she", "his", "her", "their", "them", "there", "here", "so", "just", "into", "from", "up", "out", "will", "can",
         "person", "someone", "video", "shows", "show", "going", "gonna", "let", "lets"}


class SpeechCaptionsTask(Strict):
    window_words: int = Field(120, ge=10, le=2000)    # narration words per teacher request
    max_captions: int = Field(4, ge=1, le=32)         # captions per window
    source: Literal["auto", "transcript", "subtitles"] = "auto"   # auto: ASR segments, else annotation subtitles
    match: Literal["words", "embedding", "vision"] = "words"
    min_similarity: float | None = Field(None, ge=-1, le=1)   # None: 0.3 (words) / 0.4 (embedding) / 0.2 (vision)
    search_s: float = Field(30.0, ge=0)               # segments this close to the estimated time are candidates
    samples: Literal["window", "pairs"] = "window"
    max_caption_chars: int = Field(160, ge=20, le=1000)
    embedding_model: str | None = None                # embedding: a sentence-transformers dir; None: packaged MiniLM
    vision_model: str | None = None                   # vision: a CLIP/SigLIP-family dir / package: / hub id

    @model_validator(mode="after")
    def _vision_needs_a_model(self):
        if self.match == "vision" and not self.vision_model:
            raise ValueError("vision_model: match: vision needs a CLIP/SigLIP-family model")
        return self


@dataclass(frozen=True)
class Speech:
    start_s: float
    end_s: float
    text: str

    @property
    def words(self) -> int:
        return len(self.text.split())


# --- speech of the row -----------------------------------------------------------------------------

def row_speech(row: dict, source: str) -> list[Speech]:
    """The row's timed speech inside its interval (clipped to it), deduplicated, in time order."""
    start, end = float(row[R.START_S]), float(row[R.END_S])

    def take(items) -> list[Speech]:
        out = {}
        for s in items or []:
            text = " ".join(str((s or {}).get("text") or "").split())
            a, b = (s or {}).get("start_s"), (s or {}).get("end_s")
            if not text or a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
                continue
            a, b = max(float(a), start), min(float(b), end)
            if b > a:   # overlaps the row
                out.setdefault((round(a, 3), round(b, 3), text), Speech(a, b, text))
        return sorted(out.values(), key=lambda s: (s.start_s, s.end_s))

    transcript = take(row.get(R.TRANSCRIPT_SEGMENTS)) if source in ("auto", "transcript") else []
    if transcript or source == "transcript":
        return transcript
    return take((row.get(R.ANNOTATIONS) or {}).get("subtitles"))


def windows(speech: list[Speech], words: int) -> list[list[Speech]]:
    """Consecutive segments of about `words` words each."""
    out, cur, n = [], [], 0
    for s in speech:
        cur.append(s)
        n += s.words
        if n >= words:
            out.append(cur)
            cur, n = [], 0
    if cur:
        out.append(cur)
    return out


# --- matching ----------------------------------------------------------------------------------------

def content_words(text: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[a-z0-9]+", (text or "").lower()) if w not in _STOP and len(w) > 1}


def word_overlap(caption: str, speech: str) -> float:
    """Share of the caption's content words the speech says (0..1)."""
    cap = content_words(caption)
    return len(cap & content_words(speech)) / len(cap) if cap else 0.0


def candidates(speech: list[Speech], t: float, search_s: float) -> list[Speech]:
    """Segments within `search_s` of the estimated time `t` (all of them when none is)."""
    near = [s for s in speech if s.start_s - search_s <= t <= s.end_s + search_s]
    return near or list(speech)


def best_match(scores: list[float], cands: list[Speech], t: float) -> tuple[int, float]:
    """The best-scoring candidate; ties go to the one nearest the estimated time."""
    def distance(s: Speech) -> float:
        return 0.0 if s.start_s <= t <= s.end_s else min(abs(t - s.start_s), abs(t - s.end_s))
    k = max(range(len(cands)), key=lambda i: (round(scores[i], 6), -distance(cands[i])))
    return k, scores[k]


def similarities(stage: StageView, tcfg: SpeechCaptionsTask, caption: str, cands: list[Speech],
                 row: dict | None = None) -> list[float]:
    if tcfg.match == "words":
        return [word_overlap(caption, s.text) for s in cands]
    if tcfg.match == "vision":
        return vision_similarities(stage, tcfg.vision_model, caption, cands, (row or {}).get(R.FRAMES) or [])
    embedder = stage.__dict__.get("_speech_embedder")
    if embedder is None:   # loaded once per worker, on first use
        from vdata.teachers.packaged import PACKAGED_MINILM, load_text_embedder

        embedder = stage.__dict__["_speech_embedder"] = load_text_embedder(tcfg.embedding_model or PACKAGED_MINILM)
    vec = embedder.encode([caption] + [s.text for s in cands], normalize_embeddings=True, show_progress_bar=False)
    return [float(vec[0] @ v) for v in vec[1:]]


def vision_similarities(stage: StageView, model_spec: str, caption: str, cands: list[Speech],
                        frames: list[dict]) -> list[float]:
    """Cosine of the caption with the mean embedding of each segment's frames (the row's sampled frames in
    its span, else the one nearest its middle); -1 for every segment when the row has no frames."""
    if not frames:
        return [-1.0] * len(cands)
    import numpy as np

    from vdata.media.images import decode_jpeg
    from vdata.teachers.vision_text import VisionTextModel, mean_embedding

    models = stage.__dict__.setdefault("_vision_models", {})   # loaded once per worker, on first use
    model = models.get(model_spec) or models.setdefault(model_spec, VisionTextModel(model_spec))
    times = [float(f[R.FRAME_TIMESTAMP_S]) for f in frames]
    key = (model_spec, tuple(times))
    cache = stage.__dict__.setdefault("_frame_vectors", {})
    if key not in cache:   # one image pass per row, whatever the number of captions
        cache.clear()
        cache[key] = model.embed_images([decode_jpeg(f[R.FRAME_JPEG]) for f in frames])
    vectors, text = cache[key], model.embed_texts([caption])[0]
    out = []
    for s in cands:
        inside = [i for i, t in enumerate(times) if s.start_s <= t <= s.end_s]
        if not inside:
            middle = (s.start_s + s.end_s) / 2
            inside = [min(range(len(times)), key=lambda i: abs(times[i] - middle))]
        out.append(float(np.dot(mean_embedding(vectors[inside]), text)))
    return out


# --- the family ---------------------------------------------------------------------------------------

def _plan(stage: StageView, row: dict, clues: list[Clue], tcfg: SpeechCaptionsTask):
    speech = row_speech(row, tcfg.source)
    if not speech:
        return [], []
    prompt = stage.prompts["speech_captions"]
    pending = []
    for index, win in enumerate(windows(speech, tcfg.window_words)):
        lo, hi = math.floor(win[0].start_s), math.ceil(win[-1].end_s)
        lines = "\n".join(f"[{s.start_s:.1f}s-{s.end_s:.1f}s] {s.text}" for s in win)
        text = prompt.render(window_start=f"{win[0].start_s:.1f}", window_end=f"{win[-1].end_s:.1f}", lines=lines,
                             max_captions=tcfg.max_captions)
        item = strict_object({"time_s": {"type": "integer", "minimum": lo, "maximum": hi},
                              "caption": text_field(tcfg.max_caption_chars)})
        schema = strict_object({"captions": {"type": "array", "items": item, "minItems": 1,
                                             "maxItems": tcfg.max_captions}})
        req = teacher_request(stage, prompt, text, [], schema, "speech_captions", ("speech_captions", index, lines))
        pending.append(Pending("speech_captions", index, "dense", prompt, req, {"window": win, "speech": speech}))
    return [], pending


def _question(stage: StageView, kind: str, key: str, **values) -> str:
    choices = parse_lines(stage.prompts["speech_captions_questions"].text).get(kind) or [kind]
    return string.Template(choices[stable_hash("speech_captions", kind, key) % len(choices)]).safe_substitute(**values)


def _finish(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    tcfg: SpeechCaptionsTask = stage.config.tasks.speech_captions
    floor = tcfg.min_similarity if tcfg.min_similarity is not None else DEFAULT_MIN_SIMILARITY[tcfg.match]
    speech: list[Speech] = p.extra["speech"]
    kept: list[tuple[Speech, str, float, float, int]] = []   # (segment, caption, estimate, score, reply index)
    out: list = []
    seen = set()
    for k, item in enumerate(reply.get("captions") or []):
        caption = " ".join(str(item.get("caption") or "").split())
        if not caption or caption.lower() in seen:
            continue
        seen.add(caption.lower())
        t = float(item["time_s"]) if isinstance(item.get("time_s"), (int, float)) else p.extra["window"][0].start_s
        cands = candidates(speech, t, tcfg.search_s)
        scores = similarities(stage, tcfg, caption, cands, row)
        best, score = best_match(scores, cands, t)
        if score < floor:
            dropped = sample_base(stage, row, "speech_captions", p.index * 1000 + k, p.prompt.id,
                                  sid_task="speech_captions/unmatched")
            out.append(stage.reject(dropped, "speech_unmatched", f"speech_captions: {caption[:80]!r} matches no "
                                    f"narration near {t:g}s (best {tcfg.match} similarity {score:.2f} < {floor})",
                                    caption=caption, estimated_s=t, best_score=round(score, 3),
                                    best_segment=cands[best].text[:200]))
            continue
        kept.append((cands[best], caption, t, score, k))
    # in a dense answer two captions on one segment are one event told twice; pairs are samples of their own
    kept, twins = _one_per_segment(kept) if tcfg.samples == "window" else (kept, [])
    for seg, caption, t, score, k in twins:   # a dense answer would hold two events on one span (outside check h17 F13)
        dropped = sample_base(stage, row, "speech_captions", p.index * 1000 + k, p.prompt.id,
                              sid_task="speech_captions/duplicate")
        out.append(stage.reject(dropped, "speech_duplicate", f"speech_captions: {caption[:80]!r} (estimated at {t:g}s) "
                                f"matches the narration at {seg.start_s:g}-{seg.end_s:g}s that a better-matching "
                                f"caption already has", caption=caption, estimated_s=t, best_score=round(score, 3),
                                best_segment=seg.text[:200]))
    if not kept:    # each dropped caption is already a reject with its scores
        return out or [stage.reject(base, "bad_reply", "speech_captions: no usable caption", reply=reply)]
    kept.sort(key=lambda x: (x[0].start_s, x[0].end_s, x[2]))
    if tcfg.samples == "pairs":
        for k, (seg, caption, *_) in enumerate(kept):
            s = sample_base(stage, row, "speech_captions", p.index * 1000 + k, p.prompt.id, sid_task="speech_captions/pair")
            s.update(_fill(stage, "pair", s[R.SAMPLE_ID], [(seg, caption)], start=f"{seg.start_s:g}", end=f"{seg.end_s:g}"))
            s[R.ANSWER] = caption   # escaped with the reply (GenerateStage.finish)
            out.append(s)
        return out
    base.update(_fill(stage, "window", base[R.SAMPLE_ID], [(seg, caption) for seg, caption, *_ in kept]))
    return out + [base]


def _one_per_segment(kept: list) -> tuple[list, list]:
    """(the best-matching caption of each narration segment, the others): captions are re-timed to the segment
    they match, so two on one segment would be one event told twice; ties go to the estimate nearest it."""
    best: dict = {}
    for item in kept:
        seg, t, score = item[0], item[2], item[3]
        key = (seg.start_s, seg.end_s)
        near = 0.0 if seg.start_s <= t <= seg.end_s else min(abs(t - seg.start_s), abs(t - seg.end_s))
        if key not in best or (score, -near) > best[key][0]:
            best[key] = ((score, -near), item)
    winners = {id(item) for _, item in best.values()}
    return [i for i in kept if id(i) in winners], [i for i in kept if id(i) not in winners]


def _fill(stage: StageView, kind: str, sid: str, timed: list[tuple[Speech, str]], **values) -> dict:
    spans = [(seg.start_s, seg.end_s, caption) for seg, caption in timed]   # escaped with the reply
    used = list(dict.fromkeys(seg for seg, _ in timed))
    return {
        R.QUESTION_TYPE: "dense",
        R.QUESTION: _question(stage, kind, sid, **values),
        R.ANSWER: spans_answer(spans),
        R.ANSWER_SPANS: [{"start_s": float(a), "end_s": float(b)} for a, b, _ in spans],
        R.EVIDENCE: {"captions": [], "frame_timestamps_s": [],
                     "transcript_spans": [{"start_s": s.start_s, "end_s": s.end_s, "text": escape_placeholders(s.text)}
                                          for s in used]},
    }


SPEECH_CAPTIONS = TaskFamily(SpeechCaptionsTask, _plan, _finish, prompts=("speech_captions", "speech_captions_questions"),
                             needs_teacher=lambda tcfg: True)
