"""Planning without rendering: determinism, valid placements, answers by construction, balance,
circular rotations, skipped cells, and a one-hour sweep in flat memory (manifest mode)."""
from __future__ import annotations

import json
import math
import tracemalloc
from collections import Counter, defaultdict

import pyarrow.parquet as pq
import pytest
import yaml

from .haystack_helpers import ALL_TASKS, haystack_config
from vdata.haystack import build_haystack, load_haystack_config
from vdata.haystack.run import item_plans
from vdata.haystack.tasks import ORDER_SEP
from vdata.schemas import haystack as H


def _rows(path):
    return pq.read_table(path).to_pylist()


def test_same_config_and_seed_give_identical_manifest_and_items(hs_root, tmp_path):
    cfg = haystack_config(hs_root, "det", lengths_s=[24, 60], needles_per_item=[1, 3], depths=[0.1, 0.9])
    a = build_haystack(cfg, render="manifest", out_dir=str(tmp_path / "a"))
    b = build_haystack(cfg, render="manifest", out_dir=str(tmp_path / "b"))
    assert a.planned == b.planned > 30
    for name in ("manifest.json", "placements.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert _rows(a.paths["items"]) == _rows(b.paths["items"])

    other = build_haystack(haystack_config(hs_root, "det2", lengths_s=[24, 60], needles_per_item=[1, 3],
                                           depths=[0.1, 0.9], seed=18), render="manifest", out_dir=str(tmp_path / "c"))
    ids = {r[H.ITEM_ID] for r in _rows(a.paths["items"])}
    assert ids == {r[H.ITEM_ID] for r in _rows(other.paths["items"])}   # same grid ...
    placed_a = (tmp_path / "a" / "placements.jsonl").read_text()
    assert placed_a != (tmp_path / "c" / "placements.jsonl").read_text()   # ... other draws
    header = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert header["seed"] == 17 and len(header["sources"]) == 3
    assert all(len(s["source_id"]) == 32 for s in header["sources"])        # content ids, not paths
    assert {ns["name"] for ns in header["needle_sets"]} == {"image", "text", "clip", "audio"}


def test_placements_are_valid_and_depths_controlled(hs_root):
    cfg, _, _, items = item_plans(haystack_config(hs_root, "valid", lengths_s=[24, 60], needles_per_item=[1, 3],
                                                  depths=[0.1, 0.5, 0.9], items_per_cell=2))
    h = cfg.haystack
    fps, (width, height) = h.fps, h.size
    assert len(items) > 100
    for item in items:
        length = item.base.length_s
        ps = item.placements
        assert ps == sorted(ps, key=lambda p: p.start_s)
        for p in ps:
            assert 0 <= p.start_s < p.end_s <= length
            lead = p.needle.audible[0] if p.kind == "audio" else 0.0   # spoken: the heard part of the file
            assert abs((p.start_s - lead) * fps - round((p.start_s - lead) * fps)) < 1e-6   # frame-aligned
            if p.kind == "audio":
                heard = p.needle.audible[1] - p.needle.audible[0]
                assert p.box is None and abs((p.end_s - p.start_s) - heard) < 1e-6
                assert 0 <= p.needle.audible[0] < p.needle.audible[1] <= p.needle.duration_s
            else:
                x, y, w, h_ = p.box
                assert 0 <= x and 0 <= y and x + w <= width and y + h_ <= height and w > 0 and h_ > 0
        for prev, nxt in zip(ps, ps[1:]):
            pair = item.task == "multihop" and prev.role in ("anchor", "other_anchor")
            min_gap = h.pair_gap_s if pair else h.gap_s
            assert nxt.start_s - prev.end_s >= min_gap - 1.0 / fps - 1e-6, (item.item_id, prev, nxt)
        if item.depth is not None:
            target = next(p for p in ps if p.role in ("target", "anchor") and
                          (item.task != "multihop" or p.role == "anchor"))
            slot = length / item.needles_per_item
            assert abs(target.start_s - item.depth * (length - (target.end_s - target.start_s))) <= slot
            assert item.target_depth == pytest.approx(target.start_s / (length - (target.end_s - target.start_s)), abs=1e-3)
    single = [i for i in items if i.needles_per_item == 1 and i.depth is not None and i.task == "retrieval"]
    for i in single:  # one needle: it sits exactly at the asked depth (to the frame)
        p = i.placements[0]
        assert abs(p.start_s - i.depth * (i.base.length_s - (p.end_s - p.start_s))) <= 1.0 / fps + 1e-6


def test_every_task_answer_is_known_by_construction(hs_root):
    cfg, _, _, items = item_plans(haystack_config(hs_root, "answers", needles_per_item=[2, 3], items_per_cell=2))
    k = cfg.haystack.options
    seen_tasks = Counter()
    for item in items:
        seen_tasks[item.task] += 1
        assert len(item.options) == len(set(item.options)) == k
        answer = item.options[item.answer_index]
        labels_in_order = [p.needle.label for p in item.placements]
        if item.task == "retrieval":
            target = next(p for p in item.placements if p.role == "target")
            assert answer == target.needle.label
            assert not (set(item.options) - {answer}) & set(labels_in_order)     # distractors never shown
        elif item.task == "ordering":
            assert answer == ORDER_SEP.join(labels_in_order)
            assert item.open_answer == answer
        elif item.task == "counting":
            target = item.answer_labels[0]
            times = sum(p.role == "target" for p in item.placements)
            assert answer == item.open_answer == str(times)
            assert labels_in_order.count(target) == times
        elif item.task == "multihop":
            anchor_at = next(i for i, p in enumerate(item.placements) if p.role == "anchor")
            assert item.placements[anchor_at + 1].role == "target"
            assert answer == item.placements[anchor_at + 1].needle.label
            assert item.placements[anchor_at].needle.label in item.question
            payloads = {p.needle.label for p in item.placements if p.role == "other"}
            assert payloads & set(item.options)                                   # needs both hops
        elif item.task == "localization":
            target = next(p for p in item.placements if p.role == "target")
            assert answer == f"{target.start_s:.1f} - {target.end_s:.1f} seconds"
            assert (item.answer_interval == (target.start_s, target.end_s))
            spans = sorted(tuple(float(x) for x in o.split(" seconds")[0].split(" - ")) for o in item.options)
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))           # options never overlap
    assert set(seen_tasks) == set(ALL_TASKS)


