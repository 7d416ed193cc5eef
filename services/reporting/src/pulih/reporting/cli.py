"""``pulih reporting rebuild|status``, and the progress display long jobs share.

The ``pulih`` command finds these through the ``pulih.commands`` entry point; what they need
is imported when they run, so ``pulih`` starts fast and other commands work whatever this
service's state.

``rebuild`` replays the regency's whole stream into fresh tables and swaps them in while the
API keeps answering (:mod:`pulih.reporting.rebuild`). ``status`` says how far the projection is
behind the stream, the last event it applied and the aggregates published.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

import nats.errors
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from pulih.kit.settings import Settings

DEFAULT_BATCH = 10_000
"""Events per transaction of a rebuild (``--batch``)."""
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
        self._task: TaskID | None = None
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


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pulih reporting rebuild|status`` (the ``pulih.commands`` entry point)."""
    reporting = commands.add_parser(
        "reporting", help="reporting's projection: rebuild it, or see how far it is"
    )
    sub = reporting.add_subparsers(dest="reporting_command", required=True)
    rebuild = sub.add_parser(
        "rebuild",
        help="replay the whole stream into fresh tables and swap them in while the API keeps answering",
    )
    rebuild.add_argument(
        "--fresh", action="store_true", help="drop what a rebuild that died left instead of resuming it"
    )
    rebuild.add_argument(
        "--batch",
        type=_positive,
        default=DEFAULT_BATCH,
        help=f"events per transaction (default {DEFAULT_BATCH})",
    )
    rebuild.add_argument("--json", action="store_true", help="end with the report as one JSON line")
    rebuild.set_defaults(pulih_command=run_rebuild)
    status = sub.add_parser("status", help="lag behind the stream, last event applied, aggregates published")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(pulih_command=run_status)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def run_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    """``pulih reporting rebuild``: the exit code."""
    from pulih.reporting.rebuild import rebuild_for

    job = rebuild_for(settings, batch_size=args.batch)
    try:
        with EventProgress("rebuild", None) as progress:
            report = asyncio.run(job.run(fresh=args.fresh, progress=progress))
    except (OSError, nats.errors.Error) as exc:
        print(f"pulih reporting rebuild: {exc}", file=sys.stderr)
        return 1
    resumed = f", resumed from seq {report.resumed_from:,}" if report.resumed_from else ""
    tails = f", {report.tail_rounds} tail(s) caught up before the swap" if report.tail_rounds else ""
    print(
        f"rebuilt up to seq {report.position:,}: {report.read:,} messages read{resumed}, "
        f"{report.invalid:,} invalid skipped, {report.events_per_second:,.0f} events/s; "
        f"replay {report.seconds.get('replay', 0):.1f} s, finish {report.seconds.get('finish', 0):.1f} s, "
        f"swap {report.seconds.get('swap', 0):.2f} s{tails}"
    )
    if args.json:
        figures = {**dataclasses.asdict(report), "events_per_second": round(report.events_per_second)}
        print(json.dumps(figures))
    return 0


async def projection_status(settings: Settings) -> dict[str, Any]:
    """What ``pulih reporting status`` shows, as plain JSON."""
    from pulih.contracts import stream_name
    from pulih.reporting.status import reporting_status
    from pulih.reporting.stream_reader import connect, last_sequence
    from pulih.reporting.swap import database_for, migrate

    nc = await connect(settings.nats_url, settings)
    try:
        last = await last_sequence(nc, settings.regency)
    finally:
        await nc.close()
    database = database_for(settings)
    try:
        await migrate(database)
        found = await reporting_status(database, stream_last_seq=last)
    finally:
        await database.dispose()
    return {"stream": stream_name(settings.regency), **found}


def run_status(settings: Settings, args: argparse.Namespace) -> int:
    """``pulih reporting status``: the exit code."""
    url = make_url(settings.database_url_for("reporting"))
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        # status only reads: it must not leave an empty store behind in the wrong data dir
        print(
            f"pulih reporting status: no reporting store at {url.database}: has reporting run with "
            "this data dir (PULIH_DATA_DIR)?",
            file=sys.stderr,
        )
        return 1
    try:
        found = asyncio.run(projection_status(settings))
    except (OSError, nats.errors.Error) as exc:
        print(f"pulih reporting status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(found))
        return 0
    print(f"stream {found['stream']}: last seq {found['stream_last_seq']:,}")
    print(f"projection: applied up to seq {found['applied_seq']:,}, {found['lag']:,} messages behind")
    last = found["last_event"]
    if last is None:
        print("last event applied: none yet")
    else:
        print(f"last event applied: {last['id']} of {last['time']} (applied at {last['applied_at']})")
    aggregates = found["aggregates"]
    latest = aggregates["latest"]
    print(
        f"aggregates published: {aggregates['months']} months, {aggregates['revisions']} revisions"
        + (
            f"; latest {latest['period']} revision {latest['revision']} at {latest['generated_at']}"
            if latest
            else ""
        )
        + (
            f"; {aggregates['waiting_in_outbox']} waiting in the outbox"
            if aggregates["waiting_in_outbox"]
            else ""
        )
    )
    return 0
