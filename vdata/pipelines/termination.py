"""SIGTERM (what a scheduler, `timeout` or `kill` sends) handled as Ctrl-C is: the stages stop, teacher servers
are shut down, the output folder's lock is released and the user is told how to resume. By default Python dies
at once, silently, with none of that (outside check h21)."""
from __future__ import annotations

import os
import sys

TERM_GRACE_S = 60.0   # the cleanup after SIGTERM (stages stopped, servers shut down) gets this long, then vdata leaves


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's, `timeout`'s) handled as Ctrl-C is; by default Python dies silently, with no cleanup."""


def terminate_as_interrupt() -> None:
    import signal

    def raise_terminated(signum, frame):
        if getattr(raise_terminated, "raised", False):   # a second SIGTERM while the first one's cleanup runs
            exit_now(143)
        raise_terminated.raised = True
        # the exception lands wherever the main thread is, a lock held there may stall the cleanup: a scheduler's
        # one SIGTERM must still end the job (outside check h23: hung with the folder's lock held)
        import threading

        watchdog = threading.Timer(TERM_GRACE_S, exit_now, args=(143,))
        watchdog.daemon = True
        watchdog.start()
        raise Terminated()

    def default_in_child():
        # A forked worker must die at once on the SIGTERM its pool sends (Pool.terminate): a Python handler runs
        # only between bytecodes, so a worker blocked in a C call would outlive the pool's join.
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except ValueError:
            pass

    try:
        signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:   # not the main thread (an embedding application's worker): its own handling stands
        return
    os.register_at_fork(after_in_child=default_in_child)


def exit_now(status: int) -> None:
    """Leave without the interpreter's exit handlers: the build's own cleanup has run (stages stopped, servers
    shut down, the folder's lock released), and a forked helper the signal caught mid-fork may hold a lock that
    multiprocessing's exit handler would wait on for ever (outside check h23: a hung job after "terminated")."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.kill()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
