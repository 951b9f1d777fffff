"""The embedded Ray of a build that starts its own: started guarded, so that its processes cannot outlive
this one (ray_guard.py), and with no terminal on their stdin."""
from __future__ import annotations

import contextlib
import os

_GUARD = None   # the guard of the embedded Ray this process started (see ray_guard.py)


def start_local_ray(**init_kwargs) -> None:
    """`ray.init()` for an embedded Ray whose processes cannot outlive this process (see ray_guard)."""
    import ray

    from .ray_guard import RayGuard

    global _GUARD
    guard = RayGuard.start()
    try:
        # what ray.init starts, and the workers its raylet starts later, carry the token
        with guard.marking(), _stdin_from_devnull():
            ray.init(**init_kwargs)
    except BaseException:
        guard.close()
        raise
    try:
        guard.set_session_dir(ray._private.worker._global_node.get_session_dir_path())
    except Exception:   # the guard still knows the Ray processes below this one
        pass
    _GUARD = guard


@contextlib.contextmanager
def _stdin_from_devnull():
    """fd 0 is /dev/null while Ray starts, so that its processes and every worker they spawn inherit it,
    not this process's terminal. A worker runs in a process group of its own, in the background of the
    terminal's session: a child that touches its stdin there (PySceneDetect's `ffmpeg -v quiet` probe
    sets terminal modes) is stopped by SIGTTOU, and a build started from a terminal hung in `shots`."""
    try:
        saved = os.dup(0)
    except OSError:   # started with stdin closed: Ray's processes get /dev/null, nothing to give back
        saved = None
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 0)
            os.close(saved)
        os.close(devnull)


def stop_local_ray() -> None:
    """`ray.shutdown()`, then the guard sweeps whatever Ray left running and exits."""
    import ray

    global _GUARD
    try:
        ray.shutdown()
    finally:
        if _GUARD is not None:
            _GUARD.close()
            _GUARD = None
