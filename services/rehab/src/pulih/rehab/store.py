"""Rehab's own tables: what it knows from other services' events (clients, agents, consent,
screenings, referrals) and what it owns (enrolments, their phases, sessions, WHOQOL-BREF
assessments and follow-ups), and the queries the use cases run on them. No identities: a client
is only ever a ``client_id``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    false,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pulih.contracts.codes import QolTimepoint
from pulih.kit import read_model
from pulih.kit.database import NAMING_CONVENTION, BigIntId
from pulih.rehab.domain.timeline import Status


class Base(DeclarativeBase):
    """Declarative base of rehab's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# --- read model, from outreach's and referral's events -------------------------------------
# Outreach's and referral's events land in the kit's read-model columns on rehab's own tables;
# rehab adds the foreign keys to its clients and the agent who screened (aftercare-only
# enrolments need them).


class KnownClient(read_model.KnownClient, Base):
    """A client registered in outreach (``ClientRegistered``, ``ClientErased``), pseudonymous."""

    __tablename__ = "clients"


class KnownAgent(read_model.KnownAgent, Base):
    """A recovery agent of a unit (``AgentRegistered``, ``AgentDeactivated``)."""

    __tablename__ = "agents"


class KnownConsent(read_model.KnownConsent, Base):
    """A consent a client gave (``ConsentRecorded``) and maybe withdrew (``ConsentWithdrawn``)."""

    __tablename__ = "consents"
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)


class KnownScreening(read_model.KnownScreening, Base):
    """A WHO ASSIST screening's outcome (``ClientScreened``), with the agent who screened."""

    __tablename__ = "screenings"
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)
    agent_id: Mapped[UUID]


OUTREACH = read_model.OutreachReadModel(
    clients=KnownClient, consents=KnownConsent, screenings=KnownScreening, agents=KnownAgent
)
"""Outreach's events applied to rehab's tables, and the queries over them."""


class KnownReferral(read_model.KnownReferralInFull, Base):
    """A referral to a clinic (``ReferredToClinic``) and how it closed (``ReferralClosed``)."""

    __tablename__ = "referrals"
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)


REFERRALS = read_model.ReferralReadModel(referrals=KnownReferral, clients=KnownClient)
"""Referral's events applied to rehab's ``referrals`` (a referral of a client not registered here
yet is retried); rehab's own reaction is chained on in :mod:`pulih.rehab.consumers`."""


# --- what rehab owns -------------------------------------------------------------------------


class Enrolment(Base):
    """One client's run through the programme. ``version`` guards every change: a replica or a
    request that read an older version fails instead of applying a transition twice."""

    __tablename__ = "enrolments"
    enrollment_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)
    unit_id: Mapped[UUID] = mapped_column(index=True)
    agent_id: Mapped[UUID]
    programme: Mapped[str] = mapped_column(String(64))
    programme_version: Mapped[int] = mapped_column(Integer)
    enrolled_on: Mapped[date] = mapped_column(Date)
    planned_end_on: Mapped[date] = mapped_column(Date)
    aftercare_only: Mapped[bool] = mapped_column(Boolean, default=False)
    phase: Mapped[str] = mapped_column(String(20))
    stage_started_on: Mapped[date] = mapped_column(Date)
    last_seen_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), index=True)
    next_rule_on: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    """The first day a time rule can change this enrolment (null when none can)."""
    paused_since: Mapped[date | None] = mapped_column(Date, nullable=True)
    paused_by_referral: Mapped[UUID | None] = mapped_column(nullable=True)
    discharged_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    discharge_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    discharged_by_rule: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The time rules discharged the client (not an agent or a clinic): only such a dropout can be
    disproved by a session synced late."""
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy's own mapping)


class PhaseRecord(Base):
    """A phase an enrolment was in, and when."""

    __tablename__ = "enrolment_phases"
    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    enrollment_id: Mapped[UUID] = mapped_column(ForeignKey("enrolments.enrollment_id"), index=True)
    phase: Mapped[str] = mapped_column(String(20))
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class SessionRecord(Base):
    """A programme session, held and attended or not."""

    __tablename__ = "sessions"
    session_id: Mapped[UUID] = mapped_column(primary_key=True)
    enrollment_id: Mapped[UUID] = mapped_column(ForeignKey("enrolments.enrollment_id"), index=True)
    client_id: Mapped[UUID]
    agent_id: Mapped[UUID]
    held_on: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20))
    attended: Mapped[bool] = mapped_column(Boolean)
    minutes: Mapped[int] = mapped_column(Integer)


class Assessment(Base):
    """A WHOQOL-BREF assessment: the answers and the four domain scores."""

    __tablename__ = "assessments"
    assessment_id: Mapped[UUID] = mapped_column(primary_key=True)
    enrollment_id: Mapped[UUID] = mapped_column(ForeignKey("enrolments.enrollment_id"), index=True)
    client_id: Mapped[UUID]
    timepoint: Mapped[str] = mapped_column(String(12))
    assessed_on: Mapped[date] = mapped_column(Date)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    physical: Mapped[float] = mapped_column(Float)
    psychological: Mapped[float] = mapped_column(Float)
    social: Mapped[float] = mapped_column(Float)
    environment: Mapped[float] = mapped_column(Float)


class FollowUp(Base):
    """A follow-up after discharge: due on a date, then recorded with the client's status."""

    __tablename__ = "follow_ups"
    follow_up_id: Mapped[UUID] = mapped_column(primary_key=True)
    enrollment_id: Mapped[UUID] = mapped_column(ForeignKey("enrolments.enrollment_id"), index=True)
    client_id: Mapped[UUID] = mapped_column(index=True)
    agent_id: Mapped[UUID]
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    recorded_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str | None] = mapped_column(String(20), nullable=True)


