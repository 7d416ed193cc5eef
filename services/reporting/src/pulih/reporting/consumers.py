"""What reporting subscribes to: the whole regency stream, in ordered batches.

One durable consumer (``reporting-stream``) reads ``ibm.<regency>.>`` in stream order. Each batch,
in one unit of work: the projection (:func:`projection.apply_batch`, which keeps its own inbox
and position, so the kit does not: ``tracks_itself``), the indicator cells it changed
(:func:`indicators.refresh`) and the unit phases from the earliest month it touched
(:func:`phases.reassess`). While it catches up (full batches) the recount waits for the last
batch, or RECOUNT_AT_LEAST_EVERY seconds. Events reporting does not project (consents, erasures,
its own ``AggregateReported``, dead letters) are tracked and otherwise skipped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from faststream.nats import NatsBroker

from pulih.kit.batch_consumer import Received, subscribe_batches
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.unit_of_work import UnitOfWork
from pulih.reporting import indicators, phases, projection
from pulih.reporting.deps import ReportingDeps
from pulih.reporting.store import LIVE

DURABLE = "stream"
"""The durable's name: ``reporting-stream``."""

BATCH_SIZE = 1000
"""Events per transaction: large enough that a commit's cost spreads thin on catch-up."""

RECOUNT_AT_LEAST_EVERY = 30.0
"""Seconds: while catching up, the indicators are still recounted this often."""


def subscribe(runtime: ServiceRuntime, broker: NatsBroker) -> None:
    """Register reporting's consumer of the whole regency stream."""
    deps = runtime.deps_as(ReportingDeps)
    settings = runtime.settings

    recounted = [time.monotonic()]

    async def apply(uow: UnitOfWork, received: Sequence[Received]) -> None:
        today = runtime.clock.today()
        touched = await projection.apply_batch(uow.session, LIVE, received, timezone=settings.timezone)
        # A full batch means more are waiting: recount once the consumer has caught up, not
        # after every batch of a year's backlog (but at least every RECOUNT_AT_LEAST_EVERY).
        behind = len(received) >= BATCH_SIZE and time.monotonic() - recounted[0] < RECOUNT_AT_LEAST_EVERY
        since = await indicators.refresh(
            uow.session, LIVE, touched, today=today, regency=settings.regency, defer=behind
        )
        if since is not None:
            # From the earliest month the recount touched, and at least the current one: a
            # phase changes with time alone (outreach in each of the last 3 months…).
            await phases.reassess(uow.session, LIVE, since, today=today, criteria=deps.phase_criteria)
            recounted[0] = time.monotonic()

    subscribe_batches(
        runtime,
        broker,
        durable=DURABLE,
        subject=f"ibm.{settings.regency}.>",
        apply=apply,
        batch_size=BATCH_SIZE,
        tracks_itself=True,
    )
