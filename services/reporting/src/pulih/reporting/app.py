"""Wiring of the reporting service: ``uvicorn pulih.reporting.app:app`` (port 8104)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from pulih.kit.scheduler import periodic
from pulih.kit.service import ServiceSpec, create_app
from pulih.kit.settings import Settings
from pulih.reporting import consumers, handlers
from pulih.reporting.aggregates import publish_aggregates
from pulih.reporting.api import aggregates, dashboard, indicators, phases
from pulih.reporting.deps import ReportingDeps
from pulih.reporting.national.spec import spec as national_spec

spec = ServiceSpec(
    name="reporting",
    port=8104,
    title="Pulih reporting",
    description=(
        "Projections of every event of the regency: the indicators of EVENTS.md by unit, village, "
        "district and regency, by month and ISO week; QoL change; referral times; unit phases; the "
        "monthly AggregateReported with small counts suppressed; and the facilitators' dashboard."
    ),
    migrations=Path(__file__).parent / "migrations",
    routers=(indicators.router, phases.router, aggregates.router, dashboard.router),
    dependencies=ReportingDeps.build,
    subscribe=consumers.subscribe,
    background=(
        periodic("publish-aggregates", publish_aggregates, lambda rt: rt.settings.scheduler_seconds),
        periodic("recount-deferred", handlers.recount_job, lambda rt: handlers.RECOUNT_AT_MOST_EVERY),
    ),
)


def build(settings: Settings | None = None) -> FastAPI:
    """The reporting app for ``settings`` (environment variables by default): the regency's, or
    the national view with ``PULIH_REPORTING_MODE=national``."""
    settings = settings or Settings()
    return create_app(national_spec if settings.reporting_mode == "national" else spec, settings)


app = build()
