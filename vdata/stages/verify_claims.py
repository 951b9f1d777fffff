"""verify_claims: hallucination check — split each sample's generated text into atomic claims, judge every
claim against the clip's evidence, store the verdicts and the supported ratio, then threshold.

Two tiers decide a claim:
1. **Evidence matching** (deterministic, always on): facts a claim states that can be checked by
   string matching against the evidence text — colours, shapes, colour+shape pairs, counts of shapes,
   quoted or ALL-CAPS on-screen text, and words someone "says". A fact the evidence contradicts (a
   colour the evidence never names while it names others, a red square where the evidence has only a
   blue one, quoted text that appears nowhere) makes the claim unsupported. A claim whose every
   checkable fact is found is supported. Negated claims ("no", "not", "without") are left to tier 2.
   Then an off-topic check (`relevance_min`): a still-undecided claim whose MiniLM sentence embedding is
   far from every evidence sentence (cosine below the minimum) talks about something the evidence never
   mentions ("a dog runs through a park" about a clip of shapes) and is unsupported.
2. **The teacher** (`teacher:`): judges the claims tier 1 could not decide — those with no checkable
   fact — from the evidence text, plus the clip's frames when `use_frames` is on (a vision teacher).
   Without a teacher, undecided claims count as `undecided:` says.

The question's own string-checkable facts are checked as well: a false premise ("What colour is the
star?" about a clip without a star) adds an unsupported `(question premise)` claim.

The evidence is the clip's own content: caption (or the source_meta caption), dense events, caption
steps, transcript, plus the texts the sample cites. `v_claims` keeps every claim with its verdict and a
note saying which tier decided and why; `v_supported_ratio` = supported / claims (1.0 when a sample
has nothing to check). Below `min_supported_ratio` the sample is rejected as `hallucination`, unless
`correct: true` and a VIGC-style rewrite (the teacher removes the unsupported statements) passes the
same check — then the corrected answer is kept and its claims are re-scored.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from vdata.prompts import load_prompt
from vdata.schemas import records as R
from vdata.teachers.packaged import PACKAGED_MINILM

from .base import Reject, Resources, Stage, StageConfig

# --- lexicons for tier 1 ---------------------------------------------------------------------------
COLOURS = {"red", "orange", "yellow", "green", "blue", "purple", "violet", "pink", "brown", "black", "white",
           "grey", "gray", "cyan", "magenta", "gold", "silver", "teal", "navy", "beige", "maroon", "turquoise"}
COLOUR_ALIASES = {"gray": "grey", "violet": "purple"}
SHAPES = {"circle", "square", "triangle", "rectangle", "star", "ellipse", "oval", "hexagon", "pentagon",
          "diamond", "heart", "cross", "ring", "cube", "sphere", "ball", "box", "dot", "disc", "disk", "arrow"}
SHAPE_ALIASES = {"disk": "disc", "dot": "circle", "ball": "sphere", "oval": "ellipse", "box": "square"}
NUMBER_WORDS = {"zero": 0, "one": 1, "a single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
FILLERS = {"large", "small", "big", "little", "tiny", "bright", "dark", "light", "pale", "deep", "solid",
           "filled", "outlined", "thick", "thin", "round", "shiny", "colored", "coloured", "and", ",", "-"}
NEGATIONS = {"no", "not", "never", "without", "none", "nothing", "neither", "nor", "n't", "cannot"}
SPEECH_VERBS = r"(?:says?|said|saying|mentions?|mentioned|announces?|announced|tells?|told|speaks? about|talks? about|narrates?|asks?|asked)"
TEXT_NOUNS = {"text", "sign", "screen", "caption", "title", "label", "banner", "board", "poster", "subtitle",
              "subtitles", "words", "writing", "card", "slide", "message", "it"}
STOPWORDS = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "is", "are", "was", "were", "be", "it",
             "that", "this", "with", "for", "as", "by", "we", "you", "i", "he", "she", "they", "them", "his", "her",
             "their", "its", "our", "your", "will", "would", "so", "then", "there", "here", "from", "about", "into"}

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_QUOTED = re.compile(r"[\"“”]([^\"“”]{2,80})[\"“”]|(?<![a-z])'([^']{2,80})'(?![a-z])", re.I)
_CAPS = re.compile(r"\b[A-Z][A-Z0-9]{2,}\b")
_PLACEHOLDER = re.compile(r"\{\{\s*(?:t|span)\s*:[^}]*\}\}")


def words(text: str) -> list[str]:
    return _WORD.findall((text or "").lower().replace("’", "'"))


def _singular(w: str) -> str:
    if w.endswith("es") and w[:-2] in SHAPES | {"box"}:
        return w[:-2]
    if w.endswith("s") and w[:-1] in SHAPES:
        return w[:-1]
    return w


def _colour(w: str) -> str | None:
    return COLOUR_ALIASES.get(w, w) if w in COLOURS else None


def _shape(w: str) -> str | None:
    s = _singular(w)
    return SHAPE_ALIASES.get(s, s) if s in SHAPES else None


def _number(tokens: list[str], i: int) -> int | None:
    w = tokens[i]
    if w.isdigit() and len(w) <= 3:
        return int(w)
    return NUMBER_WORDS.get(w)


@dataclass
class Facts:
    colours: set = field(default_factory=set)
    shapes: set = field(default_factory=set)
    pairs: set = field(default_factory=set)          # (colour, shape)
    counts: set = field(default_factory=set)         # (n, shape)
    texts: set = field(default_factory=set)          # quoted strings, normalised (on screen or spoken)
    caps: set = field(default_factory=set)           # ALL-CAPS words: on-screen text
    spoken: list = field(default_factory=list)       # content words after a speech verb
    shown: list = field(default_factory=list)        # content words that on-screen text "says"

    def checkable(self) -> int:
        return (len(self.colours) + len(self.shapes) + len(self.texts) + len(self.caps) + len(self.spoken)
                + len(self.shown))


def extract_facts(text: str) -> Facts:
    f = Facts()
    clean = _PLACEHOLDER.sub(" ", text or "")
    tokens = words(clean)
    for i, w in enumerate(tokens):
        c = _colour(w)
        if c:
            f.colours.add(c)
            for j in range(i + 1, min(len(tokens), i + 4)):   # "red square", "large red square", "red and blue square"
                s = _shape(tokens[j])
                if s:
                    f.pairs.add((c, s))
                    break
                if tokens[j] not in FILLERS and not _colour(tokens[j]):
                    break
        s = _shape(w)
        if s:
            f.shapes.add(s)
        n = _number(tokens, i)
        if n is not None:
            for j in range(i + 1, min(len(tokens), i + 4)):
                s = _shape(tokens[j])
                if s:
                    f.counts.add((n, s))
                    break
                if tokens[j] not in FILLERS and not _colour(tokens[j]):
                    break
    for m in _QUOTED.finditer(clean):
        q = " ".join(words(m.group(1) or m.group(2)))
        if q:
            f.texts.add(q)
    for m in _CAPS.finditer(clean):
        f.caps.add(m.group(0).lower())
    for m in re.finditer(SPEECH_VERBS + r"\s*:?\s*(?:that\s+)?(.+?)(?:[.!?;]|$)", clean, re.I):
        said = [w for w in words(m.group(1)) if w not in STOPWORDS]
        # "the sign says OPEN" is on-screen text, "the narrator says ..." is speech
        subject = set(words(clean[max(0, m.start() - 30): m.start()]))
        (f.shown if subject & TEXT_NOUNS else f.spoken).extend(said)
    return f


@dataclass
class Evidence:
    text: str
    speech: str
    facts: Facts
    words: set
    speech_words: set
    visual_words: set

    @classmethod
    def of(cls, visual_texts: list[str], speech_texts: list[str]) -> "Evidence":
        text = "\n".join(t for t in visual_texts if t)
        speech = "\n".join(t for t in speech_texts if t)
        both = text + "\n" + speech
        return cls(text=both, speech=speech, facts=extract_facts(both), words=set(words(both)),
                   speech_words=set(words(speech)), visual_words=set(words(text)))


def has_negation(text: str) -> bool:
    return bool(NEGATIONS & set(words(text))) or "n't" in (text or "").lower()


def match_claim(claim: str, ev: Evidence) -> tuple[bool | None, str]:
    """Tier 1: (True supported / False unsupported / None undecided, note)."""
    if has_negation(claim):
        return None, "negated: left to the judge"
    f = extract_facts(claim)
    if not f.checkable():
        return None, "no checkable fact"
    norm_ev = " ".join(words(_PLACEHOLDER.sub(" ", ev.text)))
    for t in sorted(f.texts):
        if f" {t} " not in f" {norm_ev} ":
            return False, f"text {t!r} not in the evidence"
    for t in sorted(f.caps):
        if t not in (ev.visual_words or ev.words):
            return False, f"on-screen text {t.upper()!r} not in the visual evidence"
    if f.spoken:
        pool = ev.speech_words or ev.words
        missing = [w for w in f.spoken if w not in pool]
        if len(missing) > len(f.spoken) / 4:
            return False, f"spoken words not in the transcript: {missing[:6]}"
    if f.shown:
        missing = [w for w in f.shown if w not in (ev.visual_words or ev.words)]
        if len(missing) > len(f.shown) / 4:
            return False, f"on-screen words not in the evidence: {missing[:6]}"
    efacts = ev.facts
    if f.colours and efacts.colours:
        extra = f.colours - efacts.colours
        if extra:
            return False, f"colour(s) {sorted(extra)} not in the evidence (it names {sorted(efacts.colours)})"
    if f.shapes and efacts.shapes:
        extra = f.shapes - efacts.shapes
        if extra:
            return False, f"shape(s) {sorted(extra)} not in the evidence (it names {sorted(efacts.shapes)})"
    for colour, shape in sorted(f.pairs):
        known = {c for c, s in efacts.pairs if s == shape}
        if known and colour not in known:
            return False, f"the evidence has a {'/'.join(sorted(known))} {shape}, not a {colour} one"
    for n, shape in sorted(f.counts):
        known = {m for m, s in efacts.counts if s == shape}
        if known and n not in known:
            return False, f"the evidence counts {'/'.join(map(str, sorted(known)))} {shape}(s), not {n}"
    unknown = (f.colours - efacts.colours) | (f.shapes - efacts.shapes)
    if unknown:
        return None, f"the evidence says nothing about {sorted(unknown)}"
    return True, "every checkable fact found in the evidence"


PREMISE = "(question premise) "
_SENT = re.compile(r"(?<=[.!?;])\s+|\n+")
_CLAUSE = re.compile(r",\s+(?:and|while|then|but)\s+|\s+and then\s+|;\s*", re.I)


def split_claims(text: str, max_claims: int = 12) -> list[str]:
    """Sentences, then coordinated clauses: short, separately checkable statements."""
    text = _PLACEHOLDER.sub(" ", text or "").strip()
    out = []
    for sent in _SENT.split(text):
        for part in _CLAUSE.split(sent):
            part = part.strip(" ,.;:-\t")
            if len(words(part)) >= 1:
                out.append(part)
    return out[:max_claims]


# --- the stage ------------------------------------------------------------------------------------

class VerifyClaimsConfig(StageConfig):
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
    tasks: list[str] = Field(default_factory=lambda: ["caption", "open_qa", "mcq", "cot", "grounding", "dense_caption"])
    min_supported_ratio: float | None = Field(0.75, ge=0, le=1)   # None: score only, drop nothing
    correct: bool = False                 # VIGC-style rewrite of failing answers (open_qa, caption, cot)
    caption_from_source_meta: str | None = "caption"
    max_evidence_chars: int = Field(3000, ge=200)
    max_tokens: int = Field(64, ge=8)
    prompts: dict[str, str] = Field(default_factory=dict)


@dataclass
class _Item:
    row: dict
    evidence: Evidence
    claims: list[str]
    context: str
    verdicts: list = field(default_factory=list)    # (bool|None, note)


class VerifyClaimsStage(Stage):
    name = "verify_claims"
    Config = VerifyClaimsConfig
    reads = (R.SAMPLE_ID, R.TASK, R.QUESTION, R.ANSWER)
    writes = (R.V_CLAIMS, R.V_SUPPORTED_RATIO)
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

    # --- evidence
    def evidence_of(self, row: dict) -> tuple[Evidence, list[bytes]]:
        visual, speech = [], []
        caption = row.get(R.CAPTION)
        if not caption and self.config.caption_from_source_meta:
            try:
                meta = json.loads(row.get(R.SOURCE_META) or "{}")
                value = meta.get(self.config.caption_from_source_meta) if isinstance(meta, dict) else None
                caption = value if isinstance(value, str) else None
            except ValueError:
                caption = None
        if caption:
            visual.append(caption)
        visual += [e.get("description") or "" for e in (row.get(R.DENSE_EVENTS) or []) if e]
        visual += [s.get("text") or "" for s in (row.get(R.CAPTION_STEPS) or []) if s]
        ev = row.get(R.EVIDENCE) or {}
        visual += [_PLACEHOLDER.sub("", c).strip() for c in (ev.get("captions") or [])]
        segs = row.get(R.TRANSCRIPT_SEGMENTS) or []
        speech += [s.get("text") or "" for s in segs if s] or [row.get(R.TRANSCRIPT_TEXT) or ""]
        speech += [s.get("text") or "" for s in (ev.get("transcript_spans") or []) if s]
        visual = list(dict.fromkeys(v.strip() for v in visual if v and v.strip()))
        speech = list(dict.fromkeys(s.strip() for s in speech if s and s.strip()))
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
            return [s.get("text") or "" for s in (row.get(R.RATIONALE_STEPS) or []) if s] + [ans], q
        if task in ("dense_caption", "chapter"):
            return [line for line in ans.splitlines() if line.strip()], ""
        return [ans], q

    def claims_of(self, texts: list[str]) -> list[str]:
        out = []
        for t in texts:
            out.extend(split_claims(t, self.config.max_claims))
        return out[: self.config.max_claims]

    # --- teacher rounds
    def _evidence_prompt(self, ev: Evidence) -> str:
        text = ev.text.strip()
        return text[: self.config.max_evidence_chars] or "(no text evidence)"

    def _judge(self, items: list[_Item], images: dict) -> None:
        """Tier 1 for every claim, then one teacher round for the undecided ones."""
        from vdata.teachers import TeacherRequest

        asks, where = [], []
        schema = {"type": "object", "properties": {"verdict": {"type": "string", "enum": ["supported", "unsupported", "uncertain"]}},
                  "required": ["verdict"], "additionalProperties": False}
        prompt = self.prompts["claim_judge"]
        for it in items:
            it.verdicts = [match_claim(c, it.evidence) for c in it.claims]
            # A question can carry a false premise ("What colour is the star?" about a clip with no star):
            # its string-checkable facts are checked too, and only a contradiction is recorded (as a claim).
            if it.context and not any(c.startswith(PREMISE) for c in it.claims):
                verdict, note = match_claim(it.context, it.evidence)
                if verdict is False:
                    it.claims.append(PREMISE + it.context)
                    it.verdicts.append((False, "question premise: " + note))
        self._relevance(items)
        for n, it in enumerate(items):
            for k, (v, _) in enumerate(it.verdicts):
                if v is None and self.teacher is not None:
                    context = f"Question about the clip: {it.context}\n" if it.context else ""
                    text = prompt.render(evidence=self._evidence_prompt(it.evidence), context=context, claim=it.claims[k])
                    asks.append(TeacherRequest.from_prompt(
                        text, images=images.get(n, []), json_schema=schema, schema_name="verdict",
                        sampling={"max_tokens": self.config.max_tokens, "temperature": 0.0},
                        prompt_template_version=prompt.id))
                    where.append((n, k))
        if not asks:
            self._settle(items)
            return
        for (n, k), res in zip(where, self.teacher.generate(asks)):
            if res.ok:
                verdict = res.parsed["verdict"]
                items[n].verdicts[k] = ({"supported": True, "unsupported": False}.get(verdict), f"judge: {verdict}")
            else:
                items[n].verdicts[k] = (None, f"judge failed: {res.error[:120]}")
        self._settle(items)

    def _relevance(self, items: list[_Item]) -> None:
        """Off-topic tier for the claims tier 1 left open: nothing in the evidence is even about them."""
        if self.embedder is None:
            return
        todo = [(it, k) for it in items for k, (v, _) in enumerate(it.verdicts) if v is None]
        if not todo:
            return
        sents = {id(it): [x for x in _SENT.split(_PLACEHOLDER.sub(" ", it.evidence.text)) if len(words(x)) >= 2]
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
                it.verdicts[k] = (False, f"off-topic: similarity {best:.2f} < {self.config.relevance_min} "
                                         "to every evidence sentence")

    def _settle(self, items: list[_Item]) -> None:
        fallback = self.config.undecided == "supported"
        for it in items:
            it.verdicts = [(fallback, note + f" (undecided → {self.config.undecided})") if v is None else (v, note)
                           for v, note in it.verdicts]

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

    def _correct(self, items: list[_Item], images: dict) -> list[_Item]:
        from vdata.teachers import TeacherRequest

        prompt = self.prompts["correct"]
        schema = {"type": "object", "properties": {"answer": {"type": "string", "minLength": 1, "maxLength": 300}},
                  "required": ["answer"], "additionalProperties": False}
        reqs = []
        for it in items:
            bad = [c for c, (v, _) in zip(it.claims, it.verdicts) if not v]
            reqs.append(TeacherRequest.from_prompt(
                prompt.render(evidence=self._evidence_prompt(it.evidence), question=it.row.get(R.QUESTION) or "",
                              answer=it.row.get(R.ANSWER) or "", unsupported="\n".join(f"- {c}" for c in bad)),
                json_schema=schema, schema_name="answer", sampling={"max_tokens": 160, "temperature": 0.0},
                prompt_template_version=prompt.id))
        fixed = []
        for it, res in zip(items, self.teacher.generate(reqs)):
            if not res.ok:
                fixed.append(None)
                continue
            row = dict(it.row)
            row[R.ANSWER] = res.parsed["answer"].strip()
            texts, ctx = self.texts_to_check(row)
            fixed.append(_Item(row, it.evidence, self.claims_of(texts), ctx))
        todo = [f for f in fixed if f is not None]
        if todo:
            self._judge(todo, {})
        return fixed

    # --- batch
    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        cfg = self.config
        items, images, out_index = [], {}, []
        results: list = [None] * len(rows)
        for i, row in enumerate(rows):
            try:
                if row.get(R.TASK) not in cfg.tasks:
                    results[i] = {**row, R.V_CLAIMS: [], R.V_SUPPORTED_RATIO: None}
                    continue
                ev, imgs = self.evidence_of(row)
                texts, ctx = self.texts_to_check(row)
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
            failing = [n for n, it in enumerate(items) if not self._passes(it)]
            corrected: dict = {}
            if cfg.correct and self.teacher is not None:
                fixable = [n for n in failing if items[n].row.get(R.TASK) in ("open_qa", "caption", "cot")]
                if fixable:
                    for n, fixed in zip(fixable, self._correct([items[n] for n in fixable], images)):
                        if fixed is not None and self._passes(fixed):
                            corrected[n] = fixed
            for n, it in enumerate(items):
                results[out_index[n]] = self.decide(corrected.get(n, it), corrected=n in corrected)
        return [r for r in results if r is not None]

    @staticmethod
    def ratio(it: _Item) -> float:
        return 1.0 if not it.claims else sum(bool(v) for v, _ in it.verdicts) / len(it.claims)

    def _passes(self, it: _Item) -> bool:
        m = self.config.min_supported_ratio
        return m is None or self.ratio(it) >= m

    def decide(self, it: _Item, corrected: bool = False) -> dict | Reject:
        row = dict(it.row)
        note_suffix = " [after correction]" if corrected else ""
        row[R.V_CLAIMS] = [{"claim": c, "supported": bool(v), "note": note + note_suffix} for c, (v, note) in zip(it.claims, it.verdicts)]
        row[R.V_SUPPORTED_RATIO] = self.ratio(it)
        if self._passes(it):
            return row
        bad = [c["claim"] for c in row[R.V_CLAIMS] if not c["supported"]]
        return self.reject(row, "hallucination",
                           f"{len(bad)}/{len(it.claims)} claim(s) unsupported by the evidence (supported ratio "
                           f"{row[R.V_SUPPORTED_RATIO]:.2f} < {self.config.min_supported_ratio}): {bad[:3]}",
                           v_supported_ratio=row[R.V_SUPPORTED_RATIO], min_supported_ratio=self.config.min_supported_ratio,
                           unsupported=bad, notes=[c["note"] for c in row[R.V_CLAIMS] if not c["supported"]])
