"""Read routes for the field: a unit's worklist for a day, and what rehab knows of a client."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from pulih.kit.auth import CurrentUser, allow
from pulih.kit.deps import RuntimeDep
from pulih.kit.strict import Day
from pulih.rehab import queries
from pulih.rehab.access import FIELD_ROLES, client_for, may_see
from pulih.rehab.bodies import ClientProgrammeView, WorklistView
from pulih.rehab.deps import Deps

router = APIRouter(prefix="/v1", tags=["worklist"], dependencies=[allow(*FIELD_ROLES)])
"""Every route refuses a caller without a field role (403) before it reads the request."""


@router.get("/units/{unit_id}/worklist", response_model=WorklistView)
async def unit_worklist(
    unit_id: UUID,
    runtime: RuntimeDep,
    deps: Deps,
    principal: CurrentUser,
    day: Annotated[
        Day | None, Query(alias="date", description="the day, YYYY-MM-DD (default: today)")
    ] = None,
) -> WorklistView:
    """What each agent of the unit must do on a day: sessions due or overdue, assessments due,
    follow-ups due, clients at risk of dropping out. 404 for a unit rehab has heard of no agent
    of."""
    may_see(principal, unit_id)
    async with runtime.database.sessions() as session:
        await queries.known_unit(session, unit_id)
        return await queries.unit_worklist(session, deps.programme, unit_id, day or runtime.clock.today())


@router.get("/clients/{client_id}", response_model=ClientProgrammeView)
async def client_in_programme(
    client_id: UUID, runtime: RuntimeDep, principal: CurrentUser
) -> ClientProgrammeView:
    """What rehab knows of a client: screening outcome, consents valid today, enrolments."""
    async with runtime.database.sessions() as session:
        client = await client_for(session, client_id, principal)
        return await queries.client_in_programme(session, client, runtime.clock.today())
