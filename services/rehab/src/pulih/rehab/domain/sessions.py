"""When a programme session may be recorded, and which stage it counts for.

A session is recorded in an enrolment that is running (not discharged, not paused while the
client is at a clinic), on a day from the enrolment on, and its kind must be one the stage in
force that day asks for (``[rehab] stages.kinds`` of the programme file). An attended session
that arrives late and disproves a dropout reopens the enrolment first
(:func:`~pulih.rehab.domain.timeline.reverse_dropout`).
"""

from __future__ import annotations

from datetime import date

from pulih.contracts.codes import Phase, SessionKind
from pulih.kit.dates import not_before
from pulih.kit.errors import Invalid
from pulih.rehab.domain.programme import Programme
from pulih.rehab.domain.timeline import (
    PhasePeriod,
    Status,
    Timeline,
    TimelineError,
    disproves_dropout,
    phase_on,
)


def check_session_day(timeline: Timeline, enrolled_on: date, held_on: date, attended: bool) -> None:
    """Refuse a session dated before the enrolment (422), or in an enrolment that is over or
    paused (409), unless it is the late sighting that disproves the client's dropout."""
    not_before(held_on, enrolled_on, "held_on", "enrolment")
    if timeline.status is Status.DISCHARGED and not disproves_dropout(timeline, held_on, attended):
        raise TimelineError(
            "enrolment_discharged",
            f"the client was discharged on {timeline.discharged_on} ({timeline.discharge_reason})",
        )
    if timeline.status is Status.PAUSED:
        raise TimelineError(
            "enrolment_paused", "the client is with a clinic; sessions resume when they return"
        )


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
