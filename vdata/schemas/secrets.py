"""Secrets: which values are secret, and the one function that masks them in anything vdata writes.

A value is secret because of what it is, never because of the name of the key that holds it (a rule on
key names turned every `max_tokens` into a mask and made the card's YAML invalid):

- a field typed `pydantic.SecretStr` (a teacher's `api_key`, its `headers` values, the hub token,
  the `storage:` keys and tokens);
- a value that came from `${VAR}` interpolation (`schemas/config_file.interpolate_env` records them): the
  config file names the variable, the environment holds the value, so the value never reaches an output.
  Except (`env_value_is_secret`) a value naming an existing file or folder, and one of a key that names a
  thing (`NAMING_KEYS`: a model, a folder, a file) unless it is shaped like a credential: masking those
  took the model and the output folder out of the manifest while every row's `sample_model` named it;
- text shaped like a credential whatever holds it: `Bearer X`, `hf_…`, `sk-…`, `gh?_…`, `AKIA…`.

`redact()` replaces those values wherever they appear: logs, error messages, the manifest, the card.
The mask is a plain YAML scalar, so a config text stays valid YAML after a literal key is masked.
"""
from __future__ import annotations

import os
import re
import typing
from typing import Any

from pydantic import BaseModel, SecretStr

from vdata.teachers.redaction import MASK, MIN_SECRET_LEN, _plain, redact  # noqa: F401  (the one masking function)

NAMING_KEYS = {"model", "served_model_name", "dir", "path", "manifest"}


def env_value_is_secret(key_path: str, value: str) -> bool:
    """Whether a `${VAR}` value at `key_path` ("teachers.writer.model") is kept out of every output."""
    if os.path.exists(value):   # a location (`${HOME}/models/x`): masking it would garble every path
        return False
    key = re.split(r"[.\]]", key_path)[-1]
    return key not in NAMING_KEYS or redact(value) != value   # a credential-shaped value stays masked


def _secret_typed(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_secret_typed(a) for a in typing.get_args(annotation))


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for a in typing.get_args(annotation):
        found = _nested_model(a)
        if found:
            return found
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    s = _plain(value)
    return [s] if s else []


def typed_secrets(data: Any, model: type[BaseModel]) -> list[str]:
    """The values of `data` (a raw mapping, valid or not) that sit in `SecretStr` fields of `model`.

    Works on the mapping, not on a validated model, so a config with an unrelated error still gives up
    its secrets for the error message's redaction."""
    if isinstance(data, BaseModel):
        data = {k: getattr(data, k) for k in type(data).model_fields}
    if not isinstance(data, dict):
        return []
    out: list[str] = []
    for key, value in data.items():
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            continue
        if _secret_typed(field.annotation):
            out += _strings(value)
        elif (inner := _nested_model(field.annotation)) is not None:
            out += typed_secrets(value, inner)
    return out


def teacher_secrets(teachers: Any) -> list[str]:
    """The SecretStr-typed values of a `teachers:` mapping (each entry checked against its backend's model;
    an entry without a known backend against every backend's model)."""
    if not teachers:   # a build without teachers: their config models (pydantic) need not load
        return []
    from vdata.teachers.config import ManagedTeacherConfig, OpenAITeacherConfig, VLLMTeacherConfig

    models = {"openai": OpenAITeacherConfig, "vllm": VLLMTeacherConfig, "managed": ManagedTeacherConfig}
    out: list[str] = []
    for entry in (teachers.values() if isinstance(teachers, dict) else []):
        backend = entry.get("backend") if isinstance(entry, dict) else getattr(entry, "backend", None)
        for model in ([models[backend]] if backend in models else models.values()):
            out += typed_secrets(entry, model)
    return out


def config_text_secrets(text: str) -> list[str]:
    """Literal secret values written into a config text (what `${VAR}` would have kept out of it)."""
    import yaml

    try:
        data = yaml.safe_load(text or "")
    except yaml.YAMLError:
        return []
    if not isinstance(data, dict):
        return []
    from vdata.schemas.storage import StorageConfig

    return teacher_secrets(data.get("teachers") or {}) + typed_secrets(data.get("storage") or {}, StorageConfig)


__all__ = ["MASK", "MIN_SECRET_LEN", "config_text_secrets", "redact", "teacher_secrets", "typed_secrets"]
