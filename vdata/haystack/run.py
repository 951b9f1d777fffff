"""Build a haystack benchmark end to end, or rebuild one from its manifest.

    build_haystack("configs/haystack_demo.yaml")            # plan → render → verify → write
    build_haystack(cfg, render="manifest")                   # plan + manifest + items only
    rebuild_haystack("out/haystack-demo", ["videos/", "needles/"])   # same bytes from the same sources

Items are planned lazily and written as they are verified, so memory stays flat however long the
sweep. An item whose render or verification fails is dropped and counted in rejects.parquet.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from vdata.media import MediaError
from vdata.media.hashing import content_id
from vdata.schemas import haystack as H
from vdata.schemas.config import VIDEO_EXTENSIONS, ConfigError

from .config import EncodeSpec, HaystackConfig, VerifySpec, load_haystack_config
from .manifest import (DigestWriter, ManifestWriter, bases_from, build_header, iter_placement_lines, needles_from,
                       placements_from, read_digests, read_header)
from .model import ItemPlan, SkippedCell
from .needles import load_needle_sets
from .planner import iter_items, plan_bases
from .render import Renderer, decoded_digest, ffmpeg_version
from .resume import ItemJournal, item_key
from .sources import SkippedSource, Source, load_sources
from .verify import Verifier, refuse_unverifiable_text
from . import writers
from .writers import items_writer, iter_item_rows, rejects_writer, write_lmms_eval, write_summary, write_vlmevalkit

ITEMS = "items.parquet"
REJECTS = "rejects.parquet"
# Written last by build and rebuild (and removed when they start): a benchmark folder without it is
# incomplete (an interrupted build leaves 4-byte Parquet tables), as score and push say.
DONE = writers.DONE


@dataclass
class HaystackResult:
    out_dir: str
    render: str
    planned: int = 0                      # items planned (grid cells that could be built)
    kept: int = 0                         # items written
    reused: int = 0                       # of them, videos a run before this one finished (resume.py)
    questions: int = 0                    # rows written (rotations included)
    rejected: Counter = field(default_factory=Counter)
    skipped_cells: list[SkippedCell] = field(default_factory=list)
    skipped_sources: list[SkippedSource] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # rebuild only: how each rebuilt item compares with the original ("bytes": identical files, "frames":
    # other bytes but identical decoded frames and samples, "differs", "unrecorded": no digest to check)
    reproduction: Counter = field(default_factory=Counter)
    differing: list[str] = field(default_factory=list)

    @property
    def verified_share(self) -> float:
        done = self.kept + sum(self.rejected.values())
        return self.kept / done if done else 0.0


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _reject_row(item_id: str, haystack_id: str, reason: str, message: str, detail) -> dict:
    return {"stage": "haystack", "reason": reason, "message": message,
            "detail": json.dumps(detail, default=str), "source_uri": None, "video_id": haystack_id,
            "clip_id": None, "sample_id": item_id}


class _ItemRunner:
    """Renders, verifies and writes one item at a time (shared by build and rebuild)."""

    def __init__(self, out_dir: str, renderer: Renderer, verifier: Verifier | None, sources: dict[str, Source],
                 result: HaystackResult, log: Callable[[str], None]):
        self.out_dir, self.renderer, self.verifier = out_dir, renderer, verifier
        self.sources, self.result, self.log = sources, result, log
        self.failed_bases: dict[str, str] = {}
        self.t = Counter()
        self.digests = DigestWriter(out_dir)

    def record_digest(self, item_id: str, media: str) -> dict:
        video = os.path.join(self.out_dir, "videos", f"{media}.mp4")
        t0 = time.perf_counter()
        d = {"sha256": _sha256(video), "decoded": decoded_digest(video)}
        self.digests.add(item_id, **d)
        self.t["digest_s"] += time.perf_counter() - t0
        return d

    def close(self) -> None:
        self.digests.close()

    def render_and_verify(self, media: str, base, placements, absent=()) -> tuple[bool, str | None, str, object]:
        """(ok, reason, message, detail) for the video videos/<media>.mp4; `absent`: the needles the item
        names as not shown, checked absent too. A failure leaves no video behind."""
        if base.base_id in self.failed_bases:
            return False, "render_failed", self.failed_bases[base.base_id], None
        t0 = time.perf_counter()
        try:
            if not os.path.exists(self.renderer.base_path(base)):
                base_path = self.renderer.render_base(base, self.sources)
                self.t["base_s"] += time.perf_counter() - t0
                t0 = time.perf_counter()
            else:
                base_path = self.renderer.base_path(base)
        except MediaError as e:
            self.failed_bases[base.base_id] = f"base haystack {base.base_id}: {e.message}"
            return False, "render_failed", self.failed_bases[base.base_id], None
        video = os.path.join(self.out_dir, "videos", f"{media}.mp4")
        try:
            self.renderer.render_item(base_path, placements, video)
        except (MediaError, OSError, ValueError) as e:
            return False, "render_failed", str(getattr(e, "message", e)), None
        self.t["render_s"] += time.perf_counter() - t0
        self.t["rendered_video_s"] += base.length_s
        if self.verifier is None:
            return True, None, "", None
        t0 = time.perf_counter()
        try:
            res = self.verifier.verify(video, placements, base.length_s, where=_footage_at(base, self.sources),
                                       absent=list(absent), footage=base_path)
        except Exception as e:   # a crashing check is a failed check, never a stopped run
            res = None
            reason, message, detail = "verify_error", f"{type(e).__name__}: {e}", None
        self.t["verify_s"] += time.perf_counter() - t0
        self.t["verified_items"] += 1
        if res is not None and res.ok:
            return True, None, res.message, res.checks
        if res is not None:
            reason, message, detail = res.reason, res.message, res.checks
        os.remove(video)
        return False, reason, message, detail


def _footage_at(base, sources: dict[str, Source]) -> Callable[[float], str]:
    """Names the source footage a haystack time shows ("multishot.mp4 at 1.70 s"): where a needle's
    picture was found outside its interval, for the reject's message."""
    def at(t: float) -> str:
        for seg in base.segments:
            if seg.offset_s <= t < seg.offset_s + seg.end_s - seg.start_s:
                src = sources.get(seg.source_id)
                name = os.path.basename(src.path) if src is not None else seg.source_id
                return f"{name} at {seg.start_s + t - seg.offset_s:.2f} s"
        return ""
    return at


