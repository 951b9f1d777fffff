"""Structured output: request payloads per server dialect, lenient parsing, validation, re-asks.

Dialects (``structured_output`` in a teacher config):

* ``openai``   – ``response_format={"type": "json_schema", "json_schema": {name, schema, strict}}``
* ``vllm``     – ``structured_outputs={"json": schema}`` in the body (the OpenAI SDK's ``extra_body``);
  never the removed ``guided_json`` which vLLM >= 0.12 silently ignores.
* ``llamacpp`` – ``response_format={"type": "json_object", "schema": schema}`` (grammar-enforced).
* ``none``     – no constrained decoding: the schema is stated in the prompt.
* ``auto``     – detected from the server (see :func:`dialect_from_server_info`).

Whatever the dialect, every reply is parsed leniently, validated with ``jsonschema``, and an invalid
reply is re-asked (with the validation error in the prompt) a bounded number of times.

Lenient parsing is ``json_repair`` (code fences, prose around the JSON, raw control characters,
single quotes, trailing commas, unclosed brackets), tried only after the standard parser failed.
A reply cut at ``max_tokens`` is never repaired: closing its brackets would turn a truncated
answer into a valid-looking one, so it must parse as it is or be re-asked.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import json_repair
import jsonschema

from vdata.teachers.types import Message, TextPart

DIALECTS = ("openai", "vllm", "llamacpp", "none")

# --------------------------------------------------------------------------- request payloads
def is_strict_compatible(schema: Any) -> bool:
    """True when OpenAI's ``strict: true`` accepts the schema: every object lists all its
    properties as required and sets ``additionalProperties: false``."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            props = schema.get("properties", {})
            if schema.get("additionalProperties", True) is not False:
                return False
            if set(schema.get("required", [])) != set(props):
                return False
        return all(is_strict_compatible(v) for v in schema.values())
    if isinstance(schema, list):
        return all(is_strict_compatible(v) for v in schema)
    return True


def structured_body(dialect: str, schema: dict[str, Any] | None, name: str = "reply") -> dict[str, Any]:
    """Fields to merge into a ``/v1/chat/completions`` JSON body for ``schema`` in ``dialect``."""
    if schema is None or dialect == "none":
        return {}
    if dialect == "openai":
        safe_name = re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "reply"
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": safe_name, "schema": schema, "strict": is_strict_compatible(schema)},
            }
        }
    if dialect == "vllm":
        return {"structured_outputs": {"json": schema}}
    if dialect == "llamacpp":
        return {"response_format": {"type": "json_object", "schema": schema}}
    raise ValueError(f"unknown structured-output dialect {dialect!r} (auto must be resolved first)")


def dialect_from_server_info(base_url: str, models: Any = None, version: Any = None) -> str:
    """Guess the dialect from the base URL, ``GET /v1/models`` and ``GET /version`` answers.

    vLLM lists models ``owned_by: "vllm"`` and answers ``/version``; llama.cpp servers own their
    models as ``llamacpp`` / ``me`` (llama-cpp-python) or carry ``meta.n_ctx_train``; api.openai.com
    and unknown servers get the OpenAI ``json_schema`` format, which most servers accept.
    """
    if "api.openai.com" in base_url:
        return "openai"
    data = models.get("data") if isinstance(models, dict) else None
    owners = {str(m.get("owned_by", "")).lower() for m in data or [] if isinstance(m, dict)}
    if "vllm" in owners:
        return "vllm"
    if owners & {"llamacpp", "llama.cpp", "me"} or any(
        isinstance(m, dict) and isinstance(m.get("meta"), dict) and "n_ctx_train" in m["meta"] for m in data or []
    ):
        return "llamacpp"
    if isinstance(version, dict) and "version" in version and not owners:
        return "vllm"
    return "openai"


# --------------------------------------------------------------------------- parsing / validation
_THOUGHT_TAGS = ("think", "thinking", "reasoning")


def answer_part(text: str | None) -> tuple[str | None, bool]:
    """The answer of a reply, without a reasoning model's thinking, and whether thinking was there.

    Qwen3, DeepSeek-R1 or QwQ served without a reasoning parser (`vllm serve --reasoning-parser`) put
    their thinking in the reply's content before the answer, in <think>...</think>; where the chat
    template opens the tag itself only the closing tag arrives. That text is not the answer: a caption
    would carry it, and the JSON fragments it weighs would be parsed as the reply. A reply cut inside its
    thinking has no answer ("")."""
    if text is None:
        return None, False
    stripped = text.lstrip()
    for tag in _THOUGHT_TAGS:
        opened, closed = f"<{tag}>", f"</{tag}>"
        if stripped.startswith(opened) or (closed in stripped and opened not in stripped.split(closed, 1)[0]):
            if closed not in stripped:
                return "", True
            return stripped.split(closed, 1)[1].lstrip(), True
    return text, False


