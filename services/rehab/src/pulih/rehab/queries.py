"""What rehab's read routes show, read straight from the store: enrolments with their history,
a client as rehab knows them, and a unit's worklist for a day (as the time rules would have it
on that day, even if the scheduler has not run yet)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts.codes import QolTimepoint
from pulih.kit.errors import NotFound
from pulih.kit.pagination import Order, Pages
from pulih.rehab.bodies import AgentTasks, ClientProgrammeView, EnrolmentView, TaskView, WorklistView
from pulih.rehab.domain.programme import Programme
from pulih.rehab.domain.timeline import Status, advance
from pulih.rehab.domain.worklist import EnrolmentToday, FollowUpDue, worklist
from pulih.rehab.progression import timeline_of
from pulih.rehab.store import (
    OUTREACH,
    Assessment,
    Enrolment,
    FollowUp,
    KnownAgent,
    KnownClient,
    SessionRecord,
    phase_history,
    sessions_held,
)

ENROLMENTS = Order.by(Enrolment.enrolled_on, Enrolment.enrollment_id, descending=True)
"""Enrolments, newest first."""


async def enrolment_view(session: AsyncSession, enrolment: Enrolment) -> EnrolmentView:
    """An enrolment with its phases and session counts."""
    return EnrolmentView.of(
        enrolment,
        await phase_history(session, enrolment.enrollment_id),
        await sessions_held(session, enrolment.enrollment_id),
    )


async def enrolments(
    session: AsyncSession, pages: Pages, unit_id: UUID | None, status: Status | None
) -> list[EnrolmentView]:
    """A page of enrolments (of a unit, in a status), newest first (:data:`ENROLMENTS`)."""
    query = select(Enrolment)
    if unit_id is not None:
        query = query.where(Enrolment.unit_id == unit_id)
    if status is not None:
        query = query.where(Enrolment.status == status.value)
    return [await enrolment_view(session, e) for e in await pages.scalars(session, query)]


async def client_in_programme(session: AsyncSession, client: KnownClient, today: date) -> ClientProgrammeView:
    """What rehab knows of a client: screening outcome, consents valid today, enrolments."""
    screening = await OUTREACH.latest_screening(session, client.client_id)
    consents = await OUTREACH.consents_of(session, client.client_id)
    history = (
        await session.scalars(
            select(Enrolment).where(Enrolment.client_id == client.client_id).order_by(Enrolment.enrolled_on)
        )
    ).all()
    return ClientProgrammeView(
        client_id=client.client_id,
        unit_id=client.unit_id,
        erased=client.erased_on is not None,
        screened_on=screening.screened_on if screening else None,
        overall_risk=screening.overall_risk if screening else None,
        recommendation=screening.recommendation if screening else None,
        consent_scopes_today=sorted({s for c in consents for s in c.scopes if c.allows(s, today)}),
        enrolments=[await enrolment_view(session, e) for e in history],
    )


async def known_unit(session: AsyncSession, unit_id: UUID) -> None:
    """404 unless rehab knows the unit: it has heard of an agent of it (rehab keeps no units
    of its own; an agent's registration is how a unit's work reaches it)."""
    known = await session.scalar(select(KnownAgent.agent_id).where(KnownAgent.unit_id == unit_id).limit(1))
    if known is None:
        raise NotFound(
            "unit_not_found",
            f"rehab has heard of no agent of unit {unit_id} (yet): a unit's work starts with its "
            "agents' registration in outreach",
            "unit_id",
        )


async def unit_worklist(
    session: AsyncSession, programme: Programme, unit_id: UUID, day: date
) -> WorklistView:
    """What each agent of the unit must do on ``day``, by agent."""
    active = (
        await session.scalars(
            select(Enrolment).where(Enrolment.unit_id == unit_id, Enrolment.status == Status.ACTIVE.value)
        )
    ).all()
    today = await _as_of(session, programme, active, day)
    due = [
        FollowUpDue(f.client_id, f.enrollment_id, f.agent_id, f.due_on)
        for f in await _follow_ups_open(session, unit_id)
        if f.due_on
    ]
    by_agent: dict[UUID, list[TaskView]] = defaultdict(list)
    for task in worklist(programme, day, today, due):
        by_agent[task.agent_id].append(TaskView.model_validate(task))
    return WorklistView(
        unit_id=unit_id,
        date=day,
        agents=[AgentTasks(agent_id=agent, tasks=tasks) for agent, tasks in by_agent.items()],
    )


async def _as_of(
    session: AsyncSession, programme: Programme, active: Sequence[Enrolment], day: date
) -> list[EnrolmentToday]:
    """The enrolments as they stand on ``day``, with their attended sessions and assessments."""
    ids = [e.enrollment_id for e in active]
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
    return [
        EnrolmentToday(
            enrollment_id=e.enrollment_id,
            client_id=e.client_id,
            agent_id=e.agent_id,
            timeline=advance(programme, timeline_of(e), day)[0],
            attended_on=tuple(attended[e.enrollment_id]),
            assessed=frozenset(assessed[e.enrollment_id]),
        )
        for e in active
    ]


async def _follow_ups_open(session: AsyncSession, unit_id: UUID) -> Sequence[FollowUp]:
    return (
        await session.scalars(
            select(FollowUp)
            .join(Enrolment, Enrolment.enrollment_id == FollowUp.enrollment_id)
            .where(Enrolment.unit_id == unit_id, FollowUp.recorded_on.is_(None))
        )
    ).all()
