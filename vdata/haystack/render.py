"""Rendering with ffmpeg: normalised sources → a cached base haystack per (sources, length, seed) →
one ffmpeg invocation per item that overlays every needle and mixes every spoken needle.

Needles replace pixels for their interval instead of being spliced in, so the haystack keeps its
length and its audio stays in sync. Intermediates are high-quality H.264 with PCM audio in MOV.

Determinism (what `rebuild` promises, written into the manifest by `determinism()`): the same ffmpeg
build turns the same manifest into byte-identical files, whatever the machine's load, its core count,
the decode/filter thread settings, and whether rendering runs in a Ray worker or in the driver. What
that takes, each measured on this project's machines:
- x264's default frame threads race under load: 1 in 18 concurrent renders of one base haystack came
  out with a few different frames. Sliced threads with a fixed count (X264_SLICES) gave 24 of 24
  identical renders under the same load, and `cpu-independent` keeps x264 off its CPU-specific,
  non-bit-exact paths.
- swscale runs with `bitexact+accurate_rnd` (explicit scalers and the ones format negotiation inserts).
- ffmpeg's own SIMD is held to the x86-64 baseline (`-cpuflags`), so float audio work (resampling,
  mixing, AAC) and scaling take the same code paths on every x86-64 CPU, with or without AVX2/AVX-512.
- no encoder/version tags and no metadata in the files.
Decoding is bit-exact by the codecs' specs, so decode and filter threads may vary (`Renderer.threads`).
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from typing import Iterable

from vdata.media.ffmpeg import ffmpeg_exe, run_ffmpeg

from .config import EncodeSpec
from .model import Base, Placement
from .needles import text_font_path, text_font_size, text_padding
from .pictures import input_args, is_transparent
from .sources import Source

AUDIO_RATE = 44100
INTERMEDIATE_CRF = 18
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]
X264_SLICES = 4                      # part of the output format: changing it changes every file's bytes
X264_PARAMS = f"threads={X264_SLICES}:sliced-threads=1:cpu-independent=1"
SWS_FLAGS = "accurate_rnd+full_chroma_int+bitexact"
X86_BASELINE = "mmx+mmxext+sse+sse2"   # every x86-64 CPU has these


def _cpu_args() -> list[str]:
    """ffmpeg's SIMD held to the architecture's baseline, so every CPU of that architecture takes one path."""
    return ["-cpuflags", X86_BASELINE] if platform.machine().lower() in ("x86_64", "amd64") else []


def determinism() -> dict:
    """What a rebuild from the manifest promises, and the settings that make it hold."""
    arch = platform.machine().lower()
    return {"promise": "bytes",
            "scope": f"the same ffmpeg build ({ffmpeg_version()}) on any {arch} CPU, any load, any decode/filter "
                     "thread count, in a Ray worker or in the driver",
            "fallback_check": "decoded video frames and audio samples (md5 per stream)",
            "arch": arch, "x264_params": X264_PARAMS, "sws_flags": SWS_FLAGS,
            "cpuflags": X86_BASELINE if _cpu_args() else None}


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


def decoded_digest(path: str) -> str:
    """md5 of every decoded video frame and audio sample (one hash per stream), for comparing renders whose
    bytes differ: equal digests mean the same pictures and sound in another container/bitstream."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *_cpu_args(),
                          "-threads", "1", "-i", path, "-map", "0:V:0", "-map", "0:a?", "-c:v", "rawvideo",
                          "-c:a", "pcm_s16le", "-f", "streamhash", "-hash", "md5", "-"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return "undecodable"
    return ";".join(line.strip() for line in out.stdout.splitlines() if line.strip())


