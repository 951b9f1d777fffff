"""Stages: one file per stage, each a `Stage` subclass (see `base.py` and docs/adding_a_stage.md).

The registry of stage names is `vdata.schemas.registry.STAGES` (a lower floor, so config validation can
read it without importing upwards); a new stage is one file here plus one line there.
"""
from __future__ import annotations

from vdata.schemas.registry import STAGES as REGISTRY
from vdata.schemas.registry import stage_class

__all__ = ["REGISTRY", "stage_class"]
