"""preference_pairs: chosen / rejected answers for DPO, ranked by scores kept in the row (VideoSAVi).

VideoSAVi (Kulkarni & Fazli, arXiv 2412.00624) has the model write several answers per question, critique
them, and rank them with a vision–text (CLIP) score to make DPO pairs. Here, per question:

1. *Candidates*: `candidates` answers from the writer teachers (`teachers:`, default the stage's teacher) at
   the `temperatures` listed; candidate j uses setting j mod (teachers × temperatures) and its own seed.
2. *Ranking* (a second round of requests, sent when all candidates of the question are back): a judge
   teacher (`judge:`) scores every candidate 1–10 in one request (shown in a seeded shuffled order, so
   position says nothing), and with `self_critique: true` each writer critiques and scores its own answer.
   With `vision_text_model:` (a CLIP/SigLIP-family checkpoint: a local dir, `package:<module>`, or a hub id
   when online; `vdata models tiny-clip DIR` builds a random one for tests) each candidate also gets a
   vision–text score, computed here with no request: the cosine of the answer's text embedding with the
   mean embedding of the row's frames, mapped to 0–1 as (cos + 1) / 2.
3. Each candidate's `score` is the weighted mean (`weights`) of its scores that exist, on 0–1. The best
   is `chosen`, the worst whose text differs from it is `rejected`; every candidate, each score and its
   rank stay in `preference_candidates`. A question with < 2 distinct answers is a `no_preference` reject,
   one whose score gap is below `min_margin` (or none at all: the best and the worst tie, and the pair
   would be decided by position) a `no_margin` reject.

A candidate that reached the answer cap (`max_answer_chars`: the schema closes the string there and the
reply still ends "stop", outside check h25 F4) was cut mid-sentence: it keeps its complete sentences (as
a caption stopped at max_tokens does) or, with none, is no candidate (`error` "truncated: …"); the
stage's counters say how many. A judge reply that fails its schema after the teacher's re-asks (scores
out of range, h25 F5) is asked once more (the answers shown in reverse order); a pair whose judge (weight
> 0) still gave no scores is a `judge_failed` reject, never a pair ranked by the writers' self-critique
alone. The counters `preference_pairs_ranked_by_<scores>` say which scores ranked the kept pairs. A
reject that came of a failure that may pass (a timeout, a 5xx, a cut response body) is marked
`retry_on_resume`.

Questions are teacher-free: `questions:` (default VideoSAVi-style what / why / how questions), a
different one per index, rotated by a hash of the row.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from vdata.prompts import complete_sentences, unescape_placeholders
from vdata.schemas import records as R
from vdata.teachers.types import TRANSIENT_ERRORS

from .clues import Clue, clue_lines, evidence
from .common import (Pending, Strict, TaskFamily, sample_base, sampling, stable_hash, strict_object, teacher_request,
                     text_field)

if TYPE_CHECKING:
    from .common import StageView

TASK = "preference_pairs"
DEFAULT_QUESTIONS = ["What happens in this video?", "How does the scene change over the course of the video?",
                     "Why does the main subject of the video act the way it does?",
                     "What is the most important detail in this video, and why?"]
SCORE_KINDS = ("judge", "self_critique", "vision_text")
SCORE_FIELDS = {"judge": "judge_score", "self_critique": "self_score", "vision_text": "vision_text_score"}
SETTLED = ("schema_invalid", "reasoning_only")   # the reply itself failed (asking again may help), not the server


class PreferenceTask(Strict):
    per_clip: int = Field(1, ge=0, le=16)                 # questions per row
    questions: list[str] = Field(default_factory=lambda: list(DEFAULT_QUESTIONS), min_length=1)
    candidates: int = Field(4, ge=2, le=16)               # answers per question
    teachers: list[str] = Field(default_factory=list)    # candidate writers; empty: the stage's teacher
    temperatures: list[float] = Field(default_factory=lambda: [0.3, 0.7, 1.0], min_length=1)
    judge: str | None = None                              # the ranking teacher; None: the stage's teacher
    self_critique: bool = True                            # each writer also scores its own answer
    vision_text_model: str | None = None                  # CLIP/SigLIP-family model: local dir, package:, hub id
    weights: dict[str, float] = Field(default_factory=lambda: {"judge": 1.0, "self_critique": 0.5, "vision_text": 1.0})
    min_margin: float = Field(0.0, ge=0, le=1)            # chosen − rejected score below this: no pair

    @field_validator("temperatures")
    @classmethod
    def _temps(cls, v):
        if any(not 0 <= t <= 2 for t in v):
            raise ValueError("each temperature must be within 0..2")
        return v

    @model_validator(mode="after")
    def _check(self):
        unknown = sorted(set(self.weights) - set(SCORE_KINDS))
        if unknown:
            raise ValueError(f"weights: unknown score(s) {unknown}; allowed: {', '.join(SCORE_KINDS)}")
        return self


def _norm(text: str | None) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", (text or "").lower()))


def _question(tcfg: PreferenceTask, row: dict, index: int) -> str:
    start = stable_hash(TASK, row[R.CLIP_ID]) % len(tcfg.questions)
    return tcfg.questions[(start + index) % len(tcfg.questions)]


def _plan(stage: StageView, row: dict, clues: list[Clue], tcfg: PreferenceTask):
    prompt = stage.prompts["preference_answer"]
    writers = tcfg.teachers or [None]
    settings = [(w, t) for w in writers for t in tcfg.temperatures]
    schema = strict_object({"answer": text_field(stage.config.max_answer_chars)})
    pending = []
    for q in range(tcfg.per_clip):
        question = _question(tcfg, row, q)
        group = {"question": question, "index": q, "waiting": tcfg.candidates,
                 "candidates": [None] * tcfg.candidates, "prompt": prompt}
        text = prompt.render(clues=clue_lines(clues), question=question)
        for j in range(tcfg.candidates):
            writer, temperature = settings[j % len(settings)]
            req = teacher_request(stage, prompt, text, clues, schema, "preference_answer", (row[R.CLIP_ID], TASK, q, j))
            req.sampling = dict(sampling(stage.config, row[R.CLIP_ID], TASK, q, j), temperature=temperature)
            pending.append(Pending(TASK, q, "preference", prompt, req, {"kind": "candidate", "group": group, "j": j,
                                                                        "temperature": temperature}, teacher=writer))
    return [], pending


def _teacher_name(stage: StageView, name: str | None) -> tuple[str | None, str | None]:
    from ..base import Stage

    teacher = stage.teacher if name is None else Stage.teacher(stage, name)
    return (teacher.name, teacher.model_name) if teacher is not None else (name, None)


def _finish(stage: StageView, row: dict, clues: list[Clue], p: Pending, reply: dict, base: dict, state: dict):
    group = p.extra["group"]
    # the question's row is keyed by the answer prompt, whichever reply (candidate, judge, critique) ends it
    base = sample_base(stage, row, TASK, group["index"], group["prompt"].id)
    base[R.QUESTION_TYPE] = "preference"
    kind = p.extra["kind"]
    _note_failure(group, reply)
    if kind == "candidate":
        teacher, model = _teacher_name(stage, p.teacher)
        answer, error = _candidate_text(stage, reply)
        group["candidates"][p.extra["j"]] = {
            "teacher": teacher, "model": model, "temperature": p.extra["temperature"], "text": answer or None,
            "judge_score": None, "self_score": None, "vision_text_score": None, "score": None, "rank": None,
            "error": error, "writer": p.teacher}
        group["waiting"] -= 1
        return _rank_requests(stage, row, clues, group, base, state) if group["waiting"] == 0 else []
    cands = group["candidates"]
    if kind == "judge" and "_error" in reply:
        if reply["_error"].split(":", 1)[0] in SETTLED and not p.extra.get("again"):
            # its reply failed the schema after the teacher's own re-asks: one fresh request, the answers in
            # reverse order (another prompt, so no cached reply), before the pair goes without the judge
            stage.counters["preference_judge_asked_again"] += 1
            state.setdefault("followups", []).append(
                _judge_pending(stage, row, clues, group, list(reversed(p.extra["order"])), again=True))
            return []
        group["judge_error"] = reply["_error"]
        stage.counters["preference_judge_failed"] += 1
    elif kind == "judge":
        order = p.extra["order"]   # shown position -> candidate
        for shown, score in enumerate(reply.get("scores") or []):
            if shown < len(order):
                cands[order[shown]]["judge_score"] = (float(score) - 1) / 9
    elif kind == "critique" and "_error" not in reply and reply.get("score") is not None:
        cands[p.extra["j"]]["self_score"] = (float(reply["score"]) - 1) / 9
    group["waiting"] -= 1
    return _pair(stage, row, clues, group, base) if group["waiting"] == 0 else []


def _note_failure(group: dict, reply: dict) -> None:
    """A failed request of the question's that may pass on its own (a timeout, a 5xx, a cut response body):
    a reject of the question is then marked for the next run (`retry_on_resume`)."""
    if "_error" in reply and str(reply["_error"]).split(":", 1)[0] in TRANSIENT_ERRORS:
        group["transient"] = True


def _candidate_text(stage: StageView, reply: dict) -> tuple[str, str | None]:
    """(the candidate's answer, why it is none). One that reached `max_answer_chars` was cut there (the schema
    closes the string at the cap, the reply ends "stop"): its complete sentences, or no candidate."""
    if "_error" in reply:
        return "", reply["_error"]
    raw = reply.get("answer") or ""
    answer = raw.strip()
    if not answer:
        return "", "empty answer"
    cap = stage.config.max_answer_chars
    if len(unescape_placeholders(raw)) < cap:
        return answer, None
    whole = complete_sentences(answer)
    stage.counters["preference_candidates_trimmed" if whole else "preference_candidates_cut_off"] += 1
    if whole:
        return whole, None
    return "", (f"truncated: the answer reached max_answer_chars={cap} and was cut mid-sentence, "
                "with no complete sentence before the cut")


def _judge_pending(stage: StageView, row: dict, clues: list[Clue], group: dict, order: list[int],
                   again: bool = False) -> Pending:
    """The judge's request: every usable candidate, in the shown `order`, scored 1-10."""
    tcfg: PreferenceTask = stage.config.tasks.preference_pairs
    key = (row[R.CLIP_ID], TASK, group["index"])
    lines = "\n".join(f"Answer {k + 1}: {group['candidates'][j]['text']}" for k, j in enumerate(order))
    judge = stage.prompts["preference_judge"]
    score = {"type": "integer", "minimum": 1, "maximum": 10}
    n = len(order)
    schema = strict_object({"scores": {"type": "array", "items": score, "minItems": n, "maxItems": n}})
    text = judge.render(clues=clue_lines(clues), question=group["question"], answers=lines, count=n)
    ask = (*key, "judge", "again") if again else (*key, "judge")   # the first keeps its key (and cache entry)
    req = teacher_request(stage, judge, text, clues, schema, "preference_judge", ask)
    return Pending(TASK, group["index"], "preference", judge, req, {"kind": "judge", "group": group, "order": order,
                                                                   "again": again}, teacher=tcfg.judge)


