"""A small but complete finished build directory, written without running the pipeline.

The exporters, `vdata push`, their tests and `bench/bench_export.py` need a build directory that looks
exactly like what `vdata build` leaves behind once captioning and sample generation have run:
`manifest.json`, `samples/*.parquet` (or `clips/*.parquet`) with the Arrow schema from
`vdata.schemas.records`, `rejects/*.parquet`, and real video files. This module renders real videos with
ffmpeg (lavfi sources, so the content of every shot is known), probes them with the real prober, cuts
one clip file the way the shots stage does, and writes canonical rows whose texts describe what is
actually on screen: captions, open QA, MCQ, CoT with evidence timestamps, grounding with spans, dense
captions and chapters.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from vdata.media.ffmpeg import run_ffmpeg, video_map
from vdata.media.hashing import content_id
from vdata.media.probe import probe_video
from vdata.media.synth import Segment, render_segments
from vdata.schemas import records as R

from .source import first_per_clip


@dataclass(frozen=True)
class Shot:
    source: str        # lavfi source
    name: str          # short name (an MCQ option)
    caption: str       # what is on screen


SHOTS = {
    "testsrc2": Shot("testsrc2", "a test pattern with a frame counter",
                     "A broadcast test pattern: coloured bars, a moving gradient and a running frame counter."),
    "smptebars": Shot("smptebars", "vertical colour bars",
                      "SMPTE colour bars: vertical bars of white, yellow, cyan, green, magenta, red and blue."),
    "mandelbrot": Shot("mandelbrot", "a zooming fractal",
                       "A Mandelbrot fractal slowly zooming in, with bands of blue and orange."),
    "color=c=0x2060c0": Shot("color=c=0x2060c0", "a flat blue screen",
                             "A flat, evenly lit blue screen; nothing moves."),
    "rgbtestsrc": Shot("rgbtestsrc", "red, green and blue stripes",
                       "Three vertical stripes, red, green and blue, on a still frame."),
}

# (file stem, shot sources, seconds per shot)
DEMO_VIDEOS = [
    ("patterns", ["testsrc2", "smptebars", "mandelbrot"], 2.0),
    ("flat", ["color=c=0x2060c0", "rgbtestsrc"], 2.0),
]

DEMO_CONFIG = """\
name: demo-patterns
description: Synthetic test-pattern videos with captions and question-answer samples.
license: cc-by-4.0
input:
  - path: videos/
output: {dir: out/demo-patterns, rows_per_file: 5000}
stages:
  - probe: {min_frames: 2}
  - shots: {detector: adaptive, min_len_s: 1.0, write_clips: false}
  - quality: {thresholds: {brightness_min: 20, sharpness_min: 30, text_area_max: 0.08}}
  - frames: {mode: uniform, max_frames: 4}
  - caption: {teacher: tiny, strategy: multi_frame, prompt_version: caption-v1}
  - generate: {teacher: tiny, tasks: [open_qa, mcq, cot, grounding, dense_caption], prompt_version: qa-v2}
  - verify: {teacher: tiny, blind_correct_max: 0.5, supported_ratio_min: 0.8}
teachers:
  tiny:
    backend: openai
    base_url: http://127.0.0.1:8000/v1
    model: smollm2-135m
    api_key: ${OPENAI_API_KEY}
