"""What of a teacher's definition decides the answers a stage gets: part of that stage's hash.

A stage's own config names its teacher (`teacher: writer`), not what `writer` is. Pointing `writer` at another
model, endpoint or sampling (the step every recipe header asks for) left every stage hash as it was, so a
re-run resumed "nothing to do" and kept the old model's rows under the new config (outside check h25 F16).
"""
from __future__ import annotations

import json
from typing import Any

# Settings that change how a teacher is reached or paced, never what it answers: a rotated key or a longer
# timeout rebuilds nothing. (Credentials stay out of every hash input too.)
TRANSPORT_KEYS = frozenset({"api_key", "headers", "env", "max_concurrency", "timeout_s", "max_retries",
                            "startup_timeout_s", "cache", "resources"})


def _names(value: Any, teachers: dict) -> set[str]:
    """The teacher names a stage config mentions anywhere (`teacher`, `judge`, a list of teachers)."""
    if isinstance(value, str):
        return {value} if value in teachers else set()
    if isinstance(value, dict):
        return set().union(*(_names(v, teachers) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_names(v, teachers) for v in value)) if value else set()
    return set()


def used_teachers(stage_config: dict, teachers: dict[str, dict]) -> dict[str, dict]:
    """{name: its answer-deciding settings} for each teacher the stage config names, sorted by name."""
    return {name: {k: v for k, v in sorted(teachers[name].items()) if k not in TRANSPORT_KEYS}
            for name in sorted(_names(stage_config, teachers)) if isinstance(teachers[name], dict)}


def stage_identity(stage_config: dict, teachers: dict[str, dict]) -> bytes:
    """What a stage's hash takes: its config, and, where it names teachers, what they are (a stage without
    one hashes as it did before teachers counted)."""
    out = json.dumps(stage_config, sort_keys=True).encode()
    if used := used_teachers(stage_config, teachers):
        out += json.dumps(used, sort_keys=True, default=str).encode()
    return out
