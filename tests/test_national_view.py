"""The national view against real nats-servers: a hub and regencies 3301 and 3302 from the
rendered configs, the reporting service in national mode connected to the hub as user
``national``. It waits for ``NATIONAL``, then every regency's aggregates reach its figures, the
latest revision of each month counting once; an aggregate that claims another regency's code
is dead-lettered on ``national.dlq.reporting`` and counts nowhere. Every message of ``NATIONAL``
carries the hub's ``Nats-Stream-Source`` naming the link of the regency of its subject, which
the national view checks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from federation_support import aggregate, publish_event, running_federation, stream_bodies
from nats.js.errors import NotFoundError

from pulih.contracts.codes import Indicator
from pulih.kit.auth import NATIONAL_SCOPE, issue_token
from pulih.kit.federation import names
from pulih.kit.testing import JWT_SECRET, eventually, make_settings, serve
from pulih.reporting.app import build
from pulih.reporting.national.provenance import SOURCE_HEADER, source_name

pytestmark = [pytest.mark.system, pytest.mark.slow]

CODES = ("3301", "3302")
HEADERS = {
    "Authorization": f"Bearer {issue_token(JWT_SECRET, sub='bnn', role='national', regency=NATIONAL_SCOPE)}"
}


def figures(base: int, **values: int | None) -> dict[str, Any]:
    """The fields of an aggregate: every indicator ``base`` unless ``values`` say otherwise."""
    return {
        "indicators": {**{i.value: base for i in Indicator}, **values},
        "units_by_phase": {"rintisan": base, "tumbuh": 1},
    }


async def nation(http: httpx.AsyncClient, indicator: str) -> dict[str, dict[str, Any]]:
    answer = await http.get(
        "/v1/national/indicators",
        params={"from": "2026-09", "to": "2026-10", "indicator": indicator},
        headers=HEADERS,
    )
    assert answer.status_code == 200, answer.text
    return {row["period"]: row for row in answer.json()["rows"]}


class Lines(logging.Handler):
    """The messages logged to one logger (the service's logging stops them propagating)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    async def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@pytest.fixture
def service_log() -> Iterator[Lines]:
    lines = Lines()
    logger = logging.getLogger("pulih.service")
    logger.addHandler(lines)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)


async def consumed(hub_url: str) -> bool:
    """Whether ``reporting-national`` has been delivered all of ``NATIONAL`` and acked it all."""
    nc = await nats.connect(hub_url.split(","))
    try:
        js = nc.jetstream()
        stream = await js.stream_info(names.NATIONAL_STREAM)
        try:
            info = await js.consumer_info(names.NATIONAL_STREAM, names.NATIONAL_DURABLE)
        except NotFoundError:
            return False
        return info.delivered.stream_seq == stream.state.last_seq and info.num_ack_pending == 0
    finally:
        await nc.close()


async def sources_stamped(hub_url: str) -> list[tuple[str, str]]:
    """(subject, ``Nats-Stream-Source``) of every message in ``NATIONAL``, in order."""
    nc = await nats.connect(hub_url.split(","))
    try:
        js = nc.jetstream()
        last = (await js.stream_info(names.NATIONAL_STREAM)).state.last_seq
        found = []
        for seq in range(1, last + 1):
            held = await js.get_msg(names.NATIONAL_STREAM, seq)
            found.append((held.subject, (held.headers or {}).get(SOURCE_HEADER, "")))
        return found
    finally:
        await nc.close()


