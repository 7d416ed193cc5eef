"""The broker killed (SIGKILL) or paused (SIGSTOP) under load: commands still succeed through the
outbox, every acknowledged write ends as exactly one event in the stream, and every consumer's
read model ends equal to a fold over the stream."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest
from chaos_support import (
    ChaosRegency,
    Load,
    check_stream,
    dead_letters,
    events_in_stream,
    inbox_duplicates,
    read_model_differences,
    settled,
)

pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.system]

CLIENTS = 80  # three writes each: 240 operations
CLIENTS_AFTER = 20
OUTAGE_SECONDS = 3.0
PAUSE_SECONDS = 5.0


async def wait_for_acks(load: Load, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(load.acks) < count:
        assert time.monotonic() < deadline, f"only {len(load.acks)} writes acknowledged"
        await asyncio.sleep(0.05)


async def test_broker_killed_under_load_loses_and_duplicates_nothing(
    regency: ChaosRegency, figures: dict[str, Any]
) -> None:
    outreach = await regency.service("outreach").start()
    for name in ("rehab", "referral"):
        await regency.service(name).start()
    load = Load(outreach.url)
    await load.prepare()

    running = asyncio.create_task(load.run(CLIENTS))
    await wait_for_acks(load, CLIENTS)  # a third of the way through
    regency.nats.kill()
    acked_during = len(load.acks)
    await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
    acked_during = len(load.acks) - acked_during
    regency.nats.start()
    back = time.monotonic()
    await running
    await load.run(CLIENTS_AFTER)  # and more once it is back
    recovered = await settled(regency.nats, outreach, ["rehab", "referral"])
    recovery = time.monotonic() - back

    messages = await events_in_stream(regency.nats.url)
    check = check_stream(messages, load.acks)
    figures.update(
        operations=len(load.acks),
        faults="nats-server SIGKILL 1x",
        outage_s=OUTAGE_SECONDS,
        acked_during_outage=acked_during,
        lost=len(check.lost),
        duplicated=len(check.duplicated) + len(check.duplicate_ids),
        recover_s=recovery,
        drain_after_load_s=recovered,
    )
    assert load.failures == []
    assert len(load.acks) == 3 * (CLIENTS + CLIENTS_AFTER)
    assert acked_during > 0, "outreach must keep accepting commands while the broker is down"
    assert (check.gaps, check.duplicate_ids, check.lost, check.duplicated) == ([], [], [], [])
    for name in ("rehab", "referral"):
        assert read_model_differences(regency.services[name], messages) == {}, name
        assert inbox_duplicates(regency.services[name]) == 0
    assert await dead_letters(regency.nats.url) == []


async def test_broker_paused_commands_succeed_and_the_backlog_drains(
    regency: ChaosRegency, figures: dict[str, Any]
) -> None:
    outreach = await regency.service("outreach").start()
    await regency.service("rehab").start()
    load = Load(outreach.url)
    await load.prepare()

    running = asyncio.create_task(load.run(CLIENTS))
    await wait_for_acks(load, CLIENTS)
    process = regency.nats.process
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    acked_during = len(load.acks)
    await asyncio.sleep(PAUSE_SECONDS)  # the pause itself
    acked_during = len(load.acks) - acked_during
    process.send_signal(signal.SIGCONT)
    back = time.monotonic()
    await running
    await settled(regency.nats, outreach, ["rehab"])
    recovery = time.monotonic() - back

    messages = await events_in_stream(regency.nats.url)
    check = check_stream(messages, load.acks)
    figures.update(
        operations=len(load.acks),
        faults="nats-server SIGSTOP/SIGCONT 1x",
        outage_s=PAUSE_SECONDS,
        acked_during_outage=acked_during,
        lost=len(check.lost),
        duplicated=len(check.duplicated) + len(check.duplicate_ids),
        recover_s=recovery,
    )
    assert load.failures == []
    assert len(load.acks) == 3 * CLIENTS
    assert acked_during > 0, "commands must succeed through the outbox while the broker is paused"
    assert (check.gaps, check.duplicate_ids, check.lost, check.duplicated) == ([], [], [], [])
    assert read_model_differences(regency.services["rehab"], messages) == {}
    assert await dead_letters(regency.nats.url) == []
