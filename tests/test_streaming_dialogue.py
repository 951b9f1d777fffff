"""Streaming timed dialogue (generate `streaming_dialogue`, VideoLLM-online LIVE): a user query at time t,
assistant turns at the times of the events after it; teacher-free. Then the `videollm_online` recipe on a
real narrated video, its livechat export checked against the rules of VideoLLM-online's own loader
(data/ego4d/livechat.py) and its multi-turn LLaVA export against LLaVA's alternation.
"""
from __future__ import annotations

import json

import pytest

import labelled_set as L
from conftest import no_ray
from vdata.schemas import records as R
from vdata.schemas.config import ConfigError, parse_config
from vdata.stages.base import Reject, RunContext
from vdata.stages.generate import GenerateConfig, GenerateStage

SEGMENTS = [(2.0, 4.0, "A man opens the oven."), (4.0, 7.5, "He takes out three loaves."),
            (7.5, 9.0, "At 0:08 he sets them down to cool."),   # states a moment: its dialogue goes, as LIVE's filter does
            (9.0, 12.0, "He puts the loaves in a basket."), (12.0, 15.0, "He carries the basket outside.")]


def _row(segments=SEGMENTS, events=()) -> dict:
    return {R.CLIP_ID: "v1:video", R.VIDEO_ID: "v1", R.START_S: 0.0, R.END_S: 15.0, R.SAMPLE_SCOPE: R.SCOPE_VIDEO,
            R.CAPTION: "A baker at work.", R.DENSE_EVENTS: [{"start_s": a, "end_s": b, "description": t}
                                                            for a, b, t in events],
            R.ANNOTATIONS: {"segments": [{"start_s": a, "end_s": b, "text": t} for a, b, t in segments]}}


def _run(task: dict, rows, counters: dict | None = None) -> list:
    stage = GenerateStage(GenerateConfig(tasks={"streaming_dialogue": task}), RunContext(output_dir=""))
    stage.setup()
    out = stage.process_batch(rows)
    if counters is not None:
        counters.update(stage.counters)
    return out


CLEAN = [s for s in SEGMENTS if "0:08" not in s[2]]


def test_turns_follow_the_query_in_time_and_leak_no_times():
    counted: dict = {}
    out = _run({"per_clip": 2, "sources": ["segments"], "min_turns": 2}, [_row(CLEAN)], counted)
    assert not counted.get("streaming_items_naming_a_time")
    assert len(out) == 2 and not any(isinstance(r, Reject) for r in out)
    first, second = out
    for s in out:
        turns = s[R.TURNS]
        assert turns[0]["role"] == "user" and turns[0]["content"] == s[R.QUESTION] and turns[0]["time_s"] > 0
        assert all(t["role"] == "assistant" for t in turns[1:]) and len(turns) >= 3
        times = [t["time_s"] for t in turns]
        assert times == sorted(times)
        assert not any("seconds" in t["content"] for t in turns)
        # each reply is timed at the end of its segment (the moment it has been seen), never before the query
        ends = {t: b for a, b, t in SEGMENTS}
        assert all(t["time_s"] == ends[t["content"]] for t in turns[1:])
        assert [sp["end_s"] for sp in s[R.ANSWER_SPANS]] == times[1:]
        assert s[R.ANSWER].count("{{t:") == len(turns) - 1 and s[R.SAMPLE_TEACHER] is None
    assert first[R.TURNS][0]["time_s"] == 2.0 and second[R.TURNS][0]["time_s"] > first[R.TURNS][0]["time_s"]
    assert first[R.SAMPLE_ID] != second[R.SAMPLE_ID]
    # the same rows give the same dialogues (seeded query choice)
    again = _run({"per_clip": 2, "sources": ["segments"], "min_turns": 2}, [_row(CLEAN)])
    assert [r[R.TURNS] for r in again] == [r[R.TURNS] for r in out]
    # respond_at: start times each reply at its segment's start
    starts = _run({"sources": ["segments"], "respond_at": "start"}, [_row(CLEAN)])[0][R.TURNS]
    assert [t["time_s"] for t in starts[1:]] == [a for a, b, t in CLEAN]


