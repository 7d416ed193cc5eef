"""Liveness and readiness: ``/healthz`` (the process answers) and ``/readyz`` (database and NATS)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pulih.kit.runtime import ServiceRuntime

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, str]:
    """The process is up."""
    runtime: ServiceRuntime = request.app.state.runtime
    return {"status": "ok", "service": runtime.name, "regency": runtime.settings.regency}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and the broker is connected (503 otherwise)."""
    runtime: ServiceRuntime = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        await runtime.database.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    broker = runtime.broker
    connected = False
    if broker is not None:
        try:
            connected = broker.connection.is_connected
        except Exception:
            connected = False
    checks["nats"] = "ok" if connected else "down"
    if runtime.relay is not None:
        checks["outbox_backlog"] = str(await runtime.relay.backlog())
    ready = checks["database"] == "ok" and checks["nats"] == "ok"
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
