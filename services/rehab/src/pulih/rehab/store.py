"""Rehab's own tables: what it knows from other services' events (clients, agents, consent,
screenings, referrals) and what it owns (enrolments, their phases, sessions, WHOQOL-BREF
assessments and follow-ups). No identities: a client is only ever a ``client_id``."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pulih.contracts.consent import ConsentTerms
from pulih.kit.database import NAMING_CONVENTION, BigIntId


class Base(DeclarativeBase):
    """Declarative base of rehab's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# --- read model, from outreach's and referral's events -------------------------------------


class KnownClient(Base):
    """A client registered in outreach (``ClientRegistered``), pseudonymous."""

    __tablename__ = "clients"
    client_id: Mapped[UUID] = mapped_column(primary_key=True)
    unit_id: Mapped[UUID] = mapped_column(index=True)
    registered_on: Mapped[date] = mapped_column(Date)
    erased_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class KnownAgent(Base):
    """A recovery agent of a unit (``AgentRegistered``, ``AgentDeactivated``)."""

    __tablename__ = "agents"
    agent_id: Mapped[UUID] = mapped_column(primary_key=True)
    unit_id: Mapped[UUID] = mapped_column(index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class KnownConsent(Base):
    """A consent a client gave (``ConsentRecorded``) and maybe withdrew (``ConsentWithdrawn``)."""

    __tablename__ = "consents"
    consent_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    given_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    withdrawn_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    def valid_on(self, day: date, scope: str) -> bool:
        """Whether the consent covers ``scope`` on ``day``."""
        return ConsentTerms(frozenset(self.scopes), self.given_on, self.expires_on, self.withdrawn_on).allows(
            scope, day
        )


class KnownScreening(Base):
    """A WHO ASSIST screening's outcome (``ClientScreened``)."""

    __tablename__ = "screenings"
    screening_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)
    unit_id: Mapped[UUID]
    agent_id: Mapped[UUID]
    screened_on: Mapped[date] = mapped_column(Date)
    overall_risk: Mapped[str] = mapped_column(String(10))
    recommendation: Mapped[str] = mapped_column(String(20))


class KnownReferral(Base):
    """A referral to a clinic (``ReferredToClinic``) and how it closed (``ReferralClosed``)."""

    __tablename__ = "referrals"
    referral_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)
    unit_id: Mapped[UUID]
    clinic_id: Mapped[str] = mapped_column(String(64))
    referred_on: Mapped[date] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    back_referral: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


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
