"""Preference pairs (generate `preference_pairs`, VideoSAVi): candidates from two teacher settings and
temperatures, ranked by a judge teacher and self-critique, written as chosen / rejected with every
candidate's scores; config errors name their key. Real generation on SmolLM2-135M (vLLM's CPU engine or
llama.cpp): the tiny model's wording is not checked, only structure and the ranking invariants.
"""
from __future__ import annotations

import json
import os
from collections import Counter

import pytest

import labelled_set as L
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate import GenerateConfig, GenerateStage
from vdata.stages.generate.preference import vision_text_scores

PAIR_REJECTS = {"no_preference", "no_margin", "unranked"}


def test_config_errors_name_the_key(tmp_path):
    base = {"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "out")}}

    def err(task_cfg):
        with pytest.raises(ConfigError) as e:
            parse_config({**base, "stages": [{"generate": {"teacher": "t", "tasks": {"preference_pairs": task_cfg}}}]})
        return str(e.value)

    assert "tasks.preference_pairs.candidates" in err({"candidates": 1})
    assert "temperature" in err({"temperatures": [3.0]})
    assert "weights" in err({"weights": {"clip": 1.0}})
    assert "vision_text_model" in err({"vision_text_scorer": "clip"})   # unknown key: the allowed ones are named
    stage = GenerateStage(GenerateConfig(teacher="t", tasks={"preference_pairs": {"judge": "nope"}}), RunContext(
        output_dir="", teachers={"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}}))
    with pytest.raises(ConfigError, match=r"tasks.preference_pairs: no teacher named 'nope'"):
        stage.setup()


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    d = tmp_path_factory.mktemp("pref-clips")
    return [L.clip_row(s, L.render_spec(s, str(d / f"{s.name}.mp4")), frames=False)
            for s in L.SPECS if s.name == "c04"]


@pytest.mark.skipif(not L.have_smollm(), reason="SmolLM2 is not installed (make setup)")
def test_pairs_from_two_writers_ranked_by_judge_and_self_critique(rows, smollm, tmp_path):
    teachers = {"writer": L.openai_teacher(smollm), "judge": L.openai_teacher(smollm, max_concurrency=2)}
    cfg = GenerateConfig(teacher="writer", max_tokens=64, tasks={"preference_pairs": {
        "per_clip": 1, "candidates": 4, "teachers": ["writer", "judge"], "temperatures": [0.2, 1.2], "judge": "judge"}})
    stage = GenerateStage(cfg, RunContext(output_dir="", teachers=teachers, cache_dir=str(tmp_path / "cache")))
    stage.setup()
    out = stage.process_batch(rows)
    samples = [r for r in out if not isinstance(r, Reject)]
    rejects = [r for r in out if isinstance(r, Reject)]
    print(f"\n[preference smollm] {len(samples)} pairs, rejects {Counter(r.reason for r in rejects)}")
    assert len(samples) + len(rejects) == 1                # one row or one reject per question, nothing lost
    assert all(r.reason in PAIR_REJECTS | {"teacher_error", "bad_reply"} for r in rejects), [r.message for r in rejects]
    assert samples, "SmolLM2 at two temperatures gives distinct answers"
    # rounds: 4 candidates per question, then 1 judge + one self-critique per usable candidate
    assert stage.counters["requests"] >= 4 + len(samples) * 2
    for s in samples:
        cands = s[R.PREFERENCE_CANDIDATES]
        assert s[R.TASK] == "preference_pairs" and s[R.QUESTION] and s[R.CHOSEN] == s[R.ANSWER]
        assert s[R.CHOSEN].strip().lower() != s[R.REJECTED].strip().lower()
        assert len(cands) == 4
        assert {c["teacher"] for c in cands} == {"writer", "judge"} and {c["temperature"] for c in cands} == {0.2, 1.2}
        scored = sorted((c for c in cands if c["score"] is not None), key=lambda c: c["rank"])
        assert [c["rank"] for c in scored] == list(range(len(scored)))
        assert scored[0]["text"] == s[R.CHOSEN] and s[R.REJECTED] in [c["text"] for c in scored[1:]]
        assert all(scored[i]["score"] >= scored[i + 1]["score"] for i in range(len(scored) - 1))
        for c in scored:   # the score is the weighted mean of the scores kept beside it
            parts = [(1.0, c["judge_score"]), (0.5, c["self_score"])]
            parts = [(w, v) for w, v in parts if v is not None]
            assert parts and all(0 <= v <= 1 for _, v in parts)
            assert c["score"] == pytest.approx(sum(w * v for w, v in parts) / sum(w for w, _ in parts))
        assert s[R.SAMPLE_TEACHER] == scored[0]["teacher"]
    # a re-run is served from the cache and gives the same pairs (ids keyed by the answer prompt)
    again = GenerateStage(cfg, RunContext(output_dir="", teachers=teachers, cache_dir=str(tmp_path / "cache")))
    again.setup()
    twice = [r for r in again.process_batch(rows) if not isinstance(r, Reject)]
    assert [(s[R.SAMPLE_ID], s[R.CHOSEN], s[R.REJECTED]) for s in twice] == \
        [(s[R.SAMPLE_ID], s[R.CHOSEN], s[R.REJECTED]) for s in samples]
    stage.close()
    again.close()


# --- the videosavi recipe on real media, and its three exports -----------------------------------------

def llamafactory_ranking_rules(dest: str, entry: dict) -> list[dict]:
    """LLaMA-Factory's documented rules for a sharegpt preference dataset (data/README.md "Preference
    Dataset"; data/converter.py SharegptDatasetConverter with the default sharegpt tags; mm_plugin's
    one `<video>` per video), checked on the file as `datasets.load_dataset("json")` reads it (what
    LLaMA-Factory's loader calls for a local file). Returns the records."""
    import datasets

    assert entry["formatting"] == "sharegpt" and entry["ranking"] is True
    cols = entry["columns"]
    tags = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
            "observation_tag": "observation", "function_tag": "function_call", **entry.get("tags", {})}
    accept = ((tags["user_tag"], tags["observation_tag"]), (tags["assistant_tag"], tags["function_tag"]))
    ds = datasets.load_dataset("json", data_files=os.path.join(dest, entry["file_name"]), split="train",
                               cache_dir=os.path.join(dest, "..", "hf_cache"))
    for rec in ds:
        msgs = rec[cols["messages"]]
        assert all(m[tags["role_tag"]] in accept[i % 2] for i, m in enumerate(msgs))
        assert len(msgs) % 2 == 1                                   # ranking: the prompt ends with the user
        for key in ("chosen", "rejected"):
            turn = rec[cols[key]]
            assert isinstance(turn, dict) and turn[tags["role_tag"]] in accept[-1] and turn[tags["content_tag"]]
        videos = rec[cols["videos"]]
        assert sum(m[tags["content_tag"]].count("<video>") for m in msgs) == len(videos) == 1
        assert all(os.path.isfile(os.path.join(dest, v)) for v in videos)   # media_dir = dataset_dir
    return list(ds)


@pytest.mark.slow
@pytest.mark.skipif(not L.have_smollm(), reason="SmolLM2 is not installed (make setup)")
def test_videosavi_recipe_builds_on_real_media_and_writes_three_preference_formats(smollm, tmp_path, in_process):
    import yaml

    from test_recipes import check_release_format, recipe_config, runnable, samples_and_exports
    from vdata.pipelines.runner import build
    from vdata.schemas.config import load_config

    recipe = runnable("videosavi")
    config = recipe_config("videosavi", tmp_path, teachers={"writer": L.openai_teacher(smollm, max_concurrency=2)})
    data = yaml.safe_load(config.read_text())
    gen = next(s["generate"] for s in data["stages"] if "generate" in s)
    gen["tasks"]["preference_pairs"].update(per_clip=1, candidates=3, temperatures=[0.2, 1.3])   # a quick build
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    result = build(load_config(config), progress=False)
    out = tmp_path / "out"
    assert result.rows > 0, result.rejects_by_reason
    samples, _ = samples_and_exports(out)
    pairs = [s for s in samples if s[R.TASK] == "preference_pairs"]
    assert pairs
    for s in pairs:   # chosen ≠ rejected, and the scores that ranked them are in the row
        assert s[R.CHOSEN] and s[R.REJECTED] and s[R.CHOSEN].strip() != s[R.REJECTED].strip()
        by_text = {c["text"]: c for c in s[R.PREFERENCE_CANDIDATES] if c["text"]}
        chosen, rejected = by_text[s[R.CHOSEN]], by_text[s[R.REJECTED]]
        assert chosen["rank"] == 0 and chosen["score"] >= rejected["score"] and rejected["rank"] > 0
        assert chosen["judge_score"] is not None or chosen["self_score"] is not None
    for fmt in {e["format"] for e in recipe.data["output"]["exports"]}:
        assert check_release_format(fmt, out / "exports" / fmt) > 0, f"{fmt}: no records written"
    lf = out / "exports" / "sharegpt_preference"
    info = json.loads((lf / "dataset_info.json").read_text())
    records = [r for entry in info.values() for r in llamafactory_ranking_rules(str(lf), entry)]
    swift = [json.loads(line) for f in (out / "exports" / "swift_preference").glob("*.jsonl")
             for line in f.read_text().splitlines()]
    trl = [json.loads(line) for f in (out / "exports" / "trl_preference").glob("*.jsonl")
           for line in f.read_text().splitlines()]
    assert len(records) == len(swift) == len(pairs) and 0 < len(trl) <= len(pairs)
    for r in records:
        assert r["chosen"]["value"] != r["rejected"]["value"]
    for r in swift:
        assert r["messages"][-1]["content"] != r["rejected_response"] and os.path.isfile(r["videos"][0])
    for r in trl:
        assert r["chosen"] != r["rejected"]
        assert sum(p["type"] == "image" for p in r["prompt"][0]["content"]) == len(r["images"])
        assert all((out / "exports" / "trl_preference" / i).is_file() for i in r["images"])


def test_spend_estimate_counts_candidates_critiques_and_the_judge():
    from vdata.teachers.spend import generate_spend

    cfg = GenerateConfig(teacher="w1", tasks={"preference_pairs": {
        "per_clip": 2, "candidates": 3, "teachers": ["w1", "w2"], "temperatures": [0.5], "judge": "j"}})
    rows = generate_spend(cfg, 4, (336, 336))
    by_teacher: dict = {}
    for r in rows:
        by_teacher[r["teacher"]] = by_teacher.get(r["teacher"], 0) + r["requests_per_row"]
    # candidates w1, w2, w1 per question (+ each one's self-critique), one judge request per question
    assert by_teacher == {"w1": 2 * 2 * 2, "w2": 2 * 1 * 2, "j": 2}


def test_vision_text_scores_from_a_tiny_clip_on_real_frames(tmp_path):
    """The vision–text score of each candidate: the tiny random CLIP (built offline) over the row's real
    frames. Deterministic, one per text, within 0..1; a row without frames gives no score (None), which
    the weighted mean then leaves out."""
    from types import SimpleNamespace

    from vdata.teachers.tiny_clip import build_tiny_clip

    model = str(build_tiny_clip(tmp_path / "tiny-clip"))
    spec = next(s for s in L.SPECS if s.name == "c04")
    row = L.clip_row(spec, L.render_spec(spec, str(tmp_path / "c04.mp4")))
    assert row[R.FRAMES]
    texts = ["A red ball rolls across the floor.", "Nothing happens.", "A red ball rolls across the floor."]
    stage = SimpleNamespace()
    first = vision_text_scores(stage, model, row, texts)
    again = vision_text_scores(SimpleNamespace(), model, row, texts)   # a fresh load gives the same scores
    assert first == again and len(first) == 3 and all(0.0 <= s <= 1.0 for s in first)
    assert first[0] == first[2]                                          # same text, same score
    assert len(stage.__dict__["_vision_text_models"]) == 1              # the model is loaded once per stage
    assert vision_text_scores(stage, model, {**row, R.FRAMES: []}, texts) == [None, None, None]


def test_tied_scores_make_no_pair():
    """Small judges often give every candidate one score. The pair would then be the first candidate against
    the last, by position alone (VideoSAVi's DPO pairs are the judge's preference), so it is a no_margin reject."""
    from vdata.stages.generate.preference import _pair

    dead = {"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0}}
    stage = GenerateStage(GenerateConfig(teacher="t", tasks={"preference_pairs": {}}), RunContext(output_dir="",
                                                                                                  teachers=dead))

    def group(*scores):
        cands = [{"text": f"answer {k}", "judge_score": s, "self_score": None, "vision_text_score": None,
                  "teacher": "t", "model": "x"} for k, s in enumerate(scores)]
        return {"candidates": cands, "index": 0, "question": "What happens?", "evidence": {}}

    base = {R.SAMPLE_ID: "s", R.CLIP_ID: "c", R.TASK: "preference_pairs"}
    (tied,) = _pair(stage, {}, [], group(0.0, 0.0, 0.0, 0.0), dict(base))
    assert isinstance(tied, Reject) and tied.reason == "no_margin" and "same score" in tied.message
    (pair,) = _pair(stage, {}, [], group(0.2, 0.9, 0.2), dict(base))
    assert not isinstance(pair, Reject) and pair[R.CHOSEN] == "answer 1" and pair[R.REJECTED] == "answer 2"
