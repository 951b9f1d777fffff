"""The haystack benchmark config: YAML → validated pydantic models; errors name the key path.

```yaml
name: haystack-demo
output: {dir: out/haystack-demo}
haystack:
  sources: {glob: "videos/**/*.mp4"}          # haystack videos, concatenated/trimmed to each length
  lengths_s: [60, 600, 3600]
  needles:
    - {type: image, from: "needles/images/*.jpg", duration_s: 1.0}
    - {type: text, phrases: "needles/phrases.txt", style: overlay}
    - {type: clip, from: "needles/clips/*.mp4"}
    - {type: audio, from: "needles/speech/*.wav"}
  tasks: [retrieval, ordering, counting, multihop, localization]
  needles_per_item: [1, 3, 5]
  depths: uniform                              # or a list such as [0.1, 0.5, 0.9]
  options: 4
  circular_eval: true
  seed: 17
  render: videos                               # or manifest: only the rebuild manifest and the items
  size: auto                                   # or [640, 360]; auto: the most common source size
  fps: auto                                    # or 25
```
Paths are relative to the config file. `${VAR}` / `${VAR:-default}` are taken from the environment.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vdata.schemas.config import ConfigFile, format_validation_error
from vdata.schemas.config_file import ConfigError, ConfigReadError, interpolate_env, read_config_file, with_unset

TASKS = ("retrieval", "ordering", "counting", "multihop", "localization")
NEEDLE_KINDS = ("image", "text", "clip", "audio")
# Tasks whose question is about one placement: only these take the depth axis (ordering and counting
# are about several placements at once, so a single depth means nothing for them).
DEPTH_TASKS = ("retrieval", "multihop", "localization")
MIN_NEEDLES = {"ordering": 2, "multihop": 2}
# Version of the rules that turn a config and its seed into items, part of `benchmark_hash`, so that a
# config built under other rules never passes for the same benchmark. 2: counting answers balanced over
# 0..n, gap_s kept in full from both ends, needles placed at the asked depth, too-long needles redrawn.
# 3: videos named by an opaque hash (planner.media_name), items naming a needle the video shows as absent
# (a distractor in the footage) dropped as distractor_on_screen. 4: a spoken needle's interval (its
# placement, localization's answer) is its audible part, not its file with the TTS silence around it.
ITEM_RULES = 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SourceSpec(_Strict):
    path: str | None = None               # a file or a directory (searched recursively)
    glob: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in ("path", "glob") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of path, glob (got: {', '.join(given) or 'none'})")
        return self


class NeedleSpec(_Strict):
    type: Literal["image", "text", "clip", "audio"]
    from_: str | None = Field(None, alias="from")    # glob of files (image, clip, audio)
    phrases: str | list[str] | None = None            # text: a file (one phrase a line) or an inline list
    style: Literal["overlay", "fullframe"] | None = None   # default: text overlay, image/clip fullframe
    duration_s: float | None = Field(None, gt=0)      # image/text: how long it shows (default 2 s);
    #                                                   clip: cap on the clip's own length; audio: unused
    scale: float = Field(0.4, gt=0, le=1)             # overlay size relative to the frame
    name: str | None = None                           # the needle set's name in items and summaries

    @model_validator(mode="after")
    def _inputs_match_type(self):
        if self.type == "text":
            if self.phrases is None:
                raise ValueError("text needles need `phrases` (a file with one phrase a line, or a list)")
            if self.from_ is not None:
                raise ValueError("text needles take `phrases`, not `from`")
        else:
            if self.from_ is None:
                raise ValueError(f"{self.type} needles need `from` (a glob of files)")
            if self.phrases is not None:
                raise ValueError(f"`phrases` is for text needles, not {self.type}")
        if self.type == "audio" and self.style is not None:
            raise ValueError("audio needles have no on-screen style")
        return self

    @property
    def resolved_style(self) -> str:
        if self.type == "audio":
            return "audio"
        return self.style or ("overlay" if self.type == "text" else "fullframe")


class VerifySpec(_Strict):
    enabled: bool = True
    phash_max_distance: int = Field(12, ge=0, le=64)   # image/clip present if hamming <= this ...
    colour_max_distance: float = Field(20.0, ge=0, le=255)   # ... or if the colour distance is <= this
    text_min_similarity: float = Field(0.8, gt=0, le=1)  # share of the phrase's characters OCR must find
    text_absent_below: float = Field(0.5, gt=0, le=1)  # just outside, OCR must find less than this
    speech_min_words: float = Field(0.6, gt=0, le=1)   # share of the spoken phrase's words ASR must hear
    outside_s: float = Field(0.3, gt=0)                # how far outside the interval "absent" is checked
    # Images and clips are also looked for in the whole rendered haystack, a frame this often (0: off):
    # the haystack's own footage may show the needle's picture far from where it was inserted.
    scan_every_s: float = Field(0.25, ge=0)
    timing_tolerance_s: float = Field(0.5, ge=0)       # ASR word times may stray this far from the interval
    asr_model: str | None = None                       # CTranslate2 Whisper dir; None: the packaged tiny.en


class EncodeSpec(_Strict):
    crf: int = Field(23, ge=0, le=51)
    preset: str = "veryfast"
    audio_bitrate: str = "96k"
    duck: float = Field(0.25, ge=0, le=1)              # haystack audio gain while a spoken needle plays


class HaystackSpec(_Strict):
    sources: list[SourceSpec] = Field(min_length=1)    # one mapping or a list of them
    lengths_s: list[float] = Field(min_length=1)
    needles: list[NeedleSpec] = Field(min_length=1)
    tasks: list[Literal["retrieval", "ordering", "counting", "multihop", "localization"]] = Field(
        default_factory=lambda: list(TASKS), min_length=1)
    needles_per_item: list[int] = Field(default_factory=lambda: [1, 3, 5], min_length=1)
    depths: Union[Literal["uniform"], list[float]] = "uniform"
    items_per_cell: int = Field(1, ge=1)               # repeats of each grid cell (different draws)
    options: int = Field(4, ge=2, le=10)
    circular_eval: bool = True
    seed: int = 17
    render: Literal["videos", "manifest"] = "videos"
    # The haystack's frame size and rate; sources and needles are letterboxed / resampled to them.
    # "auto": the most common among the sources (ties: the larger), fixed once the sources are probed.
    size: Union[tuple[int, int], Literal["auto"]] = "auto"
    fps: Union[float, Literal["auto"]] = "auto"
    gap_s: float = Field(1.5, ge=0)                    # minimum spacing between needles, and from both ends
    pair_gap_s: float = Field(0.5, ge=0)               # multihop: anchor end to payload start
    verify: VerifySpec = Field(default_factory=VerifySpec)
    encode: EncodeSpec = Field(default_factory=EncodeSpec)

    @field_validator("sources", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, dict) else v

    @field_validator("lengths_s")
    @classmethod
    def _positive_lengths(cls, v):
        bad = [x for x in v if x <= 0]
        if bad:
            raise ValueError(f"lengths must be > 0 seconds (got {bad})")
        return v

    @field_validator("needles_per_item")
    @classmethod
    def _positive_counts(cls, v):
        if any(n < 1 for n in v):
            raise ValueError(f"needle counts must be >= 1 (got {v})")
        return v

    @field_validator("depths")
    @classmethod
    def _depths_in_range(cls, v):
        if isinstance(v, list):
            if not v:
                raise ValueError("give at least one depth, or `uniform`")
            bad = [d for d in v if not 0.0 <= d <= 1.0]
            if bad:
                raise ValueError(f"depths are fractions of the haystack in [0, 1] (got {bad})")
        return v

    @field_validator("size")
    @classmethod
    def _even_size(cls, v):
        if v == "auto":
            return v
        w, h = v
        if w < 64 or h < 64 or w % 2 or h % 2:
            raise ValueError(f"size must be even and at least 64x64 (got {w}x{h})")
        return v

    @field_validator("fps")
    @classmethod
    def _fps_range(cls, v):
        if v != "auto" and not 0 < v <= 120:
            raise ValueError(f"fps must be in (0, 120] (got {v})")
        return v

    @model_validator(mode="after")
    def _names(self):
        kinds = [n.type for n in self.needles]
        names = []
        for spec in self.needles:
            if spec.name is None:
                # A second set of the same type needs its style in its name to stay distinguishable.
                spec.name = spec.type if kinds.count(spec.type) == 1 else f"{spec.type}_{spec.resolved_style}"
            names.append(spec.name)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"needle set names must be unique; give `name:` to tell apart {dup}")
        return self


class OutputSpec(_Strict):
    dir: str
    shard_mb: int = Field(2000, ge=1)                  # lmms-eval zip shard size
    hub_repo: str | None = None                        # write lmms-eval YAMLs that download from this repo
    rows_per_group: int = Field(1000, ge=1)            # Parquet row group size (memory stays flat)

    @field_validator("dir")
    @classmethod
    def _local_dir(cls, v):
        # ffmpeg renders into it and os.* writes the manifest: an s3:// URL would half-write to a local
        # folder named "s3:" (the Parquet tables alone reaching the bucket through pyarrow)
        if "://" in v:
            raise ValueError(f"{v!r} is not a local folder; a haystack benchmark is built into a local folder "
                             "(copy it or `vdata push` it afterwards)")
        return v


class HaystackConfig(ConfigFile):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = "haystack"
    description: str = ""
    output: OutputSpec
    haystack: HaystackSpec

    def benchmark_hash(self) -> str:
        """Identity of the benchmark's content: everything but where the output goes."""
        data = self.model_dump(mode="json", by_alias=True, exclude={"output", "description"})
        data["item_rules"] = ITEM_RULES
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def parse_haystack_config(data, raw_text: str = "", base_dir: Path | str = ".") -> HaystackConfig:
    if not isinstance(data, dict):
        raise ConfigError("config must be a YAML mapping at the top level")
    unset: list[str] = []   # said with the other problems, not alone (one round of fixes)
    data = interpolate_env(data, missing=unset)
    lines: list[str] = []
    try:
        cfg = HaystackConfig.model_validate(data)
    except ValidationError as e:
        lines = _alias_paths(format_validation_error(e, HaystackConfig))
    lines = with_unset(unset, lines)
    if lines:
        raise ConfigError("invalid haystack config:\n  " + "\n  ".join(lines)) from None
    cfg._base_dir = Path(base_dir).resolve()
    cfg._raw_text = raw_text
    return cfg


def _alias_paths(lines: list[str]) -> list[str]:
    # pydantic reports the python field name `from_`; the user wrote `from`.
    return [line.replace(".from_", ".from").replace("from_,", "from,").replace(", from_", ", from") for line in lines]


def load_haystack_config(path: str | Path) -> HaystackConfig:
    path = Path(path)
    try:
        text, data = read_config_file(path)
    except ConfigReadError as e:
        raise ConfigError(str(e)) from None
    return parse_haystack_config(data, raw_text=text, base_dir=path.parent)
