"""Reporting's use case on SQLite and PostgreSQL: a batch of the stream is projected, its cells
recounted and its units' phases noted as changed (or brought up to date) in the caller's unit of
work; the live consumer's handler defers the recount while full batches say more are waiting,
and assesses the phases at most every so often."""

from __future__ import annotations

from datetime import date
from typing import Any

from reporting_histories import Delivery
from reporting_projection import TIMEZONE, TODAY, Projection, envelope, ids
from sqlalchemy import func, select

from pulih.contracts.events.outreach import AgentRegistered, ClientRegistered, UnitEstablished
from pulih.kit.clock import ManualClock
from pulih.kit.emitter import Emitter
from pulih.kit.testing import REGENCY
from pulih.kit.unit_of_work import UnitOfWork
from pulih.reporting import handlers
from pulih.reporting.deps import DEFAULT_PHASE_CRITERIA
from pulih.reporting.phases import CHANGED_FROM
from pulih.reporting.store import LIVE

UNIT = ids(1)[0]


def deliveries(projection: Projection, *events: Any) -> list[Delivery]:
    """``events`` as the consumer receives them, with the projection's next stream sequences."""
    batch = []
    for event in events:
        projection.seq += 1
        batch.append(Delivery(envelope(event), projection.seq))
    return batch


def founding() -> list[Any]:
    return [
        UnitEstablished(
            unit_id=UNIT, name="Unit Kenanga", village_code="3301012001", established_on=date(2026, 1, 2)
        ),
        AgentRegistered(agent_id=ids(1)[0], unit_id=UNIT, trained_on=date(2026, 1, 3)),
    ]


def registered(on: date) -> ClientRegistered:
    return ClientRegistered(
        client_id=ids(1)[0], unit_id=UNIT, registered_on=on, sex="f", age_band="25_34", came_through="family"
    )


async def count(projection: Projection, table: Any) -> int:
    async with projection.database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_batch_is_projected_recounted_and_its_units_assessed(projection_store: Projection) -> None:
    batch = deliveries(projection_store, *founding(), registered(date(2026, 2, 3)))
    async with projection_store.database.transaction() as session:
        uow = UnitOfWork(session, Emitter(regency=REGENCY))
        since = await handlers.project_batch(
            uow,
            batch,
            today=TODAY,
            regency=REGENCY,
            timezone=TIMEZONE,
            criteria=DEFAULT_PHASE_CRITERIA,
            assess=True,
        )
    assert since == date(2026, 1, 2)
    assert (await projection_store.cells())[("2026-02", "clients_registered")] == 1
    phases = {row.period: row.phase for row in await projection_store.rows(LIVE.unit_phases)}
    assert phases == {"2026-01": "rintisan", "2026-02": "rintisan"}, "March is running: not assessed"


async def test_the_live_handler_defers_the_recount_while_batches_are_full(
    projection_store: Projection,
) -> None:
    live = handlers.LiveProjection(
        regency=REGENCY,
        timezone=TIMEZONE,
        criteria=DEFAULT_PHASE_CRITERIA,
        clock=ManualClock(start=TODAY),
        batch_size=2,
    )

    async def consume(*events: Any) -> None:
        async with projection_store.database.transaction() as session:
            await live(UnitOfWork(session, Emitter(regency=REGENCY)), deliveries(projection_store, *events))

    await consume(*founding())  # full: more are waiting
    await consume(registered(date(2026, 2, 3)), registered(date(2026, 2, 4)))
    assert await projection_store.cells() == {}
    assert await count(projection_store, LIVE.clients) == 2
    await consume(registered(date(2026, 3, 2)))  # caught up: everything since 2 January recounted
    cells = await projection_store.cells()
    assert (cells[("2026-02", "clients_registered")], cells[("2026-03", "clients_registered")]) == (2, 1)
    live.recount_every = 0.0  # a full batch too, once the last recount is that old
    await consume(registered(date(2026, 3, 3)), registered(date(2026, 3, 4)))
    assert (await projection_store.cells())[("2026-03", "clients_registered")] == 3


async def noted(projection: Projection) -> date | None:
    """The day the phases are noted as changed from, if any."""
    rows = [row for row in await projection.rows(LIVE.position) if row.consumer == CHANGED_FROM]
    return rows[0].event_time.date() if rows else None


async def test_the_live_handler_assesses_the_phases_at_most_every_so_often(
    projection_store: Projection,
) -> None:
    live = handlers.LiveProjection(
        regency=REGENCY, timezone=TIMEZONE, criteria=DEFAULT_PHASE_CRITERIA, clock=ManualClock(start=TODAY)
    )

    async def consume(*events: Any) -> None:
        async with projection_store.database.transaction() as session:
            await live(UnitOfWork(session, Emitter(regency=REGENCY)), deliveries(projection_store, *events))

    await consume(*founding())  # the first batch since the start: assessed at once
    assessed = {row.period: row.phase for row in await projection_store.rows(LIVE.unit_phases)}
    assert assessed == {"2026-01": "rintisan", "2026-02": "rintisan"}
    assert await noted(projection_store) is None
    # Within PHASES_AT_MOST_EVERY: the agents trained, noted from their day, assessed later.
    agents = [AgentRegistered(agent_id=ids(1)[0], unit_id=UNIT, trained_on=date(2026, 2, d)) for d in (2, 3)]
    await consume(*agents)
    assert await noted(projection_store) == date(2026, 2, 2)
    three_agents = {
        row.period: row.criteria["tumbuh"]["active_agents"]
        for row in await projection_store.rows(LIVE.unit_phases)
    }
    assert three_agents == {"2026-01": False, "2026-02": False}
    live.phases_every = 0.0
    await consume(registered(date(2026, 3, 2)))
    assert await noted(projection_store) is None
    three_agents = {
        row.period: row.criteria["tumbuh"]["active_agents"]
        for row in await projection_store.rows(LIVE.unit_phases)
    }
    assert three_agents == {"2026-01": False, "2026-02": True}
