"""``GET /v1/national/…``: the national office's figures, as JSON or CSV.

- ``/regencies``: every regency expected (the federation list) or heard from, its latest month
  and whether it is silent (nothing of the last closed month of the national view's clock);
- ``/indicators``: indicators by nation, province or regency and month; a total says how many
  regency figures were suppressed (``hidden``) and so are missing from its ``value``;
- ``/phases``: how many IBM units were in each phase, by the same org units.

National and admin tokens of the national view only (``"regency": "national"``). CSV when
``Accept`` prefers ``text/csv``, as ``/v1/indicators`` does.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts.codes import Indicator
from pulih.kit.auth import Role, allow
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Invalid
from pulih.reporting.api.indicators import CSV, wants_csv
from pulih.reporting.api.params import MONTH, choice, one_of
from pulih.reporting.domain.periods import PeriodKind
from pulih.reporting.national.deps import DirectoryDep
from pulih.reporting.national.directory import NATION, Directory
from pulih.reporting.national.figures import (
    NationalLevel,
    last_closed_month,
    national_phases,
    national_rows,
    regency_statuses,
)
from pulih.reporting.national.store import national_aggregates
from pulih.reporting.ranges import PeriodRange, period_range

router = APIRouter(prefix="/v1/national", tags=["national"])

NATIONAL_READERS = (Role.NATIONAL, Role.ADMIN)
"""Who reads the national view: the national office, and the hub's administrators."""

_CODE_FORMS = {
    NationalLevel.PROVINCE: (re.compile(r"^[0-9]{2}$"), "a 2-digit province code"),
    NationalLevel.REGENCY: (
        re.compile(r"^[0-9]{2}([0-9]{2})?$"),
        "a 4-digit regency code (or a province's 2)",
    ),
}

REGENCIES_OF_INDONESIA = 514
"""Every kabupaten and kota: the most regencies a national view may hear from."""

MOST_NATIONAL_ROWS = REGENCIES_OF_INDONESIA * 12 * len(Indicator)
"""The most rows one ``/indicators`` answer may hold: a year of every figure of every regency of
Indonesia (117,192 rows with 19 indicators, read in about 0.6 s on SQLite), what the national
dashboard's CSV button asks for. A regency's own API stops at 50,000; a national view's whole
year has to fit in one file."""

_CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {CSV: {"schema": {"type": "string"}}},
        "description": "JSON, or CSV (a header row, then a row each) when `Accept` prefers `text/csv`",
    },
    403: {"description": "a token of a regency, or a role other than national or admin"},
    422: {"description": "a bad level, code, period or indicator (`field` names the parameter)"},
}


class RegencyView(BaseModel):
    """A regency as the national office sees it."""

    code: str
    name: str
    province: str
    province_name: str
    last_period: str | None = Field(description="the latest month it reported")
    last_received_at: datetime | None = Field(description="when its latest aggregate arrived")
    revision: int | None = Field(description="the revision held for last_period")
    silent: bool = Field(description="no aggregate of last_closed_month has arrived")


class RegenciesView(BaseModel):
    """``GET /v1/national/regencies``."""

    last_closed_month: str
    regencies: list[RegencyView]


class CellView(BaseModel):
    """One indicator of one org unit in one month."""

    level: str
    org_unit: str = Field(description="ID, a province's 2 digits or a regency's 4")
    name: str
    period: str
    indicator: str
    value: int = Field(description="the sum of the published regency figures")
    hidden: int = Field(description="how many regency figures of the total were suppressed")
    reporting: int = Field(description="how many regencies' aggregates the total adds up")
    exact: bool = Field(description="nothing was hidden")


class _FiguresView(BaseModel):
    """What a figures route answers before its rows: the level and months asked for."""

    model_config = ConfigDict(populate_by_name=True)

    level: str
    from_: str = Field(alias="from")
    to: str


class IndicatorsView(_FiguresView):
    """``GET /v1/national/indicators``."""

    rows: list[CellView]


