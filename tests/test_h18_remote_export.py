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
