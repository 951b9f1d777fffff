"""lmms-eval task functions for every task folder vdata writes: exported datasets (`vdata export --format
lmms-eval`, hooks `doc_to_*` / `process_results_*`) and haystack benchmarks (`vdata haystack`, hooks
`haystack_*`). Both writers copy this one file verbatim as `utils.py` into the task folder.

Standard library only, on purpose: the folder works wherever lmms-eval runs, without vdata installed
(tests/test_architecture.py holds this file to that). It is also the scorer vdata itself uses
(`vdata haystack score`), so vdata and lmms-eval always agree.

`vdata_task.json` next to the file carries the folder's settings (`cache_dir`, `video_dirs`). Videos are
looked up, in order, under: $VDATA_VIDEO_ROOT, $VDATA_HAYSTACK_VIDEO_DIR, the `video_dirs` of
vdata_task.json, this folder, $HF_HOME/<cache_dir> (where lmms-eval extracts the zip shards of a dataset
pushed to the Hub), and this folder's videos/ (zip shards next to this file are extracted there on
first use).
"""
from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
import zipfile
from collections import Counter, defaultdict
from difflib import SequenceMatcher
from pathlib import Path

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MCQ_POST_PROMPT = "Answer with the option's letter from the given choices directly."
_HERE = Path(__file__).resolve().parent
_log = logging.getLogger("vdata_lmms_tasks")


# --- videos --------------------------------------------------------------------------------------

def _task_config() -> dict:
    path = _HERE / "vdata_task.json"
    if path.exists():
        with open(path) as f:
            return json.load(f)
    return {}


def _video_dirs() -> list[Path]:
    meta = _task_config()
    dirs = [Path(os.environ[v]) for v in ("VDATA_VIDEO_ROOT", "VDATA_HAYSTACK_VIDEO_DIR") if os.environ.get(v)]
    dirs += [Path(d) if os.path.isabs(d) else _HERE / d for d in meta.get("video_dirs", [])]
    dirs.append(_HERE)
    if meta.get("cache_dir"):
        hf_home = os.path.expanduser(os.environ.get("HF_HOME", "~/.cache/huggingface"))
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


def find_video(rel: str) -> str:
    """Local path of a video named relative to the task folder (absolute paths are returned as they are)."""
    if os.path.isabs(rel):
        return rel
    for attempt in range(2):
        for d in _video_dirs():
            if (d / rel).exists():
                return str(d / rel)
        if attempt == 0:
            _extract_shards()
    raise FileNotFoundError(f"video {rel!r} not found under any of {[str(d) for d in _video_dirs()]}")


def doc_to_visual(doc):
    """Exported dataset: the doc's clip file (or its whole source video)."""
    return [find_video(doc["video"])]


def haystack_doc_to_visual(doc) -> list[str]:
    return [find_video(doc["videoID"] + ".mp4")]


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
doc_to_text_moment = doc_to_text_open


def doc_to_target(doc):
    return doc["answer"]


def haystack_doc_to_text(doc, lmms_eval_specific_kwargs=None) -> str:
    post = _kw(lmms_eval_specific_kwargs, "post_prompt", MCQ_POST_PROMPT)
    return (f"{_kw(lmms_eval_specific_kwargs, 'pre_prompt')}{doc['question']}\n" + "\n".join(doc["options"])
            + (f"\n{post}" if post else ""))


def haystack_doc_to_text_open(doc, lmms_eval_specific_kwargs=None) -> str:
    kw = lmms_eval_specific_kwargs
    return f"{_kw(kw, 'pre_prompt')}{doc['open_question']}{_kw(kw, 'post_prompt')}"


def haystack_doc_to_target_open(doc) -> str:
    return doc["open_answer"]


def haystack_process_docs_open(dataset):
    """The open form does not depend on option order: keep one row per item."""
    return dataset.filter(lambda d: d["rotation"] == 0)


# --- parsing replies -----------------------------------------------------------------------------

