"""The build directory as a Hugging Face `datasets` folder: `datasets.load_dataset(output_dir)` works.

A build dir holds more than data (`rejects/`, `_cache/`, `exports/`, `_hub/`, clip files), so
`datasets` must not guess what to read. The card's YAML names it (`datasets` reads a local folder's
README.md the way the Hub does):

- `configs:` one config named after the row level (`samples`, `clips` or `videos`, the default) whose
  `data_files` are the kept-row parts of each split (`<level>/*-<split>.parquet`: the sink files rows
  by the video's split, see `SplitsConfig`); for a sample build, a `clips` config over the clips table
  (`clips/*-<split>.parquet`: each clip's frames once, see R.CLIPS_TABLE; a sample's frames are the
  `clips` row with its `clip_id`, in the same split); and a `rejects` config over `rejects/*.parquet`,
  or, for a build that dropped nothing (it writes no rejects part), over an empty Parquet file of the
  rejects schema (`_card/rejects-empty.parquet`), so that the config the card promises always exists
  (`datasets` 5.x builds no empty split: that one loads with `streaming=True`);
- a build that kept no row (every one rejected) keeps its level config as the default, over an empty
  Parquet file of its level's schema (`_card/<level>-empty.parquet`), so that `load_dataset(output_dir)`
  says the kept table is empty instead of taking `rejects`, the only config left, for the data;
- `dataset_info:` the features of the level config and of `clips`, from the Parquet schemas, with the
  JPEG bytes of `frames` typed as `datasets.Image()`, so that loading decodes them to images and the Hub
  viewer shows thumbnails (storage stays `list<struct<timestamp_s, jpeg>>`: `Image` casts binary on read);
  the source video's `path` (absolute) typed as `datasets.Video()` where the installed `datasets` can
  decode video (it has `Video` and torchcodec loads: `video_feature_unavailable()`), else a string.

`refresh_card()` writes these two keys into `<out>/README.md` after every build and keeps the rest of
the card (the prose `vdata card` writes) as it is. `gather_facts()` reads what that prose says (sizes,
splits, teachers, stages and their settings) from the build; vdata/hub.py renders it.
"""
from __future__ import annotations

import functools
import logging
import os
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from vdata.schemas import records as R
from vdata.schemas.config import SPLIT_NAMES

from .source import BuildDir, ExportError, UnfinishedBuild, open_build, split_named, split_of_file

REJECTS_CONFIG = "rejects"
# Outside rejects/, which the runner owns: its resume deletes every part there that no ledger entry commits.
EMPTY_REJECTS = "_card/rejects-empty.parquet"
EMPTY_LEVEL = "_card/{level}-empty.parquet"   # the kept table of a build that kept no row
CARD_BODY = ("\nA vdata build. `datasets.load_dataset(\"<this folder>\")` loads the kept "
             "rows by split; `datasets.load_dataset(\"<this folder>\", \"rejects\")` the dropped ones with their "
             "reasons (a build that dropped nothing has an empty `rejects` table: add `streaming=True`, since "
             "`datasets` builds no empty split). `vdata card <this folder>` writes the full dataset card.\n")


def split_files(build: BuildDir, files: list[str] | None = None) -> dict[str, list[str]]:
    """Data parts (or `files`) by split, in SPLIT_NAMES order; splits without a part are left out."""
    by_split: dict[str, list[str]] = {s: [] for s in SPLIT_NAMES}
    for f in build.data_files if files is None else files:
        by_split[split_of_file(f)].append(f)
    return {s: files for s, files in by_split.items() if files}


def _split_data_files(build: BuildDir, files: list[str], folder: str) -> list[dict]:
    """`data_files:` of a config over `files` (parts of `<build>/<folder>/`), one entry per split."""
    named_by_split = all(split_named(f) for f in files)
    out = []
    for split, parts in split_files(build, files).items():
        # a glob keeps the card short; a part named without its split is listed by name
        paths = (f"{folder}/*-{split}.parquet" if named_by_split
                 else sorted(os.path.relpath(f, build.path) for f in parts))
        out.append({"split": split, "path": paths})
    return out


