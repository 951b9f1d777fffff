"""Deterministic planning: base haystacks and items from the config and its seed, generated lazily.

Every item draws from its own random stream, seeded by (seed, item id), so an item does not change
when other cells of the grid are added or removed, and the plan of a one-hour sweep is produced one
item at a time in flat memory. Only the balancing of answer positions carries a counter per task.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Iterator

from .config import DEPTH_TASKS, MIN_NEEDLES, HaystackConfig
from .model import Base, ItemPlan, Segment, SkippedCell
from .needles import NeedleSet
from .sources import Source
from .tasks import BUILDERS, Cell


def plan_base(sources: list[Source], length_s: float, seed: int, fps: float, size: tuple[int, int]) -> Base:
    """Sources in a seeded order (reshuffled on every pass), repeated until the length is filled."""
    frames = max(1, int(round(length_s * fps)))
    rng = random.Random(f"{seed}|base|{frames}")
    segments, filled = [], 0
    while filled < frames:
        order = list(sources)
        rng.shuffle(order)
        for src in order:
            take = min(src.frames, frames - filled)
            segments.append(Segment(src.source_id, round(filled / fps, 6), 0.0, round(take / fps, 6)))
            filled += take
            if filled >= frames:
                break
    key = json.dumps({"size": list(size), "fps": fps, "frames": frames,
                      "segments": [[s.source_id, s.start_s, s.end_s] for s in segments]}, sort_keys=True)
    base_id = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    return Base(base_id, frames / fps, frames, fps, size[0], size[1], tuple(segments))


def payload_set_for(nset: NeedleSet, sets: list[NeedleSet]) -> NeedleSet:
    """Multihop payloads are words on screen when a text set exists ("the word shown after the red
    square"); otherwise they come from the anchor's own set."""
    if nset.kind != "text":
        for s in sets:
            if s.kind == "text":
                return s
    return nset


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", s).strip("_") or "x"


def item_id(task: str, set_name: str, length_s: float, n: int, depth: float | None, rep: int) -> str:
    d = "u" if depth is None else f"d{int(round(depth * 100)):02d}"
    return f"{task}-{_slug(set_name)}-{length_s:g}s-n{n}-{d}-{rep}"


def media_name(seed: int, item_id: str) -> str:
    """The opaque file name of an item's video (videos/, zip shards, lmms-eval `videoID`, VLMEvalKit
    `video`): a hash of seed and item id, so a harness that shows the model the file name gives away
    nothing (the item id spells the task, length, needle count and depth; the id stays in `item_id`)."""
    return "v" + hashlib.blake2b(f"{seed}|{item_id}".encode(), digest_size=6).hexdigest()


def grid(cfg: HaystackConfig, sets: list[NeedleSet]) -> Iterator[tuple[float, str, NeedleSet, int, float | None, int]]:
    h = cfg.haystack
    for length in h.lengths_s:
        for task in h.tasks:
            for nset in sets:
                for n in h.needles_per_item:
                    depths = h.depths if (isinstance(h.depths, list) and task in DEPTH_TASKS) else [None]
                    for depth in depths:
                        for rep in range(h.items_per_cell):
                            yield length, task, nset, n, depth, rep


def answer_position(seed: int, task: str, counter: int, k: int) -> int:
    """Balanced: every block of k items of a task uses each position once, in a seeded order."""
    block = random.Random(f"{seed}|answers|{task}|{counter // k}").sample(range(k), k)
    return block[counter % k]


def answer_count(seed: int, n: int, counter: int) -> int:
    """How often a counting item with n needles shows the needle it asks about: every block of n + 1
    such items uses each of 0..n once, in a seeded order, so every answer value is as likely (0 too:
    the needle asked about may never show) whatever needles_per_item is."""
    block = random.Random(f"{seed}|counts|{n}|{counter // (n + 1)}").sample(range(n + 1), n + 1)
    return block[counter % (n + 1)]


def iter_items(cfg: HaystackConfig, sets: list[NeedleSet], bases: dict[float, Base]) -> Iterator[ItemPlan | SkippedCell]:
    """Every item of the grid in a fixed order, or a SkippedCell saying why a cell cannot be built."""
    h = cfg.haystack
    counters: dict[str, int] = {}
    count_counters: dict[int, int] = {}
    for length, task, nset, n, depth, rep in grid(cfg, sets):
        if n < MIN_NEEDLES.get(task, 1):
            if rep == 0:
                yield SkippedCell(task, nset.name, n, length, depth, f"{task} needs at least {MIN_NEEDLES[task]} needles")
            continue
        iid = item_id(task, nset.name, length, n, depth, rep)
        counter = counters.get(task, 0)
        cell = Cell(item_id=iid, rng=random.Random(f"{h.seed}|{iid}"), base=bases[length], n=n, depth=depth,
                    k=h.options, answer_pos=answer_position(h.seed, task, counter, h.options),
                    gap_s=h.gap_s, pair_gap_s=h.pair_gap_s)
        if task == "counting":
            cell.count = answer_count(h.seed, n, count_counters.get(n, 0))
        built = BUILDERS[task](cell, nset, payload_set_for(nset, sets))
        if isinstance(built, str):
            yield SkippedCell(task, nset.name, n, length, depth, built)
            continue
        built.media_id = media_name(h.seed, iid)
        counters[task] = counter + 1
        if task == "counting":
            count_counters[n] = count_counters.get(n, 0) + 1
        yield built


def plan_bases(cfg: HaystackConfig, sources: list[Source]) -> dict[float, Base]:
    h = cfg.haystack
    return {length: plan_base(sources, length, h.seed, h.fps, h.size) for length in h.lengths_s}
