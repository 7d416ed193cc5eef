"""Ordered batch consumption: many events in stream order, one transaction, acks after the commit.

One message per transaction caps a consumer at the store's commit rate (about 150 events/s on
SQLite). :func:`subscribe_batches` registers a durable pull consumer that fetches up to
``batch_size`` messages and applies the valid ones, in stream order, in one transaction; every
message is acknowledged after the commit. Either one ``apply`` function gets the whole batch in
one unit of work (reporting's projection, below), or each event goes to the handler of its type
(``handlers=``: rehab, referral and outreach; :mod:`pulih.kit.batch_handlers` says how an event
that fails is set aside with a savepoint while the rest commit, and how ``NotReadyYet`` is given
back with a delay without holding up the events after it). What :mod:`pulih.kit.consumers`
promises for one event holds for each event of a batch; with ``apply``:

- **Exactly once.** With ``tracks_itself=False`` the kit leaves out the events its inbox already
  holds (one query per batch; a second copy inside the batch counts once too) and records the
  others (one ``executemany``) in the batch's transaction. With ``tracks_itself=True``, ``apply``
  keeps its own tracking rows and skips what it has applied, repeats inside one batch included
  (a projection that is rebuilt swaps its tracking rows together with its tables).
- **A crash anywhere** leaves no partial effect (nothing is committed until the whole batch is)
  and no double effect (an event committed but not acked comes back and is skipped).
- **Order.** The durable holds at most one batch (``max_ack_pending`` = ``batch_size``): the
  next fetch waits until the batch in hand is settled, and after a crash its messages come back
  (after ``ack_wait``) before any later one is delivered.
- **Invalid messages** (no valid event) are dead-lettered on ``ibm.<regency>.dlq.<service>``
  and terminated; one that held an identity key is erased from the stream. The others go on.
- **A batch that ``apply`` refuses** is rolled back and applied again one event at a time, each
  in its own transaction, to find the event at fault: a :class:`~pulih.kit.consumers.Rejected`
  or :class:`~pulih.kit.errors.PulihError` one is dead-lettered at once; one that fails
  unexpectedly or raises :class:`~pulih.kit.consumers.NotReadyYet` is retried in hand, with the
  delays and the ``max_deliver`` budget of :mod:`pulih.kit.consumers`, then dead-lettered. The
  events after it wait (they are not nacked: a nack with a delay lets later messages overtake
  them), and go on as a batch again once it is settled.
- **A store fault** spends no attempt: the consumer pauses (``runtime.paused_consumers``), keeps
  its batch alive with in-progress acks, probes the store with a growing backoff and applies the
  same batch again once a commit succeeds.
- **A batch that hangs** (``apply`` and its commit run longer than
  ``PULIH_HANDLER_TIMEOUT_SECONDS``) is abandoned and judged as :mod:`pulih.kit.consumers` says:
  the store's fault if it cannot commit either, else ``apply``'s, found one event at a time.

The unit of work of a batch applies many events, so it is caused by none of them: whatever
``apply`` emits starts a chain of its own.

A consumer reads the regency's stream unless told another (``stream=``: the national view reads
``NATIONAL`` on the hub); one that reads another stream may send its dead letters elsewhere too
(``dead_letters=``, a :class:`DeadLetterRoute`: ``national.dlq.reporting`` on ``NATIONAL_DLQ``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DEFAULT_PREFIX, AckPolicy, ConsumerConfig, DeliverPolicy, Header
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from pulih.contracts import Event, new_event, stream_name
from pulih.contracts.events.dead_letters import dead_letter_model, dead_letter_of
from pulih.kit.batch_apply import BatchApplier, BatchApply, Received
from pulih.kit.batch_handlers import DeadLetterHook, HandlerApplier, Refusal
from pulih.kit.consumers import EventHandler, InvalidHook
from pulih.kit.emitter import current_traceparent
from pulih.kit.metrics import CONSUMED
from pulih.kit.outbox import envelope_headers
from pulih.kit.runtime import ServiceRuntime

__all__ = [
    "BatchApply",
    "BatchConsumer",
    "DeadLetterHook",
    "DeadLetterRoute",
    "Received",
    "Refusal",
    "subscribe_batches",
]

log = logging.getLogger("pulih.batch_consumer")
_tracer = trace.get_tracer("pulih.batch_consumer")


def subscribe_batches(
    runtime: ServiceRuntime,
    broker: NatsBroker,
    *,
    durable: str,
    subject: str,
    apply: BatchApply | None = None,
    handlers: Mapping[type[Event], EventHandler] | None = None,
    batch_size: int | None = None,
    tracks_itself: bool = False,
    types: Collection[type[Event]] | None = None,
    retry_base_seconds: float = 1.0,
    max_wait: float = 0.2,
    linger: float = 0.0,
    stream: str | None = None,
    dead_letters: DeadLetterRoute | None = None,
    on_invalid: InvalidHook | None = None,
    on_dead_letter: DeadLetterHook | None = None,
) -> None:
    """Register durable consumer ``<service>-<durable>`` of ``subject`` that applies batches.

    Either ``apply`` gets up to ``batch_size`` events (default ``PULIH_CONSUMER_BATCH_SIZE``, 500)
    in stream order, in one unit of work (only events of ``types``, all when None), or each event
    goes to the handler of its type in ``handlers``, in one transaction a batch
    (:mod:`pulih.kit.batch_handlers`); events of other types are acknowledged and skipped. A fetch
    waits at most ``max_wait`` seconds for messages; with ``linger`` (seconds), once it has some,
    it waits that long (at most a quarter of ``PULIH_ACK_WAIT_SECONDS``) for more to fill the
    batch (a consumer whose batch costs much whatever its
    size, such as reporting's recount, trades that much latency for fewer, larger batches; 0, the
    default: a batch is what is waiting, live events are applied as they come).
    ``tracks_itself`` (with ``apply``): see the module's docstring. The durable is on ``stream``
    (default: the regency's); its dead letters go to ``dead_letters`` (with ``apply``; default:
    the regency's dead-letter subject). ``on_invalid`` runs after a message that is no valid
    event was dead-lettered (referral tells the clinic that sent it); ``on_dead_letter`` (with
    ``handlers``) before a valid one is. The consumer starts after the broker and stops before
    it (``runtime.batch_consumers``). ``ValueError`` for a service without a dead-letter event, a
    batch size under 1, or neither or both of ``apply`` and ``handlers``.
    """
    if batch_size is None:
        batch_size = runtime.settings.consumer_batch_size
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if (apply is None) == (handlers is None):
        raise ValueError("a batch consumer takes either apply or handlers")
    if handlers is not None and (tracks_itself or types is not None or dead_letters is not None):
        raise ValueError("tracks_itself, types and dead_letters go with apply, not with handlers")
    if apply is not None and on_dead_letter is not None:
        raise ValueError("on_dead_letter goes with handlers, not with apply")
    dead_letter_model(runtime.name)  # a service that cannot dead-letter must not start consuming
    name = f"{runtime.name}.{durable}"
    applier: BatchApplier
    if handlers is not None:
        applier = HandlerApplier(
            runtime,
            broker,
            name=name,
            handlers={model.type_name(): handler for model, handler in handlers.items()},
            retry_base_seconds=retry_base_seconds,
            on_invalid=on_invalid,
            on_dead_letter=on_dead_letter,
        )
    else:
        assert apply is not None
        applier = (BatchApplier if dead_letters is None else _RoutedApplier)(
            runtime,
            broker,
            name=name,
            apply=apply,
            tracks_itself=tracks_itself,
            types=None if types is None else frozenset(model.type_name() for model in types),
            retry_base_seconds=retry_base_seconds,
            on_invalid=on_invalid,
        )
        if isinstance(applier, _RoutedApplier):
            assert dead_letters is not None
            applier.route = dead_letters
    consumer = BatchConsumer(
        runtime,
        broker,
        durable=durable,
        subject=subject,
        applier=applier,
        batch_size=batch_size,
        max_wait=max_wait,
        linger=linger,
        stream=stream,
    )
    if stream is None:  # the kit refreshes the regency stream's durables; the others refresh themselves
        runtime.durables.append(consumer.durable)
    runtime.batch_consumers.append(consumer)


class BatchConsumer:
    """One durable consumer that applies batches: its pull loop, started after the broker and
    stopped before it.

    It fetches with nats-py itself. FastStream's batch pull subscriber (0.7.8) fills a batch over
    several fetches and catches ``nats.errors.TimeoutError`` only, while nats-py 2.16 also raises
    the builtin ``TimeoutError`` when the time runs out between two fetches: the messages
    collected so far are dropped unacked, come back after ``ack_wait`` and spend a delivery
    attempt each time, until JetStream stops delivering them.
    """

    def __init__(
        self,
        runtime: ServiceRuntime,
        broker: NatsBroker,
        *,
        durable: str,
        subject: str,
        applier: BatchApplier,
        batch_size: int,
        max_wait: float,
        linger: float = 0.0,
        stream: str | None = None,
    ) -> None:
        self.broker = broker
        self.name = f"{runtime.name}.{durable}"
        """The consumer's name in its inbox rows, dead letters and ``paused_consumers``."""
        self.durable = f"{runtime.name}-{durable}"
        """The JetStream durable consumer's name."""
        self.subject = subject
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.linger = min(linger, runtime.settings.ack_wait_seconds / 4)
        """Seconds a fetch waits for its batch to fill: never near ``ack_wait`` (JetStream would
        deliver the messages in hand again)."""
        self.settings = runtime.settings
        self.stream = stream or stream_name(runtime.settings.regency)
        self.applier = applier
        self.applier.stream = self.stream
        self._running = False
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._pulls: _PullRequests | None = None

    async def start(self) -> None:
        """Create or update the durable and start pulling (the broker must be connected)."""
        if self._task is not None and not self._task.done():
            return
        connection = self.broker.connection
        await self._declare(connection.jetstream())
        pulls = _PullRequests(connection, self.stream, self.durable, self.batch_size, self.linger)
        await pulls.open()
        self._pulls = pulls
        self._running = True
        self._task = asyncio.create_task(self._pull(pulls), name=f"batch consumer {self.name}")

    async def stop(self, graceful_seconds: float = 10.0) -> None:
        """Stop pulling; a batch in hand may finish within ``graceful_seconds``, else it is
        abandoned unacked (JetStream gives it back after ``ack_wait``)."""
        self._running = False
        task, self._task = self._task, None
        if task is None:
            return
        if not self._busy and not (self._pulls is not None and self._pulls.lingering):
            # waiting for messages: nothing in hand (a fetch that lingers holds some, and its
            # pull request ends within ``linger``: cancelled, messages the server still sent
            # would be pending and let later ones overtake them after a restart)
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=graceful_seconds)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def _declare(self, js: JetStreamContext) -> None:
        """The durable, with today's settings: one batch in hand at most, so after a crash its
        messages come back before any later one."""
        ack_wait, max_deliver = self.settings.ack_wait_seconds, self.settings.max_deliver
        try:
            info = await js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            config = ConsumerConfig(
                durable_name=self.durable,
                filter_subject=self.subject,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ack_wait,
                max_deliver=max_deliver,
                max_ack_pending=self.batch_size,
            )
            await js.add_consumer(self.stream, config)
            return
        current = info.config
        if (current.ack_wait, current.max_deliver, current.max_ack_pending) != (
            ack_wait,
            max_deliver,
            self.batch_size,
        ):
            updated = current.evolve(
                ack_wait=ack_wait, max_deliver=max_deliver, max_ack_pending=self.batch_size
            )
            await js.add_consumer(self.stream, updated)

    async def _pull(self, pulls: _PullRequests) -> None:
        try:
            await self._pull_batches(pulls)
        finally:
            await pulls.close()

    async def _pull_batches(self, pulls: _PullRequests) -> None:
        while self._running:
            try:
                messages = await pulls.fetch(self.max_wait)
                if not messages:
                    continue
            except Exception as exc:  # a broken or reconnecting connection, a deleted durable
                log.warning(
                    "fetch failed", extra={"consumer": self.name, "error": f"{type(exc).__name__}: {exc}"}
                )
                if isinstance(exc, PullRefused):  # as a restart would: the inbox skips a replay
                    with contextlib.suppress(Exception):
                        await self._declare(self.broker.connection.jetstream())
                await asyncio.sleep(min(self.max_wait * 5, 1.0))
                continue
            self._busy = True
            try:
                with _tracer.start_as_current_span(
                    f"{self.durable} process",
                    kind=SpanKind.CONSUMER,
                    attributes={"messaging.system": "nats", "messaging.batch.message_count": len(messages)},
                ):
                    await self.applier.consume(messages)
            except Exception:
                # what was not acked comes back after ack_wait, before anything later
                log.exception("batch abandoned", extra={"consumer": self.name})
            finally:
                self._busy = False


