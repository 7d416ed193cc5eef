"""The unit of work: one transaction of a service, and the one way into its outbox.

A command route, a consumed event and a periodic job all change state the same way::

    async with runtime.unit_of_work(caused_by=event) as uow:
        referral = await uow.session.get(Referral, referral_id)
        ...                                   # the domain decides
        await uow.emit(ReferralClosed(...))   # stamped with correlation and causation

``emit`` writes the event to the outbox in the same transaction as the state change, so both
commit or neither does. It stamps every event with the chain it belongs to:

- ``correlationid``: the request, or the first event, that started the chain; an event caused by
  another carries that event's ``correlationid`` on (or its ``id`` if it had none);
- ``causationid``: the id of the event this unit of work is applying, if any.

No handler builds those ids by hand.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import CloudEvent, Event
from pulih.kit.emitter import Emitter


class UnitOfWork:
    """A session inside one transaction, and :meth:`emit` for the events the change causes."""

    def __init__(
        self,
        session: AsyncSession,
        emitter: Emitter,
        *,
        correlationid: str | None = None,
        causationid: str | None = None,
    ) -> None:
        self.session = session
        self._emitter = emitter
        self.correlationid = correlationid or str(uuid.uuid4())
        self.causationid = causationid

    @classmethod
    def caused_by(cls, session: AsyncSession, emitter: Emitter, event: CloudEvent[Any]) -> UnitOfWork:
        """The unit of work that applies ``event``: what it emits names ``event`` as its cause."""
        return cls(
            session,
            emitter,
            correlationid=event.correlationid or str(event.id),
            causationid=str(event.id),
        )

    async def emit(self, data: Event, *, clinic_id: str | None = None) -> CloudEvent[Event]:
        """Add an event to the outbox; it is published only if the transaction commits.

        ``clinic_id`` addresses a referral event to one clinic (its subject ends with it).
        """
        return await self._emitter.emit(
            self.session,
            data,
            correlationid=self.correlationid,
            causationid=self.causationid,
            clinic_id=clinic_id,
        )
