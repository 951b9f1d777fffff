"""Name tables every floor may read: the stages and the export formats, as "module:attribute" strings.

The tables live on the schemas floor so that validating a config (schemas), running a plan (pipelines)
and the CLI all read one list without importing upwards. Entries are strings on purpose: naming a stage
or a format imports nothing, and `load_entry` imports the one module a caller actually asks for. This is
a plugin table, not an import: adding a stage is one file under `vdata/stages/` plus one line here.
"""
from __future__ import annotations

import importlib

STAGES: dict[str, str] = {
    "probe": "vdata.stages.probe:ProbeStage",
    "annotations": "vdata.stages.annotations:AnnotationsStage",
    "shots": "vdata.stages.shots:ShotsStage",
    "quality": "vdata.stages.quality:QualityStage",
    "frames": "vdata.stages.frames:FramesStage",
    "asr": "vdata.stages.asr:AsrStage",
    "generate": "vdata.stages.generate:GenerateStage",
    "wellformed": "vdata.stages.wellformed:WellformedStage",
    "verify_claims": "vdata.stages.verify_claims:VerifyClaimsStage",
    "blind": "vdata.stages.blind:BlindStage",
    "single_frame": "vdata.stages.single_frame:SingleFrameStage",
    "labels": "vdata.stages.labels:LabelsStage",
    "timestamps": "vdata.stages.timestamps:TimestampsStage",
    "dedup": "vdata.stages.dedup:DedupStage",
    "caption": "vdata.stages.caption:CaptionStage",
    "video_caption": "vdata.stages.video_caption:VideoCaptionStage",
    "entities": "vdata.stages.entities:EntitiesStage",
    "clip_embed": "vdata.stages.clip_embed:ClipEmbedStage",
    "semdedup": "vdata.stages.semdedup:SemDedupStage",
    "nsfw": "vdata.stages.nsfw:NsfwStage",
}

EXPORT_FORMATS: dict[str, str] = {
    "llava": "vdata.exporters.llava:export",
    "sharegpt": "vdata.exporters.sharegpt:export",
    "swift": "vdata.exporters.swift:export",
    "internvl": "vdata.exporters.internvl:export",
    "lmms-eval": "vdata.exporters.lmms_eval:export",
    "vlmevalkit": "vdata.exporters.vlmevalkit:export",
    "parquet": "vdata.exporters.parquet:export",
    "vidchapters": "vdata.exporters.releases.vidchapters:export",
    "mvbench": "vdata.exporters.releases.mvbench:export",
    "cg_bench": "vdata.exporters.releases.cg_bench:export",
    "timesuite": "vdata.exporters.releases.timesuite:export",
    "lita": "vdata.exporters.releases.lita:export",
    "vtg_it": "vdata.exporters.releases.vtg_it:export",
    "vript": "vdata.exporters.releases.vript:export",
    "panda70m": "vdata.exporters.releases.panda70m:export",
    "sharegpt4video": "vdata.exporters.releases.sharegpt4video:export",
    "howtocaption": "vdata.exporters.releases.howtocaption:export",
    "grounded_videollm": "vdata.exporters.releases.grounded_videollm:export",
    "koala36m": "vdata.exporters.releases.koala36m:export",
    "sharegpt_preference": "vdata.exporters.preference:export",
    "swift_preference": "vdata.exporters.swift_preference:export",
    "trl_preference": "vdata.exporters.trl_preference:export",
    "livechat": "vdata.exporters.livechat:export",
    "llava_dialogue": "vdata.exporters.llava_dialogue:export",
}


def load_entry(table: dict[str, str], name: str, kind: str):
    """The object a table entry names, imported on first use; KeyError lists the allowed names."""
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; allowed: {', '.join(sorted(table))}")
    module, attribute = table[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def stage_class(name: str):
    """The stage class registered under `name` (imports only that stage's module)."""
    return load_entry(STAGES, name, "stage")
