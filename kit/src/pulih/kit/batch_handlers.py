"""Ordered batches applied by event handlers: one transaction a batch, a savepoint an event where
one fails.

What :func:`pulih.kit.batch_consumer.subscribe_batches` does with ``handlers=`` (rehab, referral
and outreach): each event of a fetched batch goes, in stream order, to the handler of its type
with a unit of work of its own on the batch's session (what it emits names it as its cause and
carries its chain and trace on), and the batch commits once, with the inbox rows of the events
it applied; the messages are acknowledged after the commit.

A handler that raises does not take the others down with it. The batch is first applied without
savepoints (they cost two statements an event); if an event fails, the transaction is rolled
back and the batch applied again with a savepoint around each event, leaving out the ones
already known to fail: the event at fault is rolled back to its savepoint, set aside, and the
rest commit. What happens to an event set aside is what :mod:`pulih.kit.consumers` says of one
message:

- :class:`~pulih.kit.consumers.Rejected` or a :class:`~pulih.kit.errors.PulihError`: it is
  dead-lettered at once with its code;
- :class:`~pulih.kit.consumers.NotReadyYet`: it is given back with a delay (a nak), at least
  ``ack_wait``, and the events after it go on (ARCHITECTURE.md invariant 3: an event that arrives
  before what it builds on is retried later); after ``max_deliver`` deliveries it is dead-lettered
  as ``not_ready``. It spends an attempt only while the service is healthy: while the store cannot
  commit, or another consumer of the service is paused (what it builds on may wait there), it is
  kept in hand and tried again;
- any other error: a store fault (:func:`~pulih.kit.consumers.is_store_fault`, or the store probe
  fails) pauses the consumer and the whole batch is tried again once the store commits, spending
  no attempt; an error of the handler's own is given back with a growing delay and dead-lettered
  as ``handler_failed`` after ``max_deliver`` deliveries.

Every handler gets at most ``PULIH_HANDLER_TIMEOUT_SECONDS`` for its event (and the commit as
much): the transaction is then abandoned, not waited for (its rollback may wait on a store that
hangs), and the store probed. If the store cannot commit either, the consumer pauses; otherwise
the handler that overran is at fault, and its event is set aside with
:class:`~pulih.kit.consumers.HandlerTimedOut` as its error.

``on_dead_letter`` runs before a valid event is dead-lettered, after the batch's transaction
(referral tells the clinic that sent a refused answer, in a transaction of its own); if it fails
because the store does, the event is kept in hand and refused again later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import CloudEvent
from pulih.kit.batch_apply import BatchApplier, Received, record_batch, unapplied
from pulih.kit.consumers import (
    Delivery,
    EventHandler,
    HandlerTimedOut,
    InvalidHook,
    NotReadyYet,
    Rejected,
    _forget,
    is_store_fault,
    retry_delay,
    still_working,
)
from pulih.kit.database import hold_rows
from pulih.kit.errors import PulihError
from pulih.kit.metrics import CONSUMED
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.telemetry import exporting
from pulih.kit.unit_of_work import UnitOfWork

log = logging.getLogger("pulih.batch_consumer")

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("pulih.batch_handlers")


@dataclass(frozen=True)
class Refusal:
    """Why a valid event is dead-lettered: the dead letter's ``error`` and ``reason``, and what
    its handler raised (``cause``)."""

    error: str
    reason: str
    cause: Exception


DeadLetterHook = Callable[[CloudEvent[Any], Delivery, Refusal], Awaitable[None]]
"""Runs before a valid event is dead-lettered, outside the batch's transaction: the event, how it
came, and why it is refused."""


def refusal(exc: Exception, subject: str, attempt: int) -> Refusal:
    """The dead letter of an event whose handler raised ``exc`` on its ``attempt``-th delivery
    on ``subject``, once the consumer gives it up."""
    if isinstance(exc, Rejected):
        return Refusal(exc.error, exc.reason, exc)
    if isinstance(exc, PulihError):
        return Refusal(exc.code, f"{subject}: {exc.message}", exc)
    if isinstance(exc, NotReadyYet):
        return Refusal("not_ready", f"still not applicable after {attempt} attempts: {exc}", exc)
    return Refusal("handler_failed", f"{type(exc).__name__}: {exc}", exc)


_KNOWN_FAULTS = (NotReadyYet, Rejected, PulihError)
"""What a handler raises about its event: set aside without asking the store."""

Held = tuple[Msg, Received]


class _Progress:
    """Where a batch's transaction is: the event whose handler runs (its index in the batch, and
    its type; None between handlers) and since when, for the watchdog of the handler timeout."""

    def __init__(self) -> None:
        self.index: int | None = None
        self.event_type: str | None = None
        self.since = time.monotonic()

    def at(self, index: int | None, event_type: str | None) -> None:
        self.index, self.event_type, self.since = index, event_type, time.monotonic()

    @property
    def what(self) -> str:
        """What is running: a handler, or the transaction around them."""
        if self.event_type is None:
            return "the batch's transaction"
        return f"the handler of {self.event_type}"


class _StoreFailing(Exception):
    """The batch's transaction failed because of the store (or of nothing an event did)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class HandlerApplier(BatchApplier):
    """What a batch consumer with event handlers does with each batch, from applying it to its
    acks (the module's docstring says how)."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        broker: NatsBroker,
        *,
        name: str,
        handlers: Mapping[str, EventHandler],
        retry_base_seconds: float,
        on_invalid: InvalidHook | None = None,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> None:
        super().__init__(
            runtime,
            broker,
            name=name,
            apply=_no_apply,
            tracks_itself=False,
            types=frozenset(handlers),
            retry_base_seconds=retry_base_seconds,
            on_invalid=on_invalid,
        )
        self.handlers = dict(handlers)
        self.on_dead_letter = on_dead_letter

    async def consume(self, messages: Sequence[Msg]) -> None:
        """Apply a fetched batch in order, acknowledge what the commit applied, settle the rest."""
        async with still_working(messages, self.settings.ack_wait_seconds / 3):
            try:
                pending = await self._read(messages)
                round_ = 0
                while pending:
                    round_ += 1
                    failed = await self._commit_handlers(pending)
                    if len(failed) < len(pending):  # a commit went through: the store answers
                        self._resume()
                    for index, (message, _) in enumerate(pending):
                        if index not in failed and not message.is_acked:
                            await message.ack()
                            CONSUMED.labels(self.name, "applied").inc()
                    pending = await self._settle([(pending[i], failed[i]) for i in sorted(failed)])
                    if pending:  # kept in hand: the store, or a sibling consumer, is not back yet
                        await self._wait(round_)
            finally:
                self._resume()
        for message in messages:  # already applied, or of a type this consumer skips
            if not message.is_acked:
                await message.ack()

    async def _commit_handlers(self, pending: Sequence[Held]) -> dict[int, Exception]:
        """Apply ``pending`` in one transaction until it commits; the events set aside (their
        index in ``pending``) with what their handlers raised. A store fault pauses and tries
        the batch again."""
        set_aside: dict[int, Exception] = {}
        savepoints = False
        store_round = 0
        while True:
            todo = [index for index in range(len(pending)) if index not in set_aside]
            if not todo:
                return set_aside
            failed: dict[int, Exception] = {}
            progress = _Progress()
            try:
                await self._watched(
                    self._handle_in_order(pending, todo, savepoints, failed, progress), progress
                )
            except _StoreFailing as exc:
                store_round += 1
                await self._wait_for_store(exc.cause, store_round)
                continue
            except Exception as exc:
                at = progress.index
                if at is None or is_store_fault(exc) or (savepoints and not isinstance(exc, HandlerTimedOut)):
                    # nothing an event did (the inbox, the commit), or the store: try it all again
                    store_round += 1
                    await self._wait_for_store(exc, store_round)
                    continue
                if not isinstance(exc, _KNOWN_FAULTS) and not await self._store_commits():
                    store_round += 1
                    await self._wait_for_store(exc, store_round)
                    continue
                set_aside[at] = exc
                savepoints = True
                continue
            set_aside.update(failed)
            return set_aside

    async def _handle_in_order(
        self,
        pending: Sequence[Held],
        todo: Sequence[int],
        savepoints: bool,
        failed: dict[int, Exception],
        progress: _Progress,
    ) -> None:
        """One transaction over the events ``todo`` of ``pending`` (those the inbox does not hold
        yet), with a savepoint around each if ``savepoints``: a handler's error is then noted in
        ``failed`` and the others go on; without, it rolls the whole transaction back."""
        async with self.runtime.database.transaction() as session:
            hold_rows(session)
            if savepoints:
                await self.runtime.database.open_for_savepoints(session)
            fresh = {id(r) for r in await unapplied(session, self.name, [pending[i][1] for i in todo])}
            applied: list[Received] = []
            for index in todo:
                received = pending[index][1]
                if id(received) not in fresh:
                    continue
                event = received.event
                progress.at(index, event.type)
                uow = UnitOfWork.caused_by(session, self.runtime.emitter, event)
                delivery = Delivery(received.subject, received.stream_seq, received.attempt)
                handler = self.handlers[event.type]
                with _continuing(event):
                    if not savepoints:
                        await handler(uow, event, delivery)
                        if _has_changes(session):  # its writes' errors are its own, not the next one's
                            await session.flush()
                    else:
                        try:
                            async with session.begin_nested():
                                await handler(uow, event, delivery)
                        except Exception as exc:
                            if is_store_fault(exc):
                                raise _StoreFailing(exc) from exc
                            failed[index] = exc
                            continue
                applied.append(received)
            progress.at(None, None)
            if applied:
                await record_batch(session, self.name, applied)

    async def _watched(self, work: Coroutine[Any, Any, None], progress: _Progress) -> None:
        """Run ``work``, abandoning it (:class:`HandlerTimedOut`) once one handler, or the commit,
        has run longer than ``PULIH_HANDLER_TIMEOUT_SECONDS``. An abandoned transaction is
        cancelled but not waited for: a store that hangs may never answer its rollback."""
        timeout = self.settings.handler_timeout_seconds
        task = asyncio.ensure_future(work)
        try:
            while True:
                left = progress.since + timeout - time.monotonic()
                if left <= 0:
                    raise HandlerTimedOut(f"{progress.what} did not finish within {timeout:g}s")
                done, _ = await asyncio.wait({task}, timeout=left)
                if done:
                    task.result()
                    return
        finally:
            if not task.done():
                task.cancel()
                task.add_done_callback(_forget)

    async def _settle(self, failures: Sequence[tuple[Held, Exception]]) -> list[Held]:
        """Nak, dead-letter or keep each event set aside, as its error says; those kept in hand."""
        kept: list[Held] = []
        probe = _OneProbe(self)
        for item, exc in failures:
            message, received = item
            attempt = received.attempt
            if isinstance(exc, (Rejected, PulihError)):
                if not await self._give_up(item, exc):
                    kept.append(item)
                continue
            if isinstance(exc, NotReadyYet):
                if not await probe.commits():
                    self._pause(exc)  # the store, not the event: spend no attempt
                    kept.append(item)
                    continue
                self.runtime.paused_consumers.discard(self.name)
                if self.runtime.paused_consumers:
                    kept.append(item)  # what it builds on may wait in a paused consumer of this service
                    continue
                if attempt >= self.settings.max_deliver:
                    if not await self._give_up(item, exc):
                        kept.append(item)
                    continue
                # what it builds on may be held by a consumer that died with it unacked: JetStream
                # gives it back only after ack_wait, so wait at least that long between attempts
                delay = max(retry_delay(attempt, self.retry_base_seconds), self.settings.ack_wait_seconds)
                await message.nak(delay=delay)
                continue
            if is_store_fault(exc) or not await probe.commits():
                self._pause(exc)
                kept.append(item)
                continue
            log.error(
                "handler failed",
                exc_info=exc,
                extra={"consumer": self.name, "event_id": str(received.event.id), "attempt": attempt},
            )
            if attempt >= self.settings.max_deliver:
                if not await self._give_up(item, exc):
                    kept.append(item)
                continue
            await message.nak(delay=retry_delay(attempt, self.retry_base_seconds))
        return kept

    async def _give_up(self, item: Held, exc: Exception) -> bool:
        """Dead-letter an event (after ``on_dead_letter``); False if it is to be kept in hand
        because the hook failed with the store."""
        message, received = item
        refused = refusal(exc, received.subject, received.attempt)
        with _continuing(received.event):
            if self.on_dead_letter is not None:
                delivery = Delivery(received.subject, received.stream_seq, received.attempt)
                try:
                    await self.on_dead_letter(received.event, delivery, refused)
                except Exception as hook_exc:
                    if is_store_fault(hook_exc) or not await self._store_commits():
                        self._pause(hook_exc)
                        return False
                    log.exception("on_dead_letter failed", extra={"consumer": self.name})
            await self._dead_letter(message, received.attempt, refused.error, refused.reason)
        return True


class _OneProbe:
    """The store probed once for all the events of one settling, and only if one needs it."""

    def __init__(self, applier: BatchApplier) -> None:
        self.applier = applier
        self.answer: bool | None = None

    async def commits(self) -> bool:
        if self.answer is None:
            self.answer = await self.applier._store_commits()
        return self.answer


async def _no_apply(_: UnitOfWork, __: Sequence[Received]) -> None:
    raise AssertionError("a consumer with handlers applies each event with its handler")


def _has_changes(session: AsyncSession) -> bool:
    """Whether the session holds changes not flushed yet (asking costs less than a flush)."""
    sync = session.sync_session
    return bool(sync.new or sync.deleted or sync.identity_map.check_modified())


@contextmanager
def _continuing(event: CloudEvent[Any]) -> Iterator[None]:
    """Make the event's trace the current one: what its handler emits, and its dead letter,
    continue it. Where spans are exported (:func:`~pulih.kit.telemetry.exporting`), applying it is
    a span of that trace; elsewhere no span of its own (one per event would cost more than applying
    many)."""
    if not event.traceparent:
        yield
        return
    parent = _propagator.extract({"traceparent": event.traceparent})
    if exporting():
        with _tracer.start_as_current_span(
            f"{event.type} process", context=parent, kind=trace.SpanKind.CONSUMER
        ):
            yield
        return
    token = otel_context.attach(parent)
    try:
        yield
    finally:
        otel_context.detach(token)
