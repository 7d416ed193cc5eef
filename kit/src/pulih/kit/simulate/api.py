"""One regency's public APIs as the simulator uses them: a facilitator establishes units
and registers agents and clinics, agents register, screen, enrol and refer clients and hold
sessions, a clinic answers over HTTP, an admin moves each service's manual clock, and the
regency's reporting says what it has counted and published. Nothing here reaches past the APIs a
field app, a clinic or an administrator has.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import httpx

from pulih.kit.auth import Role, issue_token

RETRIES_NOT_YET_KNOWN = 10
"""How often a command is sent again when the service has not yet heard of an event it names
(``409 not_yet_known`` after its own five-second wait)."""


class Place(Protocol):
    """Where a regency's services answer (a federation's :class:`~pulih.kit.federation.layout.RegencyPlace`,
    or a ``pulih up`` regency's :class:`ServicePlace`)."""

    @property
    def code(self) -> str: ...

    @property
    def ports(self) -> dict[str, int]: ...

    @property
    def data_dir(self) -> Path: ...

    def url(self, service: str) -> str:
        """A service's base URL."""
        ...


@dataclass(frozen=True)
class ServicePlace:
    """Where the services of a ``pulih up`` regency answer: ``base`` and each service's port."""

    code: str
    ports: dict[str, int]
    data_dir: Path
    base: str = "http://127.0.0.1"

    def url(self, service: str) -> str:
        """A service's base URL."""
        return f"{self.base}:{self.ports[service]}"


class Pace:
    """An offered load: at most ``per_second`` commands a second (the field's: registrations,
    sessions, referrals…, not the clock moves), across every regency (``None``: as fast as the
    services answer)."""

    def __init__(self, per_second: float | None = None) -> None:
        self.interval = 1 / per_second if per_second else 0.0
        self.next = 0.0
        self.commands = 0
        """The commands sent so far."""

    async def wait(self) -> None:
        """Wait for the next command's slot."""
        self.commands += 1
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self.next)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class SimulationError(Exception):
    """The simulation cannot go on; the message says why and what to do."""