async def test_aggregates_of_two_regencies_reach_the_national_figures(
    tmp_path: Path, service_log: Lines
) -> None:
    with running_federation(tmp_path / "federation", CODES) as fed:
        for node in fed.regencies.values():
            await node.declare_stream()
        for code in CODES:
            await fed.wait_linked(code)
        settings = make_settings(
            tmp_path / "national",
            nats_url=fed.national_url,
            PULIH_REPORTING_MODE="national",
            PULIH_CLOCK="manual",
            PULIH_CLOCK_START="2026-11-05",
        )
        async with serve(build(settings)) as http:
            # no NATIONAL yet: the service says what it waits for, and declares nothing itself
            await eventually(lambda: service_log.said("the hub has no NATIONAL stream yet"), timeout=15)
            assert not await service_log.said(fed.secrets.national())  # the URL is logged without it
            assert await fed.national_info() is None
            await fed.declare_national()

            published = [
                ("3301", aggregate("3301", "2026-10", **figures(10, dropouts=None))),
                ("3301", aggregate("3301", "2026-10", revision=2, **figures(12, dropouts=None))),
                ("3302", aggregate("3302", "2026-10", **figures(20))),
                ("3302", aggregate("3302", "2026-09", **figures(7))),
                ("3301", aggregate("3301", "2026-10", revision=1, **figures(99))),  # older: ignored
            ]
            forged = aggregate("3301", "2026-10", revision=9, regency="3302", **figures(1000))
            for code, event in published[:3]:
                nc = await fed.regencies[code].connect()
                try:
                    await publish_event(nc.jetstream(), event)
                finally:
                    await nc.close()
            nc = await fed.regencies["3301"].connect()
            try:
                # 3302's figures on 3301's own subject (the servers let 3301 publish there)
                await nc.jetstream().publish(
                    names.aggregate_subject("3301"), forged.to_json(), headers={"Nats-Msg-Id": str(forged.id)}
                )
            finally:
                await nc.close()
            for code, event in published[3:]:
                rnc = await fed.regencies[code].connect()
                try:
                    await publish_event(rnc.jetstream(), event)
                finally:
                    await rnc.close()

            await fed.wait_national(len(published) + 1)
            stamped = await sources_stamped(fed.hub_admin_url)
            assert len(stamped) == len(published) + 1
            for subject, source in stamped:  # stamped by the hub: the link each came through
                assert source.startswith(f"{source_name(subject.split('.')[1])} "), (subject, source)
            await eventually(lambda: consumed(fed.hub_admin_url), timeout=30)
            screened = await nation(http, "clients_screened")
            assert (screened["2026-10"]["value"], screened["2026-10"]["exact"]) == (32, True)
            assert (screened["2026-09"]["value"], screened["2026-09"]["reporting"]) == (7, 1)
            dropouts = await nation(http, "dropouts")
            assert dropouts["2026-10"] | {"name": "Indonesia"} == {
                "level": "nation",
                "org_unit": "ID",
                "name": "Indonesia",
                "period": "2026-10",
                "indicator": "dropouts",
                "value": 20,
                "hidden": 1,
                "reporting": 2,
                "exact": False,
            }

            letters = await eventually(
                lambda: stream_bodies(fed.hub_admin_url, names.NATIONAL_DLQ_STREAM), until=bool, timeout=15
            )
            assert [(subject, body["data"]["error"]) for subject, body in letters] == [
                (names.NATIONAL_DLQ_REPORTING, "forged_regency")
            ]
            assert letters[0][1]["data"]["subject"] == "ibm.3301.reporting.aggregate_reported"
            assert str(forged.id) in letters[0][1]["data"]["payload"]

            regencies = (await http.get("/v1/national/regencies", headers=HEADERS)).json()
            assert [
                (r["code"], r["last_period"], r["revision"], r["silent"]) for r in regencies["regencies"]
            ] == [
                ("3301", "2026-10", 2, False),
                ("3302", "2026-10", 1, False),
            ]
            phases = await http.get(
                "/v1/national/phases", params={"from": "2026-10", "to": "2026-10"}, headers=HEADERS
            )
            assert [(r["phase"], r["units"]) for r in phases.json()["rows"]] == [
                ("rintisan", 32),
                ("tumbuh", 2),
            ]
            # the forged aggregate counts nowhere: still exactly the two regencies' figures
            assert (await nation(http, "clients_screened"))["2026-10"]["value"] == 32
