"""The Ray Data path of the ``vllm`` backend: ``ray.data.llm.build_processor`` +
``vLLMEngineProcessorConfig`` over a Ray Dataset (text + image requests).

:func:`apply_vllm_teacher` maps a teacher over every row; :func:`vllm_processor` is the bare
processor; :func:`request_to_row` turns a :class:`TeacherRequest` into a ``ray.data.llm`` row.
Ray and vLLM are imported only when a processor is built.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from vdata.teachers.config import VLLMTeacherConfig
from vdata.teachers.media_encoding import jpeg_data_url
from vdata.teachers.structured import check_reply, reply_answer
from vdata.teachers.types import ImagePart, TeacherRequest, TextPart
from vdata.teachers.vllm_env import (SAMPLING_FIELDS, SINGLE_PROCESS, engine_actor_env, install_ray_vllm_compat,
                                    with_cpu_defaults)

def vllm_processor(
    config: VLLMTeacherConfig,
    preprocess: Callable[[dict[str, Any]], dict[str, Any]],
    postprocess: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    concurrency: int | None = None,
    batch_size: int | None = None,
    multimodal: bool = True,
    continue_on_error: bool = True,
    **processor_kwargs: Any,
) -> Any:
    """A ``ray.data.llm`` processor running ``config``'s model with vLLM on every row.

    ``preprocess(row)`` returns ``{"messages": [...openai-style chat...], "sampling_params": {...}}``
    (see :func:`request_to_row` to build it from a :class:`TeacherRequest`); ``postprocess(row)``
    receives ``generated_text`` and the usual ray.data.llm columns. ``multimodal`` enables the
    image-preparation stage; ``continue_on_error`` makes a failing row come out with
    ``__inference_error__`` set instead of failing the dataset (errors are values). On a machine
    without GPUs (``gpus_per_replica: 0``) the engine's placement group asks for CPUs only; call
    ``ray.init(num_cpus=8)`` (logical) on a 2-core machine or its stages wait for CPUs forever."""
    install_ray_vllm_compat()
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    # the dtype is read off the driver's CPU: a CPU cluster's nodes are taken to be alike
    engine_kwargs = with_cpu_defaults(dict(config.engine))
    engine_kwargs.setdefault("seed", 0)
    kw: dict[str, Any] = dict(
        model_source=config.model,
        engine_kwargs=engine_kwargs,
        concurrency=concurrency or config.replicas,
        batch_size=batch_size or config.batch_size,
        log_engine_metrics=False,
        should_continue_on_error=continue_on_error,
    )
    if multimodal:
        kw["prepare_multimodal_stage"] = {"enabled": True}
    # the engine tokenizes the templated prompt and returns the decoded text itself: separate tokenize and
    # detokenize stages are two more actor pools to start (each loads the tokenizer) for the same work
    kw["tokenize_stage"] = {"enabled": False}
    kw["detokenize_stage"] = {"enabled": False}
    env = engine_actor_env(config.env)
    for k, v in env.items():  # the processor's own workers read these at import time too
        if k != SINGLE_PROCESS:   # the engine's actors only: an offline engine built here later keeps its worker
            os.environ.setdefault(k, v)
    install_ray_vllm_compat()
    try:  # run the chat_utils alias in every stage worker too (Ray's module-path setup hook)
        from ray._private import ray_constants

        hook_var = ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR
        if hook_var not in os.environ:
            env[hook_var] = f"{install_ray_vllm_compat.__module__}.{install_ray_vllm_compat.__name__}"
    except Exception:  # pragma: no cover - a Ray without the hook mechanism
        pass
    kw["runtime_env"] = {"env_vars": env}
    if config.gpus_per_replica == 0:
        kw["placement_group_config"] = {"bundles": [{"CPU": max(1, int(config.cpus_per_replica))}]}
    elif config.gpus_per_replica > 1:
        engine_kwargs.setdefault("tensor_parallel_size", int(config.gpus_per_replica))
    kw.update(processor_kwargs)
    proc_config = vLLMEngineProcessorConfig(**kw)
    return build_processor(proc_config, preprocess=preprocess, postprocess=postprocess)


def request_to_row(request: TeacherRequest, config: VLLMTeacherConfig, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``ray.data.llm`` row for a text/image request: openai-style ``messages`` (images as base64
    JPEG data URLs) + ``sampling_params`` (with ``structured_outputs`` for a schema)."""
    msgs: list[dict[str, Any]] = []
    for m in request.messages:
        if isinstance(m.content, str):
            msgs.append({"role": m.role, "content": m.content})
            continue
        content = []
        for p in m.content:
            if isinstance(p, TextPart):
                content.append({"type": "text", "text": p.text})
            elif isinstance(p, ImagePart):
                url = jpeg_data_url(p.image, config.image.max_side, config.image.jpeg_quality)
                content.append({"type": "image_url", "image_url": {"url": url}})
            else:
                raise TypeError("request_to_row supports text and image parts (use VLLMTeacher for video)")
        msgs.append({"role": m.role, "content": content})
    sp = config.sampling.model_dump()
    sp.update(defaults or {})
    sp.update(request.sampling)
    sp = {k: v for k, v in sp.items() if v is not None and k in SAMPLING_FIELDS}
    if request.json_schema is not None:
        # a JSON string: Arrow would otherwise turn the schema into per-row structs
        sp["structured_outputs"] = {"json": json.dumps(request.json_schema)}
    return {"messages": msgs, "sampling_params": sp}


