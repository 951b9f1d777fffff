"""The demo teacher: a tiny random Qwen-VL checkpoint built offline, and how to recognise it."""
from __future__ import annotations

import os
from pathlib import Path

# Served name for the demo teacher (quickstart): every row's `caption_model` then says what made it.
DEMO_SERVED_NAME = "vdata-tiny-demo-vlm"


def is_demo_model(model: str) -> bool:
    """True for the tiny random checkpoints vdata builds offline: a directory with their `.vdata-tiny`
    stamp, or the demo teacher's served name (workers reach a driver-managed server by that name)."""
    if str(model).startswith(DEMO_SERVED_NAME):
        return True
    try:
        return (Path(model) / ".vdata-tiny").is_file()
    except (OSError, TypeError, ValueError):
        return False


def ensure_tiny_vlm(directory: str | os.PathLike | None = None, kind: str = "qwen2_5_vl") -> Path:
    """Build (once) the tiny random Qwen-VL checkpoint the quickstart's embedded teacher serves.

    `directory` defaults to `~/.cache/vdata/models/tiny-<kind>`; a finished build is reused (its
    recipe stamp matches), so calling this on every quickstart costs nothing after the first time.
    Demo-size random weights: the captions it yields are placeholder text, not descriptions.
    """
    from vdata.teachers.tiny_models import build_tiny_vlm

    target = Path(directory) if directory else Path.home() / ".cache" / "vdata" / "models" / f"tiny-{kind}"
    return build_tiny_vlm(target, kind)  # type: ignore[arg-type]
