"""The stories a generated history is made of: a unit's life (agents, outreach, clients), and
each client's path through screening, the 16-week programme or a referral to a clinic.

Each event is added with its domain day and the events it builds on (its *parents*), so that
:mod:`reporting_histories` can put them in a causal stream order whatever their sync delays.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from pulih.contracts import Event
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.contracts.events.outreach import (
    AgentDeactivated,
    AgentRegistered,
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
    OutreachActivityRecorded,
    SubstanceResult,
    UnitEstablished,
)
from pulih.contracts.events.referral import (
    AnswerRejected,
    ReferralCancelled,
    ReferralClosed,
    ReferralEscalated,
    ReferredToClinic,
)
from pulih.contracts.events.rehab import (
    ClientDischarged,
    ClientEnrolled,
    DropoutReversed,
    FollowUpRecorded,
    PhaseCompleted,
    QualityOfLifeAssessed,
    SessionHeld,
)

VILLAGES = ("3301012001", "3301012002", "3301020003", "3301030004")
"""Four villages in three districts (330101, 330102, 330103)."""


@dataclass
class Story:
    """Events in the making: each with its domain day and the events it builds on."""

    rng: random.Random
    today: date
    late_share: float
    refused_share: float = 0.0
    """How often a clinic sends an answer the referral service refuses (``AnswerRejected``)."""
    items: list[tuple[Event, date, list[int], int]] = field(default_factory=list)
    """(data, domain day, parents, extra delay in days)."""
    refusals: dict[int, int] = field(default_factory=dict)
    """Each ``AnswerRejected`` item, and the answer item it refuses."""
    republishable: set[int] = field(default_factory=set)
    """Refused answers the clinic may publish again, the same event, and have applied then (the
    referral's only answer of its kind, refused as early or as another clinic's)."""

    def add(self, data: Event, day: date, *parents: int, delay: int = 0) -> int:
        if self.rng.random() < self.late_share:
            delay += self.rng.randint(1, 20)  # synced days later
        self.items.append((data, day, list(parents), delay))
        return len(self.items) - 1


def new_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _score(rng: random.Random) -> float:
    return rng.randrange(0, 401) / 4  # quarter points: sums are exact in floating point


def _client(story: Story, unit: uuid.UUID, agent: uuid.UUID, unit_event: int, day: date) -> None:
    """One client's path: registration, screenings, then advice, the programme or a referral."""
    rng, today = story.rng, story.today
    client = new_id(rng)
    registered = story.add(
        ClientRegistered(
            client_id=client,
            unit_id=unit,
            registered_on=day,
            sex=rng.choice(["m", "f"]),
            age_band=rng.choice(["under_15", "15_24", "25_34", "35_44", "45_plus"]),
            came_through=rng.choice(["outreach", "self", "family", "community"]),
        ),
        day,
        unit_event,
    )
    story.add(
        ConsentRecorded(
            consent_id=new_id(rng), client_id=client, scopes=["programme", "referral"], given_on=day
        ),
        day,
        registered,
    )
    screened_on, risk, screening = day, "low", registered
    for _ in range(rng.choice([1, 1, 1, 2])):  # a second screening, sometimes on the same day
        screened_on = min(today, screened_on + timedelta(days=rng.choice([0, 0, 3, 20, 40])))
        risk = rng.choice(["low", "moderate", "moderate", "high"])
        screening = story.add(
            ClientScreened(
                screening_id=new_id(rng),
                client_id=client,
                unit_id=unit,
                agent_id=agent,
                screened_on=screened_on,
                instrument="assist_v3",
                substances=[
                    SubstanceResult(
                        substance="cannabis", score={"low": 2, "moderate": 10, "high": 30}[risk], risk=risk
                    )
                ],
                injected_last_3_months=False,
                overall_risk=risk,
                recommendation={"low": "advice", "moderate": "ibm_programme", "high": "referral"}[risk],
            ),
            screened_on,
            screening,
        )
    if risk == "high" or rng.random() < 0.1:
        _referral(story, client, unit, screening, screened_on)
    elif rng.random() < 0.8:
        _programme(story, client, unit, agent, screening, screened_on)


