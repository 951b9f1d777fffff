"""What the teacher-free template families share: their config base (question templates, a seed), the
annotation items inside a row's interval, seeded choices, and the sample / reject skeletons.

The templates families (`templates.py`, `segments.py`) read `row[annotations]` (the `annotations` stage's
validated, video-absolute items) and write samples by template, with no teacher. Only items inside the
row's [start_s, end_s] are used, so a family runs the same on a clip row and on the video row of
`scope: video`; an item across a shot cut, which no clip holds, is said once (`crossing_rejects`). Every
choice (which items, which template, distractors, option order) comes from a `random.Random` keyed on the
task, the configured `seed`, the row's clip id and the item, so a build is byte-identical run to run and a
sample keeps its id when other rows change.
"""
from __future__ import annotations

import hashlib
import random
import string
from collections import Counter
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, model_validator

from vdata.prompts import escape_placeholders
from vdata.schemas import records as R

from .clues import source_meta
from .common import Strict, parse_lines, sample_base, stable_hash

if TYPE_CHECKING:
    from .common import StageView

TEMPLATE_PROMPT = "template_questions"   # the shipped default question templates, `task: text` lines
EDGE_TOLERANCE_S = 1e-3                  # an item this close past the row's edge still counts as inside


class TemplateTask(Strict):
    """Settings of every template family. `templates` replaces the shipped question templates of the task;
    `templates_by_dataset` picks a list by the row's `source_meta[dataset_key]` (MVBench-style per-dataset
    wording in one build). Placeholders (`$text`, `$span`, ...) are checked per task."""
    templates: list[str] | None = None
    templates_by_dataset: dict[str, list[str]] = Field(default_factory=dict)
    dataset_key: str = "dataset"
    seed: int = 0

    # the placeholders a task's templates may use, and those each template must use (one of each group)
    placeholders: ClassVar[frozenset[str]] = frozenset()
    required: ClassVar[tuple[frozenset[str], ...]] = ()

    def template_lists(self) -> list[tuple[str, list[str]]]:
        """(key path, templates) of every list the config gives: `templates`, each `templates_by_dataset` one."""
        return ([("templates", self.templates)] if self.templates is not None else []) + \
            [(f"templates_by_dataset.{k}", v) for k, v in self.templates_by_dataset.items()]

    @model_validator(mode="after")
    def _check_templates(self):
        for where, templates in self.template_lists():
            if not templates:
                raise ValueError(f"{where}: give at least one question template")
            for t in templates:
                check_template(t, self.placeholders, self.required, where)
        return self


def check_template(text: str, allowed: frozenset[str], required: tuple[frozenset[str], ...], where: str) -> None:
    """A template's placeholders: known to the task, and one of each required group present."""
    tpl = string.Template(text)
    if not tpl.is_valid():
        raise ValueError(f"{where}: {text!r} is not a valid template (write a literal $ as $$)")
    used = set(tpl.get_identifiers())
    unknown = used - allowed
    if unknown:
        raise ValueError(f"{where}: {text!r} uses {sorted(unknown)}; this task's placeholders are "
                         f"{sorted(allowed) or 'none'}")
    for group in required:
        if not used & group:
            raise ValueError(f"{where}: {text!r} needs one of " + ", ".join(f"${g}" for g in sorted(group)))


# --- annotations inside the row ---------------------------------------------------------------------

def annotations(row: dict) -> dict:
    return row.get(R.ANNOTATIONS) or {}


def interval(row: dict) -> tuple[float, float]:
    return float(row[R.START_S]), float(row[R.END_S])


