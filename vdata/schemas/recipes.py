"""Recipes: the field's dataset-construction systems as shipped configs (`vdata recipes`, `vdata new`).

A recipe is one YAML file: a build config (or, for haystack benchmarks, a haystack config) whose
leading comment block is its documentation, written as `# Field: text` lines with indented
continuation lines:

    # Recipe: VidChapters-7M, teacher-free
    # Paper: Yang et al., "VidChapters-7M: Video Chapters at Scale", NeurIPS 2023
    # Reproduces: ...
    # Differs: ...                 (what differs from the original, and why)
    # Writes: ...                  (the output format)
    # Confirmed: ...               (where the release format was confirmed)

Everything else `vdata recipes` shows is read from the config itself, so it cannot drift from what
the recipe does: the teachers (and the stages that call them), the annotation kinds the `annotations`
stage reads, and the exports. Whether this install can run a recipe is checked against the registries
(stages, tasks, export formats, time renderers): a recipe written for a capability that is not
installed says which names it misses instead of failing at build time.

Where the files live: `vdata/assets/recipes/` is the copy the code reads (package data, so an
installed `vdata` has every recipe); `configs/recipes/` is the same files for people browsing the
repository, and tests/test_recipes.py fails when the two differ. Edit configs/recipes/ and run
`make recipes-sync` (a plain copy).
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

HEADER_FIELDS = ("Recipe", "Paper", "Reproduces", "Differs", "Writes", "Confirmed")
# Header fields a recipe may have: `Evaluate` (how `vdata score` scores a benchmark the recipe builds).
OPTIONAL_HEADER_FIELDS = ("Evaluate",)
_FIELD = re.compile(r"^#\s?([A-Z][A-Za-z]+):\s*(.*)$")
_CONTINUED = re.compile(r"^#\s{2,}(\S.*)$")
_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")
# Stage config keys that name a teacher (the teacher a stage calls, or the ones it chooses among).
_TEACHER_KEYS = ("teacher", "judge")


class RecipeError(ValueError):
    """No such recipe, or a recipe file that does not parse."""


@dataclass
class Recipe:
    name: str
    path: Path
    text: str
    data: dict
    header: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """"haystack" (a `vdata haystack` config) or "build" (a `vdata build` config)."""
        return "haystack" if "haystack" in self.data else "build"

    @property
    def command(self) -> str:
        verb = "vdata haystack build" if self.kind == "haystack" else "vdata build"
        return f"{verb} configs/recipes/{self.name}.yaml"

    def stages(self) -> list[tuple[str, dict]]:
        out = []
        for item in self.data.get("stages") or []:
            if isinstance(item, dict) and len(item) == 1:
                (name, cfg), = item.items()
                out.append((name, cfg or {}))
        return out

    def teachers(self) -> dict[str, list[str]]:
        """Each teacher the config defines → the stages that call it (in stage order)."""
        users: dict[str, list[str]] = {name: [] for name in self.data.get("teachers") or {}}
        for stage, cfg in self.stages():
            named = [cfg.get(k) for k in _TEACHER_KEYS]
            named += list((cfg.get("multi_teacher") or {}).get("teachers") or [])
            for name in named:
                if isinstance(name, str) and stage not in users.setdefault(name, []):
                    users[name].append(stage)
        return users

    def annotations(self) -> dict[str, str]:
        """Annotation kind → "required" or "optional", from the `annotations` stage's config."""
        cfg = dict(self.stages()).get("annotations")
        if cfg is None:
            return {}
        required = list(cfg.get("require") or [])
        kinds = {k: "required" for k in required}
        for k in cfg.get("sources") or {}:
            kinds.setdefault(k, "optional")
        return kinds

    def writes(self) -> list[str]:
        """The exports, as `format (time: renderer)`; a haystack recipe writes its own outputs."""
        if self.kind == "haystack":
            h = self.data.get("haystack") or {}
            return [f"haystack items ({', '.join(h.get('tasks') or [])}) + lmms-eval / VLMEvalKit files"]
        out = []
        for e in (self.data.get("output") or {}).get("exports") or []:
            time = e.get("time", "seconds")
            out.append(f"{e.get('format')} (time: {time})" + (f" tasks {e['tasks']}" if e.get("tasks") else ""))
        return out or ["samples Parquet"]

    def tasks(self) -> list[str]:
        out = []
        for stage, cfg in self.stages():
            if stage == "generate":
                tasks = cfg.get("tasks") or {}
                out += [t for t in (tasks if isinstance(tasks, list) else tasks) if t not in out]
        return out

    def missing(self) -> list[str]:
        """Names this recipe uses that this install does not have (empty: it can run here)."""
        from vdata.schemas.registry import EXPORT_FORMATS, STAGES, stage_class

        out = [f"stage {s}" for s, _ in self.stages() if s not in STAGES]
        if "generate" in STAGES:
            known = set(stage_class("generate").Config.model_fields["tasks"].annotation.model_fields)
            out += [f"task {t}" for t in self.tasks() if t not in known]
            gen = dict(self.stages()).get("generate") or {}
            if "scope" in gen and "scope" not in stage_class("generate").Config.model_fields:
                out.append("generate scope: video")
        for e in (self.data.get("output") or {}).get("exports") or []:
            if e.get("format") not in EXPORT_FORMATS:
                out.append(f"export format {e.get('format')}")
            elif "time" in e and not _time_known(e):
                out.append(f"time renderer {e['time']}")
        return out