def _rank_requests(stage: StageView, row: dict, clues: list[Clue], group: dict, base: dict, state: dict):
    """All candidates are back: a reject if they do not differ, else the ranking round."""
    tcfg: PreferenceTask = stage.config.tasks.preference_pairs
    usable = [j for j, c in enumerate(group["candidates"]) if c["text"]]
    if len({_norm(group["candidates"][j]["text"]) for j in usable}) < 2:
        why = sorted({c["error"].split(":", 1)[0] for c in group["candidates"] if c["error"]})
        return [_reject(stage, base, group, "no_preference", f"{len(usable)} usable candidate(s) of "
                        f"{tcfg.candidates}, fewer than 2 distinct answers"
                        + (f" (unusable: {', '.join(why)})" if why else ""))]
    key = (row[R.CLIP_ID], TASK, group["index"])
    order = sorted(usable, key=lambda j: stable_hash("judge-order", *key, j))
    follow = [_judge_pending(stage, row, clues, group, order)]
    if tcfg.self_critique:
        critique = stage.prompts["preference_critique"]
        score = {"type": "integer", "minimum": 1, "maximum": 10}
        schema = strict_object({"critique": text_field(200), "score": score})
        for j in usable:
            c = group["candidates"][j]
            text = critique.render(clues=clue_lines(clues), question=group["question"], answer=c["text"])
            req = teacher_request(stage, critique, text, clues, schema, "preference_critique", (*key, "critique", j))
            follow.append(Pending(TASK, group["index"], "preference", critique, req,
                                  {"kind": "critique", "group": group, "j": j}, teacher=c["writer"]))
    if tcfg.vision_text_model is not None:   # scores for every usable candidate, no request
        texts = [group["candidates"][j]["text"] for j in usable]
        for j, s in zip(usable, vision_text_scores(stage, tcfg.vision_text_model, row, texts)):
            group["candidates"][j]["vision_text_score"] = s
    group["waiting"] = len(follow)
    group["evidence"] = evidence([c for c in clues if c.kind != "frame"] or clues)
    state.setdefault("followups", []).extend(follow)
    return []


