"""VTG-IT (VTG-LLM's instruction data): a JSON list of `{video, QA: [{q, a}]}`, times written with
VTG-LLM's digit tokens (`<TIME_ZERO>`..`<TIME_NINE>`, `<TIME_DOT>`, six tokens a time).

Layout confirmed in gyxxyg/VTG-LLM `vtgllm/datasets/datasets/video_instruct_dataset.py`
(`Video_Instruct_Dataset.__getitem__`: `sample['video']` joined to `vis_root`, `sample['QA']` with
`q`/`a`; `number_to_token` writes a time as four zero-padded integer digits, a dot and one decimal) and
`utils/parse_annotation_tvg.py` (answers "<start> - <end> seconds, <text>", as in TimeIT). Clips are cut
(the loader reads no interval); times count from the clip's start.

Highlight detection and video summarization are written in VTG-IT's own answer grammar, confirmed in
`utils/construct_it_data/process_highlight_data.py`: point timestamps with one-decimal saliency scores,
QVHighlights "There are {n} highlight moments in the {t1, t2, ...} second. Their saliency scores are
{s1, s2, ...}." (times = 2-s clip id × 2) and TVSum / SumMe "The highlight timestamps are in the {t1, ...}
seconds. Their saliency scores are {s1, ...}." (scores `s * 4 + 1`, 1..5). vdata's `highlights` and
extractive `summarization` samples carry spans with scores already on 1..5 (`answer_scores`, see
`stages/generate/saliency.py`); each span becomes the 2-s clips whose middle lies in it, named by the
clip's start as QVHighlights does, times as digit tokens. A `summarization` sample without scores is
abstractive (sentences): VTG-IT has no such task, so it is skipped (`abstractive_summary`) with a note.
A sample naming a time past 9999.9 s (videos over 2 h 46 min) cannot be written in the tokens: it is
skipped (`time_out_of_range`) with a note, never written with a clamped time.
"""
from __future__ import annotations

import os

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, prepare, safe_name
from ..dialog import SampleError
from ..source import BuildDir, Item
from ..timefmt import OUT_OF_RANGE, VTG_MAX_S, TimeFormat, vtg_tokens
from .common import add_json, qa_pair, readable, release_items, release_options, result_for

CLIP_S = 2.0   # QVHighlights' clip: VTG-IT names a highlight by its clip's start (clip id × 2 s)
SALIENCY_TASKS = ("highlights", "summarization")
SALIENCY_HINT = ("Give times in seconds from the start of the video, written with time tokens (four digits, "
                 "<TIME_DOT>, one decimal), and a saliency score from 1 to 5 for each.")


def _scores(item: Item) -> list[float] | None:
    spans, scores = item.get(R.ANSWER_SPANS) or [], item.get(R.ANSWER_SCORES) or []
    return list(scores) if spans and len(scores) == len(spans) else None


def _accept(item: Item) -> str | None:
    if item.task in SALIENCY_TASKS and _scores(item) is None:
        return "abstractive_summary" if item.task == "summarization" else "highlights_without_scores"
    return None


def saliency_points(item: Item, tf: TimeFormat) -> list[tuple[float, float]]:
    """(seconds from the visual's start, score) of every 2-s clip whose middle lies in a scored span (a span
    too short to hold one: the clip holding its middle), in time order; a clip in two spans keeps the
    higher score."""
    best: dict[int, float] = {}
    for span, score in zip(item.get(R.ANSWER_SPANS), _scores(item)):
        a, b = tf.local(span["start_s"]), tf.local(span["end_s"])
        clips = [k for k in range(int(a // CLIP_S), int(b // CLIP_S) + 1) if a <= (k + 0.5) * CLIP_S < b]
        for k in clips or [int((a + b) / 2 // CLIP_S)]:
            best[k] = max(best.get(k, 0.0), float(score))
    return [(k * CLIP_S, best[k]) for k in sorted(best)]


def saliency_answer(item: Item, tf: TimeFormat) -> str:
    points = saliency_points(item, tf)
    times = ", ".join(vtg_tokens(t) for t, _ in points)
    scores = ", ".join(f"{s:.1f}" for _, s in points)
    if item.task == "highlights":
        return f"There are {len(points)} highlight moments in the {times} second. Their saliency scores are {scores}."
    return f"The highlight timestamps are in the {times} seconds. Their saliency scores are {scores}."


def vtg_qa(item: Item, tf: TimeFormat) -> tuple[str, str]:
    if item.task not in SALIENCY_TASKS:
        return qa_pair(item, tf)
    question = tf.render_text(item.get(R.QUESTION))
    if not question:
        raise SampleError("no_question", f"{item.id}: task {item.task!r} has no question text")
    return f"{question}\n{SALIENCY_HINT}", saliency_answer(item, tf)


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    notes: list[str] = []
    opts = release_options(opts, "vtg", notes)
    name = safe_name(opts.name or build.name)
    prepared, planner, skipped = prepare(build, dest, opts, items=release_items(build, opts.tasks), accept=_accept)
    root = os.path.join(planner.dest, "videos")
    records = [{"video": planner.ref(p.visual, root), "QA": [{"q": q, "a": a}]}
               for p, q, a in readable(prepared, skipped, vtg_qa)]
    if skipped.get("abstractive_summary"):
        notes.append(f"{skipped['abstractive_summary']} summarization sample(s) are sentence summaries; VTG-IT's video "
                     "summarization is key timestamps with saliency scores (generate `summarization: {form: extractive}`)")
    if skipped.get(OUT_OF_RANGE):
        notes.append(f"{skipped[OUT_OF_RANGE]} sample(s) name a time past {VTG_MAX_S} s, which VTG-LLM's four-digit "
                     "time tokens cannot write: skipped, not clamped")
    result = result_for("vtg_it", planner, skipped, notes)
    fname = f"{name}_vtg-it.json"
    add_json(result, planner, fname, records, len(records))
    result.notes.append(f"train with ann_root {os.path.join(planner.dest, fname)} and vis_root {root}")
    return result
