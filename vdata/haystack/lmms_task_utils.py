"""lmms-eval task functions for a vdata haystack benchmark.

The exporter copies this file as `utils.py` into the task folder, so it imports only the standard
library: the folder works wherever lmms-eval runs, without vdata installed. It is also the scorer
vdata itself uses (`vdata haystack score`), so both always agree.

Videos are found, in order, in $VDATA_HAYSTACK_VIDEO_DIR, the folders listed in vdata_task.json, the
lmms-eval cache ($HF_HOME/<cache_dir>, where lmms-eval extracts the zip shards of a Hub dataset), and
this folder's videos/ (the zip shards next to this file are extracted there on first use).
"""
from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from collections import defaultdict
from difflib import SequenceMatcher
from pathlib import Path

LETTERS = "ABCDEFGHIJ"
MCQ_POST_PROMPT = "Answer with the option's letter from the given choices directly."
_HERE = Path(__file__).resolve().parent
_log = logging.getLogger("vdata_haystack")


def _meta() -> dict:
    path = _HERE / "vdata_task.json"
    if path.exists():
        with open(path) as f:
            return json.load(f)
    return {}


def _video_dirs() -> list[Path]:
    meta = _meta()
    dirs = []
    if os.environ.get("VDATA_HAYSTACK_VIDEO_DIR"):
        dirs.append(Path(os.environ["VDATA_HAYSTACK_VIDEO_DIR"]))
    dirs += [Path(d) if os.path.isabs(d) else _HERE / d for d in meta.get("video_dirs", [])]
    if meta.get("cache_dir"):
        hf_home = os.path.expanduser(os.environ.get("HF_HOME", "~/.cache/huggingface/"))
        dirs.append(Path(hf_home) / meta["cache_dir"])
    dirs.append(_HERE / "videos")
    return dirs


def _extract_shards() -> None:
    target = _HERE / "videos"
    for shard in sorted(_HERE.glob("*.zip")):
        with zipfile.ZipFile(shard) as z:
            for name in z.namelist():
                if not (target / name).exists():
                    z.extract(name, target)


def haystack_doc_to_visual(doc) -> list[str]:
    name = doc["videoID"] + ".mp4"
    for d in _video_dirs():
        if (d / name).exists():
            return [str(d / name)]
    _extract_shards()
    if (_HERE / "videos" / name).exists():
        return [str(_HERE / "videos" / name)]
    raise FileNotFoundError(f"video {name} not found in {[str(d) for d in _video_dirs()]}")


def haystack_doc_to_text(doc, lmms_eval_specific_kwargs=None) -> str:
    kw = lmms_eval_specific_kwargs or {}
    post = kw.get("post_prompt", MCQ_POST_PROMPT)
    return f"{kw.get('pre_prompt', '')}{doc['question']}\n" + "\n".join(doc["options"]) + (f"\n{post}" if post else "")


def haystack_doc_to_text_open(doc, lmms_eval_specific_kwargs=None) -> str:
    kw = lmms_eval_specific_kwargs or {}
    return f"{kw.get('pre_prompt', '')}{doc['open_question']}{kw.get('post_prompt', '')}"


def haystack_doc_to_target_open(doc) -> str:
    return doc["open_answer"]


def haystack_process_docs_open(dataset):
    """The open form does not depend on option order: keep one row per item."""
    return dataset.filter(lambda d: d["rotation"] == 0)


# --- scorers ---

def extract_letter(text: str, n_options: int) -> str:
    """The option letter a reply chose: a lone letter, "(B)", "B.", "Answer: B", ... ("" if none)."""
    letters = LETTERS[:n_options]
    s = text.strip()
    for prefix in ("the best answer is", "the correct answer is", "the answer is", "answer:", "answer"):
        if s.lower().startswith(prefix):
            s = s[len(prefix):].strip()
    m = re.match(rf"^\(?([{letters}])\)?(?:[.:)\s]|$)", s)
    if m:
        return m.group(1)
    found = re.findall(rf"\b([{letters}])\b", s)
    return found[0] if len(found) == 1 else (found[0] if found and len(s) <= 20 else "")


def _seconds(token: str) -> float:
    parts = [float(p) for p in token.split(":")]
    total = 0.0
    for p in parts:
        total = total * 60 + p
    return total


