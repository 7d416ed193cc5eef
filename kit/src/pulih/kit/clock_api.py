"""``/v1/admin/clock``: read the service's date, and move it when the clock is manual.

Only a service started with ``PULIH_CLOCK=manual`` (development, tests, the simulator) lets an
admin move its date; a real deployment answers 409 and keeps the system date. A move answers once
the service's periodic jobs have run for the new date (dropouts found, programmes completed,
deadlines passed, months closed): what the move set off is committed, its events in the outbox,
when the caller hears back, so a caller can wait for those events to travel (the simulator does).
"""

from __future__ import annotations

import logging
from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel

from pulih.kit.auth import CurrentUser, Role, allow, require
from pulih.kit.clock import ManualClock
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Conflict
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.strict import Day, strict_body

log = logging.getLogger("pulih.clock")

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class ClockView(BaseModel):
    """The service's date and whether it can be moved."""

    today: date
    manual: bool


class MoveClock(BaseModel):
    """The date to move a manual clock to."""

    model_config = strict_body({"today": "2025-02-01"})
    today: Day


@router.get("/clock", response_model=ClockView)
async def read_clock(runtime: RuntimeDep, principal: CurrentUser) -> ClockView:
    """The date this service's rules run on."""
    require(principal, Role.ADMIN, Role.FACILITATOR)
    return ClockView(today=runtime.clock.today(), manual=isinstance(runtime.clock, ManualClock))


@router.put("/clock", response_model=ClockView, dependencies=[allow(Role.ADMIN)])
async def move_clock(body: MoveClock, runtime: RuntimeDep, principal: CurrentUser) -> ClockView:
    """Move a manual clock (admin); time-driven rules run for the new date before the answer."""
    require(principal, Role.ADMIN)
    if not isinstance(runtime.clock, ManualClock):
        raise Conflict("clock_not_manual", "this service runs on the system clock (PULIH_CLOCK=system)")
    runtime.clock.set(body.today)
    await _run_jobs(runtime)
    return ClockView(today=runtime.clock.today(), manual=True)


async def _run_jobs(runtime: ServiceRuntime) -> None:
    """Run each periodic job once, after a run in progress (which may have read the old date). A
    failing run is logged; its loop, woken by the move, tries again."""
    for name, job in list(runtime.jobs.items()):
        try:
            await job.run_once(runtime)
        except Exception:
            log.exception("%s failed after the clock moved; its loop retries", name)
