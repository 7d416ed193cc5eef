"""``GET /v1/indicators``: the indicators of EVENTS.md per org unit and period, as JSON or CSV.

These are the regency's true counts (nothing suppressed): only agents, facilitators and admins
read them. What leaves the regency is ``/v1/aggregates``.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pulih.kit.auth import CurrentUser, Principal, Role, allow
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Forbidden, Invalid, NotFound
from pulih.reporting import queries
from pulih.reporting.api.params import PERIOD, READERS, choice, one_of
from pulih.reporting.bodies import INDICATORS, IndicatorTable, OrgLevel
from pulih.reporting.domain.periods import PeriodKind
from pulih.reporting.ranges import MOST_ROWS, period_range
from pulih.reporting.store import LIVE

router = APIRouter(prefix="/v1", tags=["indicators"])

CSV = "text/csv"

ORG_ID_FORMS = {
    OrgLevel.VILLAGE: (re.compile(r"^[0-9]{10}$"), "a 10-digit village code"),
    OrgLevel.DISTRICT: (re.compile(r"^[0-9]{6}$"), "a 6-digit district code"),
    OrgLevel.REGENCY: (re.compile(r"^[0-9]{4}$"), "a 4-digit regency code"),
}


def _checked_id(level: OrgLevel, org_id: str | None) -> str | None:
    """``org_id`` in the form its level writes it (a unit's UUID in canonical form); 422 if not."""
    if org_id is None:
        return None
    if level is OrgLevel.UNIT:
        try:
            return str(UUID(org_id))
        except ValueError as exc:
            raise Invalid("invalid_id", "id must be a unit's UUID at level unit", "id") from exc
    form, what = ORG_ID_FORMS[level]
    if not form.match(org_id):
        raise Invalid("invalid_id", f"id must be {what} at level {level.value}", "id")
    return org_id


def _agent_scope(principal: Principal, level: OrgLevel, org_id: str | None) -> str | None:
    """An agent reads their own unit's rows and nothing above it."""
    if principal.role is not Role.AGENT:
        return org_id
    if level is not OrgLevel.UNIT:
        raise Forbidden("unit_only", "an agent sees only their own unit's figures (level=unit)", "level")
    own = str(principal.unit_id)
    if org_id is not None and org_id != own:
        raise Forbidden("other_unit", "an agent sees only their own unit", "id")
    return own


def _quality(params: list[str]) -> float:
    """A media range's ``q`` (1 when it has none; 0, not acceptable, when it is malformed)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def _acceptance(accept: str, media_type: str) -> tuple[float, int]:
    """How much ``accept`` wants ``media_type``: the ``q`` of the most specific range that
    matches it (``type/subtype`` over ``type/*`` over ``*/*``, RFC 9110 §12.5.1), and how
    specific that range was (2, 1, 0; -1 when none matched). Media types are case-insensitive."""
    kind, _, subtype = media_type.partition("/")
    best: tuple[int, float] = (-1, 0.0)
    for media_range in accept.split(","):
        name, *params = media_range.split(";")
        wanted_kind, _, wanted_subtype = name.strip().lower().partition("/")
        if (wanted_kind, wanted_subtype) == (kind, subtype):
            specific = 2
        elif (wanted_kind, wanted_subtype) == (kind, "*"):
            specific = 1
        elif (wanted_kind, wanted_subtype) == ("*", "*"):
            specific = 0
        else:
            continue
        if specific > best[0]:
            best = (specific, _quality(params))
    return best[1], best[0]


def wants_csv(accept: str | None) -> bool:
    """Whether to answer CSV: when ``Accept`` gives ``text/csv`` a higher ``q`` than JSON (or the
    same ``q`` through a more specific range, as in ``text/csv, */*``). JSON otherwise: it is
    the default, also when neither is acceptable."""
    if not accept:
        return False
    csv_q, csv_specific = _acceptance(accept, CSV)
    json_q, json_specific = _acceptance(accept, "application/json")
    return csv_q > 0 and (csv_q, csv_specific) > (json_q, json_specific)


def _as_csv(table: IndicatorTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["level", "org_id", "org_name", "period", *INDICATORS])
    for row in table.rows:
        values = [row.indicators[name] for name in INDICATORS]
        writer.writerow([table.level.value, row.org_id, row.org_name or "", row.period, *values])
    return out.getvalue()


@router.get(
    "/indicators",
    response_model=IndicatorTable,
    response_model_by_alias=True,
    dependencies=[allow(*READERS)],
    responses={
        200: {
            "content": {CSV: {"schema": {"type": "string"}}},
            "description": "JSON, or CSV (a header row, then one row per org unit and period) "
            "when `Accept` prefers `text/csv` to JSON (q-values count)",
        },
        403: {"description": "an agent asking for another unit or a level above unit"},
        404: {"description": "no org unit with this id at this level"},
        422: {"description": "a bad level, id, period or range (`field` names the parameter)"},
    },
)
async def indicators(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentUser,
    level_name: Annotated[
        str,
        Query(
            alias="level",
            description="unit, village, district or regency",
            json_schema_extra=one_of(OrgLevel),
        ),
    ] = OrgLevel.REGENCY.value,
    org_id: Annotated[
        str | None, Query(alias="id", description="one org unit (all of the level if left out)")
    ] = None,
    since: Annotated[
        str | None,
        Query(
            alias="from",
            description="first period: 2026-01 or 2026-W05 (as `by` says)",
            json_schema_extra=PERIOD,
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(alias="to", description="last period, included (default: today's)", json_schema_extra=PERIOD),
    ] = None,
    by_name: Annotated[
        str, Query(alias="by", description="month or week", json_schema_extra=one_of(PeriodKind))
    ] = PeriodKind.MONTH.value,
) -> Response:
    """Every indicator for each org unit at ``level`` (or the one ``id``) and each period from
    ``from`` to ``to``: the regency's true counts, a missing cell being 0. Agents: their own
    unit at level ``unit`` only. The answer varies with ``Accept`` (it says so: ``Vary``)."""
    level, by = choice(OrgLevel, level_name, "level"), choice(PeriodKind, by_name, "by")
    wanted = _agent_scope(principal, level, _checked_id(level, org_id))
    periods = period_range(by, since, until, runtime.clock.today())
    async with runtime.database.sessions() as session:
        found = await queries.orgs(session, LIVE, level, runtime.settings.regency, wanted)
        if org_id is not None and not found:
            raise NotFound("unknown_org", f"no {level.value} {wanted} in this regency", "id")
        if len(found) * len(periods.periods) > MOST_ROWS:
            raise Invalid(
                "too_many_rows",
                f"{len(found)} org units by {len(periods.periods)} periods is more than {MOST_ROWS} rows: "
                "ask for a shorter range or one org unit (id)",
                "from",
            )
        rows = await queries.indicator_rows(session, LIVE, level, found, periods)
    table = IndicatorTable(
        level=level, by=by, from_=periods.first, to=periods.last, indicators=list(INDICATORS), rows=rows
    )
    if wants_csv(request.headers.get("accept")):
        filename = f"pulih-{runtime.settings.regency}-{level.value}-{periods.first}-{periods.last}.csv"
        return Response(
            _as_csv(table),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"', "Vary": "Accept"},
        )
    return Response(
        table.model_dump_json(by_alias=True), media_type="application/json", headers={"Vary": "Accept"}
    )
