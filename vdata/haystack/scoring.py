"""Score model predictions against haystack items: MCQ accuracy (plain and circular) and the open
forms (IoU for localization). The scorers are the ones shipped to lmms-eval as utils.py.

Like `vdata score`, bad predictions never change the number silently: ids that match no question (with a
hint when they are item ids without the `_rN` rotation suffix), duplicate ids, null predictions, unanswered
questions, replies with no option letter and malformed or reversed intervals are counted by reason under
`problems` in the report, and summed up in one warning line (the "vdata" logger: stderr by default).
A file in which no id matches a question is an error, not a score of 0.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict

from vdata.metrics import circular_accuracy, percent, read_jsonl, recall_at
from vdata.schemas import haystack as H

from vdata.lmms_task_utils import LETTERS, extract_letter, interval_iou, parse_interval, score_open  # noqa: F401
from .writers import iter_item_rows, length_label, mme_row, require_complete

ID_KEYS = ("question_id", "id", "sample_id")   # the keys `vdata score` reads, so one file suits both
EXAMPLES_PER_PROBLEM = 5
_log = logging.getLogger("vdata")


class Predictions(dict):
    """question id -> reply, as read from a JSONL file, with every id the file names (`ids`: also those
    whose prediction is null) and what reading it found wrong (`problems`: reason -> ids or lines)."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.problems: dict[str, list[str]] = defaultdict(list)


def json_array_error(path: str) -> str | None:
    """The message for a predictions file written as one JSON array instead of JSONL; None otherwise."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if not text.lstrip().startswith("["):
        return None
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return None   # a line that is an array among others: the line-by-line reading reports it
    if not isinstance(whole, list):
        return None
    return (f"{path} is one JSON array, not JSONL: write one JSON object per line "
            f"(`jq -c '.[]' {path}` converts it)")


def load_predictions(path: str) -> Predictions:
    """JSONL lines {"question_id": ..., "prediction": ...} (`id` and `sample_id` are read too, as by
    `vdata score`). A line that is not such an object, a JSON array file and a file without a single
    prediction raise ValueError naming the problem. A repeated id is counted (`duplicate`, or
    `duplicate_conflict` when the replies differ; the later line wins, as in `vdata score`); a null
    prediction is counted (`null_prediction`) and leaves the question unanswered."""
    array = json_array_error(path)
    if array:
        raise ValueError(array)
    preds = Predictions()
    for n, obj in read_jsonl(path):
        where = f"{path}:{n}"
        if isinstance(obj, Exception):
            raise ValueError(f"{where}: not JSON ({obj})")
        if not isinstance(obj, dict):
            raise ValueError(f'{where}: expected an object {{"question_id": ..., "prediction": ...}}, '
                             f"got a JSON {type(obj).__name__}")
        qid = next((obj[k] for k in ID_KEYS if obj.get(k) is not None), None)
        if qid is None or "prediction" not in obj:
            missing = f"an id ({' / '.join(ID_KEYS)})" if qid is None else "a \"prediction\""
            raise ValueError(f'{where}: expected {{"question_id": ..., "prediction": ...}}; this line has no {missing}')
        qid, reply = str(qid), obj["prediction"]
        if qid in preds.ids:
            same = preds.get(qid) == (None if reply is None else str(reply))
            preds.problems["duplicate" if same else "duplicate_conflict"].append(f"{qid} (line {n})")
        preds.ids.add(qid)
        if reply is None:
            preds.problems["null_prediction"].append(qid)
            preds.pop(qid, None)
        else:
            preds[qid] = str(reply)
    if not preds.ids:
        raise ValueError(f"{path} holds no predictions (an empty file)")
    return preds


def _unknown_ids(ids: set[str], question_ids: set[str], problems: dict) -> str | None:
    """Counts the prediction ids that match no question; the hint when they look like item ids."""
    unknown = sorted(q for q in ids if q not in question_ids)
    problems["unknown_id"] += unknown
    bare = [q for q in unknown if f"{q}_r0" in question_ids]
    if not bare:
        return None
    return (f"{len(bare)} of them are item ids: a question id ends in its rotation, _r0 to _r"
            f"{max(int(q.rpartition('_r')[2]) for q in question_ids if q.startswith(bare[0] + '_r'))}; "
            f"did you mean {bare[0]}_r0?")


def _problem_report(problems: dict, hint: str | None) -> dict:
    out = {k: {"count": len(v), "examples": v[:EXAMPLES_PER_PROBLEM]} for k, v in sorted(problems.items()) if v}
    if hint:
        out["unknown_id"]["hint"] = hint
    return out


def _one_line(problems: dict) -> str:
    """The problems in one line: each reason's count, with an example and the hint for unknown ids."""
    return "; ".join(f"{v['count']} {k}" + (f" (e.g. {v['examples'][0]!r}" + (f"; {v['hint']}" if "hint" in v else "")
                                             + ")" if k == "unknown_id" else "") for k, v in problems.items())


