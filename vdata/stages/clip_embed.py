"""clip_embed: a CLIP/SigLIP-family embedding of each clip, its aesthetic score and its caption agreement.

Reads the clip's sampled frames (the `frames` stage) and embeds every frame of a batch of clips in one
batched pass of the vision-text model (`model`: a local directory, `package:<module>`, or a hub id when
online; see `vdata/teachers/vision_text.py`). Writes:
- `clip_embedding`: the unit mean of the clip's frame embeddings (what `semdedup` clusters);
- `q_aesthetic`: a LAION-style aesthetic head (`aesthetic_head`: a state-dict file of Linear layers, e.g.
  LAION's `sac+logos+ava1-l14-linearMSE.pth` for ViT-L/14 embeddings) per frame, averaged over the clip;
  null when no head is configured;
- `q_text_similarity`: the cosine between each frame and the row's caption (`text_column`), averaged over
  the frames — a CLIP score, as Panda-70M's caption matching and HowToCaption's alignment filter use; null
  when the row has no such text;
- `q_watermark`: a watermark probability per frame from a classifier head on the same embeddings
  (`watermark_head`: Linear layers ending in one logit, the file format of `aesthetic_head`; the sigmoid
  is the probability), averaged over the clip — LAION-5B's `pwatermark` filter, as Data-Juicer's
  `video_watermark_filter` applies it to video frames (mean over frames); null when no head is configured.

Thresholds: `aesthetic_min` (reject `low_aesthetic`), `text_similarity_min` (reject `caption_mismatch`)
and `watermark_max` (reject `watermark` above it; LAION-5B's subsets used 0.8); a null score passes. With `drop_below: false` every row is kept with its scores,
and `vdata rethreshold` applies a threshold later from the stored columns. Cosine scales differ between
model families (SigLIP's are lower than CLIP's), so no threshold is set by default.

A clip without frames is rejected `no_frames`. The model runs in an actor pool (`uses_actors`): one
load per actor, `resources.concurrency` actors; `resources.num_gpus` puts each on a GPU.
"""
from __future__ import annotations

import os
from typing import Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from vdata.media.images import decode_jpeg
from vdata.schemas import records as R
from vdata.schemas.config import config_file

from .base import Reject, Resources, Stage, StageConfig

TEXT_COLUMNS = {"caption": R.CAPTION, "video_caption": R.VIDEO_CAPTION, "transcript": R.TRANSCRIPT_TEXT,
                "question": R.QUESTION, "answer": R.ANSWER}


class ClipEmbedConfig(StageConfig):
    # a local directory, package:<module>, or a hub id (online, or in the local hub cache); ViT-L/14 is the
    # embedding LAION's aesthetic heads were trained on
    model: str = "openai/clip-vit-large-patch14"
    aesthetic_head: str | None = None            # state-dict file; null: no q_aesthetic
    text_column: Literal["caption", "video_caption", "transcript", "question", "answer"] = "caption"
    aesthetic_min: float | None = None           # reject low_aesthetic below this
    text_similarity_min: float | None = Field(None, ge=-1, le=1)   # reject caption_mismatch below this
    watermark_head: str | None = None            # state-dict file: Linear layers → one logit; null: no q_watermark
    watermark_max: float | None = Field(None, ge=0, le=1)   # reject watermark above this probability
    drop_below: bool = True                      # false: score only (thresholds re-applied later)
    device: Literal["auto", "cpu", "cuda"] = "auto"   # auto: cuda when the stage asks for a GPU and has one
    model_batch_size: int = Field(64, ge=1)      # frames per forward pass

    @field_validator("aesthetic_head", "watermark_head")
    @classmethod
    def _head_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        return config_file(value, info) if value else None   # beside the config when relative


