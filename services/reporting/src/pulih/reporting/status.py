"""How far reporting is: ``pulih reporting status`` prints this.

- *lag*: how many stream messages the projection has not applied yet (the stream's last
  sequence, which the caller asks NATS for, minus the projection's ``position``);
- the last event applied (its id, its time, when it was applied);
- the aggregates published: months, revisions, the latest one, and how many still wait in the
  outbox for the relay (NATS down, or the relay behind).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from pulih.kit.database import Database
from pulih.kit.outbox import outbox_table
from pulih.reporting.indicators import STOCKS_COUNTED
from pulih.reporting.projection import CONSUMER
from pulih.reporting.store import LIVE, ProjectionTables, published_aggregates

AGGREGATE_SUBJECT_END = ".reporting.aggregate_reported"


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


async def reporting_status(
    database: Database, *, stream_last_seq: int | None = None, tables: ProjectionTables = LIVE
) -> dict[str, Any]:
    """Reporting's state as plain JSON: lag behind the stream (when ``stream_last_seq`` is
    given), the last event applied, the days and months counted, and the aggregates published."""
    p, t, o = tables.position, published_aggregates, outbox_table
    async with database.sessions() as session:
        position = (
            await session.execute(
                select(p.c.stream_seq, p.c.event_id, p.c.event_time, p.c.applied_at).where(
                    p.c.consumer == CONSUMER
                )
            )
        ).first()
        applied = await session.scalar(select(func.count()).select_from(tables.applied_events))
        stocks_on = await session.scalar(select(p.c.event_time).where(p.c.consumer == STOCKS_COUNTED))
        assessed_to = await session.scalar(select(func.max(tables.unit_phases.c.period)))
        periods = await session.scalar(select(func.count(func.distinct(t.c.period))))
        revisions = await session.scalar(select(func.count()).select_from(t))
        latest = (
            await session.execute(
                select(t.c.period, t.c.revision, t.c.generated_at)
                .order_by(t.c.period.desc(), t.c.revision.desc())
                .limit(1)
            )
        ).first()
        waiting = await session.scalar(
            select(func.count())
            .select_from(o)
            .where(o.c.published_at.is_(None), o.c.subject.endswith(AGGREGATE_SUBJECT_END))
        )
    applied_seq = 0 if position is None else int(position.stream_seq)
    return {
        "stream_last_seq": stream_last_seq,
        "applied_seq": applied_seq,
        "lag": None if stream_last_seq is None else max(0, stream_last_seq - applied_seq),
        "applied_events": int(applied or 0),
        "last_event": None
        if position is None
        else {
            "id": None if position.event_id is None else str(position.event_id),
            "time": _iso(position.event_time),
            "applied_at": _iso(position.applied_at),
        },
        "stocks_counted_on": None if stocks_on is None else stocks_on.date().isoformat(),
        "phases_assessed_to": assessed_to,
        "aggregates": {
            "months": int(periods or 0),
            "revisions": int(revisions or 0),
            "latest": None
            if latest is None
            else {
                "period": latest.period,
                "revision": int(latest.revision),
                "generated_at": _iso(latest.generated_at),
            },
            "waiting_in_outbox": int(waiting or 0),
        },
    }
