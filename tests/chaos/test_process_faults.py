"""Services killed with SIGKILL under load (outreach under ``pulih up``, which starts it again) or
mid-backlog, and a store that cannot be written for longer than the consumers' retry budget: no
acknowledged write lost, no effect applied twice, idempotent retries answered as the first time,
and no dead letter for an infrastructure fault."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import pytest
from chaos_support import (
    DURABLES,
    MASTER_KEY,
    ChaosRegency,
    Load,
    ServiceProcess,
    caught_up,
    check_stream,
    dead_letters,
    events_in_stream,
    inbox_duplicates,
    read_model_differences,
    settled,
    unsent_outbox_rows,
)
from test_broker_faults import wait_for_acks
from test_supervision import Up

from pulih.contracts import stream_name
from pulih.kit.testing import JWT_SECRET, REGENCY, eventually

pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.system]

BUSY_TIMEOUT_SECONDS = 15  # kit/database.py: PRAGMA busy_timeout=15000


async def deliveries(nats_url: str, durable: str) -> int:
    """How many times the consumer has handed out a message, redeliveries included."""
    nc = await nats.connect(nats_url)
    try:
        return int((await nc.jetstream().consumer_info(stream_name(REGENCY), durable)).delivered.consumer_seq)
    finally:
        await nc.close()


def inbox_ids(service: ServiceProcess, consumer: str) -> set[str]:
    with sqlite3.connect(service.database, timeout=30) as db:
        rows = db.execute("SELECT event_id FROM inbox WHERE consumer = ?", (consumer,)).fetchall()
    return {str(uuid.UUID(r[0])) for r in rows}


def applied(database: Any, consumer: str) -> int:
    with sqlite3.connect(database, timeout=30) as db:
        return int(db.execute("SELECT count(*) FROM inbox WHERE consumer = ?", (consumer,)).fetchone()[0])


async def test_outreach_killed_under_load_is_restarted_by_pulih_up_and_loses_no_acknowledged_write(
    tmp_path: Path, figures: dict[str, Any]
) -> None:
    # the whole regency under `pulih up`, which must start outreach again by itself
    up = Up(
        tmp_path / "data",
        PULIH_JWT_SECRET=JWT_SECRET,
        PULIH_MASTER_KEY=MASTER_KEY,
        PULIH_RELAY_POLL_SECONDS="0.2",
        PULIH_MAX_DELIVER="4",
    )
    await asyncio.to_thread(up.start)
    try:
        nats_url = f"nats://127.0.0.1:{up.nats_port}"
        # the stores `pulih up` gave them (<data dir>/<service>.db), read with connections of our own
        outreach, rehab, referral = (
            ServiceProcess(name, up.data_dir, nats_url) for name in ("outreach", "rehab", "referral")
        )
        first_pids = up.pids()
        load = Load(up.url("outreach"))
        await load.prepare()

        running = asyncio.create_task(load.run(60))
        recoveries = []
        for restart in (1, 2):
            await wait_for_acks(load, 60 * restart)
            pid = up.pids()["outreach"]
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.to_thread(
                up.wait_for, rf"outreach exited \(code -9\); restarting in \d+\.\ds \(restart {restart}\)"
            )
            await asyncio.to_thread(up.healthy_with_new_pid, "outreach", pid)
            recoveries.append(time.monotonic() - killed)
        await running
        await eventually(
            lambda: asyncio.to_thread(unsent_outbox_rows, outreach), until=lambda n: n == 0, timeout=60
        )
        await eventually(lambda: caught_up(nats_url, "rehab", "referral"), timeout=60)

        messages = await events_in_stream(nats_url)
        check = check_stream(messages, load.acks)
        differing = await load.replayed_differently()
        figures.update(
            operations=len(load.acks),
            faults="outreach SIGKILL 2x, restarted by pulih up",
            retried_after_crash=load.retried,
            lost=len(check.lost),
            duplicated=len(check.duplicated) + len(check.duplicate_ids),
            replays_differing=len(differing),
            recover_s=max(recoveries),
        )
        assert up.process is not None and up.process.poll() is None, "the regency still runs"
        pids = up.pids()
        assert pids["outreach"] != first_pids["outreach"]
        assert {n: p for n, p in pids.items() if n != "outreach"} == {
            n: p for n, p in first_pids.items() if n != "outreach"
        }, "only the killed service was started again"
        assert load.failures == []
        assert len(load.acks) == 180
        assert load.transport_errors > 0, "the kills must have hit requests in flight"
        assert (check.gaps, check.duplicate_ids, check.lost, check.duplicated) == ([], [], [], [])
        assert differing == [], "a retry with the same Idempotency-Key must get the first answer"
        for service in (rehab, referral):
            assert read_model_differences(service, messages) == {}, service.name
            assert inbox_duplicates(service) == 0
        assert await dead_letters(nats_url) == []
    finally:
        code = await asyncio.to_thread(up.stop)
    assert code == 0, up.output()


async def test_rehab_killed_mid_backlog_applies_every_event_once(
    regency: ChaosRegency, figures: dict[str, Any]
) -> None:
    outreach = await regency.service("outreach").start()
    # batches of 4, so that the backlog takes a hundred of them and the kills land in its middle
    # (at the default 500, one batch takes the whole backlog before the first kill)
    rehab = await regency.service("rehab", PULIH_CONSUMER_BATCH_SIZE="4").start()
    rehab.stop()  # its durable consumer exists; the backlog builds up while it is away
    load = Load(outreach.url)
    await load.prepare()
    await load.run(150)
    await eventually(
        lambda: asyncio.to_thread(lambda: outreach.rows("outbox")),
        until=lambda rows: all(r["published_at"] for r in rows),
    )
    backlog = len(await events_in_stream(regency.nats.url))

    consumer = "rehab.outreach-events"
    await rehab.start()
    kills = 0
    for share in (0.25, 0.6):
        before = await asyncio.to_thread(applied, rehab.database, consumer)
        target = max(before + 1, int(backlog * share))
        await eventually(
            lambda: asyncio.to_thread(applied, rehab.database, consumer),
            until=lambda n, target=target: n >= target,  # type: ignore[misc]
            timeout=60,
        )
        rehab.kill()
        left = backlog - await asyncio.to_thread(applied, rehab.database, consumer)
        assert left > 1, "the whole backlog was applied before the kill: it did not land mid-backlog"
        kills += 1
        await rehab.start()
    restarted = time.monotonic()
    # a message in flight at a kill comes back after the consumer's ack_wait
    await settled(regency.nats, outreach, ["rehab"], timeout=90)
    recovery = time.monotonic() - restarted

    messages = await events_in_stream(regency.nats.url)
    handled = {
        (m.headers or {})["Nats-Msg-Id"]
        for m in messages
        if m.subject.startswith(f"ibm.{REGENCY}.outreach.") and not m.subject.endswith("unit_established")
    }
    in_inbox = await asyncio.to_thread(inbox_ids, rehab, consumer)
    figures.update(
        operations=backlog,
        faults=f"rehab SIGKILL {kills}x mid-backlog",
        deliveries_beyond_first=await deliveries(regency.nats.url, DURABLES["rehab"])
        - sum(m.subject.startswith(f"ibm.{REGENCY}.outreach.") for m in messages),
        lost=len(handled - in_inbox),
        duplicated=await asyncio.to_thread(inbox_duplicates, rehab),
        recover_s=recovery,
    )
    assert read_model_differences(rehab, messages) == {}
    assert in_inbox == handled, "every event applied, each once"
    assert await asyncio.to_thread(inbox_duplicates, rehab) == 0
    assert await dead_letters(regency.nats.url) == []


async def test_a_store_unwritable_past_the_retry_budget_dead_letters_nothing_and_catches_up(
    regency: ChaosRegency, figures: dict[str, Any]
) -> None:
    outreach = await regency.service("outreach").start()
    # two attempts of a 15 s busy timeout each, one second apart: a budget of about 31 s
    rehab = await regency.service("rehab", PULIH_MAX_DELIVER="2").start()
    budget = 2 * BUSY_TIMEOUT_SECONDS + 1
    load = Load(outreach.url)
    await load.prepare()
    await settled(regency.nats, outreach, ["rehab"])

    locked, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        db = sqlite3.connect(rehab.database, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")  # in WAL mode: every other writer waits, then fails
            locked.set()
            release.wait(120)
            db.execute("ROLLBACK")
        finally:
            db.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    try:
        assert await asyncio.to_thread(locked.wait, 10)
        began = time.monotonic()
        await load.run(1, concurrency=1)  # three events arrive while rehab cannot write
        # past the budget, or until the first dead letter says the attempts were spent
        await eventually(
            lambda: dead_letters(regency.nats.url),
            until=lambda dead: bool(dead) or time.monotonic() > began + budget + 10,
            timeout=budget + 20,
        )
    finally:
        release.set()
        await asyncio.to_thread(holder.join)
    unlocked = time.monotonic()
    outage = unlocked - began
    await settled(regency.nats, outreach, ["rehab"], timeout=90)
    recovery = time.monotonic() - unlocked

    messages = await events_in_stream(regency.nats.url)
    dead = await dead_letters(regency.nats.url)
    differences = read_model_differences(rehab, messages)
    figures.update(
        operations=len(load.acks),
        faults="rehab store write-locked",
        outage_s=outage,
        dead_letters=len(dead),
        lost=sum(len(d["missing"]) for d in differences.values()),
        duplicated=await asyncio.to_thread(inbox_duplicates, rehab),
        recover_s=recovery,
    )
    assert load.failures == [] and len(load.acks) == 3
    assert dead == [], [m.data[:300] for m in dead]
    assert differences == {}
