"""The caption stage: four strategies on real teachers (a tiny random Qwen2.5-VL on the CPU vLLM engine,
and the same model behind `vllm serve` for the openai backend), the per-clip scheduler, timestamp
validation, candidate selection, failures as rejects, and one run through the runner.

The model's weights are random: tests assert structure, order, bounds and bookkeeping, never text.
"""
from __future__ import annotations

import importlib.util
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from caption_conftest import (  # noqa: F401  (fixtures)
    clip_rows,
    cut_clips,
    managed_teacher_config,
    openai_teacher_config,
    tiny_vlm_dir,
    vllm_teacher_config,
    with_transcript,
)
from pydantic import ValidationError

from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages.base import Reject, RunContext
from vdata.stages.caption import (
    CAMERA_MOVEMENTS,
    DENSE_EVENTS_DROPPED,
    DENSE_TIMESTAMPS_REPAIRED,
    SHOT_TYPES,
    Call,
    CaptionConfig,
    CaptionStage,
    ClipPool,
    TeacherFailure,
    agreement_scores,
    check_events,
    settle,
    thin_evenly,
    transcript_lines,
    windows_of,
)
from fault_proxy import FaultProxy
from vdata.teachers import RequestCache, TeacherRequest, TeacherResult, build_teacher

needs_engine = [pytest.mark.slow, pytest.mark.vllm,
                pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM not installed")]


class SlowClipProxy(FaultProxy):
    """The fault proxy, plus one injected fault: requests whose body carries `marker` (one clip's
    prompts) wait before going upstream until `gate` is set — a slow clip."""

    def __init__(self, upstream: str, marker: bytes):
        super().__init__(upstream, faults={})
        self.marker, self.gate, self.held_marked = marker, threading.Event(), 0

    def _forward(self, h, method, body):
        if self.marker in body and not self.gate.is_set():
            with self._lock:
                self.held_marked += 1
            self.gate.wait(600)
        return super()._forward(h, method, body)


def make_stage(cfg: dict, teachers: dict | None = None, attach: dict | None = None, cache_dir: str = "") -> CaptionStage:
    stage = CaptionStage(CaptionConfig(**cfg), RunContext(output_dir="", teachers=teachers or {}, cache_dir=cache_dir))
    if attach:
        stage.use_teachers(attach)
    stage.setup()
    return stage


def with_frames(row: dict, n: int) -> dict:
    return {**row, R.FRAMES: row[R.FRAMES][:n]}


def check_row(row, clip: dict, stage: CaptionStage, teacher: str | None = None):
    """What every kept caption row must satisfy, whatever the strategy."""
    assert isinstance(row, dict), f"rejected: {getattr(row, 'reason', '')} {getattr(row, 'message', '')}"
    assert isinstance(row[R.CAPTION], str) and row[R.CAPTION].strip()
    assert row[R.CAPTION_STRATEGY] == stage.config.strategy
    if teacher:
        assert row[R.CAPTION_TEACHER] == teacher
    assert row[R.CAPTION_MODEL] == stage.teachers[row[R.CAPTION_TEACHER]].model_name
    ids = row[R.CAPTION_PROMPT_VERSION].split(",")
    assert ids and all(i.startswith("caption/") and ("@v" in i or "@file:" in i) for i in ids)
    frame_ts = [f[R.FRAME_TIMESTAMP_S] for f in clip[R.FRAMES]]
    used = row[R.CAPTION_FRAME_TIMESTAMPS]
    assert used and set(used) <= set(frame_ts) and used == sorted(used)
    assert all(clip[R.START_S] <= t <= clip[R.END_S] for t in used)
    # the row fits the stage's declared output schema exactly (types of steps, events, candidates)
    schema = R.schema_for(CaptionStage.output_columns(list(clip)))
    table = pa.Table.from_pylist([row], schema=schema)
    assert table.num_rows == 1
    return ids


# ================================================================================ no model needed
def test_check_events_clamps_within_tolerance_and_drops_beyond():
    raw = [
        {"start_s": 9.0, "end_s": 10.4, "description": "late end, within tolerance"},
        {"start_s": -0.3, "end_s": 2.0, "description": "early start, within tolerance"},
        {"start_s": 3.0, "end_s": 12.0, "description": "end far outside"},
        {"start_s": 5.0, "end_s": 4.0, "description": "ends before it starts"},
        {"start_s": 1.0, "end_s": 1.5, "description": "fine"},
        {"start_s": "x", "end_s": 1.0, "description": "not a number"},
    ]
    out = check_events(raw, duration_s=10.0, tolerance_s=0.5)
    assert out.repaired == 2 and out.dropped == 3
    assert [e[2] for e in out.events] == ["early start, within tolerance", "fine", "late end, within tolerance"]
    assert out.events[0][:2] == (0.0, 2.0) and out.events[2][:2] == (9.0, 10.0)
    assert all(0.0 <= a <= b <= 10.0 for a, b, _ in out.events)
    assert len(out.problems) == 3 and any("12s is outside" in p for p in out.problems)
    strict = check_events(raw[:2], duration_s=10.0, tolerance_s=0.0)
    assert strict.repaired == 0 and strict.dropped == 2 and not strict.events


def test_thinning_and_windows_keep_order_and_ends():
    items = list(range(10))
    assert thin_evenly(items, 4) == [0, 3, 6, 9]
    assert thin_evenly(items, 20) == items and thin_evenly(items, 1) == [5]
    assert windows_of(items, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert windows_of(items, 0) == [items] and windows_of(items, 10) == [items]


def _dead_teacher():
    """A real HTTP teacher with nothing listening on its port: every request fails fast (connection refused)."""
    return build_teacher("dead", openai_teacher_config("http://127.0.0.1:9/v1", max_retries=0, timeout_s=5))


@pytest.mark.parametrize("mode", ["rounds", "threads"])
def test_pool_gather_runs_every_branch_and_settle_keeps_failures(mode):
    """Strategies are coroutines on the pool: `gather` lets every branch finish, then raises the first
    failure in list order; `settle` turns a failure into a value; what escapes a clip goes to on_error."""
    dead = _dead_teacher()
    pool = ClipPool({"dead": dead}, max_in_flight=2, mode=mode)

    def ask(step):
        return pool.ask(Call("dead", TeacherRequest.from_prompt(f"say {step}"), step))

    async def settled():
        first = await settle(ask("a"))
        rest = await pool.gather([settle(ask("b")), settle(ask("c"))])
        return [first, *rest]

    async def unsettled():
        await pool.gather([ask("x"), ask("y")])
        return "never"

    try:
        out = pool.run([(settled, lambda e: ("error", e)), (unsettled, lambda e: ("error", e)),
                        (settled, lambda e: ("error", e))])
    finally:
        dead.close()
    for values in (out[0], out[2]):
        assert [f.call.step for f in values] == ["a", "b", "c"]
        assert all(isinstance(f, TeacherFailure) and f.result.error_kind == "connection" for f in values)
    assert out[1][0] == "error" and isinstance(out[1][1], TeacherFailure) and out[1][1].call.step == "x"
    assert pool.stats.requests == 3 + 2 + 3 and pool.stats.clips == 3
    if mode == "rounds":
        # two clips at a time; a round goes out when every active clip waits: (a, x, y); clip 2 fails
        # and clip 3 starts before the next round: (b, c, a of clip 3); then (b, c) of clip 3
        assert pool.stats.round_sizes == [3, 3, 2]


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ValidationError, match="multi_teacher.teachers"):
        CaptionConfig(strategy="multi_teacher")                       # one candidate: nothing to select
    with pytest.raises(ValidationError, match="multi_teacher.similarity_model"):
        CaptionConfig(strategy="multi_teacher", multi_teacher={"samples_per_teacher": 2, "selector": "similarity"})
    with pytest.raises(ValidationError, match="prompts.nonsense: unknown template"):
        CaptionConfig(prompts={"nonsense": str(tmp_path)})
    with pytest.raises(ValidationError, match="prompts.dense: no such file"):
        CaptionConfig(prompts={"dense": str(tmp_path / "missing.txt")})
    with pytest.raises(ConfigError, match=r"stages\[1\].caption.*strategy"):
        parse_config({"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "o")},
                      "stages": [{"probe": {}}, {"caption": {"strategy": "poetry"}}]})
    stage = CaptionStage(CaptionConfig(teacher="nope"), RunContext(output_dir="", teachers={"cap": {}}))
    with pytest.raises(ConfigError, match=r"stages.caption.teacher: no teacher 'nope'.*defined: cap"):
        stage.setup()
    judge = CaptionStage(CaptionConfig(strategy="multi_teacher", teacher="cap",
                                       multi_teacher={"samples_per_teacher": 2, "selector": "judge", "judge": "j"}),
                         RunContext(output_dir="", teachers={"cap": {}}))
    with pytest.raises(ConfigError, match="multi_teacher.judge: no teacher 'j'"):
        judge.setup()


@pytest.mark.parametrize("name", ["caption_gpu_vllm.yaml", "caption_openai_endpoint.yaml"])
def test_shipped_caption_configs_validate(name, monkeypatch):
    from vdata.schemas.config import load_config
    from vdata.teachers import parse_teachers_config

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cfg = load_config(os.path.join(os.path.dirname(__file__), "..", "configs", name))
    teachers = parse_teachers_config(cfg.teachers)
    (caption,) = [c for n, c in cfg.stage_specs if n == "caption"]
    stage = CaptionStage(caption, RunContext(output_dir="", teachers=cfg.teachers))
    assert {t for _, t in stage.teacher_refs()} <= set(teachers)


def test_transcript_lines_are_clip_relative_and_bounded():
    row = {R.START_S: 10.0, R.TRANSCRIPT_SEGMENTS: [
        {"start_s": 10.5, "end_s": 12.0, "clip_start_s": 0.5, "clip_end_s": 2.0, "text": " hello there ", "words": []},
        {"start_s": 12.0, "end_s": 13.0, "clip_start_s": 2.0, "clip_end_s": 3.0, "text": "", "words": []}]}
    assert transcript_lines(row, 10.0, 1000) == "[0.5s-2.0s] hello there"
    assert len(transcript_lines(row, 10.0, 8)) == 8
    assert transcript_lines({R.TRANSCRIPT_TEXT: "just text"}, 0.0, 100) == "just text"
    assert transcript_lines({}, 0.0, 100) == ""


def test_agreement_prefers_the_candidate_the_others_agree_with():
    from vdata.teachers.packaged import PACKAGED_MINILM, load_text_embedder, resolve_model

    assert os.path.isfile(os.path.join(resolve_model(PACKAGED_MINILM), "model.safetensors"))
    model = load_text_embedder()
    texts = ["A brown dog runs across a grassy park.", "A dog is running over the grass in a park.",
             "A dog sprints through a park on the lawn.", "Stock prices fell sharply on Monday."]
    scores = agreement_scores(texts, lambda t: model.encode(t, normalize_embeddings=True))
    assert min(range(4), key=scores.__getitem__) == 3
    assert all(-1.0 <= s <= 1.0 for s in scores) and min(scores[:3]) > scores[3] + 0.2


def test_text_embedder_goes_to_the_gpu_this_process_has(monkeypatch):
    import torch

    from vdata.teachers.packaged import embedding_device, load_text_embedder

    assert embedding_device("cpu") == "cpu" and embedding_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)    # what a GPU worker sees
    assert embedding_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # a Ray worker given no GPU sees none
    assert embedding_device() == "cpu"
    assert load_text_embedder().device.type == "cpu"


