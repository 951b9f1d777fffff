"""VTG-IT's highlight detection and summarization (VTG-LLM, Guo et al., AAAI 2025; gyxxyg/VTG-LLM), teacher-rated,
and highlights from QVHighlights' own annotations.

- `highlights`: a query and the saliency of each moment for it (QVHighlights-style). The stage picks one
  moment (seeded); the teacher writes a short query describing it and rates every moment 0..`scale` for
  the query. The moments rated at least `min_score` are the highlights: their intervals go to
  `answer_spans`, their scores to `answer_scores` (one per span, on VTG-IT's saliency scale 1..5), and
  the answer lists them with time placeholders. Rejects: `query_states_time` /
  `query_names_note` (a query with a time or a note id in it: a clue line pasted as the query gives its
  answer away), `off_target` (the query shares no word with its moment), `no_highlight` (no moment rated
  `min_score`), `moment_not_highlighted` (the moment the query was written for is not among the
  highlights: the teacher's query and ratings disagree).
- `highlights`, `source: annotations`: teacher-free, VTG-IT's own highlight data: each QVHighlights query of
  the video (`format: qvhighlights` keeps them under `source_meta.queries`) is one sample, its 2-s clips
  with saliency (`relevant_clip_ids` k -> [2k, 2k + 2] s, cut to the video) the spans, the mean of their
  annotators' 0..4 ratings the scores (see `annotator_score`). Rejects, one per bad query: `highlight_no_query`,
  `highlight_no_saliency` (no clip ids / ratings: the test split), `highlight_malformed` (lengths differ, an id
  not a whole number >= 0 or repeated, a rating not 0..4), `highlight_past_end` (a clip starting at or after
  the video's end: another cut of the video), `highlight_duplicate_query` (a query the video already asks);
  a video with no queries: `missing_annotation`; a clip row that is not the whole video: `not_video_scope`.
- `summarization`, `form: abstractive` (default): a summary whose sentences each cite the moments they
  summarize; each sentence gets the span of its cited moments as a `{{span:a,b}}` placeholder, and
  `answer_spans` lists them in order.
- `summarization`, `form: extractive`: VTG-IT's video summarization (TVSum / SumMe): the teacher rates
  every moment 0..`scale` for how much a short summary of the video needs it; the moments rated at
  least `min_score` are the key moments (`answer_spans`, `answer_scores` on 1..5, as for highlights).
  No moment so rated: `no_key_moment`.

Scores are stored on VTG-IT's scale, `1 + 4 * score / scale` with one decimal (VTG-LLM's highlight prompts
ask for "a saliency score on a scale from 1 to 5"; its TVSum/SumMe scores are `s * 4 + 1` of 0..1), so a
build's scores do not depend on the teacher's `scale`. The `vtg_it` exporter writes both tasks in VTG-IT's
answer grammar (point timestamps and scores); other exporters list the spans with their scores.

Moments are the row's timed clues with an extent that do not cover the whole row (see `grounded.moments`);
ratings and citations name clue ids, never times.
"""
from __future__ import annotations

import re
import string
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from vdata.prompts import NOTE_ID, escape_placeholders
from vdata.prompts.stated_times import states_time
from vdata.schemas import records as R

from .annotated import (EDGE_TOLERANCE_S, TEMPLATE_PROMPT, annotation_evidence, interval, missing, span_placeholder,
                        text_identity)
from .clues import Clue, cited, clue_lines, evidence
from .common import (Pending, Strict, TaskFamily, id_list, parse_lines, sample_base, stable_hash, strict_object,
                     teacher_request, text_field)
from .grounded import content_words, moments, targets, union_span

if TYPE_CHECKING:
    from .common import StageView

SALIENCY_LOW, SALIENCY_HIGH = 1.0, 5.0     # VTG-IT's saliency scale
TEACHER_SETTINGS = frozenset({"per_clip", "min_moments", "max_moments", "scale", "min_score", "min_shared_words"})
SUMMARY_QUESTIONS = "summarization_questions"
# A query that states a time ("10.0-15.0s", "at 12 s", "31s", "0:42", "ten seconds"; the shared detector
# vdata/prompts/stated_times.py) or names a note ("A3", "E12") was copied from the clue list the teacher saw
QUERY_NOTE = re.compile(rf"(?<![\w-]){NOTE_ID}(?![\w-])")


