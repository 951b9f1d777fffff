"""wellformed: reject samples that are not proper instruction data before any model-based filter sees them.

A small teacher writes fluent garbage often enough: a "question" that reads "C1", a statement with a
question's job ("The creator is not a woman."), two equal options, an answer missing from its options,
a reply in the wrong language, or a copy of the prompt's own example. Each check has a reason code:

- `not_a_question`: a teacher-written question that neither ends with "?" nor opens with a question or
  request word (what, how, describe, …);
- `vacuous_question`: a question with no word of its own beyond function words and words about the task
  itself ("What is the answer to this question?", "What does note 1 say?"): it asks nothing about the video;
- `bare_reference`: a question or answer that is only a note id ("C1", "A2", "U3"; time placeholders around
  it do not count: "A1 ({{span:0,12}})") or empty of words;
- `note_echo`: a question or answer that repeats a note's line as the prompt shows it
  ("M1 (title of the video): ..."): the trained model would learn to cite notes it never sees;
- `template_slot`: a slot of the prompt's reply form kept as text ("<sentence> (0.0 - 9.0 seconds).");
- `duplicate_options` / `empty_option`: MCQ options that repeat (after normalisation) or are blank;
- `answer_not_in_options`: the MCQ answer is not the option at `answer_index`, or not among the options;
- `too_short` / `too_long`: question or answer word counts outside `[min, max]`;
- `wrong_language`: `v_language_score` below `min_language_score` (see `language_score`);
- `prompt_leak`: `v_prompt_overlap` above `max_prompt_overlap` — the share of the sample's word 3-grams
  (each with a content word) that stand in a shipped prompt template of `vdata/prompts/`, so an
  example copied from a prompt ("The star is yellow.") is caught, whatever version made it.

The two numeric scores are stored and can be re-thresholded after the build; every issue found is listed
in `v_wellformed_issues`, the first one is the reject reason, with a message holding the numbers.

The language check is a function-word ratio, not a language-identification model: on the 3–12-word
questions and answers this stage sees, a word-frequency detector has too little text, while the share of
the text's function words that belong to the configured language separates English from German,
French, Spanish, Italian, Portuguese and Dutch replies on as few as two function words. A text with
no function word at all (a one-word answer) gets no score and passes.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from pydantic import Field

from vdata.schemas import records as R

from .base import Reject, Resources, Stage, StageConfig

FUNCTION_WORDS = {
    "en": "the a an and or of to in on at is are was were be it that this with for as by what which who how why "
          "does do did there their they he she his her from into after before then while",
    "de": "der die das und oder ist sind war ein eine einen mit von zu auf fur im nicht was wie warum wer dem den "
          "des sich auch es sie er wird nach vor dann",
    "fr": "le la les et ou est sont un une des du de avec pour dans sur que qui quoi comment pourquoi ce cette il "
          "elle ils pas au aux puis",
    "es": "el la los las y o es son un una unos con para en sobre que quien como por del al se no lo esta estan",
    "it": "il lo la gli le e o sono un una con per su che chi come perche del della nel non questo questa",
    "pt": "o a os as e ou sao um uma com para em sobre que quem como por do da no na nao isso este esta",
    "nl": "de het een en of is zijn met voor op dat die wie hoe waarom wat niet van naar ook er",
}
FUNCTION_SETS = {k: set(v.split()) for k, v in FUNCTION_WORDS.items()}
QUESTION_OPENERS = {"what", "which", "who", "whom", "whose", "where", "when", "why", "how", "is", "are", "was",
                    "were", "does", "do", "did", "can", "could", "will", "would", "should", "has", "have", "had",
                    "describe", "explain", "list", "name", "identify", "give", "tell", "summarize", "summarise",
                    "localize", "localise", "divide", "split", "at", "in", "according", "during", "based"}
TEACHER_QUESTION_TASKS = ("open_qa", "mcq", "cot", "grounding", "grounded_qa", "clue_qa", "false_premise",
                          "reasoning_localization")
# Checked by default (`tasks: null`): these, and every sample a teacher wrote (its `sample_teacher` is set)
DEFAULT_TASKS = ("caption", "open_qa", "mcq", "cot", "grounding", "dense_caption", "chapter")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
# Words about the task rather than the video: a question made only of these (and function words) asks nothing.
TASK_WORDS = {"answer", "answers", "question", "questions", "note", "notes", "context", "description", "additional",
              "video", "clip", "correct", "following", "according", "given", "text", "say", "says", "said", "mean",
              "means", "option", "options", "true", "false", "describe", "tell", "explain", "other", "no", "any"}
# Note ids of the prompts (vdata/stages/generate/clues.py: C, E, S, T, F per clip; A, M, H, U, G, V at video scope)
_NOTE_ID = r"(?:[CESTFAMHUG]\d{1,3})"
_REFERENCE = re.compile(rf"^\s*(?:{_NOTE_ID}[\s,;]*)+\.?\s*$")
_NOTE_LINE = re.compile(rf"(?<![\w-])(?:V|{_NOTE_ID}) \([^()]*\):")
_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")
_EMPTY_PARENS = re.compile(r"\(\s*\)")
# A slot of a prompt's reply form copied as text ("<sentence>", "<note id>"): stored samples hold no angle
# brackets of their own (times are {{span:..}} placeholders until an export renders them)
_TEMPLATE_SLOT = re.compile(r"<[a-z][a-z_ ]{0,24}>")
_TEMPLATE_VAR = re.compile(r"\$\{?\w+\}?")
NGRAM = 3


def tokens(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text or "")]


def language_score(text: str, language: str) -> float | None:
    """Share of the text's function words (over all known languages) that belong to `language`; None when
    the text has none."""
    toks = tokens(text)
    hits = {lang: sum(t in words for t in toks) for lang, words in FUNCTION_SETS.items()}
    best = max(hits.values())
    if not best:
        return None
    # words shared by several languages ("a", "de", "in") count for each of them
    return hits.get(language, 0) / best


def _content_ngrams(toks: list[str]) -> set[tuple[str, ...]]:
    fn = FUNCTION_SETS["en"] | {"video", "clip", "note", "notes"}
    return {g for g in zip(*(toks[i:] for i in range(NGRAM))) if any(t not in fn for t in g)}


@lru_cache(maxsize=1)
def prompt_ngrams() -> frozenset:
    """Word 3-grams of every shipped prompt template (all groups, all versions), template variables out."""
    grams: set = set()
    root = resources.files("vdata.prompts")
    for group in root.iterdir():
        if not group.is_dir():
            continue
        for entry in group.iterdir():
            if entry.name.endswith(".txt"):
                text = _TEMPLATE_VAR.sub(" | ", entry.read_text())
                for line in text.splitlines():   # n-grams never span two lines of a template
                    grams |= _content_ngrams(tokens(line))
    return frozenset(grams)


def prompt_overlap(text: str) -> float | None:
    """Share of the text's content 3-grams found in a prompt template; None for texts under 3 words."""
    grams = _content_ngrams(tokens(text))
    if not grams:
        return None
    return len(grams & prompt_ngrams()) / len(grams)


