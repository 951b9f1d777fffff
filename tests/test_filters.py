"""The sample filters on a labelled set (tests/labelled_set.py): synthetic clips whose content is known by
construction, with injected false claims, blind-answerable questions, bad timestamps, missing labels and
near-duplicates. Every filter's precision and recall is printed (run with -s to see them) and held to a
floor that a broken filter (keep all / drop all / random) cannot reach.

The deterministic filters (timestamps, labels, tier 1 of the claim check, dedup) run without a model
server. The teacher-backed ones run on the real local engines: SmolLM2-135M-Instruct on vLLM's CPU engine or
llama.cpp (text judge, blind answerer, correction) and a tiny random Qwen2.5-VL on CPU vLLM (the frames-to-a-VLM path,
where only structure can be asserted).
"""
from __future__ import annotations

import pytest

import labelled_set as L
from vdata.schemas import records as R
from vdata.stages.base import Reject, RunContext
from vdata.stages.blind import BlindConfig, BlindStage, answer_leaked, token_f1
from vdata.stages.dedup import DedupConfig, DedupStage, normalise
from vdata.stages.labels import LabelsConfig, LabelsStage, contains_label
from vdata.stages.timestamps import TimestampsConfig, TimestampsStage
from vdata.stages.verify_claims import (REFUTED, SUPPORTED, UNSUPPORTED, VERDICTS, Evidence, VerifyClaimsConfig,
                                        VerifyClaimsStage, judged, match_claim, quote_match, split_claims)
from vdata.stages.wellformed import WellformedConfig, WellformedStage, language_score, prompt_overlap

FILTERED = ("hallucination", "contradicted")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("labelled")
    out = []
    for spec in L.SPECS:
        path = L.render_spec(spec, str(d / f"{spec.name}.mp4"))
        out.append((spec, L.clip_row(spec, path)))
    return out


def _stage(cls, cfg, teachers=None, cache_dir=""):
    stage = cls(cfg, RunContext(output_dir="", teachers=teachers or {}, cache_dir=cache_dir))
    stage.setup()
    return stage


def _dropped(results) -> dict:
    """sample_id -> reject reason (None when kept)."""
    return {(r.row if isinstance(r, Reject) else r)[R.SAMPLE_ID]: (r.reason if isinstance(r, Reject) else None)
            for r in results}


# --- timestamps ------------------------------------------------------------------------------------

def test_timestamp_filter_on_labelled_set(clips):
    items = L.timestamp_samples(clips)
    stage = _stage(TimestampsStage, TimestampsConfig())
    results = stage.process_batch([row for row, _, _ in items])
    assert len(results) == len(items)
    verdict = _dropped(results)
    flags = [verdict[row[R.SAMPLE_ID]] == "bad_timestamps" for row, _, _ in items]
    p, r = L.report("timestamps", flags, [bad for _, bad, _ in items])
    assert p == 1.0 and r == 1.0     # deterministic rule: nothing less is acceptable
    for res in results:
        row = res.row if isinstance(res, Reject) else res
        assert row[R.V_TIMESTAMPS_VALID] is (not isinstance(res, Reject))
        if isinstance(res, Reject):
            assert res.detail["checked"] >= 1 and res.detail["examples"] and "bounds" in res.message
    # transcript spans that cross the clip's start are fine (speech runs across cuts)
    kinds = {row[R.SAMPLE_ID]: k for row, _, k in items}
    assert all(verdict[s] is None for s, k in kinds.items() if k == "inside")
    # scope video: a span outside the clip but inside the video is valid there
    video_stage = _stage(TimestampsStage, TimestampsConfig(scope="video"))
    outside = [row for row, _, k in items if k == "outside"]
    assert all(not isinstance(x, Reject) for x in video_stage.process_batch(outside))
    # score only: nothing dropped, scores still written
    keep_all = _stage(TimestampsStage, TimestampsConfig(drop_invalid=False)).process_batch([row for row, _, _ in items])
    assert not any(isinstance(x, Reject) for x in keep_all)
    assert sum(not x[R.V_TIMESTAMPS_VALID] for x in keep_all) == sum(bad for _, bad, _ in items)


# --- labels ----------------------------------------------------------------------------------------

