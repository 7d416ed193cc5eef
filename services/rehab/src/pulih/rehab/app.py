"""Wiring of the rehab service: ``uvicorn pulih.rehab.app:app`` (port 8102)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from pulih.kit.scheduler import periodic
from pulih.kit.service import ServiceSpec, create_app
from pulih.kit.settings import Settings
from pulih.rehab.api import enrolments, sessions, sync, worklist
from pulih.rehab.consumers import subscribe
from pulih.rehab.deps import RehabDeps
from pulih.rehab.handlers import advance_enrolments

spec = ServiceSpec(
    name="rehab",
    port=8102,
    title="Pulih rehab",
    description=(
        "The 16-week IBM programme: enrolment (penerimaan awal), sessions, WHOQOL-BREF, stage "
        "progression, discharge, pause while at a clinic and aftercare (bina lanjut), follow-ups, "
        "and each agent's worklist. Clients are pseudonymous here."
    ),
    migrations=Path(__file__).parent / "migrations",
    routers=(enrolments.router, sessions.router, sync.router, worklist.router),
    dependencies=RehabDeps.build,
    subscribe=subscribe,
    background=(
        periodic("advance-enrolments", advance_enrolments, lambda rt: rt.settings.scheduler_seconds),
    ),
)


def build(settings: Settings | None = None) -> FastAPI:
    """The rehab app for ``settings`` (environment variables by default)."""
    return create_app(spec, settings)


app = build()
