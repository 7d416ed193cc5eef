"""The transactional outbox: events are written with the state change that causes them.

:func:`add_to_outbox` stores an event in the caller's transaction. :class:`OutboxRelay` publishes
unsent rows to JetStream through a stream-bound publish with ``Nats-Msg-Id`` = event id, and
marks a row sent only after the server's PubAck. A crash between the two publishes the row again
on restart and the stream's duplicate window drops the copy.

The relay pipelines: it reads a window of rows (``batch_size``), sends them with up to
``max_in_flight`` PubAcks pending, and marks the acknowledged ones with one UPDATE; the next
window is read while the previous one's PubAcks arrive. A row goes out only after the PubAck of
every earlier row about the same client (or referral, unit, agent), so after any failure (a
publish refused, a timeout, the server killed mid-window) no event is ever stored ahead of an
earlier one about the same client; :mod:`pulih.kit.relay_window` says how and why that holds.
Events about different clients may be stored in another order than the outbox's (a client's
second event waits for the first one's PubAck while other clients' go on): ARCHITECTURE.md's
order is per client, and a consumer retries what it cannot apply yet. A publisher with a
``send`` (:class:`PipelinedPublish`, as the service's stream publisher) is driven without a task
per row.

Several replicas on one database each run a relay, but only the holder of the relay lease
publishes (:mod:`pulih.kit.relay_lease`: an advisory lock on PostgreSQL, a lock file beside a
SQLite database); another takes over within seconds when it dies.

A row's headers are :func:`envelope_headers`: they repeat the envelope and never contradict it
(EVENTS.md, "Compatibility"), so the publish function must send them as they are; the
``traceparent`` among them carries the request's trace to the consumer. The relay opens the
publish span itself, in the trace of the request that wrote the row, when spans are collected
(:func:`spans_are_collected`).

The relay wakes when a transaction that wrote to the outbox commits (:data:`LINGER_SECONDS`
later, so the commits that follow share the window), and also polls, so rows written by another
process (a second replica) are not left waiting. After a failed publish
it backs off, but the doorbell still rings through the backoff: a commit once the broker is back
(``ready``, when given, says whether it is) retries at once, and so does the broker coming back
by itself, so a short outage never costs a whole backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Table,
    Update,
    Uuid,
    any_,
    bindparam,
    event,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pulih.contracts import CloudEvent, Event
from pulih.kit.database import BigIntId, Database, kit_metadata
from pulih.kit.relay_lease import RelayLease
from pulih.kit.relay_window import OrderedPipeline, OutboxRow, WindowOutcome, publish_window, sending

log = logging.getLogger("pulih.outbox")

outbox_table = Table(
    "outbox",
    kit_metadata,
    Column("seq", BigIntId, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("subject", String(255), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True, index=True),
)

_INSERT = outbox_table.insert()
"""Built once: a statement made anew with ``.values(...)`` for each event costs its cache key
(and its bound parameters) each time, more than the INSERT itself."""

_WAKE_KEY = "pulih.outbox.wake"
CLOUDEVENTS_JSON = "application/cloudevents+json"
"""The ``content-type`` of a structured CloudEvent."""

_tracer = trace.get_tracer("pulih.outbox")
_propagator = TraceContextTextMapPropagator()
_NO_TRACE = otel_context.Context()
"""The parent of the publish span of a row written outside any trace: none (a new trace)."""


def spans_are_collected() -> bool:
    """Whether a span started now would reach anyone: a span processor (an exporter, a test's
    in-memory one) on the SDK's tracer provider, or a provider of another kind.

    Without one (no ``OTEL_TRACES_EXPORTER``, the default) the SDK still builds every span and
    drops it at the end, which costs the relay more than the publish itself; so the relay opens
    its publish spans only when they are collected. The trace goes on either way: each message
    carries its request's ``traceparent``, and the consumer continues it.
    """
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return False  # no provider installed: spans are no-ops
    if isinstance(provider, TracerProvider):
        # The SDK lists its processors only in private attributes; if they move, assume spans
        # are collected (slower, never wrong).
        processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", None)
        return processors is None or len(processors) > 0
    return True


def _trace_of(headers: dict[str, str]) -> otel_context.Context:
    """The context of the trace a row's ``traceparent`` names (the request that wrote it).

    The common form (version 00, as Pulih writes it) is read directly, at a fifth of the
    propagator's cost; anything else goes through the propagator."""
    traceparent = headers.get("traceparent")
    if traceparent is None:
        return _NO_TRACE
    parts = traceparent.split("-")
    if len(parts) == 4 and parts[0] == "00" and [len(part) for part in parts[1:]] == [32, 16, 2]:
        with contextlib.suppress(ValueError):
            parent = trace.SpanContext(
                int(parts[1], 16),
                int(parts[2], 16),
                is_remote=True,
                trace_flags=trace.TraceFlags(int(parts[3], 16)),
            )
            if parent.is_valid:
                return trace.set_span_in_context(trace.NonRecordingSpan(parent), _NO_TRACE)
    return _propagator.extract(carrier=headers)