def test_answer_positions_balanced_and_circular_rotations(hs_root, tmp_path):
    cfg = haystack_config(hs_root, "balance", needles_per_item=[2, 3], items_per_cell=6)
    result = build_haystack(cfg, render="manifest", out_dir=str(tmp_path / "o"))
    rows = _rows(result.paths["items"])
    k = 4
    positions = defaultdict(Counter)
    by_item = defaultdict(list)
    for r in rows:
        by_item[r[H.ITEM_ID]].append(r)
        if r[H.ROTATION] == 0:
            positions[r[H.TASK]][r[H.ANSWER_INDEX]] += 1
    for task, counts in positions.items():
        assert set(counts) == set(range(k))
        assert max(counts.values()) - min(counts.values()) <= 1, (task, counts)
    for item_id, group in by_item.items():
        assert sorted(r[H.ROTATION] for r in group) == list(range(k))
        base = next(r for r in group if r[H.ROTATION] == 0)
        for r in group:
            rot = r[H.ROTATION]
            assert r[H.OPTIONS] == base[H.OPTIONS][rot:] + base[H.OPTIONS][:rot]
            assert r[H.ANSWER] == base[H.ANSWER] == r[H.OPTIONS][r[H.ANSWER_INDEX]]
            assert r[H.QUESTION_ID] == f"{item_id}_r{rot}"
            assert r[H.VERIFIED] is None                                          # manifest mode: not rendered
        assert sorted(r[H.ANSWER_INDEX] for r in group) == list(range(k))        # every position once


def test_cells_that_cannot_be_built_are_reported(hs_root, tmp_path):
    cfg = haystack_config(hs_root, "skips", tasks=["ordering", "retrieval", "localization"],
                          needles_per_item=[1, 8], lengths_s=[12], options=6)
    result = build_haystack(cfg, render="manifest", out_dir=str(tmp_path / "o"))
    reasons = " | ".join(c.reason for c in result.skipped_cells)
    assert "ordering needs at least 2 needles" in reasons
    assert "the pool has" in reasons                       # 8 needles + 5 distractors > every pool
    assert "do not fit a 12 s haystack" in reasons         # 8 needles with gaps in 12 s
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["skipped_cells"] and summary["items"] == result.planned


