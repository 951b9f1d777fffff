"""Names in the other Unicode normal form: macOS (and zips made there) stores "Café" decomposed (NFD), while a
manifest typed or generated elsewhere, and the video beside a sidecar, say it composed (NFC). The two strings
differ and look the same in every message (outside checks h20, h21)."""
from __future__ import annotations

import shutil
import unicodedata

import datasets

import vdata
from vdata.pipelines.ingest import as_stored
from vdata.schemas import records as R
from vdata.schemas.config import parse_config
from vdata.stages.annotations import AnnotationsStage
from vdata.stages.probe import ProbeStage

NFC = unicodedata.normalize("NFC", "Café résumé")
NFD = unicodedata.normalize("NFD", "Café résumé")


def test_a_sidecar_named_in_nfd_beside_a_video_named_in_nfc_is_read(tmp_path, cut_video):
    assert NFC != NFD
    video = tmp_path / f"{NFC}.mp4"
    shutil.copy(cut_video[0], video)
    (tmp_path / f"{NFD}.en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nnfd sidecar\n")
    (tmp_path / f"{NFD}.chapters.txt").write_text("0:00 Start\n0:05 Middle\n")
    ds = datasets.Dataset.from_list([{R.SOURCE_URI: str(video), R.PATH: str(video), R.SOURCE_META: "{}"}])
    for stage in (ProbeStage(), AnnotationsStage(embedded=False)):
        ds, rejects = vdata.run_stage(stage, ds)
        assert len(rejects) == 0, rejects.to_list()
    ann = ds[0][R.ANNOTATIONS]
    assert [c["text"] for c in ann["subtitles"]] == ["nfd sidecar"]
    assert [c["title"] for c in ann["chapters"]] == ["Start", "Middle"]


def test_a_manifest_naming_in_nfc_a_file_stored_in_nfd_finds_it(tmp_path, cut_video):
    stored = tmp_path / f"{NFD}.mp4"
    shutil.copy(cut_video[0], stored)
    assert as_stored(str(tmp_path / f"{NFC}.mp4")) == str(stored)
    assert as_stored(str(tmp_path / "absent.mp4")) == str(tmp_path / "absent.mp4")
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"path\n{NFC}.mp4\n", encoding="utf-8")
    from vdata.pipelines.runner import preflight

    plan = preflight(parse_config({"input": [{"manifest": str(manifest)}], "output": {"dir": str(tmp_path / "out")},
                                   "stages": [{"probe": {}}]}))
    assert plan is not None   # "none of the 1 files list.csv lists is there" before