def test_label_containment_on_labelled_set(clips):
    assert contains_label("A man plays the guitar on stage", "playing guitar")
    assert contains_label("two red circles", "red circle") and not contains_label("a red square", "red circle")
    assert contains_label("She is dancing", "dance") and contains_label("He runs fast", "running")
    items = L.label_samples(clips)
    stage = _stage(LabelsStage, LabelsConfig())
    results = stage.process_batch([row for row, _, _ in items])
    verdict = _dropped(results)
    by_id = {(r.row if isinstance(r, Reject) else r)[R.SAMPLE_ID]: (r.row if isinstance(r, Reject) else r) for r in results}
    for row, expected, kind in items:
        assert by_id[row[R.SAMPLE_ID]][R.V_LABEL_CONTAINED] is expected, (kind, row[R.ANSWER])
    flags = [verdict[row[R.SAMPLE_ID]] == "label_missing" for row, _, _ in items]
    p, r = L.report("labels", flags, [exp is False for _, exp, _ in items])
    assert p == 1.0 and r == 1.0
    # a source without labels: nothing to check, nothing dropped
    unlabelled = dict(items[1][0], **{R.SOURCE_META: "{}"})
    out = stage.process_batch([unlabelled])[0]
    assert not isinstance(out, Reject) and out[R.V_LABEL_CONTAINED] is None


# --- dedup -----------------------------------------------------------------------------------------

def test_dedup_on_labelled_set(clips):
    assert normalise("What colour is the Circle?!") == normalise("what colour is circle")
    items = L.duplicate_samples(clips)
    stage = _stage(DedupStage, DedupConfig(index="local", similarity_max=0.9))
    # arrival in two batches: the index carries over between them
    rows = [row for row, _, _ in items]
    results = stage.process_batch(rows[:5]) + stage.process_batch(rows[5:])
    verdict = _dropped(results)
    flags = [verdict[row[R.SAMPLE_ID]] == "duplicate" for row, _, _ in items]
    p, r = L.report("dedup (dataset scope, MiniLM ≥ 0.90)", flags, [dup for _, dup, _ in items])
    assert p == 1.0 and r >= 0.75
    for res in results:
        if isinstance(res, Reject):
            assert res.row[R.V_DUPLICATE_OF] in {row[R.SAMPLE_ID] for row in rows} and res.detail["kind"] in ("exact", "near")
    exact = next(row for row, _, k in items if k == "exact")
    assert verdict[exact[R.SAMPLE_ID]] == "duplicate"
    # exact-only mode still catches the normalised duplicate, never a paraphrase
    exact_stage = _stage(DedupStage, DedupConfig(index="local", similarity_max=None))
    exact_verdict = _dropped(exact_stage.process_batch(rows))
    assert [k for row, _, k in items if exact_verdict[row[R.SAMPLE_ID]]] == ["exact"]
    # video scope: the same paraphrase in another video is not a duplicate any more
    video_stage = _stage(DedupStage, DedupConfig(index="local", scope="video", similarity_max=0.9))
    video_verdict = _dropped(video_stage.process_batch(rows))
    other_video = next(row for row, _, k in items if k == "paraphrase_other_video")
    assert video_verdict[other_video[R.SAMPLE_ID]] is None
    # the same block again (a retried task) is not a duplicate of itself
    assert all(v is None for s, v in _dropped(stage.process_batch(rows[:1])).items())


def test_dedup_shared_actor_index_across_workers(clips, ray_local, tmp_path):
    """Two workers of one run share the index actor: the second sees what the first admitted."""
    items = L.duplicate_samples(clips)
    ctx = RunContext(output_dir=str(tmp_path), run_id="dedup-test-run")
    first = DedupStage(DedupConfig(index="actor"), ctx)
    second = DedupStage(DedupConfig(index="actor"), ctx)
    first.setup()
    second.setup()
    a = first.process_batch([items[0][0]])
    b = second.process_batch([next(row for row, _, k in items if k == "paraphrase")])
    assert not isinstance(a[0], Reject)
    assert isinstance(b[0], Reject) and b[0].row[R.V_DUPLICATE_OF] == items[0][0][R.SAMPLE_ID]
    import ray

    ray.kill(first.index.actor)


# --- claims: tier 1 (deterministic evidence matching) ------------------------------------------------