def test_demo_teacher_model_is_built_once_and_known_as_demo(tiny_vlm_dir):
    from vdata.stages.caption import DEMO_SERVED_NAME, ensure_tiny_vlm
    from vdata.stages.caption import is_demo_model as _is_demo_model

    before = {p.name: p.stat().st_mtime_ns for p in tiny_vlm_dir.iterdir() if p.is_file()}
    assert ensure_tiny_vlm(tiny_vlm_dir) == tiny_vlm_dir          # stamped: reused, not rebuilt
    after = {p.name: p.stat().st_mtime_ns for p in tiny_vlm_dir.iterdir() if p.is_file()}
    assert after == before                                          # no file was written again
    assert (tiny_vlm_dir / "config.json").is_file() and (tiny_vlm_dir / "chat_template.jinja").is_file()
    assert _is_demo_model(str(tiny_vlm_dir)) and _is_demo_model(DEMO_SERVED_NAME)
    assert not _is_demo_model("Qwen/Qwen2.5-VL-7B-Instruct") and not _is_demo_model(str(tiny_vlm_dir.parent))


def test_teacher_failure_rejects_the_clip_with_reason_and_detail(cut_clips):
    """A real connection failure (nothing listens on the port): the clip becomes a reject, the batch goes on."""
    dead = build_teacher("cap", openai_teacher_config("http://127.0.0.1:9/v1", max_retries=0, timeout_s=5))
    stage = make_stage({"teacher": "cap"}, attach={"cap": dead})
    try:
        no_frames = {**cut_clips[1], R.FRAMES: []}
        out = stage.process_batch([cut_clips[0], no_frames])
    finally:
        dead.close()
    assert isinstance(out[0], Reject) and out[0].reason == "teacher_connection"
    assert out[0].detail["teacher"] == "cap" and out[0].detail["step"] == "multi_frame"
    assert "connection" in out[0].detail["error"] and "raw" in out[0].detail
    assert isinstance(out[1], Reject) and out[1].reason == "no_frames"


