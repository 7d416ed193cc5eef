"""Turning a fact into an event in the outbox: envelope, subject, trace and causation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import CloudEvent, Event, new_event, new_event_id, subject_for
from pulih.kit.outbox import add_to_outbox


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the active span, if any (version 00, as the propagator writes
    it; written directly, without a carrier and the propagator's checks)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


@dataclass(frozen=True)
class Emitter:
    """Writes events of one regency's service into its outbox."""

    regency: str
    wake: Callable[[], None] | None = None

    async def emit(
        self,
        session: AsyncSession,
        data: Event,
        *,
        correlationid: str | None = None,
        causationid: str | None = None,
        clinic_id: str | None = None,
    ) -> CloudEvent[Event]:
        """Wrap ``data`` in a CloudEvent and add it to the outbox in the session's transaction.

        Every event names its chain (EVENTS.md): without a ``correlationid``, the event starts
        a chain of its own and its ``id`` is the chain's.
        """
        event_id = new_event_id()
        envelope: CloudEvent[Event] = new_event(
            data,
            regency=self.regency,
            id=event_id,
            correlationid=correlationid or str(event_id),
            causationid=causationid,
            traceparent=current_traceparent(),
        )
        subject = subject_for(envelope, self.regency, clinic_id=clinic_id)
        await add_to_outbox(session, envelope, subject, wake=self.wake)
        return envelope
