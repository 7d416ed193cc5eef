"""Factories for referral's API tests: clinics, clients known from outreach's events, referrals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from sqlalchemy import select

from pulih.contracts import Event, new_event, parse_event, subject_for
from pulih.contracts.events.outreach import (
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
)
from pulih.kit.auth import Role
from pulih.kit.consumers import Delivery
from pulih.kit.outbox import outbox_table
from pulih.kit.testing import REGENCY, auth
from pulih.referral import consumers

CLINIC = "klinik-pratama-sehat"
OTHER_CLINIC = "rsud-cilacap"


@dataclass
class Client:
    client_id: uuid.UUID
    unit_id: uuid.UUID
    consent_id: uuid.UUID | None


@dataclass
class Referrals:
    """A referral API client with the little factories the tests share."""

    http: httpx.AsyncClient
    app: Any

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    @property
    def facilitator(self) -> dict[str, str]:
        return auth(Role.FACILITATOR)

    def agent(self, unit_id: uuid.UUID) -> dict[str, str]:
        return auth(Role.AGENT, unit_id=unit_id, sub=f"agent-of-{unit_id}")

    def clinic(self, clinic_id: str = CLINIC) -> dict[str, str]:
        return auth(Role.CLINIC, clinic_id=clinic_id, sub=f"staff-{clinic_id}")

    async def feed(self, *events: Event) -> None:
        """Apply outreach events as referral's consumer would."""
        for data in events:
            envelope = new_event(data, regency=REGENCY)
            delivery = Delivery(subject_for(envelope, REGENCY), 0, 1)
            async with self.runtime.database.transaction() as session:
                await consumers.outreach_handlers(self.runtime)[type(data)](session, envelope, delivery)

    async def add_clinic(
        self, clinic_id: str = CLINIC, services: tuple[str, ...] = ("rawat_jalan", "medis")
    ) -> dict[str, Any]:
        r = await self.http.post(
            "/v1/clinics",
            headers=self.facilitator,
            json={
                "clinic_id": clinic_id,
                "name": f"Klinik {clinic_id}",
                "kind": "klinik_pratama",
                "services": list(services),
                "regencies": [REGENCY],
            },
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def client(
        self,
        *,
        scopes: tuple[str, ...] | None = ("programme", "referral", "identity_to_clinic"),
        recommendation: str | None = "referral",
        unit_id: uuid.UUID | None = None,
        expires_on: date | None = None,
    ) -> Client:
        """A registered client, with consent (unless ``scopes`` is None) and a screening
        (unless ``recommendation`` is None)."""
        client_id, unit = uuid.uuid4(), unit_id or uuid.uuid4()
        await self.feed(
            ClientRegistered.model_validate(
                {
                    "client_id": client_id,
                    "unit_id": unit,
                    "registered_on": "2026-02-01",
                    "sex": "m",
                    "age_band": "25_34",
                    "came_through": "outreach",
                }
            )
        )
        consent_id = None
        if scopes is not None:
            consent_id = uuid.uuid4()
            await self.feed(
                ConsentRecorded.model_validate(
                    {
                        "consent_id": consent_id,
                        "client_id": client_id,
                        "scopes": list(scopes),
                        "given_on": "2026-02-01",
                        "expires_on": expires_on,
                    }
                )
            )
        if recommendation is not None:
            await self.feed(
                ClientScreened.model_validate(
                    {
                        "screening_id": uuid.uuid4(),
                        "client_id": client_id,
                        "unit_id": unit,
                        "agent_id": uuid.uuid4(),
                        "screened_on": "2026-02-02",
                        "instrument": "assist_v3",
                        "substances": [{"substance": "opioids", "score": 30, "risk": "high"}],
                        "injected_last_3_months": True,
                        "overall_risk": "high",
                        "recommendation": recommendation,
                    }
                )
            )
        return Client(client_id, unit, consent_id)

    async def refer(
        self, client: Client, headers: dict[str, str] | None = None, **body: Any
    ) -> httpx.Response:
        payload = {
            "client_id": str(client.client_id),
            "clinic_id": CLINIC,
            "service": "rawat_jalan",
            "reason": "injecting",
            "urgency": "routine",
            **body,
        }
        return await self.http.post(
            "/v1/referrals", headers=headers or self.agent(client.unit_id), json=payload
        )

    async def referral(self, client: Client, **body: Any) -> str:
        r = await self.refer(client, **body)
        assert r.status_code == 201, r.text
        return str(r.json()["referral_id"])

    async def answer(self, referral_id: str, clinic_id: str = CLINIC, **body: Any) -> httpx.Response:
        return await self.http.post(
            f"/v1/referrals/{referral_id}/answers", headers=self.clinic(clinic_id), json=body
        )

    async def get(self, referral_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/v1/referrals/{referral_id}", headers=self.facilitator)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def outbox(self) -> list[tuple[str, Any]]:
        """(subject, event data) of every event in the outbox, in order."""
        async with self.runtime.database.sessions() as s:
            rows = (
                await s.execute(
                    select(outbox_table.c.subject, outbox_table.c.payload).order_by(outbox_table.c.seq)
                )
            ).all()
        return [(row.subject, parse_event(row.payload).data) for row in rows]

    async def outbox_names(self) -> list[str]:
        return [type(data).__name__ for _, data in await self.outbox()]