# ================================================================================ offline vLLM engine
# Class scope: each engine lives exactly as long as its test class, so at most one vLLM engine or
# server runs at a time (the machine is shared).
@pytest.fixture(scope="class")
def engine(tiny_vlm_dir):
    teacher = build_teacher("captioner", vllm_teacher_config(tiny_vlm_dir), in_process=True)
    teacher.start()
    yield teacher
    teacher.close()


@pytest.fixture(scope="class")
def server(tiny_vlm_dir):
    teacher = build_teacher("local", managed_teacher_config(tiny_vlm_dir))   # starts `vllm serve`
    yield teacher
    teacher.close()


class TestOfflineEngine:
    pytestmark = needs_engine

    def test_multi_frame_windows_merge_with_transcript_and_user_prompt(self, engine, cut_clips, tmp_path):
        merge = tmp_path / "merge.txt"
        merge.write_text("Parts of a $duration s clip:\n$parts\n$transcript\nMerge them into one description.")
        stage = make_stage({"strategy": "multi_frame", "window_frames": 2, "prompts": {"window_merge": str(merge)}},
                           attach={"captioner": engine})
        clips = [with_transcript(cut_clips[0], "the bars are shown now"), cut_clips[1]]
        out = stage.process_batch(clips)
        for row, clip in zip(out, clips):
            ids = check_row(row, clip, stage, "captioner")
            assert "caption/multi_frame@v2" in ids and any(i.startswith("caption/window_merge@file:") for i in ids)
            # two windows of two frames: their captions are kept as steps at each window's first frame
            frames = [f[R.FRAME_TIMESTAMP_S] for f in clip[R.FRAMES]]
            assert [s["timestamp_s"] for s in row[R.CAPTION_STEPS]] == [frames[0], frames[2]]
            assert all(s["text"].strip() for s in row[R.CAPTION_STEPS])
            assert row[R.DENSE_EVENTS] is None and row[R.CAPTION_CANDIDATES] is None
        assert "caption/transcript@v2" in out[0][R.CAPTION_PROMPT_VERSION]
        assert "caption/transcript@v2" not in out[1][R.CAPTION_PROMPT_VERSION]
        # round 1: four windows (two clips) in one engine call; round 2: both merges
        assert stage.last_schedule.mode == "rounds" and stage.last_schedule.round_sizes == [4, 2]

    def test_multi_frame_as_one_video_input(self, engine, cut_clips):
        stage = make_stage({"frames_as": "video"}, attach={"captioner": engine})
        (row,) = stage.process_batch([cut_clips[2]])
        check_row(row, cut_clips[2], stage, "captioner")
        assert len(row[R.CAPTION_FRAME_TIMESTAMPS]) == 4

    def test_differential_steps_follow_the_keyframes_and_rounds_stay_full(self, engine, cut_clips):
        # 4, 2, 4, 2 keyframes -> 5, 3, 5, 3 sequential requests (steps + summary). With 2 clips in
        # flight and refill as clips finish, every round carries 2 requests: 8 rounds. A batch barrier
        # (clips 1+2, then 3+4) would need 10 rounds, half of them with one request.
        clips = [with_frames(cut_clips[i], n) for i, n in zip(range(4), (4, 2, 4, 2))]
        stage = make_stage({"strategy": "differential", "max_in_flight": 2}, attach={"captioner": engine})
        out = stage.process_batch(clips)
        for row, clip in zip(out, clips):
            ids = check_row(row, clip, stage, "captioner")
            assert {"caption/differential_first@v1", "caption/differential_next@v1",
                    "caption/differential_summary@v1"} <= set(ids)
            steps = row[R.CAPTION_STEPS]
            assert [s["timestamp_s"] for s in steps] == [f[R.FRAME_TIMESTAMP_S] for f in clip[R.FRAMES]]
            assert all(a < b for a, b in zip([s["timestamp_s"] for s in steps], [s["timestamp_s"] for s in steps][1:]))
            assert all(s["text"].strip() for s in steps)
        sched = stage.last_schedule
        assert sched.requests == 16 and sched.round_sizes == [2] * 8 and sched.peak_outstanding == 2

    def test_differential_long_clip_summarises_hierarchically(self, engine, cut_clips):
        stage = make_stage({"strategy": "differential", "window_frames": 2}, attach={"captioner": engine})
        (row,) = stage.process_batch([cut_clips[3]])
        ids = check_row(row, cut_clips[3], stage, "captioner")
        assert "caption/window_merge@v1" in ids and len(row[R.CAPTION_STEPS]) == 4
        # 4 sequential steps, then 2 window summaries side by side, then the merge
        assert stage.last_schedule.round_sizes == [1, 1, 1, 1, 2, 1]

    def _dense(self, engine, window_frames=0, **dense):
        # the random model's events last any time (often under a second in these 2-s clips): no minimum
        # length here, so that what is tested is the tolerance and the windows (lengths: test_grounded_spans)
        cfg = {"strategy": "dense", "max_tokens": 400, "window_frames": window_frames,
               "dense": {"max_events": 3, "max_caption_chars": 80, "max_description_chars": 40, "min_event_s": 0.0,
                         **dense}}
        return make_stage(cfg, attach={"captioner": engine})

    def _check_dense_row(self, row, clip, stage):
        ids = check_row(row, clip, stage, "captioner")
        assert "caption/dense@v1" in ids
        events = row[R.DENSE_EVENTS]
        assert 1 <= len(events)
        for e in events:      # video-absolute, inside the clip, well formed
            assert clip[R.START_S] <= e["start_s"] <= e["end_s"] <= clip[R.END_S]
            assert isinstance(e["description"], str)
        assert [e["start_s"] for e in events] == sorted(e["start_s"] for e in events)
        assert row[R.SHOT_TYPE] in SHOT_TYPES and row[R.CAMERA_MOVEMENT] in CAMERA_MOVEMENTS
        assert row[DENSE_TIMESTAMPS_REPAIRED] >= 0 and row[DENSE_EVENTS_DROPPED] >= 0

    def test_dense_lenient_repairs_what_strict_rejects(self, engine, cut_clips):
        """The same requests under two policies (greedy decoding: the same replies): a tolerance wider
        than any schema-bounded time clamps every out-of-clip time and counts it; tolerance 0 with
        `reject_row` rejects exactly the clips whose times needed repair, and keeps the others as they were."""
        clips = cut_clips[:4]
        lenient = self._dense(engine, tolerance_s=1000.0).process_batch(clips)
        strict = self._dense(engine, tolerance_s=0.0, on_out_of_range="reject_row").process_batch(clips)
        stage = self._dense(engine)
        assert any(isinstance(r, dict) for r in lenient), [getattr(r, "message", "") for r in lenient]
        for loose, tight, clip in zip(lenient, strict, clips):
            if isinstance(loose, Reject):   # possible only when every event ended before it started or was too short
                assert loose.reason == "no_valid_events"
                assert all("before it starts" in p or "lasts" in p for p in loose.detail["problems"])
                continue
            self._check_dense_row(loose, clip, stage)
            # the wide tolerance clamps every schema-bounded time, so an event it drops ended before it
            # started, was too short or repeated another's times; tolerance 0 drops such an event too (for its
            # order, for a time outside the clip, or alike); short and repeated events never reject a row
            if loose[DENSE_TIMESTAMPS_REPAIRED] or isinstance(tight, Reject):
                assert isinstance(tight, Reject) and tight.reason == "timestamps_out_of_range", tight
                assert tight.detail["dropped"] >= max(1, loose[DENSE_EVENTS_DROPPED]) and tight.detail["problems"]
                assert len(tight.detail["raw"]) == 1 and tight.detail["raw"][0].startswith("{")
            else:   # nothing out of range: the same events, the same short / repeated ones dropped
                assert isinstance(tight, dict) and tight[R.DENSE_EVENTS] == loose[R.DENSE_EVENTS]
                assert tight[DENSE_TIMESTAMPS_REPAIRED] == 0
                assert tight[DENSE_EVENTS_DROPPED] == loose[DENSE_EVENTS_DROPPED]

    def test_dense_windows_are_merged(self, engine, cut_clips):
        stage = self._dense(engine, window_frames=2, tolerance_s=1000.0)
        clips = cut_clips[4:6]
        out = stage.process_batch(clips)
        for row, clip in zip(out, clips):
            self._check_dense_row(row, clip, stage)
            assert "caption/window_merge@v1" in row[R.CAPTION_PROMPT_VERSION]
            frames = [f[R.FRAME_TIMESTAMP_S] for f in clip[R.FRAMES]]
            assert [s["timestamp_s"] for s in row[R.CAPTION_STEPS]] == [frames[0], frames[2]]
        # round 1: both windows of both clips; round 2: the two caption merges
        assert stage.last_schedule.round_sizes == [4, 2]

    def test_invalid_structured_reply_rejects_with_the_raw_reply(self, engine, cut_clips):
        stage = make_stage({"strategy": "dense", "max_tokens": 6}, attach={"captioner": engine})
        (rej,) = stage.process_batch([cut_clips[0]])
        assert isinstance(rej, Reject) and rej.reason == "teacher_schema_invalid"
        assert rej.detail["raw"].startswith("{") and rej.detail["attempts"] == 3   # first try + 2 re-asks

    def test_multi_teacher_judge_keeps_every_candidate(self, engine, cut_clips):
        stage = make_stage({"strategy": "multi_teacher", "multi_teacher": {"samples_per_teacher": 3, "selector": "judge"}},
                           attach={"captioner": engine})
        clips = cut_clips[:2]
        out = stage.process_batch(clips)
        for row, clip in zip(out, clips):
            ids = check_row(row, clip, stage, "captioner")
            assert "caption/judge@v1" in ids and "caption/multi_frame@v2" in ids
            cands = row[R.CAPTION_CANDIDATES]
            assert len(cands) == 3 and all(c["teacher"] == "captioner" and c["text"].strip() for c in cands)
            assert all(0.0 <= c["score"] <= 1.0 and round(c["score"] * 10) == c["score"] * 10 for c in cands)
            chosen = [c for c in cands if c["text"] == row[R.CAPTION]]
            assert chosen and row[R.CAPTION_SELECTION_SCORE] in [c["score"] for c in chosen]

    def test_multi_teacher_agreement_across_teachers(self, engine, cut_clips):
        # two teacher names on one engine (as two deployments of a model would be), two samples each
        stage = make_stage({"strategy": "multi_teacher", "teacher": "a",
                            "multi_teacher": {"teachers": ["a", "b"], "samples_per_teacher": 2}},
                           attach={"a": engine, "b": engine})
        (row,) = stage.process_batch([cut_clips[4]])
        check_row(row, cut_clips[4], stage)
        cands = row[R.CAPTION_CANDIDATES]
        assert [c["teacher"] for c in cands] == ["a", "a", "b", "b"]
        scores = [c["score"] for c in cands]
        assert all(-1.0 <= s <= 1.0 for s in scores)
        assert row[R.CAPTION_SELECTION_SCORE] == max(scores)
        assert row[R.CAPTION] == cands[scores.index(max(scores))]["text"]
        assert row[R.CAPTION_TEACHER] == cands[scores.index(max(scores))]["teacher"]

    def test_multi_teacher_similarity_picks_by_frame_text_cosine(self, engine, cut_clips, tmp_path):
        """Panda-70M's pick: the candidate whose text embedding is closest to the clip's frames, by the tiny
        random CLIP built offline (scores are only structure here: the model is random)."""
        from vdata.stages.caption.multi_teacher import similarity_scores
        from vdata.teachers.tiny_clip import build_tiny_clip

        model_dir = str(build_tiny_clip(tmp_path / "tiny-clip"))
        stage = make_stage({"strategy": "multi_teacher", "multi_teacher": {
            "samples_per_teacher": 3, "selector": "similarity", "similarity_model": model_dir}},
            attach={"captioner": engine})
        (row,) = stage.process_batch([cut_clips[1]])
        check_row(row, cut_clips[1], stage, "captioner")
        cands = row[R.CAPTION_CANDIDATES]
        scores = [c["score"] for c in cands]
        assert len(cands) == 3 and all(0.0 <= s <= 1.0 for s in scores)
        assert row[R.CAPTION_SELECTION_SCORE] == max(scores) and row[R.CAPTION] == cands[scores.index(max(scores))]["text"]
        # the same scores again from the frames the row was captioned from (deterministic)
        jpegs = [f[R.FRAME_JPEG] for f in cut_clips[1][R.FRAMES]
                 if f[R.FRAME_TIMESTAMP_S] in set(row[R.CAPTION_FRAME_TIMESTAMPS])]
        assert similarity_scores(stage._embedder, jpegs, [c["text"] for c in cands]) == scores

    def test_a_request_the_engine_refuses_fails_only_its_clip(self, engine, cut_video):
        many = clip_rows(cut_video[0], num_frames=10)[:1]      # 10 images > the engine's limit of 8
        stage = make_stage({"max_frames": 10}, attach={"captioner": engine})
        few = make_stage({"max_frames": 4}, attach={"captioner": engine})
        (rej,) = stage.process_batch(many)
        assert isinstance(rej, Reject) and rej.reason in ("teacher_engine_error", "teacher_input_error")
        assert rej.detail["step"] == "multi_frame"
        (row,) = few.process_batch(many)                       # the same clip within the limit is fine
        check_row(row, many[0], few, "captioner")


