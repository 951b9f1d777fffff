"""Preference pairs (generate `preference_pairs`, VideoSAVi): candidates from two teacher settings and
temperatures, ranked by a judge teacher and self-critique, written as chosen / rejected with every
candidate's scores; config errors name their key. Real generation on SmolLM2-135M (llama.cpp): the tiny
model's wording is not checked, only structure and the ranking invariants.
"""
from __future__ import annotations

from collections import Counter

import pytest

import labelled_set as L
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate import GenerateConfig, GenerateStage
from vdata.stages.generate.preference import VISION_TEXT_SCORERS

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
    # the vision–text scorer is a hook: naming one that is not registered is an error, not a silent skip
    assert "vision_text_scorer" in err({"vision_text_scorer": "clip"}) and "clip" not in VISION_TEXT_SCORERS
    stage = GenerateStage(GenerateConfig(teacher="t", tasks={"preference_pairs": {"judge": "nope"}}), RunContext(
        output_dir="", teachers={"t": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}}))
    with pytest.raises(ConfigError, match=r"tasks.preference_pairs: no teacher named 'nope'"):
        stage.setup()


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    d = tmp_path_factory.mktemp("pref-clips")
    return [L.clip_row(s, L.render_spec(s, str(d / f"{s.name}.mp4")), frames=False)
            for s in L.SPECS if s.name == "c04"]


@pytest.mark.skipif(not L.have_llama(), reason="llama.cpp not installed")
def test_pairs_from_two_writers_ranked_by_judge_and_self_critique(rows, llama, tmp_path):
    teachers = {"writer": L.openai_teacher(llama), "judge": L.openai_teacher(llama, max_concurrency=2)}
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
