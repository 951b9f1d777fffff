"""wellformed: reject samples that are not proper instruction data before any model-based filter sees them.

A small teacher writes fluent garbage often enough: a "question" that reads "C1", a statement with a
question's job ("The creator is not a woman."), two equal options, an answer missing from its options,
a reply in the wrong language, or a copy of the prompt's own example. Each check has a reason code:

- `not_a_question`: a teacher-written question that neither ends with "?" nor opens with a question or
  request word (what, how, describe, …);
- `vacuous_question`: a question with no word of its own beyond function words and words about the task
  itself ("What is the answer to this question?", "What does note 1 say?"): it asks nothing about the video;
- `bare_reference`: a question or answer that is only a note id ("C1", "A2", "U3", the video caption's
  "V"; time placeholders around it do not count: "A1 ({{span:0,12}})") or empty of words; one such
  word stands when the row's own evidence uses it as a word (a sign reading "V", an "A4" sheet);
- `note_echo`: a question or answer that repeats a note's line as the prompt shows it
  ("M1 (title of the video): ...", "A1 (annotated segment, 0.0-10.0s)"): the trained model would learn
  to cite notes it never sees; `bare_reference` and `note_echo` read a CoT's rationale steps too;
- `states_time`: a question, answer, rationale step or MCQ option a teacher wrote (`sample_teacher` set;
  not a caption, whose prompts ask for times) states a time ("at 11.3 seconds", "0:10", "31s", "ten
  seconds", "frame 50": vdata/prompts/stated_times.py; a duration, "bakes for 20 minutes", is content).
  Samples carry times as placeholders that exports render (relative to a clip visual); a literal time
  stays as written, a second clock in the same answer. Text a sample takes from the user's own
  annotations (no teacher) is never judged so, nor is a time of day ("7:30" beside "8 o'clock") where the
  question, the answer or the evidence speaks of one, the speech (transcript, subtitles) by a clock time too;
- `template_slot`: a slot of the prompt's reply form kept as text ("<sentence> (0.0 - 9.0 seconds).");
- `duplicate_options` / `empty_option`: MCQ options that repeat (after normalisation) or are blank;
- `answer_not_in_options`: the MCQ answer is not the option at `answer_index`, or not among the options;
- `too_short` / `too_long`: question or answer word counts outside `[min, max]`;
- `wrong_language`: `v_language_score` below `min_language_score` (see `language_score`);
- `prompt_leak`: `v_prompt_overlap` above `max_prompt_overlap` — the share of the sample's word 3-grams
  (each with a content word) that stand in a shipped prompt template of `vdata/prompts/`, so an
  example copied from a prompt ("The star is yellow.") is caught, whatever version made it;
- `prompt_example`: a question or answer about a prompt's in-context example rather than the video, in
  the teacher's own words ("How long does a ferry take to reach the island?" after open_qa's harbour
  example), which exact 3-grams miss. The examples are read from the shipped templates themselves
  (see `prompt_examples`); a sample that uses more than `max_example_words` words of one example that
  the row's own evidence (captions, transcript, events, annotations, the cited clues) never says is
  rejected; a word of what the prompt says the example is about ("about a harbour") counts twice. A
  video that really shows a ferry keeps its ferry questions: its evidence says "ferry". A row with no
  text evidence at all (frames only) is not judged.

The two numeric scores are stored and can be re-thresholded after the build; every issue found is listed
in `v_wellformed_issues`, the first one is the reject reason, with a message holding the numbers.

The language check is a function-word ratio, not a language-identification model: on the 3–12-word
questions and answers this stage sees, a word-frequency detector has too little text, while the share of
the text's function words that belong to the configured language separates English from German,
French, Spanish, Italian, Portuguese and Dutch replies on as few as two function words. A text with
no function word at all (a one-word answer) gets no score and passes.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from pydantic import Field

from vdata.prompts import NOTE_ID
from vdata.prompts.stated_times import as_said, content_time, said_in, says_time_of_day, states_time, video_times
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
_REFERENCE = re.compile(rf"^\s*(?:{NOTE_ID}[\s,;]*)+\.?\s*$")
_LONE_ID = re.compile(r"\s*([A-Z]\d{0,3})\s*\.?\s*")
_NOTE_LINE = re.compile(rf"(?<![\w-]){NOTE_ID} \([^()]*\):")
# ... or a note's id with its label as the prompt shows it, colon or not ("A1 (annotated segment, 0.0-10.0s)",
# "T1 (speech, 0.6-3.9s:"): the labels of generate's clue lines (stages/generate/clues.py)
_NOTE_LABEL = re.compile(rf"(?<![\w-]){NOTE_ID} \((?:caption of|event\b|what changes|speech\b|chapter\b|about the "
                         r"video|annotated segment|description of|labels of|subtitle\b|title of|transcript\b|frame at)")
_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")
_QUOTED = re.compile(r"[\"“]([^\"“”]{3,})[\"”]")
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


# --- the prompts' in-context examples --------------------------------------------------------------
# Words too common to tell one topic from another, beyond the function words: pronouns, auxiliaries,
# everyday verbs and adverbs, number words. Generic English, not any prompt's example.
COMMON_WORDS = set("""i i'm me my we our you your he him his she her it its they them their one ones
    someone something thing things person people man woman men women can could will would should may might must
    has have had get gets got go goes going went come comes came make makes made take takes took see sees saw look
    looks use uses used put puts way now then here there very just also only still again more most much many some
    all each every both few other another same such own new first last next well really back up down out off over
    too big small large little long short good bad great two three four five six seven eight nine ten eleven twelve
    not no yes""".split())
_EXAMPLE_HEAD = re.compile(r"^\s*(?:example\b|here is how\b)", re.IGNORECASE)   # a demonstration starts here
_EXAMPLE_TOPIC = re.compile(r"\babout an? ([^,()]+?),\s*not this\b", re.IGNORECASE)   # "(about a harbour, not this clip)"
_INLINE_EXAMPLE = re.compile(r"\b(?:for example|e\.g\.)\s*:?\s*\"([^\"]+)\"", re.IGNORECASE)
_LINE_LABEL = re.compile(r"^\s*(?:[A-Z]\d{0,3} \([^()]*\)|[A-Z][A-Za-z ]{0,30}):\s")   # "E1 (event, 3.0-9.0s): ", "Question: "
_JSON_KEY = re.compile(r"\"\w+\"\s*:")


# British spellings as American ones, both sides alike: Whisper writes "harbor" where the prompt's example
# says "harbour", and a sample about the clip's own harbor was taken for the example's (outside check h25 F2)
_SPELLINGS = ((re.compile(r"(?<=\w{3})our(s|ed|ing|ful|less)?$"), r"or\1"),
              (re.compile(r"(?<=\w{2})tre(s|d)?$"), r"ter\1"),
              (re.compile(r"(?<=\w{3})is(e|es|ed|ing|ation|ations)$"), r"iz\1"),
              (re.compile(r"^grey"), "gray"))


def stem(word: str) -> str:
    """A crude English stem, the same on both sides of a comparison: "sinking"/"sinks"/"sink" -> "sink",
    "ferries"/"ferry" -> "ferry", "baking"/"bakes"/"bake" -> "bak"; British spellings as American ones
    ("harbours" -> "harbor", "centre" -> "center")."""
    w = word.lower().removesuffix("'s")
    for pattern, american in _SPELLINGS:
        w = pattern.sub(american, w)
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    for end in ("ing", "ed", "es", "s", "e"):
        if len(w) - len(end) >= 3 and w.endswith(end) and not w.endswith("ss"):
            w = w[:-len(end)]
            if end in ("ing", "ed") and len(w) > 3 and w[-1] == w[-2]:
                w = w[:-1]   # "spinning" -> "spin"
            break
    return w


_NOT_CONTENT = frozenset(COMMON_WORDS | TASK_WORDS | QUESTION_OPENERS | set().union(*FUNCTION_SETS.values()))


def _stems(text: str) -> set[str]:
    """Stems of the text's content words (no function, common or digit-bearing words, none under 3 letters)."""
    words = (w.removesuffix("'s") for w in tokens(text))
    return {stem(w) for w in words if w not in _NOT_CONTENT and len(w) >= 3 and not any(c.isdigit() for c in w)}


