"""The Python API (`import vdata`): cheap to import, the README's example run as written, a pipeline
made from stage objects equal to its YAML twin, and `run_stage` over HF and Ray datasets with rejects."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import vdata
from vdata.schemas import records as R
from vdata.stages.probe import ProbeStage
from vdata.stages.shots import ShotsStage
from vdata.stages.timestamps import TimestampsStage

ROOT = Path(__file__).resolve().parents[1]


def _python_block(markdown: Path, after_heading: str) -> str:
    """The first ```python block after a heading (the text a reader copies)."""
    text = markdown.read_text()
    start = text.index(after_heading)
    m = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert m, f"no python block after {after_heading!r} in {markdown}"
    return m.group(1)


def _samples() -> list[dict]:
    """Grounding samples in a 10-20 s clip: one inside, one running past the clip's end."""
    base = {R.TASK: "grounding", R.START_S: 10.0, R.END_S: 20.0}
    return [{**base, R.SAMPLE_ID: "inside", R.ANSWER_SPANS: [{"start_s": 12.0, "end_s": 15.0}]},
            {**base, R.SAMPLE_ID: "outside", R.ANSWER_SPANS: [{"start_s": 18.0, "end_s": 25.0}]}]


def test_import_is_cheap_and_names_resolve_lazily():
    code = ("import sys, vdata; heavy = [m for m in ('ray', 'pyarrow', 'datasets', 'pydantic') if m in sys.modules];"
            "print(heavy); vdata.Pipeline; print('pyarrow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    first, second = out.stdout.split("\n")[:2]
    assert first == "[]"            # nothing heavy on `import vdata`
    assert second == "True"         # ... and the API is really there once asked for
    assert {"load_config", "build", "plan", "Pipeline", "run_stage"} <= set(dir(vdata)) & set(vdata.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vdata.nope


def test_readme_python_example_runs(tmp_path, monkeypatch):
    code = _python_block(ROOT / "README.md", "## Python API")
    monkeypatch.chdir(tmp_path)
    scope: dict = {"__name__": "readme_example"}
    exec(compile(code, "README.md#python-api", "exec"), scope)
    result, kept, rejects = scope["result"], scope["kept"], scope["rejects"]
    # three 2 s shots (cuts at 2 s and 4 s), the broken file rejected by probe with its reason
    assert result.rows == 3
    assert sum(result.rejects_by_reason.values()) == 1 and all(k.startswith("probe:") for k in result.rejects_by_reason)
    starts = sorted(round(s, 1) for s in kept[R.START_S])
    assert starts == [0.0, 2.0, 4.0]
    assert len(rejects) == 0 and len(kept) == 3
    for row in kept:
        times = [f[R.FRAME_TIMESTAMP_S] for f in row[R.FRAMES]]
        assert len(times) == 4 and all(row[R.START_S] <= t <= row[R.END_S] for t in times)
        assert all(f[R.FRAME_JPEG][:2] == b"\xff\xd8" for f in row[R.FRAMES])    # JPEG bytes
    assert [s.name for s in scope["same"].stages] == ["probe", "shots"]


def test_adding_a_stage_doc_example_runs():
    exec(compile(_python_block(ROOT / "docs" / "adding_a_stage.md", "After this line the stage works"),
                 "docs/adding_a_stage.md", "exec"), {})


def test_pipeline_from_objects_equals_its_yaml_twin(tmp_path):
    pipe = vdata.Pipeline([ProbeStage(min_frames=3), {"shots": {"min_len_s": 1.5}}], input=["videos", {"glob": "x/*.mp4"}],
                          output_dir=str(tmp_path / "out"), name="twin")
    path = tmp_path / "twin.yaml"
    path.write_text(yaml.safe_dump(pipe.to_dict()))
    from_yaml = vdata.load_config(path)
    assert from_yaml.config_hash() == pipe.config().config_hash()
    assert [(n, c.model_dump()) for n, c in from_yaml.stage_specs] == [(n, c.model_dump()) for n, c in pipe.config().stage_specs]
    assert pipe.config().stage_specs[0][1].min_frames == 3
    assert [s.name for s in vdata.plan(path).stages] == ["probe", "shots"]
    # a changed setting is a different config
    other = vdata.Pipeline([ProbeStage(min_frames=4), ShotsStage(min_len_s=1.5)], input=["videos", {"glob": "x/*.mp4"}],
                           output_dir=str(tmp_path / "out"), name="twin")
    assert other.config().config_hash() != pipe.config().config_hash()


def test_pipeline_and_stage_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="min_len_s"):
        ShotsStage(min_len_s=-1)
    with pytest.raises(vdata.ConfigError, match=r"stages\[1\]: unknown stage 'nope'"):
        vdata.Pipeline([ProbeStage(), {"nope": {}}], input="v", output_dir=str(tmp_path)).config()

    class MyStage(TimestampsStage):
        name = "timestamps"

    with pytest.raises(vdata.ConfigError, match=r"stages\[0\]: MyStage is not a registered stage"):
        vdata.Pipeline([MyStage()], input="v", output_dir=str(tmp_path)).config()
    with pytest.raises(TypeError, match="ray.data.Dataset or a datasets.Dataset"):
        vdata.run_stage(TimestampsStage(), _samples())


def test_run_stage_on_hf_dataset_keeps_user_columns_and_reports_rejects():
    import datasets

    rows = [dict(r, my_note=f"note-{i}") for i, r in enumerate(_samples())]
    kept, rejects = vdata.run_stage(TimestampsStage(), datasets.Dataset.from_list(rows))
    assert isinstance(kept, datasets.Dataset) and isinstance(rejects, datasets.Dataset)
    assert kept[R.SAMPLE_ID] == ["inside"] and kept[R.V_TIMESTAMPS_VALID] == [True]
    assert kept["my_note"] == ["note-0"]                                  # not a vdata column: carried through
    assert not set(R.INTERNAL_COLUMNS) & set(kept.column_names)
    assert rejects["reason"] == ["bad_timestamps"] and rejects[R.SAMPLE_ID] == ["outside"]
    assert rejects[R.TASK] == ["grounding"]                               # the dropped sample's task
    assert (rejects[R.START_S], rejects[R.END_S]) == ([10.0], [20.0])     # ... and where it lies in the video
    assert "25" in rejects["message"][0] and rejects["stage"] == ["timestamps"]   # the numbers are in the message
    # score only: nothing dropped, the column written
    kept, rejects = vdata.run_stage(TimestampsStage(drop_invalid=False), datasets.Dataset.from_list(rows))
    assert len(rejects) == 0 and kept[R.V_TIMESTAMPS_VALID] == [True, False]
    with pytest.raises(ValueError, match=r"reads columns \['sample_id'\]"):
        vdata.run_stage(TimestampsStage(), datasets.Dataset.from_list([{k: v for k, v in rows[0].items()
                                                                       if k != R.SAMPLE_ID}]))


def test_run_stage_on_ray_dataset(ray_local):
    import ray.data

    kept, rejects = vdata.run_stage(TimestampsStage(), ray.data.from_items(_samples() * 3))
    assert isinstance(kept, ray.data.Dataset) and isinstance(rejects, ray.data.Dataset)
    kept_rows, reject_rows = kept.take_all(), rejects.take_all()
    assert sorted(r[R.SAMPLE_ID] for r in kept_rows) == ["inside"] * 3
    assert all(r[R.V_TIMESTAMPS_VALID] for r in kept_rows)
    assert [r["reason"] for r in reject_rows] == ["bad_timestamps"] * 3