def test_a_dialogue_whose_reply_states_a_time_is_rejected_whole():
    """LIVE's filter drops the whole annotation; leaving only the item out (as before) taught the model to stay
    silent through an event it saw."""
    counted: dict = {}
    kept, leaked = _run({"per_clip": 2, "sources": ["segments"], "max_turns": 2}, [_row()], counted)
    assert counted["streaming_items_naming_a_time"] == 1
    assert not isinstance(kept, Reject) and [t["content"] for t in kept[R.TURNS][1:]] == [t for _, _, t in SEGMENTS[:2]]
    assert isinstance(leaked, Reject) and leaked.reason == "time_in_reply" and "0:08" in leaked.message


def test_a_duration_in_the_videos_own_words_is_content_and_in_a_captioners_events_a_leak():
    """Speech, subtitles and annotated segments say how long things take ("bake it for 20 minutes"): that gives no
    time away (outside check h20: a cooking video's dialogue was dropped whole for it). A captioner's events are
    held to LIVE's filter, durations included."""
    said = [(2.0, 4.0, "Preheat the oven."), (4.0, 8.0, "Bake it for 20 minutes."), (8.0, 11.0, "Wait one second, please."),
            (11.0, 14.0, "Now slice the bread.")]
    counted: dict = {}
    out = _run({"sources": ["segments"]}, [_row(said)], counted)
    assert len(out) == 1 and not isinstance(out[0], Reject), out
    assert [t["content"] for t in out[0][R.TURNS][1:]] == [t for _, _, t in said]
    assert not counted.get("streaming_items_naming_a_time")
    out = _run({"sources": ["events"]}, [_row(events=said)])
    assert len(out) == 1 and isinstance(out[0], Reject) and out[0].reason == "time_in_reply"


def test_sources_in_order_and_too_few_events_is_a_reject():
    events = [(1.0, 3.0, "A dog runs in."), (3.0, 6.0, "The dog sits down.")]
    s = _run({"sources": ["events", "segments"]}, [_row(events=events)])[0]
    assert [t["content"] for t in s[R.TURNS][1:]] == [t for _, _, t in events]
    out = _run({"sources": ["events"], "min_turns": 3}, [_row(events=events)])
    assert len(out) == 1 and isinstance(out[0], Reject) and out[0].reason == "too_few_events"


