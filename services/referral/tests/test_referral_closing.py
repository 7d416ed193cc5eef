"""How referrals end without a clinic's answer, against a real store (SQLite and PostgreSQL): the
unit cancels, the client withdraws their consent, the clinic does not answer in time
(escalation, also with two replicas)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

from referral_factories import CLINIC, Referrals

from pulih.contracts import new_event
from pulih.contracts.events.outreach import ConsentRecorded, ConsentWithdrawn
from pulih.kit.testing import REGENCY, eventually
from pulih.referral.handlers import escalate_overdue


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
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"
    assert await referrals.outbox_names() == ["ReferredToClinic", "ReferralCancelled", "ReferralClosed"]
    _, closed = (await referrals.outbox())[-1]
    assert closed.outcome == "cancelled" and closed.back_referral is False
    late = await referrals.answer(referral_id, answer="accepted", on="2026-03-02")
    assert late.status_code == 409 and late.json()["code"] == "illegal_transition"
    assert await referrals.outbox_names() == ["ReferredToClinic", "ReferralCancelled", "ReferralClosed"]


async def test_a_cancellation_needs_a_referral_of_the_unit_and_a_day_after_it(referrals: Referrals) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    referral_id = await referrals.referral(client)
    mine = referrals.agent(client.unit_id)
    cases = [
        (f"/v1/referrals/{uuid.uuid4()}/cancel", mine, {}, 404, "referral_not_found"),
        (f"/v1/referrals/{referral_id}/cancel", referrals.agent(uuid.uuid4()), {}, 403, "other_unit"),
        (f"/v1/referrals/{referral_id}/cancel", mine, {"on": "2026-02-28"}, 422, "cancelled_before_referral"),
        (f"/v1/referrals/{referral_id}/cancel", mine, {"on": "2999-01-01"}, 422, "date_in_future"),
    ]
    for url, headers, extra, status, code in cases:
        r = await referrals.http.post(url, headers=headers, json={"reason": "client_moved", **extra})
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert await referrals.outbox_names() == ["ReferredToClinic"]
    assert (await referrals.get(referral_id))["status"] == "referred"


async def test_a_cancellation_is_never_dated_before_the_clinics_last_answer(referrals: Referrals) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    referral_id = await referrals.referral(client)
    assert (await referrals.answer(referral_id, answer="accepted", on="2026-03-02")).status_code == 200
    before, outbox = await referrals.get(referral_id), await referrals.outbox_size()
    url = f"/v1/referrals/{referral_id}/cancel"
    r = await referrals.http.post(
        url, headers=referrals.agent(client.unit_id), json={"reason": "client_moved", "on": "2026-03-01"}
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "cancelled_before_answer", "on")
    assert await referrals.get(referral_id) == before and await referrals.outbox_size() == outbox
    r = await referrals.http.post(
        url, headers=referrals.agent(client.unit_id), json={"reason": "client_moved", "on": "2026-03-02"}
    )
    assert r.status_code == 200 and r.json()["closed_on"] == "2026-03-02"


async def test_a_consent_withdrawn_before_the_clinics_answer_cancels_on_the_answers_day(
    referrals: Referrals,
) -> None:
    """A withdrawal recorded late (dated before the clinic accepted) cannot close the referral
    before that acceptance: it is cancelled on the day of the clinic's last answer."""
    await referrals.add_clinic()
    client = await referrals.client()
    assert client.consent_id is not None
    referral_id = await referrals.referral(client)
    assert (await referrals.answer(referral_id, answer="accepted", on="2026-03-02")).status_code == 200
    await referrals.feed(
        ConsentWithdrawn(consent_id=client.consent_id, client_id=client.client_id, on=date(2026, 3, 1))
    )
    referral = await referrals.get(referral_id)
    assert (referral["status"], referral["closed_on"]) == ("cancelled", "2026-03-02")


async def test_cancelling_on_a_withdrawn_consent_carries_the_withdrawals_correlation(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    assert client.consent_id is not None
    await referrals.referral(client)
    withdrawn = new_event(
        ConsentWithdrawn(consent_id=client.consent_id, client_id=client.client_id, on=date(2026, 3, 2)),
        regency=REGENCY,
        correlationid="outreach-request-7",
    )
    await referrals.feed(withdrawn)
    _, cancelled, closed = await referrals.outbox_envelopes()
    for event in (cancelled, closed):
        assert (event.correlationid, event.causationid) == ("outreach-request-7", str(withdrawn.id))


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
    assert [x["referral_id"] for x in listed.json()["items"]] == [late]
    # a late answer is still welcome
    assert (await referrals.answer(late, answer="accepted", on="2026-03-09")).status_code == 200


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


async def test_each_escalation_starts_its_own_chain(referrals: Referrals) -> None:
    await referrals.add_clinic()
    for _ in range(2):
        await referrals.referral(await referrals.client())
    referrals.runtime.clock._today = date(2026, 3, 10)  # move the date without waking the job
    assert await escalate_overdue(referrals.runtime) == 2
    escalated = [
        e for e in await referrals.outbox_envelopes() if type(e.data).__name__ == "ReferralEscalated"
    ]
    assert len({e.correlationid for e in escalated}) == 2 and all(e.causationid is None for e in escalated)
