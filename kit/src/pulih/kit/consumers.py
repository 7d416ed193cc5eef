"""What every consumer of events shares: how an event came, what a handler may raise, dead
letters, the store probe, and keeping messages in hand.

The consumers themselves are :func:`pulih.kit.batch_consumer.subscribe_batches` (ordered batches,
one transaction a batch; with event handlers, :mod:`pulih.kit.batch_handlers`). What they promise
for each event:

- Reading is tolerant (:func:`pulih.contracts.parse_event`): attributes and data fields this
  version does not know are ignored, identity keys refused.
- An invalid message goes to ``ibm.<regency>.dlq.<service>`` with the reason, then is
  terminated: it is never retried and never stops the consumer.
- A handler that raises :class:`NotReadyYet` (the event depends on one not applied yet) is
  retried after a delay; so is one that fails unexpectedly.
- A handler that raises :class:`Rejected` (a valid event that must never be applied, such as
  an illegal state transition), or a domain error (:class:`~pulih.kit.errors.PulihError`, whose
  code becomes the error), is dead-lettered at once with its reason, and nothing changes.
- After ``max_deliver`` attempts the message goes to the dead-letter subject too.

Only the event's own faults spend its attempts. A store fault is not one: when a transaction
fails with an infrastructure error (:func:`is_store_fault`: SQLAlchemy
``OperationalError``/``InterfaceError``, a pool timeout, an invalidated connection, ``OSError``),
or with any other error while a real write-and-commit probe (:func:`store_commits`; ``SELECT 1``
answers from a read-only disk) fails, the consumer pauses: it names itself in
``runtime.paused_consumers``, keeps its messages (neither acked nor nacked, so JetStream counts
no new delivery), takes no other, probes with a growing backoff (``retry_base_seconds``
doubling, at most ``PULIH_STORE_RETRY_MAX_SECONDS``) and, once a commit succeeds, applies the
same messages again. However long the outage, nothing is dead-lettered because of it.

A store can also hang without raising (a stopped PostgreSQL, a disk that stalls): a handler gets
at most ``PULIH_HANDLER_TIMEOUT_SECONDS`` (30 s by default). One that overruns it is abandoned
(:class:`HandlerTimedOut`, see :func:`within`) and judged like any other error: a store fault if
the probe cannot commit either (the consumer pauses, no attempt spent), the event's fault
otherwise (a handler that hangs on its own spends an attempt). The probe gets at most the same
time (and never more than 10 s).

``NotReadyYet`` counts an attempt only while the service is healthy: if the store cannot commit,
or another consumer of the service is paused (what the event builds on may be waiting there), the
message is held the same way and retried when they are back; the ``max_deliver`` budget of a
dependent event is spent only after its parent could have been applied.

Every message in hand is kept alive with an in-progress ack (``+WPI``) every third of
``PULIH_ACK_WAIT_SECONDS`` (:func:`still_working`; 10 s by default): a slow handler or a paused
consumer keeps its messages, while a consumer that died mid-batch gives them back after
``ack_wait``. (A durable created with another ``ack_wait`` is updated at start:
:func:`refresh_durables`.)

A dead letter is a CloudEvent of the consuming service, ``pulih.<service>.EventDeadLettered.v1``
(EVENTS.md, "Dead letters"), with a bounded copy of the message (at most 64 KiB, identity values
redacted; none if even that does not fit the stream's message limit); the original stays in the
stream at ``stream_seq``. Its headers repeat its envelope, like every event's.

Each service has its own JetStream consumer: the durable name is ``<service>-<durable>``, so two
services that both read, say, outreach's events never split one consumer's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from nats.js.errors import BadRequestError, NotFoundError
from sqlalchemy import exc as sa_exc

from pulih.contracts import (
    CloudEvent,
    new_event,
    stream_name,
    subject_for,
)
from pulih.contracts.events.dead_letters import (
    PAYLOAD_LIMIT,
    EventDeadLettered,
    dead_letter_of,
)
from pulih.kit import inbox
from pulih.kit.database import Database
from pulih.kit.emitter import current_traceparent
from pulih.kit.metrics import CONSUMED
from pulih.kit.outbox import envelope_headers
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.unit_of_work import UnitOfWork

log = logging.getLogger("pulih.consumers")


@dataclass(frozen=True)
class Delivery:
    """How an event reached the consumer: its subject, stream sequence and attempt number."""

    subject: str
    stream_seq: int
    attempt: int


EventHandler = Callable[[UnitOfWork, CloudEvent[Any], Delivery], Awaitable[None]]
"""Applies one event inside the consumer's unit of work."""


class NotReadyYet(Exception):
    """The event cannot be applied yet (what it builds on has not arrived): retry it later."""


