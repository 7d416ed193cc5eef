"""Reading the regency's stream from one sequence to another, fast, and leaving nothing behind.

:func:`stream_messages` reads through an ephemeral pull consumer (no acks, in memory, deleted at
the end, and by the server after a minute of silence if the reader dies). Its pull requests are
answered on an inbox of its own: nats-py's ``fetch`` waits for each message with a timer of its
own, which costs more than reading the message.

:func:`read_elsewhere` runs that reader in a process of its own and hands over each fetch as
(stream sequence, body) pairs: the rebuild's own process then spends its core on parsing and
storing, and the reading (nats-py's protocol work, about a fifth of the rebuild's time in one
process) goes to the other core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from typing import TypeVar

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from pulih.contracts import regency_subjects, stream_name
from pulih.kit.messaging import nats_tls
from pulih.kit.settings import Settings

T = TypeVar("T")

Body = tuple[int, bytes]
"""A message as the rebuild reads it: its stream sequence and its body."""

FETCH = 1000
"""Messages per pull request."""
AHEAD = 3
"""Fetches read ahead of whoever takes them: what bounds the reader's memory."""
PULL_TIMEOUT = 30.0
"""How long one pull request may take before the reader gives up (a server gone)."""


async def connect(nats_url: str, settings: Settings | None = None) -> Client:
    """A connection to the regency's NATS server (with its TLS settings, when given)."""
    tls = nats_tls(settings) if settings is not None else None

    async def quiet(_: Exception) -> None:
        # a failure surfaces as the exception connect() or the next request raises; nats-py's
        # default callback would print a traceback for each reconnect attempt as well
        return None

    return await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3, tls=tls, error_cb=quiet)


async def last_sequence(nc: Client, regency: str) -> int:
    """The sequence of the last message in the regency's stream (0 when it has none)."""
    try:
        return int((await nc.jetstream().stream_info(stream_name(regency))).state.last_seq)
    except NotFoundError:
        return 0


async def stream_messages(
    nc: Client, regency: str, first: int, last: int, fetch: int = FETCH
) -> AsyncIterator[list[Msg]]:
    """The regency's messages from sequence ``first`` to ``last``, in order, up to ``fetch`` at
    a time, through an ephemeral pull consumer (no acks, in memory, deleted at the end, and by
    the server after a minute of silence if this process dies).

    Pull requests are answered on an inbox of our own, collected by its callback: nats-py's
    ``fetch`` waits for each message with a timer of its own, which costs more than reading it.
    """
    if last < first:
        return
    js = nc.jetstream()
    stream = stream_name(regency)
    consumer = nc.new_inbox().rsplit(".", 1)[-1]
    await js.add_consumer(
        stream,
        ConsumerConfig(
            name=consumer,
            filter_subject=regency_subjects(regency),
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=first,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
            mem_storage=True,
            num_replicas=1,
        ),
    )
    pulls = _Pulls(nc, f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}")
    await pulls.open()
    try:
        seq = first - 1
        while seq < last:
            messages = await pulls.fetch(min(fetch, last - seq))
            if not messages:
                return  # the stream holds no more (messages erased from the range)
            in_range = [m for m in messages if stream_seq(m) <= last]
            if in_range:
                seq = stream_seq(in_range[-1])
                yield in_range
            if len(in_range) < len(messages):
                return
    finally:
        await pulls.close()
        with contextlib.suppress(NotFoundError, nats.errors.Error):
            await js.delete_consumer(stream, consumer)


class _Pulls:
    """Pull requests of one consumer, answered on an inbox of its own."""

    def __init__(self, nc: Client, subject: str) -> None:
        self.nc = nc
        self.subject = subject
        self._inbox = nc.new_inbox()
        self._subscription: Subscription | None = None
        self._received: list[Msg] = []
        self._wanted = 0
        self._answered = asyncio.Event()

    async def open(self) -> None:
        """Listen on the inbox."""
        self._subscription = await self.nc.subscribe(self._inbox, cb=self._deliver)

    async def close(self) -> None:
        """Stop listening."""
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def fetch(self, count: int) -> list[Msg]:
        """Up to ``count`` messages that are in the stream now (none when it holds no more)."""
        self._answered.clear()
        self._wanted = count
        request = json.dumps({"batch": count, "no_wait": True}).encode()
        await self.nc.publish(self.subject, request, reply=self._inbox)
        await asyncio.wait_for(self._answered.wait(), PULL_TIMEOUT)
        batch, self._received = self._received, []
        return batch

    async def _deliver(self, message: Msg) -> None:
        status = message.headers.get("Status") if message.headers else None
        if status is None:
            self._received.append(message)
            if len(self._received) >= self._wanted:
                self._answered.set()
        elif status != "100":  # no more messages now (404), or the request ended (408, 409)
            self._answered.set()


def stream_seq(msg: Msg) -> int:
    """The stream sequence of a JetStream message, from its reply subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…``, or with a domain and an
    account hash after ``$JS.ACK``, as nats-py reads it): ``msg.metadata`` parses the whole
    subject into objects, which costs as much as applying the event."""
    tokens = msg.reply.split(".")
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


async def read_ahead(batches: AsyncIterator[T], depth: int = AHEAD) -> AsyncIterator[T]:
    """``batches``, taken up to ``depth`` ahead by a task of their own (the store works
    meanwhile)."""
    queue: asyncio.Queue[T | BaseException | None] = asyncio.Queue(maxsize=depth)

    async def fill() -> None:
        try:
            async for batch in batches:
                await queue.put(batch)
            await queue.put(None)
        except Exception as exc:
            await queue.put(exc)

    task = asyncio.create_task(fill(), name="rebuild read-ahead")
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def read_elsewhere(
    nats_url: str, settings: Settings | None, regency: str, first: int, last: int, fetch: int = FETCH
) -> AsyncIterator[list[Body]]:
    """:func:`stream_messages` from ``first`` to ``last``, run in a process of its own, as
    (stream sequence, body) pairs. The pipe between the processes holds a few fetches at most:
    the reader waits when the taker is behind."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    reader = context.Process(
        target=_read_in_child,
        args=(nats_url, settings, regency, first, last, fetch, theirs),
        name="pulih rebuild reader",
        daemon=True,
    )
    reader.start()
    theirs.close()
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                chunk = await loop.run_in_executor(None, ours.recv)
            except EOFError:
                raise RuntimeError(f"the stream reader died (exit code {reader.exitcode})") from None
            if chunk is None:
                return
            if isinstance(chunk, str):
                raise RuntimeError(f"the stream reader failed: {chunk}")
            yield chunk
    finally:
        ours.close()
        await loop.run_in_executor(None, reader.join, 10)
        if reader.is_alive():
            reader.terminate()


def _read_in_child(
    nats_url: str,
    settings: Settings | None,
    regency: str,
    first: int,
    last: int,
    fetch: int,
    pipe: Connection,
) -> None:
    async def pump() -> None:
        nc = await connect(nats_url, settings)
        try:
            async for messages in stream_messages(nc, regency, first, last, fetch):
                # blocking send: the pipe's buffer is the read-ahead, the taker sets the pace
                pipe.send([(stream_seq(m), m.data) for m in messages])
            pipe.send(None)
        finally:
            await nc.close()

    try:
        asyncio.run(pump())
    except BrokenPipeError:
        pass  # the taker is gone
    except Exception as exc:
        with contextlib.suppress(OSError):
            pipe.send(f"{type(exc).__name__}: {exc}")
    finally:
        pipe.close()
