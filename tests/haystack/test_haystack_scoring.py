"""The scorers (the same code ships to lmms-eval as utils.py): letters, intervals and IoU, open forms,
and whole prediction files scored against items (plain and circular accuracy)."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from .haystack_helpers import haystack_config
from vdata.haystack import build_haystack
from vdata.lmms_task_utils import (extract_letter, interval_iou, label_found, parse_count, parse_interval,
                                  score_open)
from vdata.haystack.scoring import load_predictions, score_predictions
from vdata.schemas import haystack as H


def test_interval_iou_and_parsing():
    assert interval_iou((10, 20), (10, 20)) == 1.0
    assert interval_iou((10, 20), (15, 25)) == pytest.approx(5 / 15)
    assert interval_iou((0, 5), (5, 9)) == 0.0
    assert interval_iou(None, (1, 2)) == 0.0 and interval_iou((3, 3), (3, 3)) == 0.0
    assert parse_interval("from 12.5 to 20 seconds") == (12.5, 20.0)
    assert parse_interval("1:05 - 1:10") == (65.0, 70.0)
    assert parse_interval("it ends at 30 and starts at 12") == (12.0, 30.0)
    assert parse_interval("around 12 s") is None


def test_letters_counts_and_labels():
    assert extract_letter("B", 4) == "B" and extract_letter("(C) blue circle", 4) == "C"
    assert extract_letter("The answer is D.", 4) == "D" and extract_letter("Answer: A", 4) == "A"
    assert extract_letter("E", 4) == "" and extract_letter("I cannot tell", 4) == ""
    assert parse_count("It appeared three times.") == 3 and parse_count("twice") == 2 and parse_count("7") == 7
    assert parse_count("no idea") is None
    assert label_found("I saw a Red Square.", "red square") and not label_found("a red circle", "blue square")


def test_open_scores_per_task():
    base = {"answer_start_s": 10.0, "answer_end_s": 12.0, "open_answer": "3"}
    assert score_open({**base, "task_type": "localization", "answer_labels": ["x"]}, "10.0 - 12.0") == 1.0
    assert score_open({**base, "task_type": "localization", "answer_labels": ["x"]}, "11 - 13") == pytest.approx(1 / 3)
    assert score_open({**base, "task_type": "counting", "answer_labels": ["x"]}, "three") == 1.0
    assert score_open({**base, "task_type": "counting", "answer_labels": ["x"]}, "4") == 0.0
    order = {**base, "task_type": "ordering", "answer_labels": ["red square", "blue circle", "yellow star"]}
    assert score_open(order, "red square -> blue circle -> yellow star") == 1.0
    assert score_open(order, "blue circle, red square, yellow star") == 0.0
    retrieval = {**base, "task_type": "retrieval", "answer_labels": ["red square", "blue circle"]}
    assert score_open(retrieval, "I saw a blue circle") == 0.5


def test_prediction_files_are_scored(hs_root, tmp_path):
    result = build_haystack(haystack_config(hs_root, "score", needles_per_item=[2, 3]), render="manifest",
                            out_dir=str(tmp_path / "o"))
    rows = pq.read_table(result.paths["items"]).to_pylist()
    letters = "ABCD"
    perfect = tmp_path / "perfect.jsonl"
    perfect.write_text("\n".join(json.dumps({"question_id": r[H.QUESTION_ID], "prediction": letters[r[H.ANSWER_INDEX]]})
                                 for r in rows))
    report = score_predictions(result.paths["items"], load_predictions(str(perfect)))
    assert report["score"] == 100.0 and report["circular_accuracy"] == 100.0 and report["answered"] == len(rows)
    # Always answering "A" is right on a quarter of the rows (answers are balanced) and on no item circularly.
    always_a = {r[H.QUESTION_ID]: "A" for r in rows}
    report = score_predictions(result.paths["items"], always_a)
    assert report["score"] == pytest.approx(25.0, abs=0.01) and report["circular_accuracy"] == 0.0
    assert set(report["by_task"]) == {"retrieval", "ordering", "counting", "multihop", "localization"}
    open_preds = {r[H.QUESTION_ID]: r[H.OPEN_ANSWER] for r in rows if r[H.ROTATION] == 0}
    report = score_predictions(result.paths["items"], open_preds, form="open")
    assert report["questions"] == len(open_preds) and report["score"] > 99.0
    assert report["localization_recall_at_0.5"] == 100.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": "x"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_predictions(str(bad))
