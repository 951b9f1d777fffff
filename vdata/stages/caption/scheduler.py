"""The clip pool: every clip's strategy is a coroutine, and at most `max_in_flight` clips are active.

A strategy awaits `pool.ask(call)` for each teacher request it needs, `pool.gather([...])` for requests
(or sub-procedures) that may go side by side, and `settle(...)` where a failure is a value rather than
the end of the clip. The pool starts the first `max_in_flight` clips and starts the next clip from the
queue the moment one finishes (per-clip state fed to a batched engine, as in ShareGPT4Video's VideoPool).
How requests reach the teachers depends on the mode:

- `threads` (HTTP teachers): a request goes out the moment a clip asks for it and its clip goes on the
  moment its answer is back; there is no round and no barrier. Teachers have a synchronous API, so each
  request runs in a worker thread of the pool's own executor (asyncio's default one has too few threads).
- `rounds` (the offline vLLM engine, which wants one batched call): the pool sends a round when every
  active clip is waiting for answers — nothing more can be asked before some come back — as one generate
  call per teacher object. A clip that finishes is replaced before that, so rounds stay full while clips
  remain, and a sequential clip never waits for another clip's whole chain.

Errors are values: a failed request raises `TeacherFailure` in the clip that asked; the pool turns what
escapes a clip into that clip's outcome (`on_error`) and goes on with the others.
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Coroutine, Literal

Mode = Literal["rounds", "threads"]


@dataclass
class Call:
    """One request for a named teacher; `step` names it in error messages (e.g. "differential_next@2.0s")."""

    teacher: str
    request: Any                 # vdata.teachers.TeacherRequest
    step: str


class TeacherFailure(Exception):
    def __init__(self, call: Call, result: Any):
        super().__init__(f"teacher {call.teacher!r} failed at {call.step}: {result.error}")
        self.call, self.result = call, result


@dataclass
class ScheduleStats:
    mode: str = ""
    max_in_flight: int = 0
    clips: int = 0
    requests: int = 0
    round_sizes: list[int] = field(default_factory=list)   # rounds mode: requests per round
    peak_outstanding: int = 0                              # most requests handed to teachers at once
    request_seconds: float = 0.0                           # summed over requests: from sent to answered
    _outstanding: int = 0

    def started(self, n: int) -> None:
        self._outstanding += n
        self.requests += n
        self.peak_outstanding = max(self.peak_outstanding, self._outstanding)

    def done(self, n: int) -> None:
        self._outstanding -= n


async def settle(work: Awaitable) -> Any:
    """Await `work`; a teacher failure becomes its value instead of propagating."""
    try:
        return await work
    except TeacherFailure as failure:
        return failure


def engine_locks(teachers: dict) -> dict[int, threading.Lock]:
    """An in-process vLLM engine must not be entered from two threads at once (its engine-core socket
    is not thread-safe): its calls are serialised. HTTP teachers take concurrent calls."""
    return {id(t): threading.Lock() for t in teachers.values() if t.backend == "vllm"}


def generate(teacher: Any, requests: list, lock: threading.Lock | None) -> list:
    """One generate call (in a worker thread); an exception fails only these requests."""
    try:
        with lock or contextlib.nullcontext():
            return teacher.generate(requests)
    except Exception as e:  # generate() should never raise; if it does, only these clips fail
        from vdata.teachers import TeacherResult

        return [TeacherResult(r.request_id, error=f"engine_error: {type(e).__name__}: {e}") for r in requests]


ClipWork = Callable[[], Coroutine[Any, Any, Any]]


class ClipPool:
    """Runs clip coroutines with at most `max_in_flight` active; see the module docstring."""

    def __init__(self, teachers: dict, max_in_flight: int, mode: Mode):
        if mode not in ("rounds", "threads"):
            raise ValueError(f"unknown scheduler mode {mode!r}")
        self.teachers, self.max_in_flight, self.mode = teachers, max_in_flight, mode
        self.stats = ScheduleStats(mode=mode, max_in_flight=max_in_flight)
        self._locks = engine_locks(teachers)
        self._waiting: deque = deque()          # (index, work, on_error) not started yet
        self._outcomes: list[Any] = []
        self._active = 0
        self._tasks: set[asyncio.Task] = set()
        # rounds mode: the queued calls of the next round, and how many strands (a clip, or one branch
        # of a gather) can still run before it. A strand gives its token up when it waits for an answer
        # or ends; the dispatcher hands the tokens back with the answers, so when the count is 0 every
        # active clip waits for the next round, whatever order the event loop wakes tasks in.
        self._queue: list[tuple[Call, asyncio.Future]] = []
        self._runnable = 0
        self._wake: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None

    # ---------------------------------------------------------------- what strategies await
    async def ask(self, call: Call) -> Any:
        """One request; its result, or TeacherFailure."""
        if self.mode == "rounds":
            future = asyncio.get_running_loop().create_future()
            self._queue.append((call, future))
            self._give_up_token()
            result = await future
        else:
            loop = asyncio.get_running_loop()
            teacher = self.teachers[call.teacher]
            self.stats.started(1)
            sent = loop.time()
            try:
                (result,) = await loop.run_in_executor(self._executor, generate, teacher, [call.request],
                                                       self._locks.get(id(teacher)))
            finally:
                self.stats.done(1)
                self.stats.request_seconds += loop.time() - sent
        if not result.ok:
            raise TeacherFailure(call, result)
        return result

    async def gather(self, works: list[Awaitable]) -> list:
        """Run `works` side by side; every one runs to its end, then the first failure (in list order)
        propagates, as with one request each: their requests were already sent together."""
        if not works:
            return []
        remaining = len(works)
        self._runnable += remaining - 1         # the caller waits; each branch can run

        async def branch(work: Awaitable) -> Any:
            nonlocal remaining
            try:
                return await work
            finally:
                remaining -= 1
                if remaining:                   # the last branch's token goes back to the caller
                    self._give_up_token()

        tasks = [asyncio.ensure_future(branch(w)) for w in works]
        await asyncio.wait(tasks)
        errors = [task.exception() for task in tasks]    # every one read: none is left "never retrieved"
        for error in errors:
            if error is not None:
                raise error
        return [task.result() for task in tasks]

    # ---------------------------------------------------------------- driving the clips
    def run(self, works: list[tuple[ClipWork, Callable[[BaseException], Any]]]) -> list:
        """Drive every clip to its outcome (in order) on one event loop; see `run_coroutine`."""
        self.stats.clips = len(works)
        if not works:
            return []
        return run_coroutine(lambda: self._run(works))

    async def _run(self, works: list) -> list:
        self._outcomes = [None] * len(works)
        self._waiting = deque((i, work, on_error) for i, (work, on_error) in enumerate(works))
        self._wake = asyncio.Event()
        n_teachers = len({id(t) for t in self.teachers.values()})
        if self.mode == "rounds":
            threads = max(1, n_teachers)
        else:   # one thread per request in flight; a teacher holds back more than its own concurrency anyway
            threads = max(self.max_in_flight, sum(int(getattr(t.config, "max_concurrency", 1) or 1)
                                                  for t in {id(t): t for t in self.teachers.values()}.values()))
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="caption-teacher") as executor:
            self._executor = executor
            while self._waiting and self._active < self.max_in_flight:
                self._start_next()
            if self.mode == "rounds":
                await self._rounds()
            else:
                await self._wake.wait()
            self._executor = None
        return self._outcomes

    def _start_next(self) -> asyncio.Task:
        index, work, on_error = self._waiting.popleft()
        self._active += 1
        self._runnable += 1
        task = asyncio.ensure_future(self._clip(index, work, on_error))
        self._tasks.add(task)                   # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        return task

    async def _clip(self, index: int, work: ClipWork, on_error: Callable[[BaseException], Any]) -> None:
        try:
            self._outcomes[index] = await work()
        except Exception as exc:  # errors are values: the clip fails, the pool goes on
            self._outcomes[index] = on_error(exc)
        finally:
            self._active -= 1
            if self._waiting:
                self._start_next()              # the next clip starts before the next round goes out
            self._give_up_token()
            if self._active == 0 and self.mode == "threads":
                self._wake.set()

    def _give_up_token(self) -> None:
        self._runnable -= 1
        if self.mode == "rounds" and self._runnable == 0:
            self._wake.set()

    async def _rounds(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                if self._active:
                    raise RuntimeError("caption scheduler: every clip waits, but no request is queued")
                return
            batch, self._queue = self._queue, []
            groups: dict[int, list[int]] = {}   # one generate call per teacher object: two names share a batch
            for i, (call, _) in enumerate(batch):
                groups.setdefault(id(self.teachers[call.teacher]), []).append(i)
            calls = [(gid, self.teachers[batch[idx[0]][0].teacher], [batch[i][0].request for i in idx])
                     for gid, idx in groups.items()]
            self.stats.round_sizes.append(len(batch))
            self.stats.started(len(batch))
            sent = loop.time()
            try:   # in worker threads (a blocking call on the loop's thread could trip a library's own loop)
                answers = await asyncio.gather(*(loop.run_in_executor(self._executor, generate, teacher,
                                                                      requests, self._locks.get(gid))
                                                 for gid, teacher, requests in calls))
            finally:
                self.stats.done(len(batch))
                self.stats.request_seconds += (loop.time() - sent) * len(batch)
            results: list[Any] = [None] * len(batch)
            for idx, answer in zip(groups.values(), answers):
                for i, result in zip(idx, answer):
                    results[i] = result
            for (_, future), result in zip(batch, results):    # clips wake in the order they asked
                self._runnable += 1
                future.set_result(result)


def run_coroutine(make: Callable[[], Coroutine]) -> Any:
    """`asyncio.run` a fresh coroutine; from a thread that already runs an event loop (a notebook, an
    async caller), on a helper thread, since a thread runs one loop at a time."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="caption-loop") as one:
        return one.submit(lambda: asyncio.run(make())).result()
