"""A config file read as YAML text, strictly: UTF-8 (a leading BOM allowed), every mapping key once.

Why a loader of its own (PyYAML's SafeLoader, one method more): YAML lets a later key silently replace
an earlier one (`stages:` twice, `output:` twice after a paste), so half a config would be dropped
without a word. Errors name the file and the line, never `<unicode string>`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


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
        raise ConfigReadError(f"{path}: not valid YAML: {str(e).replace('<unicode string>', str(path))}") from None