def test_one_hour_sweep_manifest_is_valid_and_memory_flat(hs_root, tmp_path):
    def sweep(repeats):
        cfg = load_haystack_config(haystack_config(hs_root, f"sweep{repeats}", lengths_s=[600, 3600],
                                                   needles_per_item=[1, 3, 5], depths=[0.1, 0.5, 0.9],
                                                   items_per_cell=repeats))
        cfg.output.rows_per_group = 100
        return build_haystack(cfg, render="manifest", out_dir=str(tmp_path / f"s{repeats}"))

    sweep(1)                                                 # warm-up: imports and caches are not growth
    peaks = {}
    for repeats in (1, 4):
        tracemalloc.start()
        result = sweep(repeats)
        peaks[repeats] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert result.kept == result.planned
    assert peaks[4] < 1.5 * peaks[1] + 2_000_000, peaks      # 4x the items, not 4x the memory

    out = tmp_path / "s4"
    header = json.loads((out / "manifest.json").read_text())
    hour = next(b for b in header["haystacks"] if b["length_s"] == 3600)
    assert math.isclose(sum(end - start for _, _, start, end in hour["segments"]), 3600, abs_tol=1e-6)
    offsets = [off for _, off, _, _ in hour["segments"]]
    assert offsets == sorted(offsets) and offsets[0] == 0
    n = 0
    per_task = Counter()
    for line in (out / "placements.jsonl").read_text().splitlines():
        item = json.loads(line)
        n += 1
        length = 3600.0 if item["haystack_id"] == hour["haystack_id"] else 600.0
        spans = sorted((p["start_s"], p["end_s"]) for p in item["placements"])
        assert all(0 <= s < e <= length for s, e in spans)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
        per_task[item["item_id"].split("-")[0]] += 1
    # grid: 2 lengths × 4 needle sets × 4 repeats × (3 counts × 3 depths for retrieval/localization,
    # 3 counts for counting, 2 counts for ordering, 2 counts × 3 depths for multihop)
    assert per_task == {"retrieval": 288, "localization": 288, "counting": 96, "ordering": 64, "multihop": 192}
    assert n == sum(per_task.values()) == len(pq.read_table(out / "items.parquet")) // 4


def test_size_and_fps_default_to_the_sources(hs_root, tmp_path):
    """Without size/fps the haystack takes the most common source size / rate (ties: the larger)."""
    cfg = haystack_config(hs_root, "auto", tasks=["retrieval"], needles_per_item=[1])
    spec = yaml.safe_load(cfg.read_text())
    del spec["haystack"]["size"]
    cfg.write_text(yaml.safe_dump(spec))
    result = build_haystack(cfg, render="manifest", out_dir=str(tmp_path / "o"))
    header = json.loads((tmp_path / "o" / "manifest.json").read_text())
    # sources: 640x360 (lavfi), 640x272 (bikes), 1280x720 (bunny), all 25 fps
    assert header["render"]["size"] == [1280, 720] and header["render"]["fps"] == 25.0
    assert header["config"]["haystack"]["size"] == [1280, 720]
    boxes = [p["w"] for r in _rows(result.paths["items"]) for p in r[H.PLACEMENTS] if p["style"] == "fullframe"]
    assert boxes and max(boxes) <= 1280


def test_counting_answers_are_balanced_over_zero_to_n(hs_root):
    """The count asked for spreads over 0..n for every n (0: the needle asked about never shows), each
    value as often as the others, so neither "1" nor "the smallest number offered" beats chance."""
    path = haystack_config(hs_root, "counts", tasks=["counting"], needles_per_item=[1, 2, 3], items_per_cell=8,
                           lengths_s=[24, 60])
    cfg, _, _, items = item_plans(path)
    by_n = defaultdict(Counter)
    for item in items:
        times = int(item.open_answer)
        by_n[item.needles_per_item][times] += 1
        asked = item.answer_labels[0]
        assert [p.needle.label for p in item.placements].count(asked) == times
        assert len(item.placements) == item.needles_per_item
        assert item.options[item.answer_index] == str(times)
    for n, counts in by_n.items():
        assert set(counts) == set(range(n + 1)), (n, counts)
        assert max(counts.values()) - min(counts.values()) <= 1, (n, counts)
    _, _, _, again = item_plans(path)                       # the same seed gives the same answers
    assert [(i.item_id, i.open_answer, i.placements) for i in again] == \
        [(i.item_id, i.open_answer, i.placements) for i in items]


