"""`scope: video`: generate and the filters over whole videos.

A real video with six hard cuts (ffmpeg lavfi sources, 3 s each) goes through the real probe and shots
stages; its clip rows then get the columns the caption and ASR stages would write (captions, dense
events, a transcript segment that ASR attaches to both clips it overlaps) and the annotations the
`annotations` stage would write, so no VLM is needed. Checked: the video row (union, dedup, times), the
video clues and their ids, teacher-free video samples (scope, ids, every time inside the video), a
question citing two clips far apart keeping both spans, the teacher-window budget (coarser captions,
cuts, all counted), the filters at `scope: video`, a runner build whose manifest carries the counts, and
one run with the SmolLM2 teacher (vLLM's CPU engine or llama.cpp, whichever is faster on this CPU).
"""
from __future__ import annotations

import csv
import json
import random
import re

import pytest

import labelled_set as L
from vdata.media.synth import CUT_SOURCES, Segment, render_segments
from vdata.schemas import records as R
from vdata.schemas.config import parse_config
from vdata.stages.base import Reject, RunContext
from vdata.stages.blind import BlindStage
from vdata.stages.dedup import DedupStage
from vdata.stages.generate import GenerateConfig, GenerateStage, build_clues
from vdata.stages.generate.budget import lines_cost
from vdata.stages.generate.video_scope import video_row
from vdata.stages.probe import ProbeStage
from vdata.stages.shots import ShotsStage
from vdata.stages.timestamps import TimestampsStage
from vdata.stages.verify_claims import VerifyClaimsStage

