"""Projecting the aggregates that reach the hub: for each regency and month, the highest revision.

A regency publishes a month's ``AggregateReported`` once the month closes, and again with a
higher ``revision`` when a late event changes it. :func:`record_arrivals` keeps, per regency and
month, the aggregate with the highest revision it has seen: an older or equal revision (a
redelivery, a replay of the stream, a revision overtaken on the way) changes nothing. The
figures are stored one row per indicator and per phase alongside (``national_cells``,
``national_phase_units``), replaced together with their aggregate, and the totals of the
provinces and months they touch are recounted (:mod:`.totals`).

That the aggregate is the regency's own (its payload's ``regency`` is the code in its subject)
is the consumer's check (:mod:`pulih.reporting.national.consumers`), made before anything here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import CloudEvent
from pulih.contracts.events.reporting import AggregateReported
from pulih.reporting.national.directory import province_of
from pulih.reporting.national.store import national_aggregates, national_cells, national_phase_units
from pulih.reporting.national.totals import refresh_totals

_KEYS_PER_QUERY = 400
"""(regency, period) pairs per ``IN (…)``: two bound parameters each, well under SQLite's limit."""


@dataclass(frozen=True)
class Arrival:
    """One aggregate as it reached the national view: its event id and place in ``NATIONAL``."""

    aggregate: AggregateReported
    event_id: UUID
    stream_seq: int = 0
    received_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(regency, period): what a later revision replaces."""
        return (self.aggregate.regency, self.aggregate.period)


def _latest_of(arrivals: Iterable[Arrival]) -> dict[tuple[str, str], Arrival]:
    """Per (regency, period), the arrival with the highest revision (the first of equal ones)."""
    latest: dict[tuple[str, str], Arrival] = {}
    for arrival in arrivals:
        held = latest.get(arrival.key)
        if held is None or arrival.aggregate.revision > held.aggregate.revision:
            latest[arrival.key] = arrival
    return latest


async def _revisions_held(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    held: dict[tuple[str, str], int] = {}
    pair = tuple_(national_aggregates.c.regency, national_aggregates.c.period)
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        rows = await session.execute(
            select(
                national_aggregates.c.regency, national_aggregates.c.period, national_aggregates.c.revision
            ).where(pair.in_(keys[start : start + _KEYS_PER_QUERY]))
        )
        held.update({(row.regency, row.period): row.revision for row in rows})
    return held


async def record_arrivals(
    session: AsyncSession, arrivals: Sequence[Arrival], *, now: datetime | None = None
) -> int:
    """Keep each arrival that is a higher revision of its regency's month than the one held, in
    the caller's transaction; returns how many (regency, month) pairs changed."""
    latest = _latest_of(arrivals)
    if not latest:
        return 0
    held = await _revisions_held(session, list(latest))
    winners = [a for key, a in latest.items() if a.aggregate.revision > held.get(key, 0)]
    if not winners:
        return 0
    replaced = [a.key for a in winners if a.key in held]
    for table in (national_cells, national_phase_units, national_aggregates):
        pair = tuple_(table.c.regency, table.c.period)
        for start in range(0, len(replaced), _KEYS_PER_QUERY):
            await session.execute(delete(table).where(pair.in_(replaced[start : start + _KEYS_PER_QUERY])))
    received = now or datetime.now(UTC)
    await session.execute(
        national_aggregates.insert(),
        [
            {
                "regency": a.aggregate.regency,
                "period": a.aggregate.period,
                "revision": a.aggregate.revision,
                "event_id": a.event_id,
                "generated_at": a.aggregate.generated_at,
                "indicators": {str(k): v for k, v in a.aggregate.indicators.items()},
                "units_by_phase": {str(k): v for k, v in a.aggregate.units_by_phase.items()},
                "suppressed_below": a.aggregate.suppressed_below,
                "received_at": (a.received_at or received).astimezone(UTC),  # SQLite keeps no offset
                "stream_seq": a.stream_seq,
            }
            for a in winners
        ],
    )
    cells = [
        {
            "period": a.aggregate.period,
            "indicator": str(indicator),
            "regency": a.aggregate.regency,
            "province": province_of(a.aggregate.regency),
            "value": value,
        }
        for a in winners
        for indicator, value in a.aggregate.indicators.items()
    ]
    if cells:
        await session.execute(national_cells.insert(), cells)
    phases = [
        {
            "period": a.aggregate.period,
            "phase": str(phase),
            "regency": a.aggregate.regency,
            "province": province_of(a.aggregate.regency),
            "units": units,
        }
        for a in winners
        for phase, units in a.aggregate.units_by_phase.items()
    ]
    if phases:
        await session.execute(national_phase_units.insert(), phases)
    await refresh_totals(session, {(province_of(a.aggregate.regency), a.aggregate.period) for a in winners})
    return len(winners)


async def apply_aggregates(
    session: AsyncSession,
    events: Iterable[AggregateReported | CloudEvent[AggregateReported]],
    *,
    received_at: datetime | None = None,
) -> int:
    """Record ``events`` (bare aggregates or their envelopes) as if they had reached the hub, in
    the caller's transaction: the seam for tests and seeds. Returns how many (regency, month)
    pairs changed. Commit it yourself (``async with database.transaction() as session``)."""
    arrivals = []
    for seq, event in enumerate(events, start=1):
        if isinstance(event, CloudEvent):
            arrivals.append(Arrival(event.data, event.id, seq, received_at))
        else:
            arrivals.append(Arrival(event, uuid4(), seq, received_at))
    return await record_arrivals(session, arrivals, now=received_at)
