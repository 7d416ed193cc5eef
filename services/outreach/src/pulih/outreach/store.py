"""Outreach's own tables: units, agents, outreach counts, clients, sealed identities, consent,
screenings, possible duplicate registrations, the referrals it hears of from referral's events,
and the append-only audit of identity reads."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pulih.contracts.consent import ConsentTerms
from pulih.kit import read_model
from pulih.kit.audit import AuditEntry
from pulih.kit.database import NAMING_CONVENTION


class Base(DeclarativeBase):
    """Declarative base of outreach's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Unit(Base):
    """A Unit IBM: a village's team of recovery agents."""

    __tablename__ = "units"
    unit_id: Mapped[UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    village_code: Mapped[str] = mapped_column(String(10), index=True)
    established_on: Mapped[date] = mapped_column(Date)


class Agent(Base):
    """An Agen Pemulihan, a trained villager in one unit."""

    __tablename__ = "agents"
    agent_id: Mapped[UUID] = mapped_column(primary_key=True)
    unit_id: Mapped[UUID] = mapped_column(ForeignKey("units.unit_id"), index=True)
    trained_on: Mapped[date] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    deactivated_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    deactivation_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)


class OutreachActivity(Base):
    """Sosialisasi, pemetaan or penjangkauan: a count of people reached, never a list."""

    __tablename__ = "outreach_activities"
    activity_id: Mapped[UUID] = mapped_column(primary_key=True)
    unit_id: Mapped[UUID] = mapped_column(ForeignKey("units.unit_id"), index=True)
    agent_id: Mapped[UUID] = mapped_column(ForeignKey("agents.agent_id"))
    kind: Mapped[str] = mapped_column(String(20))
    held_on: Mapped[date] = mapped_column(Date)
    people_reached: Mapped[int] = mapped_column(Integer)


class Client(Base):
    """A klien, known outside this table only by ``client_id``."""

    __tablename__ = "clients"
    client_id: Mapped[UUID] = mapped_column(primary_key=True)
    unit_id: Mapped[UUID] = mapped_column(ForeignKey("units.unit_id"), index=True)
    registered_on: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    age_band: Mapped[str] = mapped_column(String(10))
    came_through: Mapped[str] = mapped_column(String(20))
    erased_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    @property
    def erased(self) -> bool:
        """Whether the client's identity was erased."""
        return self.erased_on is not None


class ClientKey(Base):
    """A client's data key, wrapped by the master key. Deleting the row erases the person."""

    __tablename__ = "client_keys"
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)


class ClientIdentity(Base):
    """The identity, each field sealed under the client's data key."""

    __tablename__ = "client_identities"
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), primary_key=True)
    full_name: Mapped[bytes] = mapped_column(LargeBinary)
    nik: Mapped[bytes] = mapped_column(LargeBinary)
    birth_date: Mapped[bytes] = mapped_column(LargeBinary)
    phone: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    address: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    nik_lookup: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    """A keyed hash of the NIK, to find another registration of it. Not unique: a NIK registered
    twice is accepted and flagged (:class:`PossibleDuplicate`), so registering answers the same
    whether the NIK is known or not. ``None`` once the client is erased."""


class Consent(Base):
    """What a client agreed to, until when, and whether it was withdrawn."""

    __tablename__ = "consents"
    consent_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    given_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    withdrawn_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    def terms(self) -> ConsentTerms:
        """The consent as the rules read it."""
        return ConsentTerms(frozenset(self.scopes), self.given_on, self.expires_on, self.withdrawn_on)


class Screening(Base):
    """One WHO ASSIST v3 screening: the answers and what they scored."""

    __tablename__ = "screenings"
    screening_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)
    unit_id: Mapped[UUID] = mapped_column(ForeignKey("units.unit_id"))
    agent_id: Mapped[UUID] = mapped_column(ForeignKey("agents.agent_id"))
    screened_on: Mapped[date] = mapped_column(Date)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    substances: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    overall_risk: Mapped[str] = mapped_column(String(10))
    injected_last_3_months: Mapped[bool] = mapped_column(Boolean)
    recommendation: Mapped[str] = mapped_column(String(20))


class PossibleDuplicate(Base):
    """A registration whose NIK was already registered: kept, and flagged for a facilitator.

    ``client_id`` is the newer registration, ``existing_client_id`` the one it may repeat. Rows
    are never deleted: who registered it and when, and who resolved it how and when, stay.
    """

    __tablename__ = "possible_duplicates"
    duplicate_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)
    existing_client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)
    flagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    flagged_by: Mapped[str] = mapped_column(String(120))
    flagged_by_role: Mapped[str] = mapped_column(String(20))
    resolution: Mapped[str | None] = mapped_column(String(20), nullable=True)
    """``same_person`` or ``different_people``; ``None`` while open."""
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(120), nullable=True)


class KnownReferral(read_model.KnownReferral, Base):
    """A referral to a clinic, as referral's events tell it (``ReferredToClinic``,
    ``ReferralClosed``): what outreach checks before it hands an identity to referral."""

    __tablename__ = "known_referrals"


REFERRALS = read_model.ReferralReadModel(referrals=KnownReferral)
"""Referral's events applied to outreach's ``known_referrals`` (written once in the kit)."""


class IdentityRead(AuditEntry, Base):
    """Append-only audit: every attempt to read an identity, who, when, why, and the outcome."""

    __tablename__ = "identity_audit"
    client_id: Mapped[UUID | None] = mapped_column(index=True, nullable=True)
    """The client asked for; ``None`` when the path named no client id at all."""
    on_behalf_of: Mapped[str | None] = mapped_column(String(120), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(60), nullable=True)
    """Why an attempt was refused (the error's code)."""
