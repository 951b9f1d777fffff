"""A config file read as YAML text, strictly: UTF-8 (a leading BOM allowed), every mapping key once.

Why a loader of its own (PyYAML's SafeLoader, one method more): YAML lets a later key silently replace
an earlier one (`stages:` twice, `output:` twice after a paste), so half a config would be dropped
without a word. Errors name the file and the line, never `<unicode string>`.

Also `${VAR}` interpolation (`interpolate_env`), which every config kind (build, haystack, a finished
build's config text) applies to the parsed YAML before validating it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from vdata.schemas.secrets import env_value_is_secret


class ConfigError(ValueError):
    """A config problem; the message names every offending key path. `partial`: where the top level
    validated, the config with the stages that did (the planner looks for more problems in it)."""

    partial: Any = None   # a config.BuildConfig (this module is below config.py: no import of it)


class ConfigReadError(ValueError):
    """The file cannot be read as a config (the caller says it as its own ConfigError)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":   # `<<: *anchor` may repeat
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:   # an unhashable key: SafeLoader's own error says it
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first on line {first}): the second would silently "
                    "replace the first", key_node.start_mark)
        return super().construct_mapping(node, deep)


def read_config_file(path: str | Path) -> tuple[str, Any]:
    """(text, parsed YAML) of the config at `path`; ConfigReadError says what is wrong, naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigReadError(f"cannot read config {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:   # a video or a Latin-1 file passed by mistake
        raise ConfigReadError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); a config "
                              "is a YAML file written in UTF-8") from None
    try:
        return text, yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        hint = ""
        mark = getattr(e, "problem_mark", None)
        line = text.splitlines()[mark.line] if mark is not None and mark.line < len(text.splitlines()) else ""
        if re.search(r"[:,]\s*\$\{", line):   # `{key: ${VAR}}`: the `{` of ${ ends a flow mapping's value
            hint = ("\n  hint: inside {...} a ${VAR} value must be quoted: api_key: \"${OPENAI_API_KEY}\" "
                    "(or write the mapping in block style, one key per line)")
        raise ConfigReadError(f"{path}: not valid YAML: {str(e).replace('<unicode string>', str(path))}{hint}") from None


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(data: Any, path: str = "", found: list[str] | None = None,
                    missing: list[str] | None = None) -> Any:
    """Replace ${VAR} / ${VAR:-default} in every string; an unset VAR without default names its key.

    `found` collects the values taken from the environment that are secret (`secrets.env_value_is_secret`:
    not an existing location, nor a model or folder name). `missing` collects one "key.path: environment
    variable X is not set" per unset variable, leaving its `${X}` text in place, so that the caller
    reports it with the config's other problems (one round of fixes, not one per variable); without
    `missing`, every unset variable is raised together as one ConfigError. Messages name the variable,
    never a value."""
    if missing is None:
        missing = []
        out = interpolate_env(data, path, found, missing)
        if missing:
            raise ConfigError("\n".join(missing) if len(missing) == 1 else
                              "invalid config:\n  " + "\n  ".join(missing))
        return out
    if isinstance(data, dict):
        return {k: interpolate_env(v, f"{path}.{k}" if path else str(k), found, missing) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_env(v, f"{path}[{i}]", found, missing) for i, v in enumerate(data)]
    if isinstance(data, str):
        def sub(m):
            value = os.environ.get(m.group(1))
            if value is None:
                if m.group(2) is None:
                    missing.append(f"{path or '(top level)'}: environment variable {m.group(1)} is not set")
                    return m.group(0)
                return m.group(2)
            if found is not None and env_value_is_secret(path, value):
                found.append(value)
            return value
        return _ENV.sub(sub, data)
    return data


def with_unset(unset: list[str], problems: list[str]) -> list[str]:
    """The unset-variable lines `interpolate_env` collected, then the other problems, less a validation error
    at a key an unset variable already names (an unset `${PORT}` is also "not a number": that says nothing
    more). Both are "key.path: message" lines."""
    at = {line.split(": environment variable ", 1)[0] for line in unset}
    return unset + [p for p in problems if p.split(": ", 1)[0] not in at]


def raw_teacher_refs(data: Any, path: str = "") -> list[tuple[str, str]]:
    """(key path, name) of each teacher an unvalidated stage mapping names: a text under a `teacher` or
    `judge` key, or in a `teachers` list, at any depth. For a stage whose config has other errors, so that
    an unknown teacher is reported in the same round as them."""
    out: list[tuple[str, str]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        if key in ("teacher", "judge") and isinstance(value, str):
            out.append((where, value))
        elif key == "teachers" and isinstance(value, list):
            out.extend((f"{where}[{i}]", name) for i, name in enumerate(value) if isinstance(name, str))
        else:
            out.extend(raw_teacher_refs(value, where))
    return out