# ================================================================================ openai backend on vllm serve
class TestOpenAIBackend:
    pytestmark = needs_engine

    def test_differential_keeps_one_request_per_clip_in_flight(self, server, cut_clips):
        k = 4
        clips = [with_frames(c, 3) for c in cut_clips[:6]]
        with FaultProxy(server.server.base_url, faults={}) as proxy:
            stage = make_stage({"strategy": "differential", "teacher": "cap", "max_in_flight": k},
                               teachers={"cap": openai_teacher_config(proxy.base_url)})
            try:
                out = stage.process_batch(clips)
                # k clips in flight -> k requests at the server at once, never more (one pending per clip)
                assert proxy.max_inflight == k
                assert stage.last_schedule.mode == "threads" and stage.last_schedule.peak_outstanding == k
                assert stage.last_schedule.requests == 6 * 4
                stats = stage.stats()
                assert stats["schedule"]["peak_outstanding"] == k
                assert stats["teachers"]["cap"]["requests"] == 24 and stats["teachers"]["cap"]["failures"] == 0
                for row, clip in zip(out, clips):
                    check_row(row, clip, stage, "cap")
                    steps = [s["timestamp_s"] for s in row[R.CAPTION_STEPS]]
                    assert steps == [f[R.FRAME_TIMESTAMP_S] for f in clip[R.FRAMES]]
            finally:
                stage.close()

    def test_a_slow_clip_holds_back_no_other_clip(self, server, cut_clips):
        """No batch barrier: one clip's first answer waits at the proxy while the other clips' whole
        differential chains go through it, with never more than K requests at the server."""
        k, marker = 3, "zebra crossing announcement"
        clips = [with_frames(c, 3) for c in cut_clips[:6]]
        clips[0] = with_transcript(clips[0], marker)      # its first and summary prompts carry the marker
        with SlowClipProxy(server.server.base_url, marker.encode()) as proxy:
            stage = make_stage({"strategy": "differential", "teacher": "cap", "max_in_flight": k},
                               teachers={"cap": openai_teacher_config(proxy.base_url)})
            try:
                with ThreadPoolExecutor(max_workers=1) as one:
                    running = one.submit(stage.process_batch, clips)
                    others = 5 * 4        # the 5 other clips x (first + 2 changes + summary)
                    for _ in range(3000):   # a wait for progress, not a timing check
                        if proxy.counts["forwarded"] >= others or running.done():
                            break
                        threading.Event().wait(0.1)
                    held, forwarded = proxy.held_marked, proxy.counts["forwarded"]
                    proxy.gate.set()
                    out = running.result(timeout=600)
                assert held == 1 and forwarded >= others, (held, forwarded)
                assert proxy.max_inflight == k and stage.last_schedule.peak_outstanding == k
                assert stage.last_schedule.requests == 6 * 4 and proxy.counts["forwarded"] == 6 * 4
                for row, clip in zip(out, clips):
                    check_row(row, clip, stage, "cap")
                    assert len(row[R.CAPTION_STEPS]) == 3
                assert "caption/transcript@v2" in out[0][R.CAPTION_PROMPT_VERSION]
            finally:
                proxy.gate.set()
                stage.close()

    @pytest.mark.parametrize("cfg", [
        {"strategy": "multi_frame", "window_frames": 2},
        {"strategy": "dense", "max_tokens": 400,
         "dense": {"max_events": 3, "max_caption_chars": 80, "max_description_chars": 40, "tolerance_s": 1000.0}},
        {"strategy": "multi_teacher", "multi_teacher": {"samples_per_teacher": 2, "selector": "judge"}},
    ], ids=["multi_frame", "dense", "multi_teacher"])
    def test_strategies_through_the_openai_backend(self, server, cut_clips, cfg, tmp_path):
        stage = make_stage({**cfg, "teacher": "cap"}, teachers={"cap": openai_teacher_config(server.server.base_url)},
                           cache_dir=str(tmp_path))
        try:
            out = stage.process_batch(cut_clips[:2])
            again = stage.process_batch(cut_clips[:2])     # the same requests: answered from the cache
            assert stage.teachers["cap"].stats()["cache_hits"] == stage.last_schedule.requests
            for row, clip in zip(out, cut_clips[:2]):
                if isinstance(row, Reject):
                    assert cfg["strategy"] == "dense" and row.reason == "no_valid_events", row.message
                    continue
                check_row(row, clip, stage, "cap")
                if cfg["strategy"] == "multi_teacher":
                    assert len(row[R.CAPTION_CANDIDATES]) == 2 and row[R.CAPTION_SELECTION_SCORE] is not None
                if cfg["strategy"] == "dense":
                    assert all(clip[R.START_S] <= e["start_s"] <= e["end_s"] <= clip[R.END_S]
                               for e in row[R.DENSE_EVENTS])
            assert [type(r) for r in again] == [type(r) for r in out]
            assert [r[R.CAPTION] for r in again if isinstance(r, dict)] == [r[R.CAPTION] for r in out if isinstance(r, dict)]
        finally:
            stage.close()

    def test_runner_probe_shots_frames_caption(self, server, cut_video, tmp_path, ray_local):
        from vdata.pipelines.runner import build

        cfg = parse_config({
            "name": "caption-e2e", "input": [{"path": cut_video[0]}], "output": {"dir": str(tmp_path / "out")},
            "stages": [{"probe": {}}, {"shots": {"min_len_s": 1.0}},
                       {"frames": {"mode": "uniform", "num_frames": 3, "max_side": 160}},
                       {"caption": {"strategy": "differential", "teacher": "cap", "max_in_flight": 8}},
                       # clip → video: 7 clip captions in groups of 3 → 3 parts → 1 (two levels, 3 + 1 requests)
                       {"video_caption": {"teacher": "cap", "group_size": 3, "sampling": {"min_tokens": 4}}}],
            "teachers": {"cap": openai_teacher_config(server.server.base_url)},
        })
        result = build(cfg, progress=False)
        assert result.rejects == 0, result.rejects_by_reason
        table = pads.dataset(result.data_dir, format="parquet").to_table()
        assert table.num_rows == 7
        rows = sorted(table.to_pylist(), key=lambda r: r[R.START_S])
        assert len({r[R.VIDEO_CAPTION] for r in rows}) == 1 and rows[0][R.VIDEO_CAPTION].strip()
        assert all(r[R.VIDEO_CAPTION_LEVELS] == 2 and r[R.VIDEO_CAPTION_CLIPS] == [x[R.CLIP_ID] for x in rows]
                   for r in rows)
        assert rows[0][R.VIDEO_CAPTION_PROMPT_VERSION] == "caption/video_merge@v2"
        for col in (*R.CAPTION_COLUMNS, DENSE_TIMESTAMPS_REPAIRED, DENSE_EVENTS_DROPPED):
            assert table.schema.field(col).type == R.FIELD_TYPES[col]
        for row in table.to_pylist():
            assert row[R.CAPTION].strip() and row[R.CAPTION_STRATEGY] == "differential" and row[R.CAPTION_TEACHER] == "cap"
            assert len(row[R.CAPTION_STEPS]) == 3 == len(row[R.CAPTION_FRAME_TIMESTAMPS])
            assert all(row[R.START_S] <= t <= row[R.END_S] for t in row[R.CAPTION_FRAME_TIMESTAMPS])
        manifest = json.loads(open(result.manifest_path).read())
        caption = [s for s in manifest["stages"] if s["stage"] == "caption"][0]
        assert caption["rows_in"] == 7 and caption["rows_out"] == 7
        assert manifest["teachers"]["cap"]["requests"] == 7 * 4 + 4 and manifest["teachers"]["cap"]["failures"] == 0
        # the teacher answers are in the run's request cache, ready for a rebuild (7 clips x 4 requests;
        # identical requests, e.g. two summaries of identical steps, share one entry)
        cache = RequestCache(tmp_path / "out" / "_cache" / "teachers")
        assert 7 < len(cache) <= 7 * 4 + 4