def build_haystack(config: str | os.PathLike | HaystackConfig, *, render: str | None = None,
                   out_dir: str | None = None, verify: bool | None = None, limit: int | None = None,
                   log: Callable[[str], None] | None = None) -> HaystackResult:
    """Plan, render, verify and write a haystack benchmark; returns counts, paths and timings."""
    t_start = time.perf_counter()
    log = log or (lambda msg: None)
    cfg = config if isinstance(config, HaystackConfig) else load_haystack_config(config)
    h = cfg.haystack
    render = render or h.render
    if render not in ("videos", "manifest"):
        raise ValueError("render must be 'videos' or 'manifest'")
    verify = h.verify.enabled if verify is None else verify
    out = _local_out(out_dir, "--out") if out_dir else cfg.resolve(_local_out(cfg.output.dir, "output.dir"))
    os.makedirs(out, exist_ok=True)
    _unmark(out)
    result = HaystackResult(out_dir=out, render=render)

    sources, result.skipped_sources = load_sources(cfg)
    for s in result.skipped_sources:
        log(f"skipped source {s.path}: {s.message}")
    sets = load_needle_sets(cfg)
    if verify:
        refuse_unverifiable_text(sets)
    bases = plan_bases(cfg, sources)
    header = build_header(cfg, sources, result.skipped_sources, sets, bases)
    manifest = ManifestWriter(out, header)
    items = items_writer(os.path.join(out, ITEMS), cfg.output.rows_per_group)
    rejects = rejects_writer(os.path.join(out, REJECTS))
    runner = journal = None
    if render == "videos":
        renderer = Renderer(h.size, h.fps, h.encode, os.path.join(out, "cache"))
        runner = _ItemRunner(out, renderer, Verifier(h.verify, h.fps) if verify else None,
                             {s.source_id: s for s in sources}, result, log)
        journal = ItemJournal(out)   # the items earlier runs into this folder finished
    verify_key = h.verify.model_dump(mode="json") if verify else None
    bench_hash = cfg.benchmark_hash()
    try:
        for plan in iter_items(cfg, sets, bases):
            if isinstance(plan, SkippedCell):
                result.skipped_cells.append(plan)
                continue
            if limit is not None and result.planned >= limit:
                break
            result.planned += 1
            manifest.add(plan)
            if runner is None:
                items.add(plan.rows(h.circular_eval, h.seed, bench_hash, None, None))
                continue
            key = item_key(plan, header["render"], header["version"], verify_key)
            video = os.path.join(out, "videos", f"{plan.media_id}.mp4")
            done = journal.reusable(plan.media_id, key, video, _sha256)
            if done is not None:   # finished by an earlier run with this very plan and these settings
                ok, detail_json = True, done["detail"]
                runner.digests.add(plan.item_id, done["sha256"], done["decoded"])
                result.reused += 1
            else:
                ok, reason, message, detail = runner.render_and_verify(plan.media_id, plan.base, plan.placements,
                                                                       plan.absent)
                detail_json = json.dumps(detail) if detail is not None else None
                if ok:
                    journal.add(plan.media_id, key, runner.record_digest(plan.item_id, plan.media_id), detail_json)
            if ok:
                items.add(plan.rows(h.circular_eval, h.seed, bench_hash, True if verify else None, detail_json))
                result.kept += 1
                log(f"{plan.item_id}: {'ok (reused)' if done is not None else 'ok'}")
            else:
                result.rejected[reason] += 1
                rejects.add([_reject_row(plan.item_id, plan.base.base_id, reason, message, detail)])
                log(f"{plan.item_id}: dropped ({reason}: {message})")
    finally:
        manifest.close()
        items.close()
        rejects.close()
        if runner is not None:
            runner.close()
            journal.close()
    if runner is None:
        result.kept = result.planned
    result.questions = items.count
    result.paths = {"items": items.path, "rejects": rejects.path, "manifest": os.path.join(out, "manifest.json"),
                    "placements": os.path.join(out, "placements.jsonl")}
    result.summary = write_summary(out, items.path, result.skipped_cells, result.rejected)
    if render == "videos" and result.kept:
        result.paths.update(_export(out, cfg.name, items.path, cfg.output.shard_mb, cfg.output.hub_repo))
    result.timings = _timings(runner, t_start)
    _write_report(out, result)
    return result