def _programme(
    story: Story, client: uuid.UUID, unit: uuid.UUID, agent: uuid.UUID, after: int, day: date
) -> None:
    rng, today = story.rng, story.today
    enrolled_on = day + timedelta(days=rng.randint(0, 10))
    if enrolled_on > today:
        return
    enrolment = new_id(rng)
    enrolled = story.add(
        ClientEnrolled(
            enrollment_id=enrolment,
            client_id=client,
            unit_id=unit,
            agent_id=agent,
            enrolled_on=enrolled_on,
            programme="ibm-16w-2021",
            planned_end_on=enrolled_on + timedelta(weeks=16),
        ),
        enrolled_on,
        after,
    )

    def qol(timepoint: str, on: date, parent: int) -> None:
        dated = rng.random() < 0.7  # older events (contract v1.0) do not say the day
        data = QualityOfLifeAssessed(
            assessment_id=new_id(rng),
            enrollment_id=enrolment,
            client_id=client,
            timepoint=timepoint,
            physical=_score(rng),
            psychological=_score(rng),
            social=_score(rng),
            environment=_score(rng),
            assessed_on=on if dated else None,
        )
        story.add(data, on, parent)

    if rng.random() < 0.9:
        qol("baseline", enrolled_on, enrolled)
    fate = rng.choice(["completed", "completed", "dropped_out", "dropped_out", "moved", "stays"])
    weeks = 16 if fate in ("completed", "stays") else rng.randint(2, 10)
    last, held_on = enrolled, enrolled_on
    for week in range(1, weeks + 1):
        held_on = enrolled_on + timedelta(weeks=week, days=rng.randint(-2, 2))
        if held_on > today:
            return
        last = story.add(
            SessionHeld(
                session_id=new_id(rng),
                enrollment_id=enrolment,
                client_id=client,
                unit_id=unit,
                agent_id=agent,
                held_on=held_on,
                kind=rng.choice(["edukasi", "konseling", "kelompok"]),
                attended=rng.random() < 0.8,
                minutes=rng.choice([30, 45, 60]),
            ),
            held_on,
            last,
        )
        if week in (2, 12):
            phase, following = (
                ("penerimaan_awal", "intervensi") if week == 2 else ("intervensi", "bina_lanjut")
            )
            story.add(
                PhaseCompleted(
                    enrollment_id=enrolment,
                    client_id=client,
                    phase=phase,
                    completed_on=held_on,
                    next_phase=following,
                ),
                held_on,
                last,
            )
    end = held_on + timedelta(days=rng.randint(1, 21 if fate == "dropped_out" else 3))
    if fate == "stays" or end > today:
        return
    if fate == "completed":
        qol("exit", end, last)
    reason = "completed" if fate == "completed" else fate
    discharged = story.add(
        ClientDischarged(enrollment_id=enrolment, client_id=client, on=end, reason=reason), end, last
    )
    if fate == "dropped_out" and rng.random() < 0.35 and end - held_on > timedelta(days=2):
        # A session held before the dropout syncs after it: the dropout is reversed, the client
        # goes on and later finishes (or drops out again on another day).
        dropped_on, late_on = end, held_on + timedelta(days=1)
        late = story.add(
            SessionHeld(
                session_id=new_id(rng),
                enrollment_id=enrolment,
                client_id=client,
                unit_id=unit,
                agent_id=agent,
                held_on=late_on,
                kind="konseling",
                attended=True,
                minutes=45,
            ),
            late_on,
            discharged,
            delay=(end - late_on).days + rng.randint(0, 5),
        )
        reversed_ = story.add(
            DropoutReversed(enrollment_id=enrolment, client_id=client, dropped_out_on=dropped_on, on=late_on),
            late_on,
            late,
            discharged,
        )
        again = dropped_on + timedelta(days=rng.randint(1, 40))
        if again <= today:
            again_reason = rng.choice(["completed", "dropped_out"])
            if again_reason == "completed":
                qol("exit", again, reversed_)
            discharged = story.add(
                ClientDischarged(enrollment_id=enrolment, client_id=client, on=again, reason=again_reason),
                again,
                reversed_,
            )
            end = again
    follow_on = end + timedelta(days=rng.choice([60, 90]))
    if follow_on <= today and rng.random() < 0.7:
        status = rng.choice(["abstinent", "reduced_use", "relapsed", "unreachable"])
        story.add(
            FollowUpRecorded(follow_up_id=new_id(rng), client_id=client, on=follow_on, status=status),
            follow_on,
            discharged,
        )


