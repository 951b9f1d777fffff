"""Teacher spend estimates of the sample stages (generate, verify_claims, blind, single_frame) for `vdata plan`.

Each stage's `teacher_plan()` calls its function here (see `Stage.teacher_plan` for the row format).
The numbers are model-free upper bounds per row reaching the stage: every optional request counted
(a claim the string tier already settles costs nothing at run time), prompt text at half its caps.
They sit apart from the stages so that the estimate of a stage is read and changed in one place.
"""
from __future__ import annotations

from .accounting import image_tokens

CHARS_PER_TOKEN = 4


def _row(teacher: str, requests: float, prompt_tokens: float, completion_tokens: int, per: str) -> dict:
    return {"teacher": teacher, "requests_per_row": requests, "prompt_tokens": int(prompt_tokens),
            "completion_tokens": completion_tokens, "per": per}


def _frames(config, frames_per_clip: int, frame_hw: tuple[int, int]) -> int:
    """Image tokens of the frames a stage sends with `use_frames` (0 without)."""
    if not getattr(config, "use_frames", False):
        return 0
    n = min(config.max_frames, frames_per_clip or config.max_frames)
    return n * (image_tokens(*frame_hw) + 12)   # + the line naming each frame


def generate_spend(config, frames_per_clip: int, frame_hw: tuple[int, int]) -> list[dict]:
    """Per clip: one request per question sample (open_qa, mcq, cot; `candidates` each with answer_first),
    per rephrased grounding sample, and one each for dense captions from speech and chapters; caption
    samples cost nothing."""
    if not config.teacher:
        return []
    t = config.tasks
    # answer-first questions are written `candidates` times each (all asked at once; the first grounded one is kept)
    questions = [getattr(t, k) for k in ("open_qa", "mcq", "cot") if getattr(t, k) is not None]
    requests = sum(q.per_clip * (q.candidates if getattr(q, "answer_first", False) else 1) for q in questions)
    if t.grounding is not None and t.grounding.rephrase:
        requests += t.grounding.per_clip
    if t.dense_caption is not None and t.dense_caption.from_speech:
        requests += 1
    if t.chapter is not None:
        requests += 1
    if getattr(t, "speech_captions", None) is not None:   # one request per narration window; one assumed per clip
        requests += 1
    # one request per sample (a clue question's open twin is free)
    for k in ("grounded_qa", "reasoning_localization", "highlights", "clue_qa", "false_premise"):
        if getattr(t, k, None) is not None:
            requests += getattr(t, k).per_clip
    if getattr(t, "summarization", None) is not None:
        requests += 1
    clues = 1 + config.max_events + config.max_segments
    prompt = 250 + clues * config.max_clue_chars / CHARS_PER_TOKEN / 2 + _frames(config, frames_per_clip, frame_hw)
    out = [_row(config.teacher, requests, prompt, config.max_tokens, "clip")] if requests else []
    return out + _preference_spend(config, getattr(t, "preference_pairs", None), prompt)


def _preference_spend(config, task, prompt: float) -> list[dict]:
    """preference_pairs, per question: each candidate from its writer (+ that writer's self-critique when
    on), and one judge request that reads every candidate."""
    if task is None or not task.per_clip:
        return []
    settings = [w for w in (task.teachers or [config.teacher]) for _ in task.temperatures]
    per_writer: dict[str, int] = {}
    for j in range(task.candidates):
        w = settings[j % len(settings)]
        per_writer[w] = per_writer.get(w, 0) + 1
    answer = config.max_answer_chars / CHARS_PER_TOKEN
    out = [_row(w, n * task.per_clip, prompt, config.max_tokens, "clip") for w, n in per_writer.items()]
    if task.self_critique:
        out += [_row(w, n * task.per_clip, prompt + answer, 64, "clip") for w, n in per_writer.items()]
    out.append(_row(task.judge or config.teacher, task.per_clip, prompt + task.candidates * answer, 64, "clip"))
    return out


def verify_claims_spend(config, frames_per_clip: int, frame_hw: tuple[int, int]) -> list[dict]:
    """Per sample: a judge request for every claim the string tier leaves open (at most `max_claims`),
    plus the teacher splitter's request and the rewrite of a failing answer when those are on."""
    if not config.teacher:
        return []
    evidence = config.max_evidence_chars / CHARS_PER_TOKEN / 2
    out = [_row(config.teacher, config.max_claims, 150 + evidence + _frames(config, frames_per_clip, frame_hw),
                config.max_tokens, "sample")]
    if config.splitter == "teacher":
        out.append(_row(config.teacher, 1, 120, 256, "sample"))
    if config.correct:   # at most one rewrite per round (a failing sample; an upper bound)
        out.append(_row(config.teacher, getattr(config, "correct_rounds", 1), 200 + evidence, 160, "sample"))
    return out


def blind_spend(config, frames_per_clip: int, frame_hw: tuple[int, int], mcq_options: int = 4) -> list[dict]:
    """Per sample: the question alone, asked `attempts` times (MCQ: one per option by default,
    `mcq_options` assumed) or `open_attempts` times."""
    if not config.teacher:
        return []
    attempts = max(config.attempts or mcq_options, config.open_attempts)
    return [_row(config.teacher, attempts, 140, config.max_tokens, "sample")]


def single_frame_spend(config, frames_per_clip: int, frame_hw: tuple[int, int], mcq_options: int = 4) -> list[dict]:
    """Per sample: one frame and the question, asked `attempts` times (one per option by default,
    `mcq_options` assumed)."""
    return [_row(config.teacher, config.attempts or mcq_options, 160 + image_tokens(*frame_hw), config.max_tokens,
                 "sample")]


def labels_spend(config, frames_per_clip: int, frame_hw: tuple[int, int]) -> list[dict]:
    """Per sample: with `rationalize`, one label-conditioned explanation per round (an upper bound: only
    samples that miss their label ask)."""
    if not getattr(config, "rationalize", False) or not config.teacher:
        return []
    return [_row(config.teacher, config.rationalize_rounds, 150 + config.max_evidence_chars / CHARS_PER_TOKEN / 2,
                 config.max_tokens, "sample")]


# Stage name -> its estimate, read by Stage.teacher_plan. A stage not listed asks no teacher, or
# estimates itself (caption, video_caption; generate widens the rows at video scope).
SPEND_BY_STAGE = {"generate": generate_spend, "verify_claims": verify_claims_spend, "blind": blind_spend,
                  "single_frame": single_frame_spend, "labels": labels_spend}
