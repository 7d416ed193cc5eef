"""Referral's own tables: the clinic directory, its read model of outreach's clients, consents
and screenings (pseudonymous: ids, dates and codes only), referrals, and the audit of identity
hand-overs to clinics."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pulih.contracts.consent import ConsentTerms
from pulih.kit.database import NAMING_CONVENTION, BigIntId
from pulih.referral.domain import ReferralStatus


class Base(DeclarativeBase):
    """Declarative base of referral's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Clinic(Base):
    """A clinic units may refer to, the services it offers and the regencies it serves."""

    __tablename__ = "clinics"
    clinic_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    services: Mapped[list[str]] = mapped_column(JSON)
    regencies: Mapped[list[str]] = mapped_column(JSON)


class KnownClient(Base):
    """A client as outreach's events describe them: no identity, only the unit."""

    __tablename__ = "known_clients"
    client_id: Mapped[UUID] = mapped_column(primary_key=True)
    unit_id: Mapped[UUID] = mapped_column(index=True)
    registered_on: Mapped[date] = mapped_column(Date)
    erased_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class KnownConsent(Base):
    """A consent from ``ConsentRecorded``, withdrawn by ``ConsentWithdrawn``."""

    __tablename__ = "known_consents"
    consent_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    given_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    withdrawn_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    def terms(self) -> ConsentTerms:
        """The consent as the domain rules read it."""
        return ConsentTerms(frozenset(self.scopes), self.given_on, self.expires_on, self.withdrawn_on)


class KnownScreening(Base):
    """A screening's result from ``ClientScreened``; ``referral`` ones are suggested referrals."""

    __tablename__ = "known_screenings"
    screening_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(index=True)
    unit_id: Mapped[UUID] = mapped_column(index=True)
    screened_on: Mapped[date] = mapped_column(Date)
    overall_risk: Mapped[str] = mapped_column(String(10))
    injected_last_3_months: Mapped[bool] = mapped_column(Boolean)
    recommendation: Mapped[str] = mapped_column(String(20))


class Referral(Base):
    """One referral of a client to a clinic and how far it got.

    ``version`` guards every change: an answer, a cancellation and the escalation job (in any
    replica) each change the row only if nobody changed it since they read it.
    """

    __tablename__ = "referrals"
    referral_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(index=True)
    unit_id: Mapped[UUID] = mapped_column(index=True)
    clinic_id: Mapped[str] = mapped_column(String(64), index=True)
    service: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(20))
    urgency: Mapped[str] = mapped_column(String(10))
    referred_on: Mapped[date] = mapped_column(Date)
    respond_by: Mapped[date] = mapped_column(Date)
    consent_id: Mapped[UUID] = mapped_column()
    referred_by: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20), index=True, default=ReferralStatus.REFERRED.value)
    accepted_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    appointment_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    attended_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    back_referral: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    decline_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    escalation_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy's own dict)

    @property
    def state(self) -> ReferralStatus:
        """The status as the domain rules read it."""
        return ReferralStatus(self.status)


class IdentityHandOver(Base):
    """Append-only audit: every attempt by anyone to get a referred client's identity."""

    __tablename__ = "identity_audit"
    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    referral_id: Mapped[UUID] = mapped_column(index=True)
    client_id: Mapped[UUID | None] = mapped_column(nullable=True)
    actor: Mapped[str] = mapped_column(String(120))
    actor_role: Mapped[str] = mapped_column(String(20))
    clinic_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    purpose: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    """granted, denied (with ``reason``), erased, or unavailable (outreach unreachable)."""
    reason: Mapped[str | None] = mapped_column(String(60), nullable=True)
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
