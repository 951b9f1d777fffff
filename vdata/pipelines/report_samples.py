"""The report's sample viewer: a few kept rows per task with frame thumbnails and their text (caption,
question, options, answer, answer spans, evidence), and a few rejects per reason with their messages.

Frames are the one large column of a build: they are read only for the rows shown (a sample build's from
its clips table, by the shown rows' clip ids; a clip build's a row group at a time, from the first part
files that hold enough rows), and each shown frame is downscaled to a small
JPEG thumbnail (inlined as a data: URI in the HTML, a file next to the Markdown).
"""
from __future__ import annotations

import io
import os
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from vdata.prompts import unescape_placeholders
from vdata.schemas import records as R
from vdata.teachers.redaction import redact

from .report_data import RunData, Section, TableBlock, _parquet_files

PER_TASK = 6            # rows shown per task: the page stays small whatever the build's size
FRAMES_PER_ROW = 2
THUMB_WIDTH = 160
PER_REASON = 3          # reject examples per stage and reason
CLIP_TASK = "clip"      # what a clip-level build's rows are shown as

_TEXT_COLUMNS = (R.SOURCE_URI, R.VIDEO_ID, R.CLIP_ID, R.SAMPLE_ID, R.START_S, R.END_S, R.TASK, R.QUESTION_TYPE,
                 R.QUESTION, R.OPTIONS, R.ANSWER_INDEX, R.ANSWER, R.ANSWER_SPANS, R.RATIONALE, R.EVIDENCE,
                 R.CAPTION, R.TRANSCRIPT_TEXT, R.V_STATUS)


@dataclass
class Thumb:
    jpeg: bytes
    timestamp_s: float


@dataclass
class SampleCard:
    """One shown row: where it comes from, its thumbnails, and its text as (label, text) pairs."""

    task: str
    title: str
    thumbs: list[Thumb] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------- choosing and reading rows
def _chosen_ids(run: RunData, key: str) -> dict[str, list[str]]:
    """Per task, up to PER_TASK row ids, taken round-robin over videos so that one long video does not
    fill a task's whole row."""
    data = run.data
    ids = data[key].to_pylist()
    tasks = data[R.TASK].to_pylist() if R.TASK in data.column_names else [CLIP_TASK] * len(ids)
    videos = data[R.VIDEO_ID].to_pylist() if R.VIDEO_ID in data.column_names else [None] * len(ids)
    by_task: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    for rid, task, video in zip(ids, tasks, videos):
        if rid is not None:
            by_task[task or CLIP_TASK][video].append(rid)
    chosen = {}
    for task in sorted(by_task):
        queues = list(by_task[task].values())
        picked: list[str] = []
        while len(picked) < PER_TASK and any(queues):
            for q in queues:
                if q and len(picked) < PER_TASK:
                    picked.append(q.pop(0))
        chosen[task] = picked
    return chosen


def _read_rows(files: list[str], key: str, wanted: set[str]) -> dict[str, dict]:
    """The wanted rows (text columns and frames), reading only the row groups that hold them."""
    found: dict[str, dict] = {}
    for path in files:
        if len(found) == len(wanted):
            break
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        columns = [c for c in (*_TEXT_COLUMNS, R.FRAMES) if c in names]
        for group in range(pf.num_row_groups):
            ids = pf.read_row_group(group, columns=[key])[key].to_pylist()
            rows = [i for i, rid in enumerate(ids) if rid in wanted and rid not in found]
            if not rows:
                continue
            table = pf.read_row_group(group, columns=columns).take(pa.array(rows))
            for row in table.to_pylist():
                found[row[key]] = row
    return found


def _add_clip_frames(rows: dict[str, dict], run: RunData) -> None:
    """The shown sample rows' frames, from the clips table (a sample build stores them once per clip)."""
    clip_files = _parquet_files(os.path.join(run.output_dir, R.CLIPS_TABLE)) if run.level == "samples" else []
    if not clip_files or not rows or any(R.FRAMES in r for r in rows.values()):
        return
    from vdata.exporters.source import read_clip_table   # deferred: the exporters load for a samples build only

    clips = read_clip_table(clip_files, sorted({r[R.CLIP_ID] for r in rows.values() if r.get(R.CLIP_ID)}))
    frames = dict(zip(clips[R.CLIP_ID].to_pylist(), clips[R.FRAMES].to_pylist())) if R.FRAMES in clips.column_names else {}
    for r in rows.values():
        r[R.FRAMES] = frames.get(r.get(R.CLIP_ID))


