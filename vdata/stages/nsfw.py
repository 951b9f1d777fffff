"""nsfw: NudeNet's detector on each clip's frames; the clip's score is its worst frame.

Reads the clip's sampled frames (the `frames` stage) and runs NudeNet's packaged ONNX detector on every
frame of a batch of clips (`vdata/teachers/nsfw.py`; `pip install 'vdata[nsfw]'`). `q_nsfw` is the
highest detection score, over the clip's frames, among `classes` (default: explicit exposure; any of
NudeNet's labels may be named, e.g. FACE_FEMALE to find faces); 0 when none was detected (the detector
reports nothing under 0.2). `nsfw_labels` lists the configured classes found in any frame.

Threshold: `nsfw_max` (reject `nsfw` above it). With `drop_above: false` every row is kept with its
score and `vdata rethreshold nsfw_max=…` applies a limit later. A clip without frames is rejected
`no_frames`. The detector runs in an actor pool (`uses_actors`): one ONNX session per actor.
"""
from __future__ import annotations

import os

from pydantic import Field, ValidationInfo, field_validator

from vdata.schemas import records as R
from vdata.schemas.config import config_file
from vdata.teachers.nsfw import EXPLICIT, NUDENET_LABELS

from .base import Reject, Resources, Stage, StageConfig


class NsfwConfig(StageConfig):
    classes: list[str] = Field(default_factory=lambda: list(EXPLICIT), min_length=1)
    nsfw_max: float | None = Field(0.5, ge=0, le=1)   # reject nsfw above this
    drop_above: bool = True                           # false: score only
    model: str | None = None                          # another ONNX export of NudeNet's detector
    model_batch_size: int = Field(8, ge=1)            # frames per detector call

    @field_validator("model")
    @classmethod
    def _model_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        return config_file(value, info) if value else None   # beside the config when relative

    @field_validator("classes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in NUDENET_LABELS]
        if unknown:
            raise ValueError(f"unknown NudeNet class(es) {unknown}; allowed: {', '.join(NUDENET_LABELS)}")
        return value


class NsfwStage(Stage):
    name = "nsfw"
    Config = NsfwConfig
    reads = (R.CLIP_ID, R.FRAMES)
    writes = (R.Q_NSFW, R.NSFW_LABELS)
    default_resources = Resources(num_cpus=1, batch_size=16)
    uses_actors = True
    is_filter = True

    @classmethod
    def fetch(cls, config: NsfwConfig) -> None:
        """The detector file, before the build (a missing one was an onnxruntime traceback after the stages
        before it had run). Not at parse time: a cluster's config names files on its shared storage."""
        if config.model is not None and not os.path.isfile(config.model):
            raise ValueError(f"model: no such file {config.model!r} (an ONNX export of NudeNet's detector)")

    def setup(self) -> None:
        from vdata.teachers.nsfw import NsfwDetector

        self.detector = NsfwDetector(self.config.model, threads=max(1, round(self.resources().num_cpus)))

    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        jpegs, owners = [], []
        for i, row in enumerate(rows):
            for f in row.get(R.FRAMES) or []:
                jpegs.append(f[R.FRAME_JPEG])
                owners.append(i)
        scores = self.detector.class_scores(jpegs, batch_size=self.config.model_batch_size) if jpegs else []
        per_row: dict[int, list[dict[str, float]]] = {}
        for i, s in zip(owners, scores):
            per_row.setdefault(i, []).append(s)
        return [self._scored(row, per_row.get(i, [])) for i, row in enumerate(rows)]

    def _scored(self, row: dict, frames: list[dict[str, float]]) -> dict | Reject:
        cfg = self.config
        if not frames:
            return self.reject(row, "no_frames", f"clip {row.get(R.CLIP_ID)} has no frames to check "
                               "(run the frames stage before nsfw)")
        worst = {c: max(f.get(c, 0.0) for f in frames) for c in cfg.classes}
        row = dict(row)
        row[R.Q_NSFW] = max(worst.values())
        row[R.NSFW_LABELS] = [c for c in cfg.classes if worst[c] > 0]
        if cfg.drop_above and cfg.nsfw_max is not None and row[R.Q_NSFW] > cfg.nsfw_max:
            found = ", ".join(f"{c} {worst[c]:.2f}" for c in row[R.NSFW_LABELS])
            return self.reject(row, "nsfw", f"nsfw score {row[R.Q_NSFW]:.3f} > nsfw_max {cfg.nsfw_max} "
                               f"({found}; worst of {len(frames)} frames)", q_nsfw=row[R.Q_NSFW],
                               nsfw_max=cfg.nsfw_max, classes={c: v for c, v in worst.items() if v > 0})
        return row
