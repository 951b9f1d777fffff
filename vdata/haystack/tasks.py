"""The five haystack tasks. Each turns a seeded draw of needles into placements and a question whose
answer is known by construction (MCQ with distractors from the same needle pool, plus an open form).

A builder returns an ItemPlan, or a string saying why this grid cell cannot be built. The needles an
item shows are drawn from those of the pool that fit the cell (`_fitting`), so a needle too long for a
short haystack is left out of that draw (it can still be a distractor) instead of the cell being
skipped; a cell is skipped only when too few needles fit, and its reason names them with their lengths.
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from .layout import fits, heard_s, place_units, screen_box, slot_s, span_s
from .model import Base, ItemPlan, Placement
from .needles import Needle, NeedleSet
from .vnbench import vnbench_type

REF = {"image": 'the image "{}"', "text": 'the on-screen text "{}"', "clip": 'the video clip "{}"',
       "audio": 'the spoken phrase "{}"'}
WHICH = {"image": "Which image was shown in the video?", "text": "Which text appeared on screen in the video?",
         "clip": "Which video clip was shown in the video?", "audio": "Which phrase was spoken in the video?"}
LIST_ALL = {"image": "List every image that was shown in the video, in order of appearance.",
            "text": "List every text that appeared on screen in the video, in order of appearance.",
            "clip": "List every video clip that was shown in the video, in order of appearance.",
            "audio": "List every phrase that was spoken in the video, in order."}
ORDER_SEP = " -> "
LIST_SEP = "; "


@dataclass
class Cell:
    """One item to build: the grid values plus its own random stream and answer slot."""

    item_id: str
    rng: random.Random
    base: Base
    n: int
    depth: float | None
    k: int                       # options
    answer_pos: int              # where the correct option goes (balanced across items)
    gap_s: float
    pair_gap_s: float
    count: int | None = None     # counting: how often the asked-about needle is shown (balanced, 0..n)


def _mcq(rng: random.Random, correct: str, distractors: list[str], pos: int) -> tuple[list[str], int]:
    others = list(distractors)
    rng.shuffle(others)
    return others[:pos] + [correct] + others[pos:], pos


def _place(cell: Cell, nset: NeedleSet, needle: Needle, role: str, start: float) -> Placement:
    """`start`: where the needle's span begins (a spoken needle's file is mixed from there); the placement
    holds the part of it that is seen or heard (`heard_s`)."""
    b = cell.base
    box = screen_box(cell.rng, needle, nset.style, nset.scale, b.width, b.height)
    lo, hi = heard_s(needle, b.fps)
    return Placement(needle, role, round(start + lo, 6), round(start + hi, 6), nset.style, box)


def _singles(cell: Cell, nset: NeedleSet, needles: list[Needle], roles: list[str],
             target: int | None) -> list[Placement]:
    """Needles placed one a slot; every caller draws them from `_fitting`, so they always fit."""
    b = cell.base
    spans = [span_s(nd, b.fps) for nd in needles]
    # the depth is that of where the target is seen or heard (`heard_s`), as its target_depth says
    lo, hi = heard_s(needles[target], b.fps) if target is not None else (0.0, 0.0)
    starts = place_units(cell.rng, b.length_s, spans, cell.gap_s, b.fps, target=target,
                         depth=cell.depth if target is not None else None, depth_span_s=hi - lo, depth_offset_s=lo)
    return [_place(cell, nset, nd, role, t) for nd, role, t in zip(needles, roles, starts)]


def _absent(cell: Cell, nset: NeedleSet, needles: list[Needle], role: str = "distractor") -> list[Placement]:
    """The needles this item names as NOT shown, each with the box it would have on screen (its own seeded
    stream: the item's draws stay as they were) and no interval; the verifier checks that the rendered
    video does not show them either (else the haystack's own footage makes a "wrong" option true)."""
    b = cell.base
    return [Placement(nd, role, -1.0, -1.0, nset.style,
                      screen_box(random.Random(f"{cell.item_id}|absent|{nd.needle_id}"), nd, nset.style,
                                 nset.scale, b.width, b.height)) for nd in needles]


def _depth_of(p: Placement, length_s: float) -> float:
    room = length_s - (p.end_s - p.start_s)
    return round(p.start_s / room, 4) if room > 0 else 0.0


def _room_s(cell: Cell) -> float:
    """The longest needle (or multihop pair) one of this cell's n slots holds, its gap taken off."""
    return slot_s(cell.base.length_s, cell.n, cell.gap_s) - cell.gap_s


def _fitting(cell: Cell, needles: list[Needle], extra_s: float = 0.0) -> list[Needle]:
    """The needles that fit one slot of this cell with `extra_s` more (a multihop pair's gap and partner),
    in pool order, so the seeded draw from them is the same as from the pool when every needle fits."""
    b = cell.base
    return [nd for nd in needles if fits(b.length_s, cell.n, cell.gap_s, span_s(nd, b.fps) + extra_s)]


def _no_fit(cell: Cell, name: str, candidates: list[Needle], fit: list[Needle], needed: int,
            extra_s: float = 0.0) -> str:
    """Why too few of the `candidates` fit, naming those that did not and their lengths."""
    fps = cell.base.fps
    limit = _room_s(cell) - extra_s
    head = f"{cell.n} needle(s) with {cell.gap_s:g} s gaps do not fit a {cell.base.length_s:g} s haystack: "
    article = "an" if name[:1].lower() in "aeiou" else "a"
    head += f"{article} {name} needle may be at most {limit:.2f} s long" if limit > 0 else "there is no room for any needle"
    if extra_s:
        head += f" (its slot also holds {extra_s:.2f} s of pair gap and partner)"
    too_long = sorted((nd for nd in candidates if nd not in fit), key=lambda nd: span_s(nd, fps))
    named = ", ".join(f"{nd.label!r} ({span_s(nd, fps):.2f} s)" for nd in too_long[:3])
    more = f" and {len(too_long) - 3} more" if len(too_long) > 3 else ""
    if not fit:
        return f"{head}; none is that short, the shortest: {named}{more}"
    return f"{head}; only {len(fit)} of the {len(candidates)} fit ({needed} needed), too long: {named}{more}"


def retrieval(cell: Cell, nset: NeedleSet, payload: NeedleSet) -> ItemPlan | str:
    pool, n, k = nset.needles, cell.n, cell.k
    if len(pool) < n + k - 1:
        return f"needs {n + k - 1} {nset.name} needles ({n} inserted + {k - 1} distractors), the pool has {len(pool)}"
    fit = _fitting(cell, pool)
    if len(fit) < n:
        return _no_fit(cell, nset.name, pool, fit, n)
    inserted = cell.rng.sample(fit, n)
    t = cell.rng.randrange(n)
    placed = _singles(cell, nset, inserted, ["target" if i == t else "other" for i in range(n)], t)
    target = inserted[t]
    named = cell.rng.sample([p for p in pool if p not in inserted], k - 1)
    options, ai = _mcq(cell.rng, target.label, [p.label for p in named], cell.answer_pos)
    question = WHICH[nset.kind] + (" Only one of the options appeared." if n > 1 else "")
    in_order = [p.needle.label for p in sorted(placed, key=lambda p: p.start_s)]
    if n == 1:
        open_q, open_a = WHICH[nset.kind] + " Answer in a few words.", target.label
    else:
        open_q, open_a = LIST_ALL[nset.kind], LIST_SEP.join(in_order)
    tp = next(p for p in placed if p.role == "target")
    return _plan(cell, "retrieval", nset, placed, question, options, ai, open_q, open_a,
                 [target.label] if n == 1 else in_order, target_depth=_depth_of(tp, cell.base.length_s),
                 absent=_absent(cell, nset, named))


def ordering(cell: Cell, nset: NeedleSet, payload: NeedleSet) -> ItemPlan | str:
    pool, n, k = nset.needles, cell.n, cell.k
    if n < 2:
        return "ordering needs at least 2 needles"
    spare_needed = 1 if math.factorial(n) < k else 0
    if len(pool) < n + spare_needed:
        return f"needs {n + spare_needed} {nset.name} needles, the pool has {len(pool)}"
    fit = _fitting(cell, pool)
    if len(fit) < n:
        return _no_fit(cell, nset.name, pool, fit, n)
    inserted = cell.rng.sample(fit, n)
    placed = _singles(cell, nset, inserted, ["target"] * n, None)
    order = [p.needle.label for p in sorted(placed, key=lambda p: p.start_s)]
    correct = ORDER_SEP.join(order)
    wrong: list[str] = []
    spare_used: list[Needle] = []
    if math.factorial(n) - 1 >= k - 1:
        while len(wrong) < k - 1:   # random distinct permutations (n! can be huge: never list them all)
            # terminates: at least k - 1 wrong permutations exist
            perm = order[:]
            cell.rng.shuffle(perm)
            s = ORDER_SEP.join(perm)
            if s != correct and s not in wrong:
                wrong.append(s)
    else:
        wrong = [ORDER_SEP.join(p) for p in itertools.permutations(order) if list(p) != order]
        spares = [p.label for p in pool if p not in inserted]
        for _ in range(1000):       # too few permutations: swap one needle for one never shown
            if len(wrong) >= k - 1:
                break
            seq = order[:]
            seq[cell.rng.randrange(n)] = cell.rng.choice(spares)
            cell.rng.shuffle(seq)
            s = ORDER_SEP.join(seq)
            if s not in wrong:
                wrong.append(s)
        if len(wrong) < k - 1:
            return f"cannot make {k} distinct orderings from {len(pool)} {nset.name} needles"
        wrong = cell.rng.sample(wrong, k - 1)
        in_options = {lab for w in wrong for lab in w.split(ORDER_SEP)}
        spare_used = [p for p in pool if p not in inserted and p.label in in_options]
    options, ai = _mcq(cell.rng, correct, wrong, cell.answer_pos)
    listed = ", ".join(f'"{lab}"' for lab in sorted(order))
    question = f"In which order were these {nset.plural} {nset.verb}: {listed}?"
    open_q = (f"List these {nset.plural} in the order they were {nset.verb}: {listed}. "
              f'Answer as "first{ORDER_SEP}second{ORDER_SEP}...".')
    return _plan(cell, "ordering", nset, placed, question, options, ai, open_q, correct, order,
                 absent=_absent(cell, nset, spare_used))


def counting(cell: Cell, nset: NeedleSet, payload: NeedleSet) -> ItemPlan | str:
    """How often one needle was shown: `cell.count` times, from 0 (the asked-about needle never shows;
    the n shown are others) to n, balanced across items by the planner so the answer's value says
    nothing. The other shown needles are distinct while the pool has enough, else they repeat; when
    a single needle of the pool fits the cell, nothing else can be shown and the count is n."""
    pool, n, k = nset.needles, cell.n, cell.k
    times = cell.rng.randint(0, n) if cell.count is None else cell.count
    fit = _fitting(cell, pool)
    if not fit:
        return _no_fit(cell, nset.name, pool, fit, 1)
    if len(fit) == 1:   # nothing else to show: only "all n are this needle" can be built
        times = n
    target = cell.rng.choice(fit)
    rest = [nd for nd in fit if nd != target]
    if len(rest) >= n - times:
        others = cell.rng.sample(rest, n - times)
    else:
        others = [cell.rng.choice(rest) for _ in range(n - times)]
    needles = [target] * times + others
    placed = _singles(cell, nset, needles, ["target"] * times + ["other"] * len(others), None)
    numbers = [x for x in range(0, max(n + 2, k + 1)) if x != times]
    options, ai = _mcq(cell.rng, str(times), [str(x) for x in cell.rng.sample(numbers, k - 1)], cell.answer_pos)
    question = f"How many times was {REF[nset.kind].format(target.label)} {nset.verb} in the video?"
    return _plan(cell, "counting", nset, placed, question, options, ai, question + " Answer with a number.",
                 str(times), [target.label], absent=_absent(cell, nset, [target] if times == 0 else [], "absent_target"))


def multihop(cell: Cell, nset: NeedleSet, payload: NeedleSet) -> ItemPlan | str:
    """Pairs (anchor, payload): the question names an anchor and asks what came right after it, so
    the answer is only reachable by finding the anchor and then the needle that follows it."""
    n, k, b = cell.n, cell.k, cell.base
    if n < 2:
        return "multihop needs at least 2 anchor/payload pairs"
    same = payload is nset
    need_payloads = max(n, k)
    if same and len(nset.needles) < n + need_payloads:
        return f"needs {n + need_payloads} {nset.name} needles (anchors and payloads), the pool has {len(nset.needles)}"
    if not same and (len(nset.needles) < n or len(payload.needles) < need_payloads):
        return (f"needs {n} {nset.name} anchors and {need_payloads} {payload.name} payloads, "
                f"the pools have {len(nset.needles)} and {len(payload.needles)}")
    pair_gap = round(cell.pair_gap_s * b.fps) / b.fps
    # A pair fits a slot when anchor + pair gap + payload does: anchors are drawn among those that fit
    # with the shortest payload, payloads among those that fit beside the longest anchor drawn.
    shortest = min(span_s(p, b.fps) for p in payload.needles)
    fit_anchors = _fitting(cell, nset.needles, pair_gap + shortest)
    if len(fit_anchors) < n:
        return _no_fit(cell, nset.name, nset.needles, fit_anchors, n, pair_gap + shortest)
    anchors = cell.rng.sample(fit_anchors, n)
    payload_pool = [p for p in payload.needles if p not in anchors]
    longest = max(span_s(a, b.fps) for a in anchors)
    fit_payloads = _fitting(cell, payload_pool, pair_gap + longest)
    if len(fit_payloads) < n:
        return _no_fit(cell, payload.name, payload_pool, fit_payloads, n, pair_gap + longest)
    payloads = cell.rng.sample(fit_payloads, n)
    t = cell.rng.randrange(n)
    units = [span_s(a, b.fps) + pair_gap + span_s(p, b.fps) for a, p in zip(anchors, payloads)]
    lo, hi = heard_s(anchors[t], b.fps)
    starts = place_units(cell.rng, b.length_s, units, cell.gap_s, b.fps, target=t, depth=cell.depth,
                         depth_span_s=hi - lo, depth_offset_s=lo)
    placed = []
    for i, (a, p, s) in enumerate(zip(anchors, payloads, starts)):
        placed.append(_place(cell, nset, a, "anchor" if i == t else "other_anchor", s))
        p_start = math.ceil((s + span_s(a, b.fps) + pair_gap) * b.fps - 1e-6) / b.fps
        placed.append(_place(cell, payload, p, "target" if i == t else "other", p_start))
    correct = payloads[t].label
    seen = [p.label for i, p in enumerate(payloads) if i != t]
    fill = [p for p in payload_pool if p not in payloads]
    distractors = cell.rng.sample(seen, min(len(seen), k - 1))
    fill_used = cell.rng.sample(fill, k - 1 - len(distractors))
    distractors += [p.label for p in fill_used]
    options, ai = _mcq(cell.rng, correct, distractors, cell.answer_pos)
    what = {"image": "image was shown", "text": "text appeared on screen", "clip": "video clip was shown",
            "audio": "phrase was spoken"}[payload.kind]
    question = f"Which {what} right after {REF[nset.kind].format(anchors[t].label)}?"
    anchor_p = next(p for p in placed if p.role == "anchor")
    return _plan(cell, "multihop", nset, placed, question, options, ai, question + " Answer in a few words.",
                 correct, [correct], target_depth=_depth_of(anchor_p, b.length_s),
                 absent=_absent(cell, payload, fill_used))


def _interval_text(s: float, e: float) -> str:
    return f"{s:.1f} - {e:.1f} seconds"


def localization(cell: Cell, nset: NeedleSet, payload: NeedleSet) -> ItemPlan | str:
    pool, n, k, b = nset.needles, cell.n, cell.k, cell.base
    if len(pool) < n:
        return f"needs {n} {nset.name} needles, the pool has {len(pool)}"
    fit = _fitting(cell, pool)
    if len(fit) < n:
        return _no_fit(cell, nset.name, pool, fit, n)
    inserted = cell.rng.sample(fit, n)
    t = cell.rng.randrange(n)
    placed = _singles(cell, nset, inserted, ["target" if i == t else "other" for i in range(n)], t)
    tp = next(p for p in placed if p.role == "target")
    s0, e0 = tp.start_s, tp.end_s
    d = e0 - s0
    chosen = [(s0, e0)]
    # Hard negatives first: the same length at the other needles' times; then random spots.
    candidates = [p.start_s for p in placed if p is not tp]
    cell.rng.shuffle(candidates)
    for _ in range(400):
        if len(chosen) == k:
            break
        s = candidates.pop() if candidates else round(cell.rng.uniform(0, b.length_s - d), 1)
        s = min(max(0.0, s), b.length_s - d)
        if all(s + d <= a or s >= z for a, z in chosen):   # options never overlap each other
            chosen.append((s, s + d))
    if len(chosen) < k:
        return f"a {b.length_s:g} s haystack has no room for {k} non-overlapping {d:.1f} s intervals"
    texts = [_interval_text(s, e) for s, e in chosen]
    if len(set(texts)) < k:
        return "interval options would print identically"
    options, ai = _mcq(cell.rng, texts[0], texts[1:], cell.answer_pos)
    ref = REF[nset.kind].format(tp.needle.label)
    question = f"When was {ref} {nset.verb}? Give its start and end time in seconds."
    open_q = f'When was {ref} {nset.verb}? Answer as "start - end" in seconds.'
    return _plan(cell, "localization", nset, placed, question, options, ai, open_q, f"{s0:.2f} - {e0:.2f}",
                 [tp.needle.label], interval=(s0, e0), target_depth=_depth_of(tp, b.length_s))


def _plan(cell: Cell, task: str, nset: NeedleSet, placed: list[Placement], question: str, options: list[str],
          ai: int, open_q: str, open_a: str, labels: list[str], interval=None, target_depth=None,
          absent: list[Placement] | None = None) -> ItemPlan:
    return ItemPlan(item_id=cell.item_id, task=task, needle_type=nset.name, needles_per_item=cell.n,
                    depth=cell.depth, target_depth=target_depth, base=cell.base,
                    placements=sorted(placed, key=lambda p: p.start_s), question=question, options=options,
                    answer_index=ai, open_question=open_q, open_answer=open_a, answer_labels=labels,
                    answer_interval=interval, vnbench_type=vnbench_type(task, nset.kind, nset.style),
                    absent=absent or [])


BUILDERS = {"retrieval": retrieval, "ordering": ordering, "counting": counting, "multihop": multihop,
            "localization": localization}
