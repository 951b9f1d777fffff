"""semdedup: semantic duplicates of clips, or of whole videos, from their vision-text embeddings.

Reads `clip_embedding` (the `clip_embed` stage). With `level: clip` each clip is one item; with
`level: video` a video's item is the unit mean of its clips' embeddings (the runner brings every clip of
a video into one batch), so a re-encode, a resize or the same file at a second path is found as one
video. An item whose cosine with an item kept before it is ≥ `similarity_min` is a duplicate: it gets
`semantic_duplicate_of` = the kept clip's id (level clip) or the kept video's `source_uri` (level
video) and is rejected `duplicate` (every clip of a duplicate video). Every item also gets
`q_semantic_similarity`, its cosine to the nearest item kept before it, so `vdata rethreshold
semdedup.similarity_min=…` can tighten the rule from the stored column (null: nothing was kept before).

The index, as in SemDeDup (Abbas et al., 2023) minus its k-means partition: items are compared
exactly, one matrix product against every kept item, which is what SemDeDup does inside each cluster;
the partition only pays off past a few hundred thousand items (512-d float32: 2 KB per kept item).
Like `dedup`, the index is one small named Ray actor per run (check-and-add is atomic per batch, so
two workers never both keep one of a pair), or the worker's own with `index: local` / outside Ray.
The first item to arrive is kept; a retried batch gets the verdicts it got the first time. On resume (or a
build extended with more videos) the index is first seeded with the clips already kept in the output folder.
"""
from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
from pydantic import Field

from vdata.schemas import records as R

from .base import Reject, Resources, Stage, StageConfig


class EmbeddingIndex:
    """Unit vectors of the kept items; `check_and_add` is atomic (one call per batch)."""

    def __init__(self, similarity_min: float, seed: list[tuple] | None = None):
        self.similarity_min = similarity_min
        self.matrix = np.zeros((0, 0), np.float32)
        self.labels: list[str] = []
        self.sources: list[str] = []
        self.verdicts: dict[str, tuple] = {}
        if seed:   # the items an earlier run of this build kept, kept again first (see SemDedupStage._seed)
            self.check_and_add(seed)

    def check_and_add(self, items: list[tuple]) -> list[tuple]:
        """items: (item id, label, source, unit vector) → [(kept label or None, kept source, nearest similarity)]."""
        out = []
        for item_id, label, source, vec in items:
            if item_id in self.verdicts:   # the same item again (a retried block): the same answer
                out.append(self.verdicts[item_id])
                continue
            v = np.asarray(vec, np.float32)
            verdict: tuple = (None, None, None)
            if self.labels:
                sims = self.matrix @ v
                j = int(np.argmax(sims))
                nearest = float(sims[j])
                verdict = (self.labels[j], self.sources[j], nearest) if nearest >= self.similarity_min else \
                    (None, None, nearest)
            if verdict[0] is None:
                self.matrix = v[None, :] if not self.labels else np.concatenate([self.matrix, v[None, :]])
                self.labels.append(label)
                self.sources.append(source)
            self.verdicts[item_id] = verdict
            out.append(verdict)
        return out

    def size(self) -> int:
        return len(self.labels)


class SemDedupConfig(StageConfig):
    level: Literal["clip", "video"] = "clip"
    similarity_min: float = Field(0.95, gt=-1, le=1)   # cosine at or above it: duplicate
    drop_duplicates: bool = True                        # false: score only
    index: Literal["auto", "actor", "local"] = "auto"   # auto: the shared actor when running under Ray


