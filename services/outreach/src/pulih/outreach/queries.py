"""What outreach's lists show, a page at a time (:mod:`pulih.kit.pagination`): each list's
order and the query it pages."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from pulih.kit.pagination import Order
from pulih.outreach.bodies import DuplicateView
from pulih.outreach.store import Client, PossibleDuplicate

DUPLICATES = Order.by(PossibleDuplicate.flagged_at, PossibleDuplicate.duplicate_id)
"""Possible duplicates, oldest flag first."""


def possible_duplicates(
    status: Literal["open", "resolved"] | None,
) -> Select[PossibleDuplicate, UUID, UUID]:
    """Possible duplicate registrations with both clients' units: ``open``, ``resolved`` or all."""
    newer, existing = aliased(Client), aliased(Client)
    query = (
        select(PossibleDuplicate, newer.unit_id, existing.unit_id)
        .join(newer, newer.client_id == PossibleDuplicate.client_id)
        .join(existing, existing.client_id == PossibleDuplicate.existing_client_id)
    )
    if status == "open":
        query = query.where(PossibleDuplicate.resolution.is_(None))
    elif status == "resolved":
        query = query.where(PossibleDuplicate.resolution.is_not(None))
    return query


def duplicate_view(flag: PossibleDuplicate, unit_id: Any, existing_unit_id: Any) -> DuplicateView:
    """A possible duplicate as the list shows it, with both registrations' units."""
    return DuplicateView.model_validate(flag, from_attributes=True).model_copy(
        update={"unit_id": unit_id, "existing_unit_id": existing_unit_id}
    )
