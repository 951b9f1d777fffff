"""The eval formats written from the rendered benchmark: the lmms-eval task folder (Parquet loads with
`datasets`, YAML parses, utils.py imports and scores a doc, videos come as zip shards) and the
VLMEvalKit TSV (videos at <root>/video/<id>.mp4). With VDATA_LMMS_EVAL_PYTHON pointing at a Python
that has lmms-eval installed, lmms-eval's own task loader is run on the folder too."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from vdata.haystack.writers import write_lmms_eval
from vdata.schemas import haystack as H

MME_COLUMNS = ["videoID", "question_id", "duration", "domain", "sub_category", "task_type", "question", "options", "answer"]


def _yaml(path: Path) -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))
    return yaml.load(path.read_text(), Loader=Loader)


def _utils(folder: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, folder / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lmms_eval_folder_is_well_formed(built, monkeypatch):
    import datasets

    folder = Path(built.paths["lmms_eval"])
    task = folder.name
    mcq, open_ = _yaml(folder / f"{task}.yaml"), _yaml(folder / f"{task}_open.yaml")
    for cfg in (mcq, open_):
        assert cfg["dataset_path"] == "parquet" and cfg["test_split"] == "test"
        assert cfg["output_type"] == "generate_until"
        assert cfg["doc_to_visual"] == ("function", "utils.haystack_doc_to_visual")
        for m in cfg["metric_list"]:
            assert m["aggregation"][0] == "function" and m["higher_is_better"] is True
    assert open_["task"] == f"{task}_open" and open_["process_docs"] == ("function", "utils.haystack_process_docs_open")
    data_file = mcq["dataset_kwargs"]["data_files"]["test"]
    ds = datasets.load_dataset("parquet", data_files={"test": data_file}, split="test")
    assert len(ds) == built.questions and all(c in ds.column_names for c in MME_COLUMNS)
    items = {r[H.QUESTION_ID]: r for r in pq.read_table(built.paths["items"]).to_pylist()}
    for doc in ds:
        item = items[doc["question_id"]]
        letters = [o.split(". ", 1)[0] for o in doc["options"]]
        assert letters == ["A", "B", "C", "D"]
        chosen = doc["options"][letters.index(doc["answer"])].split(". ", 1)[1]
        assert chosen == item[H.ANSWER] and doc["item_id"] == item[H.ITEM_ID]
        assert f"videos/{doc['videoID']}.mp4" == item[H.VIDEO_PATH] != f"videos/{item[H.ITEM_ID]}.mp4"   # opaque
        assert doc["task_type"] == item[H.TASK] and doc["duration"] == "24s"

    monkeypatch.delenv("VDATA_HAYSTACK_VIDEO_DIR", raising=False)
    utils = _utils(folder, "haystack_task_utils")
    doc = ds[0]
    (path,) = utils.haystack_doc_to_visual(doc)
    assert os.path.exists(path) and path.endswith(doc["videoID"] + ".mp4")
    prompt = utils.haystack_doc_to_text(doc, {"pre_prompt": "", "post_prompt": "Letter only."})
    assert prompt.startswith(doc["question"]) and all(o in prompt for o in doc["options"]) and prompt.endswith("Letter only.")
    results = [utils.haystack_process_results(d, [f"({d['answer']})"])["haystack_accuracy"] for d in ds]
    assert utils.haystack_aggregate_accuracy(results) == 100.0
    assert utils.haystack_aggregate_circular(results) == 100.0
    results[0] = utils.haystack_process_results(ds[0], ["Z"])["haystack_accuracy"]    # one rotation wrong
    n_items = len({d["videoID"] for d in ds})
    assert utils.haystack_aggregate_circular(results) == pytest.approx(100.0 * (n_items - 1) / n_items)
    assert utils.haystack_aggregate_accuracy(results) < 100.0
    open_docs = utils.haystack_process_docs_open(ds)
    assert len(open_docs) == n_items
    scores = [utils.haystack_process_results_open(d, [utils.haystack_doc_to_target_open(d)])["haystack_open_score"]
              for d in open_docs]
    assert utils.haystack_aggregate_open(scores) == 100.0                    # the open answer scores itself full,
    assert utils.haystack_aggregate_miou(scores) == 100.0                    # its times printed to 0.01 s included


def test_shipped_utils_gives_no_credit_for_hedged_open_replies(built):
    """The utils.py copy in the task folder scores open replies as vdata does: listing every option of a
    retrieval or multihop question, or naming both orders, is not the answer."""
    folder = Path(built.paths["lmms_eval"])
    utils = _utils(folder, "haystack_task_utils_open")
    data_file = _yaml(folder / f"{folder.name}_open.yaml")["dataset_kwargs"]["data_files"]["test"]
    docs = [d for d in pq.read_table(data_file).to_pylist() if d["rotation"] == 0]
    hedged = 0
    for doc in docs:
        labels = doc["answer_labels"]
        assert utils.score_open(doc, doc["open_answer"]) == 1.0
        if doc["task_type"] in ("retrieval", "multihop"):
            every_option = "; ".join(o.split(". ", 1)[1] for o in doc["options"])
            assert utils.score_open(doc, every_option) < 0.75, every_option
            hedged += 1
        elif doc["task_type"] == "ordering":
            both = " -> ".join(labels) + " or " + " -> ".join(reversed(labels))
            assert utils.score_open(doc, both) == 0.0, both
            hedged += 1
    assert hedged >= 3


def test_videos_ship_as_zip_shards_that_utils_can_extract(built, tmp_path, monkeypatch):
    folder = Path(built.paths["lmms_eval"])
    shards = sorted(folder.glob("*.zip"))
    assert shards and not list(folder.glob("*.tar*"))
    assert all(re.fullmatch(rf"{folder.name}_videos_\d{{3}}\.zip", s.name) for s in shards)
    members = set()
    for s in shards:
        with zipfile.ZipFile(s) as z:
            assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
            members |= set(z.namelist())
    ids = {Path(r[H.VIDEO_PATH]).stem for r in pq.read_table(built.paths["items"]).to_pylist()}   # opaque names
    assert members == {f"{i}.mp4" for i in ids}

    # Shipped alone (no local video folder): utils.py extracts the shards next to itself on first use.
    copy = tmp_path / "task"
    shutil.copytree(folder, copy)
    meta = json.loads((copy / "vdata_task.json").read_text())
    meta["video_dirs"] = []
    (copy / "vdata_task.json").write_text(json.dumps(meta))
    monkeypatch.delenv("VDATA_HAYSTACK_VIDEO_DIR", raising=False)
    utils = _utils(copy, "haystack_task_utils_copy")
    some = sorted(ids)[0]
    (path,) = utils.haystack_doc_to_visual({"videoID": some})
    assert path == str(copy / "videos" / f"{some}.mp4")
    assert open(path, "rb").read() == open(os.path.join(built.out_dir, "videos", f"{some}.mp4"), "rb").read()

    # A small shard limit splits the videos over several zips, each within the limit (or one video alone).
    out = tmp_path / "sharded"
    small = write_lmms_eval(str(out), "small", built.paths["items"], os.path.join(built.out_dir, "videos"), shard_mb=1)
    parts = sorted(Path(small).glob("*.zip"))
    assert len(parts) >= 3
    for p in parts:
        with zipfile.ZipFile(p) as z:
            assert sum(i.file_size for i in z.infolist()) <= 1024 * 1024 or len(z.infolist()) == 1
    hub = write_lmms_eval(str(tmp_path / "hub"), "small", built.paths["items"], os.path.join(built.out_dir, "videos"),
                          hub_repo="someone/haystack-bench")
    cfg = _yaml(Path(hub) / "small.yaml")
    assert cfg["dataset_path"] == "someone/haystack-bench"
    assert cfg["dataset_kwargs"] == {"video": True, "cache_dir": "vdata_haystack/small"}


def test_vlmevalkit_tsv_is_well_formed(built):
    import pandas as pd

    tsv = Path(built.paths["vlmevalkit"])
    df = pd.read_csv(tsv, sep="\t")
    assert list(df.columns[:10]) == ["index", "video", "video_path", "duration", "domain", "candidates",
                                     "sub_category", "task_type", "question", "answer"]
    assert len(df) == built.questions and df["index"].is_unique
    for _, row in df.iterrows():
        candidates = ast.literal_eval(row["candidates"])
        assert [c[:3] for c in candidates] == ["A. ", "B. ", "C. ", "D. "]
        assert row["answer"] in "ABCD"
        assert (tsv.parent / row["video_path"]).exists() and row["video_path"] == f"./video/{row['video']}.mp4"
    summary = json.loads((Path(built.out_dir) / "summary.json").read_text())
    assert sum(r["items"] for r in summary["table"]) == built.kept
    assert sum(r["questions"] for r in summary["table"]) == built.questions
    assert "| task | length |" in (Path(built.out_dir) / "summary.md").read_text()


LOADER = """
import json, sys
from lmms_eval.tasks import TaskManager, get_task_dict
folder, task = sys.argv[1], sys.argv[2]
tm = TaskManager(include_path=folder)
out = {}
for name, t in get_task_dict([task, task + "_open"], tm).items():
    docs = t.test_docs()
    doc = docs[0]
    res = t.process_results(doc, [doc["answer"] if name == task else doc["open_answer"]])
    out[name] = {"docs": len(docs), "visual": t.doc_to_visual(doc), "text": t.doc_to_text(doc),
                 "scores": {k: f([res[k]]) for k, f in t.aggregation().items()}}
print("RESULT" + json.dumps(out))
"""


@pytest.mark.skipif(not os.environ.get("VDATA_LMMS_EVAL_PYTHON"),
                    reason="set VDATA_LMMS_EVAL_PYTHON to a Python with lmms-eval installed")
def test_lmms_eval_task_loader_reads_the_folder(built, tmp_path):
    folder = Path(built.paths["lmms_eval"])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([os.environ["VDATA_LMMS_EVAL_PYTHON"], "-c", LOADER, str(folder), folder.name],
                          capture_output=True, text=True, env=env, timeout=600)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, proc.stderr[-2000:]
    out = json.loads(line[len("RESULT"):])
    assert out[folder.name]["docs"] == built.questions and out[f"{folder.name}_open"]["docs"] == built.kept
    assert os.path.exists(out[folder.name]["visual"][0])
    assert out[folder.name]["scores"] == {"haystack_accuracy": 100.0, "haystack_circular_accuracy": 100.0}
    assert out[f"{folder.name}_open"]["scores"]["haystack_open_score"] > 99.0
