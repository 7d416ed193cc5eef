"""Read routes for the field: a unit's worklist for a day, and what rehab knows of a client."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy import select

from pulih.contracts.codes import QolTimepoint
from pulih.kit.auth import CurrentUser
from pulih.kit.deps import RuntimeDep
from pulih.rehab.access import client_for, may_see
from pulih.rehab.enrolment_views import enrolment_view
from pulih.rehab.progression import programme_of, timeline_of
from pulih.rehab.store import Assessment, Enrolment, FollowUp, KnownConsent, KnownScreening, SessionRecord
from pulih.rehab.timeline import Status, advance
from pulih.rehab.views import AgentTasks, ClientProgrammeView, TaskView, WorklistView
from pulih.rehab.worklist import EnrolmentToday, FollowUpDue, worklist

router = APIRouter(prefix="/v1", tags=["worklist"])


@router.get("/units/{unit_id}/worklist", response_model=WorklistView)
async def unit_worklist(
    unit_id: UUID,
    runtime: RuntimeDep,
    principal: CurrentUser,
    day: Annotated[date | None, Query(alias="date", description="the day (default: today)")] = None,
) -> WorklistView:
    """What each agent of the unit must do on a day: sessions due or overdue, assessments due,
    follow-ups due, clients at risk of dropping out."""
    may_see(principal, unit_id)
    programme = programme_of(runtime)
    day = day or runtime.clock.today()
    async with runtime.database.sessions() as session:
        enrolments = (
            await session.scalars(
                select(Enrolment).where(Enrolment.unit_id == unit_id, Enrolment.status == Status.ACTIVE.value)
            )
        ).all()
        ids = [e.enrollment_id for e in enrolments]
        attended: dict[UUID, list[date]] = defaultdict(list)
        for enrollment_id, held_on in await session.execute(
            select(SessionRecord.enrollment_id, SessionRecord.held_on).where(
                SessionRecord.enrollment_id.in_(ids), SessionRecord.attended.is_(True)
            )
        ):
            attended[enrollment_id].append(held_on)
        assessed: dict[UUID, set[QolTimepoint]] = defaultdict(set)
        for enrollment_id, timepoint in await session.execute(
            select(Assessment.enrollment_id, Assessment.timepoint).where(Assessment.enrollment_id.in_(ids))
        ):
            assessed[enrollment_id].add(QolTimepoint(timepoint))
        follow_ups = (
            await session.scalars(
                select(FollowUp)
                .join(Enrolment, Enrolment.enrollment_id == FollowUp.enrollment_id)
                .where(Enrolment.unit_id == unit_id, FollowUp.recorded_on.is_(None))
            )
        ).all()
    today = [
        EnrolmentToday(
            enrollment_id=e.enrollment_id,
            client_id=e.client_id,
            agent_id=e.agent_id,
            # as the time rules would have it on that day, even if the scheduler has not run yet
            timeline=advance(programme, timeline_of(e), day)[0],
            attended_on=tuple(attended[e.enrollment_id]),
            assessed=frozenset(assessed[e.enrollment_id]),
        )
        for e in enrolments
    ]
    due = [FollowUpDue(f.client_id, f.enrollment_id, f.agent_id, f.due_on) for f in follow_ups if f.due_on]
    by_agent: dict[UUID, list[TaskView]] = defaultdict(list)
    for task in worklist(programme, day, today, due):
        by_agent[task.agent_id].append(
            TaskView(
                client_id=task.client_id,
                enrollment_id=task.enrollment_id,
                kind=task.kind.value,
                due_on=task.due_on,
                detail=task.detail,
            )
        )
    return WorklistView(
        unit_id=unit_id,
        date=day,
        agents=[AgentTasks(agent_id=agent, tasks=tasks) for agent, tasks in by_agent.items()],
    )


@router.get("/clients/{client_id}", response_model=ClientProgrammeView)
async def client_in_programme(
    client_id: UUID, runtime: RuntimeDep, principal: CurrentUser
) -> ClientProgrammeView:
    """What rehab knows of a client: screening outcome, consents valid today, enrolments."""
    today = runtime.clock.today()
    async with runtime.database.sessions() as session:
        client = await client_for(session, client_id, principal)
        screening = await session.scalar(
            select(KnownScreening)
            .where(KnownScreening.client_id == client_id)
            .order_by(KnownScreening.screened_on.desc())
        )
        consents = (
            await session.scalars(select(KnownConsent).where(KnownConsent.client_id == client_id))
        ).all()
        scopes = sorted({s for c in consents for s in c.scopes if c.valid_on(today, s)})
        enrolments = (
            await session.scalars(
                select(Enrolment).where(Enrolment.client_id == client_id).order_by(Enrolment.enrolled_on)
            )
        ).all()
        views = [await enrolment_view(session, e) for e in enrolments]
    return ClientProgrammeView(
        client_id=client_id,
        unit_id=client.unit_id,
        erased=client.erased_on is not None,
        screened_on=screening.screened_on if screening else None,
        overall_risk=screening.overall_risk if screening else None,
        recommendation=screening.recommendation if screening else None,
        consent_scopes_today=scopes,
        enrolments=views,
    )
