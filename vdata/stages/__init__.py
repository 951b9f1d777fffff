"""Stage registry: name -> "module:Class". Adding a stage = one file + one line here.

Entries are strings so that listing or validating a config never imports a stage's heavy libraries.
"""
from __future__ import annotations

import importlib

REGISTRY: dict[str, str] = {
    "probe": "vdata.stages.probe:ProbeStage",
    "shots": "vdata.stages.shots:ShotsStage",
    "quality": "vdata.stages.quality:QualityStage",
    "frames": "vdata.stages.frames:FramesStage",
    "asr": "vdata.stages.asr:AsrStage",
    "generate": "vdata.stages.generate:GenerateStage",
    "verify_claims": "vdata.stages.verify_claims:VerifyClaimsStage",
    "blind": "vdata.stages.blind:BlindStage",
    "labels": "vdata.stages.labels:LabelsStage",
    "timestamps": "vdata.stages.timestamps:TimestampsStage",
    "dedup": "vdata.stages.dedup:DedupStage",
    "caption": "vdata.stages.caption:CaptionStage",
    "video_caption": "vdata.stages.video_caption:VideoCaptionStage",
}


def stage_class(name: str):
    if name not in REGISTRY:
        raise KeyError(f"unknown stage {name!r}; allowed: {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)
