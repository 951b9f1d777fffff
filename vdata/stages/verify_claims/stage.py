"""verify_claims: hallucination check — split each sample's generated text into atomic claims, judge every
claim against the clip's evidence, store the verdicts and the supported ratio, then threshold.

Every claim ends `supported`, `refuted` (the evidence says otherwise) or `unsupported` (the evidence does
not back it). Tiers, in order:
1. **Evidence matching** (deterministic, always on; `contradictions.py`): polarity, number and name
   mismatches against an evidence sentence that states the same thing refute a claim; colours, shapes,
   counts, quoted or on-screen text and spoken words are looked up; a claim whose content words all
   stand in one evidence sentence (its names in the same roles) is supported, one that adds words the
   evidence lacks is left open (`wording.py`). Then an off-topic check (`relevance_min`): a still-
   undecided claim whose MiniLM embedding is far from every evidence sentence is unsupported.
2. **The teacher** (`teacher:`; `judge.py`): for the claims tier 1 left open, a verdict plus the evidence
   sentence that backs it; a verdict whose quote is not in the evidence is downgraded to unsupported.
   With `use_frames`, the clip's frames go along (a vision teacher).
Without a teacher, undecided claims count as `undecided:` says — except a claim that states a time
(`times.py`): its time is checked against the row's bounds and the times of the evidence it restates
(refuted when it contradicts them), and a time no evidence time supports is never taken on trust: such
a claim is `unsupported`, never counted as support, whatever `undecided:` says.

**A sample is never evidence for itself.** The evidence is the clip's content from `evidence_sources`
(caption, dense events, caption steps, transcript, the texts the sample cites), less any text equal to
the sample's own answer. With a frame verifier (`use_frames` and a teacher) a caption sample's claims
are judged against the frames. Without one, only what is said is independent of it (its caption,
events and steps come from the caption stage; `captions.py`): a caption written from speech alone
(caption `use_frames: false`) is checked in full against the speech and ends verified or rejected; one
written from frames is screened for contradictions by the speech (rejected as `contradicted`) and
otherwise kept as `v_status: unverified` with no verdicts, as is a caption sample with no speech to
check it against (counted under `verification` in the manifest).

The question's own string-checkable facts are checked as well: a false premise ("What colour is the
star?" about a clip without a star) adds an unsupported `(question premise)` claim.

`tasks` defaults to every task whose text says something about the clip (`CHECKED_TASKS`: QA, captions,
dense captions, chapters, grounded QA, reasoning localization, summaries, highlights, speech captions,
preference pairs, streaming dialogues); a fixed instruction ("Summarize this video …") is no premise. Of a
highlights sample the query (quoted in its question) is checked; a sample that is times and saliency
ratings only (an extractive summary) holds no claim and is `not_checked`, as is a task left out of `tasks`.

Annotations count as evidence (items inside the sample's interval); a video-scope sample is checked against
its whole video, and `scope: video` checks every sample against its whole video (`scope.py`).

`v_claims` keeps every claim with its verdict and a note saying which tier decided and why;
`v_supported_ratio` = supported / claims; `v_refuted_claims` counts refuted ones. A sample with more
refuted claims than `max_refuted_claims` is rejected as `contradicted`; below `min_supported_ratio` as
`hallucination` — unless `correct: true` and a VIGC-style rewrite passes the same checks. With
`correct_rounds: N` a rewrite that still fails is rewritten again, up to N rounds (refine.py); every
round is kept in `refine_rounds`. An answer with no word of its own never passes, and a rewrite must pass
basic form checks and hold a supported claim of its own (`own.py`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, model_validator

from vdata.prompts import load_prompt
from vdata.schemas import records as R
from vdata.teachers.packaged import PACKAGED_MINILM

from ..base import Reject, Resources, Stage, StageConfig
from .captions import independent_evidence, screen_frame_caption, unverified, written_from_speech
from .contradictions import REFUTED, SUPPORTED, UNSUPPORTED, match_claim
from .facts import NUMBER_WORDS, PLACEHOLDER, SENTENCE, Evidence, content_words, split_claims, words
from .judge import JUDGE_SCHEMA, judged
from .own import PREMISE, REWRITE_FAILED, answer_claim, own_support, rewrite_issue, wordless
from .refine import checked_round, correct_in_rounds
from .scope import pool_by_video, scope_texts
from .times import check_times, pool_timed, row_bounds, timed_evidence, without_times
from .wording import undecided

EVIDENCE_SOURCES = ("caption", "events", "steps", "transcript", "cited")
# Checked by default: every task whose text states something about the clip (clue_qa, false_premise,
# text_qa, ... are stored as open_qa / mcq). Of a highlights sample the query is checked (its saliency
# ratings are no claim: an extractive summary, only ratings, is not_checked); of a summary, a dense
# caption or a chapter list each line or sentence.
CHECKED_TASKS = ("caption", "open_qa", "mcq", "cot", "grounding", "dense_caption", "chapter", "grounded_qa",
                 "reasoning_localization", "highlights", "summarization", "speech_captions", "preference_pairs",
                 "streaming_dialogue")
# Tasks whose question is a fixed instruction or template ("Summarize this video …"): it holds no premise
FIXED_QUESTION_TASKS = ("caption", "dense_caption", "chapter", "highlights", "summarization", "speech_captions",
                        "preference_pairs", "streaming_dialogue")
LINE_TASKS = ("dense_caption", "chapter", "speech_captions", "streaming_dialogue")   # one timed item per line
# Tasks whose answer may be times with saliency ratings only (highlights; an extractive summary): no claim
RATED_TASKS = ("highlights", "summarization")
_QUOTED_QUERY = re.compile(r"[\"“]([^\"“”]{2,200})[\"”]")
_RATING_LINE = re.compile(r"^\s*(?:\{\{[^{}]*\}\}\s*)*saliency\s+[0-9.]+\s*$", re.I)


_HOW_MANY = re.compile(r"^\s*how many ((?:[a-z-]+\s+){0,2}?[a-z-]+)\s+(?:do|does|did|is|are|was|were|can|could|will|"
                       r"would|has|have|had|should)\b", re.I)


def _with_question(question: str, answer: str) -> str:
    """The claim of a QA answer: a short one (<= 3 words) carries its question, "<question>: <answer>"; a bare
    number answering "How many <things> …?" says what it counts ("…: five yellow lamps"), so that the count is
    checked against the evidence's count of those things, not read as no checkable fact."""
    said = words(answer)
    if not (question and said and len(said) <= 3):   # no word ("..."): no claim, never the question alone (own.py)
        return answer
    claim = f"{question.rstrip('?')}: {answer}"
    counted = _HOW_MANY.match(question)
    if counted and len(said) == 1 and (said[0].isdigit() or said[0] in NUMBER_WORDS):
        claim = f"{claim.rstrip('.')} {counted.group(1)}"
    return claim


