"""Vision-text embeddings on real media: the tiny random CLIP, clip_embed (aesthetic + caption scores with
thresholds), semdedup (clips and whole videos, the same file at two paths), the actor pool in a build,
and re-thresholding the stored scores.

Videos are rendered with ffmpeg, clips come from PySceneDetect (shots), frames from the frames stage.
The CLIP is random (built offline, seeded): its scores are deterministic and say nothing about the
content, so the thresholds here are taken from the scores themselves and the assertions are about which
rows a rule keeps, drops, and why.
"""
from __future__ import annotations

import json
import shutil

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

import vdata
from vdata.media.ffmpeg import run_ffmpeg
from vdata.media.images import decode_jpeg
from vdata.media.synth import CUT_SOURCES, Segment, render_segments
from vdata.pipelines.rethreshold import rethreshold_dataset
from vdata.schemas import records as R
from vdata.stages.clip_embed import ClipEmbedStage
from vdata.stages.frames import FramesStage
from vdata.stages.probe import ProbeStage
from vdata.stages.semdedup import EmbeddingIndex, SemDedupStage
from vdata.stages.shots import ShotsStage
from vdata.teachers.tiny_clip import HEAD_FILE, WATERMARK_HEAD_FILE, build_tiny_clip
from vdata.teachers.vision_text import AestheticHead, VisionTextModel, similarity

