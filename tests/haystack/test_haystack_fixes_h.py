"""Fixes H: transparent image needles composite over the haystack (H1), a spoken needle's interval is
its audible part, not its file's padding silence (H2), and a re-run of a build reuses the items an
earlier run finished (H3). Real ffmpeg, real espeak-ng speech, real PNG/GIF files made with PIL."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from .haystack_helpers import haystack_config
from vdata.haystack import build_haystack
from vdata.haystack.config import EncodeSpec, VerifySpec
from vdata.haystack.demo_assets import speak
from vdata.haystack.model import Placement
from vdata.haystack.needles import Needle
from vdata.haystack.render import SWS_FLAGS, Renderer
from vdata.haystack.verify import Verifier
from vdata.media.ffmpeg import ffmpeg_exe
from vdata.schemas import haystack as H

FPS = 25
SIZE = (320, 240)
BASE_RGB = (32, 64, 192)     # the flat haystack under the needle
HIDDEN = (0, 255, 0)         # the colour transparent pixels carry but must never show
RED = (255, 0, 0)
BOX = (40, 60, 160, 80)      # the logo (200x100) scaled to 160x80: the transparent render path scales too


# --- H1: transparency ---

def _logo_rgba() -> Image.Image:
    im = Image.new("RGBA", (200, 100), HIDDEN + (0,))
    ImageDraw.Draw(im).ellipse([60, 10, 140, 90], fill=RED + (255,))
    return im


def _palette_logo() -> Image.Image:
    p = Image.new("P", (200, 100), 0)
    p.putpalette(list(HIDDEN) + list(RED) + [0] * 762)
    ImageDraw.Draw(p).ellipse([60, 10, 140, 90], fill=1)
    return p


def _write_picture(kind: str, folder: Path) -> Path:
    """The same logo (a red disc on a transparent ground whose hidden colour is green) in several files."""
    if kind == "rgba":
        path = folder / "logo_rgba.png"
        _logo_rgba().save(path)
    elif kind == "rgba16":   # 16 bits a channel: PIL writes no 16-bit RGBA, ffmpeg converts PIL's PNG
        src = folder / "logo_src.png"
        _logo_rgba().save(src)
        path = folder / "logo_rgba16.png"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-pix_fmt", "rgba64be", str(path)],
                       check=True)
        assert _png_bit_depth(path) == 16
    elif kind == "palette":
        path = folder / "logo_palette.png"
        _palette_logo().save(path, transparency=0)
        with Image.open(path) as im:
            assert im.mode == "P" and im.info.get("transparency") == 0
    elif kind == "gif":
        path = folder / "logo_still.gif"
        _palette_logo().save(path, transparency=0)
    elif kind == "colour_key":   # an RGB PNG whose tRNS chunk makes one colour transparent
        path = folder / "logo_key.png"
        _logo_rgba().convert("RGB").save(path, transparency=HIDDEN)
    else:
        raise ValueError(kind)
    return path


def _png_bit_depth(path: Path) -> int:
    return Path(path).read_bytes()[24]   # IHDR: signature 8, length 4, type 4, width 4, height 4, then depth


@pytest.fixture(scope="module")
def flat_base(tmp_path_factory) -> str:
    """A 2 s flat-colour haystack with a silent track, as the renderer's cached bases are (MOV, PCM)."""
    path = str(tmp_path_factory.mktemp("flat") / "base.mov")
    colour = "0x%02x%02x%02x" % BASE_RGB
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"color=c={colour}:s={SIZE[0]}x{SIZE[1]}:r={FPS}:d=2",
                    "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", path], check=True)
    return path


def _frame(video: str, index: int) -> np.ndarray:
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", video, "-vf", f"select=eq(n\\,{index})", "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(SIZE[1], SIZE[0], 3).astype(int)


def _near(pixel, rgb, tol: int = 24) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel) - np.asarray(rgb)) <= tol))


