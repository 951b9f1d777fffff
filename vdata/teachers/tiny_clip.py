"""Build a tiny, randomly initialised CLIP (or SigLIP) checkpoint, a LAION-style aesthetic head and a
watermark head offline.

A real model directory (config, safetensors, a CLIP BPE tokenizer built here from local text, image
processor) that `transformers.AutoModel` / `AutoProcessor` load like a released CLIP; weights are
seeded, so two builds are identical and every score is deterministic — and meaningless: tests assert
structure, batching and thresholds, never that a score is "right". ≈100 k parameters, built in about a
second on a CPU.

    from vdata.teachers.tiny_clip import build_tiny_clip
    path = build_tiny_clip("/tmp/tiny-clip")   # also writes aesthetic_head / watermark_head.safetensors inside

    path = build_tiny_clip("/tmp/tiny-siglip", "siglip")   # the SigLIP family (last-token text pooling)

Command line: ``vdata models tiny-clip DIR [--family siglip]``. A folder that holds a model of another
family (or kind) is not replaced (`ModelExists`): a SigLIP built over the CLIP a config names would change
every score it gives without a word.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Literal

from .tiny_models import _corpus

Family = Literal["clip", "siglip"]
RECIPE_VERSION = "3"   # 3: the watermark head
VOCAB_TARGET = 2048
IMAGE_SIZE = 64
PROJECTION_DIM = 32
HEAD_FILE = "aesthetic_head.safetensors"
WATERMARK_HEAD_FILE = "watermark_head.safetensors"
# caption-like words, so test captions tokenize into words rather than letters
_CAPTIONS = ("a person walks a dog along a street at night; a red car drives past a bright shop window. "
             "colour bars, a test pattern, a fractal, text on screen, a blurry dark scene, a sunny beach. ") * 40


def _tokenizer():
    """A CLIP BPE tokenizer built deterministically (the `tokenizers` trainer breaks ties differently from
    run to run, which would change token ids and so the random text weights): every byte-level symbol,
    alone and word-final, plus the corpus's most frequent words, each reached by left-to-right merges."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in alphabet + [a + "</w>" for a in alphabet]:
        vocab.setdefault(symbol, len(vocab))
    counts = Counter(re.findall(r"[a-z]{2,}", " ".join([_CAPTIONS, *_corpus()]).lower()))
    merges: dict[tuple[str, str], None] = {}
    for word in sorted(counts, key=lambda w: (-counts[w], w)):
        if len(vocab) >= VOCAB_TARGET:
            break
        pieces = [*word[:-1], word[-1] + "</w>"]
        joined = pieces[0]
        for piece in pieces[1:]:
            merges.setdefault((joined, piece))
            joined += piece
            vocab.setdefault(joined, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=list(merges))


def _model_and_processor(family: Family, tok):
    """A seeded random model of `family` and its processor; both embed to PROJECTION_DIM."""
    import torch

    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=IMAGE_SIZE, patch_size=16)
    torch.manual_seed(0)
    if family == "clip":
        from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

        model = CLIPModel(CLIPConfig(text_config={**text, "max_position_embeddings": 64}, vision_config=vision,
                                     projection_dim=PROJECTION_DIM))
        images = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                    crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
        return model, CLIPProcessor(image_processor=images, tokenizer=tok)
    if family == "siglip":
        # SigLIP pools the text at its last position and is trained on fixed-length padded text (16 tokens
        # in the smallest released ones); the CLIP tokenizer stands in for its SentencePiece one
        from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

        model = SiglipModel(SiglipConfig(text_config={**text, "max_position_embeddings": 16,
                                                      "projection_size": PROJECTION_DIM}, vision_config=vision))
        images = SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
        return model, SiglipProcessor(image_processor=images, tokenizer=tok)
    raise ValueError(f"unknown tiny vision-text family {family!r} (clip, siglip)")


_NAMES = {"clip": "CLIP", "siglip": "SigLIP"}


class ModelExists(ValueError):
    """The folder already holds a model of another family or kind (the message says which, and what to do);
    `what` names that model."""

    what: str = ""


def _model_type_at(out: Path) -> str | None:
    """The `model_type` of the model already in `out` (its config.json), or None when there is none."""
    try:
        value = json.loads((out / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def build_tiny_clip(out_dir: str | os.PathLike[str], family: Family = "clip", *, overwrite: bool = False) -> Path:
    """Write the tiny random CLIP or SigLIP (and an aesthetic head) to `out_dir`; reused when already built,
    rebuilt over an older build of the same family. A model of another family or kind there raises
    ModelExists unless `overwrite`."""
    out = Path(out_dir)
    stamp = out / ".vdata-tiny"
    want = hashlib.sha256(f"{family}|{RECIPE_VERSION}|{IMAGE_SIZE}|{PROJECTION_DIM}".encode()).hexdigest()[:16]
    if not overwrite and stamp.exists() and stamp.read_text().strip() == want:
        return out
    existing = _model_type_at(out)
    if not overwrite and existing is not None and existing != family:
        what = f"a tiny {_NAMES.get(existing, existing)} model" if stamp.exists() else f"a {existing!r} model"
        error = ModelExists(f"{out} already holds {what} (family {existing}), not {family}: not replaced. Build "
                            f"the {family} one in another folder (vdata models tiny-clip OTHER_DIR --family {family}), "
                            f"or replace it on purpose with build_tiny_clip({str(out)!r}, {family!r}, overwrite=True)")
        error.what = f"{what} (family {existing})"
        raise error
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model, processor = _model_and_processor(family, _tokenizer())
    out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    write_tiny_aesthetic_head(out / HEAD_FILE, PROJECTION_DIM)
    write_tiny_watermark_head(out / WATERMARK_HEAD_FILE, PROJECTION_DIM)
    stamp.write_text(want)
    return out


def write_tiny_aesthetic_head(path: str | os.PathLike[str], dim: int, seed: int = 0) -> Path:
    """A random head of LAION v2's shape, scaled down (dim → 16 → 1), as safetensors."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    state = {"layers.0.weight": rng.normal(0, dim ** -0.5, (16, dim)).astype(np.float32),
             "layers.0.bias": np.zeros(16, np.float32),
             "layers.1.weight": rng.normal(0, 0.25, (1, 16)).astype(np.float32),
             "layers.1.bias": np.full(1, 5.0, np.float32)}   # centred on LAION's 1-10 scale
    save_file(state, str(path))
    return Path(path)


def write_tiny_watermark_head(path: str | os.PathLike[str], dim: int, seed: int = 1) -> Path:
    """A random linear watermark probe (dim → one logit), as safetensors: `WatermarkHead`'s format."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    state = {"probe.weight": rng.normal(0, 4 * dim ** -0.5, (1, dim)).astype(np.float32),   # logits of a few units
             "probe.bias": np.zeros(1, np.float32)}
    save_file(state, str(path))
    return Path(path)
