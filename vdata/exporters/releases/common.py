"""What the release-format exporters share: reading a build with the columns releases need, choosing
each release's own time format, the question/answer texts of every task, and the per-video grouping.

The release exporters read the same build directory as the training exporters and reuse their media
placement (`prepare`): a release whose record can name an interval (MVBench, TimeSuite: `start`/`end`)
references the source video with the clip interval; the others cut clips. Whole-video releases
(VidChapters, CG-Bench, Panda-70M) show the source video for every record (`whole_video`).
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import replace

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, NothingToExport, write_json
from ..dialog import (
    DEFAULT_QUESTIONS,
    SampleError,
    check_mcq,
    cot_text,
    events_text,
    letter,
    lettered_options,
    spans_text,
    time_points_only,
    turn,
)
from ..reserved import RELEASE_PROSE_COLUMNS, neutralize_row
from ..source import TEXT_COLUMNS, BuildDir, Item, clip_items, subset_of, table_rows
from ..timefmt import TimeFormat, parse_time_format

RELEASE_COLUMNS = tuple(dict.fromkeys((
    *TEXT_COLUMNS, R.SOURCE_META, R.ANNOTATIONS, R.SAMPLE_SCOPE, R.TRANSCRIPT_SEGMENTS, R.SHOT_TYPE,
    R.CAMERA_MOVEMENT, R.CAPTION_STEPS, R.SHOTS_IN_VIDEO, R.CAPTION_SELECTION_SCORE, R.Q_SUITABILITY, R.Q_MOTION, R.VIDEO_CAPTION, R.CAPTION_FIELDS,
)))
VIDEO_ROW_SUFFIX = ":video"
# Tasks whose answer is the sample's list of timed events (clip rows carry dense events for every task).
EVENT_TASKS = ("dense_caption", "chapter", "chapter_generation", "dense_from_segments")     # clip_id of the synthetic whole-video row (generate at scope: video)


class ReleaseSkip(SampleError):
    """An item this release does not carry (counted under its reason)."""


def release_items(build: BuildDir, tasks=None) -> list[Item]:
    """Like `BuildDir.items`, with the annotation / scope / structured-caption columns releases need.

    Rows are taken in (video, start, sample id) order, not as stored: a build's Parquet row order follows
    which Ray worker finished first, and a release file must come out byte-identical from the same data."""
    rows = sorted(table_rows(build.read_table(RELEASE_COLUMNS)),
                  key=lambda r: (str(r.get(R.VIDEO_ID)), float(r.get(R.START_S) or 0.0),
                                 str(r.get(R.SAMPLE_ID) or r.get(R.CLIP_ID) or "")))
    # a release's trainer reads <image> / <video> / chat tokens in text as markup, as LLaVA's does
    build.reserved_tokens = sum(neutralize_row(row, RELEASE_PROSE_COLUMNS) for row in rows)
    out: list[Item] = []
    for row in rows:
        if build.level in ("samples", "haystack"):
            if row.get(R.SAMPLE_ID) is not None and row.get(R.TASK) is not None:
                out.append(Item(row, subset_of(row[R.TASK], row.get(R.OPTIONS), build.level)))
        else:
            out.extend(clip_items(row))
    return [it for it in out if not tasks or it.task in tasks]


def clip_rows(build: BuildDir) -> list[dict]:
    """One row per real clip (first row seen of each clip id), in video then time order; the synthetic
    whole-video rows of video-scope generation are not clips."""
    seen: OrderedDict[str, dict] = OrderedDict()
    for row in table_rows(build.read_table(RELEASE_COLUMNS)):
        cid = row.get(R.CLIP_ID)
        if cid is None or str(cid).endswith(VIDEO_ROW_SUFFIX) or row.get(R.SAMPLE_SCOPE) == R.SCOPE_VIDEO:
            continue
        seen.setdefault(cid, row)
    build.reserved_tokens = sum(neutralize_row(row, RELEASE_PROSE_COLUMNS) for row in seen.values())
    return sorted(seen.values(), key=lambda r: (str(r.get(R.VIDEO_ID)), float(r.get(R.START_S) or 0.0)))


def by_video(rows) -> OrderedDict:
    """Rows (or items) grouped by video id, first-seen order."""
    groups: OrderedDict[str, list] = OrderedDict()
    for r in rows:
        row = r.row if isinstance(r, Item) else r
        groups.setdefault(str(row.get(R.VIDEO_ID)), []).append(r)
    return groups


def require(items: list, build: BuildDir, fmt: str, what: str) -> list:
    """`items`, or NothingToExport saying what the release needs (before anything is written)."""
    if not items:
        raise NothingToExport(f"nothing to export as {fmt} from {build.path}: {what}")
    return items


def clip_item(row: dict) -> Item:
    """A clip row as an export item (its caption), so `prepare` places the clip's media."""
    return Item({**row, R.SAMPLE_ID: row.get(R.CLIP_ID), R.TASK: "caption"}, "captions")


def is_video_scope(row: dict) -> bool:
    cid = row.get(R.CLIP_ID)
    return row.get(R.SAMPLE_SCOPE) == R.SCOPE_VIDEO or cid is None or str(cid).endswith(VIDEO_ROW_SUFFIX)


def whole_video(item: Item) -> Item:
    """The item with its clip columns cleared, so the media planner shows the whole source video and
    times are rendered from the video's start."""
    return Item({**item.row, **{c: None for c in R.CLIP_COLUMNS}}, item.subset)


