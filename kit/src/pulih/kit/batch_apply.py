"""How one fetched batch is applied: in stream order, once, with poison and store faults handled.

:class:`BatchApplier` is the part of :mod:`pulih.kit.batch_consumer` that owns a batch from the
fetch to its acks (that module's docstring says what it promises). The events go to the
service's ``apply`` in one unit of work; a batch ``apply`` refuses is applied again one event
at a time, to find the event at fault and deal with it as :mod:`pulih.kit.consumers` deals with
one message, while the events after it wait in hand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import CloudEvent, IdentityRefused, InvalidEvent, parse_event, stream_name
from pulih.kit.consumers import (
    Delivery,
    InvalidHook,
    NotReadyYet,
    Rejected,
    dead_letter,
    erase,
    is_store_fault,
    retry_delay,
    still_working,
    store_commits,
    within,
)
from pulih.kit.errors import PulihError
from pulih.kit.inbox import inbox_table
from pulih.kit.metrics import CONSUMED
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.unit_of_work import UnitOfWork

log = logging.getLogger("pulih.batch_consumer")


@dataclass(frozen=True)
class Received:
    """One event of a batch and how it came: its subject, stream sequence, attempt number and the
    message's headers (those the server stamped too, such as a sourced message's
    ``Nats-Stream-Source``; empty for a message without headers)."""

    event: CloudEvent[Any]
    stream_seq: int
    subject: str
    attempt: int
    headers: Mapping[str, str] = field(default_factory=dict)


BatchApply = Callable[[UnitOfWork, Sequence[Received]], Awaitable[None]]
"""Applies events, in the order given, inside the batch's unit of work."""

_IN_CLAUSE = 500
"""Ids per ``IN (…)`` of the inbox query: well under SQLite's limit on bound parameters."""


async def unapplied(session: AsyncSession, consumer: str, received: Sequence[Received]) -> list[Received]:
    """The events of ``received`` that ``consumer``'s inbox does not hold, in order, each once."""
    ids = list(dict.fromkeys(r.event.id for r in received))
    seen: set[UUID] = set()
    for start in range(0, len(ids), _IN_CLAUSE):
        found = await session.scalars(
            select(inbox_table.c.event_id).where(
                inbox_table.c.consumer == consumer,
                inbox_table.c.event_id.in_(ids[start : start + _IN_CLAUSE]),
            )
        )
        seen.update(found)
    fresh = []
    for item in received:
        if item.event.id not in seen:
            seen.add(item.event.id)
            fresh.append(item)
    return fresh


async def record_batch(session: AsyncSession, consumer: str, received: Sequence[Received]) -> None:
    """Record in the caller's transaction that ``consumer`` applied ``received`` (one statement,
    many rows; the primary key makes a concurrent second application fail at commit)."""
    now = datetime.now(UTC)
    await session.execute(
        inbox_table.insert(),
        [
            {"consumer": consumer, "event_id": r.event.id, "stream_seq": r.stream_seq, "applied_at": now}
            for r in received
        ],
    )


def delivered(message: Msg) -> tuple[int, int]:
    """A JetStream message's stream sequence and delivery attempt, read from its ack subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…``, or the longer form with a domain
    and an account). nats-py's ``metadata`` reads them too, but builds a timestamp and three
    objects for each message, a good share of what consuming one costs."""
    tokens = (message.reply or "").split(".")
    if tokens[:2] == ["$JS", "ACK"]:
        if len(tokens) == 9:
            return int(tokens[5]), int(tokens[4])
        if len(tokens) >= 11:
            return int(tokens[Msg.Ack.StreamSeq]), int(tokens[Msg.Ack.NumDelivered])
    metadata = message.metadata
    return metadata.sequence.stream, metadata.num_delivered