def test_claim_splitting_and_matching_rules():
    assert split_claims("A red square moves left, and then a blue circle appears. The word HELLO shows; it is bright.") == [
        "A red square moves left", "then a blue circle appears", "The word HELLO shows", "it is bright"]
    ev = Evidence.of(["Two red squares on a blue background. The word OPEN is written at the top."],
                     ["welcome to the show", "Maria bakes three loaves of bread every morning."])
    assert match_claim("There are two red squares.", ev)[0] == SUPPORTED
    assert match_claim("There are three red squares.", ev)[0] == REFUTED       # another count
    assert match_claim("A green square.", ev)[0] == REFUTED                    # a red square, not a green one
    assert match_claim("A blue square.", ev)[0] == REFUTED       # blue is in the evidence, but not as a square
    assert match_claim("The sign says CLOSED.", ev)[0] == UNSUPPORTED          # absent, not contradicted
    assert match_claim("The speaker says welcome to the show.", ev)[0] == SUPPORTED
    assert match_claim("The speaker says goodbye everyone.", ev)[0] == UNSUPPORTED
    assert match_claim("There is no green square.", ev)[0] is None  # a negation the evidence neither states nor denies
    assert match_claim("A man walks a dog.", ev)[0] is None
    # contradictions: the same statement with another polarity, number or name
    assert match_claim("Maria does not bake bread in the morning.", ev)[0] == REFUTED
    assert match_claim("Maria bakes 4 loaves of bread every morning.", ev)[0] == REFUTED
    assert match_claim("Anna bakes three loaves of bread every morning.", ev)[0] == REFUTED
    assert match_claim("Maria bakes 3 loaves of bread.", ev)[0] == SUPPORTED   # digits and number words agree
    assert match_claim("Anna sings a song.", ev)[0] == UNSUPPORTED             # a name the evidence never mentions


def test_hallucination_filter_tier1_on_labelled_set(clips):
    items = L.claim_samples(clips)
    stage = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher=None, min_supported_ratio=0.75))
    results = stage.process_batch([row for row, _, _ in items])
    verdict = _dropped(results)
    flags = [verdict[row[R.SAMPLE_ID]] in FILTERED for row, _, _ in items]
    truth = [false for _, false, _ in items]
    print()
    p, r = L.report("claims tier 1 (evidence matching + off-topic), all", flags, truth)
    assert p >= 0.95 and r >= 0.95
    check = [i for i, (_, _, k) in enumerate(items) if k == "checkable"]
    p, r = L.report("claims tier 1, string-checkable", [flags[i] for i in check], [truth[i] for i in check])
    assert p >= 0.95 and r >= 0.95
    free = [i for i, (_, _, k) in enumerate(items) if k == "free"]
    p, r = L.report("claims tier 1, free text (MiniLM off-topic check)", [flags[i] for i in free], [truth[i] for i in free])
    assert p >= 0.8 and r >= 0.8
    # without the off-topic check, free-text claims are undecided and kept (`undecided: supported`)
    plain = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher=None, relevance_min=None))
    plain_verdict = _dropped(plain.process_batch([items[i][0] for i in free]))
    assert not any(plain_verdict.values())
    for res in results:
        row = res.row if isinstance(res, Reject) else res
        assert row[R.V_CLAIMS] and 0.0 <= row[R.V_SUPPORTED_RATIO] <= 1.0
        assert all(c["note"] for c in row[R.V_CLAIMS])
    multi = [row for row, _, _ in items if ". There is also" in row[R.ANSWER]]
    assert multi and all(verdict[row[R.SAMPLE_ID]] in FILTERED for row in multi)
    mres = {(r.row if isinstance(r, Reject) else r)[R.SAMPLE_ID]: r for r in results}
    assert mres[multi[0][R.SAMPLE_ID]].row[R.V_SUPPORTED_RATIO] == pytest.approx(0.5)
    # out-of-scope tasks (a teacher-free label MCQ: the labels are the input's own) pass untouched with null scores
    labels = dict(items[0][0], **{R.TASK: "label_mcq", R.SAMPLE_ID: "lm"})
    out = stage.process_batch([labels])[0]
    assert not isinstance(out, Reject) and out[R.V_SUPPORTED_RATIO] is None


