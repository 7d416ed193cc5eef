"""What reporting subscribes to: the whole regency stream, in ordered batches.

One durable consumer (``reporting-stream``) reads ``ibm.<regency>.>`` in stream order. Each batch,
in one unit of work: the projection (:func:`projection.apply_batch`, which keeps its own inbox
and position, so the kit does not: ``tracks_itself``), the indicator cells it changed
(:func:`indicators.refresh`) and the unit phases from the earliest month it touched
(:func:`phases.reassess`). Events reporting does not project (consents, erasures, its own
``AggregateReported``, dead letters) are tracked and otherwise skipped.
"""

from __future__ import annotations

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


def subscribe(runtime: ServiceRuntime, broker: NatsBroker) -> None:
    """Register reporting's consumer of the whole regency stream."""
    deps = runtime.deps_as(ReportingDeps)
    settings = runtime.settings

    async def apply(uow: UnitOfWork, received: Sequence[Received]) -> None:
        today = runtime.clock.today()
        touched = await projection.apply_batch(uow.session, LIVE, received, timezone=settings.timezone)
        await indicators.refresh(uow.session, LIVE, touched, today=today, regency=settings.regency)
        # A month changes phase with time alone (outreach in each of the last 3 months…): the
        # current month is reassessed even when the batch touched nothing older.
        await phases.reassess(
            uow.session, LIVE, touched.earliest or today, today=today, criteria=deps.phase_criteria
        )

    subscribe_batches(
        runtime,
        broker,
        durable=DURABLE,
        subject=f"ibm.{settings.regency}.>",
        apply=apply,
        batch_size=BATCH_SIZE,
        tracks_itself=True,
    )
