"""``pulih federation up`` end to end (issue 11): a national hub and two regencies of two provinces
(3301 Cilacap, Jawa Tengah; 7471 Kendari, Sulawesi Tenggara), each regency with its own
nats-server and its four services, the national reporting at the hub, every process started by the
command as a user starts it, every figure put in through the regencies' APIs and read back through
the national API.

- **Figures arrive**: five clients screened in 3301 in March (shown), three in 7471 (suppressed);
  the regencies' reporting clocks move into April; the national view shows each regency's month,
  its province's and the nation's, with the hidden cells counted. A subscriber on ``>`` at the hub
  sees only aggregates the whole time.
- **The hub down for a month**: March arrives; the hub is stopped (``pulih federation hub-down``);
  the regencies screen, enrol and hold sessions in April and close it on their clocks; the hub
  comes back (``hub-up``) and the national view catches up, with every (regency, month, revision)
  in ``NATIONAL`` exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
import pytest
from nats.aio.msg import Msg

from pulih.kit.auth import Role, issue_token
from pulih.kit.federation import names
from pulih.kit.local_regency import installed_services
from pulih.kit.nats_server import port_open
from pulih.kit.settings import DEV_JWT_SECRET

pytestmark = [pytest.mark.system, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CODES = ["3301", "7471"]
START = date(2026, 3, 20)
"""Every service's manual clock starts here."""
T = TypeVar("T")

WHOQOL = {f"q{i}": 2 if i in (3, 4, 26) else 3 for i in range(1, 27)}
MODERATE = [
    {"substance": "amphetamine_type_stimulants", "ever_used": True, "q2": 4, "q3": 4, "q4": 5, "q5": 5,
     "q6": 3, "q7": 3},
    {"substance": "tobacco", "ever_used": True, "q2": 6, "q3": 3, "q4": 0, "q6": 0, "q7": 0},
]  # fmt: skip
"""WHO ASSIST answers scoring moderate risk (the README walkthrough's)."""
PRIVATE_FIELDS = ("client_id", "screening_id", "session_id", "referral_id", "enrollment_id", "unit_id", "nik")
"""Fields of regency events that must never reach the hub."""


