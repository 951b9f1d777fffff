"""h18 F13: an export to object storage (moto's S3 server on loopback) wrote a LLaVA data_path YAML whose
`json_path`s, and notes whose paths, named the local staging folder deleted after the upload."""
from __future__ import annotations

import pytest
import yaml

from test_object_storage import SECRET, s3  # noqa: F401  (the moto server)
from vdata.exporters.demo_build import write_demo_build


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory) -> str:
    media = tmp_path_factory.getbasetemp() / "vdata_demo_media"   # shared with test_hub / test_exporters
    media.mkdir(exist_ok=True)
    return write_demo_build(str(tmp_path_factory.mktemp("h18s3build")), media_dir=str(media))


# --- F13: an export to object storage names its URL, never the deleted staging folder ------------------

def test_llava_and_sharegpt_exports_to_a_bucket_name_the_bucket(demo_build, s3):
    from vdata.exporters import export
    from vdata.media import storage as S

    endpoint, fs = s3
    fs.mkdir("h18-exports")
    S.configure({"s3": {"endpoint_url": endpoint, "key": "testing-key", "secret": SECRET}})
    try:
        res = export(demo_build, "s3://h18-exports/llava", "llava")
        ymls = [f for f in fs.find("h18-exports/llava") if f.endswith(".yaml")]
        assert len(ymls) == 1
        with fs.open(ymls[0], "r") as f:
            data = yaml.safe_load(f)
        paths = [d["json_path"] for d in data["datasets"]]
        assert paths and all(p.startswith("s3://h18-exports/llava/") for p in paths), paths
        assert all(fs.isfile(p) for p in paths)
        notes = "\n".join(res.notes)
        assert "vdata-export-" not in notes and "--data_path s3://h18-exports/llava/" in notes
        sg = export(demo_build, "s3://h18-exports/sg", "sharegpt")
        assert "vdata-export-" not in "\n".join(sg.notes) and "--dataset_dir s3://h18-exports/sg" in "\n".join(sg.notes)
    finally:
        S.configure(None)


def test_every_export_to_a_bucket_names_no_staging_folder_in_any_file(demo_build, s3):
    """h26 F3: lmms-eval's task YAMLs gave `data_files` in the deleted staging folder (vdata-export-…), and
    ms-swift's JSONL gave absolute video paths there; every text file now names the bucket instead."""
    from vdata.exporters import export
    from vdata.media import storage as S

    endpoint, fs = s3
    fs.mkdir("h26-exports")
    S.configure({"s3": {"endpoint_url": endpoint, "key": "testing-key", "secret": SECRET}})
    try:
        for fmt in ("lmms-eval", "swift"):
            res = export(demo_build, f"s3://h26-exports/{fmt}", fmt)
            texts = [f for f in fs.find(f"h26-exports/{fmt}") if f.endswith((".yaml", ".jsonl", ".json"))]
            assert texts, fmt
            for f in texts:
                with fs.open(f, "r") as fh:
                    assert "vdata-export-" not in fh.read(), f
            assert any("a downloaded copy" in n for n in res.notes), res.notes
        yml = next(f for f in fs.find("h26-exports/lmms-eval") if f.endswith("_mcq.yaml"))
        with fs.open(yml, "r") as fh:   # (lmms-eval's `!function` tags: read the one line)
            data_file = next(line.split(":", 1)[1].strip().strip("'\"") for line in fh if line.strip().startswith("test:"))
        assert data_file.startswith("s3://h26-exports/lmms-eval/data/") and fs.isfile(data_file)
    finally:
        S.configure(None)
