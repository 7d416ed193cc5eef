"""Dead letters: the messages a service's consumer could not apply, as events of that service.

Every consuming service publishes ``pulih.<service>.EventDeadLettered.v1`` on
``ibm.<regency>.dlq.<service>`` (EVENTS.md, "Dead letters"), so the stream holds one kind of
message and any CloudEvents tool can read them. The events share one base,
:class:`EventDeadLettered`; each service has its own concrete class because the ``type`` names
the service. Build one with :func:`dead_letter_of`, which turns the raw message into the
``payload`` fields.

A dead letter keeps a copy of the refused message, bounded and without identity: the copy is
cut at :data:`PAYLOAD_LIMIT` (``payload_truncated``) and, where it is JSON, the value of every
identity key is replaced (``payload_redacted``), so a message refused for carrying a NIK does
not put that NIK on a second subject. The original stays in the stream at ``stream_seq``.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from pulih.contracts.event import Event
from pulih.contracts.identity_keys import redact_identity

PAYLOAD_LIMIT = 64 * 1024
"""The most of the original message a dead letter keeps: 64 KiB of ``payload`` as sent (the
JSON-escaped text, or the base64 text). With its envelope and longest reason a dead letter stays
under 80 KiB, below the regency stream's per-message limit (``PULIH_STREAM_MAX_MSG_SIZE``); where
a stream allows less, the kit sends the dead letter without the copy."""

PayloadEncoding = Literal["utf-8", "base64"]
"""How ``payload`` holds the original bytes: as its UTF-8 text, or base64 where it was not UTF-8."""

_ERROR_CODE = r"^[a-z][a-z0-9_]*$"
_NATS_SUBJECT = r"^[^\s.]+(\.[^\s.]+)*$"
_REASON_LIMIT = 2000


class EventDeadLettered(Event):
    """A message a consumer could not apply: why, and a bounded copy of it.

    The base of every service's dead letter; not an event by itself (it names no service).
    """

    about: ClassVar[str] = "subject"

    consumer: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=200)]
    """The consumer that gave up, ``<service>.<durable>``, e.g. ``referral.clinic-answers``."""
    subject: Annotated[str, Field(pattern=_NATS_SUBJECT, max_length=255)]
    """The NATS subject the refused message was published on (also the CloudEvent ``subject``)."""
    stream_seq: Annotated[int, Field(ge=1)]
    """The refused message's sequence in the regency's stream, where the original stays."""
    attempts: Annotated[int, Field(ge=1)]
    """How many times it was delivered before the consumer gave up."""
    error: Annotated[str, Field(pattern=_ERROR_CODE, max_length=60)]
    """The refusal's code, e.g. ``invalid_event``, ``illegal_transition``, ``not_ready``."""
    reason: Annotated[str, Field(max_length=_REASON_LIMIT)]
    """What was wrong, in Pulih's words."""
    payload: Annotated[str, Field(max_length=PAYLOAD_LIMIT)]
    """The refused message: its text, or base64 where it was not UTF-8 (``payload_encoding``);
    at most :data:`PAYLOAD_LIMIT`, with identity values redacted."""
    payload_encoding: PayloadEncoding
    """``utf-8`` when ``payload`` is the message's text, ``base64`` when it holds its bytes."""
    payload_size: Annotated[int, Field(ge=0)]
    """The size of the original message in bytes."""
    payload_truncated: bool
    """``payload`` is only the beginning of the message (it was longer than the limit)."""
    payload_redacted: bool
    """Identity values in the message were replaced in ``payload`` (the original stays in the
    stream at ``stream_seq``)."""

    @classmethod
    def event_name(cls) -> str:
        """Every service's dead letter is called ``EventDeadLettered``."""
        return "EventDeadLettered"


class OutreachEventDeadLettered(EventDeadLettered):
    """A message outreach's consumer could not apply: why, and a bounded copy of it."""

    service_name: ClassVar[str] = "outreach"


class RehabEventDeadLettered(EventDeadLettered):
    """A message rehab's consumer could not apply: why, and a bounded copy of it."""

    service_name: ClassVar[str] = "rehab"


class ReferralEventDeadLettered(EventDeadLettered):
    """A message referral's consumer could not apply: why, and a bounded copy of it."""

    service_name: ClassVar[str] = "referral"


