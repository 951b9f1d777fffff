"""single_frame: single-frame answerability — can one frame answer a video question?

A question that a vision model answers from one frame tests appearance, not the video: such items
inflate video benchmarks (the "single-frame bias" of Lei et al., ACL 2023; Buch et al.'s atemporal
probe, CVPR 2022; MVBench keeps only questions that need time). `blind` asks with no visual at all;
this stage asks with exactly one frame.

Each multiple-choice sample (a task in `tasks`, at least two options, a valid answer index) is put to a
vision teacher with one frame and the question. The frame is the middle of the sample's evidence, the
longest of its `answer_spans` (CG-Bench clues, grounded QA), else the middle of its clip (the whole
video for video-scope samples). It is taken from the row's stored `frames` when it has them (the
nearest one), else decoded from the source video, opened once per batch for all its samples.
`attempts` tries (default: one per option), the options rotated so the correct one sits at a different
place each time and the reply constrained to one option's text, as `blind` does: a model that reads
nothing from the frame scores ≈ 1/k.

Writes `v_single_frame_correct` (the share of attempts answered right; null for samples that are not
checked) and `v_single_frame_time_s` (the frame's time, video-absolute). Above
`max_single_frame_correct` the sample is rejected as `single_frame_answerable`; with `null` the share
is a flag only. Stored shares re-threshold without a teacher:
`vdata rethreshold OUT --set single_frame.max_single_frame_correct=0.25`.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import Field

from vdata.media.images import decode_jpeg
from vdata.prompts import load_prompt
from vdata.schemas import records as R

from .base import Reject, Resources, Stage, StageConfig


class SingleFrameConfig(StageConfig):
    scope: Literal["clip", "video"] = "clip"     # accepted at both: the frame's time says where it is
    teacher: str                                 # a vision teacher (the frame is sent as an image)
    attempts: int | None = Field(None, ge=1, le=16)   # None: one per option (every position once)
    tasks: list[str] = Field(default_factory=lambda: ["mcq", "label_mcq", "cot"])
    max_single_frame_correct: float | None = Field(0.5, ge=0, le=1)   # None: flag only
    max_side: int = Field(448, ge=64)            # the frame's long side (decoded frames)
    backend: str = "auto"                        # frame reader (vdata.media.reader.open_reader)
    max_tokens: int = Field(48, ge=4)
    prompt: str | None = None                    # a template file replacing the shipped one

    @property
    def use_frames(self) -> bool:
        """Always sends an image: `vdata plan` / `validate` then require a teacher that takes images."""
        return True


def frame_time(row: dict) -> float | None:
    """The middle of the longest answer span, else of the row's clip (or video); None without times."""
    spans = [(float(s["start_s"]), float(s["end_s"])) for s in row.get(R.ANSWER_SPANS) or []
             if s and s.get("start_s") is not None and s.get("end_s") is not None and s["end_s"] >= s["start_s"]]
    if spans:
        a, b = max(spans, key=lambda s: s[1] - s[0])
        return (a + b) / 2
    start, end = row.get(R.START_S), row.get(R.END_S)
    if start is None or end is None:
        return None
    return (float(start) + float(end)) / 2


def checked_mcq(row: dict, tasks) -> bool:
    opts, idx = row.get(R.OPTIONS) or [], row.get(R.ANSWER_INDEX)
    return (row.get(R.TASK) in tasks and len(opts) >= 2 and idx is not None and 0 <= idx < len(opts)
            and bool((row.get(R.QUESTION) or "").strip()))


