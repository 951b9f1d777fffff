"""Which splits each pushed layout carries, and the line push logs about them.

Readers of a layout take every row in it: a trainer every record of the LLaVA / LLaMA-Factory files,
lmms-eval every doc of its task folder. So where the build holds videos out (`output.splits`), a
training layout carries the `train` split only and the benchmark the held-out `test` split only, the
rows `vdata export --split train` / `--split test` would write; `--split` overrides both."""
from __future__ import annotations

from collections import Counter

from vdata.schemas.config import SPLIT_NAMES

LAYOUT_SPLIT = {"llava": "train", "sharegpt": "train", "lmms-eval": "test"}
LAYOUT_NAMES = {"parquet": "Parquet configs", "llava": "llava files", "sharegpt": "LLaMA-Factory files",
                "lmms-eval": "lmms-eval tasks"}


def carried_splits(rows_by_split: Counter, layout: str, asked=None, held_out: bool | None = None) -> list[str] | None:
    """The splits the `layout` files hold (the `splits=` of their export): those asked for; else, where the
    build holds videos out (`held_out`, by default: it has rows outside `train`), the layout's own split
    (`LAYOUT_SPLIT`), also when the build has no row of it: a benchmark of a build whose held-out share came
    out empty is refused, never its training rows labelled `test` (outside check h26 F6); None: every row
    (a build that holds nothing out). The Parquet configs keep the splits apart (data files per split), so
    they hold every split unless asked."""
    if asked:
        return list(asked)
    held = bool(set(rows_by_split) - {"train"}) if held_out is None else held_out
    if layout not in LAYOUT_SPLIT or not held:
        return None
    return [LAYOUT_SPLIT[layout]]


def holds_videos_out(build, rows_by_split: Counter) -> bool:
    """Whether the build holds videos out: rows outside `train`, or parts written per split (`-train.parquet`)
    by a config whose `output.splits` gives test or validation a share, which came out empty (a few videos
    and `test: 0.1`). A build written before splits (parts named without one) holds nothing out."""
    from vdata.exporters.source import split_named

    if set(rows_by_split) - {"train"}:
        return True
    if not build.data_files or not all(split_named(f) for f in build.data_files):
        return False
    import yaml

    from vdata.schemas.config import SplitsConfig

    try:
        config = yaml.safe_load((build.manifest or {}).get("config_text") or "") or {}
        chosen = SplitsConfig.model_validate((config.get("output") or {}).get("splits") or {})
    except Exception:   # unreadable config text: the split-named parts say splits were in force
        return True
    return chosen.test + chosen.validation > 0


def split_label(rows_by_split: Counter, layout: str, carried) -> str:
    """The split a README config names for the layout's one file per config: the split its rows come from
    where that is one split of a build that holds videos out; else the split the layout's readers take
    (`train` for trainers, `test` for lmms-eval, as for a build without held-out videos)."""
    rows_from = set(carried or rows_by_split) & set(rows_by_split)
    if set(rows_by_split) - {"train"} and len(rows_from) == 1:
        return rows_from.pop()
    return LAYOUT_SPLIT[layout]


def split_note(rows_by_split: Counter, carried: dict) -> str | None:
    """One line on the splits each pushed layout holds and the rows it left out, for a build that holds
    videos out (None otherwise), as `vdata export` notes the splits of an export; it says so loudly when
    a training file holds held-out videos or the benchmark training videos (a `--split` asked for them)."""
    if not set(rows_by_split) - {"train"}:
        return None

    def rows(splits) -> str:
        return ", ".join(f"{s} {rows_by_split[s]}" for s in SPLIT_NAMES if s in splits) or "none"

    parts, mixed = [], []
    for layout, splits in carried.items():
        kept = set(splits or rows_by_split) & set(rows_by_split)
        left = set(rows_by_split) - kept
        parts.append(f"{LAYOUT_NAMES[layout]} {rows(kept)}" + (f" (left out: {rows(left)})" if left else ""))
        if LAYOUT_SPLIT.get(layout) == "train" and kept - {"train"}:
            mixed.append("the held-out videos ARE in the training files (`--split train` leaves them out)")
        elif LAYOUT_SPLIT.get(layout) == "test" and "train" in kept:
            held_out = "test" if "test" in rows_by_split else "validation"
            mixed.append(f"training videos ARE in the benchmark (`--split {held_out}` leaves them out)")
    trains = any(LAYOUT_SPLIT.get(layout) == "train" for layout in carried)
    kept_apart = "the held-out videos were left out of the training files" if trains else \
        "the benchmark holds held-out videos only"
    tail = "; ".join(mixed) or f"{kept_apart} (`vdata push --split` chooses the splits)"
    return f"split: rows pushed: {'; '.join(parts)}; {tail}"