def release_options(opts: ExportOptions, native: str, notes: list[str]) -> ExportOptions:
    """A release renders times in its own format. `--time` of the same kind is honoured (it carries
    bins, e.g. lita:50); another kind is replaced by the release's own, with a note."""
    asked, _ = parse_time_format(opts.time_format)
    want, _ = parse_time_format(native)
    if asked == want:
        return opts
    if opts.time_format != "seconds":
        notes.append(f"times rendered as {native!r}, the release's own format (--time {opts.time_format} ignored)")
    return replace(opts, time_format=native)


def annotations(row: dict) -> dict:
    return row.get(R.ANNOTATIONS) or {}


source_meta = R.source_meta   # the input's own fields of the video; the release exporters import it from here


def caption_fields(row: dict) -> dict:
    """The structured caption's named fields (caption stage, `strategy: structured`), or {}."""
    try:
        fields = json.loads(row.get(R.CAPTION_FIELDS) or "{}")
    except (TypeError, ValueError):
        return {}
    return fields if isinstance(fields, dict) else {}


def title_of(row: dict) -> str:
    return annotations(row).get("title") or os.path.splitext(os.path.basename(row.get(R.PATH) or ""))[0]


def events_of(item: Item) -> list:
    return item.get(R.DENSE_EVENTS) if item.task in EVENT_TASKS else []


def has_times(item: Item) -> bool:
    return bool(item.get(R.ANSWER_SPANS) or events_of(item) or "{{" in (item.get(R.ANSWER) or ""))


def qa_pair(item: Item, tf: TimeFormat, *, hint: bool = True) -> tuple[str, str]:
    """(question, answer) of any task, times rendered by `tf`. MCQs (every task with options: mcq,
    label_mcq, CoT with options) list lettered options and answer with the letter; span tasks answer
    with their spans, followed by the answer text when there is one (grounded QA, reasoning
    localization); dense / chapter tasks list their events; the rest as the training exporters do."""
    options = item.get(R.OPTIONS)
    if not options and not item.get(R.ANSWER_SPANS) and not events_of(item) or item.task == "cot":
        t, how = turn(item, tf), tf.hint(points=time_points_only(item))
        if hint and has_times(item) and how not in t.user:
            return f"{t.user}\n{how}", t.assistant
        return t.user, t.assistant
    question = tf.render_text(item.get(R.QUESTION)) or DEFAULT_QUESTIONS.get(item.task, "")
    if not question:
        raise SampleError("no_question", f"{item.id}: task {item.task!r} has no question text")
    if options:
        opts, idx = check_mcq(item)
        question += "\n" + "\n".join(lettered_options([tf.render_text(o) for o in opts]))
        return question, letter(idx)
    answer = tf.render_text(item.get(R.ANSWER))
    if answer and "{{" in (item.get(R.QUESTION) or "") and "{{" not in (item.get(R.ANSWER) or ""):
        # the question gives the interval ("what happens from 8 to 12 s?", a chapter's bounds): the answer
        # is the text alone, times neither repeated in it nor asked for
        return question, answer
    spans, events = item.get(R.ANSWER_SPANS), events_of(item)
    if spans and "{{" not in (item.get(R.ANSWER) or ""):
        answer = f"{spans_text(spans, tf)}: {answer}" if answer else spans_text(spans, tf)
    elif events and not answer:
        answer = events_text(events, tf)
    if not answer:
        raise SampleError("no_answer", f"{item.id}: task {item.task!r} has no answer text")
    if hint and has_times(item):
        question = f"{question}\n{tf.hint(points=time_points_only(item))}"
    return question, answer


def mcq_fields(item: Item, tf: TimeFormat) -> tuple[str, list[str], int]:
    """(question, option texts, answer index) of a multiple-choice item, times rendered."""
    opts, idx = check_mcq(item)
    question = tf.render_text(item.get(R.QUESTION))
    if not question:
        raise SampleError("no_question", f"{item.id}: no question text")
    return question, [tf.render_text(o) for o in opts], idx


def reasoning_text(item: Item, tf: TimeFormat) -> str:
    return cot_text(item, tf) if item.get(R.RATIONALE_STEPS) or item.get(R.RATIONALE) else ""


def result_for(fmt: str, planner, skipped, notes) -> ExportResult:
    return ExportResult(fmt, planner.dest, media=planner.stats, skipped=dict(skipped), notes=list(notes))


def readable(prepared, skipped, read=None):
    """`(prepared, *read(item, tf))` for each prepared item the release can carry; an item `read` refuses
    (a SampleError: no answer, bad options, ...) is counted under its reason in `skipped` instead.
    `read` is `qa_pair` by default (`mcq_fields` for multiple-choice releases)."""
    read = read or qa_pair
    for p in prepared:
        try:
            fields = read(p.item, p.tf)
        except SampleError as e:
            skipped[e.reason] += 1
            continue
        yield (p, *fields)


def add_json(result: ExportResult, planner, fname: str, data, rows: int) -> None:
    """Write one release file (`fname`, relative to the export folder) and record it with its record count."""
    write_json(os.path.join(planner.dest, fname), data)
    result.files.append(fname)
    result.rows[fname] = rows


def timecode(seconds: float) -> str:
    """`H:MM:SS.mmm`, the timecode form of Panda-70M's and Koala-36M's `timestamp` columns."""
    ms = int(round(max(0.0, float(seconds)) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}"
