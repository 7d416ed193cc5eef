"""ARCHITECTURE.md invariant 2, the inbox: what a consumer applied is recorded with the effect.

These pin the inbox's job on its own, with an effect that is NOT idempotent (a counter), so the
effect tables' keys cannot hide a missing record: an event recorded as applied is recognised for
that consumer and no other, a record rolls back with its effect, a second record of one event
fails at commit and takes its effect with it, and ``position`` is the consumer's own highest
stream sequence (where a rebuild resumes).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, update
from sqlalchemy.exc import IntegrityError

from pulih.kit import inbox
from pulih.kit.database import Database, kit_metadata

effects = MetaData()
counter = Table("counter", effects, Column("name", String(20), primary_key=True), Column("n", Integer))

CONSUMER = "rehab.outreach-events"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
        await conn.run_sync(effects.create_all)
        await conn.execute(counter.insert().values(name="c", n=0))
    try:
        yield database
    finally:
        await database.dispose()


async def apply(database: Database, event_id: uuid.UUID, seq: int, consumer: str = CONSUMER) -> bool:
    """How a consumer applies an event: skip if recorded, else count once and record, in one
    transaction. Whether it had an effect."""
    async with database.transaction() as session:
        if await inbox.already_applied(session, consumer, event_id):
            return False
        await session.execute(update(counter).values(n=counter.c.n + 1))
        await inbox.record_applied(session, consumer, event_id, seq)
    return True


async def count(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(counter.c.n)) or 0)


async def test_an_event_applied_twice_counts_once(database: Database) -> None:
    event_id = uuid.uuid4()
    assert await apply(database, event_id, 1) is True
    assert await apply(database, event_id, 1) is False
    assert await count(database) == 1


async def test_an_applied_event_is_recognised_only_for_its_consumer_and_its_id(database: Database) -> None:
    event_id, other = uuid.uuid4(), uuid.uuid4()
    async with database.sessions() as session:
        assert await inbox.already_applied(session, CONSUMER, event_id) is False
    await apply(database, event_id, 7)
    async with database.sessions() as session:
        assert await inbox.already_applied(session, CONSUMER, event_id) is True
        assert await inbox.already_applied(session, CONSUMER, other) is False
        assert await inbox.already_applied(session, "referral.outreach-events", event_id) is False
    # another consumer applies the same event once for itself
    assert await apply(database, event_id, 7, consumer="referral.outreach-events") is True
    assert await count(database) == 2


async def test_a_record_rolls_back_with_its_effect(database: Database) -> None:
    event_id = uuid.uuid4()

    class HandlerFailed(Exception):
        pass

    with pytest.raises(HandlerFailed):
        async with database.transaction() as session:
            await session.execute(update(counter).values(n=counter.c.n + 1))
            await inbox.record_applied(session, CONSUMER, event_id, 3)
            raise HandlerFailed
    assert await count(database) == 0
    async with database.sessions() as session:
        assert await inbox.already_applied(session, CONSUMER, event_id) is False
        assert await inbox.position(session, CONSUMER) == 0
    assert await apply(database, event_id, 3) is True  # the redelivery applies it, once
    assert await count(database) == 1


async def test_a_concurrent_second_application_fails_at_commit_and_takes_its_effect_with_it(
    database: Database,
) -> None:
    event_id = uuid.uuid4()
    await apply(database, event_id, 5)
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:  # one that checked before the first committed
            await session.execute(update(counter).values(n=counter.c.n + 1))
            await inbox.record_applied(session, CONSUMER, event_id, 5)
    assert await count(database) == 1


async def test_position_is_the_consumer_s_own_highest_stream_sequence(database: Database) -> None:
    async with database.sessions() as session:
        assert await inbox.position(session, CONSUMER) == 0
    for seq in (3, 9, 4):
        await apply(database, uuid.uuid4(), seq)
    await apply(database, uuid.uuid4(), 42, consumer="referral.outreach-events")
    async with database.sessions() as session:
        assert await inbox.position(session, CONSUMER) == 9
        assert await inbox.position(session, "referral.outreach-events") == 42
        assert await inbox.position(session, "reporting.outreach-events") == 0


async def test_recording_stores_the_stream_sequence_it_was_given(database: Database) -> None:
    event_id = uuid.uuid4()
    await apply(database, event_id, 11)
    async with database.sessions() as session:
        row = (
            await session.execute(
                select(inbox.inbox_table.c.stream_seq, inbox.inbox_table.c.applied_at).where(
                    inbox.inbox_table.c.event_id == event_id
                )
            )
        ).one()
    assert row.stream_seq == 11 and row.applied_at is not None


async def test_applied_among_names_exactly_the_applied_events(database: Database) -> None:
    applied, other_consumer, never = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await apply(database, applied, 1)
    await apply(database, other_consumer, 2, consumer="rehab.referral-events")
    async with database.sessions() as session:
        assert await inbox.applied_among(session, [applied, other_consumer, never]) == {
            applied,
            other_consumer,
        }
        assert await inbox.applied_among(session, [never]) == set()
        assert await inbox.applied_among(session, []) == set()
