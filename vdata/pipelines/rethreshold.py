"""Re-threshold a finished dataset from the filter scores stored in its Parquet (no decoding, no teacher).

Every filter stores its score or verdict as a column and drops rows by a setting from its config.
Clip builds (`clips/`) carry the quality and curation scores (`q_*`: quality, clip_embed, semdedup,
nsfw); sample builds (`samples/`) carry them too, plus
the sample filters' columns (`v_supported_ratio`, `v_blind_correct`, `v_single_frame_correct`, `v_timestamps_valid`,
`v_label_contained`, `v_duplicate_of`). Each check here is the stage's own rule on its stored column,
with the stage's reject reason; a null score passes, as in the stages (the filter skipped that row).

Only tightening can be evaluated: the rows a build dropped went to `rejects/`, which has no score
columns, so they are not in the dataset. A looser setting keeps what is there and brings nothing back;
loosening needs a rebuild (see the `vdata rethreshold` help for what that rebuild reuses).

Where this differs from a rebuild: a row that fails several checks counts under the first stage in
the build's order, as in the pipeline; but `dedup.drop_duplicates` drops every row whose
`v_duplicate_of` is set, also when its kept twin is now dropped by a tightened earlier filter (a
rebuild would have kept the next copy instead). `semdedup.similarity_min` likewise drops a row whose
stored nearest-kept cosine (`q_semantic_similarity`) reaches the new limit, also when that nearest item
is itself dropped now.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from pydantic import BaseModel, ValidationError

from vdata.schemas import records as R
from vdata.schemas.config import format_validation_error
from vdata.schemas.config_file import ConfigError, interpolate_env
from vdata.stages import stage_class
from vdata.stages.quality import CHECKS as QUALITY_SCORE_CHECKS
from vdata.stages.quality import Thresholds

LEVELS = ("clips", "samples")
WRITTEN_FILE = "part-rethreshold-train.parquet"   # `--write-to DIR`: DIR/<level>/part-rethreshold-<split>.parquet


@dataclass(frozen=True)
class Check:
    """One stage's drop rule on one stored column.

    op: "<" drops a score below the setting, ">" one above it, ">=" one at or above it (a None setting
    disables the check);
    "false" drops a false verdict and "set" a row whose column holds a value, when the setting (a
    drop_* flag) is on.
    """

    stage: str
    key: str
    column: str
    reason: str
    op: str
    gate: str | None = None   # the stage's drop flag: when the build had it off (score only), nothing was applied

    @property
    def name(self) -> str:
        return f"{self.stage}.{self.key}"

    def active(self, setting: Any) -> bool:
        return setting is not None and setting is not False

    def looser(self, setting: Any, build_setting: Any) -> bool:
        """Whether `setting` keeps rows that `build_setting` dropped (those rows are not in the dataset)."""
        if not self.active(build_setting):
            return False
        if not self.active(setting):
            return True
        if self.op == "<":
            return setting < build_setting
        if self.op in (">", ">="):
            return setting > build_setting
        return False


QUALITY_CHECKS = tuple(Check("quality", key, column, reason, op) for column, key, reason, op in QUALITY_SCORE_CHECKS)
# The sample filters' rules and reject reasons, as in vdata/stages/{wellformed,verify_claims,blind,single_frame,timestamps,labels,dedup}.py.
SAMPLE_CHECKS = (
    Check("wellformed", "min_language_score", R.V_LANGUAGE_SCORE, "wrong_language", "<"),
    Check("wellformed", "max_prompt_overlap", R.V_PROMPT_OVERLAP, "prompt_leak", ">"),
    Check("verify_claims", "max_refuted_claims", R.V_REFUTED_CLAIMS, "contradicted", ">"),
    Check("verify_claims", "min_supported_ratio", R.V_SUPPORTED_RATIO, "hallucination", "<"),
    Check("blind", "max_blind_correct", R.V_BLIND_CORRECT, "blind_answerable", ">"),
    Check("single_frame", "max_single_frame_correct", R.V_SINGLE_FRAME_CORRECT, "single_frame_answerable", ">"),
    Check("timestamps", "drop_invalid", R.V_TIMESTAMPS_VALID, "bad_timestamps", "false"),
    Check("labels", "drop_missing", R.V_LABEL_CONTAINED, "label_missing", "false"),
    Check("dedup", "drop_duplicates", R.V_DUPLICATE_OF, "duplicate", "set"),
)
# The clip curation filters (vdata/stages/{clip_embed,semdedup,nsfw}.py): on clip and sample builds alike.
EMBED_CHECKS = (
    Check("clip_embed", "aesthetic_min", R.Q_AESTHETIC, "low_aesthetic", "<", gate="drop_below"),
    Check("clip_embed", "text_similarity_min", R.Q_TEXT_SIMILARITY, "caption_mismatch", "<", gate="drop_below"),
    Check("clip_embed", "watermark_max", R.Q_WATERMARK, "watermark", ">", gate="drop_below"),
    Check("semdedup", "similarity_min", R.Q_SEMANTIC_SIMILARITY, "duplicate", ">=", gate="drop_duplicates"),
    Check("nsfw", "nsfw_max", R.Q_NSFW, "nsfw", ">", gate="drop_above"),
)
FILTER_STAGES = ("quality", *dict.fromkeys(c.stage for c in EMBED_CHECKS + SAMPLE_CHECKS))


def checks_for(level: str) -> tuple[Check, ...]:
    return QUALITY_CHECKS + EMBED_CHECKS + (SAMPLE_CHECKS if level == "samples" else ())


@dataclass
class RethresholdResult:
    level: str
    rows: int
    kept: int
    dropped: dict[str, int]                    # reject reason -> rows (each row under the first check it fails)
    changes: list[tuple[str, Any, Any]]        # (check name, the build's setting, the setting used) per --set key
    loosened: list[str] = field(default_factory=list)   # check names set looser than the build
    written: str | None = None
    written_clips: str | None = None          # the kept samples' clips table (frames), when the build has one
    notes: list[str] = field(default_factory=list)   # --set thresholds that some rows have no score for


def rethreshold_dataset(out_dir: str, overrides: dict[str, Any], write_to: str | None = None) -> RethresholdResult:
    """Re-apply the filters of the finished build in `out_dir`, with `overrides` (check name or bare key ->
    value; strings are parsed by the stage's config model) in place of the build's settings. With
    `write_to`, the kept rows go there as a build folder of their own (see rethreshold_write)."""
    from vdata.pipelines import rethreshold_write as W

    level, data_dir = _dataset_dir(out_dir)
    checks = checks_for(level)
    build_configs = build_filter_configs(out_dir)
    named = _resolve_keys(overrides, checks, level)
    build_settings = {c.name: _setting_of(build_configs.get(c.stage), c) for c in checks}
    # a folder an earlier --write-to wrote: its rows passed the settings applied then
    prior = {k: v for k, v in W.prior_settings(out_dir).items() if k in build_settings}
    build_settings.update(prior)
    settings = {**build_settings, **_validate(named, build_configs)}

    files = sorted(os.path.join(data_dir, f) for f in os.listdir(data_dir) if f.endswith(".parquet"))
    if not files:
        raise ConfigError(f"{data_dir} holds no Parquet files")
    dataset = pads.dataset(files, format="parquet")
    for name in named:
        check = next(c for c in checks if c.name == name)
        if check.column not in dataset.schema.names:
            raise ConfigError(f"{name}: column {check.column} is not in {data_dir}: it is written by the "
                              f"{check.stage} stage, which this build did not run")
    # the build applied a check whose column it did not keep (no scores): nothing to re-evaluate
    applied = [c for c in checks if c.active(settings[c.name]) and c.column in dataset.schema.names]
    table = dataset.to_table(columns=list(dict.fromkeys(c.column for c in applied)))
    notes = _unscored(table, [c for c in applied if c.name in named], level, data_dir)
    plan = [(c, settings[c.name]) for c in _in_build_order(applied, build_configs)]
    kept, dropped = rethreshold_table(table, plan)

    written = written_clips = None
    if write_to:
        from vdata.exporters.source import open_build, split_of_file

        W.prepare_dest(out_dir, write_to)
        build = open_build(out_dir)
        by_split: dict[str, list[str]] = {}
        for f in files:
            by_split.setdefault(split_of_file(f), []).append(f)
        total, rejects, parts = 0, [], []
        for split, split_files in by_split.items():
            n, split_rejects, split_parts = W.write_split(build, split_files, dataset.schema, split, plan, write_to,
                                                          _apply)
            total, rejects, parts = total + n, rejects + split_rejects, parts + split_parts
        W.finish(out_dir, write_to, build, total, parts, rejects, dropped, checks,
                 {**prior, **{name: settings[name] for name in named}})
        written = os.path.join(write_to, level)
        if any(p.startswith(R.CLIPS_TABLE + "/") for p in parts) and level != R.CLIPS_TABLE:
            written_clips = os.path.join(write_to, R.CLIPS_TABLE)
    return RethresholdResult(
        level=level, rows=table.num_rows, kept=kept.num_rows, dropped=dropped,
        changes=[(name, build_settings[name], settings[name]) for name in named],
        loosened=[c.name for c in checks if c.name in named and c.looser(settings[c.name], build_settings[c.name])],
        written=written, written_clips=written_clips, notes=notes)


# why a score column can be empty on every row of a build that ran its stage
UNSCORED_WHY = {R.Q_WATERMARK: "clip_embed ran without watermark_head",
                R.Q_AESTHETIC: "clip_embed ran without aesthetic_head",
                R.Q_TEXT_SIMILARITY: "no row had the text clip_embed compares with (its text_column)"}


def _unscored(table: pa.Table, checks: list[Check], level: str, data_dir: str) -> list[str]:
    """Refuse a --set threshold whose score column is empty on every row (it would test nothing); a note per
    threshold that some rows have no score for (they pass, as in the stage). `dedup`'s column is empty for
    the rows that are no duplicate: nothing to say there."""
    notes, empty = [], []
    for check in checks:
        if check.op == "set" or not table.num_rows:
            continue
        column = table[check.column]
        missing = column.null_count
        if pa.types.is_floating(column.type):
            missing += pc.sum(pc.fill_null(pc.is_nan(column), False)).as_py() or 0
        if missing == table.num_rows:
            why = UNSCORED_WHY.get(check.column, f"the {check.stage} stage scored none of them")
            empty.append(f"{check.name}: column {check.column} has no score on any of the {table.num_rows} {level} "
                         f"({why})")
        elif missing:
            notes.append(f"{check.name}: {missing} of {table.num_rows} {level} have no {check.column} (the "
                         f"{check.stage} stage did not score them); they are kept, as the stage keeps them")
    if empty:
        raise ConfigError("; ".join(empty) + f" in {data_dir}: such a threshold would test nothing (nothing was "
                          "applied); rebuild with the stage computing the score, or leave it out")
    for note in notes:
        logging.getLogger("vdata").warning("note: %s", note)
    return notes


def rethreshold_table(table: pa.Table, checks: list[tuple[Check, Any]]) -> tuple[pa.Table, dict[str, int]]:
    """(rows that pass every check, reason -> rows dropped); checks in the order the build ran them."""
    kept, dropped, _ = _apply(table, checks)
    return kept, dropped


def _apply(table: pa.Table, checks: list[tuple[Check, Any]], keep_dropped: bool = False):
    """rethreshold_table, and with `keep_dropped` the rows each check drops: [(check, setting, rows)]."""
    dropped_mask = pa.array([False] * table.num_rows, pa.bool_())
    dropped: dict[str, int] = {}
    dropped_rows = []
    for check, setting in checks:
        fails = failing(table[check.column], check, setting)
        newly = pc.and_(fails, pc.invert(dropped_mask))
        count = pc.sum(newly).as_py() or 0
        if count:
            dropped[check.reason] = dropped.get(check.reason, 0) + count
            if keep_dropped:
                dropped_rows.append((check, setting, table.filter(newly)))
        dropped_mask = pc.or_(dropped_mask, fails)
    return table.filter(pc.invert(dropped_mask)), dropped, dropped_rows


def failing(column: pa.ChunkedArray, check: Check, setting: Any) -> pa.ChunkedArray:
    """Rows `check` drops at `setting`; a null score never fails."""
    if check.op in ("<", ">", ">="):
        # Compared at the column's precision: the stage compared the unrounded score, and rounding is
        # monotonic, so every stored score the stage kept at a limit still passes that limit here.
        limit = pa.scalar(setting, type=column.type)
        compare = {"<": pc.less, ">": pc.greater, ">=": pc.greater_equal}[check.op]
        fails = compare(column, limit)
    elif check.op == "false":
        fails = pc.invert(column)
    else:   # "set": the stage tests the value's truth, so an empty string is no duplicate
        fails = pc.and_(pc.is_valid(column), pc.not_equal(column, ""))
    return fails.fill_null(False)


def build_filter_configs(out_dir: str) -> dict[str, BaseModel]:
    """The filter stages' configs as the build ran them (from manifest.json `config_text`).

    Only the filter stages are read, so a build whose other sections cannot be resolved here (a
    teacher's `${API_KEY}` unset on this machine) still yields its thresholds. A stage listed twice
    yields its first entry: every stored row passed both.
    """
    import yaml

    path = os.path.join(out_dir, "manifest.json")
    try:
        with open(path) as f:
            text = json.load(f).get("config_text") or ""
    except OSError:
        raise ConfigError(f"{out_dir} has no manifest.json: not a finished build, so the settings it "
                          "applied are unknown")
    except ValueError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: config_text is not valid YAML ({e})")
    stages = (data.get("stages") if isinstance(data, dict) else None) or []
    configs: dict[str, BaseModel] = {}
    for i, item in enumerate(stages):
        if not isinstance(item, dict) or len(item) != 1:
            continue
        (name, kwargs), = item.items()
        if name not in FILTER_STAGES or name in configs:
            continue
        where = f"manifest config_text stages[{i}].{name}"
        model = stage_class(name).Config
        try:
            configs[name] = model.model_validate(interpolate_env(kwargs or {}, where))
        except ValidationError as e:
            raise ConfigError("the build's config does not validate here:\n  "
                              + "\n  ".join(format_validation_error(e, model, prefix=where)))
    return configs


def _setting_of(config: BaseModel | None, check: Check) -> Any:
    """The build's setting for `check`; None (off) when the build did not run that stage."""
    if config is None or (check.gate and not getattr(config, check.gate)):
        return None
    holder = config.thresholds if check.stage == "quality" else config
    return getattr(holder, check.key)


def _dataset_dir(out_dir: str) -> tuple[str, str]:
    level = None
    try:
        with open(os.path.join(out_dir, "manifest.json")) as f:
            level = json.load(f).get("level")
    except (OSError, ValueError):
        pass   # reported with the build's settings
    if level is None:
        level = next((lv for lv in reversed(LEVELS) if os.path.isdir(os.path.join(out_dir, lv))), None)
    if level not in LEVELS:
        raise ConfigError(f"{out_dir} has no clips/ or samples/ dataset (level {level!r}): only clip and sample "
                          "builds store filter scores")
    data_dir = os.path.join(out_dir, level)
    if not os.path.isdir(data_dir):
        raise ConfigError(f"{out_dir} has no {level}/ folder")
    return level, data_dir


def _resolve_keys(overrides: dict[str, Any], checks: tuple[Check, ...], level: str) -> dict[str, Any]:
    """Check name -> value; a key is `stage.key` or a bare key that only one check has."""
    by_name = {c.name: c for c in checks}
    by_key: dict[str, list[Check]] = {}
    for c in checks:
        by_key.setdefault(c.key, []).append(c)
    named: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in by_name:
            name = key
        elif len(by_key.get(key, [])) == 1:
            name = by_key[key][0].name
        else:
            sample_only = [c.name for c in SAMPLE_CHECKS if key in (c.name, c.key)]
            hint = f" ({sample_only[0]} applies to sample builds; this is a {level} build)" if sample_only else ""
            raise ConfigError(f"unknown threshold {key!r}{hint}; allowed for this dataset: "
                              f"{', '.join(by_name)} (the part after the dot alone works too)")
        if name in named:
            raise ConfigError(f"{name} is set twice")
        named[name] = value
    return named


def _validate(named: dict[str, Any], build_configs: dict[str, BaseModel]) -> dict[str, Any]:
    """The --set values parsed and range-checked by their stage's own config model."""
    by_stage: dict[str, dict[str, Any]] = {}
    for name, value in named.items():
        stage, key = name.split(".", 1)
        by_stage.setdefault(stage, {})[key] = value
    out: dict[str, Any] = {}
    for stage, values in by_stage.items():
        model = Thresholds if stage == "quality" else stage_class(stage).Config
        config = build_configs.get(stage)
        base = (config.thresholds if stage == "quality" else config) if config is not None else model()
        try:
            parsed = model.model_validate({**base.model_dump(), **values})
        except ValidationError as e:
            raise ConfigError("--set: " + "; ".join(format_validation_error(e, model, prefix=stage)))
        out.update({f"{stage}.{key}": getattr(parsed, key) for key in values})
    return out


def _in_build_order(checks: list[Check], build_configs: dict[str, BaseModel]) -> list[Check]:
    """A row the build would reject twice counts under the stage that ran first; stages the build did not
    run (set here only) come after, in this module's order."""
    ran = list(build_configs)
    return sorted(checks, key=lambda c: (ran.index(c.stage) if c.stage in ran else len(ran)))
