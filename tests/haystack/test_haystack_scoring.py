"""The scorers (the same code ships to lmms-eval as utils.py): letters, intervals and IoU, open forms,
and whole prediction files scored against items (plain and circular accuracy), with the problems of a
predictions file counted and reported as `vdata score` does."""
from __future__ import annotations

import json
import logging
from collections import defaultdict

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from .haystack_helpers import haystack_config
from vdata.cli import main
from vdata.haystack import build_haystack
from vdata.haystack.scoring import load_predictions, score_predictions
from vdata.haystack.writers import mme_row
from vdata.lmms_task_utils import (extract_letter, interval_iou, label_found, parse_count, parse_interval,
                                  score_open, token_f1)
from vdata.schemas import haystack as H


@pytest.fixture(scope="module")
def scored(hs_root, tmp_path_factory):
    """A real benchmark (every task, every needle type, 2 and 3 needles, manifest render): its items
    path, its output folder and its rows."""
    out = tmp_path_factory.mktemp("scored") / "o"
    result = build_haystack(haystack_config(hs_root, "score", needles_per_item=[2, 3]), render="manifest",
                            out_dir=str(out))
    return result.paths["items"], out, pq.read_table(result.paths["items"]).to_pylist()


def _jsonl(path, lines) -> str:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines))
    return str(path)


def test_interval_iou_and_parsing():
    assert interval_iou((10, 20), (10, 20)) == 1.0
    assert interval_iou((10, 20), (15, 25)) == pytest.approx(5 / 15)
    assert interval_iou((0, 5), (5, 9)) == 0.0
    assert interval_iou(None, (1, 2)) == 0.0 and interval_iou((3, 3), (3, 3)) == 0.0
    assert parse_interval("from 12.5 to 20 seconds") == (12.5, 20.0)
    assert parse_interval("1:05 - 1:10") == (65.0, 70.0)
    assert parse_interval("it ends at 30 and starts at 12") == (12.0, 30.0)
    assert parse_interval("around 12 s") is None


def test_intervals_with_decimal_commas_exponents_and_reversed_ends():
    assert parse_interval("12,5 - 20,0") == (12.5, 20.0)           # was (5, 12): the comma split the numbers
    assert parse_interval("from 1.2e1 to 2e1 s") == (12.0, 20.0)
    assert parse_interval("1,200 - 1,300") == (1200.0, 1300.0)       # three digits after a comma: thousands
    assert parse_interval("[12,20]") == (12.0, 20.0)                  # no second number: the comma separates
    # a reversed interval stays reversed, for the scorers to count as a problem, and is worth nothing
    assert parse_interval("20 - 12.5") == (20.0, 12.5)
    assert interval_iou(parse_interval("20 - 12.5"), (12.5, 20.0)) == 0.0


def test_letters_counts_and_labels():
    assert extract_letter("B", 4) == "B" and extract_letter("(C) blue circle", 4) == "C"
    assert extract_letter("The answer is D.", 4) == "D" and extract_letter("Answer: A", 4) == "A"
    assert extract_letter("E", 4) == "" and extract_letter("I cannot tell", 4) == ""
    assert parse_count("It appeared three times.") == 3 and parse_count("twice") == 2 and parse_count("7") == 7
    assert parse_count("no idea") is None
    assert label_found("I saw a Red Square.", "red square") and not label_found("a red circle", "blue square")


@pytest.mark.parametrize("reply, options, letter", [
    ("A red square was shown, so (C).", 4, "C"),     # the article "A" is no answer, the bracketed C is
    ("I think it is B", 9, "B"),                     # the pronoun "I" is no answer, even with an option I
    ("I think B.", 10, "B"),
    ("I'm sure it's D", 9, "D"),
    ("B, because A is wrong", 4, "B"),               # a leading letter followed by , : ) or .
    ("C: the blue circle", 4, "C"),
    ("b", 4, "B"), ("(b)", 4, "B"), ("Answer: c", 4, "C"),   # a lone lowercase letter
    ("a red square", 4, ""),                         # ... but not the article opening prose
    ("I", 9, "I"), ("**B**", 4, "B"), ("Option B", 4, "B"), ("The answer is: B", 4, "B"),
    ("I think the answer is C because A is wrong", 4, "C"),
    ("C and D are wrong, so B", 4, ""),              # three letters, none marked: no answer
])
def test_letter_extractor_reads_common_replies(reply, options, letter):
    assert extract_letter(reply, options) == letter


