"""The annotations stage: videos per second, next to the least a reader of those annotations must do.

    python bench/bench_annotations.py [--videos 40] [--repeat 3]

Input: `--videos` small MKVs as yt-dlp's --embed-chapters --embed-subs --embed-metadata leaves them (two
chapters, an English and a German SubRip track with 60 cues each, title and description inside the file),
and the same videos with those annotations in sidecar files instead (`<stem>.en.srt`, `<stem>.info.json`).

Rows per case:
- limit: PyAV opens each file and reads every packet of its subtitle tracks (the bytes any reader must
  touch; nothing is parsed);
- ffmpeg CLI: `ffmpeg -i video -map 0:s:0 -f srt -` per video, what a hand-written script calls (the peer);
- the stage with `embedded: true` (the default) and with only sidecars to read.
x = limit time / stage time (or peer time / stage time).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, table, timed  # noqa: E402

from vdata.media.ffmpeg import ffmpeg_exe, run_ffmpeg  # noqa: E402
from vdata.schemas import records as R  # noqa: E402
from vdata.stages.annotations import AnnotationsStage  # noqa: E402

CUES = 60
CHAPTERS = ((0, 4000, "Intro"), (4000, 8000, "Fold"))
META = ";FFMETADATA1\ntitle=Folding a paper crane\ndescription=Three steps.\n" + "".join(
    f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={a}\nEND={b}\ntitle={t}\n" for a, b, t in CHAPTERS)


def srt(lang: str) -> str:
    return "".join(f"{i + 1}\n00:00:0{i // 10},{(i % 10) * 100:03d} --> 00:00:0{i // 10},{(i % 10) * 100 + 90:03d}\n"
                   f"{lang} line {i}\n\n" for i in range(CUES))


def make_inputs(n: int) -> tuple[list[str], list[str]]:
    folder = CACHE / f"annotations_{n}"
    embedded, sidecar = folder / "embedded", folder / "sidecar"
    if not (folder / "done").exists():
        for d in (embedded, sidecar):
            d.mkdir(parents=True, exist_ok=True)
        (folder / "meta.txt").write_text(META)
        (folder / "en.srt").write_text(srt("en"))
        (folder / "de.srt").write_text(srt("de"))
        base = folder / "base.mp4"
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=8", "-c:v", "libx264", str(base)])
        one = folder / "one.mkv"
        run_ffmpeg(["-i", str(base), "-i", str(folder / "meta.txt"), "-i", str(folder / "de.srt"), "-i",
                    str(folder / "en.srt"), "-map", "0:v", "-map", "2", "-map", "3", "-map_metadata", "1",
                    "-map_chapters", "1", "-c:v", "copy", "-c:s", "srt", "-metadata:s:s:0", "language=ger",
                    "-metadata:s:s:1", "language=eng", str(one)])
        for k in range(n):
            os.link(one, embedded / f"v{k:03d}.mkv")
            os.link(base, sidecar / f"v{k:03d}.mp4")
            (sidecar / f"v{k:03d}.en.srt").write_text(srt("en"))
            chapters = [{"start_time": a / 1000, "end_time": b / 1000, "title": t} for a, b, t in CHAPTERS]
            (sidecar / f"v{k:03d}.info.json").write_text(json.dumps(
                {"title": "Folding a paper crane", "description": "Three steps.", "chapters": chapters}))
        (folder / "done").write_text("")
    return sorted(map(str, embedded.glob("*.mkv"))), sorted(map(str, sidecar.glob("*.mp4")))


def read_subtitle_packets(paths: list[str]) -> int:
    import av

    packets = 0
    for p in paths:
        with av.open(p) as c:
            packets += sum(1 for _ in c.demux(*c.streams.subtitles))
    return packets


def ffmpeg_cli(paths: list[str]) -> None:
    for p in paths:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", p, "-map", "0:s:0", "-f", "srt", "-"], check=True,
                       capture_output=True)


def stage_over(paths: list[str], **cfg) -> int:
    stage = AnnotationsStage(**cfg)
    rows = stage.process_batch([{R.PATH: p, R.SOURCE_URI: p, R.DURATION_S: 8.0, R.SOURCE_META: None} for p in paths])
    kept = [r for r in rows if isinstance(r, dict)]
    assert len(kept) == len(paths) and all(len(r[R.ANNOTATIONS]["subtitles"]) == CUES for r in kept)
    return len(kept)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    embedded, sidecar = make_inputs(args.videos)
    n = len(embedded)
    t_limit, _ = timed(lambda: read_subtitle_packets(embedded), args.repeat)
    t_cli, _ = timed(lambda: ffmpeg_cli(embedded), args.repeat)
    t_emb, _ = timed(lambda: stage_over(embedded), args.repeat)
    t_side, _ = timed(lambda: stage_over(sidecar, embedded=False), args.repeat)
    def row(case: str, t: float) -> list[str]:
        return [case, f"{n / t:.0f}", f"{t_limit / t:.2f}", f"{t_cli / t:.2f}"]

    rows = [row("limit: PyAV reads the subtitle packets", t_limit), row("peer: ffmpeg CLI to SRT per video", t_cli),
            row("annotations stage, embedded (default)", t_emb), row("annotations stage, sidecars only", t_side)]
    table(f"{n} videos, 2 chapters and {CUES} cues each (videos/s; best of {args.repeat})",
          ["case", "videos/s", "x limit", "x ffmpeg CLI"], rows)


if __name__ == "__main__":
    main()
