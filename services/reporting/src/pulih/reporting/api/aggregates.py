"""``GET /v1/aggregates``: the ``AggregateReported`` this regency published, as they left it.

The one route a national token may read: the figures here are the suppressed ones, exactly as
the national office received them. Facilitators and admins read it too (to see what BNN sees);
agents and clinics may not.

``generated_at`` is given with the regency's offset, as the event carried it (``+07:00`` in
Jakarta): PostgreSQL gives the instant back in UTC, and SQLite keeps no offset at all; there the
stored value is the regency's wall-clock time, which is what the job's clock writes.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from pulih.kit.auth import Role, allow
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Invalid, NotFound
from pulih.kit.strict import Flag
from pulih.reporting import aggregates
from pulih.reporting.api.params import MONTH

router = APIRouter(prefix="/v1", tags=["aggregates"])

_MONTH = re.compile(MONTH["pattern"])


class PublishedAggregate(BaseModel):
    """One ``AggregateReported`` as it was published (its event's data, and its event id)."""

    model_config = ConfigDict(from_attributes=True)

    period: str = Field(description="the month, YYYY-MM")
    revision: int = Field(description="1 the first time; the highest revision of a period counts")
    event_id: UUID = Field(description="the id of the AggregateReported event")
    generated_at: datetime
    indicators: dict[str, int | None] = Field(description="indicator → count, null where suppressed")
    units_by_phase: dict[str, int] = Field(description="phase → how many units were in it")
    suppressed_below: int = Field(description="counts from 1 to this minus one are null")


def in_regency_time(moment: datetime, timezone: str) -> datetime:
    """``moment`` with the regency's offset: an aware one converted, a naive one (SQLite keeps
    no offset) read as the regency's wall-clock time."""
    zone = ZoneInfo(timezone)
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


class PublishedAggregates(BaseModel):
    """What was published, oldest period first (and, with ``all``, oldest revision first)."""

    regency: str
    aggregates: list[PublishedAggregate]


@router.get(
    "/aggregates",
    response_model=PublishedAggregates,
    dependencies=[allow(Role.NATIONAL, Role.FACILITATOR, Role.ADMIN)],
    responses={
        404: {"description": "nothing was published for this month (yet)"},
        422: {"description": "period is not a month YYYY-MM"},
    },
)
async def published_aggregates(
    runtime: RuntimeDep,
    period: Annotated[
        str | None, Query(description="one month, YYYY-MM (every month if left out)", json_schema_extra=MONTH)
    ] = None,
    every_revision: Annotated[
        Flag, Query(alias="all", description="every revision, not only the latest of each month")
    ] = False,
) -> PublishedAggregates:
    """The aggregates this regency published: for each month the latest revision (the one that
    counts), or every revision with ``all=true``. National, facilitator and admin tokens."""
    if period is not None and not _MONTH.match(period):
        raise Invalid("invalid_period", f"period must be a month YYYY-MM, not {period!r}", "period")
    async with runtime.database.sessions() as session:
        rows = await aggregates.published(session, period=period, every_revision=every_revision)
    if period is not None and not rows:
        raise NotFound("not_published", f"no aggregate was published for {period}", "period")
    timezone = runtime.settings.timezone
    shown = [PublishedAggregate.model_validate(row) for row in rows]
    for aggregate in shown:
        aggregate.generated_at = in_regency_time(aggregate.generated_at, timezone)
    return PublishedAggregates(regency=runtime.settings.regency, aggregates=shown)
