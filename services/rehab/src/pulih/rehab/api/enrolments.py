"""Routes for enrolments: enrol a screened client (penerimaan awal), read, discharge, and the
WHOQOL-BREF assessments taken along the way."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from pulih.kit.auth import CurrentUser, Role, allow, require
from pulih.kit.commands import CommandDep
from pulih.kit.deps import RuntimeDep
from pulih.kit.pagination import PAGED, Page, Pages, paged
from pulih.rehab import handlers, queries
from pulih.rehab.access import FIELD_ROLES, enrolment_for, may_see
from pulih.rehab.bodies import (
    AssessmentView,
    AssessQualityOfLife,
    DischargeClient,
    EnrolClient,
    EnrolmentPage,
    EnrolmentView,
)
from pulih.rehab.deps import Deps
from pulih.rehab.domain.timeline import Status

router = APIRouter(prefix="/v1", tags=["enrolments"], dependencies=[allow(*FIELD_ROLES)])
"""Every route refuses a caller without a field role (403) before it reads the request."""


@router.post("/enrolments", status_code=201, response_model=EnrolmentView)
async def enrol_client(body: EnrolClient, cmd: CommandDep, deps: Deps) -> JSONResponse:
    """Enrol a screened client: penerimaan awal (intake) starts, with the baseline WHOQOL-BREF."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        enrolment = await handlers.enrol_client(tx, deps.programme, cmd.principal, body, today)
        return tx.reply(await queries.enrolment_view(tx.session, enrolment), status_code=201)


@router.get("/enrolments", response_model=EnrolmentPage, responses=PAGED)
async def list_enrolments(
    runtime: RuntimeDep,
    principal: CurrentUser,
    pages: Annotated[Pages, paged(queries.ENROLMENTS)],
    unit_id: Annotated[UUID | None, Query(description="one unit's (agents: their own)")] = None,
    status: Annotated[
        Status | None, Query(description="active, paused or discharged (all if left out)")
    ] = None,
) -> Page[EnrolmentView]:
    """Enrolments the caller may see (agents: their unit), newest first."""
    require(principal, *FIELD_ROLES)
    if principal.role is Role.AGENT:
        unit_id = unit_id or principal.unit_id
    if unit_id is not None:
        may_see(principal, unit_id)
    async with runtime.database.sessions() as session:
        return pages.page(await queries.enrolments(session, pages, unit_id, status))


@router.get("/enrolments/{enrollment_id}", response_model=EnrolmentView)
async def read_enrolment(enrollment_id: UUID, runtime: RuntimeDep, principal: CurrentUser) -> EnrolmentView:
    """One enrolment with its phases so far."""
    async with runtime.database.sessions() as session:
        return await queries.enrolment_view(session, await enrolment_for(session, enrollment_id, principal))


@router.post("/enrolments/{enrollment_id}/discharge", response_model=EnrolmentView)
async def discharge_client(
    enrollment_id: UUID, body: DischargeClient, cmd: CommandDep, deps: Deps
) -> JSONResponse:
    """Discharge a client early: moved away, died, referred out, or dropped out."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        enrolment = await handlers.discharge_client(
            tx, deps.programme, cmd.principal, enrollment_id, body, today
        )
        return tx.reply(await queries.enrolment_view(tx.session, enrolment))


@router.post("/enrolments/{enrollment_id}/assessments", status_code=201, response_model=AssessmentView)
async def assess_quality_of_life(
    enrollment_id: UUID, body: AssessQualityOfLife, cmd: CommandDep, deps: Deps
) -> JSONResponse:
    """Record a WHOQOL-BREF: baseline (once, at intake), exit (once, in aftercare), follow-up."""
    today = cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        assessment = await handlers.assess_quality_of_life(
            tx, deps.programme, cmd.principal, enrollment_id, body, today
        )
        return tx.reply(AssessmentView.model_validate(assessment), status_code=201)
