"""Exporters: render a finished build's canonical Parquet into the formats trainers and evaluators load.

One module per format; `vdata.schemas.registry.EXPORT_FORMATS` maps a format name to "module:function"
(imported on use), so config validation can list the formats without importing this package.

Training and evaluation formats (every sample task; subsets after LLaVA-Video-178K's cap / oe / mc, plus
the temporal tasks: `source.subset_of`):

| format | files | clips without a clip file |
|---|---|---|
| llava | `<name>_{cap,oe_qa,mc_qa}.json` + `<name>.yaml` (LLaVA-NeXT data_path) | cut with ffmpeg |
| sharegpt | `<name>_<subset>.json` + `dataset_info.json` (LLaMA-Factory) | cut |
| swift | `<name>_<subset>.jsonl` (ms-swift, absolute video paths) | cut |
| internvl | `<name>_<subset>.jsonl` + `<name>_meta.json` | source video + `clip: [start, end]` |
| lmms-eval | task YAMLs + `utils.py` + `data/*.parquet` | cut |
| vlmevalkit | `<name>_<kind>.tsv` + `video/<id>.mp4` | cut |
| parquet | `data/<subset>/train-*.parquet` + README configs (canonical columns) | cut |

Subsets: `captions` (caption, dense_caption, chapter, interval_caption, dense_from_segments,
chapter_generation, chapter_title, speech_captions), `mcq` (mcq, label_mcq, event_order, clue_qa,
false_premise with options; cot with options), `grounding` (grounding, segment_grounding,
chapter_grounding, grounded_qa, reasoning_localization, highlights, summarization), `open_qa` (the rest).
A sample generated at `scope: video` (`sample_scope` = video) shows the whole source video, never a cut.

Preference formats (`preference_pairs` samples only: chosen / rejected; the others are skipped as
`no_preference`): sharegpt_preference (LLaMA-Factory sharegpt + `ranking: true`, `preference.py`),
swift_preference (ms-swift `rejected_response`), trl_preference (TRL prompt / chosen / rejected + images).
Dialogue formats (`streaming_dialogue` samples, their `turns`): livechat (VideoLLM-online
`{video_uid, conversation [{role, content, time}]}`), llava_dialogue (multi-turn LLaVA, times in text).

Release formats: the original layouts of the field's datasets, one module each under `releases/`
(its docstring has the table and where each layout was confirmed): vidchapters, mvbench, cg_bench,
timesuite, lita, vtg_it, grounded_videollm, vript, panda70m, sharegpt4video, howtocaption, koala36m.

Times (`--time`, `time_format`; `timefmt.py` has where each was confirmed), rendered relative to the
start of the visual the sample shows:

| spec | a span is written | for |
|---|---|---|
| `seconds` (default) | `12.3 - 20.5 seconds` | any model |
| `timesuite` | `12.3 - 20.5 seconds` (one decimal) | TimeSuite / TimeIT |
| `relative` | `12 - 40` (positions 00-99 of the visual) | VTimeLLM-style |
| `frames` | `frames 75 - 120` | frame-index models |
| `lita[:T]` | `from <t12> to <t40>` (T = 100 tokens) | LITA |
| `vtg` | `<TIME_ZERO>…<TIME_DOT><TIME_FIVE> - … seconds` | VTG-LLM |
| `grounded_videollm[:N]` | `from <12> to <40>` (N = 300 bins) | Grounded-VideoLLM |
| `bracketed` | `from <12.30> to <40.00>` | LITA / Grounded-VideoLLM release files |

    from vdata.exporters import export
    result = export("out/my-dataset", "exports/llava", "llava", time_format="lita:100", media="link")
"""
from __future__ import annotations

import dataclasses
import importlib
from collections import Counter

from vdata.media import storage as S
from vdata.schemas.config import SPLIT_NAMES
from vdata.schemas.registry import EXPORT_FORMATS

from .base import ExportOptions, ExportResult, NothingToExport, inside_build
from .media import MEDIA_MODES
from .source import ExportError, open_build, split_of_file
from .timefmt import TIME_FORMATS

REGISTRY = EXPORT_FORMATS          # format name -> "module:function" (vdata.schemas.registry)
FORMATS = tuple(REGISTRY)


