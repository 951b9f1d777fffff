"""The ffmpeg binary (shipped by the imageio-ffmpeg wheel, so no system ffmpeg is needed)."""
from __future__ import annotations

import functools
import shutil
import subprocess

from . import MediaError


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # fall back to a system ffmpeg
        exe = shutil.which("ffmpeg")
        if not exe:
            raise MediaError("no_ffmpeg", "ffmpeg not found: pip install imageio-ffmpeg")
        return exe


def run_ffmpeg(args: list[str], timeout: float | None = 600) -> None:
    """Run ffmpeg quietly; a failure raises MediaError with the tail of its log."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MediaError("ffmpeg_timeout", f"ffmpeg ran longer than {timeout}s")
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise MediaError("ffmpeg_failed", "ffmpeg failed: " + " | ".join(tail))


def video_map(path: str) -> str:
    """ffmpeg's `-map` for the video stream vdata reads from `path` (`video_stream`: not a cover picture,
    ffmpeg's own pick among the rest), by index; `0:V:0` (the first video that is not a picture) where
    PyAV cannot say."""
    import av

    from .streams import video_stream

    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = video_stream(container)
            return f"0:{stream.index}" if stream is not None else "0:V:0"
    except av.error.FFmpegError:
        return "0:V:0"
