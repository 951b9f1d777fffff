"""labels: label containment (Video-STaR) — where the source has labels, keep answers that contain them.

Datasets often come with labels (an action class, a category, tags) that are cheap ground truth. A
generated answer to a question about what happens in the clip that does not mention the clip's label is
likely wrong or off-topic, so Video-STaR keeps only answers that contain it.

Labels are read from the video's `source_meta` (manifest / HF columns) under `keys` (a string, a list of
strings, or a comma/semicolon-separated string). A label is contained when every one of its words
appears in the answer (+ rationale) after light normalisation: lower case, punctuation dropped, and a
small suffix stemmer so "playing guitar" matches "plays the guitar". `match: any` keeps an answer that
contains at least one of the labels, `all` needs all.

Applies to `tasks`, and for question tasks only to the listed `question_types` (a counting question's
answer "three" cannot be expected to name the action). `v_label_contained` is null when the sample has
no labels or is out of scope; false ones are rejected as `label_missing` when `drop_missing` is on.
"""
from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import Field

from vdata.schemas import records as R

from .base import Reject, Resources, Stage, StageConfig

_FILLER = {"the", "a", "an", "of", "and", "to", "on", "in", "with", "at", "by", "for"}


def stem(word: str) -> str:
    w = word.lower()
    for suffix, keep in (("ying", "y"), ("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + keep
            break
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "aeiouls":   # running → runn → run
        w = w[:-1]
    if w.endswith("e") and len(w) > 3:                                 # dance/dancing → danc
        w = w[:-1]
    return w


def stems(text: str) -> list[str]:
    return [stem(w) for w in re.findall(r"[a-z0-9]+", (text or "").lower().replace("_", " ")) if w not in _FILLER]


def labels_of(meta: dict, keys: list[str]) -> list[str]:
    out: list[str] = []
    for k in keys:
        v = meta.get(k)
        if isinstance(v, str):
            out.extend(p.strip() for p in re.split(r"[;,|]", v) if p.strip())
        elif isinstance(v, (list, tuple)):
            out.extend(str(x).strip() for x in v if str(x).strip())
    return list(dict.fromkeys(out))


def contains_label(text: str, label: str) -> bool:
    need = stems(label)
    have = set(stems(text))
    return bool(need) and all(w in have for w in need)


class LabelsConfig(StageConfig):
    keys: list[str] = Field(default_factory=lambda: ["label", "labels", "class", "category", "action", "tags"])
    tasks: list[str] = Field(default_factory=lambda: ["caption", "open_qa", "mcq", "cot"])
    question_types: list[str] | None = Field(default_factory=lambda: ["description", "action"])  # None: all
    match: Literal["any", "all"] = "any"
    drop_missing: bool = True


class LabelsStage(Stage):
    name = "labels"
    Config = LabelsConfig
    reads = (R.SAMPLE_ID, R.TASK, R.ANSWER, R.SOURCE_META)
    writes = (R.V_LABEL_CONTAINED,)
    default_resources = Resources(num_cpus=0.25, batch_size=256)
    is_filter = True

    def in_scope(self, row: dict) -> bool:
        cfg = self.config
        task = row.get(R.TASK)
        if task not in cfg.tasks:
            return False
        if task == "caption" or cfg.question_types is None:
            return True
        return row.get(R.QUESTION_TYPE) in cfg.question_types

    def process_row(self, row: dict) -> dict | Reject:
        row = dict(row)
        try:
            meta = json.loads(row.get(R.SOURCE_META) or "{}")
        except ValueError:
            meta = {}
        labels = labels_of(meta if isinstance(meta, dict) else {}, self.config.keys)
        if not labels or not self.in_scope(row):
            row[R.V_LABEL_CONTAINED] = None
            return row
        text = " ".join([row.get(R.ANSWER) or "", row.get(R.RATIONALE) or ""])
        hits = [lab for lab in labels if contains_label(text, lab)]
        ok = bool(hits) if self.config.match == "any" else len(hits) == len(labels)
        row[R.V_LABEL_CONTAINED] = ok
        if not ok and self.config.drop_missing:
            missing = [lab for lab in labels if lab not in hits]
            return self.reject(row, "label_missing",
                               f"answer does not contain the source label(s) {missing} (match: {self.config.match})",
                               labels=labels, found=hits, answer=(row.get(R.ANSWER) or "")[:200])
        return row
