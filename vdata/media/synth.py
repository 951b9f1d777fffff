"""Synthetic videos with known content, rendered by ffmpeg's lavfi sources.

Used by the tests, the benchmarks and `vdata demo-videos`: hard cuts land exactly where the segments
meet, so shot detection can be checked frame-exactly; other recipes fail one quality check each.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from .ffmpeg import run_ffmpeg


def bundled_font(bold: bool = False) -> str:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return str(resources.files("vdata").joinpath("assets/fonts", name))


@dataclass
class Segment:
    source: str            # a lavfi source expression without size/rate/duration, e.g. "testsrc2"
    duration_s: float
    filters: str = ""      # extra filter chain applied to this segment


def render_segments(path: str, segments: list[Segment], size=(640, 360), fps: int = 25,
                    audio_tone_hz: float | None = None, gop: int | None = None, crf: int = 23) -> list[int]:
    """Concatenate lavfi segments into one H.264 mp4. Returns the frame indices of the hard cuts."""
    w, h = size
    args: list[str] = []
    chains = []
    for i, seg in enumerate(segments):
        sep = ":" if "=" in seg.source else "="
        args += ["-f", "lavfi", "-t", f"{seg.duration_s}", "-i", f"{seg.source}{sep}size={w}x{h}:rate={fps}"]
        f = f"[{i}:v]{seg.filters + ',' if seg.filters else ''}format=yuv420p,setsar=1[v{i}]"
        chains.append(f)
    n = len(segments)
    concat = "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[vout]"
    graph = ";".join(chains + [concat])
    total = sum(s.duration_s for s in segments)
    out = ["-filter_complex", graph, "-map", "[vout]"]
    if audio_tone_hz:
        args += ["-f", "lavfi", "-i", f"sine=frequency={audio_tone_hz}:sample_rate=16000:duration={total}"]
        out += ["-map", f"{n}:a", "-c:a", "aac", "-b:a", "64k"]
    out += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p", "-r", str(fps)]
    if gop:
        out += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]
    run_ffmpeg([*args, *out, "-movflags", "+faststart", path])
    cuts, acc = [], 0
    for seg in segments[:-1]:
        acc += round(seg.duration_s * fps)
        cuts.append(acc)
    return cuts


# Sources whose colour histograms differ strongly, so every boundary between them is a real cut.
CUT_SOURCES = ["testsrc2", "smptebars", "mandelbrot", "color=c=0x2060c0", "rgbtestsrc", "testsrc"]


def text_filter(text: str, size: int = 28, lines: int = 1, color: str = "white", box: bool = False) -> str:
    font = bundled_font().replace(":", r"\:")
    parts = []
    for k in range(lines):
        y = f"{20 + k * int(size * 1.4)}"
        esc = text.replace("'", "").replace(":", r"\:")
        parts.append(f"drawtext=fontfile='{font}':text='{esc}':fontsize={size}:fontcolor={color}:x=20:y={y}"
                     + (":box=1:boxcolor=black@0.6" if box else ""))
    return ",".join(parts)


QUALITY_RECIPES: dict[str, tuple[list[Segment], tuple[int, int]]] = {
    # name: (segments, size). Each bad one fails exactly one check of the default thresholds.
    "good": ([Segment("testsrc2", 4)], (640, 360)),
    "black": ([Segment("color=c=black", 4)], (640, 360)),
    "blurred": ([Segment("testsrc2", 4, "boxblur=luma_radius=20:luma_power=3")], (640, 360)),
    "static": ([Segment("smptebars", 4)], (640, 360)),
    "text_heavy": ([Segment("testsrc2", 4, text_filter("QUARTERLY REVENUE REPORT 2026 TOTAL", 30, 9, box=True))],
                   (640, 360)),
    "tiny": ([Segment("testsrc2", 4)], (96, 54)),
    "letterboxed": ([Segment("testsrc2", 4, "scale=640:200,pad=640:360:0:80:black")], (640, 360)),
}


def render_quality_recipe(path: str, name: str, fps: int = 25) -> None:
    segments, size = QUALITY_RECIPES[name]
    render_segments(path, segments, size=size, fps=fps)


def write_demo_videos(out_dir: str) -> list[str]:
    """Small demo set: a multi-shot video, a flash inside one scene, and a few that fail quality checks."""
    import os

    os.makedirs(out_dir, exist_ok=True)
    made = []
    path = os.path.join(out_dir, "multishot.mp4")
    render_segments(path, [Segment(s, 2.0) for s in CUT_SOURCES[:4]], audio_tone_hz=440)
    made.append(path)
    path = os.path.join(out_dir, "flash.mp4")
    render_segments(path, [Segment("testsrc2", 4.0, "drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='eq(n,50)'")])
    made.append(path)
    for name in ("black", "blurred", "letterboxed"):
        path = os.path.join(out_dir, f"{name}.mp4")
        render_quality_recipe(path, name)
        made.append(path)
    return made


# Containers users bring, each with moving content (testsrc2) and an audio track. The AVI is H.264 with
# B-frames + AAC: the file decord reads as one frozen frame.
CONTAINER_RECIPES: dict[str, list[str]] = {
    "avi": ["-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "avi"],
    "mkv": ["-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "matroska"],
    "mov": ["-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mov"],
    "webm": ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "40", "-deadline", "realtime", "-cpu-used", "8",
             "-pix_fmt", "yuv420p", "-c:a", "libopus", "-f", "webm"],
    "ts": ["-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts"],
}


def render_container(path: str, fmt: str, duration_s: float = 4.0, size=(320, 180), fps: int = 25) -> None:
    """A moving test pattern with a tone, encoded as CONTAINER_RECIPES[fmt]."""
    w, h = size
    run_ffmpeg(["-f", "lavfi", "-t", f"{duration_s}", "-i", f"testsrc2=size={w}x{h}:rate={fps}",
                "-f", "lavfi", "-t", f"{duration_s}", "-i", "sine=frequency=440:sample_rate=48000",
                *CONTAINER_RECIPES[fmt], path])


def damage_media_data(src: str, dst: str, at: float = 0.5, length: int = 4000, pattern: str = "random",
                      seed: int = 0) -> tuple[int, int]:
    """Copy an MP4 with `length` bytes inside its `mdat` box overwritten, starting `at` (0..1) of the
    way through the media data: `random` bytes, or a repeated `garbage` word. The header and index
    stay intact, so probing still declares every frame. Returns the overwritten byte range."""
    import io
    import random

    from .mp4_boxes import top_level_boxes

    data = bytearray(open(src, "rb").read())
    mdat = next((b for b in top_level_boxes(io.BytesIO(data), len(data)) if b.kind == b"mdat"), None)
    if mdat is None:
        raise ValueError(f"{src}: no mdat box")
    begin, end = mdat.start + mdat.header, mdat.start + mdat.length
    start = begin + int((end - begin - length) * at)
    if pattern == "random":
        junk = random.Random(seed).randbytes(length)
    else:
        junk = (b"\xde\xad\xbe\xef" * (length // 4 + 1))[:length]
    data[start:start + length] = junk
    with open(dst, "wb") as f:
        f.write(data)
    return start, start + length


def render_held_pictures(path: str, kind: str, size=(320, 180)) -> list[float]:
    """A variable-frame-rate video that holds pictures for seconds, and the times of its cuts.

    "screen": a screen recording as recorders write it: moving stretches at 25 fps and still screens
    of 6 s, the repeated frames dropped (`mpdecimate`), so each still is one frame held. "slides": a
    slideshow of 5 pictures, one frame each, shown 3 s apiece (the concat demuxer's durations)."""
    import os
    import tempfile

    w, h = size
    if kind == "screen":
        sources = [("testsrc2", 3), ("smptebars", 6), ("mandelbrot", 3), ("rgbtestsrc", 6), ("testsrc", 2)]
        inputs = [a for src, t in sources for a in ("-f", "lavfi", "-t", str(t), "-i", f"{src}=size={w}x{h}:rate=25")]
        run_ffmpeg([*inputs, "-filter_complex", f"{''.join(f'[{k}]' for k in range(len(sources)))}"
                    f"concat=n={len(sources)}:v=1,mpdecimate", "-fps_mode", "vfr", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", path])
        return [3.0, 9.0, 12.0, 18.0]
    with tempfile.TemporaryDirectory() as work:
        listing = []
        for k, src in enumerate(["testsrc2", "smptebars", "mandelbrot", "rgbtestsrc", "yuvtestsrc"]):
            image = os.path.join(work, f"slide{k}.png")
            run_ffmpeg(["-f", "lavfi", "-i", f"{src}=size={w}x{h}", "-frames:v", "1", image])
            listing += [f"file '{image}'", "duration 3"]
        with open(os.path.join(work, "slides.txt"), "w") as f:
            f.write("\n".join(listing + [listing[-2]]) + "\n")   # the demuxer's last entry, repeated
        run_ffmpeg(["-f", "concat", "-safe", "0", "-i", os.path.join(work, "slides.txt"), "-fps_mode", "vfr",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", path])
    return [3.0, 6.0, 9.0, 12.0]