class HighlightsTask(Strict):
    # teacher: a teacher writes a query and rates the moments; annotations: the video's QVHighlights queries
    # with their annotators' saliency (source_meta `queries`), no teacher
    source: Literal["teacher", "annotations"] = "teacher"
    per_clip: int = Field(1, ge=0, le=8)           # queries per row
    min_moments: int = Field(3, ge=2)              # fewer timed moments: nothing to rank
    max_moments: int = Field(24, ge=2, le=100)
    scale: int = Field(4, ge=1, le=10)             # the teacher rates 0..scale
    min_score: int = Field(3, ge=1)                # a highlight scores at least this
    min_shared_words: int = Field(1, ge=0)         # content words the query must share with its moment
    # annotations: a clip's score from its annotators' 0..4 ratings: `vtg` 1 + their mean (VTG-IT's 1..5, as
    # the teacher's scores), `mean` their mean as VTG-LLM's conversion writes it (0..4)
    score_scale: Literal["vtg", "mean"] = "vtg"

    @model_validator(mode="after")
    def _threshold(self):
        if self.min_score > self.scale:
            raise ValueError(f"min_score: {self.min_score} is above scale {self.scale}")
        if self.source == "annotations" and (other := sorted(self.model_fields_set & TEACHER_SETTINGS)):
            raise ValueError(f"{', '.join(other)}: a setting of the teacher's highlights; source: annotations makes "
                             "one sample per query with its annotators' scores (its one setting: score_scale)")
        if self.source == "teacher" and "score_scale" in self.model_fields_set:
            raise ValueError("score_scale: a setting of source: annotations (the teacher's scores are 1 + 4 * rating "
                             "/ scale)")
        return self


class SummarizationTask(Strict):
    form: Literal["abstractive", "extractive"] = "abstractive"   # sentences, or rated key moments (VTG-IT)
    max_sentences: int = Field(5, ge=1, le=16)     # abstractive
    min_moments: int = Field(2, ge=1)
    max_evidence: int = Field(3, ge=1, le=8)       # abstractive: moments one sentence may cite
    max_moments: int = Field(24, ge=2, le=100)     # extractive: moments the teacher rates
    scale: int = Field(4, ge=1, le=10)             # extractive: the teacher rates 0..scale
    min_score: int = Field(3, ge=1)                # extractive: a key moment scores at least this

    @model_validator(mode="after")
    def _threshold(self):
        if self.min_score > self.scale:
            raise ValueError(f"min_score: {self.min_score} is above scale {self.scale}")
        return self


def vtg_saliency(score: int, scale: int) -> float:
    """A 0..`scale` rating on VTG-IT's 1..5 saliency scale, one decimal."""
    return round(SALIENCY_LOW + (SALIENCY_HIGH - SALIENCY_LOW) * score / scale, 1)


def _fixed_question(stage: StageView, task: str, key: str, prompt: str = TEMPLATE_PROMPT, **values) -> str:
    choices = parse_lines(stage.prompts[prompt].text).get(task) or [task]
    return string.Template(choices[stable_hash(task, key) % len(choices)]).safe_substitute(**values)


def _units(row: dict, clues: list[Clue], limit: int) -> list[Clue]:
    spans = moments(row, clues)
    if len(spans) > limit:   # evenly over the row, not just its start
        step = len(spans) / limit
        spans = [spans[int(i * step)] for i in range(limit)]
    return spans


def _score_schema(units: list[Clue], scale: int) -> dict:
    # an enum, not minimum/maximum: grammar-constrained servers (llama.cpp) enforce enums
    score = strict_object({"id": {"type": "string", "enum": [c.id for c in units]},
                           "score": {"type": "integer", "enum": list(range(scale + 1))}})
    return {"type": "array", "items": score, "minItems": 1, "maxItems": len(units)}


