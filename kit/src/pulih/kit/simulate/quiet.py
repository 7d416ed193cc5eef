"""Waiting until a regency is quiet: every event the simulation set off has been published and
applied, so what a service counts no longer changes.

A command's events wait in its service's outbox until the relay publishes them; a consumer of
another service applies them, and its effect may emit events of its own (a clinic's completed
treatment puts the client in rehab's aftercare); a clock move runs the services' time-driven rules
(programmes completed, dropouts found, deadlines passed) before its ``PUT`` answers, and their
events go the same way. The regency is quiet when, between two reads of the stream's last
sequence that agree, every service's outbox is empty (``/readyz``: ``outbox_backlog``) and every
durable consumer of its services on ``IBM_<regency>`` has every message delivered and acknowledged
(JetStream's consumer info). A consumer acknowledges an event once its effect, and the events it
emitted, are committed; an outbox row still waiting, or published since the first read, makes
another round. (The clinics' own consumers are theirs, not the regency's: they are not waited
for.)

The simulator waits for it before a month closes (:meth:`.regency.RegencySim.close_month`), so no
event of the month reaches the reporting after it has published the month, and the same seed gives
the same ``AggregateReported`` revisions; and before it reads the figures of its summary.
"""

from __future__ import annotations

import asyncio
import time

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.client import JetStreamContext

from pulih.contracts import stream_name
from pulih.kit.simulate.api import RegencyApi, SimulationError

QUIET_SECONDS = 120.0
"""How long a regency may take to become quiet."""
POLL_SECONDS = 0.05
"""How often the outboxes and the consumers are read while something is on its way."""


class Quiet:
    """Watches one regency's outboxes (through its services' ``/readyz``) and its stream (on its
    NATS server, as its services log in: ``nats_url`` with the user and password, if any).
    Connect with ``async with``."""

    def __init__(self, api: RegencyApi, nats_url: str) -> None:
        self.api = api
        self.nats_url = nats_url
        self.stream = stream_name(api.code)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def __aenter__(self) -> Quiet:
        try:
            self._nc = await nats.connect(self.nats_url, connect_timeout=5, allow_reconnect=False)
        except (NatsError, OSError) as exc:
            raise SimulationError(
                f"r{self.api.code}: cannot reach its NATS server to follow its events "
                f"({type(exc).__name__}): is {self.api.running} running?"
            ) from None
        self._js = self._nc.jetstream()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._nc is not None:
            await self._nc.close()

    async def _last_sequence(self) -> int:
        assert self._js is not None
        return int((await self._js.stream_info(self.stream)).state.last_seq)

    async def _behind(self) -> dict[str, int]:
        """The regency's services' consumers that have not delivered or acknowledged everything
        they take: durable name → messages waiting or unacknowledged."""
        assert self._js is not None
        prefixes = tuple(f"{service}-" for service in self.api.place.ports)
        behind = {}
        for info in await self._js.consumers_info(self.stream):
            name = info.name or ""
            if not name.startswith(prefixes):
                continue
            waiting = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            if waiting:
                behind[name] = waiting
        return behind

    async def _backlogs(self) -> dict[str, int]:
        """Each service's outbox rows not yet published, as its ``/readyz`` counts them."""
        found = await asyncio.gather(*(self._backlog(service) for service in self.api.place.ports))
        return dict(zip(self.api.place.ports, found, strict=True))

    async def _backlog(self, service: str) -> int:
        answer = await self.api.request("GET", service, "/readyz", self.api.admin, ok=(200, 503))
        checks = answer.json().get("checks", {})
        if "outbox_backlog" not in checks:
            raise SimulationError(f"r{self.api.code} {service}'s /readyz does not count its outbox: {checks}")
        return int(checks["outbox_backlog"])

    async def wait(self, timeout: float = QUIET_SECONDS) -> None:
        """Return once the regency is quiet (module doc); :class:`SimulationError` naming what is
        still busy when ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                first = await self._last_sequence()
                behind = await self._behind()
                backlogs = {s: n for s, n in (await self._backlogs()).items() if n}
                last = await self._last_sequence()
            except NatsError as exc:
                raise SimulationError(
                    f"r{self.api.code}: cannot read its stream {self.stream} ({exc!r})"
                ) from None
            if not behind and not backlogs and first == last:
                return
            if time.monotonic() > deadline:
                raise SimulationError(
                    f"r{self.api.code} is still busy after {timeout:g} s (consumers behind: "
                    f"{behind or 'none'}; outbox rows waiting: {backlogs or 'none'}); see its logs in "
                    f"{self.api.place.data_dir / 'logs'}"
                )
            await asyncio.sleep(POLL_SECONDS)
