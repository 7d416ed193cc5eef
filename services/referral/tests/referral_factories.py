"""Factories for referral's API tests: clinics, clients known from outreach's events, referrals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from sqlalchemy import func, select

from pulih.contracts import CloudEvent, Event, parse_event
from pulih.contracts.events.outreach import (
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
)
from pulih.kit.auth import Role
from pulih.kit.outbox import outbox_table
from pulih.kit.testing import REGENCY, apply_events, auth
from pulih.referral.consumers import FROM_OUTREACH

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

    def today_is(self, day: date) -> None:
        """Set the regency's (manual) clock: answers and cancellations may not lie after it."""
        self.runtime.clock.set(day)

    async def feed(self, *events: Event | CloudEvent[Any]) -> None:
        """Apply outreach events as referral's consumer would, with its own handler table."""
        await apply_events(self.runtime, FROM_OUTREACH, *events)

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

    async def outbox_envelopes(self) -> list[CloudEvent[Any]]:
        """Every event in the outbox with its envelope (correlation, causation), in order."""
        async with self.runtime.database.sessions() as s:
            payloads = (await s.scalars(select(outbox_table.c.payload).order_by(outbox_table.c.seq))).all()
        return [parse_event(payload) for payload in payloads]

    async def outbox_names(self) -> list[str]:
        return [type(data).__name__ for _, data in await self.outbox()]

    async def outbox_size(self) -> int:
        """How many events wait in the outbox (a refused command adds none)."""
        async with self.runtime.database.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(outbox_table)) or 0)