async def poll(probe: Callable[[], Awaitable[T]], until: Callable[[T], bool], timeout: float, what: str) -> T:
    """``probe()`` again and again until ``until`` holds (then its value) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s; last value {value!r}")
        await asyncio.sleep(0.25)


def free_base(codes: list[str]) -> int:
    """A base port with every port the federation takes free."""
    width = 10 * (len(codes) + 1) + 10
    for _ in range(200):
        base = random.randrange(20_000, 32_000, 10)  # below the ephemeral ports (32768-)
        if not any(port_open("127.0.0.1", p) for p in range(base, base + width)):
            return base
    raise RuntimeError("no free range of ports")


class Federation:
    """``pulih federation up`` as a subprocess; its output in a file."""

    def __init__(self, tmp_path: Path, codes: list[str]) -> None:
        self.codes = codes
        self.data_dir = tmp_path / "federation"
        self.base = free_base(codes)
        self.log = tmp_path / "federation-up.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PULIH_", "NATS_", "DATABASE_"))},
            "PULIH_CLOCK": "manual",
            "PULIH_CLOCK_START": START.isoformat(),
            "PULIH_SCHEDULER_SECONDS": "3600",  # time-driven jobs run when a clock moves, not by themselves
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.process: subprocess.Popen[bytes] | None = None
        services = [s.name for s in installed_services()]
        self.regencies = {
            code: Regency(code, {s: self.base + 10 * (i + 1) + 1 + j for j, s in enumerate(services)})
            for i, code in enumerate(codes)
        }
        self.national = f"http://127.0.0.1:{self.base + 2}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def up(self, timeout: float = 120) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pulih.kit.cli", "federation", "up",
                 "--regencies", ",".join(self.codes), "--base-port", str(self.base),
                 "--data-dir", str(self.data_dir)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while "Pulih federation is up" not in self.output():
            assert self.process.poll() is None, self.output()[-5000:]
            assert time.monotonic() < deadline, self.output()[-5000:]
            time.sleep(0.2)

    def control(self, *args: str) -> str:
        """``pulih federation <args>`` on this federation; its output."""
        done = subprocess.run(
            [sys.executable, "-m", "pulih.kit.cli", "federation", *args, "--data-dir", str(self.data_dir)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def tokens(self) -> dict[str, str]:
        text = (self.data_dir / "tokens.env").read_text()
        return dict(re.findall(r"^export (\w+)=(\S+)$", text, re.M))

    def interrupt(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


class Regency:
    """One regency's APIs, as its facilitator, admin and agents use them."""

    def __init__(self, code: str, ports: dict[str, int]) -> None:
        self.code = code
        self.ports = ports
        self.http = httpx.AsyncClient(timeout=30)
        self.facilitator = issue_token(DEV_JWT_SECRET, sub="fasilitator", role=Role.FACILITATOR, regency=code)
        self.admin = issue_token(DEV_JWT_SECRET, sub="admin", role=Role.ADMIN, regency=code)
        self.clients: list[str] = []
        self.unit = ""
        self.agent = ""
        self.agent_token = ""

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    async def post(
        self, service: str, path: str, token: str, body: dict[str, Any], **headers: str
    ) -> httpx.Response:
        answer = await self.http.post(
            f"{self.url(service)}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4()), **headers},
        )
        assert answer.status_code in (200, 201), f"{path}: {answer.status_code} {answer.text}"
        return answer

    async def establish(self, on: date) -> None:
        """A unit in a village of the regency and an agent of it."""
        unit = await self.post(
            "outreach",
            "/v1/units",
            self.facilitator,
            {
                "name": f"Unit IBM {self.code}",
                "village_code": f"{self.code}012001",
                "established_on": str(on),
            },
        )
        self.unit = unit.json()["unit_id"]
        agent = await self.post(
            "outreach", f"/v1/units/{self.unit}/agents", self.facilitator, {"trained_on": str(on)}
        )
        self.agent = agent.json()["agent_id"]
        self.agent_token = issue_token(
            DEV_JWT_SECRET, sub=self.agent, role=Role.AGENT, regency=self.code, unit_id=self.unit
        )

    async def screen_client(self, on: date) -> str:
        """Register a new person, record consent, screen them (moderate risk); the screening's
        event id (to enrol after it)."""
        n = len(self.clients) + 1
        born = date(1990, 1, n)
        nik = f"{self.code}01{born:%d%m%y}{n:04d}"
        client = await self.post(
            "outreach",
            "/v1/clients",
            self.agent_token,
            {"unit_id": self.unit, "registered_on": str(on), "came_through": "outreach",
             "identity": {"full_name": f"Klien {n}", "nik": nik, "birth_date": str(born), "sex": "m",
                          "phone": "0812-3456-7890", "address": "Jl. Merdeka 1"}},
        )  # fmt: skip
        client_id = client.json()["client_id"]
        self.clients.append(client_id)
        await self.post(
            "outreach",
            f"/v1/clients/{client_id}/consents",
            self.agent_token,
            {"scopes": ["programme", "referral"], "given_on": str(on)},
        )
        screening = await self.post(
            "outreach",
            f"/v1/clients/{client_id}/screenings",
            self.agent_token,
            {"agent_id": self.agent, "screened_on": str(on), "injecting": "never", "substances": MODERATE},
        )
        assert screening.json()["overall_risk"] == "moderate"
        return screening.headers["Pulih-Events"]

    async def enrol_with_session(self, client_id: str, screened: str, on: date) -> None:
        """Enrol a screened client (once rehab has the screening) and hold a session."""
        enrolment = await self.post(
            "rehab",
            "/v1/enrolments",
            self.agent_token,
            {"client_id": client_id, "agent_id": self.agent, "enrolled_on": str(on), "baseline": WHOQOL},
            **{"Pulih-After": screened},
        )
        await self.post(
            "rehab",
            f"/v1/enrolments/{enrolment.json()['enrollment_id']}/sessions",
            self.agent_token,
            {
                "agent_id": self.agent,
                "held_on": str(on),
                "kind": "konseling",
                "attended": True,
                "minutes": 60,
            },
        )

    async def move_clocks(self, today: date, services: tuple[str, ...] = ()) -> None:
        """Every service's manual clock (or those of ``services``) to ``today``."""
        for service in services or tuple(self.ports):
            answer = await self.http.put(
                f"{self.url(service)}/v1/admin/clock",
                json={"today": str(today)},
                headers={"Authorization": f"Bearer {self.admin}"},
            )
            assert answer.status_code == 200, answer.text

    async def published(self) -> list[str]:
        """The months the regency has published an aggregate of (``GET /v1/aggregates``)."""
        answer = await self.http.get(
            f"{self.url('reporting')}/v1/aggregates", headers={"Authorization": f"Bearer {self.facilitator}"}
        )
        assert answer.status_code == 200, answer.text
        return [a["period"] for a in answer.json()["aggregates"]]

    async def month(self, period: str) -> dict[str, int]:
        """The regency's true figures of ``period`` (its own reporting, unsuppressed)."""
        answer = await self.http.get(
            f"{self.url('reporting')}/v1/indicators",
            params={"level": "regency", "by": "month", "from": period, "to": period},
            headers={"Authorization": f"Bearer {self.facilitator}"},
        )
        assert answer.status_code == 200, answer.text
        rows = answer.json()["rows"]
        return dict(rows[0]["indicators"]) if rows else {}


