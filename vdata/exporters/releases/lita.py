"""LITA (ActivityNet-RTL style): a JSON object keyed by visual id, `{duration, QA: [{q, a}]}`, times
in the answers written `<12.30>` (seconds in angle brackets), as LITA's release files store them.

Layout confirmed in NVlabs/LITA `lita/dataset/temporal_reasoning_dataset.py`
(`TemporalReasoningDataset_activitynet.init_list_data_dict`: `data_dict[vid]['duration']` and
`['QA']` with `q`/`a`; `format_temporal_reasoning` turns every `<seconds>` in an answer into the time
token `<t{round((T-1) * t / duration)}>` with `TIME_TOKEN_TEMPLATE = "<t{t}>"` from
`lita/constants.py`). With `--time lita[:T]` the tokens are written directly (the loader leaves them
as they are). The loader converts answers only (`question = vqa['q']` goes in as it is): so questions
always carry times as the tokens themselves (`<tK>`, T = 100, LITA's default `num_time_tokens`), and
their answer-format hint names those tokens, what the model's answers read after the loader. Keys are the visual's stem (the video id, or the clip id of a cut clip), so each key's
`duration` is the length of what the model sees; videos are at `<dest>/videos/<key>.mp4`.

LITA reads RTL videos as frame folders, not files: `TemporalReasoningDataset_activitynet` sets
`visual_data_type = 'video_frames'` and globs `<image_folder>/<key>/*.jpg`, and its docs/Video_Data.md
extracts them with `ffmpeg -an -vf "fps=5,scale=320:240" <folder>/%06d.jpg` (ActivityNet's own frames
are 5 fps, 320x240). So each visual also becomes `<dest>/frames/<key>/%06d.jpg` so made: point LITA's
`image_folder` at `<dest>/frames`. With `--media none` no frame is written either.
"""
from __future__ import annotations

import os
import shutil

from vdata.media import MediaError
from vdata.media.ffmpeg import run_ffmpeg

from ..base import ExportOptions, ExportResult, prepare, safe_name
from ..dialog import SampleError
from ..source import BuildDir
from ..timefmt import TimeFormat, parse_time_format
from .common import add_json, qa_pair, readable, release_items, release_options, result_for


def _qa(item, tf: TimeFormat) -> tuple[str, str]:
    """(question, answer): the answer's times as `tf` writes them (`<seconds>` the loader turns into tokens,
    or the tokens), the question's as LITA's tokens: the loader never converts a question."""
    question, answer = qa_pair(item, tf)
    if tf.kind != "lita":
        try:
            tokens = TimeFormat("lita", tf.origin_s, tf.duration_s, tf.fps)
        except ValueError:
            raise SampleError("no_duration", f"{item.id}: LITA's time tokens need the video's duration") from None
        question = qa_pair(item, tokens)[0]
    return question, answer


def export(build: BuildDir, dest: str, opts: ExportOptions) -> ExportResult:
    notes: list[str] = []
    if parse_time_format(opts.time_format)[0] != "lita":
        opts = release_options(opts, "bracketed", notes)
        notes.append("questions carry LITA's time tokens (<tK>, 100 of them): its loader converts <seconds> "
                     "in answers only")
    name = safe_name(opts.name or build.name)
    # LITA's loader opens `<video folder>/<key>.mp4`: every visual flat in videos/, as an mp4
    prepared, planner, skipped = prepare(build, dest, opts, flat=True, force_mp4=True,
                                         items=release_items(build, opts.tasks))
    data: dict[str, dict] = {}
    for p, q, a in readable(prepared, skipped, _qa):
        entry = data.setdefault(p.visual.stem, {"duration": float(p.visual.duration_s or 0.0), "QA": []})
        entry["QA"].append({"q": q, "a": a})
    frames = _write_frames(planner, {p.visual.stem: p.visual for p in prepared}, notes) if opts.media != "none" else 0
    result = result_for("lita", planner, skipped, notes)
    if frames:
        result.files.append(FRAMES_DIR + "/")
    fname = f"{name}_lita.json"
    add_json(result, planner, fname, data, sum(len(v["QA"]) for v in data.values()))
    return result


FRAMES_DIR = "frames"
FRAME_FILTER = "fps=5,scale=320:240"   # ActivityNet's frames as LITA uses them (docs/Video_Data.md)


def _write_frames(planner, visuals: dict, notes: list[str]) -> int:
    """`frames/<key>/%06d.jpg` for every visual (made afresh: a rerun leaves no frame of an older cut);
    a visual ffmpeg cannot read is a note, not a failed export. Returns the folders written."""
    written = 0
    for key, visual in sorted(visuals.items()):
        out = os.path.join(planner.dest, FRAMES_DIR, key)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        try:
            run_ffmpeg(["-i", planner.abspath(visual), "-an", "-q:v", "2", "-vf", FRAME_FILTER, os.path.join(out, "%06d.jpg")])
            written += 1
        except MediaError as e:
            notes.append(f"no frames for {key}: {e}")
    return written