_ANSWER_PREFIXES = ("the best answer is", "the correct answer is", "the answer is", "the answer", "best answer:",
                    "answer:", "answer", "option:")


def extract_letter(text: str, n_options: int) -> str:
    """The option letter a reply chose ("" if none), surest sign first: a lone letter in any case ("b", "(b)"), a
    leading "(B)" / "B." / "B," / "B:", "answer is B" / "option B", a bracketed letter anywhere ("A red square
    was shown, so (C)."), then a capital standing alone (not the article "A" or the pronoun "I" opening prose)."""
    letters = LETTERS[:max(1, n_options)]
    s = (text or "").replace("*", "").replace("`", "").strip()
    for prefix in _ANSWER_PREFIXES:
        if s.lower().startswith(prefix) and not s[len(prefix):len(prefix) + 1].isalpha():
            s = s[len(prefix):].strip(" :-")
    lone = re.fullmatch(r"[(\[]?([A-Za-z])[)\]]?[.!]?", s)
    if lone:
        return lone.group(1).upper() if lone.group(1).upper() in letters else ""
    x = f"[{letters}]"
    m = (re.match(rf"[(\[]({x})[)\]]|({x})(?:[.:),]|$)", s)
         or re.search(rf"(?i:\banswer(?:\s+is)?|\boption|\bchoice)\s*:?\s*[(\[]?({x})(?![A-Za-z0-9])", s))
    if m:
        return next(g for g in m.groups() if g)
    bracketed = {b.upper() for b in re.findall(rf"[(\[]([{letters}{letters.lower()}])[)\]]", s)}
    if len(bracketed) == 1:
        return bracketed.pop()
    found = list(re.finditer(rf"(?<![A-Za-z0-9'])(?![AI]\s+(?!or\b|and\b)[a-z])({x})(?![A-Za-z0-9'])", s))
    if found and (len({m.group(1) for m in found}) == 1 or len(s) <= 20):
        return found[0].group(1)
    return ""


# A time as replies write it: 12.5, 12,5 (decimal comma), 1:05, 1:02:03.5, 1.2e1
_TIME = re.compile(r"\d+(?::\d+){0,2}(?:[.,]\d+)?(?:[eE][+-]?\d+)?")


def _seconds(token: str) -> float:
    token = re.sub(r",(\d{3})$", r"\1", token).replace(",", ".")   # "1,200" is thousands, "12,5" a decimal comma
    total = 0.0
    for part in token.split(":"):
        total = total * 60 + float(part)
    return total


def parse_interval(text: str):
    """(start, end) in seconds from "12.5 - 20", "12,5 - 20,0", "from 1:05 to 1:10", ...; None if absent.
    The ends come back as written, so a reversed "20 - 12.5" stays reversed (start > end) for the caller
    to count, unless the words say the end comes first ("it ends at 30 and starts at 12")."""
    low = (text or "").lower()
    nums = _TIME.findall(low)
    if len(nums) < 2:   # "[12,20]": that comma separates two numbers
        nums = re.findall(r"\d+(?::\d+){0,2}(?:\.\d+)?", low)
    if len(nums) < 2:
        return None
    a, b = _seconds(nums[0]), _seconds(nums[1])
    starts = [i for i in (low.find("start"), low.find("begin")) if i >= 0]
    return (b, a) if starts and 0 <= low.find("end") < min(starts) else (a, b)


# Times as the exporters write them (vdata/exporters/timefmt.py; copied here because this file must run
# without vdata): the spec is `name` or `name:bins`, numbers are seconds / positions / frames / tokens.
_DEFAULT_BINS = {"lita": 100, "grounded_videollm": 300}
_VTG_DIGITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
_VTG_RUN = re.compile(r"(?:<TIME_(?:ZERO|ONE|TWO|THREE|FOUR|FIVE|SIX|SEVEN|EIGHT|NINE|DOT)>)+")
_VTG_TOKEN = re.compile(r"<TIME_([A-Z]+)>")


