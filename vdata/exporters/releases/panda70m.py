"""Panda-70M: a CSV with one row per source video, `videoID, url, timestamp, caption, matching_score,
desirable_filtering, shot_boundary_detection`.

Layout confirmed in snap-research/Panda-70M `dataset_dataloading/README.md` (video2dataset reads
`--url_col url --caption_col caption --clip_col timestamp` and keeps `matching_score`) and
`splitting/README.md` (clip timecodes `[["0:00:00.000", "0:00:15.982"], ...]`, `H:MM:SS.mmm`). The
list columns are Python list literals, as in the release CSVs: `timestamp` the clips' timecode pairs,
`caption` one caption per clip, `matching_score` the caption's selection score (the multi-teacher
selector's; `None` when the build has none). `url` points at the source video inside the export.

`desirable_filtering` and `shot_boundary_detection` are the columns the README's download command keeps
(`--save_additional_columns="[matching_score,desirable_filtering,shot_boundary_detection]"`; its
video2dataset `input_sharder.py` selects them, `workers/download_worker.py` takes
`eval(meta["desirable_filtering"])[i]` and `eval(meta["shot_boundary_detection"])[i]` per clip). In the
release they hold, per clip, one of six desirability classes (`desirable`, `0_low_desirable_score`, ...)
and TransNetV2's shot intervals inside the clip (top-level README.md). vdata computes neither, so each
holds one `None` per clip, as `matching_score` does for a build without a selector score.
"""
from __future__ import annotations

import csv
import os

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, prepare, safe_name
from ..source import BuildDir, Item
from .common import by_video, clip_rows, require, result_for, timecode

COLUMNS = ["videoID", "url", "timestamp", "caption", "matching_score", "desirable_filtering", "shot_boundary_detection"]


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    groups = by_video(r for r in clip_rows(build) if r.get(R.CAPTION))
    videos = [Item({**clips[0], **{c: None for c in R.CLIP_COLUMNS}, R.SAMPLE_ID: vid, R.TASK: "caption"}, "captions")
              for vid, clips in groups.items()]
    require(videos, build, "panda70m", "no captioned clip")
    prepared, planner, skipped = prepare(build, dest, opts, items=videos)
    result = result_for("panda70m", planner, skipped, [])
    fname = f"{name}_panda70m.csv"
    with open(os.path.join(planner.dest, fname), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for p in prepared:
            clips = groups[p.item.id]
            score = [None if c.get(R.CAPTION_SELECTION_SCORE) is None else round(float(c[R.CAPTION_SELECTION_SCORE]), 4)
                     for c in clips]
            w.writerow({"videoID": p.item.id, "url": planner.ref(p.visual, planner.dest),
                        "timestamp": repr([[timecode(c[R.START_S]), timecode(c[R.END_S])] for c in clips]),
                        "caption": repr([c[R.CAPTION] for c in clips]), "matching_score": repr(score),
                        # not computed: a None per clip, which the release's loader indexes like a value
                        "desirable_filtering": repr([None] * len(clips)),
                        "shot_boundary_detection": repr([None] * len(clips))})
            result.rows[fname] = result.rows.get(fname, 0) + 1
    result.files.append(fname)
    return result
