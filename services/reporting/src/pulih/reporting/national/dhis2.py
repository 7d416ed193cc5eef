"""The national figures as DHIS2 import files: the metadata, then the data values.

Pure functions, no I/O. Two files, imported in this order:

- **metadata** (``POST /api/metadata``): a data element per indicator of EVENTS.md and one per
  unit phase (``units_<phase>``), the organisation units (Indonesia, its provinces by their
  Kemendagri code, the regencies under them), and one monthly data set linking the data
  elements to the regencies. No category combination is named: DHIS2 gives each data element
  and the data set its ``default`` one, and the data values name no option combination.
- **dataValueSets** (``POST /api/dataValueSets``): one value per (regency, month, indicator)
  that was published, period ``YYYYMM``, the value a string as DHIS2 expects. DHIS2 sums
  regencies up to provinces and the nation itself.

Every object has a stable DHIS2 UID derived from its kind and code (:func:`uid`), and its code
is set too (the indicator's name, the Kemendagri code, ``ID`` for the nation), so an import is
repeatable (``CREATE_AND_UPDATE`` matches the same objects) and a DHIS2 that prefers codes can
import with ``idScheme=CODE``.

A **suppressed** cell (counts from 1 to ``suppressed_below - 1`` never leave a regency: the
aggregate carries null) is left out of the data values, never sent as 0: in DHIS2 it is a
missing value, so a province's or the nation's total there is the sum of the published cells
only, like the national view's ``value`` with ``hidden`` > 0. Zeros are published figures and
are sent (the data elements say ``zeroIsSignificant`` so that DHIS2 keeps them).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pulih.contracts.codes import Indicator, UnitPhase
from pulih.kit.federation.names import PROVINCES

UID_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
UID_CHARACTERS = UID_LETTERS + "0123456789"
UID = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")
"""A DHIS2 UID: eleven characters, a letter then ten letters or digits."""

NATION_CODE = "ID"
NATION_NAME = "Indonesia"
DATA_SET_CODE = "PULIH_NATIONAL_MONTHLY"
DATA_SET_NAME = "Pulih national monthly aggregates"
OPENING_DATE = "1970-01-01"
"""DHIS2 requires an opening date of each organisation unit; Pulih knows none, so DHIS2's own
default."""

UNITS_PREFIX = "units_"
"""The data element of the units in a phase: ``units_rintisan`` … ``units_prima``."""

STOCKS = frozenset({Indicator.CLIENTS_ACTIVE.value, Indicator.REFERRALS_OVERDUE.value})
"""Indicators that are stocks on the month's last day, not flows: DHIS2 sums them over
regencies but averages them over months (``AVERAGE_SUM_ORG_UNIT``), like the units by phase."""

DESCRIPTIONS: Mapping[str, str] = {
    "outreach_people_reached": "People reached by outreach activities held in the month.",
    "clients_registered": "Clients registered in the month.",
    "clients_screened": "Distinct clients screened at least once in the month.",
    "screened_low": "Clients screened in the month whose last screening was low risk.",
    "screened_moderate": "Clients screened in the month whose last screening was moderate risk.",
    "screened_high": "Clients screened in the month whose last screening was high risk.",
    "clients_enrolled": "Clients enrolled in the programme in the month.",
    "clients_active": "Clients enrolled and not discharged on the month's last day (a stock).",
    "sessions_held": "Sessions held in the month.",
    "sessions_attended": "Sessions held in the month that the client attended.",
    "referrals_made": "Referrals to a clinic made in the month.",
    "referrals_accepted": "Referrals accepted by a clinic in the month.",
    "referrals_completed": "Referrals closed with outcome completed in the month.",
    "referrals_overdue": "Referrals unanswered past their respond-by date on the month's last day (a stock).",
    "back_referrals": "Referrals closed with a back-referral in the month.",
    "programmes_completed": "Clients discharged having completed the programme in the month.",
    "dropouts": "Clients discharged as dropped out in the month (reversed dropouts excluded).",
    "follow_ups_relapsed": "Follow-ups in the month that recorded a relapse.",
    "qol_improved": "Clients whose exit quality-of-life mean beat their baseline, in the month.",
}
"""What each data element counts, after EVENTS.md's "Indicator definitions"."""


