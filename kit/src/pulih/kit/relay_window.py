"""Windows of outbox rows published at once, each client's rows still in outbox order.

The outbox relay (:class:`pulih.kit.outbox.OutboxRelay`) no longer waits for one PubAck before
sending the next message: it reads a window of rows, sends them with up to ``max_in_flight``
PubAcks pending, and marks the acknowledged ones with one UPDATE; the next window is read and
started while the previous one's PubAcks arrive. Pipelining alone would break ARCHITECTURE.md
invariant 3 after a failure: with rows k and k+1 in flight, k refused (a timeout, a full stream,
a lost connection) and k+1 stored, the stream holds k+1 before k, and no retry can put k back in
front (retrying from k, JetStream's duplicate window drops k+1's copy, so the stream ends k+1,
k).

So a row is sent only once every earlier row **about the same thing** has its PubAck. "About the
same thing" are the row's ordering keys (:func:`ordering_keys`): the envelope's ``subject`` (the
client, referral, unit or agent the event is about) and the data's ``client_id`` when it has one
(a referral's events all share the referral's id, and the first also names the client). Rows
with no key in common go out together, in outbox order on one connection; rows with a key in
common go out one after the other, each after the previous one's PubAck, while rows about other
clients go on (so the stream may hold different clients' events in another order than the
outbox: invariant 3 is per client). A row whose predecessor failed is not sent at all (it is
"held"), so one message the stream refuses stops its client and not the regency; no further
window is started after a failure. Every row not acknowledged stays in the
outbox for the next attempt, which starts again from the first unmarked row. A row whose
payload has no readable ``subject`` has no keys: it waits for every row before it and every
row after it waits for it.

Why that is enough after *any* failure: for two rows a before b about one client, b is sent only
after a's PubAck, i.e. after a is in the stream. If a fails, b is not sent in that window; the
next attempt sends a again (dropped as a duplicate if it was stored after all: a timeout whose
PubAck was lost, or a server killed after storing it) and b only after that PubAck. A server
killed mid-window loses in-flight messages or stores them; neither can put b before a. A message
buffered by the client during a reconnect reaches the server before anything sent after it on
the same connection, and b is never sent before a is acknowledged. Rows about different clients
may end up in another order after a failure (the first failed, the second stored): the order
that matters, invariant 3's, is per client.

Not chosen: JetStream atomic batches (ADR-50) store a window all-or-nothing but reject a whole
batch that contains a duplicate ``Nats-Msg-Id`` (error 10201), so a window stored whose PubAck
was lost could never be sent again; and they need nats-server 2.12+ and a stream flag.
``Nats-Expected-Last-Subject-Sequence`` needs the previous message's sequence, which is known
only after its PubAck, so it serialises exactly as the keys do, and across more messages (a
NATS subject is an event type, not a client).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One unsent outbox row as the relay reads it."""

    seq: int
    subject: str
    payload: bytes
    headers: dict[str, str]


_SUBJECT = re.compile(rb'"subject":"((?:[^"\\]|\\.)*)"')
_CLIENT = re.compile(rb'"client_id":"([^"\\]*)"')


def ordering_keys(payload: bytes) -> frozenset[str] | None:
    """What a row must stay in order with: its envelope's ``subject`` and its data's ``client_id``.

    Read from the JSON without parsing it (a row is looked at on every publish): the envelope's
    ``subject`` comes before ``data`` (:meth:`pulih.contracts.CloudEvent.to_json`), and neither
    pattern can match inside a JSON string, whose quotes are escaped. Any ``client_id`` in the
    data counts (more keys only ever mean more order). None for a payload without a subject:
    such a row waits for every earlier row of its window and every later row waits for it (the
    safe order when the keys are unknown).
    """
    subject = _SUBJECT.search(payload)
    if subject is None:
        return None
    clients = _CLIENT.findall(payload, subject.end())
    if not clients:
        return frozenset((subject.group(1).decode(errors="replace"),))
    return frozenset(key.decode(errors="replace") for key in (subject.group(1), *clients))


