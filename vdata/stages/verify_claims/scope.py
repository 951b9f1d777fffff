"""The evidence beyond a sample's own clip: annotations, a video-scope sample's video, and `scope: video`.

- Annotations (`annotations` column) are evidence at both scopes: title, description and labels always;
  chapters and segments when they lie inside the sample's interval, subtitles when their middle does (the
  rule generate's clues follow: a cue across a shot cut belongs to the clip holding its middle).
- A video-scope sample (`sample_scope: video`, made by `generate` at `scope: video`) is checked against its
  video: every clip caption with its interval (`clip_captions`), the video caption, and — already in its
  row's caption, events and transcript columns — the union of its clips' content.
- With `scope: video` every sample, a clip-scope one too, is checked against its whole video: the stage is
  fed whole videos, and the batch's rows together hold every clip's caption, events and speech.

Each text counts under the evidence source it belongs to (`evidence_sources`): captions, the video caption
and title/description/labels under `caption`; chapters and annotated segments under `events`; subtitles
and a given transcript under `transcript`.
"""
from __future__ import annotations

from vdata.schemas import records as R
from vdata.schemas.annotations import holding_midpoint

_TOLERANCE_S = 0.05


def annotation_texts(row: dict, sources: set[str], whole_video: bool = False) -> tuple[list[str], list[str]]:
    """(visual, speech) texts from the row's annotations in its interval (all of them with `whole_video`):
    chapters and segments wholly inside, subtitles whose middle is in it (`holding_midpoint`)."""
    ann = row.get(R.ANNOTATIONS) or {}
    if not ann:
        return [], []
    lo = -float("inf") if whole_video else float(row.get(R.START_S) or 0.0) - _TOLERANCE_S
    end = row.get(R.END_S)
    hi = float("inf") if whole_video or end is None else float(end) + _TOLERANCE_S

    def inside(items) -> list[dict]:
        return [x for x in (items or []) if x and x.get("start_s") is not None and x.get("end_s") is not None
                and lo <= x["start_s"] and x["end_s"] <= hi]

    visual, speech = [], []
    if "caption" in sources:
        visual += [ann.get("title") or "", ann.get("description") or "", ", ".join(ann.get("labels") or [])]
    if "events" in sources:
        visual += [c.get("title") or "" for c in inside(ann.get("chapters"))]
        visual += [s.get("text") or "" for s in inside(ann.get("segments"))]
    if "transcript" in sources:
        cues = ann.get("subtitles") if whole_video else \
            holding_midpoint(ann.get("subtitles"), float(row.get(R.START_S) or 0.0), end)
        speech += [s.get("text") or "" for s in (cues or [])]
        if whole_video:
            speech.append(ann.get("transcript") or "")
    return [v for v in visual if v.strip()], [s for s in speech if s.strip()]


def video_texts(row: dict, sources: set[str]) -> tuple[list[str], list[str]]:
    """(visual, speech) a video-scope sample row holds beyond the columns every sample has."""
    visual, speech = annotation_texts(row, sources, whole_video=True)
    if "caption" in sources:
        visual = [c.get("text") or "" for c in (row.get(R.CLIP_CAPTIONS) or []) if c] + \
                 [row.get(R.VIDEO_CAPTION) or ""] + visual
    return [v for v in visual if v.strip()], speech


def pool_by_video(rows: list[dict], sources: set[str]) -> dict:
    """source_uri → (visual, speech): everything the batch's rows know about each video (`scope: video`)."""
    pool: dict = {}
    seen_clips: set = set()
    for r in rows:
        visual, speech = pool.setdefault(r.get(R.SOURCE_URI), ([], []))
        clip = (r.get(R.SOURCE_URI), r.get(R.CLIP_ID))
        if clip not in seen_clips:   # a clip's columns are the same on each of its samples
            seen_clips.add(clip)
            if "caption" in sources:
                visual.append(r.get(R.CAPTION) or "")
            if "events" in sources:
                visual += [e.get("description") or "" for e in (r.get(R.DENSE_EVENTS) or []) if e]
            if "steps" in sources:
                visual += [s.get("text") or "" for s in (r.get(R.CAPTION_STEPS) or []) if s]
            if "transcript" in sources:
                speech += [s.get("text") or "" for s in (r.get(R.TRANSCRIPT_SEGMENTS) or []) if s]
            more_visual, more_speech = video_texts(r, sources)
            visual += more_visual
            speech += more_speech
    return {k: (list(dict.fromkeys(v for v in vis if v.strip())), list(dict.fromkeys(s for s in sp if s.strip())))
            for k, (vis, sp) in pool.items()}


def scope_texts(row: dict, sources: set[str], pool: dict | None) -> tuple[list[str], list[str]]:
    """The texts one sample is checked against beyond its own clip's columns."""
    if pool is not None and row.get(R.SOURCE_URI) in pool:
        visual, speech = pool[row.get(R.SOURCE_URI)]
        return list(visual), list(speech)
    if row.get(R.SAMPLE_SCOPE) == R.SCOPE_VIDEO:
        return video_texts(row, sources)
    return annotation_texts(row, sources)
