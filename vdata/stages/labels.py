"""labels: label containment (Video-STaR) — where the source has labels, keep answers that contain them.

Datasets often come with labels (an action class, a category, tags) that are cheap ground truth. A
generated answer to a question about what happens in the clip that does not mention the clip's label is
likely wrong or off-topic, so Video-STaR keeps only answers that contain it.

Labels are read from the video's `source_meta` (manifest / HF columns) under `keys` (a string, a list of
strings, or a comma/semicolon-separated string). A list keeps each item whole ("Cook, then serve" is one
label), also written as JSON text, as a CSV cell holds one (`["Cook, then serve", "Plate"]`). A label
is contained when every one of its words appears in the answer the sample trains (its answer field; for a
chain of thought the final answer, never only its reasoning: h25 F9) after light normalisation: lower case,
punctuation dropped, and a small suffix stemmer so "playing guitar" matches "plays the guitar". `match: any` keeps an answer that contains at least one of the labels, `all` needs all.

Applies to `tasks`, and for question tasks only to the listed `question_types` (a counting question's
answer "three" cannot be expected to name the action). `v_label_contained` is null when the sample has
no labels or is out of scope; false ones are rejected as `label_missing` when `drop_missing` is on.
"""
from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import Field, model_validator

from vdata.prompts import escape_placeholders, load_prompt, shorten
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
        if isinstance(v, str) and v.strip().startswith("["):   # a list in a CSV cell: its items, never its commas
            try:
                v = json.loads(v)
            except ValueError:
                pass   # text that only starts with "[": a separated string
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
    rationalize: bool = False            # Video-STaR: the teacher explains the label for answers that miss it
    teacher: str | None = None           # the rationalizer (a name under `teachers:`)
    rationalize_rounds: int = Field(1, ge=1, le=4)
    max_evidence_chars: int = Field(2000, ge=100)
    max_tokens: int = Field(256, ge=16)
    prompts: dict[str, str] = Field(default_factory=dict)   # {"rationalize": your template file}

    @model_validator(mode="after")
    def _needs_teacher(self):
        if self.rationalize and not self.teacher:
            raise ValueError("teacher: required by rationalize: true (the model that explains the label)")
        unknown = sorted(set(self.prompts) - {"rationalize"})
        if unknown:
            raise ValueError(f"prompts: unknown template(s) {unknown} (allowed: rationalize)")
        return self