def _refused(
    story: Story,
    answer: ReferralAccepted | ReferralDeclined,
    clinic: str,
    day: date,
    parent: int,
    error: str,
) -> int:
    """``clinic``'s ``answer`` on ``day`` and the referral service's refusal of it, told to that
    clinic (the refusal is its child: the stream always has the answer first). Returns the
    answer's item. The refusal names the answer by its envelope's id, which only
    :mod:`reporting_histories` gives: until then ``answer_id`` is nil (see ``refusals``)."""
    sent = story.add(answer, day, parent)
    refusal = story.add(
        AnswerRejected(
            referral_id=answer.referral_id,
            clinic_id=clinic,
            answer_id=uuid.UUID(int=0),
            answer_type=f"pulih.clinic.{type(answer).__name__}.v1",
            error=error,
            reason="refused",
        ),
        day,
        sent,
    )
    story.refusals[refusal] = sent
    return sent


def _referral(story: Story, client: uuid.UUID, unit: uuid.UUID, after: int, day: date) -> None:
    rng, today = story.rng, story.today
    referral, clinic = new_id(rng), rng.choice(["klinik-a", "rsud-b"])
    urgency = rng.choice(["routine", "urgent"])
    respond_by = day + timedelta(days=3 if urgency == "routine" else 1)
    made = story.add(
        ReferredToClinic(
            referral_id=referral,
            client_id=client,
            unit_id=unit,
            clinic_id=clinic,
            service="rawat_jalan",
            reason="high_risk",
            urgency=urgency,
            referred_on=day,
            respond_by=respond_by,
            consent_id=new_id(rng),
        ),
        day,
        after,
    )
    fate = rng.choice(["accepted", "accepted", "declined", "unanswered", "cancelled"])
    answer_on = day + timedelta(days=rng.randint(0, 6))
    refused = rng.random() < story.refused_share and answer_on <= today
    if refused and (fate == "unanswered" or answer_on > today):
        # An acceptance the referral service refused (early, or from another clinic): the
        # referral stays unanswered unless the clinic publishes it again and it is applied.
        error = rng.choice(["not_ready", "other_clinic"])
        answering = clinic if error == "not_ready" else {"klinik-a": "rsud-b", "rsud-b": "klinik-a"}[clinic]
        accepted_early = ReferralAccepted(referral_id=referral, accepted_on=answer_on)
        sent = _refused(story, accepted_early, answering, answer_on, made, error)
        if error == "not_ready":  # another clinic's answer is refused however often it comes
            story.republishable.add(sent)
    if fate == "unanswered" or answer_on > today:
        escalate_on = respond_by + timedelta(days=1)
        if escalate_on <= today:
            story.add(
                ReferralEscalated(
                    referral_id=referral, clinic_id=clinic, on=escalate_on, reason="no_response"
                ),
                escalate_on,
                made,
            )
        return
    if fate == "cancelled":
        cancelled = story.add(
            ReferralCancelled(referral_id=referral, clinic_id=clinic, on=answer_on, reason="client_request"),
            answer_on,
            made,
        )
        story.add(
            ReferralClosed(
                referral_id=referral, clinic_id=clinic, on=answer_on, outcome="cancelled", back_referral=False
            ),
            answer_on,
            cancelled,
        )
        return
    if fate == "declined":
        declined = story.add(
            ReferralDeclined(referral_id=referral, on=answer_on, reason="no_capacity"), answer_on, made
        )
        if refused:  # the clinic then accepts the referral it declined: an illegal step
            later = min(today, answer_on + timedelta(days=rng.randint(0, 5)))
            accepted_late = ReferralAccepted(referral_id=referral, accepted_on=later)
            _refused(story, accepted_late, clinic, later, declined, "illegal_transition")
        story.add(
            ReferralEscalated(referral_id=referral, clinic_id=clinic, on=answer_on, reason="declined"),
            answer_on,
            declined,
        )
        story.add(
            ReferralClosed(
                referral_id=referral, clinic_id=clinic, on=answer_on, outcome="declined", back_referral=False
            ),
            answer_on,
            declined,
        )
        return
    accepted = story.add(ReferralAccepted(referral_id=referral, accepted_on=answer_on), answer_on, made)
    if refused:  # accepted again on another day, or declined after all: illegal steps
        later = min(today, answer_on + timedelta(days=rng.randint(0, 30)))
        again: ReferralAccepted | ReferralDeclined = rng.choice(
            [
                ReferralAccepted(referral_id=referral, accepted_on=later),
                ReferralDeclined(referral_id=referral, on=later, reason="not_indicated"),
            ]
        )
        _refused(story, again, clinic, later, accepted, "illegal_transition")
    attended_on = answer_on + timedelta(days=rng.randint(0, 7))
    if attended_on > today:
        return
    attended = story.add(ClientAttended(referral_id=referral, on=attended_on), attended_on, accepted)
    done_on = attended_on + timedelta(days=rng.randint(7, 40))
    if done_on > today:
        return
    outcome, back = rng.choice(["completed", "dropped_out"]), rng.random() < 0.5
    treated = story.add(
        TreatmentCompleted(referral_id=referral, on=done_on, outcome=outcome, back_referral=back),
        done_on,
        attended,
    )
    story.add(
        ReferralClosed(
            referral_id=referral, clinic_id=clinic, on=done_on, outcome=outcome, back_referral=back
        ),
        done_on,
        treated,
    )