def apply_vllm_teacher(
    ds: Any,
    config: VLLMTeacherConfig,
    to_request: Callable[[dict[str, Any]], TeacherRequest],
    *,
    column: str = "teacher",
    concurrency: int | None = None,
    batch_size: int | None = None,
    **processor_kwargs: Any,
) -> Any:
    """Run ``config``'s model over every row of a Ray Dataset (text + image requests).

    ``to_request(row)`` builds the row's :class:`TeacherRequest`. The output keeps the row's
    columns and adds ``{column}_text``, ``{column}_json`` (the schema-validated reply as a JSON
    string, or None), ``{column}_error`` (None, or ``schema_invalid: ...``),
    ``{column}_prompt_tokens`` and ``{column}_completion_tokens``. Rows the engine itself failed on
    come out with ``__inference_error__`` set (ray.data.llm bypasses the postprocess for them).
    This path decodes once (structured outputs are enforced by the engine; no re-ask round)."""

    def pre(row: dict[str, Any]) -> dict[str, Any]:
        req = to_request(row)
        out = dict(row)
        out.update(request_to_row(req, config))
        out["__vdata_schema"] = json.dumps(req.json_schema) if req.json_schema is not None else ""
        return out

    def post(row: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if k not in _RAY_LLM_COLUMNS}
        text, err = reply_answer(row.get("generated_text"))
        schema_s = row.get("__vdata_schema") or ""
        parsed_s = None
        if err is None and schema_s:
            parsed, perr = check_reply(text, json.loads(schema_s))
            if perr is None:
                parsed_s = json.dumps(parsed, ensure_ascii=False)
            else:
                err = f"schema_invalid: {perr}"
        out[f"{column}_text"] = text
        out[f"{column}_json"] = parsed_s
        out[f"{column}_error"] = err
        out[f"{column}_prompt_tokens"] = int(row.get("num_input_tokens") or 0)
        out[f"{column}_completion_tokens"] = int(row.get("num_generated_tokens") or 0)
        return out

    proc = vllm_processor(config, pre, post, concurrency=concurrency, batch_size=batch_size, **processor_kwargs)
    return proc(ds)


_RAY_LLM_COLUMNS = {  # ray.data.llm's working/output columns (and ours), dropped after the postprocess
    "messages", "sampling_params", "__vdata_schema", "generated_text", "generated_tokens", "prompt",
    "prompt_token_ids", "num_input_tokens", "num_generated_tokens", "request_id", "batch_uuid", "time_taken_llm",
    "params", "metrics", "embeddings", "logprobs", "prompt_logprobs", "multimodal_data", "mm_processor_kwargs",
    "tokenized_prompt", "__inference_error__",
}


__all__ = ["apply_vllm_teacher", "request_to_row", "vllm_processor"]