def _norm(text: str) -> str:
    return " ".join(tokens(text))


class WellformedConfig(StageConfig):
    tasks: list[str] | None = Field(None, description="tasks to check; null: every sample a teacher wrote, and "
                                                     "these: " + ", ".join(DEFAULT_TASKS))
    language: str = Field("en", pattern="^(" + "|".join(FUNCTION_WORDS) + ")$")
    min_language_score: float | None = Field(0.6, ge=0, le=1)   # None: no language check
    max_prompt_overlap: float | None = Field(0.5, ge=0, le=1)   # None: no prompt-leak check
    min_question_words: int = Field(3, ge=1)
    max_question_words: int = Field(60, ge=1)
    min_answer_words: int = Field(1, ge=1)
    max_answer_words: int = Field(250, ge=1)


class WellformedStage(Stage):
    name = "wellformed"
    Config = WellformedConfig
    reads = (R.SAMPLE_ID, R.TASK, R.QUESTION, R.ANSWER, R.SAMPLE_TEACHER)
    writes = R.WELLFORMED_COLUMNS
    default_resources = Resources(num_cpus=0.25, batch_size=64)
    is_filter = True

    def process_row(self, row: dict) -> dict | Reject:
        cfg = self.config
        out = dict(row)
        task = row.get(R.TASK)
        if task not in (cfg.tasks or DEFAULT_TASKS) and (cfg.tasks is not None or not row.get(R.SAMPLE_TEACHER)):
            out.update({R.V_WELLFORMED_ISSUES: [], R.V_LANGUAGE_SCORE: None, R.V_PROMPT_OVERLAP: None})
            return out
        issues = self.issues(row)
        text = " ".join(x for x in [row.get(R.QUESTION) if row.get(R.TASK) in TEACHER_QUESTION_TASKS else "",
                                    row.get(R.ANSWER), " ".join(row.get(R.OPTIONS) or [])] if x)
        lang = language_score(text, cfg.language)
        overlap = prompt_overlap(text)
        if cfg.min_language_score is not None and lang is not None and lang < cfg.min_language_score:
            issues.append(("wrong_language", f"language score {lang:.2f} < {cfg.min_language_score} for "
                                             f"{cfg.language!r}: {text[:80]!r}"))
        if cfg.max_prompt_overlap is not None and overlap is not None and overlap > cfg.max_prompt_overlap:
            issues.append(("prompt_leak", f"{overlap:.0%} of the sample's word 3-grams stand in a prompt template "
                                          f"(max {cfg.max_prompt_overlap:.0%}): {text[:80]!r}"))
        out[R.V_WELLFORMED_ISSUES] = [code for code, _ in issues]
        out[R.V_LANGUAGE_SCORE] = lang
        out[R.V_PROMPT_OVERLAP] = overlap
        if not issues:
            return out
        code, message = issues[0]
        return self.reject(out, code, message, issues=[c for c, _ in issues], language_score=lang,
                           prompt_overlap=overlap, question=row.get(R.QUESTION), answer=row.get(R.ANSWER))

    def issues(self, row: dict) -> list[tuple[str, str]]:
        """(reason code, message) for every structural problem of the sample, in a fixed order."""
        cfg = self.config
        found: list[tuple[str, str]] = []
        task = row.get(R.TASK)
        q, a = (row.get(R.QUESTION) or "").strip(), (row.get(R.ANSWER) or "").strip()
        qt, at = tokens(q), tokens(a)
        for what, text, toks in (("question", q, qt), ("answer", a, at)):
            if not toks or _REFERENCE.match(_EMPTY_PARENS.sub("", _PLACEHOLDER.sub("", text))):
                found.append(("bare_reference", f"the {what} {text[:40]!r} is only a note id or has no words"))
            elif _NOTE_LINE.search(text):
                found.append(("note_echo", f"the {what} repeats a note of the prompt: {text[:80]!r}"))
            elif slot := _TEMPLATE_SLOT.search(text):
                found.append(("template_slot", f"the {what} keeps a slot of the prompt's reply form "
                                               f"({slot.group(0)}): {text[:80]!r}"))
        if task in TEACHER_QUESTION_TASKS and qt and not _REFERENCE.match(q):
            if not q.rstrip().endswith("?") and qt[0] not in QUESTION_OPENERS:
                found.append(("not_a_question", f"the question {q[:80]!r} neither ends with '?' nor opens with a "
                                                "question word"))
        if task in TEACHER_QUESTION_TASKS and qt and not _REFERENCE.match(q):
            own = [w for w in qt if w not in TASK_WORDS and w not in QUESTION_OPENERS and not w.isdigit()
                   and not any(w in words for words in FUNCTION_SETS.values())]
            if not own:
                found.append(("vacuous_question", f"the question {q[:80]!r} has no word about the video, only words "
                                                  "about the task"))
        if qt and len(qt) < cfg.min_question_words:
            found.append(("too_short", f"question of {len(qt)} word(s) < {cfg.min_question_words}: {q[:80]!r}"))
        if len(qt) > cfg.max_question_words:
            found.append(("too_long", f"question of {len(qt)} words > {cfg.max_question_words}"))
        if at and len(at) < cfg.min_answer_words:
            found.append(("too_short", f"answer of {len(at)} word(s) < {cfg.min_answer_words}: {a[:80]!r}"))
        if len(at) > cfg.max_answer_words:
            found.append(("too_long", f"answer of {len(at)} words > {cfg.max_answer_words}"))
        if task == "mcq":
            found += self.option_issues(row)
        return found

    @staticmethod
    def option_issues(row: dict) -> list[tuple[str, str]]:
        options = list(row.get(R.OPTIONS) or [])
        norm = [_norm(o) for o in options]
        out = []
        if len(options) < 2:
            out.append(("empty_option", f"an MCQ needs at least 2 options, it has {len(options)}"))
        if any(not n for n in norm):
            out.append(("empty_option", f"option(s) {[i for i, n in enumerate(norm) if not n]} of {options} are empty"))
        dupes = sorted({o for o, n in zip(options, norm) if n and norm.count(n) > 1})
        if dupes:
            out.append(("duplicate_options", f"options repeat after normalisation: {dupes} in {options}"))
        idx, answer = row.get(R.ANSWER_INDEX), _norm(row.get(R.ANSWER) or "")
        if idx is None or not 0 <= idx < len(options) or norm[idx] != answer:
            where = f"options[{idx}] = {options[idx]!r}" if idx is not None and 0 <= idx < len(options) else f"index {idx}"
            if answer not in norm:
                out.append(("answer_not_in_options", f"answer {row.get(R.ANSWER)!r} is not among the options {options}"))
            else:
                out.append(("answer_not_in_options", f"answer {row.get(R.ANSWER)!r} is not at its answer_index ({where})"))
        return out
