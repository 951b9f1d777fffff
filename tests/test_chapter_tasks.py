"""Chapter tasks on a video's annotated chapters follow VidChapters-7M's own rules: a video with one chapter is
no chaptered video (collection/desc2chapters.py keeps descriptions with 2+ chapters), and a chapter covering
90 % of the video or more is no grounding target (preproc/chapters_to_vmr.py). Teacher-free."""
from __future__ import annotations

from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate.stage import GenerateConfig, GenerateStage

TASKS = {"chapter_title": {}, "chapter_grounding": {}}


def _stage() -> GenerateStage:
    stage = GenerateStage(GenerateConfig(tasks=TASKS, scope="video"), RunContext(output_dir="", teachers={}))
    stage.setup()
    return stage


def _row(chapters: list[tuple[float, float, str]], duration: float = 60.0) -> dict:
    return {R.SOURCE_URI: "talk.mp4", R.VIDEO_ID: "v1", R.CLIP_ID: "v1:video", R.START_S: 0.0, R.END_S: duration,
            R.DURATION_S: duration, R.SAMPLE_SCOPE: R.SCOPE_VIDEO,
            R.ANNOTATIONS: {"chapters": [{"start_s": a, "end_s": b, "title": t} for a, b, t in chapters]}}


def _made(row: dict) -> tuple[dict, dict]:
    stage = _stage()
    free, pending = stage.plan_clip(row, stage.clues_for(row))
    assert not pending   # teacher-free
    samples = {}
    rejects = {}
    for r in free:
        if isinstance(r, Reject):
            rejects.setdefault(r.row[R.TASK], []).append(r)
        else:
            samples.setdefault(r[R.TASK], []).append(r)
    return samples, rejects


def test_a_video_with_one_chapter_makes_no_chapter_sample():
    samples, rejects = _made(_row([(0.0, 60.0, "In the garden")]))
    assert not samples
    for task in TASKS:
        (rej,) = rejects[task]
        assert rej.reason == "missing_annotation" and "1 chapter(s), 2 needed" in rej.message


def test_a_chapter_over_nearly_the_whole_video_is_not_grounded():
    samples, _ = _made(_row([(0.0, 3.0, "Intro"), (3.0, 60.0, "The whole talk")]))
    grounded = [s[R.QUESTION] for s in samples["chapter_grounding"]]
    assert len(grounded) == 1 and "Intro" in grounded[0]
    assert len(samples["chapter_title"]) == 2   # a title question over its span still asks something
    samples, _ = _made(_row([(0.0, 20.0, "Intro"), (20.0, 45.0, "Demo"), (45.0, 60.0, "Questions")]))
    assert len(samples["chapter_grounding"]) == 3


def test_a_question_for_the_chapters_end_needs_its_span():
    """docs/template_tasks.md showed "begin and end?" with the default `answer: start`: one time for two."""
    import pytest
    from pydantic import ValidationError

    from vdata.stages.generate.segments import ChapterGroundingTask

    with pytest.raises(ValidationError, match=r"templates: .*asks for the chapter's end.*answer: span"):
        ChapterGroundingTask(templates=['When does the chapter "$title" begin and end?'])
    with pytest.raises(ValidationError, match=r"templates_by_dataset.howto: .*asks for the chapter's end"):
        ChapterGroundingTask(templates_by_dataset={"howto": ['How long is "$title"?']})
    ChapterGroundingTask(answer="span", templates=['When does the chapter "$title" begin and end?'])
    ChapterGroundingTask(templates=['When does the chapter "$title" start?'])


def test_grounding_and_dense_caption_with_nothing_timed_are_counted():
    """docs/video_scope.md's example had neither dense events nor speech: grounding made nothing, and said nothing."""
    stage = GenerateStage(GenerateConfig(tasks={"grounding": {"rephrase": False}, "dense_caption": {}}, scope="video"),
                          RunContext(output_dir="", teachers={}))
    stage.setup()
    row = dict(_row([]), **{R.CAPTION: "A red kite flies over a green field."})
    free, pending = stage.plan_clip(row, stage.clues_for(row))
    assert free == [] and pending == []
    assert stage.counters["grounding_no_target"] == 1 and stage.counters["dense_caption_too_few_events"] == 1
