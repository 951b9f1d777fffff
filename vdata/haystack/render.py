"""Rendering with ffmpeg: normalised sources → a cached base haystack per (sources, length, seed) →
one ffmpeg invocation per item that overlays every needle and mixes every spoken needle.

Needles replace pixels for their interval instead of being spliced in, so the haystack keeps its
length and its audio stays in sync. Intermediates are high-quality H.264 with PCM audio in MOV; every
encode is bit-exact (no encoder/version tags, no metadata) so the same ffmpeg build turns the same
manifest into byte-identical files.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Iterable

from vdata.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from vdata.media.synth import bundled_font

from .config import EncodeSpec
from .model import Base, Placement
from .needles import text_font_size, text_padding
from .sources import Source

AUDIO_RATE = 44100
INTERMEDIATE_CRF = 18
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]


def ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def _num(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") or "0"


def _filter_path(path: str) -> str:
    """A path as a quoted filter option value (the same escaping vdata.media.synth uses for fonts)."""
    if "'" in path:
        raise ValueError(f"path with a quote cannot go into an ffmpeg filter: {path}")
    return "'" + path.replace("\\", "/").replace(":", r"\:") + "'"


def _atomic(path: str, make) -> str:
    """Build `path` through a temporary name, so an interrupted run never leaves a half file in a cache."""
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.part{os.path.splitext(path)[1]}"
    make(tmp)
    os.replace(tmp, path)
    return path


class Renderer:
    def __init__(self, size: tuple[int, int], fps: float, encode: EncodeSpec, cache_dir: str):
        self.width, self.height = size
        self.fps = fps
        self.encode = encode
        self.cache_dir = cache_dir

    # --- stage 1: each source once, at the haystack's size / fps / audio format ---
    def normalized_path(self, source: Source) -> str:
        return os.path.join(self.cache_dir, "sources",
                            f"{source.source_id}_{self.width}x{self.height}_{_num(self.fps)}.mov")

    def normalize(self, source: Source) -> str:
        def make(tmp):
            w, h = self.width, self.height
            args = ["-i", source.path]
            audio_in = "0:a:0"
            if not source.has_audio:   # silence keeps every piece two-stream, so the concat stays aligned
                args += ["-f", "lavfi", "-i", f"anullsrc=r={AUDIO_RATE}:cl=stereo"]
                audio_in = "1:a"
            graph = (f"[0:v:0]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bicubic,"
                     f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:black,setsar=1,fps={_num(self.fps)},format=yuv420p[v];"
                     f"[{audio_in}]aresample={AUDIO_RATE},aformat=sample_fmts=s16:channel_layouts=stereo,apad[a]")
            run_ffmpeg([*args, "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
                        "-frames:v", str(source.frames), "-t", _num(source.duration_s),
                        *self._video_codec(INTERMEDIATE_CRF), "-c:a", "pcm_s16le", *BITEXACT, "-f", "mov", tmp],
                       timeout=None)
        return _atomic(self.normalized_path(source), make)

    # --- stage 2: the base haystack, cached per (sources, length, seed) through its content-derived id ---
    def base_path(self, base: Base) -> str:
        return os.path.join(self.cache_dir, "bases", f"{base.base_id}.mov")

    def render_base(self, base: Base, sources: dict[str, Source]) -> str:
        def make(tmp):
            listing = tmp + ".ffconcat"
            with open(listing, "w") as f:
                f.write("ffconcat version 1.0\n")
                for seg in base.segments:
                    path = os.path.abspath(self.normalize(sources[seg.source_id]))
                    f.write("file '" + path.replace("'", "'\\''") + "'\n")
            try:
                run_ffmpeg(["-f", "concat", "-safe", "0", "-i", listing, "-map", "0:v", "-map", "0:a",
                            "-frames:v", str(base.frames), "-t", _num(base.length_s),
                            *self._video_codec(INTERMEDIATE_CRF), "-c:a", "pcm_s16le", *BITEXACT, "-f", "mov", tmp],
                           timeout=None)
            finally:
                os.remove(listing)
        return _atomic(self.base_path(base), make)

    # --- stage 3: one invocation per item ---
    def item_command(self, base_path: str, placements: Iterable[Placement], out_path: str, workdir: str) -> list[str]:
        """ffmpeg arguments that draw/overlay/mix every placement onto the base haystack."""
        half = 0.5 / self.fps   # windows are shifted half a frame so frame k is in iff k/fps ∈ [start, end)
        inputs = ["-i", base_path]
        graph: list[str] = []
        current = "0:v"
        n_inputs = 1
        speech = []
        for i, p in enumerate(sorted(placements, key=lambda p: p.start_s)):
            if p.kind == "audio":
                speech.append(p)
                continue
            enable = f"gte(t,{_num(p.start_s - half)})*lt(t,{_num(p.end_s - half)})"
            x, y, w, h = p.box
            if p.kind in ("image", "clip"):
                dur = _num(p.end_s - p.start_s)
                if p.kind == "image":
                    inputs += ["-loop", "1", "-framerate", _num(self.fps), "-t", dur, "-i", p.needle.path]
                else:
                    inputs += ["-t", dur, "-i", p.needle.path]
                chain = f"[{n_inputs}:v:0]fps={_num(self.fps)},scale={w}:{h}:flags=bicubic,setsar=1,format=yuv420p"
                ox, oy = x, y
                if p.style == "fullframe":
                    chain += f",pad={self.width}:{self.height}:{x}:{y}:black"
                    ox, oy = 0, 0
                # Two cloned frames past the end: overlay stops drawing at the needle stream's last
                # timestamp, and `enable` (not the stream's length) must decide the last frame.
                graph.append(f"{chain},tpad=stop=2:stop_mode=clone,setpts=PTS-STARTPTS+{_num(p.start_s - half)}/TB[n{i}]")
                graph.append(f"[{current}][n{i}]overlay=x={ox}:y={oy}:eof_action=pass:enable='{enable}'[v{i}]")
                n_inputs += 1
            elif p.kind == "text":
                textfile = os.path.join(workdir, f"text{i}.txt")
                with open(textfile, "w", encoding="utf-8") as f:
                    f.write(p.needle.label)
                size = text_font_size(p.needle.label, p.style, self.width, self.height)
                pad = text_padding(size)
                parts = []
                if p.style == "fullframe":
                    parts.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='{enable}'")
                draw = (f"drawtext=fontfile={_filter_path(bundled_font(bold=True))}:textfile={_filter_path(textfile)}"
                        f":expansion=none:fontsize={size}:fontcolor=white:x={x + pad}:y={y + pad}:enable='{enable}'")
                if p.style == "overlay":
                    draw += f":box=1:boxcolor=black@0.65:boxborderw={pad}"
                parts.append(draw)
                graph.append(f"[{current}]{','.join(parts)}[v{i}]")
            else:
                raise ValueError(f"unknown needle kind {p.kind!r}")
            current = f"v{i}"
        graph.append(f"[{current}]format=yuv420p[vout]")
        if speech:
            duck = "+".join(f"between(t,{_num(p.start_s)},{_num(p.end_s)})" for p in speech)
            graph.append(f"[0:a]volume={_num(self.encode.duck)}:enable='{duck}'[bg]")
            mixed = "[bg]"
            for j, p in enumerate(speech):
                inputs += ["-i", p.needle.path]
                delay = int(round(p.start_s * 1000))
                graph.append(f"[{n_inputs}:a:0]aresample={AUDIO_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,"
                             f"adelay=delays={delay}:all=1[s{j}]")
                mixed += f"[s{j}]"
                n_inputs += 1
            graph.append(f"{mixed}amix=inputs={len(speech) + 1}:duration=first:dropout_transition=0:normalize=0[aout]")
            audio_map = "[aout]"
        else:
            audio_map = "0:a"
        return [*inputs, "-filter_complex", ";".join(graph), "-map", "[vout]", "-map", audio_map,
                *self._video_codec(self.encode.crf), "-c:a", "aac", "-b:a", self.encode.audio_bitrate,
                *BITEXACT, "-movflags", "+faststart", out_path]

    def render_item(self, base_path: str, placements: Iterable[Placement], out_path: str) -> str:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        os.makedirs(self.cache_dir, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix="item_", dir=self.cache_dir)
        tmp = f"{out_path}.part.mp4"
        try:
            run_ffmpeg(self.item_command(base_path, placements, tmp, workdir), timeout=None)
            os.replace(tmp, out_path)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            if os.path.exists(tmp):
                os.remove(tmp)
        return out_path

    def reencode_command(self, base_path: str, out_path: str) -> list[str]:
        """The plain re-encode of a base haystack with the item encoder settings (the benchmark's yardstick)."""
        return ["-i", base_path, "-map", "0:v", "-map", "0:a", *self._video_codec(self.encode.crf),
                "-c:a", "aac", "-b:a", self.encode.audio_bitrate, *BITEXACT, "-movflags", "+faststart", out_path]

    def _video_codec(self, crf: int) -> list[str]:
        gop = max(1, int(round(self.fps * 2)))
        return ["-c:v", "libx264", "-preset", self.encode.preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                "-g", str(gop)]