def _ratings(reply: dict, units: list[Clue], scale: int) -> dict[str, int]:
    """Clue id -> its first rating in the reply, clamped to 0..scale; unknown ids dropped."""
    by_id = {c.id for c in units}
    scores: dict[str, int] = {}
    for item in reply.get("scores") or []:
        if item.get("id") in by_id and isinstance(item.get("score"), int):
            scores.setdefault(item["id"], max(0, min(scale, item["score"])))
    return scores


def _rated_answer(base: dict, units: list[Clue], scores: dict[str, int], min_score: int, scale: int) -> list[Clue]:
    """Fill the sample with the moments rated at least `min_score`, in time order; returns them."""
    by_id = {c.id: c for c in units}
    rated = sorted((by_id[i] for i, s in scores.items() if s >= min_score), key=lambda c: (c.start_s, -c.end_s))
    # a moment inside another kept one (a spoken line within an annotated segment) is that moment again: one
    # span each, as QVHighlights-style data has (outside check h17 F3), rated the higher of the two
    top: list[Clue] = []
    best: dict[str, int] = {}
    for c in rated:
        outer = next((o for o in top if o.start_s <= c.start_s and c.end_s <= o.end_s), None)
        if outer is None:
            top.append(c)
            best[c.id] = scores[c.id]
        else:
            best[outer.id] = max(best[outer.id], scores[c.id])
    _scored_answer(base, [(c.start_s, c.end_s) for c in top], [vtg_saliency(best[c.id], scale) for c in top])
    base[R.EVIDENCE] = evidence(top)
    return top


# --- highlights

def _plan_highlights(stage: StageView, row: dict, clues: list[Clue], tcfg: HighlightsTask):
    if tcfg.source == "annotations":
        return _annotated_highlights(stage, row, tcfg), []
    units = _units(row, clues, tcfg.max_moments)
    if len(units) < tcfg.min_moments:
        return [], []
    prompt = stage.prompts["highlights"]
    clue_text = clue_lines(units)
    schema = strict_object({"query": text_field(min(stage.config.max_question_chars, 120)),
                            "scores": _score_schema(units, tcfg.scale)})
    pending = []
    for i, target in enumerate(targets("highlights", row, units, tcfg.per_clip)):
        text = prompt.render(clues=clue_text, target_text=target.line(), scale=tcfg.scale)
        req = teacher_request(stage, prompt, text, units, schema, "highlights", ("highlights", i, target.id, clue_text))
        pending.append(Pending("highlights", i, "highlight", prompt, req, {"units": units, "target": target}))
    return [], pending


def _query_problem(query: str, target: Clue, units: list[Clue], tcfg: HighlightsTask) -> tuple[str, str] | None:
    """(reason, message) when the query cannot stand as a search query for its moment."""
    if stated := states_time(query, durations=False):   # "bakes for 20 minutes" is content (h19)
        return "query_states_time", f"highlights: the query states a time ({stated.text!r}): a clue line copied as the query"
    said = " ".join(c.text for c in units)
    for m in QUERY_NOTE.finditer(query):   # an "F1" race or an "A4" sheet the clues themselves name is content
        if not re.search(rf"(?<![\w-]){m.group(0)}(?![\w-])", said):
            return "query_names_note", f"highlights: the query names note {m.group(0)}: a clue line copied as the query"
    shared = content_words(query) & content_words(target.text)
    if len(shared) < tcfg.min_shared_words:
        return "off_target", (f"highlights: the query shares {len(shared)} content word(s) with the moment it describes "
                              f"(min {tcfg.min_shared_words})")
    return None


