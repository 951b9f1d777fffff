"""multi_teacher (Panda-70M): several teachers and/or several samples per teacher each caption the clip
(side by side); every candidate is kept in `caption_candidates`; a selector picks one — a judge teacher
that scores the candidates against the frames (bounded JSON: integer scores + the best index), the
agreement between candidates (mean cosine similarity of MiniLM sentence embeddings), or, as Panda-70M
picks with its retrieval model, the vision–text similarity of each candidate with the clip's frames
(`similarity_model`, a CLIP/SigLIP-family checkpoint; score (cos + 1) / 2 against the mean frame embedding).
A clip left with one candidate, or with two under `agreement` (failed candidates), keeps the first unscored:
no choice was made (`caption_selection_score` null; the manifest counts `agreement_undecided`).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from vdata.schemas import records as R

from .common import Captioner, Clip, RowReject
from .multi_frame import describe
from .scheduler import TeacherFailure, settle

log = logging.getLogger("vdata.caption")


def agreement_scores(texts: list[str], embed: Callable[[list[str]], Any]) -> list[float]:
    """Each text's mean cosine similarity to the others (its agreement with the rest), in [-1, 1]."""
    import numpy as np

    if len(texts) < 2:
        return [1.0] * len(texts)
    vecs = np.asarray(embed(texts), dtype=np.float64)
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    sim = vecs @ vecs.T
    n = len(texts)
    return [float((sim[i].sum() - sim[i, i]) / (n - 1)) for i in range(n)]


def similarity_scores(model, frames_jpeg: list[bytes], texts: list[str]) -> list[float]:
    """Each text's (cos + 1) / 2 with the mean embedding of the frames, in [0, 1] (`model`: a
    vdata.teachers.vision_text.VisionTextModel)."""
    from vdata.media.images import decode_jpeg
    from vdata.teachers.vision_text import mean_embedding, similarity

    video = mean_embedding(model.embed_images([decode_jpeg(j) for j in frames_jpeg]))
    return [round((float(c) + 1.0) / 2.0, 6) for c in similarity(model.embed_texts(texts), video[None, :])[:, 0]]


def judge_schema(n: int) -> dict:
    return {"type": "object",
            "properties": {"scores": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 10},
                                      "minItems": n, "maxItems": n},
                           "best": {"type": "integer", "enum": list(range(n))}},
            "required": ["scores", "best"], "additionalProperties": False}


async def multi_teacher(cap: Captioner, clip: Clip) -> dict:
    c = cap.config
    mt = c.multi_teacher
    plan = []
    for name in (mt.teachers or [c.teacher]):
        for s in range(mt.samples_per_teacher):
            # sample 0 uses the teacher's own sampling; further samples are drawn with temperature
            # and distinct seeds so that they differ (and get distinct cache keys)
            sampling = None if s == 0 else {"temperature": mt.temperature, "seed": 1000 + s}
            plan.append((name, sampling, f"[{name}#{s}]"))
    outcomes = await cap.pool.gather([settle(describe(cap, clip, name, sampling, tag)) for name, sampling, tag in plan])
    candidates, failures = [], []
    for (name, _, tag), out in zip(plan, outcomes):
        if isinstance(out, TeacherFailure):
            failures.append(out)
            log.warning("caption: candidate %s of clip %s failed: %s", tag, clip.row.get(R.CLIP_ID), out)
        else:
            candidates.append({"teacher": name, "model": cap.teachers[name].model_name, "text": out[0],
                               "steps": out[1]})
    if len(candidates) < mt.min_candidates:
        if failures:
            raise failures[0]
        raise RowReject(cap.reject(clip.row, "too_few_candidates", f"caption: {len(candidates)} candidate(s), "
                                   f"fewer than multi_teacher.min_candidates={mt.min_candidates}"))
    texts = [cand["text"] for cand in candidates]
    # agreement cannot choose between two (each one's score is their one similarity, so the first would win
    # whatever it says): like a lone candidate, the first is kept unscored; the manifest counts these
    undecided = mt.selector == "agreement" and len(candidates) == 2
    if len(candidates) == 1 or undecided:
        scores, best = [None] * len(candidates), 0
        cap.undecided += undecided
    elif mt.selector == "agreement":
        scores = agreement_scores(texts, cap.embedder)
        best = max(range(len(scores)), key=lambda i: scores[i])
    elif mt.selector == "similarity":
        if not clip.frames:
            raise RowReject(cap.reject(clip.row, "no_frames", "caption: the similarity selector needs the clip's "
                                       "frames (run the frames stage before caption)"))
        scores = similarity_scores(cap.embedder, [f.jpeg for f in clip.frames], texts)
        best = max(range(len(scores)), key=lambda i: scores[i])
    else:
        judge = mt.judge or c.teacher
        listing = "\n\n".join(f"{i}: {text}" for i, text in enumerate(texts))
        req = cap.request(clip, "judge", clip.frames, {"candidates": listing, "num_candidates": len(texts)},
                          schema=judge_schema(len(texts)))
        res = await cap.ask(judge, req, "judge")
        scores = [min(max(int(s), 0), 10) / 10.0 for s in res.parsed["scores"]]
        best = int(res.parsed["best"])
    chosen = candidates[best]
    kept = [{"teacher": cand["teacher"], "model": cand["model"], "text": cand["text"], "score": score}
            for cand, score in zip(candidates, scores)]
    return cap.row(clip, caption=chosen["text"], teacher=chosen["teacher"], model=chosen["model"],
                   steps=chosen["steps"], candidates=kept, selection_score=scores[best])
