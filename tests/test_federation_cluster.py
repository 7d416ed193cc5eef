"""Hub node lost: the national hub as a 3-node JetStream cluster (``NATIONAL`` at R3), rendered by
``pulih federation render`` for a federation with ``nodes``, and regencies 3301 and 3302 whose
links list the three nodes' leaf URLs. While the regencies publish aggregates at a steady rate,
the node leading ``NATIONAL`` is killed with SIGKILL: the two others elect a new leader, the
links that went through the dead node move to a live one, and every aggregate reaches
``NATIONAL`` exactly once. The national reporting, given the three nodes' URLs comma-separated
in its ``NATS_URL``, follows the cluster through the loss and counts every month of both
regencies at its latest revision."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats.errors
import pytest
from federation_support import (
    ConfiguredServer,
    RunningFederation,
    aggregate,
    publish_event,
    running_federation,
)
from nats.js.api import StreamInfo

from pulih.kit.auth import NATIONAL_SCOPE, issue_token
from pulih.kit.testing import JWT_SECRET, eventually, make_settings, serve
from pulih.reporting.app import build

pytestmark = [pytest.mark.system, pytest.mark.slow]

CODES = ("3301", "3302")
PER_REGENCY = 60
"""Aggregates each regency publishes: five years of months."""
INTERVAL = 0.1
"""Seconds between two aggregates of one regency (10 a second each, 6 s in all)."""
KILL_AFTER = 15
"""The leader is killed once each regency has published this many."""
Key = tuple[str, str, int]
HEADERS = {
    "Authorization": f"Bearer {issue_token(JWT_SECRET, sub='bnn', role='national', regency=NATIONAL_SCOPE)}"
}


def period(i: int) -> str:
    """The ``i``-th month from January 2021."""
    return f"{2021 + i // 12}-{i % 12 + 1:02d}"


def expected_keys() -> list[Key]:
    """(regency, period, revision) of everything published: every month at revision 1, and every
    fifth month again at revision 2 (a late event changed it)."""
    return [
        (code, period(i), revision)
        for code in CODES
        for i in range(PER_REGENCY)
        for revision in ((1, 2) if i % 5 == 4 else (1,))
    ]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RunningFederation]:
    with running_federation(tmp_path, CODES, cluster=True) as fed:
        yield fed


async def settled(fed: RunningFederation, dead: str | None = None) -> StreamInfo:
    """``NATIONAL``'s info once it has a leader other than ``dead`` and every other replica is
    current."""

    async def probe() -> StreamInfo | None:
        return await fed.national_info()

    def ready(info: StreamInfo | None) -> bool:
        return (
            info is not None
            and info.cluster is not None
            and info.cluster.leader not in (None, dead)
            and all(peer.current for peer in info.cluster.replicas or [] if peer.name != dead)
        )

    info = await eventually(probe, until=ready, timeout=20)
    assert info is not None
    return info


async def linked_to(server: ConfiguredServer) -> set[str]:
    """The leaf servers (``r<code>``) connected to one hub node."""
    return {leaf["name"] for leaf in (await server.leafz()).get("leafs") or []}


async def publish_steadily(fed: RunningFederation, code: str, half_way: asyncio.Event) -> list[Key]:
    """Publish the regency's aggregates into ``IBM_<code>`` at a steady rate, as its reporting
    service's outbox relay would; set ``half_way`` after :data:`KILL_AFTER` of them."""
    published: list[Key] = []
    nc = await fed.regencies[code].connect()
    try:
        js = nc.jetstream()
        started = time.monotonic()
        for n, (_, month, revision) in enumerate(k for k in expected_keys() if k[0] == code):
            await asyncio.sleep(max(0.0, started + n * INTERVAL - time.monotonic()))
            ack = await publish_event(js, aggregate(code, month, revision))
            assert not ack.duplicate
            published.append((code, month, revision))
            if len(published) == KILL_AFTER:
                half_way.set()
    finally:
        await nc.close()
    return published