def local_configs(build: BuildDir) -> list[dict]:
    """README `configs:` that name the build's own files (paths relative to the build dir)."""
    configs = []
    if build.level != "haystack_items":
        data_files = _split_data_files(build, build.data_files, build.level)
        if not data_files and build.manifest:   # a finished build that kept nothing: its table, empty
            data_files = [{"split": "train", "path": EMPTY_LEVEL.format(level=build.level)}]
        if data_files:
            configs.append({"config_name": build.level, "data_files": data_files, "default": True})
        if build.clips_files:   # a sample build's frames, once per clip: joined to the samples by clip_id
            configs.append({"config_name": R.CLIPS_TABLE,
                            "data_files": _split_data_files(build, build.clips_files, R.CLIPS_TABLE)})
    else:   # a `vdata haystack` benchmark folder: one file of items
        configs.append({"config_name": "haystack", "default": True,
                        "data_files": [{"split": "test", "path": os.path.basename(build.data_files[0])}]})
    if build.rejects_files:
        configs.append({"config_name": REJECTS_CONFIG,
                        "data_files": [{"split": "train", "path": _rejects_glob(build)}]})
    elif build.level != "haystack_items":   # nothing dropped: the promised config, empty (write_empty_rejects)
        configs.append({"config_name": REJECTS_CONFIG, "data_files": [{"split": "train", "path": EMPTY_REJECTS}]})
    return configs


def write_empty_rejects(build: BuildDir) -> str:
    """`<build>/_card/rejects-empty.parquet`: the rejects schema and no row group."""
    return write_empty_table(build, EMPTY_REJECTS, R.REJECT_SCHEMA)


def write_empty_table(build: BuildDir, rel: str, schema: pa.Schema) -> str:
    """`<build>/<rel>`: a Parquet file of `schema` with no row group. (A file with one empty row group fails
    in `datasets`, which takes the first group's row count, 0, as its batch size.)"""
    path = os.path.join(build.path, rel)
    if not os.path.isfile(path) or pq.read_schema(path) != schema:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with pq.ParquetWriter(path + ".tmp", schema):
            pass
        os.replace(path + ".tmp", path)
    return path


def recorded_schema(build: BuildDir) -> pa.Schema:
    """The data schema the manifest records (`name: type` per column), as the registered column types;
    a column this vdata does not register is left out."""
    names = [str(c).split(":", 1)[0].strip() for c in build.manifest.get("schema") or []]
    return R.data_schema([n for n in names if n in R.FIELD_TYPES])


def _rejects_glob(build: BuildDir) -> str:
    rel = os.path.relpath(build.rejects_files[0], build.path)
    return rel if build.level == "haystack_items" else "rejects/*.parquet"


def frames_feature():
    """`frames` as `datasets` features: each item's JPEG bytes an `Image()`, its time a float."""
    import datasets

    return datasets.List({R.FRAME_TIMESTAMP_S: datasets.Value("float64"), R.FRAME_JPEG: datasets.Image()})


@functools.lru_cache(maxsize=None)
def video_feature_unavailable() -> str | None:
    """Why a video path column cannot be typed `datasets.Video()` here, or None when it can: the installed
    `datasets` must have `Video` (4.x and later) and torchcodec, its decoder, must load (it needs the
    FFmpeg shared libraries). A `Video()` column that cannot decode would fail on every row read, so
    without both the column stays a path string."""
    try:
        import datasets
    except ImportError:
        return "datasets is not installed"
    if not hasattr(datasets, "Video"):
        return f"datasets {datasets.__version__} has no Video feature"
    if not datasets.config.TORCHCODEC_AVAILABLE:
        return "torchcodec (the decoder of datasets.Video) is not installed"
    try:
        import torchcodec.decoders  # noqa: F401  (loads the FFmpeg libraries)
    except Exception as e:   # torchcodec raises RuntimeError / OSError when no FFmpeg libraries load
        return f"torchcodec does not load ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return None


def hf_features(schema: pa.Schema, video_columns: tuple[str, ...] = ()):
    """`datasets.Features` of a Parquet schema, with `frames` decoded as images and each of
    `video_columns` (string paths that resolve where the data is loaded: absolute ones) typed
    `datasets.Video()` when the installed `datasets` decodes video (`video_feature_unavailable`), else left
    a path string. (The Hub resolves no relative file path inside Parquet, so relative ones stay strings.)"""
    import datasets

    features = datasets.Features.from_arrow_schema(schema.remove_metadata())
    if R.FRAMES in features and schema.field(R.FRAMES).type == R.FIELD_TYPES[R.FRAMES]:
        features[R.FRAMES] = frames_feature()
    if video_feature_unavailable() is None:
        for col in video_columns:
            if col in features and schema.field(col).type == pa.string():
                features[col] = datasets.Video()
    return features


