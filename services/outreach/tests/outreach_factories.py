"""Factories for outreach's API tests: units, agents, clients, consent, screenings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from pulih.kit.auth import Role
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
