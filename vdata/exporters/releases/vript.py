"""Vript: one caption file per video, `vript_captions/<video_id>_caption.json`,
`{meta: {video_id, video_title, num_clips, integrity}, data: {<clip_id>: {video_id, clip_id,
video_title, caption: {shot_type, camera_movement, content, scene_title}, voiceover: [...]}}}`.

Layout confirmed in mutonix/Vript `README.md` and `DATA.md` (the caption-file structure and the
`vript_captions/` folder); clip ids are `<video_id>-Scene-NNN` (scene number from 1, in time order).
The fields come from the structured caption (`caption_fields`, the caption stage's `vript` preset) when
the build has one; otherwise `content` is the clip's caption, `shot_type` / `camera_movement` the dense
caption's columns and `scene_title` is ""; `voiceover` the transcript segments in
the clip (else the subtitle annotations there), `video_title` the video's title annotation (else the file name). `integrity` is true when every
shot of the video has a caption, and `num_clips` counts the video's shots (`shots_in_video`), captioned or not. Clip files are cut into `vript_clips/clips/<video_id>-Scene-NNN.mp4`, named
by the clip ids of the captions (the release zipped them as `<video_id>/<video_id>-Scene-NNN.mp4`).
"""
from __future__ import annotations

import os

from vdata.schemas import records as R

from ..base import ExportOptions, ExportResult, prepare
from ..source import BuildDir
from .common import add_json, annotations, by_video, caption_fields, clip_item, clip_rows, require, result_for, title_of


def voiceover(row: dict) -> list[str]:
    """The speech in the clip: ASR segments, else the video's subtitle annotations."""
    start, end = float(row.get(R.START_S) or 0.0), float(row.get(R.END_S) or 0.0)
    for cues in (row.get(R.TRANSCRIPT_SEGMENTS), annotations(row).get("subtitles")):
        texts = [s["text"].strip() for s in cues or []
                 if s.get("text") and float(s["end_s"]) > start and float(s["start_s"]) < end]
        if texts:
            return texts
    return []


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    rows = require([r for r in clip_rows(build) if r.get(R.CAPTION)], build, "vript", "no captioned clip")
    # the release's clip ids, which also name the clip files: <video_id>-Scene-NNN, numbered in time order
    scene = {r[R.CLIP_ID]: f"{vid}-Scene-{k:03d}" for vid, clips in by_video(rows).items()
             for k, r in enumerate(clips, start=1)}
    prepared, planner, skipped = prepare(build, dest, opts, folder="vript_clips",
                                         items=[clip_item({**r, R.CLIP_ID: scene[r[R.CLIP_ID]]}) for r in rows])
    kept = {p.item.row[R.CLIP_ID] for p in prepared}
    result = result_for("vript", planner, skipped, [])
    os.makedirs(os.path.join(planner.dest, "vript_captions"), exist_ok=True)
    for vid, clips in by_video(r for r in rows if scene[r[R.CLIP_ID]] in kept).items():
        title = title_of(clips[0])
        data = {}
        for row in clips:
            cid = scene[row[R.CLIP_ID]]
            fields = caption_fields(row)
            data[cid] = {"video_id": vid, "clip_id": cid, "video_title": title,
                         "caption": {"shot_type": fields.get("shot_type") or row.get(R.SHOT_TYPE) or "",
                                     "camera_movement": fields.get("camera_movement") or row.get(R.CAMERA_MOVEMENT) or "",
                                     "content": fields.get("content") or row[R.CAPTION],
                                     "scene_title": fields.get("scene_title") or ""},
                         "voiceover": voiceover(row)}
        shots = clips[0].get(R.SHOTS_IN_VIDEO)
        # Vript's README: "num_clips: the number of clips in the video. If the integrity is false, some clips may
        # not be captioned": the video's, not the captioned ones' (outside check h20)
        meta = {"video_id": vid, "video_title": title, "num_clips": max(len(data), int(shots or 0)),
                "integrity": shots is None or len(data) >= int(shots)}
        fname = f"vript_captions/{vid}_caption.json"
        add_json(result, planner, fname, {"meta": meta, "data": data}, len(data))
    return result