def exporter(fmt: str):
    if fmt not in REGISTRY:
        raise ExportError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    module, fn = REGISTRY[fmt].split(":")
    return getattr(importlib.import_module(module), fn)


# benchmark formats (their items are test items anyway), and the parquet and vidchapters exports (they keep the
# splits apart, a file each)
SPLIT_KEEPING_FORMATS = frozenset({"lmms-eval", "vlmevalkit", "mvbench", "cg_bench", "parquet", "vidchapters"})
EVALUATION_FORMATS = frozenset({"lmms-eval", "vlmevalkit", "mvbench", "cg_bench"})


def export(out_dir: str, dest: str, format: str, time_format: str = "seconds", media: str = "link",
           tasks=None, name: str | None = None, bucket_media: bool = False, splits=None, **kwargs) -> ExportResult:
    """Export the build in `out_dir` to `dest` in `format`.

    time_format: a time spec (`seconds`, `lita:100`, ...; the table above) for the times in texts;
    media: copy | link | none (how videos reach `dest`); tasks: only these sample tasks; splits: only the
    rows of these splits (train / validation / test; None: all, with a note when held-out ones are in);
    name: dataset name used in file names (default: the build's name). Extra keyword arguments go to
    the format's exporter (e.g. `hub_repo` for lmms-eval).
    """
    if media not in MEDIA_MODES:
        raise ExportError(f"--media must be one of {', '.join(MEDIA_MODES)}, not {media!r}")
    if time_format not in TIME_FORMATS:
        raise ExportError(f"--time must be one of {', '.join(TIME_FORMATS)}, not {time_format!r}")
    if S.is_remote(dest):
        return _export_to_url(out_dir, dest, format, time_format=time_format, media=media, tasks=tasks, name=name,
                              bucket_media=bucket_media, splits=splits, **kwargs)
    fn = exporter(format)
    build = open_build(out_dir)
    if (why := inside_build(build.path, dest)) is not None:
        raise ExportError(f"--dest {dest}: {why}; choose a folder outside it (or under its exports/)")
    present = {split_of_file(f) for f in build.data_files}
    if splits:
        unknown = [s for s in splits if s not in SPLIT_NAMES]
        if unknown:
            raise ExportError(f"--split must be {', '.join(SPLIT_NAMES)}, not {', '.join(map(repr, unknown))}")
        build = dataclasses.replace(build, data_files=[f for f in build.data_files if split_of_file(f) in splits])
        if not build.data_files:
            raise NothingToExport(f"nothing to export from {out_dir}: it has no rows of split {', '.join(splits)} "
                                  f"(its splits: {', '.join(sorted(present)) or 'none'}); {dest} was not written")
    opts = ExportOptions(time_format=time_format, media=media, tasks=tuple(tasks) if tasks else None, name=name,
                         bucket_media=bucket_media)
    result = fn(build, dest, opts, **kwargs)
    _forget_stale_files(dest, format, result)
    if not splits and present - {"train"} and format not in SPLIT_KEEPING_FORMATS:
        result.notes.append(f"the rows of every split are in this export ({_split_counts(build)}): `split: train` "
                            "on the export (`vdata export --split train`) leaves the held-out videos out of a "
                            "training set")
    elif not splits and len(present) > 1 and format in EVALUATION_FORMATS:
        result.notes.append(f"the rows of every split are in this benchmark ({_split_counts(build)}): `--split "
                            "test` evaluates on the held-out videos only, the ones no model trained on this build "
                            "has seen")
    if build.reserved_tokens:
        # counted over every text column of the build's rows: a format writes only some of them
        result.notes.append(f"{build.reserved_tokens} media placeholder or chat token(s) in the build's text "
                            "(<video>, <image>, </s>, <|im_end|>, ...): wherever this export writes that text, they "
                            "are written as text, e.g. \u2039video\u203a, so that trainers do not read them as markup")
    return result