class _PullRequests:
    """Pull requests of one durable consumer, answered on an inbox of its own.

    nats-py's ``fetch`` waits for each message with a timer of its own (``asyncio.wait_for``),
    which costs more than everything else the consumer does per message; here the messages are
    collected by the inbox's callback. Messages of a request that ended on our side (a timeout)
    but not on the server's are kept for the next fetch. With ``linger``, a fetch that has some
    messages asks for the rest of the batch, for at most ``linger`` seconds.
    """

    def __init__(
        self, connection: Client, stream: str, durable: str, batch_size: int, linger: float = 0.0
    ) -> None:
        self.connection = connection
        self.subject = f"{DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.batch_size = batch_size
        self.linger = linger
        self.lingering = False
        """Whether a fetch holds messages while it waits for more (``linger``)."""
        self._inbox = connection.new_inbox()
        self._subscription: Subscription | None = None
        self._received: list[Msg] = []
        self._wanted = batch_size
        self._answered = asyncio.Event()
        self._refusal: str | None = None
        self._drained = False
        """Whether the last fetch left nothing waiting on the server."""

    async def open(self) -> None:
        """Listen on the inbox."""
        self._subscription = await self.connection.subscribe(self._inbox, cb=self._deliver)

    async def close(self) -> None:
        """Stop listening (messages in flight come back to the durable after ``ack_wait``)."""
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def fetch(self, max_wait: float) -> list[Msg]:
        """Up to ``batch_size`` messages: those waiting now, or else the first to come within
        ``max_wait`` seconds, as soon as it comes (an empty list if none does; the next fetch
        takes those that came after it). After a fetch that left nothing waiting (the last
        message said no more were pending), the next one waits for the first at once: asking
        what is waiting first would cost a request and its empty answer for each small batch of
        a consumer that keeps up (what came meanwhile still comes: the first message, then the
        rest with the fetch after)."""
        if not self._received and not self._drained:
            await self._request({"batch": self.batch_size, "no_wait": True}, timeout=5.0)
        if not self._received:
            expires = int(max_wait * 1_000_000_000)
            await self._request({"batch": 1, "expires": expires}, timeout=max_wait + 2.0)
        if not self._received and self._refusal is not None:
            # the durable is gone, or the server cannot serve it now: not a quiet stream
            raise PullRefused(self._refusal)
        if self.linger > 0 and 0 < len(self._received) < self.batch_size:
            await self._linger()
        batch, self._received = self._received[: self.batch_size], self._received[self.batch_size :]
        self._drained = not self._received and (
            not batch or (len(batch) < self.batch_size and _pending(batch[-1]) == 0)
        )
        return batch

    async def _linger(self) -> None:
        """Ask for the rest of the batch until it is full, ``linger`` seconds have passed, or the
        server refuses."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger
        self.lingering = True
        try:
            while len(self._received) < self.batch_size:
                left = deadline - loop.time()
                if left < 0.001:
                    break
                wanted = self.batch_size - len(self._received)
                await self._request(
                    {"batch": wanted, "expires": int(left * 1_000_000_000)}, timeout=left + 2.0
                )
                if self._refusal is not None:
                    break
        finally:
            self.lingering = False

    async def _request(self, request: dict[str, object], *, timeout: float) -> None:
        self._answered.clear()
        self._refusal = None
        self._wanted = len(self._received) + int(str(request["batch"]))
        await self.connection.publish(self.subject, json.dumps(request).encode(), reply=self._inbox)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._answered.wait(), timeout)

    async def _deliver(self, message: Msg) -> None:
        headers = message.headers or {}
        status = headers.get(Header.STATUS)
        if status is None:
            self._received.append(message)
            if len(self._received) >= self._wanted:
                self._answered.set()
        elif status != "100":  # not a heartbeat: no more messages, expired, or refused
            if status not in ("404", "408"):
                description = headers.get(Header.DESCRIPTION, "").split("\n")[0]
                self._refusal = f"{status} {description}".strip()
            self._answered.set()


def _pending(message: Msg) -> int | None:
    """How many messages the durable had still to deliver after ``message``, from its ack subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<time>.<pending>``, or the longer
    form with a domain and an account); None when it does not say."""
    tokens = (message.reply or "").split(".")
    if tokens[:2] != ["$JS", "ACK"]:
        return None
    index = 8 if len(tokens) == 9 else Msg.Ack.NumPending if len(tokens) >= 11 else None
    return None if index is None or not tokens[index].isdigit() else int(tokens[index])


class PullRefused(Exception):
    """JetStream answered a pull request with an error status (409, 503…)."""


@dataclass(frozen=True)
class DeadLetterRoute:
    """Where a consumer of a stream other than the regency's sends its dead letters: ``subject``
    on ``stream`` (e.g. ``national.dlq.reporting`` on ``NATIONAL_DLQ``). A letter's envelope names
    the regency of the refused message's subject (``ibm.<code>.…``), or ``regency`` where that
    subject names none."""

    subject: str
    stream: str
    regency: str


_ROUTED_LETTER_IDS = uuid.UUID("2d7c4a1e-93b0-4c57-8f6e-0a5d1b3e7f29")
"""Namespace of routed dead letters' ids: one message refused twice (a crash before its ``term``)
gives one id, so the stream's duplicate window keeps one letter."""


