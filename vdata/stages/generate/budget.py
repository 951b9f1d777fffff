"""The teacher's window bounds each request's clue list: coarser captions first, then counted cuts.

A request is a prompt template, the clue list, the images and the reply (`max_tokens`), and all of it must
fit the teacher's context window. When a row's clues do not fit what the rest leaves, the list is made
coarser the way LLaVA-Video-178K builds long-video context (≈10 s captions → 30 s → the whole video):
consecutive clip captions are merged into groups spanning at most `merge_windows_s[0]` seconds, then
`merge_windows_s[1]`, … — each group one clue `G1…` carrying the group's interval, its text the group's
captions joined and bounded — while the video caption `V` stands for the whole video. If the coarsest
level still does not fit, clues are cut, the lowest priority first (caption steps, speech, events,
captions, chapters, title/description/labels, the video caption); of the kind being cut an evenly spaced
subset is kept, so what remains still covers the whole video. Last, a single remaining clue is shortened.

Nothing is cut silently: every row over budget, every merge and every dropped clue or cut character is
counted in `stats`, which the stage reports to the run manifest (`stages[].counters`).

Tokens are counted with the teacher's own tokenizer when its model is a local folder with a
`tokenizer.json`, else estimated per piece: each digit and punctuation mark one token, each run of letters
one per 4 letters. Characters / 4 is not safe here: clue lists are dense with times and ids ("E12 (event,
613.4-618.0s): …"), and SmolLM2's tokenizer counted 1.56x the chars/4 estimate on a 30-minute video's
prompt (5769 tokens for an estimated 3536) but 0.88x this one (6564); on one clip's prompt 0.85x.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from typing import Callable

from vdata.prompts import shorten

from .clues import Clue

CUT_ORDER = ("step", "speech", "event", "caption", "chapter", "context", "video_caption")
CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 256          # one frame sent as an image (a Qwen-VL frame at 448 px ≈ 256 visual tokens)
DEFAULT_VIDEO_WINDOW = 8192  # video scope, teacher window unknown and `context_tokens` not set


_PIECE = re.compile(r"\d|[^\W\d_]+|[^\w\s]|_")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free count that errs high: digits and punctuation one token each, words 1 per 4 letters."""
    return sum(-(-len(p) // CHARS_PER_TOKEN) if p[0].isalpha() else 1 for p in _PIECE.findall(text))


def token_counter(teacher_config: dict | None) -> Callable[[str], int]:
    """The teacher's tokenizer when its model is a local folder with `tokenizer.json`, else chars / 4."""
    model = str((teacher_config or {}).get("model") or "")
    path = os.path.join(os.path.expanduser(model), "tokenizer.json") if model else ""
    if path and os.path.isfile(path):
        try:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(path)
            return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
        except Exception:   # an unreadable tokenizer file: the estimate still bounds the prompt
            pass
    return estimate_tokens


def teacher_window(teacher_config: dict | None) -> int | None:
    """The context window a teacher's config states (vLLM `max_model_len`, llama.cpp `n_ctx`), else None."""
    cfg = teacher_config or {}
    args = {**(cfg.get("engine") or {}), **(cfg.get("engine_args") or {})}
    for key in ("max_model_len", "max-model-len", "n_ctx", "ctx_size", "ctx-size"):
        if args.get(key):
            return int(args[key])
    return None


def lines_cost(clues: list[Clue], count: Callable[[str], int]) -> int:
    return sum(count(c.line()) + 1 for c in clues)


def merge_captions(captions: list[Clue], window_s: float, max_chars: int, stats: Counter) -> list[Clue]:
    """Consecutive timed captions grouped so that each group spans at most `window_s` (a longer single
    caption stays alone): one clue per group with the group's interval and its captions joined — when
    that is longer than `max_chars`, the most whole captions, evenly spaced over the group, that fit."""
    groups: list[list[Clue]] = []
    for c in sorted(captions, key=lambda c: (c.start_s, c.end_s)):
        if groups and c.end_s - groups[-1][0].start_s <= window_s:
            groups[-1].append(c)
        else:
            groups.append([c])
    out = []
    for i, g in enumerate(groups, 1):
        text = _joined(g)
        short, k = text, len(g)
        if len(text) > max_chars:   # whole captions, evenly spaced over the group, rather than its first ones
            k = len(g) - 1
            while k > 1 and len(_joined(_even(g, k), " … ")) > max_chars:
                k -= 1
            short = shorten(_joined(_even(g, k), " … "), max_chars)
            stats["clue_chars_cut"] += len(text) - len(short.rstrip("…"))
        label = ("caption of a clip" if len(g) == 1 else f"captions of {len(g)} clips" if k == len(g)
                 else f"captions of {k} of {len(g)} clips")
        out.append(Clue(f"G{i}", "caption", short, g[0].start_s, max(c.end_s for c in g), label=label,
                        span_evidence=True))
    return out


def _joined(captions: list[Clue], sep: str = "; ") -> str:
    return sep.join(c.text.rstrip(".") for c in captions) + "."


def fit_clues(clues: list[Clue], budget: int | None, count: Callable[[str], int], merge_windows_s: list[float],
              max_chars: int, stats: Counter) -> list[Clue]:
    """`clues` bounded to `budget` tokens (None: unbounded): coarser captions first, then cuts by priority."""
    if budget is None or lines_cost(clues, count) <= budget:
        return clues
    stats["rows_over_budget"] += 1
    originals = [c for c in clues if c.kind == "caption" and c.timed and c.end_s is not None]
    captions = originals
    merge_stats: Counter = Counter()    # the chars cut at the level finally used, not at every level tried
    for window in merge_windows_s:
        if len(captions) < 2:
            break
        level_stats: Counter = Counter()
        merged = merge_captions(originals, window, max_chars * 2, level_stats)
        if len(merged) >= len(captions):
            continue
        at = clues.index(captions[0])
        rest = [c for c in clues if c not in captions]
        clues, captions, merge_stats = rest[:at] + merged + rest[at:], merged, level_stats
        if lines_cost(clues, count) <= budget:
            break
    if captions is not originals:
        stats["rows_coarser_captions"] += 1
        stats["clip_captions_merged"] += len(originals) - len(captions)
        stats.update(merge_stats)
        if lines_cost(clues, count) <= budget:
            return clues
    return _cut(clues, budget, count, stats)


def _cut(clues: list[Clue], budget: int, count: Callable[[str], int], stats: Counter) -> list[Clue]:
    """Drop clues, lowest priority kind first, keeping an evenly spaced subset of the kind being cut."""
    original = clues
    for kind in CUT_ORDER:
        members = [c for c in clues if c.kind == kind]
        if not members:
            continue
        others = [c for c in clues if c.kind != kind]
        room = budget - lines_cost(others, count)
        lo, hi = 0, len(members)          # the largest evenly spaced subset that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if lines_cost(_even(members, mid), count) <= room:
                lo = mid
            else:
                hi = mid - 1
        keep = _even(members, lo)
        while keep and lines_cost(keep, count) > room:   # cost is not strictly monotone in the subset size
            keep = keep[:-1]
        kept = {id(c) for c in keep}
        clues = [c for c in clues if c.kind != kind or id(c) in kept]
        _count_dropped(stats, kind, len(members) - len(keep))
        if clues and lines_cost(clues, count) <= budget:
            return clues
    # Even the most important clue alone is too long: keep it, shortened to what the window leaves.
    ranked = [c for c in original if c.kind in CUT_ORDER]
    if clues or not ranked:
        return clues
    c = max(ranked, key=lambda c: CUT_ORDER.index(c.kind))
    _count_dropped(stats, c.kind, -1)
    chars = len(c.text)
    short = c
    while chars > 20 and lines_cost([short], count) > budget:
        chars = max(20, min(int(chars * 0.8), (budget - (count(c.line()) - count(c.text)) - 1) * CHARS_PER_TOKEN))
        short = Clue(c.id, c.kind, shorten(c.text, chars), c.start_s, c.end_s, c.image, c.label, c.span_evidence)
    stats["clue_chars_cut"] += len(c.text) - len(short.text.rstrip("…"))
    return [short]


def _count_dropped(stats: Counter, kind: str, n: int) -> None:
    if n:
        stats["clues_dropped_budget"] += n
        stats[f"clues_dropped_budget_{kind}"] += n


def _even(items: list, k: int) -> list:
    n = len(items)
    if k >= n:
        return list(items)
    if k <= 0:
        return []
    return [items[min(n - 1, int((i + 0.5) * n / k))] for i in range(k)]