class VerifyClaimsConfig(StageConfig):
    # clip: each sample against its own row (a video-scope sample's row is its video); video: every sample
    # against its whole video (the stage is fed whole videos; see scope.py)
    scope: Literal["clip", "video"] = "clip"
    teacher: str | None = None            # the judge; None: tier 1 only
    use_frames: bool = False              # judge with the clip's frames (needs a vision teacher)
    max_frames: int = Field(4, ge=1, le=32)
    splitter: Literal["sentences", "teacher"] = "sentences"
    max_claims: int = Field(12, ge=1, le=64)
    undecided: Literal["supported", "unsupported"] = "supported"
    # Off-topic tier: a claim whose MiniLM cosine similarity to every evidence sentence is below this is
    # about something the evidence never mentions → unsupported. None disables it.
    relevance_min: float | None = Field(0.2, ge=-1, le=1)
    relevance_model: str = PACKAGED_MINILM
    tasks: list[str] = Field(default_factory=lambda: list(CHECKED_TASKS))
    # What counts as evidence. A demo whose captions are noise checks against the transcript alone.
    evidence_sources: list[Literal["caption", "events", "steps", "transcript", "cited"]] = Field(
        default_factory=lambda: list(EVIDENCE_SOURCES))
    min_supported_ratio: float | None = Field(0.75, ge=0, le=1)   # None: score only, drop nothing
    max_refuted_claims: int | None = Field(0, ge=0)                # None: refuted claims only lower the ratio
    correct: bool = False                 # VIGC-style rewrite of failing answers (open_qa, caption, cot)
    correct_rounds: int = Field(1, ge=1, le=8)   # rewrite → re-check rounds per failing answer (VIGC)
    caption_from_source_meta: str | None = "caption"
    max_evidence_chars: int = Field(3000, ge=200)
    max_tokens: int = Field(96, ge=8)
    prompts: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rounds_need_correction(self):
        if self.correct_rounds > 1 and not (self.correct and self.teacher):
            raise ValueError("correct_rounds: rounds of correction need correct: true and a teacher")
        return self