def _time_spec(time_format) -> tuple[str, int | None]:
    name, _, arg = str(time_format or "seconds").partition(":")
    return name, int(arg) if arg.isdigit() else _DEFAULT_BINS.get(name)


def _vtg_times(text: str) -> list[float]:
    out = []
    for m in _VTG_RUN.finditer(text):
        digits = "".join("." if t == "DOT" else str(_VTG_DIGITS.index(t)) for t in _VTG_TOKEN.findall(m.group(0)))
        try:
            out.append(float(digits))
        except ValueError:   # a run of dots only
            continue
    return out


def parse_times(text, time_format, duration_s, fps) -> list[float] | None:
    """Every time a reply wrote in the export's time format, in seconds from the start of the video; None
    when the format has no own tokens (seconds, timesuite, relative, frames: see `parse_span`). A token
    reads back as the time its bin starts at."""
    name, bins = _time_spec(time_format)
    text = text or ""
    if name == "vtg":
        return _vtg_times(text)
    if name == "lita":
        return [int(n) / (bins - 1) * duration_s for n in re.findall(r"<t(\d+)>", text)]
    if name == "grounded_videollm":
        return [int(n) / bins * duration_s for n in re.findall(r"<(\d+)>", text)]
    if name == "bracketed":
        return [float(n) for n in re.findall(r"<(\d+(?:\.\d+)?)>", text)]
    return None


def parse_span(text, time_format, duration_s, fps):
    """The first span in a reply, in seconds from the start of the video, whatever format the export wrote
    times in (`time_format` is the export's spec: seconds, timesuite, relative (NN/100 of the duration),
    frames (first - last, inclusive), lita[:T] `<tK>`, grounded_videollm[:N] `<K>`, bracketed `<12.30>`, vtg digit tokens).
    None if absent."""
    name, _ = _time_spec(time_format)
    times = parse_times(text, time_format, duration_s, fps)
    if times is not None:
        if len(times) < 2:
            return None
        return (min(times[0], times[1]), max(times[0], times[1]))
    span = parse_interval(text)
    if span is None:
        return None
    if name == "relative":   # VTimeLLM's positions: NN / 100 of the duration
        return (span[0] / 100.0 * duration_s, span[1] / 100.0 * duration_s)
    if name == "frames":     # the last frame is inclusive: the span ends where that frame ends
        return (span[0] / fps, (span[1] + 1) / fps)
    return span


def interval_iou(a, b) -> float:
    """Temporal IoU of two (start, end) intervals; 0 when either is missing or empty."""
    if a is None or b is None or a[1] < a[0]:   # a reversed reply is wrong, not swapped
        return 0.0
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_HOW_OFTEN = {"once": 1, "twice": 2, "thrice": 3, "never": 0, "none": 0}
_NOT_A_COUNT = {"s", "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "h", "hour", "hours",
                "ms", "fps", "frame", "frames", "percent", "st", "nd", "rd", "th"}   # "the 20 s video", "the 2nd"


def parse_count(text: str):
    """The count a reply gives: a number followed by "times" first, then once / twice / never, else the
    last number that is not a duration ("It appeared in the 20 s video 2 times" reads 2); None if none."""
    tokens = re.findall(r"\d+(?:\.\d+)?|[^\W\d_]+", _fold(text)[0])
    with_times, how_often, numbers = [], [], []
    for i, token in enumerate(tokens):
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        value = int(token) if token.isdigit() else _NUMBER_WORDS.get(token)
        if token in _HOW_OFTEN:
            how_often.append(_HOW_OFTEN[token])
        elif value is not None and after not in _NOT_A_COUNT:
            (with_times if after in ("time", "times", "x") else numbers).append(value)
    return next((found[0] for found in (with_times, how_often) if found), numbers[-1] if numbers else None)


