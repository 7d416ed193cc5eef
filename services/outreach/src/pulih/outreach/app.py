"""Wiring of the outreach service: ``uvicorn pulih.outreach.app:app`` (port 8101)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from pulih.kit.service import ServiceSpec, create_app
from pulih.kit.settings import Settings
from pulih.outreach import consumers
from pulih.outreach.api import clients, consents, identity, screenings, units
from pulih.outreach.deps import OutreachDeps

spec = ServiceSpec(
    name="outreach",
    port=8101,
    title="Pulih outreach",
    description=(
        "Units IBM, Agen Pemulihan, outreach counts, client registration with sealed identities, "
        "consent, and WHO ASSIST v3 screening. The only service that holds identities; it hands "
        "one to the referral service only for an open referral and a consent it checks itself."
    ),
    migrations=Path(__file__).parent / "migrations",
    routers=(units.router, clients.router, identity.router, consents.router, screenings.router),
    dependencies=OutreachDeps.build,
    subscribe=consumers.subscribe,
)


def build(settings: Settings | None = None) -> FastAPI:
    """The outreach app for ``settings`` (environment variables by default)."""
    settings = settings or Settings()
    app = create_app(spec, settings)
    units.villages_of(app, settings.regency)
    return app


app = build()
