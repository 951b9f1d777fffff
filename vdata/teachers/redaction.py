"""Keep credentials out of anything vdata reports (errors, logs, stats, manifests, cards).

`redact` is the one masking function of the project. It lives on the bottom floor so that teachers can
use it; *which* values are secret (SecretStr fields, `${VAR}` values) is decided in
`vdata.schemas.secrets`, which passes them here. Credential-shaped text is masked whoever holds it."""

from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from pydantic import SecretStr

MASK = "<redacted>"
# Shorter values are numbers, booleans and short words: masking them would garble unrelated text, and
# no credential is that short.
MIN_SECRET_LEN = 6

_SHAPES = re.compile(
    r"(?i)(?<=bearer )[A-Za-z0-9._\-~+/=]{6,}"
    r"|\b(?:hf_[A-Za-z0-9]{10,}|sk-[A-Za-z0-9_\-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16})\b")
# Credentials a URL carries: the password of its userinfo ("http://user:PASS@host": basic auth behind a proxy)
# and credential-named query parameters ("?key=…": Gemini/Google, Azure SAS "sig=", S3 presigned "X-Amz-…")
_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@'\"<>]*:)[^/\s@'\"<>]+(?=@)")
_URL_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:api[_-]?key|apikey|key|token|access[_-]?token|id[_-]?token|refresh[_-]?token|auth|"
    r"authorization|sig|signature|secret|client[_-]?secret|password|passwd|pwd|code|x-amz-signature|"
    r"x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential)=)[^&#\s'\"<>]+")
_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")


def _plain(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value if isinstance(value, str) else None


def redact(text: str, secrets: Iterable[Any] = ()) -> str:
    """`text` with every secret value (plain or SecretStr) and every credential-shaped string masked: tokens
    of known shapes, a URL's userinfo password and its credential-named query parameters.

    A value is also found in its JSON-escaped form, so a dumped manifest is covered like plain text."""
    if not text:
        return text
    values: set[str] = set()
    for s in secrets:
        s = _plain(s)
        if s and len(s) >= MIN_SECRET_LEN and not _ENV_REFERENCE.fullmatch(s):
            values.add(s)
            values.add(json.dumps(s)[1:-1])
    for s in sorted(values, key=len, reverse=True):   # a longer secret first: it may contain a shorter one
        text = text.replace(s, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
    text = _URL_QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)
    return _SHAPES.sub(MASK, text)




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


@contextmanager
def redacted_logging(secrets: Iterable[str | None]) -> Iterator[None]:
    """While inside: every record that reaches a root handler (or Python's last-resort handler) has the
    secrets and credential-shaped text masked. On handlers, not loggers: a logger's filter misses its children's records."""
    f = RedactingFilter(secrets)   # with no secret values too: credential-shaped text is masked whoever writes it
    handlers = [h for h in [*logging.getLogger().handlers, logging.lastResort] if h is not None]
    for h in handlers:
        h.addFilter(f)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(f)


__all__ = ["MASK", "MIN_SECRET_LEN", "RedactingFilter", "redact", "redacted_logging"]
