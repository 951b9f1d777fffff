"""The sync facade of the async teachers: one asyncio loop on a daemon thread per teacher."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")


class LoopThread:
    """One asyncio loop on a daemon thread; ``run`` blocks the caller until a coroutine finishes."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"vdata-teacher-{name}", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("generate() called from the teacher's own event loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            while True:   # in steps, so that the main thread handles an interrupt while it waits
                try:
                    return future.result(timeout=0.5)
                except concurrent.futures.TimeoutError:
                    continue
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()
