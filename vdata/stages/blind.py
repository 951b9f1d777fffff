"""blind: blind answerability — can a question be answered without the video?

Questions that a language model answers from the question alone leak their answer through language
priors (MMStar, VideoEval-Pro): they teach and test nothing about the video. Each sample is put to blind
answerers that see no frames, caption or transcript:

- **the teacher** (`teacher:`, text-only). Multiple choice: `attempts` tries (default: one per option),
  the options rotated so the correct one sits at a different place every time, the reply constrained to
  one option's text. A model that always takes the first (or last) option scores exactly 1/k, a guesser
  ≈ 1/k; only a model that finds the answer wherever it is scores high. Open-ended: its short answer is
  correct when it shares enough content words with the reference (token F1 ≥ `open_match_f1`);
- **an embedding prior** (`prior_model`, the packaged offline MiniLM): picks the option whose sentence
  embedding is closest to the question's; it counts as answering when it picks the correct option by a
  cosine margin ≥ `prior_margin` over the runner-up — the signature of absurd distractors ("Which animal
  barks? a dog / a carrot / a table"), whereas same-kind distractors (four colours) leave it at ≈ 0;
- **the leak check** (`leak_check`): every content word of an open answer already in the question; for a
  multiple-choice question, every content word of the correct option in the question while no distractor's
  are all there ("Which utensil, a fork, are the eggs whisked with?" → "a fork"): the question names its
  answer. (When a distractor stands in the question too, as in "Is the pan yellow or red?", it gives
  nothing away.)

`v_blind_correct` = the share of attempts answered correctly by the strongest blind answerer (the
teacher's share; 1.0 when the embedding prior or the leak check answers). Null for tasks without a question
to answer blind (grounding, reasoning localization, dense captions, chapters, captions, highlights,
summaries: their questions are fixed instructions, or their answers are times). `grounded_qa` is checked
on its text answer, its span left out. Above `max_blind_correct` the sample is rejected as
`blind_answerable`; its detail says which answerer found it.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from vdata.prompts import load_prompt
from vdata.schemas import records as R
from vdata.teachers.packaged import PACKAGED_MINILM

from .base import Reject, Resources, Stage, StageConfig

_STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "is", "are", "was", "were", "be", "it", "that",
         "this", "with", "for", "as", "by", "what", "which", "who", "how", "when", "where", "why", "does", "do", "did",
         "video", "clip", "shown", "seen", "there", "its", "from", "into", "one"}


def content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", (text or "").lower()) if w not in _STOP]


def token_f1(pred: str, ref: str) -> float:
    p, r = content_words(pred), content_words(ref)
    if not p or not r:
        return 0.0
    common = 0
    pool = list(r)
    for w in p:
        if w in pool:
            pool.remove(w)
            common += 1
    if not common:
        return 0.0
    prec, rec = common / len(p), common / len(r)
    return 2 * prec * rec / (prec + rec)


def answer_leaked(question: str, answer: str) -> bool:
    ans = set(content_words(answer))
    return bool(ans) and ans <= set(content_words(question))


def option_leaked(question: str, options: list[str], answer_index: int) -> bool:
    """An MCQ whose question names its correct option (all its content words stand in the question) and
    none of its distractors: reading the question is enough to pick the answer."""
    return answer_leaked(question, options[answer_index]) and not any(
        answer_leaked(question, o) for i, o in enumerate(options) if i != answer_index)


def reference_text(answer: str) -> str:
    """An answer as a blind answerer could say it: time placeholders ("({{span:0,9}})" of grounded_qa) out."""
    return re.sub(r"\(?\s*\{\{[^{}]*\}\}\s*\)?", " ", answer or "").strip()


class BlindConfig(StageConfig):
    # Accepted at both scopes so that a video-scope pipeline reads the same throughout. The check sees no
    # visual, so it is the same for a question about a clip or about the whole video (`sample_scope`).
    scope: Literal["clip", "video"] = "clip"
    teacher: str | None = None            # a text-only teacher (no video is sent); None: prior + leak only
    prior_model: str | None = PACKAGED_MINILM   # None: no embedding prior
    prior_margin: float = Field(0.1, gt=0, le=2)
    attempts: int | None = Field(None, ge=1, le=16)   # MCQ: None = one per option (every position once)
    open_attempts: int = Field(1, ge=1, le=16)
    open_match_f1: float = Field(0.6, gt=0, le=1)
    leak_check: bool = True
    # the tasks whose question a text-only model could answer (clue_qa, false_premise, text_qa, ... are stored
    # as mcq / open_qa); the others ask for times or follow a fixed instruction, nothing to answer blind
    tasks: list[str] = Field(default_factory=lambda: ["mcq", "open_qa", "cot", "grounded_qa"])
    max_blind_correct: float | None = Field(0.5, ge=0, le=1)   # None: score only
    max_tokens: int = Field(48, ge=4)
    prompts: dict[str, str] = Field(default_factory=dict)


class BlindStage(Stage):
    name = "blind"
    version = 2   # 2: an MCQ whose question names its correct option (and no distractor) is a leak
    HUB_MODEL_FIELDS = ("prior_model",)
    Config = BlindConfig
    reads = (R.SAMPLE_ID, R.TASK, R.QUESTION, R.ANSWER, R.OPTIONS, R.ANSWER_INDEX)
    writes = (R.V_BLIND_CORRECT,)
    default_resources = Resources(num_cpus=0.5, batch_size=16)
    uses_actors = True
    is_filter = True

    @classmethod
    def grouping(cls, config) -> str | None:
        return cls.group_by   # per sample at either scope: no need to gather whole videos

    def setup(self) -> None:
        cfg = self.config
        self.teacher = None
        if cfg.teacher:   # the run's shared, request-cached teacher; its stats reach the manifest
            self.teacher = Stage.teacher(self, cfg.teacher)
        self.embedder = None
        if cfg.prior_model:
            from vdata.teachers.packaged import load_text_embedder

            self.embedder = load_text_embedder(cfg.prior_model)
        self.prompts = {n: load_prompt("verify", n, override=cfg.prompts.get(n)) for n in ("blind_mcq", "blind_open")}

    def prior_answers(self, rows: list[dict]) -> dict:
        """sample_id -> (picked the correct option by the margin, margin, picked option) for MCQs."""
        mcq = [r for r in rows if self._is_mcq(r) and r.get(R.TASK) in self.config.tasks]
        if self.embedder is None or not mcq:
            return {}
        import numpy as np

        texts = [r[R.QUESTION] for r in mcq] + [o for r in mcq for o in r[R.OPTIONS]]
        emb = self.embedder.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        out, k = {}, len(mcq)
        for i, r in enumerate(mcq):
            n = len(r[R.OPTIONS])
            sims = emb[k:k + n] @ emb[i]
            k += n
            order = np.argsort(-sims)
            margin = float(sims[order[0]] - sims[order[1]]) if n > 1 else 0.0
            hit = int(order[0]) == r[R.ANSWER_INDEX] and margin >= self.config.prior_margin
            out[r[R.SAMPLE_ID]] = (hit, round(margin, 4), r[R.OPTIONS][int(order[0])])
        return out

    @staticmethod
    def _is_mcq(row: dict) -> bool:
        opts, idx = row.get(R.OPTIONS) or [], row.get(R.ANSWER_INDEX)
        return len(opts) >= 2 and idx is not None and 0 <= idx < len(opts) and bool((row.get(R.QUESTION) or "").strip())

    def leaked(self, row: dict) -> bool:
        q = row.get(R.QUESTION) or ""
        if self._is_mcq(row):
            return option_leaked(q, list(row[R.OPTIONS]), row[R.ANSWER_INDEX])
        return answer_leaked(q, reference_text(row.get(R.ANSWER) or ""))

    def attempts_for(self, row: dict) -> list[tuple]:
        """[(request, how to score the reply)] for one sample; [] when the task is not checked."""
        from vdata.teachers import TeacherRequest

        cfg = self.config
        task, q = row.get(R.TASK), (row.get(R.QUESTION) or "").strip()
        if task not in cfg.tasks or not q:
            return []
        if self.teacher is None:
            return []
        if self._is_mcq(row):
            opts, idx = list(row[R.OPTIONS]), row[R.ANSWER_INDEX]
            k = len(opts)
            prompt = self.prompts["blind_mcq"]
            out = []
            for r in range(cfg.attempts or k):
                shift = r % k
                rotated = opts[-shift:] + opts[:-shift] if shift else list(opts)   # correct → (idx + shift) % k
                # the reply is one option's text, not a letter: small models map letters to options poorly,
                # and the rotation already takes away any order habit
                schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": list(dict.fromkeys(rotated))}},
                          "required": ["answer"], "additionalProperties": False}
                text = prompt.render(question=q, options="\n".join(f"- {o}" for o in rotated))
                req = TeacherRequest.from_prompt(text, json_schema=schema, schema_name="blind_answer",
                                                 sampling={"max_tokens": cfg.max_tokens, "temperature": 0.0},
                                                 prompt_template_version=prompt.id)
                out.append((req, ("mcq", opts[idx], (idx + shift) % k)))
            return out
        answer = reference_text(row.get(R.ANSWER) or "")
        if not answer.strip():
            return []
        prompt = self.prompts["blind_open"]
        schema = {"type": "object", "properties": {"answer": {"type": "string", "minLength": 1, "maxLength": 80}},
                  "required": ["answer"], "additionalProperties": False}
        out = []
        for r in range(cfg.open_attempts):
            sampling = {"max_tokens": cfg.max_tokens, "temperature": 0.0 if r == 0 else 0.8, "seed": r}
            req = TeacherRequest.from_prompt(prompt.render(question=q), json_schema=schema, schema_name="blind_answer",
                                             sampling=sampling, prompt_template_version=prompt.id)
            out.append((req, ("open", answer)))
        return out

    def correct(self, reply: dict, how: tuple) -> bool:
        kind, target = how[0], how[1]
        got = (reply or {}).get("answer") or ""
        if kind == "mcq":
            return got.strip() == target.strip()
        return token_f1(got, target) >= self.config.open_match_f1

    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        cfg = self.config
        plans, requests = [], []
        for row in rows:
            try:
                tries = self.attempts_for(row)
            except Exception as e:
                plans.append((row, e))
                continue
            plans.append((row, tries))
            requests.extend(req for req, _ in tries)
        results = self.teacher.generate(requests) if requests else []
        prior = self.prior_answers([row for row, tries in plans if not isinstance(tries, Exception)])
        out: list[dict | Reject] = []
        k = 0
        for row, tries in plans:
            if isinstance(tries, Exception):
                out.append(self.error_reject(row, tries))
                continue
            res = results[k: k + len(tries)]
            k += len(tries)
            row = dict(row)
            in_scope = row.get(R.TASK) in cfg.tasks and (row.get(R.QUESTION) or "").strip()
            leak = bool(in_scope and cfg.leak_check and self.leaked(row))
            prior_hit, margin, pick = prior.get(row[R.SAMPLE_ID], (False, None, None))
            if not tries and not leak and row[R.SAMPLE_ID] not in prior:
                row[R.V_BLIND_CORRECT] = None
                out.append(row)
                continue
            answered = [(r, how) for r, (_, how) in zip(res, tries) if r.ok]
            if tries and not answered and not (leak or prior_hit):
                out.append(self.teacher_reject(row, "teacher_error", f"blind check: every attempt failed: "
                                               f"{res[0].error}", res, errors=[r.error for r in res][:3]))
                continue
            n_ok = sum(self.correct(r.parsed, how) for r, how in answered)
            teacher_share = n_ok / len(answered) if answered else 0.0
            share = max(teacher_share, 1.0 if (leak or prior_hit) else 0.0)
            row[R.V_BLIND_CORRECT] = share
            if cfg.max_blind_correct is not None and share > cfg.max_blind_correct:
                why = []
                if teacher_share > cfg.max_blind_correct:
                    why.append(f"the text-only teacher answered {n_ok}/{len(answered)} attempts correctly")
                if prior_hit:
                    why.append(f"the embedding prior picks the answer {pick!r} by a margin of {margin:.2f}")
                if leak:
                    why.append("the correct option's words are all in the question, and no distractor's are"
                               if self._is_mcq(row) else "the answer's words are all in the question")
                out.append(self.reject(row, "blind_answerable",
                                       f"answerable without the video: {'; '.join(why)} (v_blind_correct {share:.2f} > "
                                       f"{cfg.max_blind_correct})", v_blind_correct=share, teacher_share=teacher_share,
                                       prior_margin=margin, prior_pick=pick, leak=leak,
                                       max_blind_correct=cfg.max_blind_correct,
                                       replies=[(r.parsed or {}).get("answer") for r, _ in answered][:8]))
            else:
                out.append(row)
        return out
