"""What reporting subscribes to: the whole regency stream, in ordered batches.

One durable consumer (``reporting-stream``) reads ``ibm.<regency>.>`` in stream order, waits up
to :data:`~pulih.reporting.handlers.LINGER` for a batch to fill, and hands each batch to
:class:`pulih.reporting.handlers.LiveProjection` in one unit of work. The projection keeps its
own inbox and position (``tracks_itself``: they are swapped together with a rebuild). Events
reporting does not project (consents, erasures, its own ``AggregateReported``, dead letters)
are tracked and otherwise skipped.
"""

from __future__ import annotations

from faststream.nats import NatsBroker

from pulih.kit.batch_consumer import subscribe_batches
from pulih.kit.runtime import ServiceRuntime
from pulih.reporting import handlers

DURABLE = "stream"
"""The durable's name: ``reporting-stream``."""


def subscribe(runtime: ServiceRuntime, broker: NatsBroker) -> None:
    """Register reporting's consumer of the whole regency stream."""
    subscribe_batches(
        runtime,
        broker,
        durable=DURABLE,
        subject=f"ibm.{runtime.settings.regency}.>",
        apply=handlers.LiveProjection.of(runtime),
        batch_size=handlers.BATCH_SIZE,
        linger=handlers.LINGER,
        tracks_itself=True,
    )
