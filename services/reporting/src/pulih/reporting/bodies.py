"""What the reporting API gives back (response bodies), and the few query values it takes.

Every body is read from the projection's rows (``model_validate(row, from_attributes=True)``)
or from the summaries :mod:`pulih.reporting.queries` makes of them.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from pulih.contracts.codes import Indicator, UnitPhase
from pulih.reporting.domain.periods import PeriodKind


class View(BaseModel):
    """Response bodies, read from rows."""

    model_config = ConfigDict(from_attributes=True)


class OrgLevel(StrEnum):
    """The org levels an indicator is counted at: a unit (its UUID), a village (10-digit
    Kemendagri code), a district (6 digits) or the whole regency (4 digits)."""

    UNIT = "unit"
    VILLAGE = "village"
    DISTRICT = "district"
    REGENCY = "regency"


INDICATORS: tuple[str, ...] = tuple(i.value for i in Indicator)
"""Every indicator of EVENTS.md, in the catalogue's order (the CSV's columns)."""


class IndicatorRow(View):
    """One org unit in one period, with every indicator (a count the projection has no cell
    for is 0)."""

    org_id: str = Field(description="the unit's UUID, or the village, district or regency code")
    org_name: str | None = Field(None, description="the unit's name (units only)")
    period: str = Field(description="YYYY-MM or YYYY-Www")
    indicators: dict[str, int] = Field(description="indicator name → true count (never suppressed)")


class IndicatorTable(View):
    """``GET /v1/indicators``: one row per org unit and period, orgs in code order, periods in
    time order."""

    model_config = ConfigDict(populate_by_name=True)

    level: OrgLevel
    by: PeriodKind
    from_: str = Field(alias="from")
    to: str
    indicators: list[str] = Field(description="the indicator names every row carries, in order")
    rows: list[IndicatorRow]


class PhaseAssessment(View):
    """A unit's phase after one month's assessment."""

    period: str
    phase: UnitPhase
    previous_phase: UnitPhase | None


Trend = Literal["up", "down", "steady"]


class UnitPhaseView(View):
    """A unit with its current phase (its latest assessment: of the last closed month, the
    running month is not assessed) and the moves that led there."""

    unit_id: UUID
    name: str
    village_code: str
    district_code: str
    established_on: date | None
    phase: UnitPhase | None = Field(
        description="after the latest assessment (null before the first: a unit's first month to close)"
    )
    assessed: str | None = Field(description="the month of the latest assessment (a closed month)")
    since: str | None = Field(description="the month the unit entered its current phase")
    trend: Trend | None = Field(description="the latest assessment against the one before")
    criteria: dict[str, Any] | None = Field(
        description="which criteria of each phase held at the latest assessment (phase → criterion → bool)"
    )
    history: list[PhaseAssessment] = Field(
        description="its moves: the assessments that changed its phase (its first included), oldest first"
    )


class PhaseCount(View):
    """How many units were in each phase after one month's assessment."""

    period: str
    units: dict[UnitPhase, int]


class UnitPhases(View):
    """``GET /v1/units/phases``: every unit the caller may see, and the month-by-month counts
    (months with no assessment left out, the running month among them)."""

    units: list[UnitPhaseView]
    by_month: list[PhaseCount]


class ReferralState(StrEnum):
    """Where a referral stands, from what the projection knows of it (FHIR Task, in the
    programme's words; ``dropped_out``: accepted but the client did not finish)."""

    REFERRED = "referred"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    ATTENDED = "attended"
    COMPLETED = "completed"
    DROPPED_OUT = "dropped_out"
    CANCELLED = "cancelled"


class OverdueReferral(View):
    """A referral the clinic has not answered although its ``respond_by`` has passed."""

    referral_id: UUID
    unit_id: UUID
    unit_name: str | None
    clinic_id: str
    service: str
    urgency: str
    referred_on: date
    respond_by: date
    days_overdue: int
    escalated: bool


class ReferralSummary(View):
    """``GET /v1/referrals/summary``: referrals made in ``[since, until]`` by status, how fast
    clinics answered and finished, and every referral overdue today (whenever it was made)."""

    since: date
    until: date
    today: date
    made: int
    by_status: dict[ReferralState, int]
    answered: int = Field(description="referrals made in the range that a clinic accepted or declined")
    answered_in_time: int = Field(description="of those, answered on or before respond_by")
    median_days_to_accept: float | None = Field(description="referred_on → accepted_on")
    median_days_to_close: float | None = Field(
        description="referred_on → closed_on, referrals a clinic saw to the end (completed or dropped out)"
    )
    overdue: list[OverdueReferral]


class QolDomain(StrEnum):
    """The four WHOQOL-BREF domains (0 to 100 each)."""

    PHYSICAL = "physical"
    PSYCHOLOGICAL = "psychological"
    SOCIAL = "social"
    ENVIRONMENT = "environment"


class QolDomainChange(View):
    """One WHOQOL domain over the clients in the summary."""

    domain: QolDomain
    baseline_mean: float
    exit_mean: float
    mean_change: float
    improved: int = Field(description="clients whose exit score in this domain beat their baseline")


class QolSummary(View):
    """``GET /v1/qol/summary``: QoL change of the clients whose exit assessment fell in
    ``[since, until]`` (``improved``: exit mean of the four domains above the baseline mean, as
    the indicator ``qol_improved`` counts)."""

    since: date
    until: date
    clients: int
    improved: int
    domains: list[QolDomainChange]
