"""A managed teacher whose `model` is a local path that is not there: found before anything starts.

Given a path that does not exist, a managed server fails only once it is started: vLLM after half a
minute, with "Repo id must be in the form 'repo_name'", llama.cpp with "Model path does not exist", and
the build ends in a traceback that names no setting. A path can be told from a model name without
looking anything up: it is absolute, starts with `./`, `../` or `~`, or names a `.gguf` file. A hub id
(`org/name`) and `package:<module>` are names, checked where they are loaded. A relative path is taken
from the folder vdata runs in, as the server (started from there) takes it.
"""
from __future__ import annotations

import os

from .packaged import PREFIX


def is_local_path(model: str) -> bool:
    """Whether `model` can only mean a file or folder on this machine (not a hub id or a package)."""
    if model.startswith(PREFIX):
        return False
    return (os.path.isabs(model) or model in (".", "..") or model.startswith(("./", "../", "~"))
            or model.lower().endswith(".gguf"))


def missing_model(model: str) -> str | None:
    """What is wrong with a local model path that does not exist; None for a path that does, or a name."""
    if not is_local_path(model) or os.path.exists(os.path.expanduser(model)):
        return None
    where = "" if os.path.isabs(os.path.expanduser(model)) else \
        f" (a relative path is taken from the folder vdata runs in, {os.getcwd()})"
    if os.path.basename(model.rstrip("/")).startswith("tiny-qwen"):   # the demo recipes' random VLM
        where += "; the demo VLM is built with `vdata models tiny-vlm` (or `make setup`)"
    return f"no such file or folder {model!r}{where}"


def missing_model_problems(teachers: dict) -> list[str]:
    """`teachers.<name>.model: …` for every managed teacher (its typed config) whose model path is not there.
    Managed servers start on this machine, so this machine's files are the ones that count."""
    out = []
    for name, cfg in teachers.items():
        if getattr(cfg, "backend", None) == "managed" and (problem := missing_model(cfg.model)):
            out.append(f"teachers.{name}.model: {problem}")
    return out


__all__ = ["is_local_path", "missing_model", "missing_model_problems"]