class PhaseView(BaseModel):
    """How many units of one org unit were in one phase in one month."""

    level: str
    org_unit: str
    name: str
    period: str
    phase: str
    units: int


class PhasesView(_FiguresView):
    """``GET /v1/national/phases``."""

    rows: list[PhaseView]


def _checked_code(level: NationalLevel, code: str | None) -> str | None:
    if code is None:
        return None
    if level is NationalLevel.NATION:
        if code != NATION:
            raise Invalid("invalid_code", f"the nation's code is {NATION}; leave code out", "code")
        return None
    form, what = _CODE_FORMS[level]
    if not form.match(code):
        raise Invalid("invalid_code", f"code must be {what} at level {level.value}", "code")
    return code


async def _check_known(session: AsyncSession, directory: Directory, code: str | None) -> None:
    """422 for a province or regency ``code`` the national view has never heard of: not a
    province of Indonesia nor of any regency it expects or has received; a regency neither
    expected (the federation list) nor received."""
    if code is None:
        return
    a = national_aggregates.c
    if len(code) == 2:
        if code in directory.provinces or any(r.startswith(code) for r in directory.expected):
            return
        if await session.scalar(select(a.regency).where(a.regency.startswith(code)).limit(1)) is None:
            raise Invalid("unknown_province", f"no province {code} is known to the national view", "code")
        return
    if code in directory.expected:
        return
    if await session.scalar(select(a.regency).where(a.regency == code).limit(1)) is None:
        raise Invalid(
            "unknown_regency",
            f"regency {code} is neither expected (the federation list) nor ever heard from",
            "code",
        )


def _rows(items: Iterable[object], view: type[BaseModel]) -> list[dict[str, Any]]:
    """Each item as a row of ``view``: its attributes named as the view's fields, in their order."""
    return [{field: getattr(item, field) for field in view.model_fields} for item in items]


def _answer(
    request: Request, body: dict[str, Any], view: type[BaseModel], rows: Iterable[dict[str, Any]], name: str
) -> Response:
    """``body`` as JSON, or ``rows`` as CSV (the columns of ``view``) in a file called ``name``."""
    columns = list(view.model_fields)
    if wants_csv(request.headers.get("accept")):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else _csv_value(row[c]) for c in columns])
        return Response(
            out.getvalue(),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"', "Vary": "Accept"},
        )
    return Response(
        json.dumps(body, separators=(",", ":"), default=_json_value),
        media_type="application/json",
        headers={"Vary": "Accept"},
    )


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _months(runtime: RuntimeDep, since: str | None, until: str | None) -> PeriodRange:
    return period_range(PeriodKind.MONTH, since, until, runtime.clock.today())


Since = Annotated[
    str | None,
    Query(alias="from", description="first month, YYYY-MM (default: a year back)", json_schema_extra=MONTH),
]
Until = Annotated[
    str | None,
    Query(alias="to", description="last month, included (default: this month)", json_schema_extra=MONTH),
]
Level = Annotated[
    str,
    Query(alias="level", description="nation, province or regency", json_schema_extra=one_of(NationalLevel)),
]
Code = Annotated[
    str | None,
    Query(
        description="one org unit of the level: a province's 2 digits, a regency's 4 (at level regency, a "
        "province's 2 give its regencies)"
    ),
]