def dataset_info_yaml(config_name: str, features) -> dict:
    """One `dataset_info:` entry of the card: the features of `config_name`, in the card's YAML form."""
    import datasets

    return {"config_name": config_name, "features": datasets.DatasetInfo(features=features)._to_yaml_dict()["features"]}


def local_card_data(build: BuildDir) -> dict:
    """The card keys that make `load_dataset(build.path)` read the build: `configs` and `dataset_info`
    (writing the empty rejects file that the `rejects` config of a build that dropped nothing names)."""
    configs = local_configs(build)
    empty_level = EMPTY_LEVEL.format(level=build.level)
    schema = build.schema if build.data_files else recorded_schema(build)
    for rel, table_schema in ((EMPTY_REJECTS, R.REJECT_SCHEMA), (empty_level, schema)):
        if not any(f["path"] == rel for c in configs for f in c["data_files"]):
            continue
        try:
            write_empty_table(build, rel, table_schema)
        except OSError as e:   # a read-only build (`vdata card --output` elsewhere): name no missing file
            logging.getLogger("vdata").warning("no empty `%s` config: cannot write %s (%s)",
                                               REJECTS_CONFIG if rel == EMPTY_REJECTS else build.level,
                                               e.filename, e.strerror)
            configs = [c for c in configs if all(f["path"] != rel for f in c["data_files"])]
    infos = []
    if configs and configs[0]["config_name"] == build.level and len(schema):
        infos.append(dataset_info_yaml(build.level, hf_features(schema, video_columns=(R.PATH,))))
    if build.clips_files:
        infos.append(dataset_info_yaml(R.CLIPS_TABLE, hf_features(pq.read_schema(build.clips_files[0]))))
    return {"configs": configs, "dataset_info": infos}


