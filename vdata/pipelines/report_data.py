"""The run report's numbers: loaded from a build's output folder into plain sections (no drawing, no HTML).

Everything comes from what a build leaves in its output folder: `manifest.json` (per-stage counts,
per-batch timing records, rejects by reason, config text, versions, teacher stats), the data Parquet
(only the small columns a plot needs are read — never `frames`), and `rejects/*.parquet` (whose
`detail` JSON holds the quality scores of rejected clips, so the distributions show where each
threshold cut). Each section collector returns a `Section` (text + tables) whose `figure` holds the
plain numbers its plot is drawn from (`report_figures`), or None when its data does not exist.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from vdata.schemas import records as R
from vdata.teachers.tiny_models import is_demo_model

LEVELS = ("samples", "clips", "videos")


@dataclass
class TableBlock:
    headers: list[str]
    rows: list[list]
    caption: str = ""
    numeric: bool = True     # right-align numeric cells (off for key/value tables such as versions)


@dataclass
class Plot:
    svg: bytes               # an SVG document (report_figures)
    alt: str                 # the figure's own titles: img alt text in both files


@dataclass
class Section:
    key: str                 # anchor, PNG file name, and the figure drawn for it
    title: str
    text: str = ""           # one or two sentences of plain text
    tables: list[TableBlock] = field(default_factory=list)
    figure: dict | None = None   # keyword arguments of the section's figure (plain numbers and labels)
    plot: Plot | None = None     # drawn from `figure` by report_figures
    preformatted: str = ""   # e.g. the config text
    collapsed: bool = False  # HTML: inside <details>
    cards: list = field(default_factory=list)   # the sample viewer's rows (report_samples.SampleCard)


@dataclass
class RunData:
    """What the report is drawn from, loaded once."""

    output_dir: str
    manifest: dict
    level: str | None
    data: pa.Table | None          # only the small columns, one row per kept row
    rejects: pa.Table              # stage, reason, message, source_uri, video_id, clip_id, sample_id, task
    rejected_scores: list[dict]    # quality scores of rejected clips (from rejects' detail JSON)
    thresholds: object | None      # vdata.stages.quality.Thresholds, or None without a quality stage
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- loading
def _parquet_files(folder: str) -> list[str]:
    """The finished part files only (a `.tmp` left by an interrupted write is not Parquet yet)."""
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".parquet"))


def _data_dir(output_dir: str, manifest: dict) -> tuple[str | None, str | None]:
    levels = [manifest["level"]] if manifest.get("level") in LEVELS else list(LEVELS)
    for level in levels:
        d = os.path.join(output_dir, level)
        if _parquet_files(d):
            return level, d
    return manifest.get("level"), None


_DATA_COLUMNS = (R.SOURCE_URI, R.VIDEO_ID, R.CLIP_ID, R.SAMPLE_ID, R.DURATION_S, R.CLIP_DURATION_S,
                 R.SHOTS_IN_VIDEO, *R.QUALITY_COLUMNS, R.TASK, R.QUESTION_TYPE, R.ANSWER_INDEX,
                 R.CAPTION_MODEL, R.VIDEO_CAPTION_MODEL, R.SAMPLE_MODEL)   # models: the limitations note


def _read_data(data_dir: str) -> pa.Table:
    ds = pads.dataset(_parquet_files(data_dir), format="parquet")
    names = set(ds.schema.names)
    cols = [c for c in _DATA_COLUMNS if c in names]
    table = ds.to_table(columns=cols)
    if R.OPTIONS in names:   # only the number of options matters (expected answer-position shares)
        lengths = pc.list_value_length(ds.to_table(columns=[R.OPTIONS])[R.OPTIONS])
        table = table.append_column("n_options", lengths)
    return table


def _read_rejects(rejects_dir: str) -> tuple[pa.Table, list[dict]]:
    cols = ["stage", "reason", "message", R.SOURCE_URI, R.VIDEO_ID, R.CLIP_ID, R.SAMPLE_ID, R.TASK]
    files = _parquet_files(rejects_dir)
    if not files:
        return R.REJECT_SCHEMA.empty_table().select(cols), []
    ds = pads.dataset(files, format="parquet", schema=R.REJECT_SCHEMA)
    table = ds.to_table(columns=cols)
    # Only rows whose detail carries scores are parsed (quality rejects); the rest never leave Arrow.
    with_scores = ds.to_table(columns=["detail"], filter=pc.match_substring(pc.field("detail"), '"scores"'))
    scores = []
    for text in with_scores["detail"].to_pylist():
        try:
            s = json.loads(text).get("scores")
        except (ValueError, AttributeError):
            continue
        if isinstance(s, dict):
            scores.append(s)
    return table, scores


def quality_thresholds(config_text: str):
    """The thresholds of the build's first quality stage (defaults filled in), or None without one."""
    import yaml

    try:
        raw = yaml.safe_load(config_text or "") or {}
    except yaml.YAMLError:
        return None
    try:
        from vdata.schemas.config import parse_config

        for name, scfg in parse_config(raw, config_text).stage_specs:
            if name == "quality":
                return scfg.thresholds
        return None
    except Exception:
        pass
    # The config no longer validates (e.g. a stage renamed since): read the quality entry as written.
    from vdata.stages.quality import Thresholds   # deferred: a build without a quality stage never loads it

    for item in raw.get("stages") or []:
        if isinstance(item, dict) and "quality" in item:
            try:
                return Thresholds(**((item["quality"] or {}).get("thresholds") or {}))
            except Exception:
                return Thresholds()
    return None


