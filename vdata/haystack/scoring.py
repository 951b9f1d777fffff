"""Score model predictions against haystack items: MCQ accuracy (plain and circular) and the open
forms (IoU for localization). The scorers are the ones shipped to lmms-eval as utils.py."""
from __future__ import annotations

from collections import defaultdict

from vdata.metrics import circular_accuracy, percent, read_jsonl, recall_at
from vdata.schemas import haystack as H

from vdata.lmms_task_utils import LETTERS, extract_letter, interval_iou, parse_interval, score_open  # noqa: F401
from .writers import iter_item_rows, length_label, mme_row


def load_predictions(path: str) -> dict[str, str]:
    """JSONL lines {"question_id": ..., "prediction": ...}; a later line for the same id wins."""
    preds = {}
    for n, obj in read_jsonl(path):
        try:
            if isinstance(obj, Exception):
                raise obj
            preds[str(obj["question_id"])] = str(obj["prediction"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: expected {{\"question_id\": ..., \"prediction\": ...}} ({e})") from e
    return preds


def score_predictions(items_path: str, predictions: dict[str, str], form: str = "mcq") -> dict:
    """Scores overall and per task / length / needle type. Unanswered questions count as wrong."""
    if form not in ("mcq", "open"):
        raise ValueError("form must be mcq or open")
    groups: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in ("task", "length", "needle_type")}
    scores, per_item, ious = [], defaultdict(dict), []
    answered = 0
    for r in iter_item_rows(items_path):
        if form == "open" and r[H.ROTATION] != 0:
            continue
        qid = r[H.QUESTION_ID]
        pred = predictions.get(qid)
        answered += pred is not None
        if form == "mcq":
            letter = extract_letter(pred or "", len(r[H.OPTIONS]))
            s = 1.0 if letter == LETTERS[r[H.ANSWER_INDEX]] else 0.0
            per_item[r[H.ITEM_ID]][r[H.ROTATION]] = bool(s)
        else:
            s = score_open(mme_row(r), pred or "")
            if r[H.TASK] == "localization":
                ious.append(s)
        scores.append(s)
        groups["task"][r[H.TASK]].append(s)
        groups["length"][length_label(r[H.HAYSTACK_LENGTH_S])].append(s)
        groups["needle_type"][r[H.NEEDLE_TYPE]].append(s)

    def mean(v):
        return percent(v) or 0.0

    out = {"form": form, "questions": len(scores), "answered": answered, "score": mean(scores),
           **{f"by_{k}": {name: mean(v) for name, v in sorted(g.items())} for k, g in groups.items()}}
    if form == "mcq":
        out["circular_accuracy"] = circular_accuracy(per_item) or 0.0
    else:
        out["localization_miou"] = mean(ious)
        out["localization_recall_at_0.5"] = recall_at(ious, (0.5,))["0.5"] or 0.0
    return out