def timed_items(row: dict, kind: str, text_key: str) -> tuple[list[tuple[float, float, str]], int]:
    """The row's `kind` items (segments, chapters) that lie inside its interval, in time order, clamped to
    it, as (start, end, text); and how many the video has in all (for the reject message). The texts are
    escaped (`escape_placeholders`): a title's "{{t:5}}" is its text, not a time for the exports to render."""
    start, end = interval(row)
    items = [i for i in (annotations(row).get(kind) or []) if i]
    inside = set()
    for i in items:
        a, b, text = i.get("start_s"), i.get("end_s"), " ".join(str(i.get(text_key) or "").split())
        if a is None or b is None or not text or not b > a:
            continue
        if a >= start - EDGE_TOLERANCE_S and b <= end + EDGE_TOLERANCE_S:
            inside.add((max(float(a), start), min(float(b), end), escape_placeholders(text)))
    return sorted(inside), len(items)


def crossing_items(row: dict, kind: str, text_key: str) -> list[tuple[float, float, str]]:
    """The row's `kind` items that start inside it ([start_s, end_s): one clip of a video holds a start)
    and end past it: a segment or chapter across a shot cut, which no clip holds whole, so no clip's
    template task uses it. As (start, end, text), as given, in time order. Only on the clips `shots` cut
    (they meet at their edges): clips given otherwise may overlap, and another may hold the item whole."""
    if row.get(R.SHOTS_IN_VIDEO) is None or row.get(R.SAMPLE_SCOPE) == R.SCOPE_VIDEO:
        return []
    start, end = interval(row)
    out = set()
    for i in [i for i in (annotations(row).get(kind) or []) if i]:
        a, b, text = i.get("start_s"), i.get("end_s"), " ".join(str(i.get(text_key) or "").split())
        if a is not None and b is not None and text and start <= float(a) < end and float(b) > end + EDGE_TOLERANCE_S:
            out.add((float(a), float(b), text))
    return sorted(out)


def crossing_rejects(stage: StageView, row: dict, task: str, prompt_id: str, kind: str, text_key: str,
                     readers: dict[str, str]) -> list:
    """One `annotation_crosses_clip` reject per item of `crossing_items`, so that an item no clip can use
    leaves a trace: written by the clip holding the item's start, and by one task only, the first enabled
    of `readers` (task -> the kind it reads) that reads `kind`; the others write none (no duplicates)."""
    enabled = stage.config.tasks.enabled()
    first = next((t for t in enabled if readers.get(t) == kind), None)
    if first != task:
        return []
    start, end = interval(row)
    out = []
    for k, (a, b, text) in enumerate(crossing_items(row, kind, text_key)):
        base = sample_base(stage, row, task, k, prompt_id, sid_task=f"{task}:crossing", teacher=False)
        short = text if len(text) <= 80 else text[:77] + "..."
        out.append(stage.reject(base, "annotation_crosses_clip", f"{kind[:-1]} {a:g}-{b:g} s {short!r} crosses the "
                                f"clip bounds [{start:g}, {end:g}] s: no clip holds it whole, so no {kind} task uses "
                                "it (said once, by the clip holding its start)", task=task, kind=kind,
                                item={"start_s": a, "end_s": b, text_key: text}, clip=[start, end]))
    return out


def text_identity(text: str) -> str:
    """What makes two annotation texts the same text: their `phrase`, ignoring case."""
    return phrase(text).casefold()


