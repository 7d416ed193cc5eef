"""Factories for outreach's API tests: units, agents, clients, consent, screenings; and the checks
every API test makes of a refusal and of the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

import httpx
from sqlalchemy import func, select

from pulih.kit.auth import Role
from pulih.kit.outbox import outbox_table
from pulih.kit.testing import auth


@dataclass
class Outreach:
    """An outreach API client with the little factories the tests share."""

    http: httpx.AsyncClient
    app: Any

    @property
    def facilitator(self) -> dict[str, str]:
        return auth(Role.FACILITATOR)

    async def unit(self) -> str:
        r = await self.http.post(
            "/v1/units",
            headers=self.facilitator,
            json={
                "name": "Unit IBM Tritih Kulon",
                "village_code": "3301012001",
                "established_on": "2026-01-10",
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["unit_id"])

    async def agent(self, unit_id: str) -> str:
        r = await self.http.post(
            f"/v1/units/{unit_id}/agents",
            headers=self.facilitator,
            json={"trained_on": "2026-01-05"},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["agent_id"])

    def agent_auth(self, unit_id: str, agent_id: str) -> dict[str, str]:
        return auth(Role.AGENT, unit_id=uuid.UUID(unit_id), sub=agent_id)

    async def client(self, unit_id: str, headers: dict[str, str], **identity: Any) -> httpx.Response:
        body = {
            "unit_id": unit_id,
            "registered_on": "2026-02-01",
            "came_through": "outreach",
            "identity": {
                "full_name": "Budi Santoso",
                "nik": "3301011505900001",
                "birth_date": "1990-05-15",
                "sex": "m",
                "phone": "0812-3456-7890",
                "address": "Jl. Merdeka 1, Cilacap",
                **identity,
            },
        }
        return await self.http.post("/v1/clients", headers=headers, json=body)

    async def consent(self, client_id: str, headers: dict[str, str], scopes: list[str] | None = None) -> str:
        r = await self.http.post(
            f"/v1/clients/{client_id}/consents",
            headers=headers,
            json={"scopes": scopes or ["programme"], "given_on": "2026-02-01"},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["consent_id"])


def screening_body(agent_id: str, **overrides: Any) -> dict[str, Any]:
    """A moderate-risk screening: methamphetamine (sabu) weekly, score 24."""
    body: dict[str, Any] = {
        "agent_id": agent_id,
        "screened_on": "2026-02-02",
        "injecting": "never",
        "substances": [
            {
                "substance": "amphetamine_type_stimulants",
                "ever_used": True,
                "q2": 4,
                "q3": 4,
                "q4": 5,
                "q5": 5,
                "q6": 3,
                "q7": 3,
            }
        ],
    }
    body.update(overrides)
    return body


async def outbox_types(o: Outreach) -> list[str]:
    async with o.app.state.runtime.database.sessions() as s:
        rows = (await s.execute(select(outbox_table.c.headers).order_by(outbox_table.c.seq))).all()
    return [r.headers["Pulih-Type"].split(".")[2] for r in rows]


async def count(o: Outreach, model: Any) -> int:
    async with o.app.state.runtime.database.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def refused(
    o: Outreach,
    request: Awaitable[httpx.Response],
    status: int,
    code: str,
    field: str | EllipsisType | None = ...,
) -> dict[str, Any]:
    """Await ``request`` (not yet sent) and check it is refused with ``status`` and ``code``
    (and ``field``, unless left out) in the error shape, and that nothing reached the outbox
    because of it. Returns the error body."""
    before = await outbox_types(o)
    r = await request
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert {"code", "message", "field"} <= set(body) <= {"code", "message", "field", "errors"}, body
    assert body["code"] == code, body
    if field is not ...:
        assert body["field"] == field, body
    assert await outbox_types(o) == before
    return body
