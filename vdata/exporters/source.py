"""Read a finished build directory into export items.

A build directory holds `manifest.json`, one data folder named after its row level (`samples/`,
`clips/`, `videos/`, or `haystack/` for long-video benchmark items) with Parquet shards, and `rejects/`.
Clip files written by the shots stage live in `clips/<xx>/` next to the clip Parquet, so only the
top-level `*.parquet` files of a data folder are data.

Every exporter works on `Item`s: one instruction sample each. Sample rows are items as they are. A
clips-level build (captions, no samples yet) yields one `caption` item per captioned clip and one
`dense_caption` item per clip with dense events, so a captions-only dataset exports too.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from vdata.schemas import records as R
from vdata.schemas.config import SPLIT_NAMES, VIDEO_EXTENSIONS

from .reserved import neutralize_row

DATA_LEVELS = ("samples", "haystack", "clips", "videos")
# The sink files kept rows by their video's split (`SplitsConfig`): `<level>/part-…-<split>.parquet`.
_SPLIT_OF_FILE = re.compile(r"-(%s)\.parquet$" % "|".join(SPLIT_NAMES))
HAYSTACK_ITEMS = "items.parquet"   # `vdata haystack` output: its own item schema (vdata.schemas.haystack)
HAYSTACK_DONE = "run_report.json"  # written last by `vdata haystack build` (vdata.haystack.writers.DONE)

# The subsets a dataset is split into (one JSON / config / task each), after LLaVA-Video-178K's
# cap / oe / mc files, with the temporal tasks (answers that are spans of the video) in their own subset.
SUBSETS = ("captions", "open_qa", "mcq", "grounding", "haystack")

# Every sample task `generate` writes, by the subset it lands in (lmms-eval / VLMEvalKit: the kind it is
# scored as). Captioning: the answer describes the video or an interval of it (times at most as labels of
# its lines). Temporal: the answer is, or is anchored by, spans of the video. MCQ-like: lettered options,
# the answer a letter (a task among them without options, e.g. an open-form twin, is open-ended).
CAPTION_TASKS = ("caption", "dense_caption", "chapter", "interval_caption", "dense_from_segments",
                 "chapter_generation", "chapter_title", "speech_captions")
TEMPORAL_TASKS = ("grounding", "segment_grounding", "chapter_grounding", "grounded_qa", "reasoning_localization",
                  "highlights", "summarization")
MCQ_TASKS = ("mcq", "label_mcq", "event_order", "clue_qa", "false_premise")
OPEN_TASKS = ("open_qa", "cot")
TASKS = (*dict.fromkeys(("caption", "open_qa", "mcq", "cot", "grounding", "dense_caption", "chapter",
                         *CAPTION_TASKS, *TEMPORAL_TASKS, *MCQ_TASKS)),)

# Columns the text exporters read: everything but the heavy per-clip payloads (frames, transcripts,
# candidates), which no training or eval format carries.
TEXT_COLUMNS = tuple(dict.fromkeys((
    R.SOURCE_URI, R.PATH, R.VIDEO_ID, R.DURATION_S, R.FPS, R.WIDTH, R.HEIGHT,
    R.CLIP_ID, R.CLIP_INDEX, R.START_S, R.END_S, R.CLIP_DURATION_S, R.CLIP_PATH,
    R.CAPTION, R.CAPTION_TEACHER, R.CAPTION_MODEL, R.CAPTION_PROMPT_VERSION, R.DENSE_EVENTS,
    *R.SAMPLE_COLUMNS, R.SAMPLE_SCOPE,   # scope: a video-scope sample's visual is the whole video (media.py)
)))


# a dataset's video name that can be a file name as it is (no folders, no hidden file, no odd characters)
_YT_DLP_NAME = re.compile(r"\[([A-Za-z0-9_-]{11})\]\.\w+$")   # yt-dlp's default "%(title)s [%(id)s].%(ext)s"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_@+=,-][A-Za-z0-9_@+=,.-]{0,149}")


class ExportError(ValueError):
    """The build directory cannot be exported as asked (the message says why and what to do)."""


class UnfinishedBuild(ExportError):
    """Data parts but no manifest.json: a build writes its manifest last, so the folder is a build that was
    interrupted (or is still running), and its parts hold only some of its videos."""


def is_mcq(task: str | None, options) -> bool:
    """A lettered multiple-choice sample: an `mcq` always (a bad one is rejected when rendered), another
    MCQ-like task or a chain of thought when it has options."""
    return task == "mcq" or (task in (*MCQ_TASKS, "cot") and bool(options))


def subset_of(task: str | None, options, level: str = "samples") -> str:
    """captions (LLaVA-Video-178K `cap`), mcq (`mc`), grounding (the temporal tasks) or open_qa (`oe`,
    also every task vdata does not know, so a new task is exported rather than lost)."""
    if level == "haystack":
        return "haystack"
    if is_mcq(task, options):
        return "mcq"
    if task in CAPTION_TASKS:
        return "captions"
    if task in TEMPORAL_TASKS:
        return "grounding"
    return "open_qa"


@dataclass
class Item:
    """One instruction sample, with the columns of its clip and video (canonical names and units)."""
    row: dict
    subset: str

    @property
    def id(self) -> str:
        return self.row[R.SAMPLE_ID]

    @property
    def task(self) -> str:
        return self.row[R.TASK]

    def get(self, col, default=None):
        v = self.row.get(col)
        return default if v is None else v


@dataclass
class BuildDir:
    path: str
    manifest: dict
    level: str
    data_files: list[str]
    rejects_files: list[str] = field(default_factory=list)
    reserved_tokens: int = 0   # markup tokens in the prose of the last items() read, written as text (reserved.py)

    @property
    def name(self) -> str:
        return self.manifest.get("name") or os.path.basename(os.path.normpath(self.path))

    @property
    def schema(self) -> pa.Schema:
        return pq.read_schema(self.data_files[0]) if self.data_files else pa.schema([])

    def read_table(self, columns=None) -> pa.Table:
        """All data rows; `columns` restricts to those present (missing ones are simply absent)."""
        if not self.data_files:
            return pa.table({})
        present = set(self.schema.names)
        cols = None if columns is None else [c for c in columns if c in present]
        tables = [pq.read_table(f, columns=cols) for f in self.data_files]
        return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]

    def dataset_names(self) -> dict[str, str]:
        """{video id: the name its dataset gives it} for the videos whose source was a dataset's annotation
        file (`dataset_video_id` in source_meta: an Ego4D uid, a Kinetics clip, a YouTube id) or a yt-dlp
        download named its way ("Title [<YouTube id>].mp4"), so that an export names their files as the dataset does. A name that is not a plain file name, or that two
        videos share, is left out (those videos keep their content id)."""
        table = self.read_table([R.VIDEO_ID, R.SOURCE_META, R.PATH])
        if not table.num_rows or R.VIDEO_ID not in table.column_names:
            return {}
        for column in (R.SOURCE_META, R.PATH):   # (a build without the column: all null)
            if column not in table.column_names:
                table = table.append_column(column, pa.nulls(table.num_rows, pa.string()))
        firsts = table.group_by(R.VIDEO_ID, use_threads=False).aggregate(
            [(R.SOURCE_META, "first"), (R.PATH, "first")])
        names: dict[str, str] = {}
        for video_id, meta, path in zip(firsts[R.VIDEO_ID].to_pylist(), firsts[f"{R.SOURCE_META}_first"].to_pylist(),
                                        firsts[f"{R.PATH}_first"].to_pylist()):
            given = json.loads(meta).get("dataset_video_id") if meta and '"dataset_video_id"' in meta else None
            if given is None and path:   # yt-dlp's own file name, "Title [dQw4w9WgXcQ].mp4": its YouTube id, which
                found = _YT_DLP_NAME.search(os.path.basename(str(path)))   # VidChapters and the like key by (h24 F17)
                given = found.group(1) if found else None
            if video_id and given is not None:
                stem, ext = os.path.splitext(str(given))
                name = stem if ext.lower() in VIDEO_EXTENSIONS else str(given)
                if _PLAIN_NAME.fullmatch(name):
                    names[video_id] = name
        taken = Counter(names.values())
        return {v: n for v, n in names.items() if taken[n] == 1}

    @property
    def clips_files(self) -> list[str]:
        """The clips table's parts (R.CLIPS_TABLE): a sample build's frames, once per clip."""
        return _parquet_files(os.path.join(self.path, R.CLIPS_TABLE)) if self.level in ("samples", "haystack") else []

    @property
    def frames_schema(self) -> pa.Schema | None:
        """The schema that holds the frames: the clips table's, or the data rows' own (a clip build, or a
        sample build written before the clips table); None when the build kept no frames."""
        for files in (self.clips_files, self.data_files):
            if files and R.FRAMES in (schema := pq.read_schema(files[0])).names:
                return schema
        return None

    def clip_table(self, clip_ids=None) -> pa.Table:
        """One row per clip with its frames (R.CLIPS_TABLE_COLUMNS), only `clip_ids` when given."""
        if self.clips_files:
            return read_clip_table(self.clips_files, clip_ids)
        schema = self.frames_schema   # frames on the data rows themselves
        if schema is None:
            return R.data_schema([R.CLIP_ID]).empty_table()
        return read_clip_table(self.data_files, clip_ids)

    def join_frames(self, table: pa.Table) -> pa.Table:
        """`table` (rows of this build with their CLIP_ID) with the frame columns of their clips."""
        if all(c in table.column_names for c in R.CLIPS_TABLE_PAYLOAD):
            return table
        ids = pc.unique(table[R.CLIP_ID].combine_chunks().drop_null()).to_pylist() if table.num_rows else []
        return join_clip_frames(table, self.clip_table(ids))

    def videos_and_clips(self) -> tuple[dict, dict]:
        """{video id: duration s} and {clip id: length s} over the kept rows (a clip once, also when several
        samples share it)."""
        rows = table_rows(self.read_table([R.VIDEO_ID, R.DURATION_S, R.CLIP_ID, R.START_S, R.END_S]))
        videos = {r[R.VIDEO_ID]: r.get(R.DURATION_S) or 0.0 for r in rows if r.get(R.VIDEO_ID)}
        clips = {r[R.CLIP_ID]: float(r[R.END_S]) - float(r[R.START_S]) for r in rows
                 if r.get(R.CLIP_ID) and r.get(R.START_S) is not None and r.get(R.END_S) is not None}
        return videos, clips

    def row_splits(self) -> list[str]:
        """The split of each row of `read_table()`, in its order (from the names of the data files)."""
        return [split for f in self.data_files for split in [split_of_file(f)] * pq.ParquetFile(f).metadata.num_rows]

    def read_rejects(self) -> pa.Table:
        if not self.rejects_files:
            return R.REJECT_SCHEMA.empty_table()
        return pa.concat_tables([pq.read_table(f, schema=R.REJECT_SCHEMA) for f in self.rejects_files])

    def items(self, tasks=None) -> list[Item]:
        """Export items in a stable order: by video, then time, then sample (clip) id. Rows are stored in
        the order the build's workers finished them, which varies run to run; sorting keeps an export of
        the same build byte-identical (a trainer shuffles anyway)."""
        if self.level == "haystack_items":
            raise ExportError(f"{self.path} is a `vdata haystack` benchmark: its lmms-eval and VLMEvalKit folders are "
                              "written by the haystack run; here only `--format parquet` (and `vdata push`) apply")
        rows = sorted(table_rows(self.read_table(TEXT_COLUMNS)), key=_stable_key)
        self.reserved_tokens = sum(neutralize_row(row) for row in rows)
        out = []
        if self.level in ("samples", "haystack"):
            for row in rows:
                if row.get(R.SAMPLE_ID) is None or row.get(R.TASK) is None:
                    continue
                out.append(Item(row, subset_of(row[R.TASK], row.get(R.OPTIONS), self.level)))
        else:
            for row in rows:
                out.extend(clip_items(row))
        if tasks:
            out = [it for it in out if it.task in tasks]
        return out


def _stable_key(row: dict) -> tuple:
    return (str(row.get(R.VIDEO_ID) or row.get(R.SOURCE_URI) or ""), float(row.get(R.START_S) or 0.0),
            float(row.get(R.END_S) or 0.0), str(row.get(R.SAMPLE_ID) or row.get(R.CLIP_ID) or ""))


def first_per_clip(table: pa.Table) -> pa.Table:
    """The first row of each clip id (a clip's samples all carry the same frames)."""
    if not table.num_rows:
        return table
    ids = table[R.CLIP_ID].combine_chunks()
    return table.take(pc.index_in(pc.unique(ids), value_set=ids))


def read_clip_table(files: list[str], clip_ids=None) -> pa.Table:
    """The clips table (R.CLIPS_TABLE_COLUMNS present in `files`), one row per clip id, restricted to
    `clip_ids` when given; the same clip in two parts (its samples written by two write tasks) once."""
    dataset = pads.dataset(files, format="parquet")
    columns = [c for c in R.CLIPS_TABLE_COLUMNS if c in dataset.schema.names]
    wanted = None if clip_ids is None else pc.field(R.CLIP_ID).isin(pa.array(clip_ids, pa.string()))
    return first_per_clip(dataset.to_table(columns=columns, filter=wanted))


def join_clip_frames(table: pa.Table, clips: pa.Table) -> pa.Table:
    """Left join of `table` with `clips` on CLIP_ID: each frame column of the clips table appended (null
    for a row whose clip is not there). An index lookup rather than `Table.join`, which keeps no row
    order and takes no list columns."""
    at = pc.index_in(table[R.CLIP_ID], value_set=clips[R.CLIP_ID].combine_chunks(), skip_nulls=True)
    for col in R.CLIPS_TABLE_PAYLOAD:
        if col in clips.column_names and col not in table.column_names:
            table = table.append_column(clips.schema.field(col), clips[col].take(at))
    return table


def clip_frames(build: BuildDir, clip_ids) -> dict[str, list]:
    """{clip id: its frames} for the given clips (those without frames left out)."""
    table = build.clip_table(sorted(set(clip_ids)))
    if R.FRAMES not in table.column_names:
        return {}
    return {c: f for c, f in zip(table[R.CLIP_ID].to_pylist(), table[R.FRAMES].to_pylist()) if f}


def table_rows(table: pa.Table) -> list[dict]:
    """Rows as dicts; column by column, which is ~1.5x faster than Table.to_pylist on nested columns."""
    names = table.column_names
    columns = [table.column(c).to_pylist() for c in names]
    return [dict(zip(names, values)) for values in zip(*columns)]


def clip_items(row: dict) -> list[Item]:
    """Caption items derived from a captioned clip row (clips-level builds)."""
    base = row.get(R.CLIP_ID) or row.get(R.VIDEO_ID)
    items = []
    sample_cols = {c: None for c in R.SAMPLE_COLUMNS}
    if row.get(R.CAPTION):
        items.append(Item({**row, **sample_cols, R.SAMPLE_ID: f"{base}-caption", R.TASK: "caption",
                           R.QUESTION_TYPE: "description", R.ANSWER: row[R.CAPTION],
                           R.SAMPLE_TEACHER: row.get(R.CAPTION_TEACHER), R.SAMPLE_MODEL: row.get(R.CAPTION_MODEL),
                           R.SAMPLE_PROMPT_VERSION: row.get(R.CAPTION_PROMPT_VERSION)}, "captions"))
    if row.get(R.DENSE_EVENTS):
        items.append(Item({**row, **sample_cols, R.SAMPLE_ID: f"{base}-dense", R.TASK: "dense_caption",
                           R.QUESTION_TYPE: "dense", R.SAMPLE_TEACHER: row.get(R.CAPTION_TEACHER),
                           R.SAMPLE_MODEL: row.get(R.CAPTION_MODEL),
                           R.SAMPLE_PROMPT_VERSION: row.get(R.CAPTION_PROMPT_VERSION)}, "captions"))
    return items


def open_build(path: str, allow_empty: bool = False) -> BuildDir:
    """Find the manifest and the data folder of a finished build; clear errors otherwise. A finished build
    that kept no row (every one rejected) is an error naming that, or with `allow_empty` a BuildDir of its
    manifest's level with no data file (what its card and `datasets` configs describe: an empty table)."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise ExportError(f"{path}: not a directory (give the output.dir of a finished build)")
    manifest_path = os.path.join(path, "manifest.json")
    manifest = {}
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ExportError(f"{manifest_path}: unreadable manifest ({e})")
    levels = [manifest["level"]] if manifest.get("level") in DATA_LEVELS else []
    levels += [lv for lv in DATA_LEVELS if lv not in levels]
    for level in levels:
        files = _parquet_files(os.path.join(path, level))
        if files:
            require_finished(path)
            return BuildDir(path, manifest, level, files, _parquet_files(os.path.join(path, "rejects")))
    if os.path.isfile(os.path.join(path, HAYSTACK_ITEMS)):   # a `vdata haystack` benchmark folder
        require_finished(path)
        if not os.path.isfile(os.path.join(path, HAYSTACK_DONE)):
            raise UnfinishedBuild(f"{path}: this benchmark folder is incomplete (interrupted build: no "
                                  f"{HAYSTACK_DONE}, which the build writes last); run `vdata haystack build` again")
        rej = os.path.join(path, "rejects.parquet")
        return BuildDir(path, manifest, "haystack_items", [os.path.join(path, HAYSTACK_ITEMS)],
                        [rej] if os.path.isfile(rej) else [])
    rejects = _parquet_files(os.path.join(path, "rejects"))
    if rejects:   # dropped rows and no kept ones: a finished build only once its manifest says so
        require_finished(path)
    if manifest.get("level") in DATA_LEVELS:   # a finished build whose every row was dropped
        if allow_empty:
            return BuildDir(path, manifest, manifest["level"], [], rejects)
        raise ExportError(f"{path}: the build kept no {manifest['level']} rows: " + kept_nothing(manifest))
    raise ExportError(f"{path}: no data Parquet in any of {', '.join(f'{lv}/' for lv in DATA_LEVELS)} "
                      "(is this the output.dir of a finished `vdata build`?)")


def kept_nothing(manifest: dict) -> str:
    """Why a finished build has no kept row, from its manifest: its rejects, or no input at all."""
    rejected = manifest.get("rejects") or 0
    if not rejected:
        return f"its {manifest.get('inputs') or 0} input(s) gave no row, and none was rejected"
    reasons = sorted((manifest.get("rejects_by_reason") or {}).items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {v}" for k, v in reasons[:3]) + (", ..." if len(reasons) > 3 else "")
    return (f"every row was rejected ({rejected} reject(s){': ' + shown if shown else ''}; they are in rejects/, "
            "and `vdata report` shows why); loosen the thresholds or check the inputs, then build again")


def require_finished(path: str) -> None:
    """Refuse a folder with data but no manifest, as `vdata report` and `vdata rethreshold` do: its parts
    are what an interrupted build committed, so a card or an export of them would pass a part of the
    dataset off as the whole. (A folder without data keeps the plainer "no data Parquet" error.)"""
    if not os.path.isfile(os.path.join(path, "manifest.json")):
        raise UnfinishedBuild(f"{path}: no manifest.json, so not a finished build (a build writes it last: this "
                              "one was interrupted or is still running); run `vdata build` on its config again "
                              "to finish it (output.mode: resume keeps the committed parts)")


def split_of_file(path: str) -> str:
    """The split a data part holds, from its name; a part named without one (written before splits,
    or by hand) is train."""
    m = _SPLIT_OF_FILE.search(os.path.basename(path))
    return m.group(1) if m else "train"


def split_named(path: str) -> bool:
    return bool(_SPLIT_OF_FILE.search(os.path.basename(path)))


def _parquet_files(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.endswith(".parquet") and os.path.isfile(os.path.join(folder, f)))
