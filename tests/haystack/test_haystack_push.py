"""`vdata push` of a haystack benchmark uploads a repo that lmms-eval runs (outside check h18 F17): the task
folder written for that repo (YAMLs loading it, utils.py, the Video-MME-style table as the default config
`lmms_eval`, split test, the videos as zip shards), beside the `haystack` items config. The Hub is the local
stand-in of tests/fakehub.py (no network here)."""
from __future__ import annotations

import json
import secrets
import sys
import zipfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakehub import FakeHub  # noqa: E402

from .test_haystack_exports import _yaml  # noqa: E402  (lmms-eval's `!function` tags)


def test_a_pushed_benchmark_is_an_lmms_eval_task_of_its_repo(built, tmp_path, monkeypatch):
    import datasets
    from huggingface_hub import constants

    from vdata.hub import push

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    token = "hf_" + secrets.token_hex(16)
    with FakeHub(token) as hub:
        push(built.out_dir, "me/hay", endpoint=hub.endpoint, token=token, staging_dir=str(tmp_path / "stage"))
        snap = tmp_path / "snap"
        hub.write_snapshot("me/hay", snap)
    card = (snap / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n", 2)[1])
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert configs["lmms_eval"].get("default") and not configs["haystack"].get("default")
    (task_dir,) = [p for p in (snap / "lmms_eval").iterdir() if p.is_dir()]
    task = task_dir.name
    mcq = _yaml(task_dir / f"{task}.yaml")
    assert mcq["dataset_path"] == "me/hay" and mcq["test_split"] == "test" and mcq["dataset_kwargs"]["video"] is True
    assert json.loads((task_dir / "vdata_task.json").read_text())["video_dirs"] == []   # no path of this machine
    # what lmms-eval's load_dataset(<repo>) reads: the default config, split test, Video-MME-style rows
    docs = datasets.load_dataset(str(snap), split="test", cache_dir=str(tmp_path / "c"))
    assert len(docs) == built.questions and {"videoID", "options", "answer"} <= set(docs.column_names)
    assert all(d["answer"] in "ABCD" and d["options"][0].startswith("A. ") for d in docs)
    # ... and the videos its `video: true` download extracts from the repo's zip shards
    shards = sorted(task_dir.glob("*.zip"))
    members = {n for z in shards for n in zipfile.ZipFile(z).namelist()}
    assert shards and {f"{d['videoID']}.mp4" for d in docs} <= members
    items = datasets.load_dataset(str(snap), "haystack", split="test", cache_dir=str(tmp_path / "c"))
    assert len(items) == built.questions
    assert f"lmms_eval/{task}/" in card and "--include_path lmms_eval/" + task in card
