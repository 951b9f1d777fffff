"""Text-chunk videos (`vdata/media/text_frames.py`, the t2vid / t3 input): chunks rendered per second.

    python bench/bench_text_frames.py
The limit it chases is ffmpeg alone: the same number of frames at the same size, fps and x264 settings from
a lavfi colour source (no drawing, no pipe). The ratio (ffmpeg-only time / render time) says how much of the
render is the encoder's floor; the rest is PIL drawing and the raw-frame pipe.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, timed  # noqa: E402

from vdata.media.ffmpeg import run_ffmpeg  # noqa: E402
from vdata.media.text_frames import render_text_image, render_text_video, split_text  # noqa: E402

WORDS = ("the harbour keeper climbed ninety steps at dusk and lit three lanterns while the boats "
         "came home through the rain past the market and the old stone bridge").split()


def main(n_chunks: int = 30, seconds: float = 2.0, fps: int = 2, size=(640, 360)):
    text = " ".join(f"{WORDS[i % len(WORDS)]}{'.' if i % 17 == 16 else ''}" for i in range(n_chunks * 40))
    chunks = split_text(text, max_words=40)[:n_chunks]
    frames = len(chunks) * round(seconds * fps)
    with tempfile.TemporaryDirectory() as tmp:
        t_draw, _ = timed(lambda: [render_text_image(c, size) for c in chunks], repeat=2)
        t_render, _ = timed(lambda: render_text_video(f"{tmp}/t.mp4", chunks, seconds, size, fps), repeat=2)
        t_ffmpeg, _ = timed(lambda: run_ffmpeg(
            ["-f", "lavfi", "-i", f"color=c=white:s={size[0]}x{size[1]}:r={fps}", "-frames:v", str(frames),
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", f"{tmp}/c.mp4"]),
            repeat=2)
    table(f"text-chunk video, {len(chunks)} chunks x {seconds:g} s at {fps} fps, {size[0]}x{size[1]}",
          ["what", "seconds", "chunks/s", "ratio to limit"],
          [["PIL drawing only", f"{t_draw:.3f}", f"{len(chunks) / t_draw:.1f}", ""],
           ["render_text_video", f"{t_render:.3f}", f"{len(chunks) / t_render:.1f}", f"{t_ffmpeg / t_render:.2f}"],
           ["limit: ffmpeg encode only", f"{t_ffmpeg:.3f}", f"{len(chunks) / t_ffmpeg:.1f}", "1.00"]])


if __name__ == "__main__":
    main()
