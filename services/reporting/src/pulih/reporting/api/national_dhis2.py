"""``GET /v1/national/dhis2/…``: the national figures as the two files DHIS2 imports.

- ``/metadata``: the data elements (an indicator each, and the units in each phase), the org
  units (Indonesia, its provinces, every regency the national view expects or has heard from)
  and Pulih's monthly data set. Import it first (``POST /api/metadata``), and again when a
  regency joins.
- ``/dataValueSets?from=YYYY-MM&to=YYYY-MM``: every published regency figure of those months,
  by the latest revision of each regency's aggregate (``POST /api/dataValueSets``). Suppressed
  figures are left out, never sent as 0 (:mod:`pulih.reporting.national.dhis2`).

National and admin tokens of the national view only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from pulih.kit.auth import Role, allow
from pulih.kit.deps import RuntimeDep
from pulih.reporting.api.params import MONTH
from pulih.reporting.domain.periods import PeriodKind
from pulih.reporting.national import dhis2
from pulih.reporting.national.deps import DirectoryDep
from pulih.reporting.national.figures import (
    NationalLevel,
    last_closed_month,
    national_phases,
    national_rows,
    regency_statuses,
)
from pulih.reporting.ranges import period_range

router = APIRouter(prefix="/v1/national/dhis2", tags=["national", "dhis2"])

NATIONAL_READERS = (Role.NATIONAL, Role.ADMIN)


def _attachment(body: dict[str, Any], filename: str) -> JSONResponse:
    return JSONResponse(body, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get(
    "/metadata",
    dependencies=[allow(*NATIONAL_READERS)],
    responses={200: {"description": "DHIS2 metadata: dataElements, organisationUnits, dataSets"}},
)
async def metadata(runtime: RuntimeDep, directory: DirectoryDep) -> JSONResponse:
    """The DHIS2 metadata import file (``POST /api/metadata``, or the Import/Export app): a data
    element per indicator and per unit phase, Indonesia, the provinces and every regency the
    national view expects or has received, and Pulih's monthly data set. UIDs are stable: import
    it again after a regency joins."""
    closed = last_closed_month(runtime.clock.today())
    async with runtime.database.sessions() as session:
        statuses = await regency_statuses(session, last_closed_month=closed, directory=directory)
    body = dhis2.metadata(dhis2.OrgUnit(code=s.code, name=s.name) for s in statuses)
    return _attachment(body, "pulih-dhis2-metadata.json")


@router.get(
    "/dataValueSets",
    dependencies=[allow(*NATIONAL_READERS)],
    responses={
        200: {"description": "a DHIS2 data value set: dataSet and dataValues"},
        422: {"description": "a bad month or range (`field` names the parameter)"},
    },
)
async def data_value_sets(
    runtime: RuntimeDep,
    directory: DirectoryDep,
    since: Annotated[
        str | None,
        Query(
            alias="from",
            description="first month, YYYY-MM (default: twelve months back)",
            json_schema_extra=MONTH,
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            alias="to",
            description="last month, YYYY-MM (default: the last closed month)",
            json_schema_extra=MONTH,
        ),
    ] = None,
) -> JSONResponse:
    """The DHIS2 data values of every regency for the months ``from`` to ``to`` (the last twelve
    closed months by default): a value per published indicator and per unit phase, period
    ``YYYYMM``, by the latest revision of each regency's aggregate. Suppressed figures are
    absent, not 0. Import the metadata first."""
    last_closed = runtime.clock.today().replace(day=1) - timedelta(days=1)
    months = period_range(PeriodKind.MONTH, since, until, last_closed)
    async with runtime.database.sessions() as session:
        figures = await national_rows(
            session, level=NationalLevel.REGENCY, start=months.first, end=months.last, directory=directory
        )
        phases = await national_phases(
            session, level=NationalLevel.REGENCY, start=months.first, end=months.last, directory=directory
        )
    body = dhis2.data_value_set(figures, phases)
    name = f"pulih-dhis2-dataValueSets-{dhis2.dhis2_period(months.first)}-{dhis2.dhis2_period(months.last)}"
    return _attachment(body, f"{name}.json")
