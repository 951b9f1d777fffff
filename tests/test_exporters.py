"""Exporters: every format renders the canonical Parquet and loads in its real consumer.

The build directory is written by `vdata.exporters.demo_build`: real rendered videos (known content per
shot), probed with the real prober, one clip file cut like the shots stage does, and canonical rows
with `R.schema_for` types (captions, open QA, MCQ, CoT, grounding with spans, dense captions,
chapters; clip-level and whole-video samples). Consumers: `datasets.load_dataset` on every JSON /
Parquet / TSV output; LLaMA-Factory's converter and lmms-eval's task loader when installed in a side
venv (see `_side_python`); otherwise their documented rules, checked here, and lmms-eval's YAML +
utils.py run on the docs.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from vdata.exporters import ExportError, export, open_build
from vdata.exporters.cli import export_cmd
from vdata.exporters.demo_build import write_demo_build
from vdata.media.probe import probe_video
from vdata.schemas import records as R

# --- fixtures ------------------------------------------------------------------------------------

def demo_media_dir(tmp_path_factory) -> Path:
    """Rendered once per session (test_hub reuses it): the demo builder skips existing videos."""
    d = tmp_path_factory.getbasetemp() / "vdata_demo_media"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> str:
    return write_demo_build(str(tmp_path_factory.mktemp("build")), media_dir=str(demo_media_dir(tmp_path_factory)))


@pytest.fixture(scope="module")
def canonical(build_dir) -> dict:
    rows = pq.read_table(os.path.join(build_dir, "samples")).to_pylist()
    return {r[R.SAMPLE_ID]: r for r in rows}


@pytest.fixture
def hf_cache(tmp_path) -> str:
    return str(tmp_path / "hf_cache")


def load_json(path: str, cache: str):
    import datasets

    return datasets.load_dataset("json", data_files=path, split="train", cache_dir=cache)


def load_parquet(path: str, cache: str):
    import datasets

    return datasets.load_dataset("parquet", data_files=path, split="train", cache_dir=cache)


def resolve(base: str, video: str) -> str:
    return video if os.path.isabs(video) else os.path.join(base, video)


def letter_to_text(options_text: str, letter: str) -> str:
    for line in options_text.splitlines():
        if line.startswith(f"{letter}. "):
            return line[3:]
    raise AssertionError(f"letter {letter} not among options:\n{options_text}")


# --- every format loads --------------------------------------------------------------------------

def test_llava_json_loads_and_points_at_real_videos(build_dir, canonical, tmp_path, hf_cache):
    dest = str(tmp_path / "llava")
    res = export(build_dir, dest, "llava")
    assert set(res.rows) == {"demo-patterns_cap.json", "demo-patterns_oe_qa.json", "demo-patterns_mc_qa.json"}
    assert res.total == len(canonical) and not res.skipped
    data_yaml = yaml.safe_load(open(os.path.join(dest, "demo-patterns.yaml")))
    assert [Path(d["json_path"]).name for d in data_yaml["datasets"]] == list(res.rows)
    for fname, n in res.rows.items():
        ds = load_json(os.path.join(dest, fname), hf_cache)
        assert len(ds) == n and set(ds.column_names) == {"id", "video", "data_source", "conversations"}
        for rec in ds:
            conv = rec["conversations"]
            assert [t["from"] for t in conv] == ["human", "gpt"]
            assert conv[0]["value"].startswith("<image>\n") and sum(t["value"].count("<image>") for t in conv) == 1
            assert os.path.isfile(os.path.join(dest, "videos", rec["video"]))   # relative to --video_folder
            kind = fname.rsplit("_", 2)[-2] if fname.endswith("_qa.json") else "cap"
            task = canonical[rec["id"]][R.TASK]
            assert task in {"cap": ("caption", "dense_caption", "chapter"), "oe": ("open_qa", "grounding", "cot"),
                            "mc": ("mcq", "cot")}[kind]


def test_sharegpt_follows_llamafactory_rules(build_dir, tmp_path, hf_cache):
    dest = str(tmp_path / "sharegpt")
    res = export(build_dir, dest, "sharegpt")
    info = json.load(open(os.path.join(dest, "dataset_info.json")))
    assert set(info) == {f"demo-patterns_{s}" for s in ("captions", "open_qa", "mcq", "grounding")}
    for name, entry in info.items():
        assert entry["formatting"] == "sharegpt"
        assert entry["columns"] == {"messages": "messages", "videos": "videos"}
        assert entry["tags"] == {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                 "assistant_tag": "assistant"}
        ds = load_json(os.path.join(dest, entry["file_name"]), hf_cache)
        assert len(ds) == res.rows[entry["file_name"]]
        for rec in ds:
            msgs = rec["messages"]
            # LLaMA-Factory: turns alternate user/assistant, and <video> tags == len(videos)
            assert [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2) and len(msgs) % 2 == 0
            assert sum(m["content"].count("<video>") for m in msgs) == len(rec["videos"]) == 1
            assert msgs[0]["content"].startswith("<video>")
            # media paths are joined to media_dir (= dataset_dir by default)
            assert all(os.path.isfile(os.path.join(dest, v)) and not os.path.isabs(v) for v in rec["videos"])


def test_swift_and_internvl_jsonl(build_dir, canonical, tmp_path, hf_cache):
    swift = str(tmp_path / "swift")
    res = export(build_dir, swift, "swift")
    for fname in res.rows:
        for rec in load_json(os.path.join(swift, fname), hf_cache):
            assert sum(m["content"].count("<video>") for m in rec["messages"]) == len(rec["videos"]) == 1
            assert os.path.isabs(rec["videos"][0]) and os.path.isfile(rec["videos"][0])
    internvl = str(tmp_path / "internvl")
    res = export(build_dir, internvl, "internvl")
    meta = json.load(open(os.path.join(internvl, "demo-patterns_meta.json")))
    assert sum(m["length"] for m in meta.values()) == res.total == len(canonical)
    n_interval = 0
    for entry in meta.values():
        for rec in load_json(entry["annotation"], hf_cache):
            assert rec["conversations"][0]["value"].startswith("<video>\n")
            assert os.path.isfile(os.path.join(entry["root"], rec["video"]))
            row = canonical[rec["id"]]
            if rec.get("clip"):   # a clip without a clip file: source video + interval, never cut
                n_interval += 1
                q = 0.25 / row[R.FPS]   # a quarter frame inside: InternVL floors start * fps
                assert rec["clip"] == [round(row[R.START_S] + q, 3), round(row[R.END_S] - q, 3)]
                assert row[R.CLIP_PATH] is None
    assert n_interval > 0
    assert not os.path.exists(os.path.join(internvl, "videos", "clips")) or all(
        os.path.islink(p) for p in Path(internvl, "videos", "clips").iterdir())   # only existing clip files, linked


def test_parquet_keeps_canonical_schema_and_loads_per_subset(build_dir, canonical, tmp_path, hf_cache):
    import datasets

    dest = str(tmp_path / "parquet")
    res = export(build_dir, dest, "parquet")
    src_schema = pq.read_schema(next(Path(build_dir, "samples").glob("*.parquet")))
    total = 0
    for subset, n in res.rows.items():
        ds = datasets.load_dataset(dest, subset, split="train", cache_dir=hf_cache)   # README configs
        assert len(ds) == n
        total += n
        files = sorted(Path(dest, "data", subset).glob("*.parquet"))
        schema = pq.read_schema(files[0])
        for f in src_schema:   # every canonical column, same Arrow type
            assert schema.field(f.name).type == f.type
        t = pq.read_table(files)
        for row in t.select([R.SAMPLE_ID, R.START_S, R.CLIP_ID, "video", "video_origin_s"]).to_pylist():
            assert os.path.isfile(os.path.join(dest, row["video"]))
            assert row["video_origin_s"] == (row[R.START_S] if row[R.CLIP_ID] else 0.0)
    assert total == len(canonical)
    # the folder opens without a config name too (its first config is the default)
    first = next(iter(res.rows))
    assert len(datasets.load_dataset(dest, split="train", cache_dir=hf_cache)) == res.rows[first]
    # the samples carry no frames: the `clips` config holds each exported sample's clip once, frames as images
    clips = datasets.load_dataset(dest, R.CLIPS_TABLE, split="train", cache_dir=hf_cache)
    assert R.FRAMES not in src_schema.names and isinstance(clips.features[R.FRAMES].feature[R.FRAME_JPEG], datasets.Image)
    sample_clips = {r[R.CLIP_ID] for r in canonical.values() if r[R.CLIP_ID]}
    assert sorted(clips[R.CLIP_ID]) == sorted(sample_clips) and len(sample_clips) < len(canonical)
    assert all(len(f) == 2 for f in clips[R.FRAMES])


def test_join_frames_gives_each_sample_its_clips_frames_as_the_old_layout_did(build_dir, tmp_path):
    """The clips table joined back onto the samples equals what a build that kept the frames on every sample row
    (the layout before the clips table) stored, row for row; rows without a clip get none."""
    media = os.path.dirname(pq.read_table(os.path.join(build_dir, "samples"), columns=[R.PATH])[R.PATH][0].as_py())
    old = write_demo_build(str(tmp_path / "old"), media_dir=media, clips_table=False)
    new_build, old_build = open_build(build_dir), open_build(old)
    assert new_build.clips_files and not old_build.clips_files
    joined = new_build.join_frames(new_build.read_table([R.SAMPLE_ID, R.CLIP_ID]))
    stored = old_build.read_table([R.SAMPLE_ID, R.CLIP_ID, R.FRAMES, R.FRAME_SAMPLING])
    assert joined.sort_by(R.SAMPLE_ID).equals(stored.sort_by(R.SAMPLE_ID))
    assert old_build.join_frames(stored) is stored   # frames already there: nothing to join
    with_frames = [f for f in joined[R.FRAMES].to_pylist() if f]
    assert with_frames and len(with_frames) < joined.num_rows   # video-level rows have no clip, so no frames


def test_vlmevalkit_tsv(build_dir, canonical, tmp_path, hf_cache):
    import datasets

    dest = str(tmp_path / "vlm")
    res = export(build_dir, dest, "vlmevalkit")
    assert set(res.skipped) == {"not_evaluated:caption", "not_evaluated:dense_caption", "not_evaluated:chapter"}
    ds = datasets.load_dataset("csv", data_files=os.path.join(dest, "demo-patterns_mcq.tsv"), sep="\t",
                               split="train", cache_dir=hf_cache)
    assert len(ds) == res.rows["demo-patterns_mcq.tsv"] > 0
    for rec in ds:
        assert rec["video_path"] == f"./video/{rec['video']}.mp4"
        assert os.path.isfile(os.path.join(dest, "video", f"{rec['video']}.mp4"))
        cands = ast.literal_eval(rec["candidates"])
        chosen = next(c for c in cands if c.startswith(rec["answer"] + ". "))
        row = next(r for r in canonical.values() if r[R.QUESTION] == rec["question"]
                   and (r[R.CLIP_ID] or r[R.VIDEO_ID]) == rec["video"])
        assert chosen[3:] == row[R.OPTIONS][row[R.ANSWER_INDEX]]


# --- MCQ letters, time rendering, media ---------------------------------------------------------

def test_mcq_letters_match_option_positions_everywhere(build_dir, canonical, tmp_path):
    seen_letters = set()
    for fmt in ("llava", "sharegpt", "lmms-eval"):
        dest = str(tmp_path / fmt)
        export(build_dir, dest, fmt, media="none")
        if fmt == "llava":
            recs = [(r["id"], r["conversations"][0]["value"], r["conversations"][1]["value"])
                    for r in json.load(open(os.path.join(dest, "demo-patterns_mc_qa.json")))]
        elif fmt == "sharegpt":
            recs = [(r["id"], r["messages"][0]["content"], r["messages"][1]["content"])
                    for r in json.load(open(os.path.join(dest, "demo-patterns_mcq.json")))]
        else:
            recs = [(d["question_id"], "\n".join(d["options"]), d["answer"])
                    for d in pq.read_table(os.path.join(dest, "data", "mcq.parquet")).to_pylist()]
        assert recs
        for sid, user, answer in recs:
            row = canonical[sid]
            letter = answer.rsplit("Answer: ", 1)[-1].strip()   # CoT ends with "Answer: X"
            assert letter_to_text(user, letter) == row[R.OPTIONS][row[R.ANSWER_INDEX]]
            seen_letters.add(letter)
    assert seen_letters == {"A", "B", "C", "D"}   # the demo puts the right answer at every position


def _grounding_answers(dest: str) -> dict:
    return {r["id"]: r["messages"][1]["content"] for r in json.load(open(os.path.join(dest, "demo-patterns_grounding.json")))}


@pytest.mark.parametrize("mode", ["seconds", "relative", "frames"])
def test_time_rendering(build_dir, canonical, tmp_path, mode):
    dest = str(tmp_path / mode)
    export(build_dir, dest, "sharegpt", time_format=mode, media="none")
    answers = _grounding_answers(dest)
    assert len(answers) == sum(r[R.TASK] == "grounding" for r in canonical.values())
    for sid, text in answers.items():
        row = canonical[sid]
        span = row[R.ANSWER_SPANS][0]
        clip = row[R.CLIP_ID] is not None
        origin = row[R.START_S] if clip else 0.0        # times count from the start of what the model sees
        length = (row[R.END_S] - row[R.START_S]) if clip else row[R.DURATION_S]
        a, b = span["start_s"] - origin, span["end_s"] - origin
        if mode == "seconds":
            expected = f"{a:.1f} - {b:.1f} seconds"
        elif mode == "relative":
            expected = f"{min(round(a / length * 100), 99):02d} - {min(round(b / length * 100), 99):02d}"   # VTimeLLM's
        else:   # first and last frame of [a, b), both inclusive
            expected = f"frames {math.ceil((a - 1e-3) * row[R.FPS])} - {math.ceil((b - 1e-3) * row[R.FPS]) - 1}"
        assert text == expected, (sid, text, expected)
    # placeholders in canonical texts ({{span:a,b}}) are rendered too, in the same mode
    captions = json.load(open(os.path.join(dest, "demo-patterns_captions.json")))
    chapters = [r["messages"][1]["content"] for r in captions if r["id"].endswith("-chap")]
    assert chapters and all("{{" not in c for c in chapters)
    first_line = chapters[0].splitlines()[0]
    assert first_line.startswith({"seconds": "0.0 - 2.0 seconds", "relative": "00 - ", "frames": "frames 0 - 49"}[mode])   # 0 - 2 s: frames 0..49


def test_cot_evidence_times_rendered(build_dir, canonical, tmp_path):
    dest = str(tmp_path / "cot")
    export(build_dir, dest, "sharegpt", time_format="frames", media="none", tasks=["cot"])
    recs = json.load(open(os.path.join(dest, "demo-patterns_mcq.json")))
    assert len(recs) == sum(r[R.TASK] == "cot" for r in canonical.values())
    for r in recs:
        row = canonical[r["id"]]
        ts = row[R.RATIONALE_STEPS][0]["evidence_timestamps_s"]
        # two times that bound a span (not two cited frames) in the span form the same interval has elsewhere
        # (h17 F9: "at frame 32, frame 82" beside "frames 33 - 81"): the frame shown at a (as a moment at a names
        # it, h20 F3), last the one before the frame shown at b
        a, b = (t - row[R.START_S] for t in ts)
        first, last = math.floor((a + 1e-3) * row[R.FPS]), math.floor((b + 1e-3) * row[R.FPS]) - 1
        assert f"(frames {first} - {last})" in r["messages"][1]["content"]


def test_clips_are_cut_to_their_interval(build_dir, canonical, tmp_path):
    dest = str(tmp_path / "cut")
    res = export(build_dir, dest, "llava", media="copy")
    clips_without_file = {r[R.CLIP_ID] for r in canonical.values() if r[R.CLIP_ID] and not r[R.CLIP_PATH]}
    assert res.media["cut"] == len(clips_without_file) > 0
    for clip_id in clips_without_file:
        path = os.path.join(dest, "videos", "clips", f"{clip_id}.mp4")
        info = probe_video(path)
        row = next(r for r in canonical.values() if r[R.CLIP_ID] == clip_id)
        assert abs(info["duration_s"] - (row[R.END_S] - row[R.START_S])) < 0.1
    # --media copy: real files, no links
    assert not any(p.is_symlink() for p in Path(dest, "videos").rglob("*.mp4"))


def test_media_modes(build_dir, tmp_path):
    link = str(tmp_path / "link")
    export(build_dir, link, "sharegpt", media="link")
    links = [p for p in Path(link, "videos").rglob("*.mp4") if p.is_symlink()]
    assert links and all(p.resolve().is_file() for p in links)
    none = str(tmp_path / "none")
    res = export(build_dir, none, "sharegpt", media="none")
    assert res.media["copied"] == res.media["linked"] == 0 and res.media["referenced"] > 0
    videos = [v for f in res.rows for r in json.load(open(os.path.join(none, f))) for v in r["videos"]]
    absolute = [v for v in videos if os.path.isabs(v)]
    assert absolute and all(os.path.isfile(v) for v in absolute)
    # cut clips exist nowhere else, so even --media none writes them into the export
    assert all(os.path.isfile(os.path.join(none, v)) for v in videos if not os.path.isabs(v))


def test_re_exports_into_the_same_folder_keep_their_promises(build_dir, tmp_path):
    """A copy over an earlier linked export holds files, not the old links; a LLaMA-Factory export with fewer
    subsets than the one before it registers only the files it leaves (outside check h10)."""
    dest = str(tmp_path / "again")
    export(build_dir, dest, "sharegpt", media="link")
    assert any(p.is_symlink() for p in Path(dest, "videos").rglob("*.mp4"))
    res = export(build_dir, dest, "sharegpt", media="copy")
    videos = [p for p in Path(dest, "videos").rglob("*.mp4")]
    assert videos and not any(p.is_symlink() for p in videos) and res.media["copied"] > 0
    info_path = os.path.join(dest, "dataset_info.json")
    with open(info_path) as f:
        info = json.load(f)
    info["someone_else"] = {"file_name": "theirs.json"}   # another dataset registered in the folder stays
    with open(info_path, "w") as f:
        json.dump(info, f)
    export(build_dir, dest, "sharegpt", media="copy", tasks=["mcq"])
    with open(info_path) as f:
        info = json.load(f)
    assert set(info) == {"demo-patterns_mcq", "someone_else"}
    assert all(os.path.isfile(os.path.join(dest, e["file_name"])) for k, e in info.items() if k != "someone_else")


# --- bad input -----------------------------------------------------------------------------------

def test_bad_samples_are_skipped_with_reasons(build_dir, tmp_path):
    bad = tmp_path / "bad_build"
    (bad / "samples").mkdir(parents=True)
    table = pq.read_table(os.path.join(build_dir, "samples"))
    rows = table.to_pylist()
    mcq = next(r for r in rows if r[R.TASK] == "mcq")
    rows.append({**mcq, R.SAMPLE_ID: "broken-index", R.ANSWER_INDEX: 7})
    rows.append({**mcq, R.SAMPLE_ID: "no-options", R.OPTIONS: []})
    gone = next(r for r in rows if r[R.CLIP_ID] is None)
    rows.append({**gone, R.SAMPLE_ID: "missing-video", R.PATH: str(tmp_path / "nope.mp4")})
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), bad / "samples" / "part-0.parquet")
    shutil.copy(os.path.join(build_dir, "manifest.json"), bad / "manifest.json")   # a finished build: exportable
    res = export(str(bad), str(tmp_path / "out"), "sharegpt", media="none")
    assert res.skipped == {"bad_answer_index": 1, "bad_options": 1, "missing_media": 1}
    assert res.total == len(rows) - 3


def test_clear_errors_for_bad_requests(build_dir, tmp_path):
    with pytest.raises(ExportError, match="no data Parquet"):
        export(str(tmp_path), str(tmp_path / "x"), "llava")
    with pytest.raises(ExportError, match="unknown export format 'coco'"):
        export(build_dir, str(tmp_path / "x"), "coco")
    with pytest.raises(ExportError, match="--time must be one of"):
        export(build_dir, str(tmp_path / "x"), "llava", time_format="minutes")


def test_clips_level_build_exports_captions(tmp_path_factory, tmp_path, hf_cache):
    build = write_demo_build(str(tmp_path / "clips_build"), level="clips", media_dir=str(demo_media_dir(tmp_path_factory)),
                             with_frames=False)
    # only the top-level Parquet: clip files live in clips/<xx>/ next to it
    clips = pq.read_table(sorted(Path(build, "clips").glob("*.parquet"))).to_pylist()
    dest = str(tmp_path / "llava")
    res = export(build, dest, "llava")
    ds = load_json(os.path.join(dest, "demo-patterns_cap.json"), hf_cache)
    assert len(ds) == res.total == 2 * len(clips)   # one caption + one dense caption per captioned clip
    by_id = {r["id"]: r["conversations"][1]["value"] for r in ds}
    for c in clips:
        assert by_id[f"{c[R.CLIP_ID]}-caption"] == c[R.CAPTION]
        assert by_id[f"{c[R.CLIP_ID]}-dense"] == f"0.0 - {c[R.END_S] - c[R.START_S]:.1f} seconds: {c[R.CAPTION]}"


def test_export_cli(build_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(export_cmd, [build_dir, "--format", "swift", "--dest", str(tmp_path / "s"), "--time", "relative"])
    assert res.exit_code == 0, res.output
    assert "swift:" in res.output and "demo-patterns_mcq.jsonl: 10" in res.output
    res = runner.invoke(export_cmd, [str(tmp_path), "--format", "swift", "--dest", str(tmp_path / "s2")])
    assert res.exit_code == 2 and "no data Parquet" in res.output
    res = runner.invoke(export_cmd, [build_dir, "--format", "nope", "--dest", str(tmp_path / "s3")])
    assert res.exit_code == 2 and "nope" in res.output


# --- lmms-eval -----------------------------------------------------------------------------------

class _TaskLoader(yaml.SafeLoader):
    """Reads lmms-eval YAMLs: `!function utils.f` becomes ("function", "utils.f")."""


_TaskLoader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))


def _import_utils(folder: str):
    spec = importlib.util.spec_from_file_location(f"lmms_utils_{abs(hash(folder))}", os.path.join(folder, "utils.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mode", ["seconds", "relative", "frames"])
def test_lmms_eval_task_folder_runs_its_functions(build_dir, tmp_path, hf_cache, mode):
    import datasets

    dest = str(tmp_path / "lmms")
    res = export(build_dir, dest, "lmms-eval", time_format=mode)
    utils = _import_utils(dest)
    group = yaml.load(open(os.path.join(dest, "demo-patterns.yaml")), Loader=_TaskLoader)
    assert group["group"] == "vdata_demo_patterns" and len(group["task"]) == 3
    for kind in ("mcq", "open", "grounding"):
        cfg = yaml.load(open(os.path.join(dest, f"demo-patterns_{kind}.yaml")), Loader=_TaskLoader)
        assert cfg["task"] == f"vdata_demo_patterns_{kind}" and cfg["output_type"] == "generate_until"
        assert cfg["dataset_path"] == "parquet"
        docs = datasets.load_dataset("parquet", **cfg["dataset_kwargs"], split=cfg["test_split"], cache_dir=hf_cache)
        assert len(docs) == res.rows[kind]
        fn = {k: getattr(utils, cfg[k][1].split(".", 1)[1]) for k in ("doc_to_visual", "doc_to_text", "process_results", "doc_to_target")}
        kwargs = cfg["lmms_eval_specific_kwargs"]["default"]
        metrics = {m["metric"] for m in cfg["metric_list"]}
        for doc in docs:
            (video,) = fn["doc_to_visual"](doc)
            assert os.path.isfile(video) and probe_video(video)["num_frames"] > 0
            prompt = fn["doc_to_text"](doc, kwargs)
            assert doc["question"] in prompt
            target = fn["doc_to_target"](doc)
            perfect = fn["process_results"](doc, [target])
            assert set(perfect) == metrics
            if kind == "mcq":
                assert all(o in prompt for o in doc["options"]) and prompt.endswith(kwargs["post_prompt"])
                assert perfect["accuracy"] == 1.0
                wrong = next(o[0] for o in doc["options"] if o[0] != doc["answer"])
                assert fn["process_results"](doc, [f"The answer is ({wrong})."])["accuracy"] == 0.0
                assert fn["process_results"](doc, [f"{doc['answer']}. something"])["accuracy"] == 1.0
            elif kind == "grounding":
                # the rendered target parses back to the ground-truth span (within the mode's rounding)
                assert perfect["mean_iou"] > (0.97 if mode != "relative" else 0.9)
                assert perfect["recall_at_iou_0.5"] == 1.0
                assert fn["process_results"](doc, ["no idea"])["mean_iou"] == 0.0
            else:
                assert perfect["token_f1"] == 1.0 and perfect["exact_match"] == 1.0
                assert fn["process_results"](doc, ["zzz"])["token_f1"] == 0.0


# --- real consumers in side environments ----------------------------------------------------------

def _side_python(env_var: str, module: str) -> str | None:
    """A Python that has `module`, named by `env_var` (LLaMA-Factory / lmms-eval pull CUDA torch and
    pin their own transformers, so they live in side venvs, not in the main one)."""
    exe = os.environ.get(env_var)
    if not exe or not os.path.exists(exe):
        return None
    ok = subprocess.run([exe, "-c", f"import importlib.util,sys; sys.exit(importlib.util.find_spec('{module}') is None)"],
                        capture_output=True)
    return exe if ok.returncode == 0 else None


LLAMAFACTORY_CHECK = r"""
# LLaMA-Factory's own loader (dataset_info.json -> DatasetAttr -> load -> sharegpt converter) and its
# mm_plugin checks: <video> count == len(videos), and its av-based video reader on every file.
import json, sys
from llamafactory.data.loader import _load_single_dataset
from llamafactory.data.parser import get_dataset_list
from llamafactory.data.mm_plugin import get_mm_plugin
from llamafactory.hparams import DataArguments, ModelArguments
from transformers import Seq2SeqTrainingArguments
dest = sys.argv[1]
info = json.load(open(dest + "/dataset_info.json"))
data_args = DataArguments(dataset_dir=dest, dataset=list(info))
training_args = Seq2SeqTrainingArguments(output_dir=dest + "/_lf_out", report_to=[])
plugin = get_mm_plugin("base", video_token="<video>")
out = {}
for attr in get_dataset_list(list(info), dest):
    ds = _load_single_dataset(attr, ModelArguments(model_name_or_path="unused"), data_args, training_args)
    rows = []
    for r in ds:
        plugin._validate_messages(r["_prompt"] + r["_response"], [], r["_videos"] or [], [])
        frames = plugin._regularize_videos(r["_videos"], image_max_pixels=64 * 64, image_min_pixels=1,
                                           video_fps=2.0, video_maxlen=4)["videos"]
        rows.append({"prompt": r["_prompt"], "response": r["_response"], "videos": r["_videos"],
                     "frames": [len(f) for f in frames]})
    out[attr.dataset_name] = rows