def _fold(text) -> tuple[str, str]:
    """(text, its words): NFKC and casefolded in every script (accents kept); in the second, each character
    that is no letter, digit or mark is a space, so both keep the same positions."""
    s = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text or "").casefold())
    return s, "".join(c if unicodedata.category(c)[0] in "LNM" else " " for c in s)


def _tokens(text) -> list[str]:
    return _fold(text)[1].split()


def _norm(text: str) -> str:
    return " ".join(_tokens(text))


def token_f1(pred, ref) -> float:
    p, r = _tokens(pred), _tokens(ref)
    if not p or not r:
        return float(p == r)
    return 2 * sum((Counter(p) & Counter(r)).values()) / (len(p) + len(r))


# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, kana, CJK): a label in them may sit
# inside a longer run of letters ("答えは日本語テキストです"), so it is matched as a substring; other labels may touch them.
_UNSPACED_CHARS = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LIST_SEPARATORS = re.compile(r"\n|;|,|->|→|=>|\||\band\b|\bthen\b|\bor\b|\bfollowed by\b")
# Words that make a list entry prose ("but I'm not sure"), not the name of something the reply saw.
_PROSE_WORDS = frozenset("""i me my we you it its he she they them this that these those there here what which who is
    are was were be been am do does did not no yes so but also maybe perhaps probably think believe guess sure know
    remember saw see seen seem seems shown show shows appeared appear appears spoken said heard of in on at to for
    from with by as after before next first second third last finally only all any some none other another answer
    image images picture text texts clip clips video videos phrase phrases order can could would might m s t""".split())


def _plain(text: str) -> str:   # accents dropped, only to accept a near-spelling ("Cafe Creme" for "Café Crème")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _mentions(prediction: str, labels: list[str]) -> list[int]:
    """The labels a reply names, as indices into `labels` in the order named (repeats kept), matched on
    whole words of the folded text. A list entry (between , ; -> "and" ...) that names no label counts
    as the label it spells within 10% (accents aside), else as -1 when it reads as a name (no prose word)."""
    s, w = _fold(prediction)
    found = []
    for i, label in enumerate(labels):
        body = r"\s+".join(map(re.escape, _tokens(label))) or r"(?!)"
        edge = "" if re.search(f"[{_UNSPACED_CHARS}]", label) else rf"[^\s{_UNSPACED_CHARS}]"   # a spaced letter
        found += [(m.start(), m.end(), i) for m in re.finditer(rf"(?<!{edge}){body}(?!{edge})" if edge else body, w)]
    named, end = [], -1
    for start, stop, i in sorted(found, key=lambda f: (f[0], f[0] - f[1])):   # the longest label at a place
        if start >= end:
            named.append((start, stop, i))
            end = stop
    cuts = [0, *(x for m in _LIST_SEPARATORS.finditer(s) for x in m.span()), len(s)]
    for a, b in zip(cuts[::2], cuts[1::2]):
        words = w[a:b].split()
        while words and (words[0] in ("a", "an", "the") or words[0].isdigit()):   # "1. the red square"
            words = words[1:]
        if not words or any(start < b and stop > a for start, stop, _ in named):
            continue
        near = [i for i, label in enumerate(labels)
                if SequenceMatcher(None, _plain(" ".join(words)), _plain(_norm(label))).ratio() >= 0.9]
        if near or not _PROSE_WORDS.intersection(words):
            named.append((a, b, near[0] if near else -1))
    return [i for _, _, i in sorted(named)]


def label_found(prediction: str, label: str) -> bool:
    return 0 in _mentions(prediction, [label])


# --- exported datasets: lmms-eval hooks ----------------------------------------------------------

def process_results_mcq(doc, results):
    pred = extract_letter(results[0], len(doc["options"]))
    return {"accuracy": 1.0 if pred == doc["answer"] else 0.0}


def process_results_open(doc, results):
    pred = results[0]
    return {"token_f1": token_f1(pred, doc["answer"]), "exact_match": float(_norm(pred) == _norm(doc["answer"]))}