@dataclass
class WindowOutcome:
    """What became of one window."""

    acked: list[int] = field(default_factory=list)
    """The rows whose PubAck came (stored, or dropped as a duplicate of a stored copy), in
    outbox order: these may be marked published."""
    error: Exception | None = None
    """The failure of the earliest failed row, if any."""
    failed: int = 0
    """Rows whose publish failed."""
    held: int = 0
    """Rows not sent because an earlier row about the same thing failed."""


Send = Callable[[OutboxRow], Awaitable["asyncio.Future[Any]"]]
"""Puts a row on the wire and returns a future of its PubAck (failing if the stream refused it)."""

_PENDING, _SENT, _ACKED, _FAILED, _HELD = range(5)


class _Entry:
    """One row in the pipeline: its state, how many earlier rows it still waits for, and the
    later rows that wait for it."""

    __slots__ = ("dependents", "index", "keys", "row", "state", "waiting", "window")

    def __init__(self, row: OutboxRow, window: Window, index: int, keys: frozenset[str] | None) -> None:
        self.row = row
        self.window = window
        self.index = index
        self.keys = keys
        self.state = _PENDING
        self.waiting = 0
        self.dependents: list[_Entry] = []


class OrderedPipeline:
    """Windows of rows started one after the other, the keys' order kept across them.

    A window is started (:meth:`start`) while earlier ones still await PubAcks, so reading and
    marking rows overlap with publishing; a row of a later window still waits for the earlier
    rows it shares a key with, whichever window they are in. One driver sends every row whose
    earlier rows are acknowledged, at most ``max_in_flight`` awaiting their PubAck at a time; a
    row waiting for an earlier one takes no place, so clients with several rows each still keep
    ``max_in_flight`` publishes going. No task per row: ``send`` returns a future and the PubAck
    settles the row in a callback. A send not answered within ``timeout`` seconds fails with
    :class:`TimeoutError`.

    A failed publish holds back only the later rows it shares a key with: one message the
    stream refuses stops its client, not the regency. Once one has failed (:attr:`failed`) the
    relay starts no further window.
    """

    def __init__(self, send: Send, *, max_in_flight: int = 256, timeout: float = 5.0) -> None:
        self._send = send
        self._max_in_flight = max_in_flight
        self._timeout = timeout
        self._latest: dict[str, _Entry] = {}
        self._barrier: _Entry | None = None
        self._unsettled: set[_Entry] = set()
        self._ready: collections.deque[_Entry] = collections.deque()
        self._sent: collections.deque[tuple[float, _Entry, asyncio.Future[Any]]] = collections.deque()
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None
        self.failed = False
        """A publish failed (start no further window)."""

    def start(self, rows: Sequence[OutboxRow]) -> Window:
        """Start publishing ``rows`` (the outbox's next rows, in order)."""
        window = Window(rows)
        for index, row in enumerate(rows):
            keys = ordering_keys(row.payload)
            entry = _Entry(row, window, index, keys)
            earlier: set[_Entry] | list[_Entry]
            if keys is None:
                earlier = list(self._unsettled)
            else:
                earlier = {found for key in keys if (found := self._latest.get(key)) is not None}
                if self._barrier is not None:
                    earlier.add(self._barrier)
            self._unsettled.add(entry)
            if keys is None:
                self._barrier, self._latest = entry, {}
            else:
                for key in keys:
                    self._latest[key] = entry
            for before in earlier:
                if before.state in (_FAILED, _HELD):
                    self._settle(entry, _HELD)
                    break
                if before.state != _ACKED:
                    before.dependents.append(entry)
                    entry.waiting += 1
            else:
                if entry.waiting == 0:
                    self._ready.append(entry)
        if window.unsettled == 0:
            window.all_done.set_result(None)
        if self._driver is None:
            self._driver = asyncio.get_running_loop().create_task(self._drive(), name="pulih-relay-pipeline")
        self._wake.set()
        return window

    def cancel(self) -> None:
        """Stop sending; rows not acknowledged stay unmarked (call once done with the pipeline)."""
        if self._driver is not None:
            self._driver.cancel()
        for _, _, future in self._sent:
            future.cancel()

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._wake.clear()
                while self._ready and self._in_flight < self._max_in_flight:
                    entry = self._ready.popleft()
                    if entry.state != _PENDING:
                        continue
                    entry.state = _SENT
                    self._in_flight += 1
                    try:
                        future = await self._send(entry.row)
                    except Exception as exc:
                        self._in_flight -= 1
                        self._settle(entry, _FAILED, exc)
                        continue
                    self._sent.append((loop.time() + self._timeout, entry, future))
                    future.add_done_callback(functools.partial(self._answered, entry))
                while self._sent and self._sent[0][2].done():
                    self._sent.popleft()
                if self._ready and self._in_flight < self._max_in_flight:
                    continue
                if not self._sent:
                    await self._wake.wait()
                    continue
                deadline, _, future = self._sent[0]
                if deadline <= loop.time():
                    future.cancel()  # no PubAck in time: _answered fails it
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):  # no task per wait, as wait_for makes
                        await self._wake.wait()
        except Exception as exc:  # a bug here must not leave windows waiting forever
            for entry in list(self._unsettled):
                self._settle(entry, _FAILED, exc)
            raise

    def _answered(self, entry: _Entry, future: asyncio.Future[Any]) -> None:
        self._in_flight -= 1
        self._wake.set()
        if future.cancelled():
            self._settle(entry, _FAILED, TimeoutError(f"no PubAck within {self._timeout:g}s"))
        elif (exc := future.exception()) is not None:
            self._settle(entry, _FAILED, exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
        else:
            self._settle(entry, _ACKED)

    def _settle(self, entry: _Entry, state: int, exc: Exception | None = None) -> None:
        settling = [(entry, state, exc)]
        while settling:
            entry, state, exc = settling.pop()
            if entry.state in (_ACKED, _FAILED, _HELD):
                continue
            entry.state = state
            self._unsettled.discard(entry)
            window = entry.window
            if state == _ACKED:
                window.acked[entry.index] = True
                # An acknowledged row holds nothing back: forget it, so a long backlog does not
                # keep every row it published (a failed one stays, to hold its client's rows).
                for key in entry.keys or ():
                    if self._latest.get(key) is entry:
                        del self._latest[key]
                if self._barrier is entry:
                    self._barrier = None
            elif state == _FAILED:
                self.failed = True
                window.errors[entry.index] = exc or RuntimeError("publish failed")
            window.unsettled -= 1
            if window.unsettled == 0 and not window.all_done.done():
                window.all_done.set_result(None)
            for later in entry.dependents:
                if state == _ACKED:
                    later.waiting -= 1
                    if later.waiting == 0 and later.state == _PENDING:
                        self._ready.append(later)
                else:
                    settling.append((later, _HELD, None))  # held: an earlier row is not in the stream
            entry.dependents = []


class Window:
    """Rows started together by an :class:`OrderedPipeline`."""

    def __init__(self, rows: Sequence[OutboxRow]) -> None:
        self.rows = rows
        self.acked = [False] * len(rows)
        self.errors: dict[int, Exception] = {}
        self.unsettled = len(rows)
        self.all_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def outcome(self) -> WindowOutcome:
        """Once every row has its answer (or was held back): what became of the window."""
        await self.all_done
        outcome = WindowOutcome(acked=[row.seq for row, ok in zip(self.rows, self.acked, strict=True) if ok])
        outcome.failed = len(self.errors)
        if self.errors:
            outcome.error = self.errors[min(self.errors)]
        outcome.held = len(self.rows) - len(outcome.acked) - outcome.failed
        return outcome


def sending(publish: Callable[[OutboxRow], Awaitable[object]]) -> Send:
    """A :data:`Send` made of a coroutine that returns once the row is acknowledged: each row
    is published in a task of its own (started in order), whose result is the future."""

    async def send(row: OutboxRow) -> asyncio.Future[Any]:
        return asyncio.ensure_future(publish(row))

    return send


async def publish_window(
    rows: Sequence[OutboxRow],
    send: Send,
    *,
    max_in_flight: int = 256,
    timeout: float = 5.0,
) -> WindowOutcome:
    """Send ``rows`` (in outbox order) through an :class:`OrderedPipeline` of their own, and
    return what became of them once every row has its answer."""
    pipeline = OrderedPipeline(send, max_in_flight=max_in_flight, timeout=timeout)
    try:
        return await pipeline.start(rows).outcome()
    finally:
        pipeline.cancel()