def test_gap_is_kept_from_both_ends_and_depth_is_placed_where_asked(hs_root):
    """`gap_s` separates needles from each other and from both ends; a needle asked at a depth starts at
    that depth (to the frame) wherever the gaps leave room, and `target_depth` is where it really is."""
    cfg, _, _, items = item_plans(haystack_config(hs_root, "depthgap", tasks=["retrieval", "localization",
                                                                              "multihop", "counting"],
                                                  needles_per_item=[2, 3], depths=[0.0, 0.25, 0.5, 0.75, 1.0],
                                                  gap_s=2.0, lengths_s=[24, 60]))
    h = cfg.haystack
    fps = h.fps
    for item in items:
        length = item.base.length_s
        assert item.placements[0].start_s >= h.gap_s - 1e-6, item.item_id
        assert item.placements[-1].end_s <= length - h.gap_s + 1.0 / fps + 1e-6, item.item_id
        if item.depth is None:
            continue
        target = next(p for p in item.placements if p.role == ("anchor" if item.task == "multihop" else "target"))
        span = target.end_s - target.start_s
        assert item.target_depth == pytest.approx(target.start_s / (length - span), abs=1e-3)
        if 0.25 <= item.depth <= 0.75 and item.task != "multihop":   # room on both sides: the asked spot
            assert abs(target.start_s - item.depth * (length - span)) <= 0.5 / fps + 1e-6, item.item_id
        else:                                                        # near the ends: as close as the gaps allow
            assert abs(item.target_depth - item.depth) <= (h.gap_s + 2 * 4.0 + 2 * h.gap_s) / (length - span)
    mid = [i for i in items if i.depth == 0.5 and i.task != "multihop"]
    assert mid and all(abs(i.target_depth - 0.5) < 0.01 for i in mid)


def test_a_needle_too_long_for_a_cell_is_redrawn_and_a_skip_names_it(hs_root, tmp_path):
    """A 10 s clip cannot fit a 5 s haystack: those cells are built with the short clip instead; a cell
    that needs more clips that fit than the pool has says which needle was too long, and how long."""
    from vdata.media.synth import Segment, render_segments

    clips = tmp_path / "clips"
    clips.mkdir()
    render_segments(str(clips / "long_bars.mp4"), [Segment("testsrc2", 10.0)], size=(160, 120))
    render_segments(str(clips / "short_bars.mp4"), [Segment("smptebars", 1.0)], size=(160, 120))
    cfg = haystack_config(hs_root, "longclip", lengths_s=[5, 12, 30], needles_per_item=[1, 2], options=2,
                          tasks=["retrieval", "localization", "counting", "ordering"], items_per_cell=3,
                          needles=[{"type": "clip", "from": str(clips / "*.mp4")}])
    result = build_haystack(cfg, render="manifest", out_dir=str(tmp_path / "o"))
    rows = [r for r in _rows(result.paths["items"]) if r[H.ROTATION] == 0]
    short = [r for r in rows if r[H.HAYSTACK_LENGTH_S] == 5 and r[H.NEEDLES_PER_ITEM] == 1]
    assert Counter(r[H.TASK] for r in short) == {"retrieval": 3, "localization": 3, "counting": 3}
    assert all(p["label"] == "short bars" for r in short for p in r[H.PLACEMENTS])
    twelve = [c for c in result.skipped_cells if c.length_s == 12 and "fit" in c.reason]
    assert {c.task for c in twelve} == {"ordering", "localization"}, twelve
    for cell in twelve:
        assert "do not fit a 12 s haystack" in cell.reason and "only 1 of the 2" in cell.reason, cell.reason
        assert "'long bars' (10.00 s)" in cell.reason, cell.reason
    assert any(p["label"] == "long bars" for r in rows if r[H.HAYSTACK_LENGTH_S] == 30 for p in r[H.PLACEMENTS])