class Rejected(Exception):
    """A valid event that must not be applied (an illegal transition, a sender without the right
    to say it): dead-letter it now with ``error`` and ``reason``; retrying cannot help."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(f"{error}: {reason}")
        self.error = error
        self.reason = reason


class HandlerTimedOut(Exception):
    """An attempt (or a store probe) did not finish in its time: the store hangs or the handler
    does. Not a :class:`TimeoutError`: which of the two it was is for the store probe to say."""


def retry_delay(attempt: int, base_seconds: float) -> float:
    """Seconds to wait before the next delivery: doubling from ``base_seconds``, at most 60."""
    return float(min(base_seconds * 2 ** max(attempt - 1, 0), 60.0))


_MESSAGE_TOO_LARGE = 10054
"""JetStream's error code for a message over the stream's ``max_msg_size``."""

_DEAD_LETTER_IDS = uuid.UUID("8e0b6a52-4f0f-4c53-9a57-4a4f1c1d5e6b")
"""Namespace of dead-letter ids: one message dead-lettered twice by one consumer (a crash before
its ``term``) gets the same id, so the stream's duplicate window keeps one dead letter."""


async def dead_letter(
    broker: NatsBroker,
    regency: str,
    service: str,
    *,
    consumer: str,
    subject: str,
    payload: bytes,
    stream_seq: int,
    attempts: int,
    error: str,
    reason: str,
) -> CloudEvent[EventDeadLettered]:
    """Publish ``service``'s dead letter for a message its consumer could not apply.

    The dead letter is the CloudEvent ``pulih.<service>.EventDeadLettered.v1`` on
    ``ibm.<regency>.dlq.<service>``; it continues the refused event's chain where that event
    was readable enough to name one. It is published with the NATS client itself, so its headers
    are exactly its envelope's (see :func:`pulih.kit.outbox.envelope_headers`).
    """
    js = broker.connection.jetstream()
    cause, chain = _chain_of(payload)
    letter_id = uuid.uuid5(_DEAD_LETTER_IDS, f"{regency}/{consumer}/{stream_seq}")
    # The whole copy first; if the stream's per-message limit (PULIH_STREAM_MAX_MSG_SIZE, set
    # lower than the copy needs) refuses it, the dead letter without the copy: the reason must
    # be recorded, and the original stays in the stream at stream_seq.
    for payload_limit in (PAYLOAD_LIMIT, 0):
        data = dead_letter_of(
            service,
            consumer=consumer,
            subject=subject,
            stream_seq=stream_seq,
            attempts=attempts,
            error=error,
            reason=reason,
            payload=payload,
            payload_limit=payload_limit,
        )
        letter: CloudEvent[EventDeadLettered] = new_event(
            data,
            regency=regency,
            id=letter_id,
            correlationid=chain or str(letter_id),
            causationid=cause,
            traceparent=current_traceparent(),
        )
        headers = {
            **envelope_headers(letter),
            "Pulih-Dlq-Error": data.error,
            "Pulih-Dlq-Reason": " ".join(data.reason.split())[:500],
        }
        try:
            await js.publish(
                subject_for(letter, regency),
                letter.to_json(),
                timeout=5.0,
                stream=stream_name(regency),
                headers=headers,
            )
        except BadRequestError as exc:
            if exc.err_code != _MESSAGE_TOO_LARGE or payload_limit == 0:
                raise
            continue
        break
    CONSUMED.labels(consumer, "dead_lettered").inc()
    log.warning(
        "dead-lettered",
        extra={
            "consumer": consumer,
            "subject": subject,
            "stream_seq": stream_seq,
            "error": error,
            "reason": reason,
        },
    )
    return letter


def _chain_of(payload: bytes) -> tuple[str | None, str | None]:
    """The refused message's ``id`` and the chain it belongs to, where it names them.

    Only a UUID is taken for an id (as written, so it names the stored message), and only a short
    printable text for a ``correlationid``: the message was refused and anything in it may be
    hostile.
    """
    try:
        message = json.loads(payload)
    except ValueError:
        return None, None
    if not isinstance(message, dict):
        return None, None
    cause = message.get("id")
    if not (isinstance(cause, str) and _is_uuid(cause)):
        cause = None
    chain = message.get("correlationid")
    if not (isinstance(chain, str) and 0 < len(chain) <= 200 and chain.isprintable()):
        chain = cause
    return cause, chain


def _is_uuid(text: str) -> bool:
    try:
        return len(text) == 36 and bool(uuid.UUID(text))
    except ValueError:
        return False


