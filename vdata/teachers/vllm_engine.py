"""The ``vllm`` backend: offline ``vllm.LLM`` engines.

* :class:`VLLMTeacher` — one engine in this process (the unit a stage's Ray actor holds: size the
  stage's actor pool with ``config.replicas`` and ``config.ray_actor_options()``). A ``generate``
  call goes to the engine as one batch (continuous batching inside vLLM), chunked by ``batch_size``.
* :class:`VLLMPoolTeacher` — ``replicas`` Ray actors, each holding a :class:`VLLMTeacher` with the
  configured GPUs/CPUs; a ``generate`` call is split across them.
* The Ray Data path (``ray.data.llm``) lives in :mod:`vdata.teachers.vllm_raydata`; its names are
  re-exported here, where callers have always imported them.

Multimodal inputs go straight to the engine: images as PIL images, videos as ``(frames, metadata)``
(Qwen2.5/3-VL need the metadata: fps, duration, total_num_frames, frames_indices,
``do_sample_frames=False`` since frames are already sampled). Prompts are rendered with the model's
own chat template (its HF processor, else its tokenizer).

Scripts that construct a ``vllm.LLM`` need an ``if __name__ == "__main__":`` guard (the engine core
runs in a subprocess).
"""

from __future__ import annotations

import gc
import logging
import os
import time
from typing import Any, Callable, Sequence

import numpy as np

from vdata.teachers.base import Teacher
from vdata.teachers.config import VLLMTeacherConfig
from vdata.teachers.media_encoding import sample_video_frames, to_pil_rgb
from vdata.teachers.structured import settle_reply
from vdata.teachers.types import ImagePart, Message, TeacherRequest, TeacherResult, TextPart, Usage, VideoPart
from vdata.teachers.vllm_env import SAMPLING_FIELDS, engine_actor_env, vllm_cpu_env, with_cpu_defaults
from vdata.teachers.vllm_raydata import apply_vllm_teacher, request_to_row, vllm_processor

log = logging.getLogger("vdata.teachers")


# --------------------------------------------------------------------------- input rendering
def _video_input(v: VideoPart, max_side: int, max_frames: int) -> tuple[np.ndarray, dict[str, Any]]:
    if v.path is not None:
        s = sample_video_frames(v.path, max_frames)
        v = VideoPart(
            frames=s["frames"], timestamps=s["timestamps"], fps=s["fps"], duration=s["duration"],
            total_num_frames=s["total_num_frames"], frame_indices=s["frame_indices"],
        )
    frames = [to_pil_rgb(f, max_side) for f in v.frame_list()]
    if not frames:
        raise ValueError("video has no frames")
    size = frames[0].size
    arr = np.stack([np.asarray(f if f.size == size else f.resize(size)) for f in frames])
    return arr, v.metadata()


def render_inputs(
    messages: Sequence[Message], render: Callable[[list[dict[str, Any]]], str], max_side: int, max_frames: int
) -> dict[str, Any]:
    """Turn messages into a vLLM prompt dict ``{"prompt", "multi_modal_data"}``."""
    chat: list[dict[str, Any]] = []
    images: list[Any] = []
    videos: list[Any] = []
    for m in messages:
        if isinstance(m.content, str):
            chat.append({"role": m.role, "content": m.content})
            continue
        content: list[dict[str, Any]] = []
        for p in m.content:
            if isinstance(p, TextPart):
                content.append({"type": "text", "text": p.text})
            elif isinstance(p, ImagePart):
                images.append(to_pil_rgb(p.image, max_side))
                content.append({"type": "image"})
            elif isinstance(p, VideoPart):
                videos.append(_video_input(p, max_side, max_frames))
                content.append({"type": "video"})
            else:
                raise TypeError(f"unknown content part {type(p).__name__}")
        chat.append({"role": m.role, "content": content})
    out: dict[str, Any] = {"prompt": render(chat)}
    mm: dict[str, Any] = {}
    if images:
        mm["image"] = images if len(images) > 1 else images[0]
    if videos:
        mm["video"] = videos if len(videos) > 1 else videos[0]
    if mm:
        out["multi_modal_data"] = mm
    return out


