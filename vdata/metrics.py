"""Scoring arithmetic shared by `vdata score` (benchmarks built by `vdata build`) and `vdata haystack
score`: reading a predictions JSONL, percentages, CircularEval, multi-interval IoU and recall at IoU
thresholds. What a reply *means* (the option letter it chose, the interval it named) is parsed by
`vdata.lmms_task_utils`, the file shipped to lmms-eval, so that vdata and lmms-eval agree; this module
only adds up. Standard library only, like that file.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

RECALL_THRESHOLDS = (0.3, 0.5, 0.7)   # R@IoU as grounding papers report it (Charades-STA, CG-Bench)


def percent(values: Iterable[float]) -> float | None:
    """Mean of scores in [0, 1] as a percentage with two decimals; None when there is nothing to average
    (a section with no items is "not scored", not 0)."""
    values = list(values)
    return round(100.0 * sum(values) / len(values), 2) if values else None


def rotate_options(options: list, rotation: int) -> list:
    """The options as shown at CircularEval rotation `rotation`: each option moves `rotation` places
    down (wrapping), so option i sits at position (i + rotation) % k. The convention of the blind stage."""
    k = len(options)
    r = rotation % k if k else 0
    return list(options[-r:] + options[:-r]) if r else list(options)


def rotated_answer(answer_index: int, rotation: int, num_options: int) -> int:
    """Where the correct option sits at that rotation (see rotate_options)."""
    return (answer_index + rotation) % num_options


def circular_accuracy(rotations_by_item: dict, num_rotations: dict | None = None) -> float | None:
    """CircularEval (MMBench): an item counts only if every rotation of its options was answered right.
    `rotations_by_item`: item -> {rotation: correct}; `num_rotations`: item -> rotations it needs (an
    item with fewer answered rotations counts as wrong). Without it, the rotations given are all."""
    if not rotations_by_item:
        return None
    ok = [all(got.values()) and (num_rotations is None or len(got) >= num_rotations[item])
          for item, got in rotations_by_item.items()]
    return percent(float(x) for x in ok)


def _union(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for a, b in sorted((float(a), float(b)) for a, b in spans if b > a):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def spans_iou(predicted: Iterable[tuple[float, float]], gold: Iterable[tuple[float, float]]) -> float:
    """Temporal IoU of two sets of intervals, each taken as the union of its intervals: the length both
    cover over the length either covers (CG-Bench's clue IoU; one interval each: the usual tIoU)."""
    p, g = _union(predicted), _union(gold)
    inter = sum(max(0.0, min(b1, b2) - max(a1, a2)) for a1, b1 in p for a2, b2 in g)
    union = sum(b - a for a, b in p) + sum(b - a for a, b in g) - inter
    return inter / union if union > 0 else 0.0


def recall_at(ious: list[float], thresholds=RECALL_THRESHOLDS) -> dict[str, float | None]:
    """R@IoU=t: the share of items whose IoU reaches t, per threshold, as percentages."""
    return {f"{t:g}": percent(float(i >= t) for i in ious) for t in thresholds}


def read_jsonl(path: str) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) per non-blank line; a line that is not JSON yields its
    json.JSONDecodeError as the value, so the caller decides whether that is fatal or counted."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as e:
                yield n, e
