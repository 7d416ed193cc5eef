"""Liveness and readiness: ``/healthz`` (the process answers) and ``/readyz`` (it can do its work).

Readiness is truthful about what a service needs to keep its promises:

- ``store``: the store can COMMIT a write, not only answer ``SELECT 1`` (a read-only or failing
  disk answers reads). The probe writes nothing a reader could see: on SQLite it sets the
  header's ``user_version`` to the value it already has; on PostgreSQL it takes a transaction id,
  which makes the commit write to the log. No table of its own, so no migration.
- ``nats``: the broker connection is up.
- ``consumers``: none is paused (a consumer pauses itself while its store fails,
  :attr:`ServiceRuntime.paused_consumers`).
- ``outbox``: the relay drains it: no unsent row older than :data:`OUTBOX_STALL_SECONDS` while
  the broker is connected (a stream that refuses events, a relay that died). ``outbox_backlog``
  counts what is waiting.

Every failed check answers 503 with the checks that failed named. A failed store probe also
drops the pooled SQLite connections (:func:`drop_failed_connections`), so a store that heals is
reached again through fresh connections.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select, text

from pulih.kit.database import Database
from pulih.kit.outbox import outbox_table
from pulih.kit.runtime import ServiceRuntime

log = logging.getLogger("pulih.health")

router = APIRouter(tags=["health"])

OUTBOX_STALL_SECONDS = 60.0
"""An unsent outbox row older than this, with the broker connected, means the outbox is not
draining (the relay retries a failed publish within 10 s)."""

RETRY_AFTER_SECONDS = 5
"""What a 503 for a failing store tells the caller to wait before sending again."""


async def store_can_commit(database: Database) -> None:
    """Raise unless the store commits a write (one that changes nothing)."""
    async with database.transaction() as session:
        if database.is_sqlite:
            version = int(await session.scalar(text("PRAGMA user_version")) or 0)
            await session.execute(text(f"PRAGMA user_version = {version}"))
        else:
            await session.execute(text("SELECT txid_current()"))


async def drop_failed_connections(database: Database) -> None:
    """Close the pooled SQLite connections after an infrastructure failure, so the next request
    opens the file afresh (a connection opened while the file was read-only stays read-only)."""
    if database.is_sqlite:
        try:
            await database.engine.dispose()
        except Exception:  # closing a broken connection may fail too; the pool is replaced anyway
            log.debug("dropping failed connections", exc_info=True)


def _problem(exc: BaseException) -> str:
    detail = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
    return f"down: {type(exc).__name__}: {detail}" if detail else f"down: {type(exc).__name__}"


async def _outbox_state(runtime: ServiceRuntime) -> tuple[int, float | None]:
    """How many rows wait, and the age in seconds of the oldest."""
    async with runtime.database.sessions() as session:
        row = (
            await session.execute(
                select(func.count(), func.min(outbox_table.c.created_at)).where(
                    outbox_table.c.published_at.is_(None)
                )
            )
        ).one()
    waiting, oldest = int(row[0] or 0), row[1]
    if oldest is None:
        return waiting, None
    if oldest.tzinfo is None:  # SQLite gives naive datetimes back
        oldest = oldest.replace(tzinfo=UTC)
    return waiting, (datetime.now(UTC) - oldest).total_seconds()


class Readiness(BaseModel):
    """What ``/readyz`` answers, ready (200) or not (503)."""

    ready: bool
    checks: dict[str, str] = Field(
        description="each check (store, nats, consumers, outbox…) and `ok` or what is wrong"
    )
    failed: list[str] = Field(description="the checks that failed; empty when ready")


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, str]:
    """The process is up."""
    runtime: ServiceRuntime = request.app.state.runtime
    return {"status": "ok", "service": runtime.name, "regency": runtime.settings.regency}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "Not ready: `failed` names the checks that failed",
            "headers": {
                "Retry-After": {
                    "description": "seconds to wait before asking again",
                    "schema": {"type": "integer"},
                }
            },
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """200 when the store commits, the broker is connected, no consumer is paused and the outbox
    drains; 503 naming what is wrong otherwise."""
    runtime: ServiceRuntime = request.app.state.runtime
    checks: dict[str, str] = {}
    failed: list[str] = []
    try:
        await store_can_commit(runtime.database)
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = _problem(exc)
        failed.append("store")
        await drop_failed_connections(runtime.database)
    checks["database"] = checks["store"]  # the name this check had before it wrote
    connected = False
    if runtime.broker is not None:
        try:
            connected = runtime.broker.connection.is_connected
        except Exception:
            connected = False
    checks["nats"] = "ok" if connected else "down"
    if not connected:
        failed.append("nats")
    paused = sorted(runtime.paused_consumers)
    checks["consumers"] = f"paused: {', '.join(paused)}" if paused else "ok"
    if paused:
        failed.append("consumers")
    if runtime.relay is not None:
        try:
            waiting, age = await _outbox_state(runtime)
        except Exception as exc:
            checks["outbox"] = _problem(exc)
            failed.append("outbox")
        else:
            checks["outbox_backlog"] = str(waiting)
            if connected and age is not None and age > OUTBOX_STALL_SECONDS:
                checks["outbox"] = f"not draining: {waiting} waiting, the oldest for {age:.0f}s"
                failed.append("outbox")
            else:
                checks["outbox"] = "ok"
    ready = not failed
    headers = None if ready else {"Retry-After": str(RETRY_AFTER_SECONDS)}
    body = {"ready": ready, "checks": checks, "failed": failed}
    return JSONResponse(body, status_code=200 if ready else 503, headers=headers)
