"""The inbox: which events a consumer has applied, written in the same transaction as the effect.

A redelivered or replayed event finds its id here and has no second effect. Projections read
:func:`position` to resume a rebuild from the last stream sequence they applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, DateTime, String, Table, Uuid, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.kit.database import kit_metadata

inbox_table = Table(
    "inbox",
    kit_metadata,
    Column("consumer", String(120), primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("stream_seq", BigInteger, nullable=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


async def already_applied(session: AsyncSession, consumer: str, event_id: UUID) -> bool:
    """Whether ``consumer`` has applied the event with ``event_id``."""
    found = await session.scalar(
        select(inbox_table.c.event_id).where(
            inbox_table.c.consumer == consumer, inbox_table.c.event_id == event_id
        )
    )
    return found is not None


async def applied_among(session: AsyncSession, event_ids: Iterable[UUID]) -> set[UUID]:
    """Which of ``event_ids`` any consumer of this service has applied (``Pulih-After`` waits on it)."""
    wanted = list(event_ids)
    if not wanted:
        return set()
    found = await session.scalars(
        select(inbox_table.c.event_id).where(inbox_table.c.event_id.in_(wanted)).distinct()
    )
    return set(found)


async def record_applied(
    session: AsyncSession, consumer: str, event_id: UUID, stream_seq: int | None = None
) -> None:
    """Record in the caller's transaction that ``consumer`` applied ``event_id``.

    The primary key makes a concurrent second application fail at commit, which rolls back
    its effect too.
    """
    await session.execute(
        inbox_table.insert().values(
            consumer=consumer,
            event_id=event_id,
            stream_seq=stream_seq,
            applied_at=datetime.now(UTC),
        )
    )


async def position(session: AsyncSession, consumer: str) -> int:
    """The highest stream sequence ``consumer`` has applied (0 if none)."""
    from sqlalchemy import func

    seq = await session.scalar(
        select(func.max(inbox_table.c.stream_seq)).where(inbox_table.c.consumer == consumer)
    )
    return int(seq or 0)
