"""``pulih dlq list|show|replay`` (issue 15, item 2) against a real nats-server and rehab: an event
rehab's consumer dead-letters (a bug in its handler) is replayed after the fix into that consumer,
once, with a single effect and an audit record; a second replay does nothing."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import func, select
from system_support import stream_messages

from pulih.contracts import CloudEvent, Event, new_event, subject_for
from pulih.contracts.codes import AgeBand, CameThrough, ConsentScope, Sex
from pulih.contracts.events.outreach import ClientRegistered, ConsentRecorded
from pulih.kit import dlq
from pulih.kit.consumers import Delivery
from pulih.kit.inbox import inbox_table
from pulih.kit.nats_server import NatsServer
from pulih.kit.outbox import envelope_headers
from pulih.kit.testing import REGENCY, eventually, make_settings, serve
from pulih.kit.unit_of_work import UnitOfWork
from pulih.rehab import consumers as rehab_consumers
from pulih.rehab.app import build
from pulih.rehab.store import KnownClient, KnownConsent

pytestmark = pytest.mark.system

CONSUMER = "rehab.outreach-events"


async def publish(nats_url: str, event: Event) -> CloudEvent[Any]:
    """Publish an event as outreach's relay would."""
    envelope = new_event(event, regency=REGENCY)
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(
            subject_for(envelope, REGENCY), envelope.to_json(), headers=envelope_headers(envelope)
        )
    finally:
        await nc.close()
    return envelope