def _image_placement(path: Path, style: str) -> Placement:
    with Image.open(path) as im:
        w, h = im.size
    needle = Needle("logo" + path.stem, "image", "red disc", 1.2, str(path), path.name, w, h)
    return Placement(needle, "target", 0.4, 1.6, style, BOX)


@pytest.mark.parametrize("kind", ["rgba", "rgba16", "palette", "gif", "colour_key"])
def test_transparent_image_is_composited(tmp_path, flat_base, kind):
    """Overlay: the logo's transparent pixels show the haystack under it, not a rectangle (of the hidden
    colour, or black); fullframe: they are black like the padding around the picture. Both verify."""
    path = _write_picture(kind, tmp_path)
    renderer = Renderer(SIZE, FPS, EncodeSpec(), str(tmp_path / "cache"))
    verifier = Verifier(VerifySpec(), FPS)
    x, y, w, h = BOX
    corner, centre = (y + 5, x + 5), (y + h // 2, x + w // 2)
    for style in ("overlay", "fullframe"):
        p = _image_placement(path, style)
        video = renderer.render_item(flat_base, [p], str(tmp_path / f"{style}.mp4"))
        shown = _frame(video, 25)                                    # t = 1.0 s, inside 0.4-1.6
        assert _near(shown[centre], RED), (style, shown[centre])
        under = BASE_RGB if style == "overlay" else (0, 0, 0)
        assert _near(shown[corner], under), (style, shown[corner])   # not HIDDEN, and for overlay not black
        assert _near(shown[y + h - 5, x + w - 5], under)
        if style == "fullframe":
            assert _near(shown[5, 5], (0, 0, 0))                    # the padding stays black
        assert _near(_frame(video, 5)[corner], BASE_RGB)             # t = 0.2 s: the haystack alone
        result = verifier.verify(video, [p], 2.0)
        assert result.ok, result.message
    missing = renderer.render_item(flat_base, [], str(tmp_path / "none.mp4"))
    result = verifier.verify(missing, [_image_placement(path, "overlay")], 2.0)
    assert not result.ok and result.reason == "needle_missing"


def test_opaque_images_keep_their_render_chain(tmp_path, flat_base):
    """An opaque picture, even one stored with an alpha channel that is all 255, is drawn through the chain
    it always had (so its renders keep their bytes); only a transparent one takes the compositing chain."""
    opaque = tmp_path / "opaque_rgba.png"
    _logo_rgba().convert("RGB").convert("RGBA").save(opaque)   # RGBA, every pixel alpha 255
    jpeg = tmp_path / "opaque.jpg"
    _logo_rgba().convert("RGB").save(jpeg, quality=92)
    renderer = Renderer(SIZE, FPS, EncodeSpec(), str(tmp_path / "cache"))
    old_chain = f"[1:v:0]fps={FPS},scale={BOX[2]}:{BOX[3]}:flags=bicubic+{SWS_FLAGS},setsar=1,format=yuv420p,"
    then = {"overlay": "tpad=", "fullframe": f"pad={SIZE[0]}:{SIZE[1]}:{BOX[0]}:{BOX[1]}:black,tpad="}
    for path in (opaque, jpeg):
        for style in ("overlay", "fullframe"):
            graph = renderer.item_command(flat_base, [_image_placement(path, style)], "out.mp4", str(tmp_path))
            graph = graph[graph.index("-filter_complex") + 1]
            assert old_chain + then[style] in graph and "premultiply" not in graph and "yuva420p" not in graph
    transparent = renderer.item_command(flat_base, [_image_placement(_write_picture("rgba", tmp_path), "overlay")],
                                        "out.mp4", str(tmp_path))
    assert "yuva420p" in " ".join(transparent)


def test_fully_transparent_image_is_refused(tmp_path):
    """Composited, a picture with no opaque pixel shows nothing: refused at load like a silent WAV."""
    from vdata.haystack.config import load_haystack_config
    from vdata.haystack.needles import load_needle_sets
    from vdata.schemas.config import ConfigError

    (tmp_path / "images").mkdir()
    Image.new("RGBA", (64, 64), HIDDEN + (0,)).save(tmp_path / "images" / "ghost.png")
    _logo_rgba().save(tmp_path / "images" / "logo.png")
    cfg = haystack_config(tmp_path, "ghost", needles=[{"type": "image", "from": "images/*.png"}])
    with pytest.raises(ConfigError) as e:
        load_needle_sets(load_haystack_config(cfg))
    assert "ghost.png cannot be used: fully transparent" in str(e.value)


# --- H2: a spoken needle's audible part ---

LEAD_S, TAIL_S = 1.0, 1.5


def _padded_speech(folder: Path, text: str) -> Path:
    """espeak-ng speech with LEAD_S of silence before and TAIL_S after it, as many TTS files come."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder.parent / "raw.wav"
    speak(str(raw), text)
    with wave.open(str(raw)) as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    assert channels == 1 and width == 2
    padded = np.concatenate([np.zeros(int(LEAD_S * rate), np.int16), samples, np.zeros(int(TAIL_S * rate), np.int16)])
    path = folder / "train_station.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(padded.tobytes())
    (folder / "train_station.txt").write_text(text + "\n")
    return path


def _loud_span(video: str) -> tuple[float, float]:
    """First and last time the rendered video's audio is above 2% of its peak (the haystack is silent)."""
    pcm = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", video, "-map", "0:a:0", "-ac", "1", "-ar", "44100",
                          "-f", "f32le", "-"], capture_output=True, check=True).stdout
    a = np.abs(np.frombuffer(pcm, np.float32))
    loud = np.flatnonzero(a >= 0.02 * a.max())
    return loud[0] / 44100, (loud[-1] + 1) / 44100