def thumbnail(jpeg: bytes, width: int = THUMB_WIDTH) -> bytes:
    """A frame downscaled to `width` pixels wide (JPEG draft mode decodes at a fraction of the size)."""
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as im:
        im.draft("RGB", (width, width))
        im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, max(1, round(im.height * width / im.width))), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=75, optimize=True)
    return buf.getvalue()


def _shown_frames(row: dict) -> list[dict]:
    """The frames the row's evidence cites when it cites some, else its first and middle frames."""
    frames = [f for f in row.get(R.FRAMES) or [] if f and f.get(R.FRAME_JPEG)]
    if not frames:
        return []
    cited = ((row.get(R.EVIDENCE) or {}).get("frame_timestamps_s") or [])[:FRAMES_PER_ROW]
    if cited:
        picks = [min(frames, key=lambda f, t=t: abs(f[R.FRAME_TIMESTAMP_S] - t)) for t in cited]
    else:
        picks = [frames[0], frames[len(frames) // 2]] if len(frames) > 1 else frames
    return list({id(f): f for f in picks}.values())[:FRAMES_PER_ROW]


# --------------------------------------------------------------------------- text of a card
def _seconds(v) -> str:
    return f"{v:.1f} s" if isinstance(v, (int, float)) else "?"


def _span(start, end) -> str:
    return f"{_seconds(start)[:-2]}–{_seconds(end)}"


def _card_fields(row: dict) -> list[tuple[str, str]]:
    out = []
    if row.get(R.QUESTION):
        out.append(("question", row[R.QUESTION]))
    options = row.get(R.OPTIONS) or []
    for i, text in enumerate(options):
        correct = " ✓" if row.get(R.ANSWER_INDEX) == i else ""
        out.append((f"option {chr(65 + i)}{correct}", text))
    if row.get(R.ANSWER) and not options:
        out.append(("answer", row[R.ANSWER]))
    if row.get(R.CAPTION) and (not row.get(R.TASK) or row.get(R.ANSWER) != row.get(R.CAPTION)):
        out.append(("caption", row[R.CAPTION]))
    spans = row.get(R.ANSWER_SPANS) or []
    if spans:
        out.append(("answer spans", ", ".join(_span(s["start_s"], s["end_s"]) for s in spans)))
    if row.get(R.RATIONALE):
        out.append(("rationale", row[R.RATIONALE]))
    evidence = row.get(R.EVIDENCE) or {}
    for span in evidence.get("transcript_spans") or []:
        out.append(("evidence: speech", f"[{_span(span['start_s'], span['end_s'])}] {span.get('text') or ''}"))
    for text in evidence.get("captions") or []:
        out.append(("evidence: caption", text))
    if evidence.get("frame_timestamps_s"):
        out.append(("evidence: frames at", ", ".join(_seconds(t) for t in evidence["frame_timestamps_s"])))
    if not out and row.get(R.TRANSCRIPT_TEXT):
        out.append(("speech", row[R.TRANSCRIPT_TEXT]))
    if row.get(R.V_STATUS):
        out.append(("verification", row[R.V_STATUS]))
    return [(label, _short(_rendered(str(text)))) for label, text in out]


def _rendered(text: str) -> str:
    """A stored text as a reader reads it: its time placeholders (`{{t:12.5}}`, `{{span:0,5}}`) written as
    seconds of the source video ("0.0 - 5.0 seconds"), the time base of the card's title and its answer
    spans; a source text's escaped braces as the source wrote them (outside check h26 L9: the viewer
    printed the placeholders raw)."""
    if "{{" not in text:
        return unescape_placeholders(text)
    from vdata.exporters.timefmt import TimeFormat   # deferred, as the exporters' other helpers here

    try:
        return TimeFormat("seconds").render_text(text)
    except (ValueError, TypeError):   # a placeholder that names no time: shown as stored
        return unescape_placeholders(text)


def source_name(uri: str | None) -> str:
    """The file name a reader knows a source by: the last part of its path, or of a URL's path without the
    URL's query and fragment, which may carry its credentials (a presigned or `?token=` URL: outside check
    h26 F17); anything credential-shaped masked."""
    uri = (uri or "").rstrip("/")
    if "://" not in uri:
        return redact(os.path.basename(uri))
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    name = os.path.basename(parts.path.rstrip("/")) or parts.netloc.rpartition("@")[2]
    # a page that names the video by its query (`watch?v=ID`) keeps it; a file's query is dropped
    return redact(name + (f"?{parts.query}" if parts.query and "." not in name else ""))


def _short(text: str, n: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _card(task: str, row: dict, key: str) -> SampleCard:
    where = source_name(row.get(R.SOURCE_URI)) or row.get(R.VIDEO_ID) or ""
    if row.get(R.START_S) is not None:
        where += f" {_span(row.get(R.START_S), row.get(R.END_S))}"
    kind = task + (f" · {row[R.QUESTION_TYPE]}" if row.get(R.QUESTION_TYPE) else "")
    thumbs = [Thumb(thumbnail(f[R.FRAME_JPEG]), float(f[R.FRAME_TIMESTAMP_S])) for f in _shown_frames(row)]
    return SampleCard(task, f"{kind} — {where} ({row[key]})", thumbs, _card_fields(row))


# --------------------------------------------------------------------------- the sections
def samples(run: RunData) -> Section | None:
    if run.data is None or run.data.num_rows == 0:
        return None
    key = R.SAMPLE_ID if R.SAMPLE_ID in run.data.column_names else R.CLIP_ID
    if key not in run.data.column_names:
        return None
    chosen = _chosen_ids(run, key)
    files = _parquet_files(os.path.join(run.output_dir, run.level or ""))
    rows = _read_rows(files, key, {rid for ids in chosen.values() for rid in ids})
    _add_clip_frames(rows, run)
    cards = [_card(task, rows[rid], key) for task, ids in chosen.items() for rid in ids if rid in rows]
    if not cards:
        return None
    counts = ", ".join(f"{sum(c.task == t for c in cards)} {t}" for t in chosen)
    text = (f"Kept rows as written ({counts}; at most {PER_TASK} per task, spread over the videos), with "
            f"{FRAMES_PER_ROW} of each row's frames (the ones its evidence cites, when it cites some). Times "
            "are seconds of the source video, in the texts too (an export writes them from the start of the "
            "clip it shows).")
    return Section("samples", "Sample viewer", text, cards=cards)


def reject_examples(run: RunData) -> TableBlock | None:
    """Up to PER_REASON rejects per stage and reason: which row (its file, then its sample or clip id), and
    the message that says why."""
    rj = run.rejects
    if rj.num_rows == 0 or "message" not in rj.column_names:
        return None
    seen: dict[tuple, int] = defaultdict(int)
    picked = []   # only the shown rows become Python dicts: a build can reject millions
    for i, k in enumerate(zip(rj["stage"].to_pylist(), rj["reason"].to_pylist())):
        if seen[k] < PER_REASON:
            seen[k] += 1
            picked.append(i)
    rows = []
    for row in rj.take(pa.array(picked, type=pa.int64())).to_pylist():
        # the file first: a reader looks for the video, an id alone names nothing they can open
        where = [source_name(row.get(R.SOURCE_URI)), row.get(R.SAMPLE_ID) or row.get(R.CLIP_ID)]
        rows.append([row["stage"], row["reason"], " · ".join(x for x in where if x) or "–",
                     _short(redact(row.get("message") or ""), 200)])
    order = {s["stage"]: s["index"] for s in run.manifest.get("stages") or []}
    rows.sort(key=lambda r: (order.get(r[0], 99), r[1]))
    return TableBlock(["stage", "reason", "row", "message"], rows,
                      caption=f"Examples: up to {PER_REASON} per reason, with their messages", numeric=False)