print(json.dumps(out))
"""


def test_llamafactory_converter_reads_the_export(build_dir, tmp_path):
    exe = _side_python("VDATA_LLAMAFACTORY_PYTHON", "llamafactory")
    if exe is None:
        pytest.skip("LLaMA-Factory not installed (set VDATA_LLAMAFACTORY_PYTHON to a Python that has it)")
    dest = str(tmp_path / "lf")
    res = export(build_dir, dest, "sharegpt")
    proc = subprocess.run([exe, "-c", LLAMAFACTORY_CHECK, dest], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {k: len(v) for k, v in out.items()} == res.rows     # keyed by file_name: every record converted
    for rows in out.values():
        for r in rows:
            assert [m["role"] for m in r["prompt"]] == ["user"] and len(r["response"]) == 1
            assert len(r["videos"]) == 1 and os.path.isfile(r["videos"][0])   # joined to media_dir by LLaMA-Factory
            assert r["frames"][0] >= 1                                          # and decoded by its video reader


LMMS_CHECK = r"""
# lmms-eval's own task indexer + loader on the exported folder; its Task methods on every doc.
import json, sys
from lmms_eval.tasks import TaskManager, get_task_dict
dest = sys.argv[1]
tm = TaskManager(include_path=dest, include_defaults=False)
out = {}
def walk(d):
    for k, v in d.items():
        if isinstance(v, dict):
            walk(v)
            continue
        docs = list(v.test_docs())
        rows = []
        for doc in docs:
            target = v.doc_to_target(doc)
            rows.append({"visual": v.doc_to_visual(doc), "text": v.doc_to_text(doc), "target": target,
                         "perfect": v.process_results(doc, [target])})
        out[v.config.task] = {"n": len(docs), "rows": rows, "metrics": [m["metric"] for m in v.config.metric_list]}
