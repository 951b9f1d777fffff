"""Teacher engines: every model-driven stage talks to a named teacher through this package.

    from vdata.teachers import build_teacher, TeacherRequest, ImagePart, VideoPart

    teacher = build_teacher("captioner", cfg.teachers["captioner"], cache_dir=run_dir / "teacher-cache")
    results = teacher.generate([TeacherRequest.from_prompt("Describe.", images=[frame])])
    teacher.stats()   # for the run manifest
    teacher.close()

Backends: ``openai`` (any OpenAI-compatible endpoint), ``vllm`` (offline engine; Ray actors for
``replicas > 1``), ``managed`` (vdata starts/stops a local vLLM or llama.cpp server).
Heavy modules (vllm, ray) are imported only when a backend that needs them is built.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The names below resolve on first use (module `__getattr__`): the CLI and the runner import
# `vdata.teachers.types`, which runs this file first; the base class (asyncio), the request cache
# (diskcache, sqlite3), the accounting and the config models would cost every `vdata` command ~0.1 s
# at start, and a build without teachers never uses them.
_LAZY = {
    **dict.fromkeys(("estimate_tokens", "merge_stats"), "accounting"),
    "Teacher": "base",
    **dict.fromkeys(("RequestCache", "request_key"), "cache"),
    **dict.fromkeys(("ManagedTeacherConfig", "OpenAITeacherConfig", "TeacherConfig", "TeachersConfig",
                     "VLLMTeacherConfig", "parse_teacher_config", "parse_teachers_config"), "config"),
    **dict.fromkeys(("ERROR_KINDS", "ImagePart", "Message", "TeacherRequest", "TeacherResult", "TextPart", "Usage",
                     "VideoPart"), "types"),
}

if TYPE_CHECKING:
    from vdata.teachers.accounting import estimate_tokens, merge_stats
    from vdata.teachers.base import Teacher
    from vdata.teachers.cache import RequestCache, request_key
    from vdata.teachers.config import (ManagedTeacherConfig, OpenAITeacherConfig, TeacherConfig, TeachersConfig,
                                       VLLMTeacherConfig, parse_teacher_config, parse_teachers_config)
    from vdata.teachers.types import (ERROR_KINDS, ImagePart, Message, TeacherRequest, TeacherResult, TextPart, Usage,
                                      VideoPart)


def __getattr__(name: str):
    if name not in _LAZY:   # AttributeError: `from vdata.teachers import vllm_env` then imports the submodule
        raise AttributeError(f"module 'vdata.teachers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vdata.teachers.{_LAZY[name]}"), name)
    globals()[name] = value   # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def build_teacher(
    name: str,
    config: Any,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    in_process: bool | None = None,
) -> Teacher:
    """Build the teacher ``name`` from its config (a model or a plain dict).

    ``cache_dir``: the run's request-cache directory (None: no cache; ``cache: false`` in the
    teacher's config also disables it). ``in_process``: for the ``vllm`` backend, True builds one
    engine in this process, False a pool of ``replicas`` Ray actors. By default: one engine in this
    process when called inside a Ray actor/task (a stage worker *is* one replica: size the stage's
    actor pool with ``config.replicas`` and ``config.ray_actor_options()``) or when
    ``replicas == 1``; a pool of Ray actors when the driver asks for ``replicas > 1``.
    Managed teachers start their server here (and stop it at ``close()``, exit, or SIGINT/SIGTERM).
    """
    from vdata.teachers.cache import RequestCache
    from vdata.teachers.config import parse_teacher_config

    cfg = parse_teacher_config(config)
    cache = RequestCache(Path(cache_dir)) if (cache_dir is not None and cfg.cache) else None
    if cfg.backend == "openai":
        from vdata.teachers.openai_compat import OpenAITeacher

        return OpenAITeacher(name, cfg, cache)
    if cfg.backend == "managed":
        from vdata.teachers.managed import ManagedTeacher

        return ManagedTeacher(name, cfg, cache)
    if cfg.backend == "vllm":
        from vdata.teachers.vllm_engine import VLLMPoolTeacher, VLLMTeacher

        pool = (cfg.replicas > 1 and not _inside_ray_worker()) if in_process is None else not in_process
        return VLLMPoolTeacher(name, cfg, cache) if pool else VLLMTeacher(name, cfg, cache)
    raise ValueError(f"unknown teacher backend {cfg.backend!r}")  # pragma: no cover


def _inside_ray_worker() -> bool:
    if "ray" not in sys.modules:
        return False
    try:
        import ray

        if not ray.is_initialized():
            return False
        return ray.get_runtime_context().worker.mode == ray.WORKER_MODE
    except Exception:
        return False


def build_teachers(configs: dict[str, Any], cache_dir: str | os.PathLike[str] | None = None) -> dict[str, Teacher]:
    """Build every teacher of a ``teachers:`` mapping (closing the built ones if one fails)."""
    from vdata.teachers.config import parse_teachers_config

    built: dict[str, Teacher] = {}
    try:
        for name, c in parse_teachers_config(configs).items():
            built[name] = build_teacher(name, c, cache_dir)
    except BaseException:
        for t in built.values():
            t.close()
        raise
    return built


__all__ = [
    "ERROR_KINDS",
    "ImagePart",
    "ManagedTeacherConfig",
    "Message",
    "OpenAITeacherConfig",
    "RequestCache",
    "Teacher",
    "TeacherConfig",
    "TeacherRequest",
    "TeacherResult",
    "TeachersConfig",
    "TextPart",
    "Usage",
    "VLLMTeacherConfig",
    "VideoPart",
    "build_teacher",
    "build_teachers",
    "estimate_tokens",
    "merge_stats",
    "parse_teacher_config",
    "parse_teachers_config",
    "request_key",
]
