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
- `dataset_info:` the features of the level config and of `clips`, from the Parquet schemas, with the
  JPEG bytes of `frames` typed as `datasets.Image()`, so that loading decodes them to images and the Hub
  viewer shows thumbnails (storage stays `list<struct<timestamp_s, jpeg>>`: `Image` casts binary on read);
  the source video's `path` (absolute) typed as `datasets.Video()` where the installed `datasets` can
  decode video (it has `Video` and torchcodec loads: `video_feature_unavailable()`), else a string.

`refresh_card()` writes these two keys into `<out>/README.md` after every build and keeps the rest of
the card (the prose `vdata card` writes) as it is.
"""
from __future__ import annotations

import functools
import logging
import os

import pyarrow as pa
import pyarrow.parquet as pq

from vdata.schemas import records as R
from vdata.schemas.config import SPLIT_NAMES

from .source import BuildDir, ExportError, UnfinishedBuild, open_build, require_finished, split_named, split_of_file

REJECTS_CONFIG = "rejects"
# Outside rejects/, which the runner owns: its resume deletes every part there that no ledger entry commits.
EMPTY_REJECTS = "_card/rejects-empty.parquet"
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
    """`<build>/_card/rejects-empty.parquet`: the rejects schema and no row group. (A file with one empty row
    group fails in `datasets`, which takes the first group's row count, 0, as its batch size.)"""
    path = os.path.join(build.path, EMPTY_REJECTS)
    if not os.path.isfile(path) or pq.read_schema(path) != R.REJECT_SCHEMA:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with pq.ParquetWriter(path + ".tmp", R.REJECT_SCHEMA):
            pass
        os.replace(path + ".tmp", path)
    return path


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
    if any(f["path"] == EMPTY_REJECTS for c in configs for f in c["data_files"]):
        try:
            write_empty_rejects(build)
        except OSError as e:   # a read-only build (`vdata card --output` elsewhere): name no missing file
            logging.getLogger("vdata").warning("no empty `rejects` config: cannot write %s (%s)",
                                               e.filename, e.strerror)
            configs = [c for c in configs if c["config_name"] != REJECTS_CONFIG]
    infos = []
    if configs and configs[0]["config_name"] == build.level and build.data_files:
        infos.append(dataset_info_yaml(build.level, hf_features(build.schema, video_columns=(R.PATH,))))
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

    try:
        build = open_build(out_dir)
    except UnfinishedBuild:
        raise
    except ExportError:   # nothing kept: the rejects may still be worth loading
        rejects = sorted(f for f in os.listdir(os.path.join(out_dir, "rejects")) if f.endswith(".parquet")) \
            if os.path.isdir(os.path.join(out_dir, "rejects")) else []
        if not rejects:
            return None
        require_finished(out_dir)
        build = BuildDir(os.path.abspath(out_dir), {}, "samples", [], [os.path.join(out_dir, "rejects", f) for f in rejects])
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