def refresh_card(out_dir: str) -> str | None:
    """Write (or update) `<out_dir>/README.md` so that `datasets.load_dataset(out_dir)` opens the build.

    An existing card keeps its text and other metadata; only `configs` and `dataset_info` are replaced.
    Returns the card's path, or None when the folder holds neither kept rows nor rejects; raises
    UnfinishedBuild for a folder without manifest.json (an interrupted build).
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    try:   # a build that kept nothing too: its card names its empty table, never the rejects, as the data
        build = open_build(out_dir, allow_empty=True)
    except UnfinishedBuild:
        raise
    except ExportError:   # no build here
        return None
    keys = local_card_data(build)
    path = os.path.join(build.path, "README.md")
    if os.path.exists(path):
        try:
            card = DatasetCard.load(path)
        except Exception as e:   # a hand-edited card whose YAML no longer parses: say so, never clobber it
            logging.getLogger("vdata").warning("%s not refreshed (%s: %s): fix its YAML header, or delete it to "
                                               "have it rewritten", path, type(e).__name__, e)
            return None
        card.data.configs = keys["configs"]
        card.data.dataset_info = keys["dataset_info"] or None
    else:
        data = DatasetCardData(configs=keys["configs"], dataset_info=keys["dataset_info"] or None)
        card = DatasetCard(f"---\n{data.to_yaml()}\n---\n{CARD_BODY}")
    card.save(path)
    return path


# --- what the full card says (`vdata card`, `vdata push`: vdata/hub.py renders it) ----------------------

@dataclass
class CardFacts:
    """Everything the card says, gathered from the build (manifest, config, data columns)."""
    name: str
    description: str
    license: str
    config_text: str
    level: str
    rows_by_subset: dict
    rows_by_task: dict
    videos: int
    clips: int
    video_hours: float
    clip_seconds: list
    teachers: list                 # [{role, teacher, model, prompt_version, rows}]
    stages: list                   # manifest stage stats
    stage_settings: list           # [(name, settings dict)] from the config
    rejects_by_reason: dict
    examples: dict                 # subset -> one record (dict of short texts)
    manifest: dict = field(default_factory=dict)
    rows: int = 0                  # kept rows of the build's level (samples, clips or videos)
    rows_by_split: dict = field(default_factory=dict)
    haystack: dict = field(default_factory=dict)   # a `vdata haystack` benchmark: `haystack_summary`


def _stage_settings(config: dict) -> list:
    out = []
    for item in config.get("stages") or []:
        if isinstance(item, dict) and len(item) == 1:
            (name, kw), = item.items()
            kw = {k: v for k, v in (kw or {}).items() if k != "resources"}
            out.append((name, kw))
    return out


def gather_facts(build: BuildDir) -> CardFacts:
    from vdata.exporters.dialog import SampleError, turn
    from vdata.exporters.timefmt import TimeFormat

    m = build.manifest
    text = m.get("config_text") or ""
    if not text and isinstance(m.get("config"), dict):   # `vdata haystack` manifests keep the config as data
        text = yaml.safe_dump(m["config"], sort_keys=False)
    if build.level == "haystack_items":
        return _haystack_facts(build, m, text)
    try:
        config = yaml.safe_load(text) or {}
        if not isinstance(config, dict):
            config = {}
    except yaml.YAMLError:
        config = {}
    items = build.items()
    by_subset = Counter(it.subset for it in items)
    by_task = Counter(it.task for it in items)
    # videos and clips from the kept rows themselves: a clips-level build without captions has no items
    videos, clips = build.videos_and_clips()
    teachers: Counter = Counter()
    captioned = set()
    for it in items:
        r = it.row
        # caption teachers count captioned clips; sample teachers count samples
        clip_key = r.get(R.CLIP_ID) or r.get(R.VIDEO_ID)
        if (r.get(R.CAPTION_TEACHER) or r.get(R.CAPTION_MODEL)) and clip_key not in captioned:
            captioned.add(clip_key)
            teachers[("caption (clip)", r.get(R.CAPTION_TEACHER), r.get(R.CAPTION_MODEL), r.get(R.CAPTION_PROMPT_VERSION))] += 1
        if build.level in ("samples", "haystack") and (r.get(R.SAMPLE_TEACHER) or r.get(R.SAMPLE_MODEL)):
            teachers[(it.task, r.get(R.SAMPLE_TEACHER), r.get(R.SAMPLE_MODEL), r.get(R.SAMPLE_PROMPT_VERSION))] += 1
    listed = {k[1] for k in teachers}
    for name, t in sorted((m.get("teachers") or {}).items()):   # a teacher whose text other teachers wrote from
        if isinstance(t, dict) and t.get("requests") and name not in listed:   # (clip captions of a video's QA)
            teachers[("text the other teachers wrote from", name, t.get("model"), None)] = 0
    splits = Counter(build.row_splits())
    splits = {sp: splits[sp] for sp in SPLIT_NAMES if splits[sp]}
    examples = {}
    for it in items:
        if it.subset in examples:
            continue
        try:
            start = it.row.get(R.START_S) if it.row.get(R.CLIP_ID) else 0.0
            dur = (it.row[R.END_S] - start) if it.row.get(R.CLIP_ID) and it.row.get(R.END_S) is not None else it.row.get(R.DURATION_S)
            t = turn(it, TimeFormat("seconds", float(start or 0.0), dur, it.row.get(R.FPS)))
        except (SampleError, ValueError, KeyError, TypeError):
            continue
        examples[it.subset] = {"task": it.task, "sample_id": it.id, "question": t.user, "answer": t.assistant}
    return CardFacts(
        name=m.get("name") or config.get("name") or build.name,
        description=str(config.get("description") or ""),
        license=str(config.get("license") or "other"),
        config_text=text, level=build.level, rows_by_subset=dict(by_subset), rows_by_task=dict(by_task),
        videos=len(videos), clips=len(clips), video_hours=sum(videos.values()) / 3600.0,
        clip_seconds=sorted(clips.values()),
        teachers=[{"role": k[0], "teacher": k[1], "model": k[2], "prompt_version": k[3], "rows": v}
                  for k, v in sorted(teachers.items(), key=lambda kv: str(kv[0]))],
        stages=m.get("stages") or [], stage_settings=_stage_settings(config) or _unrecorded_settings(m),
        rejects_by_reason=m.get("rejects_by_reason") or {}, examples=examples, manifest=m,
        rows=sum(splits.values()), rows_by_split=splits)


def _unrecorded_settings(m: dict) -> list:
    """[(stage, None)] from the manifest's stage stats, for a manifest without its config (a build from a
    config made in Python without its text): the card still lists the stages, their settings unknown."""
    return [(s["stage"], None) for s in sorted(m.get("stages") or [], key=lambda s: s.get("index", 0))
            if s.get("stage")]


def _haystack_facts(build: BuildDir, m: dict, text: str) -> CardFacts:
    t = build.read_table()
    cols = set(t.column_names)
    tasks = Counter(t.column("task").to_pylist()) if "task" in cols else Counter()
    lengths = {}
    if {"item_id", "haystack_length_s"} <= cols:
        lengths = dict(zip(t.column("item_id").to_pylist(), t.column("haystack_length_s").to_pylist()))
    examples = {}
    if t.num_rows and {"question", "options", "answer_index"} <= cols:
        r = t.slice(0, 1).to_pylist()[0]
        opts = r.get("options") or []
        lettered = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(opts))
        answer = chr(65 + r["answer_index"]) if r.get("answer_index") is not None else (r.get("answer") or "")
        examples["haystack"] = {"task": r.get("task"), "sample_id": r.get("question_id"),
                                "question": f"{r.get('question')}\n{lettered}".strip(), "answer": answer}
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        config = {}
    config = config if isinstance(config, dict) else {}
    hs = haystack_summary(build.path, t, config)
    return CardFacts(
        name=m.get("name") or config.get("name") or build.name, description=str(config.get("description") or ""),
        license=str(config.get("license") or "other"), config_text=text, level=build.level,
        rows_by_subset={"haystack": t.num_rows}, rows_by_task=dict(tasks), videos=len(lengths), clips=0,
        video_hours=sum(v or 0.0 for v in lengths.values()) / 3600.0, clip_seconds=[], teachers=[],
        stages=m.get("stages") or [], stage_settings=_stage_settings(config),
        rejects_by_reason=hs["rejects_by_reason"], examples=examples, manifest=m,
        rows=t.num_rows, rows_by_split={"test": t.num_rows} if t.num_rows else {}, haystack=hs)


def haystack_summary(folder: str, items: pa.Table, config: dict) -> dict:
    """What a `vdata haystack` benchmark folder says of itself, for its card and report: items (one video
    each) and questions (the rows: an item is asked once per option rotation) in all and per task, the
    dropped items by `stage:reason` (rejects.parquet, else summary.json's `rejected`) with up to 3 messages
    per reason, the grid cells not built, and whether verification ran. Its manifest holds none of it."""
    import json

    cols = set(items.column_names)
    ids = items.column("item_id").to_pylist() if "item_id" in cols else []
    tasks = items.column("task").to_pylist() if "task" in cols else [None] * len(ids)
    per_task: dict = {}
    for item_id, task in zip(ids, tasks):
        entry = per_task.setdefault(task or "-", {"items": set(), "questions": 0})
        entry["items"].add(item_id)
        entry["questions"] += 1
    try:
        with open(os.path.join(folder, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        summary = {}
    summary = summary if isinstance(summary, dict) else {}
    by_reason: Counter = Counter()
    examples: dict = {}
    rejects = os.path.join(folder, "rejects.parquet")
    if os.path.isfile(rejects):
        r = pq.read_table(rejects)
        names = set(r.column_names)
        for row in r.select([c for c in ("stage", "reason", "message", "sample_id") if c in names]).to_pylist():
            key = f"{row.get('stage') or 'haystack'}:{row.get('reason') or '-'}"
            by_reason[key] += 1
            if len(examples.setdefault(key, [])) < 3:
                examples[key].append((row.get("sample_id") or "", row.get("message") or ""))
    else:
        by_reason.update({f"haystack:{k}": int(v) for k, v in (summary.get("rejected") or {}).items()})
    verify = ((config.get("haystack") or {}).get("verify") or {}) if isinstance(config.get("haystack"), dict) else {}
    skipped = summary.get("skipped_cells") or {}
    lmms = os.path.join(folder, "lmms_eval")
    tasks_written = sorted(d for d in os.listdir(lmms) if os.path.isdir(os.path.join(lmms, d))) \
        if os.path.isdir(lmms) else []
    return {"lmms_task": tasks_written[0] if tasks_written else None,"items": len(set(ids)), "questions": len(ids),
            "by_task": {k: {"items": len(v["items"]), "questions": v["questions"]} for k, v in sorted(per_task.items())},
            "rejects_by_reason": dict(sorted(by_reason.items())), "reject_examples": examples,
            "dropped": sum(by_reason.values()), "skipped_cells": skipped if isinstance(skipped, dict) else {},
            "verified": any(items.column("verified").to_pylist()) if "verified" in cols and ids
            else (verify.get("enabled", True) if isinstance(verify, dict) else True),
            "table": summary.get("table") or []}