@dataclass(frozen=True)
class PromptExample:
    template: str             # where it stands, "generate/open_qa.v3"
    words: frozenset          # stems of its own words: not in any template's instructions
    topic: frozenset          # stems of what the prompt says it is about ("about a harbour")


def _labels(paragraph: str) -> frozenset | None:
    """The line labels of a paragraph whose every line is `Label: text` ("Sentence:", "Question:"), else None."""
    found = [_LINE_LABEL.match(line) for line in paragraph.splitlines() if line.strip()]
    return frozenset(m.group(0).strip() for m in found) if found and all(found) else None


def split_examples(text: str) -> tuple[list[str], str]:
    """(the template's in-context examples, the rest of its text). An example is a paragraph that opens
    with "Example" / "Here is how", a line that does, a quoted `for example "..."`, or a few-shot pair: a
    paragraph of `Label: text` lines without a `$slot` whose labels another paragraph fills with slots."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    labels = [_labels(p) for p in paragraphs]
    slotted = {lab for p, lab in zip(paragraphs, labels) if lab and "$" in p}
    examples, rest = [], []
    for para, lab in zip(paragraphs, labels):
        if _EXAMPLE_HEAD.match(para) or (lab and "$" not in para and lab in slotted):
            examples.append(para)
            continue
        for line in para.splitlines():
            if _EXAMPLE_HEAD.match(line):
                examples.append(line)
                continue
            examples += _INLINE_EXAMPLE.findall(line)
            rest.append(_INLINE_EXAMPLE.sub(" ", line))
    return examples, "\n".join(rest)


def _example_text(example: str) -> str:
    """An example without its header line, note labels, reply keys and slots: the words it is made of."""
    lines = example.splitlines()
    if len(lines) > 1 and lines[0].rstrip().endswith(":"):
        lines = lines[1:]
    out = []
    for line in lines:
        if _EXAMPLE_HEAD.match(line) and line.rstrip().endswith(":"):
            continue   # "Example reply for a question of type ...:" introduces, it is not the example
        out.append(_JSON_KEY.sub(" ", _LINE_LABEL.sub(" ", _TEMPLATE_VAR.sub(" ", line))))
    return "\n".join(out)


@lru_cache(maxsize=1)
def prompt_examples() -> tuple[PromptExample, ...]:
    """Every in-context example of the shipped templates (all groups, all versions). An example's words
    are those of its own that no template's instructions use: words the prompts ask for ("question",
    "colour", "viewer") say nothing about where a sample's content came from."""
    found, instructions = [], []
    root = resources.files("vdata.prompts")
    for group in sorted((g for g in root.iterdir() if g.is_dir()), key=lambda g: g.name):
        for entry in sorted((e for e in group.iterdir() if e.name.endswith(".txt")), key=lambda e: e.name):
            examples, rest = split_examples(entry.read_text())
            instructions.append(rest)
            found += [(f"{group.name}/{entry.name[:-4]}", ex) for ex in examples]
    generic = set().union(*(_stems(_TEMPLATE_VAR.sub(" ", t)) for t in instructions))
    out = []
    for where, example in found:
        topic = frozenset(set().union(*(_stems(m) for m in _EXAMPLE_TOPIC.findall(example))))
        words = frozenset((_stems(_example_text(example)) - generic) | topic)
        if words:
            out.append(PromptExample(where, words, topic))
    return tuple(out)


