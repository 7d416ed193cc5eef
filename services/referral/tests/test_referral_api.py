"""Referral's API against a real store (SQLite and PostgreSQL), the clinic directory and making
referrals: every test checks the answer, the stored referral and what reached the outbox."""

from __future__ import annotations

import uuid
from datetime import date

from referral_factories import CLINIC, OTHER_CLINIC, Client, Referrals

from pulih.contracts.events.outreach import ClientErased, ConsentWithdrawn


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
    assert await referrals.outbox() == [], "the directory publishes nothing"
    listed = await referrals.http.get("/v1/clinics", headers=referrals.clinic())
    assert [(c["clinic_id"], c["services"]) for c in listed.json()["items"]] == [
        (CLINIC, ["medis", "rawat_jalan"])
    ]


async def test_an_agent_cannot_add_clinics_and_a_bad_slug_or_kind_is_refused(referrals: Referrals) -> None:
    body = {
        "clinic_id": "k",
        "name": "K",
        "kind": "klinik_pratama",
        "services": ["medis"],
        "regencies": ["3301"],
    }
    r = await referrals.http.post("/v1/clinics", headers=referrals.agent(uuid.uuid4()), json=body)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
    r = await referrals.http.post(
        "/v1/clinics",
        headers=referrals.facilitator,
        json={**body, "clinic_id": "Klinik Sehat", "kind": "spa"},
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid"
    assert {e["field"] for e in r.json()["errors"]} == {"clinic_id", "kind"}
    listed = await referrals.http.get("/v1/clinics", headers=referrals.facilitator)
    assert listed.json() == {"items": [], "next": None}
    assert await referrals.outbox() == []


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
    assert r.status_code == 403 and r.json()["code"] == "other_unit"
    r = await referrals.refer(client, headers=referrals.clinic())
    assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
    assert await referrals.outbox() == []
    assert (await referrals.refer(client, headers=referrals.facilitator)).status_code == 201


async def test_one_open_referral_per_client_and_clinic(referrals: Referrals) -> None:
    await referrals.add_clinic()
    await referrals.add_clinic(OTHER_CLINIC)
    client = await referrals.client()
    first = await referrals.referral(client)
    again = await referrals.refer(client)
    assert again.status_code == 409 and again.json()["code"] == "referral_open"
    assert await referrals.outbox_names() == ["ReferredToClinic"]
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
    assert [s["client_id"] for s in mine.json()["items"]] == [str(client.client_id)]
    everyone = await referrals.http.get("/v1/referrals/suggestions", headers=referrals.facilitator)
    assert {s["client_id"] for s in everyone.json()["items"]} == {
        str(client.client_id),
        str(other_unit.client_id),
    }
    assert await referrals.outbox() == [], "a suggestion is not a referral: nothing is sent"

    await referrals.referral(client)
    mine = await referrals.http.get("/v1/referrals/suggestions", headers=referrals.agent(client.unit_id))
    assert mine.json()["items"] == []


async def test_clinics_and_agents_see_only_their_own_referrals(referrals: Referrals) -> None:
    await referrals.add_clinic()
    await referrals.add_clinic(OTHER_CLINIC)
    a = await referrals.client()
    b = await referrals.client()
    to_clinic = await referrals.referral(a)
    to_other = await referrals.referral(b, clinic_id=OTHER_CLINIC)
    mine = await referrals.http.get("/v1/referrals", headers=referrals.clinic())
    assert [x["referral_id"] for x in mine.json()["items"]] == [to_clinic]
    agent = await referrals.http.get("/v1/referrals", headers=referrals.agent(b.unit_id))
    assert [x["referral_id"] for x in agent.json()["items"]] == [to_other]
    seen = await referrals.http.get(f"/v1/referrals/{to_other}", headers=referrals.clinic())
    assert seen.status_code == 403 and seen.json()["code"] == "other_referral"
    unknown = await referrals.http.get(f"/v1/referrals/{uuid.uuid4()}", headers=referrals.facilitator)
    assert unknown.status_code == 404 and unknown.json()["code"] == "referral_not_found"
    assert await referrals.outbox_names() == ["ReferredToClinic", "ReferredToClinic"]


async def test_refused_referrals_say_why_and_send_nothing(referrals: Referrals) -> None:
    await referrals.add_clinic()
    await referrals.add_clinic(OTHER_CLINIC)
    far = await referrals.http.post(
        "/v1/clinics",
        headers=referrals.facilitator,
        json={
            "clinic_id": "balai-lido",
            "name": "Balai Lido",
            "kind": "balai",
            "services": ["rawat_jalan"],
            "regencies": ["3201"],
        },
    )
    assert far.status_code == 201, far.text
    client = await referrals.client()
    erased = await referrals.client()
    await referrals.feed(ClientErased(client_id=erased.client_id, on=date(2026, 2, 20)))
    existing = await referrals.referral(client)
    before = await referrals.outbox()

    unknown = Client(uuid.uuid4(), uuid.uuid4(), None)
    cases = [
        (await referrals.refer(unknown, headers=referrals.facilitator), 404, "client_not_found", "client_id"),
        (await referrals.refer(erased), 410, "client_erased", None),
        (await referrals.refer(client, clinic_id="balai-lido"), 422, "clinic_out_of_area", "clinic_id"),
        (await referrals.refer(client, referred_on="2026-03-03"), 422, "date_in_future", "referred_on"),
        (await referrals.refer(client, referred_on="2999-01-01"), 422, "date_in_future", "referred_on"),
        (
            await referrals.refer(client, clinic_id=OTHER_CLINIC, referral_id=existing),
            409,
            "referral_exists",
            "referral_id",
        ),
    ]
    for r, status, code, field in cases:
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (status, code, field), r.text
    assert await referrals.outbox() == before


async def test_a_referral_is_dated_after_the_clients_registration_and_screening(referrals: Referrals) -> None:
    """The client was registered on 2026-02-01 and screened on 2026-02-02 (the factory's)."""
    await referrals.add_clinic()
    client = await referrals.client()
    cases = [
        ("2026-01-31", "date_before_registration"),
        ("2026-02-01", "date_before_screening"),
    ]
    for referred_on, code in cases:
        r = await referrals.refer(client, referred_on=referred_on)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, code, "referred_on"), r.text
    assert await referrals.outbox() == []
    r = await referrals.refer(client, referred_on="2026-02-02")
    assert r.status_code == 201 and r.json()["respond_by"] == "2026-02-05"


async def test_another_units_agent_learns_nothing_of_a_clients_dates(referrals: Referrals) -> None:
    await referrals.add_clinic()
    client = await referrals.client()
    r = await referrals.refer(client, headers=referrals.agent(uuid.uuid4()), referred_on="2026-01-01")
    assert (r.status_code, r.json()["code"]) == (403, "other_unit")
    assert await referrals.outbox() == []
