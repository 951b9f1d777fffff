"""Haystack rendering and verification.

    python bench/bench_haystack.py [--lengths 60 300]

Render throughput is output seconds of video per wall second for one item (three needles inserted in
one ffmpeg invocation), next to ffmpeg's plain re-encode of the same base haystack with the same
encoder settings — the limit rendering chases (ratio 1.0 = needles cost nothing). Verification is wall
seconds per item (three needles each: decode + pHash / OCR / ASR). Planning is items per second of
a manifest-only one-hour sweep.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, cached_video, table, timed  # noqa: E402

import yaml  # noqa: E402

from vdata.haystack import build_haystack  # noqa: E402
from vdata.haystack.demo_assets import write_demo_needles  # noqa: E402
from vdata.haystack.render import Renderer  # noqa: E402
from vdata.haystack.run import item_plans  # noqa: E402
from vdata.haystack.verify import Verifier  # noqa: E402
from vdata.media.ffmpeg import run_ffmpeg  # noqa: E402
from vdata.media.synth import Segment, render_segments  # noqa: E402


def sources(path):
    render_segments(path, [Segment("testsrc2", 20.0), Segment("mandelbrot", 20.0), Segment("smptebars", 20.0)],
                    size=(640, 360), audio_tone_hz=330)


def write_config(root: Path, lengths, name="bench", **extra) -> Path:
    spec = {"sources": {"glob": "videos/*.mp4"}, "lengths_s": lengths,
            "needles": [{"type": "image", "from": "needles/images/*.jpg", "duration_s": 1.0, "style": "overlay"},
                        {"type": "text", "phrases": "needles/phrases.txt"},
                        {"type": "clip", "from": "needles/clips/*.mp4"},
                        {"type": "audio", "from": "needles/speech/*.wav"}],
            "tasks": ["retrieval"], "needles_per_item": [3], "size": [640, 360], **extra}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "output": {"dir": str(root / "out")}, "haystack": spec}))
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", type=float, nargs="+", default=[60, 300])
    args = ap.parse_args()
    root = CACHE / "haystack"
    (root / "videos").mkdir(parents=True, exist_ok=True)
    src = cached_video("haystack_sources_60s.mp4", sources)
    link = root / "videos" / "sources.mp4"
    if not link.exists():
        os.link(src, link)
    write_demo_needles(str(root / "needles"))

    cfg, srcs, bases, items = item_plans(write_config(root, args.lengths))
    h = cfg.haystack
    renderer = Renderer(h.size, h.fps, h.encode, str(root / "cache"))
    verifier = Verifier(h.verify, h.fps)
    by_source = {s.source_id: s for s in srcs}
    render_rows, verify_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for length in args.lengths:
            base = renderer.render_base(bases[length], by_source)
            plain_s, _ = timed(lambda base=base: run_ffmpeg(
                renderer.reencode_command(base, os.path.join(tmp, "plain.mp4")), timeout=None))
            plain = length / plain_s
            for item in (i for i in items if i.base.length_s == length):
                out = os.path.join(tmp, f"{item.item_id}.mp4")
                t_render, _ = timed(lambda base=base, item=item, out=out: renderer.render_item(base, item.placements, out))
                speed = length / t_render
                render_rows.append([f"{length:g} s", item.needle_type, f"{speed:.1f} s/s", f"{plain:.1f} s/s",
                                    f"{speed / plain:.2f}"])
                verifier.verify(out, item.placements, length)         # warm: models load once, not per item
                t0 = time.perf_counter()
                result = verifier.verify(out, item.placements, length)
                verify_rows.append([f"{length:g} s", item.needle_type, f"{time.perf_counter() - t0:.2f} s",
                                    "ok" if result.ok else result.reason])
    table("render throughput (one item = base + 3 needles, one ffmpeg call) vs plain re-encode of the base",
          ["haystack", "needles", "render", "plain re-encode", "ratio"], render_rows)
    table("verification per item (3 needles; models already loaded)", ["haystack", "needles", "time", "result"],
          verify_rows)

    sweep = write_config(root, [60, 600, 3600], name="sweep", tasks=["retrieval", "ordering", "counting", "multihop",
                                                                        "localization"],
                         needles_per_item=[1, 3, 5], depths=[0.1, 0.5, 0.9], items_per_cell=4)
    t0 = time.perf_counter()
    result = build_haystack(sweep, render="manifest", out_dir=str(root / "sweep_out"))
    dt = time.perf_counter() - t0
    table("planning (manifest only, one-hour sweep)", ["items", "questions", "wall", "items/s"],
          [[result.planned, result.questions, f"{dt:.1f} s", f"{result.planned / dt:.0f}"]])


if __name__ == "__main__":
    main()
