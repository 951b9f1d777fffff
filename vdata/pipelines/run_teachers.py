"""The run's managed teacher servers: started on the driver, loading while the stages run, stopped at the end.

Why in the background: a server takes long to load its model (30-60 s for the quickstart's vLLM CPU
engines, minutes for a large model on a GPU) and no stage before the first teacher stage needs it. So the
build starts at once: probe, shots, quality, frames and ASR run while the servers load. Each server's port
is chosen before it starts, so the workers get an `openai` config for it at once (N actors share one
server), with `wait_ready_s`: a teacher stage's first request waits until its server answers.

A server that fails to start ends the run: the main thread is interrupted (its own signal handler, set
for the run, raises `TeacherStartAborted`) and the build raises the server's error with its log tail. A
build called off the main thread, where no handler can be set, waits for its servers before it starts, as
does `ray.teacher_servers: first` (auto, where a server computes on the CPU: see `in_background`).
Other backends pass through to the workers as configured.
"""
from __future__ import annotations

import _thread
import signal
import threading
import time

from vdata.schemas.config import BuildConfig

# The signal whose handler the interrupt runs. No signal is sent: `_thread.interrupt_main` only calls the
# handler in the main thread, so nothing else in the process (a server's own SIGINT handling) sees it.
ABORT_SIGNAL = signal.SIGUSR2


class TeacherStartAborted(BaseException):
    """Raised in the main thread when a teacher server fails to start (not an Exception: stage code that
    turns errors into rejects must let it through)."""


def in_background(cfg: BuildConfig) -> bool:
    """`ray.teacher_servers`: auto loads the servers in the background unless one of them computes on this
    machine's CPU (llama.cpp, or the CPU build of vLLM), where it would compete with the stages for cores."""
    choice = getattr(getattr(cfg, "ray", None), "teacher_servers", "auto")
    if choice != "auto":
        return choice == "background"
    engines = {raw.get("engine", "vllm") for raw in cfg.teachers.values() if raw.get("backend") == "managed"}
    if not engines:   # no server to load: vllm_env (which inspects the vLLM install) is not needed
        return True
    from vdata.teachers.vllm_env import vllm_cpu_env

    return not ("llamacpp" in engines or ("vllm" in engines and vllm_cpu_env()))


class RunTeachers:
    """`with RunTeachers(cfg, console) as teachers:` the run's managed servers loading in the background, and
    `teachers.worker_configs`, every teacher's config as the workers get it."""

    def __init__(self, cfg: BuildConfig, console, background: bool | None = None):
        self.cfg, self.console = cfg, console
        self.background = in_background(cfg) if background is None else background
        self.servers: dict = {}          # teacher name -> ManagedServer (registered before it starts)
        self.worker_configs: dict = {}
        self.failed: BaseException | None = None
        self.ready_at: float | None = None   # epoch seconds when the last server answered
        self._lock = threading.Lock()
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._previous_handler = None

    def __enter__(self) -> "RunTeachers":
        managed = [(n, raw) for n, raw in self.cfg.teachers.items() if raw.get("backend") == "managed"]
        if not managed:   # nothing to start: the server code (httpx, jsonschema: 0.3-0.9 s to import) stays unloaded
            self.worker_configs.update(self.cfg.teachers)
            return self
        from pydantic import SecretStr

        from vdata.teachers.config import ManagedTeacherConfig
        from vdata.teachers.managed import (free_port, install_stop_handlers, openai_client_config, server_url,
                                            share_cpu_cores)

        configs = {}
        for name, raw in share_cpu_cores(managed):
            config = ManagedTeacherConfig.model_validate(raw)
            configs[name] = config.model_copy(update={"port": config.port or free_port(config.host)})
            self.console.print(f"starting managed teacher {name!r} ({config.engine}: {config.model})")
        for name, raw in self.cfg.teachers.items():
            if name not in configs:
                self.worker_configs[name] = raw
                continue
            c = configs[name]
            client = openai_client_config(c, server_url(c.host, c.port), c.served_model_name or name,
                                          wait_ready_s=c.startup_timeout_s).model_dump(mode="python")
            self.worker_configs[name] = {k: (v.get_secret_value() if isinstance(v, SecretStr) else v)
                                         for k, v in client.items()}
        install_stop_handlers()   # from the main thread: Ctrl-C stops servers still starting
        background = self.background and threading.current_thread() is threading.main_thread()
        if background:
            self._previous_handler = signal.signal(ABORT_SIGNAL, _raise_aborted)
        self._threads = [threading.Thread(target=self._start, args=(name, c, background), daemon=True,
                                          name=f"vdata-teacher-start-{name}") for name, c in configs.items()]
        for t in self._threads:
            t.start()
        if not background:
            for t in self._threads:
                t.join()
            if self.failed is not None:
                self.__exit__(None, None, None)
                raise self.failed
        return self

    def _start(self, name: str, config, interrupt: bool) -> None:
        from vdata.teachers.managed import ServerStartError, managed_server

        try:
            server = managed_server(name, config)
            with self._lock:
                if self._closing:
                    return
                self.servers[name] = server
            server.start()
        except BaseException as e:   # the first failure ends the run; the other servers are stopped with it
            with self._lock:
                if self._closing or self.failed is not None:
                    return
                self.failed = (e.of_teacher(name) if isinstance(e, ServerStartError) else
                               ServerStartError(f"teacher {name!r}: {e}", teacher=name, engine=config.engine,
                                                model=config.model))
                for other in self.servers.values():
                    other.cancel()
                if interrupt:
                    _thread.interrupt_main(ABORT_SIGNAL)
            return
        with self._lock:
            if all(s.alive() for s in self.servers.values()) and len(self.servers) == len(self._threads):
                self.ready_at = time.time()

    def __exit__(self, exc_type, exc, tb):
        try:
            with self._lock:
                self._closing = True
            for server in list(self.servers.values()):
                server.cancel()
            for t in self._threads:
                t.join(timeout=30)   # a start under way gives up within a poll once its server is cancelled
        except TeacherStartAborted:   # the interrupt of a failure that came just as the run ended
            for server in list(self.servers.values()):
                server.cancel()
        finally:
            if self._previous_handler is not None:
                signal.signal(ABORT_SIGNAL, self._previous_handler)
                self._previous_handler = None
        if self.failed is not None and (exc_type is None or issubclass(exc_type, (TeacherStartAborted,
                                                                                   KeyboardInterrupt))):
            raise self.failed from None
        return False


def _raise_aborted(signum, frame) -> None:
    raise TeacherStartAborted()
