"""VNBench's own sub-task ids for haystack questions, so a build can be scored and reported the way
VNBench is (per sub-task, with 4-rotation circular evaluation).

VNBench (VideoNIAH, arXiv 2406.09367) has nine sub-tasks: three tasks (retrieval, ordering, counting)
times the needle kind. The ids are confirmed in joez17/VideoNIAH evaluation/example_result.jsonl
(`question_id` = "<video>_<type>_<try>", `type` e.g. "ret_insert1") and in the lmms-eval VNBench task
utils (TASK_TYPES: ret_insert1, ret_insert2, ret_edit1, cnt_insert1, cnt_edit1, cnt_edit2, ord_insert1,
ord_insert2, ord_edit1). The needle kinds behind the suffixes follow the paper: "edit" needles are text
edited onto the frames of the video (vdata's text needles in `overlay` style), "insert1" needles are
static images inserted as frames (images, or text cards in `fullframe` style), "insert2" needles are
inserted video clips. `cnt_edit2` (a second edited-object counting variant) has no vdata counterpart and
is never written. vdata's own extra tasks (multihop, localization) and audio needles have no VNBench id
(None).
"""
from __future__ import annotations

_TASK_PREFIX = {"retrieval": "ret", "ordering": "ord", "counting": "cnt"}
VNBENCH_TYPES = ("ret_insert1", "ret_insert2", "ret_edit1", "cnt_insert1", "cnt_edit1", "cnt_edit2",
                 "ord_insert1", "ord_insert2", "ord_edit1")


def needle_variant(kind: str, style: str) -> str | None:
    """VNBench's needle suffix for a needle kind and its on-screen style."""
    if kind == "text":
        return "edit1" if style == "overlay" else "insert1"
    return {"image": "insert1", "clip": "insert2"}.get(kind)


def vnbench_type(task: str, kind: str, style: str) -> str | None:
    """The VNBench sub-task id of a haystack question, or None when VNBench has no such sub-task."""
    prefix, variant = _TASK_PREFIX.get(task), needle_variant(kind, style)
    if prefix is None or variant is None:
        return None
    name = f"{prefix}_{variant}"
    return name if name in VNBENCH_TYPES else None   # e.g. counting clips: not a VNBench sub-task