def _texts(value) -> list[str]:
    """Every string inside a column value (nested lists and structs, a JSON object string)."""
    if isinstance(value, str):
        if value[:1] == "{":
            try:
                return _texts(json.loads(value))
            except ValueError:
                pass
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    return []


# What the row knows about its video as text: the clues a teacher was shown are made of these columns
EVIDENCE_COLUMNS = (R.CAPTION, R.CAPTION_RENAMED, R.CAPTION_FIELDS, R.CAPTION_STEPS, R.DENSE_EVENTS, R.VIDEO_CAPTION,
                    R.CLIP_CAPTIONS, R.TRANSCRIPT_TEXT, R.TRANSCRIPT_SEGMENTS, R.ANNOTATIONS, R.EVIDENCE, R.SOURCE_META)


def evidence_text(row: dict) -> str:
    return "\n".join(t for c in EVIDENCE_COLUMNS for t in _texts(row.get(c)) if t.strip())


@lru_cache(maxsize=1)
def example_vocabulary() -> frozenset:
    """Every word of every prompt example: a text with none of them takes nothing from one."""
    return frozenset().union(*(ex.words for ex in prompt_examples()))


def example_words_used(stems: set[str], evidence: set[str]) -> tuple[int, PromptExample | None, list[str]]:
    """(weight, example, words): the prompt example a text (the `stems` of its words) takes most from, and
    the stems it uses that the evidence lacks (topic words first, each weighing two); (0, None, []) if none."""
    own = stems - evidence
    best: tuple[int, PromptExample | None, list[str]] = (0, None, [])
    for ex in prompt_examples():
        topic = sorted(own & ex.topic)
        used = topic + sorted((own & ex.words) - ex.topic)
        if len(used) + len(topic) > best[0]:
            best = (len(used) + len(topic), ex, used)
    return best