def score_predictions(items_path: str, predictions: dict[str, str], form: str = "mcq") -> dict:
    """Scores overall and per task / length / needle type, and the prediction problems found (see the
    module doc). Unanswered questions count as wrong. Raises ValueError when no prediction id matches
    a question of the items."""
    if form not in ("mcq", "open"):
        raise ValueError("form must be mcq or open")
    require_complete(items_path)
    groups: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in ("task", "length", "needle_type")}
    scores, per_item, ious = [], defaultdict(dict), []
    problems: dict[str, list[str]] = defaultdict(list)
    for reason, where in getattr(predictions, "problems", {}).items():
        problems[reason] += where
    question_ids: set[str] = set()
    answered = 0
    for r in iter_item_rows(items_path):
        qid = r[H.QUESTION_ID]
        question_ids.add(qid)
        if form == "open" and r[H.ROTATION] != 0:
            continue
        pred = predictions.get(qid)
        answered += pred is not None
        if pred is None:
            problems["missing"].append(qid)
        if form == "mcq":
            letter = extract_letter(pred or "", len(r[H.OPTIONS]))
            if pred is not None and not letter:
                problems["invalid_letter"].append(qid)
            s = 1.0 if letter == LETTERS[r[H.ANSWER_INDEX]] else 0.0
            per_item[r[H.ITEM_ID]][r[H.ROTATION]] = bool(s)
        else:
            s = score_open(mme_row(r), pred or "")
            if r[H.TASK] == "localization":
                span = parse_interval(pred or "")
                if pred is not None and (span is None or span[1] < span[0]):   # scored 0, never swapped
                    problems["bad_interval" if span is None else "reversed_interval"].append(qid)
                ious.append(s)
        scores.append(s)
        groups["task"][r[H.TASK]].append(s)
        groups["length"][length_label(r[H.HAYSTACK_LENGTH_S])].append(s)
        groups["needle_type"][r[H.NEEDLE_TYPE]].append(s)
    ids = getattr(predictions, "ids", set(predictions))
    hint = _unknown_ids(ids, question_ids, problems)
    report_problems = _problem_report(problems, hint)
    if not ids & question_ids:
        raise ValueError(f"no prediction id matches a question of {items_path} ({_one_line(report_problems)})")
    if report_problems:
        _log.warning("prediction problems: %s (details under \"problems\")", _one_line(report_problems))

    def mean(v):
        return percent(v) or 0.0

    out = {"form": form, "questions": len(scores), "answered": answered, "score": mean(scores),
           **{f"by_{k}": {name: mean(v) for name, v in sorted(g.items())} for k, g in groups.items()}}
    if form == "mcq":
        out["circular_accuracy"] = circular_accuracy(per_item) or 0.0
    else:
        out["localization_miou"] = mean(ious)
        out["localization_recall_at_0.5"] = recall_at(ious, (0.5,))["0.5"] or 0.0
    out["problems"] = report_problems
    return out