class SemDedupStage(Stage):
    name = "semdedup"
    Config = SemDedupConfig
    reads = (R.SOURCE_URI, R.CLIP_ID, R.CLIP_EMBEDDING)
    writes = (R.SEMANTIC_DUPLICATE_OF, R.Q_SEMANTIC_SIMILARITY)
    default_resources = Resources(num_cpus=0.25, batch_size=256)
    is_filter = True

    @classmethod
    def grouping(cls, config: SemDedupConfig) -> str | None:
        return R.SOURCE_URI if config.level == "video" else None

    def setup(self) -> None:
        self.index = self._open_index()

    def _open_index(self):
        try:
            import ray

            running = ray.is_initialized()
        except ImportError:
            running = False
        if self.config.index == "actor" and not running:
            raise RuntimeError("semdedup index: actor needs a running Ray (use index: local outside a pipeline)")
        seed = self._seed()
        if self.config.index == "local" or not running or not (self.ctx.run_id or self.config.index == "actor"):
            return EmbeddingIndex(self.config.similarity_min, seed)
        import ray

        digest = hashlib.blake2b(repr(self.config.model_dump()).encode(), digest_size=4).hexdigest()
        actor = ray.remote(num_cpus=0)(EmbeddingIndex).options(
            name=f"vdata-semdedup-{self.ctx.run_id or 'adhoc'}-{digest}", get_if_exists=True).remote(
            self.config.similarity_min, seed)
        return _ActorIndex(actor)

    def _seed(self) -> list[tuple]:
        """The clips an earlier run of this build kept (`clips/` of the output folder, which holds every kept clip
        row): a resumed or extended build compares its new videos with them too, as `dedup` does with samples.
        Without this a re-encode added later was kept beside the video it copies. Partial videos are redone
        and their rows were removed before the stages start (pipelines/checkpoint.py)."""
        from vdata.media import storage as S

        folder = S.join(self.ctx.output_dir, "clips") if self.ctx.output_dir else None
        if not folder or not S.exists(folder):
            return []
        rows = []
        for name in sorted(S.listdir(folder)):
            if not name.endswith(".parquet"):
                continue
            try:
                table = S.read_parquet(S.join(folder, name), columns=[R.SOURCE_URI, R.CLIP_ID, R.CLIP_EMBEDDING])
            except Exception:   # a part without embeddings (another build's) seeds nothing
                continue
            rows.extend(r for r in table.to_pylist() if r[R.CLIP_EMBEDDING])
        return self._items(rows)

    def _items(self, rows: list[dict]) -> list[tuple]:
        """(item id, label, source, unit vector) per item of the rows: a clip, or a video (its clips' mean)."""
        video = self.config.level == "video"
        groups: dict[str, list[dict]] = {}
        for row in rows:
            if row.get(R.CLIP_EMBEDDING):
                groups.setdefault(self._item_id(row), []).append(row)
        items = []
        for key, members in groups.items():
            vec = np.asarray([r[R.CLIP_EMBEDDING] for r in members], np.float32).mean(axis=0)
            vec /= max(float(np.linalg.norm(vec)), 1e-12)
            first = members[0]
            items.append((key, first.get(R.SOURCE_URI) if video else first.get(R.CLIP_ID), first.get(R.SOURCE_URI), vec))
        return items

    def _item_id(self, row: dict) -> str:
        """A video by its source (one file at two paths is two videos); a clip by source and clip id, because
        clip ids are content-derived and the same clip at two paths has the same id."""
        source = row.get(R.SOURCE_URI) or ""
        return source if self.config.level == "video" else f"{source}|{row.get(R.CLIP_ID)}"

    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        video = self.config.level == "video"
        items = self._items(rows)
        verdicts = dict(zip((item[0] for item in items), self.index.check_and_add(items))) if items else {}
        out: list[dict | Reject] = []
        for i, row in enumerate(rows):
            row = dict(row)
            kept, kept_source, sim = verdicts.get(self._item_id(row), (None, None, None)) \
                if row.get(R.CLIP_EMBEDDING) else (None, None, None)
            row[R.SEMANTIC_DUPLICATE_OF] = kept
            row[R.Q_SEMANTIC_SIMILARITY] = sim
            if kept is not None and self.config.drop_duplicates:
                what = f"video {row.get(R.SOURCE_URI)}" if video else f"clip {row.get(R.CLIP_ID)}"
                of = f"video {kept}" if video else f"clip {kept} from {kept_source}"
                out.append(self.reject(row, "duplicate", f"{what} is a semantic duplicate of {of} (cosine {sim:.3f} "
                                       f">= similarity_min {self.config.similarity_min})", duplicate_of=kept,
                                       kept_source_uri=kept_source, similarity=sim, level=self.config.level))
            else:
                out.append(row)
        return out


class _ActorIndex:
    def __init__(self, actor):
        self.actor = actor

    def check_and_add(self, items):
        import ray

        return ray.get(self.actor.check_and_add.remote(items))
