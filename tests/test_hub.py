"""`vdata push` / `vdata card`: the real huggingface_hub upload code against a local Hub stand-in.

`tests/fakehub.py` answers the Hub API calls `create_repo` + `upload_folder` make (create, validate-yaml,
preupload, commit, revision). Everything else is real: the staging exports, the card, HfApi's
multi-commit upload pipeline, `datasets.load_dataset` on the pushed file tree.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import zipfile
from pathlib import Path

import PIL.Image
import pyarrow.parquet as pq
import pytest
import yaml
from fakehub import FakeHub

from vdata.exporters import open_build
from vdata.exporters.demo_build import DEMO_CONFIG, write_demo_build
from vdata.hub import STAGING_MARK, HubError, UploadFailed, push, redact_config, write_card
from vdata.hub.published import RECORD
from vdata.schemas import records as R

ROOT = Path(__file__).resolve().parents[1]

LEAKY_CONFIG = DEMO_CONFIG + """\
  judge:
    backend: openai
    base_url: https://api.example.com/v1
    model: gpt-judge
    api_key: sk-live-THISisAsecretKEY123456
    headers: {Authorization: Bearer-abcdef0123456789}
"""


def _media(tmp_path_factory) -> str:
    d = tmp_path_factory.getbasetemp() / "vdata_demo_media"   # shared with test_exporters
    d.mkdir(exist_ok=True)
    return str(d)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> str:
    return write_demo_build(str(tmp_path_factory.mktemp("hubbuild")), media_dir=_media(tmp_path_factory),
                            config_text=LEAKY_CONFIG)


@pytest.fixture
def token() -> str:
    return "hf_" + secrets.token_hex(16)


@pytest.fixture
def online(monkeypatch):
    """conftest sets HF_HUB_OFFLINE=1 for the whole suite; pushing to the local stand-in needs it off."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


# --- the card --------------------------------------------------------------------------------------

def test_card_describes_recipe_filters_teachers_and_loading(build_dir, tmp_path):
    path = write_card(build_dir, str(tmp_path / "README.md"), repo_id="me/patterns")
    text = Path(path).read_text()
    meta = _front_matter(text)
    assert meta["license"] == "cc-by-4.0"                       # from the config's `license`
    # the build's own files (vdata.exporters.hf_local): `load_dataset(build_dir)` keeps working
    assert [c["config_name"] for c in meta["configs"]] == ["samples", R.CLIPS_TABLE, "rejects"]
    assert "Frames are stored once per clip, in the `clips` config" in text
    manifest = json.load(open(os.path.join(build_dir, "manifest.json")))
    for key, n in manifest["rejects_by_reason"].items():          # filters with drop counts
        stage, reason = key.split(":")
        assert f"| {stage} | {reason} | {n} |" in text
    assert "brightness_min=20" in text and "blind_correct_max=0.5" in text   # thresholds from stage configs
    assert "| mcq | tiny | smollm2-135m | qa-v2 | 5 |" in text              # teacher, model, prompt version
    assert "caption-v1" in text
    assert "## Limitations" in text and "no human checked them" in text    # no demo teacher in this build
    # no verify_claims in this build: the card says the answers were not checked (outside check h25 F3)
    assert "no stage checked their answers" in text
    for subset, n in (("captions", 9), ("open_qa", 5), ("mcq", 10), ("grounding", 10)):   # size table
        assert f"| {subset} | {n} |" in text
    assert "**mcq**" in text and "ASSISTANT: " in text          # a sample per subset
    assert 'load_dataset("me/patterns", "samples"' in text
    assert "llamafactory-cli train" in text and "lmms-eval --model" in text
    # secrets: literal keys are gone, ${VAR} references are kept for readers
    assert "sk-live-THISisAsecretKEY123456" not in text and "abcdef0123456789" not in text
    assert "api_key: ${OPENAI_API_KEY}" in text


def test_redaction_rules():
    # secret by type (SecretStr teacher fields, given values, credential shapes), never by key name
    text = ("api_key: sk-abcdefghijklmnop\ntoken: '${HF_TOKEN}'\nmodel: gpt\nurl: x?key=hf_abcdefghijklmnopqrs\n"
            "teachers: {a: {backend: openai, model: m, api_key: plainsecret99, sampling: {max_tokens: 64}}}\n"
            "password: hunter2hunter2\n")
    out = redact_config(text, secrets=["hunter2hunter2"])
    assert "sk-abcdefghijklmnop" not in out and "hf_abcdefghijklmnopqrs" not in out
    assert "plainsecret99" not in out and "hunter2hunter2" not in out
    assert "token: '${HF_TOKEN}'" in out and "model: gpt" in out
    assert yaml.safe_load(out)["teachers"]["a"]["sampling"]["max_tokens"] == 64