def once(items: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The items whose text the row says only once (`text_identity`), in time order: a step done twice ("add
    salt" at 0:10 and at 1:40) has no single place to ask order questions about."""
    counts = Counter(text_identity(text) for _, _, text in items)
    return [i for i in items if counts[text_identity(i[2])] == 1]

def dataset_of(row: dict, tcfg: TemplateTask) -> str | None:
    value = source_meta(row).get(tcfg.dataset_key)
    return str(value) if value not in (None, "") else None


# --- seeded choices -----------------------------------------------------------------------------------

def rng(task: str, tcfg: TemplateTask, row: dict, *key) -> random.Random:
    return random.Random(stable_hash(task, tcfg.seed, row[R.CLIP_ID], *key))


def pick_items(task: str, tcfg: TemplateTask, row: dict, items: list, per_clip: int | None) -> list[tuple[int, object]]:
    """(index, item) of up to `per_clip` items (None: all), chosen by the seeded RNG, in time order.
    The index is the item's place among the row's items: it keys the sample id."""
    indexed = list(enumerate(items))
    if per_clip is not None and per_clip < len(indexed):
        indexed = sorted(rng(task, tcfg, row, "items").sample(indexed, per_clip))
    return indexed


def question_templates(stage: StageView, task: str, tcfg: TemplateTask, row: dict,
                       shipped: str | None = None) -> tuple[list[str], str]:
    """The task's templates for this row and the id they are recorded (and sample ids keyed) under:
    the shipped list's prompt id (its `shipped` lines, default the task's), or `generate/<task>@config:<hash>`
    for templates given in the config."""
    dataset = dataset_of(row, tcfg)
    given = tcfg.templates_by_dataset.get(dataset) if dataset is not None else None
    given = given or tcfg.templates
    if given:
        digest = hashlib.sha256("\n".join(given).encode()).hexdigest()[:12]
        return list(given), f"generate/{task}@config:{digest}"
    prompt = stage.prompts[TEMPLATE_PROMPT]
    return parse_lines(prompt.text).get(shipped or task) or [task], prompt.id


def fill_question(templates: list[str], task: str, tcfg: TemplateTask, row: dict, key, **values) -> str:
    text = templates[rng(task, tcfg, row, "template", key).randrange(len(templates))]
    return string.Template(text).safe_substitute(**values)


# --- texts with time placeholders -----------------------------------------------------------------------

def seconds_text(t: float) -> str:
    """Seconds to the millisecond, no trailing zeros ("12.3", "3725.125", "0"): unlike `:g`, an hour-long
    video keeps its decimals."""
    return f"{float(t):.3f}".rstrip("0").rstrip(".") or "0"


def t_placeholder(t: float) -> str:
    return f"{{{{t:{seconds_text(t)}}}}}"


def span_placeholder(a: float, b: float) -> str:
    return f"{{{{span:{seconds_text(a)},{seconds_text(b)}}}}}"


def timed_lines(items: list[tuple[float, float, str]]) -> str:
    """One `{{span:a,b}} text` line per item (a dense-caption / chapter list)."""
    return "\n".join(f"{span_placeholder(a, b)} {text}" for a, b, text in items)


def time_values(a: float, b: float) -> dict:
    """The template values of an interval: `$span`, `$start`, `$end` (exporters render them)."""
    return {"span": span_placeholder(a, b), "start": t_placeholder(a), "end": t_placeholder(b)}


def phrase(text: str) -> str:
    """An annotation text set inside a question: no closing full stop."""
    return text.strip().rstrip(".").strip()


# --- rows -----------------------------------------------------------------------------------------------

def template_sample(stage: StageView, row: dict, task: str, index: int, prompt_id: str, qtype: str) -> dict:
    out = sample_base(stage, row, task, index, prompt_id, teacher=False)
    out[R.QUESTION_TYPE] = qtype
    return out


def annotation_evidence(items: list[tuple[float, float, str]]) -> dict:
    """`evidence` of a template sample: the annotation items it was built from, with their times."""
    return {"captions": timed_lines(items).splitlines() if items else [],
            "frame_timestamps_s": [], "transcript_spans": []}


def missing(stage: StageView, row: dict, task: str, prompt_id: str, kind: str, total: int):
    """No usable `kind` item inside the row: one reject for the task (the row's other tasks go on)."""
    start, end = interval(row)
    base = sample_base(stage, row, task, 0, prompt_id, teacher=False)
    where = f"inside [{start:g}, {end:g}] s" if total else "in the video's annotations"
    return stage.reject(base, "missing_annotation", f"{task}: no annotation {kind} {where}", task=task, kind=kind,
                        in_video=total)
