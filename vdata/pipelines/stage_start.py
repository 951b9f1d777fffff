"""A stage that cannot start: its `setup()` failed (a model or a file that does not load).

No row could pass such a stage, so the build stops with one line naming it (`stages[3].clip_embed could not
start: ...`, said as the config's problem) instead of a traceback from inside the executor. From a Ray worker
only the error's text reaches the driver (Ray Data re-raises a UDF's error without its cause), so the line is
also read back from that text, as teachers.types.find_refusal reads a refused teacher.
"""
from __future__ import annotations

import re

from vdata.errors import find_in_chain


class StageStartError(RuntimeError):
    """A stage's `setup()` failed (a model or file that does not load): no row could pass it, so the build stops
    with one line naming the stage, instead of a traceback from inside the executor."""

    def __init__(self, index: int, name: str, detail: str) -> None:
        super().__init__(f"stages[{index}].{name} could not start: {detail}")
        self.index, self.name, self.detail = index, name, detail

    def __reduce__(self):   # raised in a Ray worker, it is pickled to the driver
        return (type(self), (self.index, self.name, self.detail))


_START_TEXT = re.compile(r"StageStartError: stages\[(?P<index>\d+)\]\.(?P<name>\w+) could not start: (?P<detail>[^\n]*)")


def find_start_error(exc: BaseException | None) -> StageStartError | None:
    """The StageStartError behind `exc`: itself, a cause or context, or the text Ray Data's wrapper carries
    from a worker (vdata.errors.find_in_chain)."""
    return find_in_chain(exc, StageStartError, _START_TEXT,
                         lambda found: StageStartError(int(found["index"]), found["name"], found["detail"]))