def load_run(output_dir: str) -> RunData:
    manifest_path = os.path.join(output_dir, "manifest.json")
    if not os.path.isfile(manifest_path):
        raise FileNotFoundError(f"{output_dir}: no manifest.json (not the output folder of a vdata build)")
    manifest = json.loads(Path(manifest_path).read_text())
    warnings = []
    level, data_dir = _data_dir(output_dir, manifest)
    data = None
    if data_dir:
        try:
            data = _read_data(data_dir)
        except Exception as e:   # a damaged part file must not cost the whole report
            warnings.append(f"could not read {data_dir}: {e}")
    try:
        rejects, scores = _read_rejects(os.path.join(output_dir, "rejects"))
    except Exception as e:
        warnings.append(f"could not read rejects: {e}")
        rejects, scores = R.REJECT_SCHEMA.empty_table(), []
    warnings += limitations(manifest, data)
    return RunData(output_dir, manifest, level, data, rejects, scores,
                   quality_thresholds(manifest.get("config_text", "")), warnings)


def limitations(manifest: dict, data) -> list[str]:
    """What a reader must know before training on the rows: text written by a demo teacher (the tiny
    random VLM writes noise) and samples never checked against evidence other than themselves."""
    out = []
    models = Counter()
    if data is not None:
        for column in data.column_names:
            if column.endswith("_model"):
                models.update(m for m in data.column(column).to_pylist() if isinstance(m, str) and "demo" in m)
    for model, n in sorted(models.items()):
        noise = " (a randomly initialised model: its text is noise)" if "vlm" in model else ""
        out.append(f"limitation: {n} row value(s) written by the demo teacher {model}{noise}; do not train on them")
    # a demo teacher whose text other teachers wrote from (captions merged, questions asked from them): their
    # rows name no demo model, yet carry its noise (outside check h25 F12)
    teachers = [t for t in (manifest.get("teachers") or {}).values() if isinstance(t, dict) and t.get("requests")]
    demo = sorted({str(t.get("model")) for t in teachers if is_demo_model(str(t.get("model") or ""))})
    if demo and any(not is_demo_model(str(t.get("model") or "")) for t in teachers):
        out.append(f"limitation: the demo teacher(s) {', '.join(demo)} wrote text that the other teachers wrote from: "
                   "their samples carry that noise wherever they drew on it; do not train on them")
    unverified = (manifest.get("verification") or {}).get("unverified")
    if unverified:
        out.append(f"limitation: {unverified} kept sample(s) are unverified (captions without a frame-level verifier)")
    if not manifest.get("rows") and manifest.get("rejects"):
        out.append(f"no rows kept: all {manifest['rejects']} reject(s) are listed under Rejects with their reasons")
    return out


# --------------------------------------------------------------------------- helpers
def column(table: pa.Table | None, name: str) -> np.ndarray | None:
    """Non-null values of a numeric column as float64, or None if absent/empty."""
    if table is None or name not in table.column_names:
        return None
    col = pc.drop_null(table[name])
    if len(col) == 0:
        return None
    values = col.to_numpy(zero_copy_only=False).astype(np.float64)
    values = values[np.isfinite(values)]
    return values if values.size else None


def unique_by(table: pa.Table | None, key: str) -> pa.Table | None:
    """First row per key (sample rows repeat their clip's columns; plots count each clip once)."""
    if table is None or key not in table.column_names or table.num_rows == 0:
        return table
    ids = table[key].to_numpy(zero_copy_only=False)
    _, first = np.unique(ids.astype(str), return_index=True)
    return table.take(pa.array(np.sort(first)))


def value_counts(table: pa.Table, col: str) -> list[tuple[str, int]]:
    """(value, count) of a column, most frequent first."""
    if col not in table.column_names:
        return []
    vc = pc.value_counts(pc.drop_null(table[col])).to_pylist()
    return sorted(((str(d["values"]), int(d["counts"])) for d in vc), key=lambda kv: (-kv[1], kv[0]))


def fmt(v) -> str:
    """A table cell as text: thousands separators, 3 significant digits, – for missing."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def is_number(v) -> bool:
    """Whether a cell reads as a number (right-aligned): 1,234 / 12.5% / 3.1 s / +0.42."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return True
    s = str(v).replace(",", "").rstrip("%s ").lstrip("+")
    try:
        float(s)
        return True
    except ValueError:
        return False


def threshold_limits(thresholds, score_column: str) -> list[tuple[str, float, str]]:
    """(label, value, operator) of every active threshold on a score column."""
    if thresholds is None:
        return []
    from vdata.stages.quality import CHECKS

    limits = thresholds.model_dump()
    return [(f"{key}={limits[key]:g}", float(limits[key]), op) for col, key, _, op in CHECKS
            if col == score_column and limits.get(key) is not None]


def answer_position_balance(answer_index: np.ndarray, n_options: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Observed count per answer position and the count expected if the correct option were placed
    uniformly at random among each question's own options."""
    answer_index = answer_index.astype(int)
    k = int(max(answer_index.max() + 1, n_options.max() if n_options is not None and n_options.size else 0))
    observed = np.bincount(answer_index, minlength=k).astype(float)
    if n_options is None:
        expected = np.full(k, answer_index.size / k)
    else:
        n = np.maximum(n_options.astype(int), answer_index + 1)   # a malformed row still counts once
        expected = np.zeros(k)
        for size, count in zip(*np.unique(n, return_counts=True)):
            expected[:size] += count / size
    return observed, expected


def chi_square_p(observed: np.ndarray, expected: np.ndarray) -> float | None:
    """Goodness-of-fit p-value, when SciPy is importable (it is optional for vdata)."""
    try:
        from scipy.stats import chisquare
    except ImportError:
        return None
    used = expected > 0
    if used.sum() < 2:
        return None
    return float(chisquare(observed[used], expected[used] * observed[used].sum() / expected[used].sum()).pvalue)