def envelope_headers(event_: CloudEvent[Any]) -> dict[str, str]:
    """The NATS headers of ``event_``: they repeat its envelope and never contradict it.

    ``Nats-Msg-Id`` is the ``id`` (JetStream's dedup), ``traceparent`` the envelope's and
    ``correlation_id`` (the header FastStream reads and would otherwise make up) the
    ``correlationid``; ``Pulih-Type`` is a hint for tools that do not read bodies.
    """
    headers = {"Nats-Msg-Id": str(event_.id), "Pulih-Type": event_.type, "content-type": CLOUDEVENTS_JSON}
    if event_.traceparent:
        headers["traceparent"] = event_.traceparent
    if event_.correlationid:
        headers["correlation_id"] = event_.correlationid
    return headers


async def add_to_outbox(
    session: AsyncSession,
    event_: CloudEvent[Event],
    subject: str,
    *,
    wake: Callable[[], None] | None = None,
) -> None:
    """Store ``event_`` for publishing on ``subject`` in the session's current transaction.

    ``wake`` is called once after that transaction commits (the relay's doorbell); nothing is
    published if it rolls back.
    """
    await session.execute(
        _INSERT,
        {
            "event_id": event_.id,
            "subject": subject,
            "payload": event_.to_json(),
            "headers": envelope_headers(event_),
            "created_at": datetime.now(UTC),
        },
    )
    if wake is not None:
        session.info[_WAKE_KEY] = wake


@event.listens_for(Session, "after_commit")
def _ring_after_commit(session: Session) -> None:
    wake = session.info.pop(_WAKE_KEY, None)
    if wake is not None:
        wake()


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, _: Any) -> None:
    session.info.pop(_WAKE_KEY, None)


Publish = Callable[[bytes, str, dict[str, str]], Awaitable[Any]]
"""Publishes one payload on a subject with exactly these headers and returns once the stream
acknowledged it. It must not replace a header (FastStream's telemetry middleware puts its own
span in ``traceparent``): the headers repeat the envelope."""


class PipelinedPublish(Protocol):
    """A :data:`Publish` that can also send without waiting (as
    :class:`pulih.kit.messaging.StreamPublisher` does): the relay then keeps its window in flight
    without a task per row."""

    timeout: float
    """How long a message may wait for its PubAck before the relay counts it failed."""

    def __call__(self, payload: bytes, subject: str, headers: dict[str, str]) -> Awaitable[Any]:
        """Publish and return once the stream acknowledged (see :data:`Publish`)."""

    async def send(self, payload: bytes, subject: str, headers: dict[str, str]) -> asyncio.Future[Any]:
        """Put the message on the wire (headers as given) and return a future of its PubAck."""


@dataclass
class RelayStats:
    """What the relay has done since it started."""

    published: int = 0
    failures: int = 0
    leading: bool = False
    """Whether this relay held the lease (or needed none) when it last looked at the outbox."""