InvalidHook = Callable[[bytes, Delivery, str], Awaitable[None]]
"""Runs after a message that is no valid event was dead-lettered: its raw bytes, how it came,
and the reason it was refused."""


async def erase(broker: NatsBroker, stream: str, delivery: Delivery) -> None:
    """Erase (overwrite, then delete) one message of the stream: a refused message that held an
    identity must not stay readable to every consumer and to ``pulih events tail``."""
    try:
        await broker.connection.jetstream().delete_msg(stream, delivery.stream_seq)
    except Exception:
        log.exception("could not erase a message holding an identity", extra={"seq": delivery.stream_seq})
        return
    log.warning("erased a message holding an identity", extra={"seq": delivery.stream_seq})


async def refresh_durables(broker: NatsBroker, runtime: ServiceRuntime) -> list[str]:
    """Give the service's durable consumers that already exist today's ``ack_wait`` and
    ``max_deliver``: subscribing finds an existing durable and keeps its old settings (a regency
    that ran with the old 30 s ack_wait would keep it). Returns the durables it changed."""
    settings = runtime.settings
    js = broker.connection.jetstream()
    stream = stream_name(settings.regency)
    changed = []
    for durable in runtime.durables:
        try:
            info = await js.consumer_info(stream, durable)
        except NotFoundError:
            continue  # created by the subscriber, with today's settings
        config = info.config
        if config.ack_wait == settings.ack_wait_seconds and config.max_deliver == settings.max_deliver:
            continue
        await js.add_consumer(
            stream, config.evolve(ack_wait=settings.ack_wait_seconds, max_deliver=settings.max_deliver)
        )
        changed.append(durable)
        log.info("durable consumer %s now has ack_wait %ss", durable, settings.ack_wait_seconds)
    return changed


def is_store_fault(exc: BaseException) -> bool:
    """Whether ``exc`` says the store (not the event) failed: the database is unreachable,
    locked, read-only, out of space or broke the connection.

    An integrity or data error is the event's; an unknown exception is decided by probing the
    store (:func:`store_commits`).
    """
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OSError, TimeoutError))


_PROBE_CONSUMER = "pulih.store-probe"
_PROBE_EVENT = uuid.UUID(int=0)


async def store_commits(database: Database, timeout: float = 10.0) -> bool:
    """Whether ``database`` can commit a write now (within ``timeout`` seconds).

    ``SELECT 1`` answers from a read-only file or disk; this writes an inbox row and removes it
    in one transaction, and commits, so the pages or the WAL record must really be written.
    """

    async def probe() -> None:
        async with database.transaction() as session:
            await session.execute(
                inbox.inbox_table.insert().values(
                    consumer=_PROBE_CONSUMER,
                    event_id=_PROBE_EVENT,
                    stream_seq=None,
                    applied_at=datetime.now(UTC),
                )
            )
            await session.execute(
                inbox.inbox_table.delete().where(
                    inbox.inbox_table.c.consumer == _PROBE_CONSUMER,
                    inbox.inbox_table.c.event_id == _PROBE_EVENT,
                )
            )

    try:
        await within(probe(), timeout, "the store probe")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.debug("store probe failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        return False
    return True


async def within(work: Coroutine[Any, Any, None], seconds: float, what: str) -> None:
    """Run ``work`` for at most ``seconds``; :class:`HandlerTimedOut` (naming ``what``) if it has
    not finished by then.

    ``work`` runs as a task of its own, cancelled at the deadline but not waited for: a store that
    hangs may never answer the rollback that the cancellation starts (``asyncio.timeout`` would
    wait for it). It finishes on its own once the store answers.
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    finally:
        if not task.done():
            task.cancel()
            task.add_done_callback(_forget)
    if not done:
        raise HandlerTimedOut(f"{what} did not finish within {seconds:g}s")
    task.result()


def _forget(task: asyncio.Task[None]) -> None:
    """Retrieve what an abandoned attempt ended with, so asyncio does not report it."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.debug("a timed-out attempt ended", extra={"error": f"{type(exc).__name__}: {exc}"})


@asynccontextmanager
async def still_working(messages: Msg | Sequence[Msg], every: float) -> AsyncIterator[None]:
    """Tell JetStream every ``every`` seconds that ``messages`` (those not settled yet) are being
    worked on (``+WPI``), so a short ``ack_wait`` redelivers a dead consumer's messages soon but
    not a slow handler's."""
    held = [messages] if isinstance(messages, Msg) else messages

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                for message in held:
                    if not message.is_acked:
                        await message.in_progress()
            except Exception as exc:  # a broken connection: the messages come back after ack_wait
                log.debug("in-progress ack failed", extra={"error": f"{type(exc).__name__}: {exc}"})

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
