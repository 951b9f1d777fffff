"""The demo teacher: a tiny random Qwen-VL checkpoint built offline, and how to recognise it."""
from __future__ import annotations

import os
from pathlib import Path

from vdata.teachers.tiny_models import DEMO_SERVED_NAME, is_demo_model  # noqa: F401  (the caption stage's names)


def ensure_tiny_vlm(directory: str | os.PathLike | None = None, kind: str = "qwen2_5_vl") -> Path:
    """Build (once) the tiny random Qwen-VL checkpoint the quickstart's embedded teacher serves.

    `directory` defaults to `~/.cache/vdata/models/tiny-<kind>`; a finished build is reused (its
    recipe stamp matches), so calling this on every quickstart costs nothing after the first time.
    Demo-size random weights: the captions it yields are placeholder text, not descriptions.
    """
    from vdata.teachers.tiny_models import build_tiny_vlm

    target = Path(directory) if directory else Path.home() / ".cache" / "vdata" / "models" / f"tiny-{kind}"
    return build_tiny_vlm(target, kind)  # type: ignore[arg-type]