"""

TEACHER, MODEL = "tiny", "smollm2-135m"
CAPTION_PROMPT, QA_PROMPT = "caption-v1", "qa-v2"


def _render_videos(media_dir: str) -> list[dict]:
    os.makedirs(media_dir, exist_ok=True)
    videos = []
    for stem, sources, seg_s in DEMO_VIDEOS:
        path = os.path.join(media_dir, f"{stem}.mp4")
        if not os.path.exists(path):
            tmp = path + ".part.mp4"
            render_segments(tmp, [Segment(s, seg_s) for s in sources], size=(320, 180), fps=25, audio_tone_hz=440)
            os.replace(tmp, path)
        videos.append({"stem": stem, "path": os.path.abspath(path), "sources": sources, "seg_s": seg_s})
    return videos


def _cut(src: str, start: float, dur: float, out: str) -> None:
    os.makedirs(os.path.dirname(out), exist_ok=True)
    run_ffmpeg(["-ss", f"{start:.6f}", "-i", src, "-t", f"{dur:.6f}", "-map", video_map(src), "-map", "0:a?",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac", out])


def _frames(path: str, start: float, end: float, n: int = 2) -> list[dict]:
    from vdata.media.images import encode_jpeg
    from vdata.media.reader import open_reader

    times = [start + (k + 0.5) * (end - start) / n for k in range(n)]
    with open_reader(path, "auto", purpose="sparse", max_side=96) as reader:
        got = reader.read_at(times)
    return [{R.FRAME_TIMESTAMP_S: float(t), R.FRAME_JPEG: encode_jpeg(img, quality=70)} for t, img in got]


def _evidence(captions: list[str], times: list[float]) -> dict:
    return {"captions": captions, "frame_timestamps_s": times, "transcript_spans": []}


def _sample(base: dict, sid: str, task: str, qtype: str, question: str, answer: str, **extra) -> dict:
    row = dict(base)
    row.update({R.SAMPLE_ID: sid, R.TASK: task, R.QUESTION_TYPE: qtype, R.QUESTION: question, R.ANSWER: answer,
                R.OPTIONS: None, R.ANSWER_INDEX: None, R.RATIONALE: None, R.RATIONALE_STEPS: None,
                R.ANSWER_SPANS: None, R.EVIDENCE: None, R.SAMPLE_TEACHER: TEACHER, R.SAMPLE_MODEL: MODEL,
                R.SAMPLE_PROMPT_VERSION: QA_PROMPT, R.V_SUPPORTED_RATIO: 1.0, R.V_BLIND_CORRECT: 0.0,
                R.V_TIMESTAMPS_VALID: True})
    row.update(extra)
    return row


def _mcq_options(correct: str, k: int) -> tuple[list[str], int]:
    """Four options with the right one at position k % 4 (so every letter is exercised)."""
    others = [s.name for s in SHOTS.values() if s.name != correct][:3]
    idx = k % 4
    opts = others[:idx] + [correct] + others[idx:]
    return opts, idx


def demo_rows(media_dir: str, clips_dir: str, with_frames: bool = True) -> tuple[list[dict], list[dict], list[dict]]:
    """(clip rows with captions, sample rows, reject rows) for the demo videos."""
    clip_rows, samples, rejects = [], [], []
    k = 0
    for v in _render_videos(media_dir):
        info = probe_video(v["path"])
        vid = content_id(v["path"])
        video = {R.SOURCE_URI: v["path"], R.PATH: v["path"], R.SOURCE_META: json.dumps({"stem": v["stem"]}),
                 R.VIDEO_ID: vid, **info}
        shots = [SHOTS[s] for s in v["sources"]]
        fps = info[R.FPS]
        events = []
        for i, shot in enumerate(shots):
            start, end = i * v["seg_s"], (i + 1) * v["seg_s"]
            a, b = round(start * fps), round(end * fps)
            clip_id = f"{vid}_{a:07d}_{b:07d}"
            clip_path = None
            if i == 0:   # one clip file written by the "shots stage", as with shots.write_clips
                clip_path = os.path.join(clips_dir, vid[:2], f"{clip_id}.mp4")
                if not os.path.exists(clip_path):
                    _cut(v["path"], start, end - start, clip_path)
            clip = {**video, R.CLIP_ID: clip_id, R.CLIP_INDEX: i, R.START_S: start, R.END_S: end,
                    R.START_FRAME: a, R.END_FRAME: b, R.CLIP_DURATION_S: end - start, R.CLIP_PATH: clip_path,
                    R.SHOTS_IN_VIDEO: len(shots), R.Q_BRIGHTNESS: 120.0, R.Q_SHARPNESS: 400.0,
                    R.Q_SUITABILITY: 0.9,
                    R.FRAMES: _frames(v["path"], start, end) if with_frames else None,
                    R.FRAME_SAMPLING: "uniform:2" if with_frames else None,
                    R.CAPTION: shot.caption, R.CAPTION_STRATEGY: "multi_frame", R.CAPTION_TEACHER: TEACHER,
                    R.CAPTION_MODEL: MODEL, R.CAPTION_PROMPT_VERSION: CAPTION_PROMPT,
                    R.DENSE_EVENTS: [{"start_s": start, "end_s": end, "description": shot.caption}]}
            clip_rows.append(clip)
            events.append({"start_s": start, "end_s": end, "description": shot.caption})
            mid = (start + end) / 2
            ev = _evidence([shot.caption], [mid])
            samples.append(_sample(clip, f"{clip_id}-cap", "caption", "description",
                                   "Describe what is shown in this video.", shot.caption, **{R.EVIDENCE: ev}))
            samples.append(_sample(clip, f"{clip_id}-oqa", "open_qa", "attribute",
                                   "What fills the screen in this video?", shot.caption.split(":")[0].rstrip(".") + ".",
                                   **{R.EVIDENCE: ev}))
            opts, idx = _mcq_options(shot.name, k)
            samples.append(_sample(clip, f"{clip_id}-mcq", "mcq", "attribute", "Which of these is shown?",
                                   opts[idx], **{R.OPTIONS: opts, R.ANSWER_INDEX: idx, R.EVIDENCE: ev}))
            opts2, idx2 = _mcq_options(shot.name, k + 1)
            samples.append(_sample(
                clip, f"{clip_id}-cot", "cot", "reasoning", "What kind of picture does this video show?", opts2[idx2],
                **{R.OPTIONS: opts2, R.ANSWER_INDEX: idx2, R.EVIDENCE: ev,
                   R.RATIONALE: f"The frames show {shot.name}. So the answer is {opts2[idx2]}.",
                   R.RATIONALE_STEPS: [{"text": f"The frames show {shot.name}.", "evidence_timestamps_s": [start + 0.5, mid]},
                                       {"text": "No other kind of picture appears.", "evidence_timestamps_s": []}]}))
            # grounding inside the clip: the second half of the shot
            samples.append(_sample(
                clip, f"{clip_id}-grd", "grounding", "temporal", f"When is {shot.name} on screen in the second half of this clip?",
                "", **{R.ANSWER_SPANS: [{"start_s": mid, "end_s": end}], R.EVIDENCE: ev}))
            k += 1
        # video-level samples: no clip columns, the whole source video is the visual
        whole = {**video, **{c: None for c in R.CLIP_COLUMNS}}
        for i, shot in enumerate(shots):
            start, end = i * v["seg_s"], (i + 1) * v["seg_s"]
            samples.append(_sample(whole, f"{vid}-grd{i}", "grounding", "temporal", f"When does the video show {shot.name}?",
                                   "", **{R.ANSWER_SPANS: [{"start_s": start, "end_s": end}]}))
        samples.append(_sample(whole, f"{vid}-dense", "dense_caption", "dense",
                               "Describe every event of this video with its start and end time.",
                               "", **{R.DENSE_EVENTS: events}))
        samples.append(_sample(
            whole, f"{vid}-chap", "chapter", "chapter", "Split this video into chapters.",
            "\n".join(f"{{{{span:{e['start_s']},{e['end_s']}}}}}: {s.name}" for e, s in zip(events, shots)),
            **{R.ANSWER_SPANS: [{"start_s": e["start_s"], "end_s": e["end_s"]} for e in events]}))
        rejects.append({"stage": "verify", "reason": "blind_solvable", "message": "answered correctly without the video 3/3",
                        "detail": json.dumps({"v_blind_correct": 1.0, "max": 0.5}), R.SOURCE_URI: v["path"],
                        R.VIDEO_ID: vid, R.CLIP_ID: None, R.SAMPLE_ID: f"{vid}-blind", R.TASK: "mcq"})
    rejects.append({"stage": "quality", "reason": "too_dark", "message": "mean brightness 4.1 < brightness_min 20",
                    "detail": json.dumps({"q_brightness": 4.1, "brightness_min": 20}), R.SOURCE_URI: "videos/black.mp4",
                    R.VIDEO_ID: "0" * 32, R.CLIP_ID: "0" * 32 + "_0000000_0000100", R.SAMPLE_ID: None})
    rejects.append({"stage": "probe", "reason": "truncated", "message": "truncated: media data ends at byte 90000 but file has 30000 bytes",
                    "detail": "{}", R.SOURCE_URI: "videos/broken.mp4", R.VIDEO_ID: None, R.CLIP_ID: None, R.SAMPLE_ID: None})
    return clip_rows, samples, rejects


def _repeat(samples: list[dict], times: int) -> list[dict]:
    if times <= 1:
        return samples
    return [{**s, R.SAMPLE_ID: f"{s[R.SAMPLE_ID]}-r{r}"} for r in range(times) for s in samples]


def write_demo_build(out_dir: str, *, level: str = "samples", media_dir: str | None = None, repeat: int = 1,
                     with_frames: bool = True, config_text: str = DEMO_CONFIG, rows_per_file: int = 5000,
                     clips_table: bool = True) -> str:
    """Write a finished build directory into `out_dir` and return its path.

    level: "samples" (instruction samples, one row each) or "clips" (captioned clips only).
    media_dir: where the source videos are rendered (reused when they exist; default `out_dir/_media`).
    repeat: multiply the sample rows (new sample ids) to make a large dataset for benchmarks.
    clips_table: a sample build's frames once per clip in `clips/` (R.CLIPS_TABLE), as `vdata build`
    writes them; False leaves them on every sample row (the layout of builds made before the clips table).
    """
    if level not in ("samples", "clips"):
        raise ValueError(f"level must be 'samples' or 'clips', not {level!r}")
    media_dir = media_dir or os.path.join(out_dir, "_media")
    clips_dir = os.path.join(out_dir, "clips")
    clip_rows, samples, rejects = demo_rows(media_dir, clips_dir, with_frames=with_frames)
    rows = _repeat(samples, repeat) if level == "samples" else clip_rows
    cols = [c for c in R.FIELD_TYPES if any(c in r for r in rows[:1]) and c not in R.REJECT_COLUMNS]
    split_frames = clips_table and level == "samples" and R.FRAMES in cols
    schema = R.data_schema([c for c in cols if not (split_frames and c in R.CLIPS_TABLE_PAYLOAD)])
    data_dir = os.path.join(out_dir, level)
    os.makedirs(data_dir, exist_ok=True)
    files = []
    for i in range(0, len(rows), rows_per_file):
        name = os.path.join(data_dir, f"part-demo-{i // rows_per_file:05d}.parquet")
        table = pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows[i:i + rows_per_file]], schema=schema)
        pq.write_table(table, name, compression="zstd")
        files.append(name)
        if split_frames:   # the part's clips, as the sink writes them (execution.write_split_parts)
            clip_schema = R.data_schema([c for c in R.CLIPS_TABLE_COLUMNS if c in cols])
            clips = pa.Table.from_pylist([{c: r.get(c) for c in clip_schema.names} for r in rows[i:i + rows_per_file]],
                                         schema=clip_schema)
            os.makedirs(os.path.join(out_dir, R.CLIPS_TABLE), exist_ok=True)
            files.append(os.path.join(out_dir, R.CLIPS_TABLE, os.path.basename(name)))
            pq.write_table(first_per_clip(clips), files[-1], compression="zstd")
    os.makedirs(os.path.join(out_dir, "rejects"), exist_ok=True)
    rej_path = os.path.join(out_dir, "rejects", "part-demo-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rejects, schema=R.REJECT_SCHEMA), rej_path, compression="zstd")
    by_reason: dict[str, int] = {}
    for r in rejects:
        key = f"{r['stage']}:{r['reason']}"
        by_reason[key] = by_reason.get(key, 0) + 1
    n_videos = len(DEMO_VIDEOS)
    stage_rows = [("probe", n_videos + 1, n_videos), ("shots", n_videos, len(clip_rows) + 1),
                  ("quality", len(clip_rows) + 1, len(clip_rows)), ("frames", len(clip_rows), len(clip_rows)),
                  ("caption", len(clip_rows), len(clip_rows))]
    if level == "samples":
        stage_rows += [("generate", len(clip_rows), len(rows) + n_videos), ("verify", len(rows) + n_videos, len(rows))]
    stages = []
    for i, (name, rin, rout) in enumerate(stage_rows):
        rej = {k.split(":", 1)[1]: v for k, v in by_reason.items() if k.startswith(name + ":")}
        stages.append({"stage": name, "index": i, "rows_in": rin, "rows_out": rout, "rejects": rej,
                       "busy_s": 1.0, "active_s": 1.0, "rows_per_s": float(rin), "workers": 1, "nodes": [],
                       "config_hash": f"{i:016x}"})
    manifest = {
        "name": "demo-patterns", "run_id": "demo", "level": level, "config_hash": "demo0000demo0000",
        "config_text": config_text, "inputs": n_videos + 1, "rows": len(rows), "rejects": len(rejects),
        "rejects_by_reason": dict(sorted(by_reason.items())), "stages": stages, "wall_s": 12.5,
        "versions": {"vdata": "0.1.0"}, "schema": [f"{f.name}: {f.type}" for f in schema],
        "files": [os.path.relpath(f, out_dir) for f in files + [rej_path]], "ray": {"address": "local"},
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    return out_dir
