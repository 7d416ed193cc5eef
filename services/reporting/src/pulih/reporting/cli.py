"""``pulih reporting rebuild|status``, and the progress display long jobs share.

``rebuild`` replays the regency's whole stream into fresh tables and swaps them in while the
API keeps answering (:mod:`pulih.reporting.rebuild`). ``status`` says how far the projection is
behind the stream, the last event it applied and the aggregates published.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

QUIET_EVERY_SECONDS = 5.0
"""Without a terminal, how often a line says how far a job is."""


class _RateColumn(ProgressColumn):
    """Events per second, as rich measures them over its recent samples."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "- events/s", style="progress.data.speed")


class EventProgress:
    """How far a long job through events is: a rich bar with events/s and ETA on a terminal, a
    plain line every few seconds otherwise (a log, CI).

    Use as a context manager; :meth:`advance` after each batch, :meth:`set_total` when the total
    grows (a stream that keeps receiving events while it is replayed).
    """

    def __init__(self, description: str, total: int | None, *, stream: TextIO | None = None) -> None:
        """Show ``description`` over ``total`` events (None: not known yet)."""
        self.description = description
        self.total = total
        self.done = 0
        self._stream = stream or sys.stderr
        self._terminal = self._stream.isatty()
        self._progress: Progress | None = None
        self._task: int | None = None
        self._started = time.perf_counter()
        self._last_line = self._started

    def __enter__(self) -> EventProgress:
        self._started = self._last_line = time.perf_counter()
        if self._terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, tb)
        elif exc_type is None:
            self._line(final=True)

    def set_total(self, total: int) -> None:
        """The job now has ``total`` events in all."""
        self.total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    def advance(self, count: int) -> None:
        """``count`` more events are done."""
        self.done += count
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self.done)
        elif time.perf_counter() - self._last_line >= QUIET_EVERY_SECONDS:
            self._line()

    @property
    def elapsed(self) -> float:
        """Seconds since the job started."""
        return time.perf_counter() - self._started

    @property
    def rate(self) -> float:
        """Events per second since the job started."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def _line(self, *, final: bool = False) -> None:
        self._last_line = time.perf_counter()
        rate = self.rate
        if self.total:
            share = f"{self.done:,}/{self.total:,} events ({100 * self.done / self.total:.0f}%)"
            left = max(self.total - self.done, 0)
            eta = f", ETA {left / rate:.0f} s" if rate and not final else ""
        else:
            share, eta = f"{self.done:,} events", ""
        verb = "done" if final else "at"
        print(
            f"{self.description}: {verb} {share}, {rate:,.0f} events/s, {self.elapsed:.1f} s{eta}",
            file=self._stream,
            flush=True,
        )