class HubWatch:
    """A subscriber on ``>`` at the hub (its administrator's credentials): every message seen."""

    def __init__(self) -> None:
        self.seen: list[Msg] = []
        self.nc: nats.NATS | None = None

    async def start(self, url: str) -> None:
        async def keep(msg: Msg) -> None:
            self.seen.append(msg)

        self.nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        await self.nc.subscribe(">", cb=keep)
        await self.nc.flush()

    async def stop(self) -> None:
        if self.nc is not None:
            await self.nc.close()

    def check_only_aggregates(self, client_ids: list[str]) -> int:
        """Whatever crossed the hub: no regency subject but the aggregates', no event but
        ``AggregateReported``, no private field, no client's id. Returns how many aggregates it saw."""
        aggregates = 0
        for msg in self.seen:
            assert not msg.subject.startswith("ibm.") or msg.subject.endswith(
                ".reporting.aggregate_reported"
            ), msg.subject
            text = msg.data.decode(errors="replace")
            for client_id in client_ids:
                assert client_id not in text, f"a client id crossed the hub on {msg.subject}"
            if not text.startswith("{"):
                continue
            body = json.loads(text)
            if "specversion" in body:
                assert body["type"] == "pulih.reporting.AggregateReported.v1", (msg.subject, body["type"])
                assert not set(body["data"]) & set(PRIVATE_FIELDS), body["data"]
                aggregates += 1
            for field in PRIVATE_FIELDS:
                assert f'"{field}"' not in text, f"{field} crossed the hub on {msg.subject}"
        return aggregates


