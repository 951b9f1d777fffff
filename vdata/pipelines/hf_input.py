"""Hugging Face dataset inputs (`input: [{hf: {path, split, column}}]`): opening one, and its video rows.

`vdata validate` (`hf_problems`) and the build (`from_hf`) open the dataset through one function,
`open_hf`, so that both say the same thing, naming the key: `input[i].hf.path` (no such folder and not a
Hub id, not on the Hub or not reachable, not a dataset), `.name`, `.split` (the splits it has) or `.column`
(the columns it has). `datasets` raises a different type for each of these, several of them deep in
a traceback that said nothing of the config.

What validate opens is what costs no download: a `save_to_disk` folder (load_from_disk memory-maps it),
a local dataset folder (streamed: its files are listed and the first one's schema read, nothing converted)
and, with HF_HUB_OFFLINE set, a Hub dataset's entry in the local cache. A Hub id online is checked for its
form only; its split and column are known once the build downloads it, and it says the same.
"""
from __future__ import annotations

import os
from pathlib import Path

from vdata.media import storage as S
from vdata.media.hashing import bytes_id
from vdata.media.whisper_models import is_offline
from vdata.schemas.config import BuildConfig, ConfigError, HFSource, InputSpec

from .input_rows import source_row

# the files `save_to_disk` writes: a folder with one of them is read with load_from_disk (unless `from_disk:`)
_SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def hf_problems(spec: InputSpec, cfg: BuildConfig, where: str) -> list[str]:
    """What `vdata validate` can tell of an hf input without downloading it (see the module docstring)."""
    try:
        open_hf(spec.hf, cfg, where, download=False)
    except ConfigError as e:
        return [str(e)]
    return []


def open_hf(hf: HFSource, cfg: BuildConfig, where: str, download: bool):
    """`hf`'s split as a dataset, its column checked. With `download` false (validate) a local folder is
    streamed rather than converted, and a Hub dataset (or a saved one in a bucket) is not fetched: None then,
    once what can be is checked (a Hub id's form; offline, its entry in the cache and its split)."""
    local = cfg.resolve(hf.path)
    if _is_saved(hf, local):
        if S.is_remote(local) and not download:   # load_from_disk copies a bucket's dataset here first
            return None
        ds = _load_saved(hf, local, where)
    else:
        folder = os.path.exists(local)
        if not folder:
            _check_hub_id(hf, local, where)
            if not download and not is_offline():   # reaching the Hub is the build's
                return None
        builder = _builder(hf, local, where)
        split_names = [part.split("[")[0].strip() for part in hf.split.split("+")]   # "train[:10%]+test"
        _check_splits(split_names, _splits_of(builder), where)
        if download:
            ds = _prepare(hf, builder, where)
        elif folder:
            ds = _opened(lambda: builder.as_streaming_dataset(split=split_names[0]), f"{where}.hf.path",
                         f"{hf.path!r} cannot be read as a dataset")
        else:
            return None   # in the cache, with that split; its rows are the build's to read
    # a streamed folder whose files carry no schema (JSON lines) names no columns before its rows are read
    if ds.column_names is not None and hf.column not in ds.column_names:
        raise ConfigError(f"{where}.hf.column: dataset has no column {hf.column!r} "
                          f"(columns: {', '.join(ds.column_names)})")
    return ds


def _is_saved(hf: HFSource, local: str) -> bool:
    if hf.from_disk is not None:
        return hf.from_disk
    return os.path.isdir(local) and any(os.path.exists(os.path.join(local, name)) for name in _SAVED_MARKERS)


def _load_saved(hf: HFSource, local: str, where: str):
    import datasets

    if not S.is_remote(local) and not os.path.exists(local):
        raise ConfigError(f"{where}.hf.path: no such folder: {hf.path!r} (looked for {local})")
    ds = _opened(lambda: datasets.load_from_disk(local), f"{where}.hf.path",
                 f"{hf.path!r} cannot be read as a saved dataset (load_from_disk)")
    if isinstance(ds, datasets.DatasetDict):
        _check_splits([hf.split], list(ds), where)
        ds = ds[hf.split]
    return ds