class RegencyFigure(Protocol):
    """One regency's figure for one month and indicator, as the national view holds it
    (``pulih.reporting.national.figures``' cells at the regency level fit)."""

    @property
    def org_unit(self) -> str: ...
    @property
    def period(self) -> str: ...
    @property
    def indicator(self) -> str: ...
    @property
    def value(self) -> int | None: ...
    @property
    def hidden(self) -> int: ...


class RegencyPhaseCount(Protocol):
    """How many of one regency's units stood in one phase after one month's assessment."""

    @property
    def org_unit(self) -> str: ...
    @property
    def period(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def units(self) -> int: ...


@dataclass(frozen=True)
class OrgUnit:
    """A regency the export names: its Kemendagri code and its name."""

    code: str
    name: str


def uid(kind: str, code: str) -> str:
    """The stable DHIS2 UID of the object of ``kind`` (``dataElement``, ``organisationUnit``,
    ``dataSet``) with ``code``: a letter then ten letters or digits, from SHA-256 of both, so
    the same object has the same UID in every export and on every hub."""
    number = int.from_bytes(hashlib.sha256(f"pulih/{kind}/{code}".encode()).digest(), "big")
    number, first = divmod(number, len(UID_LETTERS))
    rest = []
    for _ in range(10):
        number, index = divmod(number, len(UID_CHARACTERS))
        rest.append(UID_CHARACTERS[index])
    return UID_LETTERS[first] + "".join(rest)


def data_element_codes() -> list[str]:
    """The code of every data element: the indicators in EVENTS.md's order, then
    ``units_<phase>`` from rintisan to prima."""
    return [i.value for i in Indicator] + [UNITS_PREFIX + p.value for p in UnitPhase]


def data_element_uid(code: str) -> str:
    """The UID of the data element of an indicator (or ``units_<phase>``)."""
    return uid("dataElement", code)


def org_unit_uid(code: str) -> str:
    """The UID of the organisation unit of a regency (4 digits), a province (2) or ``ID``."""
    return uid("organisationUnit", code)


def data_set_uid() -> str:
    """The UID of Pulih's monthly data set."""
    return uid("dataSet", DATA_SET_CODE)


def dhis2_period(month: str) -> str:
    """``2026-10`` → ``202610`` (DHIS2's monthly period); ValueError for anything else."""
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"a month is YYYY-MM, not {month!r}")
    return month.replace("-", "")


def _data_element(code: str) -> dict[str, Any]:
    phase = code.removeprefix(UNITS_PREFIX) if code.startswith(UNITS_PREFIX) else None
    label = f"units in phase {phase}" if phase else code.replace("_", " ")
    description = (
        f"IBM units in the {phase} phase after the month's assessment (a stock)."
        if phase
        else DESCRIPTIONS.get(code, code)
    )
    stock = phase is not None or code in STOCKS
    return {
        "id": data_element_uid(code),
        "code": code,
        "name": f"Pulih {label}",
        "shortName": f"Pulih {label}"[:50],
        "formName": label,
        "description": description,
        "domainType": "AGGREGATE",
        "valueType": "INTEGER_ZERO_OR_POSITIVE",
        "aggregationType": "AVERAGE_SUM_ORG_UNIT" if stock else "SUM",
        "zeroIsSignificant": True,
    }


def _org_unit(code: str, name: str, parent: str | None) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "id": org_unit_uid(code),
        "code": code,
        "name": name,
        "shortName": name[:50],
        "openingDate": OPENING_DATE,
    }
    if parent is not None:
        unit["parent"] = {"id": org_unit_uid(parent)}
    return unit


def _distinct_names(regencies: Iterable[OrgUnit]) -> dict[str, str]:
    """Code → the name DHIS2 is given: the regency's own, or ``name (code)`` where two regencies
    of the export share a name (``Bogor`` the kabupaten and the kota)."""
    units = sorted({r.code: r for r in regencies}.values(), key=lambda r: r.code)
    seen: dict[str, int] = {}
    for r in units:
        seen[r.name] = seen.get(r.name, 0) + 1
    return {
        r.code: r.name if seen[r.name] == 1 and r.name else f"{r.name or 'Regency'} ({r.code})" for r in units
    }


