"""Periodic jobs: the time-driven rules a service applies on its own (stage ends, dropouts,
a clinic's deadline passing).

A job is an async function of the runtime that returns how many things it did. It runs every
``interval`` seconds, at once when the service's :class:`~pulih.kit.clock.ManualClock` is moved,
and never twice at the same time in one process. A failing run is logged and retried at the
next tick. A wake finds nothing to do when a run that started after it has already finished (the
clock's ``PUT`` runs the jobs itself before it answers).

Running a job in two replicas against one database is safe only if the job's writes are
conditional: each job changes a row only if it still is in the state the job read (a version
column, ``UPDATE … WHERE state = …``), so the second replica finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pulih.kit.clock import ManualClock
from pulih.kit.runtime import ServiceRuntime

log = logging.getLogger("pulih.scheduler")

Job = Callable[[ServiceRuntime], Awaitable[int]]
"""One run of a periodic job; returns how many things it changed."""


@dataclass
class PeriodicJob:
    """A job, how often it runs, and what it has done."""

    name: str
    job: Job
    interval: float
    runs: int = 0
    changed: int = 0
    failures: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _wakes: int = field(default=0, repr=False)
    _covered: int = field(default=0, repr=False)
    """The wakes before the start of the last run that finished."""

    def wake(self) -> None:
        """Run as soon as possible instead of waiting for the next tick."""
        self._wakes += 1
        self._wake.set()

    async def run_once(self, runtime: ServiceRuntime, *, unless_covered: bool = False) -> int:
        """Run the job now (waiting for a run in progress to finish first); with
        ``unless_covered``, only if no finished run started after the last wake."""
        async with self._lock:
            if unless_covered and self._covered == self._wakes:
                return 0
            wakes = self._wakes
            changed = await self.job(runtime)
            self._covered = wakes
            self.runs += 1
            self.changed += changed
            if changed:
                log.info("%s changed %d", self.name, changed)
            return changed

    async def loop(self, runtime: ServiceRuntime) -> None:
        """Run every ``interval`` seconds, or when woken, until cancelled."""
        woken = False
        while True:
            self._wake.clear()
            try:
                await self.run_once(runtime, unless_covered=woken)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                log.exception("%s failed; retrying at the next tick", self.name)
            woken = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
                woken = True


def periodic(
    name: str, job: Job, interval: Callable[[ServiceRuntime], float]
) -> Callable[[ServiceRuntime], asyncio.Task[None]]:
    """A :class:`~pulih.kit.service.ServiceSpec` background entry that runs ``job`` periodically.

    The job is kept in ``runtime.jobs[name]`` (tests call its ``run_once``); a manual clock
    wakes it whenever it is moved.
    """

    def start(runtime: ServiceRuntime) -> asyncio.Task[None]:
        periodic_job = PeriodicJob(name, job, interval(runtime))
        runtime.jobs[name] = periodic_job
        if isinstance(runtime.clock, ManualClock):
            runtime.clock.on_change(periodic_job.wake)
        return asyncio.create_task(periodic_job.loop(runtime), name=f"pulih-job-{name}")

    return start