class ReportingEventDeadLettered(EventDeadLettered):
    """A message reporting's consumer could not apply: why, and a bounded copy of it."""

    service_name: ClassVar[str] = "reporting"


DEAD_LETTER_EVENTS: tuple[type[EventDeadLettered], ...] = (
    OutreachEventDeadLettered,
    RehabEventDeadLettered,
    ReferralEventDeadLettered,
    ReportingEventDeadLettered,
)
"""The dead letter of every service that consumes events (clinics consume outside Pulih)."""

_BY_SERVICE = {model.service_name: model for model in DEAD_LETTER_EVENTS}


def dead_letter_model(service: str) -> type[EventDeadLettered]:
    """The dead-letter event of ``service``; ``ValueError`` for a service that consumes nothing."""
    try:
        return _BY_SERVICE[service]
    except KeyError:
        raise ValueError(f"{service!r} has no dead-letter event; one of {sorted(_BY_SERVICE)}") from None


def dead_letter_of(
    service: str,
    *,
    consumer: str,
    subject: str,
    stream_seq: int,
    attempts: int,
    error: str,
    reason: str,
    payload: bytes,
    payload_limit: int = PAYLOAD_LIMIT,
) -> EventDeadLettered:
    """``service``'s dead letter for ``payload``, the raw message its consumer refused.

    The payload is kept as text if it is UTF-8 and in base64 otherwise, with identity values
    redacted where it is JSON, and cut to ``payload_limit`` bytes as sent (at most
    :data:`PAYLOAD_LIMIT`; 0 keeps nothing); ``reason`` is cut to fit too, and ``error`` made a
    code, so that a refusal can always be recorded.
    """
    limit = max(0, min(payload_limit, PAYLOAD_LIMIT))
    return dead_letter_model(service)(
        consumer=consumer,
        subject=subject,
        stream_seq=stream_seq,
        attempts=attempts,
        error=_as_code(error),
        reason=reason if len(reason) <= _REASON_LIMIT else reason[: _REASON_LIMIT - 1] + "…",
        payload_size=len(payload),
        **_copy_of(payload, limit),
    )


def _as_code(error: str) -> str:
    code = re.sub(r"[^a-z0-9_]+", "_", error.lower()).strip("_")[:60]
    return code if re.match(_ERROR_CODE, code) else "unknown_error"


def _copy_of(payload: bytes, limit: int) -> dict[str, Any]:
    """The ``payload*`` fields for a raw message: its text, redacted where it is JSON, or the
    base64 of its bytes; either cut to ``limit`` bytes as sent."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        kept_bytes = payload[: limit // 4 * 3]  # the most bytes whose base64 fits
        return {
            "payload": base64.b64encode(kept_bytes).decode("ascii"),
            "payload_encoding": "base64",
            "payload_truncated": len(kept_bytes) < len(payload),
            "payload_redacted": False,
        }
    text, redacted = _redacted(text)
    kept = _within_limit(text, limit)
    return {
        "payload": kept,
        "payload_encoding": "utf-8",
        "payload_truncated": len(kept) < len(text),
        "payload_redacted": redacted,
    }


def _redacted(text: str) -> tuple[str, bool]:
    """``text`` with identity values replaced where it is JSON holding identity keys."""
    try:
        decoded = json.loads(text)
    except ValueError:
        return text, False
    redacted, found = redact_identity(decoded)
    if not found:
        return text, False
    return json.dumps(redacted, ensure_ascii=False, separators=(",", ":")), True


def _within_limit(text: str, limit: int) -> str:
    """The longest beginning of ``text`` whose JSON string form is at most ``limit`` bytes.

    Escaping can make a text up to six times longer on the wire (a NUL is ``\\u0000``), so the
    limit is on what is sent, found by bisection."""

    def sent_size(candidate: str) -> int:
        return len(json.dumps(candidate, ensure_ascii=False).encode()) - 2

    if sent_size(text) <= limit:
        return text
    short, long = 0, min(len(text), limit)
    while short < long:
        middle = (short + long + 1) // 2
        if sent_size(text[:middle]) <= limit:
            short = middle
        else:
            long = middle - 1
    return text[:short]
