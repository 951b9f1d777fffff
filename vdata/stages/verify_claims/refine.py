"""Correction in rounds (VIGC's iterative correction): a failing answer is rewritten by the teacher from
the evidence and its unsupported claims, the rewrite is checked again by the same tiers, and a rewrite
that still fails goes into the next round with its own open claims — up to `correct_rounds` rounds.

Every round is kept in the sample's `refine_rounds` (round 0 is the check of the answer as generated),
so a dataset shows what each round changed and why the last one passed or not. Only a passing rewrite
replaces the answer; a sample that fails every round is rejected with its first verdicts, as before.
"""
from __future__ import annotations

from typing import Any, Protocol

from vdata.schemas import records as R


class _Checker(Protocol):   # the stage, as far as rounds need it
    name: str

    def _correct(self, items: list, images: dict) -> list: ...

    def _failure(self, it: Any) -> str | None: ...

    @staticmethod
    def ratio(it: Any) -> float: ...


def round_entry(stage: str, number: int, kind: str, text: str | None, ratio: float | None, passed: bool) -> dict:
    """One `refine_rounds` item."""
    return {"round": number, "stage": stage, "kind": kind, "text": text,
            "supported_ratio": None if ratio is None else float(ratio), "passed": passed}


def checked_round(stage: _Checker, it: Any) -> dict:
    """Round 0: the answer as generated, as the tiers judged it."""
    return round_entry(stage.name, 0, "check", it.row.get(R.ANSWER), stage.ratio(it), stage._failure(it) is None)


def correct_in_rounds(stage: _Checker, todo: dict[int, Any], rounds: dict[int, list[dict]],
                      max_rounds: int) -> dict[int, Any]:
    """Rewrite the failing items of `todo` (index → item) for up to `max_rounds` rounds, each round
    re-checked; appends every round to `rounds[index]`. Returns index → the rewrite that passed."""
    passed: dict[int, Any] = {}
    current = dict(todo)
    for number in range(1, max_rounds + 1):
        if not current:
            break
        keys = list(current)
        rewrites = stage._correct([current[k] for k in keys], {})
        following: dict[int, Any] = {}
        for k, fixed in zip(keys, rewrites):
            if fixed is None:      # the teacher failed: nothing to check, no further round for this sample
                rounds[k].append(round_entry(stage.name, number, "correct", None, None, False))
                continue
            ok = stage._failure(fixed) is None
            rounds[k].append(round_entry(stage.name, number, "correct", fixed.row.get(R.ANSWER), stage.ratio(fixed), ok))
            if ok:
                passed[k] = fixed
            else:
                following[k] = fixed
        current = following
    return passed
