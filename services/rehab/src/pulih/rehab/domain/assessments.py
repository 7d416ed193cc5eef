"""When a WHOQOL-BREF assessment may be taken in an enrolment.

The baseline is taken once (at intake), the exit one once and only in aftercare (bina lanjut),
follow-up ones any number of times after discharge; none dated before the enrolment began, an
exit one not before aftercare began, a follow-up one not before the discharge.
"""

from __future__ import annotations

from datetime import date

from pulih.contracts.codes import QolTimepoint
from pulih.kit.dates import not_before
from pulih.kit.errors import Conflict
from pulih.rehab.domain.programme import Programme
from pulih.rehab.domain.timeline import Status, Timeline


def check_assessment(
    programme: Programme,
    timeline: Timeline,
    *,
    enrolled_on: date,
    timepoint: QolTimepoint,
    assessed_on: date,
    already_taken: bool,
) -> None:
    """Refuse an assessment at the wrong time (409) or dated before what it follows (422).

    ``already_taken``: the enrolment has an assessment at ``timepoint`` already.
    """
    if timepoint is not QolTimepoint.FOLLOW_UP and already_taken:
        raise Conflict("assessment_exists", f"this enrolment already has a {timepoint} assessment")
    if timepoint is QolTimepoint.EXIT and timeline.phase is not programme.aftercare_phase:
        raise Conflict("exit_too_early", f"the exit assessment is taken in {programme.aftercare_phase}")
    if timepoint is QolTimepoint.FOLLOW_UP and timeline.status is not Status.DISCHARGED:
        raise Conflict("not_discharged", "follow-up assessments come after discharge")
    not_before(assessed_on, enrolled_on, "assessed_on", "enrolment")
    if timepoint is QolTimepoint.EXIT:
        not_before(assessed_on, timeline.stage_started_on, "assessed_on", "aftercare")
    if timepoint is QolTimepoint.FOLLOW_UP and timeline.discharged_on is not None:
        not_before(assessed_on, timeline.discharged_on, "assessed_on", "discharge")