class ClipEmbedStage(Stage):
    name = "clip_embed"
    HUB_MODEL_FIELDS = ("model",)
    Config = ClipEmbedConfig
    reads = (R.CLIP_ID, R.FRAMES)
    writes = R.CLIP_EMBED_COLUMNS
    default_resources = Resources(num_cpus=1, batch_size=16)
    uses_actors = True
    is_filter = True

    @classmethod
    def fetch(cls, config: ClipEmbedConfig) -> None:
        """The model, and the head files: before the build (a missing head was a traceback once the stages
        before it had run). Not at parse time: a cluster's config names files on its shared storage."""
        super().fetch(config)
        for key in ("aesthetic_head", "watermark_head"):
            path = getattr(config, key)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{key}: no such file {path!r} (a state-dict file of Linear layers)")

    def setup(self) -> None:
        from vdata.teachers.vision_text import AestheticHead, VisionTextModel, WatermarkHead

        cfg = self.config
        res = self.resources()
        device = cfg.device
        if device == "auto":
            import torch

            device = "cuda" if res.num_gpus and torch.cuda.is_available() else "cpu"
        self.model = VisionTextModel(cfg.model, device=device, threads=max(1, round(res.num_cpus)))
        self.head = AestheticHead.load(cfg.aesthetic_head) if cfg.aesthetic_head else None
        self.watermark = WatermarkHead.load(cfg.watermark_head) if cfg.watermark_head else None
        for key, head in (("aesthetic_head", self.head), ("watermark_head", self.watermark)):
            if head is not None and head.input_dim != self.model.dim:
                raise ValueError(f"stages.clip_embed.{key}: {getattr(cfg, key)} takes {head.input_dim}-d "
                                 f"embeddings; {cfg.model} gives {self.model.dim}-d")

    def process_batch(self, rows: list[dict]) -> list[dict | Reject]:
        """All frames of all clips in the batch through the model at once; rows that fail to decode are rejects."""
        images, owners, out = [], [], {}
        for i, row in enumerate(rows):
            frames = row.get(R.FRAMES) or []
            if not frames:
                out[i] = self.reject(row, "no_frames", f"clip {row.get(R.CLIP_ID)} has no frames to embed "
                                     "(run the frames stage before clip_embed)")
                continue
            try:
                decoded = [decode_jpeg(f[R.FRAME_JPEG]) for f in frames]
            except Exception as e:
                out[i] = self.error_reject(row, e)
                continue
            images.extend(decoded)
            owners.extend([i] * len(decoded))
        vectors = self.model.embed_images(images, batch_size=self.config.model_batch_size)
        aesthetic = self.head.score(vectors) if self.head is not None and len(vectors) else None
        watermark = self.watermark.probability(vectors) if self.watermark is not None and len(vectors) else None
        owners_arr = np.asarray(owners)
        texts = {i: (rows[i].get(TEXT_COLUMNS[self.config.text_column]) or "").strip() for i in range(len(rows))}
        with_text = [i for i in range(len(rows)) if i not in out and texts[i]]
        text_vecs = dict(zip(with_text, self.model.embed_texts([texts[i] for i in with_text]))) if with_text else {}
        for i, row in enumerate(rows):
            if i in out:
                continue
            mine = vectors[owners_arr == i]
            out[i] = self._scored(row, mine, None if aesthetic is None else aesthetic[owners_arr == i],
                                  text_vecs.get(i), None if watermark is None else watermark[owners_arr == i])
        return [out[i] for i in range(len(rows))]

    def _scored(self, row: dict, frame_vecs: np.ndarray, aesthetic: np.ndarray | None,
                text_vec: np.ndarray | None, watermark: np.ndarray | None = None) -> dict | Reject:
        from vdata.teachers.vision_text import mean_embedding

        cfg = self.config
        row = dict(row)
        row[R.CLIP_EMBEDDING] = mean_embedding(frame_vecs).tolist()
        row[R.CLIP_EMBED_MODEL] = self.model.name
        row[R.Q_AESTHETIC] = None if aesthetic is None else float(aesthetic.mean())
        row[R.Q_TEXT_SIMILARITY] = None if text_vec is None else float((frame_vecs @ text_vec).mean())
        row[R.Q_WATERMARK] = None if watermark is None else float(watermark.mean())
        if not cfg.drop_below:
            return row
        score = row[R.Q_AESTHETIC]
        if cfg.aesthetic_min is not None and score is not None and score < cfg.aesthetic_min:
            return self.reject(row, "low_aesthetic", f"aesthetic score {score:.3f} < aesthetic_min {cfg.aesthetic_min} "
                               f"(mean of {len(frame_vecs)} frames)", q_aesthetic=score, aesthetic_min=cfg.aesthetic_min)
        sim = row[R.Q_TEXT_SIMILARITY]
        if cfg.text_similarity_min is not None and sim is not None and sim < cfg.text_similarity_min:
            return self.reject(row, "caption_mismatch", f"{cfg.text_column}-frame similarity {sim:.3f} < "
                               f"text_similarity_min {cfg.text_similarity_min}", q_text_similarity=sim,
                               text_similarity_min=cfg.text_similarity_min,
                               text=(row.get(TEXT_COLUMNS[cfg.text_column]) or "")[:200])
        mark = row[R.Q_WATERMARK]
        if cfg.watermark_max is not None and mark is not None and mark > cfg.watermark_max:
            return self.reject(row, "watermark", f"watermark probability {mark:.3f} > watermark_max {cfg.watermark_max} "
                               f"(mean of {len(frame_vecs)} frames)", q_watermark=mark, watermark_max=cfg.watermark_max)
        return row
