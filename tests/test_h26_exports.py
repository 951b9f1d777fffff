"""h26 F11: a re-export into the same LLaMA-Factory folder under another `--name` removes the old files
(the stale-file sweep) and must drop their `dataset_info.json` entries too; the entries the user or another
tool registered there stay. Same for the preference (`sharegpt_preference`) export."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vdata.exporters import export
from vdata.exporters.demo_build import write_demo_build
from vdata.schemas import records as R


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> str:
    """The demo build, its open_qa samples given a preference pair (chosen / rejected)."""
    out = write_demo_build(str(tmp_path_factory.mktemp("build")))
    part = next(Path(out, "samples").glob("*.parquet"))
    table = pq.read_table(part)
    tasks = table[R.TASK].to_pylist()
    for col, text in ((R.CHOSEN, "a good answer"), (R.REJECTED, "a bad answer")):
        values = [text if t == "open_qa" else None for t in tasks]
        if col in table.column_names:
            table = table.drop_columns([col])
        table = table.append_column(R.data_schema([col]).field(col), pa.array(values, R.data_schema([col]).field(col).type))
    pq.write_table(table, part)
    return out


def _info(dest: str) -> dict:
    with open(os.path.join(dest, "dataset_info.json")) as f:
        return json.load(f)


def _register_foreign(dest: str) -> None:
    info = _info(dest)
    info["someone_else"] = {"file_name": "theirs.json", "formatting": "sharegpt"}   # the user's own dataset
    with open(os.path.join(dest, "dataset_info.json"), "w") as f:
        json.dump(info, f)


@pytest.mark.parametrize("fmt", ["sharegpt", "sharegpt_preference"])
def test_a_re_export_under_another_name_drops_the_entries_of_the_files_it_removed(build_dir, tmp_path, fmt):
    dest = str(tmp_path / "lf")
    first = export(build_dir, dest, fmt, media="none", name="foo")
    foo = {k for k in _info(dest)}
    assert foo and all(k.startswith("foo_") for k in foo)
    _register_foreign(dest)
    second = export(build_dir, dest, fmt, media="none", name="bar")
    assert any("were removed" in n for n in second.notes)
    info = _info(dest)
    assert set(info) == {"someone_else"} | {k.replace("foo_", "bar_", 1) for k in foo}
    # every vdata entry names a file that is there; the foreign one is kept as it was
    assert all(os.path.isfile(os.path.join(dest, e["file_name"])) for k, e in info.items() if k != "someone_else")
    assert info["someone_else"] == {"file_name": "theirs.json", "formatting": "sharegpt"}
    assert not any(os.path.exists(os.path.join(dest, f)) for f in first.files if f.startswith("foo_"))
