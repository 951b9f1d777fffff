"""speech_captions (HowToCaption): narration windows → LLM captions with estimated times → re-timed to the
transcript segment they match, or dropped.

Teacher-free: the speech the family reads (transcript, else annotation subtitles; clipped, deduplicated),
the windows, and the re-timing rule on a given reply. Slow: the shipped narrated demo videos
(examples/videos/narrated_*.mp4: espeak-ng speech over hard cuts) through the real pipeline stages
(probe → shots → asr with Whisper tiny.en) and SmolLM2-135M-Instruct on llama.cpp, on a clip row and on
the whole-video row of `scope: video`.
"""
from __future__ import annotations

import os
import shutil

import pytest

import labelled_set as L
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate.common import sample_base
from vdata.stages.generate.speech_captions import (DEFAULT_MIN_SIMILARITY, SPEECH_CAPTIONS, Speech, row_speech, windows,
                                                   word_overlap)
from vdata.stages.generate.stage import GenerateConfig, GenerateStage

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples", "videos")
DEAD = {"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0, "timeout_s": 5}}
SEGMENTS = [  # how-to narration, video-absolute seconds
    {"start_s": 1.0, "end_s": 4.0, "text": "Hi everyone, welcome back to the channel."},
    {"start_s": 4.0, "end_s": 8.0, "text": "First we chop two onions into thin slices."},
    {"start_s": 8.0, "end_s": 12.0, "text": "Then fry the onions in butter until golden."},
    {"start_s": 12.0, "end_s": 15.0, "text": "Finally add the rice and stir it well."},
]


def _stage(teachers, **task) -> GenerateStage:
    stage = GenerateStage(GenerateConfig(teacher="t", tasks={"speech_captions": task}),
                          RunContext(output_dir="", teachers=teachers))
    stage.setup()
    return stage


def _row(start=0.0, end=20.0, **extra) -> dict:
    return {R.SOURCE_URI: "how-to.mp4", R.VIDEO_ID: "v1", R.CLIP_ID: "v1:video", R.START_S: start, R.END_S: end,
            R.DURATION_S: 20.0, R.TRANSCRIPT_SEGMENTS: SEGMENTS, **extra}


def _finish(stage, row, reply, index=0):
    """The family's reply reader on one window (what the stage calls after the teacher answered)."""
    _, pending = SPEECH_CAPTIONS.plan(stage, row, [], stage.config.tasks.speech_captions)
    p = pending[index]
    base = sample_base(stage, row, p.task, p.index, p.prompt.id)
    return SPEECH_CAPTIONS.finish(stage, row, [], p, reply, base, {}), pending


# ================================================================================ no model needed
def test_speech_is_clipped_deduplicated_and_falls_back_to_subtitles():
    twice = SEGMENTS + [dict(SEGMENTS[1])]                 # video scope: the same segment from two clips
    speech = row_speech(_row(5.0, 13.0, **{R.TRANSCRIPT_SEGMENTS: twice}), "auto")
    assert [(s.start_s, s.end_s) for s in speech] == [(5.0, 8.0), (8.0, 12.0), (12.0, 13.0)]
    subs = {"subtitles": [{"start_s": 2.0, "end_s": 3.0, "text": "from the subtitles"}]}
    row = _row(**{R.TRANSCRIPT_SEGMENTS: [], R.ANNOTATIONS: subs})
    assert [s.text for s in row_speech(row, "auto")] == ["from the subtitles"]
    assert row_speech(row, "transcript") == []
    assert [s.text for s in row_speech(_row(**{R.ANNOTATIONS: subs}), "subtitles")] == ["from the subtitles"]
    parts = windows([Speech(0, 1, "a b c"), Speech(1, 2, "d e"), Speech(2, 3, "f g h i"), Speech(3, 4, "j")], 5)
    assert [[s.text for s in w] for w in parts] == [["a b c", "d e"], ["f g h i", "j"]]


def test_captions_are_retimed_to_the_matching_segment_or_dropped():
    stage = _stage(DEAD, window_words=200)
    reply = {"captions": [
        {"time_s": 5, "caption": "The onions are fried in butter until golden."},   # estimate off: said at 8-12 s
        {"time_s": 6, "caption": "A cook chops two onions into thin slices."},
        {"time_s": 14, "caption": "A dog plays football in the garden."},           # nothing said about it
    ]}
    out, pending = _finish(stage, _row(), reply)
    assert len(pending) == 1 and "[4.0s-8.0s] First we chop" in pending[0].request.messages[-1].content[-1].text
    assert pending[0].request.json_schema["properties"]["captions"]["items"]["properties"]["time_s"] == \
        {"type": "integer", "minimum": 1, "maximum": 15}
    (dropped,) = [r for r in out if isinstance(r, Reject)]
    assert dropped.reason == "speech_unmatched" and dropped.detail["caption"].startswith("A dog")
    assert dropped.detail["best_score"] < DEFAULT_MIN_SIMILARITY["words"]
    (sample,) = [r for r in out if isinstance(r, dict)]
    assert sample[R.TASK] == "speech_captions" and sample[R.ANSWER_SPANS] == [{"start_s": 4.0, "end_s": 8.0},
                                                                               {"start_s": 8.0, "end_s": 12.0}]
    assert sample[R.ANSWER].splitlines()[0] == "{{span:4,8}} A cook chops two onions into thin slices."
    assert [s["text"] for s in sample[R.EVIDENCE]["transcript_spans"]] == [SEGMENTS[1]["text"], SEGMENTS[2]["text"]]
    assert dropped.row[R.SAMPLE_ID] != sample[R.SAMPLE_ID]
    # pairs: one sample per kept caption, its span in the question
    pairs, _ = _finish(_stage(DEAD, window_words=200, samples="pairs"), _row(), reply)
    kept = [r for r in pairs if isinstance(r, dict)]
    assert [r[R.ANSWER] for r in kept] == ["A cook chops two onions into thin slices.",
                                           "The onions are fried in butter until golden."]
    assert "{{span:4,8}}" in kept[0][R.QUESTION] and len({r[R.SAMPLE_ID] for r in kept}) == 2
    assert word_overlap("Chopping onions", "we chop the onion") == 1.0 and word_overlap("", "x") == 0.0


def test_two_captions_of_one_narration_segment_keep_the_better_match():
    """Captions take the span of the segment they match: two on one segment would be one event told twice in a
    dense answer (outside check h17 F13). The better match stays; the other is a `speech_duplicate` reject.
    Pairs (one sample per caption) keep both."""
    reply = {"captions": [
        {"time_s": 9, "caption": "Onions are fried."},
        {"time_s": 10, "caption": "The onions are fried in butter until golden."},
        {"time_s": 5, "caption": "A cook chops two onions into thin slices."},
    ]}
    out, _ = _finish(_stage(DEAD, window_words=200), _row(), reply)
    (twin,) = [r for r in out if isinstance(r, Reject)]
    assert twin.reason == "speech_duplicate" and twin.detail["caption"] == "Onions are fried."
    assert "8-12s" in twin.message
    (kept,) = [r for r in out if isinstance(r, dict)]
    spans = [tuple(sorted(sp.items())) for sp in kept[R.ANSWER_SPANS]]
    assert len(spans) == len(set(spans)) == 2
    assert twin.row[R.SAMPLE_ID] != kept[R.SAMPLE_ID]
    # pairs are samples of their own: two captions of one segment both stay (outside check h19)
    pairs, _ = _finish(_stage(DEAD, window_words=200, samples="pairs"), _row(), reply)
    assert len([r for r in pairs if isinstance(r, dict)]) == 3 and not [r for r in pairs if isinstance(r, Reject)]


def test_vision_match_retimes_by_the_frames_of_each_segment(tmp_path):
    """match: vision (the paper's video–text re-timing) with the tiny random CLIP built offline, over real
    frames of a video whose halves differ: every caption still gets a segment's span, the scores are
    deterministic cosines (one image pass per row), and the setting needs a model (key named)."""
    from pydantic import ValidationError

    from vdata.media.synth import Segment, render_segments
    from vdata.stages.generate.speech_captions import SpeechCaptionsTask
    from vdata.teachers.tiny_clip import build_tiny_clip

    with pytest.raises(ValidationError, match="vision_model"):
        SpeechCaptionsTask(match="vision")
    model = str(build_tiny_clip(tmp_path / "tiny-clip"))
    path = str(tmp_path / "halves.mp4")
    render_segments(path, [Segment("testsrc2", 8.0), Segment("smptebars", 8.0)], size=(160, 96))
    frames = L.read_frames(path, 0.0, 16.0, n=8)
    stage = _stage(DEAD, window_words=200, match="vision", vision_model=model, min_similarity=-1.0)
    row = _row(**{R.FRAMES: frames})
    reply = {"captions": [{"time_s": 6, "caption": "Onions are chopped."}, {"time_s": 13, "caption": "Rice is stirred."}]}
    out, _ = _finish(stage, row, reply)
    (sample,) = [r for r in out if isinstance(r, dict)]
    spans = [(s["start_s"], s["end_s"]) for s in sample[R.ANSWER_SPANS]]
    assert len(spans) == 2 and all((a, b) in [(x["start_s"], x["end_s"]) for x in SEGMENTS] for a, b in spans)
    assert len(stage.__dict__["_frame_vectors"]) == 1                  # the row's frames embedded once
    from vdata.stages.generate.speech_captions import vision_similarities

    cands = [Speech(x["start_s"], x["end_s"], x["text"]) for x in SEGMENTS]
    first = vision_similarities(stage, model, "Onions are chopped.", cands, frames)
    assert first == vision_similarities(stage, model, "Onions are chopped.", cands, frames)
    assert len(first) == 4 and all(-1.0 <= x <= 1.0 for x in first)
    assert vision_similarities(stage, model, "x", cands, []) == [-1.0] * 4   # no frames: nothing matches


# ================================================================================ Whisper + SmolLM2
def _pipeline_rows(path: str) -> list[dict]:
    """Clip rows of a real video: probe → shots → asr (Whisper tiny.en) in-process."""
    from vdata.stages.asr import AsrConfig, AsrStage
    from vdata.stages.probe import ProbeStage
    from vdata.stages.shots import ShotsStage

    rows = [{R.SOURCE_URI: path, R.PATH: path, R.SOURCE_META: None, R.MASS: 1.0}]
    for stage in (ProbeStage(), ShotsStage(min_len_s=1.0), AsrStage(AsrConfig(model="tiny.en", cpu_threads=2))):
        stage.setup()
        rows = [r for r in stage.process_batch(rows) if isinstance(r, dict)]
        assert rows, stage.name
    return rows


def _video_row(clips: list[dict]) -> dict:
    """The whole-video row of `scope: video` (the contract: 0 → duration, union of the clips' speech)."""
    first = clips[0]
    segs = {(s["start_s"], s["end_s"], s["text"]): s for c in clips for s in c[R.TRANSCRIPT_SEGMENTS] or []}
    return {**first, R.CLIP_ID: f"{first[R.VIDEO_ID]}:video", R.START_S: 0.0, R.END_S: first[R.DURATION_S],
            R.TRANSCRIPT_SEGMENTS: sorted(segs.values(), key=lambda s: s["start_s"]), R.SAMPLE_SCOPE: R.SCOPE_VIDEO}


@pytest.mark.slow
@pytest.mark.skipif(not L.have_llama(), reason="llama.cpp not installed")
# On llama.cpp's Q4_1 SmolLM2, not the session's vLLM one: on the workshop video the bf16 model's
# captions match no segment at all (0 kept), and this test must see kept captions to check their times.
# Both videos in one test, which asks for a kept caption over the two: what a 135M model writes
# depends on the CPU's SIMD kernels, and on an AVX2-only EPYC every bakery caption missed its window
# (workshop kept some), where AVX-512 machines kept bakery captions too.
def test_narrated_videos_through_whisper_and_smollm(llama, tmp_path):
    kept = {name: _narrated_video_samples(name, llama, tmp_path) for name in ("bakery", "workshop")}
    print(f"\n[speech_captions] kept window samples: {kept}")
    assert sum(kept.values()) >= 1, kept


def _narrated_video_samples(name, llama, tmp_path) -> int:
    """Every sample and reject of the speech_captions task on one narrated video checked; the kept count."""
    path = str(tmp_path / f"narrated_{name}.mp4")
    shutil.copy(os.path.join(EXAMPLES, f"narrated_{name}.mp4"), path)
    clips = _pipeline_rows(path)
    assert len(clips) >= 2 and any(c[R.TRANSCRIPT_SEGMENTS] for c in clips)
    video = _video_row(clips)
    clip = max(clips, key=lambda c: len(c[R.TRANSCRIPT_SEGMENTS] or []))
    teachers = {"t": L.openai_teacher(llama, sampling={"max_tokens": 200})}
    kept_total = 0
    for match in ("words", "embedding"):
        stage = _stage(teachers, window_words=12, match=match)
        floor = DEFAULT_MIN_SIMILARITY[match]
        results = stage.process_batch([clip, video])
        windows_asked = sum(len(windows(row_speech(r, "auto"), 12)) for r in (clip, video))
        assert stage.teacher.stats()["requests"] >= windows_asked
        for res in results:
            if isinstance(res, Reject):
                assert res.reason in ("speech_unmatched", "bad_reply", "truncated") or res.reason.startswith("teacher"), res.message
                if res.reason == "speech_unmatched":
                    assert res.detail["best_score"] < floor
                continue
            row = clip if res[R.CLIP_ID] == clip[R.CLIP_ID] else video
            assert res[R.TASK] == "speech_captions" and res[R.QUESTION].strip()
            said = {(s.start_s, s.end_s): s.text for s in row_speech(row, "auto")}
            spans = [(x["start_s"], x["end_s"]) for x in res[R.ANSWER_SPANS]]
            assert spans and all(sp in said for sp in spans)      # every caption sits on a real segment ...
            assert all(row[R.START_S] <= a < b <= row[R.END_S] for a, b in spans)   # ... inside the row
            assert spans == sorted(spans)
            assert {(s["start_s"], s["end_s"]) for s in res[R.EVIDENCE]["transcript_spans"]} == set(spans)
            if match == "words":   # the kept caption shares enough words with its segment
                for line, sp in zip(res[R.ANSWER].splitlines(), spans):
                    assert word_overlap(line.split("}} ", 1)[1], said[sp]) >= floor
            kept_total += 1
        ids = [(r.row if isinstance(r, Reject) else r)[R.SAMPLE_ID] for r in results]
        assert len(set(ids)) == len(ids)                        # clip and video samples never collide
    return kept_total
