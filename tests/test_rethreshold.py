"""`vdata rethreshold` on sample builds: the filter columns of samples/*.parquet re-thresholded from the
build's own settings (manifest.json `config_text`), with --set overriding only what it names.

Builds are written here as a finished build leaves them: canonical-schema Parquet parts under
samples/ (or clips/) and a manifest.json whose config_text is a real build config.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from vdata.cli import main
from vdata.pipelines.rethreshold import SAMPLE_CHECKS, WRITTEN_FILE, rethreshold_dataset
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages import stage_class
from vdata.stages.base import Reject, RunContext

TEACHER = {"backend": "openai", "base_url": "http://127.0.0.1:8000/v1", "model": "smollm2-135m",
           "api_key": "${OPENAI_API_KEY}"}


def config_text(filters: list[dict], sharpness_min: float = 30) -> str:
    """A complete build config: curation, captions, generation, then `filters`."""
    stages = [{"probe": {}}, {"shots": {}}, {"quality": {"thresholds": {"sharpness_min": sharpness_min}}},
              {"frames": {"mode": "uniform", "max_frames": 4}},
              {"caption": {"teacher": "tiny"}},
              {"generate": {"teacher": "tiny", "tasks": ["caption", "open_qa", "mcq", "grounding"]}}, *filters]
    return yaml.safe_dump({"name": "rethreshold-test", "input": [{"path": "videos/"}], "output": {"dir": "out"},
                           "stages": stages, "teachers": {"tiny": TEACHER}}, sort_keys=False)


def write_build(out: Path, level: str, rows: list[dict], text: str) -> Path:
    """Rows in two canonical-schema parts under out/level, and the manifest of the build."""
    schema = R.data_schema({c for r in rows for c in r})
    table = pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows], schema=schema)
    (out / level).mkdir(parents=True)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), out / level / "part-run-00000-a.parquet", compression="zstd")
    pq.write_table(table.slice(half), out / level / "part-run-00001-b.parquet", compression="zstd")
    (out / "rejects").mkdir()
    manifest = {"name": "rethreshold-test", "run_id": "run", "level": level, "config_text": text,
                "rows": table.num_rows, "schema": [f"{f.name}: {f.type}" for f in schema]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


# --- a sample build with chosen scores --------------------------------------------------------------

BUILD_FILTERS = [{"verify_claims": {"tasks": ["caption", "open_qa", "mcq"], "min_supported_ratio": 0.7}},
                 {"blind": {"max_blind_correct": 0.5}},
                 {"timestamps": {}},
                 {"dedup": {"drop_duplicates": False}}]


def sample(sid: str, task: str, *, sharpness=400.0, ratio=None, blind=None, dup=None, clip=True) -> dict:
    row = {R.SAMPLE_ID: sid, R.VIDEO_ID: "v0", R.TASK: task, R.QUESTION: f"question {sid}", R.ANSWER: f"answer {sid}",
           R.V_SUPPORTED_RATIO: ratio, R.V_BLIND_CORRECT: blind, R.V_TIMESTAMPS_VALID: True, R.V_DUPLICATE_OF: dup}
    if clip:
        row.update({R.CLIP_ID: "v0_0000000_0000100", R.START_S: 0.0, R.END_S: 4.0, R.CLIP_DURATION_S: 4.0,
                    R.Q_SHARPNESS: sharpness, R.Q_BRIGHTNESS: 120.0})
    else:   # a video-level sample: no clip, so no quality scores
        row.update({R.CLIP_ID: None, R.START_S: None, R.END_S: None, R.CLIP_DURATION_S: None,
                    R.Q_SHARPNESS: None, R.Q_BRIGHTNESS: None})
    return row


# Every row passes the build's settings: min_supported_ratio 0.7, max_blind_correct 0.5, sharpness_min 30,
# duplicates kept (drop_duplicates: false). Null scores are tasks the filter skipped.
ROWS = [
    sample("cap", "caption", ratio=1.0),
    sample("oqa-edge", "open_qa", ratio=0.7, blind=0.0),          # exactly at the build's minimum
    sample("oqa-soft", "open_qa", ratio=0.8, blind=0.5, sharpness=35.0),
    sample("mcq-a", "mcq", ratio=0.9, blind=0.25),
    sample("mcq-b", "mcq", ratio=1.0, blind=0.25, dup="mcq-a"),
    sample("grd", "grounding"),
    sample("grd-video", "grounding", clip=False),
]


@pytest.fixture
def samples_build(tmp_path, monkeypatch):
    # the build's teacher key is not set on this machine: the thresholds must be read all the same
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return write_build(tmp_path / "build", "samples", ROWS, config_text(BUILD_FILTERS))


def test_fixture_config_is_a_real_build_config(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    text = config_text(BUILD_FILTERS)
    cfg = parse_config(yaml.safe_load(text), text)
    assert [name for name, _ in cfg.stage_specs][-4:] == ["verify_claims", "blind", "timestamps", "dedup"]


def test_no_override_keeps_every_row_the_build_kept(samples_build):
    stored = pq.read_table(samples_build / "samples").column(R.V_SUPPORTED_RATIO).to_pylist()
    # float32 storage puts the 0.7 row just below 0.7: compared naively it would be dropped
    assert min(v for v in stored if v is not None) < 0.7
    result = rethreshold_dataset(str(samples_build), {})
    assert (result.level, result.rows, result.kept, result.dropped) == ("samples", 7, 7, {})
    same = rethreshold_dataset(str(samples_build), {"verify_claims.min_supported_ratio": "0.7"})
    assert (same.kept, same.dropped, same.loosened) == (7, {}, [])
    assert same.changes == [("verify_claims.min_supported_ratio", 0.7, 0.7)]


def test_tightening_drops_by_the_stage_reasons(samples_build):
    out = str(samples_build)
    result = rethreshold_dataset(out, {"min_supported_ratio": "0.85"})
    assert (result.kept, result.dropped) == (5, {"hallucination": 2})
    result = rethreshold_dataset(out, {"blind.max_blind_correct": 0.2})
    assert (result.kept, result.dropped) == (4, {"blind_answerable": 3})
    # a row failing both counts once, under the stage the build ran first (verify_claims)
    result = rethreshold_dataset(out, {"min_supported_ratio": "0.85", "max_blind_correct": "0.2"})
    assert (result.kept, result.dropped) == (3, {"hallucination": 2, "blind_answerable": 2})
    result = rethreshold_dataset(out, {"dedup.drop_duplicates": "true"})
    assert (result.kept, result.dropped) == (6, {"duplicate": 1})
    # sample rows carry their clip's quality scores; the video-level sample has none and passes
    result = rethreshold_dataset(out, {"sharpness_min": "100", "min_supported_ratio": "0.85"})
    assert (result.kept, result.dropped) == (5, {"blurry": 1, "hallucination": 1})


def test_null_scores_pass(samples_build, tmp_path):
    out, strict = str(samples_build), str(tmp_path / "strict")
    result = rethreshold_dataset(out, {"min_supported_ratio": "1", "max_blind_correct": "0"}, write_to=strict)
    assert result.dropped == {"hallucination": 3, "blind_answerable": 1}
    # skipped by blind (caption) or by both filters (grounding)
    assert sorted(pq.read_table(result.written).column(R.SAMPLE_ID).to_pylist()) == ["cap", "grd", "grd-video"]
    result = rethreshold_dataset(out, {"sharpness_min": "1000"}, write_to=strict)
    assert result.dropped == {"blurry": 6}
    assert pq.read_table(result.written).column(R.SAMPLE_ID).to_pylist() == ["grd-video"]   # no clip, no scores


def test_loosening_keeps_the_rows_and_says_so(samples_build):
    out = str(samples_build)
    looser = [("min_supported_ratio", "0.5"), ("min_supported_ratio", None), ("timestamps.drop_invalid", "false")]
    for key, value in looser:
        result = rethreshold_dataset(out, {key: value})
        assert (result.kept, result.dropped) == (7, {})
        assert result.loosened == [result.changes[0][0]]
    assert rethreshold_dataset(out, {"max_blind_correct": "0.4"}).loosened == []


def test_unknown_key_lists_the_keys_of_this_dataset(samples_build):
    with pytest.raises(ConfigError) as e:
        rethreshold_dataset(str(samples_build), {"min_suported_ratio": "0.9"})
    msg = str(e.value)
    assert "'min_suported_ratio'" in msg
    for name in ("verify_claims.min_supported_ratio", "blind.max_blind_correct", "timestamps.drop_invalid",
                 "labels.drop_missing", "dedup.drop_duplicates", "quality.sharpness_min"):
        assert name in msg
    with pytest.raises(ConfigError, match="quality.blind_correct"):
        rethreshold_dataset(str(samples_build), {"quality.blind_correct": "0.9"})


def test_key_of_a_stage_the_build_did_not_run_names_the_stage(samples_build):
    for key, value in [("labels.drop_missing", "true"), ("drop_missing", "true"), ("labels.drop_missing", "false")]:
        with pytest.raises(ConfigError) as e:
            rethreshold_dataset(str(samples_build), {key: value})
        assert R.V_LABEL_CONTAINED in str(e.value) and "labels stage" in str(e.value)


def test_bad_values_are_reported_by_their_key(samples_build):
    with pytest.raises(ConfigError, match=r"verify_claims\.min_supported_ratio.*less than or equal to 1"):
        rethreshold_dataset(str(samples_build), {"min_supported_ratio": "1.5"})
    with pytest.raises(ConfigError, match=r"dedup\.drop_duplicates"):
        rethreshold_dataset(str(samples_build), {"drop_duplicates": "maybe"})


def test_write_to_keeps_the_schema(samples_build, tmp_path):
    source = pq.read_schema(next((samples_build / "samples").glob("*.parquet")))
    result = rethreshold_dataset(str(samples_build), {"min_supported_ratio": "0.85", "max_blind_correct": "0.2"},
                                 write_to=str(tmp_path / "strict"))
    written = pq.read_table(result.written)
    assert result.written == str(tmp_path / "strict" / "samples")
    assert sorted(p.name for p in (tmp_path / "strict" / "samples").iterdir()) == [WRITTEN_FILE]
    assert written.schema.equals(source) and written.schema.equals(R.data_schema(source.names))
    assert sorted(written.column(R.SAMPLE_ID).to_pylist()) == ["cap", "grd", "grd-video"]
    with pytest.raises(ConfigError, match="inside the build's own samples/ folder"):
        rethreshold_dataset(str(samples_build), {}, write_to=str(samples_build / "samples"))


def test_clip_builds_take_quality_keys_only(tmp_path):
    clips = [{k: v for k, v in sample(f"c{i}", "caption", sharpness=s).items()
              if k not in R.SAMPLE_COLUMNS and not k.startswith("v_")} for i, s in enumerate([20.0, 50.0, 400.0])]
    for i, row in enumerate(clips):
        row[R.CLIP_ID] = f"v0_{i:07d}_{i + 1:07d}"
    # the build lowered sharpness_min to 10 (the stage's default is 30): the clip at 20 is kept unless --set says so
    out = write_build(tmp_path / "clips-build", "clips", clips, config_text([], sharpness_min=10))
    result = rethreshold_dataset(str(out), {})
    assert (result.level, result.kept, result.dropped) == ("clips", 3, {})
    result = rethreshold_dataset(str(out), {"quality.sharpness_min": "100"})
    assert (result.kept, result.dropped, result.changes) == (1, {"blurry": 2}, [("quality.sharpness_min", 10, 100)])
    with pytest.raises(ConfigError, match="applies to sample builds") as e:
        rethreshold_dataset(str(out), {"min_supported_ratio": "0.9"})
    allowed = str(e.value).split("allowed")[1]
    assert "quality.sharpness_min" in allowed and "verify_claims" not in allowed


def test_a_folder_without_manifest_is_refused(tmp_path):
    out = write_build(tmp_path / "partial", "samples", ROWS, config_text(BUILD_FILTERS))
    (out / "manifest.json").unlink()
    with pytest.raises(ConfigError, match="no manifest.json"):
        rethreshold_dataset(str(out), {})


# --- the same decisions as the stages -----------------------------------------------------------------

CAPTION = "A red square moves to the right over a white background."
FILTER_CONFIGS = {   # tier-1 checks only (no model, no teacher), so the real stages run here in milliseconds
    "verify_claims": {"tasks": ["caption", "open_qa"], "relevance_min": None, "min_supported_ratio": 0.75},
    "blind": {"prior_model": None, "max_blind_correct": 0.5},
    "timestamps": {"drop_invalid": True},
    "labels": {"drop_missing": True},
    "dedup": {"similarity_max": None, "drop_duplicates": True},
}
SCORE_ONLY = {"verify_claims.min_supported_ratio": None, "blind.max_blind_correct": None,
              "timestamps.drop_invalid": False, "labels.drop_missing": False, "dedup.drop_duplicates": False}


def raw_sample(sid: str, task: str, question: str, answer: str, qtype: str = "description", spans=None) -> dict:
    return {R.SAMPLE_ID: sid, R.VIDEO_ID: "v1", R.CLIP_ID: "v1_0000250_0000500", R.START_S: 10.0, R.END_S: 20.0,
            R.CLIP_DURATION_S: 10.0, R.Q_SHARPNESS: 400.0, R.SOURCE_META: json.dumps({"label": "square"}),
            R.CAPTION: CAPTION, R.TASK: task, R.QUESTION_TYPE: qtype, R.QUESTION: question, R.ANSWER: answer,
            R.ANSWER_SPANS: spans}


RAW = [
    raw_sample("ok", "open_qa", "What happens in the clip?", "A red square moves to the right."),
    raw_sample("colour", "open_qa", "What colour is the shape?", "The shape is blue.", qtype="attribute"),
    raw_sample("leak", "open_qa", "Does the red square that moves go right or left?", "The red square moves right.",
               qtype="direction"),
    raw_sample("late", "grounding", "When does the square appear?", "", spans=[{"start_s": 25.0, "end_s": 30.0}]),
    raw_sample("label", "caption", "Describe the clip.", "Something red moves to the right."),
    raw_sample("again", "open_qa", "What happens in the clip?", "A red square slides to the right."),
    raw_sample("span", "grounding", "When is the square on screen?", "", spans=[{"start_s": 12.0, "end_s": 18.0}]),
]


def run_filters(rows: list[dict], configs: dict[str, dict], work: Path) -> tuple[list[dict], dict[str, str]]:
    """`rows` through the real filter stages in order: (rows kept, sample_id -> reject reason)."""
    reasons = {}
    for name, kwargs in configs.items():
        cls = stage_class(name)
        stage = cls(cls.Config.model_validate(kwargs), RunContext(output_dir=str(work)))
        stage.setup()
        out = stage.process_batch(rows)
        reasons.update({r.row[R.SAMPLE_ID]: r.reason for r in out if isinstance(r, Reject)})
        rows = [r for r in out if not isinstance(r, Reject)]
    return rows, reasons


def test_tightened_build_matches_the_stages_dropping(tmp_path):
    score_only = {name: {**kwargs, **{k.split(".")[1]: v for k, v in SCORE_ONLY.items() if k.startswith(name + ".")}}
                  for name, kwargs in FILTER_CONFIGS.items()}
    scored, none_dropped = run_filters(RAW, score_only, tmp_path / "scoring")
    assert none_dropped == {} and len(scored) == len(RAW)
    kept, reasons = run_filters(RAW, FILTER_CONFIGS, tmp_path / "dropping")
    # each sample filter rejected one row, with the reason rethreshold reports for its check
    # (wellformed is not run here, and no sample states something the evidence contradicts)
    assert sorted(reasons.values()) == sorted(c.reason for c in SAMPLE_CHECKS
                                              if c.stage in FILTER_CONFIGS and c.reason != "contradicted")

    out = write_build(tmp_path / "build", "samples", scored, config_text([{k: v} for k, v in score_only.items()]))
    assert (rethreshold_dataset(str(out), {}).kept, rethreshold_dataset(str(out), {}).dropped) == (len(RAW), {})
    tighten = {name: FILTER_CONFIGS[name.split(".")[0]][name.split(".")[1]] for name in SCORE_ONLY}
    written = tmp_path / "tightened"
    result = rethreshold_dataset(str(out), tighten, write_to=str(written))
    assert result.dropped == {reason: 1 for reason in reasons.values()}
    assert sorted(pq.read_table(result.written).column(R.SAMPLE_ID).to_pylist()) == sorted(r[R.SAMPLE_ID] for r in kept)
    assert sorted(r[R.SAMPLE_ID] for r in kept) == ["ok", "span"]


# --- the command ------------------------------------------------------------------------------------

def test_cli_rethreshold_samples(samples_build, tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["rethreshold", str(samples_build), "--set", "min_supported_ratio=0.85",
                               "--set", "blind.max_blind_correct=0.2", "--write-to", str(tmp_path / "strict")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "kept 3, dropped 4: blind_answerable=2, hallucination=2 (of 7 samples)"
    assert "  verify_claims.min_supported_ratio: 0.7 -> 0.85" in lines
    assert pq.read_table(tmp_path / "strict" / "samples" / WRITTEN_FILE).num_rows == 3

    res = runner.invoke(main, ["rethreshold", str(samples_build), "--set", "min_supported_ratio=none"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("kept 7, dropped 0 (of 7 samples)")
    assert "looser than the build" in res.output

    res = runner.invoke(main, ["rethreshold", str(samples_build), "--set", "min_suported_ratio=0.9"])
    assert res.exit_code == 2
    assert "unknown threshold" in res.output and "verify_claims.min_supported_ratio" in res.output

    res = runner.invoke(main, ["rethreshold", str(samples_build), "--set", "labels.drop_missing=true"])
    assert res.exit_code == 2
    assert "labels stage" in res.output and R.V_LABEL_CONTAINED in res.output


def test_cli_help_says_only_tightening_is_re_evaluated():
    res = CliRunner().invoke(main, ["rethreshold", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "Only tightening can be re-evaluated" in text and "rebuild into the same output folder" in text


def test_write_to_keeps_the_kept_samples_clip_frames(tmp_path):
    """A sample build stores frames once per clip (clips/): the written samples get their clips' frames
    beside them, only the clips of the samples kept."""
    from vdata.exporters.demo_build import write_demo_build
    from vdata.exporters.source import first_per_clip

    out = write_demo_build(str(tmp_path / "demo"))
    part = next(Path(out, "samples").glob("*.parquet"))
    samples = pq.read_table(part)
    # the demo's clips are equally sharp: make the first clip blurry, so a tighter sharpness_min drops it
    first = next(c for c in samples[R.CLIP_ID].to_pylist() if c)
    sharp = [None if c is None else (10.0 if c == first else 400.0) for c in samples[R.CLIP_ID].to_pylist()]
    at = samples.schema.get_field_index(R.Q_SHARPNESS)
    samples = samples.set_column(at, samples.schema.field(at), pa.array(sharp, samples.schema.field(at).type))
    pq.write_table(samples, part)
    result = rethreshold_dataset(out, {"sharpness_min": "100"}, write_to=str(tmp_path / "strict"))
    kept = pq.read_table(result.written)
    assert 0 < result.kept < result.rows and R.FRAMES not in kept.column_names
    clips = pq.read_table(result.written_clips)
    kept_clips = {c for c in kept[R.CLIP_ID].to_pylist() if c}
    assert sorted(clips[R.CLIP_ID].to_pylist()) == sorted(kept_clips)
    assert len(kept_clips) < len({c for c in samples[R.CLIP_ID].to_pylist() if c})   # dropped clips left out
    assert all(f and all(x[R.FRAME_JPEG][:2] == b"\xff\xd8" for x in f) for f in clips[R.FRAMES].to_pylist())
    assert first_per_clip(clips).num_rows == clips.num_rows