def test_counting_reads_the_number_that_answers():
    assert parse_count("It appeared in the 20 s video 2 times") == 2
    assert parse_count("In 24 seconds I counted 3") == 3
    assert parse_count("It was never shown.") == 0 and parse_count("0") == 0
    assert parse_count("twice, in the first 10 s") == 2


def test_open_scores_per_task():
    base = {"answer_start_s": 10.0, "answer_end_s": 12.0, "open_answer": "3"}
    assert score_open({**base, "task_type": "localization", "answer_labels": ["x"]}, "10.0 - 12.0") == 1.0
    assert score_open({**base, "task_type": "localization", "answer_labels": ["x"]}, "11 - 13") == pytest.approx(1 / 3)
    assert score_open({**base, "task_type": "counting", "answer_labels": ["x"]}, "three") == 1.0
    assert score_open({**base, "task_type": "counting", "answer_labels": ["x"]}, "4") == 0.0
    order = {**base, "task_type": "ordering", "answer_labels": ["red square", "blue circle", "yellow star"]}
    assert score_open(order, "red square -> blue circle -> yellow star") == 1.0
    assert score_open(order, "blue circle, red square, yellow star") == 0.0
    # restating the same order is fine; a second, different order is a hedge worth nothing
    assert score_open(order, "red square, blue circle, yellow star. So red square came first.") == 1.0
    assert score_open(order, "red square -> blue circle -> yellow star, or red square -> yellow star -> blue circle") == 0.0
    retrieval = {**base, "task_type": "retrieval", "answer_labels": ["red square", "blue circle"],
                 "options": ["A. green star", "B. blue circle", "C. white moon", "D. pink heart"]}
    assert score_open(retrieval, "I saw a blue circle") == pytest.approx(2 / 3)     # F1: one of two, nothing wrong
    assert score_open(retrieval, "red square; blue circle; green star") == pytest.approx(0.8)   # an option too many
    assert score_open(retrieval, "red square; blue circle; orange kite") == pytest.approx(0.8)  # a name too many
    assert score_open(retrieval, "red square and blue circle, but I'm not sure") == 1.0       # prose is no name
    assert score_open(retrieval, "Red Sqaure; blue circle") == 1.0                              # a near-spelling


def test_open_form_rewards_the_answer_not_every_candidate(scored):
    """On a real benchmark: the gold open answer scores 1 on every task, and the hedges that used to
    score 1 (every candidate listed, both orders, the right labels in the wrong order) do not."""
    _, _, rows = scored
    candidates = defaultdict(set)   # per task and needle type: every label offered or answered
    for r in rows:
        if r[H.TASK] in ("retrieval", "multihop"):
            candidates[r[H.TASK], r[H.NEEDLE_TYPE]].update(r[H.OPTIONS] + r[H.ANSWER_LABELS])
    checked = defaultdict(int)
    for r in (r for r in rows if r[H.ROTATION] == 0):
        doc, labels, task = mme_row(r), r[H.ANSWER_LABELS], r[H.TASK]
        assert score_open(doc, doc["open_answer"]) == 1.0, (r[H.ITEM_ID], doc["open_answer"])
        if task in ("retrieval", "multihop"):
            everything = "; ".join(sorted(candidates[task, r[H.NEEDLE_TYPE]]))
            n, wrong = len(labels), len(r[H.OPTIONS]) - 1     # at least the options that are no answer
            assert score_open(doc, everything) <= 2 * n / (2 * n + wrong) + 1e-9, (r[H.ITEM_ID], everything)
            if n > 1:   # "in order of appearance": the right labels reversed are not the answer
                assert score_open(doc, "; ".join(reversed(labels))) < 1.0
        elif task == "ordering":
            forward, backward = " -> ".join(labels), " -> ".join(reversed(labels))
            assert score_open(doc, backward) == 0.0
            assert score_open(doc, f"{forward} or {backward}") == 0.0
            assert score_open(doc, f"{backward}, or maybe {forward}") == 0.0
        elif task == "counting":
            said = f"It appeared in the {r[H.HAYSTACK_LENGTH_S]:g} s video {doc['open_answer']} times."
            assert score_open(doc, said) == 1.0, said
        else:
            start, end = doc["open_answer"].split(" - ")
            assert score_open(doc, f"{end} - {start}") == 0.0
        checked[task] += 1
    assert set(checked) == {"retrieval", "ordering", "counting", "multihop", "localization"}


