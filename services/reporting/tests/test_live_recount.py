"""The live consumer's handler recounts at most every ``settle`` seconds: a batch that comes
sooner is projected at once but only notes where its recount begins, and
:func:`handlers.recount_deferred` (the ``recount-deferred`` job) recounts it later, once."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from reporting_projection import TIMEZONE, TODAY, Projection
from sqlalchemy import select
from test_handlers import count, deliveries, founding, registered

from pulih.kit.clock import ManualClock
from pulih.kit.emitter import Emitter
from pulih.kit.testing import REGENCY
from pulih.kit.unit_of_work import UnitOfWork
from pulih.reporting import handlers
from pulih.reporting.deps import DEFAULT_PHASE_CRITERIA, JobPacing
from pulih.reporting.indicators import DEFERRED_SINCE
from pulih.reporting.store import LIVE


def live_projection(**tuning: Any) -> handlers.LiveProjection:
    """The live consumer's handler for the regency, its clock at ``TODAY``, tuned by ``tuning``."""
    return handlers.LiveProjection(
        regency=REGENCY,
        timezone=TIMEZONE,
        criteria=DEFAULT_PHASE_CRITERIA,
        clock=ManualClock(start=TODAY),
        **tuning,
    )


async def consume(projection: Projection, live: handlers.LiveProjection, *events: Any) -> None:
    """``live`` applies ``events`` as one batch, in a transaction of its own."""
    async with projection.database.transaction() as session:
        await live(UnitOfWork(session, Emitter(regency=REGENCY)), deliveries(projection, *events))


async def deferred(projection: Projection) -> bool:
    async with projection.database.transaction() as session:
        p = LIVE.position
        return await session.scalar(select(p.c.consumer).where(p.c.consumer == DEFERRED_SINCE)) is not None


async def test_a_batch_soon_after_a_recount_is_recounted_later_once(projection_store: Projection) -> None:
    live = live_projection(settle=60.0, recounted=time.monotonic() - 120.0)

    async def recount() -> date | None:
        async with projection_store.database.transaction() as session:
            return await handlers.recount_deferred(
                UnitOfWork(session, Emitter(regency=REGENCY)),
                today=TODAY,
                regency=REGENCY,
                timezone=TIMEZONE,
                criteria=DEFAULT_PHASE_CRITERIA,
            )

    await consume(
        projection_store, live, *founding(), registered(date(2026, 2, 3))
    )  # the last recount is old: at once
    assert (await projection_store.cells())[("2026-02", "clients_registered")] == 1
    assert not await deferred(projection_store)
    await consume(
        projection_store, live, registered(date(2026, 2, 4))
    )  # within settle: projected, not recounted
    assert await count(projection_store, LIVE.clients) == 2
    assert (await projection_store.cells())[("2026-02", "clients_registered")] == 1
    assert await deferred(projection_store)
    assert await recount() == date(2026, 2, 4)
    assert (await projection_store.cells())[("2026-02", "clients_registered")] == 2
    assert not await deferred(projection_store)
    assert await recount() is None, "nothing left: the job changes nothing"


async def test_a_batch_of_nothing_dated_defers_nothing(projection_store: Projection) -> None:
    live = live_projection(settle=60.0, recounted=time.monotonic() - 120.0)
    await consume(projection_store, live, *founding())
    before = await projection_store.rows(LIVE.position)
    await consume(projection_store, live)
    after = await projection_store.rows(LIVE.position)
    assert {row.consumer for row in after} == {row.consumer for row in before}, "the stocks still stand"


async def test_the_consumer_tells_the_job_when_it_catches_up_and_when_it_recounted(
    projection_store: Projection,
) -> None:
    pacing = JobPacing()
    live = live_projection(
        batch_size=2,
        settle=5.0,
        recounted=time.monotonic() - 10.0,  # within recount_every (30 s), past settle
        pacing=pacing,
    )

    await consume(projection_store, live, *founding())  # full: more are waiting, the job keeps off
    assert pacing.catching_up and pacing.recounted == 0.0
    await consume(
        projection_store, live, registered(date(2026, 2, 3))
    )  # the last of the backlog: recounted here
    assert not pacing.catching_up and pacing.recounted > 0.0
    assert (await projection_store.cells())[("2026-02", "clients_registered")] == 1
