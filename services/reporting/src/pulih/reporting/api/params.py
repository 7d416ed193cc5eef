"""Who may read the regency's own figures, and the query values the reporting routes read.

The routes read their enum, UUID and yes/no parameters here rather than letting FastAPI refuse
them, so that every refusal of one parameter names it the same way (``level``, never
``query.level`` for a bad value and ``level`` for a forbidden one). Their OpenAPI schemas still
say what each takes: the enum's values, ``format: uuid``, a month's or a week's pattern.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from pulih.kit.auth import Principal, Role
from pulih.kit.errors import Forbidden, Invalid

READERS = (Role.AGENT, Role.FACILITATOR, Role.ADMIN)
"""Who reads the regency's own figures: agents their unit's, facilitators and admins all. A
national token reads only the published aggregates, a clinic nothing of this."""

E = TypeVar("E", bound=StrEnum)

_YEAR = "([0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"  # 0001 to 9999, as a date's year

MONTH: dict[str, Any] = {"pattern": f"^{_YEAR}-(0[1-9]|1[0-2])$"}
"""The OpenAPI schema of a month parameter, ``YYYY-MM``."""

_CENTURIES = (
    "[02468][048]|[13579][26]",
    "[02468][159]|[13579][37]",
    "[02468][26]|[13579][048]",
    "[02468][37]|[13579][159]",
)
"""The first two digits of a year whose century is 0, 1, 2 or 3 in the 400-year Gregorian cycle
(2000-2099 is 0), the cycle in which the calendar, ISO weeks included, repeats."""


def _years_with_week_53() -> str:
    """A pattern of the years 0001 to 9999 that have an ISO week 53 (those whose 28 December,
    always in the year's last week, is in week 53): per century of the cycle, the years in it
    that have one."""
    centuries = []
    for offset, first_digits in enumerate(_CENTURIES):
        years = (year for year in range(offset * 100, offset * 100 + 100) if year)  # no year 0000
        last_digits = "|".join(f"{y % 100:02d}" for y in years if date(y, 12, 28).isocalendar().week == 53)
        centuries.append(f"(?:{first_digits})(?:{last_digits})")
    return "(?:" + "|".join(centuries) + ")"


PERIOD: dict[str, Any] = {
    "pattern": f"^(?:{_YEAR}-(?:0[1-9]|1[0-2]|W(?:0[1-9]|[1-4][0-9]|5[0-2]))|{_years_with_week_53()}-W53)$"
}
"""The OpenAPI schema of a month or ISO week parameter, ``YYYY-MM`` or ``YYYY-Www``, week 53 only
in the years that have one (2026-W53 is a week, 2025-W53 is none)."""


def one_of(kind: type[StrEnum]) -> dict[str, Any]:
    """The OpenAPI schema of a string parameter that takes ``kind``'s values."""
    return {"enum": [member.value for member in kind]}


def choice(kind: type[E], value: str, field: str) -> E:
    """``value`` as a member of ``kind``; 422 naming ``field`` if it is none of them."""
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise Invalid("invalid", f"{field} must be one of {known}, not {value!r}", field) from None


def unit_id_of(value: str | None, field: str = "unit_id") -> UUID | None:
    """``value`` as a unit's UUID (None when left out); 422 naming ``field`` if it is not one."""
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise Invalid("invalid", f"{field} must be a unit's UUID, not {value!r}", field) from None


def yes_no(value: str, field: str) -> bool:
    """``true`` or ``false``, as a JSON boolean is written; 422 naming ``field`` for anything
    else."""
    if value in ("true", "false"):
        return value == "true"
    raise Invalid("invalid", f"{field} must be true or false, not {value!r}", field)


def unit_scope(principal: Principal, unit_id: UUID | None) -> UUID | None:
    """The one unit a caller's figures are limited to (None: the whole regency). An agent is
    always limited to their own unit, and asking for another is 403."""
    if principal.role is Role.AGENT:
        assert principal.unit_id is not None  # the kit refuses an agent token without one
        if unit_id is not None and unit_id != principal.unit_id:
            raise Forbidden("other_unit", "an agent sees only their own unit", "unit_id")
        return principal.unit_id
    return unit_id