@dataclass(frozen=True)
class Asked:
    """What a figures route was asked for: the level, its one org unit (or all) and the months."""

    level: NationalLevel
    code: str | None
    months: PeriodRange

    def body(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The JSON answer: what was asked, then the rows."""
        return {"level": self.level.value, "from": self.months.first, "to": self.months.last, "rows": rows}

    def file_name(self, *what: str) -> str:
        """The CSV file's name: ``what`` (if anything), the level and the months."""
        return "-".join(("pulih-national", *what, self.level.value, self.months.first, self.months.last))


async def _asked(
    runtime: RuntimeDep,
    level_name: Level = NationalLevel.NATION.value,
    code: Code = None,
    since: Since = None,
    until: Until = None,
) -> Asked:
    level = choice(NationalLevel, level_name, "level")
    return Asked(level, _checked_code(level, code), _months(runtime, since, until))


AskedDep = Annotated[Asked, Depends(_asked)]


async def _indicator(
    indicator_name: Annotated[
        str | None,
        Query(
            alias="indicator",
            description="one indicator (all if left out)",
            json_schema_extra=one_of(Indicator),
        ),
    ] = None,
) -> str | None:
    return None if indicator_name is None else choice(Indicator, indicator_name, "indicator").value


IndicatorDep = Annotated[str | None, Depends(_indicator)]
"""The one indicator asked for, or None for all (after :data:`AskedDep`, as in the OpenAPI document)."""


def _route(path: str, view: type[BaseModel]) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A national route: national and admin tokens only, JSON as ``view`` or CSV."""
    return router.get(
        path,
        response_model=view,
        response_model_by_alias=True,
        dependencies=[allow(*NATIONAL_READERS)],
        responses=_CSV_RESPONSE,
    )


@_route("/regencies", RegenciesView)
async def regencies(request: Request, runtime: RuntimeDep, directory: DirectoryDep) -> Response:
    """Every regency expected or heard from, in code order: its latest month, when its latest
    aggregate arrived, and whether it is silent (nothing of the last closed month)."""
    closed = last_closed_month(runtime.clock.today())
    async with runtime.database.sessions() as session:
        statuses = await regency_statuses(session, last_closed_month=closed, directory=directory)
    rows = _rows(statuses, RegencyView)
    body = {"last_closed_month": closed, "regencies": rows}
    return _answer(request, body, RegencyView, rows, f"pulih-national-regencies-{closed}")


@_route("/indicators", IndicatorsView)
async def indicators(
    request: Request,
    runtime: RuntimeDep,
    directory: DirectoryDep,
    asked: AskedDep,
    indicator: IndicatorDep,
) -> Response:
    """Indicators of each org unit at ``level`` (or the one ``code``) by month from ``from`` to
    ``to``: months that org unit reported, org units in code order, indicators in the
    catalogue's order."""
    level, wanted, months = asked.level, asked.code, asked.months
    async with runtime.database.sessions() as session:
        await _check_known(session, directory, wanted)
        if level is NationalLevel.REGENCY and (wanted is None or len(wanted) == 2):
            count = select(func.count(func.distinct(national_aggregates.c.regency))).where(
                national_aggregates.c.period >= months.first, national_aggregates.c.period <= months.last
            )
            if wanted is not None:
                count = count.where(national_aggregates.c.regency.startswith(wanted))
            most = (
                int(await session.scalar(count) or 0)
                * len(months.periods)
                * (1 if indicator else len(Indicator))
            )
            if most > MOST_NATIONAL_ROWS:
                raise Invalid(
                    "too_many_rows",
                    f"that may be {most} rows, more than {MOST_NATIONAL_ROWS}: ask for one indicator, one "
                    "province (code) or fewer months",
                    "from",
                )
        cells = await national_rows(
            session,
            level=level,
            code=wanted,
            start=months.first,
            end=months.last,
            indicator=indicator,
            directory=directory,
        )
    rows = _rows(cells, CellView)
    return _answer(request, asked.body(rows), CellView, rows, asked.file_name())


@_route("/phases", PhasesView)
async def phases(request: Request, runtime: RuntimeDep, directory: DirectoryDep, asked: AskedDep) -> Response:
    """How many IBM units were in each phase, per org unit at ``level`` (or the one ``code``)
    and month, by each regency's latest aggregate of the month."""
    async with runtime.database.sessions() as session:
        await _check_known(session, directory, asked.code)
        cells = await national_phases(
            session,
            level=asked.level,
            code=asked.code,
            start=asked.months.first,
            end=asked.months.last,
            directory=directory,
        )
    rows = _rows(cells, PhaseView)
    return _answer(request, asked.body(rows), PhaseView, rows, asked.file_name("phases"))