def _among(column: ColumnElement[int], *, sqlite: bool) -> ColumnElement[bool]:
    """``column IN :values`` with one bound parameter however many the values (a window holds
    a thousand): a JSON array on SQLite, an array on PostgreSQL. SQLAlchemy's ``in_`` binds
    each value apart, which cost more than the UPDATE itself."""
    if sqlite:
        listed = func.json_each(bindparam("values", type_=String)).table_valued("value")
        return column.in_(select(listed.c.value))
    from sqlalchemy.dialects.postgresql import ARRAY  # not loaded by a service on SQLite (2 MB)

    return column == any_(bindparam("values", type_=ARRAY(BigInteger)))


@cache
def _mark(*, sqlite: bool) -> Update:
    """The UPDATE that marks the rows ``:values`` published at ``:marked_at``, built once per
    dialect when first needed (PostgreSQL's would load its dialect into a service on SQLite)."""
    return (
        update(outbox_table)
        .where(_among(outbox_table.c.seq, sqlite=sqlite))
        .values(published_at=bindparam("marked_at"))
    )


# Built once: a statement made anew for each window costs its construction and cache key,
# more than reading or marking a window of one row (as the relay does when events come one by one).
_UNSENT = (
    select(outbox_table.c.seq, outbox_table.c.subject, outbox_table.c.payload, outbox_table.c.headers)
    .where(outbox_table.c.published_at.is_(None))
    .order_by(outbox_table.c.seq)
    .limit(bindparam("size", type_=Integer))
)
_UNSENT_AFTER = _UNSENT.where(outbox_table.c.seq > bindparam("after", type_=BigInteger))


def _failure_of(answer: asyncio.Future[Any]) -> BaseException | None:
    if answer.cancelled():
        return TimeoutError("no PubAck in time")
    return answer.exception()


def _end_span(span: trace.Span, failure: BaseException | None) -> None:
    if failure is not None:
        span.record_exception(failure)
        span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(failure).__name__}: {failure}"))
    span.end()


def _raise_first_failure(outcomes: list[WindowOutcome]) -> None:
    for outcome in outcomes:
        if outcome.error is not None:
            held = sum(later.held for later in outcomes)
            if held:
                log.info("outbox relay: %d rows held back behind a failed publish", held)
            raise outcome.error


LINGER_SECONDS = 0.005
"""How long the relay lets a commit's doorbell ring before it looks, once the outbox is drained.

Events that come one by one (a field device's requests, a few a second to a few hundred) would
each get a window of their own: a read, a publish and a marking transaction, which cost the
relay's process about as much as half the request that wrote the event. Five milliseconds gather
the commits of the moment into one window: at 200 events a second, 2.8-3.0 events a window
instead of 1.2-1.3, and 0.8-1.1 ms of CPU per event instead of 1.4-2.1 ms, for 7 ms more from
commit to PubAck at the median (``bench/relay_trickle.py`` on 2 busy cores), against the
seconds a consumer may take. A backlog is relayed window after window without lingering."""


