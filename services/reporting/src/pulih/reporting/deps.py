"""Reporting's own dependencies, built once at start: the unit-phase criteria and the suppression
threshold, both from the programme file (``[reporting.phases]``, ``[reporting] suppressed_below``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends

from pulih.kit.deps import RuntimeDep
from pulih.kit.programme import load_programme
from pulih.kit.settings import Settings

DEFAULT_SUPPRESSED_BELOW = 5
"""DOMAIN.md: counts 1 to 4 never leave a regency."""

DEFAULT_PHASE_CRITERIA: Mapping[str, Mapping[str, float]] = {
    "rintisan": {"active_agents": 1},
    "tumbuh": {"active_agents": 3, "outreach_months": 3, "clients_screened": 1},
    "berkembang": {"clients_enrolled": 5, "session_months": 3, "referrals_closed": 1},
    "tangguh": {
        "clients_enrolled": 10,
        "programmes_completed": 3,
        "completion_rate_percent": 50,
        "referrals_answered_in_time_percent": 80,
    },
    "prima": {
        "clients_enrolled": 20,
        "programmes_completed": 10,
        "months_active": 12,
        "qol_improved_percent": 60,
    },
}
"""DOMAIN.md's table of unit-phase criteria, for a programme file that says nothing."""


def _default_criteria() -> dict[str, Any]:
    return {phase: dict(criteria) for phase, criteria in DEFAULT_PHASE_CRITERIA.items()}


@dataclass
class JobPacing:
    """When the live consumer or the ``recount-deferred`` job last recounted the indicators, and
    when that job last assessed the unit phases (``time.monotonic``; None: not yet since the
    start), so that together they do so at most every so often."""

    recounted: float = 0.0
    assessed: float | None = None
    catching_up: bool = False
    """Whether the consumer's last batch was full (more waiting): the job leaves the recount to
    the end of the catch-up (or to the aggregates job) rather than recount a backlog's years
    every few seconds."""


@dataclass(frozen=True)
class ReportingDeps:
    """The unit-phase criteria and the suppression threshold of this regency's programme."""

    phase_criteria: dict[str, Any] = field(default_factory=_default_criteria)
    """Phase → {measure: threshold}: ``[reporting.phases]``, each phase given replacing that
    phase's defaults (``pulih.reporting.domain.phases`` checks the names)."""
    suppressed_below: int = DEFAULT_SUPPRESSED_BELOW
    """Counts from 1 to ``suppressed_below - 1`` are null in published aggregates."""
    pacing: JobPacing = field(default_factory=JobPacing, compare=False, repr=False)
    """The ``recount-deferred`` job's own clock (per running service)."""

    @classmethod
    def from_programme(cls, programme: Mapping[str, Any], *, source: str = "programme") -> ReportingDeps:
        """The dependencies a programme file describes; ValueError names what is malformed."""
        section = programme.get("reporting", {})
        if not isinstance(section, Mapping):
            raise ValueError(f"{source}: [reporting] must be a table")
        suppressed_below = section.get("suppressed_below", DEFAULT_SUPPRESSED_BELOW)
        if (
            isinstance(suppressed_below, bool)
            or not isinstance(suppressed_below, int)
            or suppressed_below < 1
        ):
            raise ValueError(f"{source}: [reporting] suppressed_below must be a whole number ≥ 1")
        phases = section.get("phases", {})
        if not isinstance(phases, Mapping):
            raise ValueError(f"{source}: [reporting.phases] must be a table of phases")
        criteria = _default_criteria()
        for phase, table in phases.items():
            if not isinstance(table, Mapping):
                raise ValueError(f"{source}: [reporting.phases.{phase}] must be a table of criteria")
            criteria[phase] = dict(table)
        return cls(phase_criteria=criteria, suppressed_below=suppressed_below)

    @classmethod
    def build(cls, settings: Settings) -> ReportingDeps:
        """From the programme file (``PULIH_PROGRAMME_FILE``, or the default programme)."""
        programme = load_programme(settings.programme_file)
        return cls.from_programme(programme, source=str(settings.programme_file or programme["programme"]))

    async def aclose(self) -> None:
        """Nothing to release."""


async def _deps(runtime: RuntimeDep) -> ReportingDeps:
    return runtime.deps_as(ReportingDeps)


Deps = Annotated[ReportingDeps, Depends(_deps)]
"""Reporting's dependencies, for a route."""
