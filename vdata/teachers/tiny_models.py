"""Build tiny, randomly initialised Qwen2.5-VL / Qwen3-VL checkpoints offline (no model hub).

They are real model directories (config, safetensors, tokenizer, image + video processor, chat
template) that transformers and vLLM load like the released checkpoints; the weights are random,
so their text is gibberish — tests assert structure (finish reasons, schema validity, token counts),
never content. ≈2 M parameters, ≈5 MB, built in seconds on a CPU.

    from vdata.teachers.tiny_models import build_tiny_vlm
    path = build_tiny_vlm("/tmp/tiny-qwen25vl", kind="qwen2_5_vl")

Command line: ``python -m vdata.teachers.tiny_models OUT_DIR [--kind qwen3_vl]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Literal

Kind = Literal["qwen2_5_vl", "qwen3_vl"]

RECIPE_VERSION = "2"
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


VOCAB_TARGET = 4096

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# A ChatML template with Qwen-VL vision placeholders (one per image / video content part).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] in ('image', 'image_url', 'image_pil') %}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif content['type'] in ('video', 'video_url') %}"
    "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% elif content['type'] == 'text' %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _corpus() -> list[str]:
    """Deterministic local training text: the Python standard library's own sources."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    names = [
        "this.py", "textwrap.py", "string.py", "json/__init__.py", "json/decoder.py", "argparse.py",
        "pathlib.py", "random.py", "statistics.py", "csv.py", "calendar.py", "fractions.py", "datetime.py",
    ]
    texts = []
    for n in names:
        p = stdlib / n
        if p.exists():
            texts.append(p.read_text(encoding="utf-8", errors="replace"))
    # plus the JSON-ish vocabulary the tests' structured outputs use
    texts.append('{"a": [1, 2, 3], "label": "yes", "ok": true, "score": 0.5, "n": null}\n' * 50)
    if not texts:  # pragma: no cover - a stripped Python
        texts = ["the quick brown fox jumps over the lazy dog 0123456789 {}[]:,\"" * 200]
    return texts


def build_tokenizer(out_dir: Path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    vocab: dict[str, int] = model["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    qtok = Qwen2Tokenizer(vocab=vocab, merges=merges)
    qtok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    qtok.add_tokens([SPECIAL_TOKENS[0]], special_tokens=True)
    qtok.eos_token = "<|im_end|>"
    qtok.pad_token = "<|endoftext|>"
    qtok.chat_template = CHAT_TEMPLATE
    qtok.model_max_length = 4096
    qtok.save_pretrained(out_dir)
    return qtok


def _model_and_processor(kind: Kind, tok, max_pixels: int):
    import torch

    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = (len(tok) + 63) // 64 * 64
    if kind == "qwen2_5_vl":
        from transformers import (
            Qwen2_5_VLConfig,
            Qwen2_5_VLForConditionalGeneration,
            Qwen2_5_VLProcessor,
            Qwen2VLImageProcessor,
            Qwen2VLVideoProcessor,
        )

        text = dict(
            vocab_size=vocab_size, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 6, 6]},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        )
        vision = dict(
            depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=128,
            fullatt_block_indexes=[1], window_size=112, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
        )
        cfg = Qwen2_5_VLConfig(
            text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
            video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
            vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=False,
        )
        model_cls, proc_cls = Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
        patch = 14
        improc = Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=max_pixels, patch_size=14, merge_size=2)
        vidproc = Qwen2VLVideoProcessor(min_pixels=28 * 28 * 4, max_pixels=max_pixels, patch_size=14, merge_size=2)
    elif kind == "qwen3_vl":
        from transformers import (
            Qwen2VLImageProcessor,
            Qwen3VLConfig,
            Qwen3VLForConditionalGeneration,
            Qwen3VLProcessor,
            Qwen3VLVideoProcessor,
        )

        text = dict(
            vocab_size=vocab_size, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 6, 6],
                             "mrope_interleaved": True},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        )
        vision = dict(
            depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=128, patch_size=16,
            spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=256, deepstack_visual_indexes=[1],
        )
        cfg = Qwen3VLConfig(
            text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
            video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
            vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=False,
        )
        model_cls, proc_cls = Qwen3VLForConditionalGeneration, Qwen3VLProcessor
        patch = 16
        improc = Qwen2VLImageProcessor(
            min_pixels=32 * 32 * 4, max_pixels=max_pixels, patch_size=16, merge_size=2,
            image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
        )
        vidproc = Qwen3VLVideoProcessor(
            size={"shortest_edge": 32 * 32 * 4, "longest_edge": max_pixels * 8}, patch_size=16, merge_size=2,
        )
    else:
        raise ValueError(f"unknown tiny model kind {kind!r}")
    torch.manual_seed(0)
    model = model_cls(cfg).to(torch.bfloat16)
    proc = proc_cls(image_processor=improc, tokenizer=tok, video_processor=vidproc, chat_template=CHAT_TEMPLATE)
    return model, proc, patch


def build_tiny_vlm(
    out_dir: str | os.PathLike[str],
    kind: Kind = "qwen2_5_vl",
    *,
    max_pixels: int = 112 * 112,
    overwrite: bool = False,
) -> Path:
    """Write a tiny random ``kind`` checkpoint to ``out_dir`` (reused when already built)."""
    out = Path(out_dir)
    stamp = out / ".vdata-tiny"
    want = hashlib.sha256(f"{RECIPE_VERSION}|{kind}|{max_pixels}".encode()).hexdigest()[:16]
    if not overwrite and stamp.exists() and stamp.read_text().strip() == want:
        return out
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tok = build_tokenizer(out)
    model, proc, _ = _model_and_processor(kind, tok, max_pixels)
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    model.save_pretrained(out, safe_serialization=True)
    proc.save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    stamp.write_text(want)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--kind", default="qwen2_5_vl", choices=["qwen2_5_vl", "qwen3_vl"])
    ap.add_argument("--max-pixels", type=int, default=112 * 112)
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args(argv)
    p = build_tiny_vlm(a.out_dir, a.kind, max_pixels=a.max_pixels, overwrite=a.overwrite)
    print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
