"""`vdata push` never deletes or overwrites what it did not write, says what it did, and exits by cause.

Outside check h26: F14 (a re-push deleted the owner's own `*.json` / `*.yaml` / `*.parquet` anywhere in the
repo; a first push into someone's existing dataset deleted its data files), F6 (a build whose held-out
share came out empty had its training rows published as the lmms-eval `test` split), L1 (the card showed
the builder's absolute paths), L2 ("pushed N file(s)" counted staged files), L3 (a failed upload exited 2,
the code of a command to fix). Real huggingface_hub against the local stand-in, tests/fakehub.py.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from fakehub import FakeHub
from test_hub import LEAKY_CONFIG, _front_matter, _media, build_dir, online, token  # noqa: F401  (fixtures)

from vdata.exporters.demo_build import DEMO_CONFIG, write_demo_build
from vdata.hub import STAGING_MARK, HubError, push
from vdata.hub.published import RECORD

USER_FILES = {"LICENSE": b"MIT\n", "eval/results.json": b'{"acc": 0.5}\n', "scripts/train.yaml": b"lr: 1e-5\n",
              "predictions.jsonl": b'{"id": 1}\n', "my_notes.md": b"notes\n", "extra/more_data.parquet": b"PAR1"}


def _upload(hub, repo: str, token: str, files: dict) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.endpoint, token=token)
    for path, data in files.items():
        api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=repo, repo_type="dataset")


def _staged(stage: Path) -> set[str]:
    return {str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file() and p.name != STAGING_MARK}


def test_a_repush_deletes_only_files_an_earlier_push_wrote(build_dir, token, tmp_path, online):  # noqa: F811
    """The owner's files stay wherever they are and whatever they are named; what the first push wrote and
    the second does not (its Parquet configs, lmms-eval folder) goes, and push says which."""
    said = []
    stage = tmp_path / "stage"
    with FakeHub(token) as hub:
        push(build_dir, "me/u", endpoint=hub.endpoint, token=token, staging_dir=str(stage))
        first = set(hub.repos["me/u"].files)
        assert "utils.py" in first and any(p.startswith("data/") for p in first)
        _upload(hub, "me/u", token, USER_FILES)
        res = push(build_dir, "me/u", format="sharegpt", endpoint=hub.endpoint, token=token, staging_dir=str(stage),
                   log=said.append)
        files = hub.repos["me/u"].files
        assert hub.unexpected == []
    for path, data in USER_FILES.items():
        assert files.get(path) == data, path
    assert RECORD in first and set(files) == _staged(stage) | set(USER_FILES)          # nothing stale of the first push
    gone = first - _staged(stage)
    assert gone and "utils.py" in gone and set(res.deleted) == gone
    (line,) = [m for m in said if m.startswith("deleting ")]
    assert f"deleting {len(gone)} file(s) an earlier vdata push wrote" in line and sorted(gone)[0] in line
    assert any(m.startswith(f"keeping {len(USER_FILES)} file(s) vdata did not write") for m in said)


def test_a_record_it_cannot_read_deletes_nothing(build_dir, token, tmp_path, online):  # noqa: F811
    """A file of the owner's inside vdata's own folders, then a push that writes other files: the record is
    not the repo's listing any more and this stand-in serves no downloads, so nothing is deleted, and push
    says which files stay."""
    said = []
    with FakeHub(token) as hub:
        push(build_dir, "me/k", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"))
        _upload(hub, "me/k", token, {"data/extra/mine.parquet": b"PAR1 mine"})
        before = dict(hub.repos["me/k"].files)
        res = push(build_dir, "me/k", format="sharegpt", endpoint=hub.endpoint, token=token,
                   staging_dir=str(tmp_path / "s"), log=said.append)
        files = hub.repos["me/k"].files
    assert set(before) <= set(files) and files["data/extra/mine.parquet"] == b"PAR1 mine" and res.deleted == []
    assert any(m.startswith(f"could not read me/k's {RECORD}") and "no file is deleted" in m for m in said)


def test_a_first_push_into_a_repo_of_others_is_refused_unless_allowed(build_dir, token, tmp_path, online):  # noqa: F811
    from huggingface_hub import HfApi

    theirs = {"train.jsonl": b"1\n", "test.jsonl": b"2\n", "data/train-00000-of-00001.parquet": b"PAR1",
              "annotations/meta.json": b"{}", "README.md": b"# their dataset\n"}
    with FakeHub(token) as hub:
        HfApi(endpoint=hub.endpoint, token=token).create_repo("me/existing", repo_type="dataset")
        _upload(hub, "me/existing", token, theirs)
        commits = len(hub.repos["me/existing"].commits)
        with pytest.raises(HubError, match=r"holds 5 file\(s\) that vdata push did not write .*nothing was uploaded "
                                           r"or deleted.*--allow-foreign-files"):
            push(build_dir, "me/existing", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"))
        assert hub.repos["me/existing"].files == theirs and len(hub.repos["me/existing"].commits) == commits
        said = []
        push(build_dir, "me/existing", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"),
             allow_foreign_files=True, log=said.append)
        files = hub.repos["me/existing"].files
        assert all(files[p] == data for p, data in theirs.items() if p != "README.md")   # none deleted
        assert files["README.md"] != theirs["README.md"]                                  # the card replaced it
        assert any(m.startswith("replacing 1 file(s) vdata did not write (--allow-foreign-files): README.md")
                   for m in said)
        # from now on the repo is vdata's: a re-push keeps their files without the flag, and deletes none
        push(build_dir, "me/existing", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"))
        assert all(hub.repos["me/existing"].files[p] == data for p, data in theirs.items() if p != "README.md")
        assert hub.unexpected == []


def _cli(args: list[str]):
    from click.testing import CliRunner

    from vdata.cli import main

    return CliRunner().invoke(main, ["push", *args])


def test_push_exit_status_and_what_it_says_it_uploaded(build_dir, token, tmp_path, monkeypatch, online):  # noqa: F811
    monkeypatch.setenv("HF_TOKEN", token)
    with FakeHub(token) as hub:
        args = [build_dir, "--repo", "me/cli", "--format", "lmms-eval", "--endpoint", hub.endpoint,
                "--staging", str(tmp_path / "stage")]
        hub.fail_commits = {1}
        res = _cli(args)
        assert res.exit_code == 4, res.output
        assert "upload to me/cli failed" in res.output and "run the same push again" in res.output
        res = _cli(args)
        assert res.exit_code == 0, res.output
        files = hub.repos["me/cli"].files
        # the loose videos went up inside videos_000.zip only: the count is of the files the repo got
        assert not any(p.startswith("videos/") for p in files) and len(list((tmp_path / "stage").rglob("*.mp4")))
        assert f"{len(files)} file(s) uploaded, 0 deleted" in res.output
        commits = len(hub.repos["me/cli"].commits)
        res = _cli(args)
        assert res.exit_code == 0 and "nothing changed" in res.output and "uploaded" not in res.output, res.output
        assert len(hub.repos["me/cli"].commits) == commits
        assert _cli([build_dir, "--repo", "no-slash", "--endpoint", hub.endpoint]).exit_code == 2
    with FakeHub(token) as hub:   # a repo of others: refused, exit 2 (fix the command), the flag named
        from huggingface_hub import HfApi

        HfApi(endpoint=hub.endpoint, token=token).create_repo("me/theirs", repo_type="dataset")
        _upload(hub, "me/theirs", token, {"train.jsonl": b"1\n"})
        res = _cli([build_dir, "--repo", "me/theirs", "--endpoint", hub.endpoint, "--staging", str(tmp_path / "s2")])
        assert res.exit_code == 2 and "--allow-foreign-files" in res.output, res.output
        res = _cli([build_dir, "--repo", "me/theirs", "--endpoint", hub.endpoint, "--staging", str(tmp_path / "s2"),
                    "--allow-foreign-files"])
        assert res.exit_code == 0 and hub.repos["me/theirs"].files["train.jsonl"] == b"1\n", res.output
    assert "Exit status" in _cli(["--help"]).output and "4 the upload failed" in _cli(["--help"]).output


@pytest.fixture(scope="module")
def no_test_build(tmp_path_factory) -> str:
    """A build that split its videos (parts written per split, `output.splits` test 0.1 by default) and got
    no test video: every row is train."""
    out = write_demo_build(str(tmp_path_factory.mktemp("notest")), media_dir=_media(tmp_path_factory))
    for table in ("samples", "clips"):
        os.rename(os.path.join(out, table, "part-demo-00000.parquet"), os.path.join(out, table, "part-demo-00000-train.parquet"))
    return out


def test_a_build_whose_test_share_came_out_empty_publishes_no_benchmark(no_test_build, token, tmp_path, online):
    from vdata.exporters import ExportError, open_build

    rows = Counter(open_build(no_test_build).row_splits())
    assert set(rows) == {"train"}
    with FakeHub(token) as hub:
        with pytest.raises(ExportError, match=r"no rows of split test.*training videos.*--split train"):
            push(no_test_build, "me/bench", format="lmms-eval", endpoint=hub.endpoint, token=token,
                 staging_dir=str(tmp_path / "lm"))
        assert "me/bench" not in hub.repos
        said = []
        push(no_test_build, "me/all", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "pq"),
             log=said.append)
        files = set(hub.repos["me/all"].files)
        card = hub.repos["me/all"].files["README.md"].decode()
    assert not any(p.startswith("lmms_eval/") or p.endswith(".yaml") for p in files)   # no task of training rows
    assert "dataset_info.json" in files                                                  # the training files are
    assert any(m.startswith("lmms-eval task not written: the build has no rows of split test") for m in said)
    assert "split: test" not in card
    from vdata.hub.splits import carried_splits, holds_videos_out

    assert holds_videos_out(open_build(no_test_build), rows) and carried_splits(rows, "lmms-eval", held_out=True) == ["test"]
    # a build written before splits (parts named without one) holds nothing out: its benchmark is every row
    assert not holds_videos_out(open_build(_plain(tmp_path)), Counter(train=1))


def _plain(tmp_path) -> str:
    return write_demo_build(str(tmp_path / "plain"), media_dir=str(tmp_path / "media"))


def test_the_pushed_card_names_no_path_of_the_builders_machine(tmp_path_factory, token, tmp_path, online):
    config = LEAKY_CONFIG.replace("  - path: videos/\n", '  - path: /home/alice/clientX/raw\n'
                                  '  - glob: "/home/alice/clientX/more/**/*.mp4"\n').replace(
        "dir: out/demo-patterns", "dir: /home/alice/clientX/out/demo")
    assert config.count("/home/alice") == 3
    build = write_demo_build(str(tmp_path / "b"), media_dir=_media(tmp_path_factory), config_text=config)
    with FakeHub(token) as hub:
        push(build, "me/paths", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "s"))
        card = hub.repos["me/paths"].files["README.md"].decode()
    assert "/home/alice" not in card and "clientX" not in card
    assert "path: <local>/raw" in card and 'glob: "<local>/**/*.mp4"' in card and "dir: <local>/demo" in card
    assert "base_url: http://127.0.0.1:8000/v1" in card or "base_url: https://api.example.com/v1" in card
    _front_matter(card)
    from vdata.hub import write_card   # the local card (`vdata card`) keeps the paths: it stays on this machine

    assert "/home/alice/clientX/raw" in Path(write_card(build, str(tmp_path / "local.md"))).read_text()