SEGMENT_S = 3.0
CAPTIONS = [
    "A test card with a moving colour gradient and a running counter.",
    "Vertical colour bars of a broadcast test signal.",
    "A zoom into a purple and orange fractal.",
    "A plain blue screen where nothing moves.",
    "Red, green and blue stripes of a test pattern.",
    "A second test card with a rotating wheel.",
]
ANNOTATIONS = {
    "title": "Six test patterns", "description": "A tour of broadcast test patterns, one after another.",
    "labels": ["test pattern", "broadcast"],
    "chapters": [{"start_s": 0.0, "end_s": 9.0, "title": "Moving patterns"},
                 {"start_s": 9.0, "end_s": 18.0, "title": "Still patterns"}],
    "segments": [{"start_s": 3.2, "end_s": 5.5, "text": "colour bars fill the screen"}],
    "subtitles": [{"start_s": 12.5, "end_s": 14.0, "text": "here come the stripes"}],
    "transcript": None,
}
TEACHER_FREE = {"caption": {}, "dense_caption": {"min_events": 2}, "grounding": {"per_clip": 3, "rephrase": False}}
DEAD_TEACHER = {"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """(path, clip rows): six real shots of one video, with the columns caption/ASR/annotations would write."""
    path = str(tmp_path_factory.mktemp("video-scope") / "patterns.mp4")
    render_segments(path, [Segment(s, SEGMENT_S) for s in CUT_SOURCES], size=(320, 180))
    source = {R.SOURCE_URI: path, R.PATH: path, R.SOURCE_META: json.dumps({"caption": "Six test patterns in a row."})}
    probed = ProbeStage().process_batch([source])
    clips = ShotsStage().process_batch(probed)
    assert len(clips) == len(CUT_SOURCES) and not any(isinstance(c, Reject) for c in clips)
    return path, [_describe(dict(c)) for c in clips]


def _describe(clip: dict) -> dict:
    k, a, b = clip[R.CLIP_INDEX], clip[R.START_S], clip[R.END_S]
    clip[R.CAPTION] = CAPTIONS[k]
    clip[R.ANNOTATIONS] = ANNOTATIONS
    clip[R.DENSE_EVENTS] = ([{"start_s": a, "end_s": a + 1.5, "description": "the gradient starts to move"},
                             {"start_s": a + 1.5, "end_s": b, "description": "the counter ticks up"}] if k == 0 else [])
    # one spoken segment across the cut between clips 1 and 2: ASR attaches it to both clips
    across = {"start_s": 5.0, "end_s": 7.0, "text": "now the bars turn into a fractal", "words": [], "language": "en"}
    clip[R.TRANSCRIPT_SEGMENTS] = ([dict(across, clip_start_s=5.0 - a, clip_end_s=7.0 - a)] if k in (1, 2) else [])
    clip[R.TRANSCRIPT_TEXT] = across["text"] if k in (1, 2) else None
    return clip


def _stage(teachers=None, **cfg) -> GenerateStage:
    stage = GenerateStage(GenerateConfig(**cfg), RunContext(output_dir="", teachers=teachers or {}))
    stage.setup()
    return stage


def _kept(out):
    return [r for r in out if not isinstance(r, Reject)]


def _times(sample: dict) -> list[float]:
    """Every time a sample states: spans, rationale and evidence times, and the placeholders in its texts."""
    ev = sample[R.EVIDENCE] or {}
    out = [t for s in sample[R.ANSWER_SPANS] or [] for t in (s["start_s"], s["end_s"])]
    out += [t for s in ev.get("transcript_spans") or [] for t in (s["start_s"], s["end_s"])]
    out += list(ev.get("frame_timestamps_s") or [])
    out += [t for st in sample[R.RATIONALE_STEPS] or [] for t in st["evidence_timestamps_s"]]
    texts = [sample[R.QUESTION], sample[R.ANSWER], *(ev.get("captions") or [])]
    out += [float(x) for t in texts for m in re.finditer(r"\{\{(?:t|span):([^}]*)\}\}", t or "") for x in m[1].split(",")]
    return out


# --- the video row and its clues -----------------------------------------------------------------------

def test_video_row_is_the_union_of_its_clips(video):
    _, clips = video
    duration = clips[0][R.DURATION_S]
    shuffled = list(clips)
    random.Random(3).shuffle(shuffled)
    row = video_row(shuffled)
    assert row == video_row(clips)                                   # input order does not matter
    assert row[R.CLIP_ID] == f"{clips[0][R.VIDEO_ID]}:video" and row[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO
    assert row[R.START_S] == 0.0 and row[R.END_S] == duration and row[R.CLIP_DURATION_S] == duration
    assert [(c["start_s"], c["end_s"], c["text"]) for c in row[R.CLIP_CAPTIONS]] == \
        [(c[R.START_S], c[R.END_S], c[R.CAPTION]) for c in clips]
    assert len(row[R.TRANSCRIPT_SEGMENTS]) == 1                       # ASR's repeat on two clips, once
    seg = row[R.TRANSCRIPT_SEGMENTS][0]
    assert (seg["clip_start_s"], seg["clip_end_s"]) == (seg["start_s"], seg["end_s"]) == (5.0, 7.0)
    assert len(row[R.DENSE_EVENTS]) == 2 and row[R.ANNOTATIONS] == ANNOTATIONS
    assert row[R.CAPTION] == " ".join(CAPTIONS)                       # no video caption: the clips' joined
    assert video_row([dict(c, **{R.VIDEO_CAPTION: "Test patterns."}) for c in clips])[R.CAPTION] == "Test patterns."
    with pytest.raises(ValueError, match="2 videos"):
        video_row([clips[0], dict(clips[1], **{R.SOURCE_URI: "other.mp4"})])


def test_video_clues_have_stable_ids_and_video_times(video):
    _, clips = video
    duration = clips[0][R.DURATION_S]
    cfg = GenerateConfig(tasks=["caption"], scope="video")
    clues = build_clues(video_row(clips), cfg)
    ids = [c.id for c in clues]
    assert ids == ["V", "M1", "M2", "M3", "H1", "H2", "C1", "C2", "C3", "C4", "C5", "C6", "E1", "E2", "A1", "T1", "U1"]
    by_id = {c.id: c for c in clues}
    assert by_id["V"].text == "Six test patterns in a row."         # the manifest's caption describes the video
    assert (by_id["C5"].start_s, by_id["C5"].end_s) == (clips[4][R.START_S], clips[4][R.END_S])
    assert (by_id["T1"].start_s, by_id["T1"].end_s) == (5.0, 7.0) and by_id["U1"].kind == "speech"
    assert all(0.0 <= t <= duration for c in clues for t in c.times())
    assert "caption of a clip, 12.0-15.0s" in by_id["C5"].line() and "chapter, 0.0-9.0s" in by_id["H1"].line()
    # clip scope: the clip's own clues, then only the annotations inside the clip
    clip_clues = build_clues(clips[4], GenerateConfig(tasks=["caption"]))
    assert [c.id for c in clip_clues] == ["C1", "M1", "M2", "M3", "U1"]
    bare = {k: v for k, v in clips[1].items() if k != R.ANNOTATIONS}  # an existing config's row: unchanged
    assert [c.id for c in build_clues(bare, GenerateConfig(tasks=["caption"]))] == ["C1", "T1"]


# --- samples ---------------------------------------------------------------------------------------------

def test_teacher_free_video_samples_stay_inside_the_video(video):
    _, clips = video
    duration = clips[0][R.DURATION_S]
    stage = _stage(scope="video", tasks=TEACHER_FREE)
    out = stage.process_batch(clips)
    samples = _kept(out)
    assert len(samples) == len(out) and {s[R.TASK] for s in samples} == {"caption", "dense_caption", "grounding"}
    for s in samples:
        assert s[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO and (s[R.START_S], s[R.END_S]) == (0.0, duration)
        assert s[R.CLIP_ID].endswith(":video")
        times = _times(s)
        assert (times or s[R.TASK] == "caption") and all(0.0 <= t <= duration for t in times), (s[R.TASK], times)
    caption = next(s for s in samples if s[R.TASK] == "caption")
    assert caption[R.ANSWER] == "Six test patterns in a row."        # the whole-video caption, not a clip's
    dense = next(s for s in samples if s[R.TASK] == "dense_caption")
    assert len(dense[R.ANSWER_SPANS]) == 3                             # 2 events of clip 1 + 1 annotated segment
    assert stage.counters["videos"] == 1
    # stable, and distinct from the clip-scope samples of the same clips
    again = _kept(_stage(scope="video", tasks=TEACHER_FREE).process_batch(list(reversed(clips))))
    assert sorted(s[R.SAMPLE_ID] for s in again) == sorted(s[R.SAMPLE_ID] for s in samples)
    per_clip = _kept(_stage(tasks=TEACHER_FREE).process_batch(clips))
    assert per_clip and all(s[R.SAMPLE_SCOPE] == R.SCOPE_CLIP for s in per_clip)
    assert not {s[R.SAMPLE_ID] for s in per_clip} & {s[R.SAMPLE_ID] for s in samples}
    checked = TimestampsStage(scope="video").process_batch(samples + per_clip)
    assert all(not isinstance(c, Reject) and c[R.V_TIMESTAMPS_VALID] for c in checked)


def test_a_question_citing_two_clips_far_apart_keeps_both_spans(video):
    """The open_qa reply reader at video scope: the reply cites C1 (0-3 s) and C5 (12-15 s)."""
    from vdata.teachers.types import TeacherResult

    _, clips = video
    stage = _stage(DEAD_TEACHER, teacher="t", scope="video", tasks={"open_qa": {"per_clip": 1}})
    row = video_row(clips)
    clues = stage.clues_for(row)
    free, pending = stage.plan_clip(row, clues)
    assert not free and len(pending) == 1
    assert "C5 (caption of a clip, 12.0-15.0s)" in repr(pending[0].request.messages)
    reply = {"question": "What comes first and what comes near the end?",
             "answer": "A test card with a moving gradient, later red, green and blue stripes.",
             "evidence": ["C1", "C5"]}
    (sample,) = stage.finish(row, clues, pending[0], TeacherResult("r", parsed=reply))
    first, fifth = clips[0], clips[4]
    assert fifth[R.START_S] - first[R.END_S] >= 2 * SEGMENT_S          # far apart: three clips between
    assert sample[R.EVIDENCE]["captions"] == [
        f"{{{{span:{first[R.START_S]:g},{first[R.END_S]:g}}}}} {CAPTIONS[0]}",
        f"{{{{span:{fifth[R.START_S]:g},{fifth[R.END_S]:g}}}}} {CAPTIONS[4]}"]
    assert sample[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO and sample[R.CLIP_CAPTIONS] == row[R.CLIP_CAPTIONS]
    (checked,) = TimestampsStage().process_batch([sample])            # video-scope samples: held to the video
    assert not isinstance(checked, Reject) and checked[R.V_TIMESTAMPS_VALID]


# --- the teacher's window ----------------------------------------------------------------------------------

def test_clues_over_the_window_get_coarser_then_cut_and_every_cut_is_counted(video):
    from vdata.stages.generate.budget import CUT_ORDER

    _, clips = video
    row = video_row(clips)
    roomy = _stage(scope="video", tasks=TEACHER_FREE, context_tokens=100_000)
    full = roomy.clues_for(row)
    assert len(full) == 17 and "rows_over_budget" not in roomy.take_counters()
    assert 0 < roomy.clue_budget < 100_000 - roomy.config.max_tokens          # the template and reply come first
    stage = _stage(scope="video", tasks=TEACHER_FREE, merge_windows_s=[6.0, 18.0])

    def fit(budget: int):
        stage.clue_budget = budget
        clues = stage.clues_for(row)
        assert lines_cost(clues, stage.count_tokens) <= budget
        return clues, stage.take_counters()

    # one token short: the 3 s clip captions become 6 s groups (2 clips each); nothing is dropped
    level1, counts = fit(lines_cost(full, stage.count_tokens) - 1)
    groups = [c for c in level1 if c.id.startswith("G")]
    assert [c.id for c in level1 if c.kind == "caption"] == ["G1", "G2", "G3"] and len(level1) == 17 - 3
    assert [(g.start_s, g.end_s) for g in groups] == [(clips[i][R.START_S], clips[i + 1][R.END_S]) for i in (0, 2, 4)]
    assert counts == {"rows_over_budget": 1, "rows_coarser_captions": 1, "clip_captions_merged": 3}
    # shorter still: one group for the whole video (the next window), still nothing dropped
    level2, counts = fit(lines_cost(level1, stage.count_tokens) - 1)
    assert [c.id for c in level2 if c.kind == "caption"] == ["G1"] and counts["clip_captions_merged"] == 5
    assert "clues_dropped_budget" not in counts
    # then cuts, lowest priority first (speech before events before captions ...), each counted
    cut, counts = fit(lines_cost(level2, stage.count_tokens) - 1)
    kinds = [k for k in CUT_ORDER if counts.get(f"clues_dropped_budget_{k}")]
    assert kinds == list(CUT_ORDER[1:1 + len(kinds)]) and kinds[0] == "speech"   # no caption steps in this video
    assert counts["clues_dropped_budget"] == len(level2) - len(cut) > 0
    # a window that holds almost nothing: the video caption is cut last
    tiny = _stage(scope="video", tasks=TEACHER_FREE, context_tokens=256, max_tokens=16)
    clues = tiny.clues_for(row)
    counts = tiny.take_counters()
    assert lines_cost(clues, tiny.count_tokens) <= tiny.clue_budget and clues[0].id == "V"
    assert counts["clues_dropped_budget"] == 17 - counts["clip_captions_merged"] - len(clues)
    assert tiny.take_counters() == {}                                   # reported once, then reset
    # the last clue standing is never dropped: shortened to what the window leaves, and counted
    alone = dict(row, **{R.CLIP_CAPTIONS: None, R.DENSE_EVENTS: None, R.TRANSCRIPT_SEGMENTS: None,
                         R.TRANSCRIPT_TEXT: None, R.ANNOTATIONS: None,
                         R.SOURCE_META: json.dumps({"caption": "A test pattern fills the screen. " * 200})})
    (only,) = tiny.clues_for(alone)
    counts = tiny.take_counters()
    assert only.id == "V" and only.text.endswith("…") and lines_cost([only], tiny.count_tokens) <= tiny.clue_budget
    assert counts["clue_chars_cut"] > 6000 - len(only.text) and "clues_dropped_budget" not in counts
    # samples from the cut clues still lie inside the video
    samples = _kept(tiny.process_batch(clips))
    assert samples and all(0.0 <= t <= row[R.END_S] for s in samples for t in _times(s))


# --- the filters at scope: video ---------------------------------------------------------------------------

def test_filters_accept_scope_video_and_group_only_where_needed(tmp_path):
    stages = [{"generate": {"scope": "video", "tasks": ["caption"]}}, {"timestamps": {"scope": "video"}},
              {"verify_claims": {"scope": "video"}}, {"blind": {"scope": "video"}}, {"dedup": {"scope": "video"}}]
    cfg = parse_config({"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "out")}, "stages": stages})
    grouping = {name: _class(name).grouping(c) for name, c in cfg.stage_specs}
    assert grouping == {"generate": R.SOURCE_URI, "timestamps": None, "verify_claims": R.SOURCE_URI, "blind": None,
                        "dedup": R.SOURCE_URI}
    # `vdata plan`'s spend estimate: per video, up to what the window leaves for the prompt
    (spend,) = GenerateStage(GenerateConfig(teacher="t", scope="video", context_tokens=16384,
                                            tasks={"open_qa": {"per_clip": 3}})).teacher_plan(8, (252, 448))
    assert spend["per"] == "video" and spend["requests_per_row"] == 3 and spend["prompt_tokens"] == 16384 - 384
    from vdata.schemas.config import ConfigError

    with pytest.raises(ConfigError, match=r"stages\[0\]\.generate\.scope"):
        parse_config({"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "o")},
                      "stages": [{"generate": {"scope": "scene", "tasks": ["caption"]}}]})


def _class(name):
    from vdata.stages import stage_class

    return stage_class(name)


def test_filters_on_video_scope_samples(video):
    _, clips = video
    duration = clips[0][R.DURATION_S]
    samples = _kept(_stage(scope="video", tasks=TEACHER_FREE).process_batch(clips))
    grounding = next(s for s in samples if s[R.TASK] == "grounding")
    # timestamps: a span past the end of the video is rejected, with the video's bounds
    late = dict(grounding, **{R.ANSWER_SPANS: [{"start_s": duration - 1.0, "end_s": duration + 4.0}]})
    kept, rejected = TimestampsStage().process_batch([grounding, late])
    assert kept[R.V_TIMESTAMPS_VALID] and rejected.reason == "bad_timestamps" and rejected.detail["scope"] == "video"
    # dedup: video-scope samples are compared with each other, not with a clip's sample of the same words
    clip_twin = dict(grounding, **{R.SAMPLE_ID: "clip-twin", R.SAMPLE_SCOPE: R.SCOPE_CLIP})
    video_twin = dict(grounding, **{R.SAMPLE_ID: "video-twin"})
    out = DedupStage(scope="video", similarity_max=None, index="local", seed_from_output=False)
    out.setup()
    verdicts = out.process_batch([grounding, clip_twin, video_twin])
    assert [isinstance(v, Reject) for v in verdicts] == [False, False, True]
    assert verdicts[2].reason == "duplicate" and verdicts[2].detail["duplicate_of"] == grounding[R.SAMPLE_ID]
    # blind: a video-scope question is checked like any other (the leak check needs no model)
    blind = BlindStage(scope="video", prior_model=None)
    blind.setup()
    leaky = dict(grounding, **{R.TASK: "open_qa", R.QUESTION: "Are colour bars shown?", R.ANSWER: "colour bars"})
    (verdict,) = blind.process_batch([leaky])
    assert isinstance(verdict, Reject) and verdict.reason == "blind_answerable"


def test_verify_claims_checks_against_the_whole_video(video):
    _, clips = video
    row = video_row(clips)
    claim = CAPTIONS[1]                                                 # true of clip 2 only
    question = {R.TASK: "open_qa", R.QUESTION: "What is shown?", R.ANSWER: claim, R.EVIDENCE: None}
    whole = dict(row, **question, **{R.SAMPLE_ID: "about-the-video"})
    first_clip = dict(clips[0], **question, **{R.SAMPLE_ID: "about-clip-1", R.SAMPLE_SCOPE: R.SCOPE_CLIP})
    title = dict(row, **{R.TASK: "open_qa", R.QUESTION: "What is the title?", R.ANSWER: "Six test patterns.",
                         R.EVIDENCE: None, R.SAMPLE_ID: "title"})
    settings = dict(undecided="unsupported", relevance_min=None)

    per_sample = VerifyClaimsStage(**settings)
    per_sample.setup()
    verdicts = per_sample.process_batch([whole, first_clip, title])
    assert not isinstance(verdicts[0], Reject) and verdicts[0][R.V_SUPPORTED_RATIO] == 1.0   # its video holds clip 2
    assert isinstance(verdicts[1], Reject) and verdicts[1].reason == "hallucination"         # clip 1 alone does not
    assert not isinstance(verdicts[2], Reject)                                               # the title annotation
    video_wide = VerifyClaimsStage(scope="video", **settings)
    video_wide.setup()
    verdicts = video_wide.process_batch([whole, first_clip])
    assert all(not isinstance(v, Reject) and v[R.V_SUPPORTED_RATIO] == 1.0 for v in verdicts)


# --- a runner build: the counts reach the manifest ---------------------------------------------------------

@pytest.mark.slow
def test_runner_build_at_video_scope_reports_truncations_in_the_manifest(video, tmp_path, in_process):
    from vdata.pipelines.runner import build

    path, _ = video
    long_caption = " ".join(f"In part {i} a test pattern fills the screen." for i in range(120))
    manifest = tmp_path / "videos.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["path", "caption"], [path, long_caption]])
    small = {"num_cpus": 0.25}
    cfg = parse_config({
        "name": "video-scope", "input": [{"manifest": str(manifest)}], "output": {"dir": str(tmp_path / "out")},
        "ray": {"progress": False},
        "stages": [{"probe": {"resources": small}}, {"shots": {"resources": small}},
                   {"generate": {"scope": "video", "context_tokens": 256, "max_tokens": 16, "resources": small,
                                 "tasks": ["caption"]}},
                   {"timestamps": {"scope": "video", "resources": small}},
                   {"dedup": {"scope": "video", "similarity_max": None, "resources": small}}]})
    result = build(cfg)
    import pyarrow.dataset as pads

    rows = pads.dataset(result.data_dir, format="parquet").to_table().to_pylist()
    assert len(rows) == 1, result.rejects_by_reason
    assert rows[0][R.SAMPLE_SCOPE] == R.SCOPE_VIDEO and rows[0][R.ANSWER] == long_caption
    assert rows[0][R.START_S] == 0.0 and rows[0][R.END_S] == rows[0][R.DURATION_S]
    stats = {s["stage"]: s for s in json.loads(open(result.manifest_path).read())["stages"]}
    counters = stats["generate"]["counters"]
    assert counters["videos"] == 1 and counters["rows_over_budget"] == 1 and counters["clue_chars_cut"] > 0
    assert stats["generate"]["rows_in"] == len(CUT_SOURCES)            # every clip, in one video row


# --- a real teacher: SmolLM2-135M (vLLM's CPU engine or llama.cpp) ---------------------------------------------

@pytest.mark.slow
def test_video_scope_questions_with_smollm(video, smollm):
    _, clips = video
    duration = clips[0][R.DURATION_S]
    stage = _stage({"writer": L.openai_teacher(smollm)}, teacher="writer", scope="video", context_tokens=4096,
                   max_tokens=160, tasks={"open_qa": {"per_clip": 2}, "mcq": {"per_clip": 1}, "grounding": {"per_clip": 1}})
    out = stage.process_batch(clips)
    samples = _kept(out)
    rejects = [r for r in out if isinstance(r, Reject)]
    print(f"\n[video scope smollm] {len(samples)} samples, rejects {[r.reason for r in rejects]}, "
          f"counters {dict(stage.counters)}")
    assert all(r.reason in {"teacher_error", "bad_reply", "bad_options", "off_target", "ambiguous_moment", "truncated"}
               for r in rejects), [(r.reason, r.message) for r in rejects]
    # the 135M writer now and then runs past max_tokens (on vLLM, its tokens vary with the CPU batches):
    # each failed call must be a `teacher_error` or (a reply cut short) `bad_reply` reject, never a lost sample
    assert samples and stage.teacher.stats()["failures"] <= sum(r.reason in ("teacher_error", "bad_reply") for r in rejects)
    clue_ids = {c.id for c in stage.clues_for(video_row(clips))}
    for s in samples:
        assert s[R.SAMPLE_SCOPE] == R.SCOPE_VIDEO and s[R.QUESTION] and s[R.ANSWER]
        assert all(0.0 <= t <= duration for t in _times(s))
    assert len(clue_ids) == 17 and not stage.counters.get("rows_over_budget")   # 4096 tokens hold this video