CAPTION = "a red car drives down a street at night"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two videos with hard cuts, the first one again at a second path, and the first one re-encoded."""
    folder = tmp_path_factory.mktemp("embed-videos")
    render_segments(str(folder / "cuts.mp4"), [Segment(s, 2.0) for s in CUT_SOURCES[:4]], size=(320, 180))
    render_segments(str(folder / "other.mp4"), [Segment(s, 2.0) for s in CUT_SOURCES[4:]], size=(320, 180))
    shutil.copy(folder / "cuts.mp4", folder / "copy_of_cuts.mp4")
    # a near duplicate: other bytes (so ingest's content hash does not catch it), the same pictures
    run_ffmpeg(["-i", str(folder / "cuts.mp4"), "-vf", "scale=256:144", "-c:v", "libx264", "-crf", "35",
                str(folder / "cuts_reencoded.mp4")])
    return folder


@pytest.fixture(scope="module")
def clips(videos):
    """probe → shots → frames over the three files, in process (no Ray)."""
    paths = [str(videos / n) for n in ("cuts.mp4", "copy_of_cuts.mp4", "other.mp4")]
    ds = datasets.Dataset.from_list([{R.SOURCE_URI: p, R.PATH: p} for p in paths])
    for stage in (ProbeStage(), ShotsStage(min_len_s=1.0), FramesStage(mode="uniform", num_frames=4)):
        ds, rejects = vdata.run_stage(stage, ds)
        assert len(rejects) == 0, rejects["message"]
    assert len(ds) == 10    # 4 + 4 + 2 shots
    return ds


def _frames(clips, n=6):
    return [decode_jpeg(f[R.FRAME_JPEG]) for row in clips.select(range(3)) for f in row[R.FRAMES]][:n]


def test_tiny_clip_scores_are_deterministic(tiny_clip, clips, tmp_path):
    again = build_tiny_clip(tmp_path / "second")                    # a second build, a second load
    first, second = VisionTextModel(str(tiny_clip)), VisionTextModel(str(again))
    images = _frames(clips)
    a, b = first.embed_images(images), second.embed_images(images)
    assert a.shape == (6, first.dim) and np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # batching changes the arithmetic order only
    assert np.allclose(first.embed_images(images, batch_size=2), a, atol=1e-5)
    texts = [CAPTION, "colour bars and a test pattern"]
    t1, t2 = first.embed_texts(texts), second.embed_texts(texts)
    assert np.array_equal(t1, t2) and not np.allclose(t1[0], t1[1])
    assert np.array_equal(similarity(a, t1), similarity(b, t2))
    head = AestheticHead.load(str(tiny_clip / HEAD_FILE))
    assert head.input_dim == first.dim and np.array_equal(head.score(a), head.score(b))


def test_siglip_family_scores_through_the_stage(clips, tmp_path):
    path = build_tiny_clip(tmp_path / "tiny-siglip", "siglip")
    model = VisionTextModel(str(path))
    assert type(model.model).__name__ == "SiglipModel" and model.text_padding == "max_length"
    images = _frames(clips, 3)
    assert np.array_equal(model.embed_images(images), VisionTextModel(str(path)).embed_images(images))
    captioned = clips.select(range(3)).add_column(R.CAPTION, [CAPTION, "", "colour bars"])
    kept, rejects = vdata.run_stage(ClipEmbedStage(model=str(path), aesthetic_head=str(path / HEAD_FILE)), captioned)
    assert len(kept) == 3 and len(rejects) == 0 and kept[R.Q_TEXT_SIMILARITY][1] is None
    assert all(len(e) == model.dim for e in kept[R.CLIP_EMBEDDING]) and None not in kept[R.Q_AESTHETIC]


def test_cli_builds_tiny_clip_once(tiny_clip):
    from click.testing import CliRunner

    from vdata.cli import main

    stamp = (tiny_clip / ".vdata-tiny").stat().st_mtime_ns
    result = CliRunner().invoke(main, ["models", "tiny-clip", str(tiny_clip)])
    assert result.exit_code == 0 and result.output.strip() == str(tiny_clip)
    assert (tiny_clip / ".vdata-tiny").stat().st_mtime_ns == stamp      # reused, not rebuilt


def test_model_errors_name_the_model(tmp_path, tiny_clip, monkeypatch):
    from vdata.teachers.vision_text import VisionTextModelError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(VisionTextModelError, match="no-such-org/no-such-clip"):
        VisionTextModel("no-such-org/no-such-clip")   # HF_HUB_OFFLINE: the local cache only
    bad = tmp_path / "wide.safetensors"
    from vdata.teachers.tiny_clip import write_tiny_aesthetic_head

    write_tiny_aesthetic_head(bad, dim=7)
    with pytest.raises(ValueError, match="7-d"):
        ClipEmbedStage(model=str(tiny_clip), aesthetic_head=str(bad)).setup()


def _embed(clips, tiny_clip, **settings):
    stage = ClipEmbedStage(model=str(tiny_clip), aesthetic_head=str(tiny_clip / HEAD_FILE), **settings)
    return vdata.run_stage(stage, clips)


def test_clip_embed_scores_and_thresholds(clips, tiny_clip):
    captioned = clips.add_column(R.CAPTION, [CAPTION] * 9 + [None])
    scored, rejects = _embed(captioned, tiny_clip, drop_below=False)
    assert len(scored) == 10 and len(rejects) == 0
    emb = np.asarray(scored[R.CLIP_EMBEDDING], np.float32)
    assert emb.shape == (10, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert set(scored[R.CLIP_EMBED_MODEL]) == {str(tiny_clip)}
    aesthetic = np.asarray(scored[R.Q_AESTHETIC], np.float32)
    assert np.isfinite(aesthetic).all() and len(set(aesthetic.round(6).tolist())) > 2
    sims = scored[R.Q_TEXT_SIMILARITY]
    assert sims[-1] is None and all(s is not None and -1 <= s <= 1 for s in sims[:-1])
    # the same file at two paths: the same embedding and scores, clip by clip
    by_source = {}
    for row in scored:
        by_source.setdefault(row[R.SOURCE_URI].rsplit("/", 1)[-1], []).append(row)
    for a, b in zip(by_source["cuts.mp4"], by_source["copy_of_cuts.mp4"]):
        assert a[R.CLIP_EMBEDDING] == b[R.CLIP_EMBEDDING] and a[R.Q_AESTHETIC] == b[R.Q_AESTHETIC]

    # thresholds from the scores themselves: every row below the limit goes, with its reason and numbers
    a_min = float(np.median(aesthetic))
    kept, rejects = _embed(captioned, tiny_clip, aesthetic_min=a_min)
    assert len(kept) == int((aesthetic >= a_min).sum()) and len(rejects) == 10 - len(kept) > 0
    assert set(rejects["reason"]) == {"low_aesthetic"} and all(f"aesthetic_min {a_min}" in m for m in rejects["message"])
    s_min = float(np.median([s for s in sims if s is not None]))
    kept, rejects = _embed(captioned, tiny_clip, text_similarity_min=s_min)
    expected_kept = sum(1 for s in sims if s is None or s >= s_min)
    assert len(kept) == expected_kept and set(rejects["reason"]) == {"caption_mismatch"}
    assert None in kept[R.Q_TEXT_SIMILARITY]    # no caption: nothing to disagree with, kept
    assert all(json.loads(d)["q_text_similarity"] < s_min for d in rejects["detail"])


def test_clip_without_frames_is_a_reject(clips, tiny_clip):
    rows = clips.select(range(2)).to_list()
    rows[1][R.FRAMES] = []
    kept, rejects = _embed(datasets.Dataset.from_list(rows), tiny_clip)
    assert len(kept) == 1 and rejects["reason"] == ["no_frames"]


@pytest.fixture(scope="module")
def embedded(clips, tiny_clip):
    return _embed(clips, tiny_clip)[0]


def test_semdedup_clips_and_videos_at_two_paths(embedded):
    # the random model maps unrelated frames close together (cosine up to ~0.99), so only identical
    # content is tested as a duplicate here; a real CLIP separates content at a much lower limit
    kept, rejects = vdata.run_stage(SemDedupStage(level="clip", similarity_min=0.999), embedded)
    assert sorted(kept[R.SOURCE_URI]) == sorted(s for s in embedded[R.SOURCE_URI] if "copy_of" not in s)
    assert len(rejects) == 4 and set(rejects["reason"]) == {"duplicate"}
    for clip_id, msg, detail in zip(rejects[R.CLIP_ID], rejects["message"], rejects["detail"]):
        d = json.loads(detail)
        assert d["duplicate_of"] == clip_id and d["kept_source_uri"].endswith("/cuts.mp4")   # content-derived ids
        assert "copy_of_cuts.mp4" not in msg.split(" from ")[1] and d["similarity"] >= 0.999
    assert kept[R.SEMANTIC_DUPLICATE_OF] == [None] * 6

    kept, rejects = vdata.run_stage(SemDedupStage(level="video", similarity_min=0.999), embedded)
    assert all("copy_of" not in s for s in kept[R.SOURCE_URI]) and len(kept) == 6
    assert len(rejects) == 4 and all(m.startswith("video ") and "copy_of_cuts.mp4 is a semantic duplicate of video"
                                     in m for m in rejects["message"])
    # score only: every row kept, the duplicate named, the nearest-kept cosine stored for rethreshold
    kept, rejects = vdata.run_stage(SemDedupStage(level="video", similarity_min=0.999, drop_duplicates=False), embedded)
    assert len(kept) == 10 and len(rejects) == 0
    named = [(s, d) for s, d in zip(kept[R.SOURCE_URI], kept[R.SEMANTIC_DUPLICATE_OF]) if d]
    assert len(named) == 4 and all(s.endswith("copy_of_cuts.mp4") and d.endswith("/cuts.mp4") for s, d in named)
    assert sum(s is None for s in kept[R.Q_SEMANTIC_SIMILARITY]) == 4   # the first video: nothing before it


def test_embedding_index_is_atomic_and_retry_safe():
    index = EmbeddingIndex(similarity_min=0.9)
    e1, e2 = np.eye(3, dtype=np.float32)[0], np.eye(3, dtype=np.float32)[1]
    near = np.array([0.99, 0.1, 0], np.float32) / np.linalg.norm([0.99, 0.1, 0])
    first = index.check_and_add([("a", "A", "s1", e1), ("b", "B", "s1", e2), ("c", "C", "s2", near)])
    assert [v[0] for v in first] == [None, None, "A"] and index.size() == 2
    assert index.check_and_add([("c", "C", "s2", near), ("a", "A", "s1", e1)]) == [first[2], first[0]]


def test_build_runs_an_actor_pool_and_rethresholds(videos, tiny_clip, tmp_path, ray_local):
    # a build's ingest already drops the byte-identical copy (duplicate_video); the re-encoded one is semdedup's
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("cuts.mp4", "cuts_reencoded.mp4", "other.mp4"):
        shutil.copy(videos / name, inputs / name)
    out = tmp_path / "out"
    stages = [ProbeStage(), ShotsStage(min_len_s=1.0), FramesStage(mode="uniform", num_frames=4),
              ClipEmbedStage(model=str(tiny_clip), aesthetic_head=str(tiny_clip / HEAD_FILE), drop_below=False,
                             watermark_head=str(tiny_clip / WATERMARK_HEAD_FILE),
                             resources={"concurrency": 2, "batch_size": 3, "num_cpus": 0.5}),
              SemDedupStage(level="video", similarity_min=0.999)]
    pipe = vdata.Pipeline(stages, input=str(inputs), output_dir=str(out), name="embed-test")
    assert "actor" in pipe.plan_text()
    result = pipe.build(progress=False)
    assert result.rows == 6 and result.rejects_by_reason == {"semdedup:duplicate": 4}
    rejects = pq.read_table(out / "rejects").to_pylist()
    # which of the two arrives first is up to Ray; the other is the duplicate, named by its source
    dup_sources = {r[R.SOURCE_URI].rsplit("/", 1)[-1] for r in rejects}
    assert dup_sources in ({"cuts_reencoded.mp4"}, {"cuts.mp4"})
    assert all(json.loads(r["detail"])["similarity"] >= 0.999 for r in rejects)
    table = pq.read_table(out / "clips")
    for column in (R.CLIP_EMBEDDING, R.Q_AESTHETIC, R.Q_WATERMARK, R.Q_SEMANTIC_SIMILARITY, R.SEMANTIC_DUPLICATE_OF):
        assert column in table.column_names
    # watermark: scored only (drop_below false), re-thresholded from the stored probabilities
    marks = sorted(table[R.Q_WATERMARK].to_pylist())
    assert all(0.0 <= m <= 1.0 for m in marks) and len(set(marks)) > 1
    redo = rethreshold_dataset(str(out), {"watermark_max": str(marks[2])})
    assert redo.dropped == {"watermark": sum(m > marks[2] for m in marks)} and redo.kept == 6 - redo.dropped["watermark"]
    assert redo.changes == [("clip_embed.watermark_max", None, marks[2])]
    aesthetic = sorted(table[R.Q_AESTHETIC].to_pylist())
    limit = aesthetic[3]
    redo = rethreshold_dataset(str(out), {"aesthetic_min": str(limit)})
    assert redo.kept == 3 and redo.dropped == {"low_aesthetic": 3}
    assert redo.changes == [("clip_embed.aesthetic_min", None, limit)]
    # the video kept second carries its cosine to the first: a limit below it drops that video now
    later = sum(s is not None for s in table[R.Q_SEMANTIC_SIMILARITY].to_pylist())
    assert later in (2, 4)
    assert rethreshold_dataset(str(out), {"semdedup.similarity_min": "-0.99"}).dropped == {"duplicate": later}


# --- watermark: burned-in marks on real media ------------------------------------------------------

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
# a stock-footage style mark: semi-transparent text across the middle and a logo box in a corner
WATERMARK = (f"drawtext=fontfile={FONT}:text='PREVIEW':fontsize=48:fontcolor=white@0.7:x=(w-tw)/2:y=(h-th)/2,"
             "drawbox=x=iw-70:y=ih-40:w=60:h=30:color=white@0.6:t=fill")


@pytest.fixture(scope="module")
def watermark_clips(tmp_path_factory):
    """The same two shots twice: clean, and with the mark burned in by ffmpeg; probe → shots → frames."""
    folder = tmp_path_factory.mktemp("watermark-videos")
    shots = CUT_SOURCES[:2]
    render_segments(str(folder / "clean.mp4"), [Segment(s, 2.0) for s in shots], size=(320, 180))
    render_segments(str(folder / "marked.mp4"), [Segment(s, 2.0, filters=WATERMARK) for s in shots], size=(320, 180))
    paths = [str(folder / n) for n in ("clean.mp4", "marked.mp4")]
    ds = datasets.Dataset.from_list([{R.SOURCE_URI: p, R.PATH: p} for p in paths])
    for stage in (ProbeStage(), ShotsStage(min_len_s=1.0), FramesStage(mode="uniform", num_frames=4)):
        ds, rejects = vdata.run_stage(stage, ds)
        assert len(rejects) == 0, rejects["message"]
    assert len(ds) == 4
    return ds


def test_watermark_scores_thresholds_and_messages(watermark_clips, tiny_clip):
    rows = watermark_clips.to_list()
    clean = [r for r in rows if r[R.SOURCE_URI].endswith("clean.mp4")]
    marked = [r for r in rows if r[R.SOURCE_URI].endswith("marked.mp4")]
    # the mark is really in the pixels: the marked frame's centre is brighter than the clean one's
    for a, b in zip(sorted(clean, key=lambda r: r[R.START_S]), sorted(marked, key=lambda r: r[R.START_S])):
        ca, cb = (decode_jpeg(r[R.FRAMES][1][R.FRAME_JPEG]).astype(np.float32) for r in (a, b))
        assert np.abs(ca - cb).mean() > 2.0
    head = str(tiny_clip / WATERMARK_HEAD_FILE)
    scored, none = _embed(watermark_clips, tiny_clip, watermark_head=head)
    assert len(none) == 0
    marks = np.asarray(scored[R.Q_WATERMARK], np.float64)
    assert ((marks >= 0) & (marks <= 1)).all() and len(set(marks.round(6).tolist())) == 4
    # per clip: the mean over its frames of the head's sigmoid on each frame's embedding
    from vdata.teachers.vision_text import WatermarkHead

    model = VisionTextModel(str(tiny_clip))
    probe = WatermarkHead.load(head)
    for row, mark in zip(scored, marks):
        frames = [decode_jpeg(f[R.FRAME_JPEG]) for f in row[R.FRAMES]]
        assert abs(probe.probability(model.embed_images(frames)).mean() - mark) < 1e-4
    # a threshold between the scores drops the clips above it, with the reason and the numbers
    limit = float(np.median(marks))
    kept, rejects = _embed(watermark_clips, tiny_clip, watermark_head=head, watermark_max=limit)
    assert len(kept) == int((marks <= limit).sum()) and len(rejects) == 4 - len(kept) > 0
    assert set(rejects["reason"]) == {"watermark"} and all(f"watermark_max {limit}" in m for m in rejects["message"])
    assert all(json.loads(d)["q_watermark"] > limit for d in rejects["detail"])
    # without a head: no score, nothing dropped, whatever the threshold
    plain, none = _embed(watermark_clips, tiny_clip, watermark_max=0.0)
    assert len(none) == 0 and set(plain[R.Q_WATERMARK]) == {None}


def test_watermark_head_width_is_checked_against_the_model(tmp_path, tiny_clip):
    from vdata.teachers.tiny_clip import write_tiny_watermark_head

    bad = write_tiny_watermark_head(tmp_path / "wm.safetensors", dim=7)
    with pytest.raises(ValueError, match=r"stages\.clip_embed\.watermark_head: .*7-d"):
        ClipEmbedStage(model=str(tiny_clip), watermark_head=str(bad)).setup()


def test_a_stage_that_cannot_load_its_head_stops_the_build_with_one_line(tmp_path, tiny_clip, videos, in_process):
    """A head of the wrong width is found only when the model loads (setup): the build stops naming the stage,
    as a config error, instead of a traceback from inside the executor (outside check h13 F2)."""
    import yaml

    from vdata.pipelines.runner import build
    from vdata.schemas.config import ConfigError, load_config
    from vdata.teachers.tiny_clip import write_tiny_watermark_head

    bad = write_tiny_watermark_head(tmp_path / "wm.safetensors", dim=7)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "name": "bad-head", "input": [{"path": str(videos / "other.mp4")}], "output": {"dir": str(tmp_path / "out")},
        "stages": [{"probe": {}}, {"shots": {"min_len_s": 1.0}}, {"frames": {"mode": "uniform", "num_frames": 2}},
                   {"clip_embed": {"model": str(tiny_clip), "watermark_head": str(bad)}}]}))
    with pytest.raises(ConfigError) as e:
        build(load_config(config), progress=False)
    assert str(e.value).startswith("stages[3].clip_embed could not start: ValueError: "), e.value
    assert "7-d" in str(e.value) and "Traceback" not in str(e.value)


def test_semdedup_of_a_resumed_build_knows_the_videos_kept_before(tmp_path, tiny_clip, videos, in_process, capfd):
    """A copy added after a build was kept beside its original: the index started empty (outside check h13 F5).
    It is now seeded with the clips already in the output folder."""
    import yaml

    from vdata.pipelines.runner import build
    from vdata.schemas.config import load_config

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(videos / "cuts.mp4", inputs / "cuts.mp4")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "name": "semdedup-resume", "input": [{"path": str(inputs)}], "output": {"dir": str(tmp_path / "out")},
        "stages": [{"probe": {}}, {"shots": {"min_len_s": 1.0}}, {"frames": {"mode": "uniform", "num_frames": 2}},
                   {"clip_embed": {"model": str(tiny_clip)}}, {"semdedup": {"level": "video", "similarity_min": 0.999}}]}))
    capfd.readouterr()
    first = build(load_config(config), progress=False)
    assert first.rows == 4 and first.rejects == 0
    # an in-process build shows no model's loading bar unless verbose (outside check h12 F11)
    assert "Loading weights" not in capfd.readouterr().err
    # the same pictures in other bytes (ingest's content hash does not catch it): a remux with a title
    run_ffmpeg(["-i", str(videos / "cuts.mp4"), "-c", "copy", "-metadata", "title=again", str(inputs / "remux.mp4")])
    second = build(load_config(config), progress=False)
    rejects = pq.read_table(tmp_path / "out" / "rejects").to_pylist()
    assert second.rows == 4 and [r["reason"] for r in rejects] == ["duplicate"] * 4, rejects
    assert all(r[R.SOURCE_URI].endswith("remux.mp4") and json.loads(r["detail"])["duplicate_of"].endswith("cuts.mp4")
               for r in rejects)
