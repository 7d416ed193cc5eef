"""Bad input that outreach used to accept: impossible dates, dates after the regency's clock,
dates before what they depend on, a screening of no substance, and text nobody can see.

Each is refused with 422 naming the field and the reason, and changes nothing (``refused``
checks the outbox; the tests check the rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from outreach_factories import Outreach, count, outbox_types, refused, screening_body

from pulih.outreach.store import Agent, Client, Consent, OutreachActivity, Screening, Unit

FUTURE = "2999-01-01"


@dataclass
class Scene:
    """A unit (established 2026-01-10), its agent (trained 2026-01-05) and a client registered
    2026-02-01 with a programme consent."""

    o: Outreach
    unit_id: str
    agent_id: str
    client_id: str
    consent_id: str

    @property
    def agent(self) -> dict[str, str]:
        return self.o.agent_auth(self.unit_id, self.agent_id)


@pytest.fixture
async def scene(outreach: Outreach) -> Scene:
    unit_id = await outreach.unit()
    agent_id = await outreach.agent(unit_id)
    client = await outreach.client(unit_id, outreach.facilitator)
    assert client.status_code == 201, client.text
    client_id = client.json()["client_id"]
    consent_id = await outreach.consent(client_id, outreach.facilitator)
    return Scene(outreach, unit_id, agent_id, client_id, consent_id)


async def rows(o: Outreach) -> list[int]:
    return [await count(o, model) for model in (Unit, Agent, OutreachActivity, Client, Consent, Screening)]


async def refused_unchanged(
    s: Scene, method: str, url: str, body: dict[str, Any], code: str, field: str
) -> dict[str, Any]:
    before = await rows(s.o)
    error = await refused(
        s.o, s.o.http.request(method, url, headers=s.o.facilitator, json=body), 422, code, field
    )
    assert await rows(s.o) == before
    return error


# --- dates after the regency's clock, or before 1900 -------------------------------------------


async def test_a_birth_date_in_1800_is_refused(scene: Scene) -> None:
    # the NIK's day, month and two-digit year match 15 May 1800: only the date rule catches it
    body = {
        "unit_id": scene.unit_id,
        "registered_on": "2026-02-01",
        "came_through": "self",
        "identity": {
            "full_name": "Ki Ageng",
            "nik": "3301011505000007",
            "birth_date": "1800-05-15",
            "sex": "m",
        },
    }
    await refused_unchanged(scene, "POST", "/v1/clients", body, "date_too_early", "identity.birth_date")


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        (
            "/v1/units",
            {"name": "Unit", "village_code": "3301012001", "established_on": FUTURE},
            "established_on",
        ),
        ("/v1/units/{unit}/agents", {"trained_on": FUTURE}, "trained_on"),
        ("/v1/agents/{agent}/deactivate", {"on": FUTURE, "reason_code": "moved"}, "on"),
        (
            "/v1/units/{unit}/activities",
            {"agent_id": "{agent}", "kind": "sosialisasi", "held_on": FUTURE, "people_reached": 3},
            "held_on",
        ),
        ("/v1/clients/{client}/consents", {"scopes": ["programme"], "given_on": FUTURE}, "given_on"),
        ("/v1/clients/{client}/consents/{consent}/withdraw", {"on": FUTURE}, "on"),
        ("/v1/clients/{client}/erase", {"on": FUTURE}, "on"),
    ],
)
async def test_a_date_after_the_regency_s_clock_is_refused(
    scene: Scene, url: str, body: dict[str, Any], field: str
) -> None:
    ids = {
        "unit": scene.unit_id,
        "agent": scene.agent_id,
        "client": scene.client_id,
        "consent": scene.consent_id,
    }
    filled = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    await refused_unchanged(scene, "POST", url.format(**ids), filled, "date_in_future", field)


async def test_a_registration_or_screening_after_the_regency_s_clock_is_refused(scene: Scene) -> None:
    o = scene.o
    before = await rows(o)
    late = o.http.post(
        "/v1/clients",
        headers=o.facilitator,
        json={
            "unit_id": scene.unit_id,
            "registered_on": FUTURE,
            "came_through": "self",
            "identity": {
                "full_name": "Bambang",
                "nik": "3301011505900003",
                "birth_date": "1990-05-15",
                "sex": "m",
            },
        },
    )
    await refused(o, late, 422, "date_in_future", "registered_on")
    screening = o.http.post(
        f"/v1/clients/{scene.client_id}/screenings",
        headers=scene.agent,
        json=screening_body(scene.agent_id, screened_on=FUTURE),
    )
    await refused(o, screening, 422, "date_in_future", "screened_on")
    assert await rows(o) == before


# --- dates before what they depend on ------------------------------------------------------------


async def test_a_screening_before_the_registration_is_refused(scene: Scene) -> None:
    # a consent from the day before the registration would be refused too, so no consent is the reason
    url = f"/v1/clients/{scene.client_id}/screenings"
    await refused_unchanged(
        scene,
        "POST",
        url,
        screening_body(scene.agent_id, screened_on="2026-01-31"),
        "date_before_registration",
        "screened_on",
    )


async def test_a_consent_given_before_the_registration_is_refused(scene: Scene) -> None:
    url = f"/v1/clients/{scene.client_id}/consents"
    body = {"scopes": ["programme"], "given_on": "2026-01-31"}
    await refused_unchanged(scene, "POST", url, body, "date_before_registration", "given_on")


async def test_an_erasure_before_the_registration_is_refused(scene: Scene) -> None:
    url = f"/v1/clients/{scene.client_id}/erase"
    await refused_unchanged(scene, "POST", url, {"on": "2026-01-31"}, "date_before_registration", "on")


async def test_nothing_in_a_unit_is_dated_before_the_unit_was_established(scene: Scene) -> None:
    # the unit was established on 2026-01-10; its agent was trained on 2026-01-05, which is fine
    registration = {
        "unit_id": scene.unit_id,
        "registered_on": "2026-01-09",
        "came_through": "self",
        "identity": {
            "full_name": "Bambang",
            "nik": "3301011505900003",
            "birth_date": "1990-05-15",
            "sex": "m",
        },
    }
    await refused_unchanged(scene, "POST", "/v1/clients", registration, "date_before_unit", "registered_on")
    outreach_held = {
        "agent_id": scene.agent_id,
        "kind": "pemetaan",
        "held_on": "2026-01-09",
        "people_reached": 4,
    }
    url = f"/v1/units/{scene.unit_id}/activities"
    await refused_unchanged(scene, "POST", url, outreach_held, "date_before_unit", "held_on")
    leaving = {"on": "2026-01-09", "reason_code": "moved"}
    url = f"/v1/agents/{scene.agent_id}/deactivate"
    await refused_unchanged(scene, "POST", url, leaving, "date_before_unit", "on")


async def test_an_agent_s_work_is_not_dated_before_the_agent_was_trained(scene: Scene) -> None:
    o = scene.o
    late_agent = await o.http.post(
        f"/v1/units/{scene.unit_id}/agents", headers=o.facilitator, json={"trained_on": "2026-03-01"}
    )
    assert late_agent.status_code == 201, late_agent.text
    agent_id = late_agent.json()["agent_id"]
    body = {"agent_id": agent_id, "kind": "penjangkauan", "held_on": "2026-02-15", "people_reached": 4}
    url = f"/v1/units/{scene.unit_id}/activities"
    await refused_unchanged(scene, "POST", url, body, "date_before_training", "held_on")
    url = f"/v1/clients/{scene.client_id}/screenings"
    screening = screening_body(agent_id, screened_on="2026-02-15")
    await refused_unchanged(scene, "POST", url, screening, "date_before_training", "screened_on")


# --- a screening of nothing ----------------------------------------------------------------------


async def test_a_screening_of_no_substance_is_refused(scene: Scene) -> None:
    url = f"/v1/clients/{scene.client_id}/screenings"
    await refused_unchanged(
        scene, "POST", url, screening_body(scene.agent_id, substances=[]), "no_substances", "substances"
    )


async def test_a_screening_of_substances_never_used_is_a_screening_with_no_result(scene: Scene) -> None:
    # asked about substances the client never used: the ClientScreened lists none, as the contract says
    never = [{"substance": "cannabis", "ever_used": False}]
    r = await scene.o.http.post(
        f"/v1/clients/{scene.client_id}/screenings",
        headers=scene.agent,
        json=screening_body(scene.agent_id, substances=never),
    )
    assert r.status_code == 201, r.text
    assert (r.json()["substances"], r.json()["recommendation"]) == ([], "advice")
    assert (await outbox_types(scene.o))[-1] == "ClientScreened"


# --- text nobody can see --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "code", "field"),
    [
        ({"full_name": "Budi\x00Santoso"}, "control_character", "identity.full_name"),
        ({"full_name": "Budi\nSantoso"}, "control_character", "identity.full_name"),
        ({"full_name": "\u200b\u200b\u200b"}, "control_character", "identity.full_name"),  # zero-width spaces
        ({"full_name": "\u200d\u200c"}, "no_letter", "identity.full_name"),  # joiners alone
        ({"full_name": "\u202e"}, "control_character", "identity.full_name"),  # right-to-left override
        ({"full_name": "Budi \u202eotnasoS"}, "control_character", "identity.full_name"),
        ({"full_name": "\u2066Budi\u2069"}, "control_character", "identity.full_name"),  # isolates
        ({"full_name": "   "}, "blank", "identity.full_name"),
        ({"full_name": "\u3164\u3164"}, "no_letter", "identity.full_name"),  # Hangul fillers draw nothing
        ({"address": "   "}, "blank", "identity.address"),
        ({"full_name": "12345 -."}, "no_letter", "identity.full_name"),
        ({"address": "Jl. Merdeka\x001"}, "control_character", "identity.address"),
        ({"address": "Jl. Merdeka\x1b[2J"}, "control_character", "identity.address"),
    ],
)
async def test_text_with_control_or_invisible_characters_is_refused(
    outreach: Outreach, identity: dict[str, str], code: str, field: str
) -> None:
    unit_id = await outreach.unit()
    body = await refused(
        outreach, outreach.client(unit_id, outreach.facilitator, **identity), 422, code, field
    )
    assert "Budi" not in body["message"] and "Merdeka" not in body["message"]
    assert await count(outreach, Client) == 0


async def test_a_unit_name_of_invisible_characters_is_refused(outreach: Outreach) -> None:
    request = outreach.http.post(
        "/v1/units",
        headers=outreach.facilitator,
        json={"name": "\u200b\u202e", "village_code": "3301012001", "established_on": "2026-01-10"},
    )
    await refused(outreach, request, 422, "control_character", "name")
    assert await count(outreach, Unit) == 0


async def test_names_are_stored_in_one_unicode_form(outreach: Outreach) -> None:
    unit_id = await outreach.unit()
    decomposed = "Rene\u0301 Sa\u0308puti"  # e + combining acute, a + combining diaeresis
    r = await outreach.client(unit_id, outreach.facilitator, full_name=f"  {decomposed} ")
    assert r.status_code == 201, r.text
    read = await outreach.http.get(
        f"/v1/clients/{r.json()['client_id']}", params={"purpose": "home visit"}, headers=outreach.facilitator
    )
    assert read.json()["full_name"] == "Ren\u00e9 S\u00e4puti"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (
            b"name=Unit+IBM&village_code=3301012001&established_on=2026-01-10",
            "application/x-www-form-urlencoded",
        ),
        (b'{"name": "Unit IBM", "village_code": "3301012001", "established_on": "2026-01-10"}', "text/plain"),
    ],
)
async def test_a_body_not_sent_as_json_is_400_saying_so_and_changes_nothing(
    outreach: Outreach, content: bytes, content_type: str
) -> None:
    http = outreach.http
    headers = {**outreach.facilitator, "Content-Type": content_type}
    answer = await http.post("/v1/units", content=content, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "code": "not_json",
        "message": "the body must be JSON, sent with Content-Type: application/json",
        "field": "body",
    }
    anonymous = await http.post("/v1/units", content=content, headers={"Content-Type": content_type})
    assert anonymous.status_code == 401
    assert await count(outreach, Unit) == 0