def _time_known(export: dict) -> bool:
    """Whether ExportSpec accepts this export's `time:` (the renderers and their settings are its business)."""
    from pydantic import ValidationError

    from vdata.schemas.config import ExportSpec

    try:
        ExportSpec.model_validate({"format": export["format"], "time": export["time"]})
    except ValidationError:
        return False
    return True


def recipes_dir() -> Path:
    """The shipped recipe files (package data)."""
    return Path(str(resources.files("vdata").joinpath("assets", "recipes")))


def parse_header(text: str) -> dict[str, str]:
    """The `# Field: text` block at the top of a recipe file (continuation lines indented)."""
    header: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        m = _FIELD.match(line)
        if m and m.group(1) in HEADER_FIELDS + OPTIONAL_HEADER_FIELDS:
            current = m.group(1)
            header[current] = m.group(2).strip()
            continue
        m = _CONTINUED.match(line)
        if m and current is not None:
            header[current] = (header[current] + " " + m.group(1).strip()).strip()
        else:
            current = None
    return header


def load_recipe(name_or_path: str | Path) -> Recipe:
    p = Path(name_or_path)
    if not p.suffix:
        p = recipes_dir() / f"{name_or_path}.yaml"
        if not p.is_file():
            raise RecipeError(f"no recipe {str(name_or_path)!r}; recipes: {', '.join(recipe_names())}")
    text = p.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RecipeError(f"{p}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{p}: a recipe is a YAML mapping")
    return Recipe(name=p.stem, path=p, text=text, data=data, header=parse_header(text))


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def all_recipes() -> list[Recipe]:
    return [load_recipe(n) for n in recipe_names()]


# --- `vdata new`: a recipe with its inputs and teachers left to fill in -------------------------------

def _blocks(text: str) -> list[tuple[str | None, list[str]]]:
    """Top-level YAML blocks in order: (key or None for comments/blank lines before a key, lines)."""
    out: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines():
        m = _TOP_KEY.match(line)
        if m:
            out.append((m.group(1), [line]))
        else:
            out[-1][1].append(line)
    return out


