"""Text rendered as video (T2Vid / T3 sources): real H.264 files decoded back and read by OCR."""
from __future__ import annotations

import json

import pytest

from vdata.haystack.verify import text_similarity
from vdata.media import MediaError
from vdata.media.probe import probe_video
from vdata.media.reader import open_reader
from vdata.media.text_frames import render_text_video, sidecar_path, split_text

CHUNKS = ["The lighthouse keeper climbed the stairs at dawn.",
          "A green boat sailed past the harbour wall.",
          "Rain began to fall before the market opened."]


@pytest.fixture(scope="module")
def ocr():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def test_split_text_keeps_order_and_bounds():
    text = " ".join(CHUNKS) + " " + " ".join(f"w{i}" for i in range(25))
    chunks = split_text(text, max_words=10)
    assert all(len(c.split()) <= 10 for c in chunks)
    assert " ".join(chunks).split() == text.split()          # nothing lost, nothing reordered
    assert chunks[0] == CHUNKS[0]                             # a sentence that fits stays whole


def test_rendered_chunks_decode_and_read_back(tmp_path, ocr):
    path = str(tmp_path / "story.mp4")
    sidecar = render_text_video(path, CHUNKS, seconds_per_chunk=1.5, size=(480, 270), fps=4)
    info = probe_video(path)
    assert info["duration_s"] == pytest.approx(4.5, abs=0.3)
    with open(sidecar_path(path), encoding="utf-8") as f:
        assert json.load(f) == sidecar
    spans = [(c["start_s"], c["end_s"]) for c in sidecar["chunks"]]
    assert spans == [(0.0, 1.5), (1.5, 3.0), (3.0, 4.5)]
    middles = [(a + b) / 2 for a, b in spans]
    with open_reader(path) as reader:
        frames = reader.read_at(middles)
    for (_, frame), expected, other in zip(frames, CHUNKS, CHUNKS[1:] + CHUNKS[:1]):
        result, _ = ocr(frame)
        found = " ".join(text for _, text, _ in result or [])
        assert text_similarity(expected, found) >= 0.9, (expected, found)   # OCR drops spaces, may miss a letter
        assert text_similarity(other, found) < 0.6, (other, found)          # another chunk is not on screen


def test_bad_text_is_refused_with_a_reason(tmp_path):
    with pytest.raises(MediaError) as e:
        render_text_video(str(tmp_path / "a.mp4"), [])
    assert e.value.reason == "no_text"
    with pytest.raises(MediaError) as e:
        render_text_video(str(tmp_path / "b.mp4"), ["word " * 2000], size=(160, 90))
    assert e.value.reason == "text_too_long"
    assert not list(tmp_path.iterdir())                                  # no half file left behind
