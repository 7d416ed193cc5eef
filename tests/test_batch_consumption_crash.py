"""A batch consumer killed with ``kill -9`` in the middle of a batch, on SQLite and PostgreSQL,
applying batches with one function (``apply``, its inbox the kit's or its own) or with event
handlers, as rehab, referral and outreach do.

The consumer runs in a process of its own (this file run as a script) that kills itself at a
chosen point: while ``apply`` is writing a batch (before the commit), or right after the commit
of a batch and before any of its messages is acknowledged (a SQLAlchemy ``after_commit`` hook).
A second process, started beforehand, then takes over the durable. The recorder's counter
has no key that could refuse a second application: it ends at the number of events only if no
event was applied twice and none was lost; the log shows they were applied in stream order
across the crash.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import nats
import pytest
from batch_support import (
    DLQ,
    DURABLE,
    SERVICE,
    Recorder,
    acked_up_to,
    applications,
    counted,
    create_stream,
    mixed_events,
    open_store,
    publish,
    start_consumer,
)
from nats.js.api import ConsumerInfo
from sqlalchemy import event
from sqlalchemy.orm import Session
from system_support import stream_messages

from pulih.contracts import stream_name
from pulih.kit.batch_consumer import Received
from pulih.kit.database import Database
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY, eventually

pytestmark = [pytest.mark.system, pytest.mark.slow]

BATCH = 50
EVENTS = 300
KILLED_BATCH = slice(100, 150)  # the third batch holds the event that triggers the kill
ACK_WAIT = 8
"""Longer than the second process takes to take over (it is started beforehand and waits): it
asks for messages while the killed batch is still pending, and must not be given later ones."""


async def consume_until_killed(args: argparse.Namespace) -> None:
    """The consumer process: apply batches; die at ``--kill-at`` when the batch holding
    ``--trigger-seq`` gets there."""
    armed = False

    def at_event(received: Received) -> None:
        nonlocal armed
        if received.stream_seq != args.trigger_seq:
            return
        if args.kill_at == "mid-apply":
            os.kill(os.getpid(), signal.SIGKILL)  # earlier events of the batch are written, uncommitted
        armed = args.kill_at == "after-commit"

    def after_commit(_: Session) -> None:
        if armed:
            os.kill(os.getpid(), signal.SIGKILL)  # committed; no message of the batch acked yet

    event.listen(Session, "after_commit", after_commit)
    if args.standby:  # started early, so that taking over is quicker than ack_wait
        go = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, go.set)
        _mark_ready(Path(args.data_dir))
        await go.wait()
    recorder = Recorder(tracks_itself=args.mode == "tracks-itself", on_event=at_event)
    await start_consumer(
        Path(args.data_dir),
        args.nats_url,
        args.database_url,
        recorder,
        batch_size=BATCH,
        handlers=args.mode == "handlers",
        PULIH_ACK_WAIT_SECONDS=ACK_WAIT,
    )
    await asyncio.Event().wait()  # until killed or terminated


def _mark_ready(data_dir: Path) -> None:
    (data_dir / "ready").touch()


async def run_consumer_process(
    tmp_path: Path,
    name: str,
    nats_url: str,
    database_url: str,
    *,
    mode: str,
    kill_at: str,
    trigger: int = 0,
    standby: bool = False,
) -> asyncio.subprocess.Process:
    (tmp_path / name).mkdir()
    log = (tmp_path / f"{name}.log").open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        f"--nats-url={nats_url}",
        f"--database-url={database_url}",
        f"--data-dir={tmp_path / name}",
        f"--kill-at={kill_at}",
        f"--trigger-seq={trigger}",
        f"--mode={mode}",
        *(["--standby"] if standby else []),
        stdout=log,
        stderr=log,
    )


async def consumer_info(nats_url: str) -> ConsumerInfo:
    nc = await nats.connect(nats_url)
    try:
        return await nc.jetstream().consumer_info(stream_name(REGENCY), f"{SERVICE}-{DURABLE}")
    finally:
        await nc.close()


async def ack_floor(nats_url: str) -> int:
    """The durable's ack floor: every message up to it is acknowledged."""
    return int((await consumer_info(nats_url)).ack_floor.stream_seq)


async def ack_pending(nats_url: str) -> int:
    """How many messages were delivered and not acknowledged yet."""
    return int((await consumer_info(nats_url)).num_ack_pending)


@pytest.mark.parametrize("kill_at", ["mid-apply", "after-commit"])
@pytest.mark.parametrize("mode", ["kit-inbox", "tracks-itself", "handlers"])
async def test_a_consumer_killed_inside_a_batch_leaves_no_partial_and_no_double_effect(
    tmp_path: Path, nats_server: NatsServer, database_url: str, kill_at: str, mode: str
) -> None:
    await create_stream(nats_server.url)
    store = await open_store(database_url)  # read by the test; written by the consumer processes
    try:
        await _kill_then_take_over(tmp_path, nats_server.url, database_url, store, kill_at, mode)
    finally:
        await store.dispose()


async def _kill_then_take_over(
    tmp_path: Path, nats_url: str, database_url: str, store: Database, kill_at: str, mode: str
) -> None:
    seqs = await publish(nats_url, mixed_events(EVENTS))
    second = await run_consumer_process(
        tmp_path,
        "second",
        nats_url,
        database_url,
        mode=mode,
        kill_at="never",
        standby=True,
    )
    try:
        first = await run_consumer_process(
            tmp_path,
            "first",
            nats_url,
            database_url,
            mode=mode,
            kill_at=kill_at,
            trigger=seqs[KILLED_BATCH][20],
        )
        assert await asyncio.wait_for(first.wait(), 60) == -signal.SIGKILL

        applied = [seq for seq, _, _ in await applications(store)]
        if kill_at == "mid-apply":
            assert applied == seqs[: KILLED_BATCH.start], "nothing of the killed batch was committed"
        else:
            assert applied == seqs[: KILLED_BATCH.stop], "the killed batch was committed"
            assert await ack_floor(nats_url) < seqs[KILLED_BATCH.stop - 1], "and not acknowledged"
        assert await counted(store) == len(applied)

        await eventually(lambda: asyncio.sleep(0, (tmp_path / "second" / "ready").exists()), timeout=30)
        assert await ack_pending(nats_url) == BATCH, "the killed batch is still pending"
        second.send_signal(signal.SIGUSR1)
        await eventually(lambda: acked_up_to(nats_url), until=lambda seq: seq >= seqs[-1], timeout=60)
    finally:
        second.terminate()
        await second.wait()
    log = await applications(store)
    assert [seq for seq, _, _ in log] == seqs, "every event once, in stream order across the crash"
    assert await counted(store) == EVENTS, "no double effect"
    assert await stream_messages(nats_url, DLQ) == [], "no redelivered event was refused either"
    if kill_at == "mid-apply":
        attempts = {seq: attempt for seq, _, attempt in log}
        assert {attempts[seq] for seq in seqs[KILLED_BATCH]} == {2}, (
            "the killed batch came back, applied then"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a batch consumer that kills itself inside a batch")
    parser.add_argument("--nats-url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--kill-at", choices=["mid-apply", "after-commit", "never"], required=True)
    parser.add_argument("--trigger-seq", type=int, required=True)
    parser.add_argument("--mode", choices=["kit-inbox", "tracks-itself", "handlers"], required=True)
    parser.add_argument("--standby", action="store_true", help="start consuming on SIGUSR1")
    asyncio.run(consume_until_killed(parser.parse_args()))
