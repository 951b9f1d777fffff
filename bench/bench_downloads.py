"""Reading a video2dataset download (`format: video2dataset`) against the bare reads it is made of.

    python bench/bench_downloads.py [--samples N] [--members M]

First table: a `files`-layout folder of N samples (default 20,000; 100 per shard folder, as video2dataset
shards them): each `<key>.json` with yt-dlp info and two subtitle lines, `<key>.txt`, an empty `<key>.mp4`.
The limit is `json.load` of every sample file in a plain listing; vdata's `read_video2dataset` reads the
same files and also the captions, turns subtitles onto the clip's clock and builds each record.

Second table: a `webdataset` shard of M samples (default 500), each a real 1-s H.264 clip: extracting every
video into the build's media folder (`vdata.media.archives.extract_members`) against `tarfile`'s own
`extractall` of the whole shard (the limit: every member written, no bookkeeping).
"""
from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, cached_video, table, timed  # noqa: E402


def _arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def write_files_layout(folder: Path, samples: int) -> None:
    for i in range(samples):
        shard = folder / f"{i // 100:05d}"
        shard.mkdir(parents=True, exist_ok=True)
        key = f"{i:09d}"
        meta = {"key": key, "status": "success", "error_message": None, "url": f"https://example.org/{key}",
                "caption": f"clip {i} of a person cooking", "matching_score": "0.45",
                "clips": "[('00:00:10.000', '00:00:14.000')]",
                "yt_meta_dict": {"info": {"title": f"video {i}", "description": "a long description " * 20}},
                "clip_subtitles": [{"start": "00:00:09.000", "end": "00:00:11.500", "lines": ["first we sand"]},
                                   {"start": "00:00:11.500", "end": "00:00:15.000", "lines": ["then we paint"]}]}
        (shard / f"{key}.json").write_text(json.dumps(meta, indent=4))
        (shard / f"{key}.txt").write_text(meta["caption"])
        (shard / f"{key}.mp4").touch()


def write_shard(path: Path, members: int) -> None:
    clip = Path(cached_video("downloads_clip_1s.mp4", lambda p: _one_second_clip(p)))
    with tarfile.open(path, "w") as tar:
        for i in range(members):
            key = f"{i:09d}"
            tar.add(clip, arcname=f"{key}.mp4")
            for ext, text in (("txt", f"clip {i}"), ("json", json.dumps({"key": key, "status": "success"}))):
                info = tarfile.TarInfo(f"{key}.{ext}")
                data = text.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def _one_second_clip(path: str) -> None:
    from vdata.media.synth import Segment, render_segments

    render_segments(path, [Segment("testsrc2", 1.0)], size=(320, 240))


def best_of(fn, repeat: int = 3) -> float:
    return timed(fn, repeat)[0]


def files_table(samples: int) -> None:
    from vdata.schemas.annotation_formats import read_video2dataset

    folder = CACHE / f"v2d_files_{samples}"
    if not folder.is_dir():
        write_files_layout(Path(str(folder) + ".part"), samples)
        os.replace(str(folder) + ".part", folder)

    def bare() -> int:
        n = 0
        for here, _, files in os.walk(folder):
            for name in files:
                if name.endswith(".json"):
                    with open(os.path.join(here, name)) as f:
                        n += bool(json.load(f))
        return n

    limit = best_of(bare)
    ours = best_of(lambda: read_video2dataset(str(folder)))
    assert len(read_video2dataset(str(folder)).videos) == samples
    table(f"video2dataset files layout, {samples:,} samples (x = the bare read's time / this time)",
          ["reader", "s", "samples/s", "x"],
          [["os.walk + json.load of every sample (the limit)", f"{limit:.2f}", f"{samples / limit:,.0f}", "1.00"],
           ["vdata read_video2dataset", f"{ours:.2f}", f"{samples / ours:,.0f}", f"{limit / ours:.2f}"]])


def shard_table(members: int) -> None:
    from vdata.media.archives import extract_members

    shard = CACHE / f"v2d_shard_{members}.tar"
    if not shard.exists():
        write_shard(Path(str(shard) + ".part"), members)
        os.replace(str(shard) + ".part", shard)
    wanted = [(str(shard), f"{i:09d}.mp4") for i in range(members)]
    size = os.path.getsize(shard) / 1e6

    def limit_run():
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(shard) as tar:
            tar.extractall(tmp, filter="data")

    def ours_run():
        with tempfile.TemporaryDirectory() as tmp:
            paths, failed = extract_members(wanted, tmp)
            assert len(paths) == members and not failed

    limit = best_of(limit_run)
    ours = best_of(ours_run)
    with tempfile.TemporaryDirectory() as tmp:
        extract_members(wanted, tmp)
        again = best_of(lambda: extract_members(wanted, tmp))   # a re-run: every video is there already
    table(f"webdataset shard of {members:,} clips, {size:.1f} MB (x = tarfile's extractall time / this time)",
          ["step", "s", "clips/s", "x"],
          [["tarfile extractall (the limit)", f"{limit:.2f}", f"{members / limit:,.0f}", "1.00"],
           ["vdata extract_members (every video)", f"{ours:.2f}", f"{members / ours:,.0f}", f"{limit / ours:.2f}"],
           ["the same, run again (all extracted)", f"{again:.3f}", f"{members / again:,.0f}", f"{limit / again:.2f}"]])


if __name__ == "__main__":
    files_table(_arg("--samples", 20_000))
    shard_table(_arg("--members", 500))