def _export_to_url(out_dir: str, dest: str, format: str, **options) -> ExportResult:
    """An export whose `dest` is a URL (s3://, gs://, hf://): rendered into a local folder, then put at the
    URL file by file (a linked video goes up as its bytes: an object store holds no links). As in a folder,
    the files an earlier export of the format put there and this one did not write are removed, and the
    export ledger keeps the other formats' lists."""
    import json
    import os
    import tempfile

    try:
        S.check_writable(dest)
    except S.StorageError as e:
        raise ExportError(f"--dest {e}") from None
    ledger = S.join(dest, EXPORT_LEDGER)
    try:
        before = json.loads(S.read_text(ledger)) if S.exists(ledger) else {}
    except (OSError, ValueError):
        before = {}
    before = before if isinstance(before, dict) else {}
    with tempfile.TemporaryDirectory(prefix="vdata-export-") as local:
        result = export(out_dir, local, format, **options)
        linked = any(os.path.islink(os.path.join(root, f)) for root, _, files in os.walk(local) for f in files)
        placed = getattr(result.media, "files", None)   # the videos this export placed (None: not listed)
        listed = {format: sorted(set(result.files))}
        if placed is not None:
            listed[_media_key(format)] = sorted(set(placed))
        with open(os.path.join(local, EXPORT_LEDGER), "w", encoding="utf-8") as f:
            json.dump({**before, **listed}, f, indent=1, sort_keys=True)
        relocate = getattr(importlib.import_module(REGISTRY[format].split(":")[0]), "relocate", None)
        if relocate is not None:   # files that name their own location (the LLaVA data_path YAML): the URL
            relocate(local, dest, result)
        _name_the_url(local, dest, result)
        S.put_tree(local, dest)
        # the notes name where the files are now: the URL, never the staging folder that is deleted below
        for staged in sorted({local, os.path.realpath(local), os.path.abspath(local)}, key=len, reverse=True):
            result.notes = [n.replace(staged, dest.rstrip("/")) for n in result.notes]
    stale = [f for f in before.get(format) or [] if _inside(f) and f not in set(result.files)]
    stale += _stale_media(before, format, placed) if placed is not None else []
    for rel in stale:
        if S.exists(S.join(dest, rel)):
            S.remove(S.join(dest, rel))
    if stale:
        result.notes.append(_removed(stale, f"file(s) an earlier {format} export put at {dest} and this one does not"))
    if linked:
        result.notes.append(f"the linked videos were uploaded as copies: {S.scheme(dest)}:// holds no links")
    result.dest = dest
    return result


# the files whose text may name their own folder: task YAMLs (lmms-eval data_files), JSON Lines with absolute
# video paths (ms-swift), notes; Parquet and media are left alone (they hold paths relative to the export)
_TEXT_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl", ".tsv", ".csv", ".txt", ".md", ".py")


def _name_the_url(local: str, dest: str, result: ExportResult) -> None:
    """Where a file of an export rendered in `local` names that folder (lmms-eval's absolute `data_files`,
    ms-swift's absolute video paths), it names `dest`'s URL instead: the staging folder is deleted after
    the upload, and a machine-local path that no longer exists is what a consumer must never be handed
    (outside check h26 F3). Said once in the notes, with what a local trainer does with it."""
    import os

    staged = sorted({local, os.path.realpath(local), os.path.abspath(local)}, key=len, reverse=True)
    url = dest.rstrip("/")
    named = []
    for root, _, files in os.walk(local):
        for fname in files:
            path = os.path.join(root, fname)
            if not fname.endswith(_TEXT_SUFFIXES) or os.path.islink(path):
                continue
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
            changed = text
            for folder in staged:
                changed = changed.replace(folder, url)
            if changed != text:
                with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
                    f.write(changed)
                named.append(os.path.relpath(path, local))
    if named:
        result.notes.append(f"{', '.join(sorted(named))} name(s) the export's files by their URL at {url}: a trainer "
                            "or evaluator that reads local files needs a downloaded copy, with that URL replaced "
                            "by the copy's folder")


def _split_counts(build) -> str:
    """"train 16, validation 9, test 10": the build's rows by split."""
    rows = Counter(build.row_splits())
    return ", ".join(f"{s} {rows[s]}" for s in SPLIT_NAMES if rows[s])


# no .json suffix: loaders and users glob `*.json` in an export folder for its records
EXPORT_LEDGER = ".vdata-export"