# --- claims with the SmolLM2 judge (tier 2) -----------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not L.have_smollm(), reason="SmolLM2 is not installed (make setup)")
def test_hallucination_filter_with_smollm_judge(clips, smollm, tmp_path):
    items = L.claim_samples(clips)
    teachers = {"judge": L.openai_teacher(smollm, sampling={"max_tokens": 24})}
    truth = [false for _, false, _ in items]
    free = [i for i, (_, _, k) in enumerate(items) if k == "free"]
    # The full rule: tier 1 (evidence matching, off-topic check), then the judge for what is left.
    stage = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher="judge", min_supported_ratio=0.75), teachers,
                   cache_dir=str(tmp_path))
    results = stage.process_batch([row for row, _, _ in items])
    verdict = _dropped(results)
    flags = [verdict[row[R.SAMPLE_ID]] in FILTERED for row, _, _ in items]
    print()
    p, r = L.report("claims tier 1 + SmolLM2 judge, all", flags, truth)
    # 0.85: the judge's verdict now counts only with a quote found in the evidence, and SmolLM2-135M often
    # quotes loosely, so a few true claims fall to `unsupported` (measured 0.88 on this set)
    assert p >= 0.85 and r >= 0.85
    by_id = {(x.row if isinstance(x, Reject) else x)[R.SAMPLE_ID]: (x.row if isinstance(x, Reject) else x) for x in results}
    asked = [c for row in by_id.values() for c in row[R.V_CLAIMS] if c["note"].startswith("judge")]
    assert asked, "the claims tier 1 leaves open go to the judge"
    assert all(c["verdict"] in VERDICTS and c["supported"] == (c["verdict"] == SUPPORTED) for c in asked)
    # What the 135M judge contributes on its own: the free-text claims with the off-topic check off.
    alone = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher="judge", relevance_min=None, min_supported_ratio=0.75),
                   teachers, cache_dir=str(tmp_path))
    alone_results = alone.process_batch([items[i][0] for i in free])
    alone_verdict = _dropped(alone_results)
    L.report("claims SmolLM2 judge alone (free-text claims)",
             [alone_verdict[items[i][0][R.SAMPLE_ID]] in FILTERED for i in free], [truth[i] for i in free])
    for res in alone_results:   # every free-text claim really went to the judge and got a verdict
        row = res.row if isinstance(res, Reject) else res
        assert all(c["note"].startswith("judge") for c in row[R.V_CLAIMS]), row[R.V_CLAIMS]
    assert stage.teacher.stats()["failures"] == 0 and alone.teacher.stats()["failures"] == 0


@pytest.mark.skipif(not L.have_smollm(), reason="SmolLM2 is not installed (make setup)")
def test_a_claim_left_unsupported_by_a_judge_that_may_answer_later_is_retried(clips, smollm):
    """A judge answering 500, or a body cut off or garbled on the way (h25 F6: a transport failure, not the
    model's), leaves its claims undecided: the sample rejected for them is marked for the next run to redo;
    a judge whose well-formed reply holds no answer (cut inside its reasoning) is a real failure, final."""
    from fault_proxy import FaultProxy

    items = L.claim_samples(clips)
    free = [row for row, _, k in items if k == "free"][:3]
    for fault, marked in (("error_500", True), ("invalid_json", True), ("reasoning_cut", False)):
        with FaultProxy(smollm.base_url, faults={fault: 1.0}) as proxy:
            judge = dict(L.openai_teacher(smollm, sampling={"max_tokens": 24}), base_url=proxy.base_url,
                         max_retries=0, schema_retries=0)
            stage = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher="judge", relevance_min=None,
                                                                 undecided="unsupported"), {"judge": judge})
            results = stage.process_batch(free)
            assert proxy.counts[fault] >= len(free)
        assert all(isinstance(r, Reject) for r in results), results
        assert all(bool(r.detail.get(R.RETRY_ON_RESUME)) is marked for r in results), (fault, results[0].detail)
        assert all("judge failed" in " ".join(r.detail["notes"]) for r in results)


@pytest.mark.slow
@pytest.mark.skipif(not L.have_smollm(), reason="SmolLM2 is not installed (make setup)")
def test_correction_pass_rewrites_or_rejects(clips, smollm):
    spec, clip = clips[0]
    wrong = f"The clip shows a green {spec.shape} on a {spec.background} background."
    rows = [L.sample_row(clip, "fix-1", f"What is shown?", wrong),
            L.sample_row(clip, "fix-2", "What is the background?", f"The background is {spec.background}.")]
    teachers = {"fixer": L.openai_teacher(smollm)}
    stage = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher="fixer", correct=True, min_supported_ratio=1.0), teachers)
    before = stage.teacher.stats()["requests"]
    out = {(_r.row if isinstance(_r, Reject) else _r)[R.SAMPLE_ID]: _r for _r in stage.process_batch(rows)}
    assert stage.teacher.stats()["requests"] > before    # the rewrite was asked for
    assert not isinstance(out["fix-2"], Reject) and out["fix-2"][R.ANSWER] == rows[1][R.ANSWER]
    fixed = out["fix-1"]
    if isinstance(fixed, Reject):      # the 135M model's rewrite did not pass the same check
        assert fixed.reason in FILTERED
    else:                              # it did: the stored answer is the rewrite, and its claims all hold
        assert fixed[R.ANSWER] != wrong and fixed[R.V_SUPPORTED_RATIO] == 1.0
        assert all("[after correction]" in c["note"] for c in fixed[R.V_CLAIMS])
    print(f"\n[correction] {'rejected' if isinstance(fixed, Reject) else 'rewritten: ' + fixed[R.ANSWER]!r}")


