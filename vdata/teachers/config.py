"""Teacher configuration: one pydantic model per backend, discriminated on ``backend``.

A run config holds ``teachers: {name: TeacherConfig}``; stages refer to teachers by name.
``${ENV}`` references are interpolated by the config loader before these models see them;
API keys are kept as :class:`pydantic.SecretStr` so they never show in reprs or dumps.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator

StructuredDialect = Literal["auto", "openai", "vllm", "llamacpp", "none"]
VideoMode = Literal["auto", "frames", "video_url"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamplingConfig(_Strict):
    """Default sampling parameters; a request's ``sampling`` dict overrides single fields."""

    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    seed: int | None = 0
    stop: list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int | None = None  # not OpenAI; sent in extra_body to vLLM / llama.cpp servers
    repetition_penalty: float | None = None  # idem


class ImageEncodingConfig(_Strict):
    """How frames/images are sent to HTTP teachers (base64 JPEG ``image_url`` parts)."""

    max_side: int = Field(768, ge=16, le=8192)
    jpeg_quality: int = Field(85, ge=10, le=100)


class VideoConfig(_Strict):
    """How video parts are sent to HTTP teachers.

    ``frames``: every frame as an ``image_url`` part (any VLM endpoint), preceded by its timestamp.
    ``video_url``: a base64 MP4 ``video_url`` part (vLLM-served video models).
    ``auto``: ``video_url`` for vLLM servers, ``frames`` otherwise.
    """

    mode: VideoMode = "auto"
    max_frames: int = Field(32, ge=1, le=1024)  # frames sampled from a video *path* in frames mode
    timestamps_in_text: bool = True


class _TeacherCommon(_Strict):
    sampling: SamplingConfig = SamplingConfig()
    schema_retries: int = Field(2, ge=0, le=10, description="re-asks after an invalid structured reply")
    cache: bool = Field(True, description="use the on-disk request cache when the run has one")
    system_prompt: str | None = None
    # Does the model take images? None: inferred where the config tells (see `takes_images`), else not
    # checked. `vdata validate` uses it to refuse a text-only teacher for a stage that sends frames.
    vision: bool | None = None


class _HttpClientCommon(_TeacherCommon):
    max_concurrency: int = Field(16, ge=1, le=4096)
    rpm: float | None = Field(None, gt=0, description="request-per-minute budget (retries count)")
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(5, ge=0, le=50)
    backoff_base_s: float = Field(0.5, ge=0.0)
    backoff_max_s: float = Field(30.0, ge=0.0)
    max_retry_after_s: float = Field(120.0, ge=0.0, description="cap on an honoured Retry-After")
    structured_output: StructuredDialect = "auto"
    image: ImageEncodingConfig = ImageEncodingConfig()
    video: VideoConfig = VideoConfig()
    extra_body: dict[str, Any] = Field(default_factory=dict, description="merged into every request body")


class OpenAITeacherConfig(_HttpClientCommon):
    """Any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp, SGLang, ...)."""

    backend: Literal["openai"] = "openai"
    model: str
    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr | None = Field(None, description="None: $OPENAI_API_KEY if set, else none sent")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="extra HTTP headers; values are secrets (e.g. an api-key header)"
    )
    wait_ready_s: float = Field(0.0, ge=0, description="the first request waits up to this long for the server "
                                "to answer /models (a server still loading its model, e.g. a managed one)")

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        from urllib.parse import urlsplit

        url = urlsplit(v.strip())
        if url.scheme not in ("http", "https") or not url.netloc:   # else found only by the first request
            raise ValueError("an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1")
        return v.strip().rstrip("/")


class VLLMTeacherConfig(_TeacherCommon):
    """Offline ``vllm.LLM`` engine, one per replica (each replica is a Ray actor or this process)."""

    backend: Literal["vllm"] = "vllm"
    model: str
    gpus_per_replica: float = Field(1, ge=0)
    cpus_per_replica: float = Field(1, ge=0)
    replicas: int = Field(1, ge=1)
    engine: dict[str, Any] = Field(default_factory=dict, description="vllm.LLM(**engine) keyword args")
    batch_size: int = Field(64, ge=1, description="requests per engine call (Ray Data path: per batch)")
    env: dict[str, str] = Field(default_factory=dict, description="environment for the engine (e.g. VLLM_CPU_KVCACHE_SPACE)")
    image: ImageEncodingConfig = ImageEncodingConfig()
    video: VideoConfig = VideoConfig()

    def ray_actor_options(self) -> dict[str, Any]:
        """Resources one replica needs, for a stage's ``ActorPoolStrategy`` / ``ray.remote``."""
        return {"num_gpus": self.gpus_per_replica, "num_cpus": self.cpus_per_replica}


