"""Unit phases: how far an IBM unit has come, assessed each month (DOMAIN.md). Pure.

The phases, from newest to strongest: ``rintisan`` (pioneering: just set up), ``tumbuh``
(growing), ``berkembang`` (developing), ``tangguh`` (resilient), ``prima`` (excellent). Each phase
has criteria, all of which must hold; BNN's own are not public, so Pulih ships DOMAIN.md's table
as the default and a regency may change it in its programme file::

    [reporting.phases.tangguh]          # replaces tangguh's whole list; other phases keep theirs
    clients_enrolled = 10
    programmes_completed = 3
    completion_rate_percent = 50
    referrals_answered_in_time_percent = 80

Every criterion reads "the unit's measure is at least the threshold". The measures, as of the
last day of the assessed month (:class:`UnitMonth` says how each is counted):

- ``active_agents``: agents trained by then and not deactivated by then;
- ``outreach_months`` / ``session_months``: how many months in a row, ending with this one, had
  an outreach activity / a session ("in each of the last 3 months" is ``= 3``);
- ``clients_screened``, ``clients_enrolled``, ``programmes_completed``: distinct clients, ever;
- ``referrals_closed``: referrals closed, ever;
- ``completion_rate_percent``: completed ÷ (completed + dropped out, not reversed): the share of
  clients who finished among those whose programme ended by finishing or dropping out (moving,
  dying or being referred out is no failure of the unit); 0 when none has ended;
- ``referrals_answered_in_time_percent``: of the referrals whose ``respond_by`` has passed (not
  cancelled before it unanswered), the share a clinic answered (accepted or declined) by
  ``respond_by``; 100 when none was due yet: nothing was late;
- ``months_active``: calendar months since the unit was established, its first month counting 1;
- ``qol_improved_percent``: of the clients who completed the programme, the share whose exit
  WHOQOL-BREF mean beat their baseline mean; 0 when none completed.

**The decision** (:func:`assess`). A unit *earns* the highest phase whose criteria hold together
with the criteria of every phase below it (``rintisan`` at least: a unit that exists is in
the first phase even while it has no agent, and its record says which criteria failed). Then:

- *up*: at most one phase per assessment, so a unit that earns ``tangguh`` in its first months
  still climbs ``tumbuh``, ``berkembang``, ``tangguh`` over three assessments;
- *down*: when the criteria of its phase, or of one below, stop holding, the unit falls straight
  to the phase it earns (the highest phase whose criteria and all lower ones hold), however many
  phases below that is;
- the first assessment of a unit (no previous phase) puts it in ``rintisan``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pulih.contracts.codes import UnitPhase

PHASES: tuple[UnitPhase, ...] = tuple(UnitPhase)
"""The phases in order, from ``rintisan`` up to ``prima``."""


class Measure(StrEnum):
    """What a criterion measures (its key in the programme file)."""

    ACTIVE_AGENTS = "active_agents"
    OUTREACH_MONTHS = "outreach_months"
    CLIENTS_SCREENED = "clients_screened"
    CLIENTS_ENROLLED = "clients_enrolled"
    SESSION_MONTHS = "session_months"
    REFERRALS_CLOSED = "referrals_closed"
    PROGRAMMES_COMPLETED = "programmes_completed"
    COMPLETION_RATE_PERCENT = "completion_rate_percent"
    REFERRALS_ANSWERED_IN_TIME_PERCENT = "referrals_answered_in_time_percent"
    MONTHS_ACTIVE = "months_active"
    QOL_IMPROVED_PERCENT = "qol_improved_percent"


PERCENTAGES = frozenset(
    {
        Measure.COMPLETION_RATE_PERCENT,
        Measure.REFERRALS_ANSWERED_IN_TIME_PERCENT,
        Measure.QOL_IMPROVED_PERCENT,
    }
)

DEFAULT_THRESHOLDS: Mapping[UnitPhase, Mapping[Measure, float]] = {
    UnitPhase.RINTISAN: {Measure.ACTIVE_AGENTS: 1},
    UnitPhase.TUMBUH: {
        Measure.ACTIVE_AGENTS: 3,
        Measure.OUTREACH_MONTHS: 3,
        Measure.CLIENTS_SCREENED: 1,
    },
    UnitPhase.BERKEMBANG: {
        Measure.CLIENTS_ENROLLED: 5,
        Measure.SESSION_MONTHS: 3,
        Measure.REFERRALS_CLOSED: 1,
    },
    UnitPhase.TANGGUH: {
        Measure.CLIENTS_ENROLLED: 10,
        Measure.PROGRAMMES_COMPLETED: 3,
        Measure.COMPLETION_RATE_PERCENT: 50,
        Measure.REFERRALS_ANSWERED_IN_TIME_PERCENT: 80,
    },
    UnitPhase.PRIMA: {
        Measure.CLIENTS_ENROLLED: 20,
        Measure.PROGRAMMES_COMPLETED: 10,
        Measure.MONTHS_ACTIVE: 12,
        Measure.QOL_IMPROVED_PERCENT: 60,
    },
}
"""DOMAIN.md's table: the criteria when the programme file says nothing."""


def _share(part: int, whole: int, *, when_none: float) -> float:
    return when_none if whole == 0 else 100.0 * part / whole


