"""Score a model's predictions against a benchmark built by `vdata build` (`vdata score BUILD PREDS`).

The gold items are the build's sample rows (`samples/*.parquet`), each scored by its kind, the kind the
lmms-eval / VLMEvalKit exports give it (`vdata.exporters.lmms_eval.kind_of`): multiple choice (`mcq`,
`label_mcq`, `clue_qa`, `false_premise`, `event_order`: accuracy, CircularEval), grounding (the temporal
tasks: mIoU, R@{0.3,0.5,0.7}), moment (a temporal task answered by moments, chapter_grounding's start:
found within 3 s of a gold moment) and open-ended (token F1, exact match, as lmms-eval's `process_results_open`).
MCQ items with clue intervals (`answer_spans`, CG-Bench's `clue_qa`) also get CG-Bench's white-box figure
(clue mIoU) and black-box figure (accuracy when the model saw only the clue intervals). Captions are
training data, not evaluated. Parsing a reply (the letter it chose, the interval it named) is
`vdata.lmms_task_utils`, the file lmms-eval runs, so both score alike.

PREDICTIONS_FORMAT below is the predictions JSONL, as `vdata score --help` prints it. Bad predictions
never stop the scoring: each is counted by reason under `problems` (with a few example ids) and scored
as wrong.
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from vdata.exporters.dialog import SampleError, check_mcq
from vdata.exporters.media import shows_clip
from vdata.exporters.lmms_eval import kind_of
from vdata.exporters.source import BuildDir, ExportError, open_build, subset_of
from vdata.exporters.timefmt import placeholder_moments
from vdata.lmms_task_utils import (LETTERS, MOMENT_TOLERANCE_S, extract_letter, parse_interval, parse_point,
                                   process_results_open)
from vdata.metrics import circular_accuracy, percent, read_jsonl, recall_at, rotate_options, rotated_answer, spans_iou
from vdata.schemas import records as R

PREDICTIONS_FORMAT = """\
One JSON object per line, keyed by the sample id (`id`; `question_id` / `sample_id` are read too: the
lmms-eval export's `question_id` is the sample id). Fields, by item kind:
  MCQ:        {"id": ..., "prediction": "B"}   a letter or a reply ("The answer is B", "(B) ...")
              CircularEval: one line per rotation, {"id": ..., "rotation": r, "prediction": ...}, the model
              shown the options rotated by r (option i at position (i + r) mod k; `vdata score BUILD
              --circular-questions FILE` writes them). No rotation field: rotation 0, the plain question.
  grounding:  {"id": ..., "interval": [start, end]}  (or "prediction": "12.5 - 20.0" as text)
  open:       {"id": ..., "prediction": "free text"}
  CG-Bench:   on an MCQ with clue intervals, white-box {"id": ..., "clues": [[start, end], ...]} (the
              intervals the model says hold the answer) and black-box {"id": ..., "clue_prediction": "C"}
              (its answer when shown only the clue intervals). Fields of one id may share a line or not.
Times are seconds from the start of the video the model was shown (the clip for clip-scope samples, the
whole video for video-scope ones), as the exports write them; `--times video` reads them as seconds in
the source video instead. A later line for the same id, rotation and field wins (counted: duplicate)."""

ID_KEYS = ("id", "question_id", "sample_id")
FIELDS = ("prediction", "interval", "clues", "clue_prediction")
KINDS = ("mcq", "grounding", "moment", "open")
EXAMPLES_PER_PROBLEM = 5


@dataclass
class Gold:
    id: str
    kind: str                       # mcq | grounding | moment (answered by moments) | open
    task: str
    question_type: str
    options: list[str] | None = None
    answer_index: int | None = None
    answer: str = ""
    spans: list[tuple[float, float]] = field(default_factory=list)   # video-absolute seconds
    origin_s: float = 0.0           # where the shown video starts in the source (0: the whole video)
    group: str | None = None        # sample_group: the MCQ / open-ended twins of one question
    single_frame: float | None = None   # v_single_frame_correct, when the build ran the single_frame stage


@dataclass
class Problems:
    counts: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=lambda: defaultdict(list))

    def add(self, reason: str, where) -> None:
        self.counts[reason] += 1
        if len(self.examples[reason]) < EXAMPLES_PER_PROBLEM:
            self.examples[reason].append(where)

    def as_dict(self) -> dict:
        return {k: {"count": v, "examples": self.examples[k]} for k, v in sorted(self.counts.items())}


def load_gold(build: BuildDir, problems: Problems, seen: set[str] | None = None) -> dict[str, Gold]:
    """The build's evaluable samples by id; an MCQ that cannot be scored (bad options or answer index) is
    counted (`bad_item:<reason>`) and left out, captions are counted as `not_evaluated:<task>`. `seen` collects
    every sample id of the build, those left out too."""
    gold = {}
    single = {}
    if R.V_SINGLE_FRAME_CORRECT in build.schema.names:
        t = build.read_table([R.SAMPLE_ID, R.V_SINGLE_FRAME_CORRECT])
        single = dict(zip(t.column(R.SAMPLE_ID).to_pylist(), t.column(R.V_SINGLE_FRAME_CORRECT).to_pylist()))
    for item in build.items():
        if seen is not None:
            seen.add(item.id)
        kind = kind_of(item)
        if kind is None:
            problems.add(f"not_evaluated:{item.task}", item.id)
            continue
        g = Gold(item.id, kind, item.task, item.get(R.QUESTION_TYPE) or item.task, answer=item.get(R.ANSWER, ""),
                 spans=[(float(s["start_s"]), float(s["end_s"])) for s in item.get(R.ANSWER_SPANS, [])],
                 origin_s=float(item.get(R.START_S, 0.0)) if shows_clip(item.row) else 0.0,
                 group=item.get(R.SAMPLE_GROUP), single_frame=single.get(item.id))
        if kind == "mcq":
            try:
                g.options, g.answer_index = check_mcq(item)
            except SampleError as e:
                problems.add(f"bad_item:{e.reason}", item.id)
                continue
        if kind == "moment":   # the answer's own moments (a chapter's start), not the spans the sample records
            g.spans = [(t, t) for t in placeholder_moments(item.get(R.ANSWER))]
        if kind in ("grounding", "moment") and not g.spans:
            problems.add("bad_item:no_answer_spans", item.id)
            continue
        gold[g.id] = g
    return gold


def load_predictions(path: str, problems: Problems) -> dict[tuple[str, int], dict]:
    """(id, rotation) -> {field: value}, merged over lines. Lines that are not JSON objects, have no id
    or no field, or a rotation that is not a whole number, are counted and skipped."""
    preds: dict[tuple[str, int], dict] = defaultdict(dict)
    for n, obj in read_jsonl(path):
        where = f"line {n}"
        if not isinstance(obj, dict):
            problems.add("bad_json", where)
            continue
        pid = next((obj[k] for k in ID_KEYS if obj.get(k) is not None), None)
        if pid is None:
            problems.add("no_id", where)
            continue
        rotation = obj.get("rotation", 0)
        if isinstance(rotation, bool) or not isinstance(rotation, int) or rotation < 0:
            problems.add("bad_rotation", f"{pid} ({where})")
            continue
        given = {k: obj[k] for k in FIELDS if k in obj}
        if not given:
            problems.add("no_prediction_field", f"{pid} ({where})")
            continue
        entry = preds[(str(pid), rotation)]
        for k, v in given.items():
            if k in entry:
                problems.add("duplicate", f"{pid} ({where})")
            entry[k] = v
    return dict(preds)


def _letter(g: Gold, rotation: int, reply, problems: Problems, what: str) -> bool:
    """Whether a reply picked the right option at that rotation; a reply with no option letter in it is
    counted (`invalid_letter`) and wrong."""
    chosen = extract_letter(str(reply), len(g.options)) if isinstance(reply, (str, int)) else ""
    if not chosen:
        problems.add(f"invalid_letter{what}", g.id if not rotation else f"{g.id} (rotation {rotation})")
        return False
    return chosen == LETTERS[rotated_answer(g.answer_index, rotation, len(g.options))]


def _intervals(g: Gold, value, problems: Problems, what: str, times: str, many: bool) -> list | None:
    """Predicted interval(s) as video-absolute (start, end); None (counted) when malformed: not numbers
    (`bad_interval`) or ending before they start (`reversed_interval`: scored IoU 0, not swapped)."""
    if isinstance(value, str) and not many:
        span = parse_interval(value)
        value = list(span) if span else None
    items = value if many and isinstance(value, list) else [value]
    out = []
    for v in items:
        if (not isinstance(v, (list, tuple)) or len(v) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)):
            problems.add(f"bad_interval{what}", g.id)
            return None
        if v[1] < v[0]:
            problems.add(f"reversed_interval{what}", g.id)
            return None
        shift = g.origin_s if times == "visual" else 0.0
        out.append((float(v[0]) + shift, float(v[1]) + shift))
    if not out:
        problems.add(f"bad_interval{what}", g.id)
        return None
    return out


# The seconds exports write times with one decimal ("0.2 - 4.7 seconds" for 0.16 - 4.66): a reply's end this
# close to the gold's is the gold as the export wrote it
SECONDS_HALF_STEP_S = 0.05


def span_score(predicted: tuple[float, float], gold: tuple[float, float]) -> float:
    """A grounding reply's score against one gold span: 1 when both its ends are within half the seconds
    exports' step of the gold's, so that the target text itself scores full marks (outside check h26 F9: it
    scored IoU 0.98); else the temporal IoU."""
    if all(abs(p - q) <= SECONDS_HALF_STEP_S + 1e-6 for p, q in zip(predicted, gold)):
        return 1.0
    return spans_iou([predicted], [gold])


def _table(rows: list[tuple[Gold, float]], key: str, metric: str) -> dict:
    groups = defaultdict(list)
    for g, s in rows:
        groups[getattr(g, key)].append(s)
    return {name: {"items": len(v), metric: percent(v)} for name, v in sorted(groups.items())}


def _refuse_json_array(path: str) -> None:
    """ExportError for a predictions file written as one JSON array instead of JSONL (line by line, all of
    it would only be counted as bad_json). A line that is an array among object lines is counted as usual."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        whole = json.loads(text) if text.lstrip().startswith("[") else None
    except json.JSONDecodeError:
        return
    if isinstance(whole, list):
        raise ExportError(f"{path} is one JSON array, not JSONL: write one JSON object per line "
                          f"(`jq -c '.[]' {path}` converts it)")


def _open_scorable(build_dir: str) -> BuildDir:
    """The build, or ExportError naming the command that scores a `vdata haystack` benchmark folder
    (its items carry their own answers and rotations: `vdata haystack score`)."""
    build = open_build(build_dir)
    if build.level == "haystack_items":
        raise ExportError(f"{build_dir} is a `vdata haystack` benchmark, scored by its own command: "
                          f"`vdata haystack score {os.path.join(build_dir, os.path.basename(build.data_files[0]))} PREDICTIONS` (add `--form open` "
                          "for the open-ended answers); its items already hold each question at every rotation")
    return build


def score_build(build_dir: str, predictions_path: str, times: str = "visual", single_frame_max: float = 0.5) -> dict:
    """The report: per kind its items, answered count, figures and per-task / per-question-type tables,
    the CG-Bench clue figures, and the problems found, counted by reason. When the build ran the
    single_frame stage, MCQ accuracy is also given without the items one frame answers (share of
    one-frame attempts answered right above `single_frame_max`)."""
    if times not in ("visual", "video"):
        raise ValueError("times must be visual or video")
    problems = Problems()
    build = _open_scorable(build_dir)
    _refuse_json_array(predictions_path)
    in_build: set[str] = set()
    gold = load_gold(build, problems, in_build)
    preds = load_predictions(predictions_path, problems)
    for pid, rotation in sorted(preds):
        if pid not in gold:
            if pid not in in_build:   # one the build has but does not score is counted as not_evaluated / bad_item
                problems.add("unknown_id", pid)
        elif rotation and (gold[pid].kind != "mcq" or rotation >= len(gold[pid].options)):
            problems.add("bad_rotation", f"{pid} (rotation {rotation})")
    rows: dict[str, list] = {k: [] for k in KINDS}
    answered = Counter()
    ious, open_exact = [], []
    circular: dict[str, dict[int, bool]] = defaultdict(dict)
    clue_ious, clue_only, clue_full = [], [], []
    has = {k: any(k in p for p in preds.values()) for k in FIELDS}
    has_rotations = any(r and pid in gold and gold[pid].kind == "mcq" for pid, r in preds)
    for g in gold.values():
        p = preds.get((g.id, 0), {})
        reply = p.get("interval") if g.kind == "grounding" and "interval" in p else p.get("prediction")
        if g.kind == "moment" and reply is None and "interval" in p:
            # a window predicted for a moment (VidChapters' chapter start is often predicted so): its start
            # (outside check h20: it counted as no answer at all)
            reply = _window_start(p["interval"])
        if reply is None:
            problems.add(f"missing:{g.kind}", g.id)
        else:
            answered[g.kind] += 1
        if g.kind == "mcq":
            s = float(_letter(g, 0, reply, problems, "")) if reply is not None else 0.0
            if has_rotations:
                for r in range(len(g.options)):
                    pr = preds.get((g.id, r), {}).get("prediction")
                    if pr is not None:
                        circular[g.id][r] = _letter(g, r, pr, problems, "") if r else bool(s)
            if g.spans and has["clues"]:
                got = _intervals(g, p["clues"], problems, ":clues", times, many=True) if "clues" in p else None
                if "clues" not in p:
                    problems.add("missing:clues", g.id)
                clue_ious.append(spans_iou(got, g.spans) if got else 0.0)
            if g.spans and has["clue_prediction"]:
                if "clue_prediction" not in p:
                    problems.add("missing:clue_prediction", g.id)
                clue_only.append(float(_letter(g, 0, p["clue_prediction"], problems, ":clue_prediction"))
                                 if "clue_prediction" in p else 0.0)
                clue_full.append(s)
        elif g.kind == "grounding":
            got = _intervals(g, reply, problems, "", times, many=False) if reply is not None else None
            s = max(span_score(got[0], span) for span in g.spans) if got else 0.0
            ious.append(s)
        elif g.kind == "moment":   # found within MOMENT_TOLERANCE_S of a gold moment
            t = parse_point(str(reply), "seconds", None, None) if reply is not None else None
            shift = g.origin_s if times == "visual" else 0.0
            s = float(t is not None and min(abs(t + shift - a) for a, _ in g.spans) <= MOMENT_TOLERANCE_S)
        else:
            got = process_results_open({"answer": g.answer}, [str(reply)]) if reply is not None else {}
            s = got.get("token_f1", 0.0)
            open_exact.append(got.get("exact_match", 0.0))
        rows[g.kind].append((g, s))
    report = {"name": build.name, "build": build_dir, "predictions": predictions_path, "times": times,
              "items": {k: len(v) for k, v in rows.items()}, "answered": dict(answered)}
    metric = {"mcq": "accuracy", "grounding": "miou", "moment": "within_3s", "open": "token_f1"}
    for kind in KINDS:
        if not rows[kind]:
            report[kind] = None
            continue
        section = {"items": len(rows[kind]), "answered": answered[kind],
                   metric[kind]: percent(s for _, s in rows[kind]),
                   "by_task": _table(rows[kind], "task", metric[kind]),
                   "by_question_type": _table(rows[kind], "question_type", metric[kind])}
        report[kind] = section
    if report["mcq"] is not None:
        need = {g.id: len(g.options) for g, _ in rows["mcq"]}
        incomplete = [i for i in need if len(circular.get(i, {})) < need[i]]
        for i in incomplete if has_rotations else []:
            problems.add("circular_incomplete", i)
        report["mcq"]["circular"] = None if not has_rotations else {
            "items": len(need), "complete": len(need) - len(incomplete),
            "accuracy": circular_accuracy({i: circular.get(i, {}) for i in need}, need)}
        checked = [(g, s) for g, s in rows["mcq"] if g.single_frame is not None]
        needs_video = [s for g, s in rows["mcq"] if g.single_frame is None or g.single_frame <= single_frame_max]
        report["mcq"]["single_frame"] = None if not checked else {
            "checked": len(checked), "max_single_frame_correct": single_frame_max,
            "flagged": sum(g.single_frame > single_frame_max for g, _ in checked),
            "accuracy_without_flagged": percent(needs_video)}
    if report["grounding"] is not None:
        report["grounding"]["recall"] = recall_at(ious)
    if report["open"] is not None:
        report["open"]["exact_match"] = percent(open_exact)
    report["cg_bench"] = {
        "white_box": None if not clue_ious else {"items": len(clue_ious), "clue_miou": percent(clue_ious),
                                                 "recall": recall_at(clue_ious)},
        "black_box": None if not clue_only else {"items": len(clue_only), "clue_only_accuracy": percent(clue_only),
                                                 "full_video_accuracy": percent(clue_full)},
    }
    report["problems"] = problems.as_dict()
    return report


def circular_questions(build_dir: str) -> list[dict]:
    """Every MCQ of the build at every rotation, as CircularEval asks them: {id, rotation, question,
    options (lettered, rotated)}; answers are not written (score with `vdata score`)."""
    out = []
    for item in _open_scorable(build_dir).items():
        if subset_of(item.task, item.get(R.OPTIONS)) != "mcq":
            continue
        try:
            options, _ = check_mcq(item)
        except SampleError:
            continue
        for r in range(len(options)):
            shown = rotate_options(options, r)
            out.append({"id": item.id, "rotation": r, "question": item.get(R.QUESTION, ""),
                        "options": [f"{LETTERS[i]}. {o}" for i, o in enumerate(shown)]})
    return out


__all__ = ["PREDICTIONS_FORMAT", "Gold", "circular_questions", "load_gold", "load_predictions", "score_build"]


def _window_start(interval):
    """The start of an `interval` prediction ([s, e], or [[s, e], ...]: the first), else the value as given."""
    first = interval[0] if isinstance(interval, (list, tuple)) and interval else interval
    first = first[0] if isinstance(first, (list, tuple)) and first else first
    return first if isinstance(first, (int, float)) and not isinstance(first, bool) else interval