walk(get_task_dict(["vdata_demo_patterns"], tm))
print(json.dumps(out))
"""


def test_lmms_eval_loads_the_task_folder(build_dir, tmp_path):
    exe = _side_python("VDATA_LMMS_EVAL_PYTHON", "lmms_eval")
    if exe is None:
        pytest.skip("lmms-eval not installed (set VDATA_LMMS_EVAL_PYTHON to a Python that has it)")
    dest = str(tmp_path / "lmms")
    res = export(build_dir, dest, "lmms-eval")
    proc = subprocess.run([exe, "-c", LMMS_CHECK, dest], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {k: v["n"] for k, v in out.items()} == {f"vdata_demo_patterns_{k}": n for k, n in res.rows.items()}
    for task, v in out.items():
        for row in v["rows"]:
            assert len(row["visual"]) == 1 and os.path.isfile(row["visual"][0])
            assert set(row["perfect"]) == set(v["metrics"])
            best = {"mcq": "accuracy", "open": "token_f1", "grounding": "recall_at_iou_0.5"}[task.rsplit("_", 1)[1]]
            assert row["perfect"][best] == 1.0, (task, row)


def test_markup_in_sample_text_is_written_as_text(build_dir, tmp_path, hf_cache):
    """A chapter titled "Embedding <video> tags", a description quoting "</s>", a teacher echoing
    "<|im_end|>": in a training record those are markup. LLaMA-Factory stops the run at a record whose
    <video> tags outnumber its videos; LLaVA splits the prompt at every <image>; the tokenizer reads a chat
    template's own tokens as special ones. The exporters write them as text (‹video›) and say how many."""
    import shutil

    from vdata.exporters.dialog import time_points_only
    from vdata.exporters.source import Item
    from vdata.exporters.timefmt import TimeFormat

    build = str(tmp_path / "build")
    shutil.copytree(build_dir, build, symlinks=True)
    part = sorted(Path(build, "samples").glob("*.parquet"))[0]
    table = pq.read_table(part)
    rows = table.to_pylist()
    marked = [r for r in rows if r[R.TASK] == "open_qa"][:1] + [r for r in rows if r[R.TASK] == "caption"][:1]
    assert len(marked) == 2
    for r in marked:
        r[R.QUESTION] = (r[R.QUESTION] or "Describe the video.") + " How do <video> and <image> tags differ?"
        r[R.ANSWER] = (r[R.ANSWER] or "") + " It ends with </s> then <|im_end|> and <s>."
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
    tokens = ("<image>", "<video>", "</s>", "<|im_end|>", "<s>")
    for fmt, placeholder in (("llava", "<image>"), ("sharegpt", "<video>"), ("swift", "<video>"), ("internvl", "<video>")):
        dest = str(tmp_path / fmt)
        res = export(build, dest, fmt)
        assert any("10 media placeholder or chat token(s)" in n for n in res.notes), (fmt, res.notes)
        records, seen = [], 0
        for path in Path(dest).rglob("*.json*"):
            if path.name in ("dataset_info.json",) or path.name.endswith("_meta.json") or path.suffix == ".yaml":
                continue
            records += list(load_json(str(path), hf_cache))
        for rec in records:
            turns = rec.get("messages") or rec.get("conversations")
            text = "".join(t.get("content") or t.get("value") for t in turns)
            assert text.count(placeholder) == 1, (fmt, text)   # the exporter's own, opening the first turn
            assert not any(t in text for t in tokens if t != placeholder), (fmt, text)
            seen += "\u2039video\u203a" in text and "\u2039|im_end|\u203a" in text
        assert seen == 2, fmt
    # a question about a moment asks for a moment, not a span
    point = Item({R.SAMPLE_ID: "p", R.TASK: "chapter_grounding", R.ANSWER: "{{t:6}}",
                  R.ANSWER_SPANS: [{"start_s": 6.0, "end_s": 10.0}]}, "grounding")
    span = Item({R.SAMPLE_ID: "s", R.TASK: "grounding", R.ANSWER: "", R.ANSWER_SPANS: [{"start_s": 1.0, "end_s": 2.0}]},
                "grounding")
    assert time_points_only(point) and not time_points_only(span)
    for mode in ("seconds", "frames", "lita:100", "relative", "vtg"):
        tf = TimeFormat(mode, duration_s=10.0, fps=25.0)
        shape = lambda hint: hint.rsplit(", as ", 1)[-1]  # noqa: E731
        assert "start" not in shape(tf.hint(points=True)) and "start" in shape(tf.hint(points=False)), mode
