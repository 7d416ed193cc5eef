"""Referral's own tables and queries: the clinic directory, its read model of outreach's clients,
consents and screenings (pseudonymous: ids, dates and codes only), referrals, and the audit of
identity hand-overs to clinics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from uuid import UUID

from sqlalchemy import JSON, Boolean, Date, Integer, MetaData, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pulih.kit import audit, read_model
from pulih.kit.database import NAMING_CONVENTION
from pulih.referral.domain.lifecycle import OPEN, ReferralStatus


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


class KnownClient(read_model.KnownClient, Base):
    """A client as outreach's events describe them: no identity, only the unit."""

    __tablename__ = "known_clients"


class KnownConsent(read_model.KnownConsent, Base):
    """A consent from ``ConsentRecorded``, withdrawn by ``ConsentWithdrawn``."""

    __tablename__ = "known_consents"


class KnownScreening(read_model.KnownScreening, Base):
    """A screening's result from ``ClientScreened``; ``referral`` ones are suggested referrals,
    listed by unit, with whether the client injected (suggestions show it)."""

    __tablename__ = "known_screenings"
    unit_id: Mapped[UUID] = mapped_column(index=True)
    injected_last_3_months: Mapped[bool] = mapped_column(Boolean)


OUTREACH = read_model.OutreachReadModel(clients=KnownClient, consents=KnownConsent, screenings=KnownScreening)
"""Outreach's events applied to referral's read model, and its queries."""


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


class IdentityHandOver(audit.AuditEntry, Base):
    """Append-only audit: every attempt by anyone to get a referred client's identity.

    ``outcome`` is granted, denied (with ``reason``), erased, or unavailable (outreach
    unreachable, with what went wrong as ``reason``).
    """

    __tablename__ = "identity_audit"
    referral_id: Mapped[UUID] = mapped_column(index=True)
    client_id: Mapped[UUID | None] = mapped_column(nullable=True)
    clinic_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(60), nullable=True)


_OPEN = [status.value for status in OPEN]


async def open_referral_to(session: AsyncSession, client_id: UUID, clinic_id: str) -> UUID | None:
    """The id of the client's open referral to ``clinic_id``, if any."""
    return await session.scalar(
        select(Referral.referral_id).where(
            Referral.client_id == client_id, Referral.clinic_id == clinic_id, Referral.status.in_(_OPEN)
        )
    )


async def open_referrals_of(session: AsyncSession, client_id: UUID) -> Sequence[Referral]:
    """Every open referral of the client, to any clinic."""
    query = select(Referral).where(Referral.client_id == client_id, Referral.status.in_(_OPEN))
    return (await session.scalars(query)).all()


async def screenings_recommending_referral(
    session: AsyncSession, unit_id: UUID | None = None
) -> Sequence[KnownScreening]:
    """Screenings of clients not erased that recommend referral, oldest first (of one unit)."""
    query = (
        select(KnownScreening)
        .join(KnownClient, KnownClient.client_id == KnownScreening.client_id)
        .where(KnownScreening.recommendation == "referral", KnownClient.erased_on.is_(None))
        .order_by(KnownScreening.screened_on)
    )
    if unit_id is not None:
        query = query.where(KnownScreening.unit_id == unit_id)
    return (await session.scalars(query)).all()


async def referral_days(session: AsyncSession) -> list[tuple[UUID, date]]:
    """(client, day) of every referral ever made."""
    rows = (await session.execute(select(Referral.client_id, Referral.referred_on))).all()
    return [(row.client_id, row.referred_on) for row in rows]


async def overdue_referrals(session: AsyncSession, today: date) -> Sequence[tuple[UUID, str, date, int]]:
    """(id, clinic, respond_by, version) of unanswered, unescalated referrals past respond_by."""
    rows = await session.execute(
        select(Referral.referral_id, Referral.clinic_id, Referral.respond_by, Referral.version).where(
            Referral.status == ReferralStatus.REFERRED.value,
            Referral.escalated.is_(False),
            Referral.respond_by < today,
        )
    )
    return [(r.referral_id, r.clinic_id, r.respond_by, r.version) for r in rows.all()]


async def escalate_if_unchanged(
    session: AsyncSession, referral_id: UUID, version: int, on: date, reason: str
) -> bool:
    """Escalate the referral only if it is still unanswered, unescalated and at ``version``: the
    conditional UPDATE that lets two replicas run the escalation job on one store. Whether it
    did (False: answered, cancelled or escalated by someone else meanwhile)."""
    result = await session.execute(
        update(Referral)
        .where(
            Referral.referral_id == referral_id,
            Referral.version == version,
            Referral.status == ReferralStatus.REFERRED.value,
            Referral.escalated.is_(False),
        )
        .values(escalated=True, escalated_on=on, escalation_reason=reason, version=Referral.version + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)