# --- blind answerability ---------------------------------------------------------------------------

def test_blind_attempts_rotate_the_correct_option(clips):
    stage = BlindStage(BlindConfig(teacher="x"), RunContext(output_dir=""))
    from vdata.prompts import load_prompt

    stage.prompts = {n: load_prompt("verify", n) for n in ("blind_mcq", "blind_open")}
    stage.teacher = object()   # only request building is exercised here
    row = L.sample_row(clips[0][1], "b", "What colour?", "red", task="mcq",
                       **{R.OPTIONS: ["blue", "red", "green", "yellow"], R.ANSWER_INDEX: 1})
    tries = stage.attempts_for(row)
    assert sorted(how[2] for _, how in tries) == [0, 1, 2, 3]     # the answer sits at every place once
    for req, (_, answer, place) in tries:
        text = req.messages[-1].content[-1].text
        listed = [line[2:] for line in text.splitlines() if line.startswith("- ")]
        assert answer == "red" and listed[place] == "red" and sorted(listed) == sorted(row[R.OPTIONS])
        assert req.json_schema["properties"]["answer"]["enum"] == listed
    assert answer_leaked("What colour is the red circle?", "red") and not answer_leaked("What colour is it?", "red")
    assert token_f1("two yellow stars", "two stars") > 0.6 and token_f1("blue", "red") == 0.0
    assert stage.attempts_for(dict(row, **{R.TASK: "grounding"})) == []


def test_blind_filter_without_teacher_prior_and_leak(clips):
    """The model-free answerers: the MiniLM embedding prior (MCQs) and the leak check (open questions)."""
    items = L.blind_samples(clips)
    stage = _stage(BlindStage, BlindConfig(teacher=None, max_blind_correct=0.5))
    results = stage.process_batch([row for row, _, _ in items])
    verdict = _dropped(results)
    flags = [verdict[row[R.SAMPLE_ID]] == "blind_answerable" for row, _, _ in items]
    truth = [pos for _, pos, _ in items]
    print()
    p, r = L.report("blind, embedding prior + leak check, all", flags, truth)
    for kind in ("prior_mcq", "leak_open", "video_mcq", "video_open"):
        idx = [i for i, (_, _, k) in enumerate(items) if k == kind]
        L.report(f"blind, embedding prior + leak check, {kind}", [flags[i] for i in idx], [truth[i] for i in idx])
    assert p >= 0.9 and r >= 0.8
    for res in results:
        if isinstance(res, Reject):
            assert res.row[R.V_BLIND_CORRECT] == 1.0 and (res.detail["leak"] or res.detail["prior_margin"] >= 0.1)


@pytest.mark.slow
@pytest.mark.skipif(not L.have_smollm(), reason="SmolLM2 is not installed (make setup)")
def test_blind_filter_with_smollm_on_labelled_set(clips, smollm, tmp_path):
    items = L.blind_samples(clips)
    teachers = {"blind": L.openai_teacher(smollm)}
    truth = [pos for _, pos, _ in items]
    video = [i for i, (_, _, k) in enumerate(items) if k.startswith("video")]
    print()
    # what the 135M text-only teacher contributes on its own (prior and leak check off)
    alone = _stage(BlindStage, BlindConfig(teacher="blind", prior_model=None, leak_check=False, max_blind_correct=0.5),
                   teachers, cache_dir=str(tmp_path))
    alone_results = alone.process_batch([row for row, _, _ in items])
    alone_verdict = _dropped(alone_results)
    alone_flags = [alone_verdict[row[R.SAMPLE_ID]] == "blind_answerable" for row, _, _ in items]
    L.report("blind, SmolLM2 teacher alone, all", alone_flags, truth)
    for kind in ("prior_mcq", "video_mcq"):
        idx = [i for i, (_, _, k) in enumerate(items) if k == kind]
        L.report(f"blind, SmolLM2 teacher alone, {kind}", [alone_flags[i] for i in idx], [truth[i] for i in idx])
    rows = {(x.row if isinstance(x, Reject) else x)[R.SAMPLE_ID]: (x.row if isinstance(x, Reject) else x) for x in alone_results}
    for row, _, kind in items:
        share = rows[row[R.SAMPLE_ID]][R.V_BLIND_CORRECT]
        assert share is not None and 0.0 <= share <= 1.0
        if kind == "video_mcq":   # one attempt per place of the answer: shares are multiples of 1/4
            assert share * 4 == pytest.approx(round(share * 4))
    # option rotation takes away order habits: video-specific questions mostly survive the teacher
    assert sum(alone_flags[i] for i in video) <= len(video) // 4
    assert alone.teacher.stats()["failures"] == 0
    # the full rule: teacher + embedding prior + leak check (the teacher's replies now come from the cache)
    full = _stage(BlindStage, BlindConfig(teacher="blind", max_blind_correct=0.5), teachers, cache_dir=str(tmp_path))
    verdict = _dropped(full.process_batch([row for row, _, _ in items]))
    flags = [verdict[row[R.SAMPLE_ID]] == "blind_answerable" for row, _, _ in items]
    p, r = L.report("blind, teacher + embedding prior + leak check, all", flags, truth)
    assert p >= 0.8 and r >= 0.8
    assert full.teacher.stats()["cache_hits"] == alone.teacher.stats()["requests"]