def parse_point(text, time_format, duration_s, fps):
    """The first time in a reply, in seconds from the start of the video, whatever format the export wrote
    times in (see `parse_span`); None if absent."""
    name, _ = _time_spec(time_format)
    times = parse_times(text, time_format, duration_s, fps)
    if times is not None:
        return times[0] if times else None
    nums = _TIME.findall(text or "")
    if not nums:
        return None
    t = _seconds(nums[0])
    if name == "relative":
        return t / 100.0 * duration_s
    if name == "frames":
        return t / fps
    return t


MOMENT_TOLERANCE_S = 3.0   # a moment found within this many seconds counts as found (vdata's own threshold)


def process_results_moment(doc, results):
    """A task answered by moments (a chapter's start): the distance from the reply's first time to the
    nearest gold moment; a reply with no time counts as the whole video away."""
    pred = parse_point(results[0], doc["time_format"], doc["duration_s"], doc["fps"])
    gold = [g[0] for g in doc["spans"] or []]
    error = min(abs(pred - g) for g in gold) if pred is not None and gold else float(doc["duration_s"] or 0.0)
    return {"within_3s": float(pred is not None and error <= MOMENT_TOLERANCE_S), "mean_abs_error_s": error}


def process_results_grounding(doc, results):
    pred = parse_span(results[0], doc["time_format"], doc["duration_s"], doc["fps"])
    best = max((interval_iou(pred, tuple(g)) for g in doc["spans"]), default=0.0) if pred else 0.0
    return {"mean_iou": best, "recall_at_iou_0.5": float(best >= 0.5)}


# --- haystack benchmarks: scorers and lmms-eval hooks --------------------------------------------

OPEN_TIME_STEP_S = 0.005   # open answers write times to 2 decimals: ends this close to the gold's are the gold's


def _in_order_f1(named: list[int], n_gold: int) -> float:
    """F1 of the labels named (each known one once; -1 or >= n_gold: no answer) against answers 0..n_gold-1,
    found only as far as named in order (longest run): extra labels cost precision, a wrong order recall."""
    gold = [i for i in named if 0 <= i < n_gold]
    longest = [1] * len(gold)
    for j in range(len(gold)):
        longest[j] += max((longest[i] for i in range(j) if gold[i] < gold[j]), default=0)
    return 2 * max(longest, default=0) / (len(named) + n_gold) if named else 0.0


def score_open(doc, prediction: str) -> float:
    """Open-ended score in [0, 1]. Localization: IoU. Counting: the count given (`parse_count`). Ordering: 1
    when the first complete order named is right and no other order is named. Retrieval, multihop: F1 of the
    labels named in order (`_in_order_f1`); options that are no answer, and other names listed, count against it."""
    task, prediction = doc["task_type"], prediction or ""
    labels = list(doc["answer_labels"])
    if task == "localization":
        span, gold = parse_interval(prediction), (doc["answer_start_s"], doc["answer_end_s"])
        if span and all(abs(p - g) <= OPEN_TIME_STEP_S + 1e-9 for p, g in zip(span, gold)):
            return 1.0
        return interval_iou(span, gold)
    if task == "counting":
        return 1.0 if parse_count(prediction) == int(doc["open_answer"]) else 0.0
    if task == "ordering":
        orders, current = [], []
        for i in _mentions(prediction, labels):
            current += [i] if i >= 0 and i not in current else []
            if len(current) == len(labels):
                orders, current = orders + [current], []
        return float(bool(labels and orders) and all(order == list(range(len(labels))) for order in orders))
    others = [o for o in (re.sub(r"^[A-Z]\.\s*", "", opt) for opt in doc.get("options") or []) if o not in labels]
    named: list[int] = []
    for i in _mentions(prediction, labels + others):
        named += [i] if i < 0 or i not in named else []
    return _in_order_f1(named, len(labels)) if labels else 0.0


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
