"""Factories for rehab's tests: outreach's and referral's events applied through rehab's own
handlers, enrolments and sessions through the API, and what reached the outbox."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from pulih.contracts import CloudEvent, Event
from pulih.contracts.events.outreach import (
    AgentRegistered,
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
)
from pulih.contracts.events.referral import ReferralClosed, ReferredToClinic
from pulih.kit.auth import Role
from pulih.kit.consumers import EventHandler
from pulih.kit.outbox import outbox_table
from pulih.kit.testing import apply_events, auth
from pulih.rehab import consumers
from pulih.rehab.deps import RehabDeps

MONDAY = date(2026, 3, 2)


def middling_whoqol(**items: int | None) -> dict[str, int | None]:
    """A WHOQOL-BREF with every item answered 3 (50 in every domain), changed by ``items``."""
    return {f"q{i}": 3 for i in range(1, 27)} | items


@dataclass
class Client:
    client_id: str
    unit_id: str
    agent_id: str

    @property
    def agent(self) -> dict[str, str]:
        return auth(Role.AGENT, unit_id=uuid.UUID(self.unit_id), sub=self.agent_id)


@dataclass
class Rehab:
    """Rehab's API and store, with the little factories the tests share."""

    http: httpx.AsyncClient
    app: Any
    _handlers: dict[type[Event], EventHandler] = field(default_factory=dict)

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    @property
    def facilitator(self) -> dict[str, str]:
        return auth(Role.FACILITATOR)

    async def apply(self, data: Event) -> CloudEvent[Event]:
        """Apply an event through the handler rehab's consumer would run, in its unit of work."""
        if not self._handlers:
            programme = self.runtime.deps_as(RehabDeps).programme
            self._handlers = {**consumers.OUTREACH_HANDLERS, **consumers.referral_handlers(programme)}
        [event] = await apply_events(self.runtime, self._handlers, data)
        return event

    async def screened_client(
        self,
        *,
        recommendation: str = "ibm_programme",
        scopes: tuple[str, ...] = ("programme", "referral"),
        screened: bool = True,
        unit_id: uuid.UUID | None = None,
    ) -> Client:
        """A client registered, consented and screened in outreach, as rehab hears of it."""
        unit, agent, client = unit_id or uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await self.apply(AgentRegistered(agent_id=agent, unit_id=unit, trained_on=date(2026, 1, 5)))
        await self.apply(
            ClientRegistered.model_validate(
                {
                    "client_id": client,
                    "unit_id": unit,
                    "registered_on": "2026-02-20",
                    "sex": "m",
                    "age_band": "25_34",
                    "came_through": "outreach",
                }
            )
        )
        if scopes:
            await self.apply(
                ConsentRecorded.model_validate(
                    {
                        "consent_id": uuid.uuid4(),
                        "client_id": client,
                        "scopes": scopes,
                        "given_on": "2026-02-20",
                    }
                )
            )
        if screened:
            await self.apply(
                ClientScreened.model_validate(
                    {
                        "screening_id": uuid.uuid4(),
                        "client_id": client,
                        "unit_id": unit,
                        "agent_id": agent,
                        "screened_on": "2026-02-23",
                        "instrument": "assist_v3",
                        "substances": [{"substance": "cannabis", "score": 12, "risk": "moderate"}],
                        "injected_last_3_months": False,
                        "overall_risk": "high" if recommendation == "referral" else "moderate",
                        "recommendation": recommendation,
                    }
                )
            )
        return Client(str(client), str(unit), str(agent))

    async def enrol(self, c: Client, on: date = MONDAY, **extra: Any) -> httpx.Response:
        body = {"client_id": c.client_id, "agent_id": c.agent_id, "enrolled_on": on.isoformat(), **extra}
        return await self.http.post("/v1/enrolments", headers=c.agent, json=body)

    async def enrolled(self, c: Client, on: date = MONDAY) -> str:
        r = await self.enrol(c, on, baseline=middling_whoqol())
        assert r.status_code == 201, r.text
        return str(r.json()["enrollment_id"])

    async def session(
        self, c: Client, enrollment_id: str, held_on: date, kind: str = "konseling", attended: bool = True
    ) -> httpx.Response:
        return await self.http.post(
            f"/v1/enrolments/{enrollment_id}/sessions",
            headers=c.agent,
            json={
                "agent_id": c.agent_id,
                "held_on": held_on.isoformat(),
                "kind": kind,
                "attended": attended,
                "minutes": 60,
            },
        )

    async def to(self, day: date) -> None:
        """Move the clock to ``day`` and let the scheduler apply the time rules."""
        self.runtime.clock.set(day)
        await self.runtime.jobs["advance-enrolments"].run_once(self.runtime)

    async def enrolment(self, enrollment_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/v1/enrolments/{enrollment_id}", headers=self.facilitator)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def envelopes(self) -> list[dict[str, Any]]:
        """Every event in the outbox, in order, envelope and all."""
        async with self.runtime.database.sessions() as s:
            rows = (await s.execute(select(outbox_table.c.payload).order_by(outbox_table.c.seq))).all()
        return [json.loads(r.payload) for r in rows]

    async def outbox(self) -> list[tuple[str, dict[str, Any]]]:
        """Every event in the outbox, in order, as (event name, data)."""
        return [(e["type"].split(".")[2], e["data"]) for e in await self.envelopes()]

    async def outbox_names(self) -> list[str]:
        return [name for name, _ in await self.outbox()]

    async def refer(self, c: Client, on: date) -> str:
        referral_id = uuid.uuid4()
        await self.apply(
            ReferredToClinic.model_validate(
                {
                    "referral_id": referral_id,
                    "client_id": c.client_id,
                    "unit_id": c.unit_id,
                    "clinic_id": "klinik-pratama-cilacap",
                    "service": "rawat_jalan",
                    "reason": "no_progress",
                    "urgency": "routine",
                    "referred_on": on.isoformat(),
                    "respond_by": (on + timedelta(days=3)).isoformat(),
                    "consent_id": uuid.uuid4(),
                }
            )
        )
        return str(referral_id)

    async def close_referral(
        self, referral_id: str, on: date, outcome: str, back_referral: bool
    ) -> CloudEvent[Event]:
        return await self.apply(
            ReferralClosed.model_validate(
                {
                    "referral_id": referral_id,
                    "clinic_id": "klinik-pratama-cilacap",
                    "on": on.isoformat(),
                    "outcome": outcome,
                    "back_referral": back_referral,
                }
            )
        )
