"""Routes for enrolments: enrol a screened client (penerimaan awal), read, discharge, and the
WHOQOL-BREF assessments taken along the way."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts.codes import DischargeReason, QolTimepoint
from pulih.contracts.events.rehab import ClientEnrolled, QualityOfLifeAssessed
from pulih.kit.auth import CurrentUser, Role, require
from pulih.kit.commands import CommandDep, CommandTx
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Conflict, Invalid
from pulih.rehab.access import FIELD_ROLES, active_agent_of, client_for, enrolment_for, may_see
from pulih.rehab.enrolment_views import enrolment_view
from pulih.rehab.progression import apply_changes, catch_up, programme_of, store_timeline, timeline_of
from pulih.rehab.store import Assessment, Enrolment, KnownConsent, KnownScreening, PhaseRecord
from pulih.rehab.timeline import Status, TimelineError, discharge, enrol
from pulih.rehab.views import (
    AssessmentView,
    AssessQualityOfLife,
    DischargeClient,
    EnrolClient,
    EnrolmentView,
    WhoqolAnswers,
)
from pulih.rehab.whoqol import WhoqolFormError, WhoqolScores, score_whoqol

router = APIRouter(prefix="/v1", tags=["enrolments"])

OPEN = (Status.ACTIVE.value, Status.PAUSED.value)


def scored(answers: WhoqolAnswers, field: str) -> WhoqolScores:
    """The form's domain scores, or 422 naming what makes it unscorable."""
    try:
        return score_whoqol(answers.by_item())
    except WhoqolFormError as exc:
        raise Invalid(exc.code, exc.message, f"{field}.{exc.field}") from None


async def record_assessment(
    tx: CommandTx,
    enrolment: Enrolment,
    timepoint: QolTimepoint,
    assessed_on: date,
    answers: WhoqolAnswers,
    scores: WhoqolScores,
    assessment_id: UUID | None = None,
) -> Assessment:
    """Store an assessment and emit ``QualityOfLifeAssessed``."""
    assessment = Assessment(
        assessment_id=assessment_id or uuid.uuid4(),
        enrollment_id=enrolment.enrollment_id,
        client_id=enrolment.client_id,
        timepoint=timepoint.value,
        assessed_on=assessed_on,
        answers=answers.model_dump(mode="json"),
        physical=scores.physical,
        psychological=scores.psychological,
        social=scores.social,
        environment=scores.environment,
    )
    tx.session.add(assessment)
    await tx.emit(
        QualityOfLifeAssessed(
            assessment_id=assessment.assessment_id,
            enrollment_id=enrolment.enrollment_id,
            client_id=enrolment.client_id,
            timepoint=timepoint,
            physical=scores.physical,
            psychological=scores.psychological,
            social=scores.social,
            environment=scores.environment,
        )
    )
    return assessment


async def _check_may_enrol(session: AsyncSession, body: EnrolClient, enrol_after: frozenset[str]) -> None:
    """409 with the reason unless the client is screened, consented and recommended for it."""
    if await session.scalar(
        select(Enrolment.enrollment_id).where(
            Enrolment.client_id == body.client_id, Enrolment.status.in_(OPEN)
        )
    ):
        raise Conflict("already_enrolled", "this client is already in the programme")
    screening = await session.scalar(
        select(KnownScreening)
        .where(KnownScreening.client_id == body.client_id, KnownScreening.screened_on <= body.enrolled_on)
        .order_by(KnownScreening.screened_on.desc())
    )
    if screening is None:
        raise Conflict("not_screened", "screen the client with WHO ASSIST before enrolling them")
    if screening.recommendation not in enrol_after:
        raise Conflict(
            "recommendation_not_programme",
            f"the screening of {screening.screened_on} recommends {screening.recommendation}: "
            "refer the client to a clinic first",
        )
    consents = (
        await session.scalars(select(KnownConsent).where(KnownConsent.client_id == body.client_id))
    ).all()
    if not any(c.valid_on(body.enrolled_on, "programme") for c in consents):
        raise Conflict("consent_required", "the client has no valid consent for the programme on that date")


@router.post("/enrolments", status_code=201, response_model=EnrolmentView)
async def enrol_client(body: EnrolClient, cmd: CommandDep) -> JSONResponse:
    """Enrol a screened client: penerimaan awal (intake) starts, with the baseline WHOQOL-BREF."""
    runtime = cmd.runtime
    programme = programme_of(runtime)
    today = runtime.clock.today()
    if body.enrolled_on > today:
        raise Invalid("date_in_future", f"enrolled_on is after today ({today})", "enrolled_on")
    baseline = scored(body.baseline, "baseline") if body.baseline is not None else None
    async with cmd.transaction() as tx:
        client = await client_for(tx.session, body.client_id, cmd.principal)
        if (
            body.enrollment_id is not None
            and (await tx.session.get(Enrolment, body.enrollment_id)) is not None
        ):
            raise Conflict(
                "enrolment_exists", f"enrolment {body.enrollment_id} already exists", "enrollment_id"
            )
        if client.erased_on is not None:
            raise Conflict("client_erased", "this client was erased")
        await _check_may_enrol(tx.session, body, frozenset(r.value for r in programme.enrol_after))
        await active_agent_of(tx.session, body.agent_id, client.unit_id)
        timeline, changes = enrol(programme, body.enrolled_on)
        enrolment = Enrolment(
            enrollment_id=body.enrollment_id or uuid.uuid4(),
            client_id=client.client_id,
            unit_id=client.unit_id,
            agent_id=body.agent_id,
            programme=programme.code,
            programme_version=programme.version,
            enrolled_on=body.enrolled_on,
            planned_end_on=programme.planned_end(body.enrolled_on, timeline.phase),
            aftercare_only=False,
        )
        store_timeline(programme, enrolment, timeline)
        tx.session.add(enrolment)
        await tx.session.flush()
        tx.session.add(
            PhaseRecord(
                enrollment_id=enrolment.enrollment_id,
                phase=programme.stages[0].phase.value,
                started_on=body.enrolled_on,
            )
        )
        await tx.emit(
            ClientEnrolled(
                enrollment_id=enrolment.enrollment_id,
                client_id=client.client_id,
                unit_id=client.unit_id,
                agent_id=body.agent_id,
                enrolled_on=body.enrolled_on,
                programme=programme.code,
                planned_end_on=enrolment.planned_end_on,
            )
        )
        await tx.session.flush()
        await apply_changes(tx.session, runtime.emitter, programme, enrolment, timeline, changes)
        if body.baseline is not None and baseline is not None:
            await record_assessment(
                tx, enrolment, QolTimepoint.BASELINE, body.enrolled_on, body.baseline, baseline
            )
        await catch_up(
            tx.session, runtime.emitter, programme, enrolment, today, correlationid=tx.correlationid
        )
        await tx.session.flush()
        return tx.reply(await enrolment_view(tx.session, enrolment), status_code=201)


