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
with no key in common go out together, in outbox order on one connection, so without a failure
the stream keeps the outbox's order; rows with a key in common go out one after the other, each
after the previous one's PubAck. A row whose predecessor failed is not sent at all (it is
"held"); rows about other clients go on, so one message the stream refuses stops its client and
not the regency, and no further window is started. Every row not acknowledged stays in the
outbox for the next attempt, which starts again from the first unmarked row.

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
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field


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
    keys = {subject.group(1).decode(errors="replace")}
    keys.update(client.decode(errors="replace") for client in _CLIENT.findall(payload, subject.end()))
    return frozenset(keys)


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


class OrderedPipeline:
    """Windows of rows started one after the other, the keys' order kept across them.

    A window is started (:meth:`start`) while earlier ones still await PubAcks, so reading and
    marking rows overlap with publishing; a row of a later window still waits for the earlier
    rows it shares a key with, whichever window they are in. At most ``max_in_flight`` publishes
    await their PubAck at a time, over all windows; a row waiting for an earlier one takes no
    place, so clients with several rows each still keep ``max_in_flight`` publishes going.
    A failed publish holds back only the later rows it shares a key with: one message the
    stream refuses stops its client, not the regency. Once one has failed (:attr:`failed`) the
    relay starts no further window.
    """

    def __init__(self, send: Callable[[OutboxRow], Awaitable[object]], *, max_in_flight: int = 256) -> None:
        """``send`` returns once the stream acknowledged the row, and raises if it did not."""
        self._send = send
        self._gate = _InFlight(max_in_flight)
        self._latest: dict[str, asyncio.Task[bool]] = {}
        self._barrier: asyncio.Task[bool] | None = None
        self._pending: set[asyncio.Task[bool]] = set()
        self.failed = False
        """A publish failed (start no further window)."""

    def start(self, rows: Sequence[OutboxRow]) -> Window:
        """Start publishing ``rows`` (the outbox's next rows, in order)."""
        window = Window(rows)
        loop = asyncio.get_running_loop()
        for index, row in enumerate(rows):
            keys = ordering_keys(row.payload)
            earlier: list[asyncio.Task[bool]]
            if keys is None:
                earlier = list(self._pending)
            else:
                earlier = [task for key in keys if (task := self._latest.get(key)) is not None]
                if len(earlier) > 1:
                    earlier = list(dict.fromkeys(earlier))
                if self._barrier is not None:
                    earlier.append(self._barrier)
            task = loop.create_task(self._publish_after(window, index, earlier))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            if keys is None:
                self._barrier, self._latest = task, {}
            else:
                for key in keys:
                    self._latest[key] = task
        if not rows:
            window.all_done.set_result(None)
        return window

    def cancel(self) -> None:
        """Cancel every publish not finished (rows not acknowledged stay unmarked)."""
        for task in list(self._pending):
            task.cancel()

    async def _publish_after(self, window: Window, index: int, earlier: Sequence[asyncio.Task[bool]]) -> bool:
        try:
            for task in earlier:
                if not await task:
                    return False  # held: an earlier row about the same thing is not in the stream
            await self._gate.enter()
            try:
                await self._send(window.rows[index])
            except Exception as exc:
                self.failed = True
                window.errors[index] = exc
                return False
            finally:
                self._gate.leave()
            window.acked[index] = True
            return True
        finally:
            window.unfinished -= 1
            if window.unfinished == 0 and not window.all_done.done():
                window.all_done.set_result(None)


class Window:
    """Rows started together by an :class:`OrderedPipeline`."""

    def __init__(self, rows: Sequence[OutboxRow]) -> None:
        self.rows = rows
        self.acked = [False] * len(rows)
        self.errors: dict[int, Exception] = {}
        self.unfinished = len(rows)
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


async def publish_window(
    rows: Sequence[OutboxRow],
    send: Callable[[OutboxRow], Awaitable[object]],
    *,
    max_in_flight: int = 256,
) -> WindowOutcome:
    """Send ``rows`` (in outbox order) with ``send`` through an :class:`OrderedPipeline` of
    their own, and return what became of them once every row has its answer. Cancelling it
    cancels the sends still waiting."""
    pipeline = OrderedPipeline(send, max_in_flight=max_in_flight)
    try:
        return await pipeline.start(rows).outcome()
    except BaseException:
        pipeline.cancel()
        raise


class _InFlight:
    """At most ``limit`` publishes awaiting their PubAck; the others wait their turn, first come
    first served (lighter than :class:`asyncio.Semaphore`, which is looked at for every row)."""

    def __init__(self, limit: int) -> None:
        self.free = limit
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def enter(self) -> None:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        await turn  # leave() handed this place over

    def leave(self) -> None:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.free += 1
