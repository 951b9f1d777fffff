"""Generate-stage config mistakes are config errors from `vdata validate` (exit 2, the key path, what is
allowed), before anything runs: a misspelt question type, a prompt version that is not shipped, a
`prompts:` entry naming a missing file or an unknown template, a task naming an undefined teacher."""
import pytest
import yaml
from click.testing import CliRunner

from vdata.cli import main
from vdata.schemas.config import ConfigError, load_config
from vdata.stages.generate.stage import GenerateConfig, GenerateStage

# validate never calls a teacher: the port is one nothing listens on
TEACHERS = {"w": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "x"}}


def write_config(folder, generate: dict, teachers=None):
    """A five-stage config with `generate` at stages[4], as in the outside check's repros."""
    (folder / "vids").mkdir(exist_ok=True)
    data = {"name": "t", "input": [{"path": "vids", "allow_empty": True}], "output": {"dir": "out"},
            "stages": [{"probe": {}}, {"shots": {}}, {"frames": {"mode": "uniform", "num_frames": 2}},
                       {"caption": {"teacher": "w", "max_tokens": 32}}, {"generate": {"teacher": "w", **generate}}],
            "teachers": teachers or TEACHERS}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(command: str, path) -> tuple[int, str]:
    res = CliRunner().invoke(main, [command, str(path)])
    return res.exit_code, res.output


OPEN_QA_SPEECH = {"tasks": {"open_qa": {"per_clip": 1, "question_types": {"speech": 1}}}}


@pytest.mark.parametrize("command", ["validate", "plan", "build"])
def test_misspelt_question_type_is_named_before_anything_runs(tmp_path, command):
    path = write_config(tmp_path, {"tasks": {"open_qa": {"per_clip": 1, "question_types": {"speach": 1}}}})
    code, out = run(command, path)
    assert code == 2, out
    assert "stages[4].generate.tasks.open_qa.question_types.speach: unknown question type" in out
    assert "did you mean 'speech'?" in out and "counting" in out and "guidance" in out
    assert not (tmp_path / "out").exists()   # the build stopped before writing anything


def test_prompt_version_that_is_not_shipped(tmp_path):
    code, out = run("validate", write_config(tmp_path, {**OPEN_QA_SPEECH, "prompt_version": 99}))
    assert code == 2, out
    assert "stages[4].generate.prompt_version: no such prompt version" in out and "versions 1 to 3" in out


def test_prompt_file_that_does_not_exist(tmp_path):
    code, out = run("validate", write_config(tmp_path, {**OPEN_QA_SPEECH, "prompts": {"open_qa": "/nonexistent/prompt.txt"}}))
    assert code == 2, out
    assert "stages[4].generate.prompts.open_qa: no such file /nonexistent/prompt.txt" in out


def test_unknown_prompt_name(tmp_path):
    (tmp_path / "x.txt").write_text("Ask about $clues\n")
    code, out = run("validate", write_config(tmp_path, {**OPEN_QA_SPEECH, "prompts": {"opn_qa": "x.txt"}}))
    assert code == 2, out
    assert "stages[4].generate.prompts.opn_qa: unknown template; did you mean 'open_qa'?" in out
    assert "allowed: open_qa, question_for_answer, mcq" in out and "task_questions" in out


def test_every_problem_of_the_stage_in_one_round(tmp_path):
    code, out = run("validate", write_config(tmp_path, {
        "tasks": {"open_qa": {"question_types": {"speach": 1}}, "mcq": {"question_types": {"colour": 1}}},
        "prompts": {"opn_qa": "x.txt", "mcq": "missing.txt"}}))
    assert code == 2, out
    # the field errors come first; the question types are checked once the fields are valid
    assert "stages[4].generate.prompts.opn_qa: unknown template" in out
    assert f"stages[4].generate.prompts.mcq: no such file {tmp_path / 'missing.txt'}" in out
    fixed = write_config(tmp_path, {"tasks": {"open_qa": {"question_types": {"speach": 1}},
                                              "mcq": {"question_types": {"colour": 1}}}})
    code, out = run("validate", fixed)
    assert "stages[4].generate.tasks.open_qa.question_types.speach" in out
    assert "stages[4].generate.tasks.mcq.question_types.colour" in out


def test_prompt_files_are_taken_from_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "types.txt").write_text("description: what is shown\ntrivia: a fact about what is shown\n")
    path = write_config(folder, {"tasks": {"open_qa": {"question_types": {"trivia": 1, "description": 1}}},
                                 "prompts": {"question_types": "types.txt"}})
    monkeypatch.chdir(tmp_path)   # not the config's folder
    cfg = load_config(path)
    generate = dict(cfg.stage_specs)["generate"]
    assert generate.prompts == {"question_types": str(folder / "types.txt")}
    # a type your list explains is accepted; a shipped type your list leaves out is not
    path = write_config(folder, {"tasks": {"open_qa": {"question_types": {"trivia": 1, "counting": 1}}},
                                 "prompts": {"question_types": "types.txt"}})
    with pytest.raises(ConfigError, match=r"question_types\.counting: unknown question type \(in your question_types "
                                          r"file: description, trivia\)"):
        load_config(path)


def test_a_type_with_its_own_guidance_needs_no_list_entry():
    cfg = GenerateConfig(teacher="w", tasks={"open_qa": {"question_types": {
        "trivia": {"weight": 1, "guidance": "a fact about what is shown"}}}})
    assert cfg.tasks.open_qa.question_types["trivia"].guidance == "a fact about what is shown"


@pytest.mark.parametrize("pinned, open_qa, cot", [(None, "v3", "v2"), (1, "v1", "v1"), (2, "v2", "v2"),
                                                   (3, "v3", "v2")])
def test_prompt_version_pins_each_template_at_its_newest_up_to_the_pin(pinned, open_qa, cot):
    stage = GenerateStage(GenerateConfig(teacher="w", tasks=["open_qa"], prompt_version=pinned))
    stage.load_prompts()
    assert stage.prompts["open_qa"].id == f"generate/open_qa@{open_qa}"
    assert stage.prompts["cot"].id == f"generate/cot@{cot}"
    assert stage.prompts["question_types"].id == "generate/question_types@v1"   # only v1 is shipped


def test_setup_still_refuses_a_config_changed_without_validation():
    cfg = GenerateConfig(teacher="w", tasks=["open_qa"])
    tasks = cfg.tasks.model_copy(update={"open_qa": cfg.tasks.open_qa.model_copy(
        update={"question_types": {"speach": cfg.tasks.open_qa.question_types["speech"]}})})
    stage = GenerateStage(cfg.model_copy(update={"tasks": tasks}))
    with pytest.raises(ConfigError, match=r"stages\.generate\.tasks\.open_qa\.question_types\.speach: unknown"):
        stage.load_prompts()


def test_teachers_a_task_names_are_checked_by_validate(tmp_path):
    path = write_config(tmp_path, {"tasks": {"preference_pairs": {"teachers": ["w", "nope"], "judge": "judgy"}}})
    code, out = run("validate", path)
    assert code == 2, out
    assert "stages[4].generate.tasks.preference_pairs.teachers[1]: unknown teacher 'nope'; defined: w" in out
    assert "stages[4].generate.tasks.preference_pairs.judge: unknown teacher 'judgy'; defined: w" in out
    code, out = run("validate", write_config(tmp_path, {"tasks": {"preference_pairs": {"teachers": ["w"]}}}))
    assert code == 0, out