def unit_story(story: Story, start: date) -> None:
    rng, today = story.rng, story.today
    unit = new_id(rng)
    established_on = min(today, start + timedelta(days=rng.randint(0, 20)))
    founded = story.add(
        UnitEstablished(
            unit_id=unit,
            name=f"Unit {unit.hex[:6]}",
            village_code=rng.choice(VILLAGES),
            established_on=established_on,
        ),
        established_on,
    )
    agents = []
    for _ in range(rng.randint(1, 4)):
        trained_on = min(today, established_on + timedelta(days=rng.randint(0, 15)))
        agent = new_id(rng)
        registered = story.add(
            AgentRegistered(agent_id=agent, unit_id=unit, trained_on=trained_on), trained_on, founded
        )
        agents.append(agent)
        gone_on = trained_on + timedelta(days=rng.randint(20, 200))
        if rng.random() < 0.2 and gone_on <= today:
            story.add(
                AgentDeactivated(agent_id=agent, unit_id=unit, on=gone_on, reason_code="moved"),
                gone_on,
                registered,
            )
    day = established_on
    while day <= today:
        if rng.random() < 0.5:
            story.add(
                OutreachActivityRecorded(
                    activity_id=new_id(rng),
                    unit_id=unit,
                    agent_id=rng.choice(agents),
                    kind=rng.choice(["sosialisasi", "pemetaan", "penjangkauan"]),
                    held_on=day,
                    people_reached=rng.randint(0, 40),
                ),
                day,
                founded,
            )
        if rng.random() < 0.45:
            _client(story, unit, rng.choice(agents), founded, day)
        day += timedelta(days=rng.randint(2, 9))
