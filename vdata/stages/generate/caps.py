"""A reply string that fills its schema cap was cut there (h25 F15).

Every text field of a teacher request is capped (`common.text_field`: `maxLength`). A server that enforces
the schema (llama.cpp's grammar, vLLM's xgrammar) closes the string when it reaches the cap, and the reply
still ends with finish_reason "stop": a 300-character answer ending "...while the boxes are green and seven"
looks whole to every later check. `read_at_cap` finds each string of a parsed reply whose length reaches its
schema's `maxLength` and that does not end a sentence. A field a family names in `TaskFamily.trim_at_cap`
(free-form text where a shorter whole answer is still the answer: an open answer, an explanation) keeps its
complete sentences (`vdata.prompts.complete_sentences`, as preference_pairs' candidates and captions stopped at
max_tokens do); any other such field, or one with no complete sentence, is cut: the stage rejects the reply
`truncated`. Families that handle it themselves are listed in `stage.OWN_CAP_CHECK`.
"""
from __future__ import annotations

from typing import Any

from vdata.prompts import complete_sentences


def is_cut(text: str, cap: int) -> bool:
    """Whether `text` reaches its cap without ending a sentence (a schema-enforcing server closed it there)."""
    return len(text) >= cap and complete_sentences(text) != text.strip()


def at_cap(schema: Any, value: Any, path: str = "") -> list[tuple[str, int, str]]:
    """(field path, cap, text) for every string of `value` that reaches its schema's `maxLength` without
    ending a sentence."""
    if not isinstance(schema, dict):
        return []
    if isinstance(value, str):
        cap = schema.get("maxLength")
        if isinstance(cap, int) and is_cut(value, cap):
            return [(path, cap, value)]
        return []
    out: list[tuple[str, int, str]] = []
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for k, v in value.items():
            out += at_cap(props.get(k), v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += at_cap(schema.get("items"), v, f"{path}[{i}]")
    return out


def read_at_cap(parsed: Any, schema: Any,
                trim: tuple[str, ...] = ()) -> tuple[Any, list[str], list[tuple[str, int, str]]]:
    """(the reply with each trimmable cut field cut back to its complete sentences, the fields so trimmed,
    the cut fields left: the reply's reject reason when any)."""
    cut = at_cap(schema, parsed)
    if not cut:
        return parsed, [], []
    out = dict(parsed) if isinstance(parsed, dict) else parsed
    trimmed, left = [], []
    for path, cap, text in cut:
        whole = complete_sentences(text) if path in trim else ""
        if whole:
            out[path] = whole
            trimmed.append(path)
        else:
            left.append((path, cap, text))
    return out, trimmed, left
