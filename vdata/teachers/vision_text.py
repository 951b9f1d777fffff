"""A vision–text embedding model (CLIP / SigLIP family) and the score heads that sit on its embeddings.

`VisionTextModel(spec)` loads any transformers checkpoint whose `AutoModel` has `get_image_features`
and `get_text_features` (`CLIPModel`, `SiglipModel`, `Siglip2Model`, ...) with its `AutoProcessor`:
from a local directory, a `package:<module>` that ships one, or a hub id when online (with
`HF_HUB_OFFLINE=1` a hub id is read from the local cache only, and a miss says so). Embeddings come back
L2-normalised as float32 NumPy arrays, so a cosine is a dot product.

Scores built on it (by the `clip_embed` and `semdedup` stages; usable by caption selection too):
- image–text cosine (`similarity`), for caption/frame agreement and candidate ranking;
- `AestheticHead`: a LAION-style aesthetic predictor. LAION's heads are a chain of `Linear` layers
  with no non-linearity between them (v1: one layer; "improved aesthetic predictor" v2: 5 layers with
  dropout, which is identity at inference), applied to the normalised image embedding. So the head is
  loaded as that chain from a state dict (`.safetensors`, `.pt`/`.pth`), layers in key order, and its
  input width must equal the model's embedding width.

`tiny_clip.py` builds a tiny random CLIP and head offline for tests; their scores are deterministic
but meaningless.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from .packaged import resolve_model


class VisionTextModelError(RuntimeError):
    pass


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _features(out):
    """transformers 5 returns a ModelOutput whose pooler_output is the projected embedding; 4.x a tensor."""
    return out if hasattr(out, "shape") else out.pooler_output


class VisionTextModel:
    """Batched, deterministic image and text embeddings from one CLIP/SigLIP-family checkpoint."""

    def __init__(self, spec: str, device: str = "cpu", threads: int | None = None):
        import torch
        from transformers import AutoModel, AutoProcessor

        path = resolve_model(spec)
        local = os.path.isdir(path)
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        if threads:
            torch.set_num_threads(threads)
        try:
            self.model = AutoModel.from_pretrained(path, local_files_only=local or offline).to(device).eval()
            self.processor = AutoProcessor.from_pretrained(path, local_files_only=local or offline)
        except OSError as e:
            where = "a local directory" if local else ("the local hub cache (HF_HUB_OFFLINE is set)" if offline
                                                       else "the model hub")
            raise VisionTextModelError(f"vision-text model {spec!r}: not loadable from {where}: {e}") from None
        for method in ("get_image_features", "get_text_features"):
            if not hasattr(self.model, method):
                raise VisionTextModelError(f"vision-text model {spec!r}: {type(self.model).__name__} has no "
                                           f"{method} (not a CLIP/SigLIP-family model)")
        self.spec = spec
        self.device = device
        self.name = self.model.config.name_or_path or spec
        text_config = getattr(self.model.config, "text_config", None)
        self.max_text_tokens = int(getattr(text_config, "max_position_embeddings", 77) or 77)
        # SigLIP is trained with fixed-length padding; CLIP with padding to the longest
        self.text_padding = "max_length" if "siglip" in type(self.model).__name__.lower() else True

    @property
    def dim(self) -> int:
        config = self.model.config   # CLIP: projection_dim; SigLIP: the text tower's projection_size or width
        return int(getattr(config, "projection_dim", None) or getattr(config.text_config, "projection_size", None)
                   or config.text_config.hidden_size)

    def embed_images(self, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """RGB uint8 arrays (H, W, 3) → (n, dim) unit vectors."""
        import torch

        # on a GPU, frames are resized and normalised there (transformers' torchvision-based image processors):
        # on an H100 the CPU's preprocessing took 0.86 of the 1.69 ms per frame of ViT-B/32 at batch 64
        on_device = {"device": self.device} if str(self.device) != "cpu" else {}
        out = []
        for i in range(0, len(images), batch_size):
            chunk = [np.asarray(im, dtype=np.uint8) for im in images[i:i + batch_size]]
            inputs = self.processor(images=chunk, return_tensors="pt", **on_device).to(self.device)
            with torch.inference_mode():
                out.append(_features(self.model.get_image_features(**inputs)).float().cpu().numpy())
        return _unit(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Texts → (n, dim) unit vectors (truncated to the model's text length)."""
        import torch

        out = []
        for i in range(0, len(texts), batch_size):
            inputs = self.processor(text=list(texts[i:i + batch_size]), return_tensors="pt",
                                    padding=self.text_padding, truncation=True,
                                    max_length=self.max_text_tokens).to(self.device)
            with torch.inference_mode():
                out.append(_features(self.model.get_text_features(**inputs)).float().cpu().numpy())
        return _unit(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarities between rows of two sets of unit vectors: (n, d) x (m, d) → (n, m)."""
    return np.asarray(a, np.float32) @ np.asarray(b, np.float32).T


def mean_embedding(vectors: np.ndarray) -> np.ndarray:
    """One unit vector for a set (a clip's frames, a video's clips): the normalised mean."""
    return _unit(np.asarray(vectors, np.float32).mean(axis=0))


def _layer_order(key: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.]", key))


class AestheticHead:
    """LAION-style aesthetic predictor: Linear layers applied in order to the unit image embedding."""

    kind = "aesthetic"   # names the head in messages

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], source: str = ""):
        if not layers:
            raise VisionTextModelError(f"{self.kind} head {source!r}: no Linear layers (weight/bias pairs) found")
        for (w, _), (w2, _) in zip(layers, layers[1:]):
            if w2.shape[1] != w.shape[0]:
                raise VisionTextModelError(f"{self.kind} head {source!r}: layer widths do not chain "
                                           f"({w.shape} then {w2.shape})")
        if layers[-1][0].shape[0] != 1:
            raise VisionTextModelError(f"{self.kind} head {source!r}: last layer gives {layers[-1][0].shape[0]} "
                                       "outputs, not one score")
        self.layers = layers
        self.source = source

    @property
    def input_dim(self) -> int:
        return int(self.layers[0][0].shape[1])

    @classmethod
    def load(cls, path: str) -> "AestheticHead":
        """A state dict of Linear layers (`*.weight` 2-D + `*.bias`), e.g. LAION's `sac+logos+ava1-l14-linearMSE.pth`."""
        p = Path(resolve_model(path))
        if not p.is_file():
            raise VisionTextModelError(f"{cls.kind} head {path!r}: no such file")
        if p.suffix == ".safetensors":
            from safetensors.numpy import load_file

            state = load_file(str(p))
        else:
            import torch

            state = {k: v.float().numpy() for k, v in torch.load(str(p), map_location="cpu", weights_only=True).items()}
        weights = sorted((k for k, v in state.items() if k.endswith(".weight") and np.ndim(v) == 2), key=_layer_order)
        layers = []
        for k in weights:
            bias = state.get(k[: -len("weight")] + "bias")
            w = np.asarray(state[k], np.float32)
            layers.append((w, np.zeros(w.shape[0], np.float32) if bias is None else np.asarray(bias, np.float32)))
        return cls(layers, source=str(p))

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, dim) unit embeddings → (n,) scores."""
        x = np.asarray(embeddings, np.float32)
        if x.shape[-1] != self.input_dim:
            raise VisionTextModelError(f"{self.kind} head {self.source!r} takes {self.input_dim}-d embeddings; "
                                       f"the vision-text model gives {x.shape[-1]}-d")
        for w, b in self.layers:
            x = x @ w.T + b
        return x[:, 0]


class WatermarkHead(AestheticHead):
    """A watermark classifier on the unit image embedding, as LAION-5B's curation scored a watermark
    probability per image: Linear layers (a linear probe or an MLP, the file format of `AestheticHead`)
    ending in one logit; `probability()` is its sigmoid."""

    kind = "watermark"

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, dim) unit embeddings → (n,) watermark probabilities in [0, 1]."""
        return 1.0 / (1.0 + np.exp(-self.score(embeddings).astype(np.float64)))