def vision_text_scores(stage: StageView, model_spec: str, row: dict, texts: list[str]) -> list[float | None]:
    """(cos + 1) / 2 of each text with the row's mean frame embedding; None for every text when the row
    has no frames (the score is then left out of the weighted mean, not counted as 0)."""
    frames = row.get(R.FRAMES) or []
    if not frames or not texts:
        return [None] * len(texts)
    from vdata.media.images import decode_jpeg
    from vdata.teachers.vision_text import VisionTextModel, mean_embedding, similarity

    models = stage.__dict__.setdefault("_vision_text_models", {})   # one load per stage instance
    model = models.get(model_spec) or models.setdefault(model_spec, VisionTextModel(model_spec))
    video = mean_embedding(model.embed_images([decode_jpeg(f[R.FRAME_JPEG]) for f in frames]))
    cosines = similarity(model.embed_texts(texts), video[None, :])[:, 0]
    return [round((float(c) + 1.0) / 2.0, 6) for c in cosines]


def _pair(stage: StageView, row: dict, clues: list[Clue], group: dict, base: dict):
    tcfg: PreferenceTask = stage.config.tasks.preference_pairs
    cands = group["candidates"]
    fields = SCORE_FIELDS
    for c in cands:
        parts = [(tcfg.weights.get(k, 0.0), c[f]) for k, f in fields.items() if c[f] is not None]
        total = sum(w for w, _ in parts)
        c["score"] = sum(w * s for w, s in parts) / total if c["text"] and total > 0 else None
    ranked = sorted((j for j, c in enumerate(cands) if c["score"] is not None), key=lambda j: (-cands[j]["score"], j))
    for rank, j in enumerate(ranked):
        cands[j]["rank"] = rank
    if group.get("judge_error") and tcfg.weights.get("judge", 0.0) > 0:
        # the writers' self-critique alone is no judged preference (a small writer scores its own echo 10)
        return [_reject(stage, base, group, "judge_failed", "the judge gave no usable scores "
                        f"({group['judge_error'][:200]}): the pair is not ranked by the other scores alone",
                        judge_error=group["judge_error"])]
    if not ranked:
        return [_reject(stage, base, group, "unranked", "no candidate got a score (judge and critiques failed)")]
    best = cands[ranked[0]]
    worse = [j for j in reversed(ranked) if _norm(cands[j]["text"]) != _norm(best["text"])]
    if not worse:
        return [_reject(stage, base, group, "no_preference", "every scored candidate says the same as the best")]
    worst = cands[worse[0]]
    gap = best["score"] - worst["score"]
    if gap <= 0:   # a tie: "chosen" would only be the candidate listed first, a preference DPO must not learn
        return [_reject(stage, base, group, "no_margin", "every scored candidate got the same score "
                        f"({best['score']:.3f}): no candidate is preferred")]
    if gap < tcfg.min_margin:
        return [_reject(stage, base, group, "no_margin", f"score gap {gap:.3f} < min_margin {tcfg.min_margin}")]
    used = [k for k, f in fields.items()
            if tcfg.weights.get(k, 0.0) > 0 and any(cands[j][f] is not None for j in ranked)]
    stage.counters[f"preference_pairs_ranked_by_{'+'.join(used)}"] += 1   # which scores decided the kept pairs
    out = dict(base)
    out.update({R.QUESTION: group["question"], R.ANSWER: best["text"],
                R.CHOSEN: best["text"], R.REJECTED: worst["text"], R.EVIDENCE: group["evidence"],
                R.PREFERENCE_CANDIDATES: _public(cands), R.SAMPLE_TEACHER: best["teacher"],
                R.SAMPLE_MODEL: best["model"]})
    return [out]


def _public(cands: list[dict]) -> list[dict]:
    return [{k: v for k, v in c.items() if k != "writer"} for c in cands]


def _reject(stage: StageView, base: dict, group: dict, reason: str, message: str, **detail):
    if group.get("transient"):   # a request of this question failed in a way that may pass: the next run asks again
        detail[R.RETRY_ON_RESUME] = True
    return stage.reject(base, reason, f"{TASK} #{group['index']}: {message}", question=group["question"],
                        candidates=_public(group["candidates"]), **detail)


PREFERENCE_PAIRS = TaskFamily(
    PreferenceTask, _plan, _finish, prompts=("preference_answer", "preference_judge", "preference_critique"),
    needs_teacher=lambda tcfg: True, handles_errors=True,
    teachers=lambda tcfg: [*tcfg.teachers, *([tcfg.judge] if tcfg.judge else [])])
