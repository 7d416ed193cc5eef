"""Enrolments: enrol a screened client, discharge one early, take a WHOQOL-BREF, and let time
move every active enrolment on (the scheduler's job)."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from uuid import UUID

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError

from pulih.contracts.codes import DischargeReason, Phase, QolTimepoint, Recommendation
from pulih.contracts.events.rehab import ClientEnrolled, QualityOfLifeAssessed
from pulih.kit.auth import Principal
from pulih.kit.dates import not_in_future
from pulih.kit.errors import Conflict
from pulih.kit.read_model import active_agent_of
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.unit_of_work import UnitOfWork
from pulih.rehab.access import client_for, enrolment_for
from pulih.rehab.bodies import AssessQualityOfLife, DischargeClient, EnrolClient, WhoqolAnswers
from pulih.rehab.deps import RehabDeps
from pulih.rehab.domain.assessments import check_assessment
from pulih.rehab.domain.eligibility import ScreeningOutcome, check_may_enrol
from pulih.rehab.domain.programme import Programme
from pulih.rehab.domain.timeline import Status, discharge_on_request, enrol
from pulih.rehab.domain.whoqol import WhoqolFormError, WhoqolScores, score_whoqol
from pulih.rehab.progression import apply_changes, catch_up, store_timeline, timeline_of
from pulih.rehab.store import (
    OUTREACH,
    Assessment,
    Enrolment,
    KnownAgent,
    PhaseRecord,
    assessment_taken,
    enrolments_due,
    first_screened_on,
    open_enrolment,
)

log = logging.getLogger("pulih.rehab.handlers")


def _scored(answers: WhoqolAnswers, field: str) -> WhoqolScores:
    """The form's domain scores, or 422 naming the item or domain under the request's ``field``."""
    try:
        return score_whoqol(answers.by_item())
    except WhoqolFormError as exc:
        exc.at(field)
        raise


async def enrol_client(
    uow: UnitOfWork, programme: Programme, principal: Principal, body: EnrolClient, today: date
) -> Enrolment:
    """Enrol a screened client: screening closes and intake (penerimaan awal) starts, with the
    baseline WHOQOL-BREF if it was taken."""
    session = uow.session
    client = await client_for(session, body.client_id, principal)
    not_in_future(body.enrolled_on, today, "enrolled_on")
    baseline = _scored(body.baseline, "baseline") if body.baseline is not None else None
    if body.enrollment_id is not None and await session.get(Enrolment, body.enrollment_id) is not None:
        raise Conflict("enrolment_exists", f"enrolment {body.enrollment_id} already exists", "enrollment_id")
    screening = await OUTREACH.latest_screening(session, client.client_id, on_or_before=body.enrolled_on)
    check_may_enrol(
        programme,
        enrolled_on=body.enrolled_on,
        erased=client.erased_on is not None,
        already_enrolled=await open_enrolment(session, client.client_id) is not None,
        screening=(
            ScreeningOutcome(screening.screened_on, Recommendation(screening.recommendation))
            if screening is not None
            else None
        ),
        first_screened_on=await first_screened_on(session, client.client_id),
        consents=[c.terms() for c in await OUTREACH.consents_of(session, client.client_id)],
    )
    await active_agent_of(session, KnownAgent, body.agent_id, client.unit_id)
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
    await start_enrolment(uow, programme, enrolment, programme.stages[0].phase)
    await apply_changes(uow, programme, enrolment, timeline, changes)
    if body.baseline is not None and baseline is not None:
        await _record_assessment(
            uow, enrolment, QolTimepoint.BASELINE, body.enrolled_on, body.baseline, baseline
        )
    await catch_up(uow, programme, enrolment, today)
    await session.flush()
    return enrolment


async def start_enrolment(uow: UnitOfWork, programme: Programme, enrolment: Enrolment, phase: Phase) -> None:
    """Store a new enrolment (its timeline already written on it) opening in ``phase``, and emit
    ``ClientEnrolled``."""
    uow.session.add(enrolment)
    await uow.session.flush()
    uow.session.add(
        PhaseRecord(
            enrollment_id=enrolment.enrollment_id, phase=phase.value, started_on=enrolment.enrolled_on
        )
    )
    await uow.emit(
        ClientEnrolled(
            enrollment_id=enrolment.enrollment_id,
            client_id=enrolment.client_id,
            unit_id=enrolment.unit_id,
            agent_id=enrolment.agent_id,
            enrolled_on=enrolment.enrolled_on,
            programme=programme.code,
            planned_end_on=enrolment.planned_end_on,
        )
    )
    await uow.session.flush()


async def discharge_client(
    uow: UnitOfWork,
    programme: Programme,
    principal: Principal,
    enrollment_id: UUID,
    body: DischargeClient,
    today: date,
) -> Enrolment:
    """Discharge a client early: moved away, died, referred out, or dropped out."""
    enrolment = await enrolment_for(uow.session, enrollment_id, principal)
    not_in_future(body.on, today, "on")
    await catch_up(uow, programme, enrolment, body.on)
    timeline, change = discharge_on_request(timeline_of(enrolment), body.on, DischargeReason(body.reason))
    await apply_changes(uow, programme, enrolment, timeline, [change])
    await uow.session.flush()
    return enrolment


async def assess_quality_of_life(
    uow: UnitOfWork,
    programme: Programme,
    principal: Principal,
    enrollment_id: UUID,
    body: AssessQualityOfLife,
    today: date,
) -> Assessment:
    """Record a WHOQOL-BREF: baseline (once, at intake), exit (once, in aftercare), follow-up."""
    enrolment = await enrolment_for(uow.session, enrollment_id, principal)
    not_in_future(body.assessed_on, today, "assessed_on")
    scores = _scored(body.answers, "answers")
    await catch_up(uow, programme, enrolment, today)
    check_assessment(
        programme,
        timeline_of(enrolment),
        enrolled_on=enrolment.enrolled_on,
        timepoint=body.timepoint,
        assessed_on=body.assessed_on,
        already_taken=await assessment_taken(uow.session, enrollment_id, body.timepoint),
    )
    return await _record_assessment(
        uow, enrolment, body.timepoint, body.assessed_on, body.answers, scores, body.assessment_id
    )


async def _record_assessment(
    uow: UnitOfWork,
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
    uow.session.add(assessment)
    await uow.emit(
        QualityOfLifeAssessed(
            assessment_id=assessment.assessment_id,
            enrollment_id=enrolment.enrollment_id,
            client_id=enrolment.client_id,
            timepoint=timepoint,
            physical=scores.physical,
            psychological=scores.psychological,
            social=scores.social,
            environment=scores.environment,
            assessed_on=assessed_on,
        )
    )
    return assessment


async def advance_enrolments(runtime: ServiceRuntime) -> int:
    """The scheduler's job: every active enrolment with a rule due by today, one unit of work
    each (its events a chain of their own).

    Safe with several replicas: an enrolment another replica moved first fails on its version
    and is skipped here.
    """
    programme = runtime.deps_as(RehabDeps).programme
    today = runtime.clock.today()
    async with runtime.database.sessions() as session:
        due = await enrolments_due(session, today)
    changed = 0
    for enrollment_id in due:
        try:
            async with runtime.unit_of_work() as uow:
                enrolment = await uow.session.get(Enrolment, enrollment_id)
                if enrolment is None or enrolment.status != Status.ACTIVE.value:
                    continue
                changed += len(await catch_up(uow, programme, enrolment, today))
        except (StaleDataError, OperationalError) as exc:
            # another replica moved it first (PostgreSQL: the version check; SQLite: the file's
            # single writer); the next run sees the new state
            log.info("enrolment %s left for now: %s", enrollment_id, type(exc).__name__)
    return changed