# --- push end to end through the CLI ---------------------------------------------------------------

PUSH_CLI = "import sys; from vdata.cli import main; main(['push', *sys.argv[1:]], prog_name='vdata')"


def test_push_cli_uploads_loadable_dataset_and_never_leaks_the_token(build_dir, token, tmp_path):
    import datasets

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env.update(HF_TOKEN=token, HF_HOME=str(tmp_path / "hf_home"), MY_SERVICE_API_KEY="svc-" + secrets.token_hex(8))
    with FakeHub(token) as hub:
        proc = subprocess.run([sys.executable, "-c", PUSH_CLI, build_dir, "--repo", "me/patterns", "--private",
                               "--endpoint", hub.endpoint, "--staging", str(tmp_path / "stage")],
                              capture_output=True, text=True, timeout=600, env=env, cwd=str(ROOT / "tests"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert hub.unexpected == [] and hub.unauthorized == 0
        repo = hub.repos["me/patterns"]
        assert repo.private
        files = repo.files
        # the token went over the wire (Authorization header) but nowhere else
        for blob in [proc.stdout, proc.stderr]:
            assert token not in blob and env["MY_SERVICE_API_KEY"] not in blob
        for path, data in files.items():
            assert token.encode() not in data and b"sk-live-THISisAsecretKEY123456" not in data, path
        assert "pushed" in proc.stdout and "me/patterns" in proc.stdout
        # layout: canonical Parquet per subset, videos in small folders, card, LLaMA-Factory + lmms-eval files
        card = files["README.md"].decode()
        meta = _front_matter(card)
        configs = {c["config_name"]: c["data_files"][0]["path"] for c in meta["configs"]}
        assert set(configs) == {"captions", "open_qa", "mcq", "grounding", R.CLIPS_TABLE}   # clips: the frames
        videos = [p for p in files if p.startswith("videos/")]
        assert videos and all(len(Path(p).parent.name) == 2 for p in videos)    # videos/<id[:2]>/… buckets
        assert "dataset_info.json" in files and "utils.py" in files and "lmms_eval/mcq.parquet" in files
        lmms_yaml = files["demo-patterns_mcq.yaml"].decode()
        assert '"me/patterns"' in lmms_yaml and "video: True" in lmms_yaml and "create_link: True" in lmms_yaml
        assert hub.validated and hub.validated[-1] == card
        snap = tmp_path / "snapshot"
        hub.write_snapshot("me/patterns", snap)
    # what a user downloads loads with `datasets`, config by config, and every video path resolves
    build_rows = pq.read_table(sorted(Path(build_dir, "samples").glob("*.parquet"))).num_rows
    total = 0
    clip_ids = set()
    for name in configs:
        ds = datasets.load_dataset(str(snap), name, split="train", cache_dir=str(tmp_path / "hf_cache"))
        if name == R.CLIPS_TABLE:   # each sample's clip once, its frames as images
            assert len(set(ds[R.CLIP_ID])) == len(ds) and isinstance(ds[0][R.FRAMES][0][R.FRAME_JPEG], PIL.Image.Image)
            clips = set(ds[R.CLIP_ID])
            continue
        total += len(ds)
        clip_ids |= {c for c in ds[R.CLIP_ID] if c}
        assert all((snap / v).is_file() for v in ds["video"])
    assert total == build_rows and clip_ids == clips
    info = json.loads((snap / "dataset_info.json").read_text())
    for entry in info.values():
        for rec in json.loads((snap / entry["file_name"]).read_text()):
            assert all((snap / v).is_file() for v in rec["videos"])


def test_push_without_token_says_how_to_log_in(build_dir, tmp_path, monkeypatch, online):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_home"))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "empty_home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "empty_home" / "stored_tokens"))
    with pytest.raises(HubError, match="HF_TOKEN.*hf auth login"):
        push(build_dir, "me/x", endpoint="http://127.0.0.1:9", staging_dir=str(tmp_path / "s"))


def test_push_refuses_bad_repo_id_and_offline_mode(build_dir, token, monkeypatch):
    with pytest.raises(HubError, match="user/name"):
        push(build_dir, "no-slash", token=token)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        push(build_dir, "me/x", token=token)