@dataclass
class _Item:
    row: dict
    evidence: Evidence
    claims: list[str]
    context: str
    verdicts: list = field(default_factory=list)    # (verdict or None, note)
    judge_failures: list = field(default_factory=list)   # TeacherResults of the judge calls that failed
    rewrite: bool = False                           # a correction round's rewrite (own.py holds it to form)


class VerifyClaimsStage(Stage):
    name = "verify_claims"
    # 2: highlights check their query; summaries, speech captions and dialogues their lines;
    # 3: a subtitle cue is evidence of the clip holding its middle (it crossed a cut: of none)
    # 4: a stated time is checked (times.py): refuted outside the row or the evidence's times,
    #    unsupported (never undecided → supported) when no evidence time backs it
    # 5: an input's caption is evidence only for a sample whose clip spans the video; a short
    #    open-QA answer (an MCQ's open-form twin) or CoT answer is checked with its question,
    #    a bare number answering "How many <things>" as a count of those things
    version = 6   # 6: no pass on the question's words for a wordless answer or rewrite (own.py); word match checks added words and roles (wording.py)
    HUB_MODEL_FIELDS = ("relevance_model",)
    Config = VerifyClaimsConfig
    reads = (R.SAMPLE_ID, R.TASK, R.QUESTION, R.ANSWER)
    writes = (R.V_CLAIMS, R.V_SUPPORTED_RATIO, R.V_STATUS, R.V_REFUTED_CLAIMS, R.REFINE_ROUNDS)
    default_resources = Resources(num_cpus=0.5, batch_size=16)
    uses_actors = True
    is_filter = True

    def setup(self) -> None:
        cfg = self.config
        self.teacher = None
        if cfg.teacher:   # the run's shared, request-cached teacher; its stats reach the manifest
            self.teacher = Stage.teacher(self, cfg.teacher)
        self.prompts = {n: load_prompt("verify", n, override=cfg.prompts.get(n))
                        for n in ("claim_judge", "correct", "claims_split")}
        self.embedder = None
        if cfg.relevance_min is not None:
            from vdata.teachers.packaged import load_text_embedder

            self.embedder = load_text_embedder(cfg.relevance_model)

    @property
    def checks_frames(self) -> bool:
        return self.config.use_frames and self.teacher is not None

    # --- evidence
    def evidence_of(self, row: dict) -> tuple[Evidence, list[bytes]]:
        src = set(self.config.evidence_sources)
        # a caption sample is its caption: never evidence for itself (other samples may repeat a source)
        own = " ".join(words(row.get(R.ANSWER) or "")) if row.get(R.TASK) == "caption" else None
        visual, speech = [], []
        caption = row.get(R.CAPTION)
        if not caption and self.config.caption_from_source_meta:   # describes the video: not evidence for a shot
            caption = R.source_caption(row, self.config.caption_from_source_meta)
        if caption and "caption" in src:
            visual.append(caption)
        if "events" in src:
            visual += [e.get("description") or "" for e in (row.get(R.DENSE_EVENTS) or []) if e]
        if "steps" in src:
            visual += [s.get("text") or "" for s in (row.get(R.CAPTION_STEPS) or []) if s]
        ev = row.get(R.EVIDENCE) or {}
        if "cited" in src:   # a cited text counts only where its kind is a source (events and steps carry time tags)
            for c in ev.get("captions") or []:
                kind = "events" if "{{span" in c else "steps" if "{{t:" in c else "caption"
                if kind in src:
                    visual.append(PLACEHOLDER.sub("", c).strip())
            speech += [s.get("text") or "" for s in (ev.get("transcript_spans") or []) if s]
        if "transcript" in src:
            segs = row.get(R.TRANSCRIPT_SEGMENTS) or []
            speech = ([s.get("text") or "" for s in segs if s] or [row.get(R.TRANSCRIPT_TEXT) or ""]) + speech
        more_visual, more_speech = scope_texts(row, src, self.__dict__.get("_video_pool"))
        visual, speech = visual + more_visual, speech + more_speech
        visual = [v for v in dict.fromkeys(v.strip() for v in visual if v and v.strip()) if " ".join(words(v)) != own]
        speech = [s for s in dict.fromkeys(s.strip() for s in speech if s and s.strip()) if " ".join(words(s)) != own]
        images = []
        if self.config.use_frames:
            frames = [f for f in (row.get(R.FRAMES) or []) if f and f.get(R.FRAME_JPEG)]
            step = max(1, len(frames) // self.config.max_frames + (len(frames) % self.config.max_frames > 0))
            images = [bytes(f[R.FRAME_JPEG]) for f in frames[::step]][: self.config.max_frames]
        return Evidence.of(visual, speech), images

    @staticmethod
    def texts_to_check(row: dict) -> tuple[list[str], str]:
        """(texts whose claims are checked, the question as context)."""
        task = row.get(R.TASK)
        q = row.get(R.QUESTION) or ""
        ans = row.get(R.ANSWER) or ""
        if task == "cot":
            return [s.get("text") or "" for s in (row.get(R.RATIONALE_STEPS) or []) if s] + [_with_question(q, ans)], q
        if task in LINE_TASKS:
            return [line for line in ans.splitlines() if line.strip()], ""
        if task == "highlights":   # the teacher's query, quoted in the fixed question; the answer is times and ratings
            query = _QUOTED_QUERY.search(q)
            return ([query.group(1)] if query else []), ""
        if task == "summarization":   # its sentences; an extractive summary is rated moments only
            said = [line for line in ans.splitlines() if line.strip() and not _RATING_LINE.match(line)]
            return ([" ".join(said)] if said else []), ""
        if task in FIXED_QUESTION_TASKS:
            return [ans], ""
        if task in ("mcq", "open_qa"):
            # a short answer ("three", "Maria", an MCQ's option or its open-form twin's) says nothing alone:
            # the question with it is the claim (checked alone it was judged at random, outside check h25 F1)
            return [_with_question(q, ans)], q
        return [ans], q

    def claims_of(self, texts: list[str]) -> list[str]:
        out = []
        for t in texts:
            out.extend(split_claims(t, self.config.max_claims))
        return out[: self.config.max_claims]

    # --- teacher rounds
    def _evidence_prompt(self, ev: Evidence) -> str:
        text = ev.text.strip()
        if len(text) > self.config.max_evidence_chars:   # counted for the manifest, never silent
            self.counters["judge_evidence_chars_cut"] += len(text) - self.config.max_evidence_chars
        return text[: self.config.max_evidence_chars] or "(no text evidence)"

    def _judge(self, items: list[_Item], images: dict) -> None:
        """Tier 1 for every claim, then one teacher round for the undecided ones."""
        from vdata.teachers import TeacherRequest

        asks, where = [], []
        prompt = self.prompts["claim_judge"]
        for it in items:
            it.verdicts = [self.tier1(c, it) for c in it.claims]
            if wordless(it.row, it.row.get(R.TASK)):   # "..." or "": nothing of its own to check (h25 F10)
                claim, verdict = answer_claim(it.row.get(R.ANSWER) or "")
                it.claims.append(claim)
                it.verdicts.append(verdict)
            # A question can carry a false premise ("What colour is the star?" about a clip with no star):
            # its string-checkable facts are checked too, and only a contradiction is recorded (as a claim).
            if it.context and not any(c.startswith(PREMISE) for c in it.claims):
                timed = check_times(it.context, row_bounds(it.row), self._timed(it.row))
                verdict, note = timed if timed and timed[0] == REFUTED else match_claim(it.context, it.evidence)
                # ("What does the narrator say about …?" asks about speech: its words are no premise)
                if verdict == REFUTED or (verdict == UNSUPPORTED and not note.startswith("spoken words")):
                    it.claims.append(PREMISE + it.context)
                    it.verdicts.append((verdict, "question premise: " + note))
        self._relevance(items)
        for n, it in enumerate(items):
            for k, (v, _) in enumerate(it.verdicts):
                if v is None and self.teacher is not None:
                    context = f"Question about the clip: {it.context}\n" if it.context else ""
                    text = prompt.render(evidence=self._evidence_prompt(it.evidence), context=context, claim=it.claims[k])
                    asks.append(TeacherRequest.from_prompt(
                        text, images=images.get(n, []), json_schema=JUDGE_SCHEMA, schema_name="verdict",
                        sampling={"max_tokens": self.config.max_tokens, "temperature": 0.0},
                        prompt_template_version=prompt.id))
                    where.append((n, k))
        if asks:
            for (n, k), res in zip(where, self.teacher.generate(asks)):
                it = items[n]
                it.verdicts[k] = (judged(it.claims[k], res.parsed or {}, it.evidence.text) if res.ok
                                  else (None, f"judge failed: {res.error[:120]} (tier 1: {it.verdicts[k][1]})"))
                if not res.ok:
                    it.judge_failures.append(res)
        self._settle(items)

    def _timed(self, row: dict) -> list:
        pool = self.__dict__.get("_timed_pool")
        if pool is not None and row.get(R.SOURCE_URI) in pool:
            return pool[row.get(R.SOURCE_URI)]
        return timed_evidence(row, set(self.config.evidence_sources))

    def tier1(self, claim: str, it: _Item) -> tuple[str | None, str]:
        """The string-matching verdict of a claim, its stated times checked first (times.py): a time that
        contradicts the row or the evidence refutes it; one no evidence time supports leaves it unsupported."""
        timed = check_times(claim, row_bounds(it.row), self._timed(it.row))
        if timed is not None and timed[0] == REFUTED:
            return timed
        given = content_words(it.context) if it.context else frozenset()   # the question's words: no claim
        verdict, note = match_claim(claim if timed is None else without_times(claim), it.evidence, given)
        if timed is None or verdict in (REFUTED, UNSUPPORTED):
            return verdict, note
        if timed[0] == UNSUPPORTED:
            return UNSUPPORTED, f"{timed[1]}; without the time: {note}"
        return verdict, f"{note}; {timed[1]}"

    def _relevance(self, items: list[_Item]) -> None:
        """Off-topic tier for the claims tier 1 left open: nothing in the evidence is even about them."""
        if self.embedder is None:
            return
        todo = [(it, k) for it in items for k, (v, _) in enumerate(it.verdicts) if v is None]
        if not todo:
            return
        sents = {id(it): [x for x in SENTENCE.split(PLACEHOLDER.sub(" ", it.evidence.text)) if len(words(x)) >= 2]
                 for it, _ in todo}
        flat = sorted({x for v in sents.values() for x in v})
        if not flat:
            return
        vec = dict(zip(flat, self.embedder.encode(flat, normalize_embeddings=True, show_progress_bar=False)))
        claims = self.embedder.encode([it.claims[k] for it, k in todo], normalize_embeddings=True, show_progress_bar=False)
        for (it, k), c in zip(todo, claims):
            if not sents[id(it)]:
                continue
            best = max(float(vec[x] @ c) for x in sents[id(it)])
            if best < self.config.relevance_min:
                it.verdicts[k] = (UNSUPPORTED, f"off-topic: similarity {best:.2f} < {self.config.relevance_min} "
                                               "to every evidence sentence")

    def _settle(self, items: list[_Item]) -> None:
        fallback = SUPPORTED if self.config.undecided == "supported" else UNSUPPORTED
        for it in items:
            it.verdicts = [(v, note) if v is not None else undecided(note, fallback) for v, note in it.verdicts]

    def _split_with_teacher(self, items: list[_Item], texts: list[list[str]]) -> None:
        from vdata.teachers import TeacherRequest

        prompt = self.prompts["claims_split"]
        schema = {"type": "object", "properties": {"claims": {"type": "array", "minItems": 1, "maxItems": self.config.max_claims,
                                                               "items": {"type": "string", "minLength": 1, "maxLength": 160}}},
                  "required": ["claims"], "additionalProperties": False}
        reqs = [TeacherRequest.from_prompt(prompt.render(text=" ".join(t)), json_schema=schema, schema_name="claims",
                                           sampling={"max_tokens": 256, "temperature": 0.0}, prompt_template_version=prompt.id)
                for t in texts]
        for it, res in zip(items, self.teacher.generate(reqs)):
            if res.ok:   # a failed split keeps the sentence split already there
                it.claims = [c.strip() for c in res.parsed["claims"] if c.strip()][: self.config.max_claims] or it.claims

    def _correct(self, items: list[_Item], images: dict) -> list[_Item | None]:
        from vdata.teachers import TeacherRequest

        prompt = self.prompts["correct"]
        schema = {"type": "object", "properties": {"answer": {"type": "string", "minLength": 1, "maxLength": 300}},
                  "required": ["answer"], "additionalProperties": False}
        reqs = []
        for it in items:
            bad = [c for c, (v, _) in zip(it.claims, it.verdicts) if v != SUPPORTED]
            reqs.append(TeacherRequest.from_prompt(
                prompt.render(evidence=self._evidence_prompt(it.evidence), question=it.row.get(R.QUESTION) or "",
                              answer=it.row.get(R.ANSWER) or "", unsupported="\n".join(f"- {c}" for c in bad)),
                json_schema=schema, schema_name="answer", sampling={"max_tokens": 160, "temperature": 0.0},
                prompt_template_version=prompt.id))
        fixed: list[_Item | None] = []
        for it, res in zip(items, self.teacher.generate(reqs)):
            if not res.ok:
                fixed.append(None)
                continue
            row = dict(it.row)
            row[R.ANSWER] = res.parsed["answer"].strip()
            texts, ctx = self.texts_to_check(row)
            new = _Item(row, it.evidence, self.claims_of(texts), ctx, rewrite=True)
            issue = rewrite_issue(row[R.ANSWER], row.get(R.QUESTION) or "", row.get(R.TASK))
            if issue:   # no answer at all: not judged, the round fails (h25 F10)
                new.claims, new.verdicts = [answer_claim(row[R.ANSWER])[0]], [(UNSUPPORTED, f"{REWRITE_FAILED}: {issue}")]
            fixed.append(new)
        todo = [f for f in fixed if f is not None and not f.verdicts]
        if todo:
            self._judge(todo, {})
        return fixed

    # --- batch
    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        cfg = self.config
        items, images, out_index = [], {}, []
        results: list = [None] * len(rows)
        self._video_pool = pool_by_video(rows, set(cfg.evidence_sources)) if cfg.scope == "video" else None
        self._timed_pool = pool_timed(rows, set(cfg.evidence_sources)) if cfg.scope == "video" else None
        for i, row in enumerate(rows):
            try:
                if row.get(R.TASK) not in cfg.tasks:
                    results[i] = {**row, R.V_CLAIMS: [], R.V_SUPPORTED_RATIO: None, R.V_REFUTED_CLAIMS: None,
                                  R.V_STATUS: R.STATUS_NOT_CHECKED}
                    continue
                ev, imgs = self.evidence_of(row)
                if row.get(R.TASK) == "caption" and not self.checks_frames:
                    # no frame verifier: only what is said is independent of the caption (captions.py)
                    ev, imgs = independent_evidence(ev), []
                    if not ev.speech.strip():
                        results[i] = unverified(row)   # nothing but itself: kept, marked, never scored
                        continue
                    if not written_from_speech(row):
                        results[i] = screen_frame_caption(self, row, ev)
                        continue
                texts, ctx = self.texts_to_check(row)
                if row.get(R.TASK) in RATED_TASKS and not texts:   # ratings only, or a query no template quotes
                    results[i] = {**row, R.V_CLAIMS: [], R.V_SUPPORTED_RATIO: None, R.V_REFUTED_CLAIMS: None,
                                  R.V_STATUS: R.STATUS_NOT_CHECKED}
                    continue
                it = _Item(row, ev, self.claims_of(texts), ctx)
                if imgs:
                    images[len(items)] = imgs
                items.append(it)
                out_index.append(i)
            except Exception as e:
                results[i] = self.error_reject(row, e)
        if items:
            if cfg.splitter == "teacher" and self.teacher is not None:
                self._split_with_teacher(items, [self.texts_to_check(it.row)[0] for it in items])
            self._judge(items, images)
            failing = [n for n, it in enumerate(items) if self._failure(it)]
            rounds = {n: [checked_round(self, it)] for n, it in enumerate(items)}
            corrected: dict = {}
            if cfg.correct and self.teacher is not None:
                fixable = {n: items[n] for n in failing if items[n].row.get(R.TASK) in ("open_qa", "caption", "cot")}
                corrected = correct_in_rounds(self, fixable, rounds, cfg.correct_rounds)
            for n, it in enumerate(items):
                results[out_index[n]] = self.decide(corrected.get(n, it), corrected=n in corrected, rounds=rounds[n])
        return [r for r in results if r is not None]

    @staticmethod
    def ratio(it: _Item) -> float:
        return 1.0 if not it.claims else sum(v == SUPPORTED for v, _ in it.verdicts) / len(it.claims)

    @staticmethod
    def refuted(it: _Item) -> int:
        return sum(v == REFUTED for v, _ in it.verdicts)

    def _failure(self, it: _Item) -> str | None:
        """The reject reason the sample earns, or None when it passes."""
        cfg = self.config
        if it.rewrite and not own_support(it.claims, it.verdicts, it.row.get(R.ANSWER) or ""):
            return REWRITE_FAILED   # a rewrite must say something of its own that holds (own.py)
        if cfg.max_refuted_claims is not None and self.refuted(it) > cfg.max_refuted_claims:
            return "contradicted"
        if cfg.min_supported_ratio is not None and self.ratio(it) < cfg.min_supported_ratio:
            return "hallucination"
        if cfg.min_supported_ratio is not None and wordless(it.row, it.row.get(R.TASK)):
            return "hallucination"   # the answer says nothing: its ratio is that of the question's words
        return None

    def _passes(self, it: _Item) -> bool:
        return self._failure(it) is None

    def decide(self, it: _Item, corrected: bool = False, rounds: list[dict] | None = None) -> dict | Reject:
        row = dict(it.row)
        row[R.REFINE_ROUNDS] = list(row.get(R.REFINE_ROUNDS) or []) + list(rounds or [])
        suffix = " [after correction]" if corrected else ""
        row[R.V_CLAIMS] = [{"claim": c, "supported": v == SUPPORTED, "verdict": v, "note": note + suffix}
                           for c, (v, note) in zip(it.claims, it.verdicts)]
        row[R.V_SUPPORTED_RATIO] = self.ratio(it)
        row[R.V_REFUTED_CLAIMS] = self.refuted(it)
        row[R.V_STATUS] = R.STATUS_VERIFIED
        reason = self._failure(it)
        if reason is None:
            return row
        bad = [c["claim"] for c in row[R.V_CLAIMS] if not c["supported"]]
        refuted = [c["claim"] for c in row[R.V_CLAIMS] if c["verdict"] == REFUTED]
        detail = dict(v_supported_ratio=row[R.V_SUPPORTED_RATIO], min_supported_ratio=self.config.min_supported_ratio,
                      refuted=refuted, max_refuted_claims=self.config.max_refuted_claims, unsupported=bad,
                      notes=[c["note"] for c in row[R.V_CLAIMS] if not c["supported"]],
                      rounds=[(r["round"], r["kind"], r["supported_ratio"]) for r in rounds or []])
        if reason == "contradicted":
            return self.reject(row, reason, f"{len(refuted)}/{len(it.claims)} claim(s) contradicted by the evidence "
                               f"(max {self.config.max_refuted_claims}): {refuted[:3]}", **detail)
        # a claim left unsupported because its judge timed out may be supported on a retry: marked for one
        return self.teacher_reject(row, reason, f"{len(bad)}/{len(it.claims)} claim(s) unsupported by the evidence "
                                   f"(supported ratio {row[R.V_SUPPORTED_RATIO]:.2f} < {self.config.min_supported_ratio})"
                                   f": {bad[:3]}", it.judge_failures, **detail)