def _env_name(teacher: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", teacher.upper())


def _input_block(recipe: Recipe) -> list[str]:
    kinds = recipe.annotations()
    if not kinds:
        return ["input:",
                "  # FILL IN: your videos: a folder (searched recursively), a glob, a manifest or an HF dataset",
                "  # (see the README's config section). ${VIDEOS} is read from the environment, or edit it here.",
                "  - path: ${VIDEOS}"]
    cols = ", ".join(f"{k} ({v})" for k, v in kinds.items())
    return ["input:",
            "  # FILL IN: a manifest (CSV / JSONL / Parquet) with a `path` column (relative to the manifest)",
            f"  # and the annotation columns this recipe reads: {cols}.",
            "  # Sidecar files next to each video work too (<stem>.srt, <stem>.vtt, <stem>.chapters.txt,",
            "  # <stem>.json): see docs/annotations.md. ${VIDEOS_MANIFEST} is read from the environment.",
            *_format_lines(kinds),
            "  - manifest: ${VIDEOS_MANIFEST}"]


def _format_lines(kinds: dict[str, str]) -> list[str]:
    """The labelled datasets whose own annotation files give what the recipe requires."""
    from vdata.schemas.annotation_formats import FORMAT_KINDS

    required = [k for k, how in kinds.items() if how == "required"] or list(kinds)
    formats = [f for f, has in FORMAT_KINDS.items() if all(k in has for k in required)]
    if not formats:
        return []
    example = min(formats, key=lambda f: (len(FORMAT_KINDS[f]), f))   # the one that carries least else
    listed = textwrap.wrap(f"formats that carry {' and '.join(required)}: {', '.join(formats)}.", width=100,
                           initial_indent="  # ", subsequent_indent="  #   ")
    return ["  # Or a labelled dataset's own annotation file, its videos found by id under `videos`:",
            f"  #   - {{manifest: train.json, format: {example}, videos: clips/}}", *listed]


def _teachers_block(recipe: Recipe) -> list[str]:
    lines = ["teachers:",
             "  # FILL IN: each teacher is any OpenAI-compatible endpoint (OpenAI, vLLM / SGLang / llama.cpp",
             "  # servers, a gateway); keys come from the environment, never from this file. The recipe's own",
             "  # file (`vdata recipes " + recipe.name + "`) runs them on the small demo models instead; for a",
             "  # vLLM engine inside the workers see configs/caption_gpu_vllm.yaml."]
    for name, stages in recipe.teachers().items():
        env = _env_name(name)
        lines += [f"  {name}:   # used by: {', '.join(stages) or 'nothing yet'}",
                  "    backend: openai",
                  f"    model: ${{{env}_MODEL}}",
                  f"    base_url: ${{{env}_URL:-https://api.openai.com/v1}}",
                  "    # no api_key here: $OPENAI_API_KEY is sent when it is set",
                  "    max_concurrency: 16"]
    return lines


def new_config_text(recipe: Recipe, keep_teachers: bool = False) -> str:
    """The recipe's text with `input:` (or the haystack sources) and `teachers:` left to fill in and
    `output.dir` set to out/<recipe>; every other line and comment is kept as the recipe has it."""
    out: list[str] = [f"# Made by `vdata new --recipe {recipe.name}`: fill in the lines marked FILL IN, then",
                      "# `vdata validate` this file and `vdata build` it.", "#"]
    for key, lines in _blocks(recipe.text):
        if key == "input" and recipe.kind == "build":
            lines = _input_block(recipe) + _trailing_blank(lines)
        elif key == "teachers" and recipe.kind == "build" and not keep_teachers and recipe.teachers():
            lines = _teachers_block(recipe) + _trailing_blank(lines)
        elif key == "output":
            lines = [re.sub(r"(\bdir:\s*)[^,}\n]+", rf"\g<1>out/{recipe.name}", ln, count=1) for ln in lines]
        elif key == "haystack":
            lines = [re.sub(r"^(\s*sources:\s*).*$",
                            r'\g<1>{glob: "${HAYSTACK_VIDEOS}"}   # FILL IN: your haystack videos (a glob)', ln)
                     if re.match(r"^\s*sources:", ln) else ln for ln in lines]
            lines.insert(1, "  # FILL IN: the needle paths below are relative to this file: point them at your needles")
        out += lines
    return "\n".join(out).rstrip("\n") + "\n"


def _trailing_blank(lines: list[str]) -> list[str]:
    """The blank/comment lines after a block's YAML (they belong to the next block's introduction)."""
    tail: list[str] = []
    for line in reversed(lines):
        if line.strip() == "" or (line.startswith("#")):
            tail.insert(0, line)
        else:
            break
    return tail


def write_new_config(recipe_name: str, dest: str | Path, keep_teachers: bool = False,
                     overwrite: bool = False) -> Path:
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise RecipeError(f"{dest} exists (use --force to overwrite it)")
    recipe = load_recipe(recipe_name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(new_config_text(recipe, keep_teachers=keep_teachers))
    return dest


def summary_row(recipe: Recipe) -> dict[str, Any]:
    """What `vdata recipes` prints for one recipe."""
    teachers = recipe.teachers()
    return {
        "name": recipe.name,
        "paper": recipe.header.get("Paper", ""),
        "teachers": ", ".join(f"{t} ({', '.join(s)})" for t, s in teachers.items()) or "none",
        "annotations": ", ".join(f"{k}" + ("*" if v == "required" else "") for k, v in recipe.annotations().items()) or "-",
        "writes": "; ".join(recipe.writes()),
        "missing": recipe.missing(),
    }
