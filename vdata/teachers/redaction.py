"""Keep credentials out of anything a teacher reports (errors, logs, stats)."""

from __future__ import annotations

import logging
import re
from typing import Iterable

_BEARER = re.compile(r"(?i)(bearer\s+|api[_-]?key[\"'=:\s]+)([A-Za-z0-9._\-~+/]{6,})")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Replace every known secret value, and anything shaped like ``Bearer X`` / ``api_key=X``."""
    if not text:
        return text
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return _BEARER.sub(lambda m: m.group(1) + "***", text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs the given secrets from records (message and args)."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:
            return True
        clean = redact(msg, self.secrets)
        if clean != msg:
            record.msg, record.args = clean, ()
        return True


__all__ = ["RedactingFilter", "redact"]
