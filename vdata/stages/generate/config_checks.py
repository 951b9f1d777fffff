"""The generate config's checks that read the shipped prompts: template names, override files, the pinned
prompt version, and question types that the `question_types` list must explain.

They run while the config is parsed (the generate config's validators), so `vdata validate`, `vdata plan`
and a build before Ray starts name the key (`stages[4].generate.tasks.open_qa.question_types.speach`);
the stage's setup used to find them inside a Ray actor, after the build had started. Each problem is
raised as a pydantic ValidationError carrying its own location below the validated field, which
parse_config prefixes with the stage's place in `stages:`.
"""
from __future__ import annotations

import difflib
import os
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from vdata.prompts import available, load_prompt
from vdata.schemas.config import config_file

from .common import parse_lines
from .questions import QuestionTask

PROMPT_GROUP = "generate"
QUESTION_TYPES_PROMPT = "question_types"

# (location below the validated field or model, message, the value at fault)
Problem = tuple[tuple, str, Any]


def config_problems(model: str, problems: list[Problem]) -> ValidationError:
    """One ValidationError listing every problem at its own key path."""
    # the message travels as a context value: a `{` in a file name is not a format field
    return ValidationError.from_exception_data(model, [
        InitErrorDetails(type=PydanticCustomError("generate_config", "{message}", {"message": message}),
                         loc=loc, input=value)
        for loc, message, value in problems])


def _suggestion(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def prompt_files(value: dict[str, str], names: tuple[str, ...], info: ValidationInfo) -> dict[str, str]:
    """`prompts:` with every name a template of the stage and every file there, as absolute paths (a
    relative one is taken from the config's folder, as the caption stage's are)."""
    problems: list[Problem] = []
    for name, path in value.items():
        if name not in names:
            problems.append(((name,), f"unknown template{_suggestion(name, names)} (allowed: {', '.join(names)})", path))
        elif not os.path.isfile(config_file(path, info)):
            problems.append(((name,), f"no such file {config_file(path, info)}", path))
    if problems:
        raise config_problems("GenerateConfig", problems)
    return {name: config_file(path, info) for name, path in value.items()}


def shipped_versions() -> list[int]:
    """Every version number some generate template is shipped in."""
    return sorted({v for versions in available(PROMPT_GROUP).values() for v in versions})


def check_prompt_version(value: int | None) -> int | None:
    versions = shipped_versions()
    if value is not None and not versions[0] <= value <= versions[-1]:
        raise config_problems("GenerateConfig", [((), f"no such prompt version; the generate templates are shipped in "
                                                     f"versions {versions[0]} to {versions[-1]} (leave it out for the "
                                                     "latest)", value)])
    return value


def pinned_version(name: str, pinned: int | None) -> int | None:
    """The shipped version of template `name` under `prompt_version: pinned`: the newest one not after it,
    since templates are versioned one by one (`question_types` has only v1 while `open_qa` has v3).
    None: the latest. So `prompt_version: 2` loads open_qa v2 beside question_types v1."""
    if pinned is None:
        return None
    versions = available(PROMPT_GROUP)[name]
    return max((v for v in versions if v <= pinned), default=versions[0])   # a template newer than the pin: its first


def question_type_problems(tasks: BaseModel, enabled: list[str], prompts: dict[str, str],
                           prompt_version: int | None) -> list[Problem]:
    """Question types of the enabled question tasks that neither the `question_types` list (shipped, or
    your file under `prompts:`) nor their own `guidance:` line explains: a request would have no guidance."""
    override = prompts.get(QUESTION_TYPES_PROMPT)
    text = load_prompt(PROMPT_GROUP, QUESTION_TYPES_PROMPT,
                       None if override else pinned_version(QUESTION_TYPES_PROMPT, prompt_version), override=override).text
    known = sorted(parse_lines(text))
    listed = f"in your {QUESTION_TYPES_PROMPT} file" if override else "shipped"
    problems: list[Problem] = []
    for task in enabled:
        tcfg = getattr(tasks, task)
        if not isinstance(tcfg, QuestionTask):
            continue
        for qtype, spec in tcfg.question_types.items():
            if spec.guidance is None and qtype not in known:
                problems.append((("tasks", task, "question_types", qtype),
                                 f"unknown question type{_suggestion(qtype, known)} ({listed}: {', '.join(known)}); "
                                 f"a type of your own needs a guidance line: `{qtype}: {{weight: 1, guidance: what "
                                 "such a question asks about}`", qtype))
    return problems


def teacher_refs(config, families: dict) -> list[tuple[str, str]]:
    """(config key, teacher name) for the stage's teacher and every teacher an enabled task names (candidate
    writers, a judge), so that the plan checks them against `teachers:` before anything starts."""
    refs = [("teacher", config.teacher)] if config.teacher else []
    for task in config.tasks.enabled():
        tcfg = getattr(config.tasks, task)
        for name in families[task].teachers(tcfg):
            refs.append((f"tasks.{task}.{_key_holding(tcfg, name)}", name))
    return list(dict.fromkeys(refs))


def _key_holding(tcfg: BaseModel, name: str) -> str:
    """The task setting that names teacher `name`: `judge`, or `teachers[1]` for an item of a list."""
    for field in type(tcfg).model_fields:
        value = getattr(tcfg, field)
        if value == name:
            return field
        if isinstance(value, list) and name in value:
            return f"{field}[{value.index(name)}]"
    return "teachers"
