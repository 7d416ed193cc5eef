"""The reporting service in national mode (``PULIH_REPORTING_MODE=national``), on the hub.

The same package and port as a regency's reporting, another face: it consumes the hub's
``NATIONAL`` stream (:mod:`.consumers`), never declares a regency stream, publishes nothing but
its dead letters (no outbox relay), runs no regency job, and serves the national API
(``/v1/national/…``: figures, DHIS2 export) and the national dashboard at ``/``.
"""

from __future__ import annotations

from pathlib import Path

from pulih.kit.service import ServiceSpec
from pulih.reporting.api import national, national_dashboard, national_dhis2
from pulih.reporting.national import consumers
from pulih.reporting.national.deps import NationalDeps

spec = ServiceSpec(
    name="reporting",
    port=8104,
    title="Pulih national reporting",
    description=(
        "The national office's view of every regency's monthly AggregateReported: indicators by "
        "regency, province and nation (totals say how many suppressed figures they miss), units "
        "by phase, regencies that have not reported, a DHIS2 export, and the national dashboard."
    ),
    migrations=Path(__file__).parent.parent / "migrations",
    routers=(national.router, national_dhis2.router, national_dashboard.router),
    dependencies=NationalDeps.build,
    subscribe=consumers.subscribe,
    streams=consumers.wait_for_national,
    publishes=False,
)