# --------------------------------------------------------------------------- in-process engine
class VLLMTeacher(Teacher):
    backend = "vllm"

    def __init__(self, name: str, config: VLLMTeacherConfig, cache: Any = None, *, llm: Any = None) -> None:
        super().__init__(name, config, cache)
        self._llm = llm
        self._owns_llm = llm is None  # a shared engine is not shut down by this teacher
        self._render_fn: Callable[[list[dict[str, Any]]], str] | None = None

    def cache_key_extra(self) -> dict[str, Any]:
        return {"image": self.config.image.model_dump(), "video_max_frames": self.config.video.max_frames}

    # ---- engine lifecycle
    def start(self) -> "VLLMTeacher":
        """Build the engine now (otherwise it is built on first use)."""
        if self._llm is None:
            for k, v in {**vllm_cpu_env(), **getattr(self.config, "env", {})}.items():
                os.environ.setdefault(k, str(v))
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from vllm import LLM

            kwargs = with_cpu_defaults(dict(self.config.engine))
            kwargs.setdefault("seed", 0)
            if self.config.gpus_per_replica > 1:
                kwargs.setdefault("tensor_parallel_size", int(self.config.gpus_per_replica))
            t0 = time.perf_counter()
            self._llm = LLM(model=self.config.model, **kwargs)
            log.info("teacher %s: vLLM engine up in %.1fs", self.name, time.perf_counter() - t0)
        return self

    @property
    def llm(self) -> Any:
        return self.start()._llm

    def _close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is None or not self._owns_llm:
            return
        try:
            core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
        except Exception as e:  # pragma: no cover - best effort
            log.debug("teacher %s: engine shutdown: %s", self.name, e)
        del llm
        gc.collect()

    # ---- prompt rendering with the model's chat template
    def _render(self, chat: list[dict[str, Any]]) -> str:
        if self._render_fn is None:
            trust = bool(self.config.engine.get("trust_remote_code", False))
            proc = None
            try:
                from transformers import AutoProcessor

                from transformers import PreTrainedTokenizerBase

                proc = AutoProcessor.from_pretrained(self.config.model, trust_remote_code=trust)
                # text-only models: AutoProcessor gives the tokenizer; render flattened text below
                if getattr(proc, "chat_template", None) is None or isinstance(proc, PreTrainedTokenizerBase):
                    proc = None
            except Exception:
                proc = None
            if proc is not None:
                self._render_fn = lambda c: proc.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            else:
                tok = self.llm.get_tokenizer()

                def _tok_render(c: list[dict[str, Any]]) -> str:
                    flat = [
                        {"role": m["role"], "content": m["content"] if isinstance(m["content"], str)
                         else "".join(p.get("text", "") for p in m["content"])}
                        for m in c
                    ]
                    return tok.apply_chat_template(flat, tokenize=False, add_generation_prompt=True)

                self._render_fn = _tok_render
        return self._render_fn(chat)

    def _messages(self, request: TeacherRequest) -> list[Message]:
        msgs = list(request.messages)
        sp = self.config.system_prompt
        if sp and not any(m.role == "system" for m in msgs):
            msgs.insert(0, Message("system", sp))
        return msgs

    def _sampling(self, request: TeacherRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        kw = {k: v for k, v in self.effective_sampling(request).items() if k in SAMPLING_FIELDS}
        if request.json_schema is not None:
            kw["structured_outputs"] = StructuredOutputsParams(json=request.json_schema)
        return SamplingParams(**kw)

    def _run_batch(self, prompts: list[dict[str, Any]], params: list[Any]) -> list[Any]:
        """Outputs for each prompt, or an Exception in its place (one bad prompt fails only itself)."""
        try:
            return list(self.llm.generate(prompts, params, use_tqdm=False))
        except Exception as batch_err:
            if len(prompts) == 1:
                return [batch_err]
            log.warning("teacher %s: batch failed (%s); retrying one by one", self.name, batch_err)
            out: list[Any] = []
            for p, s in zip(prompts, params):
                try:
                    out.append(self.llm.generate([p], [s], use_tqdm=False)[0])
                except Exception as e:
                    out.append(e)
            return out

    def _generate_uncached(self, requests: list[TeacherRequest], on_result=None) -> list[TeacherResult]:
        results: list[TeacherResult] = []
        bs = self.config.batch_size
        for i in range(0, len(requests), bs):
            results.extend(self._generate_chunk(requests[i : i + bs]))
        return results

    def _generate_chunk(self, requests: list[TeacherRequest]) -> list[TeacherResult]:
        t0 = time.perf_counter()
        res = [TeacherResult(request_id=r.request_id) for r in requests]
        base = [self._messages(r) for r in requests]
        convo = list(base)
        pending = list(range(len(requests)))
        last_err: dict[int, str] = {}
        retries = [self.schema_retries(r) for r in requests]
        for _round in range(max(retries, default=0) + 1):
            prompts, params, idx = [], [], []
            for i in pending:
                try:
                    prompts.append(
                        render_inputs(convo[i], self._render, self.config.image.max_side, self.config.video.max_frames)
                    )
                    params.append(self._sampling(requests[i]))
                    idx.append(i)
                except Exception as e:
                    res[i].error = f"input_error: {type(e).__name__}: {e}"
            if not idx:
                break
            outs = self._run_batch(prompts, params)
            dt = time.perf_counter() - t0
            next_pending = []
            for i, out in zip(idx, outs):
                r = res[i]
                r.attempts += 1
                r.latency_s = dt
                if isinstance(out, Exception):
                    r.error = f"engine_error: {type(out).__name__}: {str(out)[:500]}"
                    continue
                comp = out.outputs[0]
                r.usage.add(Usage(len(out.prompt_token_ids or []), len(comp.token_ids or [])))
                r.finish_reason = comp.finish_reason
                text = comp.text
                retry = settle_reply(r, text, requests[i].json_schema, base[i])
                if retry is None:
                    continue
                last_err[i], convo[i] = retry
                if r.attempts <= retries[i]:
                    next_pending.append(i)
                else:
                    r.error = f"schema_invalid: {last_err[i]}"
            pending = next_pending
            if not pending:
                break
        for i in pending:
            res[i].error = f"schema_invalid: {last_err.get(i, 'invalid reply')}"
        return res


# --------------------------------------------------------------------------- Ray actor pool
class _EngineReplica:
    """Body of one Ray actor: a VLLMTeacher without cache (the pool caches)."""

    def __init__(self, name: str, config_json: str) -> None:
        cfg = VLLMTeacherConfig.model_validate_json(config_json)
        self.teacher = VLLMTeacher(name, cfg.model_copy(update={"cache": False})).start()

    def generate(self, requests: list[TeacherRequest]) -> list[TeacherResult]:
        return self.teacher.generate(requests)

    def stats(self) -> dict[str, Any]:
        return self.teacher.stats()

    def close(self) -> None:
        self.teacher.close()


class VLLMPoolTeacher(Teacher):
    """``replicas`` Ray actors, each one engine with ``gpus_per_replica`` GPUs; batches are split
    across the replicas. Needs a running (or startable) Ray cluster."""

    backend = "vllm"

    def __init__(self, name: str, config: VLLMTeacherConfig, cache: Any = None) -> None:
        super().__init__(name, config, cache)
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False, ignore_reinit_error=True)
        env = engine_actor_env(config.env)
        actor_cls = ray.remote(_EngineReplica).options(
            **config.ray_actor_options(), runtime_env={"env_vars": env}, name=None
        )
        self._actors = [actor_cls.remote(name, config.model_dump_json()) for _ in range(config.replicas)]

    def cache_key_extra(self) -> dict[str, Any]:
        return {"image": self.config.image.model_dump(), "video_max_frames": self.config.video.max_frames}

    def _generate_uncached(self, requests: list[TeacherRequest], on_result=None) -> list[TeacherResult]:
        import ray

        n = len(self._actors)
        shards = [requests[i::n] for i in range(n)]
        refs = [(a.generate.remote(s) if s else None) for a, s in zip(self._actors, shards)]
        out: list[TeacherResult | None] = [None] * len(requests)
        for k, ref in enumerate(refs):
            if ref is None:
                continue
            try:
                part = ray.get(ref)
            except Exception as e:  # a dead replica fails only its shard, as values
                part = [TeacherResult(r.request_id, error=f"engine_error: replica failed: {type(e).__name__}")
                        for r in shards[k]]
            for j, r in enumerate(part):
                out[k + j * n] = r
        return [r for r in out if r is not None]

    def _close(self) -> None:
        import ray

        for a in self._actors:
            try:
                ray.get(a.close.remote(), timeout=60)
            except Exception:
                pass
            try:
                ray.kill(a)
            except Exception:
                pass
        self._actors = []


__all__ = [
    "VLLMPoolTeacher",
    "VLLMTeacher",
    "apply_vllm_teacher",
    "render_inputs",
    "request_to_row",
    "vllm_cpu_env",
    "vllm_processor",
]