def test_config_errors_name_the_key(tmp_path):
    base = {"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "out")}}
    for bad, key in [({"min_turns": 0}, "streaming_dialogue.min_turns"), ({"sources": ["tweets"]}, "sources"),
                     ({"min_turns": 4, "max_turns": 2}, "max_turns")]:
        with pytest.raises(ConfigError, match=key):
            parse_config({**base, "stages": [{"generate": {"tasks": {"streaming_dialogue": bad}}}]})


def test_rephrase_needs_a_teacher(tmp_path):
    base = {"input": [{"path": str(tmp_path)}], "output": {"dir": str(tmp_path / "out")}}
    with pytest.raises(ConfigError, match=r"teacher: required by task\(s\) \['streaming_dialogue'\]"):
        parse_config({**base, "stages": [{"generate": {"tasks": {"streaming_dialogue": {"rephrase": True}}}}]})


@pytest.mark.skipif(not L.have_smollm(), reason="SmolLM2 is not installed (make setup)")
def test_rephrased_replies_keep_their_times_and_leak_none(smollm):
    plain = _run({"sources": ["segments"]}, [_row(CLEAN)])[0]
    stage = GenerateStage(GenerateConfig(teacher="writer", max_tokens=200, tasks={"streaming_dialogue": {
        "sources": ["segments"], "rephrase": True}}), RunContext(output_dir="", teachers={"writer": L.openai_teacher(smollm)}))
    stage.setup()
    (out,) = stage.process_batch([_row(CLEAN)])
    stage.close()
    print(f"\n[rephrase smollm] {out.reason if isinstance(out, Reject) else [t['content'] for t in out[R.TURNS]]}")
    if isinstance(out, Reject):   # the tiny model may miscount its replies: a reject with the reason, never a crash
        assert out.reason in ("bad_reply", "teacher_error"), out.message
        return
    assert out[R.SAMPLE_TEACHER] == "writer" and out[R.SAMPLE_ID] != plain[R.SAMPLE_ID]
    assert [(t["role"], t["time_s"]) for t in out[R.TURNS]] == [(t["role"], t["time_s"]) for t in plain[R.TURNS]]
    assert out[R.TURNS][0] == plain[R.TURNS][0]                      # the user's query is not rewritten
    assert all(t["content"] and "second" not in t["content"].lower() and not set("[]{}") & set(t["content"])
               for t in out[R.TURNS])
    kept = sum(a["content"] == b["content"] for a, b in zip(out[R.TURNS][1:], plain[R.TURNS][1:]))
    assert kept >= stage.counters["rephrase_kept_original"]   # a rewrite may also equal the original


# --- the recipe on real media -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recipe_out(tmp_path_factory):
    no_ray()   # built in process, as a fresh `vdata build` of a few videos runs
    from test_recipes import recipe_config, runnable
    from vdata.pipelines.runner import build
    from vdata.schemas.config import load_config

    runnable("videollm_online")
    tmp = tmp_path_factory.mktemp("videollm_online")
    result = build(load_config(recipe_config("videollm_online", tmp, one_video=False)), progress=False)
    assert result.rows > 0, result.rejects_by_reason
    return tmp / "out"


def test_livechat_export_passes_the_videollm_online_loader_rules(recipe_out):
    (f,) = (recipe_out / "exports" / "livechat").glob("*_livechat.json")
    annos = json.loads(f.read_text())
    assert annos
    for anno in annos:   # data/ego4d/livechat.py: what it keeps of an annotation
        conv, duration = anno["conversation"], anno["duration"]
        first = conv[0]
        assert first["role"] == "user" and 0 < first["time"] <= duration and first["content"]
        assert all(b["time"] >= a["time"] for a, b in zip(conv, conv[1:]))   # it stops at a time going back
        assert all(m["time"] <= duration for m in conv)
        assert [m["role"] for m in conv[1:]] == ["assistant"] * (len(conv) - 1)
        assert (f.parent / anno["video"]).exists()


def test_llava_dialogue_alternates_and_carries_the_times(recipe_out):
    (f,) = (recipe_out / "exports" / "llava_dialogue").glob("*_dialogue.json")
    livechat = {a["id"]: a for a in json.loads(next((recipe_out / "exports" / "livechat").glob("*.json")).read_text())}
    records = json.loads(f.read_text())
    assert records and {r["id"] for r in records} == set(livechat)
    for r in records:
        conv = r["conversations"]
        assert [m["from"] for m in conv] == ["human", "gpt"] * (len(conv) // 2)
        assert conv[0]["value"].startswith("<image>\n") and sum(m["value"].count("<image>") for m in conv) == 1
        replies = [m for m in livechat[r["id"]]["conversation"] if m["role"] == "assistant"]
        gpt = [m["value"] for m in conv if m["from"] == "gpt"]
        assert len(gpt) == len(replies)
        for text, reply in zip(gpt, replies):
            assert text.endswith(reply["content"]) and text != reply["content"]   # its time opens the turn


def test_overlapping_events_are_spoken_in_time_order():
    """Events that overlap (one from 5 to 11 s, one from 6 to 10 s): each reply is spoken when its event has
    been seen, so the 10 s event comes before the 11 s one; the turns' times never go back."""
    overlapping = [(2.0, 3.0, "A man walks in."), (5.0, 11.0, "He kneads the dough."), (6.0, 10.0, "Flour falls."),
                   (12.0, 14.0, "He leaves.")]
    (s,) = _run({"sources": ["segments"], "min_turns": 2, "max_turns": 8}, [_row(overlapping)])
    times = [t["time_s"] for t in s[R.TURNS]]
    assert times == sorted(times) and [t["content"] for t in s[R.TURNS][1:]] == [
        "A man walks in.", "Flour falls.", "He kneads the dough.", "He leaves."]
    assert [sp["end_s"] for sp in s[R.ANSWER_SPANS]] == times[1:]


def test_livechat_writes_replies_on_one_loader_frame_as_one_message():
    """Outside check: VideoLLM-online's loader puts messages on its 2-fps grid and keeps one assistant message
    per frame: two replies at 6.0 s (or at 6.1 and 6.3 s) lost one of them at load."""
    from types import SimpleNamespace

    from vdata.exporters.livechat import timed_turns

    tf = SimpleNamespace(local=lambda t: t, render_text=lambda text: text)

    def item(times):
        turns = [{"role": "user", "content": "Narrate.", "time_s": 1.0}]
        turns += [{"role": "assistant", "content": f"r{k}", "time_s": t} for k, t in enumerate(times)]
        return {R.TURNS: turns}

    same = timed_turns(item([6.0, 6.0, 9.0]), tf)
    assert same == [("user", "Narrate.", 1.0), ("assistant", "r0. r1", 6.0), ("assistant", "r2", 9.0)]
    assert timed_turns(item([6.1, 6.3]), tf)[1:] == [("assistant", "r0. r1", 6.3)]   # Goal-Step steps have no period
    assert [t for _, _, t in timed_turns(item([6.0, 6.5, 7.2]), tf)[1:]] == [6.0, 6.5, 7.2]   # three frames
    said = {R.TURNS: [{"role": "user", "content": "Go.", "time_s": 1.0}, {"role": "assistant", "content": "C opens it.", "time_s": 6.0},
                      {"role": "assistant", "content": "C closes it.", "time_s": 6.0}]}
    assert timed_turns(said, tf)[1:] == [("assistant", "C opens it. C closes it.", 6.0)]


def test_a_narration_that_comes_back_after_another_event_is_a_turn_of_its_own():
    """Outside check h24 F7: the second "C stirs the pot." (after "C adds salt.") was dropped, training the
    model to stay silent through an event it saw; VideoLLM-online's narration stream drops a text only
    where it repeats the one just before it."""
    segments = [(0.5, 2.0, "C stirs the pot."), (2.0, 4.0, "C adds salt."), (4.0, 6.0, "C stirs the pot."),
                (6.0, 6.5, "C stirs the pot."), (6.5, 7.5, "C serves the food.")]
    out = _run({"sources": ["segments"], "min_turns": 2, "respond_at": "start"}, [_row(segments)])
    replies = [(t["time_s"], t["content"]) for t in out[0][R.TURNS] if t["role"] == "assistant"]
    first_asked = out[0][R.TURNS][0]["time_s"]
    expected = [(a, t) for a, b, t in segments if a >= first_asked and (a, t) != (6.0, "C stirs the pot.")]
    assert replies == expected and ("4.0", "C stirs the pot.") not in replies
    assert (4.0, "C stirs the pot.") in replies


def test_an_ego4d_narration_is_answered_at_its_own_moment_not_its_windows_edge():
    """Outside check h24 F14: narrations at 0.8 / 1.6 / 3.2 s (EgoClip windows of ±0.5 s around them) were
    answered at the windows' ends, 0.5 s late; VideoLLM-online answers at the narration's time."""
    moments = [(0.8, "C picks up a knife."), (1.6, "C cuts the onion."), (3.2, "C puts the knife down.")]
    segments = [(t - 0.5, t + 0.5, text) for t, text in moments]
    row = dict(_row(segments), **{R.SOURCE_META: json.dumps({"segments": [
        {"start_s": a, "end_s": b, "text": text, "time_s": t} for (a, b, text), (t, _) in zip(segments, moments)]})})
    for respond_at in ("end", "start"):
        out = _run({"sources": ["segments"], "min_turns": 2, "respond_at": respond_at}, [row])
        replies = [(t["time_s"], t["content"]) for t in out[0][R.TURNS] if t["role"] == "assistant"]
        assert replies == [(t, text) for t, text in moments if t >= out[0][R.TURNS][0]["time_s"]], (respond_at, replies)
