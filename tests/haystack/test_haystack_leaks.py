"""A needle's picture that the haystack's own footage also shows, far from where the needle was inserted,
is found by the verifier's whole-haystack scan and the item dropped (`needle_leaked`, naming the footage);
and the shipped demo needles look like nothing in the shipped demo haystack videos."""
from __future__ import annotations

import glob
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml
from PIL import Image

from vdata.haystack import build_haystack
from vdata.haystack.config import VerifySpec
from vdata.haystack.demo_assets import CLIPS
from vdata.haystack.verify import colour_thumb
from vdata.media.hashing import phash
from vdata.media.synth import Segment, render_segments

ROOT = Path(__file__).resolve().parents[2]


def test_needle_also_in_the_haystack_footage_far_away_is_a_leak(tmp_path):
    """The tester's case (VN-2): the "fractal zoom" clip (lavfi mandelbrot) ordered among other clips in a
    haystack whose footage shows the same Mandelbrot at 0.2-1.0 s, well away from every needle (they
    start at 1.5 s or later, so the frames just beside them are the test pattern)."""
    (tmp_path / "videos").mkdir()
    (tmp_path / "clips").mkdir()
    render_segments(str(tmp_path / "videos" / "leaky.mp4"),
                    [Segment("testsrc2", 0.2), Segment("mandelbrot", 0.8), Segment("testsrc2", 11.0)], size=(320, 180))
    render_segments(str(tmp_path / "clips" / "fractal_zoom.mp4"), [Segment("mandelbrot", 1.6)], size=(320, 180), crf=30)
    render_segments(str(tmp_path / "clips" / "sierpinski_carpet.mp4"), [Segment("sierpinski=type=carpet:seed=3", 1.6)],
                    size=(320, 180), crf=30)
    cfg = {"name": "leak", "output": {"dir": str(tmp_path / "out")},
           "haystack": {"sources": {"glob": "videos/*.mp4"}, "lengths_s": [12],
                        "needles": [{"type": "clip", "from": "clips/*.mp4"}], "tasks": ["ordering"],
                        "needles_per_item": [2], "items_per_cell": 2, "options": 2, "circular_eval": False,
                        "size": [320, 180]}}
    path = tmp_path / "leak.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = build_haystack(str(path))
    assert result.planned == 2 and result.kept == 0 and result.rejected == {"needle_leaked": 2}, result.rejected
    for reject in pq.read_table(result.paths["rejects"]).to_pylist():
        placements = {c["label"]: c for c in json.loads(reject["detail"])}
        assert min(p["start_s"] for p in placements.values()) >= 1.5          # none beside the footage's shot
        fractal, carpet = placements["fractal zoom"], placements["sierpinski carpet"]
        assert fractal["present"] and not fractal["absent_outside"] and 0.2 <= fractal["seen_at_s"] < 1.0
        assert max(fractal["outside_distance"]) > 12   # the frames just beside it do not show it: only the scan does
        assert carpet["absent_outside"] and carpet["scan_distance"] > 12 and carpet["scanned_frames"] > 30
        assert "'fractal zoom'" in reject["message"] and "(leaky.mp4 at 0." in reject["message"]
        assert "sierpinski" not in reject["message"]


def _letterboxed(image: np.ndarray, size=(640, 360)) -> np.ndarray:
    """A source frame as the recipe's haystack (size 640x360) shows it: scaled to fit, black bars."""
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    nw, nh = int(round(image.shape[1] * scale)), int(round(image.shape[0] * scale))
    canvas = Image.new("RGB", size)
    canvas.paste(Image.fromarray(image).resize((nw, nh), Image.BICUBIC), ((w - nw) // 2, (h - nh) // 2))
    return np.asarray(canvas)


def _frames(path: str, every: int) -> list[np.ndarray]:
    import av

    with av.open(path) as c:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % every == 0]


def test_shipped_demo_needles_look_like_nothing_in_the_shipped_demo_videos():
    """The vnbench recipe and examples/haystack put the demo needles into examples/videos: no needle picture
    may be within the verifier's thresholds of any of those videos' frames (every 3rd one, letterboxed as
    the recipe renders them), or its keyed answers would rest on the leak check alone."""
    spec = VerifySpec()
    needles = ROOT / "examples" / "haystack" / "needles"
    clips = sorted(glob.glob(str(needles / "clips" / "*.mp4")))
    assert sorted(Path(p).stem for p in clips) == sorted(label.replace(" ", "_") for label, _, _ in CLIPS)
    pictures = {Path(p).stem: _frames(p, 4) for p in clips}
    pictures.update({Path(p).stem: [np.asarray(Image.open(p).convert("RGB"))]
                     for p in sorted(glob.glob(str(needles / "images" / "*.jpg")))})
    haystack = []
    for video in sorted(glob.glob(str(ROOT / "examples" / "videos" / "*.mp4"))):
        for frame in _frames(video, 3):
            image = _letterboxed(frame)
            haystack.append((phash(image), colour_thumb(image, 640, 360)))
    assert len(haystack) > 500
    hay_bits = np.stack([h.hash.ravel() for h, _ in haystack])
    hay_thumbs = np.stack([t for _, t in haystack])
    closest = {}
    for name, frames in pictures.items():
        d = min(int((hay_bits != phash(f).hash.ravel()).sum(axis=1).min()) for f in frames)
        c = min(float(np.abs(hay_thumbs - colour_thumb(f, 640, 360)).mean(axis=(1, 2, 3)).min()) for f in frames)
        closest[name] = (d, round(c, 1))
    near = {n: dc for n, dc in closest.items() if dc[0] <= spec.phash_max_distance or dc[1] <= spec.colour_max_distance}
    assert not near, near