def _finish_highlights(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    tcfg: HighlightsTask = stage.config.tasks.highlights
    query = " ".join((reply.get("query") or "").split()).strip(" .")
    target: Clue = p.extra["target"]
    if not query:
        return [stage.reject(base, "bad_reply", "highlights: empty query", reply=reply)]
    if problem := _query_problem(query, target, p.extra["units"], tcfg):
        return [stage.reject(base, problem[0], problem[1], query=query, moment=target.text)]
    scores = _ratings(reply, p.extra["units"], tcfg.scale)
    if not any(s >= tcfg.min_score for s in scores.values()):
        return [stage.reject(base, "no_highlight", f"highlights: no moment rated {tcfg.min_score} or more for "
                             f"{query!r}", query=query, scores=scores)]
    if scores.get(target.id, 0) < tcfg.min_score:
        return [stage.reject(base, "moment_not_highlighted",
                             f"highlights: the moment the query describes ({target.id}, {target.start_s:g}-"
                             f"{target.end_s:g}s) is rated {scores.get(target.id, 'nothing')}, under min_score "
                             f"{tcfg.min_score}", query=query, moment=target.text, scores=scores)]
    base[R.QUESTION] = _fixed_question(stage, "highlights", base[R.SAMPLE_ID], query=query)
    _rated_answer(base, p.extra["units"], scores, tcfg.min_score, tcfg.scale)
    return [base]


# --- highlights from the annotations (source: annotations): QVHighlights' queries, clips and saliency

QVH_CLIP_S = 2.0      # QVHighlights' clip: relevant_clip_ids count 2-s clips from the video's start
QVH_MAX_RATING = 4    # each annotator rates a clip 0..4
WHOLE_VIDEO_TOLERANCE_S = 0.5   # a clip row from 0 ending this close to the video's end is the whole video


def _scored_answer(base: dict, spans: list[tuple[float, float]], scores: list[float]) -> None:
    """A highlight answer, teacher-rated or annotated: one line per span with its saliency, the spans and scores."""
    base[R.ANSWER] = "\n".join(f"{span_placeholder(a, b)} saliency {v:g}" for (a, b), v in zip(spans, scores))
    base[R.ANSWER_SPANS] = [{"start_s": float(a), "end_s": float(b)} for a, b in spans]
    base[R.ANSWER_SCORES] = scores


def annotator_score(ratings: list, score_scale: str = "vtg") -> float:
    """A clip's score from its annotators' 0..4 ratings: their mean to one decimal (half up), as VTG-LLM's
    QVHighlights conversion writes it (`round(sum(s) / len(s), 1)`, utils/construct_it_data/
    process_highlight_data.py; 3 annotators give thirds, never a tie), plus 1 on VTG-IT's 1..5 scale (`vtg`)."""
    mean = (sum(Decimal(repr(r)) for r in ratings) / len(ratings)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return float(mean + 1 if score_scale == "vtg" else mean)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= QVH_MAX_RATING


def _windows(query: dict) -> list[tuple[float, float]]:
    """The query's readable relevant_windows (its moments, the sample's evidence)."""
    given = query.get("relevant_windows")
    if not isinstance(given, list):
        return []
    return [(float(w[0]), float(w[1])) for w in given if isinstance(w, list) and len(w) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w)]


def _query_problem_given(query: dict, end: float) -> tuple[str, str] | None:
    """(reason, message) when a query record cannot be a highlight sample on a video of `end` seconds."""
    ids, ratings = query.get("relevant_clip_ids"), query.get("saliency_scores")
    if not " ".join(str(query.get("query") or "").split()).strip(" ."):
        return "highlight_no_query", "the query has no text"
    if not ids or not ratings:
        return "highlight_no_saliency", "the query has no clips with saliency (relevant_clip_ids / saliency_scores)"
    if not isinstance(ids, list) or not isinstance(ratings, list) or len(ids) != len(ratings):
        n_ids, n_ratings = (len(v) if isinstance(v, list) else type(v).__name__ for v in (ids, ratings))
        return "highlight_malformed", f"{n_ids} clip id(s) and {n_ratings} saliency rating(s): one each expected"
    bad = [k for k in ids if not isinstance(k, int) or isinstance(k, bool) or k < 0]
    if bad or len(set(ids)) < len(ids):
        return "highlight_malformed", f"clip ids must be distinct whole numbers >= 0 ({bad or sorted(ids)})"
    if bad := [r for r in ratings if not isinstance(r, list) or not r or not all(_number(x) for x in r)]:
        return "highlight_malformed", f"a clip's ratings must be a list of 0..{QVH_MAX_RATING} numbers ({bad[0]!r})"
    if past := sorted(k for k in ids if k * QVH_CLIP_S >= end - EDGE_TOLERANCE_S):
        return "highlight_past_end", (f"clip(s) {past} start at {past[0] * QVH_CLIP_S:g} s or later, at or after the "
                                      f"video's end ({end:g} s): the annotations are of another cut of the video")
    return None


def _annotated_highlights(stage: StageView, row: dict, tcfg: HighlightsTask) -> list:
    """One sample per QVHighlights query of the video (rejects for the bad ones), no teacher."""
    prompt_id = stage.prompts[TEMPLATE_PROMPT].id
    start, end = interval(row)
    duration = float(row.get(R.DURATION_S) or end)
    if start > EDGE_TOLERANCE_S or end < duration - WHOLE_VIDEO_TOLERANCE_S:   # a clip row; clip ids count from 0
        base = sample_base(stage, row, "highlights", 0, prompt_id, teacher=False)
        return [stage.reject(base, "not_video_scope", f"highlights (source: annotations): the row [{start:g}, "
                             f"{end:g}] s is not the whole video (0-{duration:g} s); its queries' clips are the "
                             "video's: use generate scope: video", clip=[start, end])]
    queries = R.source_meta(row).get("queries")
    if not isinstance(queries, list) or not queries:
        return [missing(stage, row, "highlights", prompt_id, "queries", 0)]
    out: list = []
    asked: dict[str, object] = {}
    for index, query in enumerate(queries):
        base = sample_base(stage, row, "highlights", index, prompt_id, teacher=False)
        base[R.QUESTION_TYPE] = "highlight"
        query = query if isinstance(query, dict) else {"query": None, "given": query}
        problem = _query_problem_given(query, end)
        text = escape_placeholders(" ".join(str(query.get("query") or "").split()).strip(" ."))
        if problem is None and text_identity(text) in asked:
            problem = "highlight_duplicate_query", f"the video asks it already (qid {asked[text_identity(text)]})"
        if problem is not None:
            out.append(stage.reject(base, problem[0], f"highlights: query {query.get('qid')!r}: {problem[1]}",
                                    query=query))
            continue
        asked[text_identity(text)] = query.get("qid")
        clips = sorted(zip(query["relevant_clip_ids"], query["saliency_scores"]))
        spans = [(k * QVH_CLIP_S, min((k + 1) * QVH_CLIP_S, end)) for k, _ in clips]
        scores = [annotator_score(r, tcfg.score_scale) for _, r in clips]
        windows = [(max(start, a), min(end, b), text) for a, b in _windows(query) if min(end, b) > max(start, a)]
        base[R.QUESTION] = _fixed_question(stage, "highlights", base[R.SAMPLE_ID], query=text)
        _scored_answer(base, spans, scores)
        base[R.EVIDENCE] = annotation_evidence(sorted(windows))
        out.append(base)
    return out


HIGHLIGHTS = TaskFamily(HighlightsTask, _plan_highlights, _finish_highlights, prompts=("highlights", TEMPLATE_PROMPT),
                        needs_teacher=lambda tcfg: tcfg.source != "annotations")


# --- summarization

def _plan_summary(stage: StageView, row: dict, clues: list[Clue], tcfg: SummarizationTask):
    if tcfg.form == "extractive":
        return _plan_key_moments(stage, row, clues, tcfg)
    units = moments(row, clues)
    if len(units) < tcfg.min_moments:
        return [], []
    prompt = stage.prompts["summarization"]
    clue_text = clue_lines(clues)
    sentence = strict_object({"text": text_field(min(stage.config.max_answer_chars, 240)),
                              "evidence": id_list([c.id for c in units], tcfg.max_evidence)})
    schema = strict_object({"sentences": {"type": "array", "items": sentence, "minItems": 1,
                                          "maxItems": tcfg.max_sentences}})
    text = prompt.render(clues=clue_text, max_sentences=tcfg.max_sentences)
    req = teacher_request(stage, prompt, text, clues, schema, "summarization", ("summarization", clue_text))
    return [], [Pending("summarization", 0, "summary", prompt, req, {"units": units})]


def _plan_key_moments(stage: StageView, row: dict, clues: list[Clue], tcfg: SummarizationTask):
    units = _units(row, clues, tcfg.max_moments)
    if len(units) < max(2, tcfg.min_moments):   # one moment is no choice
        return [], []
    prompt = stage.prompts["summarization_extractive"]
    clue_text = clue_lines(units)
    schema = strict_object({"scores": _score_schema(units, tcfg.scale)})
    text = prompt.render(clues=clue_text, scale=tcfg.scale)
    req = teacher_request(stage, prompt, text, units, schema, "summarization", ("summarization_extractive", clue_text))
    return [], [Pending("summarization", 0, "key_moments", prompt, req, {"units": units})]


def _finish_summary(stage: StageView, row, clues, p: Pending, reply: dict, base: dict, state: dict):
    tcfg: SummarizationTask = stage.config.tasks.summarization
    if p.question_type == "key_moments":
        scores = _ratings(reply, p.extra["units"], tcfg.scale)
        if not any(s >= tcfg.min_score for s in scores.values()):
            return [stage.reject(base, "no_key_moment", f"summarization: no moment rated {tcfg.min_score} or more",
                                 scores=scores)]
        base[R.QUESTION] = _fixed_question(stage, "extractive", base[R.SAMPLE_ID], SUMMARY_QUESTIONS)
        _rated_answer(base, p.extra["units"], scores, tcfg.min_score, tcfg.scale)
        return [base]
    parts, support, seen = [], [], set()
    for s in reply.get("sentences") or []:
        text = " ".join((s.get("text") or "").split()).rstrip(" .")
        refs = cited(s, p.extra["units"])
        if not text or not refs or text.lower() in seen:
            continue   # a sentence that cites no moment has no time to carry
        seen.add(text.lower())
        if _skips_a_moment(refs, p.extra["units"]):
            # its span would run over moments it does not tell (outside check h17 F2: 0.6-40 s from two clues)
            stage.counters["summary_sentences_dropped_disjoint"] += 1
            continue
        parts.append((union_span(refs), text))
        support.extend(refs)
    if not parts:
        return [stage.reject(base, "bad_reply", "summarization: no sentence cites a timed moment, or one stretch "
                             "of them", reply=reply)]
    parts.sort(key=lambda part: part[0])   # in time order, as the prompt asks (a teacher's order may not be)
    base[R.QUESTION] = _fixed_question(stage, "summarization", base[R.SAMPLE_ID])
    base[R.ANSWER] = " ".join(f"{text} ({span_placeholder(a, b)})." for (a, b), text in parts)
    base[R.ANSWER_SPANS] = [{"start_s": a, "end_s": b} for (a, b), _ in parts]
    base[R.EVIDENCE] = evidence(support)
    return [base]


def _skips_a_moment(refs: list[Clue], units: list[Clue]) -> bool:
    """Whether a moment the sentence does not cite lies between the ones it cites, clear of all of them: the
    cited moments are no one stretch of the video, and their union would claim the gap."""
    a, b = union_span(refs)
    # a fragment under SKIPPED_MOMENT_S (Whisper's 0.3 s "Tom" between two lines) leaves the stretch whole (h19)
    return any(a <= u.start_s and u.end_s <= b and u.end_s - u.start_s >= SKIPPED_MOMENT_S
               and not any(u.start_s < r.end_s and r.start_s < u.end_s for r in refs)
               for u in units if u not in refs)


SKIPPED_MOMENT_S = 1.0


SUMMARIZATION = TaskFamily(SummarizationTask, _plan_summary, _finish_summary,
                           prompts=("summarization", "summarization_extractive", SUMMARY_QUESTIONS, TEMPLATE_PROMPT),
                           needs_teacher=lambda tcfg: True)