def test_spoken_needle_interval_is_its_audible_part(tmp_path, bikes):
    (tmp_path / "videos").mkdir()
    shutil.copy(bikes, tmp_path / "videos" / "bikes.mp4")             # no audio track: only the needle is heard
    wav = _padded_speech(tmp_path / "speech", "meet me at the train station")
    cfg = haystack_config(tmp_path, "spoken", needles=[{"type": "audio", "from": "speech/*.wav"}],
                          tasks=["localization"], needles_per_item=[1], lengths_s=[12], options=2)
    result = build_haystack(cfg)
    assert result.kept == 1, (dict(result.rejected), result.skipped_cells)
    row = pq.read_table(result.paths["items"]).to_pylist()[0]
    start, end = row[H.ANSWER_START_S], row[H.ANSWER_END_S]
    with wave.open(str(wav)) as w:
        file_s = w.getnframes() / w.getframerate()
    assert end - start < file_s - (LEAD_S + TAIL_S) + 0.3               # the padding is not in the answer
    heard_from, heard_to = _loud_span(os.path.join(result.out_dir, row[H.VIDEO_PATH]))
    assert start - 0.06 <= heard_from <= start + 0.12, (start, heard_from)   # speech begins as the interval does
    assert end - 0.12 <= heard_to <= end + 0.06, (end, heard_to)             # ... and ends with it
    header = json.loads((Path(result.out_dir) / "manifest.json").read_text())
    needle = header["needle_sets"][0]["needles"][0]
    assert needle["duration_s"] == pytest.approx(file_s, abs=1e-3)          # placed and mixed whole
    assert needle["audible_s"][0] == pytest.approx(LEAD_S, abs=0.1)
    line = json.loads((Path(result.out_dir) / "placements.jsonl").read_text().splitlines()[0])
    assert [(p["start_s"], p["end_s"]) for p in line["placements"]] == [(start, end)]
    assert json.loads(row[H.VERIFY_DETAIL])[0]["present"]               # ASR hears it inside that interval


