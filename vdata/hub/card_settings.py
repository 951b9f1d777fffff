"""The settings and thresholds a dataset card states: each stage's settings as the build ran them, and,
for a folder `vdata rethreshold --write-to` wrote, the thresholds applied there in their place (outside
check h26 F19: the card of such a folder stated the build's thresholds, 30, while its rows had been cut
at 200).

The folder's manifest keeps the build's config (`config_text`) and records the settings applied after it
in `derived_from` (`vdata.pipelines.rethreshold_write`: `{"settings": {"quality.sharpness_min": 200}}`,
every `--set` of each rethreshold in the chain). `rethresholded` lays those over the stages' settings, so
the Pipeline table and "Thresholds in force" show the values the rows passed, and lists the changes (from
the build's value, its default where the config left it out) for the card to say so."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_LIMIT = re.compile(r"(_min|_max|^min_|^max_)")
# Named like limits but they size a request, a frame or a text, or pick frames within a clip: no row is
# dropped by them, so "Thresholds in force" leaves them out.
_NOT_LIMITS = re.compile(r"tokens|in_flight|_chars|^max_frames$|max_side|^max_claims$|hash_distance|"
                         r"keyframe_similarity|_ms$")
DERIVED = "derived_from"   # as vdata.pipelines.rethreshold_write writes it (a floor above: not imported)


def _fmt_settings(kw: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in kw.items()) or "defaults"


def _resolved(name: str, kw: dict) -> dict:
    """The stage's settings with its defaults filled in (its Config model, as the build validated it), the
    values written in the config kept as written; the settings as written where the stage is unknown here
    or its settings do not validate (a `${VAR}` unset on this machine)."""
    from vdata.stages import stage_class

    try:
        full = stage_class(name).Config.model_validate(kw).model_dump(mode="json")
    except Exception:   # KeyError (unknown stage), ValidationError, ImportError of an optional stage
        return kw
    if isinstance(full.get("thresholds"), dict) and isinstance(kw.get("thresholds"), dict):
        full["thresholds"] = {**full["thresholds"], **kw["thresholds"]}
    return {**full, **{k: v for k, v in kw.items() if k != "thresholds"}}


def _thresholds(stage_settings: list) -> dict:
    """{stage: its limits} for every stage with one: the defaults it ran with included, since a stage
    written as `quality: {}` drops rows by its default thresholds just the same."""
    thresholds: dict = {}
    for name, kw in stage_settings:
        if kw is None:   # not recorded: claiming the defaults would be a guess
            continue
        full = _resolved(name, kw)
        limits = {k: v for k, v in (full.get("thresholds") or {}).items() if v is not None} \
            if isinstance(full.get("thresholds"), dict) else {}
        limits.update({k: v for k, v in full.items() if _LIMIT.search(k) and not _NOT_LIMITS.search(k)
                       and v is not None and not isinstance(v, (bool, dict, list))})
        if limits:
            thresholds[name] = limits
    return {name: _fmt_settings(t) for name, t in thresholds.items()}


@dataclass
class Rethreshold:
    """The settings `vdata rethreshold --write-to` applied after the build, as the card states them."""

    stage_settings: list                                # the stages' settings with the applied values in
    changes: list = field(default_factory=list)         # (stage.key, the build's value, the value applied)
    dropped: dict = field(default_factory=dict)         # reject reason -> rows dropped by the rethreshold(s)
    run_id: str = ""
    extra: dict = field(default_factory=dict)           # {stage: {key: value}} of stages the build did not run

    def thresholds(self) -> dict:
        """"Thresholds in force": the stages' limits, the applied values in."""
        out = _thresholds(self.stage_settings)
        for stage, limits in self.extra.items():
            shown = {k: v for k, v in limits.items() if v is not None and v is not False}
            if shown:
                out[stage] = _fmt_settings(shown) + " (applied by vdata rethreshold)"
        return out

    @property
    def note(self) -> str:
        """The card's sentence about it ("" for a build)."""
        if not self.changes:
            return ""
        changed = "; ".join(f"{name} {_value(old)} -> {_value(new)}" for name, old, new in self.changes)
        dropped = ", ".join(f"{k} {n}" for k, n in sorted(self.dropped.items())) or "none"
        return (f"Re-thresholded after the build by `vdata rethreshold` (build run {self.run_id or '?'}): {changed}. "
                f"The rows were filtered at these values (the thresholds above); rows dropped by the rethreshold: "
                f"{dropped}. The Pipeline table's row counts are the build's.")

    def marker(self, stage: str) -> str:
        """What the Pipeline table adds to the settings of a stage whose values were changed after the build."""
        changed = [(n, old, new) for n, old, new in self.changes if n.partition(".")[0] == stage]
        return "".join(f" (re-thresholded: {n.partition('.')[2]} {_value(old)} -> {_value(new)})"
                       for n, old, new in changed)

    def config_comment(self) -> str:
        """YAML comment lines to put above the build's config: it states the build's values."""
        if not self.changes:
            return ""
        lines = [f"#   {name}: {_value(new)}  (was {_value(old)})" for name, old, new in self.changes]
        return "\n".join(["# the build's config; `vdata rethreshold` then applied, and the rows passed:", *lines]) + "\n"


def _value(v: Any) -> str:
    return "off" if v is None or v is False else str(v)


def rethresholded(manifest: dict, stage_settings: list) -> Rethreshold:
    """The stages' settings with those `derived_from` records laid over them (the settings applied by `vdata
    rethreshold --write-to`), and the changes; `stage_settings` as they are for a build."""
    derived = (manifest or {}).get(DERIVED) or {}
    applied = derived.get("settings") or {}
    if not isinstance(applied, dict) or not applied:
        return Rethreshold(list(stage_settings))
    settings = [(name, None if kw is None else json.loads(json.dumps(kw))) for name, kw in stage_settings]
    index = {name: i for i, (name, _) in enumerate(settings)}
    changes, extra = [], {}
    for full_name, value in applied.items():
        stage, _, key = str(full_name).partition(".")
        kw = settings[index[stage]][1] if stage in index else None
        full = _resolved(stage, kw) if kw is not None else {}
        holder = (full.get("thresholds") or {}) if stage == "quality" else full
        old = holder.get(key) if isinstance(holder, dict) else None
        if not key or old == value:
            continue
        changes.append((full_name, old, value))
        if kw is None:   # a stage the build did not run (its scores came with the input), or not recorded
            extra.setdefault(stage, {})[key] = value
        elif stage == "quality":   # its limits sit under `thresholds`, as vdata rethreshold reads them
            if not isinstance(kw.get("thresholds"), dict):
                kw["thresholds"] = {}
            kw["thresholds"][key] = value
        else:
            kw[key] = value
    return Rethreshold(settings, changes, dict(derived.get("dropped") or {}), str(derived.get("run_id") or ""), extra)
