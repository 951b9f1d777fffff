"""Koala-36M: a CSV with one row per clip, `videoID, url, timestamp, caption, clarity_score,
aesthetic_score, motion_score, video_training_suitability_score`, then vdata's own `vdata_suitability_score`.

Columns confirmed by two readers of the release CSVs (huggingface.co/datasets/Koala-36M/Koala-36M-v1,
`Koala_36M_<n>.csv`) found with the code search: a score-analysis script reading exactly these eight
columns (`usecols`) and a metadata fetcher whose `FIELDNAMES` are the same; both take `videoID` as
`<youtube id>_<clip number>`. `timestamp` is one flat pair of `H:MM:SS.mmm` strings, `['0:00:06.000',
'0:00:12.000']`: the readers of those CSVs found with the code search `ast.literal_eval` it and take item
0 / 1 as the clip's start / end (a prompt filter strptime's each with `%H:%M:%S.%f`; two duration filters
require a list of length 2; a download script, `scripts/koala_download.py`, skips the row otherwise). The
release's own repository (KwaiVGI/Koala-36M: README.md, training_suitability_assessment/) has no CSV reader.

Scores: vdata has no learned clarity, aesthetic or VTSS scorer, so those three cells stay empty (the
release's VTSS is its learned model's score, about 2.5 to 4.95 in the CSVs, README.md quotes 4.31-4.81;
readers keep rows above e.g. 3.0, and no rule maps vdata's heuristic onto that scale).
`vdata_suitability_score` is the quality stage's weighted suitability (`q_suitability`, 0..1), under a
name no release reader filters by; `motion_score` is its optical-flow magnitude (`q_motion`, pixels at
160 px wide per frame). `url` points at the source video inside the export (the release's is the
YouTube video's URL) and `timestamp` is the clip's span in it, so the two name the same video and time.
"""
from __future__ import annotations

import csv
import os

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, prepare, safe_name
from ..source import BuildDir
from .common import clip_item, clip_rows, require, result_for, timecode, whole_video

RELEASE_COLUMNS = ["videoID", "url", "timestamp", "caption", "clarity_score", "aesthetic_score", "motion_score",
                   "video_training_suitability_score"]
# after the release's eight, so readers that pick columns by name or position (`usecols`) see the release's
COLUMNS = RELEASE_COLUMNS + ["vdata_suitability_score"]


def _score(v) -> str:
    return "" if v is None else f"{float(v):.4f}"


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    name = safe_name(opts.name or build.name)
    rows = require([r for r in clip_rows(build) if r.get(R.CAPTION)], build, "koala36m", "no captioned clip")
    prepared, planner, skipped = prepare(build, dest, opts, items=[whole_video(clip_item(r)) for r in rows])
    rows_by_clip = {r[R.CLIP_ID]: r for r in rows}
    result = result_for("koala36m", planner, skipped, [])
    fname = f"{name}_koala36m.csv"
    number: dict[str, int] = {}
    with open(os.path.join(planner.dest, fname), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for p in prepared:
            row = rows_by_clip[p.item.id]   # whole_video cleared the clip's own columns: its span comes from here
            vid = str(row.get(R.VIDEO_ID))
            number[vid] = number.get(vid, -1) + 1
            w.writerow({"videoID": f"{vid}_{number[vid]}", "url": planner.ref(p.visual, planner.dest),
                        "timestamp": repr([timecode(row[R.START_S]), timecode(row[R.END_S])]),
                        "caption": row[R.CAPTION], "clarity_score": "", "aesthetic_score": "",
                        "motion_score": _score(row.get(R.Q_MOTION)),
                        "video_training_suitability_score": "",
                        "vdata_suitability_score": _score(row.get(R.Q_SUITABILITY))})
            result.rows[fname] = result.rows.get(fname, 0) + 1
    result.files.append(fname)
    return result
