"""Who may read the regency's own figures, shared by the reporting routes."""

from __future__ import annotations

from uuid import UUID

from pulih.kit.auth import Principal, Role
from pulih.kit.errors import Forbidden

READERS = (Role.AGENT, Role.FACILITATOR, Role.ADMIN)
"""Who reads the regency's own figures: agents their unit's, facilitators and admins all. A
national token reads only the published aggregates, a clinic nothing of this."""


def unit_scope(principal: Principal, unit_id: UUID | None) -> UUID | None:
    """The one unit a caller's figures are limited to (None: the whole regency). An agent is
    always limited to their own unit, and asking for another is 403."""
    if principal.role is Role.AGENT:
        assert principal.unit_id is not None  # the kit refuses an agent token without one
        if unit_id is not None and unit_id != principal.unit_id:
            raise Forbidden("other_unit", "an agent sees only their own unit", "unit_id")
        return principal.unit_id
    return unit_id
