"""video_caption: the clip captions of each video merged into one video description (clip → video).

The last floor of hierarchical captioning: the `caption` stage describes each clip (long clips window by
window, merged into the clip caption); this stage merges the clip captions of a video, in time order,
into one description of the whole video. A video with more clips than `group_size` is merged in levels:
consecutive groups of `group_size` parts are merged into one part each (spanning their times), again and
again, until one request can take every part. A video with a single captioned clip gets that caption
without a request (levels 0), unless `merge_single` is set.

Every kept clip row of the video carries the result (`video_caption`, its teacher, model, prompt version,
the merged clip ids in order and the number of levels): the dataset stays one table of clips, and a
video-level view is one `drop_duplicates(video_id)` away.

The stage needs all clips of a video in one batch, so it declares `group_by = SOURCE_URI` and the runner
groups the stream by video before it (a shuffle barrier: the merge cannot start before a video's last
clip is captioned). Requests of one level go to the teacher together, for all videos of the batch.
A failed merge request rejects the video's clips (`teacher_<kind>`, the raw reply kept) unless
`on_error: keep`, which keeps them with no video caption.

Times: a clip caption says its times from the clip's start (the caption prompts give frame times so); each
part is shown to the merge with its times moved to the video's clock by code (`shift_times`), so the merge
prompt's "at 42.0s" examples and the parts agree. A video caption that states a moment past the video's end
(or before its start) is dropped, its clips kept without one, and counted (`video_captions_dropped_time_outside`).
A merge the teacher stopped at `max_tokens` (finish_reason "length") keeps its complete sentences, as the caption
stage keeps a cut caption's (`video_caption_merges_trimmed`); with none, the video gets no caption
(`video_captions_dropped_cut_off`). The random-weight demo model never ends a reply: its noise is left as it is.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from vdata.prompts import complete_sentences, load_prompt, shorten
from vdata.prompts.stated_times import shift_times, stated_times
from vdata.schemas import records as R
from vdata.schemas.config import config_file
from vdata.teachers.tiny_models import is_demo_model

from .base import Reject, Resources, Stage, StageConfig

PROMPT_GROUP, PROMPT_NAME = "caption", "video_merge"
TIME_TOLERANCE_S = 0.5
CLOCK_OF_DAY_FACTOR = 3   # an m:ss time this many times past the video's length is a time of day, not a moment of it
log = logging.getLogger("vdata.stages")


class VideoCaptionConfig(StageConfig):
    teacher: str = "captioner"                  # a name under the run config's `teachers:` (text is enough)
    group_size: int = Field(8, ge=2, le=256)    # parts per merge request; more clips → more levels
    merge_single: bool = False                  # True: a one-clip video is rewritten too (else copied)
    max_part_chars: int = Field(1500, ge=50, le=100000)   # each part's text is cut to this in prompts
    max_tokens: int | None = Field(None, ge=1)  # reply budget per request; None: the teacher's sampling.max_tokens
    sampling: dict[str, Any] = Field(default_factory=dict)
    on_error: Literal["reject", "keep"] = "reject"
    prompt: str | None = None                   # the user's template file (else the shipped video_merge)

    @field_validator("prompt")
    @classmethod
    def _prompt_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        import os

        if value is not None and not os.path.isfile(config_file(value, info)):
            raise ValueError(f"no such file {value!r}")
        return config_file(value, info) if value else None


@dataclass
class Part:
    start_s: float
    end_s: float
    text: str


@dataclass
class VideoJob:
    key: str
    rows: list[dict]                    # the video's live clip rows, in time order
    parts: list[Part]                   # current level's parts
    clip_ids: list[str]
    levels: int = 0
    error: Any = None                   # the failed TeacherResult
    cut_off: bool = False               # a merge stopped at max_tokens before one whole sentence
    done: bool = False
    prompt_ids: dict = field(default_factory=dict)


class VideoCaptionStage(Stage):
    name = "video_caption"
    version = 3   # 2: parts' times moved to the video's clock; a caption stating a time outside the video dropped;
    #               3: a merge stopped at max_tokens keeps its complete sentences (none: no video caption)
    Config = VideoCaptionConfig
    reads = (R.VIDEO_ID, R.CLIP_ID, R.START_S, R.END_S, R.CAPTION)
    writes = R.VIDEO_CAPTION_COLUMNS
    default_resources = Resources(num_cpus=0.5, batch_size=None)
    uses_actors = True
    concurrent_batches = True   # a batch's state is its own jobs: videos are merged side by side
    group_by = R.SOURCE_URI

    def setup(self) -> None:
        self.merger = self.teacher(self.config.teacher)
        self.prompt = load_prompt(PROMPT_GROUP, PROMPT_NAME, override=self.config.prompt)

    def teacher_plan(self, frames_per_clip: int, frame_hw: tuple[int, int]) -> list[dict]:
        # per clip: one part of a merge request whose size is group_size parts (≈ 1/(group_size-1) request)
        per_part = self.config.max_part_chars // 8
        completion = self.config.max_tokens or 256
        return [{"teacher": self.config.teacher, "requests_per_row": 1 / (self.config.group_size - 1),
                 "prompt_tokens": 120 + per_part * self.config.group_size, "completion_tokens": completion}]

    # --- batch: one or more whole videos
    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        jobs, out = [], []
        by_video: dict[str, list[dict]] = {}
        for row in rows:
            by_video.setdefault(row.get(R.SOURCE_URI), []).append(row)
        for key, clips in by_video.items():
            clips.sort(key=lambda r: (r.get(R.START_S) or 0.0, r.get(R.CLIP_ID) or ""))
            captioned = [r for r in clips if (r.get(R.CAPTION) or "").strip()]
            # a clip caption says its times from the clip's start (its prompt asks so); the merge and the video
            # caption say them from the video's: moved here by code, not left to the merging model
            job = VideoJob(key, clips, [Part(float(r[R.START_S]), float(r[R.END_S]),
                                             shift_times(r[R.CAPTION].strip(), float(r[R.START_S])))
                                        for r in captioned], [r[R.CLIP_ID] for r in captioned])
            if not job.parts or (len(job.parts) == 1 and not self.config.merge_single):
                job.done = True   # nothing to merge: no caption, or one clip's caption as it is
            jobs.append(job)
        while True:
            pending = [(job, group) for job in jobs if not job.done for group in self._groups(job)]
            if not pending:
                break
            results = self.merger.generate([self._request(job, group) for job, group in pending])
            merged: dict[str, list[Part]] = {}
            for (job, group), res in zip(pending, results):
                if job.error is not None:
                    continue
                if not res.ok or not (res.text or "").strip():
                    job.error = res
                    continue
                text = res.text.strip()
                if res.finish_reason == "length" and not is_demo_model(self.merger.model_name):
                    # stopped at max_tokens: mid-sentence, it would read as complete in every export (outside
                    # check h20); its complete sentences stand, as the caption stage keeps a cut caption's
                    text = complete_sentences(text)
                    self.counters["video_caption_merges_trimmed" if text else "video_captions_dropped_cut_off"] += 1
                    if not text:
                        job.cut_off = True
                        continue
                merged.setdefault(job.key, []).append(Part(group[0].start_s, group[-1].end_s, text))
            for job in jobs:
                if job.done:
                    continue
                if job.error is not None or job.cut_off:
                    job.done = True
                    continue
                job.parts, job.levels = merged[job.key], job.levels + 1
                job.done = len(job.parts) == 1
        for job in jobs:
            out.extend(self._finish(job))
        return out

    def _groups(self, job: VideoJob) -> list[list[Part]]:
        """This level's merge groups: all parts at once when they fit one request, else consecutive runs."""
        g = self.config.group_size
        if len(job.parts) <= g:
            return [job.parts]
        return [job.parts[i:i + g] for i in range(0, len(job.parts), g)]

    @staticmethod
    def _duration(job: VideoJob) -> float:
        return float(job.rows[0].get(R.DURATION_S) or max(float(r[R.END_S]) for r in job.rows))

    def _time_outside(self, job: VideoJob) -> str | None:
        """The first time the video caption states that lies outside the video (a tolerance of half a second)."""
        duration = self._duration(job)
        for t in stated_times(job.parts[0].text):
            if t.kind not in ("point", "range") or (":" in t.text and t.start_s > CLOCK_OF_DAY_FACTOR * duration):
                continue   # "the race starts at 9:30" in a 36 s video: a clock read or said, a time of day (h19)
            span = t.interval(duration)
            if span is not None and (span[0] < -TIME_TOLERANCE_S or span[1] > duration + TIME_TOLERANCE_S):
                return t.text
        return None

    def _request(self, job: VideoJob, group: list[Part]):
        from vdata.teachers import TeacherRequest

        limit = self.config.max_part_chars
        listing = "\n".join(f"[{p.start_s:.1f}s - {p.end_s:.1f}s] {shorten(p.text, limit)}" for p in group)
        duration = job.rows[0].get(R.DURATION_S) or group[-1].end_s
        text = self.prompt.render(duration=f"{duration:.1f}", num_parts=len(group), parts=listing)
        sampling = dict(self.config.sampling)
        if self.config.max_tokens:
            sampling.setdefault("max_tokens", self.config.max_tokens)
        return TeacherRequest.from_prompt(text, sampling=sampling, prompt_template_version=self.prompt.id)

    def _finish(self, job: VideoJob) -> list[dict | Reject]:
        if job.error is not None and self.config.on_error == "reject":
            res = job.error
            kind = res.error_kind or "empty_reply"
            message = (f"merging the captions of {len(job.clip_ids)} clip(s) into a video caption failed at level "
                       f"{job.levels + 1}: {res.error or 'the teacher answered with no text'}")
            return [self.teacher_reject(r, f"teacher_{kind}", message, res, raw=(res.raw or res.text or "")[:500],
                                teacher=self.config.teacher) for r in job.rows]
        ok = job.error is None and not job.cut_off and len(job.parts) == 1
        if ok and (outside := self._time_outside(job)):
            # a merged caption that places something past the video's end (a part's time copied, or made up)
            # is wrong data: the clips stay, without a video caption, and the count says how often
            self.counters["video_captions_dropped_time_outside"] += 1
            log.warning("video_caption: %s: the merged caption states %r, outside the %.1f s video: dropped",
                        job.key, outside, self._duration(job))
            ok = False
        values = {
            R.VIDEO_CAPTION: job.parts[0].text if ok else None,
            R.VIDEO_CAPTION_TEACHER: self.config.teacher if ok and job.levels else None,
            R.VIDEO_CAPTION_MODEL: self.merger.model_name if ok and job.levels else None,
            R.VIDEO_CAPTION_PROMPT_VERSION: self.prompt.id if ok and job.levels else None,
            R.VIDEO_CAPTION_CLIPS: job.clip_ids if ok else [],
            R.VIDEO_CAPTION_LEVELS: job.levels if ok else None,
        }
        if ok and not job.levels:   # one clip, copied: its own caption provenance applies
            first = next(r for r in job.rows if r[R.CLIP_ID] == job.clip_ids[0])
            values[R.VIDEO_CAPTION_TEACHER] = first.get(R.CAPTION_TEACHER)
            values[R.VIDEO_CAPTION_MODEL] = first.get(R.CAPTION_MODEL)
            values[R.VIDEO_CAPTION_PROMPT_VERSION] = first.get(R.CAPTION_PROMPT_VERSION)
        return [{**r, **values} for r in job.rows]
