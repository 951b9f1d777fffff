"""`scope: video`: all clip rows of one video → one synthetic *video row* the task families run on.

The video row is shaped like a clip row whose interval is the whole video: `clip_id` = `<video_id>:video`
(so its sample ids never collide with a clip's), `start_s` = 0, `end_s` = the video's duration,
`sample_scope` = "video". Its content is the union of its clips': every clip caption with its interval
(`clip_captions`), the dense events and caption steps of all clips, and the transcript segments —
deduplicated, since ASR attaches one segment to every clip it overlaps. `caption` is the video caption
(`video_caption` stage, or joined clip captions when there is none); the video-level columns
(source, probe, annotations, video caption) are the clips' own. Frames: an evenly spaced subset of all
clips' frames. Times stay video-absolute throughout, so a family's spans need no conversion.
"""
from __future__ import annotations

from vdata.schemas import records as R

_PER_CLIP = (*R.QUALITY_COLUMNS, R.CLIP_PATH, R.CAPTION_FRAME_TIMESTAMPS, R.CAPTION_CANDIDATES,
             R.CAPTION_SELECTION_SCORE, R.SHOT_TYPE, R.CAMERA_MOVEMENT, R.CAPTION_STRATEGY)


def video_clip_id(video_id: str) -> str:
    return f"{video_id}:video"


def video_row(clip_rows: list[dict], max_frames: int = 16) -> dict:
    """One video's clip rows (any order) → its video row. Raises ValueError on rows of several videos."""
    if not clip_rows:
        raise ValueError("video_row: no clip rows")
    uris = {r.get(R.SOURCE_URI) for r in clip_rows}
    if len(uris) > 1:
        raise ValueError(f"video_row: clip rows of {len(uris)} videos ({sorted(map(str, uris))[:3]}), expected one")
    rows = sorted(clip_rows, key=lambda r: (r.get(R.START_S) or 0.0, r.get(R.CLIP_INDEX) or 0, str(r.get(R.CLIP_ID))))
    first = rows[0]
    out = dict(first)
    video_id = first.get(R.VIDEO_ID) or str(first.get(R.SOURCE_URI))
    ends = [float(r[R.END_S]) for r in rows if r.get(R.END_S) is not None]
    duration = float(first[R.DURATION_S]) if first.get(R.DURATION_S) else max(ends, default=0.0)
    out.update({c: None for c in _PER_CLIP})
    out.update({
        R.CLIP_ID: video_clip_id(video_id), R.CLIP_INDEX: None, R.START_S: 0.0, R.END_S: duration,
        R.START_FRAME: 0, R.END_FRAME: first.get(R.NUM_FRAMES), R.CLIP_DURATION_S: duration,
        R.SHOTS_IN_VIDEO: first.get(R.SHOTS_IN_VIDEO) or len(rows),
        R.MEDIA_DAMAGE: next((r[R.MEDIA_DAMAGE] for r in rows if r.get(R.MEDIA_DAMAGE)), None),
        R.SAMPLE_SCOPE: R.SCOPE_VIDEO,
    })
    out.update(_speech(rows))
    out.update(_captions(rows, first))
    frames = [f for r in rows for f in (r.get(R.FRAMES) or []) if f]
    frames.sort(key=lambda f: f.get(R.FRAME_TIMESTAMP_S) or 0.0)
    picks = _even(len(frames), max_frames)
    out[R.FRAMES] = [frames[i] for i in picks] or None
    out[R.FRAME_SAMPLING] = f"video:{len(picks)} of {len(frames)}" if frames else None
    return out


def _speech(rows: list[dict]) -> dict:
    """Transcript segments of every clip, each once (ASR repeats a segment on each clip it overlaps)."""
    seen, segments = set(), []
    for r in rows:
        for s in r.get(R.TRANSCRIPT_SEGMENTS) or []:
            if not s:
                continue
            key = (round(s.get("start_s") or 0.0, 3), round(s.get("end_s") or 0.0, 3), (s.get("text") or "").strip())
            if key in seen:
                continue
            seen.add(key)
            # clip-relative times are relative to the video row now, which starts at 0
            segments.append(dict(s, clip_start_s=s.get("start_s"), clip_end_s=s.get("end_s")))
    segments.sort(key=lambda s: (s.get("start_s") or 0.0, s.get("end_s") or 0.0))
    if segments:
        text = " ".join((s.get("text") or "").strip() for s in segments).strip()
    else:   # transcript text without segments: each clip's text once, in order
        texts = dict.fromkeys((r.get(R.TRANSCRIPT_TEXT) or "").strip() for r in rows)
        text = " ".join(t for t in texts if t)
    return {R.TRANSCRIPT_SEGMENTS: segments or None, R.TRANSCRIPT_TEXT: text or None,
            R.TRANSCRIPT_LANGUAGE: next((r[R.TRANSCRIPT_LANGUAGE] for r in rows if r.get(R.TRANSCRIPT_LANGUAGE)), None),
            R.ASR_MODEL: next((r[R.ASR_MODEL] for r in rows if r.get(R.ASR_MODEL)), None)}


def _captions(rows: list[dict], first: dict) -> dict:
    clip_captions = [{"start_s": float(r[R.START_S]), "end_s": float(r[R.END_S]), "text": r[R.CAPTION].strip()}
                     for r in rows if (r.get(R.CAPTION) or "").strip() and r.get(R.START_S) is not None
                     and r.get(R.END_S) is not None]
    events = _unique([e for r in rows for e in (r.get(R.DENSE_EVENTS) or []) if e],
                     lambda e: (e.get("start_s"), e.get("end_s"), e.get("description")))
    steps = _unique([s for r in rows for s in (r.get(R.CAPTION_STEPS) or []) if s],
                    lambda s: (s.get("timestamp_s"), s.get("text")))
    video_caption = (first.get(R.VIDEO_CAPTION) or "").strip()
    out = {
        R.CLIP_CAPTIONS: clip_captions or None,
        R.DENSE_EVENTS: sorted(events, key=lambda e: (e.get("start_s") or 0.0, e.get("end_s") or 0.0)) or None,
        R.CAPTION_STEPS: sorted(steps, key=lambda s: s.get("timestamp_s") or 0.0) or None,
        R.DENSE_TIMESTAMPS_REPAIRED: _sum(rows, R.DENSE_TIMESTAMPS_REPAIRED),
        R.DENSE_EVENTS_DROPPED: _sum(rows, R.DENSE_EVENTS_DROPPED),
    }
    if video_caption:
        out.update({R.CAPTION: video_caption, R.CAPTION_TEACHER: first.get(R.VIDEO_CAPTION_TEACHER),
                    R.CAPTION_MODEL: first.get(R.VIDEO_CAPTION_MODEL),
                    R.CAPTION_PROMPT_VERSION: first.get(R.VIDEO_CAPTION_PROMPT_VERSION)})
    else:
        out[R.CAPTION] = " ".join(c["text"] for c in clip_captions) or None
    return out


def _unique(items: list[dict], key) -> list[dict]:
    seen, out = set(), []
    for x in items:
        k = key(x)
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


def _sum(rows: list[dict], col: str) -> int | None:
    values = [r[col] for r in rows if r.get(col) is not None]
    return int(sum(values)) if values else None


def _even(n: int, k: int) -> list[int]:
    if n <= k:
        return list(range(n))
    return sorted({min(n - 1, int((i + 0.5) * n / k)) for i in range(k)})