def parse_interval(text: str):
    """(start, end) in seconds from "12.5 - 20", "from 1:05 to 1:10", ...; None if absent."""
    nums = re.findall(r"\d+(?::\d+){0,2}(?:\.\d+)?", text)
    if len(nums) < 2:
        return None
    a, b = _seconds(nums[0]), _seconds(nums[1])
    return (min(a, b), max(a, b))


def interval_iou(a, b) -> float:
    """Temporal IoU of two (start, end) intervals; 0 when either is missing or empty."""
    if a is None or b is None:
        return 0.0
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"once": 1, "twice": 2, "thrice": 3, "never": 0})


def parse_count(text: str):
    for token in re.findall(r"[a-z]+|\d+", text.lower()):
        if token.isdigit():
            return int(token)
        if token in _NUMBER_WORDS:
            return _NUMBER_WORDS[token]
    return None


def _norm(s: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", s.lower()))


def label_found(prediction: str, label: str) -> bool:
    p, lab = _norm(prediction), _norm(label)
    if not lab:
        return False
    if f" {lab} " in f" {p} ":
        return True
    return SequenceMatcher(None, p, lab).ratio() >= 0.8


def score_open(doc, prediction: str) -> float:
    """Open-ended score in [0, 1]: IoU for localization, exact number for counting, the right order
    for ordering, the label(s) named for retrieval and multihop."""
    task = doc["task_type"]
    labels = list(doc["answer_labels"])
    if task == "localization":
        return interval_iou(parse_interval(prediction), (doc["answer_start_s"], doc["answer_end_s"]))
    if task == "counting":
        return 1.0 if parse_count(prediction) == int(doc["open_answer"]) else 0.0
    if task == "ordering":
        p = f" {_norm(prediction)} "
        where = [p.find(f" {_norm(lab)} ") for lab in labels]
        return 1.0 if all(w >= 0 for w in where) and where == sorted(where) else 0.0
    return sum(label_found(prediction, lab) for lab in labels) / len(labels) if labels else 0.0


# --- lmms-eval hooks ---

def haystack_process_results(doc, results):
    pred = extract_letter(results[0] if results else "", len(doc["options"]))
    entry = {"question_id": doc["question_id"], "item_id": doc["item_id"], "rotation": doc["rotation"],
             "task_type": doc["task_type"], "domain": doc["domain"], "duration": doc["duration"],
             "pred_answer": pred, "answer": doc["answer"], "correct": pred == doc["answer"]}
    return {"haystack_accuracy": entry, "haystack_circular_accuracy": entry}


def _breakdown(results, key: str, value) -> None:
    groups = defaultdict(list)
    for r in results:
        groups[r[key]].append(value(r))
    for name in sorted(groups):
        _log.info("haystack %s=%s: %.1f (%d)", key, name, 100 * sum(groups[name]) / len(groups[name]), len(groups[name]))


def haystack_aggregate_accuracy(results) -> float:
    """Plain accuracy over every row (every rotation counts as a question)."""
    if not results:
        return 0.0
    for key in ("task_type", "domain", "duration"):
        _breakdown(results, key, lambda r: float(r["correct"]))
    return 100.0 * sum(r["correct"] for r in results) / len(results)


def haystack_aggregate_circular(results) -> float:
    """Circular accuracy: an item counts only if every rotation of its options was answered right."""
    items = defaultdict(list)
    for r in results:
        items[r["item_id"]].append(r["correct"])
    if not items:
        return 0.0
    return 100.0 * sum(all(v) for v in items.values()) / len(items)


def haystack_process_results_open(doc, results):
    pred = results[0] if results else ""
    score = score_open(doc, pred)
    entry = {"question_id": doc["question_id"], "task_type": doc["task_type"], "domain": doc["domain"],
             "duration": doc["duration"], "score": score}
    return {"haystack_open_score": entry, "haystack_localization_miou": entry}


def haystack_aggregate_open(results) -> float:
    if not results:
        return 0.0
    _breakdown(results, "task_type", lambda r: r["score"])
    return 100.0 * sum(r["score"] for r in results) / len(results)


def haystack_aggregate_miou(results) -> float:
    """Mean temporal IoU over the localization questions."""
    loc = [r["score"] for r in results if r["task_type"] == "localization"]
    return 100.0 * sum(loc) / len(loc) if loc else 0.0
