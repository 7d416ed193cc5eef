"""Rehab's use cases: load, let the domain decide, store and emit, in one unit of work.

The same functions serve an HTTP command (given the command's transaction) and a consumed event
(given the consumer's unit of work), so every event a use case emits, the phase changes the
time rules cause on the way included, carries the request's or the consumed event's
correlation. Refusals are the domain's errors, passed on unchanged: the kit turns them into HTTP
answers for a route and dead-letters the event for a consumer.

- :mod:`.enrolments`: enrol, discharge, WHOQOL-BREF, and the scheduler's job;
- :mod:`.sessions`: sessions and follow-ups;
- :mod:`.referrals`: the pause while a client is at a clinic, and what its closing does.
"""

from pulih.rehab.handlers.enrolments import (
    advance_enrolments,
    assess_quality_of_life,
    discharge_client,
    enrol_client,
)
from pulih.rehab.handlers.referrals import enrol_in_aftercare, pause_for_referral, resume_after_referral
from pulih.rehab.handlers.sessions import record_follow_up, record_session

__all__ = [
    "advance_enrolments",
    "assess_quality_of_life",
    "discharge_client",
    "enrol_client",
    "enrol_in_aftercare",
    "pause_for_referral",
    "record_follow_up",
    "record_session",
    "resume_after_referral",
]
