"""Outreach's API: each route's success and its bad inputs, against a real store.

Every test also checks what reached the outbox, because an answer without its event (or an
event without its state) is the failure the outbox exists to prevent: a success names the
exact events it left there, and every refusal goes through ``refused``, which checks the
status, the error's code (and field) and that the outbox holds exactly what it held before.
"""

from __future__ import annotations

import json
import uuid

from outreach_factories import Outreach, count, outbox_types, refused, screening_body
from sqlalchemy import select

from pulih.kit.auth import Role
from pulih.kit.outbox import outbox_table
from pulih.kit.testing import auth
from pulih.outreach.store import Client, IdentityRead


async def test_a_unit_is_established_and_listed(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    r = await outreach.http.get("/v1/units", headers=outreach.facilitator)
    assert [u["unit_id"] for u in r.json()["items"]] == [unit_id] and r.json()["next"] is None
    assert await outbox_types(outreach) == ["UnitEstablished"]


async def test_a_unit_outside_the_regency_is_refused(outreach: Outreach) -> None:
    request = outreach.http.post(
        "/v1/units",
        headers=outreach.facilitator,
        json={
            "name": "Unit Banyumas",
            "village_code": "3302012001",
            "established_on": "2026-01-10",
        },
    )
    await refused(outreach, request, 422, "village_outside_regency", "village_code")
    assert await outbox_types(outreach) == []


async def test_wrong_types_get_422_with_the_field(outreach: Outreach) -> None:
    request = outreach.http.post(
        "/v1/units",
        headers=outreach.facilitator,
        json={"name": "Unit", "village_code": "33010120", "established_on": "not-a-date"},
    )
    body = await refused(outreach, request, 422, "invalid")
    assert {e["field"] for e in body["errors"]} == {"village_code", "established_on"}
    assert await outbox_types(outreach) == []


async def test_a_missing_token_gets_401_and_a_bad_one_too(outreach: Outreach) -> None:
    await refused(outreach, outreach.http.get("/v1/units"), 401, "missing_token", None)
    bad = outreach.http.get("/v1/units", headers={"Authorization": "Bearer not.a.token"})
    await refused(outreach, bad, 401, "invalid_token", None)
    no_token_write = outreach.http.post(
        "/v1/units",
        json={"name": "x", "village_code": "3301012001", "established_on": "2026-01-10"},
    )
    await refused(outreach, no_token_write, 401, "missing_token", None)
    assert await outbox_types(outreach) == []


async def test_an_agent_cannot_establish_units(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    request = outreach.http.post(
        "/v1/units",
        headers=outreach.agent_auth(unit_id, agent_id),
        json={"name": "x", "village_code": "3301012001", "established_on": "2026-01-10"},
    )
    await refused(outreach, request, 403, "forbidden_role", None)
    assert await outbox_types(outreach) == ["UnitEstablished", "AgentRegistered"]


async def test_agents_register_and_deactivate(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    body = {"on": "2026-06-01", "reason_code": "moved"}
    r = await outreach.http.post(f"/v1/agents/{agent_id}/deactivate", headers=outreach.facilitator, json=body)
    assert r.status_code == 200 and r.json()["active"] is False
    again = outreach.http.post(f"/v1/agents/{agent_id}/deactivate", headers=outreach.facilitator, json=body)
    await refused(outreach, again, 409, "agent_inactive", None)
    unknown = outreach.http.post(
        f"/v1/agents/{uuid.uuid4()}/deactivate", headers=outreach.facilitator, json=body
    )
    await refused(outreach, unknown, 404, "agent_not_found", "agent_id")
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "AgentRegistered",
        "AgentDeactivated",
    ]


async def test_an_agent_to_an_unknown_unit_is_404(outreach: Outreach) -> None:
    request = outreach.http.post(
        f"/v1/units/{uuid.uuid4()}/agents",
        headers=outreach.facilitator,
        json={"trained_on": "2026-01-05"},
    )
    await refused(outreach, request, 404, "unit_not_found", "unit_id")
    assert await outbox_types(outreach) == []


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
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "AgentRegistered",
        "OutreachActivityRecorded",
    ]
    bad = outreach.http.post(
        f"/v1/units/{unit_id}/activities",
        headers=outreach.facilitator,
        json={**body, "people_reached": -1},
    )
    await refused(outreach, bad, 422, "invalid", "people_reached")
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "AgentRegistered",
        "OutreachActivityRecorded",
    ]


