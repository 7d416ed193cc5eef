"""What the national view subscribes to: ``NATIONAL``, every regency's aggregates, in batches.

One durable consumer (``reporting-national``, filter ``ibm.*.reporting.aggregate_reported``)
reads the hub's ``NATIONAL`` stream in order and hands each batch to :func:`apply_batch` in one
unit of work; the kit's inbox skips what was applied already (a redelivery, a replay). The
stream is the hub's, declared by ``pulih federation declare``: until it exists the service
waits, saying so (:func:`wait_for_national`), and declares nothing itself.

An aggregate counts only if three say the same regency: the hub, whose ``Nats-Stream-Source``
header names the regency link it came through (``IBM_<code>:<hash>``, stamped by the hub, not
the regency: :mod:`.provenance`), its subject (``ibm.<code>.…``) and its ``regency`` (in its
payload and envelope). Otherwise it is refused: ``unsourced`` without that header (it did not
come through any regency's link), ``forged_regency`` when they differ (a regency's server
claiming another's subject, or its services another's code). A refused aggregate is
dead-lettered on ``national.dlq.reporting`` (stream ``NATIONAL_DLQ``) and counts nowhere. The
servers already stop a regency from publishing under another's code; this is the view's own
check, and the one that holds against a regency server that lies about the subject. Any other
event on an aggregate subject (a regency's ``ClientScreened`` published there by mistake) is
dead-lettered too (``not_an_aggregate``), not skipped in silence: only aggregates may cross, and
the national office has to hear of whatever else did.
"""

from __future__ import annotations

from collections.abc import Sequence

from faststream.nats import NatsBroker
from nats.js.errors import NotFoundError

from pulih.contracts.events.reporting import AggregateReported
from pulih.kit.batch_consumer import DeadLetterRoute, Received, subscribe_batches
from pulih.kit.consumers import Rejected
from pulih.kit.federation import names
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.unit_of_work import UnitOfWork
from pulih.reporting.national.projection import Arrival, record_arrivals
from pulih.reporting.national.provenance import SOURCE_HEADER, source_of, sourced_from

DURABLE = names.NATIONAL_DURABLE.removeprefix("reporting-")
"""The durable's name: ``reporting-national``."""

BATCH_SIZE = 500
"""Aggregates per transaction (514 regencies' month is about one batch)."""


class NationalStreamMissing(RuntimeError):
    """The hub has no ``NATIONAL`` stream yet."""


def subject_regency(subject: str) -> str | None:
    """The regency code of an ``ibm.<code>.…`` subject (None for any other)."""
    parts = subject.split(".")
    if len(parts) > 2 and parts[0] == "ibm" and len(parts[1]) == 4 and parts[1].isdigit():
        return parts[1]
    return None


def arrival_of(received: Received) -> Arrival:
    """The aggregate of ``received``; :class:`Rejected` when it is no aggregate
    (``not_an_aggregate``), came through no regency's link (``unsourced``), or its subject,
    payload and link do not name one same regency (``forged_regency``)."""
    aggregate = received.event.data
    if not isinstance(aggregate, AggregateReported):
        raise Rejected(
            "not_an_aggregate",
            f"a {received.event.type} on {received.subject}: only AggregateReported leaves a regency",
        )
    code = subject_regency(received.subject)
    if code is None or aggregate.regency != code or received.event.regency != code:
        raise Rejected(
            "forged_regency",
            f"an aggregate of regency {aggregate.regency} (envelope {received.event.regency}) on "
            f"{received.subject}: a regency reports only its own",
        )
    source = source_of(received.headers)
    if source is None:
        raise Rejected(
            "unsourced",
            f"an aggregate of regency {code} on {received.subject} without {SOURCE_HEADER}: "
            "it came through no regency's link",
        )
    if not sourced_from(received.headers, code):
        raise Rejected(
            "forged_regency",
            f"an aggregate of regency {code} on {received.subject} came through the link of "
            f"{source.name}: a regency reports only its own",
        )
    return Arrival(aggregate, received.event.id, received.stream_seq)


async def apply_batch(uow: UnitOfWork, received: Sequence[Received]) -> None:
    """Keep the highest revision of each regency's month among ``received`` (in the batch's unit
    of work); a refused event (forged, or no aggregate) refuses the batch, which the kit then
    applies one at a time."""
    await record_arrivals(uow.session, [arrival_of(r) for r in received])


async def wait_for_national(broker: NatsBroker, runtime: ServiceRuntime) -> None:
    """Connecting: check that the hub has ``NATIONAL`` (the service's connection retries, and
    logs why, until it has)."""
    try:
        await broker.connection.jetstream().stream_info(names.NATIONAL_STREAM)
    except NotFoundError:
        raise NationalStreamMissing(
            f"the hub has no {names.NATIONAL_STREAM} stream yet (declare it: pulih federation declare)"
        ) from None


def subscribe(runtime: ServiceRuntime, broker: NatsBroker) -> None:
    """Register the national view's consumer of ``NATIONAL``."""
    subscribe_batches(
        runtime,
        broker,
        durable=DURABLE,
        subject=names.NATIONAL_FILTER,
        apply=apply_batch,
        batch_size=BATCH_SIZE,
        types=None,  # every event: what is not an aggregate is dead-lettered (arrival_of)
        stream=names.NATIONAL_STREAM,
        dead_letters=DeadLetterRoute(
            names.NATIONAL_DLQ_REPORTING, names.NATIONAL_DLQ_STREAM, runtime.settings.regency
        ),
    )
