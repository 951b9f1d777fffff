"""The needles an item NAMES as not shown must not be in its video either.

A retrieval distractor, an ordering option's spare, a multihop "fill" payload, a counting target asked
about 0 times: the item says the video does not show them. When the haystack's own footage shows one
(a "fractal zoom" clip over fractal footage, a "tv bars" picture over colour-bar footage), that "wrong"
option is true and the item has two answers. Such an item is dropped as `distractor_on_screen`, like a
leaked needle (choosing another distractor would need the verdict before the plan, and the plan is
made without decoding anything).

How each kind is looked for:
- image / clip: in the same whole-video scan as the placed needles (`scan_every_s`), in the box the
  needle would have on screen, with the same two measures (phash where the picture's hash is not noise,
  colour distance); frames while another picture or text needle covers that box are skipped (the
  question is whether the footage shows it, not whether two needles of the pool look alike).
- text: OCR of the needle-free base haystack (the footage, rendered once per length and cached), one
  frame every max(1 s, scan_every_s), read once per base and kept for every item on it; a line counts
  when it holds the phrase nearly contiguous.
- speech: ASR of the base haystack's whole audio, once per base; the phrase counts as spoken when half
  its content words are heard (the rule the placed-speech check uses for "heard outside").
`scan_every_s: 0` turns this check off with the whole-video scan.
"""
from __future__ import annotations

from difflib import SequenceMatcher
from typing import Callable

import subprocess

import numpy as np

from vdata.media.ffmpeg import ffmpeg_exe

from .pictures import weighted_distance
from .words import fold_text, same_word, words

ROLES = {"distractor": "a wrong option", "absent_target": "asked about and shown 0 times"}
TEXT_STEP_S = 1.0
ASR_RATE = 16000


