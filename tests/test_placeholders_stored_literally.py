r"""A caption, transcript or annotation text that looks like a template ("{{ foo }}", "{% if %}", even a time
placeholder "{{t:5}}") is text: the teacher's prompt shows it as written, and a sample stores it escaped
(`escape_placeholders`) so that every export's time rendering gives it back as written, never as a time.

Teacher-free: the generate stage plans its requests (the teacher is never reached) and writes the
samples that need no teacher; speech_captions reads a given reply.
"""
from __future__ import annotations

from vdata.exporters.timefmt import TimeFormat
from vdata.prompts import escape_placeholders
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate.clues import evidence
from vdata.stages.generate.common import sample_base
from vdata.stages.generate.speech_captions import SPEECH_CAPTIONS
from vdata.stages.generate.stage import GenerateConfig, GenerateStage
from vdata.teachers.types import TeacherResult

DEAD = {"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0, "timeout_s": 5}}
CAPTION = "A sign reads {{ foo }} and {{t:5}} on a wall."
SAID = "Type {% if x %} then {{ user.name }} and {{span:1,2}} into the box."
TITLE = "Templates {%- raw %} explained {{t:1}}"
SEGMENT = "The {{ bar }} step"
SOURCES = (CAPTION, SAID, TITLE, SEGMENT)
SECONDS = TimeFormat("seconds")


def _stage(tasks: dict) -> GenerateStage:
    stage = GenerateStage(GenerateConfig(teacher="t", tasks=tasks), RunContext(output_dir="", teachers=DEAD))
    stage.setup()
    return stage


def _row(**extra) -> dict:
    return {R.SOURCE_URI: "braces.mp4", R.VIDEO_ID: "v1", R.CLIP_ID: "v1_0_10", R.START_S: 0.0, R.END_S: 10.0,
            R.DURATION_S: 10.0, R.CAPTION: CAPTION,
            R.TRANSCRIPT_SEGMENTS: [{"start_s": 2.0, "end_s": 6.0, "text": SAID}],
            R.ANNOTATIONS: {"title": TITLE, "segments": [{"start_s": 1.0, "end_s": 4.0, "text": SEGMENT}]}, **extra}


def _prompt_text(pending) -> str:
    return "\n".join(part.text for p in pending for part in p.request.messages[-1].content if hasattr(part, "text"))


def test_clue_texts_reach_the_prompt_as_written_and_samples_escaped():
    stage = _stage({"caption": {}, "open_qa": {"per_clip": 1}})
    row = _row()
    clues = stage.clues_for(row)
    free, pending = stage.plan_clip(row, clues)
    prompt = _prompt_text(pending)
    for source in SOURCES:   # the teacher reads the source's text, not an escape of it
        assert source in prompt, (source, prompt)
    assert "{\\" not in prompt

    ev = evidence(clues)
    stored = ev["captions"] + [s["text"] for s in ev["transcript_spans"]]
    assert not [s for s in stored if "{{ " in s or "{{t:5}}" in s or "{{t:1}}" in s], stored   # none left to read
    assert escape_placeholders(SAID) in [s["text"] for s in ev["transcript_spans"]]
    assert any(s.endswith(escape_placeholders(SEGMENT)) for s in ev["captions"]), ev["captions"]
    rendered = [SECONDS.render_text(s) for s in stored]
    assert CAPTION in rendered and SAID in rendered and TITLE in rendered
    assert "1.0 - 4.0 seconds " + SEGMENT in rendered   # the generator's own placeholder still renders

    (caption,) = [s for s in free if s[R.TASK] == "caption"]
    assert caption[R.ANSWER] == escape_placeholders(CAPTION)
    assert SECONDS.render_text(caption[R.ANSWER]) == CAPTION   # not "... 5.0 seconds on a wall."
    assert caption[R.EVIDENCE]["captions"] == [escape_placeholders(CAPTION)]


def test_speech_caption_narration_and_captions_are_stored_escaped():
    stage = _stage({"speech_captions": {"window_words": 200}})
    row = _row()
    _, pending = SPEECH_CAPTIONS.plan(stage, row, [], stage.config.tasks.speech_captions)
    assert SAID in _prompt_text(pending)
    p = pending[0]
    copied = "Someone types {{ user.name }} into the box."
    reply = TeacherResult(request_id="r", parsed={"captions": [{"time_s": 3, "caption": copied}]})
    out = stage.finish(row, [], p, reply)   # as the stage reads every reply: escaped (reply_as_text)
    # vdata's own placeholder syntax in a reply is no time a teacher may write: rejected (h17 F8)
    timed = TeacherResult(request_id="r", parsed={"captions": [{"time_s": 3, "caption": copied[:-1] + " {{t:9}}."}]})
    assert [r.reason for r in stage.finish(row, [], p, timed)] == ["placeholder_in_reply"]
    (sample,) = [r for r in out if not isinstance(r, Reject)]
    assert sample[R.ANSWER] == "{{span:2,6}} " + escape_placeholders(copied)
    assert SECONDS.render_text(sample[R.ANSWER]) == "2.0 - 6.0 seconds " + copied
    (span,) = sample[R.EVIDENCE]["transcript_spans"]
    assert span["text"] == escape_placeholders(SAID) and SECONDS.render_text(span["text"]) == SAID


def test_a_teacher_reply_that_copies_a_placeholder_is_stored_as_text():
    """Any family: the open QA a teacher writes from a narration that says "{{ user.name }}" keeps it as words;
    one that writes vdata's own placeholder syntax ("{{t:9}}") is rejected (h17 F8: it was exported as the
    literal text `{{t:9}}`, teaching a model vdata's internal syntax)."""
    stage = _stage({"open_qa": {"per_clip": 1}})
    row = _row()
    clues = stage.clues_for(row)
    _, pending = stage.plan_clip(row, clues)
    (p,) = [q for q in pending if q.task == "open_qa"]
    question, answer = "What is typed {{ here }} into the box?", "They type {{ user.name }} into it."
    parsed = {"question": question, "answer": answer, "evidence": [c.id for c in clues][:1]}
    out = stage.finish(row, clues, p, TeacherResult(request_id="r", parsed=parsed))
    kept = [r for r in out if not isinstance(r, Reject)]
    for r in kept:
        assert SECONDS.render_text(r[R.ANSWER]) == answer and SECONDS.render_text(r[R.QUESTION]) == question
    assert kept, out
    timed = {**parsed, "question": "What is typed at {{t:9}} into the box?"}
    out = stage.finish(row, clues, p, TeacherResult(request_id="r", parsed=timed))
    assert [r.reason for r in out] == ["placeholder_in_reply"], out