def test_spoken_needle_file_is_mixed_whole_from_before_its_interval(tmp_path):
    """The placement is the audible part; ffmpeg delays (and ducks for) the whole file, from `audible[0]`
    before it. A manifest before version 3 (no `audible`) places the file itself, and renders as it did."""
    wav = tmp_path / "speech.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000 * 3, np.int16).tobytes())
    renderer = Renderer(SIZE, FPS, EncodeSpec(), str(tmp_path / "cache"))
    now = Needle("s", "audio", "hello there", 3.0, str(wav), "speech.wav", audible=(0.75, 2.5))
    old = Needle("s", "audio", "hello there", 3.0, str(wav), "speech.wav")
    for needle, start, end in ((now, 4.75, 6.5), (old, 4.0, 7.0)):
        args = renderer.item_command("base.mov", [Placement(needle, "target", start, end, "audio")], "o.mp4",
                                     str(tmp_path))
        graph = args[args.index("-filter_complex") + 1]
        assert "adelay=delays=4000:all=1" in graph and "between(t,4,7)" in graph, graph


# --- H3: resuming an interrupted build ---

def _resume_config(root: Path, bikes, name: str, **extra) -> Path:
    if not (root / "videos").exists():
        (root / "videos").mkdir()
        shutil.copy(bikes, root / "videos" / "bikes.mp4")
        images = root / "images"
        images.mkdir()
        for i, colour in enumerate([(220, 30, 30), (30, 160, 60), (40, 60, 220), (230, 200, 40)]):
            im = Image.new("RGB", (160, 120), colour)
            inner = (255 - colour[0], 240, 255 - colour[2])
            ImageDraw.Draw(im).rectangle([20 + 10 * i, 20, 90 + 10 * i, 90], fill=inner)
            im.save(images / f"card_{'abcd'[i]}.png")
    return haystack_config(root, name, out_dir=root / "out" / name,
                           needles=[{"type": "image", "from": "images/*.png", "duration_s": 1.0}], tasks=["retrieval"],
                           needles_per_item=[1], items_per_cell=3, lengths_s=[8], **extra)


def _videos(out: Path) -> dict[str, os.stat_result]:
    return {p.name: p.stat() for p in sorted((out / "videos").glob("*.mp4"))}


def test_rerun_reuses_finished_items(tmp_path, bikes):
    cfg = _resume_config(tmp_path, bikes, "resume")
    out = tmp_path / "out" / "resume"
    first = build_haystack(cfg)
    assert first.kept == 3
    before = _videos(out)
    lost = sorted(before)[1]
    (out / "videos" / lost).unlink()                                    # this item was never finished ...
    (out / "videos" / f"{lost}.part.mp4").write_bytes(b"half a video")   # ... its render was cut off
    (out / "run_report.json").unlink()

    again = build_haystack(cfg)
    after = _videos(out)
    assert sorted(after) == sorted(before)
    for name, st in before.items():
        if name != lost:   # the same file, untouched
            assert (after[name].st_ino, after[name].st_mtime_ns) == (st.st_ino, st.st_mtime_ns), name
    assert again.reused == 2 and again.kept == 3
    assert json.loads((out / "run_report.json").read_text())["reused"] == 2
    assert not (out / "videos" / f"{lost}.part.mp4").exists()

    clean = build_haystack(cfg, out_dir=str(tmp_path / "clean"))
    for name in ("manifest.json", "placements.jsonl", "digests.jsonl"):
        assert (out / name).read_text() == (tmp_path / "clean" / name).read_text(), name
    for name in ("items.parquet", "rejects.parquet"):
        assert pq.read_table(out / name).to_pylist() == pq.read_table(tmp_path / "clean" / name).to_pylist(), name
    for name in after:
        assert (out / "videos" / name).read_bytes() == (tmp_path / "clean" / "videos" / name).read_bytes(), name

    # a config that changes how the items render must not reuse them
    changed = _resume_config(tmp_path, bikes, "resume", encode={"crf": 30})
    third = build_haystack(changed)
    assert third.reused == 0 and third.kept == 3
    for name, st in _videos(out).items():
        assert st.st_ino != after[name].st_ino, name