def _local_out(path: str, key: str) -> str:
    """The haystack build renders with ffmpeg into its output folder: it must be a local one."""
    if "://" in str(path):
        raise ConfigError(f"{key}: {path!r} is not a local folder; a haystack benchmark is rendered into a "
                          "local folder (build there, then copy it or `vdata push` it)")
    return path


def _unmark(out: str) -> None:
    if os.path.exists(os.path.join(out, DONE)):
        os.remove(os.path.join(out, DONE))


def _export(out: str, name: str, items_path: str, shard_mb: int, hub_repo: str | None) -> dict[str, str]:
    videos = os.path.join(out, "videos")
    return {"lmms_eval": write_lmms_eval(out, name, items_path, videos, shard_mb, hub_repo),
            "vlmevalkit": write_vlmevalkit(out, name, items_path, videos)}


def _timings(runner: _ItemRunner | None, t_start: float) -> dict[str, float]:
    out = {"wall_s": round(time.perf_counter() - t_start, 3)}
    if runner is not None:
        t = runner.t
        out.update({k: round(v, 3) for k, v in t.items()})
        if t["render_s"]:
            out["render_video_s_per_s"] = round(t["rendered_video_s"] / t["render_s"], 2)
        if t["verified_items"]:
            out["verify_s_per_item"] = round(t["verify_s"] / t["verified_items"], 3)
    return out


