"""Turning a fact into an event in the outbox: envelope, subject, trace and causation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import CloudEvent, Event, new_event, subject_for
from pulih.kit.outbox import add_to_outbox


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the active span, if any."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


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
        """Wrap ``data`` in a CloudEvent and add it to the outbox in the session's transaction."""
        envelope: CloudEvent[Event] = new_event(
            data,
            regency=self.regency,
            correlationid=correlationid,
            causationid=causationid,
            traceparent=current_traceparent(),
        )
        subject = subject_for(envelope, self.regency, clinic_id=clinic_id)
        await add_to_outbox(session, envelope, subject, wake=self.wake)
        return envelope
