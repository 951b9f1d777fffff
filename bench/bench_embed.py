"""Vision-text scoring, NSFW detection and semantic dedup throughput (frames/s) against the decode limit on the same video.

    python bench/bench_embed.py [--model DIR_OR_HUB_ID] [--head FILE] [--watermark-head FILE] [--device cpu|cuda] [--frames 256]

The limit is decode-only: every frame of a 20 s 640x360 H.264 video decoded by PyAV (threaded) and
dropped. Then, on frames of that video sampled at the frames stage's size (448 px long side):
- "embed": the vision-text model's image tower alone on decoded frames (batches of 64);
- "clip_embed stage": the stage's `process_batch` on clip rows of 8 JPEG frames each, with a caption:
  JPEG decode + image embeddings + aesthetic head + caption embedding and cosine; then the same with the
  watermark head (`q_watermark`), which reuses the embeddings;
- "per video frame": the same, counted in the video frames the sampled frames stand for (8 of a 5 s,
  125-frame shot), which is the number to hold against decoding the whole video;
- "nsfw stage": NudeNet's packaged detector on the same clip rows (when `vdata[nsfw]` is installed);
- "semdedup index": check-and-add of clip embeddings (items/s, not frames: one item per clip).
A ratio ≥ 1 means the scorer keeps up with decoding on this machine, so it is not what limits a build.
Without --model the tiny random CLIP is built and used: a measure of the plumbing and batching, not of
a real CLIP's cost (ViT-B/32 is ≈1000x its FLOPs; run with --model on a GPU for that).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import cached_video, table, timed  # noqa: E402

import numpy as np  # noqa: E402

from vdata.media.images import encode_jpeg  # noqa: E402
from vdata.media.reader import open_reader  # noqa: E402
from vdata.media.synth import Segment, render_segments  # noqa: E402
from vdata.schemas import records as R  # noqa: E402

FRAMES_PER_CLIP = 8
CLIP_FRAMES = 125   # a 5 s shot at 25 fps: the video frames one clip row's 8 sampled frames stand for


def make_video(path):
    render_segments(path, [Segment(s, 5.0) for s in ("testsrc2", "smptebars", "mandelbrot", "rgbtestsrc")],
                    size=(640, 360))


def decode_all(path):
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


def sampled_frames(path, n):
    with open_reader(path, "auto", purpose="sparse", max_side=448) as r:
        d = r.num_frames / r.fps
        return [img for _, img in r.read_at([(k + 0.5) * d / n for k in range(n)], max_side=448)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--head")
    ap.add_argument("--watermark-head")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=256)
    a = ap.parse_args()
    import torch

    from vdata.stages.clip_embed import ClipEmbedStage
    from vdata.stages.semdedup import EmbeddingIndex
    from vdata.teachers.tiny_clip import HEAD_FILE, WATERMARK_HEAD_FILE, build_tiny_clip
    from vdata.teachers.vision_text import VisionTextModel

    model_path, head, watermark_head = a.model, a.head, a.watermark_head
    if not model_path:
        model_path = str(build_tiny_clip(Path(tempfile.gettempdir()) / "vdata-bench-tiny-clip"))
        head = head or str(Path(model_path) / HEAD_FILE)
        watermark_head = watermark_head or str(Path(model_path) / WATERMARK_HEAD_FILE)
    threads = torch.get_num_threads()
    path = cached_video("embed_20s_640x360.mp4", make_video)
    t_dec, n = timed(lambda: decode_all(path), repeat=2)
    limit = n / t_dec
    images = sampled_frames(path, a.frames)

    model = VisionTextModel(model_path, device=a.device)
    model.embed_images(images[:8])   # warm-up
    t_emb, _ = timed(lambda: model.embed_images(images, batch_size=64), repeat=2)

    stage = ClipEmbedStage(model=model_path, aesthetic_head=head, device=a.device, resources={"num_cpus": threads})
    stage.setup()
    rows = []
    for i in range(0, len(images), FRAMES_PER_CLIP):
        frames = [{R.FRAME_TIMESTAMP_S: float(k), R.FRAME_JPEG: encode_jpeg(img, 90)}
                  for k, img in enumerate(images[i:i + FRAMES_PER_CLIP])]
        rows.append({R.CLIP_ID: f"c{i}", R.FRAMES: frames, R.CAPTION: "a test pattern with colour bars"})
    t_stage, _ = timed(lambda: stage.process_batch(rows), repeat=2)
    watermark_row = ["clip_embed + watermark head", "no --watermark-head", "-"]
    if watermark_head:   # the same pass with the watermark probe on the same embeddings: what it adds
        marked = ClipEmbedStage(model=model_path, aesthetic_head=head, watermark_head=watermark_head, device=a.device,
                                resources={"num_cpus": threads})
        marked.setup()
        t_marked, _ = timed(lambda: marked.process_batch(rows), repeat=2)
        watermark_row = [f"clip_embed + watermark head (q_watermark, {len(rows)} clips)",
                         f"{len(images) / t_marked:.0f} frames/s", f"{len(images) / t_marked / limit:.2f}"]

    nsfw_row = ["nsfw stage (NudeNet ONNX, 320 px)", "nudenet not installed", "-"]
    try:
        from vdata.stages.nsfw import NsfwStage

        nsfw = NsfwStage(resources={"num_cpus": threads})
        nsfw.setup()
        t_nsfw, _ = timed(lambda: nsfw.process_batch(rows), repeat=2)
        fps = len(images) / t_nsfw
        nsfw_row = [f"nsfw stage ({len(rows)} clips x {FRAMES_PER_CLIP} JPEG frames, NudeNet ONNX 320 px)",
                    f"{fps:.0f} frames/s ({fps * CLIP_FRAMES / FRAMES_PER_CLIP:.0f} per video frame)",
                    f"{fps / limit:.2f} ({fps * CLIP_FRAMES / FRAMES_PER_CLIP / limit:.2f})"]
    except RuntimeError as e:
        nsfw_row[1] = str(e)[:60]

    vectors = np.random.default_rng(0).normal(size=(5000, model.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = [(str(i), str(i), "s", v) for i, v in enumerate(vectors)]
    t_index, _ = timed(lambda: EmbeddingIndex(0.95).check_and_add(items), repeat=1)

    name = Path(model_path).name if Path(model_path).exists() else model_path
    table(f"vision-text scoring vs decode on {n} frames of 640x360 H.264 ({name}, {a.device}, {threads} threads)",
          ["step", "throughput", "x decode limit"], [
              ["decode only (PyAV, threaded)", f"{limit:.0f} frames/s", "1.00 (limit)"],
              [f"embed {len(images)} frames (448 px, batch 64)", f"{len(images) / t_emb:.0f} frames/s",
               f"{len(images) / t_emb / limit:.2f}"],
              [f"clip_embed stage ({len(rows)} clips x {FRAMES_PER_CLIP} JPEG frames + caption)",
               f"{len(images) / t_stage:.0f} frames/s", f"{len(images) / t_stage / limit:.2f}"],
              [f"clip_embed per video frame ({FRAMES_PER_CLIP} sampled per {CLIP_FRAMES}-frame clip)",
               f"{len(images) / t_stage * CLIP_FRAMES / FRAMES_PER_CLIP:.0f} frames/s",
               f"{len(images) / t_stage * CLIP_FRAMES / FRAMES_PER_CLIP / limit:.2f}"],
              watermark_row,
              nsfw_row,
              [f"semdedup index, {len(items)} clips", f"{len(items) / t_index:.0f} clips/s",
               f"{len(items) * FRAMES_PER_CLIP / t_index / limit:.2f} (at {FRAMES_PER_CLIP} frames/clip)"],
          ])


if __name__ == "__main__":
    main()
