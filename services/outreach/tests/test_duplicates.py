"""A NIK already in the programme is no oracle: registering it answers exactly as a new one (201,
the same body), and the registration is flagged as a possible duplicate that a facilitator
lists and resolves (``same_person`` erases the newer registration's identity)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
from outreach_factories import Outreach, count, outbox_types, refused

from pulih.kit.auth import Role
from pulih.kit.testing import auth, make_settings
from pulih.outreach.app import build
from pulih.outreach.domain.duplicates import Resolution
from pulih.outreach.store import Client, PossibleDuplicate


def shape(response: httpx.Response) -> tuple[int, list[str], dict[str, Any]]:
    """What a caller can tell a registration by: status, header names, body without the new id."""
    body = dict(response.json())
    body.pop("client_id")
    return response.status_code, sorted(response.headers.keys()), body


async def two_registrations(o: Outreach) -> tuple[str, str, str, str]:
    """Budi registered by a facilitator in unit A, then again by an agent of unit B, who cannot
    know: (unit A, unit B, Budi's first client id, the second)."""
    unit_a, unit_b = await o.unit(), await o.unit()
    first = await o.client(unit_a, o.facilitator)
    agent_b = await o.agent(unit_b)
    again = await o.client(unit_b, o.agent_auth(unit_b, agent_b))
    assert first.status_code == again.status_code == 201, again.text
    return unit_a, unit_b, first.json()["client_id"], again.json()["client_id"]


async def duplicates(o: Outreach, status: str | None = None) -> list[dict[str, Any]]:
    r = await o.http.get("/v1/duplicates", headers=o.facilitator, params={"status": status} if status else {})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def read(o: Outreach, client_id: str) -> httpx.Response:
    return await o.http.get(
        f"/v1/clients/{client_id}", params={"purpose": "duplicate check"}, headers=o.facilitator
    )


async def test_a_nik_already_registered_is_answered_exactly_as_a_new_one(outreach: Outreach) -> None:
    unit_a, unit_b = await outreach.unit(), await outreach.unit()
    assert (await outreach.client(unit_a, outreach.facilitator)).status_code == 201
    agent_b = await outreach.agent(unit_b)
    agent = outreach.agent_auth(unit_b, agent_b)
    known = await outreach.client(unit_b, agent, full_name="Budi S.")
    new = await outreach.client(unit_b, agent, full_name="Bambang", nik="3301011505900003")
    assert shape(known) == shape(new)
    assert known.status_code == 201 and "nik" not in known.text
    assert await count(outreach, Client) == 3
    assert await outbox_types(outreach) == [
        "UnitEstablished",
        "UnitEstablished",
        "ClientRegistered",
        "AgentRegistered",
        "ClientRegistered",
        "ClientRegistered",
    ]


async def test_the_repeat_is_flagged_with_who_and_when_for_the_facilitator(outreach: Outreach) -> None:
    unit_a, unit_b, first, second = await two_registrations(outreach)
    [flag] = await duplicates(outreach)
    assert (flag["client_id"], flag["unit_id"], flag["existing_client_id"], flag["existing_unit_id"]) == (
        second,
        unit_b,
        first,
        unit_a,
    )
    assert flag["flagged_by_role"] == "agent" and flag["flagged_by"] != ""
    assert flag["flagged_at"] and flag["resolution"] is None
    assert await duplicates(outreach, "open") == [flag] and await duplicates(outreach, "resolved") == []
    # a third registration of the NIK is flagged against both earlier ones
    assert (await outreach.client(unit_a, outreach.facilitator)).status_code == 201
    assert len(await duplicates(outreach, "open")) == 3


async def test_only_facilitators_see_and_resolve_duplicates(outreach: Outreach) -> None:
    _, unit_b, _, _ = await two_registrations(outreach)
    [flag] = await duplicates(outreach)
    agent = outreach.agent_auth(unit_b, await outreach.agent(unit_b))
    await refused(outreach, outreach.http.get("/v1/duplicates", headers=agent), 403, "forbidden_role", None)
    for headers in (agent, auth(Role.ADMIN), auth(Role.NATIONAL)):
        attempt = outreach.http.post(
            f"/v1/duplicates/{flag['duplicate_id']}/resolve",
            headers=headers,
            json={"resolution": "same_person"},
        )
        await refused(outreach, attempt, 403, "forbidden_role", None)
    assert (await duplicates(outreach, "open")) == [flag]


async def test_same_person_erases_the_newer_registration_and_keeps_the_existing_one(
    outreach: Outreach,
) -> None:
    _, _, first, second = await two_registrations(outreach)
    [flag] = await duplicates(outreach)
    before = await outbox_types(outreach)
    r = await outreach.http.post(
        f"/v1/duplicates/{flag['duplicate_id']}/resolve",
        headers=outreach.facilitator,
        json={"resolution": "same_person"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["resolution"] == "same_person" and r.json()["resolved_by"] == "facilitator-test"
    assert await outbox_types(outreach) == [*before, "ClientErased"]
    assert (await read(outreach, second)).status_code == 410
    assert (await read(outreach, first)).json()["full_name"] == "Budi Santoso"
    assert await duplicates(outreach, "open") == []
    again = outreach.http.post(
        f"/v1/duplicates/{flag['duplicate_id']}/resolve",
        headers=outreach.facilitator,
        json={"resolution": "different_people"},
    )
    await refused(outreach, again, 409, "duplicate_resolved", None)
    # the erased registration no longer holds the NIK: a new registration is flagged against the first only
    assert (await outreach.client(flag["unit_id"], outreach.facilitator)).status_code == 201
    assert [d["existing_client_id"] for d in await duplicates(outreach, "open")] == [first]


async def test_different_people_keeps_both_registrations(outreach: Outreach) -> None:
    _, _, first, second = await two_registrations(outreach)
    [flag] = await duplicates(outreach)
    before = await outbox_types(outreach)
    r = await outreach.http.post(
        f"/v1/duplicates/{flag['duplicate_id']}/resolve",
        headers=outreach.facilitator,
        json={"resolution": "different_people"},
    )
    assert r.status_code == 200 and r.json()["resolution"] == "different_people"
    assert await outbox_types(outreach) == before
    assert (await read(outreach, first)).status_code == (await read(outreach, second)).status_code == 200
    assert await duplicates(outreach, "resolved") == [r.json()]


async def test_a_bad_or_unknown_resolution_is_refused_and_changes_nothing(outreach: Outreach) -> None:
    await two_registrations(outreach)
    [flag] = await duplicates(outreach)
    url = f"/v1/duplicates/{flag['duplicate_id']}/resolve"
    bad = outreach.http.post(url, headers=outreach.facilitator, json={"resolution": "merge"})
    await refused(outreach, bad, 422, "invalid", "resolution")
    unknown = outreach.http.post(
        f"/v1/duplicates/{uuid.uuid4()}/resolve",
        headers=outreach.facilitator,
        json={"resolution": "same_person"},
    )
    await refused(outreach, unknown, 404, "duplicate_not_found", "duplicate_id")
    assert await duplicates(outreach, "open") == [flag]
    assert await count(outreach, PossibleDuplicate) == 1


def test_the_readme_says_how_duplicates_are_resolved_with_the_routes_and_codes_outreach_has() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("## Duplicate registrations", 1)[1].split("\n## ", 1)[0]
    paths = set(build(make_settings(Path("/nonexistent"), nats_url="nats://127.0.0.1:1")).openapi()["paths"])
    routes = {
        r.replace("$DUPLICATE", "{duplicate_id}")
        for r in re.findall(r"\$OUTREACH(/v1/[a-zA-Z_/$]+)", section)
    }
    assert routes == {"/v1/duplicates", "/v1/duplicates/{duplicate_id}/resolve"} and routes <= paths
    for resolution in Resolution:
        assert f"`{resolution.value}`" in section