def scan_distances(refs: list[tuple], scanned: list[int], sigs: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per scanned frame, the smallest phash distance (64 for a reference whose hash is noise) and colour
    distance from any of the reference signatures (phash, colour thumb, hash trusted, cells compared:
    None for all, else a transparent overlay's `pictures.cell_weights`)."""
    got_bits = np.stack([sigs[f][0].hash.ravel() for f in scanned])
    got_thumbs = np.stack([sigs[f][1] for f in scanned])
    d = np.min([(got_bits != r[0].hash.ravel()).sum(axis=1) if r[2] else np.full(len(scanned), 64)
                for r in refs], axis=0)
    c = np.min([(np.abs(got_thumbs - r[1]).mean(axis=(1, 2, 3)) if r[3] is None
                 else weighted_distance(got_thumbs, r[1], r[3])).round(2) for r in refs], axis=0)
    return d, c


def overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _check(p, ok: bool, message: str, **extra) -> dict:
    what = f"{p.kind} {p.needle.label!r}"
    return {"needle_id": p.needle.needle_id, "kind": p.kind, "label": p.needle.label, "role": p.role,
            "named_absent": ok, **extra,
            "message": f"{what} (named as not shown: {ROLES.get(p.role, p.role)}): {message}"}


def check_picture(verifier, p, placements, scan: list[int], sigs: dict, where: Callable | None) -> dict:
    fps, pad, spec = verifier.fps, verifier.spec.outside_s, verifier.spec
    covered = [(q.start_s - pad, q.end_s + pad) for q in placements
               if q.kind != "audio" and q.box is not None and overlaps(q.box, p.box)]
    scanned = [f for f in scan if not any(a < f / fps < z for a, z in covered)]
    if not scanned:
        return _check(p, True, "no footage frame to scan")
    if p.kind == "image":
        refs = list(verifier._image_refs(p))
    else:
        last = max(0.0, p.needle.duration_s - 1.0 / fps)
        offsets = sorted({round(min(k * spec.scan_every_s, last), 4) for k in range(int(last / spec.scan_every_s) + 2)})
        refs = [r for triple in verifier._clip_refs(p, offsets) for r in triple]
    d, c = scan_distances(refs, scanned, sigs)
    thr, cthr = spec.phash_max_distance, spec.colour_max_distance
    hits = np.flatnonzero((d <= thr) | (c <= cthr))
    extra = {"scanned_frames": len(scanned), "scan_distance": int(d.min()), "scan_colour": float(c.min())}
    if not hits.size:
        return _check(p, True, "not on screen", **extra)
    k = int(hits[0])
    t = scanned[k] / fps
    seen = (where(t) if where else "") or "haystack footage"
    return _check(p, False, f"on screen at {t:.2f} s ({seen}; {len(hits)} of {len(scanned)} scanned frames; phash "
                            f"distance {int(d[k])}, colour distance {float(c[k]):g}; on screen at <= {thr} or "
                            f"<= {cthr:g})", seen_at_s=round(t, 2), **extra)


def found_in(expected: str, line: str, min_share: float) -> bool:
    """The phrase's letters and digits (`fold_text`) in the line, at least `min_share` of them in order and
    nearly contiguous (a long line holding its letters scattered is no match)."""
    e, f = fold_text(expected), fold_text(line)
    if not e or not f:
        return False
    blocks = [b for b in SequenceMatcher(None, e, f, autojunk=False).get_matching_blocks() if b.size]
    if not blocks or sum(b.size for b in blocks) / len(e) < min_share:
        return False
    return blocks[-1].b + blocks[-1].size - blocks[0].b <= 1.25 * len(e) + 2


def footage_text(verifier, path: str, length_s: float) -> list[tuple[float, list[str]]]:
    """(time, OCR lines) of the footage, one frame every max(1 s, scan_every_s); cached per file."""
    from vdata.media.reader import open_reader

    cache = verifier.__dict__.setdefault("_footage", {})
    if ("text", path) not in cache:
        step = max(TEXT_STEP_S, verifier.spec.scan_every_s)
        times = [k * step + 0.25 / verifier.fps for k in range(int(length_s / step) + 1) if k * step < length_s]
        out = []
        with open_reader(path, "auto", purpose="sparse") as reader:
            for t, (_, img) in zip(times, reader.read_at(times)):
                result, _ = verifier.ocr()(np.ascontiguousarray(img))
                out.append((t, [text for _, text, _ in result or []]))
        cache[("text", path)] = out
    return cache[("text", path)]


def check_text(verifier, p, lines: list[tuple[float, list[str]]], where: Callable | None) -> dict:
    for t, found in lines:
        for line in found:
            if found_in(p.needle.label, line, verifier.spec.text_min_similarity):
                seen = (where(t) if where else "") or "haystack footage"
                return _check(p, False, f"OCR reads {line!r} in the footage at {t:.2f} s ({seen})",
                              seen_at_s=round(t, 2))
    return _check(p, True, f"not in the footage's text ({len(lines)} frames read)")


def footage_speech(verifier, path: str, length_s: float) -> list[str]:
    """Every word the ASR hears in the footage's audio (none when it has no audio stream); cached per file."""
    import av

    cache = verifier.__dict__.setdefault("_footage", {})
    if ("speech", path) not in cache:
        with av.open(path) as c:
            has_audio = bool(c.streams.audio)
        heard: list[str] = []
        if has_audio:
            segments, _ = verifier.asr().transcribe(audio_window(path, 0.0, length_s), language="en", beam_size=1,
                                                    temperature=0.0, vad_filter=True,
                                                    condition_on_previous_text=False)
            heard = [w for seg in segments for w in words(seg.text)]
        cache[("speech", path)] = heard
    return cache[("speech", path)]


def check_speech(p, heard: list[str]) -> dict:
    phrase = words(p.needle.label)
    content = [w for w in phrase if len(w) >= 4] or phrase
    got = [w for w in content if any(same_word(w, h) for h in heard)]
    share = len(got) / len(content) if content else 0.0
    if share >= 0.5:
        return _check(p, False, f"ASR hears {share:.0%} of its words in the footage's audio ({' '.join(got)!r})",
                      words_heard=share)
    return _check(p, True, "not heard in the footage", words_heard=share)


def absent_checks(verifier, video_path: str, placements, absent, scan: list[int], scan_sigs: dict,
                  length_s: float, footage: str | None, where: Callable | None) -> list[dict]:
    """One check per needle the item names as not shown (`named_absent`: False when the video shows it)."""
    if not absent or verifier.spec.scan_every_s <= 0:
        return []
    source = footage or video_path
    checks = []
    for p in absent:
        if p.kind in ("image", "clip"):
            checks.append(check_picture(verifier, p, placements, scan, scan_sigs[p.box], where))
        elif p.kind == "text":
            checks.append(check_text(verifier, p, footage_text(verifier, source, length_s), where))
        elif p.kind == "audio":
            checks.append(check_speech(p, footage_speech(verifier, source, length_s)))
    return checks


def audio_window(path: str, start_s: float, duration_s: float) -> np.ndarray:
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-ss", f"{start_s:.3f}", "-t", f"{duration_s:.3f}",
                           "-i", path, "-vn", "-ac", "1", "-ar", str(ASR_RATE), "-f", "f32le", "-"],
                          capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError("cannot decode audio: " + proc.stderr.decode(errors="replace").strip()[-200:])
    return np.frombuffer(proc.stdout, np.float32).copy()
