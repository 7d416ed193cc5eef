"""Clinics' answers, over HTTP and as the clinic-answers consumer applies them from NATS, against
a real store (SQLite and PostgreSQL): every test checks the answer, the stored referral and what
reached the outbox, with its correlation and causation."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from referral_factories import CLINIC, OTHER_CLINIC, Referrals
from sqlalchemy import select

from pulih.contracts import new_event
from pulih.contracts.codes import DeclineReason
from pulih.contracts.events.clinic import ClientAttended, ReferralAccepted, ReferralDeclined
from pulih.kit import inbox
from pulih.kit.auth import Role
from pulih.kit.consumers import NotReadyYet
from pulih.kit.errors import PulihError
from pulih.kit.testing import REGENCY, apply_events, auth
from pulih.referral.consumers import FROM_CLINICS, clinic_answers_consumer


async def test_a_clinic_answers_over_http_through_to_completion_with_back_referral(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    referral_id = await referrals.referral(await referrals.client())
    steps = [
        {"answer": "accepted", "on": "2026-03-02", "appointment_on": "2026-03-05"},
        {"answer": "attended", "on": "2026-03-05"},
        {"answer": "completed", "on": "2026-04-30", "outcome": "completed", "back_referral": True},
    ]
    for step in steps:
        r = await referrals.answer(referral_id, **step)
        assert r.status_code == 200, r.text
    referral = await referrals.get(referral_id)
    assert referral["status"] == "completed" and referral["outcome"] == "completed"
    assert referral["back_referral"] is True and referral["closed_on"] == "2026-04-30"
    assert referral["appointment_on"] == "2026-03-05" and referral["attended_on"] == "2026-03-05"
    outbox = await referrals.outbox()
    assert [(s.split(".")[2:], type(e).__name__) for s, e in outbox[1:]] == [
        (["clinic", CLINIC, "referral_accepted"], "ReferralAccepted"),
        (["clinic", CLINIC, "client_attended"], "ClientAttended"),
        (["clinic", CLINIC, "treatment_completed"], "TreatmentCompleted"),
        (["referral", "referral_closed", CLINIC], "ReferralClosed"),
    ]
    closed = outbox[-1][1]
    assert closed.outcome == "completed" and closed.back_referral is True
    # the answers come back over NATS to referral's own clinic consumer: already applied
    async with referrals.runtime.database.sessions() as s:
        from pulih.kit.outbox import outbox_table

        ids = (
            await s.scalars(select(outbox_table.c.event_id).where(outbox_table.c.subject.like("%.clinic.%")))
        ).all()
        for event_id in ids:
            assert await inbox.already_applied(s, clinic_answers_consumer(referrals.runtime), event_id)


async def test_illegal_answers_over_http_change_nothing(referrals: Referrals) -> None:
    await referrals.add_clinic()
    await referrals.add_clinic(OTHER_CLINIC)
    referral_id = await referrals.referral(await referrals.client())
    before = await referrals.get(referral_id)

    early = await referrals.answer(
        referral_id, answer="completed", on="2026-03-02", outcome="completed", back_referral=True
    )
    assert early.status_code == 409 and early.json()["code"] == "illegal_transition"
    other = await referrals.answer(referral_id, clinic_id=OTHER_CLINIC, answer="accepted", on="2026-03-02")
    assert other.status_code == 403 and other.json()["code"] == "other_clinic"
    unknown = await referrals.answer(str(uuid.uuid4()), answer="accepted", on="2026-03-02")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_referral"
    before_referral = await referrals.answer(referral_id, answer="accepted", on="2026-02-28")
    assert before_referral.status_code == 422 and before_referral.json()["code"] == "answer_before_referral"
    by_agent = await referrals.http.post(
        f"/v1/referrals/{referral_id}/answers",
        headers=auth(Role.FACILITATOR),
        json={"answer": "accepted", "on": "2026-03-02"},
    )
    assert by_agent.status_code == 403 and by_agent.json()["code"] == "forbidden_role"

    assert await referrals.get(referral_id) == before
    assert await referrals.outbox_names() == ["ReferredToClinic"]

    assert (await referrals.answer(referral_id, answer="accepted", on="2026-03-02")).status_code == 200
    twice = await referrals.answer(referral_id, answer="accepted", on="2026-03-03")
    assert twice.status_code == 409 and twice.json()["code"] == "illegal_transition"
    assert await referrals.outbox_names() == ["ReferredToClinic", "ReferralAccepted"]


async def test_a_decline_escalates_closes_and_shows_in_the_facilitators_list(referrals: Referrals) -> None:
    await referrals.add_clinic()
    referral_id = await referrals.referral(await referrals.client())
    r = await referrals.answer(referral_id, answer="declined", on="2026-03-02", reason="no_capacity")
    assert r.status_code == 200, r.text
    assert await referrals.outbox_names() == [
        "ReferredToClinic",
        "ReferralDeclined",
        "ReferralEscalated",
        "ReferralClosed",
    ]
    _, escalated = (await referrals.outbox())[2]
    _, closed = (await referrals.outbox())[3]
    assert escalated.reason == "declined" and escalated.on == date(2026, 3, 2)
    assert closed.outcome == "declined" and closed.back_referral is False
    listed = await referrals.http.get("/v1/referrals?escalated=true", headers=referrals.facilitator)
    assert [(x["referral_id"], x["escalation_reason"]) for x in listed.json()] == [(referral_id, "declined")]
    late = await referrals.answer(referral_id, answer="accepted", on="2026-03-03")
    assert late.status_code == 409 and late.json()["code"] == "illegal_transition"
    assert len(await referrals.outbox()) == 4, "a refused answer publishes nothing"


async def answer_from_nats(referrals: Referrals, clinic_id: str, data: Any, correlationid: str) -> Any:
    """Apply a clinic's answer as the clinic-answers consumer does (one unit of work caused by
    it, the clinic read from the subject); returns the answer's envelope."""
    envelope = new_event(data, regency=REGENCY, correlationid=correlationid)
    await apply_events(referrals.runtime, FROM_CLINICS, envelope, clinic_id=clinic_id)
    return envelope