def _evidence_says(bare: str, row: dict) -> bool:
    """Whether a lone id-like word ("V", "A4") is one the row's own evidence uses as a word: content, no note id."""
    m = _LONE_ID.fullmatch(bare)
    return bool(m) and re.search(rf"(?<![\w-]){m.group(1)}(?![\w-])", evidence_text(row)) is not None


def _norm(text: str) -> str:
    return " ".join(tokens(text))


class WellformedConfig(StageConfig):
    tasks: list[str] | None = Field(None, description="tasks to check; null: every sample a teacher wrote, and "
                                                     "these: " + ", ".join(DEFAULT_TASKS))
    language: str = Field("en", pattern="^(" + "|".join(FUNCTION_WORDS) + ")$")
    min_language_score: float | None = Field(0.6, ge=0, le=1)   # None: no language check
    max_prompt_overlap: float | None = Field(0.5, ge=0, le=1)   # None: no prompt-leak check
    # words of one prompt example (a topic word counts 2) a question or answer may use that the row's
    # evidence lacks; None: no prompt-example check
    max_example_words: int | None = Field(1, ge=0)
    min_question_words: int = Field(3, ge=1)
    max_question_words: int = Field(60, ge=1)
    min_answer_words: int = Field(1, ge=1)
    max_answer_words: int = Field(250, ge=1)


