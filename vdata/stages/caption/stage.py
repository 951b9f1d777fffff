"""CaptionStage: builds each clip from its row, runs the configured strategy for every clip of a batch in
the clip pool, and turns what fails into rejects."""
from __future__ import annotations

import json
import logging
from collections import Counter

from vdata.prompts import Prompt, load_prompt
from vdata.schemas import records as R

from ..base import Reject, Resources, Stage
from .common import (CUT_REASON, Captioner, Clip, CutReply, Frame, RowReject, thin_evenly, transcript_lines,
                     transcript_source,
                     video_context_lines)
from .config import PROMPT_GROUP, PROMPT_NAMES, CaptionConfig
from .demo import is_demo_model
from .dense import dense
from .differential import differential
from .multi_frame import multi_frame
from .multi_teacher import multi_teacher
from .scheduler import ClipPool, ScheduleStats, TeacherFailure
from .structured import structured, structured_video

log = logging.getLogger("vdata.caption")

STRATEGY_FUNCTIONS = {"multi_frame": multi_frame, "differential": differential, "dense": dense,
                      "multi_teacher": multi_teacher, "structured": structured}


class CaptionStage(Stage):
    name = "caption"
    # 2: dense events checked against their own window, duplicates kept once; 3: a prose reply cut at
    # max_tokens keeps its complete sentences, or rejects its clip when it has none (it was kept whole, cut
    # mid-sentence); the video's title/description in multi_frame; 4: dense events shorter than
    # `dense.min_event_s` (or zero-length) and events repeating another's times dropped, counted
    version = 4
    HUB_MODEL_FIELDS = ("multi_teacher.embedding_model", "multi_teacher.similarity_model")
    needs_video = True
    Config = CaptionConfig
    reads = (R.CLIP_ID, R.START_S, R.END_S, R.FRAMES)
    # `use_frames: false` sends no frame: the speech is its input, from the asr stage or the subtitles the
    # input carries (annotations); a clip with neither is rejected `no_speech`
    SPEECH_READS = (R.CLIP_ID, R.START_S, R.END_S)
    writes = (*R.CAPTION_COLUMNS, R.CAPTION_FIELDS)
    default_resources = Resources(num_cpus=1, batch_size=64)
    uses_actors = True

    def __init__(self, config: CaptionConfig, ctx):
        super().__init__(config, ctx)
        if not self.config.use_frames:   # the columns this config reads (the plan checks them); no video decoded
            self.reads = self.SPEECH_READS
            self.needs_video = False
        self.teachers: dict = {}
        self._owned: set[str] = set()      # teachers this stage built (and closes)
        self.prompts: dict[str, Prompt] = {}
        self._embedder = None
        self.last_schedule: ScheduleStats | None = None
        self.trimmed: Counter = Counter()   # step -> replies kept to their last complete sentence

    @classmethod
    def grouping(cls, config: CaptionConfig) -> str | None:
        """Structured captions with the previous scene as context need every clip of a video in one batch."""
        if config.strategy == "structured" and config.structured.previous_scene:
            return R.SOURCE_URI
        return super().grouping(config)

    def teacher_plan(self, frames_per_clip: int, frame_hw: tuple[int, int]) -> list[dict]:
        """Requests and tokens per clip by strategy (see Stage.teacher_plan); a model-free estimate."""
        from vdata.teachers.accounting import image_tokens

        c = self.config
        n = max(1, min(c.max_frames, frames_per_clip or c.max_frames)) if c.use_frames else 0
        windows = -(-n // c.window_frames) if c.window_frames and n > c.window_frames else 1
        per_image = image_tokens(*frame_hw) + 12          # + the timestamp line each frame gets
        # the template (~90 tokens) plus, when speech is included, a quarter of its budget on average
        text = 90 + (c.transcript_max_chars // 4 // 4 if c.transcript else 0)
        out_tokens = c.max_tokens or 256

        def row(teacher, requests, images):
            return {"teacher": teacher, "requests_per_row": requests,
                    "prompt_tokens": int(text + images * per_image), "completion_tokens": out_tokens}
        merge = 1 if windows > 1 else 0
        if c.strategy in ("multi_frame", "dense", "structured"):
            plan = [row(c.teacher, windows, -(-n // windows))]
            if merge:
                plan.append(row(c.teacher, merge, 0))
            return plan
        if c.strategy == "differential":
            plan = [row(c.teacher, n, 2)]   # each step sees the keyframe (and the first one)
            if c.differential.summarize:
                plan.append(row(c.teacher, windows, 0))
            return plan
        mt = c.multi_teacher
        names = mt.teachers or [c.teacher]
        plan = [row(t, mt.samples_per_teacher, n) for t in names]
        if mt.selector == "judge":
            plan.append(row(mt.judge or c.teacher, 1, n))
        return plan

    def describe(self) -> str:
        """The plan line: the settings of the chosen strategy only."""
        unused = {"differential", "dense", "multi_teacher", "structured", "resources"} - {self.config.strategy}
        return json.dumps(self.config.model_dump(exclude=unused, mode="json"), sort_keys=True)

    # ---------------------------------------------------------------- setup
    def teacher_names(self) -> list[str]:
        c = self.config
        names = [c.teacher]
        if c.strategy == "multi_teacher":
            names = list(c.multi_teacher.teachers or [c.teacher])
            if c.multi_teacher.selector == "judge":
                names.append(c.multi_teacher.judge or c.teacher)
        return list(dict.fromkeys(names))

    def use_teachers(self, teachers: dict) -> None:
        """Attach already-built teachers by name (shared engines, e.g. one engine for many stages);
        `setup()` builds only the ones missing, and `close()` leaves attached ones open."""
        self.teachers.update(teachers)

    def setup(self) -> None:
        from vdata.schemas.config import ConfigError

        c = self.config
        defined = self.ctx.teachers or {}
        for key, name in self.teacher_refs():
            if name not in defined and name not in self.teachers:
                raise ConfigError(f"stages.caption.{key}: no teacher {name!r} under `teachers:` "
                                  f"(defined: {', '.join(sorted(defined)) or 'none'})")
        self.prompts = {n: load_prompt(PROMPT_GROUP, n, override=c.prompts.get(n)) for n in PROMPT_NAMES}
        try:
            for name in self.teacher_names():
                if name in self.teachers:
                    continue
                # built once per worker through the run's request cache; reported in the manifest
                teacher = self.teacher(name)
                self.teachers[name] = teacher
                self._owned.add(name)
                if hasattr(teacher, "start"):      # offline engines load here, once, not on the first clip
                    teacher.start()
            for name in self.teacher_names():
                if is_demo_model(self.teachers[name].model_name):
                    log.warning("caption: teacher %r runs a demo-size random model (%s): its captions are "
                                "placeholder text, useful only to exercise the pipeline", name,
                                self.teachers[name].model_name)
            if c.strategy == "multi_teacher" and c.multi_teacher.selector == "agreement":
                from vdata.teachers.packaged import PACKAGED_MINILM, load_text_embedder

                encoder = load_text_embedder(c.multi_teacher.embedding_model or PACKAGED_MINILM)
                self._embedder = lambda texts: encoder.encode(texts, normalize_embeddings=True, show_progress_bar=False)
            elif c.strategy == "multi_teacher" and c.multi_teacher.selector == "similarity":
                from vdata.teachers.vision_text import VisionTextModel

                self._embedder = VisionTextModel(c.multi_teacher.similarity_model)   # once per worker
        except BaseException:
            self.close()
            raise

    def teacher_refs(self) -> list[tuple[str, str]]:
        """(config key, teacher name) for every teacher this stage's config names — for checking a run
        config's `teachers:` before anything starts."""
        c = self.config
        if c.strategy != "multi_teacher":
            return [("teacher", c.teacher)]
        refs = [(f"multi_teacher.teachers[{i}]", n) for i, n in enumerate(c.multi_teacher.teachers)]
        if not c.multi_teacher.teachers:
            refs.append(("teacher", c.teacher))
        if c.multi_teacher.selector == "judge":
            refs.append(("multi_teacher.judge" if c.multi_teacher.judge else "teacher", c.multi_teacher.judge or c.teacher))
        return refs

    def close(self) -> None:
        """Stop the teachers this stage built (managed servers, engines); attached ones stay open."""
        owned, self._owned = self._owned, set()
        teachers = [self.teachers.pop(n) for n in owned if n in self.teachers]
        built = self.__dict__.get("_teachers", {})     # Stage.teacher()'s per-worker registry
        for n in owned:
            built.pop(n, None)
        for t in teachers:
            try:
                t.close()
            except Exception as e:  # pragma: no cover - best effort
                log.warning("caption: closing teacher %s: %s", t.name, e)

    def stats(self) -> dict:
        """Per-teacher accounting (requests, failures, tokens, latency) and the last batch's schedule."""
        sched = self.last_schedule
        return {"teachers": {n: t.stats() for n, t in self.teachers.items()},
                # replies stopped at max_tokens and kept to their last complete sentence, by step
                "trimmed_at_max_tokens": dict(self.trimmed),
                "schedule": None if sched is None else {
                    "mode": sched.mode, "max_in_flight": sched.max_in_flight, "clips": sched.clips,
                    "requests": sched.requests, "peak_outstanding": sched.peak_outstanding,
                    "rounds": len(sched.round_sizes)}}

    def active_teachers(self) -> dict:
        return {n: self.teachers[n] for n in self.teacher_names()}

    def scheduler_mode(self) -> str:
        if self.config.scheduler != "auto":
            return self.config.scheduler
        return "rounds" if any(t.backend == "vllm" for t in self.active_teachers().values()) else "threads"

    # ---------------------------------------------------------------- batch
    def process_batch(self, rows: list[dict]) -> list:
        pool = ClipPool(self.active_teachers(), self.config.max_in_flight, self.scheduler_mode())  # type: ignore[arg-type]
        cap = Captioner(self.config, self.prompts, self.teachers, pool, self.reject, self._embedder)
        if self.config.strategy == "structured" and self.config.structured.previous_scene:
            return self._scene_chains(rows, pool, cap)
        strategy = STRATEGY_FUNCTIONS[self.config.strategy]
        outcomes: list = [None] * len(rows)
        works, slots = [], []
        for i, row in enumerate(rows):
            try:
                clip = self._clip(row)
            except Exception as e:
                outcomes[i] = self.error_reject(row, e)
                continue
            if isinstance(clip, Reject):
                outcomes[i] = clip
                continue
            works.append((lambda clip=clip: strategy(cap, clip), lambda exc, row=row: self._failure(row, exc)))
            slots.append(i)
        for i, outcome in zip(slots, pool.run(works)):
            outcomes[i] = outcome
        self.last_schedule = pool.stats
        self.trimmed.update(cap.trimmed)
        if cap.undecided:   # in the manifest's stages[].counters
            self.counters["agreement_undecided"] += cap.undecided
        return outcomes

    def _scene_chains(self, rows: list[dict], pool: ClipPool, cap: Captioner) -> list:
        """One chain per video (clips in time order, each captioned after the one before it); the pool
        keeps `max_in_flight` videos going side by side. Outcomes come back in the input order."""
        videos: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            videos.setdefault(str(row.get(R.SOURCE_URI) or row.get(R.VIDEO_ID) or i), []).append(i)
        works, order = [], []
        for idx in videos.values():
            idx = sorted(idx, key=lambda i: (float(rows[i][R.START_S]), float(rows[i][R.END_S])))
            clips = []
            for i in idx:
                try:
                    clips.append(self._clip(rows[i]))
                except Exception as e:
                    clips.append(self.error_reject(rows[i], e))
            works.append((lambda clips=clips: structured_video(cap, clips, self._failure),
                          lambda exc, idx=idx: [self.error_reject(rows[i], exc) for i in idx]))
            order.append(idx)
        outcomes: list = [None] * len(rows)
        for idx, chain in zip(order, pool.run(works)):
            for i, outcome in zip(idx, chain):
                outcomes[i] = outcome
        self.last_schedule = pool.stats
        self.trimmed.update(cap.trimmed)
        return outcomes

    def _failure(self, row: dict, exc: BaseException) -> Reject:
        if isinstance(exc, CutReply):   # the teacher answered; the budget (the config's) was too small
            return self.reject(row, CUT_REASON, f"caption: the reply of teacher {exc.call.teacher!r} at "
                               f"{exc.call.step} was cut at max_tokens={exc.max_tokens} (finish_reason \"length\"): "
                               f"a cut caption is not kept; raise caption.max_tokens", teacher=exc.call.teacher,
                               step=exc.call.step, max_tokens=exc.max_tokens, raw=exc.result.text,
                               finish_reason=exc.result.finish_reason)
        if isinstance(exc, TeacherFailure):
            res = exc.result
            kind = res.error_kind or "error"
            return self.teacher_reject(row, f"teacher_{kind}", f"caption: teacher {exc.call.teacher!r} failed at "
                                       f"{exc.call.step}: {res.error}", res, teacher=exc.call.teacher,
                                       step=exc.call.step, error=res.error,
                                       raw=res.raw if res.raw is not None else res.text,
                                       attempts=res.attempts, finish_reason=res.finish_reason)
        if isinstance(exc, RowReject):
            return exc.reject
        return self.error_reject(row, exc)

    def _clip(self, row: dict) -> Clip | Reject:
        c = self.config
        start, end = float(row[R.START_S]), float(row[R.END_S])
        duration = max(0.0, end - start)
        items = [f for f in (row.get(R.FRAMES) or []) if f and f.get(R.FRAME_JPEG)] if c.use_frames else []
        if not items and c.use_frames:
            return self.reject(row, "no_frames", "caption: the clip has no frames (run the frames stage first)")
        items.sort(key=lambda f: f[R.FRAME_TIMESTAMP_S])
        frames = [Frame(float(f[R.FRAME_TIMESTAMP_S]), min(max(float(f[R.FRAME_TIMESTAMP_S]) - start, 0.0), duration),
                        bytes(f[R.FRAME_JPEG])) for f in thin_evenly(items, c.max_frames)]
        transcript = ""
        if c.transcript and c.transcript_max_chars:
            lines = transcript_lines(row, start, c.transcript_max_chars)
            transcript = self.prompts["transcript"].render(lines=lines, source=transcript_source(row)) if lines else ""
        if not c.use_frames and not transcript:
            return self.reject(row, "no_speech", "caption: use_frames is false and the clip has no speech to "
                               "caption from (run the asr stage first, or the clip is silent)")
        clip = Clip(row, start, duration, frames, transcript, row.get(R.FPS))
        if transcript:
            clip.prompt_ids[self.prompts["transcript"].id] = None
        # only the multi_frame template has a place for it (structured has its own title; speech-only captions
        # are written from the speech); a row with neither title nor description renders as before
        if c.strategy in ("multi_frame", "multi_teacher") and c.use_frames and c.video_context_chars:
            lines = video_context_lines(row, c.video_context_chars)
            if lines:
                clip.video = self.prompts["video_context"].render(lines=lines)
                clip.prompt_ids[self.prompts["video_context"].id] = None
        return clip