@pytest.mark.parametrize("label", ["ЗЕЛЁНЫЙ СЛОН", "日本語テキスト", "ΑΛΦΑ ΒΗΤΑ", "Café Crème Brûlée", "PLAIN ASCII ONE"])
def test_labels_in_any_script_score_against_themselves_only(label):
    pool = ["ЗЕЛЁНЫЙ СЛОН", "日本語テキスト", "ΑΛΦΑ ΒΗΤΑ", "Café Crème Brûlée", "PLAIN ASCII ONE", "PLAIN ASCII TWO"]
    others = [x for x in pool if x != label]
    doc = {"task_type": "retrieval", "answer_labels": [label],
           "options": [f"{c}. {x}" for c, x in zip("ABCD", [label, *others[:3]])]}
    assert score_open(doc, label) == 1.0 and score_open(doc, label.lower()) == 1.0
    assert score_open(doc, f"答えは{label}です") == 1.0 and score_open(doc, f"Это «{label}».") == 1.0
    assert [score_open(doc, x) for x in others] == [0.0] * len(others)
    assert token_f1(label.lower(), label) == 1.0 and token_f1(others[0], label) == 0.0
    order = {"task_type": "ordering", "answer_labels": [label, others[0]]}
    assert score_open(order, f"{label} -> {others[0]}") == 1.0 and score_open(order, f"{others[0]} -> {label}") == 0.0


def test_prediction_files_are_scored(scored, tmp_path):
    items, _, rows = scored
    letters = "ABCD"
    perfect = _jsonl(tmp_path / "perfect.jsonl", [{"question_id": r[H.QUESTION_ID], "prediction": letters[r[H.ANSWER_INDEX]]}
                                                  for r in rows])
    report = score_predictions(items, load_predictions(perfect))
    assert report["score"] == 100.0 and report["circular_accuracy"] == 100.0 and report["answered"] == len(rows)
    assert report["problems"] == {}
    # Always answering "A" is right on a quarter of the rows (answers are balanced) and on no item circularly.
    always_a = {r[H.QUESTION_ID]: "A" for r in rows}
    report = score_predictions(items, always_a)
    assert report["score"] == pytest.approx(25.0, abs=0.01) and report["circular_accuracy"] == 0.0
    assert set(report["by_task"]) == {"retrieval", "ordering", "counting", "multihop", "localization"}
    open_preds = {r[H.QUESTION_ID]: r[H.OPEN_ANSWER] for r in rows if r[H.ROTATION] == 0}
    report = score_predictions(items, open_preds, form="open")
    # the open answers are the gold, times printed to 0.01 s included: 100, not 99.99
    assert report["questions"] == len(open_preds) and report["score"] == 100.0
    assert report["localization_miou"] == 100.0 and report["localization_recall_at_0.5"] == 100.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": "x"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_predictions(str(bad))


