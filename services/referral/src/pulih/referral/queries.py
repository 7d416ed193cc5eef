"""What referral's lists show, a page at a time (:mod:`pulih.kit.pagination`): each list's order
and the query it pages."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from sqlalchemy import Select, select

from pulih.kit.pagination import Order
from pulih.referral.domain.lifecycle import ReferralStatus
from pulih.referral.store import Clinic, IdentityHandOver, Referral

CLINICS = Order.by(Clinic.clinic_id)
"""The directory, by clinic id."""

REFERRALS = Order.by(Referral.referred_on, Referral.referral_id)
"""Referrals, oldest first."""

SUGGESTIONS = Order.of(date, UUID)
"""Suggested referrals (made in memory), oldest screening first: (screened_on, screening_id)."""

HAND_OVERS = Order.by(IdentityHandOver.id)
"""A referral's identity hand-over audit, oldest attempt first."""


def referrals(
    *,
    unit_id: UUID | None = None,
    clinic_id: str | None = None,
    addressed_to: str | None = None,
    client_id: UUID | None = None,
    status: ReferralStatus | None = None,
    escalated: bool | None = None,
) -> Select[Referral]:
    """Referrals matching every filter given (``addressed_to``: the clinic the caller is, on top
    of the ``clinic_id`` asked for)."""
    query = select(Referral)
    if unit_id is not None:
        query = query.where(Referral.unit_id == unit_id)
    if addressed_to is not None:
        query = query.where(Referral.clinic_id == addressed_to)
    if status is not None:
        query = query.where(Referral.status == status.value)
    if escalated is not None:
        query = query.where(Referral.escalated.is_(escalated))
    if clinic_id is not None:
        query = query.where(Referral.clinic_id == clinic_id)
    if client_id is not None:
        query = query.where(Referral.client_id == client_id)
    return query


def hand_overs(referral_id: UUID) -> Select[IdentityHandOver]:
    """Every attempt to get the identity of a referral's client."""
    return select(IdentityHandOver).where(IdentityHandOver.referral_id == referral_id)
