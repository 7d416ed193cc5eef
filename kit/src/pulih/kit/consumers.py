"""Durable JetStream consumers with an inbox, ordered retries and a dead-letter step.

:func:`subscribe_durable` registers a pull consumer on the regency's stream. Every message is
parsed against the contract; the event's handler runs in one unit of work together with the
inbox record, and the message is acknowledged after the commit (FastStream's NACK_ON_ERROR).
Whatever the handler emits names the consumed event as its cause.

- An invalid message goes to ``ibm.<regency>.dlq.<service>`` with the reason, then is
  terminated: it is never retried and never stops the consumer.
- A handler that raises :class:`NotReadyYet` (the event depends on one not applied yet) is
  redelivered after a delay; so is one that fails unexpectedly.
- A handler that raises :class:`Rejected` (a valid event that must never be applied, such as
  an illegal state transition), or a domain error (:class:`~pulih.kit.errors.PulihError`, whose
  code becomes the error), is dead-lettered at once with its reason, and nothing changes.
- After ``max_deliver`` attempts the message goes to the dead-letter subject too.

Each service has its own JetStream consumer: the durable name is ``<service>-<durable>``, so two
services that both read, say, outreach's events never split one consumer's messages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from faststream import AckPolicy as HandlerAckPolicy
from faststream.exceptions import NackMessage
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import AckPolicy as JetStreamAckPolicy

from pulih.contracts import CloudEvent, Event, InvalidEvent, dlq_subject, parse_event, stream_name
from pulih.kit import inbox
from pulih.kit.errors import PulihError
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


def retry_delay(attempt: int, base_seconds: float) -> float:
    """Seconds to wait before the next delivery: doubling from ``base_seconds``, at most 60."""
    return float(min(base_seconds * 2 ** max(attempt - 1, 0), 60.0))


async def dead_letter(
    broker: NatsBroker,
    regency: str,
    service: str,
    *,
    consumer: str,
    subject: str,
    payload: bytes,
    stream_seq: int | None,
    attempts: int,
    error: str,
    reason: str,
) -> None:
    """Publish a message this consumer could not apply to the service's dead-letter subject."""
    body = {
        "consumer": consumer,
        "subject": subject,
        "stream_seq": stream_seq,
        "attempts": attempts,
        "error": error,
        "reason": reason,
        "payload": payload.decode("utf-8", errors="replace"),
    }
    await broker.publish(
        json.dumps(body).encode(),
        dlq_subject(regency, service),
        headers={
            "Nats-Msg-Id": f"dlq:{consumer}:{stream_seq}",
            "Pulih-Dlq-Error": error,
            "Pulih-Dlq-Reason": reason[:500],
        },
        stream=stream_name(regency),
        timeout=5.0,
    )
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


def subscribe_durable(
    runtime: ServiceRuntime,
    broker: NatsBroker,
    *,
    durable: str,
    subject: str,
    handlers: Mapping[type[Event], EventHandler],
    retry_base_seconds: float = 1.0,
) -> None:
    """Register durable pull consumer ``durable`` on ``subject`` of the regency's stream.

    ``handlers`` maps event classes to what applies them; other event types on the subject are
    acknowledged and skipped.
    """
    settings = runtime.settings
    max_deliver = settings.max_deliver
    by_type = {model.type_name(): handler for model, handler in handlers.items()}
    consumer_name = f"{runtime.name}.{durable}"

    async def fail(msg: Any, attempts: int, error: str, reason: str) -> None:
        meta = msg.raw_message.metadata
        await dead_letter(
            broker,
            settings.regency,
            runtime.name,
            consumer=consumer_name,
            subject=msg.raw_message.subject,
            payload=msg.body,
            stream_seq=meta.sequence.stream,
            attempts=attempts,
            error=error,
            reason=reason,
        )
        await msg.reject()

    @broker.subscriber(
        subject,
        stream=JStream(stream_name(settings.regency), declare=False),
        durable=f"{runtime.name}-{durable}",
        # One message per fetch: FastStream runs the messages of a fetched batch concurrently,
        # which would apply events about one client out of order (invariant 3). SQLite's single
        # writer hides that; PostgreSQL does not.
        pull_sub=PullSub(batch_size=1, timeout=1.0),
        config=ConsumerConfig(max_deliver=max_deliver, ack_wait=30, ack_policy=JetStreamAckPolicy.EXPLICIT),
        ack_policy=HandlerAckPolicy.NACK_ON_ERROR,
        title=durable,
    )
    async def on_message(msg: NatsMessage) -> None:
        meta = msg.raw_message.metadata
        attempts = meta.num_delivered
        try:
            event_ = parse_event(msg.body)
        except InvalidEvent as exc:
            await fail(msg, attempts, "invalid_event", exc.reason)
            return
        handler = by_type.get(event_.type)
        if handler is None:
            return
        delivery = Delivery(msg.raw_message.subject, meta.sequence.stream, attempts)
        try:
            async with runtime.unit_of_work(caused_by=event_) as uow:
                if await inbox.already_applied(uow.session, consumer_name, event_.id):
                    return
                await handler(uow, event_, delivery)
                await inbox.record_applied(uow.session, consumer_name, event_.id, meta.sequence.stream)
        except Rejected as exc:
            await fail(msg, attempts, exc.error, exc.reason)
            return
        except PulihError as exc:
            await fail(msg, attempts, exc.code, f"{delivery.subject}: {exc.message}")
            return
        except NotReadyYet as exc:
            if attempts >= max_deliver:
                await fail(
                    msg,
                    attempts,
                    "not_ready",
                    f"still not applicable after {attempts} attempts: {exc}",
                )
                return
            raise NackMessage(delay=retry_delay(attempts, retry_base_seconds)) from None
        except Exception as exc:
            log.exception("handler failed", extra={"consumer": durable, "event_id": str(event_.id)})
            if attempts >= max_deliver:
                await fail(msg, attempts, "handler_failed", f"{type(exc).__name__}: {exc}")
                return
            raise NackMessage(delay=retry_delay(attempts, retry_base_seconds)) from None
