"""The build's card (README.md) written in a forked child while the report is drawn.

The card loads `datasets` and `huggingface_hub` (about 1 s of imports on 2 cores); a small build's report
takes a fraction of that now that its plots are SVG. So an in-process build forks the card's child when its
stages start (`prepare`): the child loads the card's modules while the stages run, and at the finish only
writes the card (probe + shots of one 30 s video, 2 cores: the finish's wait for the card 0.55 -> ~0.05 s).

Forked only on Linux, from a process with no other thread (a thread may hold a lock the child needs; a Ray
driver's gRPC threads do not survive a fork) and no Ray; else, and if the child fails to answer, the card is
written in this process when asked for. The child ignores Ctrl-C: the build it belongs to answers it.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from typing import Callable

CARD_WAIT_S = 120   # a card takes well under a second; a child that has not answered by then is given up

_warm = None   # the pool forked by `prepare`, until a card is written with it or it is discarded


def _can_fork() -> bool:
    return (sys.platform == "linux" and "ray" not in sys.modules and (os.cpu_count() or 1) >= 2
            and threading.active_count() == 1)


def _fork():
    sys.stdout.flush()   # the child flushes what it inherits when it ends: print nothing twice
    sys.stderr.flush()
    return multiprocessing.get_context("fork").Pool(1, initializer=signal.signal,
                                                    initargs=(signal.SIGINT, signal.SIG_IGN))


def _load_card_modules() -> None:
    """What a card's first write loads lazily: `datasets` (and whether it decodes video), the Hub's card."""
    import huggingface_hub.repocard  # noqa: F401

    from vdata.exporters.hf_local import video_feature_unavailable

    video_feature_unavailable()


def prepare() -> None:
    """Fork the card's child now (the stages are about to run) and let it load what the card needs."""
    global _warm
    if _warm is None and _can_fork():
        _warm = _fork()
        _warm.apply_async(_load_card_modules)


def discard() -> None:
    """Stop a prepared child that will write no card (the run failed before its finish)."""
    global _warm
    pool, _warm = _warm, None
    if pool is not None:
        pool.terminate()


def card_beside(local: str) -> Callable[[], str | None]:
    """Start writing the card of the build in `local`; returns the call that waits for the card's path."""
    global _warm
    pool, _warm = _warm, None
    if pool is None:
        if not _can_fork():
            return lambda: refresh_card(local)
        pool = _fork()
    pending = pool.apply_async(refresh_card, (local,))

    def done() -> str | None:
        try:
            return pending.get(timeout=CARD_WAIT_S)
        except multiprocessing.TimeoutError:
            pass
        finally:
            pool.terminate()
        return refresh_card(local)   # after the silent child is stopped: never two writers of one README.md
    return done


def refresh_card(local: str) -> str | None:
    from vdata.exporters.hf_local import refresh_card as write   # deferred: the exporters load in the child

    return write(local)