# --- multi-commit + resume -------------------------------------------------------------------------

def test_interrupted_push_resumes_and_skips_committed_files(build_dir, token, tmp_path, monkeypatch, online):
    import huggingface_hub._upload_pipeline as pipeline

    # small commits so that this small dataset goes up in several of them, as a large one would
    monkeypatch.setattr(pipeline, "COMMIT_SIZE_SCALE", [4] * 10)
    stage = str(tmp_path / "stage")
    with FakeHub(token) as hub:
        hub.fail_commits = {3}                                          # the third commit fails
        with pytest.raises(UploadFailed, match="injected failure.*run the same push again"):
            push(build_dir, "me/resume", endpoint=hub.endpoint, token=token, staging_dir=stage)
        repo = hub.repos["me/resume"]
        first_run = [c["paths"] for c in repo.commits]
        assert len(first_run) == 2 and all(len(p) == 4 for p in first_run)
        done = {p for paths in first_run for p in paths}
        push(build_dir, "me/resume", endpoint=hub.endpoint, token=token, staging_dir=stage)
        second_run = [p for c in repo.commits[2:] for p in c["paths"]]
        assert not done & set(second_run)                                # committed files were skipped
        staged = {str(p.relative_to(stage)) for p in Path(stage).rglob("*") if p.is_file() and p.name != STAGING_MARK}
        assert set(repo.files) == staged
        for rel in staged:                                               # byte-identical
            assert repo.files[rel] == Path(stage, rel).read_bytes()
        n_commits = len(repo.commits)
        push(build_dir, "me/resume", endpoint=hub.endpoint, token=token, staging_dir=stage)
        assert len(repo.commits) == n_commits                            # nothing changed: no empty commit


# --- other layouts ---------------------------------------------------------------------------------

def test_push_lmms_eval_ships_videos_as_zip_shards(build_dir, token, tmp_path, online):
    with FakeHub(token) as hub:
        push(build_dir, "me/bench", format="lmms-eval", endpoint=hub.endpoint, token=token,
             staging_dir=str(tmp_path / "stage"))
        files = hub.repos["me/bench"].files
        snap = tmp_path / "snap"
        hub.write_snapshot("me/bench", snap)
    assert not any(p.startswith("videos/") for p in files)
    zips = sorted(p for p in files if p.endswith(".zip"))
    assert zips == ["videos_000.zip"]
    with zipfile.ZipFile(snap / zips[0]) as z:
        members = set(z.namelist())
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    cfg = yaml.safe_load(files["demo-patterns_mcq.yaml"].decode().replace("!function", ""))
    assert cfg["dataset_path"] == "me/bench" and cfg["dataset_kwargs"]["video"] is True
    for kind in ("mcq", "open", "grounding"):
        docs = pq.read_table(snap / "data" / f"{kind}.parquet").to_pylist()
        assert docs and all(d["video"] in members for d in docs)         # extracting the shards gives the paths
    meta = _front_matter(files["README.md"].decode())
    assert {c["config_name"]: c["data_files"][0]["split"] for c in meta["configs"]} == {
        "mcq": "test", "open": "test", "grounding": "test"}


@pytest.mark.parametrize("fmt,expected", [("sharegpt", {"captions", "open_qa", "mcq", "grounding"}),
                                          ("llava", {"captions", "open_ended", "multiple_choice"})])
def test_push_json_layouts_load_with_datasets(build_dir, token, tmp_path, online, fmt, expected):
    import datasets

    with FakeHub(token) as hub:
        push(build_dir, f"me/{fmt}", format=fmt, endpoint=hub.endpoint, token=token,
             staging_dir=str(tmp_path / "stage"))
        snap = tmp_path / "snap"
        hub.write_snapshot(f"me/{fmt}", snap)
    meta = _front_matter((snap / "README.md").read_text())
    assert {c["config_name"] for c in meta["configs"]} == expected
    n = sum(len(datasets.load_dataset(str(snap), c, split="train", cache_dir=str(tmp_path / "c"))) for c in expected)
    assert n == open_build(build_dir).read_table([R.SAMPLE_ID]).num_rows
    assert not list(snap.glob("*.yaml")) or fmt != "llava"   # no machine-local LLaVA data YAML pushed


