"""Helpers shared by the haystack tests."""
from __future__ import annotations

from pathlib import Path

import yaml

ALL_TASKS = ["retrieval", "ordering", "counting", "multihop", "localization"]


def haystack_config(root: Path, name: str = "hs", out_dir: Path | None = None, **haystack) -> Path:
    """Write a haystack config into `root` (so its relative globs resolve) and return its path.
    Keyword arguments override keys of the `haystack:` section."""
    spec = {
        "sources": {"glob": "videos/*.mp4"},
        "lengths_s": [24],
        "needles": [
            {"type": "image", "from": "needles/images/*.jpg", "duration_s": 1.0},
            {"type": "text", "phrases": "needles/phrases.txt", "style": "overlay"},
            {"type": "clip", "from": "needles/clips/*.mp4"},
            {"type": "audio", "from": "needles/speech/*.wav"},
        ],
        "tasks": ALL_TASKS,
        "needles_per_item": [2],
        "size": [426, 240],
    }
    spec.update(haystack)
    cfg = {"name": name, "output": {"dir": str(out_dir or (root / "out" / name))}, "haystack": spec}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
