"""A compromised regency server lies about the subject: regency 3301's server is replaced by a
rogue that speaks the leaf-node protocol to the hub itself (with 3301's link credentials, so it
lands in the hub's account ``R3301``), answers the hub's consumer-create for ``IBM_3301`` as
JetStream would, and delivers on 3301's deliver subject an aggregate of regency 3302 whose
original subject is ``ibm.3302.reporting.aggregate_reported`` (after the ``@`` of the ack reply,
as a leaf carries it), with a forged ``Nats-Stream-Source`` naming 3302's link. The hub stores it
in ``NATIONAL`` under the subject it claims (nats-server keeps the subject a source delivers), but
replaces the forged header with its own, naming the link it came through: 3301's. The national
view sees the difference and dead-letters it (``forged_regency``); 3302's figures are its own
server's alone.

Why a raw leaf and not a client of a rogue nats-server: a stock nats-server refuses a client's
publish whose reply is a ``$JS.ACK.`` subject ("Permissions Violation for Publish with Reply"),
so a lying regency needs a modified server, or to speak the protocol itself, as here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from federation_support import (
    RunningFederation,
    aggregate,
    publish_event,
    running_federation,
    stream_bodies,
)
from nats.js.errors import NotFoundError

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


class RogueLeaf:
    """A leaf connection to the hub as ``r3301``, speaking the protocol by hand: it declares
    interest in the consumer-create requests for ``IBM_3301``, answers them with a made-up
    consumer, and delivers ``forged`` (another regency's aggregate, claiming ``subject``) to the
    deliver subject the hub asked for, as stream message 1 of that consumer."""

    def __init__(self, fed: RunningFederation, forged: bytes, subject: str) -> None:
        self.fed = fed
        self.forged = forged
        self.subject = subject
        self.consumers: list[dict[str, Any]] = []
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        host, port = self.fed.fed.hub.leaf_addresses()[0].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        self._writer = writer
        await reader.readline()  # the hub's INFO
        connect = {
            "user": names.link_user("3301"),
            "pass": self.fed.secrets.link("3301"),
            "name": names.domain("3301"),
            "server_id": "NROGUE3301",
            "headers": True,
            "version": "2.15.1",
        }
        interest = f"{names.js_api('3301')}.CONSUMER.CREATE.{names.regency_stream('3301')}.>"
        writer.write(f"CONNECT {json.dumps(connect)}\r\nLS+ {interest}\r\nPING\r\n".encode())
        await writer.drain()
        self._task = asyncio.create_task(self._read(reader))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._writer is not None:
            self._writer.close()

    def _send(self, line: str, payload: bytes | None = None) -> None:
        """One protocol line, and the message's bytes after it if it carries any."""
        assert self._writer is not None
        self._writer.write(line.encode() + b"\r\n" + (b"" if payload is None else payload + b"\r\n"))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Answer the hub's PINGs and its requests (``LMSG``/``HMSG`` with a reply); the rest
        (its ``LS+`` interest, its INFO) needs nothing."""
        assert self._writer is not None
        while True:
            line = (await reader.readline()).decode().strip()
            if not line:
                if reader.at_eof():
                    return
                continue
            op, *args = line.split(" ")
            if op == "PING":
                self._send("PONG")
            elif op in ("LMSG", "HMSG"):
                size = int(args[-1])
                body = await reader.readexactly(size + 2)
                header_size = int(args[-2]) if op == "HMSG" else 0
                if args[1] in ("+", "|"):  # with queues
                    reply = args[2] if args[1] == "+" else None
                else:  # subject [reply] [header size] size
                    reply = args[1] if len(args) == (4 if op == "HMSG" else 3) else None
                if reply is not None:
                    self._answer(reply, json.loads(body[header_size:size] or b"{}"))
            await self._writer.drain()

    def _answer(self, reply: str, request: dict[str, Any]) -> None:
        config = request.get("config") or {}
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        answer = json.dumps(
            {
                "type": "io.nats.jetstream.api.v1.consumer_create_response",
                "stream_name": names.regency_stream("3301"),
                "name": config.get("name", "probe"),
                "created": now,
                "config": config,
                "delivered": {"consumer_seq": 0, "stream_seq": 0},
                "ack_floor": {"consumer_seq": 0, "stream_seq": 0},
                "num_ack_pending": 0,
                "num_redelivered": 0,
                "num_waiting": 0,
                "num_pending": 1,
                "ts": now,
            }
        ).encode()
        self._send(f"LMSG {reply} {len(answer)}", answer)
        if config.get("deliver_subject"):
            self.consumers.append(config)

    async def deliver(self) -> None:
        """Deliver the forged aggregate to the newest consumer the hub asked for: an ack reply
        of 3301's consumer for stream message 1, the claimed subject after the ``@``."""
        if not self.consumers:
            return
        config = self.consumers[-1]
        ack = f"$JS.ACK.{names.regency_stream('3301')}.{config['name']}.1.1.1.{time.time_ns()}.0"
        forged_source = f"{source_name('3302')} 1 {self.subject} > {self.subject}"
        header = f"NATS/1.0\r\n{SOURCE_HEADER}: {forged_source}\r\n\r\n".encode()
        reply, total = f"{ack}@{self.subject}", len(header) + len(self.forged)
        self._send(f"HMSG {config['deliver_subject']} {reply} {len(header)} {total}", header + self.forged)
        assert self._writer is not None
        await self._writer.drain()


async def national_subjects(fed: RunningFederation) -> list[tuple[str, str]]:
    """(subject, ``Nats-Stream-Source``) of every message of ``NATIONAL``."""
    nc = await nats.connect(fed.hub_admin_url.split(","))
    try:
        js = nc.jetstream()
        try:
            last = (await js.stream_info(names.NATIONAL_STREAM)).state.last_seq
        except NotFoundError:
            return []
        found = []
        for seq in range(1, last + 1):
            held = await js.get_msg(names.NATIONAL_STREAM, seq)
            found.append((held.subject, (held.headers or {}).get(SOURCE_HEADER, "")))
        return found
    finally:
        await nc.close()


async def test_a_regency_server_lying_about_the_subject_is_not_counted_for_the_regency_it_names(
    tmp_path: Path,
) -> None:
    forged = aggregate("3302", "2026-10")
    own = aggregate("3302", "2026-09")
    subject = names.aggregate_subject("3302")
    with running_federation(tmp_path / "federation", CODES) as fed:
        await fed.regencies["3302"].declare_stream()
        fed.regencies["3301"].server.stop()
        await fed.wait_linked("3301", linked=False)
        rogue = RogueLeaf(fed, forged.to_json(), subject)
        await rogue.start()
        try:
            await fed.wait_linked("3301")  # the rogue, as r3301, in the hub's account R3301
            hub = await fed.hub_admin()
            try:  # the hub's requests for 3301's aggregates reach the rogue
                probe = names.source_consumer_create("3301", domain_prefix=True).replace("*", "probe")

                async def answered() -> bool:
                    try:
                        await hub.request(probe, b"{}", timeout=0.5)
                    except Exception:
                        return False
                    return True

                await eventually(answered, timeout=15)
            finally:
                await hub.close()
            await fed.declare_national()
            await eventually(lambda: _asked(rogue), timeout=30)  # NATIONAL's source asked the rogue
            regency = await fed.regencies["3302"].connect()
            try:
                await publish_event(regency.jetstream(), own)
            finally:
                await regency.close()

            async def stored() -> list[tuple[str, str]]:
                await rogue.deliver()  # again until the hub's interest has reached the rogue
                return await national_subjects(fed)

            held = await eventually(
                stored, until=lambda found: sum(s == subject for s, _ in found) == 2, timeout=30
            )
            # both under 3302's subject; the header is the hub's, naming the link each came through
            assert sorted(source.split(" ")[0] for _, source in held) == [
                source_name("3301"),
                source_name("3302"),
            ]
            await _national_view(tmp_path, fed, forged.id, own.data.period)
        finally:
            await rogue.stop()


async def _asked(rogue: RogueLeaf) -> bool:
    return bool(rogue.consumers)


async def _national_view(tmp_path: Path, fed: RunningFederation, forged_id: Any, own_period: str) -> None:
    settings = make_settings(
        tmp_path / "national",
        nats_url=fed.national_url,
        PULIH_REPORTING_MODE="national",
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START="2026-11-05",
    )
    async with serve(build(settings)) as http:
        letters = await eventually(
            lambda: stream_bodies(fed.hub_admin_url, names.NATIONAL_DLQ_STREAM), until=bool, timeout=20
        )
        assert [(s, body["data"]["error"]) for s, body in letters] == [
            (names.NATIONAL_DLQ_REPORTING, "forged_regency")
        ]
        assert str(forged_id) in letters[0][1]["data"]["payload"]
        assert source_name("3301") in letters[0][1]["data"]["reason"]

        async def regencies() -> list[tuple[str, str | None]]:
            answer = await http.get("/v1/national/regencies", headers=HEADERS)
            return [(r["code"], r["last_period"]) for r in answer.json()["regencies"]]

        assert await eventually(regencies, until=lambda rs: ("3302", own_period) in rs, timeout=20)
        answer = await http.get(
            "/v1/national/indicators",
            params={"level": "regency", "from": "2026-10", "to": "2026-10", "indicator": "clients_screened"},
            headers=HEADERS,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"] == []  # the forged month counts for no one
