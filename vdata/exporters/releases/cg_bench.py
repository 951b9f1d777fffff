"""CG-Bench: `cgbench.json`, a list of clue-grounded QA items over whole videos.

Layout confirmed in CG-Bench/CG-Bench `cgbench_mini.json` (the release's sample file) and
`run/run_api.py`: `{qid, video_uid, question, answer, choices, right_answer, clue_intervals, domain,
sub_category, duration}`; `choices` are option texts, `right_answer` their letter, `answer` the right
option's text (the open-ended mode asks the same question without choices and scores `answer`),
`clue_intervals` a list of `[start, end]` seconds in the video, `duration` whole seconds.

Items: multiple-choice samples about the whole video (video scope). The clue intervals are the
sample's `answer_spans`, else its evidence transcript spans, else the times its reasoning steps cite
(one second around each); an item with none is skipped (`no_clue`). Clip-scope samples are skipped
(`clip_scope`): a question about one clip is ambiguous over the whole video. An open twin is counted
`open_twin` (its MCQ's record carries the open answer); an open item with no MCQ form `not_mcq:<kind>`.
`sub_category` is CG-Bench's name for the question's type where one asks the same thing (see `SUB_CATEGORY`;
false-premise items are "Hallucination"). Times in texts count from the video's start.

`domain` is the video's content domain (the release's 14: "Life Record", "Art & Culture", "Instruction &
Knowledge", ...): the input's own `domain` (or `category`) field when the manifest has one, else the
video's first annotated label, else empty. The title is not used: it names the video, not its domain.
"""
from __future__ import annotations

import os

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, prepare
from ..dialog import letter
from ..source import BuildDir
from .common import (add_json, annotations, is_video_scope, mcq_fields, readable, release_items, release_options,
                     result_for, source_meta, whole_video)


# CG-Bench's names for the question kinds it shares. cgbench_mini.json's 3,000 items use 12: Entity / Event /
# Text / Time / 2D Spatial / Scene Perception, Entity / Event / Text / Time / Scene Cognition, and Hallucination
# (240 items). A vdata question type maps where it asks the same thing; one CG-Bench has no category for
# (camera, speech, a type a config adds) keeps its own name rather than borrow a wrong one.
SUB_CATEGORY = {"false_premise": "Hallucination", "attribute": "Entity Perception", "counting": "Entity Perception",
                "action": "Event Perception", "description": "Scene Perception", "ocr": "Text Perception",
                "temporal": "Time Perception", "spatial": "2D Spatial Perception", "causal": "Event Cognition"}


def sub_category(item) -> str:
    kind = item.get(R.QUESTION_TYPE) or item.task
    return SUB_CATEGORY.get(kind, kind)


DOMAIN_FIELDS = ("domain", "category")   # manifest fields that name a video's content domain


def content_domain(row: dict) -> str:
    """The video's content domain as the input names it, or "" (see the module docstring)."""
    meta = source_meta(row)
    for key in DOMAIN_FIELDS:
        if isinstance(meta.get(key), str) and meta[key].strip():
            return meta[key].strip()
    labels = [x.strip() for x in annotations(row).get("labels") or [] if isinstance(x, str) and x.strip()]
    return labels[0] if labels else ""


def clue_intervals(item) -> list[list[float]]:
    spans = item.get(R.ANSWER_SPANS)
    if spans:
        return [[float(s["start_s"]), float(s["end_s"])] for s in spans]
    evidence = item.get(R.EVIDENCE) or {}
    spans = evidence.get("transcript_spans") or []
    if spans:
        return [[float(s["start_s"]), float(s["end_s"])] for s in spans]
    times = sorted({t for step in item.get(R.RATIONALE_STEPS) or [] for t in step.get("evidence_timestamps_s") or []})
    return [[max(0.0, t - 0.5), t + 0.5] for t in times]


def _accept(item):
    """Why CG-Bench does not carry an item, judged before any video is placed (so that a build with no
    whole-video MCQ with clues writes nothing and says so)."""
    if not item.get(R.OPTIONS):
        group = item.get(R.SAMPLE_GROUP)
        if group and group != item.id:   # the open twin of an MCQ written here: that record carries its `answer`
            return "open_twin"
        return f"not_mcq:{item.get(R.QUESTION_TYPE) or item.task}"   # e.g. a false-premise item with no MCQ form
    if not is_video_scope(item.row):
        return "clip_scope"
    return None if clue_intervals(item) else "no_clue"


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    notes: list[str] = []
    opts = release_options(opts, "seconds", notes)
    items = [whole_video(it) if not _accept(it) else it for it in release_items(build, opts.tasks)]
    prepared, planner, skipped = prepare(build, dest, opts, force_mp4=True, items=items, accept=_accept)   # <video_uid>.mp4
    records = []
    for p, question, choices, idx in readable(prepared, skipped, mcq_fields):
        duration = float(p.visual.duration_s or 0.0)
        clues = [[round(max(0.0, a), 2), round(min(b, duration), 2)] for a, b in clue_intervals(p.item) if b > a]
        if not clues:
            skipped["no_clue"] += 1
            continue
        records.append({"qid": len(records), "video_uid": p.visual.stem, "question": question, "answer": choices[idx],
                        "choices": choices, "right_answer": letter(idx), "clue_intervals": clues, "domain": content_domain(p.item.row),
                        "sub_category": sub_category(p.item), "duration": int(round(duration))})
    result = result_for("cg_bench", planner, skipped, notes)
    add_json(result, planner, "cgbench.json", records, len(records))
    result.notes.append(f"videos under {os.path.join(planner.dest, 'videos')}/<video_uid>.mp4")
    return result
