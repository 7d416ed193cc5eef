"""``GET /v1/units/phases``: each unit's phase (rintisan → tumbuh → berkembang → tangguh → prima),
the moves that led there, and how many units stood in each phase after each assessment.

Phases are assessed for closed months only (:mod:`pulih.reporting.phases`): a unit's current
phase is its last closed month's, and the running month has no row."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from pulih.kit.auth import CurrentUser, allow
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import NotFound
from pulih.reporting import queries
from pulih.reporting.api.params import MONTH, READERS, unit_id_of, unit_scope, yes_no
from pulih.reporting.bodies import UnitPhases
from pulih.reporting.domain.periods import PeriodKind
from pulih.reporting.ranges import period_range
from pulih.reporting.store import LIVE

router = APIRouter(prefix="/v1", tags=["phases"])


@router.get(
    "/units/phases",
    response_model=UnitPhases,
    dependencies=[allow(*READERS)],
    responses={
        403: {"description": "an agent asking for another unit"},
        404: {"description": "no unit with this id"},
        422: {"description": "a bad unit id, month or range (`field` names the parameter)"},
    },
)
async def units_phases(
    runtime: RuntimeDep,
    principal: CurrentUser,
    unit_id: Annotated[
        str | None,
        Query(description="one unit (every unit if left out)", json_schema_extra={"format": "uuid"}),
    ] = None,
    since: Annotated[
        str | None,
        Query(alias="from", description="first month counted in by_month, YYYY-MM", json_schema_extra=MONTH),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            alias="to",
            description="last month counted (default: last month, the last one closed)",
            json_schema_extra=MONTH,
        ),
    ] = None,
    detail: Annotated[
        str,
        Query(
            description="each unit's moves and latest criteria (false: current phases and counts)",
            json_schema_extra={"type": "boolean"},
        ),
    ] = "true",
) -> UnitPhases:
    """Every unit with its village and district, its current phase (the assessment of the last
    closed month: the running month is not assessed) with the criteria that held, the month it
    entered it, its latest move (up, down, steady) and its history of moves (every assessment
    that changed its phase); ``by_month`` counts the units in each phase after each assessment
    from ``from`` to ``to`` (the last twelve closed months by default); ``detail=false`` leaves
    the moves and criteria out. Agents: their own unit only."""
    one, with_detail = unit_id_of(unit_id), yes_no(detail, "detail")
    scope = unit_scope(principal, one)
    last_closed = runtime.clock.today().replace(day=1) - timedelta(days=1)
    months = period_range(PeriodKind.MONTH, since, until, last_closed)
    async with runtime.database.sessions() as session:
        phases = await queries.unit_phases(session, LIVE, scope, months, detail=with_detail)
    if one is not None and not phases.units:
        raise NotFound("unknown_unit", f"no unit {scope} in this regency", "unit_id")
    return phases
