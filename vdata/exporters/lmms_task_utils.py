"""lmms-eval task functions for a vdata export (copied verbatim as `utils.py` into the task folder).

Self-contained on purpose: it runs inside lmms-eval's environment, where vdata need not be installed.
It reads `vdata_task.json` next to it for the one dataset-specific setting (the Hub cache folder name).

Videos are looked up, in order, under: $VDATA_VIDEO_ROOT, this folder (a local `vdata export`), and
$HF_HOME/<cache_dir> (where lmms-eval extracts the zip shards of a dataset pushed with
`vdata push --format lmms-eval` when the YAML has `dataset_kwargs: {video: True, cache_dir: ...}`).
"""
from __future__ import annotations

import json
import os
import re

_HERE = os.path.dirname(os.path.abspath(__file__))
try:
    with open(os.path.join(_HERE, "vdata_task.json")) as _f:
        TASK_CONFIG = json.load(_f)
except OSError:
    TASK_CONFIG = {}

MCQ_POST_PROMPT = "Answer with the option's letter from the given choices directly."


# --- visuals -------------------------------------------------------------------------------------

def _roots():
    roots = []
    if os.environ.get("VDATA_VIDEO_ROOT"):
        roots.append(os.environ["VDATA_VIDEO_ROOT"])
    roots.append(_HERE)
    cache_dir = TASK_CONFIG.get("cache_dir")
    if cache_dir:
        hf_home = os.path.expanduser(os.environ.get("HF_HOME", "~/.cache/huggingface"))
        roots.append(os.path.join(hf_home, cache_dir))
    return roots


def doc_to_visual(doc):
    """Local path of the doc's video (a clip file, or the whole source video)."""
    rel = doc["video"]
    if os.path.isabs(rel):
        return [rel]
    for root in _roots():
        path = os.path.join(root, rel)
        if os.path.exists(path):
            return [path]
    raise FileNotFoundError(f"video {rel!r} not found under any of {_roots()}")


# --- prompts -------------------------------------------------------------------------------------

def _kw(lmms_eval_specific_kwargs, key, default=""):
    return (lmms_eval_specific_kwargs or {}).get(key, default)


def doc_to_text_mcq(doc, lmms_eval_specific_kwargs=None):
    pre = _kw(lmms_eval_specific_kwargs, "pre_prompt")
    post = _kw(lmms_eval_specific_kwargs, "post_prompt", MCQ_POST_PROMPT)
    body = doc["question"] + "\n" + "\n".join(doc["options"])
    return "\n".join(x for x in (pre, body, post) if x)


def doc_to_text_open(doc, lmms_eval_specific_kwargs=None):
    pre = _kw(lmms_eval_specific_kwargs, "pre_prompt")
    post = _kw(lmms_eval_specific_kwargs, "post_prompt")
    return "\n".join(x for x in (pre, doc["question"], post) if x)


doc_to_text_grounding = doc_to_text_open


def doc_to_target(doc):
    return doc["answer"]


# --- multiple choice -----------------------------------------------------------------------------

def extract_letter(text, n_options):
    """The option letter a model answered (Video-MME-style: 'B', '(B)', 'B. ...', 'The answer is B')."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:max(1, n_options)]
    s = text.strip()
    for prefix in ("The best answer is", "The correct answer is", "The answer is", "The answer", "Best answer:",
                   "Answer:", "Option:"):
        if s.lower().startswith(prefix.lower()):
            s = s[len(prefix):].strip()
    m = re.search(rf"(?<![A-Za-z])\(?([{letters}])\)?(?![A-Za-z])", s)
    return m.group(1) if m else ""


def process_results_mcq(doc, results):
    pred = extract_letter(results[0], len(doc["options"]))
    return {"accuracy": 1.0 if pred == doc["answer"] else 0.0}


# --- open-ended ----------------------------------------------------------------------------------

def _tokens(text):
    return re.findall(r"[a-z0-9]+", (text or "").lower())


def token_f1(pred, ref):
    p, r = _tokens(pred), _tokens(ref)
    if not p or not r:
        return float(p == r)
    counts_r = {}
    for t in r:
        counts_r[t] = counts_r.get(t, 0) + 1
    overlap = 0
    for t in p:
        if counts_r.get(t, 0) > 0:
            overlap += 1
            counts_r[t] -= 1
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(p), overlap / len(r)
    return 2 * precision * recall / (precision + recall)


def process_results_open(doc, results):
    pred = results[0]
    return {"token_f1": token_f1(pred, doc["answer"]),
            "exact_match": float(" ".join(_tokens(pred)) == " ".join(_tokens(doc["answer"])))}


# --- temporal grounding --------------------------------------------------------------------------

def parse_span(text, time_format, duration_s, fps):
    """The first 'a - b' span in a reply, as seconds from the start of the video (None if absent)."""
    nums = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", text or "")]
    if len(nums) < 2:
        return None
    a, b = nums[0], nums[1]
    if time_format == "relative":
        a, b = a / 99.0 * duration_s, b / 99.0 * duration_s
    elif time_format == "frames":
        a, b = a / fps, b / fps
    return (min(a, b), max(a, b))


def iou(p, g):
    inter = max(0.0, min(p[1], g[1]) - max(p[0], g[0]))
    union = max(p[1], g[1]) - min(p[0], g[0])
    return inter / union if union > 0 else 0.0


def process_results_grounding(doc, results):
    pred = parse_span(results[0], doc["time_format"], doc["duration_s"], doc["fps"])
    best = max((iou(pred, tuple(g)) for g in doc["spans"]), default=0.0) if pred else 0.0
    return {"mean_iou": best, "recall_at_iou_0.5": float(best >= 0.5)}
