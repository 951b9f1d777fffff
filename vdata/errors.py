"""Finding an error of one kind behind another, within a process and across Ray's.

Ray Data re-raises a worker's error as a UserCodeException pickled without its `__cause__`: the remote
traceback's text, which RayTaskError carries, is all that crosses the process boundary. So a search for,
say, a teacher's refusal walks the cause chain and also reads each error's text.
"""
from __future__ import annotations

import re
from typing import Callable, TypeVar

E = TypeVar("E", bound=BaseException)


def find_in_chain(exc: BaseException | None, kind: type[E], pattern: re.Pattern,
                  from_match: Callable[[re.Match], E], from_error: Callable[[E], E] = lambda e: e) -> E | None:
    """The `kind` error behind `exc`: itself, a cause or a context (as `from_error` gives it back), or the
    first one whose text `pattern` finds (made by `from_match`). None when there is none."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, kind):
            return from_error(exc)
        found = pattern.search(str(exc))
        if found:
            return from_match(found)
        exc = exc.__cause__ or exc.__context__
    return None


__all__ = ["find_in_chain"]
