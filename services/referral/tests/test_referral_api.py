"""Referral's API against a real store (SQLite and PostgreSQL): every test checks the answer,
the stored referral and what reached the outbox."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

from referral_factories import CLINIC, OTHER_CLINIC, Referrals
from sqlalchemy import select

from pulih.contracts.events.outreach import ConsentRecorded, ConsentWithdrawn
from pulih.kit import inbox
from pulih.kit.auth import Role
from pulih.kit.testing import auth, eventually
from pulih.referral.consumers import clinic_answers_consumer
from pulih.referral.escalation import escalate_overdue


async def test_a_facilitator_adds_a_clinic_to_the_directory_and_everyone_can_list_it(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    again = await referrals.http.post(
        "/v1/clinics",
        headers=referrals.facilitator,
        json={
            "clinic_id": CLINIC,
            "name": "x",
            "kind": "balai",
            "services": ["medis"],
            "regencies": ["3301"],
        },
    )
    assert again.status_code == 409 and again.json()["code"] == "clinic_exists"
    listed = await referrals.http.get("/v1/clinics", headers=referrals.clinic())
    assert [(c["clinic_id"], c["services"]) for c in listed.json()] == [(CLINIC, ["medis", "rawat_jalan"])]


async def test_an_agent_cannot_add_clinics_and_a_bad_slug_or_kind_is_refused(referrals: Referrals) -> None:
    body = {
        "clinic_id": "k",
        "name": "K",
        "kind": "klinik_pratama",
        "services": ["medis"],
        "regencies": ["3301"],
    }
    r = await referrals.http.post("/v1/clinics", headers=referrals.agent(uuid.uuid4()), json=body)
    assert r.status_code == 403
    r = await referrals.http.post(
        "/v1/clinics",
        headers=referrals.facilitator,
        json={**body, "clinic_id": "Klinik Sehat", "kind": "spa"},
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"clinic_id", "kind"}


async def test_a_referral_is_published_to_the_clinics_own_subject_with_respond_by_from_urgency(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    r = await referrals.refer(client, urgency="urgent")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "referred" and body["unit_id"] == str(client.unit_id)
    assert body["referred_on"] == "2026-03-01" and body["respond_by"] == "2026-03-02"
    assert body["consent_id"] == str(client.consent_id)
    [(subject, event)] = await referrals.outbox()
    assert subject == f"ibm.3301.referral.referred_to_clinic.{CLINIC}"
    assert type(event).__name__ == "ReferredToClinic"
    assert (event.client_id, event.unit_id, event.respond_by) == (
        client.client_id,
        client.unit_id,
        date(2026, 3, 2),
    )

    routine = await referrals.refer(await referrals.client())
    assert routine.json()["respond_by"] == "2026-03-04"


async def test_no_referral_without_referral_consent(referrals: Referrals) -> None:
    await referrals.add_clinic()
    for client in (
        await referrals.client(scopes=None),
        await referrals.client(scopes=("programme",)),
        await referrals.client(expires_on=date(2026, 2, 28)),
    ):
        r = await referrals.refer(client)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "consent_required"
    assert await referrals.outbox() == []


async def test_no_referral_after_the_consent_is_withdrawn(referrals: Referrals) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    assert client.consent_id is not None
    await referrals.feed(
        ConsentWithdrawn(consent_id=client.consent_id, client_id=client.client_id, on=date(2026, 2, 20))
    )
    r = await referrals.refer(client)
    assert r.status_code == 409 and r.json()["code"] == "consent_required"
    assert await referrals.outbox() == []


async def test_withdrawing_the_referral_consent_cancels_open_referrals(referrals: Referrals) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    assert client.consent_id is not None
    r = await referrals.refer(client)
    assert r.status_code == 201, r.text
    referral_id = r.json()["referral_id"]
    await referrals.feed(
        ConsentWithdrawn(consent_id=client.consent_id, client_id=client.client_id, on=date(2026, 3, 2))
    )
    seen = await referrals.http.get(f"/v1/referrals/{referral_id}", headers=referrals.facilitator)
    assert (seen.json()["status"], seen.json()["outcome"]) == ("cancelled", "cancelled")
    assert await referrals.outbox_names() == ["ReferredToClinic", "ReferralCancelled", "ReferralClosed"]
    (_, _), (told, cancelled), (_, closed) = await referrals.outbox()
    assert told == f"ibm.3301.referral.referral_cancelled.{CLINIC}"  # the clinic hears of it
    assert (cancelled.reason, cancelled.on) == ("consent_withdrawn", date(2026, 3, 2))
    assert (closed.outcome, closed.back_referral) == ("cancelled", False)


async def test_withdrawing_one_of_two_referral_consents_cancels_nothing(referrals: Referrals) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    assert client.consent_id is not None
    await referrals.feed(
        ConsentRecorded.model_validate(
            {
                "consent_id": uuid.uuid4(),
                "client_id": client.client_id,
                "scopes": ["referral"],
                "given_on": "2026-02-15",
            }
        )
    )
    assert (await referrals.refer(client)).status_code == 201
    await referrals.feed(
        ConsentWithdrawn(consent_id=client.consent_id, client_id=client.client_id, on=date(2026, 3, 2))
    )
    assert await referrals.outbox_names() == ["ReferredToClinic"]


async def test_no_referral_for_a_client_never_screened(referrals: Referrals) -> None:
    await referrals.add_clinic()
    r = await referrals.refer(await referrals.client(recommendation=None))
    assert r.status_code == 409 and r.json()["code"] == "not_screened"
    assert await referrals.outbox() == []


async def test_the_clinic_must_offer_the_service_and_exist(referrals: Referrals) -> None:
    await referrals.add_clinic(services=("rawat_jalan",))
    client = await referrals.client()
    r = await referrals.refer(client, service="rawat_inap")
    assert (
        r.status_code == 422 and r.json()["code"] == "service_not_offered" and r.json()["field"] == "service"
    )
    r = await referrals.refer(client, clinic_id="no-such-clinic")
    assert r.status_code == 422 and r.json()["code"] == "unknown_clinic"
    assert await referrals.outbox() == []


async def test_an_agent_refers_only_their_own_units_clients(referrals: Referrals) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    r = await referrals.refer(client, headers=referrals.agent(uuid.uuid4()))
    assert r.status_code == 403
    r = await referrals.refer(client, headers=referrals.clinic())
    assert r.status_code == 403
    assert (await referrals.refer(client, headers=referrals.facilitator)).status_code == 201


async def test_one_open_referral_per_client_and_clinic(referrals: Referrals) -> None:
    await referrals.add_clinic()
    await referrals.add_clinic(OTHER_CLINIC)
    client = await referrals.client()
    first = await referrals.referral(client)
    again = await referrals.refer(client)
    assert again.status_code == 409 and again.json()["code"] == "referral_open"
    assert (await referrals.refer(client, clinic_id=OTHER_CLINIC)).status_code == 201
    cancelled = await referrals.http.post(
        f"/v1/referrals/{first}/cancel",
        headers=referrals.agent(client.unit_id),
        json={"reason": "entered_in_error"},
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (await referrals.refer(client)).status_code == 201


async def test_a_retried_referral_with_the_same_key_changes_nothing(referrals: Referrals) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    headers = {**referrals.agent(client.unit_id), "Idempotency-Key": str(uuid.uuid4())}
    body = {"client_id": str(client.client_id), "clinic_id": CLINIC, "service": "medis", "reason": "medical"}
    first = await referrals.http.post("/v1/referrals", headers=headers, json=body)
    second = await referrals.http.post("/v1/referrals", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true" and first.json() == second.json()
    assert await referrals.outbox_names() == ["ReferredToClinic"]


async def test_a_screening_recommending_referral_is_a_suggestion_until_someone_refers(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    await referrals.client(recommendation="ibm_programme", unit_id=client.unit_id)
    other_unit = await referrals.client()
    mine = await referrals.http.get("/v1/referrals/suggestions", headers=referrals.agent(client.unit_id))
    assert [s["client_id"] for s in mine.json()] == [str(client.client_id)]
    everyone = await referrals.http.get("/v1/referrals/suggestions", headers=referrals.facilitator)
    assert {s["client_id"] for s in everyone.json()} == {str(client.client_id), str(other_unit.client_id)}
    assert await referrals.outbox() == [], "a suggestion is not a referral: nothing is sent"

    await referrals.referral(client)
    mine = await referrals.http.get("/v1/referrals/suggestions", headers=referrals.agent(client.unit_id))
    assert mine.json() == []


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
    assert unknown.status_code == 404
    by_agent = await referrals.http.post(
        f"/v1/referrals/{referral_id}/answers",
        headers=auth(Role.FACILITATOR),
        json={"answer": "accepted", "on": "2026-03-02"},
    )
    assert by_agent.status_code == 403

    assert await referrals.get(referral_id) == before
    assert await referrals.outbox_names() == ["ReferredToClinic"]

    assert (await referrals.answer(referral_id, answer="accepted", on="2026-03-02")).status_code == 200
    twice = await referrals.answer(referral_id, answer="accepted", on="2026-03-03")
    assert twice.status_code == 409
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
    assert late.status_code == 409


async def escalations(referrals: Referrals) -> list[tuple[str, Any]]:
    return [(s, e) for s, e in await referrals.outbox() if type(e).__name__ == "ReferralEscalated"]


async def test_an_unanswered_referral_escalates_once_the_day_after_respond_by(referrals: Referrals) -> None:
    await referrals.add_clinic()
    late = await referrals.referral(await referrals.client())  # respond_by 2026-03-04
    answered = await referrals.referral(await referrals.client())
    assert (await referrals.answer(answered, answer="accepted", on="2026-03-02")).status_code == 200
    clock, job = referrals.runtime.clock, referrals.runtime.jobs["escalate-overdue"]

    clock.set(date(2026, 3, 4))  # respond_by: still in time
    assert await job.run_once(referrals.runtime) == 0
    clock.set(date(2026, 3, 9))  # moving the clock wakes the job
    await eventually(lambda: escalations(referrals), until=lambda found: len(found) == 1)
    assert await job.run_once(referrals.runtime) == 0, "escalated once, not on every run"
    assert job.changed == 1

    [(subject, event)] = await escalations(referrals)
    assert subject == f"ibm.3301.referral.referral_escalated.{CLINIC}"
    assert (str(event.referral_id), event.reason, event.on) == (late, "no_response", date(2026, 3, 5))
    listed = await referrals.http.get(
        "/v1/referrals?escalated=true&status=referred", headers=referrals.facilitator
    )
    assert [x["referral_id"] for x in listed.json()] == [late]
    # a late answer is still welcome
    assert (await referrals.answer(late, answer="accepted", on="2026-03-09")).status_code == 200


async def test_cancelling_closes_the_referral_and_cannot_happen_twice(referrals: Referrals) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    referral_id = await referrals.referral(client)
    url = f"/v1/referrals/{referral_id}/cancel"
    r = await referrals.http.post(
        url, headers=referrals.agent(client.unit_id), json={"reason": "client_moved"}
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = await referrals.http.post(url, headers=referrals.facilitator, json={"reason": "client_moved"})
    assert again.status_code == 409
    assert await referrals.outbox_names() == ["ReferredToClinic", "ReferralCancelled", "ReferralClosed"]
    _, closed = (await referrals.outbox())[-1]
    assert closed.outcome == "cancelled" and closed.back_referral is False
    assert (await referrals.answer(referral_id, answer="accepted", on="2026-03-02")).status_code == 409


async def test_clinics_and_agents_see_only_their_own_referrals(referrals: Referrals) -> None:
    await referrals.add_clinic()
    await referrals.add_clinic(OTHER_CLINIC)
    a = await referrals.client()
    b = await referrals.client()
    to_clinic = await referrals.referral(a)
    to_other = await referrals.referral(b, clinic_id=OTHER_CLINIC)
    mine = await referrals.http.get("/v1/referrals", headers=referrals.clinic())
    assert [x["referral_id"] for x in mine.json()] == [to_clinic]
    agent = await referrals.http.get("/v1/referrals", headers=referrals.agent(b.unit_id))
    assert [x["referral_id"] for x in agent.json()] == [to_other]
    assert (
        await referrals.http.get(f"/v1/referrals/{to_other}", headers=referrals.clinic())
    ).status_code == 403


async def test_two_replicas_escalating_at_once_escalate_a_referral_once(referrals: Referrals) -> None:
    await referrals.add_clinic()
    for _ in range(3):
        await referrals.referral(await referrals.client())
    runtime = referrals.runtime
    runtime.clock._today = date(2026, 3, 10)  # move the date without waking the job
    # the job function itself, twice at once on one store: what two replicas would do
    changed = await asyncio.gather(escalate_overdue(runtime), escalate_overdue(runtime))
    assert sum(changed) == 3
    assert len(await escalations(referrals)) == 3
