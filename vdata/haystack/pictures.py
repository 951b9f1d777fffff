"""Image needles with transparency (a logo on a transparent background): how to tell them, how ffmpeg
reads them, and what the verifier compares the rendered box with.

A picture is transparent when any of its pixels has alpha below 255, whatever carries it: an RGBA or LA
PNG (8 or 16 bit), a palette PNG or GIF with a transparent index, an RGB/grey PNG with a tRNS colour
key. A picture whose alpha channel is all 255 counts as opaque: it keeps the opaque render chain and so
the bytes it rendered to before transparency was handled.

How a transparent picture is drawn (render.Renderer.item_command):
- overlay style: composited over the haystack (the transparent pixels show the footage underneath);
- fullframe style: composited over black, then padded with black as every fullframe picture is: the
  fullframe card hides the haystack, so its transparent pixels are black like its letterbox bars.
Either way it is scaled premultiplied, so transparent pixels' hidden colours never bleed into its edges.
"""
from __future__ import annotations

import functools
import os

import numpy as np

# ffmpeg's gif demuxer has no `-loop`/`-framerate` (ffmpeg refuses the input: "Option loop not found"); a
# still GIF is read by the image2 demuxer like any still picture, its decoder named (image2 has no
# guess for .gif).
GIF_INPUT = ["-f", "image2", "-c:v", "gif"]
# A grid cell of a transparent overlay's colour reference counts when the picture covers at least this
# share of it: there the rendered box shows the picture, elsewhere (mostly) the footage underneath.
OPAQUE_CELL = 0.9


def input_args(path: str) -> list[str]:
    """Demuxer options that go before `-loop 1 ... -i path` for a still picture."""
    return list(GIF_INPUT) if path.lower().endswith(".gif") else []


def alpha_plane(image) -> np.ndarray | None:
    """A PIL image's alpha (uint8, 0 transparent .. 255 opaque), or None when every pixel is opaque."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":   # 16/32-bit grey: a tRNS key names the transparent value
        key = image.info.get("transparency")
        if key is None:
            return None
        alpha = np.where(np.asarray(image) == key, 0, 255).astype(np.uint8)
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
    else:
        return None
    return alpha if alpha.size and int(alpha.min()) < 255 else None


def is_transparent(path: str) -> bool:
    """Whether the picture at `path` has any pixel that is not fully opaque (read once per file version:
    a picture replaced under the same name is read again)."""
    st = os.stat(path)
    return _is_transparent(os.path.abspath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _is_transparent(path: str, mtime_ns: int, size: int) -> bool:
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return alpha_plane(im) is not None


def _resized(plane: np.ndarray, w: int, h: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """A float plane at w x h (bicubic, as the renderer scales) and averaged down to the colour grid."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(plane, np.float32), mode="F")
    if im.size != (w, h):
        im = im.resize((w, h), Image.BICUBIC)
    small = im.resize((min(grid, w), min(grid, h)), Image.BOX)
    return np.asarray(im, np.float32), np.asarray(small, np.float32)


def premultiplied(image, w: int, h: int, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A transparent PIL image scaled premultiplied to w x h: (the picture over black as uint8 RGB at w x h,
    its colour per grid cell where it is, its coverage per grid cell 0..1)."""
    from vdata.media.images import rgb8

    alpha = alpha_plane(image)
    a = (np.full(image.size[::-1], 255, np.uint8) if alpha is None else alpha).astype(np.float32) / 255.0
    rgb = rgb8(image).astype(np.float32)
    a_full, a_grid = _resized(a, w, h, grid)
    full, cells = [], []
    for c in range(3):
        f, g = _resized(rgb[..., c] * a, w, h, grid)
        full.append(f)
        cells.append(g)
    over_black = np.clip(np.round(np.stack(full, axis=-1)), 0, 255).astype(np.uint8)
    coverage = np.clip(a_grid, 0.0, 1.0)
    colour = np.stack(cells, axis=-1) / np.maximum(coverage, 1e-6)[..., None]
    return over_black, np.clip(colour, 0, 255).astype(np.float32), coverage


def cell_weights(coverage: np.ndarray) -> np.ndarray:
    """Which grid cells a transparent overlay's colour distance reads: those the picture covers (at least
    OPAQUE_CELL), else, for a picture too thin to fill any cell, every cell by its coverage."""
    solid = (coverage >= OPAQUE_CELL).astype(np.float32)
    return solid if solid.any() else coverage.astype(np.float32)


def weighted_distance(got: np.ndarray, ref: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Mean absolute per-channel difference of colour thumbs (the last three axes), over the cells
    `weights` reads (all of them equally when None). `got` may hold one thumb or a stack of them."""
    diff = np.abs(got - ref)
    if weights is None or not weights.any():   # nothing covered (never for a loaded needle): every cell
        return diff.mean(axis=(-3, -2, -1))
    w = weights[..., None]
    return (diff * w).sum(axis=(-3, -2, -1)) / (float(w.sum()) * diff.shape[-1])
