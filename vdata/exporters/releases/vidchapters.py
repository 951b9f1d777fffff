"""VidChapters-7M: `chapters_dvc_<split>.json`, one entry per video with its chapters.

Layout confirmed in antoyang/VidChapters `preproc/chapters_to_dvc.py` (the script that writes the
release's processed annotations) and read by `dataset/dvc_dataset.py`: a JSON object keyed by video id,
each value `{"duration": float, "timestamps": [[start, end], ...], "sentences": [title, ...],
"path": ...}`; a chapter ends where the next starts, the last at the video's end; times are seconds
from the video's start. `path` names the video file inside the export (the release named a feature
file `<id>.mp4.npy`); the key is the dataset's own name of the video where the input gives one (the
name `path` uses too), else vdata's video id. One file per split, as the release has them: `train`,
`validation` -> `val`, `test`.

Chapters come from the video's `annotations.chapters` (user chapters read by the annotations stage);
a video without them falls back to a chapter-generation sample's events (`dense_events`, the
description as title). Videos with neither are skipped (`no_chapters`), and so is a video with one
chapter (`one_chapter`: the release keeps descriptions with two or more, collection/desc2chapters.py). With `--task`, only videos
with a sample of those tasks are written, and a chapter sample's events come before the annotations.
"""
from __future__ import annotations

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, prepare
from ..source import BuildDir
from .common import (add_json, annotations, by_video, release_items, release_options, require, result_for,
                     whole_video)

CHAPTER_TASKS = ("chapter", "chapter_generation")
# vdata's splits -> the release's file names (chapters_dvc_train / _val / _test.json)
RELEASE_SPLITS = {"train": "train", "validation": "val", "test": "test"}


def chapters_of(items, samples_first: bool = False) -> list[tuple[float, float, str]]:
    """The video's annotated chapters, else a chapter sample's events; the other way round when the
    export names its tasks (`--task chapter_generation` asks for the generated chapters)."""
    annotated = [[(float(c["start_s"]), float(c["end_s"]), c["title"]) for c in chapters]
                 for it in items if (chapters := annotations(it.row).get("chapters"))]
    generated = [[(float(e["start_s"]), float(e["end_s"]), e["description"]) for e in it.get(R.DENSE_EVENTS)]
                 for it in items if it.task in CHAPTER_TASKS and it.get(R.DENSE_EVENTS)]
    found = generated + annotated if samples_first else annotated + generated
    return found[0] if found else []


def video_splits(build: BuildDir) -> dict[str, str]:
    """video id -> the split whose data files hold it (a build holds a video out whole)."""
    ids = build.read_table([R.VIDEO_ID]).column(R.VIDEO_ID).to_pylist()
    return {str(vid): split for vid, split in zip(ids, build.row_splits())}


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    notes: list[str] = []
    opts = release_options(opts, "seconds", notes)   # the release's times are seconds: another --time is said ignored
    chosen, chapters, skipped_videos, one_chapter = [], {}, 0, 0
    # with --task, only videos that have a sample of those tasks, and that sample's chapters first
    for vid, items in by_video(release_items(build, opts.tasks)).items():
        found = chapters_of(items, samples_first=bool(opts.tasks))
        if not found:
            skipped_videos += 1
            continue
        if len(found) < 2:   # VidChapters-7M keeps only descriptions with 2+ chapters (collection/desc2chapters.py)
            one_chapter += 1
            continue
        chapters[vid] = found
        chosen.append(whole_video(items[0]))
    require(chosen, build, "vidchapters", "no video has 2 or more chapters (annotations.chapters or a chapter_generation sample with events)")
    prepared, planner, skipped = prepare(build, dest, opts, items=chosen)
    if skipped_videos:
        skipped["no_chapters"] += skipped_videos
    if one_chapter:
        skipped["one_chapter"] += one_chapter
    splits = video_splits(build)
    files: dict[str, dict] = {}
    for p in prepared:
        vid = str(p.item.get(R.VIDEO_ID))
        duration = float(p.visual.duration_s or p.item.get(R.DURATION_S))
        rows = [(max(0.0, a), min(b, duration), t) for a, b, t in chapters[vid]]
        out = files.setdefault(RELEASE_SPLITS.get(splits.get(vid, "train"), "train"), {})
        # keyed like the release, by the dataset's own name of the video (a YouTube id there) where the
        # input gives one (BuildDir.dataset_names), as the file in `path` is named
        key = p.visual.video_id if p.visual.video_id and p.visual.video_id not in out else vid
        out[key] = {"duration": duration, "timestamps": [[round(a, 3), round(b, 3)] for a, b, _ in rows],
                    "sentences": [t for _, _, t in rows], "path": planner.ref(p.visual, planner.dest)}
    result = result_for("vidchapters", planner, skipped, notes)
    for split in RELEASE_SPLITS.values():
        if split in files:
            add_json(result, planner, f"chapters_dvc_{split}.json", files[split], len(files[split]))
    return result
