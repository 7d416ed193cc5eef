"""Care in the simulated regency: the 16-week programme of a client, and referrals to clinics.

The programme (DOMAIN.md, ``ibm-16w-2021``): weeks count from the screening week, so enrolment
closes ``skrining`` and opens ``penerimaan_awal`` (week 2, baseline WHOQOL); ``intervensi`` is
weeks 3-12 with a session a week; ``bina_lanjut`` weeks 13-16 with a ``pemantauan`` session every
two weeks and the exit WHOQOL in week 16. No attended session for 3 weeks discharges the client
as ``dropped_out``; now and then a session attended before that day syncs late and reverses it.
Follow-ups come 3 and 6 months after a completion or a dropout.

A referral (high risk, injecting, or a client referred out during the programme) is mostly
answered by the clinic in time; some answers come after the escalation, some are declines
(and the unit tries another clinic), a few are cancelled. A completed treatment may send the
client back to the unit for aftercare (``bina_lanjut`` only).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from regency_world import DAY, PROGRAMME, WEEK, Planned, Story, Unit, World

from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.contracts.events.outreach import ConsentRecorded
from pulih.contracts.events.referral import (
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

CLINICS = {
    "klinik-pratama-bnnk": ("rawat_jalan", "medis"),
    "rsud-psikiatri": ("psikiatri", "rawat_inap"),
    "balai-rehabilitasi": ("rawat_inap", "sosial"),
}
DROPOUT_AFTER = timedelta(weeks=3)
_KINDS_BY_STAGE = (
    {"konseling": 50, "edukasi": 35, "keluarga": 15},
    {"edukasi": 30, "konseling": 30, "kelompok": 25, "keluarga": 10, "vokasional": 5},
    {"pemantauan": 70, "konseling": 20, "keluarga": 10},
)
_FOLLOW_UP = {"abstinent": 50, "reduced_use": 25, "relapsed": 15, "unreachable": 10}
_FOLLOW_UP_AFTER_DROPOUT = {"abstinent": 15, "reduced_use": 20, "relapsed": 25, "unreachable": 40}


def programme_story(
    world: World,
    unit: Unit,
    client_id: uuid.UUID,
    enrolled_on: date,
    referral_consent: uuid.UUID | None,
    *,
    aftercare: bool = False,
) -> Story:
    """One enrolment from ``enrolled_on`` to its discharge and follow-ups (``aftercare``: a
    client back from a clinic, who starts in ``bina_lanjut``)."""
    enrollment_id, agent_id = world.uuid(), world.rng.choice(unit.agents)
    first_week = 13 if aftercare else 2

    def week(k: int) -> date:
        return enrolled_on + WEEK * (k - first_week)

    planned_end = week(17) - DAY
    yield Planned(
        enrolled_on,
        ClientEnrolled(
            enrollment_id=enrollment_id,
            client_id=client_id,
            unit_id=unit.unit_id,
            agent_id=agent_id,
            enrolled_on=enrolled_on,
            programme=PROGRAMME,
            planned_end_on=planned_end,
        ),
    )
    baseline = world.rng.uniform(35, 65)
    if not aftercare:
        yield _phase(enrollment_id, client_id, "skrining", enrolled_on, "penerimaan_awal")
        yield Planned(enrolled_on, _qol(world, enrollment_id, client_id, "baseline", enrolled_on, baseline))

    # The agenda: (day, order, what, detail), walked in order with the dropout rule in between.
    attendance = world.rng.choices((0.95, 0.8, 0.5), (60, 30, 10))[0]
    agenda: list[tuple[date, int, str, object]] = []
    for k in range(first_week, 17):
        if k <= 12 or k % 2 == 1:
            kind = world.pick(_KINDS_BY_STAGE[0 if k == 2 else 1 if k <= 12 else 2])
            agenda.append((week(k) + world.days(0, 4), 1, "session", (world.chance(attendance), kind)))
    if not aftercare:
        agenda.append((week(3) - DAY, 2, "phase", ("penerimaan_awal", "intervensi")))
        agenda.append((week(13) - DAY, 2, "phase", ("intervensi", "bina_lanjut")))
    agenda.append((week(16) + world.days(0, 5), 3, "exit", None))
    agenda.append((planned_end, 4, "complete", None))
    if world.chance(0.06):
        leave = world.pick({"moved": 35, "died": 5, "referred_out": 60})
        agenda.append((enrolled_on + world.days(10, 100), 0, "leave", leave))
    agenda.sort(key=lambda item: (item[0], item[1]))

    last_seen, missed = enrolled_on, list[tuple[date, str]]()
    for on, _, what, detail in agenda:
        dropout_on = last_seen + DROPOUT_AFTER
        if dropout_on < on:
            yield Planned(dropout_on, _discharged(enrollment_id, client_id, dropout_on, "dropped_out"))
            late = [(day, kind) for day, kind in missed if day > last_seen]
            if not late or not world.chance(0.15):
                yield from _follow_ups(world, client_id, dropout_on, dropped_out=True)
                return
            # An attended session held before the dropout syncs late and disproves it.
            (held_on, kind), synced_on = late[-1], dropout_on + world.days(1, 5)
            yield Planned(
                synced_on, _session(world, enrollment_id, client_id, unit, agent_id, held_on, kind, True)
            )
            yield Planned(
                synced_on,
                DropoutReversed(
                    enrollment_id=enrollment_id, client_id=client_id, dropped_out_on=dropout_on, on=held_on
                ),
            )
            last_seen = max(held_on, synced_on - DROPOUT_AFTER + DAY)
        if what == "session":
            attended, kind = detail  # type: ignore[misc]
            # a session syncs late now and then, but never so late that a dropout fires first
            slack = (last_seen + DROPOUT_AFTER - on).days - 1
            late_sync = attended and slack > 0 and world.chance(0.05)
            publish_on = on + world.days(1, min(slack, 6)) if late_sync else on
            yield Planned(
                publish_on, _session(world, enrollment_id, client_id, unit, agent_id, on, kind, attended)
            )
            if attended:
                last_seen = on
            else:
                missed.append((on, kind))
        elif what == "phase":
            done, following = detail  # type: ignore[misc]
            yield _phase(enrollment_id, client_id, done, on, following)
        elif what == "exit":
            exit_mean = baseline + world.rng.gauss(8, 10)
            yield Planned(on, _qol(world, enrollment_id, client_id, "exit", on, exit_mean))
        elif what == "complete":
            yield _phase(enrollment_id, client_id, "bina_lanjut", on, None)
            yield Planned(on, _discharged(enrollment_id, client_id, on, "completed"))
            yield from _follow_ups(world, client_id, on, dropped_out=False)
            return
        else:
            yield Planned(on, _discharged(enrollment_id, client_id, on, str(detail)))
            if detail == "referred_out":
                reason = world.pick({"no_progress": 50, "medical": 25, "psychiatric": 25})
                yield from referral_story(world, unit, client_id, referral_consent, on, reason, depth=1)
            return


def referral_story(
    world: World,
    unit: Unit,
    client_id: uuid.UUID,
    consent_id: uuid.UUID | None,
    referred_on: date,
    reason: str,
    *,
    depth: int = 0,
) -> Story:
    """A referral and the clinic's answers, up to the client's return for aftercare."""
    if consent_id is None:
        consent_id = world.uuid()
        yield Planned(
            referred_on,
            ConsentRecorded(
                consent_id=consent_id, client_id=client_id, scopes=["referral"], given_on=referred_on
            ),
        )
    referral_id = world.uuid()
    clinic_id = world.rng.choice(tuple(CLINICS))
    urgent = reason == "injecting" or world.chance(0.2)
    respond_by = referred_on + (DAY if urgent else 3 * DAY)
    yield Planned(
        referred_on,
        ReferredToClinic(
            referral_id=referral_id,
            client_id=client_id,
            unit_id=unit.unit_id,
            clinic_id=clinic_id,
            service=world.rng.choice(CLINICS[clinic_id]),
            reason=reason,
            urgency="urgent" if urgent else "routine",
            referred_on=referred_on,
            respond_by=respond_by,
            consent_id=consent_id,
        ),
    )
    fate = world.rng.random()
    if fate < 0.04:
        on = referred_on + world.days(0, 2)
        yield Planned(
            on,
            ReferralCancelled(referral_id=referral_id, clinic_id=clinic_id, on=on, reason="client_request"),
        )
        yield _closed(referral_id, clinic_id, on, "cancelled", False)
        return
    if fate < 0.18:  # no answer in time: the escalation job raises it, the answer comes later
        escalated_on = respond_by + DAY
        yield Planned(
            escalated_on,
            ReferralEscalated(
                referral_id=referral_id, clinic_id=clinic_id, on=escalated_on, reason="no_response"
            ),
        )
        answered_on = escalated_on + world.days(0, 5)
    else:
        answered_on = referred_on + world.days(0, (respond_by - referred_on).days)
    if fate > 0.9:
        decline = world.pick({"no_capacity": 50, "not_indicated": 30, "out_of_area": 20})
        yield Planned(
            answered_on, ReferralDeclined(referral_id=referral_id, on=answered_on, reason=decline), clinic_id
        )
        yield Planned(
            answered_on,
            ReferralEscalated(
                referral_id=referral_id, clinic_id=clinic_id, on=answered_on, reason="declined"
            ),
        )
        yield _closed(referral_id, clinic_id, answered_on, "declined", False)
        if depth < 2 and world.chance(0.6):
            again_on = answered_on + world.days(1, 7)
            yield from referral_story(world, unit, client_id, consent_id, again_on, reason, depth=depth + 1)
        return
    appointment_on = answered_on + world.days(1, 10)
    yield Planned(
        answered_on,
        ReferralAccepted(referral_id=referral_id, accepted_on=answered_on, appointment_on=appointment_on),
        clinic_id,
    )
    if not world.chance(0.85):
        on = appointment_on + world.days(7, 21)
        yield Planned(
            on,
            TreatmentCompleted(referral_id=referral_id, on=on, outcome="dropped_out", back_referral=False),
            clinic_id,
        )
        yield _closed(referral_id, clinic_id, on, "dropped_out", False)
        return
    yield Planned(appointment_on, ClientAttended(referral_id=referral_id, on=appointment_on), clinic_id)
    on = appointment_on + world.days(14, 60)
    completed = world.chance(0.75)
    back = completed and world.chance(0.6)
    outcome = "completed" if completed else "dropped_out"
    yield Planned(
        on, TreatmentCompleted(referral_id=referral_id, on=on, outcome=outcome, back_referral=back), clinic_id
    )
    yield _closed(referral_id, clinic_id, on, outcome, back)
    if back:
        yield from programme_story(world, unit, client_id, on + world.days(1, 7), consent_id, aftercare=True)


def _closed(referral_id: uuid.UUID, clinic_id: str, on: date, outcome: str, back: bool) -> Planned:
    return Planned(
        on,
        ReferralClosed(
            referral_id=referral_id, clinic_id=clinic_id, on=on, outcome=outcome, back_referral=back
        ),
    )


def _phase(
    enrollment_id: uuid.UUID, client_id: uuid.UUID, phase: str, on: date, following: str | None
) -> Planned:
    return Planned(
        on,
        PhaseCompleted(
            enrollment_id=enrollment_id,
            client_id=client_id,
            phase=phase,
            completed_on=on,
            next_phase=following,
        ),
    )


def _discharged(enrollment_id: uuid.UUID, client_id: uuid.UUID, on: date, reason: str) -> ClientDischarged:
    return ClientDischarged(enrollment_id=enrollment_id, client_id=client_id, on=on, reason=reason)


def _session(
    world: World,
    enrollment_id: uuid.UUID,
    client_id: uuid.UUID,
    unit: Unit,
    agent_id: uuid.UUID,
    held_on: date,
    kind: str,
    attended: bool,
) -> SessionHeld:
    return SessionHeld(
        session_id=world.uuid(),
        enrollment_id=enrollment_id,
        client_id=client_id,
        unit_id=unit.unit_id,
        agent_id=agent_id,
        held_on=held_on,
        kind=kind,
        attended=attended,
        minutes=world.rng.randint(30, 120) if attended else 0,
    )


def _qol(
    world: World, enrollment_id: uuid.UUID, client_id: uuid.UUID, timepoint: str, on: date, mean: float
) -> QualityOfLifeAssessed:
    def score() -> float:
        return round(min(100.0, max(0.0, world.rng.gauss(mean, 10))), 2)

    return QualityOfLifeAssessed(
        assessment_id=world.uuid(),
        enrollment_id=enrollment_id,
        client_id=client_id,
        timepoint=timepoint,
        physical=score(),
        psychological=score(),
        social=score(),
        environment=score(),
        assessed_on=on,
    )


def _follow_ups(world: World, client_id: uuid.UUID, discharged_on: date, *, dropped_out: bool) -> Story:
    statuses = _FOLLOW_UP_AFTER_DROPOUT if dropped_out else _FOLLOW_UP
    for days in (91, 182):
        on = discharged_on + timedelta(days=days) + world.days(0, 10)
        yield Planned(
            on,
            FollowUpRecorded(
                follow_up_id=world.uuid(), client_id=client_id, on=on, status=world.pick(statuses)
            ),
        )