def reply_answer(text: str | None, finish_reason: str | None = None) -> tuple[str | None, str | None]:
    """(the reply's answer, None); for a reply that is all thinking, (its empty answer, a `reasoning_only`
    error)."""
    answer, thought = answer_part(text)
    if thought and not answer.strip():
        return answer, "reasoning_only: the reply is all <think> reasoning, no answer" + \
            (" (cut at max_tokens)" if finish_reason == "length" else "")
    return answer, None


def parse_lenient(text: str | None, *, repair: bool = True) -> tuple[Any, str | None]:
    """Parse a model reply as JSON: the standard parser first (raw control characters allowed),
    then, with ``repair``, ``json_repair``. Returns ``(value, None)`` or ``(None, error)``."""
    if text is None or not text.strip():
        return None, "empty reply"
    try:
        return json.loads(text, strict=False), None
    except json.JSONDecodeError as e:
        first_err = e
    if repair:
        value = json_repair.loads(text)
        if value not in ("", None):  # json_repair's answer when it found no JSON value at all
            return value, None
    return None, f"invalid JSON: {first_err.msg} at char {first_err.pos}"


def validate_json(value: Any, schema: dict[str, Any]) -> str | None:
    """None when ``value`` satisfies ``schema``; else the most relevant validation error, short."""
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema)
    err = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
    msg = err.message
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return f"at {where}: {msg}"


def check_reply(text: str | None, schema: dict[str, Any], *, repair: bool = True) -> tuple[Any, str | None]:
    """Parse + validate. Returns ``(value, None)`` or ``(None, reason)``. ``repair=False`` for a
    reply known to be cut short."""
    value, err = parse_lenient(text, repair=repair)
    if err is not None:
        return None, err
    verr = validate_json(value, schema)
    if verr is not None:
        return None, f"schema violation {verr}"
    return value, None


# --------------------------------------------------------------------------- prompts
def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Reply with a single JSON value and nothing else. It must validate against this JSON Schema:\n"
        + json.dumps(schema, ensure_ascii=False)
    )


def with_schema_instruction(messages: list[Message], schema: dict[str, Any]) -> list[Message]:
    """Append the schema instruction to the last user turn (dialect ``none``)."""
    msgs = list(messages)
    for i in range(len(msgs) - 1, -1, -1):
        if msgs[i].role == "user":
            parts = msgs[i].parts() + [TextPart("\n\n" + schema_instruction(schema))]
            msgs[i] = Message("user", parts)
            return msgs
    return msgs + [Message("user", schema_instruction(schema))]


def reask_messages(messages: list[Message], raw: str | None, error: str, schema: dict[str, Any]) -> list[Message]:
    """The conversation for a re-ask: the invalid reply as the assistant turn, then the error."""
    raw_s = (raw or "")[:4000]
    return list(messages) + [
        Message("assistant", raw_s),
        Message(
            "user",
            f"Your reply was not valid: {error}.\n" + schema_instruction(schema) + "\nReply again.",
        ),
    ]


def copy_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    return copy.deepcopy(schema) if schema is not None else None


__all__ = [
    "DIALECTS",
    "check_reply",
    "dialect_from_server_info",
    "is_strict_compatible",
    "parse_lenient",
    "reask_messages",
    "schema_instruction",
    "structured_body",
    "validate_json",
    "with_schema_instruction",
]


def settle_reply(result: Any, text: str, schema: dict[str, Any] | None, base: list[Message]):
    """Fill `result` (text, parsed, raw) from one reply; the one rule both engines follow.

    Returns None when the request is settled (no schema, or the reply is valid), else
    `(error, messages)`: why the reply failed and the conversation that re-asks with that error.
    `result.finish_reason` must already be set.
    """
    answer, error = reply_answer(text, result.finish_reason)
    if error is not None:
        result.raw, result.error = text, error
        return None
    text = answer
    if schema is None:
        result.text = text
        return None
    parsed, err = check_reply(text, schema, repair=result.finish_reason != "length")
    if err is None:
        result.text, result.parsed, result.raw = text, parsed, None
        return None
    if result.finish_reason == "length":
        err += " (reply cut at max_tokens)"
    result.raw = text
    return err, reask_messages(base, text, err, schema)
