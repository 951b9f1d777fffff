"""vdata's own progress display for `vdata build`, and Ray's own output moved to a log file.

What is counted, and where it comes from (nothing is scraped from Ray's progress bars):
- per stage, the rows each stage has finished: vdata's batch wrapper (`execution.run_stage_on_table`)
  reports rows in, rows out and rejects of every batch to the run's stats actor, which the driver
  polls. A stage's input total is known only for the first stage (the videos of the run); a later
  stage's "in" is counted against what the stage before it has put out so far. A batch that Ray runs
  again after its worker died is counted again;
- finished: the videos that went through every stage, from the same reports: each row carries its
  share of its video (`R.MASS`), so the last stage's mass out plus every stage's mass rejected is the
  number of videos finished. The ETA is the time so far per finished video times the videos left;
- on disk: the ledger entries the sink writes when a part is committed (see `checkpoint.py`): rows
  and rejects written, and the videos whose rows are all on disk (their committed mass sums to 1).
  The sink writes a part per `output.rows_per_file` rows, so this line can stay at 0 until the end.

In a terminal the display is a rich `Live` block, one line per stage under the stage's name and one for
what is on disk. Elsewhere (a log, a pipe) it is one plain line every `every_s` seconds and one at the end.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass

from vdata.media import storage as S

from . import checkpoint

MAX_LINE = 200   # a plain progress line longer than this switches to the compact form
_RAY_LOGGERS = ("ray", "ray.data")


@dataclass
class StageCount:
    name: str
    in_level: str
    out_level: str
    rows_in: int = 0
    rows_out: int = 0
    rejects: int = 0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class BuildProgress:
    """The display. The runner (through `ProgressFeed`) calls `stage_rows` and `committed`; `plain_line()`
    is the plain text of the current state."""

    def __init__(self, console, stages: list[tuple[str, str, str]], videos_total: int, level: str,
                 every_s: float = 10.0, live: bool | None = None):
        self.console, self.every_s, self.level = console, every_s, level
        self.stages = [StageCount(*s) for s in stages]
        self.videos_total, self.videos_done, self.rows, self.rejects = videos_total, 0, 0, 0
        self.finished_mass = 0.0
        self.live = console.is_terminal if live is None else live
        self._lock = threading.Lock()
        self._t0 = time.time()
        self._live = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # --- what the runner reports ---------------------------------------------------------------
    def stage_rows(self, index: int, rows_in: int, rows_out: int, rejects: int, mass_out: float = 0.0,
                   mass_rejected: float = 0.0) -> None:
        with self._lock:
            s = self.stages[index]
            s.rows_in += rows_in
            s.rows_out += rows_out
            s.rejects += rejects
            self.finished_mass += mass_rejected + (mass_out if index == len(self.stages) - 1 else 0.0)

    def committed(self, rows: int, rejects: int, videos_done: int) -> None:
        with self._lock:
            self.rows += rows
            self.rejects += rejects
            self.videos_done = videos_done

    # --- text -----------------------------------------------------------------------------------
    def _stage_in_total(self, i: int) -> int:
        return self.videos_total if i == 0 else self.stages[i - 1].rows_out

    @property
    def videos_finished(self) -> int:
        return min(self.videos_total, int(self.finished_mass + checkpoint.EPS))

    def eta(self) -> str:
        done = max(self.videos_finished, self.videos_done)
        left = self.videos_total - done
        if not left:
            return "done"
        if not done:
            return "ETA after the first video"
        return "ETA " + _duration((time.time() - self._t0) / done * left)

    def stage_text(self, i: int) -> str:
        s = self.stages[i]
        text = f"{s.rows_in}/{self._stage_in_total(i)} {s.in_level} in, {s.rows_out} {s.out_level} out"
        return text + (f", {s.rejects} rejected" if s.rejects else "")

    def finished_text(self) -> str:
        return (f"{self.videos_finished}/{self.videos_total} videos through every stage, "
                f"{_duration(time.time() - self._t0)} elapsed, {self.eta()}")

    def disk_text(self) -> str:
        return f"{self.videos_done}/{self.videos_total} videos complete, {self.rows} {self.level} + {self.rejects} rejects written"

    def plain_line(self) -> str:
        """The one line a log gets: videos finished, what is on disk, then each stage's rows."""
        with self._lock:
            head = (f"progress {_duration(time.time() - self._t0)}: {self.videos_finished}/{self.videos_total} videos "
                    f"finished, {self.eta()} | on disk: {self.videos_done} videos complete, {self.rows} {self.level}, "
                    f"{self.rejects} rejects")
            full = head + "".join(f" | {s.name} {s.rows_in} in, {s.rows_out} out"
                                  + (f", {s.rejects} rejected" if s.rejects else "") for s in self.stages)
            if len(full) <= MAX_LINE:
                return full
            # compact: `name in>out-rejected`, as many stages as fit (a long chain's line is cut, not wrapped)
            line = head + " |"
            compact = [f" {s.name} {s.rows_in}>{s.rows_out}" + (f"-{s.rejects}" if s.rejects else "") for s in self.stages]
            for i, part in enumerate(compact):
                more = f" +{len(compact) - i - 1} more" if i < len(compact) - 1 else ""
                if len(line) + len(part) + len(more) > MAX_LINE:
                    return line + f" +{len(compact) - i} more"
                line += part
            return line

    # --- showing it -----------------------------------------------------------------------------
    def _renderable(self):
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, min_width=max(len(s.name) for s in self.stages + [StageCount("finished", "", "")]))
        grid.add_column(no_wrap=True, min_width=20)
        grid.add_column(no_wrap=True, overflow="ellipsis")   # a narrow terminal cuts the line, never wraps it
        with self._lock:
            rows = [(s.name, s.rows_in, self._stage_in_total(i), self.stage_text(i)) for i, s in enumerate(self.stages)]
            rows.append(("finished", self.videos_finished, self.videos_total, self.finished_text()))
            rows.append(("on disk", self.videos_done, self.videos_total, self.disk_text()))
        for name, done, total, text in rows:
            grid.add_row(f"[bold]{name}[/]", ProgressBar(total=max(total, 1), completed=min(done, total), width=20), text)
        return grid

    def _tick(self) -> None:
        while not self._stop.wait(self.every_s):
            self.console.print(self.plain_line(), highlight=False, markup=False, soft_wrap=True)

    def __enter__(self):
        self._t0 = time.time()
        if self.live:
            from rich.live import Live

            # rich redraws the block from the current counts 4 times a second (not once per report)
            self._live = Live(get_renderable=self._renderable, console=self.console, refresh_per_second=4,
                              transient=False)
            self._live.start()
        else:
            self._ticker = threading.Thread(target=self._tick, name="vdata-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.stop()   # draws the final state once more
            self._live = None
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
            self.console.print(self.plain_line(), highlight=False, markup=False, soft_wrap=True)


class ProgressFeed:
    """Polls the run's stats actor (rows per stage) and the ledger (what is on disk) on a driver
    thread while `write_datasink` blocks the main one, and reports both to a `BuildProgress`."""

    def __init__(self, progress: BuildProgress, collector, output_dir: str, run_id: str, sources: set[str],
                 poll_s: float = 0.5):
        self.progress, self.collector, self.poll_s = progress, collector, poll_s
        self.ledger_dir, self.prefix, self.sources = checkpoint.ledger_dir(output_dir), f"part-{run_id}-", sources
        self._records_seen = 0
        self._parts_seen: set[str] = set()
        self._mass: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vdata-progress-feed", daemon=True)

    def poll(self) -> None:
        try:
            if hasattr(self.collector.since, "remote"):   # the Ray path's stats actor
                import ray

                records = ray.get(self.collector.since.remote(self._records_seen), timeout=10)
            else:                                         # an in-process run's collector (local_run.py)
                records = self.collector.since(self._records_seen)
        except Exception:   # a slow or gone actor only delays the display
            records = []
        self._records_seen += len(records)
        for r in records:
            self.progress.stage_rows(r["stage_index"], r["rows_in"], r["rows_out"], sum(r["rejects"].values()),
                                     r.get("mass_out", 0.0), r.get("mass_rejected", 0.0))
        rows = rejects = 0
        try:   # the ledger may be at a URL (storage.py): a slow listing only delays the display
            names = sorted(S.listdir(self.ledger_dir))
        except (OSError, ValueError):
            names = []
        for name in names:
            if not name.endswith(".json") or not name.startswith(self.prefix) or name in self._parts_seen:
                continue
            try:
                entry = json.loads(S.read_text(S.join(self.ledger_dir, name)))
            except (OSError, ValueError):
                continue
            self._parts_seen.add(name)
            rows += entry.get("rows", 0)
            rejects += entry.get("rejects", 0)
            for src, m in entry.get("mass", {}).items():
                if src in self.sources:
                    self._mass[src] = self._mass.get(src, 0.0) + m
        done = sum(m >= 1.0 - checkpoint.EPS for m in self._mass.values())
        if rows or rejects or done != self.progress.videos_done:
            self.progress.committed(rows, rejects, done)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if exc[0] is None:
            self.poll()   # the last records and parts, before the display shows its final state


@contextlib.contextmanager
def ray_output_to_file(path: str, verbose: bool, secrets=()):
    """Ray's own output of this process goes to `path` instead of the terminal, unless `verbose`:
    - its Python log records (start-up hints, Ray Data's progress and warnings): the console handlers
      of the `ray` and `ray.data` loggers are swapped for a file handler (Ray Data's session log stays);
    - what Ray's C++ core writes to this process's stderr (an `E ... core_worker.cc` line on healthy
      runs with actor pools): file descriptor 2 points at the log while Python's `sys.stderr`, and so
      vdata's own output, keeps the terminal. Only when `sys.stderr` is descriptor 2 (not in a notebook).
    The config's secret values are masked in the log records (not in what the C++ core writes).
    Everything comes back when the block ends."""
    if verbose:
        yield None
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)   # Ray Data's DEBUG records stay in its own session log
    handler.setFormatter(logging.Formatter("%(asctime)s\t%(levelname)s %(name)s %(filename)s:%(lineno)s -- %(message)s"))
    if any(secrets):
        from vdata.teachers.redaction import RedactingFilter

        handler.addFilter(RedactingFilter([s for s in secrets if s]))
    removed: list[tuple[logging.Logger, logging.Handler]] = []
    # Ray Data's logger does not propagate to `ray` once `ray.data` is imported; before that, one handler is enough
    loggers = [lg for lg in map(logging.getLogger, _RAY_LOGGERS) if lg.name == "ray" or not lg.propagate]
    for logger in loggers:
        for h in list(logger.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                logger.removeHandler(h)
                removed.append((logger, h))
        logger.addHandler(handler)
    with _stderr_descriptor_to(path):
        try:
            yield path
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
            for logger, h in removed:
                logger.addHandler(h)
            handler.close()


@contextlib.contextmanager
def _stderr_descriptor_to(path: str):
    import sys

    try:
        is_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):   # io.UnsupportedOperation is an OSError
        is_fd2 = False
    if not is_fd2:
        yield
        return
    sys.stderr.flush()
    terminal_fd = os.dup(2)
    python_stderr = sys.stderr
    terminal = os.fdopen(terminal_fd, "w", buffering=1, encoding=python_stderr.encoding,
                         errors=python_stderr.errors, closefd=True)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.stderr = terminal
    try:
        yield
    finally:
        terminal.flush()
        sys.stderr = python_stderr
        os.dup2(terminal_fd, 2)
        terminal.close()