# --- the frames path: a vision teacher (tiny random Qwen2.5-VL on CPU vLLM) judges with the frames ---

@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not L.have_vllm(), reason="vLLM not installed")
def test_claim_judge_with_frames_on_vlm(clips, vlm_server):
    teachers = {"vlm": L.openai_teacher(vlm_server, sampling={"max_tokens": 16})}
    items = [x for x in L.claim_samples(clips[:3]) if x[2] == "free"]
    # off-topic check off: every free-text claim goes to the judge
    stage = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher="vlm", use_frames=True, max_frames=3,
                                                         relevance_min=None, min_supported_ratio=None), teachers)
    text_only = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher="vlm", relevance_min=None,
                                                             min_supported_ratio=None), teachers)
    with_frames = stage.process_batch([row for row, _, _ in items])
    without = text_only.process_batch([row for row, _, _ in items])
    for res in with_frames:
        assert not isinstance(res, Reject)
        assert res[R.V_CLAIMS] and all(c["note"].startswith("judge") for c in res[R.V_CLAIMS]), res[R.V_CLAIMS]
    a, b = stage.teacher.stats(), text_only.teacher.stats()
    # a random VLM's free-text quote can run past max_tokens; a cut reply is never repaired into a verdict,
    # so some requests fail, and the claims they were about stay judged-unsupported (checked above)
    assert a["requests"] > 0 and b["requests"] > 0
    # the frames really reached the model: three images cost prompt tokens the text-only judge did not pay
    assert a["prompt_tokens"] > b["prompt_tokens"] + 3 * len(items)
    assert len(without) == len(items)


def test_false_question_premise_is_caught(clips):
    spec, clip = clips[0]   # a red circle: no star anywhere
    rows = [L.sample_row(clip, "premise-bad", "What colour is the star?", spec.colour),
            L.sample_row(clip, "premise-ok", f"What colour is the {spec.shape}?", spec.colour)]
    out = _dropped(_stage(VerifyClaimsStage, VerifyClaimsConfig()).process_batch(rows))
    assert out == {"premise-bad": "hallucination", "premise-ok": None}


# --- a sample is never evidence for itself ------------------------------------------------------------

def test_caption_samples_are_unverified_without_a_frame_verifier(clips):
    spec, clip = clips[0]
    noise = "zq blorp the wug tavel oop frang"          # what a random-weight VLM writes
    caption = dict(L.sample_row(dict(clip, **{R.CAPTION: noise}), "cap", "Describe this video in detail.", noise,
                                task="caption"))
    stage = _stage(VerifyClaimsStage, VerifyClaimsConfig(relevance_min=None, undecided="unsupported"))
    (cap,) = stage.process_batch([caption])
    assert not isinstance(cap, Reject)
    assert cap[R.V_STATUS] == R.STATUS_UNVERIFIED and cap[R.V_CLAIMS] == [] and cap[R.V_SUPPORTED_RATIO] is None
    # what a frame verifier would get as text evidence for it: everything but the caption itself
    evidence, _ = stage.evidence_of(caption)
    assert "blorp" not in evidence.text and spec.speech in evidence.text
    # a source the config leaves out is no evidence either: the transcript alone does not name the colour
    only_speech = _stage(VerifyClaimsStage, VerifyClaimsConfig(evidence_sources=["transcript"], relevance_min=None,
                                                               undecided="unsupported"))
    row = L.sample_row(clip, "colour", f"What colour is the {spec.shape}?", f"The {spec.shape} is {spec.colour}.")
    res = only_speech.process_batch([row])[0]
    assert isinstance(res, Reject) and res.row[R.V_SUPPORTED_RATIO] == 0.0


