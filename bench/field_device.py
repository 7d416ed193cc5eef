"""The benchmarks' field device: the requests an outreach worker's phone sends to a regency's
public API (establish a unit, train an agent, register, consent, screen, enrol, record sessions),
each with its own ``Idempotency-Key``, and the ids of the events each one committed (the
``Pulih-Events`` answer header), so a benchmark can follow them to a consumer's store.

The client is httpx or the load generator's lighter :class:`LightHttp` (``bench/light_http.py``),
which can also send requests encoded before they are due (:meth:`FieldDevice.prepared`).

Every client is made up: a name, and a NIK that agrees with the birth date and sex (16 digits, the
regency's first district, a serial that never repeats within a run).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
from light_http import LightHttp, Prepared, prepare
from light_http import Response as LightResponse
from running_regency import RunningRegency

SUBSTANCES = [
    {"substance": "cannabis", "ever_used": True, "q2": 4, "q3": 3, "q4": 4, "q5": 0, "q6": 3, "q7": 0}
]
"""WHO ASSIST v3 answers scoring moderate risk (cannabis 14): the client may join the programme."""
SYNC_PATH = "/v1/sync"
BASELINE = {f"q{i}": 2 if i in (3, 4, 26) else 3 for i in range(1, 27)}
"""A baseline WHOQOL-BREF."""


Response = httpx.Response | LightResponse
"""An answer from either client."""


class Refused(RuntimeError):
    """The API answered a request with an unexpected status."""


@dataclass(frozen=True)
class Answer:
    """One request's answer: its body, the events it committed, and when it was sent and answered
    (epoch seconds)."""

    body: dict[str, Any]
    events: list[uuid.UUID]
    sent: float
    answered: float


def events_of(response: Response) -> list[uuid.UUID]:
    """The ids in ``Pulih-Events``."""
    return [uuid.UUID(e) for e in response.headers.get("pulih-events", "").split(",") if e.strip()]


def identity(serial: int) -> dict[str, str]:
    """A made-up client, unique for each ``serial`` (some 100 million of them)."""
    day, month, year = 1 + serial % 28, 1 + serial // 28 % 12, 1970 + serial // 336 % 30
    number = 1 + serial // 10_080 % 9_999
    return {
        "full_name": f"Klien Bench {serial}",
        "nik": f"330101{day:02d}{month:02d}{year % 100:02d}{number:04d}",
        "birth_date": f"{year}-{month:02d}-{day:02d}",
        "sex": "m",
    }


class FieldDevice:
    """Requests to one regency, as a facilitator (who may act for every unit of the regency)."""

    def __init__(self, regency: RunningRegency, http: httpx.AsyncClient | LightHttp) -> None:
        self.regency = regency
        self.http = http
        self.headers = {"Authorization": f"Bearer {regency.token()}"}
        self.today = regency.today()

    async def send(
        self,
        service: str,
        path: str,
        body: dict[str, Any],
        *,
        after: list[uuid.UUID] | None = None,
        sent: float | None = None,
    ) -> Answer:
        """POST ``body``; the answer (:class:`Refused` unless 200 or 201). ``after`` names events
        the command waits for (``Pulih-After``); ``sent`` is when the request was due (default:
        now), the start of its latency."""
        due = time.time() if sent is None else sent
        url = f"{self.regency.url(service)}{path}"
        response = await self.http.post(url, json=body, headers=self.request_headers(after))
        return self.answer(response, due, f"{service} POST {path}")

    def request_headers(self, after: list[uuid.UUID] | None = None) -> dict[str, str]:
        """A new request's headers: the token, a new ``Idempotency-Key``, and ``Pulih-After``
        naming ``after``."""
        headers = {**self.headers, "Idempotency-Key": str(uuid.uuid4())}
        if after:
            headers["Pulih-After"] = ",".join(str(e) for e in after)
        return headers

    def answer(self, response: Response, due: float, what: str) -> Answer:
        """``response`` as an :class:`Answer` (:class:`Refused` unless 200 or 201)."""
        answered = time.time()
        if response.status_code not in (200, 201):
            raise Refused(f"{what}: {response.status_code} {response.text[:500]}")
        return Answer(response.json(), events_of(response), due, answered)

    def prepared(self, service: str, path: str, body: dict[str, Any]) -> Prepared:
        """``POST path`` on ``service`` with ``body``, encoded before it is due (as a phone holds
        a request it could not send yet) with its own ``Idempotency-Key``; :meth:`send_prepared`
        sends it (with a :class:`LightHttp` client)."""
        content = json.dumps(body, separators=(",", ":")).encode()
        headers = {**self.request_headers(), "Content-Type": "application/json"}
        return prepare("POST", f"{self.regency.url(service)}{path}", content, headers)

    async def send_prepared(self, request: Prepared, *, sent: float) -> Answer:
        """Send ``request`` (made by :meth:`prepared`), due at ``sent``; its answer."""
        if not isinstance(self.http, LightHttp):
            raise TypeError("prepared requests need a LightHttp client")
        return self.answer(await self.http.send(request), sent, "prepared POST")

    async def establish_unit(self) -> tuple[str, str, list[uuid.UUID]]:
        """A new unit and an agent trained for it: (unit id, agent id, their events)."""
        established = self.today - timedelta(days=60)
        unit = await self.send(
            "outreach",
            "/v1/units",
            {"name": f"Bench {uuid.uuid4().hex[:6]}", "village_code": "3301012001",
             "established_on": str(established)},
        )  # fmt: skip
        unit_id = str(unit.body["unit_id"])
        agent = await self.send("outreach", f"/v1/units/{unit_id}/agents", {"trained_on": str(established)})
        return unit_id, str(agent.body["agent_id"]), unit.events + agent.events

    def registration(self, unit_id: str, serial: int) -> dict[str, Any]:
        """The body that registers client ``serial`` with ``unit_id``."""
        return {
            "unit_id": unit_id,
            "registered_on": str(self.today),
            "came_through": "outreach",
            "identity": identity(serial),
        }

    async def register(self, unit_id: str, serial: int, *, sent: float | None = None) -> Answer:
        """Register a new client (``ClientRegistered``)."""
        return await self.send("outreach", "/v1/clients", self.registration(unit_id, serial), sent=sent)

    async def consent(self, client_id: str) -> Answer:
        """The client's consent to the programme (``ConsentRecorded``)."""
        body = {"scopes": ["programme", "referral"], "given_on": str(self.today)}
        return await self.send("outreach", f"/v1/clients/{client_id}/consents", body)

    async def screen(self, client_id: str, agent_id: str) -> Answer:
        """An ASSIST screening of moderate risk (``ClientScreened``)."""
        body = {
            "agent_id": agent_id,
            "screened_on": str(self.today),
            "injecting": "never",
            "substances": SUBSTANCES,
        }
        return await self.send("outreach", f"/v1/clients/{client_id}/screenings", body)

    async def enrol(self, client_id: str, agent_id: str, after: list[uuid.UUID]) -> Answer:
        """Enrol the client in rehab's programme, once rehab has heard of ``after``."""
        body = {
            "client_id": client_id,
            "agent_id": agent_id,
            "enrolled_on": str(self.today),
            "baseline": BASELINE,
        }
        return await self.send("rehab", "/v1/enrolments", body, after=after)

    async def enrolled_clients(self, count: int, first_serial: int) -> tuple[str, str, list[str]]:
        """A new unit, its agent, and ``count`` of its clients enrolled in rehab's programme
        (their enrolment ids), eight at a time."""
        unit_id, agent_id, _ = await self.establish_unit()

        async def one(serial: int) -> str:
            registered = await self.register(unit_id, serial)
            client_id = str(registered.body["client_id"])
            known = registered.events + (await self.consent(client_id)).events
            known += (await self.screen(client_id, agent_id)).events
            for _ in range(600):  # Pulih-After waits a while; rehab may still not know the client
                try:
                    return str((await self.enrol(client_id, agent_id, after=known)).body["enrollment_id"])
                except Refused as exc:
                    if " 404 " not in str(exc) and " 409 " not in str(exc):
                        raise
                    await asyncio.sleep(0.1)
            raise Refused(f"rehab never took client {client_id} for enrolment")

        enrolments: list[str] = []
        for start in range(0, count, 8):
            serials = range(first_serial + start, first_serial + min(count, start + 8))
            enrolments += await asyncio.gather(*(one(serial) for serial in serials))
        return unit_id, agent_id, enrolments

    def sync_body(self, unit_id: str, agent_id: str, enrolments: list[str], items: int) -> dict[str, Any]:
        """A day's sessions for ``unit_id`` as ``POST /v1/sync`` takes them: ``items`` sessions,
        round the enrolments, each with its own idempotency key."""
        return {
            "unit_id": unit_id,
            "items": [
                {
                    "type": "session",
                    "key": str(uuid.uuid4()),
                    "enrollment_id": enrolments[i % len(enrolments)],
                    "session": self.session(agent_id),
                }
                for i in range(items)
            ],
        }

    async def sync(self, body: dict[str, Any], *, sent: float | None = None) -> Answer:
        """``POST /v1/sync`` on rehab (:class:`Refused` unless it applied every item); the answer's
        events are those of its items."""
        return synced(await self.send("rehab", SYNC_PATH, body, sent=sent))

    async def has_sync(self) -> bool:
        """Whether rehab has ``POST /v1/sync`` (its OpenAPI document says so)."""
        response = await self.http.get(f"{self.regency.url('rehab')}/openapi.json")
        return SYNC_PATH in response.json().get("paths", {})

    def session(self, agent_id: str, held_on: date | None = None) -> dict[str, Any]:
        """A counselling session the client attended (``SessionHeld``), with a device-made id."""
        return {
            "session_id": str(uuid.uuid4()),
            "agent_id": agent_id,
            "held_on": str(held_on or self.today),
            "kind": "konseling",
            "attended": True,
            "minutes": 60,
        }


def synced(answer: Answer) -> Answer:
    """A ``/v1/sync`` answer with the events of its items (:class:`Refused` unless it applied
    every item)."""
    items = answer.body.get("items", [])
    refused = [item for item in items if item.get("outcome") != "applied"]
    if refused:
        raise Refused(f"/v1/sync did not apply {len(refused)} items, e.g. {refused[0]}")
    events = [uuid.UUID(e) for item in items for e in item.get("events", [])]
    if not events:
        raise Refused("/v1/sync applied its items without events: nothing to follow")
    return Answer(answer.body, events, answer.sent, answer.answered)