class RegencyApi:
    """The APIs of one running regency (a ``pulih up`` one, or one of a local federation), with
    tokens signed by its ``PULIH_JWT_SECRET``; ``running`` says how it was started, for the
    messages that ask to start it again."""

    def __init__(
        self,
        place: Place,
        secret: str,
        http: httpx.AsyncClient,
        running: str = "the federation",
        pace: Pace | None = None,
    ) -> None:
        self.place = place
        self.pace = pace or Pace()
        self.code = place.code
        self.secret = secret
        self.http = http
        self.running = running
        self.facilitator = issue_token(secret, sub=f"fasilitator-{self.code}-sim", role=Role.FACILITATOR,
                                       regency=self.code)  # fmt: skip
        self.admin = issue_token(secret, sub=f"admin-{self.code}-sim", role=Role.ADMIN, regency=self.code)

    def agent_token(self, agent_id: str, unit_id: str) -> str:
        """A token of agent ``agent_id`` of unit ``unit_id``."""
        return issue_token(self.secret, sub=agent_id, role=Role.AGENT, regency=self.code, unit_id=unit_id)

    def clinic_token(self, clinic_id: str) -> str:
        """A token of clinic ``clinic_id`` (its answers over HTTP)."""
        return issue_token(
            self.secret, sub=clinic_id, role=Role.CLINIC, regency=self.code, clinic_id=clinic_id
        )

    async def request(
        self,
        method: str,
        service: str,
        path: str,
        token: str,
        body: dict[str, Any] | None = None,
        *,
        ok: tuple[int, ...] = (200, 201),
        after: list[str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request; :class:`SimulationError` (naming the service, the path and the answer) unless
        its status is in ``ok``. A command names the events it depends on in ``after``
        (``Pulih-After``) and is sent again while the service has not heard of them."""
        url = f"{self.place.url(service)}{path}"
        headers = {"Authorization": f"Bearer {token}"}
        if method != "GET":
            headers["Idempotency-Key"] = str(uuid.uuid4())
            if not path.startswith("/v1/admin/"):  # the offered load is the field's, not the clock's
                await self.pace.wait()
        if after:
            headers["Pulih-After"] = ",".join(after)
        for _ in range(RETRIES_NOT_YET_KNOWN):
            try:
                answer = await self.http.request(method, url, json=body, headers=headers, params=params)
            except httpx.TransportError as exc:
                raise SimulationError(
                    f"r{self.code} {service} does not answer at {self.place.url(service)} "
                    f"({type(exc).__name__}): is {self.running} running?"
                ) from None
            if answer.status_code == 401:
                raise SimulationError(
                    f"r{self.code} {service} refuses the simulator's tokens ({answer.text}): they are "
                    f"signed with PULIH_JWT_SECRET; run with the PULIH_JWT_SECRET {self.running} runs with"
                )
            not_yet = answer.status_code in (404, 409) and answer.status_code not in ok
            if not_yet and _error_code(answer) in ("not_yet_known", "client_not_found", "not_screened"):
                await asyncio.sleep(0.2)
                continue
            break
        if answer.status_code not in ok:
            raise SimulationError(
                f"r{self.code} {service} {method} {path}: {answer.status_code} {answer.text}"
            )
        return answer

    async def post(
        self, service: str, path: str, token: str, body: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        """``POST`` a command; its JSON answer."""
        answer: dict[str, Any] = (await self.request("POST", service, path, token, body, **kw)).json()
        return answer

    async def get(self, service: str, path: str, token: str, **params: str) -> Any:
        """``GET`` a resource; its JSON answer."""
        return (await self.request("GET", service, path, token, params=params)).json()

    async def get_all(self, service: str, path: str, token: str, **params: str) -> list[Any]:
        """``GET`` a list: every item, the pages followed (``{"items", "next"}``: ``next`` the
        path and query of the following page, null on the last), or the list answered whole."""
        found = await self.get(service, path, token, **params)
        if isinstance(found, list):
            return found
        items: list[Any] = list(found["items"])
        while found.get("next"):
            found = (await self.request("GET", service, str(found["next"]), token)).json()
            items.extend(found["items"])
        return items

    # the clocks

    async def clock(self, service: str) -> tuple[date, bool]:
        """A service's date and whether its clock is manual."""
        body = await self.get(service, "/v1/admin/clock", self.admin)
        return date.fromisoformat(body["today"]), bool(body["manual"])

    async def move_clocks(self, today: date, services: list[str] | None = None) -> None:
        """Every service's manual clock (or only ``services``') to ``today``; each answers once its
        time-driven rules have run for the new date."""
        await asyncio.gather(
            *(
                self.request("PUT", service, "/v1/admin/clock", self.admin, {"today": str(today)})
                for service in (self.place.ports if services is None else services)
            )
        )

    # what the regency's reporting knows

    async def month_figures(self, period: str) -> dict[str, int]:
        """The regency's true figures of ``period`` (its own reporting, unsuppressed)."""
        body = await self.get(
            "reporting",
            "/v1/indicators",
            self.facilitator,
            level="regency",
            by="month",
            **{"from": period, "to": period},
        )
        rows = body["rows"]
        return {k: int(v) for k, v in rows[0]["indicators"].items()} if rows else {}

    async def published(self) -> dict[str, dict[str, Any]]:
        """The latest aggregate of every month the regency has published, by period."""
        body = await self.get("reporting", "/v1/aggregates", self.facilitator)
        return {a["period"]: a for a in body["aggregates"]}

    async def wait_counted(self, period: str, expected: dict[str, int], timeout: float) -> dict[str, int]:
        """Wait until the reporting counts ``expected`` in ``period`` (events take a moment to
        travel from outreach, rehab and referral); the differences left when ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            figures = await self.month_figures(period)
            missing = {k: v for k, v in expected.items() if figures.get(k, 0) != v}
            if not missing or time.monotonic() > deadline:
                return {k: figures.get(k, 0) for k in missing}
            await asyncio.sleep(0.3)


def _error_code(answer: httpx.Response) -> str:
    """The ``code`` of an error answer (``{"code", "message", "field"}``), or ``""``."""
    try:
        body = answer.json()
    except ValueError:
        return ""
    return str(body.get("code") or "") if isinstance(body, dict) else ""