def _write_report(out: str, result: HaystackResult) -> None:
    """Run facts that vary between runs (times) live here, never in the manifest."""
    report = {"render": result.render, "planned": result.planned, "kept": result.kept, "reused": result.reused,
              "questions": result.questions,
              "reproduction": dict(result.reproduction), "differing": result.differing,
              "rejected": dict(result.rejected), "skipped_cells": len(result.skipped_cells),
              "skipped_sources": [s.__dict__ for s in result.skipped_sources], "timings": result.timings,
              "paths": result.paths}
    with open(os.path.join(out, DONE + ".part"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    os.replace(os.path.join(out, DONE + ".part"), os.path.join(out, DONE))


def plan_haystack(config: str | os.PathLike | HaystackConfig) -> dict:
    """What a build would make, without rendering: items per task × length × needle type, skipped cells."""
    cfg = config if isinstance(config, HaystackConfig) else load_haystack_config(config)
    sources, skipped_sources = load_sources(cfg)
    sets = load_needle_sets(cfg)
    if cfg.haystack.verify.enabled:
        refuse_unverifiable_text(sets)
    bases = plan_bases(cfg, sources)
    counts: Counter = Counter()
    skipped: Counter = Counter()
    for plan in iter_items(cfg, sets, bases):
        if isinstance(plan, SkippedCell):
            skipped[f"{plan.task}/{plan.needle_type}/n{plan.needles_per_item}: {plan.reason}"] += 1
        else:
            counts[(plan.task, plan.base.length_s, plan.needle_type)] += 1
    k = cfg.haystack.options if cfg.haystack.circular_eval else 1
    return {"sources": len(sources), "skipped_sources": [s.__dict__ for s in skipped_sources],
            "needle_sets": {s.name: len(s.needles) for s in sets}, "items": sum(counts.values()),
            "questions": sum(counts.values()) * k,
            "table": [{"task": t, "length_s": length, "needle_type": nt, "items": n}
                      for (t, length, nt), n in sorted(counts.items())],
            "skipped_cells": dict(sorted(skipped.items())),
            "video_seconds": sum(length * n for (_, length, _), n in counts.items())}


# --- rebuild ---

_FILE_EXTENSIONS = VIDEO_EXTENSIONS + (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".wav", ".mp3", ".flac",
                                       ".ogg", ".m4a")


def find_by_content(search_paths: list[str], wanted: set[str]) -> dict[str, str]:
    """Content id → a local file with that content, searching files and folders recursively."""
    found: dict[str, str] = {}
    for root in search_paths:
        paths = [root] if os.path.isfile(root) else sorted(
            os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.lower().endswith(_FILE_EXTENSIONS))
        for p in paths:
            if len(found) == len(wanted):
                return found
            cid = content_id(p)
            if cid in wanted:
                found.setdefault(cid, p)
    return found


def rebuild_haystack(bench_dir: str, search_paths: list[str], out_dir: str | None = None, verify: bool = False,
                     shard_mb: int = 2000, hub_repo: str | None = None, item_ids: set[str] | None = None,
                     log: Callable[[str], None] | None = None) -> HaystackResult:
    """Re-render a benchmark's videos from its manifest and local copies of its sources and needles
    (found by content id, wherever they live), then write the eval folders. `item_ids` limits the
    rebuild to some items (default: every item in the benchmark's items.parquet)."""
    t_start = time.perf_counter()
    log = log or (lambda msg: None)
    header = read_header(bench_dir)
    out = out_dir or bench_dir
    os.makedirs(out, exist_ok=True)
    _unmark(out)
    r = header["render"]
    fps, size = r["fps"], tuple(r["size"])
    items_src = os.path.join(bench_dir, ITEMS)
    wanted = None
    if item_ids is not None:
        wanted = set(item_ids)
    elif os.path.exists(items_src):
        wanted = {row[H.ITEM_ID] for row in iter_item_rows(items_src, [H.ITEM_ID])}
    lines = [line for line in iter_placement_lines(bench_dir) if wanted is None or line["item_id"] in wanted]
    # only the needles these items show (or name as an option): the pool's others need no local copy
    shown = {p["needle_id"] for line in lines for p in line["placements"]}
    file_needles = {n["needle_id"]: n["ref"] for ns in header["needle_sets"] for n in ns["needles"]
                    if n["kind"] != "text" and n["needle_id"] in shown}
    source_refs = {s["source_id"]: s["ref"] for s in header["sources"]}
    found = find_by_content(search_paths, set(file_needles) | set(source_refs))
    missing = [ref for cid, ref in {**source_refs, **file_needles}.items() if cid not in found]
    if missing:
        raise FileNotFoundError(f"{len(missing)} source/needle file(s) not found by content under {search_paths}: "
                                + ", ".join(sorted(missing)[:10]))
    sources = {s["source_id"]: Source(s["source_id"], found[s["source_id"]], s["ref"], s["frames"], s["duration_s"],
                                      s["has_audio"], s["width"], s["height"]) for s in header["sources"]}
    needles = needles_from(header, found)
    bases = bases_from(header, fps, size)
    result = HaystackResult(out_dir=out, render="videos")
    renderer = Renderer(size, fps, EncodeSpec(**r["encode"]), os.path.join(out, "cache"))
    spec = VerifySpec(**header["config"]["haystack"].get("verify", {}))
    runner = _ItemRunner(out, renderer, Verifier(spec, fps) if verify else None, sources, result, log)
    recorded = read_digests(bench_dir)
    if r.get("ffmpeg") != ffmpeg_version():
        log(f"ffmpeg differs from the build's ({r.get('ffmpeg')}): bytes are not promised, decoded frames are checked")
    try:
        for line in lines:
            result.planned += 1
            media = line.get("media_id", line["item_id"])   # manifests before opaque names: the item id
            ok, reason, message, _ = runner.render_and_verify(media, bases[line["haystack_id"]],
                                                              placements_from(line, needles))
            if ok:
                result.kept += 1
                _compare(line["item_id"], runner.record_digest(line["item_id"], media), recorded, result, log)
            else:
                result.rejected[reason] += 1
                log(f"{line['item_id']}: {reason}: {message}")
    finally:
        runner.close()
    items_out = os.path.join(out, ITEMS)
    if os.path.exists(items_src) and os.path.abspath(items_src) != os.path.abspath(items_out):
        shutil.copyfile(items_src, items_out)
    if os.path.exists(items_out):   # the questions the eval folders hold (rotations included)
        result.questions = sum(1 for _ in iter_item_rows(items_out, [H.ITEM_ID]))
    if result.differing:
        log(f"{len(result.differing)} rebuilt item(s) differ from the original in decoded frames or samples: "
            + ", ".join(result.differing[:10]))
    for name in ("manifest.json", "placements.jsonl"):
        if os.path.abspath(bench_dir) != os.path.abspath(out):
            shutil.copyfile(os.path.join(bench_dir, name), os.path.join(out, name))
    result.paths = {"items": items_out, "videos": os.path.join(out, "videos")}
    if os.path.exists(items_out) and result.kept and item_ids is None:
        result.paths.update(_export(out, header["name"], items_out, shard_mb, hub_repo))
    result.timings = _timings(runner, t_start)
    _write_report(out, result)
    return result


def _compare(item_id: str, got: dict, recorded: dict[str, dict], result: HaystackResult, log) -> None:
    """Check a rebuilt item against the original's digests: the same bytes, else the same decoded frames."""
    want = recorded.get(item_id)
    if want is None:
        result.reproduction["unrecorded"] += 1
        return
    if got["sha256"] == want["sha256"]:
        result.reproduction["bytes"] += 1
    elif got["decoded"] == want["decoded"]:
        result.reproduction["frames"] += 1
        log(f"{item_id}: other bytes than the original, identical decoded frames and samples")
    else:
        result.reproduction["differs"] += 1
        result.differing.append(item_id)
        log(f"{item_id}: DIFFERS from the original (decoded frames or samples)")


def item_plans(config: str | os.PathLike | HaystackConfig) -> tuple[HaystackConfig, list, dict, list[ItemPlan]]:
    """(config, sources, bases, every buildable item) — small benchmarks and tests only: holds all items."""
    cfg = config if isinstance(config, HaystackConfig) else load_haystack_config(config)
    sources, _ = load_sources(cfg)
    sets = load_needle_sets(cfg)
    bases = plan_bases(cfg, sources)
    return cfg, sources, bases, [p for p in iter_items(cfg, sets, bases) if isinstance(p, ItemPlan)]


__all__ = ["HaystackResult", "build_haystack", "plan_haystack", "rebuild_haystack", "find_by_content", "item_plans"]