def _forget_stale_files(dest: str, fmt: str, result: ExportResult) -> None:
    """Delete what an earlier export of the same format into `dest` wrote and this one did not (a file of a
    task or split no longer exported), so that `dest` holds exactly this export's records and media; files
    that no vdata export of this format listed (the user's own, other formats') are never touched. `dest`
    keeps the list of each format's files in EXPORT_LEDGER, its media under `"<format> media"`."""
    import json
    import os

    ledger = os.path.join(dest, EXPORT_LEDGER)
    try:
        with open(ledger, encoding="utf-8") as f:
            written = json.load(f)
    except (OSError, ValueError):
        written = {}
    if not isinstance(written, dict):
        written = {}
    now = sorted(set(result.files))
    stale = [f for f in written.get(fmt) or [] if isinstance(f, str) and f not in now]
    for rel in stale:
        path = os.path.realpath(os.path.join(dest, rel))
        if path.startswith(os.path.realpath(dest) + os.sep) and os.path.isfile(path):
            os.remove(path)
    if stale:
        result.notes.append(_removed(stale, f"file(s) an earlier {fmt} export wrote here and this one does not"))
    _forget_stale_media(dest, fmt, result, written)
    if os.path.isdir(dest):
        written[fmt] = now
        with open(ledger, "w", encoding="utf-8") as f:
            json.dump(written, f, indent=1, sort_keys=True)


def _media_key(fmt: str) -> str:
    """The ledger's key of the media a format's export placed."""
    return f"{fmt} media"


def _inside(rel) -> bool:
    """A ledger entry that names a path inside the export folder (never an absolute path or a way out)."""
    return isinstance(rel, str) and not rel.startswith("/") and ".." not in rel.split("/")


def _removed(paths: list[str], what: str) -> str:
    return f"{len(paths)} {what} were removed ({', '.join(paths[:3])}{', ...' if len(paths) > 3 else ''})"


def _stale_media(written: dict, fmt: str, placed: list[str]) -> list[str]:
    """The media an earlier export of `fmt` listed that this one does not place and no other format lists
    (formats exported into one folder share its videos/)."""
    key = _media_key(fmt)
    others = {f for k, v in written.items() if k not in (fmt, key) and isinstance(v, list) for f in v}
    keep = set(placed) | others
    return [f for f in written.get(key) or [] if _inside(f) and f not in keep]


def _forget_stale_media(dest: str, fmt: str, result: ExportResult, written: dict) -> None:
    """The media part of the sweep: a video an earlier export placed and this one does not reference goes. A
    `--split train` export into the folder of an all-splits one would otherwise keep the held-out videos
    beside the training records (test contamination). Removes a linked video's link, never its target."""
    import os

    from .media import NOT_CUT_FILE, SOURCE_COPIES

    placed, folder = getattr(result.media, "files", None), getattr(result.media, "folder", None)
    if placed is None or not folder:   # media placed without the planner (a haystack benchmark): not listed
        return
    root = os.path.realpath(dest)
    if _media_key(fmt) in written:
        stale = _stale_media(written, fmt, placed)
    elif fmt in written and set(written) == {fmt}:
        # an earlier export of this format alone here, by a vdata that listed no media: what its media folder
        # holds beyond this export's (that folder is the planner's own; other formats' exports would be listed)
        top = os.path.join(root, folder)
        stale = sorted(os.path.relpath(os.path.join(d, n), root) for d, dirs, names in os.walk(top)
                       if SOURCE_COPIES not in os.path.relpath(d, top).split(os.sep)
                       for n in names if not (d == top and n == NOT_CUT_FILE))
        stale = [f for f in stale if f not in set(placed)]
    else:
        stale = []
    removed = []
    for rel in stale:
        # the link itself, not where it points: resolve the folder only
        path = os.path.join(os.path.realpath(os.path.dirname(os.path.join(root, rel))), os.path.basename(rel))
        if path.startswith(root + os.sep) and (os.path.islink(path) or os.path.isfile(path)):
            os.remove(path)
            removed.append(rel)
            parent = os.path.dirname(path)   # folders the removal emptied (videos/clips/ab/), not the media folder
            while os.path.dirname(parent).startswith(root + os.sep) and not os.listdir(parent):
                os.rmdir(parent)
                parent = os.path.dirname(parent)
    if removed:
        result.notes.append(_removed(removed, f"video file(s) an earlier {fmt} export placed here and this one does "
                                              "not reference"))
    written[_media_key(fmt)] = sorted(set(placed))


__all__ = ["EXPORT_LEDGER", "FORMATS", "REGISTRY", "ExportError", "ExportOptions", "ExportResult", "export", "exporter", "open_build"]