class SingleFrameStage(Stage):
    name = "single_frame"
    version = 2   # 2: HDR video tone mapped
    Config = SingleFrameConfig
    reads = (R.SAMPLE_ID, R.TASK, R.QUESTION, R.OPTIONS, R.ANSWER_INDEX, R.PATH, R.START_S, R.END_S)
    writes = (R.V_SINGLE_FRAME_CORRECT, R.V_SINGLE_FRAME_TIME_S)
    default_resources = Resources(num_cpus=0.5, batch_size=16)
    uses_actors = True
    is_filter = True

    @classmethod
    def grouping(cls, config) -> str | None:
        return cls.group_by   # per sample at either scope

    def setup(self) -> None:
        # the run's shared, request-cached teacher (as blind does); its stats reach the manifest
        self.teacher = Stage.teacher(self, self.config.teacher)
        self.prompt = load_prompt("verify", "single_frame_mcq", override=self.config.prompt)

    def frame(self, row: dict, t: float):
        """(time, image) nearest to `t` for one row (see `frames`); raises when it cannot be read."""
        (got,) = self.frames([(row, t)])
        if isinstance(got, Exception):
            raise got
        return got

    def frames(self, wanted: list[tuple[dict, float]]) -> list:
        """(time, image) nearest to each (row, time), or the exception that kept it from being read: a
        stored JPEG frame when the row has frames, else decoded, each source video opened once for all
        the rows of the batch that need it (opening costs more than decoding one frame)."""
        from vdata.media.reader import open_reader

        cfg = self.config
        out: list = [None] * len(wanted)
        by_path: dict[str, list[int]] = defaultdict(list)
        for i, (row, t) in enumerate(wanted):
            stored = [f for f in row.get(R.FRAMES) or [] if f and f.get(R.FRAME_JPEG)]
            if stored:
                best = min(stored, key=lambda f: abs(float(f[R.FRAME_TIMESTAMP_S]) - t))
                out[i] = (float(best[R.FRAME_TIMESTAMP_S]), decode_jpeg(best[R.FRAME_JPEG]))
            else:
                by_path[row.get(R.PATH)].append(i)
        for path, idx in by_path.items():
            idx = sorted(idx, key=lambda i: wanted[i][1])   # in time order: one forward pass
            try:
                with open_reader(path, cfg.backend, purpose="sparse", max_side=cfg.max_side) as reader:
                    got = reader.read_at([wanted[i][1] for i in idx], max_side=cfg.max_side)
                for i, (t, image) in zip(idx, got):
                    out[i] = (float(t), image)
            except Exception as e:   # an unreadable video is its rows' reject, not the batch's
                for i in idx:
                    out[i] = e
        return out

    def attempts_for(self, row: dict, image) -> list[tuple]:
        """[(request, position of the correct option)] — the options rotated once per attempt."""
        from vdata.teachers import TeacherRequest

        cfg = self.config
        opts, idx = list(row[R.OPTIONS]), row[R.ANSWER_INDEX]
        k = len(opts)
        out = []
        for r in range(cfg.attempts or k):
            shift = r % k
            rotated = opts[-shift:] + opts[:-shift] if shift else list(opts)   # correct → (idx + shift) % k
            schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": list(dict.fromkeys(rotated))}},
                      "required": ["answer"], "additionalProperties": False}
            text = self.prompt.render(question=row[R.QUESTION].strip(), options="\n".join(f"- {o}" for o in rotated))
            req = TeacherRequest.from_prompt(text, images=[image], json_schema=schema, schema_name="single_frame_answer",
                                             sampling={"max_tokens": cfg.max_tokens, "temperature": 0.0},
                                             prompt_template_version=self.prompt.id)
            out.append((req, opts[idx]))
        return out

    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        cfg = self.config
        checked = [row for row in rows if checked_mcq(row, cfg.tasks) and frame_time(row) is not None]
        images = dict(zip(map(id, checked), self.frames([(row, frame_time(row)) for row in checked])))
        plans, requests = [], []
        for row in rows:
            if not checked_mcq(row, cfg.tasks):
                plans.append((row, None, []))
                continue
            got = images.get(id(row), ValueError("the sample has no clip interval and no answer span to take a "
                                                 "frame from"))
            try:
                if isinstance(got, Exception):
                    raise got
                tries = self.attempts_for(row, got[1])
            except Exception as e:
                plans.append((row, None, e))
                continue
            plans.append((row, got[0], tries))
            requests.extend(req for req, _ in tries)
        results = self.teacher.generate(requests) if requests else []
        out: list[dict | Reject] = []
        k = 0
        for row, got, tries in plans:
            if isinstance(tries, Exception):
                out.append(self.error_reject(row, tries))
                continue
            row = dict(row)
            if not tries:
                row[R.V_SINGLE_FRAME_CORRECT] = None
                row[R.V_SINGLE_FRAME_TIME_S] = None
                out.append(row)
                continue
            res = results[k: k + len(tries)]
            k += len(tries)
            answered = [(r, target) for r, (_, target) in zip(res, tries) if r.ok]
            if not answered:
                out.append(self.teacher_reject(row, "teacher_error", f"single-frame check: every attempt failed: "
                                               f"{res[0].error}", res, errors=[r.error for r in res][:3]))
                continue
            n_ok = sum(((r.parsed or {}).get("answer") or "").strip() == target.strip() for r, target in answered)
            share = n_ok / len(answered)
            row[R.V_SINGLE_FRAME_CORRECT] = share
            row[R.V_SINGLE_FRAME_TIME_S] = got
            limit = cfg.max_single_frame_correct
            if limit is not None and share > limit:
                out.append(self.reject(row, "single_frame_answerable",
                                       f"answerable from one frame: the vision teacher answered {n_ok}/{len(answered)} "
                                       f"attempts correctly from the frame at {got:.2f}s (v_single_frame_correct "
                                       f"{share:.2f} > {limit})", v_single_frame_correct=share, frame_time_s=got,
                                       max_single_frame_correct=limit,
                                       replies=[(r.parsed or {}).get("answer") for r, _ in answered][:8]))
            else:
                out.append(row)
        return out