# ---------------------------------------------------------------- captions from speech alone (use_frames: false)
def test_captions_from_speech_send_no_frames_and_take_a_text_only_teacher(tmp_path):
    """`use_frames: false` (the MR. Video / StoryTeller demos on CPU, where the demo VLM is random): the request
    is the `speech` template with the clip's transcript and no image; a silent clip is a reject `no_speech`;
    a text-only teacher passes the plan check that refuses it when frames are sent."""
    from vdata.pipelines.planning import make_plan
    from vdata.prompts import load_prompt
    from vdata.stages.caption.common import Captioner
    from vdata.stages.caption.config import PROMPT_GROUP, PROMPT_NAMES
    from vdata.teachers import ImagePart

    with pytest.raises(ValidationError, match="use_frames"):
        CaptionConfig(strategy="dense", use_frames=False)
    with pytest.raises(ValidationError, match="use_frames"):
        CaptionConfig(use_frames=False, transcript=False)
    stage = CaptionStage(CaptionConfig(use_frames=False), RunContext(output_dir=""))
    stage.prompts = {n: load_prompt(PROMPT_GROUP, n) for n in PROMPT_NAMES}
    row = {R.CLIP_ID: "c", R.START_S: 10.0, R.END_S: 14.0, R.FRAMES: [],
           R.TRANSCRIPT_SEGMENTS: [{"start_s": 10.5, "end_s": 13.0, "text": "Maria parks the red car."}]}
    clip = stage._clip(row)
    assert not isinstance(clip, Reject) and clip.frames == []
    req = Captioner(stage.config, stage.prompts, {}, None, stage.reject).request(clip, "speech", clip.frames, {})
    parts = req.messages[0].content
    assert not any(isinstance(p, ImagePart) for p in parts)
    assert "Maria parks the red car." in parts[-1].text and "[0.5s-3.0s]" in parts[-1].text
    silent = stage._clip({**row, R.TRANSCRIPT_SEGMENTS: [], R.TRANSCRIPT_TEXT: ""})
    assert isinstance(silent, Reject) and silent.reason == "no_speech"

    def plan(use_frames: bool):
        return make_plan(parse_config({
            "input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "o")},
            "stages": [{"probe": {}}, {"shots": {}}, {"frames": {}}, {"asr": {}},
                       {"caption": {"teacher": "llm", "use_frames": use_frames}}],
            "teachers": {"llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x",
                                 "vision": False}}}))
    assert plan(False).stages[-1].name == "caption"
    with pytest.raises(ConfigError, match="text-only"):
        plan(True)