# --- queries ---------------------------------------------------------------------------------

OPEN = (Status.ACTIVE.value, Status.PAUSED.value)
"""The statuses of an enrolment that is not over."""


async def open_enrolment(session: AsyncSession, client_id: UUID) -> Enrolment | None:
    """The client's enrolment that is running or paused, if any (there is at most one)."""
    return await session.scalar(
        select(Enrolment).where(Enrolment.client_id == client_id, Enrolment.status.in_(OPEN))
    )


async def first_screened_on(session: AsyncSession, client_id: UUID) -> date | None:
    """The day of the client's first screening, if they were ever screened."""
    return await session.scalar(
        select(func.min(KnownScreening.screened_on)).where(KnownScreening.client_id == client_id)
    )


async def last_discharge(session: AsyncSession, client_id: UUID) -> Enrolment | None:
    """The client's most recently discharged enrolment, if any."""
    return await session.scalar(
        select(Enrolment)
        .where(Enrolment.client_id == client_id, Enrolment.status == Status.DISCHARGED.value)
        .order_by(Enrolment.discharged_on.desc())
    )


async def follow_up_due(session: AsyncSession, enrollment_id: UUID) -> FollowUp | None:
    """The earliest follow-up the programme expects of an enrolment and nobody recorded yet."""
    return await session.scalar(
        select(FollowUp)
        .where(FollowUp.enrollment_id == enrollment_id, FollowUp.recorded_on.is_(None))
        .order_by(FollowUp.due_on)
    )


async def assessment_taken(session: AsyncSession, enrollment_id: UUID, timepoint: QolTimepoint) -> bool:
    """Whether the enrolment has an assessment at ``timepoint`` already."""
    found = await session.scalar(
        select(Assessment.assessment_id).where(
            Assessment.enrollment_id == enrollment_id, Assessment.timepoint == timepoint.value
        )
    )
    return found is not None


async def phase_history(session: AsyncSession, enrollment_id: UUID) -> Sequence[PhaseRecord]:
    """The enrolment's phases, oldest first."""
    return (
        await session.scalars(
            select(PhaseRecord).where(PhaseRecord.enrollment_id == enrollment_id).order_by(PhaseRecord.id)
        )
    ).all()


async def sessions_held(session: AsyncSession, enrollment_id: UUID) -> tuple[int, int]:
    """How many sessions the enrolment has, and how many of them the client attended."""
    held, attended = (
        await session.execute(
            select(
                func.count(SessionRecord.session_id),
                func.count(SessionRecord.session_id).filter(SessionRecord.attended.is_(True)),
            ).where(SessionRecord.enrollment_id == enrollment_id)
        )
    ).one()
    return int(held), int(attended)


async def enrolments_due(session: AsyncSession, today: date) -> Sequence[UUID]:
    """Active enrolments a time rule may change by ``today``, the most overdue first."""
    return (
        await session.scalars(
            select(Enrolment.enrollment_id)
            .where(Enrolment.status == Status.ACTIVE.value, Enrolment.next_rule_on <= today)
            .order_by(Enrolment.next_rule_on)
        )
    ).all()
