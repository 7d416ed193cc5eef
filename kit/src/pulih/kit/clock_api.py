"""``/v1/admin/clock``: read the service's date, and move it when the clock is manual.

Only a service started with ``PULIH_CLOCK=manual`` (development, tests, the simulator) lets an
admin move its date; a real deployment answers 409 and keeps the system date.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from pulih.kit.auth import CurrentUser, Role, allow, require
from pulih.kit.clock import ManualClock
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Conflict

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class ClockView(BaseModel):
    """The service's date and whether it can be moved."""

    today: date
    manual: bool


class MoveClock(BaseModel):
    """The date to move a manual clock to."""

    model_config = ConfigDict(extra="forbid")
    today: date


@router.get("/clock", response_model=ClockView)
async def read_clock(runtime: RuntimeDep, principal: CurrentUser) -> ClockView:
    """The date this service's rules run on."""
    require(principal, Role.ADMIN, Role.FACILITATOR)
    return ClockView(today=runtime.clock.today(), manual=isinstance(runtime.clock, ManualClock))


@router.put("/clock", response_model=ClockView, dependencies=[allow(Role.ADMIN)])
async def move_clock(body: MoveClock, runtime: RuntimeDep, principal: CurrentUser) -> ClockView:
    """Move a manual clock (admin); time-driven rules run at once for the new date."""
    require(principal, Role.ADMIN)
    if not isinstance(runtime.clock, ManualClock):
        raise Conflict("clock_not_manual", "this service runs on the system clock (PULIH_CLOCK=system)")
    runtime.clock.set(body.today)
    return ClockView(today=runtime.clock.today(), manual=True)