async def national(fed: Federation, path: str, token: str, **params: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.get(
            f"{fed.national}{path}", params=params, headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def cell(rows: list[dict[str, Any]], org_unit: str, indicator: str, period: str) -> dict[str, Any]:
    [found] = [
        r for r in rows if r["org_unit"] == org_unit and r["indicator"] == indicator and r["period"] == period
    ]
    return found


async def national_aggregates(hub_url: str) -> list[tuple[str, str, int]]:
    """(regency, period, revision) of every message in ``NATIONAL``, in stream order."""
    nc = await nats.connect(hub_url, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=5)
        info = await js.stream_info(names.NATIONAL_STREAM)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(names.NATIONAL_STREAM, seq)
            data = json.loads(msg.data or b"{}")["data"]
            assert msg.subject == names.aggregate_subject(data["regency"])
            found.append((data["regency"], data["period"], int(data["revision"])))
        return found
    finally:
        await nc.close()


async def settle_month(regency: Regency, period: str, screened: int) -> None:
    """Wait until the regency's reporting has counted ``screened`` screenings in ``period``."""
    await poll(
        lambda: regency.month(period),
        lambda m: m.get("clients_screened") == screened,
        30,
        f"{regency.code} counting {period}",
    )


async def test_figures_of_two_regencies_arrive_at_the_national_view(tmp_path: Path) -> None:
    fed = Federation(tmp_path, CODES)
    fed.up()
    watch = HubWatch()
    try:
        # a second `up` on the same data (on other ports) is refused: it would share the stores
        second = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "pulih.kit.cli", "federation", "up", "--regencies", ",".join(CODES),
             "--base-port", str(free_base(CODES)), "--data-dir", str(fed.data_dir)],
            cwd=ROOT, env=fed.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1 and "a federation already runs in" in second.stderr, second
        assert str(fed.base) in (fed.data_dir / "federation.json").read_text()  # its state untouched
        # the terminal has the federation's lines, not every service's INFO lines (their logs do)
        assert "pulih.service: connected to NATS" not in fed.output()
        assert "connected to NATS" in (fed.data_dir / "r3301" / "logs" / "outreach.log").read_text()
        tokens = fed.tokens()
        await watch.start(tokens["HUB_NATS_URL"])
        cilacap, kendari = fed.regencies["3301"], fed.regencies["7471"]
        for regency, clients in ((cilacap, 5), (kendari, 3)):
            await regency.establish(date(2026, 3, 2))
            for day in range(clients):
                await regency.screen_client(date(2026, 3, 5 + day))
        await settle_month(cilacap, "2026-03", 5)
        await settle_month(kendari, "2026-03", 3)
        for regency in (cilacap, kendari):
            await regency.move_clocks(date(2026, 4, 1), ("reporting",))

        token = tokens["NATIONAL_TOKEN"]
        listed = await poll(
            lambda: national(fed, "/v1/national/regencies", token),
            lambda b: all(r["last_period"] == "2026-03" for r in b["regencies"]) and len(b["regencies"]) == 2,
            60,
            "both regencies' March at the national view",
        )
        by_code = {r["code"]: r for r in listed["regencies"]}
        assert by_code["3301"]["province"] == "33" and by_code["7471"]["province"] == "74"
        assert by_code["3301"]["province_name"] == "Jawa Tengah"
        assert by_code["7471"]["province_name"] == "Sulawesi Tenggara"
        assert {r["revision"] for r in listed["regencies"]} == {1}

        march = {"from": "2026-03", "to": "2026-03"}
        regencies = (await national(fed, "/v1/national/indicators", token, level="regency", **march))["rows"]
        for name, value in (("clients_registered", 5), ("clients_screened", 5), ("screened_moderate", 5)):
            shown = cell(regencies, "3301", name, "2026-03")
            assert (shown["value"], shown["hidden"], shown["exact"]) == (value, 0, True), shown
        assert cell(regencies, "3301", "screened_high", "2026-03")["value"] == 0  # zeros are published
        for name in ("clients_registered", "clients_screened", "screened_moderate"):
            hidden = cell(regencies, "7471", name, "2026-03")
            assert (hidden["value"], hidden["hidden"], hidden["exact"]) == (0, 1, False), hidden

        provinces = (await national(fed, "/v1/national/indicators", token, level="province", **march))["rows"]
        jateng = cell(provinces, "33", "clients_screened", "2026-03")
        assert (jateng["value"], jateng["hidden"], jateng["reporting"], jateng["exact"]) == (5, 0, 1, True)
        sultra = cell(provinces, "74", "clients_screened", "2026-03")
        assert (sultra["value"], sultra["hidden"], sultra["reporting"], sultra["exact"]) == (0, 1, 1, False)
        nation_rows = (await national(fed, "/v1/national/indicators", token, level="nation", **march))["rows"]
        [nation] = [r for r in nation_rows if r["indicator"] == "clients_screened"]
        assert (nation["value"], nation["hidden"], nation["reporting"], nation["exact"]) == (5, 1, 2, False)

        assert sorted(await national_aggregates(tokens["HUB_NATS_URL"])) == [
            ("3301", "2026-03", 1),
            ("7471", "2026-03", 1),
        ]
        all_clients = cilacap.clients + kendari.clients
        assert watch.check_only_aggregates(all_clients) >= 2  # the sources' deliveries, at least
    finally:
        await watch.stop()
        for regency in fed.regencies.values():
            await regency.http.aclose()
        code = fed.interrupt()
    assert code == 0, fed.output()[-3000:]
    assert "stopped." in fed.output()


async def test_the_hub_down_for_a_month_and_the_national_view_catches_up(tmp_path: Path) -> None:
    fed = Federation(tmp_path, CODES)
    fed.up()
    try:
        tokens = fed.tokens()
        token, hub = tokens["NATIONAL_TOKEN"], tokens["HUB_NATS_URL"]
        regencies = list(fed.regencies.values())
        for regency in regencies:
            await regency.establish(date(2026, 3, 2))
            for day in range(5):
                await regency.screen_client(date(2026, 3, 5 + day))
            await settle_month(regency, "2026-03", 5)
            await regency.move_clocks(date(2026, 4, 1))
        await poll(
            lambda: national(fed, "/v1/national/regencies", token),
            lambda b: {r["last_period"] for r in b["regencies"]} == {"2026-03"},
            60,
            "March at the national view",
        )

        said = fed.control("hub-down")
        assert "hub stopped" in said
        assert not port_open("127.0.0.1", fed.base)
        assert "already held" in fed.control("hub-down")
        # April in the regencies, the hub away: new clients screened, enrolled, their sessions held
        for regency in regencies:
            await regency.move_clocks(date(2026, 4, 20))
            for day in range(6):
                screened = await regency.screen_client(date(2026, 4, 6 + day))
                await regency.enrol_with_session(regency.clients[-1], screened, date(2026, 4, 6 + day))
            await poll(
                lambda r=regency: r.month("2026-04"),  # type: ignore[misc]
                lambda m: m.get("sessions_held") == 6 and m.get("clients_screened") == 6,
                30,
                f"{regency.code} counting April",
            )
            await regency.move_clocks(date(2026, 5, 1))
        for regency in regencies:  # April is published in each regency, into its own stream
            await poll(
                regency.published,
                lambda periods: "2026-04" in periods,
                30,
                f"{regency.code} publishing April",
            )
        assert not port_open("127.0.0.1", fed.base)  # the hub is still down

        said = fed.control("hub-up")
        assert "hub started again" in said
        back = time.monotonic()
        # the hub's sources set themselves up again on their own, retrying 10 s, 20 s… apart
        listed = await poll(
            lambda: national(fed, "/v1/national/regencies", token),
            lambda b: {r["last_period"] for r in b["regencies"]} == {"2026-04"},
            120,
            "April at the national view after the hub came back",
        )
        print(f"the national view caught up {time.monotonic() - back:.1f}s after the hub came back")
        assert len(listed["regencies"]) == 2
        april = (
            await national(
                fed, "/v1/national/indicators", token, level="nation", **{"from": "2026-04", "to": "2026-04"}
            )
        )["rows"]
        for name, value in (("clients_screened", 12), ("clients_enrolled", 12), ("sessions_held", 12)):
            [row] = [r for r in april if r["indicator"] == name]
            assert (row["value"], row["hidden"], row["reporting"]) == (value, 0, 2), row

        held = await national_aggregates(hub)
        assert len(held) == len(set(held)), held  # each (regency, month, revision) once
        assert {(c, p) for c, p, _ in held} == {(c, p) for c in CODES for p in ("2026-03", "2026-04")}
    finally:
        for regency in fed.regencies.values():
            await regency.http.aclose()
        code = fed.interrupt()
    assert code == 0, fed.output()[-3000:]
    # the held hub was started again by its own supervisor, not counted as a crash and a restart
    assert "hub/nats-server released and started again" in fed.output()
    assert "hub/nats-server exited" not in fed.output()