class WellformedStage(Stage):
    name = "wellformed"
    version = 4   # 2: states_time; rationale steps read for bare_reference / note_echo; note ids with their labels
    #             3: British and American spellings are one word in the prompt_example check
    #             4: a time of day ("7:30") is content where the sample or its evidence speaks of one (h25 F17)
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
        issues += self.example_issues(row)
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
        steps = [(f"rationale step {k + 1}", (s.get("text") or "").strip()) for k, s in
                 enumerate(row.get(R.RATIONALE_STEPS) or []) if isinstance(s, dict)]
        for what, text, toks in (("question", q, qt), ("answer", a, at), *((w, t, tokens(t)) for w, t in steps)):
            bare = _EMPTY_PARENS.sub("", _PLACEHOLDER.sub("", text))
            if not toks or _REFERENCE.match(bare) and not _evidence_says(bare, row):
                found.append(("bare_reference", f"the {what} {text[:40]!r} is only a note id or has no words"))
            elif _NOTE_LINE.search(text) or _NOTE_LABEL.search(text):
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
        return found + self.time_issues(row, steps)

    @staticmethod
    def time_issues(row: dict, steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """`states_time` for every text of a sample a teacher wrote (captions aside: their prompts ask for times)."""
        task = row.get(R.TASK)
        if not row.get(R.SAMPLE_TEACHER) or task == "caption":
            return []
        texts = [("question", row.get(R.QUESTION)) if task in TEACHER_QUESTION_TASKS else ("question", ""),
                 ("answer", row.get(R.ANSWER)), *steps]
        raw = as_said(evidence_text(row)) if task == "mcq" else None
        if task == "mcq" and not content_time(row.get(R.ANSWER), raw):
            # wrong options that are times are the right answer's kind: content when it is ("8:30" beside "9:30")
            texts += [(f"option {k}", o) for k, o in enumerate(row.get(R.OPTIONS) or [])]
        evidence = day = None
        for what, text in texts:
            if text and states_time(text, durations=False):
                if evidence is None:
                    raw = raw if raw is not None else as_said(evidence_text(row))
                    evidence = " ".join(tokens(raw))
                    ann = row.get(R.ANNOTATIONS) if isinstance(row.get(R.ANNOTATIONS), dict) else {}   # module doc
                    speech = _texts([row.get(R.TRANSCRIPT_TEXT), row.get(R.TRANSCRIPT_SEGMENTS),
                                     ann.get("subtitles"), ann.get("transcript")])
                    day = (any(says_time_of_day(x or "") for x in (row.get(R.QUESTION), row.get(R.ANSWER), raw))
                           or says_time_of_day("\n".join(speech), clocks=True))
                # a quote of what the video's own evidence says ('the narrator says "the race starts at 9:30"',
                # answer-first's form), or a time the evidence itself says ("the race starts at 9:30", said by the
                # narrator), is the video's content, not a time the teacher put on the video (outside check h19)
                unquoted = _QUOTED.sub(lambda m: " " if " ".join(tokens(m.group(1))) in evidence else m.group(0), text)
                said = next((t for t in video_times(unquoted, day) if not said_in(t, raw)), None)
                if said is None:
                    continue
                return [("states_time", f"the {what} states a time ({said.text!r}); a sample's times are placeholders "
                                        f"that every export renders: {text[:80]!r}")]
        return []

    def example_issues(self, row: dict) -> list[tuple[str, str]]:
        """`prompt_example` for the question and the answer (options are wrong answers by design, and a
        false premise's words are absent on purpose: two of an example's words are needed, not one)."""
        limit = self.config.max_example_words
        if limit is None:
            return []
        texts = [(what, text, _stems(_PLACEHOLDER.sub(" ", text or ""))) for what, text in
                 (("question", row.get(R.QUESTION)), ("answer", row.get(R.ANSWER)))]
        # most samples use no example's word: the row's evidence is not read for them (half the stage's time)
        texts = [t for t in texts if t[2] & example_vocabulary()]
        evidence = evidence_text(row) if texts else ""
        if not evidence:
            return []   # no example word, or frames only: what the teacher saw cannot be read here
        said = _stems(evidence)
        found = []
        for what, text, stems in texts:
            weight, example, words = example_words_used(stems, said)
            if weight > limit:
                found.append(("prompt_example", f"the {what} {str(text)[:80]!r} uses words of the in-context example of "
                                                f"{example.template} that the row's evidence never says: "
                                                f"{', '.join(words)} (weight {weight} > {limit})"))
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
