"""A regency for the simulator's tests: ``pulih up`` on free ports (on a manual clock unless told
otherwise), the development secret's tokens, and its public APIs, as a user of the simulator has
them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from test_readme_walkthrough import Regency

from pulih.kit.auth import Role, issue_token
from pulih.kit.settings import DEV_JWT_SECRET

REGENCY = "3301"
START = date(2026, 3, 2)


@contextmanager
def regency_up(data_dir: Path, *, clock: str = "manual", start: date = START) -> Iterator[Regency]:
    """``pulih up`` in ``data_dir`` on free ports, its clock ``clock`` (manual from ``start``:
    without ``PULIH_CLOCK``, a development regency's default, which ``up`` says); interrupted
    (Ctrl-C) at the end."""
    regency = Regency(data_dir)
    regency.env.update(PULIH_CLOCK_START=str(start), PULIH_REGENCY=REGENCY)
    if clock == "manual":
        regency.env.pop("PULIH_CLOCK", None)
    else:
        regency.env["PULIH_CLOCK"] = clock
    regency.env.pop("PULIH_JWT_SECRET", None)
    regency.up(timeout=90)
    try:
        said = f"Clock: manual, standing on {start}" if clock == "manual" else "Clock: the system's"
        deadline = time.monotonic() + 10
        while said not in regency.log.read_text():
            assert time.monotonic() < deadline, regency.log.read_text()
            time.sleep(0.1)
        yield regency
    finally:
        if regency.process is not None and regency.process.poll() is None:
            regency.interrupt()


def token(role: Role, sub: str, **claims: str) -> str:
    """A token of the development secret ``pulih up`` runs with."""
    return issue_token(DEV_JWT_SECRET, sub=sub, role=role, regency=REGENCY, **claims)  # type: ignore[arg-type]


FACILITATOR = token(Role.FACILITATOR, "fasilitator-test")
ADMIN = token(Role.ADMIN, "admin-test")


class Api:
    """The regency's APIs over HTTP: commands with an Idempotency-Key, ``Pulih-After`` on
    request, and a poll with a deadline."""

    def __init__(self, regency: Regency, http: httpx.AsyncClient) -> None:
        self.regency = regency
        self.http = http

    async def send(
        self, method: str, service: str, path: str, tok: str, body: Any = None, after: str = ""
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tok}"}
        if method != "GET":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        if after:
            headers["Pulih-After"] = after
        answer = await self.http.request(method, self.regency.url(service) + path, json=body, headers=headers)
        assert answer.status_code < 300, f"{method} {service} {path}: {answer.status_code} {answer.text}"
        return answer

    async def post(self, service: str, path: str, tok: str, body: Any, after: str = "") -> Any:
        return (await self.send("POST", service, path, tok, body, after)).json()

    async def get(self, service: str, path: str, tok: str = FACILITATOR) -> Any:
        return (await self.send("GET", service, path, tok)).json()

    async def move_clocks(self, today: date) -> None:
        for service in self.regency.ports:
            await self.send("PUT", service, "/v1/admin/clock", ADMIN, {"today": str(today)})

    async def until(self, what: str, check: Any, timeout: float = 30.0) -> Any:
        """Poll ``check()`` (a coroutine function) until it answers something true."""
        deadline = time.monotonic() + timeout
        while True:
            found = await check()
            if found:
                return found
            assert time.monotonic() < deadline, f"gave up waiting for {what}: {found!r}"
            await asyncio.sleep(0.2)