async def test_what_an_answer_from_nats_causes_carries_its_correlation_and_names_it_as_cause(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    referral_id = uuid.UUID(await referrals.referral(await referrals.client()))
    answer = await answer_from_nats(
        referrals,
        CLINIC,
        ReferralDeclined(referral_id=referral_id, on=date(2026, 3, 2), reason=DeclineReason.NO_CAPACITY),
        correlationid="clinic-chain-1",
    )
    _, escalated, closed = await referrals.outbox_envelopes()
    assert (type(escalated.data).__name__, type(closed.data).__name__) == (
        "ReferralEscalated",
        "ReferralClosed",
    )
    for event in (escalated, closed):
        assert (event.correlationid, event.causationid) == ("clinic-chain-1", str(answer.id))


async def test_answers_from_nats_refused_or_early_change_nothing(referrals: Referrals) -> None:
    await referrals.add_clinic()
    await referrals.add_clinic(OTHER_CLINIC)
    referral_id = uuid.UUID(await referrals.referral(await referrals.client()))
    before = await referrals.get(str(referral_id))
    day = date(2026, 3, 2)
    with pytest.raises(PulihError) as other:  # the kit dead-letters it with its code
        await answer_from_nats(
            referrals, OTHER_CLINIC, ReferralAccepted(referral_id=referral_id, accepted_on=day), "c"
        )
    assert other.value.code == "other_clinic"
    with pytest.raises(PulihError) as unknown:
        await answer_from_nats(
            referrals, CLINIC, ReferralAccepted(referral_id=uuid.uuid4(), accepted_on=day), "c"
        )
    assert unknown.value.code == "unknown_referral"
    with pytest.raises(NotReadyYet, match="referred cannot be attended"):  # retried: maybe only early
        await answer_from_nats(referrals, CLINIC, ClientAttended(referral_id=referral_id, on=day), "c")
    assert await referrals.get(str(referral_id)) == before
    assert await referrals.outbox_names() == ["ReferredToClinic"]