def test_card_cli_writes_readme(build_dir, tmp_path):
    from click.testing import CliRunner

    from vdata.cli_hub import card_cmd

    out = tmp_path / "card.md"
    res = CliRunner().invoke(card_cmd, [build_dir, "--output", str(out), "--repo", "me/x"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(out)
    text = out.read_text()
    assert _front_matter(text)["license"] == "cc-by-4.0" and "sk-live-" not in text


def test_push_haystack_benchmark_items(build_dir, tmp_path_factory, token, tmp_path, online):
    """A `vdata haystack` output folder (items.parquet with its own schema) goes up as the `haystack` config."""
    import shutil

    import datasets
    import pyarrow as pa

    from vdata.schemas import haystack as H

    bench = tmp_path / "bench"
    (bench / "videos").mkdir(parents=True)
    src = next(Path(_media(tmp_path_factory)).glob("*.mp4"))
    shutil.copy(src, bench / "videos" / "item0.mp4")
    row = {f.name: None for f in H.ITEM_SCHEMA}
    row.update({"item_id": "item0", "question_id": "item0", "task": "needle_qa", "video_path": "videos/item0.mp4",
                "question": "Which picture appeared?", "options": ["a cat", "a dog"], "answer_index": 1,
                "answer": "a dog", "haystack_length_s": 6.0})
    pq.write_table(pa.Table.from_pylist([row, {**row, "question_id": "item0_r1", "video_path": "videos/gone.mp4"}],
                                        schema=H.ITEM_SCHEMA), bench / "items.parquet")
    (bench / "manifest.json").write_text(json.dumps({"name": "needles", "config": {"name": "needles", "license": "mit"}}))
    (bench / "run_report.json").write_text("{}")   # a finished haystack build writes it last
    with FakeHub(token) as hub:
        push(str(bench), "me/needles", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "stage"))
        snap = tmp_path / "snap"
        hub.write_snapshot("me/needles", snap)
    meta = _front_matter((snap / "README.md").read_text())
    # the items, and the lmms-eval task written for this repo as the default config (h18 F17)
    assert [c["config_name"] for c in meta["configs"]] == ["lmms_eval", "haystack"] and meta["license"] == "mit"
    ds = datasets.load_dataset(str(snap), "haystack", split="test", cache_dir=str(tmp_path / "c"))   # a benchmark
    assert ds["question_id"] == ["item0"]                                  # the row whose video is missing is dropped
    assert (snap / ds[0]["video"]).read_bytes() == src.read_bytes()
    from vdata.exporters import ExportError, export

    with pytest.raises(ExportError, match="haystack"):   # the training formats do not apply to a benchmark
        export(str(bench), str(tmp_path / "x"), "llava")


def test_card_limitations_name_demo_teachers_and_unverified_samples(build_dir, tmp_path):
    """A build whose captions came from the demo VLM says so, and says which samples were never checked."""
    from vdata.exporters import open_build
    from vdata.hub import dataset_card, gather_facts

    facts = gather_facts(open_build(build_dir))
    facts.teachers = [dict(t, model="vdata-tiny-demo-vlm") if t["role"] == "caption" else t for t in facts.teachers]
    facts.manifest = dict(facts.manifest, verification={"verified": 7, "unverified": 3})
    text = dataset_card(open_build(build_dir), facts=facts)
    limits = text[text.index("## Limitations"):text.index("## Loading")]
    assert "`vdata-tiny-demo-vlm`" in limits and "**noise**" in limits and "Do not train on these rows" in limits
    assert "unverified 3, verified 7" in limits and "never checked against evidence" in limits


# --- curation builds (no text) and visibility -------------------------------------------------------

@pytest.fixture(scope="module")
def curation_builds(tmp_path_factory) -> dict:
    """Real builds of two example videos that stop before any text: a videos-level build (probe) and a
    clips-level one (probe, shots)."""
    import shutil

    import vdata
    from vdata.schemas.config import parse_config

    videos = tmp_path_factory.mktemp("curation_videos")
    for name in ("black.mp4", "blurred.mp4"):
        shutil.copy(ROOT / "examples" / "videos" / name, videos / name)
    out = {}
    for level, stages in (("videos", [{"probe": {}}]), ("clips", [{"probe": {}}, {"shots": {"min_len_s": 0.2}}])):
        data = {"name": f"curation-{level}", "input": [{"path": str(videos)}], "ray": {"executor": "local"},
                "output": {"dir": str(tmp_path_factory.mktemp(f"curation_{level}") / "out")}, "stages": stages}
        result = vdata.build(parse_config(data, raw_text=yaml.safe_dump(data)), progress=False)
        assert result.rows > 0 and open_build(result.output_dir).level == level
        out[level] = result.output_dir
    return out


@pytest.mark.parametrize("level", ["videos", "clips"])
def test_push_of_a_curation_build_uploads_its_parquet_as_it_is(curation_builds, level, token, tmp_path, online):
    import datasets

    build = curation_builds[level]
    rows = open_build(build).read_table([R.VIDEO_ID]).num_rows
    with FakeHub(token) as hub:
        res = push(build, f"me/{level}", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "stage"))
        assert hub.unexpected == []
        snap = tmp_path / "snap"
        hub.write_snapshot(f"me/{level}", snap)
    # the Parquet layout and its card, as `vdata export --format parquet` writes it; no side file without text
    from vdata.exporters import export

    exported = [c["config_name"] for c in export(build, str(tmp_path / "exp"), "parquet", media="none").configs]
    assert [c["config_name"] for c in res.configs] == exported and exported
    assert not (snap / "dataset_info.json").exists() and not list(snap.glob("*.yaml"))
    meta = _front_matter((snap / "README.md").read_text())
    assert [c["config_name"] for c in meta["configs"]] == exported
    ds = datasets.load_dataset(str(snap), exported[0], cache_dir=str(tmp_path / "hf_cache"))
    assert sum(len(ds[s]) for s in ds) == rows
    # a layout of instruction records refuses, for the reason it has: the rows hold no text
    from vdata.exporters import ExportError

    with pytest.raises(ExportError, match=rf"its {rows} {level} rows carry no instruction text.*--format parquet"):
        push(build, f"me/{level}-llava", format="llava", endpoint="http://127.0.0.1:9", token=token,
             staging_dir=str(tmp_path / "llava"))


