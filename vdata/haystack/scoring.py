"""Score model predictions against haystack items: MCQ accuracy (plain and circular) and the open
forms (IoU for localization). The scorers are the ones shipped to lmms-eval as utils.py."""
from __future__ import annotations

import json
from collections import defaultdict

from vdata.schemas import haystack as H

from vdata.lmms_task_utils import LETTERS, extract_letter, interval_iou, parse_interval, score_open  # noqa: F401
from .writers import iter_item_rows, length_label, mme_row


def load_predictions(path: str) -> dict[str, str]:
    """JSONL lines {"question_id": ..., "prediction": ...}; a later line for the same id wins."""
    preds = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                preds[str(obj["question_id"])] = str(obj["prediction"])
            except (json.JSONDecodeError, KeyError) as e:
                raise ValueError(f"{path}:{n}: expected {{\"question_id\": ..., \"prediction\": ...}} ({e})") from e
    return preds


def score_predictions(items_path: str, predictions: dict[str, str], form: str = "mcq") -> dict:
    """Scores overall and per task / length / needle type. Unanswered questions count as wrong."""
    if form not in ("mcq", "open"):
        raise ValueError("form must be mcq or open")
    groups: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in ("task", "length", "needle_type")}
    scores, per_item, ious = [], defaultdict(list), []
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
            per_item[r[H.ITEM_ID]].append(s)
        else:
            s = score_open(mme_row(r), pred or "")
            if r[H.TASK] == "localization":
                ious.append(s)
        scores.append(s)
        groups["task"][r[H.TASK]].append(s)
        groups["length"][length_label(r[H.HAYSTACK_LENGTH_S])].append(s)
        groups["needle_type"][r[H.NEEDLE_TYPE]].append(s)

    def mean(v):
        return round(100.0 * sum(v) / len(v), 2) if v else 0.0

    out = {"form": form, "questions": len(scores), "answered": answered, "score": mean(scores),
           **{f"by_{k}": {name: mean(v) for name, v in sorted(g.items())} for k, g in groups.items()}}
    if form == "mcq":
        out["circular_accuracy"] = mean([float(all(v)) for v in per_item.values()])
    else:
        out["localization_miou"] = mean(ious)
        out["localization_recall_at_0.5"] = mean([float(i >= 0.5) for i in ious])
    return out
