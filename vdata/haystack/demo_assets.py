"""Small needle assets with known content, made offline: drawn images (PIL), phrases, short lavfi clips
(vdata.media.synth) and espeak-ng speech with its transcript beside it. Used by the example config,
the tests and the benchmark.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from vdata.media.synth import Segment, render_segments

SHAPES = [  # (label, shape, fill colour, background colour)
    ("red square", "square", (220, 30, 30), (250, 250, 250)),
    ("blue circle", "circle", (30, 60, 220), (245, 235, 200)),
    ("green triangle", "triangle", (20, 170, 60), (30, 30, 30)),
    ("yellow star", "star", (250, 210, 0), (40, 40, 120)),
    ("purple hexagon", "hexagon", (140, 40, 170), (220, 250, 220)),
    ("orange cross", "cross", (250, 130, 0), (10, 60, 60)),
    ("cyan diamond", "diamond", (0, 200, 210), (120, 20, 20)),
    ("white ring", "ring", (255, 255, 255), (20, 90, 30)),
    ("black stripes", "stripes", (0, 0, 0), (240, 240, 100)),
    ("pink checkerboard", "checker", (240, 100, 180), (255, 255, 255)),
]

PHRASES = [
    "PURPLE ELEPHANT", "SILVER TRUMPET", "MIDNIGHT GARDEN", "FROZEN LIGHTHOUSE", "COPPER KETTLE 42",
    "VELVET ROCKET", "ORANGE GLACIER", "HIDDEN PIANO 7", "BRONZE OWL", "PAPER SUBMARINE",
    "GOLDEN CACTUS", "QUIET VOLCANO",
]

# (label, lavfi source, extra filters): textured, asymmetric content keeps perceptual hashes stable.
# None of them may look like the demo haystack sources (examples/videos: `vdata demo-videos` renders
# testsrc2, smptebars, mandelbrot's default view, cellauto): a needle the haystack also shows makes its
# keyed answer wrong. So no default-view mandelbrot and no cellauto here (tests/haystack/test_haystack_leaks.py).
CLIPS = [
    ("purple clouds", "perlin=octaves=4:persistence=0.6:random_seed=7:xscale=2:yscale=2:tscale=2",
     "lutrgb=r=val:g=val*0.3:b=255-val*0.5"),
    ("swirling fractal", "mandelbrot=start_x=-0.7436438870:start_y=0.1318259042:start_scale=0.02", ""),
    ("rainbow spectrum", "colorspectrum=type=all", "hue=H=2*PI*t"),
    ("gradient blobs", "gradients=n=4:seed=3:speed=0.01", ""),
    ("sierpinski carpet", "sierpinski=type=carpet:seed=3", ""),
    ("test card", "testsrc", ""),
    ("colour bars", "smptehdbars", "drawbox=x=0:y=120:w=160:h=60:color=white:t=fill"),
    ("seahorse fractal", "mandelbrot=start_x=-0.75:start_y=0.1:start_scale=0.3", ""),
]

SPEECH = [
    "the password is orange",
    "meet me at the train station",
    "the blue car is very fast",
    "please bring seven apples",
    "the library closes at noon",
    "turn left at the old bridge",
    "my cat likes classical music",
    "the river is very cold today",
]


def _slug(label: str) -> str:
    return label.replace(" ", "_")


def draw_image(path: str, shape: str, fill, background, size=(480, 320), variant: int = 0) -> None:
    """A large shape left of centre on a diagonal gradient, with a small accent in the opposite corner.

    Flat, symmetric graphics leave most low-frequency DCT coefficients near zero, where compression
    noise flips perceptual-hash bits; the gradient and the asymmetry give every image a stable hash.
    """
    import math

    import numpy as np
    from PIL import Image, ImageDraw

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    angle = (variant * 37 % 180) * math.pi / 180
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    ramp = (ramp - ramp.min()) / max(1e-6, ramp.max() - ramp.min())
    dark = np.array(background, float) * 0.35
    pixels = dark[None, None, :] + ramp[..., None] * (np.array(background, float) - dark)[None, None, :]
    im = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    cx, cy, r = int(w * 0.38), int(h * 0.5), int(min(w, h) * 0.36)
    if shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif shape in ("star", "hexagon", "diamond"):
        n, inner = {"star": (5, 0.4), "hexagon": (6, 1.0), "diamond": (4, 1.0)}[shape]
        pts = []
        for k in range(n * (2 if shape == "star" else 1)):
            step = math.pi / n if shape == "star" else 2 * math.pi / n
            rad = r if (shape != "star" or k % 2 == 0) else r * inner
            a = -math.pi / 2 + k * step
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        d.polygon(pts, fill=fill)
    elif shape == "cross":
        t = r // 3
        d.rectangle([cx - t, cy - r, cx + t, cy + r], fill=fill)
        d.rectangle([cx - r, cy - t, cx + r, cy + t], fill=fill)
    elif shape == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=max(4, r // 4))
    elif shape == "stripes":
        for x in range(0, int(w * 0.7), 48):
            d.rectangle([x, int(h * 0.1), x + 23, int(h * 0.9)], fill=fill)
    elif shape == "checker":
        for y in range(int(h * 0.1), int(h * 0.9) - 39, 40):
            for x in range(0, int(w * 0.7) - 39, 40):
                if (x // 40 + y // 40) % 2 == 0:
                    d.rectangle([x, y, x + 39, y + 39], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape}")
    accent = tuple(255 - c for c in fill)
    ax, ay, ar = int(w * 0.84), int(h * (0.2 if variant % 2 else 0.8)), int(min(w, h) * 0.1)
    d.ellipse([ax - ar, ay - ar, ax + ar, ay + ar], fill=accent)
    im.save(path, quality=92)


def speak(path: str, text: str) -> None:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise RuntimeError("espeak-ng not found: apt-get install espeak-ng (needed for spoken needles)")
    subprocess.run([exe, "-s", "140", "-w", path, text], check=True, capture_output=True)


def write_demo_needles(root: str, images: int = len(SHAPES), clips: int = len(CLIPS), speech: int = len(SPEECH),
                       clip_s: float = 1.6) -> dict[str, str]:
    """Write images/, phrases.txt, clips/ and speech/ under `root`; existing files are kept."""
    out = {k: os.path.join(root, k) for k in ("images", "clips", "speech")}
    for d in out.values():
        os.makedirs(d, exist_ok=True)
    for variant, (label, shape, fill, bg) in enumerate(SHAPES[:images]):
        p = os.path.join(out["images"], _slug(label) + ".jpg")
        if not os.path.exists(p):
            draw_image(p, shape, fill, bg, variant=variant)
    phrases = os.path.join(root, "phrases.txt")
    if not os.path.exists(phrases):
        with open(phrases, "w") as f:
            f.write("# one text needle a line\n" + "\n".join(PHRASES) + "\n")
    out["phrases"] = phrases
    for label, source, filters in CLIPS[:clips]:
        p = os.path.join(out["clips"], _slug(label) + ".mp4")
        if not os.path.exists(p):
            render_segments(p, [Segment(source, clip_s, filters)], size=(320, 180), fps=25, crf=30)
    for text in SPEECH[:speech]:
        p = os.path.join(out["speech"], _slug(" ".join(text.split()[:4])) + ".wav")
        if not os.path.exists(p):
            speak(p, text)
            with open(os.path.splitext(p)[0] + ".txt", "w") as f:
                f.write(text + "\n")
    return out
