"""When a programme session may be recorded, and which stage it counts for.

A session is recorded in an enrolment that is running (not discharged, not paused while the
client is at a clinic), on a day from the enrolment on, and its kind must be one the stage in
force that day asks for (``[rehab] stages.kinds`` of the programme file).
"""

from __future__ import annotations

from datetime import date

from pulih.contracts.codes import Phase, SessionKind
from pulih.kit.errors import Invalid
from pulih.rehab.domain.programme import Programme
from pulih.rehab.domain.timeline import PhasePeriod, Status, Timeline, TimelineError, phase_on


def check_session_day(timeline: Timeline, enrolled_on: date, held_on: date) -> None:
    """Refuse a session in an enrolment that is over or paused (409), or before it began (422)."""
    if timeline.status is Status.DISCHARGED:
        raise TimelineError(
            "enrolment_discharged",
            f"the client was discharged on {timeline.discharged_on} ({timeline.discharge_reason})",
        )
    if timeline.status is Status.PAUSED:
        raise TimelineError(
            "enrolment_paused", "the client is with a clinic; sessions resume when they return"
        )
    if held_on < enrolled_on:
        raise Invalid("date_before_enrolment", "held_on is before the enrolment", "held_on")


def stage_of_session(
    programme: Programme, periods: list[PhasePeriod], held_on: date, kind: SessionKind
) -> Phase:
    """The phase a session held on ``held_on`` counts for; 422 if the client was in none that
    day or the stage does not ask for this kind of session."""
    phase = phase_on(periods, held_on)
    if phase is None:
        raise Invalid("not_in_programme", f"the client was not in the programme on {held_on}", "held_on")
    stage = programme.stage(phase)
    if kind not in stage.kinds:
        allowed = ", ".join(sorted(stage.kinds)) or "none"
        raise Invalid(
            "kind_not_in_stage",
            f"a {kind} session is not part of {phase} (allowed: {allowed})",
            "kind",
        )
    return phase
