"""Versioned prompt templates, shipped as package data.

A template lives at `vdata/prompts/<group>/<name>.v<N>.txt`; its id is `<group>/<name>@v<N>`. Stages
record the id of every template they used in their output rows, so a dataset says which prompt made
each caption or sample. Users override a template by pointing a stage's `prompts:` setting at their
own file; an override's id is `<group>/<name>@file:<sha256[:12]>` so it is traceable too.

Templates use `string.Template` syntax (`$name` / `${name}`), which leaves JSON braces alone. The values
put into them (titles, descriptions, subtitles, transcripts, earlier replies) are text: a chat template's
own tokens or a media placeholder in them is written so that it reads as text (`plain_text`), since an
`<|im_end|>` in a chapter title would end the teacher's turn mid-prompt.
"""
from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

_VERSIONED = re.compile(r"^(?P<name>.+)\.v(?P<version>\d+)\.txt$")
# A note id as the prompts show a row's clues (stages/generate/clues.py): C, E, S, T, F per clip and A, M, H,
# U, G at video scope, each numbered; the video caption is a bare V (V1... in older builds). The checks for
# ids copied into a question or answer (wellformed, generate's highlights) read it here, so they agree.
NOTE_ID = r"(?:[CESTFAMHUG]\d{1,3}|V\d{0,3})"
# media placeholders of the export formats and their trainers, and special tokens of the chat templates
# (`<|...|>`: Qwen, Llama 3, Phi, GPT; `<s>`, `</s>`: Llama 2, Mistral; InternVL's image context)
RESERVED = re.compile(r"<\|[^<>|\s]{1,40}\|>|</?(?:image|video|audio|img|s)>|<IMG_CONTEXT>")


# Samples carry times as placeholders (`{{t:12.3}}`, `{{span:12.3,20.5}}`, vdata/exporters/timefmt.py) that
# every export renders. Text a sample takes from its source (an annotation's title, segment or label) is
# data, so a `{{` in it must not read as one: it is stored as `{\{`, and a `{\` as `{\\` so that the
# escape reads back exactly. Whatever renders or shows placeholders un-escapes after rendering.
_ESCAPE_AT = re.compile(r"\{(?=[{\\])")          # a `{` before `{` or `\`: gets a `\` after it
_ESCAPED = re.compile(r"\{\\(?=[{\\])")         # that `\` again


def escape_placeholders(text: str) -> str:
    r"""Source text as a sample stores it: no time placeholder can be read in it (`{{` becomes `{\{`)."""
    return _ESCAPE_AT.sub("{\\\\", text) if text and "{" in text else text


def unescape_placeholders(text: str) -> str:
    """The text `escape_placeholders` was given (run after the placeholders are rendered)."""
    return _ESCAPED.sub("{", text) if text and "{\\" in text else text


def _quoted(match: re.Match) -> str:
    return match.group(0).replace("<", "\u2039").replace(">", "\u203a")


def plain_text(text: str) -> tuple[str, int]:
    """`text` with every reserved token written as text (`<video>` becomes `‹video›`, single angle
    quotation marks: it reads the same and is no token), and how many there were."""
    return RESERVED.subn(_quoted, text)


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str

    def render(self, **values) -> str:
        values = {k: plain_text(v)[0] if isinstance(v, str) else v for k, v in values.items()}
        try:
            return string.Template(self.text).substitute(**values)
        except KeyError as e:
            raise KeyError(f"prompt {self.id} needs a value for ${e.args[0]}") from None

    @property
    def version(self) -> str:
        return self.id.split("@", 1)[1]


def available(group: str) -> dict[str, list[int]]:
    """name -> sorted versions shipped for `group`."""
    return {k: list(v) for k, v in _shipped(group).items()}


@lru_cache(maxsize=None)
def _shipped(group: str) -> dict[str, tuple[int, ...]]:
    """The package's own files, listed once: every generate config validated, and every template its stage
    pins (`config_checks.pinned_version`), asks again."""
    out: dict[str, list[int]] = {}
    folder = resources.files("vdata.prompts").joinpath(group)
    if not folder.is_dir():
        return {}
    for entry in folder.iterdir():
        m = _VERSIONED.match(entry.name)
        if m:
            out.setdefault(m["name"], []).append(int(m["version"]))
    return {k: tuple(sorted(v)) for k, v in out.items()}


def load_prompt(group: str, name: str, version: int | None = None, override: str | None = None) -> Prompt:
    """The shipped template (latest version unless `version`), or the user's file at `override`."""
    if override:
        text = Path(override).read_text()
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return Prompt(f"{group}/{name}@file:{digest}", text)
    versions = available(group).get(name)
    if not versions:
        raise KeyError(f"no prompt template {group}/{name} (shipped: {sorted(available(group))})")
    v = version if version is not None else versions[-1]
    if v not in versions:
        raise KeyError(f"prompt {group}/{name} has versions {versions}, not {v}")
    text = resources.files("vdata.prompts").joinpath(group, f"{name}.v{v}.txt").read_text()
    return Prompt(f"{group}/{name}@v{v}", text)


def shorten(text: str | None, limit: int, collapse_spaces: bool = True) -> str:
    """Text bounded for a prompt: at most `limit` characters, cut ones ending in "…". With
    `collapse_spaces`, runs of whitespace (newlines too) become one space first."""
    text = " ".join(str(text or "").split()) if collapse_spaces else (text or "").strip()
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s|$)")


def complete_sentences(text: str) -> str:
    """`text` up to the end of its last complete sentence, "" when it has none (a reply cut mid-sentence
    keeps what it said whole)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[:ends[-1]].strip() if ends else ""
