"""Throughput of the sample filters (rows/s) next to the limit each one chases, in one run.

The rows are the labelled samples of bench_filters.py (each narrated script's sentences as true answers,
their perturbations as false ones, and the malformed samples a small teacher writes), then distinct
questions about the scripts up to `--rows`. Their evidence is the scripts' sentences as spoken, placed one scene every 4 s:
this bench measures speed, not verdicts (bench_filters.py measures those, on Whisper's transcripts).

Limits, printed as ratios:
- rule-only filters (wellformed, timestamps, verify_claims tier 1): the executor's own cost of moving the
  same rows as one Arrow batch (`pa.Table.from_pylist` + `to_pylist`, what every stage's batch goes through
  between stages). A ratio above 1 means the filter costs less than carrying its rows;
- embedding filters (blind's prior, dedup, verify_claims' relevance gate): the packaged MiniLM's raw
  `encode` rate (texts/s, batches of 64), measured on the stage's own model just before it runs. The stage's own model is wrapped to count the
  texts it embeds: texts/s over the stage's whole time, against that rate, says what the stage costs
  beyond its model (1.0: nothing). Texts a stage has embedded once are not embedded again.

No LLM judge here: a judge's limit is its server's (bench_teachers.py).

    python bench/bench_filter_speed.py [--rows 3000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import labelled_set as L  # noqa: E402
from bench._common import table  # noqa: E402
from vdata.schemas import records as R  # noqa: E402
from vdata.stages.base import Reject, RunContext  # noqa: E402

SCENE_S = 4.0


def script_clips() -> list[tuple]:
    """(script, [clip row per scene]) as labelled_set.narrated_clips gives them, with the sentences as
    written for transcript (no render, no Whisper)."""
    import hashlib

    from vdata.media.narrated import SCRIPTS

    out = []
    for spec in SCRIPTS:
        vid = hashlib.blake2b(spec.name.encode(), digest_size=16).hexdigest()
        duration = SCENE_S * len(spec.scenes)
        rows = [L.speech_clip_row(f"{spec.name}.mp4", vid, k, k * SCENE_S, (k + 1) * SCENE_S, duration,
                                  [{"start_s": k * SCENE_S + 0.3, "end_s": (k + 1) * SCENE_S - 0.3, "text": scene.says}])
                for k, scene in enumerate(spec.scenes)]
        out.append((spec, rows))
    return out


MCQ_EVERY = 3   # every third generated sample is an MCQ (the blind prior judges only those)
QUESTIONS = ("What does the narrator say about the {} and the {}?", "Which detail is given about the {} or the {}?",
             "What do we learn about the {} after the {}?", "How are the {} and the {} described?")


def sample_rows(count: int) -> list[dict]:
    """`count` distinct samples: the labelled ones first, then each script's sentences asked about pairs
    of the scripts' keywords (distinct texts, so that no stage's cache serves a repeat)."""
    import itertools

    clips = script_clips()
    out = [row for row, _, _ in L.narrated_claim_samples(clips) + L.malformed_samples(clips)]
    keywords = [scene.keyword.lower() for spec, _ in clips for scene in spec.scenes]
    answers = [(spec.scenes[k].says, clip) for spec, rows in clips for k, clip in enumerate(rows)]
    pairs = [(a, b) for a, b in itertools.permutations(keywords, 2)]
    sentences = [x for spec, _ in clips for scene in spec.scenes for x in (scene.says, scene.negated)]
    for k, (template, (a, b), (says, clip)) in enumerate(itertools.product(QUESTIONS, pairs, answers)):
        if len(out) >= count:
            break
        if k % 2:   # half the answers come from other scenes: tier 1 leaves some open, for the relevance gate
            says = sentences[(k * 11) % len(sentences)]
        extra = {}
        if k % MCQ_EVERY == 0:   # options: the answer and three other sentences, the answer's place turning
            others = [sentences[(k * 7 + 5 * j) % len(sentences)] for j in range(1, 4)]
            options = others[:k % 4] + [says] + others[k % 4:]
            extra = {R.OPTIONS: options, R.ANSWER_INDEX: k % 4}
        out.append(L.speech_sample(clip, f"speed-{k}", template.format(a, b), says,
                                   task="mcq" if extra else "open_qa", **extra))
    return out


def stage(cls, cfg, work: str):
    s = cls(cfg, RunContext(output_dir=work, teachers={}, cache_dir=os.path.join(work, "cache")))
    s.setup()
    return s


def rate(fn, rows: list[dict], batch: int, repeat: int = 3) -> tuple[float, int]:
    """Best rows/s over `repeat` runs of `fn` on `rows` in batches of `batch`; and how many it kept."""
    best, kept = 0.0, 0
    for _ in range(repeat):
        started = time.perf_counter()
        kept = 0
        for i in range(0, len(rows), batch):
            kept += sum(not isinstance(x, Reject) for x in fn(rows[i:i + batch]))
        best = max(best, len(rows) / (time.perf_counter() - started))
    return best, kept


def arrow_rate(rows: list[dict], batch: int) -> float:
    import pyarrow as pa

    def move(chunk):
        return pa.Table.from_pylist(chunk).to_pylist()
    return rate(move, rows, batch)[0]


class CountedEncode:
    """Wraps a SentenceTransformer's `encode` to count the texts and seconds a stage spends in it."""

    def __init__(self, model):
        self.texts, self.seconds, self._encode = 0, 0.0, model.encode
        model.encode = self

    def __call__(self, sentences, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self._encode(sentences, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts += 1 if isinstance(sentences, str) else len(sentences)


def stage_models(s) -> list:
    from sentence_transformers import SentenceTransformer

    return [v for v in vars(s).values() if isinstance(v, SentenceTransformer)]


def encode_rate(model, rows: list[dict]) -> float:
    """`model`'s raw texts/s over 1024 of the rows' distinct texts (questions and answers), batches of 64."""
    texts = list(dict.fromkeys(x for r in rows for x in (r[R.QUESTION], r[R.ANSWER])))[:1024]
    model.encode(texts[:64], batch_size=64)   # warm
    best = 0.0
    for _ in range(2):
        started = time.perf_counter()
        model.encode(texts, batch_size=64)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def main() -> None:
    import tempfile

    from vdata.stages.blind import BlindConfig, BlindStage
    from vdata.stages.dedup import DedupConfig, DedupStage
    from vdata.stages.timestamps import TimestampsConfig, TimestampsStage
    from vdata.stages.verify_claims import VerifyClaimsConfig, VerifyClaimsStage
    from vdata.stages.wellformed import WellformedConfig, WellformedStage

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    rows = sample_rows(args.rows)
    work = tempfile.mkdtemp(prefix="vdata-bench-filter-speed-")
    arrow = arrow_rate(rows, args.batch)
    rule = [("wellformed", WellformedStage, WellformedConfig()),
            ("timestamps", TimestampsStage, TimestampsConfig()),
            ("verify_claims tier 1", VerifyClaimsStage, VerifyClaimsConfig(relevance_min=None))]
    embedding = [("verify_claims tier 1 + relevance gate", VerifyClaimsStage, VerifyClaimsConfig()),
                 ("blind (prior + leak, no teacher)", BlindStage, BlindConfig()),
                 ("dedup (exact + MiniLM, local index)", DedupStage, DedupConfig(index="local", seed_from_output=False))]
    out = []
    for name, cls, cfg in rule:
        s = stage(cls, cfg, work)
        r, kept = rate(s.process_batch, rows, args.batch)
        out.append([name, f"{r:,.0f}", "-", "Arrow batch round trip", f"{arrow:,.0f} rows/s", f"{r / arrow:.2f}", kept])
    for name, cls, cfg in embedding:
        s = stage(cls, cfg, work)
        models = stage_models(s)
        # measured just before the stage, on its own model: the machine's load moves both alike
        encode = encode_rate(models[0], rows)
        counters = [CountedEncode(m) for m in models]
        # one run: what a stage has embedded it keeps (dedup's index, the claim cache), a second run is not the first
        started = time.perf_counter()
        r, kept = rate(s.process_batch, rows, args.batch, repeat=1)
        wall = time.perf_counter() - started
        texts = sum(c.texts for c in counters)
        out.append([name, f"{r:,.0f}", f"{texts / len(rows):.2f}", "MiniLM encode", f"{encode:,.0f} texts/s",
                     f"{texts / wall / encode:.2f}", kept])
    table(f"filter throughput: {len(rows)} rows in batches of {args.batch} (os.cpu_count() = {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.2f})", ["filter", "rows/s", "texts/row", "limit", "limit rate", "ratio", "kept"], out)


if __name__ == "__main__":
    main()