@router.get("/enrolments", response_model=list[EnrolmentView])
async def list_enrolments(
    runtime: RuntimeDep,
    principal: CurrentUser,
    unit_id: Annotated[UUID | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
) -> list[EnrolmentView]:
    """Enrolments the caller may see (agents: their unit), newest first."""
    require(principal, *FIELD_ROLES)
    if principal.role is Role.AGENT:
        unit_id = unit_id or principal.unit_id
    if unit_id is not None:
        may_see(principal, unit_id)
    async with runtime.database.sessions() as session:
        query = select(Enrolment).order_by(Enrolment.enrolled_on.desc())
        if unit_id is not None:
            query = query.where(Enrolment.unit_id == unit_id)
        if status is not None:
            query = query.where(Enrolment.status == status.value)
        return [await enrolment_view(session, e) for e in (await session.scalars(query)).all()]


@router.get("/enrolments/{enrollment_id}", response_model=EnrolmentView)
async def read_enrolment(enrollment_id: UUID, runtime: RuntimeDep, principal: CurrentUser) -> EnrolmentView:
    """One enrolment with its phases so far."""
    async with runtime.database.sessions() as session:
        return await enrolment_view(session, await enrolment_for(session, enrollment_id, principal))


@router.post("/enrolments/{enrollment_id}/discharge", response_model=EnrolmentView)
async def discharge_client(enrollment_id: UUID, body: DischargeClient, cmd: CommandDep) -> JSONResponse:
    """Discharge a client early: moved away, died, referred out, or dropped out."""
    runtime = cmd.runtime
    programme = programme_of(runtime)
    if body.on > runtime.clock.today():
        raise Invalid("date_in_future", "the discharge date is after today", "on")
    async with cmd.transaction() as tx:
        enrolment = await enrolment_for(tx.session, enrollment_id, cmd.principal)
        await catch_up(
            tx.session, runtime.emitter, programme, enrolment, body.on, correlationid=tx.correlationid
        )
        if body.on < enrolment.stage_started_on:
            raise Invalid("date_before_stage", "the discharge date is before the current stage began", "on")
        try:
            timeline, change = discharge(timeline_of(enrolment), body.on, DischargeReason(body.reason))
        except TimelineError as exc:
            raise Conflict(exc.code, exc.message) from None
        await apply_changes(
            tx.session,
            runtime.emitter,
            programme,
            enrolment,
            timeline,
            [change],
            correlationid=tx.correlationid,
        )
        await tx.session.flush()
        return tx.reply(await enrolment_view(tx.session, enrolment))


@router.post("/enrolments/{enrollment_id}/assessments", status_code=201, response_model=AssessmentView)
async def assess_quality_of_life(
    enrollment_id: UUID, body: AssessQualityOfLife, cmd: CommandDep
) -> JSONResponse:
    """Record a WHOQOL-BREF: baseline (once, at intake), exit (once, in aftercare), follow-up."""
    runtime = cmd.runtime
    programme = programme_of(runtime)
    if body.assessed_on > runtime.clock.today():
        raise Invalid("date_in_future", "assessed_on is after today", "assessed_on")
    scores = scored(body.answers, "answers")
    async with cmd.transaction() as tx:
        enrolment = await enrolment_for(tx.session, enrollment_id, cmd.principal)
        await catch_up(tx.session, runtime.emitter, programme, enrolment, runtime.clock.today())
        if body.timepoint is not QolTimepoint.FOLLOW_UP and await tx.session.scalar(
            select(Assessment.assessment_id).where(
                Assessment.enrollment_id == enrollment_id, Assessment.timepoint == body.timepoint.value
            )
        ):
            raise Conflict("assessment_exists", f"this enrolment already has a {body.timepoint} assessment")
        if body.timepoint is QolTimepoint.EXIT and enrolment.phase != programme.aftercare_phase.value:
            raise Conflict("exit_too_early", f"the exit assessment is taken in {programme.aftercare_phase}")
        if body.timepoint is QolTimepoint.FOLLOW_UP and enrolment.status != Status.DISCHARGED.value:
            raise Conflict("not_discharged", "follow-up assessments come after discharge")
        if body.assessed_on < enrolment.enrolled_on:
            raise Invalid("date_before_enrolment", "assessed_on is before the enrolment", "assessed_on")
        assessment = await record_assessment(
            tx, enrolment, body.timepoint, body.assessed_on, body.answers, scores, body.assessment_id
        )
        view = AssessmentView.model_validate(assessment, from_attributes=True)
        return tx.reply(view, status_code=201)