def metadata(regencies: Iterable[OrgUnit]) -> dict[str, Any]:
    """The metadata import file (``POST /api/metadata``): ``dataElements`` (every indicator and
    ``units_<phase>``), ``organisationUnits`` (Indonesia, the provinces of ``regencies``, the
    regencies; parents first, as DHIS2 wants a parent before its children) and ``dataSets``
    (one, monthly: every data element, reported by every regency)."""
    names = _distinct_names(regencies)
    provinces = sorted({code[:2] for code in names})
    units = [_org_unit(NATION_CODE, NATION_NAME, None)]
    units += [_org_unit(p, PROVINCES.get(p, p), NATION_CODE) for p in provinces]
    units += [_org_unit(code, name, code[:2]) for code, name in names.items()]
    elements = [_data_element(code) for code in data_element_codes()]
    data_set = {
        "id": data_set_uid(),
        "code": DATA_SET_CODE,
        "name": DATA_SET_NAME,
        "shortName": DATA_SET_NAME,
        "description": (
            "Monthly aggregates each regency published to the national hub (AggregateReported). "
            "Suppressed cells (small counts a regency never publishes) are absent, not zero: "
            "a total over regencies counts the published cells only."
        ),
        "periodType": "Monthly",
        "dataSetElements": [{"dataElement": {"id": e["id"]}} for e in elements],
        "organisationUnits": [{"id": org_unit_uid(code)} for code in names],
    }
    return {"dataElements": elements, "organisationUnits": units, "dataSets": [data_set]}


def data_value_set(
    figures: Iterable[RegencyFigure], phases: Iterable[RegencyPhaseCount] = ()
) -> dict[str, Any]:
    """The ``dataValueSets`` import file of the regencies' ``figures`` (and units by phase):
    one data value per published figure (``dataElement``, ``period`` ``YYYYMM``, ``orgUnit``,
    ``value`` as a string), ordered by regency, month and data element. A suppressed figure
    (``value`` null, or a cell with ``hidden`` regencies) is left out, never sent as 0; an
    indicator this export does not know is left out too (its data element would be missing)."""
    known = set(data_element_codes())
    values: list[tuple[str, str, int, str]] = []
    order = {code: index for index, code in enumerate(data_element_codes())}
    for figure in figures:
        if figure.value is None or figure.hidden or figure.indicator not in known:
            continue
        values.append((figure.org_unit, figure.period, order[figure.indicator], str(figure.value)))
    for count in phases:
        code = UNITS_PREFIX + count.phase
        if code in known:
            values.append((count.org_unit, count.period, order[code], str(count.units)))
    codes = data_element_codes()
    return {
        "dataSet": data_set_uid(),
        "dataValues": [
            {
                "dataElement": data_element_uid(codes[element]),
                "period": dhis2_period(period),
                "orgUnit": org_unit_uid(org_unit),
                "value": value,
            }
            for org_unit, period, element, value in sorted(values)
        ],
    }


def read_data_values(
    data_values: Mapping[str, Any], metadata_file: Mapping[str, Any]
) -> dict[tuple[str, str, str], int]:
    """The inverse of :func:`data_value_set`, through the metadata's codes: (regency code,
    month ``YYYY-MM``, data element code) → value. For tests, and for anyone checking an export
    against the national view."""
    elements = {e["id"]: e["code"] for e in metadata_file["dataElements"]}
    units = {u["id"]: u["code"] for u in metadata_file["organisationUnits"]}
    read: dict[tuple[str, str, str], int] = {}
    for value in data_values["dataValues"]:
        period = value["period"]
        key = (units[value["orgUnit"]], f"{period[:4]}-{period[4:]}", elements[value["dataElement"]])
        if key in read:
            raise ValueError(f"two values for {key}")
        read[key] = int(value["value"])
    return read