class BatchApplier:
    """What one batch consumer does with each batch it fetches, from applying it to its acks."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        broker: NatsBroker,
        *,
        name: str,
        apply: BatchApply,
        tracks_itself: bool,
        types: frozenset[str] | None,
        retry_base_seconds: float,
        on_invalid: InvalidHook | None = None,
    ) -> None:
        self.runtime = runtime
        self.broker = broker
        self.name = name
        """The consumer's name in its inbox rows, dead letters and ``paused_consumers``."""
        self.apply = apply
        self.tracks_itself = tracks_itself
        self.types = types
        self.retry_base_seconds = retry_base_seconds
        self.on_invalid = on_invalid
        self.settings = runtime.settings
        self.stream = stream_name(runtime.settings.regency)
        self.probe_timeout = min(self.settings.handler_timeout_seconds, 10.0)
        """How long a store probe may take: no longer than an attempt, and never more than 10 s."""

    async def consume(self, messages: Sequence[Msg]) -> None:
        """Apply a fetched batch in order, then acknowledge what the commits applied or skipped."""
        async with still_working(messages, self.settings.ack_wait_seconds / 3):
            try:
                await self._apply_in_order(await self._read(messages))
            finally:
                self._resume()
        for message in messages:  # applied, already applied, or of a type this consumer skips
            if not message.is_acked:
                await message.ack()
                CONSUMED.labels(self.name, "applied").inc()

    async def _read(self, messages: Sequence[Msg]) -> list[tuple[Msg, Received]]:
        """The batch's events to apply, in stream order; invalid messages are dead-lettered."""
        held = []
        for message in messages:
            stream_seq, attempt = delivered(message)
            try:
                event = parse_event(message.data)
            except InvalidEvent as exc:
                await self._dead_letter(message, attempt, "invalid_event", exc.reason)
                delivery = Delivery(message.subject, stream_seq, attempt)
                if isinstance(exc, IdentityRefused):
                    await erase(self.broker, self.stream, delivery)
                if self.on_invalid is not None:
                    try:
                        await self.on_invalid(message.data, delivery, exc.reason)
                    except Exception:
                        log.exception("on_invalid failed", extra={"consumer": self.name})
                continue
            if self.types is None or event.type in self.types:
                received = Received(event, stream_seq, message.subject, attempt, message.headers or {})
                held.append((message, received))
        return held

    async def _apply_in_order(self, held: list[tuple[Msg, Received]]) -> None:
        while held:
            if await self._apply_batch([received for _, received in held]):
                return
            # One event at a time finds the one at fault; once it is settled, the events after it
            # go on as a batch again.
            for index, item in enumerate(held):
                if await self._apply_alone(*item):
                    held = held[index + 1 :]
                    break
            else:
                return

    async def _apply_batch(self, received: Sequence[Received]) -> bool:
        """Apply ``received`` in one transaction; False if ``apply`` refused it (rolled back)."""
        round_ = 0
        while True:
            round_ += 1
            try:
                await self._commit(received)
            except (Rejected, PulihError, NotReadyYet):
                return False
            except Exception as exc:
                if is_store_fault(exc) or not await self._store_commits():
                    await self._wait_for_store(exc, round_)
                    continue
                log.warning(
                    "batch refused: applying its events one at a time",
                    extra={"consumer": self.name, "error": f"{type(exc).__name__}: {exc}"},
                )
                return False
            self._resume()
            return True

    async def _apply_alone(self, message: Msg, received: Received) -> bool:
        """Apply one event in its own transaction, retrying it in hand, and ack it; or dead-letter
        it. Whether it met trouble (was dead-lettered or failed at least once)."""
        attempt = received.attempt
        troubled = False
        round_ = 0
        while True:
            round_ += 1
            try:
                await self._commit([replace(received, attempt=attempt)])
            except Rejected as exc:
                await self._dead_letter(message, attempt, exc.error, exc.reason)
                return True
            except PulihError as exc:
                await self._dead_letter(message, attempt, exc.code, f"{received.subject}: {exc.message}")
                return True
            except NotReadyYet as exc:
                if not await self._store_commits():
                    self._pause(exc)  # the store, not the event: spend no attempt
                    await self._wait(round_)
                    continue
                self.runtime.paused_consumers.discard(self.name)
                if self.runtime.paused_consumers:
                    # what it builds on may wait in a paused consumer of this service
                    await self._wait(round_)
                    continue
                if attempt >= self.settings.max_deliver:
                    reason = f"still not applicable after {attempt} attempts: {exc}"
                    await self._dead_letter(message, attempt, "not_ready", reason)
                    return True
                # what it builds on may be held by a consumer that died with it unacked: JetStream
                # gives it back only after ack_wait, so wait at least that long between attempts
                delay = max(retry_delay(attempt, self.retry_base_seconds), self.settings.ack_wait_seconds)
            except Exception as exc:
                if is_store_fault(exc) or not await self._store_commits():
                    await self._wait_for_store(exc, round_)
                    continue
                log.exception(
                    "apply failed", extra={"consumer": self.name, "event_id": str(received.event.id)}
                )
                if attempt >= self.settings.max_deliver:
                    await self._dead_letter(
                        message, attempt, "handler_failed", f"{type(exc).__name__}: {exc}"
                    )
                    return True
                delay = retry_delay(attempt, self.retry_base_seconds)
            else:
                self._resume()
                await message.ack()
                CONSUMED.labels(self.name, "applied").inc()
                return troubled
            troubled = True
            attempt += 1
            await asyncio.sleep(delay)

    async def _commit(self, received: Sequence[Received]) -> None:
        """Apply ``received`` in one transaction, within the handler timeout (else
        :class:`~pulih.kit.consumers.HandlerTimedOut`, the transaction abandoned)."""
        timeout = self.settings.handler_timeout_seconds
        await within(self._transaction(received), timeout, f"the apply of {self.name}")

    async def _transaction(self, received: Sequence[Received]) -> None:
        async with self.runtime.unit_of_work() as uow:
            if self.tracks_itself:
                await self.apply(uow, received)
                return
            fresh = await unapplied(uow.session, self.name, received)
            if fresh:
                await self.apply(uow, fresh)
                await record_batch(uow.session, self.name, fresh)

    async def _dead_letter(self, message: Msg, attempts: int, error: str, reason: str) -> None:
        await dead_letter(
            self.broker,
            self.settings.regency,
            self.runtime.name,
            consumer=self.name,
            subject=message.subject,
            payload=message.data,
            stream_seq=message.metadata.sequence.stream,
            attempts=attempts,
            error=error,
            reason=reason,
        )
        await message.term()

    async def _wait_for_store(self, exc: BaseException, round_: int) -> None:
        """Pause until the store commits again (probing with a growing backoff)."""
        self._pause(exc)
        await self._wait(round_)
        while not await self._store_commits():
            round_ += 1
            await self._wait(round_)

    async def _store_commits(self) -> bool:
        """Whether the store commits a write now (within the probe's time)."""
        return await store_commits(self.runtime.database, self.probe_timeout)

    async def _wait(self, round_: int) -> None:
        delay = retry_delay(round_, self.retry_base_seconds)
        await asyncio.sleep(min(delay, self.settings.store_retry_max_seconds))

    def _pause(self, exc: BaseException) -> None:
        if self.name not in self.runtime.paused_consumers:
            self.runtime.paused_consumers.add(self.name)
            log.warning(
                "store failing: consumer paused",
                extra={"consumer": self.name, "error": f"{type(exc).__name__}: {exc}"},
            )

    def _resume(self) -> None:
        if self.name in self.runtime.paused_consumers:
            self.runtime.paused_consumers.discard(self.name)
            log.warning("store answers again: consumer resumed", extra={"consumer": self.name})