async def test_registration_seals_the_identity_and_the_event_carries_none(
    outreach: Outreach,
) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    r = await outreach.client(unit_id, outreach.agent_auth(unit_id, agent_id))
    assert r.status_code == 201, r.text
    assert r.json()["age_band"] == "35_44" and "nik" not in r.json()
    assert await outbox_types(outreach) == ["UnitEstablished", "AgentRegistered", "ClientRegistered"]
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
    request = outreach.client(unit_id, outreach.facilitator, nik="3301011505900")
    body = await refused(outreach, request, 422, "invalid_nik", "identity.nik")
    assert "3301011505900" not in json.dumps(body)
    assert await count(outreach, Client) == 0
    assert await outbox_types(outreach) == ["UnitEstablished"]


async def test_a_nik_that_does_not_match_the_birth_date_is_refused(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    request = outreach.client(unit_id, outreach.facilitator, birth_date="1991-05-15")
    await refused(outreach, request, 422, "invalid_nik", "identity.nik")
    assert await count(outreach, Client) == 0
    assert await outbox_types(outreach) == ["UnitEstablished"]


async def test_a_client_in_an_unknown_unit_is_404(outreach: Outreach) -> None:
    request = outreach.client(str(uuid.uuid4()), outreach.facilitator)
    await refused(outreach, request, 404, "unit_not_found", "unit_id")
    assert await count(outreach, Client) == 0
    assert await outbox_types(outreach) == []


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
    other = outreach.client(
        unit_id,
        headers,
        full_name="Someone Else",
        nik="3301015506920002",
        birth_date="1992-06-15",
        sex="f",
    )
    await refused(outreach, other, 409, "idempotency_key_reused", "Idempotency-Key")
    assert await count(outreach, Client) == 1
    assert await outbox_types(outreach) == ["UnitEstablished", "ClientRegistered"]


async def test_an_agent_of_another_unit_gets_403(outreach: Outreach) -> None:
    unit_a, unit_b = await outreach.unit(), await outreach.unit()
    agent_b = await outreach.agent(unit_b)
    request = outreach.client(unit_a, outreach.agent_auth(unit_b, agent_b))
    await refused(outreach, request, 403, "other_unit", "unit_id")
    assert await count(outreach, Client) == 0
    client_id = (await outreach.client(unit_a, outreach.facilitator)).json()["client_id"]
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "UnitEstablished",
        "AgentRegistered",
        "ClientRegistered",
    ]
    read = outreach.http.get(
        f"/v1/clients/{client_id}",
        params={"purpose": "home visit"},
        headers=outreach.agent_auth(unit_b, agent_b),
    )
    await refused(outreach, read, 403, "other_unit", "client_id")
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "UnitEstablished",
        "AgentRegistered",
        "ClientRegistered",
    ]


async def test_consent_is_recorded_and_withdrawn_once(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    consent_id = await outreach.consent(client_id, outreach.facilitator, ["referral", "programme"])
    url = f"/v1/clients/{client_id}/consents/{consent_id}/withdraw"
    r = await outreach.http.post(url, headers=outreach.facilitator, json={"on": "2026-03-01"})
    assert r.status_code == 200 and r.json()["withdrawn_on"] == "2026-03-01"
    twice = outreach.http.post(url, headers=outreach.facilitator, json={"on": "2026-03-02"})
    await refused(outreach, twice, 409, "consent_withdrawn", None)
    bad_scope = outreach.http.post(
        f"/v1/clients/{client_id}/consents",
        headers=outreach.facilitator,
        json={"scopes": ["everything"], "given_on": "2026-02-01"},
    )
    await refused(outreach, bad_scope, 422, "invalid", "scopes[0]")
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
    assert r2.status_code == 201, r2.text
    assert r2.json()["recommendation"] == "referral" and r2.json()["injected_last_3_months"] is True
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "AgentRegistered",
        "ClientRegistered",
        "ConsentRecorded",
        "ClientScreened",
        "ClientScreened",
    ]