def test_push_private_makes_an_existing_public_repo_private(build_dir, token, tmp_path, online):
    said = []
    with FakeHub(token) as hub:
        push(build_dir, "me/vis", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"), log=said.append)
        assert hub.repos["me/vis"].private is False and said[-1].endswith("(public)")
        push(build_dir, "me/vis", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"), private=True,
             log=said.append)
        assert hub.repos["me/vis"].private is True and said[-1].endswith("(private)")
        # a push without --private never makes it public again, and says what it is
        push(build_dir, "me/vis", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"), log=said.append)
        assert hub.repos["me/vis"].private is True and said[-1].endswith("(private)")
        assert hub.unexpected == []


def test_a_repush_of_another_build_leaves_no_stale_file_in_the_repo_or_the_staging(build_dir, curation_builds, token,
                                                                                     tmp_path, online):
    """The second push into one repo and one staging folder: the repo holds exactly what this push staged, plus the
    files that are not vdata's (a LICENSE the owner added). Before, the first build's subsets, LLaMA-Factory files and
    lmms-eval folder stayed both in the staging folder (uploaded again) and on the Hub (`load_dataset` read them)."""
    import datasets

    stage = tmp_path / "stage"
    with FakeHub(token) as hub:
        push(build_dir, "me/again", endpoint=hub.endpoint, token=token, staging_dir=str(stage))
        first = set(hub.repos["me/again"].files)
        assert "dataset_info.json" in first and any(p.startswith("lmms_eval/") for p in first)
        hub.repos["me/again"].files["LICENSE"] = b"the owner's own file\n"
        push(curation_builds["clips"], "me/again", endpoint=hub.endpoint, token=token, staging_dir=str(stage))
        assert hub.unexpected == []
        staged = {str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file() and p.name != STAGING_MARK}
        assert set(hub.repos["me/again"].files) == staged | {"LICENSE"}
        assert not any(p.startswith("lmms_eval/") or p.endswith(".json") for p in staged - {RECORD})   # no side file
        snap = tmp_path / "snap"
        hub.write_snapshot("me/again", snap)
    rows = open_build(curation_builds["clips"]).read_table([R.VIDEO_ID]).num_rows
    meta = _front_matter((snap / "README.md").read_text())
    ds = datasets.load_dataset(str(snap), meta["configs"][0]["config_name"], cache_dir=str(tmp_path / "hf_cache"))
    assert sum(len(ds[s]) for s in ds) == rows
    # a folder vdata never staged into is not emptied, and nothing is uploaded
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    with pytest.raises(HubError, match="not empty and was not staged by vdata push"):
        push(build_dir, "me/again", endpoint="http://127.0.0.1:9", token=token, staging_dir=str(mine))
    assert (mine / "thesis.tex").read_text() == "keep me"
