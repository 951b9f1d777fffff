"""The rebuild manifest: enough to re-render a benchmark byte-for-byte from the same public sources,
without redistributing any video.

`manifest.json` holds the seed, the config, the render settings (with what a rebuild promises: see
`render.determinism`), the sources and needles by content id, and every base haystack's trims;
`placements.jsonl` holds one line per planned item (its base and its needle placements), streamed so a
long sweep never sits in memory. Both are pure functions of the config and the input files: no times,
no absolute paths, no run-dependent values. `digests.jsonl` holds, per rendered item, the file's sha256
and the md5 of its decoded frames and samples: what a rebuild is checked against.
"""
from __future__ import annotations

import json
import os
from typing import Iterator

from .config import HaystackConfig
from .model import Base, ItemPlan, Placement, Segment
from .needles import Needle, NeedleSet
from .render import AUDIO_RATE, INTERMEDIATE_CRF, determinism, ffmpeg_version
from .sources import SkippedSource, Source

FORMAT = "vdata-haystack-manifest"
# 2: deterministic x264 settings and digests.jsonl; version-1 benchmarks rebuild, unpromised. 3: a spoken
# needle's placement is its audible part (needle rows carry `audible_s`: where in the file that part lies);
# a version-2 row has none, its placement is the whole file, and it renders as it did.
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"
PLACEMENTS = "placements.jsonl"
DIGESTS = "digests.jsonl"


def build_header(cfg: HaystackConfig, sources: list[Source], skipped: list[SkippedSource],
                 sets: list[NeedleSet], bases: dict[float, Base]) -> dict:
    h = cfg.haystack
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": cfg.name,
        "benchmark_hash": cfg.benchmark_hash(),
        "seed": h.seed,
        "config": cfg.model_dump(mode="json", by_alias=True, exclude={"output"}),
        "render": {"size": list(h.size), "fps": h.fps, "encode": h.encode.model_dump(mode="json"),
                   "intermediate_crf": INTERMEDIATE_CRF, "audio_rate": AUDIO_RATE, "ffmpeg": ffmpeg_version(),
                   "determinism": determinism()},
        "sources": [{"source_id": s.source_id, "ref": s.ref, "frames": s.frames, "duration_s": s.duration_s,
                     "has_audio": s.has_audio, "width": s.width, "height": s.height} for s in sources],
        "skipped_sources": [{"ref": os.path.relpath(s.path, cfg.base_dir), "reason": s.reason, "message": s.message}
                            for s in skipped],
        "needle_sets": [{"name": ns.name, "kind": ns.kind, "style": ns.style, "scale": ns.scale,
                         "needles": [_needle_row(n) for n in ns.needles]} for ns in sets],
        "haystacks": [{"haystack_id": b.base_id, "length_s": b.length_s, "frames": b.frames,
                       "segments": [[s.source_id, s.offset_s, s.start_s, s.end_s] for s in b.segments]}
                      for b in bases.values()],
        "placements_file": PLACEMENTS,
    }


def _needle_row(n: Needle) -> dict:
    row = {"needle_id": n.needle_id, "kind": n.kind, "label": n.label, "duration_s": n.duration_s,
           "width": n.width, "height": n.height, "ref": n.ref}
    if n.audible is not None:
        row["audible_s"] = list(n.audible)
    return row


def placement_line(item: ItemPlan) -> str:
    placements = [{k: v for k, v in p.row().items() if k != "label"} for p in item.placements]
    return json.dumps({"item_id": item.item_id, "media_id": item.media_id or item.item_id,
                       "haystack_id": item.base.base_id, "placements": placements},
                      sort_keys=True, separators=(",", ":"))


class ManifestWriter:
    def __init__(self, out_dir: str, header: dict):
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, MANIFEST), "w") as f:
            json.dump(header, f, indent=1, sort_keys=True)
            f.write("\n")
        self._lines = open(os.path.join(out_dir, PLACEMENTS), "w")

    def add(self, item: ItemPlan) -> None:
        self._lines.write(placement_line(item) + "\n")

    def close(self) -> None:
        self._lines.close()


# --- reading back (rebuild) ---

def read_header(bench_dir: str) -> dict:
    with open(os.path.join(bench_dir, MANIFEST)) as f:
        header = json.load(f)
    if header.get("format") != FORMAT:
        raise ValueError(f"{bench_dir}/{MANIFEST} is not a vdata haystack manifest")
    if header.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"manifest version {header.get('version')} is not supported "
                         f"(this vdata reads {', '.join(map(str, READABLE_VERSIONS))})")
    return header


def iter_placement_lines(bench_dir: str) -> Iterator[dict]:
    with open(os.path.join(bench_dir, PLACEMENTS)) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


class DigestWriter:
    """Appends one line per rendered item: {item_id, sha256, decoded}."""

    def __init__(self, out_dir: str):
        os.makedirs(out_dir, exist_ok=True)
        self._f = open(os.path.join(out_dir, DIGESTS), "w")

    def add(self, item_id: str, sha256: str, decoded: str) -> None:
        self._f.write(json.dumps({"item_id": item_id, "sha256": sha256, "decoded": decoded}, sort_keys=True) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_digests(bench_dir: str) -> dict[str, dict]:
    """item_id → its recorded digests; empty for benchmarks built before digests were kept."""
    path = os.path.join(bench_dir, DIGESTS)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {d["item_id"]: d for d in map(json.loads, filter(str.strip, f))}


def bases_from(header: dict, fps: float, size) -> dict[str, Base]:
    return {b["haystack_id"]: Base(b["haystack_id"], b["length_s"], b["frames"], fps, size[0], size[1],
                                   tuple(Segment(*s) for s in b["segments"])) for b in header["haystacks"]}


def needles_from(header: dict, paths: dict[str, str]) -> dict[str, Needle]:
    """Needle objects by id; file needles take their local path from `paths` (id → path)."""
    out = {}
    for ns in header["needle_sets"]:
        for n in ns["needles"]:
            audible = tuple(n["audible_s"]) if n.get("audible_s") is not None else None
            out[n["needle_id"]] = Needle(n["needle_id"], n["kind"], n["label"], n["duration_s"],
                                         paths.get(n["needle_id"]), n["ref"], n["width"], n["height"], audible)
    return out


def placements_from(line: dict, needles: dict[str, Needle]) -> list[Placement]:
    out = []
    for p in line["placements"]:
        box = None if p["x"] is None else (p["x"], p["y"], p["w"], p["h"])
        out.append(Placement(needles[p["needle_id"]], p["role"], p["start_s"], p["end_s"], p["style"], box))
    return out