# --- contradictions on narrated videos (espeak-ng speech, Whisper tiny.en transcripts) -------------------

needs_espeak = pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None, reason="espeak-ng not installed (apt)")


@pytest.fixture(scope="module")
def narrated(tmp_path_factory):
    return L.narrated_clips(str(tmp_path_factory.mktemp("narrated")))


@needs_espeak
def test_perturbed_script_facts_are_refuted_by_tier1(narrated):
    """True sentences from the scripts against their Whisper transcript, and perturbations of them: every
    negation perturbation is refuted by the deterministic tier, no true sentence is."""
    items = L.narrated_claim_samples(narrated)
    stage = _stage(VerifyClaimsStage, VerifyClaimsConfig(teacher=None, relevance_min=None, min_supported_ratio=0.75))
    results = stage.process_batch([row for row, _, _ in items])
    rows = {(x.row if isinstance(x, Reject) else x)[R.SAMPLE_ID]: x for x in results}
    verdicts = {sid: [c["verdict"] for c in (x.row if isinstance(x, Reject) else x)[R.V_CLAIMS]] for sid, x in rows.items()}
    print()
    for kind in ("negation", "number", "name"):
        picked = [row for row, _, k in items if k == kind]
        refuted = [row for row in picked if REFUTED in verdicts[row[R.SAMPLE_ID]]]
        print(f"[narrated tier 1] {kind}: {len(refuted)}/{len(picked)} refuted")
        assert picked
        if kind == "negation":
            assert len(refuted) == len(picked), [r[R.ANSWER] for r in picked if r not in refuted]
        else:
            assert len(refuted) >= 0.75 * len(picked)
    true_rows = [row for row, _, k in items if k == "true"]
    assert not any(REFUTED in verdicts[row[R.SAMPLE_ID]] for row in true_rows)
    flags = [isinstance(rows[row[R.SAMPLE_ID]], Reject) for row, _, _ in items]
    p, r = L.report("verify_claims tier 1 on narrated facts vs perturbations", flags, [bad for _, bad, _ in items])
    assert p == 1.0 and r >= 0.9
    for x in results:
        if isinstance(x, Reject) and x.reason == "contradicted":
            assert x.detail["refuted"] and "contradicted by the evidence" in x.message


def test_judge_verdict_needs_its_quote_in_the_evidence():
    evidence = "Maria Bake, three loaves of bread every morning\nHer brother Tom sells the bread at the market"
    claim = "Tom does not sell bread."
    assert quote_match("Her brother Tom sells the bread at the market.", evidence) == 1.0
    assert quote_match("her brother tom sells bread at the market", evidence) >= 0.85     # a dropped word still counts
    assert judged(claim, {"verdict": "refuted", "quote": "Her brother Tom sells the bread at the market"}, evidence)[0] == REFUTED
    # an invented quote, a quote about something else, or no verdict: unsupported, with the reason
    v, note = judged(claim, {"verdict": "refuted", "quote": "Tom never sells anything"}, evidence)
    assert v == UNSUPPORTED and "not in the evidence" in note
    v, note = judged(claim, {"verdict": "supported", "quote": "Maria Bake, three loaves"}, evidence)
    assert v == UNSUPPORTED and "shares no word" in note
    assert judged(claim, {"verdict": "unsupported", "quote": ""}, evidence)[0] == UNSUPPORTED


# --- well-formedness ---------------------------------------------------------------------------------

@needs_espeak
def test_wellformed_rejects_each_defect_with_its_reason(narrated):
    items = L.malformed_samples(narrated)
    stage = _stage(WellformedStage, WellformedConfig())
    results = stage.process_batch([row for row, _, _ in items])
    assert len(results) == len(items)
    got = {(x.row if isinstance(x, Reject) else x)[R.SAMPLE_ID]: x for x in results}
    for row, bad, kind in items:
        res = got[row[R.SAMPLE_ID]]
        if not bad:
            assert not isinstance(res, Reject), res
            assert res[R.V_WELLFORMED_ISSUES] == [] and (res[R.V_LANGUAGE_SCORE] or 1.0) >= 0.6
        else:
            assert isinstance(res, Reject) and kind in res.row[R.V_WELLFORMED_ISSUES], (kind, res)
            assert res.message and res.detail["issues"]
    leak = got["wf-leak"]
    assert leak.row[R.V_PROMPT_OVERLAP] > 0.5 and "%" in leak.message
    # scores on their own: a copied example against a fresh sentence, English against German
    assert prompt_overlap("The star is yellow.") == 1.0 and prompt_overlap("Maria bakes three loaves of bread.") == 0.0
    assert language_score("What does the baker sell at the market?", "en") == 1.0
    assert language_score("Was verkauft der Bruder auf dem Markt?", "en") < 0.6
    assert language_score("three", "en") is None                        # no function word: no score, no reject
    # the shipped prompts no longer carry an answer that can be copied
    from vdata.prompts import load_prompt

    for name in ("open_qa", "mcq", "cot", "grounding", "dense_from_speech", "chapter"):
        text = load_prompt("generate", name).text
        assert not {"star", "onion", "dough", "dog", "yellow"} & set(text.lower().replace('"', " ").split()), name