def test_prediction_problems_are_counted_and_reported(scored, tmp_path, caplog):
    """What `vdata score` counts, the haystack scorer counts too: unknown ids (with a hint for item ids
    missing their rotation), duplicates, null predictions, replies with no letter, reversed intervals."""
    items, _, rows = scored
    gold = [{"question_id": r[H.QUESTION_ID], "prediction": "ABCD"[r[H.ANSWER_INDEX]]} for r in rows]
    first, second = rows[0][H.QUESTION_ID], rows[1][H.QUESTION_ID]
    lines = [gold[0], *gold[3:], {"question_id": "no-such-item_r0", "prediction": "A"},
             {"question_id": rows[0][H.ITEM_ID], "prediction": "A"},                     # the item id, no _r0
             {"question_id": first, "prediction": "ABCD"[(rows[0][H.ANSWER_INDEX] + 1) % 4]},   # a conflicting repeat
             {"question_id": second, "prediction": None},                              # null: unanswered
             {"question_id": rows[2][H.QUESTION_ID], "prediction": "I cannot tell"}]
    with caplog.at_level(logging.WARNING, logger="vdata"):
        report = score_predictions(items, load_predictions(_jsonl(tmp_path / "messy.jsonl", lines)))
    problems = report["problems"]
    assert {k: v["count"] for k, v in problems.items()} == {
        "duplicate_conflict": 1, "invalid_letter": 1, "missing": 1, "null_prediction": 1, "unknown_id": 2}
    assert problems["duplicate_conflict"]["examples"] == [f"{first} (line {len(rows) + 1})"]
    assert problems["null_prediction"]["examples"] == problems["missing"]["examples"] == [second]
    assert problems["unknown_id"]["examples"] == sorted(["no-such-item_r0", rows[0][H.ITEM_ID]])
    assert f"did you mean {rows[0][H.ITEM_ID]}_r0?" in problems["unknown_id"]["hint"]
    assert report["answered"] == len(rows) - 1 and report["score"] == pytest.approx(100 * (len(rows) - 3) / len(rows), abs=0.01)
    assert "2 unknown_id" in caplog.text and "1 duplicate_conflict" in caplog.text

    # the keys `vdata score` reads are read here too
    for key in ("id", "sample_id"):
        keyed = _jsonl(tmp_path / f"{key}.jsonl", [{key: g["question_id"], "prediction": g["prediction"]} for g in gold])
        assert score_predictions(items, load_predictions(keyed))["score"] == 100.0
    # a localization reply with its ends reversed is counted, not swapped
    loc = next(r for r in rows if r[H.TASK] == "localization" and r[H.ROTATION] == 0)
    start, end = loc[H.OPEN_ANSWER].split(" - ")
    report = score_predictions(items, {loc[H.QUESTION_ID]: f"{end} - {start}"}, form="open")
    assert report["problems"]["reversed_interval"]["examples"] == [loc[H.QUESTION_ID]]
    assert report["localization_miou"] == 0.0


def test_unusable_prediction_files_are_errors(scored, tmp_path):
    items, _, rows = scored
    by_item = _jsonl(tmp_path / "items.jsonl", [{"question_id": r[H.ITEM_ID], "prediction": "A"}
                                                for r in rows if r[H.ROTATION] == 0])
    with pytest.raises(ValueError, match=r"no prediction id matches.*did you mean \S+_r0\?"):
        score_predictions(items, load_predictions(by_item))
    with pytest.raises(ValueError, match="no predictions"):
        load_predictions(_jsonl(tmp_path / "empty.jsonl", []))
    array = tmp_path / "array.jsonl"
    array.write_text(json.dumps([{"question_id": r[H.QUESTION_ID], "prediction": "A"} for r in rows]))
    with pytest.raises(ValueError, match="JSON array, not JSONL"):
        load_predictions(str(array))

    runner = CliRunner()
    res = runner.invoke(main, ["haystack", "score", items, by_item])
    assert res.exit_code != 0 and "did you mean" in res.output
    extra = _jsonl(tmp_path / "extra.jsonl", [{"question_id": r[H.QUESTION_ID], "prediction": "ABCD"[r[H.ANSWER_INDEX]]}
                                              for r in rows] + [{"question_id": "ghost_r0", "prediction": "A"}])
    res = runner.invoke(main, ["haystack", "score", items, extra])
    assert res.exit_code == 0
    report = json.loads(res.stdout)
    assert report["score"] == 100.0 and report["problems"]["unknown_id"]["examples"] == ["ghost_r0"]


def test_vdata_score_on_a_haystack_folder_names_the_haystack_scorer(scored, tmp_path):
    items, out, rows = scored
    preds = _jsonl(tmp_path / "p.jsonl", [{"question_id": r[H.QUESTION_ID], "prediction": "A"} for r in rows])
    res = CliRunner().invoke(main, ["score", str(out), preds])
    assert res.exit_code == 1 and "is a `vdata haystack` benchmark" in res.output
    assert f"vdata haystack score {out / 'items.parquet'} PREDICTIONS" in res.output and "--format" not in res.output