async def months_counted(http: httpx.AsyncClient) -> dict[str, list[tuple[str, int]]]:
    """Per regency, (period, regencies reporting) of every month the national view holds."""
    screened = await http.get(
        "/v1/national/indicators",
        params={
            "level": "regency",
            "from": period(0),
            "to": period(PER_REGENCY - 1),
            "indicator": "clients_screened",
        },
        headers=HEADERS,
    )
    assert screened.status_code == 200, screened.text
    held: dict[str, list[tuple[str, int]]] = {}
    for row in screened.json()["rows"]:
        held.setdefault(row["org_unit"], []).append((row["period"], row["reporting"]))
    return held


async def test_a_hub_node_killed_loses_no_aggregate(cluster: RunningFederation, tmp_path: Path) -> None:
    fed = cluster
    assert len(fed.hub_servers) == 3
    for node in fed.regencies.values():
        await node.declare_stream()
    declared = await fed.declare_national()
    assert declared.config.num_replicas == 3
    assert fed.national_url.count(",") == 2  # all three nodes, comma-separated
    settings = make_settings(
        tmp_path / "national",
        nats_url=fed.national_url,
        PULIH_REPORTING_MODE="national",
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START="2026-11-05",
    )
    async with serve(build(settings)) as http:
        await _kill_the_leader(fed, http)


async def _kill_the_leader(fed: RunningFederation, http: httpx.AsyncClient) -> None:
    for code in CODES:
        await fed.wait_linked(code)
    leader = (await settled(fed)).cluster.leader  # type: ignore[union-attr]
    victim = next(server for server in fed.hub_servers if server.name == leader)
    links_on_victim = await linked_to(victim)

    halves = {code: asyncio.Event() for code in CODES}
    publishers = [asyncio.create_task(publish_steadily(fed, code, halves[code])) for code in CODES]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in halves.values())), timeout=20)
    assert await fed.national_count() > 0, "nothing reached NATIONAL before the kill"
    victim.kill()  # SIGKILL, mid-stream
    published = [key for keys in await asyncio.gather(*publishers) for key in keys]
    assert sorted(published) == sorted(expected_keys())

    # Sources keep each regency's order: once every regency's last aggregate is in, anything a
    # failover replayed would be in too.
    await fed.wait_national(len(published), timeout=45)
    last = {code: [k for k in published if k[0] == code][-1] for code in CODES}

    async def arrived() -> Counter[Key]:
        try:
            bodies = await fed.national_messages()
        except (nats.errors.Error, TimeoutError):  # the survivors still electing: ask again
            return Counter()
        return Counter(
            (body["data"]["regency"], body["data"]["period"], body["data"]["revision"]) for _, body in bodies
        )

    counts = await eventually(arrived, until=lambda c: all(c[k] for k in last.values()), timeout=30)
    missing = sorted(set(published) - set(counts))
    doubled = sorted(k for k, n in counts.items() if n > 1)
    assert not missing, f"aggregates lost when {leader} died: {missing}"
    assert not doubled, f"aggregates stored twice after {leader} died: {doubled}"
    assert set(counts) == set(published)

    info = await settled(fed, dead=leader)  # a new leader, the other survivor current
    assert info.config.num_replicas == 3
    assert info.cluster is not None
    peers = {peer.name: peer for peer in info.cluster.replicas or []}
    assert leader in peers and not peers[leader].current, "the dead node is still a replica, behind"
    survivors = [server for server in fed.hub_servers if server.process is not None]
    for code in CODES:
        await fed.wait_linked(code)  # on a live node, whichever it was on before
    now_linked = set().union(*[await linked_to(server) for server in survivors])
    assert {f"r{code}" for code in CODES} <= now_linked, links_on_victim

    # The national view, connected through the three URLs, counted every month of both regencies.
    every_month = {code: [(period(i), 1) for i in range(PER_REGENCY)] for code in CODES}
    await eventually(lambda: months_counted(http), until=lambda held: held == every_month, timeout=120)

    # ... and its last revision (revision 2 of the last month comes after revision 1 of it).
    async def latest() -> list[tuple[str, str, int]]:
        regencies = (await http.get("/v1/national/regencies", headers=HEADERS)).json()["regencies"]
        return [(r["code"], r["last_period"], r["revision"]) for r in regencies]

    last_revised = [(code, period(PER_REGENCY - 1), 2) for code in CODES]  # the last month was revised
    assert await eventually(latest, until=lambda held: held == last_revised, timeout=30) == last_revised