class _RoutedApplier(BatchApplier):
    """A :class:`BatchApplier` whose dead letters go to a :class:`DeadLetterRoute`."""

    route: DeadLetterRoute

    async def _dead_letter(self, message: Msg, attempts: int, error: str, reason: str) -> None:
        stream_seq = message.metadata.sequence.stream
        parts = message.subject.split(".")
        regency = (
            parts[1] if len(parts) > 1 and parts[0] == "ibm" and parts[1].isdigit() else self.route.regency
        )
        data = dead_letter_of(
            self.runtime.name,
            consumer=self.name,
            subject=message.subject,
            stream_seq=stream_seq,
            attempts=attempts,
            error=error,
            reason=reason,
            payload=message.data,
        )
        letter_id = uuid.uuid5(_ROUTED_LETTER_IDS, f"{self.route.subject}/{self.name}/{stream_seq}")
        letter = new_event(
            data,
            regency=regency,
            id=letter_id,
            correlationid=str(letter_id),
            traceparent=current_traceparent(),
        )
        headers = {
            **envelope_headers(letter),
            "Pulih-Dlq-Error": data.error,
            "Pulih-Dlq-Reason": " ".join(data.reason.split())[:500],
        }
        js = self.broker.connection.jetstream()
        await js.publish(
            self.route.subject, letter.to_json(), timeout=5.0, stream=self.route.stream, headers=headers
        )
        CONSUMED.labels(self.name, "dead_lettered").inc()
        log.warning(
            "dead-lettered",
            extra={
                "consumer": self.name,
                "subject": message.subject,
                "stream_seq": stream_seq,
                "error": error,
                "reason": reason,
                "to": self.route.subject,
            },
        )
        await message.term()