def test_the_transcript_prompt_names_subtitles_as_subtitles_and_recognised_speech_as_automatic():
    """Subtitles the input carries reached the teacher as an "automatic transcript; it may contain recognition
    errors" (outside check h20): the teacher may trust a subtitle track's names and numbers more."""
    from vdata.prompts import load_prompt
    from vdata.stages.caption.common import transcript_lines, transcript_source

    prompt = load_prompt("caption", "transcript")
    cue = {"start_s": 10.5, "end_s": 12.0, "text": "Heute backen wir Brot"}
    subtitled = {R.START_S: 10.0, R.END_S: 14.0, R.ANNOTATIONS: {"subtitles": [cue]}}
    text = prompt.render(lines=transcript_lines(subtitled, 10.0, 500), source=transcript_source(subtitled))
    assert "(the video's own subtitles;" in text and "automatic" not in text and "Heute backen wir Brot" in text
    heard = {**subtitled, R.TRANSCRIPT_SEGMENTS: [{"start_s": 10.2, "end_s": 11.0, "clip_start_s": 0.2,
                                                   "clip_end_s": 1.0, "text": "today we bake bread"}]}
    text = prompt.render(lines=transcript_lines(heard, 10.0, 500), source=transcript_source(heard))
    assert "(automatic transcript; it may contain recognition errors;" in text and "today we bake bread" in text
