"""The build config: YAML → validated pydantic models, with errors that name the key path.

```yaml
name: quickstart
input:
  - path: examples/videos            # a file or a directory (recursive)
  - glob: "data/**/*.mp4"
  - manifest: videos.csv             # CSV / TSV / JSONL / JSON list / Parquet with a path column
    path_column: path
  - manifest: train.json             # a labelled dataset's own annotation file (ActivityNet Captions, ...)
    format: activitynet_captions
    videos: clips/
  - hf: {path: user/dataset, split: train, column: video}
output: {dir: out/quickstart, rows_per_file: 5000}   # or a URL: s3://bucket/out (see schemas/storage.py)
ray: {address: null, num_cpus: null}
stages:
  - probe: {}
  - shots: {detector: adaptive}
teachers: {}
```
`${VAR}` and `${VAR:-default}` in any string are replaced from the environment before validation,
so secrets stay out of config files. The raw (un-interpolated) text is what the run manifest keeps.
Every value that came from the environment counts as secret (`BuildConfig.secrets`, see
`vdata.schemas.secrets`): it is masked in logs, errors, the manifest and the card.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from vdata.media.storage import is_remote, local_path
from vdata.schemas.annotation_formats import ANNOTATION_FORMATS
# ConfigError and interpolate_env live in config_file (shared with the haystack config); named here too
from vdata.schemas.config_file import (ConfigError, ConfigReadError, interpolate_env, raw_teacher_refs,  # noqa: F401
                                       read_config_file, with_unset)
from vdata.schemas.storage import StorageConfig

# camcorders (.mts, .m2ts, .dv tapes), old phones (.3gp, .3g2), DVDs (.vob, .m2v), broadcast (.mxf), animated GIFs
# (TGIF-QA is made of them), and what older web collections hold (.asf, .f4v, .divx, .qt, RealMedia .rm / .rmvb)
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv",
                    ".mts", ".m2ts", ".3gp", ".ogv", ".vob", ".mxf", ".gif", ".dv", ".3g2", ".m2v", ".asf", ".f4v",
                    ".divx", ".qt", ".rm", ".rmvb")


def config_file(value: str, info: ValidationInfo | None = None) -> str:
    """A file a stage option names, as an absolute path: `~` expanded, and a relative one taken from the
    config's folder (the `base_dir` parse_config validates stages with), as input paths are, so that
    `vdata build configs/x.yaml` finds `labels.txt` beside x.yaml from any working directory."""
    path = os.path.expanduser(value)
    base = (info.context or {}).get("base_dir") if info is not None else None
    if base is not None and not os.path.isabs(path):
        path = os.path.join(base, path)
    return os.path.abspath(path)


def _listed(value):
    """A list option written as one word (`split: train`) as the one-item list it means."""
    return [value] if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HFSource(_Strict):
    path: str                              # hub id, local dataset dir, or a saved dataset (load_from_disk)
    split: str = "train"
    column: str = "video"                  # holds a path, bytes, or a {bytes, path} struct
    name: str | None = None                # dataset config name
    from_disk: bool | None = None          # None: load_from_disk when `path` has a dataset_info/state file
    limit: int | None = Field(None, ge=1)


class InputSpec(_Strict):
    path: str | None = None
    glob: str | None = None
    manifest: str | None = None
    path_column: str = "path"
    hf: HFSource | None = None
    extensions: list[str] = Field(default_factory=lambda: list(VIDEO_EXTENSIONS))
    # An input that matches no file is a config error (a typo in a path or glob would otherwise build an
    # empty dataset); true accepts it, e.g. for a drop folder that may be empty.
    allow_empty: bool = False
    # The manifest is a labelled dataset's own annotation file (ActivityNet Captions, Charades-STA, ...;
    # see vdata/schemas/annotation_formats/); its videos are found by id under `videos`
    # (default: the manifest's folder), trying `extensions` in order. A FOLDER_FORMATS format
    # (video2dataset) names the folder its downloader wrote as the manifest, and its videos are in it.
    format: str | None = None
    videos: str | None = None
    # the split of every video of this input (charades_sta_test.txt, a held-out folder); written to its
    # source_meta as `split`, which output.splits follows (see SplitsConfig)
    split: Literal["train", "validation", "test"] | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is not None and value not in ANNOTATION_FORMATS:
            raise ValueError(f"unknown annotation format {value!r} (allowed: {', '.join(ANNOTATION_FORMATS)})")
        return value

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in ("path", "glob", "manifest", "hf") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of path, glob, manifest, hf (got: {', '.join(given) or 'none'})")
        if self.format is not None and self.manifest is None:
            raise ValueError(f"format: an annotation format is read from a manifest file (got {given[0]})")
        if self.videos is not None and self.format is None:
            raise ValueError("videos: only with format (a plain manifest names each video in its path column)")
        return self


class ExportSpec(_Strict):
    """An export written at the end of every build (what `vdata export` does by hand)."""

    format: str                            # llava | sharegpt | swift | internvl | lmms-eval | vlmevalkit | parquet
    dest: str | None = None                # None: <output.dir>/exports/<format>
    # seconds | relative | frames | lita[:T] | vtg | grounded_videollm[:N] | timesuite | bracketed
    # (vdata/exporters/timefmt.py renders them; a `:bins` suffix sets a token format's token count)
    time: str = Field("seconds", pattern=r"^(seconds|relative|frames|vtg|timesuite|bracketed|(lita|grounded_videollm)(:[1-9][0-9]*)?)$")
    media: Literal["copy", "link", "none"] = "link"
    tasks: list[str] | None = None         # only samples of these tasks
    # only rows of these splits (None: every split, with a note when held-out videos are in the export)
    split: list[Literal["train", "validation", "test"]] | None = None
    # llava only: the token opening the first human turn; `<video>` for Video-LLaVA-style trainers (Video-STaR),
    # which expand it into one <image> per frame (vdata/exporters/llava.py). None: the exporter's `<image>`.
    video_token: Literal["<image>", "<video>"] | None = None

    _one_split = field_validator("split", mode="before")(lambda value: _listed(value))

    @model_validator(mode="after")
    def _known_format(self):
        from vdata.schemas.registry import EXPORT_FORMATS

        if self.format not in EXPORT_FORMATS:
            raise ValueError(f"format: unknown export format {self.format!r} (allowed: {', '.join(EXPORT_FORMATS)})")
        if self.video_token is not None and self.format != "llava":   # no other exporter takes it: say so now
            raise ValueError(f"video_token: only the llava export takes it, not {self.format}")
        return self


SPLIT_NAMES = ("train", "validation", "test")


SPLIT_SPELLINGS = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
                   "validate": "validation", "validation": "validation", "dev": "validation", "test": "test", "testing": "test"}


class SplitsConfig(_Strict):
    """Train / validation / test by video: every row of a video lands in one split, so no video is in two.

    A video keeps the split its source names: the first of the `from_source` keys of its source_meta that
    holds train / training, val / valid / validation / dev, or test / testing (case aside). The
    annotation formats keep their dataset's split there (ActivityNet's, COIN's, YouCook2's `subset`,
    Kinetics' `split` as `subset`, Ego4D's), a manifest's `split` column lands there, and an input's
    `split:` sets it for all its videos. Any other video's split is a seeded hash of its `video_id` (its
    content hash), so it does not depend on which other videos the build has, and a resumed or extended
    build keeps every earlier assignment. The shares are expected sizes: with few videos a split may
    come out empty. `from_source: []` splits every video by the hash.
    """

    test: float = Field(0.1, ge=0.0, lt=1.0)
    validation: float = Field(0.0, ge=0.0, lt=1.0)
    seed: int = 0
    from_source: list[str] = Field(default_factory=lambda: ["split", "subset"])

    _one_key = field_validator("from_source", mode="before")(lambda value: [] if value is None else _listed(value))

    @model_validator(mode="after")
    def _leaves_train(self):
        if self.test + self.validation >= 1.0:
            raise ValueError(f"test + validation must be below 1 to leave a train split "
                             f"(got {self.test} + {self.validation})")
        return self

    def named_split(self, source_meta: str | None) -> str | None:
        """The split a row's source_meta (JSON text) names under a `from_source` key, or None."""
        if not self.from_source or not source_meta:
            return None
        try:
            meta = json.loads(source_meta)
        except ValueError:
            return None
        if not isinstance(meta, dict):
            return None
        for key in self.from_source:
            value = meta.get(key)
            if isinstance(value, str) and value.strip().casefold() in SPLIT_SPELLINGS:
                return SPLIT_SPELLINGS[value.strip().casefold()]
        return None

    def split_of(self, video_key: str) -> str:
        digest = hashlib.sha256(f"{self.seed}:{video_key}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2.0**64   # uniform in [0, 1)
        if u < self.test:
            return "test"
        return "validation" if u < self.test + self.validation else "train"


class OutputConfig(_Strict):
    dir: str

    @field_validator("dir")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        # "" would be the config file's own folder (what `dir: ${OUT:-}` gives when OUT is unset): a build
        # there writes its README.md, manifest and folders beside the config
        if not value.strip() or local_path(value.strip()) in ("", "/"):
            raise ValueError("must name a folder of the dataset's own (not empty, not /), or an s3://, gs://, hf:// URL")
        return value.strip()

    # kept rows are written per split (`<level>/part-…-<split>.parquet`): `datasets` globs each (hf_local.py)
    splits: SplitsConfig = Field(default_factory=SplitsConfig)
    exports: list[ExportSpec] = Field(default_factory=list)
    # rows per Parquet part, as a target: a write holds whole videos (their rows commit together, for resume),
    # so a part can hold more where Ray hands one write several videos
    rows_per_file: int = Field(5000, ge=1)
    # resume: continue an interrupted run with the same config (a changed config rebuilds);
    # overwrite: always start over; error: refuse a non-empty directory.
    mode: Literal["resume", "overwrite", "error"] = "resume"
    # keep per-stage results of the costly stages (probe, shots, quality) under _cache/stages, so a
    # changed config recomputes only from the changed stage on
    stage_cache: bool = True


def ray_address_problem(address: str) -> str | None:
    """What is wrong with the form of a Ray address, or None: `auto`, `local`, host:port or ray://host:port. Ray
    itself answers a head's IP without its port ("10.0.0.1", the common slip) with a traceback once the build
    has started (outside check h21)."""
    if address in ("auto", "local"):
        return None
    scheme, sep, rest = address.rpartition("://")
    host, colon, port = rest.rpartition(":")
    if (sep and scheme != "ray") or not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        bare = (rest if not colon or not port.isdigit() else host).strip("/:") or "HOST"
        return (f"{address!r} is no Ray address: give host:port (a cluster's head listens on 6379 by default: "
                f"{bare}:6379), ray://host:port for a Ray client (10001), or auto")
    return None


class RayConfig(_Strict):
    address: str | None = None             # None: start an embedded local Ray for the run
    num_cpus: int | None = Field(None, ge=1)
    runtime_env: dict[str, Any] | None = None
    progress: bool = True                  # vdata's progress display during `vdata build` (--quiet: off)
    # ray: always Ray; local: in this process, no Ray; auto: local for small builds on no cluster
    # (pipelines/local_run.py: Ray's start-up is a fixed cost of seconds that small builds do not repay)
    executor: Literal["auto", "ray", "local"] = "auto"
    local_max_videos: int = Field(4, ge=0)   # auto: at most this many videos run in process
    # managed teacher servers: `background` loads them while the stages before the first teacher stage run,
    # `first` before the build starts; auto: background unless a server computes on this machine's CPU,
    # where the two compete (2 cores: the quickstart's vLLM CPU servers were ready after 138 s beside the
    # stages against 61 s alone, and the build took 276 s against 210 s)
    teacher_servers: Literal["auto", "background", "first"] = "auto"

    @field_validator("address")
    @classmethod
    def _address_form(cls, value):
        if value is not None and (problem := ray_address_problem(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _address_needs_ray(self):
        if self.address and self.executor == "local":
            raise ValueError(f"ray.address {self.address!r} names a Ray cluster, but ray.executor is local (this "
                             "process, no Ray): drop one of them")
        return self


class ConfigFile(_Strict):
    """A config read from a YAML file: relative paths in it mean relative to the file's folder."""

    _base_dir: Path = Path(".")
    _raw_text: str = ""

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def raw_text(self) -> str:
        return self._raw_text

    def resolve(self, p: str) -> str:
        """A path from the config, relative to the config file's folder; a URL (s3://, ...) as it is."""
        if is_remote(p):
            return p
        q = Path(os.path.expanduser(local_path(p)))   # file:///data/out is the folder /data/out
        return os.path.normpath(str(q if q.is_absolute() else (self._base_dir / q)))


class BuildConfig(ConfigFile):
    name: str = "vdata"
    description: str = ""
    license: str = "other"
    input: list[InputSpec] = Field(min_length=1)
    output: OutputConfig
    ray: RayConfig = Field(default_factory=RayConfig)
    stages: list[dict[str, Any]] = Field(min_length=1)
    teachers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    storage: StorageConfig = Field(default_factory=StorageConfig)   # object storage for URL inputs / output

    # Filled by parse_config: the validated per-stage configs (in a ConfigError's `partial`, those that
    # validated, at `_stage_positions` in `stages`), and the values to keep out of outputs.
    _stage_configs: list = []
    _stage_positions: list | None = None
    _secrets: tuple = ()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values never to show: those from `${VAR}` and those in SecretStr-typed teacher fields."""
        return self._secrets

    @property
    def stage_specs(self) -> list[tuple[str, Any]]:
        return list(self._stage_configs)

    @property
    def stage_positions(self) -> list[int]:
        """Each spec's index in `stages:` (all of them, except in a ConfigError's `partial`)."""
        return list(self._stage_positions if self._stage_positions is not None else range(len(self._stage_configs)))

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]

    def stage_hashes(self) -> list[str]:
        """Hash of each stage's config chained with everything before it (a change invalidates what follows)."""
        from vdata.schemas.registry import stage_class
        from vdata.schemas.teacher_identity import stage_identity   # its config, and what its teachers are

        out, h = [], hashlib.sha256(json.dumps([i.model_dump(mode="json") for i in self.input], sort_keys=True).encode())
        for name, cfg in self._stage_configs:
            version = stage_class(name).version   # a stage's fix invalidates what older code computed
            h.update(name.encode() if version == 1 else f"{name}@{version}".encode())
            h.update(stage_identity(cfg.model_dump(mode="json", exclude={"resources"}), self.teachers))
            out.append(h.hexdigest()[:16])
        return out


def _loc(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(model: type[BaseModel], loc) -> list[str] | None:
    """Walk `model` along `loc` (minus the last key) to list the keys allowed there."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        current = _model_in(ann)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else None


def _model_in(ann) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _model_in(arg)
        if found:
            return found
    return None


def format_validation_error(err: ValidationError, model: type[BaseModel], prefix: str = "") -> list[str]:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and (p.startswith("function-") or "[" in p)))
        where = _loc(loc)
        where = f"{prefix}.{where}" if prefix and where else (prefix or where or "(top level)")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc)
            hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
            lines.append(f"{where}: unknown key{hint}")
        elif e["type"] == "missing":
            lines.append(f"{where}: required key is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")   # a validator's own message says what is wrong
            lines.append(f"{where}: {msg} (got {e.get('input')!r})" if not isinstance(e.get("input"), (dict, list)) else f"{where}: {msg}")
    return lines


def _teacher_keys(branch: str | None, loc: list) -> list[str] | None:
    from vdata.teachers import config as tc

    model = {"openai": tc.OpenAITeacherConfig, "vllm": tc.VLLMTeacherConfig, "managed": tc.ManagedTeacherConfig}.get(branch or "")
    return _allowed_keys(model, tuple(loc)) if model else None


def _teacher_errors(err: ValidationError) -> list[str]:
    """Teacher configs are a union on `backend`; drop the union branch name pydantic puts in the path."""
    out = []
    for e in err.errors():
        loc = [p for p in e["loc"] if not (isinstance(p, str) and p in ("openai", "vllm", "managed"))]
        where = _loc(tuple(loc)) or "backend"
        if e["type"] == "extra_forbidden":
            branch = next((p for p in e["loc"] if p in ("openai", "vllm", "managed")), None)
            allowed = _teacher_keys(branch, loc)
            out.append(f"{where}: unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else ""))
        elif e["type"] == "missing":
            out.append(f"{where}: required key is missing")
        else:   # a number given too (a range alone does not say which); never text, which may be a secret
            out.append(f"{where}: {e['msg'].removeprefix('Value error, ')}" + (f" (got {e['input']!r})" if type(e.get("input")) in (int, float) else ""))
    return out


def parse_config(data: Any, raw_text: str = "", base_dir: Path | str = ".") -> BuildConfig:
    from vdata.schemas.registry import STAGES, stage_class
    from vdata.schemas.secrets import redact, teacher_secrets, typed_secrets

    if not isinstance(data, dict):
        raise ConfigError("config must be a YAML mapping at the top level")
    if not raw_text:   # a config given as a dict: the manifest and the card still show the settings it ran with
        import yaml

        raw_text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    from_env: list[str] = []
    unset: list[str] = []   # reported with every other problem below, not alone (a user fixes one round)
    data = interpolate_env(data, found=from_env, missing=unset)
    secrets = tuple(dict.fromkeys(from_env + teacher_secrets(data.get("teachers") or {})
                                  + typed_secrets(data.get("storage") or {}, StorageConfig)))

    def fail(problems: list[str]) -> ConfigError:   # messages quote values: never a secret one
        return ConfigError(redact("invalid config:\n  " + "\n  ".join(problems), secrets))

    # Every problem at once: the sections' own errors too when the top level has some (a user fixes one round)
    problems, specs, positions, cfg, seen = [], [], [], None, {}
    try:
        cfg = BuildConfig.model_validate(data)
    except ValidationError as e:
        problems = format_validation_error(e, BuildConfig)
    teachers = cfg.teachers if cfg else data.get("teachers")
    stages = cfg.stages if cfg else data.get("stages")
    if isinstance(teachers, dict) and teachers:
        from vdata.teachers.config import parse_teacher_config

        for name, tcfg in teachers.items():
            try:
                parse_teacher_config(tcfg)
            except ValidationError as e:
                problems.extend(f"teachers.{name}.{line}" for line in _teacher_errors(e))
            except (TypeError, ValueError) as e:
                problems.append(f"teachers.{name}: {e}")
    for i, item in enumerate(stages if isinstance(stages, list) else []):
        if not isinstance(item, dict) or len(item) != 1:
            problems.append(f"stages[{i}]: each stage is a one-key mapping like `- shots: {{...}}`")
            continue
        (name, kwargs), = item.items()
        if name not in STAGES:
            problems.append(f"stages[{i}]: unknown stage {name!r} (allowed: {', '.join(sorted(STAGES))})")
            continue
        model = stage_class(name).Config
        if name in seen:   # a stage fans rows out and names its columns once: twice would multiply rows
            problems.append(f"stages[{i}]: {name} is already stages[{seen[name]}]; each stage runs once")
            continue
        seen[name] = i
        try:
            context = {"base_dir": str(Path(base_dir).resolve())}   # files a stage names: beside the config
            specs.append((name, model.model_validate(kwargs or {}, context=context)))
            positions.append(i)
        except ValidationError as e:
            problems.extend(format_validation_error(e, model, prefix=f"stages[{i}].{name}"))
            known = teachers if isinstance(teachers, dict) else {}   # validated stages: planning checks theirs
            problems.extend(f"stages[{i}].{name}.{key}: unknown teacher {ref!r}; defined: "
                            f"{', '.join(sorted(known)) or 'none'}" for key, ref in raw_teacher_refs(kwargs)
                            if ref not in known)
    if cfg is not None:
        cfg._stage_configs = specs
        cfg._stage_positions = positions if len(positions) < len(stages) else None
        cfg._base_dir = Path(base_dir).resolve()
        cfg._raw_text = raw_text
        cfg._secrets = secrets
    problems = with_unset(unset, problems)
    if problems:
        error = fail(problems)
        # not with an unset variable: preflight would look for inputs and buckets named by its `${VAR}` text
        error.partial = None if unset else cfg
        raise error
    return cfg


def load_config(path: str | Path) -> BuildConfig:
    try:
        text, data = read_config_file(path)
    except ConfigReadError as e:
        raise ConfigError(str(e)) from None
    return parse_config(data, raw_text=text, base_dir=Path(path).parent)