def _speech_file(p: Placement) -> tuple[float, float]:
    """When a spoken needle's whole file plays (it is mixed, and the haystack ducked, whole): the placement
    holds only its audible part (`Needle.audible`), which starts that far into the file."""
    if p.needle.audible is None:   # manifests before version 3: the placement is the file
        return p.start_s, p.end_s
    at = round(p.start_s - p.needle.audible[0], 6)
    return at, round(at + p.needle.duration_s, 6)


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
    """`threads` sets decode and filter threads only (0: ffmpeg's own choice); it never changes the bytes."""

    def __init__(self, size: tuple[int, int], fps: float, encode: EncodeSpec, cache_dir: str, threads: int = 0):
        self.width, self.height = size
        self.fps = fps
        self.encode = encode
        self.cache_dir = cache_dir
        self.threads = threads

    def _run(self, args: list[str]) -> None:
        """Every render goes through here: the global options that hold the output fixed come first."""
        threads = ["-filter_threads", str(self.threads), "-filter_complex_threads", str(self.threads)] \
            if self.threads else []
        if self.threads:   # decoder threads: an input option, so it goes before every -i
            args = [a for i, x in enumerate(args) for a in
                    ((["-threads", str(self.threads), x] if x == "-i" else [x]))]
        run_ffmpeg([*_cpu_args(), *threads, *args], timeout=None)

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
            graph = (f"sws_flags={SWS_FLAGS};"
                     f"[0:V:0]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2"
                     f":flags=bicubic+{SWS_FLAGS},"
                     f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:black,setsar=1,fps={_num(self.fps)},format=yuv420p[v];"
                     f"[{audio_in}]aresample={AUDIO_RATE},aformat=sample_fmts=s16:channel_layouts=stereo,apad[a]")
            self._run([*args, "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
                       "-frames:v", str(source.frames), "-t", _num(source.duration_s),
                       *self._video_codec(INTERMEDIATE_CRF), "-c:a", "pcm_s16le", *BITEXACT, "-f", "mov", tmp])
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
                self._run(["-f", "concat", "-safe", "0", "-i", listing, "-map", "0:v", "-map", "0:a",
                           "-frames:v", str(base.frames), "-t", _num(base.length_s),
                           *self._video_codec(INTERMEDIATE_CRF), "-c:a", "pcm_s16le", *BITEXACT, "-f", "mov", tmp])
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
                    inputs += [*input_args(p.needle.path), "-loop", "1", "-framerate", _num(self.fps), "-t", dur,
                               "-i", p.needle.path]
                else:
                    inputs += ["-t", dur, "-i", p.needle.path]
                chain = f"[{n_inputs}:v:0]fps={_num(self.fps)},{self._picture(p, w, h)}"
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
                draw = (f"drawtext=fontfile={_filter_path(text_font_path())}:textfile={_filter_path(textfile)}"
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
            files = [_speech_file(p) for p in speech]
            duck = "+".join(f"between(t,{_num(a)},{_num(z)})" for a, z in files)
            graph.append(f"[0:a]volume={_num(self.encode.duck)}:enable='{duck}'[bg]")
            mixed = "[bg]"
            for j, (p, (at, _)) in enumerate(zip(speech, files)):
                inputs += ["-i", p.needle.path]
                delay = int(round(at * 1000))
                graph.append(f"[{n_inputs}:a:0]aresample={AUDIO_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,"
                             f"adelay=delays={delay}:all=1[s{j}]")
                mixed += f"[s{j}]"
                n_inputs += 1
            graph.append(f"{mixed}amix=inputs={len(speech) + 1}:duration=first:dropout_transition=0:normalize=0[aout]")
            audio_map = "[aout]"
        else:
            audio_map = "0:a"
        return [*inputs, "-filter_complex", f"sws_flags={SWS_FLAGS};" + ";".join(graph), "-map", "[vout]",
                "-map", audio_map,
                *self._video_codec(self.encode.crf), "-c:a", "aac", "-b:a", self.encode.audio_bitrate,
                *BITEXACT, "-movflags", "+faststart", out_path]

    @staticmethod
    def _picture(p: Placement, w: int, h: int) -> str:
        """The filters that scale a needle's picture to its box. Opaque pictures (every clip, most images)
        keep the chain they always had, so their bytes stay. A transparent image (`pictures`) is scaled
        premultiplied (its hidden colours never bleed into the edges), then kept with its alpha for
        `overlay` to composite over the haystack, or, fullframe, left premultiplied: over black."""
        scale = f"scale={w}:{h}:flags=bicubic+{SWS_FLAGS},setsar=1"
        if p.kind != "image" or not is_transparent(p.needle.path):
            return f"{scale},format=yuv420p"
        if p.style == "fullframe":
            return f"format=rgba,premultiply=inplace=1,{scale},format=yuv420p"
        return f"format=rgba,premultiply=inplace=1,{scale},unpremultiply=inplace=1,format=yuva420p"

    def render_item(self, base_path: str, placements: Iterable[Placement], out_path: str) -> str:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        os.makedirs(self.cache_dir, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix="item_", dir=self.cache_dir)
        tmp = f"{out_path}.part.mp4"
        try:
            self._run(self.item_command(base_path, placements, tmp, workdir))
            os.replace(tmp, out_path)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            if os.path.exists(tmp):
                os.remove(tmp)
        return out_path

    def reencode_command(self, base_path: str, out_path: str) -> list[str]:
        """The plain re-encode of a base haystack with the item encoder settings (the benchmark's yardstick)."""
        return [*_cpu_args(), "-i", base_path, "-map", "0:v", "-map", "0:a", *self._video_codec(self.encode.crf),
                "-c:a", "aac", "-b:a", self.encode.audio_bitrate, *BITEXACT, "-movflags", "+faststart", out_path]

    def _video_codec(self, crf: int) -> list[str]:
        gop = max(1, int(round(self.fps * 2)))
        return ["-c:v", "libx264", "-preset", self.encode.preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                "-g", str(gop), "-x264-params", X264_PARAMS]