def _check_hub_id(hf: HFSource, local: str, where: str) -> None:
    """A path that is no folder is taken for a Hub id; one that cannot be (`../videos_ds`) is a typo'd
    folder, said without asking the Hub."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(hf.path)
    except HFValidationError:
        raise ConfigError(f"{where}.hf.path: no such folder, and not a Hub dataset id: {hf.path!r} "
                          f"(looked for {local})") from None


def _builder(hf: HFSource, local: str, where: str):
    """The dataset's builder: its files listed (a folder's, or the Hub repo's), none of them read yet."""
    import datasets

    target = local if os.path.exists(local) else hf.path
    if target == local:
        what = f"{hf.path!r} cannot be opened as a dataset folder"
    else:
        why = ("offline: HF_HUB_OFFLINE is set, so only a dataset in the local cache can be opened" if is_offline()
               else "a private or gated dataset also needs HF_TOKEN or `hf auth login`")
        what = f"{hf.path!r} is not on the Hub or could not be reached ({why}), and is no folder here either"
    try:
        return datasets.load_dataset_builder(target, hf.name)
    except ValueError as e:
        if "config" not in str(e).lower():
            raise ConfigError(f"{where}.hf.path: {what}: {_detail(e)}") from None
        said = f"{hf.name!r} does not name one of the dataset's configs" if hf.name else "the dataset has configs: name one"
        # the line after "Config name is missing." lists them
        raise ConfigError(f"{where}.hf.name: {said}: {_detail(e, lines=2)}") from None
    except Exception as e:   # DatasetNotFoundError, ConnectionError, a gated repo's HTTP error, ...
        raise ConfigError(f"{where}.hf.path: {what}: {_detail(e)}") from None


def _splits_of(builder) -> list[str]:
    """The split names a builder knows before it reads a row: a cached dataset's recorded splits, else the
    splits its data files were sorted into. Empty when neither says (then the read itself tells)."""
    if builder.info.splits:
        return list(builder.info.splits)
    return [str(name) for name in builder.config.data_files or ()]


def _check_splits(asked: list[str], known: list[str], where: str) -> None:
    missing = [name for name in asked if name not in known]
    if known and missing:
        raise ConfigError(f"{where}.hf.split: the dataset has splits [{', '.join(known)}], not {missing[0]!r}")


def _prepare(hf: HFSource, builder, where: str):
    """The split, downloaded and converted as `datasets.load_dataset` does it (that function is these two
    calls after the builder, which is opened first here to name a missing split by the key)."""
    def read():
        builder.download_and_prepare()
        return builder.as_dataset(split=hf.split)

    return _opened(read, f"{where}.hf.path", f"{hf.path!r} could not be downloaded or read")


def _opened(load, key: str, what: str):
    try:
        return load()
    except Exception as e:   # datasets' and fsspec's own types, an interrupted download, a full disk, ...
        raise ConfigError(f"{key}: {what}: {_detail(e)}") from None


def _detail(e: Exception, lines: int = 1) -> str:
    """The error's type and its first line(s): what went wrong, without the tracebacks some messages carry."""
    text = " ".join(line.strip() for line in str(e).strip().splitlines()[:lines]) or "no detail"
    return f"{type(e).__name__}: {text[:300]}"


def from_hf(spec: InputSpec, cfg: BuildConfig, where: str, media_dir: str) -> list[dict]:
    """One row per record of the dataset's split (up to `limit`). A video given as bytes is written once to
    `media_dir` under its content hash, so that workers read it by path."""
    import datasets

    hf = spec.hf
    local = cfg.resolve(hf.path)
    ds = open_hf(hf, cfg, where, download=True)
    # Never let `datasets` decode video: we want the path or the bytes.
    feature = ds.features[hf.column]
    if feature.__class__.__name__ == "Video":
        ds = ds.cast_column(hf.column, datasets.Video(decode=False))
    rows = []
    n = len(ds) if hf.limit is None else min(hf.limit, len(ds))
    for i in range(n):
        rec = dict(ds[i])
        value = rec.pop(hf.column)
        uri = f"hf://{hf.path}/{hf.split}#{i}"
        data, path = None, None
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path")
        elif isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, str):
            path = value
        if data:   # media_dir may be a URL (an output on object storage): every node reaches it there
            S.makedirs(media_dir)
            ext = os.path.splitext(path or "")[1] or ".mp4"
            path = S.join(media_dir, bytes_id(data) + ext)
            if not S.exists(path):
                S.write_bytes(path, data)
        elif path and not os.path.isabs(path) and not S.is_remote(path):   # a URL column is taken as it is
            path = str(Path(local) / path) if os.path.isdir(local) else path
        if not path:
            rows.append(source_row(uri, f"<missing:{uri}>", {"error": "row has neither bytes nor path"}))
            continue
        rows.append(source_row(uri, path, {k: v for k, v in rec.items()
                                           if isinstance(v, (str, int, float, bool, list, dict)) or v is None}))
    return rows