class OutboxRelay:
    """Publishes unsent outbox rows, a pipelined window at a time, keeping each client's order,
    and marks rows only after their PubAcks."""

    def __init__(
        self,
        database: Database,
        publish: Publish,
        *,
        batch_size: int = 1024,
        max_in_flight: int = 256,
        poll_seconds: float = 1.0,
        min_backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 10.0,
        ready: Callable[[], bool] | None = None,
        ready_check_seconds: float = 0.25,
        lease: RelayLease | None = None,
        publish_timeout: float | None = None,
        linger_seconds: float = LINGER_SECONDS,
    ) -> None:
        """``batch_size`` rows are read (and marked) at a time, at most ``max_in_flight`` of
        them awaiting their PubAck: a window larger than what is in flight keeps publishes
        going while a client's later rows wait for its earlier ones.

        ``ready`` says whether the broker is reachable (say, the NATS connection is up): a wake
        during a backoff retries at once only then, and the backoff also ends as soon as it
        turns true (checked every ``ready_check_seconds``). Without it every wake retries.
        ``lease`` (:func:`pulih.kit.relay_lease.relay_lease_for`) makes this relay publish only
        while it holds it; without one it always publishes. A message without its PubAck after
        ``publish_timeout`` seconds counts as failed (by default the publisher's own ``timeout``,
        else 30 s: a plain :data:`Publish` times out by itself).

        ``linger_seconds``: once the outbox is drained, a commit's doorbell is answered that much
        later, so the commits of the next few milliseconds share its window (see
        :data:`LINGER_SECONDS`); 0 answers at once.
        """
        self.database = database
        self.publish = publish
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.poll_seconds = poll_seconds
        self.min_backoff_seconds = min_backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.ready = ready
        self.ready_check_seconds = ready_check_seconds
        self.lease = lease
        self.linger_seconds = linger_seconds
        self.stats = RelayStats()
        self._doorbell = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._traced = True
        send_now = getattr(publish, "send", None)
        self._send_now: Callable[[bytes, str, dict[str, str]], Awaitable[asyncio.Future[Any]]] | None = (
            send_now if callable(send_now) else None
        )
        self._send_by_task = sending(self._publish_row)
        self.publish_timeout = (
            publish_timeout if publish_timeout is not None else float(getattr(publish, "timeout", 30.0))
        )

    def wake(self) -> None:
        """Ask the relay to look at the outbox now (called after a commit)."""
        self._doorbell.set()

    def start(self) -> None:
        """Run the relay in the background until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pulih-outbox-relay")

    async def stop(self) -> None:
        """Stop the background loop and give up the lease; rows not yet published stay for the
        next start (or for the relay that takes the lease over)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.lease is not None:
            await self.lease.release()
        self.stats.leading = False

    async def _run(self) -> None:
        backoff = self.min_backoff_seconds
        while True:
            # Cleared before looking, not after: a commit made while the relay looks rings again.
            self._doorbell.clear()
            try:
                await self.relay_all()
                backoff = self.min_backoff_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database down: keep the rows, retry later
                self.stats.failures += 1
                log.warning("outbox relay: %s; retrying in %.1fs or when woken", exc, backoff)
                await self._back_off(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
                continue
            # Drained (relay_all stops only at a short window): wait for a commit or the poll.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._doorbell.wait()
            if self._doorbell.is_set() and self.linger_seconds > 0:
                await asyncio.sleep(self.linger_seconds)

    async def _back_off(self, seconds: float) -> None:
        """Wait ``seconds`` after a failure, or less: until a wake while the broker is ready, or
        until the broker turns ready. A commit made during the failed attempt counts as a wake;
        a wake while the broker is still down is dropped (its row waits in the outbox and the
        next attempt takes it), so commits during an outage do not hammer the broker."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        was_ready = self.ready() if self.ready is not None else False
        while (remaining := deadline - loop.time()) > 0:
            slice_ = remaining if self.ready is None else min(remaining, self.ready_check_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._doorbell.wait(), timeout=slice_)
            if self.ready is None:
                if self._doorbell.is_set():
                    return
                continue
            now_ready = self.ready()
            if now_ready and (self._doorbell.is_set() or not was_ready):
                return
            if not now_ready:
                self._doorbell.clear()
            was_ready = now_ready

    async def relay_once(self) -> int:
        """Publish one window of unsent rows; return how many were acknowledged and marked.

        Nothing is published without the lease (0 is returned). Rows after a failed one about
        the same client are held back, so the stream keeps each client's order; the rows
        acknowledged are marked and the earliest failure is raised.
        """
        if not await self._may_publish():
            return 0
        rows = await self._read_window()
        if not rows:
            return 0
        outcome = await publish_window(
            rows, self._send_row, max_in_flight=self.max_in_flight, timeout=self.publish_timeout
        )
        if outcome.acked:
            await self.mark_published(outcome.acked)
        _raise_first_failure([outcome])
        return len(outcome.acked)

    async def relay_all(self) -> int:
        """Publish windows until the outbox is empty, a publish fails or the lease is lost;
        return how many rows were acknowledged and marked (the first failure is raised).

        The next window is read and started while the previous one's PubAcks arrive, and each
        window is marked as soon as all its rows have their answer, so the store's round trips
        overlap with the broker's. Each client's order holds across windows (a row waits for the
        earlier rows it shares a key with, whichever window they are in).
        """
        if not await self._may_publish():
            return 0
        rows = await self._read_window()
        pipeline = OrderedPipeline(
            self._send_row, max_in_flight=self.max_in_flight, timeout=self.publish_timeout
        )
        current = pipeline.start(rows) if rows else None
        outcomes: list[WindowOutcome] = []
        marked = 0
        try:
            while current is not None:
                upcoming = None
                if len(current.rows) == self.batch_size and not pipeline.failed and await self._may_publish():
                    more = await self._read_window(after=current.rows[-1].seq)
                    if more and not pipeline.failed:
                        upcoming = pipeline.start(more)
                outcome = await current.outcome()
                outcomes.append(outcome)
                if outcome.acked:
                    await self.mark_published(outcome.acked)
                    marked += len(outcome.acked)
                current = upcoming
        finally:
            pipeline.cancel()
        _raise_first_failure(outcomes)
        return marked

    async def _may_publish(self) -> bool:
        """Whether to publish a window now (the lease); also whether to open publish spans."""
        self.stats.leading = self.lease is None or await self.lease.hold()
        self._traced = spans_are_collected()
        return self.stats.leading

    async def _read_window(self, after: int | None = None) -> list[OutboxRow]:
        """The next ``batch_size`` unsent rows in order (those after row ``after``)."""
        query, values = (
            (_UNSENT, {"size": self.batch_size})
            if after is None
            else (_UNSENT_AFTER, {"size": self.batch_size, "after": after})
        )
        # A Core connection, not a session: the read changes nothing, and the ORM session's setup
        # and execution path cost as much again as the SELECT of a one-row window.
        async with self.database.engine.connect() as connection:
            result = await connection.execute(query, values)
            return [OutboxRow(seq, subject, payload, headers) for seq, subject, payload, headers in result]

    async def _send_row(self, row: OutboxRow) -> asyncio.Future[Any]:
        """Put ``row`` on the wire; the future settles with its PubAck."""
        if self._send_now is None:
            return await self._send_by_task(row)
        if not self._traced:
            return await self._send_now(row.payload, row.subject, row.headers)
        parent = _trace_of(row.headers)
        span = _tracer.start_span(
            f"{row.subject} publish",
            context=parent,
            kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.system": "nats", "messaging.destination.name": row.subject},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            answer = await self._send_now(row.payload, row.subject, row.headers)
        except Exception as exc:
            _end_span(span, exc)
            raise
        finally:
            otel_context.detach(token)
        answer.add_done_callback(lambda done: _end_span(span, _failure_of(done)))
        return answer

    async def _publish_row(self, row: OutboxRow) -> None:
        # The row's headers were decoded for this attempt alone, so they are handed over as they are.
        if self._traced:
            await self._publish_in_its_trace(row.payload, row.subject, row.headers)
            return
        # No span to open (see spans_are_collected), but the publish still runs in the row's
        # trace, as a publish function that looks at the current context expects.
        token = otel_context.attach(_trace_of(row.headers))
        try:
            await self.publish(row.payload, row.subject, row.headers)
        finally:
            otel_context.detach(token)

    async def _publish_in_its_trace(self, payload: bytes, subject: str, headers: dict[str, str]) -> None:
        # The publish span is a child of the trace of the request that wrote the row, not of
        # whatever is current, and is current while publishing; the consumer continues the trace
        # from the headers. Spelled out rather than with start_as_current_span, whose context
        # managers cost as much as the publish itself. Each row is published in a task of its
        # own, so nothing leaks to the next row.
        parent = _trace_of(headers)
        span = _tracer.start_span(
            f"{subject} publish",
            context=parent,
            kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.system": "nats", "messaging.destination.name": subject},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            await self.publish(payload, subject, headers)
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            otel_context.detach(token)
            span.end()

    async def mark_published(self, seqs: list[int]) -> None:
        """Mark rows as published (after their PubAck), in one UPDATE."""
        sqlite = self.database.is_sqlite
        values = {"values": json.dumps(seqs) if sqlite else seqs, "marked_at": datetime.now(UTC)}
        async with self.database.transaction() as session:
            await session.execute(_mark(sqlite=sqlite), values)
        self.stats.published += len(seqs)

    async def backlog(self) -> int:
        """How many rows wait to be published."""
        async with self.database.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None))
            )
        return int(count or 0)