class LabelsStage(Stage):
    name = "labels"
    # 2: the label must be in the answer field (a chain of thought's final answer), not only in its rationale (h25 F9)
    version = 2
    Config = LabelsConfig
    reads = (R.SAMPLE_ID, R.TASK, R.ANSWER, R.SOURCE_META)
    writes = (R.V_LABEL_CONTAINED, R.REFINE_ROUNDS)
    default_resources = Resources(num_cpus=0.25, batch_size=256)
    is_filter = True

    def setup(self) -> None:
        cfg = self.config
        self.teacher = None
        if cfg.rationalize:   # the run's shared, request-cached teacher; its stats reach the manifest
            self.teacher = Stage.teacher(self, cfg.teacher)
            self.prompt = load_prompt("verify", "rationalize", override=cfg.prompts.get("rationalize"))

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
        labels = labels_of(R.source_meta(row), self.config.keys)
        if not labels or not self.in_scope(row):
            row[R.V_LABEL_CONTAINED] = None
            return row
        ok, hits = self.contained(row, labels)
        row[R.V_LABEL_CONTAINED] = ok
        row[R.REFINE_ROUNDS] = list(row.get(R.REFINE_ROUNDS) or []) + [self.round(row, 0, "check", ok)]
        if not ok and self.config.drop_missing:
            return self.missing(row, labels, hits)
        return row

    def contained(self, row: dict, labels: list[str]) -> tuple[bool, list[str]]:
        """Checked on the answer the sample trains (Video-STaR keeps answers that contain the label): the
        answer field, for a chain of thought its final answer. A rationale or reasoning steps that name the
        label beside an answer that does not ("The answer is selling lamps." / "Answer: <the final answer>",
        h25 F9) prove nothing about the answer."""
        text = row.get(R.ANSWER) or ""
        hits = [lab for lab in labels if contains_label(text, lab)]
        return (bool(hits) if self.config.match == "any" else len(hits) == len(labels)), hits

    def missing(self, row: dict, labels: list[str], hits: list[str]) -> Reject:
        missing = [lab for lab in labels if lab not in hits]
        rounds = [r for r in row.get(R.REFINE_ROUNDS) or [] if r.get("stage") == self.name]
        return self.reject(row, "label_missing",
                           f"answer does not contain the source label(s) {missing} (match: {self.config.match})"
                           + (f" after {len(rounds) - 1} rationalization round(s)" if len(rounds) > 1 else ""),
                           labels=labels, found=hits, answer=(row.get(R.ANSWER) or "")[:200],
                           rounds=[(r["round"], r["kind"], (r["text"] or "")[:120]) for r in rounds])

    def round(self, row: dict, number: int, kind: str, passed: bool) -> dict:
        return {"round": number, "stage": self.name, "kind": kind, "text": row.get(R.ANSWER),
                "supported_ratio": None, "passed": passed}

    # --- Video-STaR label rationalization
    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        out = super().process_batch(rows)
        if not self.config.rationalize:
            return out
        todo = {i: r for i, r in enumerate(out) if isinstance(r, Reject) and r.reason == "label_missing"}
        for number in range(1, self.config.rationalize_rounds + 1):
            if not todo:
                break
            keys = list(todo)
            results = self.teacher.generate([self.rationalize_request(todo[k].row, todo[k].detail["labels"], number)
                                             for k in keys])
            following = {}
            for k, res in zip(keys, results):
                rej = todo[k]
                labels, row = rej.detail["labels"], dict(rej.row)
                if not res.ok:     # the teacher failed: the reject stands, with the failure noted
                    row[R.REFINE_ROUNDS] = list(row[R.REFINE_ROUNDS]) + [self.round({}, number, "rationalize", False)]
                    out[k] = self.missing(row, labels, rej.detail["found"])
                    out[k].detail["teacher_error"] = (res.error or "")[:200]
                    continue
                # a teacher's text, escaped as generate stores replies (a "{{t:5}}" in it is no time)
                row[R.ANSWER] = escape_placeholders(" ".join(str(res.parsed.get("answer") or "").split()))
                row[R.RATIONALE] = escape_placeholders(" ".join(str(res.parsed.get("rationale") or "").split()))
                # the first attempt's reasoning steps explained the answer this round replaced: a chain of
                # thought now exports the rationalization's own explanation (R.RATIONALE)
                row[R.RATIONALE_STEPS] = None
                ok, hits = self.contained(row, labels)
                row[R.V_LABEL_CONTAINED] = ok
                row[R.REFINE_ROUNDS] = list(row[R.REFINE_ROUNDS]) + [self.round(row, number, "rationalize", ok)]
                if ok:
                    out[k] = row
                else:
                    out[k] = self.missing(row, labels, hits)
                    following[k] = out[k]
            todo = following
        return out

    def rationalize_request(self, row: dict, labels: list[str], number: int):
        """The label is given; the teacher explains it from the clip's evidence (round 1 greedy, later
        rounds sampled with a per-round seed so a retry is a new attempt, still cacheable)."""
        from vdata.teachers import TeacherRequest

        cfg = self.config
        text = self.prompt.render(evidence=shorten(evidence_text(row), cfg.max_evidence_chars, collapse_spaces=False)
                                  or "(no text evidence)", question=row.get(R.QUESTION) or "What happens in the video?",
                                  labels=", ".join(labels))
        schema = {"type": "object", "properties": {"rationale": {"type": "string", "minLength": 1, "maxLength": 600},
                                                   "answer": {"type": "string", "minLength": 1, "maxLength": 300}},
                  "required": ["rationale", "answer"], "additionalProperties": False}
        sampling = {"max_tokens": cfg.max_tokens, "temperature": 0.0 if number == 1 else 0.7}
        if number > 1:
            sampling["seed"] = number
        return TeacherRequest.from_prompt(text, json_schema=schema, schema_name="rationale", sampling=sampling,
                                          prompt_template_version=self.prompt.id)


def evidence_text(row: dict) -> str:
    """What the clip is known to show and say: caption, dense events, transcript."""
    lines = []
    if (row.get(R.CAPTION) or "").strip():
        lines.append(row[R.CAPTION].strip())
    lines += [e["description"].strip() for e in row.get(R.DENSE_EVENTS) or [] if e and (e.get("description") or "").strip()]
    speech = (row.get(R.TRANSCRIPT_TEXT) or "").strip()
    if speech:
        lines.append(f'Speech: "{speech}"')
    return "\n".join(lines)
