"""Outreach's API: each route's success and its bad inputs, against a real store.

Every test also checks what reached the outbox, because an answer without its event (or an
event without its state) is the failure the outbox exists to prevent.
"""

from __future__ import annotations

import uuid
from typing import Any

from outreach_factories import Outreach, screening_body
from sqlalchemy import func, select

from pulih.kit.auth import Role
from pulih.kit.outbox import outbox_table
from pulih.kit.testing import auth
from pulih.outreach.store import Client, IdentityRead


async def outbox_types(o: Outreach) -> list[str]:
    async with o.app.state.runtime.database.sessions() as s:
        rows = (await s.execute(select(outbox_table.c.headers).order_by(outbox_table.c.seq))).all()
    return [r.headers["Pulih-Type"].split(".")[2] for r in rows]


async def count(o: Outreach, model: Any) -> int:
    async with o.app.state.runtime.database.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_unit_is_established_and_listed(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    r = await outreach.http.get("/v1/units", headers=outreach.facilitator)
    assert [u["unit_id"] for u in r.json()] == [unit_id]
    assert await outbox_types(outreach) == ["UnitEstablished"]


async def test_a_unit_outside_the_regency_is_refused(outreach: Outreach) -> None:
    r = await outreach.http.post(
        "/v1/units",
        headers=outreach.facilitator,
        json={
            "name": "Unit Banyumas",
            "village_code": "3302012001",
            "established_on": "2026-01-10",
        },
    )
    assert r.status_code == 422
    assert r.json()["field"] == "village_code"
    assert await outbox_types(outreach) == []


async def test_wrong_types_get_422_with_the_field(outreach: Outreach) -> None:
    r = await outreach.http.post(
        "/v1/units",
        headers=outreach.facilitator,
        json={"name": "Unit", "village_code": "33010120", "established_on": "not-a-date"},
    )
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "invalid"
    assert {e["field"] for e in body["errors"]} == {"village_code", "established_on"}


async def test_a_missing_token_gets_401_and_a_bad_one_too(outreach: Outreach) -> None:
    assert (await outreach.http.get("/v1/units")).status_code == 401
    r = await outreach.http.get("/v1/units", headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"


async def test_an_agent_cannot_establish_units(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    r = await outreach.http.post(
        "/v1/units",
        headers=outreach.agent_auth(unit_id, agent_id),
        json={"name": "x", "village_code": "3301012001", "established_on": "2026-01-10"},
    )
    assert r.status_code == 403


async def test_agents_register_and_deactivate(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    body = {"on": "2026-06-01", "reason_code": "moved"}
    r = await outreach.http.post(f"/v1/agents/{agent_id}/deactivate", headers=outreach.facilitator, json=body)
    assert r.status_code == 200 and r.json()["active"] is False
    again = await outreach.http.post(
        f"/v1/agents/{agent_id}/deactivate", headers=outreach.facilitator, json=body
    )
    assert again.status_code == 409
    unknown = await outreach.http.post(
        f"/v1/agents/{uuid.uuid4()}/deactivate", headers=outreach.facilitator, json=body
    )
    assert unknown.status_code == 404
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "AgentRegistered",
        "AgentDeactivated",
    ]


async def test_an_agent_to_an_unknown_unit_is_404(outreach: Outreach) -> None:
    r = await outreach.http.post(
        f"/v1/units/{uuid.uuid4()}/agents",
        headers=outreach.facilitator,
        json={"trained_on": "2026-01-05"},
    )
    assert r.status_code == 404
    assert r.json()["code"] == "unit_not_found"


async def test_outreach_is_recorded_as_a_count(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    body = {
        "agent_id": agent_id,
        "kind": "penjangkauan",
        "held_on": "2026-02-03",
        "people_reached": 12,
    }
    r = await outreach.http.post(
        f"/v1/units/{unit_id}/activities", headers=outreach.agent_auth(unit_id, agent_id), json=body
    )
    assert r.status_code == 201
    assert r.json()["people_reached"] == 12
    bad = await outreach.http.post(
        f"/v1/units/{unit_id}/activities",
        headers=outreach.facilitator,
        json={**body, "people_reached": -1},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "people_reached"


async def test_registration_seals_the_identity_and_the_event_carries_none(
    outreach: Outreach,
) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    r = await outreach.client(unit_id, outreach.agent_auth(unit_id, agent_id))
    assert r.status_code == 201, r.text
    assert r.json()["age_band"] == "35_44" and "nik" not in r.json()
    async with outreach.app.state.runtime.database.sessions() as s:
        payloads = (await s.execute(select(outbox_table.c.payload))).scalars().all()
    for payload in payloads:
        for secret in (
            b"Budi",
            b"Santoso",
            b"3301011505900001",
            b"81234567890",
            b"Merdeka",
            b"1990-05-15",
        ):
            assert secret not in payload


async def test_an_invalid_nik_is_422_and_changes_nothing(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    r = await outreach.client(unit_id, outreach.facilitator, nik="3301011505900")
    assert r.status_code == 422
    assert r.json()["field"] == "identity.nik"
    assert "3301011505900" not in r.text
    assert await count(outreach, Client) == 0
    assert await outbox_types(outreach) == ["UnitEstablished"]


async def test_a_nik_that_does_not_match_the_birth_date_is_refused(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    r = await outreach.client(unit_id, outreach.facilitator, birth_date="1991-05-15")
    assert r.status_code == 422 and r.json()["field"] == "identity.nik"


async def test_registering_the_same_nik_twice_is_409(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    assert (await outreach.client(unit_id, outreach.facilitator)).status_code == 201
    r = await outreach.client(unit_id, outreach.facilitator, full_name="Budi S.")
    assert r.status_code == 409
    assert await count(outreach, Client) == 1


async def test_a_client_in_an_unknown_unit_is_404(outreach: Outreach) -> None:
    r = await outreach.client(str(uuid.uuid4()), outreach.facilitator)
    assert r.status_code == 404


async def test_a_repeated_idempotency_key_returns_the_first_answer_and_changes_nothing(
    outreach: Outreach,
) -> None:
    unit_id = await outreach.unit()
    headers = {**outreach.facilitator, "Idempotency-Key": "device-7-registration-1"}
    first = await outreach.client(unit_id, headers)
    second = await outreach.client(unit_id, headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await count(outreach, Client) == 1
    assert await outbox_types(outreach) == ["UnitEstablished", "ClientRegistered"]
    other = await outreach.client(
        unit_id,
        headers,
        full_name="Someone Else",
        nik="3301015506920002",
        birth_date="1992-06-15",
        sex="f",
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


async def test_an_agent_of_another_unit_gets_403(outreach: Outreach) -> None:
    unit_a, unit_b = await outreach.unit(), await outreach.unit()
    agent_b = await outreach.agent(unit_b)
    r = await outreach.client(unit_a, outreach.agent_auth(unit_b, agent_b))
    assert r.status_code == 403
    client_id = (await outreach.client(unit_a, outreach.facilitator)).json()["client_id"]
    read = await outreach.http.get(
        f"/v1/clients/{client_id}",
        params={"purpose": "home visit"},
        headers=outreach.agent_auth(unit_b, agent_b),
    )
    assert read.status_code == 403


async def test_consent_is_recorded_and_withdrawn_once(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    consent_id = await outreach.consent(client_id, outreach.facilitator, ["referral", "programme"])
    url = f"/v1/clients/{client_id}/consents/{consent_id}/withdraw"
    r = await outreach.http.post(url, headers=outreach.facilitator, json={"on": "2026-03-01"})
    assert r.status_code == 200 and r.json()["withdrawn_on"] == "2026-03-01"
    assert (
        await outreach.http.post(url, headers=outreach.facilitator, json={"on": "2026-03-02"})
    ).status_code == 409
    bad_scope = await outreach.http.post(
        f"/v1/clients/{client_id}/consents",
        headers=outreach.facilitator,
        json={"scopes": ["everything"], "given_on": "2026-02-01"},
    )
    assert bad_scope.status_code == 422
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "ClientRegistered",
        "ConsentRecorded",
        "ConsentWithdrawn",
    ]


async def test_screening_scores_and_recommends(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    agent = outreach.agent_auth(unit_id, agent_id)
    client_id = (await outreach.client(unit_id, agent)).json()["client_id"]
    await outreach.consent(client_id, agent)
    r = await outreach.http.post(
        f"/v1/clients/{client_id}/screenings", headers=agent, json=screening_body(agent_id)
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["substances"] == [
        {"substance": "amphetamine_type_stimulants", "score": 24, "risk": "moderate"}
    ]
    assert body["overall_risk"] == "moderate" and body["recommendation"] == "ibm_programme"
    injecting = screening_body(agent_id, injecting="past_3_months")
    r2 = await outreach.http.post(f"/v1/clients/{client_id}/screenings", headers=agent, json=injecting)
    assert r2.json()["recommendation"] == "referral" and r2.json()["injected_last_3_months"] is True


async def test_screening_needs_consent(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    r = await outreach.http.post(
        f"/v1/clients/{client_id}/screenings",
        headers=outreach.facilitator,
        json=screening_body(agent_id),
    )
    assert r.status_code == 409 and r.json()["code"] == "consent_required"


async def test_impossible_answers_are_422_with_the_item(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    await outreach.consent(client_id, outreach.facilitator)
    tobacco_q5 = screening_body(
        agent_id,
        substances=[
            {
                "substance": "tobacco",
                "ever_used": True,
                "q2": 6,
                "q3": 3,
                "q4": 4,
                "q5": 5,
                "q6": 0,
                "q7": 0,
            }
        ],
    )
    r = await outreach.http.post(
        f"/v1/clients/{client_id}/screenings", headers=outreach.facilitator, json=tobacco_q5
    )
    assert r.status_code == 422 and r.json()["field"] == "substances[0].q5"
    bad_value = screening_body(
        agent_id,
        substances=[
            {
                "substance": "cannabis",
                "ever_used": True,
                "q2": 5,
                "q3": 3,
                "q4": 4,
                "q5": 5,
                "q6": 0,
                "q7": 0,
            }
        ],
    )
    r = await outreach.http.post(
        f"/v1/clients/{client_id}/screenings", headers=outreach.facilitator, json=bad_value
    )
    assert r.status_code == 422 and r.json()["field"] == "substances[0].q2"
    wrong_agent = screening_body(str(uuid.uuid4()))
    r = await outreach.http.post(
        f"/v1/clients/{client_id}/screenings", headers=outreach.facilitator, json=wrong_agent
    )
    assert r.status_code == 422 and r.json()["field"] == "agent_id"
    assert "ClientScreened" not in await outbox_types(outreach)


async def test_identity_reads_are_audited_and_limited_to_field_roles(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    r = await outreach.http.get(
        f"/v1/clients/{client_id}", params={"purpose": "home visit"}, headers=outreach.facilitator
    )
    assert r.status_code == 200
    assert r.json()["nik"] == "3301011505900001" and r.json()["phone"] == "+6281234567890"
    national = await outreach.http.get(
        f"/v1/clients/{client_id}", params={"purpose": "curious"}, headers=auth(Role.NATIONAL)
    )
    assert national.status_code == 403
    no_purpose = await outreach.http.get(f"/v1/clients/{client_id}", headers=outreach.facilitator)
    assert no_purpose.status_code == 422
    audit = (await outreach.http.get(f"/v1/clients/{client_id}/audit", headers=outreach.facilitator)).json()
    assert [(a["actor_role"], a["purpose"], a["outcome"]) for a in audit] == [
        ("facilitator", "home visit", "granted"),
        ("national", "curious", "denied"),
    ]


async def test_erasure_destroys_the_key_and_the_identity_answers_410(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    r = await outreach.http.post(
        f"/v1/clients/{client_id}/erase", headers=outreach.facilitator, json={"on": "2026-04-01"}
    )
    assert r.status_code == 200 and r.json()["erased"] is True
    read = await outreach.http.get(
        f"/v1/clients/{client_id}", params={"purpose": "follow-up"}, headers=outreach.facilitator
    )
    assert read.status_code == 410
    again = await outreach.http.post(
        f"/v1/clients/{client_id}/erase", headers=outreach.facilitator, json={"on": "2026-04-02"}
    )
    assert again.status_code == 410
    # the sealed fields are still there, but nothing can open them: the key row is gone
    async with outreach.app.state.runtime.database.sessions() as s:
        from pulih.outreach.store import ClientIdentity, ClientKey

        assert await s.get(ClientKey, uuid.UUID(client_id)) is None
        identity = await s.get(ClientIdentity, uuid.UUID(client_id))
        assert identity is not None and b"Budi" not in identity.full_name
    assert (await outbox_types(outreach))[-1] == "ClientErased"
    assert await count(outreach, IdentityRead) == 1
    # the NIK can be registered again: the erased person is no longer known
    assert (await outreach.client(unit_id, outreach.facilitator)).status_code == 201