@dataclass(frozen=True)
class UnitMonth:
    """What one unit has done, as of the last day of one month: the facts phases are judged on."""

    active_agents: int = 0
    outreach_months: int = 0
    """Months in a row, ending with this one, with at least one outreach activity."""
    clients_screened: int = 0
    clients_enrolled: int = 0
    session_months: int = 0
    """Months in a row, ending with this one, with at least one session held."""
    referrals_closed: int = 0
    programmes_completed: int = 0
    """Distinct clients discharged with reason ``completed``."""
    dropouts: int = 0
    """Discharges with reason ``dropped_out`` that were not reversed."""
    referrals_due: int = 0
    """Referrals whose ``respond_by`` has passed, less those cancelled before it unanswered."""
    referrals_answered_in_time: int = 0
    months_active: int = 0
    completers_qol_improved: int = 0
    """Clients among ``programmes_completed`` whose exit WHOQOL-BREF mean beat their baseline."""

    def measure(self, what: Measure) -> float:
        """The value a criterion on ``what`` compares with its threshold."""
        match what:
            case Measure.COMPLETION_RATE_PERCENT:
                ended = self.programmes_completed + self.dropouts
                return _share(self.programmes_completed, ended, when_none=0.0)
            case Measure.REFERRALS_ANSWERED_IN_TIME_PERCENT:
                return _share(self.referrals_answered_in_time, self.referrals_due, when_none=100.0)
            case Measure.QOL_IMPROVED_PERCENT:
                return _share(self.completers_qol_improved, self.programmes_completed, when_none=0.0)
            case _:
                return float(getattr(self, what.value))


@dataclass(frozen=True)
class PhaseCriteria:
    """Each phase's thresholds: a criterion holds when its measure is at least its threshold."""

    thresholds: Mapping[UnitPhase, Mapping[Measure, float]] = field(
        default_factory=lambda: DEFAULT_THRESHOLDS
    )

    @classmethod
    def from_programme(cls, programme: Mapping[str, Any]) -> PhaseCriteria:
        """Read ``[reporting.phases.<phase>]`` tables of the programme file: each one given
        replaces that phase's criteria, the others keep DOMAIN.md's (ValueError if malformed)."""
        reporting = programme.get("reporting", {})
        if not isinstance(reporting, Mapping):
            raise ValueError("[reporting] must be a table")
        return cls.from_tables(reporting.get("phases", {}))

    @classmethod
    def from_tables(cls, section: object) -> PhaseCriteria:
        """The criteria of ``section`` (phase → criterion → threshold, as in the programme file's
        ``[reporting.phases]``); a phase it leaves out keeps DOMAIN.md's (ValueError if malformed)."""
        if not isinstance(section, Mapping):
            raise ValueError("[reporting.phases] must be a table of phases")
        thresholds: dict[UnitPhase, Mapping[Measure, float]] = dict(DEFAULT_THRESHOLDS)
        for phase_name, table in section.items():
            try:
                phase = UnitPhase(phase_name)
            except ValueError:
                known = ", ".join(PHASES)
                raise ValueError(
                    f"[reporting.phases.{phase_name}]: no such phase (phases: {known})"
                ) from None
            if not isinstance(table, Mapping):
                raise ValueError(f"[reporting.phases.{phase}] must be a table of criteria")
            thresholds[phase] = {
                _measure(phase, key): _threshold(phase, key, value) for key, value in table.items()
            }
        return cls(thresholds)

    @property
    def longest_run(self) -> int:
        """The most months in a row any criterion asks for (``outreach_months``,
        ``session_months``): runs of months need not be counted further back than that."""
        runs = [
            minimum
            for table in self.thresholds.values()
            for what, minimum in table.items()
            if what in (Measure.OUTREACH_MONTHS, Measure.SESSION_MONTHS)
        ]
        return max(1, *(math.ceil(r) for r in runs))

    def held(self, facts: UnitMonth) -> dict[UnitPhase, dict[Measure, bool]]:
        """Which criterion of each phase holds for ``facts``."""
        return {
            phase: {what: facts.measure(what) >= minimum for what, minimum in self.thresholds[phase].items()}
            for phase in PHASES
        }

    def earned(self, facts: UnitMonth) -> UnitPhase:
        """The highest phase whose criteria hold together with those of every phase below it
        (``rintisan`` at least)."""
        held = self.held(facts)
        earned = PHASES[0]
        for phase in PHASES:
            if not all(held[phase].values()):
                break
            earned = phase
        return earned


def _measure(phase: UnitPhase, key: str) -> Measure:
    try:
        return Measure(key)
    except ValueError:
        known = ", ".join(Measure)
        raise ValueError(f"[reporting.phases.{phase}] {key}: no such criterion (criteria: {known})") from None


def _threshold(phase: UnitPhase, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"[reporting.phases.{phase}] {key} must be a number ≥ 0, not {value!r}")
    if Measure(key) in PERCENTAGES and value > 100:
        raise ValueError(f"[reporting.phases.{phase}] {key} is a percentage: at most 100, not {value}")
    return float(value)


@dataclass(frozen=True)
class Assessment:
    """A unit's phase after one month's assessment, the phase before it, and what held."""

    phase: UnitPhase
    previous: UnitPhase | None
    held: Mapping[UnitPhase, Mapping[Measure, bool]]

    def criteria_record(self) -> dict[str, dict[str, bool]]:
        """``held`` as plain JSON: phase → criterion → whether it held."""
        return {str(phase): {str(what): ok for what, ok in held.items()} for phase, held in self.held.items()}


def assess(facts: UnitMonth, previous: UnitPhase | None, criteria: PhaseCriteria) -> Assessment:
    """The unit's phase after this month: one phase up at most, down to the phase it earns when
    criteria stop holding, ``rintisan`` at its first assessment (see the module's docstring)."""
    held = criteria.held(facts)
    if previous is None:
        return Assessment(PHASES[0], None, held)
    earned = PHASES.index(criteria.earned(facts))
    return Assessment(PHASES[min(earned, PHASES.index(previous) + 1)], previous, held)