class ManagedTeacherConfig(_HttpClientCommon):
    """vdata starts a local server (vLLM or llama.cpp) on a free loopback port and stops it at the end."""

    backend: Literal["managed"] = "managed"
    engine: Literal["vllm", "llamacpp"] = "vllm"
    model: str
    served_model_name: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    host: str = "127.0.0.1"
    startup_timeout_s: float = Field(600.0, gt=0)
    engine_args: dict[str, Any] = Field(default_factory=dict, description="--key value CLI args")
    env: dict[str, str] = Field(default_factory=dict)
    log_dir: str | None = None


TeacherConfig = Annotated[
    Union[OpenAITeacherConfig, VLLMTeacherConfig, ManagedTeacherConfig],
    Field(discriminator="backend"),
]
TeachersConfig = dict[str, TeacherConfig]

_teacher_adapter: TypeAdapter[Any] = TypeAdapter(TeacherConfig)
_teachers_adapter: TypeAdapter[Any] = TypeAdapter(TeachersConfig)


def parse_teacher_config(data: Any) -> OpenAITeacherConfig | VLLMTeacherConfig | ManagedTeacherConfig:
    """Validate one teacher entry (a dict or an already-built model)."""
    return _teacher_adapter.validate_python(data)


def parse_teachers_config(data: Any) -> dict[str, Any]:
    """Validate a ``teachers:`` mapping."""
    return _teachers_adapter.validate_python(data)


def _local_model_vision(model: str) -> bool | None:
    """A local Hugging Face model folder says whether it has a vision tower (its config.json)."""
    import json
    import os

    path = os.path.join(os.path.expanduser(model), "config.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            hf = json.load(f)
    except (OSError, ValueError):
        return None
    return any(k in hf for k in ("vision_config", "vision_tower", "mm_vision_tower", "visual"))


def takes_images(cfg: OpenAITeacherConfig | VLLMTeacherConfig | ManagedTeacherConfig) -> tuple[bool | None, str]:
    """(whether the teacher's model takes images, and why we think so); None when the config cannot tell
    (a remote endpoint, a hub id not on this machine)."""
    if cfg.vision is not None:
        return cfg.vision, f"vision: {str(cfg.vision).lower()} in its config"
    if isinstance(cfg, ManagedTeacherConfig) and cfg.engine == "llamacpp":
        if any(k in cfg.engine_args for k in ("clip_model_path", "mmproj")):
            return True, "a llama.cpp server with a vision projector"
        return False, f"a llama.cpp server for {cfg.model} without a vision projector (clip_model_path)"
    if isinstance(cfg, (VLLMTeacherConfig, ManagedTeacherConfig)):
        from .packaged import PREFIX, packaged_file

        if cfg.model.startswith(PREFIX) and packaged_file(cfg.model, ".gguf") is not None:
            return False, f"{cfg.model} carries a GGUF text model (no vision projector)"
        local = _local_model_vision(cfg.model)
        if local is not None:
            return local, f"its model folder {cfg.model} " + ("has" if local else "has no") + " vision config"
    return None, "unknown"


def _cpu_vllm() -> bool:
    """The vLLM installed here is the CPU build (the `vllm-cpu` distribution): its servers use no GPU."""
    from importlib import metadata

    try:
        metadata.version("vllm-cpu")
        return True
    except metadata.PackageNotFoundError:
        return False


def teacher_gpus(cfg: OpenAITeacherConfig | VLLMTeacherConfig | ManagedTeacherConfig) -> tuple[int | str, float | str]:
    """(replicas, GPUs in all) for `vdata plan`; '-' where the model runs elsewhere (an HTTP endpoint)."""
    if isinstance(cfg, VLLMTeacherConfig):
        return cfg.replicas, cfg.replicas * cfg.gpus_per_replica
    if isinstance(cfg, ManagedTeacherConfig):
        args = cfg.engine_args
        if cfg.engine == "vllm":
            return 1, 0 if _cpu_vllm() else int(args.get("tensor_parallel_size", 1)) * int(args.get("pipeline_parallel_size", 1))
        return 1, 1 if int(args.get("n_gpu_layers", 0) or 0) != 0 else 0
    return "-", "-"


__all__ = [
    "ImageEncodingConfig",
    "ManagedTeacherConfig",
    "OpenAITeacherConfig",
    "SamplingConfig",
    "StructuredDialect",
    "TeacherConfig",
    "TeachersConfig",
    "VLLMTeacherConfig",
    "VideoConfig",
    "parse_teacher_config",
    "parse_teachers_config",
    "takes_images",
    "teacher_gpus",
]
