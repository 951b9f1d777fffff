"""The lmms-eval task of a `vdata haystack` benchmark, staged for a Hub push (outside check h18 F17).

A benchmark built with `output.hub_repo` writes task YAMLs that load `dataset_path: <repo>`; the push
uploaded only the items (`haystack` config) and loose videos, so lmms-eval found no `test` split of the
Video-MME-style table (`videoID`, lettered options, letter answers) and no zip shards to extract. Here the
task folder is written again for the repo being pushed, whatever repo the build named (or none), with the
benchmark's own writer (`vdata.haystack.writers.write_lmms_eval`): `lmms_eval/<task>/` with its YAMLs,
`utils.py`, `data/test-*.parquet` and the videos as zip shards. Its table is the repo's default config,
`lmms_eval`, which is what lmms-eval's `load_dataset(<repo>)` reads (`test_split: test`); lmms-eval's
`video: true` download extracts every zip of the repo snapshot into `$HF_HOME/<cache_dir>`, where the
task's `utils.py` looks for the videos.
"""
from __future__ import annotations

import json
import os

LMMS_CONFIG = "lmms_eval"


def stage_haystack_task(build_path: str, folder: str, repo_id: str | None, name: str) -> tuple[list[dict], list[str]]:
    """(the `lmms_eval` config, notes) after writing the task folder into the staging `folder`; nothing
    when no repo is named (a staging-only run) or the benchmark has no videos folder."""
    from vdata.haystack.writers import write_lmms_eval

    items, videos = os.path.join(build_path, "items.parquet"), os.path.join(build_path, "videos")
    if not repo_id or not os.path.isfile(items) or not os.path.isdir(videos):
        return [], []
    task_dir = write_lmms_eval(folder, name, items, videos, hub_repo=repo_id)
    meta_path = os.path.join(task_dir, "vdata_task.json")
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    meta["video_dirs"] = []   # the videos come from the repo's zip shards: no folder of this machine
    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    task = os.path.basename(task_dir)
    config = {"config_name": LMMS_CONFIG, "default": True,
              "data_files": [{"split": "test", "path": f"lmms_eval/{task}/data/*.parquet"}]}
    note = (f"lmms_eval/{task}/: the lmms-eval task ({task}.yaml, {task}_open.yaml) loading {repo_id}'s default "
            f"config `{LMMS_CONFIG}` (split test) and its video zip shards")
    return [config], [note]