def test_wellformed_scores_rethreshold(tmp_path):
    from vdata.pipelines.rethreshold import SAMPLE_CHECKS

    names = {c.name: c for c in SAMPLE_CHECKS}
    assert names["wellformed.min_language_score"].column == R.V_LANGUAGE_SCORE
    assert names["wellformed.max_prompt_overlap"].reason == "prompt_leak"
    assert names["verify_claims.max_refuted_claims"].reason == "contradicted"
    assert list(names).index("wellformed.max_prompt_overlap") < list(names).index("verify_claims.min_supported_ratio")


def test_wellformed_rejects_vacuous_questions():
    """Questions a small teacher writes about the task instead of the video (seen in the quickstart)."""
    from vdata.stages.base import RunContext
    from vdata.stages.wellformed import WellformedConfig, WellformedStage

    stage = WellformedStage(WellformedConfig(), RunContext(output_dir=""))
    answer = "Tom sells the bread at the market."
    for q in ("What is the answer to the question in note 1?", "What is the answer to this question?",
              "What is the answer to this question, with no additional context or description?"):
        assert "vacuous_question" in [r for r, _ in stage.issues({"task": "open_qa", "question": q, "answer": answer})]
    for q in ("What does Tom sell at the market?", "How many loaves does Maria bake every morning?"):
        assert stage.issues({"task": "open_qa", "question": q, "answer": answer}) == []


def test_wellformed_checks_every_teacher_written_task_and_every_note_id():
    """Outside check: video-scope notes (A1, M1, U2, H3…) echoed as answers passed, and teacher-written families
    outside the old task list (grounded_qa, summarization…) were not checked at all."""
    from vdata.stages.base import RunContext
    from vdata.stages.wellformed import WellformedConfig, WellformedStage

    stage = WellformedStage(WellformedConfig(), RunContext(output_dir=""))
    q = "What does the woman cut in the kitchen?"
    for answer in ("C1", "A1", "U2.", "H3, M2", "A1 ({{span:0,12}}).", "G4 ()"):
        assert "bare_reference" in [r for r, _ in stage.issues({"task": "open_qa", "question": q, "answer": answer})], answer
    slot = stage.issues({"task": "summarization", "question": "Summarize this video.", "answer": "<sentence> ({{span:0,9}})."})
    assert [r for r, _ in slot] == ["template_slot"]
    echo = "M1 (title of the video): Küche & Garten ({{span:0,10}})."
    assert [r for r, _ in stage.issues({"task": "summarization", "question": "Summarize this video.", "answer": echo})] == ["note_echo"]
    for answer in ("She cuts an A4 sheet and a carrot.", "{{span:0,5}} She shapes the dough.", "The V8 engine starts."):
        assert stage.issues({"task": "open_qa", "question": q, "answer": answer}) == [], answer

    def row(task, question, teacher):
        return {R.SAMPLE_ID: task, R.TASK: task, R.QUESTION: question, R.ANSWER: "She shapes the dough by hand.",
                R.SAMPLE_TEACHER: teacher}

    out = stage.process_batch([row("grounded_qa", "C3", "lm"), row("clue_qa", "The answer is one short sentence.", "lm"),
                               row("summarization", "Summarize this video.", "lm"),
                               row("segment_grounding", "C3", None)])   # a template task: the user's own data
    reasons = [x.reason if isinstance(x, Reject) else None for x in out]
    assert reasons == ["bare_reference", "not_a_question", None, None], reasons
    # a task list given in the config is what it says: those tasks only
    only = WellformedStage(WellformedConfig(tasks=["open_qa"]), RunContext(output_dir=""))
    assert not isinstance(only.process_batch([row("grounded_qa", "C3", "lm")])[0], Reject)
