"""One window of outbox rows published at once, each client's rows still in outbox order.

The outbox relay (:class:`pulih.kit.outbox.OutboxRelay`) no longer waits for one PubAck before
sending the next message: it sends a window of rows (up to ``max_in_flight`` PubAcks pending) and
marks the acknowledged ones with one UPDATE. Pipelining alone would break ARCHITECTURE.md
invariant 3 after a failure: with rows k and k+1 in flight, k refused (a timeout, a full stream,
a lost connection) and k+1 stored, the stream holds k+1 before k, and no retry can put k back in
front (retrying the window from k, JetStream's duplicate window drops k+1's copy, so the stream
ends k+1, k).

So a row is sent only once every earlier row of the window **about the same thing** has its
PubAck. "About the same thing" are the row's ordering keys (:func:`ordering_keys`): the envelope's
``subject`` (the client, referral, unit or agent the event is about) and the data's
``client_id`` when it has one (a referral's events all share the referral's id, and the first
also names the client). Rows with no key in common go out together, in outbox order on one
connection, so without a failure the stream keeps the outbox's order; rows with a key in common
go out one after the other, each after the previous one's PubAck. A row whose predecessor failed
is not sent at all (it is "held"); nothing new is started once a publish has failed. Every row
not acknowledged stays in the outbox for the next attempt, which starts again from the first
unmarked row.

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
    """Rows not sent: after an earlier row about the same thing failed, or after any failure."""


async def publish_window(
    rows: Sequence[OutboxRow],
    send: Callable[[OutboxRow], Awaitable[object]],
    *,
    max_in_flight: int = 256,
) -> WindowOutcome:
    """Send ``rows`` (in outbox order) with ``send``, at most ``max_in_flight`` at a time, each
    only after the PubAcks of the earlier rows it shares a key with (see the module docstring).

    ``send`` returns once the stream acknowledged the row, and raises if it did not. Returns
    once every row sent has its answer; cancelling it cancels the sends still waiting.
    """
    slots = asyncio.Semaphore(max_in_flight)
    latest: dict[str, asyncio.Task[bool]] = {}
    barrier: asyncio.Task[bool] | None = None
    launched: list[tuple[OutboxRow, asyncio.Task[bool]]] = []
    errors: dict[int, Exception] = {}

    async def publish_after(row: OutboxRow, earlier: list[asyncio.Task[bool]]) -> bool:
        try:
            for task in earlier:
                if not await task:
                    return False  # held: an earlier row about the same thing is not in the stream
            try:
                await send(row)
            except Exception as exc:
                errors[row.seq] = exc
                return False
            return True
        finally:
            slots.release()

    try:
        for row in rows:
            await slots.acquire()
            if errors:  # stop starting rows; what was started finishes
                slots.release()
                break
            keys = ordering_keys(row.payload)
            if keys is None:
                earlier = [task for _, task in launched]
            else:
                earlier = list({id(t): t for key in keys if (t := latest.get(key)) is not None}.values())
                if barrier is not None:
                    earlier.append(barrier)
            task = asyncio.create_task(publish_after(row, earlier))
            if keys is None:
                barrier, latest = task, {}
            else:
                for key in keys:
                    latest[key] = task
            launched.append((row, task))
        if launched:
            await asyncio.gather(*(task for _, task in launched))
    except BaseException:
        for _, task in launched:
            task.cancel()
        raise
    outcome = WindowOutcome()
    for row, task in launched:
        if task.result():
            outcome.acked.append(row.seq)
        elif row.seq in errors:
            outcome.failed += 1
            if outcome.error is None:
                outcome.error = errors[row.seq]
    outcome.held = len(rows) - len(outcome.acked) - outcome.failed
    return outcome