async def pulih(nats_url: str, *args: str) -> tuple[int, str]:
    """Run the ``pulih`` command as an operator would; return its exit code and output."""
    env = {**os.environ, "NATS_URL": nats_url, "PULIH_REGENCY": REGENCY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pulih.kit.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


@pytest.fixture
def bug(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """A bug in rehab's ConsentRecorded handler: it fails every time while switched on."""
    state = {"on": True}
    fixed = rehab_consumers.OUTREACH_HANDLERS[ConsentRecorded]

    async def buggy(uow: UnitOfWork, event: CloudEvent[Any], delivery: Delivery) -> None:
        if state["on"]:
            raise RuntimeError("a bug in the consent handler")
        await fixed(uow, event, delivery)

    monkeypatch.setitem(rehab_consumers.OUTREACH_HANDLERS, ConsentRecorded, buggy)
    return state


@pytest.fixture
async def rehab(tmp_path: Path, nats_server: NatsServer, bug: dict[str, bool]) -> AsyncIterator[Any]:
    settings = make_settings(
        tmp_path,
        nats_url=nats_server.url,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/rehab.db",
        PULIH_MAX_DELIVER=2,
    )
    app = build(settings)
    async with serve(app) as http:
        await eventually(lambda: http.get("/readyz"), until=lambda r: r.status_code == 200, timeout=20)
        yield app


async def count(app: Any, statement: Any) -> int:
    async with app.state.runtime.database.sessions() as session:
        return int(await session.scalar(statement) or 0)


async def test_a_dead_letter_is_replayed_into_its_consumer_once_and_audited(
    rehab: Any, nats_server: NatsServer, bug: dict[str, bool]
) -> None:
    url = nats_server.url
    client_id, consent_id = uuid.uuid4(), uuid.uuid4()
    await publish(
        url,
        ClientRegistered(
            client_id=client_id,
            unit_id=uuid.uuid4(),
            registered_on=date(2026, 2, 1),
            sex=Sex.F,
            age_band=AgeBand.AGE_25_34,
            came_through=CameThrough.OUTREACH,
        ),
    )
    consent = await publish(
        url,
        ConsentRecorded(
            consent_id=consent_id,
            client_id=client_id,
            scopes=[ConsentScope.PROGRAMME],
            given_on=date(2026, 2, 1),
        ),
    )
    consent_subject = f"ibm.{REGENCY}.outreach.consent_recorded"
    letters = await eventually(lambda: stream_messages(url, f"ibm.{REGENCY}.dlq.rehab"), timeout=20)
    assert len(letters) == 1
    assert await count(rehab, select(func.count()).select_from(KnownClient)) == 1
    assert await count(rehab, select(func.count()).select_from(KnownConsent)) == 0

    # The list shows it, filters narrow it.
    code, out = await pulih(url, "dlq", "list")
    assert code == 0, out
    line = out.splitlines()[0]
    assert CONSUMER in line and "handler_failed" in line and "ConsentRecorded" in line and "[-]" in line
    assert out.splitlines()[-1] == "1 dead letter"
    for narrowing, expected in (
        (["--service", "rehab", "--reason", "handler_failed", "--since", "1h"], "1 dead letter"),
        (["--reason", "bug in the consent"], "1 dead letter"),
        (["--service", "referral"], "0 dead letters"),
        (["--reason", "not_ready"], "0 dead letters"),
        (["--since", "2999-01-01"], "0 dead letters"),
    ):
        code, out = await pulih(url, "dlq", "list", *narrowing)
        assert (code, out.splitlines()[-1]) == (0, expected), (narrowing, out)

    # Nothing is replayed without a selection.
    code, out = await pulih(url, "dlq", "replay")
    assert code == 2 and "needs ids" in out

    # The fix is deployed; the dead letter goes back to the consumer that refused it.
    bug["on"] = False
    code, out = await pulih(
        url, "dlq", "replay", "--service", "rehab", "--reason", "handler_failed", "--by", "ops-ani"
    )
    assert code == 0, out
    assert f"to {CONSUMER}" in out and out.splitlines()[-1] == "1 replayed, 0 already replayed, 0 refused"

    await eventually(
        lambda: count(rehab, select(func.count()).select_from(KnownConsent)), until=lambda n: n == 1
    )
    inbox_rows = select(func.count()).select_from(inbox_table).where(inbox_table.c.event_id == consent.id)
    assert await count(rehab, inbox_rows) == 1
    copies = await stream_messages(url, consent_subject)
    assert len(copies) == 2  # the original and one replay, with its origin in its headers
    assert copies[1].headers is not None
    assert copies[1].headers["Pulih-Replayed-By"] == "ops-ani"
    assert copies[1].headers["Pulih-Replay-For"] == CONSUMER
    letter_id = copies[1].headers["Pulih-Replay-Of"]

    # A second replay of the same selection does nothing.
    code, out = await pulih(url, "dlq", "replay", "--service", "rehab", "--by", "ops-budi")
    assert code == 0, out
    assert out.splitlines()[-1] == "0 replayed, 1 already replayed, 0 refused"
    assert "by ops-ani" in out
    assert len(await stream_messages(url, consent_subject)) == 2

    # The audit: list and show say who replayed it and when.
    code, out = await pulih(url, "dlq", "list", "--service", "rehab")
    assert "replayed" in out.splitlines()[0] and "by ops-ani" in out.splitlines()[0]
    code, out = await pulih(url, "dlq", "show", letter_id[:8])
    assert code == 0, out
    assert f"consumer      {CONSUMER}" in out and "error         handler_failed" in out
    assert "claimed" in out and "by ops-ani as stream sequence" in out
    assert str(consent_id) in out  # the copy, pretty-printed

    # The record lost (a bucket restored from an older backup): replaying again within the
    # duplicate window adds no copy, and the consumer's inbox would absorb one anyway.
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        kv = await dlq.replay_records(js, REGENCY)
        await kv.purge(f"rehab.{letter_id}")
        outcomes, refused = await dlq.replay(js, REGENCY, dlq.Selection(ids=[letter_id]), by="ops-citra")
    finally:
        await nc.close()
    assert [o.replayed for o in outcomes] == [True] and refused == []
    assert len(await stream_messages(url, consent_subject)) == 2
    assert await count(rehab, select(func.count()).select_from(KnownConsent)) == 1
    assert await count(rehab, inbox_rows) == 1
