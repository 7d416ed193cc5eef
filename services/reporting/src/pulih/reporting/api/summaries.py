"""``GET /v1/referrals/summary`` and ``GET /v1/qol/summary``: the referral and quality-of-life
figures of the dashboard, over a range of months (the last twelve by default)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pulih.kit.auth import CurrentUser, allow
from pulih.kit.deps import RuntimeDep
from pulih.reporting import figures
from pulih.reporting.api.params import MONTH, READERS, unit_id_of, unit_scope
from pulih.reporting.bodies import QolSummary, ReferralSummary
from pulih.reporting.domain.periods import PeriodKind
from pulih.reporting.ranges import period_range
from pulih.reporting.store import LIVE

router = APIRouter(prefix="/v1", tags=["summaries"])

Since = Annotated[
    str | None,
    Query(
        alias="from",
        description="first month, YYYY-MM, not after `to` (default: 11 months before to)",
        json_schema_extra=MONTH,
    ),
]
Until = Annotated[
    str | None,
    Query(
        alias="to", description="last month, YYYY-MM, included (default: this month)", json_schema_extra=MONTH
    ),
]
OneUnit = Annotated[
    str | None,
    Query(description="one unit (the whole regency if left out)", json_schema_extra={"format": "uuid"}),
]

REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "an agent asking for another unit; a national or clinic token"},
    422: {"description": "a bad month or range (`field` names the parameter)"},
}


@router.get(
    "/referrals/summary", response_model=ReferralSummary, dependencies=[allow(*READERS)], responses=REFUSALS
)
async def referral_summary(
    runtime: RuntimeDep,
    principal: CurrentUser,
    since: Since = None,
    until: Until = None,
    unit_id: OneUnit = None,
) -> ReferralSummary:
    """Referrals made in the range by status; how many clinics answered and how many in time;
    the median days from referral to acceptance and to closing; and every referral overdue
    today (unanswered after ``respond_by``), whenever it was made. Agents: their own unit."""
    scope = unit_scope(principal, unit_id_of(unit_id))
    today = runtime.clock.today()
    months = period_range(PeriodKind.MONTH, since, until, today)
    async with runtime.database.sessions() as session:
        return await figures.referral_summary(session, LIVE, scope, months, today)


@router.get("/qol/summary", response_model=QolSummary, dependencies=[allow(*READERS)], responses=REFUSALS)
async def qol_summary(
    runtime: RuntimeDep,
    principal: CurrentUser,
    since: Since = None,
    until: Until = None,
    unit_id: OneUnit = None,
) -> QolSummary:
    """WHOQOL-BREF change (exit against baseline) of the clients who left the programme in the
    range: mean score per domain at both ends, mean change, and how many improved. Agents:
    their own unit."""
    scope = unit_scope(principal, unit_id_of(unit_id))
    months = period_range(PeriodKind.MONTH, since, until, runtime.clock.today())
    async with runtime.database.sessions() as session:
        return await figures.qol_summary(session, LIVE, scope, months)
