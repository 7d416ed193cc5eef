"""The one way into the outbox: a unit of work stamps every event with its chain."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from pulih.contracts import CloudEvent, new_event, parse_event
from pulih.contracts.events.outreach import ClientErased, ConsentWithdrawn
from pulih.kit.database import Database, kit_metadata
from pulih.kit.emitter import Emitter
from pulih.kit.outbox import outbox_table
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import make_settings


@pytest.fixture
async def runtime(tmp_path: Path) -> ServiceRuntime:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
    return ServiceRuntime("rehab", make_settings(tmp_path, nats_url="nats://x"), database, Emitter("3301"))


async def outbox(runtime: ServiceRuntime) -> list[CloudEvent[object]]:
    async with runtime.database.sessions() as s:
        payloads = (await s.scalars(select(outbox_table.c.payload).order_by(outbox_table.c.seq))).all()
    return [parse_event(p) for p in payloads]


def erased() -> ClientErased:
    return ClientErased(client_id=uuid.uuid4(), on=date(2026, 3, 1))


async def test_events_of_one_command_share_its_correlationid_and_have_no_cause(
    runtime: ServiceRuntime,
) -> None:
    async with runtime.unit_of_work(correlationid="request-1") as uow:
        await uow.emit(erased())
        await uow.emit(erased())
    assert [(e.correlationid, e.causationid) for e in await outbox(runtime)] == [
        ("request-1", None),
        ("request-1", None),
    ]


async def test_an_event_caused_by_another_names_it_and_carries_its_chain_on(runtime: ServiceRuntime) -> None:
    first = new_event(erased(), regency="3301", correlationid="request-1")
    async with runtime.unit_of_work(caused_by=first) as uow:
        await uow.emit(ConsentWithdrawn(consent_id=uuid.uuid4(), client_id=uuid.uuid4(), on=date(2026, 3, 2)))
    [caused] = await outbox(runtime)
    assert (caused.correlationid, caused.causationid) == ("request-1", str(first.id))


async def test_an_event_without_a_chain_starts_one_with_its_own_id(runtime: ServiceRuntime) -> None:
    orphan = new_event(erased(), regency="3301")
    async with runtime.unit_of_work(caused_by=orphan) as uow:
        await uow.emit(erased())
    [caused] = await outbox(runtime)
    assert (caused.correlationid, caused.causationid) == (str(orphan.id), str(orphan.id))


async def test_a_job_starts_a_new_chain_for_each_unit_of_work(runtime: ServiceRuntime) -> None:
    for _ in range(2):
        async with runtime.unit_of_work() as uow:
            await uow.emit(erased())
    first, second = await outbox(runtime)
    assert first.correlationid and second.correlationid and first.correlationid != second.correlationid
    assert first.causationid is None and second.causationid is None


async def test_nothing_reaches_the_outbox_when_the_unit_of_work_fails(runtime: ServiceRuntime) -> None:
    with pytest.raises(RuntimeError):
        async with runtime.unit_of_work() as uow:
            await uow.emit(erased())
            raise RuntimeError("the state change failed")
    assert await outbox(runtime) == []