async def test_screening_needs_consent(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    request = outreach.http.post(
        f"/v1/clients/{client_id}/screenings",
        headers=outreach.facilitator,
        json=screening_body(agent_id),
    )
    await refused(outreach, request, 409, "consent_required", None)
    assert await outbox_types(outreach) == ["UnitEstablished", "AgentRegistered", "ClientRegistered"]


async def test_impossible_answers_are_422_with_the_item(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    await outreach.consent(client_id, outreach.facilitator)
    url = f"/v1/clients/{client_id}/screenings"
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
    request = outreach.http.post(url, headers=outreach.facilitator, json=tobacco_q5)
    await refused(outreach, request, 422, "impossible_answer", "substances[0].q5")
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
    request = outreach.http.post(url, headers=outreach.facilitator, json=bad_value)
    await refused(outreach, request, 422, "impossible_answer", "substances[0].q2")
    wrong_agent = screening_body(str(uuid.uuid4()))
    request = outreach.http.post(url, headers=outreach.facilitator, json=wrong_agent)
    await refused(outreach, request, 422, "unknown_agent", "agent_id")
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "AgentRegistered",
        "ClientRegistered",
        "ConsentRecorded",
    ]


async def test_identity_reads_are_audited_and_limited_to_field_roles(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    r = await outreach.http.get(
        f"/v1/clients/{client_id}", params={"purpose": "home visit"}, headers=outreach.facilitator
    )
    assert r.status_code == 200
    assert r.json()["nik"] == "3301011505900001" and r.json()["phone"] == "+6281234567890"
    national = outreach.http.get(
        f"/v1/clients/{client_id}", params={"purpose": "curious"}, headers=auth(Role.NATIONAL)
    )
    await refused(outreach, national, 403, "forbidden_role", None)
    no_purpose = outreach.http.get(f"/v1/clients/{client_id}", headers=outreach.facilitator)
    await refused(outreach, no_purpose, 422, "invalid", "purpose")
    audit = (await outreach.http.get(f"/v1/clients/{client_id}/audit", headers=outreach.facilitator)).json()[
        "items"
    ]
    assert [(a["actor_role"], a["purpose"], a["outcome"]) for a in audit] == [
        ("facilitator", "home visit", "granted"),
        ("national", "curious", "denied"),
    ]
    assert await outbox_types(outreach) == ["UnitEstablished", "ClientRegistered"]


async def test_erasure_destroys_the_key_and_the_identity_answers_410(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    client_id = (await outreach.client(unit_id, outreach.facilitator)).json()["client_id"]
    r = await outreach.http.post(
        f"/v1/clients/{client_id}/erase", headers=outreach.facilitator, json={"on": "2026-04-01"}
    )
    assert r.status_code == 200 and r.json()["erased"] is True
    assert await outbox_types(outreach) == ["UnitEstablished", "ClientRegistered", "ClientErased"]
    read = outreach.http.get(
        f"/v1/clients/{client_id}", params={"purpose": "follow-up"}, headers=outreach.facilitator
    )
    await refused(outreach, read, 410, "client_erased", None)
    again = outreach.http.post(
        f"/v1/clients/{client_id}/erase", headers=outreach.facilitator, json={"on": "2026-04-02"}
    )
    await refused(outreach, again, 410, "client_erased", None)
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
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "ClientRegistered",
        "ClientErased",
        "ClientRegistered",
    ]
